/*
 * hpke.c: RFC 9180 HPKE for DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305 (see hpke.h). Built on crypto.h's wrappers only.
 *
 * Labeled KDF inputs (§4):
 * | function        | input to the KDF                                        |
 * |-----------------|---------------------------------------------------------|
 * | LabeledExtract  | Extract(salt, "HPKE-v1" || suite_id || label || ikm)    |
 * | LabeledExpand   | Expand(prk, I2OSP(L,2) || "HPKE-v1" || suite_id ||      |
 * |                 |        label || info, L)                                |
 * suite_id is "KEM" || kem_id inside the KEM, and
 * "HPKE" || kem_id || kdf_id || aead_id in the key schedule.
 */
#include "hpke.h"

#include <stdbool.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "tls.h"

static const uint8_t KEM_SUITE[] = {'K', 'E', 'M', 0x00, 0x20};
static const uint8_t HPKE_SUITE[] = {'H', 'P', 'K', 'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03};
#define V1 "HPKE-v1"

struct suite {
    const uint8_t *id;
    size_t len;
};

static const struct suite kem_suite = {KEM_SUITE, sizeof(KEM_SUITE)};
static const struct suite hpke_suite = {HPKE_SUITE, sizeof(HPKE_SUITE)};

static void put_prefix(struct tls_writer *w, const struct suite *s, const char *label)
{
    tls_put_fixed(w, (const uint8_t *)V1, sizeof(V1) - 1);
    tls_put_fixed(w, s->id, s->len);
    tls_put_fixed(w, (const uint8_t *)label, strlen(label));
}

static int labeled_extract(const struct suite *s, const uint8_t *salt, size_t saltlen,
                           const char *label, const uint8_t *ikm, size_t ikmlen,
                           uint8_t prk[HPKE_NH])
{
    struct tls_writer w;
    int rc;

    tls_writer_init(&w, 0);
    put_prefix(&w, s, label);
    tls_put_fixed(&w, ikm, ikmlen);
    rc = tls_writer_error(&w);
    if (rc == 0)
        crypto_hkdf_extract(salt, saltlen, w.buf, w.len, prk);
    tls_writer_reset(&w);
    return rc;
}

static int labeled_expand(const struct suite *s, const uint8_t *prk, const char *label,
                          const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
    struct tls_writer w;
    int rc;

    if (outlen == 0 || outlen > CRYPTO_HKDF_MAX_OUT)
        return ERR_INVALID;
    tls_writer_init(&w, 0);
    tls_put_u16(&w, (uint16_t)outlen);
    put_prefix(&w, s, label);
    tls_put_fixed(&w, info, infolen);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_hkdf_expand(prk, HPKE_NH, w.buf, w.len, out, outlen);
    tls_writer_reset(&w);
    return rc;
}

void hpke_ctx_wipe(struct hpke_ctx *ctx)
{
    crypto_wipe(ctx, sizeof(*ctx));
}

int hpke_derive_keypair(const uint8_t *ikm, size_t ikmlen, uint8_t sk[HPKE_NSK],
                        uint8_t pk[HPKE_NPK])
{
    uint8_t prk[HPKE_NH];
    int rc;

    /* §7.1.3: ikm SHOULD have at least Nsk bytes of entropy. */
    if (ikmlen < HPKE_NSK)
        return ERR_INVALID;
    rc = labeled_extract(&kem_suite, NULL, 0, "dkp_prk", ikm, ikmlen, prk);
    if (rc == 0)
        rc = labeled_expand(&kem_suite, prk, "sk", NULL, 0, sk, HPKE_NSK);
    if (rc == 0)
        crypto_x25519_public(sk, pk);
    else
        crypto_wipe(sk, HPKE_NSK);
    crypto_wipe(prk, sizeof(prk));
    return rc;
}

int hpke_generate_keypair(uint8_t sk[HPKE_NSK], uint8_t pk[HPKE_NPK])
{
    uint8_t ikm[HPKE_NSK];
    int rc;

    crypto_random(ikm, sizeof(ikm));
    rc = hpke_derive_keypair(ikm, sizeof(ikm), sk, pk);
    crypto_wipe(ikm, sizeof(ikm));
    return rc;
}

/* ExtractAndExpand(dh, kem_context) (§4.1). */
static int extract_and_expand(const uint8_t *dh, size_t dhlen, const uint8_t *kem_context,
                              size_t kclen, uint8_t shared[HPKE_NSECRET])
{
    uint8_t prk[HPKE_NH];
    int rc;

    rc = labeled_extract(&kem_suite, NULL, 0, "eae_prk", dh, dhlen, prk);
    if (rc == 0)
        rc = labeled_expand(&kem_suite, prk, "shared_secret", kem_context, kclen, shared,
                            HPKE_NSECRET);
    crypto_wipe(prk, sizeof(prk));
    return rc;
}

int hpke_encap(const uint8_t pkR[HPKE_NPK], const uint8_t *skS, const uint8_t *skE,
               uint8_t enc[HPKE_NENC], uint8_t shared[HPKE_NSECRET])
{
    uint8_t ske[HPKE_NSK], pke[HPKE_NPK];
    uint8_t dh[64];
    uint8_t kem_context[3 * HPKE_NPK];
    size_t dhlen = 32, kclen = 2 * HPKE_NPK;
    int rc;

    if (skE != NULL) {
        memcpy(ske, skE, sizeof(ske));
        crypto_x25519_public(ske, pke);
        rc = 0;
    } else {
        rc = hpke_generate_keypair(ske, pke);
    }
    if (rc != 0)
        goto out;
    rc = crypto_x25519(ske, pkR, dh);
    if (rc != 0)
        goto out;
    memcpy(kem_context, pke, HPKE_NPK);
    memcpy(kem_context + HPKE_NPK, pkR, HPKE_NPK);
    if (skS != NULL) {
        /* AuthEncap: dh = DH(skE, pkR) || DH(skS, pkR);
         * kem_context = enc || pkRm || pkSm. */
        rc = crypto_x25519(skS, pkR, dh + 32);
        if (rc != 0)
            goto out;
        dhlen = 64;
        crypto_x25519_public(skS, kem_context + 2 * HPKE_NPK);
        kclen = 3 * HPKE_NPK;
    }
    rc = extract_and_expand(dh, dhlen, kem_context, kclen, shared);
    if (rc == 0)
        memcpy(enc, pke, HPKE_NENC);
out:
    crypto_wipe(ske, sizeof(ske));
    crypto_wipe(dh, sizeof(dh));
    return rc;
}

int hpke_decap(const uint8_t enc[HPKE_NENC], const uint8_t skR[HPKE_NSK], const uint8_t *pkS,
               uint8_t shared[HPKE_NSECRET])
{
    uint8_t dh[64];
    uint8_t kem_context[3 * HPKE_NPK];
    size_t dhlen = 32, kclen = 2 * HPKE_NPK;
    int rc;

    rc = crypto_x25519(skR, enc, dh);
    if (rc != 0)
        goto out;
    memcpy(kem_context, enc, HPKE_NENC);
    crypto_x25519_public(skR, kem_context + HPKE_NENC);
    if (pkS != NULL) {
        rc = crypto_x25519(skR, pkS, dh + 32);
        if (rc != 0)
            goto out;
        dhlen = 64;
        memcpy(kem_context + 2 * HPKE_NPK, pkS, HPKE_NPK);
        kclen = 3 * HPKE_NPK;
    }
    rc = extract_and_expand(dh, dhlen, kem_context, kclen, shared);
out:
    crypto_wipe(dh, sizeof(dh));
    return rc;
}

/* VerifyPSKInputs (§5.1). */
static int verify_psk_inputs(uint8_t mode, size_t psklen, size_t psk_idlen)
{
    bool got_psk = psklen > 0, got_id = psk_idlen > 0;

    if (mode > HPKE_MODE_AUTH_PSK)
        return ERR_INVALID;
    if (got_psk != got_id)
        return ERR_INVALID;
    if (got_psk && (mode == HPKE_MODE_BASE || mode == HPKE_MODE_AUTH))
        return ERR_INVALID;
    if (!got_psk && (mode == HPKE_MODE_PSK || mode == HPKE_MODE_AUTH_PSK))
        return ERR_INVALID;
    return 0;
}

static bool is_auth(uint8_t mode)
{
    return mode == HPKE_MODE_AUTH || mode == HPKE_MODE_AUTH_PSK;
}

int hpke_key_schedule(uint8_t mode, const uint8_t shared[HPKE_NSECRET], const uint8_t *info,
                      size_t infolen, const uint8_t *psk, size_t psklen, const uint8_t *psk_id,
                      size_t psk_idlen, struct hpke_ctx *ctx)
{
    uint8_t ksc[1 + 2 * HPKE_NH];
    uint8_t secret[HPKE_NH];
    int rc;

    memset(ctx, 0, sizeof(*ctx));
    rc = verify_psk_inputs(mode, psklen, psk_idlen);
    if (rc != 0)
        return rc;
    /* key_schedule_context = mode || psk_id_hash || info_hash */
    ksc[0] = mode;
    rc = labeled_extract(&hpke_suite, NULL, 0, "psk_id_hash", psk_id, psk_idlen, ksc + 1);
    if (rc == 0)
        rc = labeled_extract(&hpke_suite, NULL, 0, "info_hash", info, infolen,
                             ksc + 1 + HPKE_NH);
    if (rc == 0)
        rc = labeled_extract(&hpke_suite, shared, HPKE_NSECRET, "secret", psk, psklen, secret);
    if (rc == 0)
        rc = labeled_expand(&hpke_suite, secret, "key", ksc, sizeof(ksc), ctx->key, HPKE_NK);
    if (rc == 0)
        rc = labeled_expand(&hpke_suite, secret, "base_nonce", ksc, sizeof(ksc),
                            ctx->base_nonce, HPKE_NN);
    if (rc == 0)
        rc = labeled_expand(&hpke_suite, secret, "exp", ksc, sizeof(ksc), ctx->exporter_secret,
                            HPKE_NH);
    ctx->seq = 0;
    if (rc != 0)
        hpke_ctx_wipe(ctx);
    crypto_wipe(secret, sizeof(secret));
    return rc;
}

int hpke_setup_sender(uint8_t mode, const uint8_t pkR[HPKE_NPK], const uint8_t *info,
                      size_t infolen, const uint8_t *psk, size_t psklen, const uint8_t *psk_id,
                      size_t psk_idlen, const uint8_t *skS, const uint8_t *skE,
                      uint8_t enc[HPKE_NENC], struct hpke_ctx *ctx)
{
    uint8_t shared[HPKE_NSECRET];
    int rc;

    memset(ctx, 0, sizeof(*ctx));
    if (is_auth(mode) != (skS != NULL))
        return ERR_INVALID;
    rc = verify_psk_inputs(mode, psklen, psk_idlen);
    if (rc == 0)
        rc = hpke_encap(pkR, skS, skE, enc, shared);
    if (rc == 0)
        rc = hpke_key_schedule(mode, shared, info, infolen, psk, psklen, psk_id, psk_idlen,
                               ctx);
    crypto_wipe(shared, sizeof(shared));
    return rc;
}

int hpke_setup_receiver(uint8_t mode, const uint8_t enc[HPKE_NENC], const uint8_t skR[HPKE_NSK],
                        const uint8_t *info, size_t infolen, const uint8_t *psk, size_t psklen,
                        const uint8_t *psk_id, size_t psk_idlen, const uint8_t *pkS,
                        struct hpke_ctx *ctx)
{
    uint8_t shared[HPKE_NSECRET];
    int rc;

    memset(ctx, 0, sizeof(*ctx));
    if (is_auth(mode) != (pkS != NULL))
        return ERR_INVALID;
    rc = verify_psk_inputs(mode, psklen, psk_idlen);
    if (rc == 0)
        rc = hpke_decap(enc, skR, pkS, shared);
    if (rc == 0)
        rc = hpke_key_schedule(mode, shared, info, infolen, psk, psklen, psk_id, psk_idlen,
                               ctx);
    crypto_wipe(shared, sizeof(shared));
    return rc;
}

/* ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn). */
static void compute_nonce(const struct hpke_ctx *ctx, uint8_t nonce[HPKE_NN])
{
    memcpy(nonce, ctx->base_nonce, HPKE_NN);
    for (size_t i = 0; i < 8; i++)
        nonce[HPKE_NN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

int hpke_seal(struct hpke_ctx *ctx, const uint8_t *aad, size_t aadlen, const uint8_t *pt,
              size_t ptlen, uint8_t *ct)
{
    uint8_t nonce[HPKE_NN];
    int rc;

    /* Nn is 12 bytes, so the RFC's limit (2^96 - 1) is beyond a uint64;
     * refuse to wrap instead. */
    if (ctx->seq == UINT64_MAX)
        return ERR_LIMIT;
    compute_nonce(ctx, nonce);
    rc = crypto_aead_seal(ctx->key, nonce, aad, aadlen, pt, ptlen, ct);
    if (rc == 0)
        ctx->seq++;
    return rc;
}

int hpke_open(struct hpke_ctx *ctx, const uint8_t *aad, size_t aadlen, const uint8_t *ct,
              size_t ctlen, uint8_t *pt)
{
    uint8_t nonce[HPKE_NN];
    int rc;

    if (ctx->seq == UINT64_MAX)
        return ERR_LIMIT;
    compute_nonce(ctx, nonce);
    rc = crypto_aead_open(ctx->key, nonce, aad, aadlen, ct, ctlen, pt);
    if (rc == 0)
        ctx->seq++;
    return rc;
}

int hpke_export(const struct hpke_ctx *ctx, const uint8_t *exporter_context, size_t ctxlen,
                uint8_t *out, size_t outlen)
{
    return labeled_expand(&hpke_suite, ctx->exporter_secret, "sec", exporter_context, ctxlen,
                          out, outlen);
}

int hpke_seal_base(const uint8_t pkR[HPKE_NPK], const uint8_t *info, size_t infolen,
                   const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
                   uint8_t enc[HPKE_NENC], uint8_t *ct)
{
    struct hpke_ctx ctx;
    int rc;

    rc = hpke_setup_sender(HPKE_MODE_BASE, pkR, info, infolen, NULL, 0, NULL, 0, NULL, NULL,
                           enc, &ctx);
    if (rc == 0)
        rc = hpke_seal(&ctx, aad, aadlen, pt, ptlen, ct);
    hpke_ctx_wipe(&ctx);
    return rc;
}

int hpke_open_base(const uint8_t enc[HPKE_NENC], const uint8_t skR[HPKE_NSK],
                   const uint8_t *info, size_t infolen, const uint8_t *aad, size_t aadlen,
                   const uint8_t *ct, size_t ctlen, uint8_t *pt)
{
    struct hpke_ctx ctx;
    int rc;

    rc = hpke_setup_receiver(HPKE_MODE_BASE, enc, skR, info, infolen, NULL, 0, NULL, 0, NULL,
                             &ctx);
    if (rc == 0)
        rc = hpke_open(&ctx, aad, aadlen, ct, ctlen, pt);
    hpke_ctx_wipe(&ctx);
    return rc;
}
