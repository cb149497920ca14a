/*
 * mls_welcome.c: opening a Welcome (RFC 9420 §12.4.3.1); see mls_welcome.h
 * for the steps.
 *
 * | value                  | how                                               |
 * |------------------------|---------------------------------------------------|
 * | GroupSecrets           | DecryptWithLabel(init_priv, "Welcome",            |
 * |                        |   encrypted_group_info, kem_output, ciphertext)   |
 * | welcome_secret         | DeriveSecret(Extract(joiner, psk_secret), "welcome") |
 * | welcome_key / _nonce   | ExpandWithLabel(welcome_secret, "key"/"nonce", "", Nk/Nn) |
 * | GroupInfo              | AEAD.Open(welcome_key, welcome_nonce, "", encrypted_group_info) |
 * | signature              | VerifyWithLabel(signer, "GroupInfoTBS", GroupInfoTBS) |
 * | confirmation_tag       | MAC(confirmation_key, confirmed_transcript_hash)  |
 */
#include "mls_welcome.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_keypackage.h"
#include "mls_rules.h"
#include "tls.h"

#define SUITE_3 3

int mls_welcome_open_secrets(const struct mls_welcome *welcome, const struct mls_key_package *kp,
                             const uint8_t init_priv[CRYPTO_KEM_PRIV_LEN],
                             struct mls_group_secrets *out)
{
    const struct mls_encrypted_group_secrets *egs = NULL;
    uint8_t ref[MLS_REF_LEN];
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (welcome->cipher_suite != SUITE_3 || kp->cipher_suite != SUITE_3)
        return ERR_UNSUPPORTED;
    rc = mls_keypackage_ref(kp, ref);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < welcome->n_secrets; i++) {
        const struct mls_bytes *nm = &welcome->secrets[i].new_member;
        if (nm->len == sizeof(ref) && memcmp(nm->data, ref, sizeof(ref)) == 0) {
            egs = &welcome->secrets[i];
            break;
        }
    }
    if (egs == NULL)
        return ERR_NOT_FOUND;
    if (egs->encrypted_group_secrets.ciphertext.len < CRYPTO_AEAD_TAG_LEN)
        return ERR_CRYPTO;
    ptlen = egs->encrypted_group_secrets.ciphertext.len - CRYPTO_AEAD_TAG_LEN;
    pt = malloc(ptlen + 1); /* +1: never malloc(0) */
    if (pt == NULL)
        return ERR_NOMEM;
    rc = crypto_decrypt_with_label(init_priv, "Welcome", welcome->encrypted_group_info.data,
                                   welcome->encrypted_group_info.len,
                                   egs->encrypted_group_secrets.kem_output.data,
                                   egs->encrypted_group_secrets.kem_output.len,
                                   egs->encrypted_group_secrets.ciphertext.data,
                                   egs->encrypted_group_secrets.ciphertext.len, pt);
    if (rc != 0)
        goto out;
    rc = mls_group_secrets_parse(pt, ptlen, out);
    if (rc != 0)
        goto out;
    if (out->joiner_secret.len != MLS_KS_NH ||
        (out->has_path_secret && out->path_secret.len != MLS_KS_NH)) {
        mls_group_secrets_free(out);
        rc = ERR_INVALID;
    }
out:
    crypto_wipe(pt, ptlen);
    free(pt);
    return rc;
}

int mls_welcome_psk_secret(const struct mls_group_secrets *gs, const struct mls_bytes *psk_values,
                           size_t n, uint8_t psk_secret[MLS_KS_NH])
{
    struct mls_ks_psk *psks = NULL;
    struct tls_writer *ids = NULL;
    int rc = 0;

    memset(psk_secret, 0, MLS_KS_NH);
    if (n != gs->n_psks)
        return ERR_INVALID;
    if (n == 0)
        return 0;
    psks = calloc(n, sizeof(*psks));
    ids = calloc(n, sizeof(*ids));
    if (psks == NULL || ids == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        tls_writer_init(&ids[i], 0);
        mls_pre_shared_key_id_encode(&ids[i], &gs->psks[i]);
        if (rc == 0)
            rc = tls_writer_error(&ids[i]);
        psks[i].id = ids[i].buf;
        psks[i].id_len = ids[i].len;
        psks[i].psk = psk_values[i].data;
        psks[i].psk_len = psk_values[i].len;
    }
    if (rc == 0)
        rc = mls_ks_psk_secret(psks, n, psk_secret);
out:
    if (ids != NULL)
        for (size_t i = 0; i < n; i++)
            tls_writer_reset(&ids[i]);
    free(ids);
    free(psks);
    return rc;
}

int mls_welcome_open_group_info(const struct mls_welcome *welcome, const struct mls_group_secrets *gs,
                                const uint8_t psk_secret[MLS_KS_NH], struct mls_group_info *out)
{
    uint8_t key[CRYPTO_AEAD_KEY_LEN], nonce[CRYPTO_AEAD_NONCE_LEN];
    const struct mls_bytes *egi = &welcome->encrypted_group_info;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (gs->joiner_secret.len != MLS_KS_NH)
        return ERR_INVALID;
    if (egi->len < CRYPTO_AEAD_TAG_LEN)
        return ERR_CRYPTO;
    ptlen = egi->len - CRYPTO_AEAD_TAG_LEN;
    pt = malloc(ptlen + 1);
    if (pt == NULL)
        return ERR_NOMEM;
    rc = mls_ks_welcome_key(gs->joiner_secret.data, psk_secret, key, nonce);
    if (rc == 0)
        rc = crypto_aead_open(key, nonce, NULL, 0, egi->data, egi->len, pt);
    if (rc == 0)
        rc = mls_group_info_parse(pt, ptlen, out);
    if (rc == 0 && (out->group_context.version != MLS_VERSION_MLS10 ||
                    out->group_context.cipher_suite != welcome->cipher_suite)) {
        mls_group_info_free(out);
        rc = ERR_UNSUPPORTED;
    }
    crypto_wipe(key, sizeof(key));
    crypto_wipe(nonce, sizeof(nonce));
    crypto_wipe(pt, ptlen);
    free(pt);
    return rc;
}

int mls_welcome_verify_group_info(const struct mls_group_info *gi, const uint8_t *signer_pub,
                                  size_t signer_pub_len, const struct mls_group_secrets *gs,
                                  const uint8_t psk_secret[MLS_KS_NH], struct mls_ks_epoch **epoch)
{
    struct mls_ks_epoch *ep = NULL;
    struct tls_writer w;
    int rc;

    *epoch = NULL;
    if (gs->joiner_secret.len != MLS_KS_NH)
        return ERR_INVALID;
    /* Signature over GroupInfoTBS. */
    if ((rc = mls_rules_group_info_signature(gi, signer_pub, signer_pub_len)) != 0)
        return rc;
    /* The epoch's key schedule, then its confirmation tag. */
    tls_writer_init(&w, 0);
    mls_group_context_encode(&w, &gi->group_context);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = mls_ks_epoch_from_joiner(gs->joiner_secret.data, psk_secret, w.buf, w.len, &ep);
    tls_writer_reset(&w);
    if (rc != 0)
        return rc;
    if (gi->group_context.confirmed_transcript_hash.len != MLS_KS_NH)
        rc = ERR_CRYPTO;
    else
        rc = mls_ks_epoch_verify_confirmation_tag(ep,
                                                  gi->group_context.confirmed_transcript_hash.data,
                                                  gi->confirmation_tag.data,
                                                  gi->confirmation_tag.len);
    if (rc != 0) {
        mls_ks_epoch_free(ep);
        return rc;
    }
    *epoch = ep;
    return 0;
}
