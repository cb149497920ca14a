/*
 * hpke.h: HPKE (RFC 9180) for the one suite MLS suite 3 uses:
 * DHKEM(X25519, HKDF-SHA256) (kem 0x0020), HKDF-SHA256 (kdf 0x0001),
 * ChaCha20-Poly1305 (aead 0x0003). All four modes and the exporter.
 *
 * Where to start: hpke_seal_base()/hpke_open_base() are the single-shot
 * calls MLS needs (EncryptWithLabel). For several messages or other modes,
 * hpke_setup_sender()/hpke_setup_receiver() fill a caller-owned
 * struct hpke_ctx, then hpke_seal()/hpke_open() each use and advance its
 * sequence number; hpke_export() derives exporter secrets. Call
 * hpke_ctx_wipe() when done (the context holds keys).
 *
 * Every function returns 0 or a negative ERR_*: ERR_CRYPTO for a bad
 * public key (all-zero DH output), a failed open or a wrong-size input;
 * ERR_INVALID for arguments that break RFC 9180's rules (a PSK in a mode
 * without one, a missing PSK or PSK id, a sender key missing for auth);
 * ERR_LIMIT when a context's sequence number is exhausted.
 */
#ifndef SAMMEN_HPKE_H
#define SAMMEN_HPKE_H

#include <stddef.h>
#include <stdint.h>

#define HPKE_MODE_BASE 0x00
#define HPKE_MODE_PSK 0x01
#define HPKE_MODE_AUTH 0x02
#define HPKE_MODE_AUTH_PSK 0x03

#define HPKE_NSECRET 32 /* KEM shared secret */
#define HPKE_NENC 32    /* encapsulated key */
#define HPKE_NPK 32
#define HPKE_NSK 32
#define HPKE_NK 32
#define HPKE_NN 12
#define HPKE_NH 32
#define HPKE_NT 16

/* An encryption context (RFC 9180 §5.2). Caller-owned, e.g. on the stack;
 * fields are read-only for callers (tests compare them to vectors). */
struct hpke_ctx {
    uint8_t key[HPKE_NK];
    uint8_t base_nonce[HPKE_NN];
    uint8_t exporter_secret[HPKE_NH];
    uint64_t seq;
};

/* Wipes a context. */
void hpke_ctx_wipe(struct hpke_ctx *ctx);

/* DeriveKeyPair(ikm) (§7.1.3). ikmlen must be at least 32 (else
 * ERR_INVALID). */
int hpke_derive_keypair(const uint8_t *ikm, size_t ikmlen, uint8_t sk[HPKE_NSK],
                        uint8_t pk[HPKE_NPK]);
/* A fresh random key pair. */
int hpke_generate_keypair(uint8_t sk[HPKE_NSK], uint8_t pk[HPKE_NPK]);

/* Encap(pkR) / AuthEncap(pkR, skS) (§4.1). skE is the ephemeral private key
 * to use, or NULL for a fresh random one (tests pass the vector's key).
 * skS is NULL for Encap. Writes enc and the shared secret. */
int hpke_encap(const uint8_t pkR[HPKE_NPK], const uint8_t *skS, const uint8_t *skE,
               uint8_t enc[HPKE_NENC], uint8_t shared[HPKE_NSECRET]);
/* Decap(enc, skR) / AuthDecap(enc, skR, pkS): pkS NULL for Decap. */
int hpke_decap(const uint8_t enc[HPKE_NENC], const uint8_t skR[HPKE_NSK], const uint8_t *pkS,
               uint8_t shared[HPKE_NSECRET]);

/* KeySchedule<ROLE>(mode, shared_secret, info, psk, psk_id) (§5.1): fills
 * ctx with seq 0. psk/psk_id are NULL/0 for base and auth modes and both
 * non-empty for psk and auth_psk. */
int hpke_key_schedule(uint8_t mode, const uint8_t shared[HPKE_NSECRET], const uint8_t *info,
                      size_t infolen, const uint8_t *psk, size_t psklen, const uint8_t *psk_id,
                      size_t psk_idlen, struct hpke_ctx *ctx);

/* Setup<MODE>S: encapsulate to pkR and run the key schedule. skS is the
 * sender's private key (auth modes only, else NULL); skE as hpke_encap. */
int hpke_setup_sender(uint8_t mode, const uint8_t pkR[HPKE_NPK], const uint8_t *info,
                      size_t infolen, const uint8_t *psk, size_t psklen, const uint8_t *psk_id,
                      size_t psk_idlen, const uint8_t *skS, const uint8_t *skE,
                      uint8_t enc[HPKE_NENC], struct hpke_ctx *ctx);
/* Setup<MODE>R: decapsulate enc with skR and run the key schedule. pkS is
 * the sender's public key (auth modes only, else NULL). */
int hpke_setup_receiver(uint8_t mode, const uint8_t enc[HPKE_NENC], const uint8_t skR[HPKE_NSK],
                        const uint8_t *info, size_t infolen, const uint8_t *psk, size_t psklen,
                        const uint8_t *psk_id, size_t psk_idlen, const uint8_t *pkS,
                        struct hpke_ctx *ctx);

/* Context Seal/Open (§5.2): ct is ptlen + HPKE_NT bytes (pt is ctlen -
 * HPKE_NT). The sequence number advances only on success. */
int hpke_seal(struct hpke_ctx *ctx, const uint8_t *aad, size_t aadlen, const uint8_t *pt,
              size_t ptlen, uint8_t *ct);
int hpke_open(struct hpke_ctx *ctx, const uint8_t *aad, size_t aadlen, const uint8_t *ct,
              size_t ctlen, uint8_t *pt);
/* Context.Export(exporter_context, L) (§5.3): L <= 255 * 32. */
int hpke_export(const struct hpke_ctx *ctx, const uint8_t *exporter_context, size_t ctxlen,
                uint8_t *out, size_t outlen);

/* Single-shot base mode (§6.1): SealBase(pkR, info, aad, pt) with a fresh
 * ephemeral key, and OpenBase(enc, skR, info, aad, ct). */
int hpke_seal_base(const uint8_t pkR[HPKE_NPK], const uint8_t *info, size_t infolen,
                   const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
                   uint8_t enc[HPKE_NENC], uint8_t *ct);
int hpke_open_base(const uint8_t enc[HPKE_NENC], const uint8_t skR[HPKE_NSK],
                   const uint8_t *info, size_t infolen, const uint8_t *aad, size_t aadlen,
                   const uint8_t *ct, size_t ctlen, uint8_t *pt);

#endif
