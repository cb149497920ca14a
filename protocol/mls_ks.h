/*
 * mls_ks.h: the MLS key schedule (RFC 9420 §8), PSK secret (§8.4), secret
 * tree (§9), transcript hashes (§8.2) and Welcome secrets, for suite 3.
 *
 * This module sits below the structure codec: it never sees mls_struct.h.
 * Callers pass *encoded* structures (GroupContext, PreSharedKeyID,
 * ConfirmedTranscriptHashInput, ...) as bytes.
 *
 * Where to start:
 *
 *   epoch n-1 init_secret ──┐
 *   commit_secret ──────────┴─> mls_ks_epoch_new(..., group_context_n) ─> epoch n
 *   joiner_secret (Welcome) ──> mls_ks_epoch_from_joiner(...)          ─> epoch n
 *
 *   An epoch (struct mls_ks_epoch, opaque, one guarded allocation) holds the
 *   joiner and welcome secrets and every secret derived from epoch_secret.
 *   Read one with mls_ks_epoch_secret(); use the helpers for the common
 *   operations (confirmation tag, membership tag, sender data key, exporter,
 *   external public key). Free with mls_ks_epoch_free() (wipes).
 *
 *   The secret tree (struct mls_ks_tree, opaque) is built from the epoch's
 *   encryption_secret: mls_ks_tree_new_from_epoch() also wipes that secret
 *   from the epoch, as §9 asks. mls_ks_tree_next_key() gives a sender the
 *   next key/nonce of a ratchet; mls_ks_tree_key() gives a receiver the
 *   key/nonce of any generation within the out-of-order window. Every key is
 *   handed out once and then erased. The reuse guard (§6.3.1) is applied by
 *   the framing layer, not here.
 *
 * Ownership: every output buffer is caller-owned; callers wipe the secrets
 * they receive (crypto_wipe, or mls_ks_key_wipe). Every function returns 0
 * or a negative ERR_*.
 */
#ifndef SAMMEN_MLS_KS_H
#define SAMMEN_MLS_KS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define MLS_KS_NH CRYPTO_HASH_LEN /* every secret below is Nh = 32 bytes */

/* Secret-tree limits. A receiver keeps keys of skipped generations for
 * out-of-order messages, up to MLS_KS_WINDOW generations behind the newest
 * generation it has seen on that ratchet and at most MLS_KS_MAX_SKIPPED
 * keys per tree (oldest dropped first). It refuses to jump more than
 * MLS_KS_MAX_FORWARD generations ahead in one step. */
#define MLS_KS_WINDOW 1000u
#define MLS_KS_MAX_FORWARD 1000u
#define MLS_KS_MAX_SKIPPED 4096u
/* Largest tree the secret tree accepts (it costs ~96 guarded bytes a leaf). */
#define MLS_KS_MAX_LEAVES ((uint32_t)1 << 16)

/* ---- epoch key schedule (§8) ------------------------------------------ */

enum mls_ks_secret {
    MLS_KS_JOINER = 0,
    MLS_KS_WELCOME,
    MLS_KS_SENDER_DATA,
    MLS_KS_ENCRYPTION, /* wiped (all zero) once a secret tree took it */
    MLS_KS_EXPORTER,
    MLS_KS_EXTERNAL,
    MLS_KS_CONFIRMATION_KEY,
    MLS_KS_MEMBERSHIP_KEY,
    MLS_KS_RESUMPTION_PSK,
    MLS_KS_EPOCH_AUTHENTICATOR,
    MLS_KS_INIT, /* the next epoch's init_secret */
    MLS_KS_SECRET_COUNT
};

struct mls_ks_epoch;

/* Runs the key schedule for a new epoch:
 *   joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret),
 *                                   "joiner", group_context, Nh)
 * then as mls_ks_epoch_from_joiner(). init_secret is the previous epoch's
 * MLS_KS_INIT (or a fresh random one for epoch 0, or the external-init
 * secret); commit_secret is the path's commit secret or Nh zero bytes;
 * psk_secret comes from mls_ks_psk_secret() (Nh zero bytes without PSKs);
 * group_context is the encoded GroupContext of the *new* epoch.
 * *out is the caller's: free it with mls_ks_epoch_free(). */
int mls_ks_epoch_new(const uint8_t init_secret[MLS_KS_NH], const uint8_t commit_secret[MLS_KS_NH],
                     const uint8_t psk_secret[MLS_KS_NH], const uint8_t *group_context,
                     size_t gclen, struct mls_ks_epoch **out);
/* The same from a joiner_secret (a new member, from GroupSecrets):
 *   member  = Extract(joiner_secret, psk_secret)
 *   welcome_secret = DeriveSecret(member, "welcome")
 *   epoch_secret   = ExpandWithLabel(member, "epoch", group_context, Nh)
 *   <each secret>  = DeriveSecret(epoch_secret, <label>) */
int mls_ks_epoch_from_joiner(const uint8_t joiner_secret[MLS_KS_NH],
                             const uint8_t psk_secret[MLS_KS_NH], const uint8_t *group_context,
                             size_t gclen, struct mls_ks_epoch **out);
/* Wipes and frees; NULL is a no-op. */
void mls_ks_epoch_free(struct mls_ks_epoch *ep);
/* Copies one secret out. ERR_INVALID for an unknown `which`. */
int mls_ks_epoch_secret(const struct mls_ks_epoch *ep, enum mls_ks_secret which,
                        uint8_t out[MLS_KS_NH]);

/* confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash). */
int mls_ks_epoch_confirmation_tag(const struct mls_ks_epoch *ep,
                                  const uint8_t confirmed_transcript_hash[MLS_KS_NH],
                                  uint8_t tag[CRYPTO_MAC_LEN]);
/* Constant-time check of a received tag: 0 or ERR_CRYPTO. */
int mls_ks_epoch_verify_confirmation_tag(const struct mls_ks_epoch *ep,
                                         const uint8_t confirmed_transcript_hash[MLS_KS_NH],
                                         const uint8_t *tag, size_t taglen);
/* membership_tag = MAC(membership_key, AuthenticatedContentTBM) (§6.2),
 * over the encoded TBM; and its constant-time check. */
int mls_ks_epoch_membership_tag(const struct mls_ks_epoch *ep, const uint8_t *tbm, size_t len,
                                uint8_t tag[CRYPTO_MAC_LEN]);
int mls_ks_epoch_verify_membership_tag(const struct mls_ks_epoch *ep, const uint8_t *tbm,
                                       size_t len, const uint8_t *tag, size_t taglen);
/* Sender-data key and nonce for a PrivateMessage ciphertext (§6.3.2),
 * sampled from its first Nh bytes (all of it when shorter). */
int mls_ks_epoch_sender_data_key(const struct mls_ks_epoch *ep, const uint8_t *ciphertext,
                                 size_t ctlen, uint8_t key[CRYPTO_AEAD_KEY_LEN],
                                 uint8_t nonce[CRYPTO_AEAD_NONCE_LEN]);
/* The same from a bare sender_data_secret. */
int mls_ks_sender_data_key(const uint8_t sender_data_secret[MLS_KS_NH],
                           const uint8_t *ciphertext, size_t ctlen,
                           uint8_t key[CRYPTO_AEAD_KEY_LEN], uint8_t nonce[CRYPTO_AEAD_NONCE_LEN]);
/* MLS-Exporter(label, context, length) (§8.5): ExpandWithLabel(
 * DeriveSecret(exporter_secret, label), "exported", Hash(context), length).
 * The label is bytes (no "MLS 1.0 " prefix; it is added). */
int mls_ks_epoch_export(const struct mls_ks_epoch *ep, const uint8_t *label, size_t label_len,
                        const uint8_t *context, size_t ctxlen, uint8_t *out, size_t outlen);
/* external_pub = DeriveKeyPair(external_secret).public (§8.3). */
int mls_ks_epoch_external_pub(const struct mls_ks_epoch *ep, uint8_t pub[CRYPTO_KEM_PUB_LEN]);

/* External init (§8.3). The joiner: SetupBaseS(external_pub, "") and
 * init_secret = Export("MLS 1.0 external init secret", Nh); kem_output
 * goes into the ExternalInit proposal. */
int mls_ks_external_init_join(const uint8_t external_pub[CRYPTO_KEM_PUB_LEN],
                              uint8_t kem_output[CRYPTO_KEM_ENC_LEN],
                              uint8_t init_secret[MLS_KS_NH]);
/* The members: the same init_secret from kem_output and this epoch's
 * external key pair. ERR_CRYPTO for a bad kem_output. */
int mls_ks_epoch_external_init(const struct mls_ks_epoch *ep, const uint8_t *kem_output,
                               size_t kemlen, uint8_t init_secret[MLS_KS_NH]);

/* ---- Welcome secrets (§12.4.3.1) -------------------------------------- */

/* welcome_secret from joiner_secret and psk_secret (as above), then
 * welcome_key = ExpandWithLabel(welcome_secret, "key", "", Nk) and
 * welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", Nn). */
int mls_ks_welcome_key(const uint8_t joiner_secret[MLS_KS_NH], const uint8_t psk_secret[MLS_KS_NH],
                       uint8_t key[CRYPTO_AEAD_KEY_LEN], uint8_t nonce[CRYPTO_AEAD_NONCE_LEN]);

/* ---- PSK secret (§8.4) ------------------------------------------------ */

/* One PSK: its encoded PreSharedKeyID and its secret value. */
struct mls_ks_psk {
    const uint8_t *id; /* encoded PreSharedKeyID */
    size_t id_len;
    const uint8_t *psk;
    size_t psk_len;
};

/* psk_secret over n PSKs in order (Nh zero bytes when n is 0):
 *   psk_extracted_i = Extract(0, psk_i)
 *   psk_input_i     = ExpandWithLabel(psk_extracted_i, "derived psk",
 *                                     PSKLabel{id_i, uint16 i, uint16 n}, Nh)
 *   psk_secret_i+1  = Extract(psk_input_i, psk_secret_i)
 * ERR_TOO_BIG when n exceeds UINT16_MAX. */
int mls_ks_psk_secret(const struct mls_ks_psk *psks, size_t n, uint8_t out[MLS_KS_NH]);

/* ---- transcript hashes (§8.2) ----------------------------------------- */

/* confirmed = Hash(interim_before || ConfirmedTranscriptHashInput), where
 * the input is the encoded {wire_format, FramedContent, signature<V>}. */
void mls_ks_confirmed_transcript_hash(const uint8_t interim_before[MLS_KS_NH],
                                      const uint8_t *confirmed_input, size_t len,
                                      uint8_t out[MLS_KS_NH]);
/* interim = Hash(confirmed || InterimTranscriptHashInput), the input being
 * the encoding of confirmation_tag<V>. */
int mls_ks_interim_transcript_hash(const uint8_t confirmed[MLS_KS_NH], const uint8_t *tag,
                                   size_t taglen, uint8_t out[MLS_KS_NH]);

/* ---- secret tree (§9) ------------------------------------------------- */

enum mls_ks_ratchet {
    MLS_KS_HANDSHAKE = 0,
    MLS_KS_APPLICATION = 1,
};

/* A content key and nonce for one generation of one ratchet. */
struct mls_ks_key {
    uint8_t key[CRYPTO_AEAD_KEY_LEN];
    uint8_t nonce[CRYPTO_AEAD_NONCE_LEN];
    uint32_t generation;
};

void mls_ks_key_wipe(struct mls_ks_key *k);

struct mls_ks_tree;

/* A secret tree over n_leaves leaves (a power of two, at most
 * MLS_KS_MAX_LEAVES) rooted at encryption_secret. Free with
 * mls_ks_tree_free(). ERR_INVALID for a bad n_leaves, ERR_NOMEM. */
int mls_ks_tree_new(const uint8_t encryption_secret[MLS_KS_NH], uint32_t n_leaves,
                    struct mls_ks_tree **out);
/* The same from an epoch's encryption_secret, which is then wiped from the
 * epoch (ERR_BADSTATE if it already was). */
int mls_ks_tree_new_from_epoch(struct mls_ks_epoch *ep, uint32_t n_leaves,
                               struct mls_ks_tree **out);
/* Wipes and frees; NULL is a no-op. */
void mls_ks_tree_free(struct mls_ks_tree *t);
/* Sender: the key/nonce of the ratchet's next generation; the ratchet moves
 * on. ERR_INVALID (leaf out of range), ERR_LIMIT (generations exhausted). */
int mls_ks_tree_next_key(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which,
                         struct mls_ks_key *out);
/* Receiver: the key/nonce of `generation`. Ahead of the ratchet: the
 * skipped generations' keys are kept (within the window) and the ratchet
 * moves past `generation`. Behind it: a kept key is handed out and erased.
 * ERR_BADSTATE: already used, or fell out of the window; ERR_LIMIT: more than
 * MLS_KS_MAX_FORWARD ahead; ERR_INVALID: leaf out of range; ERR_NOMEM (the
 * ratchet may then have moved on without keeping every skipped key). */
int mls_ks_tree_key(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which,
                    uint32_t generation, struct mls_ks_key *out);
/* Receiver: puts back a key that mls_ks_tree_key handed out for a message
 * that then failed to decrypt (forged or corrupted), so the genuine message
 * of that generation can still be read. It becomes a kept key (same
 * window rules). ERR_INVALID, ERR_NOMEM. */
int mls_ks_tree_key_return(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which,
                           const struct mls_ks_key *k);

/* ---- persistence (for a client's saved group state) ------------------------
 * mls_ks_epoch_restore: an epoch from its secrets as read one by one with
 * mls_ks_epoch_secret() (index = enum mls_ks_secret); encryption_taken as
 * mls_ks_epoch_encryption_taken() said (then that secret is ignored).
 * mls_ks_tree_save: appends the secret tree's whole state (node and
 * ratchet secrets, positions, kept keys of skipped generations) to w; SECRET.
 * mls_ks_tree_load: the inverse, strict and bounded (sizes checked against
 * the remaining input before allocating): ERR_MALFORMED, ERR_NOMEM. */
struct tls_writer;
struct tls_reader;
int mls_ks_epoch_restore(const uint8_t secrets[MLS_KS_SECRET_COUNT][MLS_KS_NH],
                         bool encryption_taken, struct mls_ks_epoch **out);
bool mls_ks_epoch_encryption_taken(const struct mls_ks_epoch *ep);
void mls_ks_tree_save(const struct mls_ks_tree *t, struct tls_writer *w);
/* Move an epoch's / a secret tree's secrets from guarded (sodium_malloc)
 * to plain malloc'd memory, still wiped when freed: for benchmarks that
 * hold thousands of groups (each guarded block costs several mappings).
 * mls_ks_epoch_make_plain may replace *ep. 0 or ERR_NOMEM (unchanged). */
int mls_ks_epoch_make_plain(struct mls_ks_epoch **ep);
int mls_ks_tree_make_plain(struct mls_ks_tree *t);
int mls_ks_tree_load(struct tls_reader *r, struct mls_ks_tree **out);

#endif
