/*
 * crypto.h: the MLS cipher-suite primitives (RFC 9420 §5) for suite 3,
 * MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, on libsodium 1.0.18.
 *
 * crypto.c is the only MLS crypto file that includes <sodium.h>: hpke.c,
 * mls_ks*.c and the MLS modules above them go through these wrappers.
 *
 * Where to start:
 *   crypto_init()                  once per process, before anything else
 *   crypto_expand_with_label()     KDF with the MLS "MLS 1.0 " label prefix
 *   crypto_sign_with_label()       Ed25519 over SignContent
 *   crypto_encrypt_with_label()    HPKE base mode over EncryptContext
 *
 * Conventions:
 *   - Every function returns 0 or a negative ERR_* (err.h). "Crypto says no"
 *     (bad signature, failed AEAD) is ERR_CRYPTO; on any error the output
 *     buffers hold no partial plaintext (they are wiped).
 *   - All buffers are caller-owned; sizes are fixed by the constants below
 *     unless a length argument is given. Inputs and outputs may not overlap
 *     unless a function says so.
 *   - Labels are NUL-terminated C strings *without* the "MLS 1.0 " prefix;
 *     the functions add it (except crypto_ref_hash, whose label is used
 *     verbatim, as RFC 9420 §5.2 specifies).
 *   - Private signature keys are the 32-byte Ed25519 seeds used by the
 *     official test vectors; the 64-byte libsodium secret key is derived on
 *     the fly and wiped.
 *
 * Label structures written with tls.h (RFC 9420 §5.1-5.3, §8):
 * | struct           | fields                                             |
 * |------------------|----------------------------------------------------|
 * | KDFLabel         | uint16 length; opaque label<V>; opaque context<V>  |
 * | RefHashInput     | opaque label<V>; opaque value<V>                   |
 * | SignContent      | opaque label<V>; opaque content<V>                 |
 * | EncryptContext   | opaque label<V>; opaque context<V>                 |
 */
#ifndef SAMMEN_CRYPTO_H
#define SAMMEN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_HASH_LEN 32       /* Nh: SHA-256 output, KDF extract size */
#define CRYPTO_MAC_LEN 32        /* HMAC-SHA256 tag */
#define CRYPTO_AEAD_KEY_LEN 32   /* ChaCha20-Poly1305 Nk */
#define CRYPTO_AEAD_NONCE_LEN 12 /* Nn */
#define CRYPTO_AEAD_TAG_LEN 16   /* ciphertext = plaintext + tag */
#define CRYPTO_SIGN_PUB_LEN 32   /* Ed25519 public key */
#define CRYPTO_SIGN_PRIV_LEN 32  /* Ed25519 seed */
#define CRYPTO_SIG_LEN 64
#define CRYPTO_KEM_PUB_LEN 32  /* X25519 public key (HPKE Npk) */
#define CRYPTO_KEM_PRIV_LEN 32 /* X25519 private key (HPKE Nsk) */
#define CRYPTO_KEM_ENC_LEN 32  /* HPKE Nenc: kem_output */
/* RFC 5869 limit for one Expand: 255 blocks of Nh. */
#define CRYPTO_HKDF_MAX_OUT (255 * CRYPTO_HASH_LEN)

/* Initialises libsodium. Safe to call more than once. 0 or ERR_INTERNAL. */
int crypto_init(void);

/* ---- plumbing shared by hpke.c and mls_ks*.c ------------------------- */

/* Fills buf with len random bytes. */
void crypto_random(uint8_t *buf, size_t len);
/* Wipes len bytes at p (not optimised away). p may be NULL if len is 0. */
void crypto_wipe(void *p, size_t len);
/* Constant-time comparison: 0 when equal, ERR_CRYPTO otherwise. */
int crypto_memeq(const uint8_t *a, const uint8_t *b, size_t len);
/* Guarded memory for long-lived secrets (sodium_malloc: guard pages and a
 * canary; costs 3-4 pages, so allocate one block per object, not per key).
 * Returns NULL on failure. crypto_secure_free wipes and frees; NULL is a
 * no-op. */
void *crypto_secure_alloc(size_t len);
void crypto_secure_free(void *p);

/* ---- hash, MAC, KDF --------------------------------------------------- */

/* out = SHA-256(in). */
void crypto_sha256(const uint8_t *in, size_t len, uint8_t out[CRYPTO_HASH_LEN]);
/* out = SHA-256(a || b), without building the concatenation. */
void crypto_sha256_2(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                     uint8_t out[CRYPTO_HASH_LEN]);
/* MAC(key, data) = HMAC-SHA256 (any key length). */
void crypto_mac(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                uint8_t out[CRYPTO_MAC_LEN]);
/* Checks tag against MAC(key, data) in constant time: 0 or ERR_CRYPTO. */
int crypto_mac_verify(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                      const uint8_t *tag, size_t taglen);

/* HKDF-Extract(salt, ikm) (RFC 5869). salt may be NULL/0: a string of
 * Nh zero bytes is used, as RFC 5869 says. */
void crypto_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
                         size_t ikmlen, uint8_t prk[CRYPTO_HASH_LEN]);
/* HKDF-Expand(prk, info, outlen). 0, or ERR_INVALID when outlen is 0 or
 * above CRYPTO_HKDF_MAX_OUT. out may not overlap prk or info. */
int crypto_hkdf_expand(const uint8_t *prk, size_t prklen, const uint8_t *info, size_t infolen,
                       uint8_t *out, size_t outlen);

/* ExpandWithLabel(secret, label, context, length) (RFC 9420 §5.1): expands
 * with KDFLabel {length, "MLS 1.0 " + label, context}. 0, ERR_INVALID
 * (bad length, label too long) or ERR_NOMEM. */
int crypto_expand_with_label(const uint8_t *secret, size_t secretlen, const char *label,
                             const uint8_t *context, size_t ctxlen, uint8_t *out, size_t outlen);
/* ExpandWithLabel with a label given as bytes (which may contain NULs, as
 * MLS-Exporter labels can). label_len <= 255 - 8. */
int crypto_expand_with_label_raw(const uint8_t *secret, size_t secretlen, const uint8_t *label,
                                 size_t label_len, const uint8_t *context, size_t ctxlen,
                                 uint8_t *out, size_t outlen);
/* DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", Nh). */
int crypto_derive_secret(const uint8_t *secret, size_t secretlen, const char *label,
                         uint8_t out[CRYPTO_HASH_LEN]);
/* DeriveTreeSecret(secret, label, generation, length) (§9.1): context is
 * the uint32 generation. */
int crypto_derive_tree_secret(const uint8_t *secret, size_t secretlen, const char *label,
                              uint32_t generation, uint8_t *out, size_t outlen);

/* RefHash(label, value) = Hash(RefHashInput{label, value}) (§5.2). The label
 * is used as given (e.g. "MLS 1.0 KeyPackage Reference"). */
int crypto_ref_hash(const char *label, const uint8_t *value, size_t len,
                    uint8_t out[CRYPTO_HASH_LEN]);
/* MakeKeyPackageRef over an encoded KeyPackage (§5.2). */
int crypto_make_keypackage_ref(const uint8_t *keypackage, size_t len,
                               uint8_t out[CRYPTO_HASH_LEN]);
/* MakeProposalRef over an encoded AuthenticatedContent (§5.2). */
int crypto_make_proposal_ref(const uint8_t *auth_content, size_t len,
                             uint8_t out[CRYPTO_HASH_LEN]);

/* ---- signatures (Ed25519) --------------------------------------------- */

/* A fresh signature key pair (priv is the 32-byte seed). */
void crypto_sig_keygen(uint8_t pub[CRYPTO_SIGN_PUB_LEN], uint8_t priv[CRYPTO_SIGN_PRIV_LEN]);
/* The public key of a seed. */
void crypto_sig_public(const uint8_t priv[CRYPTO_SIGN_PRIV_LEN],
                       uint8_t pub[CRYPTO_SIGN_PUB_LEN]);
/* SignWithLabel(priv, label, content) (§5.1.2): Ed25519 over SignContent
 * {"MLS 1.0 " + label, content}. 0, ERR_NOMEM or ERR_INVALID. */
int crypto_sign_with_label(const uint8_t priv[CRYPTO_SIGN_PRIV_LEN], const char *label,
                           const uint8_t *content, size_t len, uint8_t sig[CRYPTO_SIG_LEN]);
/* VerifyWithLabel: 0 when sig is a valid signature by pub; ERR_CRYPTO when
 * not (including a signature of the wrong length); ERR_INVALID for a label
 * over 255 bytes; ERR_NOMEM. */
int crypto_verify_with_label(const uint8_t pub[CRYPTO_SIGN_PUB_LEN], const char *label,
                             const uint8_t *content, size_t len, const uint8_t *sig,
                             size_t siglen);

/* ---- AEAD (ChaCha20-Poly1305, IETF) ----------------------------------- */

/* ct (ptlen + CRYPTO_AEAD_TAG_LEN bytes) = Seal(key, nonce, aad, pt).
 * ct may equal pt (in place). 0 or ERR_INVALID (too long). */
int crypto_aead_seal(const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                     const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN], const uint8_t *aad,
                     size_t aadlen, const uint8_t *pt, size_t ptlen, uint8_t *ct);
/* pt (ctlen - CRYPTO_AEAD_TAG_LEN bytes) = Open(...). pt may equal ct.
 * 0, or ERR_CRYPTO (forged, or shorter than a tag) with pt wiped. */
int crypto_aead_open(const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                     const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN], const uint8_t *aad,
                     size_t aadlen, const uint8_t *ct, size_t ctlen, uint8_t *pt);

/* ---- X25519 (used by hpke.c) ------------------------------------------ */

/* shared = X25519(priv, pub). ERR_CRYPTO when the result is all zeros
 * (a low-order public key), as RFC 9180 §7.1.4 requires. */
int crypto_x25519(const uint8_t priv[CRYPTO_KEM_PRIV_LEN], const uint8_t pub[CRYPTO_KEM_PUB_LEN],
                  uint8_t shared[32]);
/* pub = X25519(priv, 9). */
void crypto_x25519_public(const uint8_t priv[CRYPTO_KEM_PRIV_LEN],
                          uint8_t pub[CRYPTO_KEM_PUB_LEN]);

/* ---- public-key encryption with labels (§5.1.3) ----------------------- */

/* EncryptWithLabel(pub, label, context, pt): HPKE base-mode SealBase with
 * info = EncryptContext{"MLS 1.0 " + label, context} and empty aad.
 * Writes kem_output and ct (ptlen + CRYPTO_AEAD_TAG_LEN bytes).
 * 0, ERR_CRYPTO (bad public key), ERR_NOMEM or ERR_INVALID. */
int crypto_encrypt_with_label(const uint8_t pub[CRYPTO_KEM_PUB_LEN], const char *label,
                              const uint8_t *context, size_t ctxlen, const uint8_t *pt,
                              size_t ptlen, uint8_t kem_output[CRYPTO_KEM_ENC_LEN], uint8_t *ct);
/* DecryptWithLabel: the inverse. pt gets ctlen - CRYPTO_AEAD_TAG_LEN bytes.
 * kem_output must be CRYPTO_KEM_ENC_LEN bytes (else ERR_CRYPTO).
 * 0, ERR_CRYPTO (wrong key, forged), ERR_NOMEM. */
int crypto_decrypt_with_label(const uint8_t priv[CRYPTO_KEM_PRIV_LEN], const char *label,
                              const uint8_t *context, size_t ctxlen, const uint8_t *kem_output,
                              size_t kemlen, const uint8_t *ct, size_t ctlen, uint8_t *pt);

#endif
