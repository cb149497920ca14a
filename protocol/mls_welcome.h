/*
 * mls_welcome.h: opening a Welcome (RFC 9420 §12.4.3.1) as a new member.
 *
 * Joining takes three steps, because the caller must supply things that
 * only become known along the way (the PSK values GroupSecrets names, and
 * the signer's key, which lives in the ratchet tree):
 *
 *   1. mls_welcome_open_secrets(): find our EncryptedGroupSecrets by the
 *      KeyPackageRef of our KeyPackage and decrypt it with our init key
 *      (DecryptWithLabel "Welcome", context encrypted_group_info).
 *      -> GroupSecrets: joiner_secret, optional path_secret, PSK ids.
 *   2. mls_welcome_psk_secret(): psk_secret from the PSK ids in GroupSecrets
 *      and the values the caller looked up (Nh zeros when there are none).
 *   3. mls_welcome_open_group_info(): welcome_secret from joiner_secret and
 *      psk_secret; decrypt and decode the GroupInfo.
 *   4. mls_welcome_verify_group_info(): check the GroupInfo signature with
 *      the signer's key (from the tree: leaf gi.signer), derive the epoch's
 *      key schedule from joiner_secret, psk_secret and the GroupContext, and
 *      check the confirmation tag. -> the epoch (struct mls_ks_epoch).
 *
 * Verifying the ratchet tree itself (tree hash against the GroupContext,
 * parent hashes, leaf validity) is the tree module's job (mls_tree.h) and
 * must be done by the caller before trusting the signer's key.
 *
 * Ownership: inputs are borrowed for the call. Structures returned through
 * out parameters belong to the caller (mls_group_secrets_free,
 * mls_group_info_free, mls_ks_epoch_free); on error nothing is returned.
 * Every function returns 0 or a negative ERR_*.
 */
#ifndef SAMMEN_MLS_WELCOME_H
#define SAMMEN_MLS_WELCOME_H

#include <stddef.h>
#include <stdint.h>

#include "mls_ks.h"
#include "mls_struct.h"

/* Step 1. kp is our KeyPackage, init_priv its HPKE init private key.
 * ERR_UNSUPPORTED (suite other than 3, or differing from kp's),
 * ERR_NOT_FOUND (no EncryptedGroupSecrets for our KeyPackageRef),
 * ERR_CRYPTO (decryption failed), ERR_MALFORMED (bad GroupSecrets bytes),
 * ERR_INVALID (joiner_secret of the wrong size), ERR_NOMEM. */
int mls_welcome_open_secrets(const struct mls_welcome *welcome, const struct mls_key_package *kp,
                             const uint8_t init_priv[CRYPTO_KEM_PRIV_LEN],
                             struct mls_group_secrets *out);

/* Step 2. psk_values[i] is the secret of gs->psks[i] (n must equal
 * gs->n_psks, else ERR_INVALID). */
int mls_welcome_psk_secret(const struct mls_group_secrets *gs, const struct mls_bytes *psk_values,
                           size_t n, uint8_t psk_secret[MLS_KS_NH]);

/* Step 3. Decrypts encrypted_group_info with welcome_key/welcome_nonce
 * (empty aad) and decodes it strictly. ERR_CRYPTO, ERR_MALFORMED,
 * ERR_UNSUPPORTED (GroupContext of another version or suite), ERR_NOMEM. */
int mls_welcome_open_group_info(const struct mls_welcome *welcome, const struct mls_group_secrets *gs,
                                const uint8_t psk_secret[MLS_KS_NH], struct mls_group_info *out);

/* Step 4. signer_pub is the signature key of leaf gi->signer.
 * ERR_CRYPTO (bad signature or confirmation tag), ERR_NOMEM. On success
 * *epoch is the joined epoch's key schedule. */
int mls_welcome_verify_group_info(const struct mls_group_info *gi, const uint8_t *signer_pub,
                                  size_t signer_pub_len, const struct mls_group_secrets *gs,
                                  const uint8_t psk_secret[MLS_KS_NH], struct mls_ks_epoch **epoch);

#endif
