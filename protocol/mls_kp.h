/*
 * mls_kp.h: creating our own KeyPackages (RFC 9420 §10) and keeping their
 * private parts until a Welcome consumes them.
 *
 * A struct mls_kp is one KeyPackage plus its three private keys: the HPKE
 * init key (opens the Welcome's GroupSecrets), the leaf's HPKE encryption
 * key (becomes our leaf's private key in the tree) and the Ed25519
 * signature seed (the device's key; the KeyPackage and leaf are signed with
 * it). It is single-use: mls_group_join() marks the one it used as consumed
 * (mls_kp_used()), and the caller then deletes it from its store and tells
 * the server; a consumed KeyPackage is refused by mls_group_join().
 *
 * Sammen's credential is basic (§5.3) with the identity bytes
 *     "name@domain/d_xxxxxxxxxxxxxxxx"
 * (UTF-8, no NUL), where d_xxxxxxxxxxxxxxxx is the device id: "d_" and the
 * lowercase hex of the first 8 bytes of SHA-256(Ed25519 public key), as in
 * keys/keys_id.h. So the identity is bound to the signature key: a member
 * checks it with mls_kp_identity_check().
 *
 * Leaf capabilities: versions {mls10}, cipher_suites {3}, extensions {}
 * and proposals {} (the default types need not be listed, §7.2),
 * credentials {basic}. Lifetime: [not_before, not_after] given by the
 * caller. KeyPackage extensions: none.
 *
 * Ownership: struct mls_kp is opaque; mls_kp_free() wipes and frees it
 * (NULL is a no-op). Pointers returned by accessors point into it.
 * Every function returns 0 or a negative ERR_*.
 */
#ifndef SAMMEN_MLS_KP_H
#define SAMMEN_MLS_KP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

/* Longest identity we build or accept ("name@domain/d_" + 16 hex). */
#define MLS_KP_MAX_IDENTITY 512
/* Length of the "/d_xxxxxxxxxxxxxxxx" suffix. */
#define MLS_KP_DEVICE_SUFFIX_LEN 19

struct mls_kp;
struct mls_key_package;

/* Builds the identity bytes for user "name@domain" (NUL-terminated,
 * non-empty, no '/') and Ed25519 public key sig_pub into out[0..cap);
 * *len gets the length (no NUL is written). ERR_INVALID for a bad user,
 * ERR_TOO_BIG when cap is too small. */
int mls_kp_identity(const char *user, const uint8_t sig_pub[CRYPTO_SIGN_PUB_LEN], uint8_t *out,
                    size_t cap, size_t *len);
/* Checks that identity has the form above and that its device id is the
 * one of sig_pub: 0 or ERR_INVALID. */
int mls_kp_identity_check(const uint8_t *identity, size_t len, const uint8_t *sig_pub,
                          size_t sig_pub_len);

/* Creates a KeyPackage with fresh init and encryption keys, a basic
 * credential holding `identity`, signed with sig_priv (the device's
 * Ed25519 seed). */
int mls_kp_create(const uint8_t *identity, size_t identity_len,
                  const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN], uint64_t not_before,
                  uint64_t not_after, struct mls_kp **out);
/* Wraps an existing serialized KeyPackage (bare KeyPackage, or an
 * MLSMessage holding one) and its private keys (test vectors, restored
 * state). Checks that the private keys match the public ones
 * (ERR_INVALID). */
int mls_kp_from_parts(const uint8_t *kp, size_t kp_len, const uint8_t init_priv[CRYPTO_KEM_PRIV_LEN],
                      const uint8_t enc_priv[CRYPTO_KEM_PRIV_LEN],
                      const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN], struct mls_kp **out);
void mls_kp_free(struct mls_kp *kp);

/* The KeyPackage wrapped in an MLSMessage (what is uploaded to the server).
 * *out is the caller's (free()). */
int mls_kp_message(const struct mls_kp *kp, uint8_t **out, size_t *len);
/* The decoded KeyPackage (valid while kp lives). */
const struct mls_key_package *mls_kp_key_package(const struct mls_kp *kp);
/* KeyPackageRef (32 bytes, valid while kp lives). */
const uint8_t *mls_kp_ref(const struct mls_kp *kp);
/* Private keys (valid while kp lives; do not copy them around). */
const uint8_t *mls_kp_init_priv(const struct mls_kp *kp);
const uint8_t *mls_kp_enc_priv(const struct mls_kp *kp);
const uint8_t *mls_kp_sig_priv(const struct mls_kp *kp);
/* True once a Welcome was opened with it. */
bool mls_kp_used(const struct mls_kp *kp);
void mls_kp_mark_used(struct mls_kp *kp);

/* Private store form (versioned: u8 version 1, KeyPackage, the three
 * private keys, used flag). Secret: the caller encrypts it at rest.
 * *out is the caller's (wipe and free() it). */
int mls_kp_save(const struct mls_kp *kp, uint8_t **out, size_t *len);
/* Strict, bounded decoder of mls_kp_save's output. ERR_MALFORMED,
 * ERR_UNSUPPORTED (version), ERR_INVALID (keys do not match), ERR_NOMEM. */
int mls_kp_load(const uint8_t *buf, size_t len, struct mls_kp **out);

#endif
