/* test_crypto_basics.c: crypto.h on crypto-basics.json (suite 3 entries):
 * RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret, SignWithLabel /
 * VerifyWithLabel and EncryptWithLabel / DecryptWithLabel; plus HKDF on
 * RFC 5869 test case 1 and rejection cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "vectors.h"

struct hexes {
    struct vec_bytes b[8];
    size_t n;
};

/* Decodes field key of obj into the next slot of h; NULL on failure. */
static struct vec_bytes *hx(struct hexes *h, const json_t *obj, const char *key)
{
    assert_true(h->n < 8);
    struct vec_bytes *b = &h->b[h->n++];
    if (!vec_hex(obj, key, b)) {
        fprintf(stderr, "missing hex field %s\n", key);
        return NULL;
    }
    return b;
}

static void hexes_free(struct hexes *h)
{
    for (size_t i = 0; i < h->n; i++)
        vec_bytes_free(&h->b[i]);
    h->n = 0;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

static bool check_ref_hash(const json_t *v)
{
    struct hexes h = {0};
    struct vec_bytes *value = hx(&h, v, "value"), *want = hx(&h, v, "out");
    uint8_t out[CRYPTO_HASH_LEN];
    bool ok = value && want && crypto_ref_hash(str(v, "label"), value->p, value->len, out) == 0 &&
              vec_eq("ref_hash", want, out, sizeof(out));
    hexes_free(&h);
    return ok;
}

static bool check_expand(const json_t *v)
{
    struct hexes h = {0};
    struct vec_bytes *sec = hx(&h, v, "secret"), *ctx = hx(&h, v, "context"),
                     *want = hx(&h, v, "out");
    size_t len = (size_t)vec_uint(v, "length");
    uint8_t *out = malloc(len);
    bool ok = sec && ctx && want && out &&
              crypto_expand_with_label(sec->p, sec->len, str(v, "label"), ctx->p, ctx->len,
                                       out, len) == 0 &&
              vec_eq("expand_with_label", want, out, len);
    free(out);
    hexes_free(&h);
    return ok;
}

static bool check_derive_secret(const json_t *v)
{
    struct hexes h = {0};
    struct vec_bytes *sec = hx(&h, v, "secret"), *want = hx(&h, v, "out");
    uint8_t out[CRYPTO_HASH_LEN];
    bool ok = sec && want && crypto_derive_secret(sec->p, sec->len, str(v, "label"), out) == 0 &&
              vec_eq("derive_secret", want, out, sizeof(out));
    hexes_free(&h);
    return ok;
}

static bool check_derive_tree_secret(const json_t *v)
{
    struct hexes h = {0};
    struct vec_bytes *sec = hx(&h, v, "secret"), *want = hx(&h, v, "out");
    size_t len = (size_t)vec_uint(v, "length");
    uint8_t *out = malloc(len);
    bool ok = sec && want && out &&
              crypto_derive_tree_secret(sec->p, sec->len, str(v, "label"),
                                        (uint32_t)vec_uint(v, "generation"), out, len) == 0 &&
              vec_eq("derive_tree_secret", want, out, len);
    free(out);
    hexes_free(&h);
    return ok;
}

static bool check_sign(const json_t *v)
{
    struct hexes h = {0};
    struct vec_bytes *priv = hx(&h, v, "priv"), *pub = hx(&h, v, "pub"),
                     *content = hx(&h, v, "content"), *sig = hx(&h, v, "signature");
    const char *label = str(v, "label");
    uint8_t mine[CRYPTO_SIG_LEN], pk[CRYPTO_SIGN_PUB_LEN];
    bool ok = priv && pub && content && sig && priv->len == CRYPTO_SIGN_PRIV_LEN &&
              pub->len == CRYPTO_SIGN_PUB_LEN;
    if (ok) {
        crypto_sig_public(priv->p, pk);
        ok = vec_eq("sign pub", pub, pk, sizeof(pk));
    }
    /* The vector's signature verifies; Ed25519 is deterministic, so ours
     * equals it; a flipped bit, another label or a short signature fail. */
    ok = ok && crypto_verify_with_label(pub->p, label, content->p, content->len, sig->p,
                                        sig->len) == 0;
    ok = ok && crypto_sign_with_label(priv->p, label, content->p, content->len, mine) == 0 &&
         vec_eq("signature", sig, mine, sizeof(mine));
    if (ok) {
        mine[5] ^= 1;
        ok = crypto_verify_with_label(pub->p, label, content->p, content->len, mine,
                                      sizeof(mine)) == ERR_CRYPTO;
        mine[5] ^= 1;
        ok = ok && crypto_verify_with_label(pub->p, "Other", content->p, content->len, mine,
                                            sizeof(mine)) == ERR_CRYPTO;
        ok = ok && crypto_verify_with_label(pub->p, label, content->p, content->len, mine,
                                            sizeof(mine) - 1) == ERR_CRYPTO;
    }
    hexes_free(&h);
    return ok;
}

static bool check_encrypt(const json_t *v)
{
    struct hexes h = {0};
    struct vec_bytes *priv = hx(&h, v, "priv"), *pub = hx(&h, v, "pub"),
                     *ctx = hx(&h, v, "context"), *pt = hx(&h, v, "plaintext"),
                     *kem = hx(&h, v, "kem_output"), *ct = hx(&h, v, "ciphertext");
    const char *label = str(v, "label");
    bool ok = priv && pub && ctx && pt && kem && ct && ct->len == pt->len + CRYPTO_AEAD_TAG_LEN &&
              priv->len == CRYPTO_KEM_PRIV_LEN && pub->len == CRYPTO_KEM_PUB_LEN;
    uint8_t *out = NULL, *ct2 = NULL;
    uint8_t kem2[CRYPTO_KEM_ENC_LEN];

    if (ok) {
        out = malloc(pt->len + 1);
        ct2 = malloc(ct->len);
        ok = out && ct2;
    }
    /* The vector decrypts. */
    ok = ok && crypto_decrypt_with_label(priv->p, label, ctx->p, ctx->len, kem->p, kem->len,
                                         ct->p, ct->len, out) == 0 &&
         vec_eq("decrypt_with_label", pt, out, pt->len);
    /* Our encryption round-trips (fresh ephemeral key, so not byte-equal). */
    ok = ok && crypto_encrypt_with_label(pub->p, label, ctx->p, ctx->len, pt->p, pt->len, kem2,
                                         ct2) == 0;
    ok = ok && crypto_decrypt_with_label(priv->p, label, ctx->p, ctx->len, kem2, sizeof(kem2),
                                         ct2, ct->len, out) == 0 &&
         vec_eq("round trip", pt, out, pt->len);
    /* Wrong context or a flipped ciphertext bit fails. */
    if (ok) {
        ct2[0] ^= 1;
        ok = crypto_decrypt_with_label(priv->p, label, ctx->p, ctx->len, kem2, sizeof(kem2), ct2,
                                       ct->len, out) == ERR_CRYPTO;
        ok = ok && crypto_decrypt_with_label(priv->p, label, NULL, 0, kem->p, kem->len, ct->p,
                                             ct->len, out) == ERR_CRYPTO;
        ok = ok && crypto_decrypt_with_label(priv->p, label, ctx->p, ctx->len, kem->p,
                                             kem->len - 1, ct->p, ct->len, out) == ERR_CRYPTO;
    }
    free(out);
    free(ct2);
    hexes_free(&h);
    return ok;
}

/* One entry: every part is checked, even after a failure. */
static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    bool ok = check_ref_hash(json_object_get(e, "ref_hash"));
    ok = check_expand(json_object_get(e, "expand_with_label")) && ok;
    ok = check_derive_secret(json_object_get(e, "derive_secret")) && ok;
    ok = check_derive_tree_secret(json_object_get(e, "derive_tree_secret")) && ok;
    ok = check_sign(json_object_get(e, "sign_with_label")) && ok;
    ok = check_encrypt(json_object_get(e, "encrypt_with_label")) && ok;
    return ok;
}

static void crypto_basics_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/crypto-basics.json", "crypto-basics.json",
                             VEC_SUITE_3, check_entry, NULL),
                     0);
}

/* RFC 5869 A.1 (HKDF-SHA256 basic test case). */
static void hkdf_rfc5869(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], prk[32], okm[42];
    static const uint8_t want_prk[32] = {
        0x07, 0x77, 0x09, 0x36, 0x2c, 0x2e, 0x32, 0xdf, 0x0d, 0xdc, 0x3f,
        0x0d, 0xc4, 0x7b, 0xba, 0x63, 0x90, 0xb6, 0xc7, 0x3b, 0xb5, 0x0f,
        0x9c, 0x31, 0x22, 0xec, 0x84, 0x4a, 0xd7, 0xc2, 0xb3, 0xe5};
    static const uint8_t want_okm[42] = {
        0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
        0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
        0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65};
    memset(ikm, 0x0b, sizeof(ikm));
    for (size_t i = 0; i < sizeof(salt); i++)
        salt[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(info); i++)
        info[i] = (uint8_t)(0xf0 + i);
    crypto_hkdf_extract(salt, sizeof(salt), ikm, sizeof(ikm), prk);
    assert_memory_equal(prk, want_prk, 32);
    assert_int_equal(crypto_hkdf_expand(prk, sizeof(prk), info, sizeof(info), okm, sizeof(okm)),
                     0);
    assert_memory_equal(okm, want_okm, 42);
    /* Length limits. */
    assert_int_equal(crypto_hkdf_expand(prk, sizeof(prk), info, sizeof(info), okm, 0),
                     ERR_INVALID);
    uint8_t *big = malloc(CRYPTO_HKDF_MAX_OUT + 1);
    assert_non_null(big);
    assert_int_equal(crypto_hkdf_expand(prk, 32, NULL, 0, big, CRYPTO_HKDF_MAX_OUT), 0);
    assert_int_equal(crypto_hkdf_expand(prk, 32, NULL, 0, big, CRYPTO_HKDF_MAX_OUT + 1),
                     ERR_INVALID);
    free(big);
}

static void mac_and_aead(void **state)
{
    (void)state;
    uint8_t key[32], nonce[12], tag[32], buf[64 + 16], pt[64];
    crypto_random(key, sizeof(key));
    crypto_random(nonce, sizeof(nonce));
    crypto_random(pt, sizeof(pt));
    crypto_mac(key, sizeof(key), pt, sizeof(pt), tag);
    assert_int_equal(crypto_mac_verify(key, sizeof(key), pt, sizeof(pt), tag, sizeof(tag)), 0);
    tag[31] ^= 0x80;
    assert_int_equal(crypto_mac_verify(key, sizeof(key), pt, sizeof(pt), tag, sizeof(tag)),
                     ERR_CRYPTO);
    assert_int_equal(crypto_mac_verify(key, sizeof(key), pt, sizeof(pt), tag, 16), ERR_CRYPTO);

    assert_int_equal(crypto_aead_seal(key, nonce, NULL, 0, pt, sizeof(pt), buf), 0);
    uint8_t out[64];
    assert_int_equal(crypto_aead_open(key, nonce, NULL, 0, buf, sizeof(buf), out), 0);
    assert_memory_equal(out, pt, sizeof(pt));
    buf[70] ^= 1;
    assert_int_equal(crypto_aead_open(key, nonce, NULL, 0, buf, sizeof(buf), out), ERR_CRYPTO);
    assert_int_equal(crypto_aead_open(key, nonce, NULL, 0, buf, 15, out), ERR_CRYPTO);

    /* A low-order X25519 point (all zeros) gives an all-zero DH: refused. */
    uint8_t zero[32] = {0}, shared[32];
    assert_int_equal(crypto_x25519(key, zero, shared), ERR_CRYPTO);
}

/* Argument limits of the label functions. */
static void label_limits(void **state)
{
    (void)state;
    uint8_t secret[32] = {1}, out[64], sig[CRYPTO_SIG_LEN], pub[32], priv[32];
    char longlabel[300];
    memset(longlabel, 'a', sizeof(longlabel) - 1);
    longlabel[sizeof(longlabel) - 1] = 0;

    assert_int_equal(crypto_expand_with_label(secret, 32, "x", NULL, 0, out, 0), ERR_INVALID);
    assert_int_equal(crypto_expand_with_label(secret, 32, longlabel, NULL, 0, out, 32),
                     ERR_INVALID);
    assert_int_equal(crypto_ref_hash(longlabel, secret, 32, out), ERR_INVALID);
    crypto_sig_keygen(pub, priv);
    assert_int_equal(crypto_sign_with_label(priv, longlabel, secret, 32, sig), ERR_INVALID);
    assert_int_equal(crypto_sign_with_label(priv, "L", secret, 32, sig), 0);
    assert_int_equal(crypto_verify_with_label(pub, "L", secret, 32, sig, sizeof(sig)), 0);
    assert_int_equal(crypto_verify_with_label(pub, longlabel, secret, 32, sig, sizeof(sig)),
                     ERR_INVALID);
    /* Byte labels may hold NULs and differ from the truncated C string. */
    static const uint8_t nul_label[] = {'a', 0, 'b'};
    uint8_t a[32], b[32];
    assert_int_equal(
        crypto_expand_with_label_raw(secret, 32, nul_label, sizeof(nul_label), NULL, 0, a, 32), 0);
    assert_int_equal(crypto_expand_with_label(secret, 32, "a", NULL, 0, b, 32), 0);
    assert_memory_not_equal(a, b, 32);
    /* DeriveSecret is ExpandWithLabel with an empty context and Nh bytes. */
    assert_int_equal(crypto_derive_secret(secret, 32, "x", a), 0);
    assert_int_equal(crypto_expand_with_label(secret, 32, "x", NULL, 0, b, 32), 0);
    assert_memory_equal(a, b, 32);
    /* Two-part hash equals the one-shot hash of the concatenation. */
    uint8_t cat[6] = {1, 2, 3, 4, 5, 6};
    crypto_sha256(cat, sizeof(cat), a);
    crypto_sha256_2(cat, 2, cat + 2, 4, b);
    assert_memory_equal(a, b, 32);
    /* Guarded memory. */
    uint8_t *g = crypto_secure_alloc(100);
    assert_non_null(g);
    memset(g, 0x55, 100);
    crypto_secure_free(g);
    crypto_secure_free(NULL);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crypto_basics_vectors),
        cmocka_unit_test(hkdf_rfc5869),
        cmocka_unit_test(mac_and_aead),
        cmocka_unit_test(label_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
