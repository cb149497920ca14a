/*
 * mls_ks.c: the epoch key schedule, PSK secret, transcript hashes, Welcome
 * secrets and exporter (RFC 9420 §8, §12.4.3.1). The secret tree is in
 * mls_ks_tree.c. See mls_ks.h for the API.
 *
 * Secrets derived from epoch_secret (§8, table 4):
 * | label            | secret                |
 * |------------------|-----------------------|
 * | "sender data"    | sender_data_secret    |
 * | "encryption"     | encryption_secret     |
 * | "exporter"       | exporter_secret       |
 * | "external"       | external_secret       |
 * | "confirm"        | confirmation_key      |
 * | "membership"     | membership_key        |
 * | "resumption"     | resumption_psk        |
 * | "authentication" | epoch_authenticator   |
 * | "init"           | init_secret           |
 */
#include "mls_ks.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hpke.h"
#include "mls_ks_int.h"
#include "tls.h"

static const char *const derived_labels[MLS_KS_SECRET_COUNT] = {
    [MLS_KS_SENDER_DATA] = "sender data",
    [MLS_KS_ENCRYPTION] = "encryption",
    [MLS_KS_EXPORTER] = "exporter",
    [MLS_KS_EXTERNAL] = "external",
    [MLS_KS_CONFIRMATION_KEY] = "confirm",
    [MLS_KS_MEMBERSHIP_KEY] = "membership",
    [MLS_KS_RESUMPTION_PSK] = "resumption",
    [MLS_KS_EPOCH_AUTHENTICATOR] = "authentication",
    [MLS_KS_INIT] = "init",
};

static const uint8_t zero_secret[MLS_KS_NH];

/* member = Extract(joiner, psk_secret). */
static void member_secret(const uint8_t joiner[MLS_KS_NH], const uint8_t psk_secret[MLS_KS_NH],
                          uint8_t member[MLS_KS_NH])
{
    crypto_hkdf_extract(joiner, MLS_KS_NH, psk_secret != NULL ? psk_secret : zero_secret,
                        MLS_KS_NH, member);
}

int mls_ks_epoch_from_joiner(const uint8_t joiner_secret[MLS_KS_NH],
                             const uint8_t psk_secret[MLS_KS_NH], const uint8_t *group_context,
                             size_t gclen, struct mls_ks_epoch **out)
{
    struct mls_ks_epoch *ep;
    uint8_t member[MLS_KS_NH], epoch_secret[MLS_KS_NH];
    int rc;

    *out = NULL;
    /* One guarded block per epoch holds every secret. */
    ep = crypto_secure_alloc(sizeof(*ep));
    if (ep == NULL)
        return ERR_NOMEM;
    memset(ep, 0, sizeof(*ep));
    memcpy(ep->s[MLS_KS_JOINER], joiner_secret, MLS_KS_NH);
    member_secret(joiner_secret, psk_secret, member);
    rc = crypto_derive_secret(member, MLS_KS_NH, "welcome", ep->s[MLS_KS_WELCOME]);
    if (rc == 0)
        rc = crypto_expand_with_label(member, MLS_KS_NH, "epoch", group_context, gclen,
                                      epoch_secret, MLS_KS_NH);
    for (int i = MLS_KS_SENDER_DATA; rc == 0 && i < MLS_KS_SECRET_COUNT; i++)
        rc = crypto_derive_secret(epoch_secret, MLS_KS_NH, derived_labels[i], ep->s[i]);
    crypto_wipe(member, sizeof(member));
    crypto_wipe(epoch_secret, sizeof(epoch_secret));
    if (rc != 0) {
        mls_ks_epoch_free(ep);
        return rc;
    }
    *out = ep;
    return 0;
}

int mls_ks_epoch_new(const uint8_t init_secret[MLS_KS_NH], const uint8_t commit_secret[MLS_KS_NH],
                     const uint8_t psk_secret[MLS_KS_NH], const uint8_t *group_context,
                     size_t gclen, struct mls_ks_epoch **out)
{
    uint8_t prk[MLS_KS_NH], joiner[MLS_KS_NH];
    int rc;

    *out = NULL;
    crypto_hkdf_extract(init_secret, MLS_KS_NH, commit_secret != NULL ? commit_secret : zero_secret,
                        MLS_KS_NH, prk);
    rc = crypto_expand_with_label(prk, MLS_KS_NH, "joiner", group_context, gclen, joiner,
                                  MLS_KS_NH);
    if (rc == 0)
        rc = mls_ks_epoch_from_joiner(joiner, psk_secret, group_context, gclen, out);
    crypto_wipe(prk, sizeof(prk));
    crypto_wipe(joiner, sizeof(joiner));
    return rc;
}

void mls_ks_epoch_free(struct mls_ks_epoch *ep)
{
    if (ep != NULL && ep->plain) {
        crypto_wipe(ep, sizeof(*ep));
        free(ep);
        return;
    }
    crypto_secure_free(ep);
}

int mls_ks_epoch_secret(const struct mls_ks_epoch *ep, enum mls_ks_secret which,
                        uint8_t out[MLS_KS_NH])
{
    if ((int)which < 0 || which >= MLS_KS_SECRET_COUNT)
        return ERR_INVALID;
    memcpy(out, ep->s[which], MLS_KS_NH);
    return 0;
}

int mls_ks_epoch_confirmation_tag(const struct mls_ks_epoch *ep,
                                  const uint8_t confirmed_transcript_hash[MLS_KS_NH],
                                  uint8_t tag[CRYPTO_MAC_LEN])
{
    crypto_mac(ep->s[MLS_KS_CONFIRMATION_KEY], MLS_KS_NH, confirmed_transcript_hash, MLS_KS_NH,
               tag);
    return 0;
}

int mls_ks_epoch_verify_confirmation_tag(const struct mls_ks_epoch *ep,
                                         const uint8_t confirmed_transcript_hash[MLS_KS_NH],
                                         const uint8_t *tag, size_t taglen)
{
    return crypto_mac_verify(ep->s[MLS_KS_CONFIRMATION_KEY], MLS_KS_NH,
                             confirmed_transcript_hash, MLS_KS_NH, tag, taglen);
}

int mls_ks_epoch_membership_tag(const struct mls_ks_epoch *ep, const uint8_t *tbm, size_t len,
                                uint8_t tag[CRYPTO_MAC_LEN])
{
    crypto_mac(ep->s[MLS_KS_MEMBERSHIP_KEY], MLS_KS_NH, tbm, len, tag);
    return 0;
}

int mls_ks_epoch_verify_membership_tag(const struct mls_ks_epoch *ep, const uint8_t *tbm,
                                       size_t len, const uint8_t *tag, size_t taglen)
{
    return crypto_mac_verify(ep->s[MLS_KS_MEMBERSHIP_KEY], MLS_KS_NH, tbm, len, tag, taglen);
}

int mls_ks_sender_data_key(const uint8_t sender_data_secret[MLS_KS_NH],
                           const uint8_t *ciphertext, size_t ctlen,
                           uint8_t key[CRYPTO_AEAD_KEY_LEN], uint8_t nonce[CRYPTO_AEAD_NONCE_LEN])
{
    /* ciphertext_sample = ciphertext[0..Nh-1], or all of a shorter one. */
    size_t sample = ctlen < MLS_KS_NH ? ctlen : MLS_KS_NH;
    int rc;

    rc = crypto_expand_with_label(sender_data_secret, MLS_KS_NH, "key", ciphertext, sample, key,
                                  CRYPTO_AEAD_KEY_LEN);
    if (rc == 0)
        rc = crypto_expand_with_label(sender_data_secret, MLS_KS_NH, "nonce", ciphertext, sample,
                                      nonce, CRYPTO_AEAD_NONCE_LEN);
    if (rc != 0) {
        crypto_wipe(key, CRYPTO_AEAD_KEY_LEN);
        crypto_wipe(nonce, CRYPTO_AEAD_NONCE_LEN);
    }
    return rc;
}

int mls_ks_epoch_sender_data_key(const struct mls_ks_epoch *ep, const uint8_t *ciphertext,
                                 size_t ctlen, uint8_t key[CRYPTO_AEAD_KEY_LEN],
                                 uint8_t nonce[CRYPTO_AEAD_NONCE_LEN])
{
    return mls_ks_sender_data_key(ep->s[MLS_KS_SENDER_DATA], ciphertext, ctlen, key, nonce);
}

int mls_ks_epoch_export(const struct mls_ks_epoch *ep, const uint8_t *label, size_t label_len,
                        const uint8_t *context, size_t ctxlen, uint8_t *out, size_t outlen)
{
    uint8_t derived[MLS_KS_NH], ctx_hash[MLS_KS_NH];
    int rc;

    /* DeriveSecret(exporter_secret, label) with a byte-string label. */
    rc = crypto_expand_with_label_raw(ep->s[MLS_KS_EXPORTER], MLS_KS_NH, label, label_len, NULL,
                                      0, derived, MLS_KS_NH);
    if (rc == 0) {
        crypto_sha256(context, ctxlen, ctx_hash);
        rc = crypto_expand_with_label(derived, MLS_KS_NH, "exported", ctx_hash, MLS_KS_NH, out,
                                      outlen);
    }
    crypto_wipe(derived, sizeof(derived));
    return rc;
}

int mls_ks_epoch_external_pub(const struct mls_ks_epoch *ep, uint8_t pub[CRYPTO_KEM_PUB_LEN])
{
    uint8_t priv[HPKE_NSK];
    int rc;

    rc = hpke_derive_keypair(ep->s[MLS_KS_EXTERNAL], MLS_KS_NH, priv, pub);
    crypto_wipe(priv, sizeof(priv));
    return rc;
}

#define EXTERNAL_INIT_LABEL "MLS 1.0 external init secret"

int mls_ks_external_init_join(const uint8_t external_pub[CRYPTO_KEM_PUB_LEN],
                              uint8_t kem_output[CRYPTO_KEM_ENC_LEN],
                              uint8_t init_secret[MLS_KS_NH])
{
    struct hpke_ctx ctx;
    int rc;

    rc = hpke_setup_sender(HPKE_MODE_BASE, external_pub, NULL, 0, NULL, 0, NULL, 0, NULL, NULL,
                           kem_output, &ctx);
    if (rc == 0)
        rc = hpke_export(&ctx, (const uint8_t *)EXTERNAL_INIT_LABEL,
                         sizeof(EXTERNAL_INIT_LABEL) - 1, init_secret, MLS_KS_NH);
    hpke_ctx_wipe(&ctx);
    return rc;
}

int mls_ks_epoch_external_init(const struct mls_ks_epoch *ep, const uint8_t *kem_output,
                               size_t kemlen, uint8_t init_secret[MLS_KS_NH])
{
    uint8_t priv[HPKE_NSK], pub[HPKE_NPK];
    struct hpke_ctx ctx;
    int rc;

    memset(&ctx, 0, sizeof(ctx));
    if (kemlen != CRYPTO_KEM_ENC_LEN)
        return ERR_CRYPTO;
    rc = hpke_derive_keypair(ep->s[MLS_KS_EXTERNAL], MLS_KS_NH, priv, pub);
    if (rc == 0)
        rc = hpke_setup_receiver(HPKE_MODE_BASE, kem_output, priv, NULL, 0, NULL, 0, NULL, 0,
                                 NULL, &ctx);
    if (rc == 0)
        rc = hpke_export(&ctx, (const uint8_t *)EXTERNAL_INIT_LABEL,
                         sizeof(EXTERNAL_INIT_LABEL) - 1, init_secret, MLS_KS_NH);
    hpke_ctx_wipe(&ctx);
    crypto_wipe(priv, sizeof(priv));
    return rc;
}

int mls_ks_welcome_key(const uint8_t joiner_secret[MLS_KS_NH], const uint8_t psk_secret[MLS_KS_NH],
                       uint8_t key[CRYPTO_AEAD_KEY_LEN], uint8_t nonce[CRYPTO_AEAD_NONCE_LEN])
{
    uint8_t member[MLS_KS_NH], welcome[MLS_KS_NH];
    int rc;

    member_secret(joiner_secret, psk_secret, member);
    rc = crypto_derive_secret(member, MLS_KS_NH, "welcome", welcome);
    if (rc == 0)
        rc = crypto_expand_with_label(welcome, MLS_KS_NH, "key", NULL, 0, key,
                                      CRYPTO_AEAD_KEY_LEN);
    if (rc == 0)
        rc = crypto_expand_with_label(welcome, MLS_KS_NH, "nonce", NULL, 0, nonce,
                                      CRYPTO_AEAD_NONCE_LEN);
    crypto_wipe(member, sizeof(member));
    crypto_wipe(welcome, sizeof(welcome));
    return rc;
}

int mls_ks_psk_secret(const struct mls_ks_psk *psks, size_t n, uint8_t out[MLS_KS_NH])
{
    uint8_t extracted[MLS_KS_NH], input[MLS_KS_NH], next[MLS_KS_NH];
    struct tls_writer w;
    int rc = 0;

    memset(out, 0, MLS_KS_NH);
    if (n > UINT16_MAX)
        return ERR_TOO_BIG;
    for (size_t i = 0; i < n && rc == 0; i++) {
        crypto_hkdf_extract(NULL, 0, psks[i].psk, psks[i].psk_len, extracted);
        /* PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; } */
        tls_writer_init(&w, 0);
        tls_put_fixed(&w, psks[i].id, psks[i].id_len);
        tls_put_u16(&w, (uint16_t)i);
        tls_put_u16(&w, (uint16_t)n);
        rc = tls_writer_error(&w);
        if (rc == 0)
            rc = crypto_expand_with_label(extracted, MLS_KS_NH, "derived psk", w.buf, w.len,
                                          input, MLS_KS_NH);
        tls_writer_reset(&w);
        if (rc == 0) {
            crypto_hkdf_extract(input, MLS_KS_NH, out, MLS_KS_NH, next);
            memcpy(out, next, MLS_KS_NH);
        }
    }
    crypto_wipe(extracted, sizeof(extracted));
    crypto_wipe(input, sizeof(input));
    crypto_wipe(next, sizeof(next));
    if (rc != 0)
        crypto_wipe(out, MLS_KS_NH);
    return rc;
}

void mls_ks_confirmed_transcript_hash(const uint8_t interim_before[MLS_KS_NH],
                                      const uint8_t *confirmed_input, size_t len,
                                      uint8_t out[MLS_KS_NH])
{
    crypto_sha256_2(interim_before, MLS_KS_NH, confirmed_input, len, out);
}

int mls_ks_interim_transcript_hash(const uint8_t confirmed[MLS_KS_NH], const uint8_t *tag,
                                   size_t taglen, uint8_t out[MLS_KS_NH])
{
    /* InterimTranscriptHashInput { MAC confirmation_tag; } with MAC an
     * opaque<V>. A MAC is at most 32 bytes, so its varint header is the
     * single byte taglen. */
    uint8_t buf[1 + CRYPTO_MAC_LEN];

    if (taglen > CRYPTO_MAC_LEN)
        return ERR_INVALID;
    buf[0] = (uint8_t)taglen;
    if (taglen > 0)
        memcpy(buf + 1, tag, taglen);
    crypto_sha256_2(confirmed, MLS_KS_NH, buf, 1 + taglen, out);
    return 0;
}

/* ---- persistence (added for mls_group's saved state) ---------------------- */

int mls_ks_epoch_restore(const uint8_t secrets[MLS_KS_SECRET_COUNT][MLS_KS_NH],
                         bool encryption_taken, struct mls_ks_epoch **out)
{
    struct mls_ks_epoch *ep = crypto_secure_alloc(sizeof(*ep));
    *out = NULL;
    if (ep == NULL)
        return ERR_NOMEM;
    memset(ep, 0, sizeof(*ep)); /* sodium_malloc fills with 0xdb: plain must be false */
    memcpy(ep->s, secrets, sizeof(ep->s));
    ep->encryption_taken = encryption_taken;
    if (encryption_taken)
        crypto_wipe(ep->s[MLS_KS_ENCRYPTION], MLS_KS_NH);
    *out = ep;
    return 0;
}

bool mls_ks_epoch_encryption_taken(const struct mls_ks_epoch *ep)
{
    return ep->encryption_taken;
}

int mls_ks_epoch_make_plain(struct mls_ks_epoch **ep)
{
    struct mls_ks_epoch *n;
    if ((*ep)->plain)
        return 0;
    n = malloc(sizeof(*n));
    if (n == NULL)
        return ERR_NOMEM;
    memcpy(n, *ep, sizeof(*n));
    n->plain = true;
    crypto_secure_free(*ep);
    *ep = n;
    return 0;
}
