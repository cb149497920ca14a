/*
 * crypto.c: MLS suite-3 primitives on libsodium 1.0.18 (see crypto.h).
 *
 * libsodium 1.0.18 has HMAC-SHA256 but no HKDF, so HKDF (RFC 5869) is
 * built here on crypto_auth_hmacsha256_*. The MLS label structures are
 * serialized with tls.h's writer into a heap buffer that is wiped on
 * release (tls_writer_reset), since KDFLabel contexts may be secret.
 */
#include "crypto.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "hpke.h"
#include "tls.h"

#define MLS_LABEL_PREFIX "MLS 1.0 "
/* Labels are protocol constants; anything longer is a caller bug or abuse. */
#define MAX_LABEL 255

int crypto_init(void)
{
    /* sodium_init returns 0 on first success, 1 if already initialised. */
    return sodium_init() < 0 ? ERR_INTERNAL : 0;
}

void crypto_random(uint8_t *buf, size_t len)
{
    randombytes_buf(buf, len);
}

void crypto_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        sodium_memzero(p, len);
}

int crypto_memeq(const uint8_t *a, const uint8_t *b, size_t len)
{
    if (len == 0)
        return 0;
    return sodium_memcmp(a, b, len) == 0 ? 0 : ERR_CRYPTO;
}

void *crypto_secure_alloc(size_t len)
{
    return sodium_malloc(len);
}

void crypto_secure_free(void *p)
{
    /* sodium_free wipes the block before unmapping it; NULL is a no-op. */
    sodium_free(p);
}

void crypto_sha256(const uint8_t *in, size_t len, uint8_t out[CRYPTO_HASH_LEN])
{
    crypto_hash_sha256(out, in, len);
}

void crypto_sha256_2(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                     uint8_t out[CRYPTO_HASH_LEN])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, a, alen);
    crypto_hash_sha256_update(&st, b, blen);
    crypto_hash_sha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void crypto_mac(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                uint8_t out[CRYPTO_MAC_LEN])
{
    crypto_auth_hmacsha256_state st;
    /* The _init form takes any key length (longer keys are hashed). */
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, data, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

int crypto_mac_verify(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
                      const uint8_t *tag, size_t taglen)
{
    uint8_t want[CRYPTO_MAC_LEN];
    int rc = ERR_CRYPTO;

    if (taglen != CRYPTO_MAC_LEN)
        goto out;
    crypto_mac(key, keylen, data, len, want);
    rc = crypto_memeq(want, tag, CRYPTO_MAC_LEN);
out:
    sodium_memzero(want, sizeof(want));
    return rc;
}

void crypto_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
                         size_t ikmlen, uint8_t prk[CRYPTO_HASH_LEN])
{
    static const uint8_t zeros[CRYPTO_HASH_LEN];

    if (salt == NULL || saltlen == 0) {
        salt = zeros;
        saltlen = sizeof(zeros);
    }
    crypto_mac(salt, saltlen, ikm, ikmlen, prk);
}

int crypto_hkdf_expand(const uint8_t *prk, size_t prklen, const uint8_t *info, size_t infolen,
                       uint8_t *out, size_t outlen)
{
    crypto_auth_hmacsha256_state base, st;
    uint8_t t[CRYPTO_HASH_LEN];
    size_t done = 0;
    uint8_t ctr = 0;

    if (outlen == 0 || outlen > CRYPTO_HKDF_MAX_OUT)
        return ERR_INVALID;
    /* Key the HMAC once; copy the keyed state for each block. */
    crypto_auth_hmacsha256_init(&base, prk, prklen);
    while (done < outlen) {
        size_t n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);
        ctr++;
        st = base;
        if (ctr > 1)
            crypto_auth_hmacsha256_update(&st, t, sizeof(t));
        if (infolen > 0)
            crypto_auth_hmacsha256_update(&st, info, infolen);
        crypto_auth_hmacsha256_update(&st, &ctr, 1);
        crypto_auth_hmacsha256_final(&st, t);
        memcpy(out + done, t, n);
        done += n;
    }
    sodium_memzero(t, sizeof(t));
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(&base, sizeof(base));
    return 0;
}

/* Writes opaque label<V> = "MLS 1.0 " + label. */
static void put_mls_label_raw(struct tls_writer *w, const uint8_t *label, size_t llen)
{
    size_t plen = sizeof(MLS_LABEL_PREFIX) - 1;

    tls_put_varint(w, plen + llen);
    tls_put_fixed(w, (const uint8_t *)MLS_LABEL_PREFIX, plen);
    tls_put_fixed(w, label, llen);
}

static void put_mls_label(struct tls_writer *w, const char *label)
{
    put_mls_label_raw(w, (const uint8_t *)label, strlen(label));
}

int crypto_expand_with_label_raw(const uint8_t *secret, size_t secretlen, const uint8_t *label,
                                 size_t label_len, const uint8_t *context, size_t ctxlen,
                                 uint8_t *out, size_t outlen)
{
    struct tls_writer w;
    int rc;

    if (outlen == 0 || outlen > UINT16_MAX || outlen > CRYPTO_HKDF_MAX_OUT ||
        label_len > MAX_LABEL - (sizeof(MLS_LABEL_PREFIX) - 1))
        return ERR_INVALID;
    tls_writer_init(&w, 0);
    /* KDFLabel { uint16 length; opaque label<V>; opaque context<V>; } */
    tls_put_u16(&w, (uint16_t)outlen);
    put_mls_label_raw(&w, label, label_len);
    tls_put_opaque(&w, context, ctxlen);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_hkdf_expand(secret, secretlen, w.buf, w.len, out, outlen);
    tls_writer_reset(&w);
    return rc;
}

int crypto_expand_with_label(const uint8_t *secret, size_t secretlen, const char *label,
                             const uint8_t *context, size_t ctxlen, uint8_t *out, size_t outlen)
{
    return crypto_expand_with_label_raw(secret, secretlen, (const uint8_t *)label,
                                        strlen(label), context, ctxlen, out, outlen);
}

int crypto_derive_secret(const uint8_t *secret, size_t secretlen, const char *label,
                         uint8_t out[CRYPTO_HASH_LEN])
{
    return crypto_expand_with_label(secret, secretlen, label, NULL, 0, out, CRYPTO_HASH_LEN);
}

int crypto_derive_tree_secret(const uint8_t *secret, size_t secretlen, const char *label,
                              uint32_t generation, uint8_t *out, size_t outlen)
{
    uint8_t ctx[4] = {(uint8_t)(generation >> 24), (uint8_t)(generation >> 16),
                      (uint8_t)(generation >> 8), (uint8_t)generation};

    return crypto_expand_with_label(secret, secretlen, label, ctx, sizeof(ctx), out, outlen);
}

int crypto_ref_hash(const char *label, const uint8_t *value, size_t len,
                    uint8_t out[CRYPTO_HASH_LEN])
{
    struct tls_writer w;
    size_t llen = strlen(label);
    int rc;

    if (llen > MAX_LABEL)
        return ERR_INVALID;
    tls_writer_init(&w, 0);
    /* RefHashInput { opaque label<V>; opaque value<V>; } */
    tls_put_opaque(&w, (const uint8_t *)label, llen);
    tls_put_opaque(&w, value, len);
    rc = tls_writer_error(&w);
    if (rc == 0)
        crypto_sha256(w.buf, w.len, out);
    tls_writer_reset(&w);
    return rc;
}

int crypto_make_keypackage_ref(const uint8_t *keypackage, size_t len,
                               uint8_t out[CRYPTO_HASH_LEN])
{
    return crypto_ref_hash("MLS 1.0 KeyPackage Reference", keypackage, len, out);
}

int crypto_make_proposal_ref(const uint8_t *auth_content, size_t len,
                             uint8_t out[CRYPTO_HASH_LEN])
{
    return crypto_ref_hash("MLS 1.0 Proposal Reference", auth_content, len, out);
}

void crypto_sig_keygen(uint8_t pub[CRYPTO_SIGN_PUB_LEN], uint8_t priv[CRYPTO_SIGN_PRIV_LEN])
{
    randombytes_buf(priv, CRYPTO_SIGN_PRIV_LEN);
    crypto_sig_public(priv, pub);
}

void crypto_sig_public(const uint8_t priv[CRYPTO_SIGN_PRIV_LEN],
                       uint8_t pub[CRYPTO_SIGN_PUB_LEN])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];

    crypto_sign_seed_keypair(pub, sk, priv);
    sodium_memzero(sk, sizeof(sk));
}

/* SignContent { opaque label<V> = "MLS 1.0 " + label; opaque content<V>; } */
static int sign_content(struct tls_writer *w, const char *label, const uint8_t *content,
                        size_t len)
{
    tls_writer_init(w, 0);
    if (strlen(label) > MAX_LABEL)
        return ERR_INVALID;
    put_mls_label(w, label);
    tls_put_opaque(w, content, len);
    return tls_writer_error(w);
}

int crypto_sign_with_label(const uint8_t priv[CRYPTO_SIGN_PRIV_LEN], const char *label,
                           const uint8_t *content, size_t len, uint8_t sig[CRYPTO_SIG_LEN])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    struct tls_writer w;
    int rc;

    rc = sign_content(&w, label, content, len);
    if (rc != 0)
        goto out;
    crypto_sign_seed_keypair(pk, sk, priv);
    if (crypto_sign_detached(sig, NULL, w.buf, w.len, sk) != 0)
        rc = ERR_INTERNAL;
out:
    sodium_memzero(sk, sizeof(sk));
    tls_writer_reset(&w);
    return rc;
}

int crypto_verify_with_label(const uint8_t pub[CRYPTO_SIGN_PUB_LEN], const char *label,
                             const uint8_t *content, size_t len, const uint8_t *sig,
                             size_t siglen)
{
    struct tls_writer w;
    int rc;

    rc = sign_content(&w, label, content, len);
    if (rc != 0)
        goto out;
    if (siglen != CRYPTO_SIG_LEN ||
        crypto_sign_verify_detached(sig, w.buf, w.len, pub) != 0)
        rc = ERR_CRYPTO;
out:
    tls_writer_reset(&w);
    return rc;
}

int crypto_aead_seal(const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                     const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN], const uint8_t *aad,
                     size_t aadlen, const uint8_t *pt, size_t ptlen, uint8_t *ct)
{
    if (ptlen > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return ERR_INVALID;
    if (crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, pt, ptlen, aad, aadlen, NULL, nonce,
                                                  key) != 0)
        return ERR_INTERNAL;
    return 0;
}

int crypto_aead_open(const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                     const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN], const uint8_t *aad,
                     size_t aadlen, const uint8_t *ct, size_t ctlen, uint8_t *pt)
{
    if (ctlen < CRYPTO_AEAD_TAG_LEN)
        return ERR_CRYPTO;
    /* libsodium checks the tag before decrypting anything and clears pt
     * when the check fails, so no unauthenticated plaintext is released. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, ctlen, aad, aadlen, nonce,
                                                  key) != 0)
        return ERR_CRYPTO;
    return 0;
}

int crypto_x25519(const uint8_t priv[CRYPTO_KEM_PRIV_LEN], const uint8_t pub[CRYPTO_KEM_PUB_LEN],
                  uint8_t shared[32])
{
    /* crypto_scalarmult fails (-1) exactly when the output is all zeros. */
    if (crypto_scalarmult(shared, priv, pub) != 0) {
        sodium_memzero(shared, 32);
        return ERR_CRYPTO;
    }
    return 0;
}

void crypto_x25519_public(const uint8_t priv[CRYPTO_KEM_PRIV_LEN],
                          uint8_t pub[CRYPTO_KEM_PUB_LEN])
{
    crypto_scalarmult_base(pub, priv);
}

/* EncryptContext { opaque label<V> = "MLS 1.0 " + label; opaque context<V>; } */
static int encrypt_context(struct tls_writer *w, const char *label, const uint8_t *context,
                           size_t ctxlen)
{
    tls_writer_init(w, 0);
    if (strlen(label) > MAX_LABEL)
        return ERR_INVALID;
    put_mls_label(w, label);
    tls_put_opaque(w, context, ctxlen);
    return tls_writer_error(w);
}

int crypto_encrypt_with_label(const uint8_t pub[CRYPTO_KEM_PUB_LEN], const char *label,
                              const uint8_t *context, size_t ctxlen, const uint8_t *pt,
                              size_t ptlen, uint8_t kem_output[CRYPTO_KEM_ENC_LEN], uint8_t *ct)
{
    struct tls_writer w;
    int rc;

    rc = encrypt_context(&w, label, context, ctxlen);
    if (rc == 0)
        rc = hpke_seal_base(pub, w.buf, w.len, NULL, 0, pt, ptlen, kem_output, ct);
    tls_writer_reset(&w);
    return rc;
}

int crypto_decrypt_with_label(const uint8_t priv[CRYPTO_KEM_PRIV_LEN], const char *label,
                              const uint8_t *context, size_t ctxlen, const uint8_t *kem_output,
                              size_t kemlen, const uint8_t *ct, size_t ctlen, uint8_t *pt)
{
    struct tls_writer w;
    int rc;

    if (kemlen != CRYPTO_KEM_ENC_LEN || ctlen < CRYPTO_AEAD_TAG_LEN)
        return ERR_CRYPTO;
    rc = encrypt_context(&w, label, context, ctxlen);
    if (rc == 0)
        rc = hpke_open_base(kem_output, priv, w.buf, w.len, NULL, 0, ct, ctlen, pt);
    tls_writer_reset(&w);
    return rc;
}
