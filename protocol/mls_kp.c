/*
 * mls_kp.c: our own KeyPackages with their private keys. See mls_kp.h.
 *
 * Private store form (mls_kp_save / mls_kp_load), TLS presentation:
 * | field       | type                  |
 * |-------------|-----------------------|
 * | version     | uint8 = 1             |
 * | key_package | opaque<V> (KeyPackage)|
 * | init_priv   | opaque[32]            |
 * | enc_priv    | opaque[32]            |
 * | sig_priv    | opaque[32]            |
 * | used        | uint8 (0 or 1)        |
 */
#include "mls_kp.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hpke.h"
#include "mls_keypackage.h"
#include "mls_struct.h"
#include "tls.h"

#define KP_STATE_VERSION 1

struct mls_kp {
    struct mls_key_package kp;
    uint8_t ref[MLS_REF_LEN];
    uint8_t init_priv[CRYPTO_KEM_PRIV_LEN];
    uint8_t enc_priv[CRYPTO_KEM_PRIV_LEN];
    uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN];
    bool used;
};

static void device_suffix(const uint8_t sig_pub[CRYPTO_SIGN_PUB_LEN],
                          char out[MLS_KP_DEVICE_SUFFIX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[CRYPTO_HASH_LEN];
    crypto_sha256(sig_pub, CRYPTO_SIGN_PUB_LEN, h);
    out[0] = '/';
    out[1] = 'd';
    out[2] = '_';
    for (int i = 0; i < 8; i++) {
        out[3 + 2 * i] = hex[h[i] >> 4];
        out[4 + 2 * i] = hex[h[i] & 15];
    }
    out[MLS_KP_DEVICE_SUFFIX_LEN] = 0;
}

static bool user_ok(const uint8_t *u, size_t len)
{
    size_t at = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (u[i] == '/' || u[i] < 0x21 || u[i] == 0x7f)
            return false;
        if (u[i] == '@')
            at++;
    }
    return at == 1 && u[0] != '@' && u[len - 1] != '@';
}

int mls_kp_identity(const char *user, const uint8_t sig_pub[CRYPTO_SIGN_PUB_LEN], uint8_t *out,
                    size_t cap, size_t *len)
{
    char suf[MLS_KP_DEVICE_SUFFIX_LEN + 1];
    size_t ul = strlen(user);
    if (!user_ok((const uint8_t *)user, ul))
        return ERR_INVALID;
    if (ul + MLS_KP_DEVICE_SUFFIX_LEN > MLS_KP_MAX_IDENTITY || ul + MLS_KP_DEVICE_SUFFIX_LEN > cap)
        return ERR_TOO_BIG;
    device_suffix(sig_pub, suf);
    memcpy(out, user, ul);
    memcpy(out + ul, suf, MLS_KP_DEVICE_SUFFIX_LEN);
    *len = ul + MLS_KP_DEVICE_SUFFIX_LEN;
    return 0;
}

int mls_kp_identity_check(const uint8_t *identity, size_t len, const uint8_t *sig_pub,
                          size_t sig_pub_len)
{
    char suf[MLS_KP_DEVICE_SUFFIX_LEN + 1];
    if (sig_pub_len != CRYPTO_SIGN_PUB_LEN || len <= MLS_KP_DEVICE_SUFFIX_LEN ||
        len > MLS_KP_MAX_IDENTITY)
        return ERR_INVALID;
    if (!user_ok(identity, len - MLS_KP_DEVICE_SUFFIX_LEN))
        return ERR_INVALID;
    device_suffix(sig_pub, suf);
    if (memcmp(identity + len - MLS_KP_DEVICE_SUFFIX_LEN, suf, MLS_KP_DEVICE_SUFFIX_LEN) != 0)
        return ERR_INVALID;
    return 0;
}

void mls_kp_free(struct mls_kp *kp)
{
    if (!kp)
        return;
    mls_key_package_free(&kp->kp);
    crypto_wipe(kp, sizeof(*kp));
    free(kp);
}

static int u16_list(struct mls_u16_list *l, const uint16_t *v, size_t n)
{
    l->v = NULL;
    l->n = 0;
    if (n == 0)
        return 0;
    l->v = malloc(n * sizeof(*v));
    if (!l->v)
        return ERR_NOMEM;
    memcpy(l->v, v, n * sizeof(*v));
    l->n = n;
    return 0;
}

static int sign_tbs(struct tls_writer *w, const uint8_t *priv, const char *label,
                    struct mls_bytes *sig)
{
    uint8_t s[CRYPTO_SIG_LEN];
    int rc = tls_writer_error(w);
    if (rc == 0)
        rc = crypto_sign_with_label(priv, label, w->buf, w->len, s);
    tls_writer_reset(w);
    if (rc == 0)
        rc = mls_bytes_set(sig, s, sizeof(s));
    return rc;
}

int mls_kp_create(const uint8_t *identity, size_t identity_len,
                  const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN], uint64_t not_before,
                  uint64_t not_after, struct mls_kp **out)
{
    static const uint16_t versions[] = {1}, suites[] = {3}, creds[] = {MLS_CREDENTIAL_BASIC};
    struct mls_kp *k = calloc(1, sizeof(*k));
    struct mls_leaf_node *ln;
    uint8_t init_pub[CRYPTO_KEM_PUB_LEN], enc_pub[CRYPTO_KEM_PUB_LEN], sig_pub[CRYPTO_SIGN_PUB_LEN];
    struct tls_writer w;
    int rc;

    *out = NULL;
    if (!k)
        return ERR_NOMEM;
    if (identity_len == 0 || identity_len > MLS_KP_MAX_IDENTITY || not_before > not_after) {
        rc = ERR_INVALID;
        goto out;
    }
    memcpy(k->sig_priv, sig_priv, CRYPTO_SIGN_PRIV_LEN);
    crypto_sig_public(sig_priv, sig_pub);
    if ((rc = hpke_generate_keypair(k->init_priv, init_pub)) != 0 ||
        (rc = hpke_generate_keypair(k->enc_priv, enc_pub)) != 0)
        goto out;
    k->kp.version = 1;
    k->kp.cipher_suite = 3;
    ln = &k->kp.leaf_node;
    ln->credential.credential_type = MLS_CREDENTIAL_BASIC;
    ln->leaf_node_source = MLS_LEAF_SOURCE_KEY_PACKAGE;
    ln->lifetime.not_before = not_before;
    ln->lifetime.not_after = not_after;
    if ((rc = mls_bytes_set(&k->kp.init_key, init_pub, sizeof(init_pub))) != 0 ||
        (rc = mls_bytes_set(&ln->encryption_key, enc_pub, sizeof(enc_pub))) != 0 ||
        (rc = mls_bytes_set(&ln->signature_key, sig_pub, sizeof(sig_pub))) != 0 ||
        (rc = mls_bytes_set(&ln->credential.identity, identity, identity_len)) != 0 ||
        (rc = u16_list(&ln->capabilities.versions, versions, 1)) != 0 ||
        (rc = u16_list(&ln->capabilities.cipher_suites, suites, 1)) != 0 ||
        (rc = u16_list(&ln->capabilities.credentials, creds, 1)) != 0)
        goto out;
    tls_writer_init(&w, 0);
    mls_leaf_node_encode_tbs(&w, ln, NULL, 0, 0);
    if ((rc = sign_tbs(&w, sig_priv, "LeafNodeTBS", &ln->signature)) != 0)
        goto out;
    tls_writer_init(&w, 0);
    mls_key_package_encode_tbs(&w, &k->kp);
    if ((rc = sign_tbs(&w, sig_priv, "KeyPackageTBS", &k->kp.signature)) != 0)
        goto out;
    if ((rc = mls_keypackage_ref(&k->kp, k->ref)) != 0)
        goto out;
    *out = k;
    k = NULL;
out:
    mls_kp_free(k);
    return rc;
}

static int keys_match(const struct mls_kp *k)
{
    uint8_t pub[32];
    const struct mls_leaf_node *ln = &k->kp.leaf_node;
    if (k->kp.init_key.len != 32 || ln->encryption_key.len != 32 || ln->signature_key.len != 32)
        return ERR_INVALID;
    crypto_x25519_public(k->init_priv, pub);
    if (memcmp(pub, k->kp.init_key.data, 32) != 0)
        return ERR_INVALID;
    crypto_x25519_public(k->enc_priv, pub);
    if (memcmp(pub, ln->encryption_key.data, 32) != 0)
        return ERR_INVALID;
    crypto_sig_public(k->sig_priv, pub);
    if (memcmp(pub, ln->signature_key.data, 32) != 0)
        return ERR_INVALID;
    return 0;
}

int mls_kp_from_parts(const uint8_t *kp, size_t kp_len, const uint8_t init_priv[CRYPTO_KEM_PRIV_LEN],
                      const uint8_t enc_priv[CRYPTO_KEM_PRIV_LEN],
                      const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN], struct mls_kp **out)
{
    struct mls_kp *k = calloc(1, sizeof(*k));
    int rc;
    *out = NULL;
    if (!k)
        return ERR_NOMEM;
    if ((rc = mls_key_package_parse_any(kp, kp_len, &k->kp)) != 0)
        goto out;
    memcpy(k->init_priv, init_priv, 32);
    memcpy(k->enc_priv, enc_priv, 32);
    memcpy(k->sig_priv, sig_priv, 32);
    if ((rc = keys_match(k)) != 0)
        goto out;
    if ((rc = mls_keypackage_ref(&k->kp, k->ref)) != 0)
        goto out;
    *out = k;
    k = NULL;
out:
    mls_kp_free(k);
    return rc;
}

int mls_kp_message(const struct mls_kp *kp, uint8_t **out, size_t *len)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    tls_put_u16(&w, 1);
    tls_put_u16(&w, MLS_WF_KEY_PACKAGE);
    mls_key_package_encode(&w, &kp->kp);
    return tls_writer_take(&w, out, len);
}

const struct mls_key_package *mls_kp_key_package(const struct mls_kp *kp)
{
    return &kp->kp;
}

const uint8_t *mls_kp_ref(const struct mls_kp *kp)
{
    return kp->ref;
}

const uint8_t *mls_kp_init_priv(const struct mls_kp *kp)
{
    return kp->init_priv;
}

const uint8_t *mls_kp_enc_priv(const struct mls_kp *kp)
{
    return kp->enc_priv;
}

const uint8_t *mls_kp_sig_priv(const struct mls_kp *kp)
{
    return kp->sig_priv;
}

bool mls_kp_used(const struct mls_kp *kp)
{
    return kp->used;
}

void mls_kp_mark_used(struct mls_kp *kp)
{
    kp->used = true;
}

int mls_kp_save(const struct mls_kp *kp, uint8_t **out, size_t *len)
{
    struct tls_writer w;
    size_t m;
    tls_writer_init(&w, 0);
    tls_put_u8(&w, KP_STATE_VERSION);
    m = tls_vector_begin(&w);
    mls_key_package_encode(&w, &kp->kp);
    tls_vector_end(&w, m);
    tls_put_fixed(&w, kp->init_priv, 32);
    tls_put_fixed(&w, kp->enc_priv, 32);
    tls_put_fixed(&w, kp->sig_priv, 32);
    tls_put_u8(&w, kp->used ? 1 : 0);
    return tls_writer_take(&w, out, len);
}

int mls_kp_load(const uint8_t *buf, size_t len, struct mls_kp **out)
{
    struct tls_reader r;
    const uint8_t *p, *ip, *ep, *sp;
    size_t plen;
    uint8_t ver, used;
    int rc;
    *out = NULL;
    tls_reader_init(&r, buf, len);
    if (tls_read_u8(&r, &ver) != 0)
        return ERR_MALFORMED;
    if (ver != KP_STATE_VERSION)
        return ERR_UNSUPPORTED;
    if (tls_read_opaque(&r, &p, &plen) != 0 || tls_read_fixed(&r, 32, &ip) != 0 ||
        tls_read_fixed(&r, 32, &ep) != 0 || tls_read_fixed(&r, 32, &sp) != 0 ||
        tls_read_u8(&r, &used) != 0 || used > 1 || !tls_reader_done(&r))
        return ERR_MALFORMED;
    rc = mls_kp_from_parts(p, plen, ip, ep, sp, out);
    if (rc == 0)
        (*out)->used = used == 1;
    return rc;
}
