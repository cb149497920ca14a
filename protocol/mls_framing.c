/*
 * mls_framing.c: PublicMessage signing / membership tags and PrivateMessage
 * encryption (RFC 9420 §6). See mls_framing.h for the call sequence.
 *
 * Structures built here (RFC 9420 §6.1, §6.2, §6.3):
 * | struct                  | fields                                          |
 * |-------------------------|-------------------------------------------------|
 * | FramedContentTBS        | version u16, wire_format u16, FramedContent,    |
 * |                         | GroupContext (member, new_member_commit)        |
 * | AuthenticatedContentTBM | FramedContentTBS, FramedContentAuthData         |
 * | PrivateMessageContent   | application_data<V> / Proposal / Commit,        |
 * |                         | FramedContentAuthData, zero padding             |
 * | PrivateContentAAD       | group_id<V>, epoch u64, content_type u8,        |
 * |                         | authenticated_data<V>                           |
 * | SenderDataAAD           | group_id<V>, epoch u64, content_type u8         |
 * | SenderData              | leaf_index u32, generation u32, reuse_guard[4]  |
 */
#include "mls_framing.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_ks.h"

#define TRY(expr)                                                              \
    do {                                                                       \
        if ((rc = (expr)) != 0)                                                \
            goto out;                                                          \
    } while (0)

static const char SIGN_LABEL[] = "FramedContentTBS";

/* Serializes FramedContentTBS into w (caller resets w). */
static int encode_tbs(struct tls_writer *w, uint16_t wire_format,
                      const struct mls_framed_content *content, const uint8_t *gc, size_t gc_len)
{
    tls_writer_init(w, 0);
    mls_framed_content_encode_tbs(w, wire_format, content, gc, gc_len);
    return tls_writer_error(w);
}

int mls_framing_sign(uint16_t wire_format, const struct mls_framed_content *content,
                     const uint8_t *gc, size_t gc_len, const uint8_t priv[CRYPTO_SIGN_PRIV_LEN],
                     struct mls_bytes *signature)
{
    struct tls_writer w;
    uint8_t sig[CRYPTO_SIG_LEN];
    int rc;
    memset(signature, 0, sizeof(*signature));
    TRY(encode_tbs(&w, wire_format, content, gc, gc_len));
    TRY(crypto_sign_with_label(priv, SIGN_LABEL, w.buf, w.len, sig));
    TRY(mls_bytes_set(signature, sig, sizeof(sig)));
out:
    tls_writer_reset(&w);
    return rc;
}

int mls_framing_verify(uint16_t wire_format, const struct mls_framed_content *content,
                       const uint8_t *gc, size_t gc_len, const uint8_t *sig_pub,
                       size_t sig_pub_len, const struct mls_bytes *signature)
{
    struct tls_writer w;
    int rc;
    if (sig_pub_len != CRYPTO_SIGN_PUB_LEN)
        return ERR_CRYPTO;
    TRY(encode_tbs(&w, wire_format, content, gc, gc_len));
    TRY(crypto_verify_with_label(sig_pub, SIGN_LABEL, w.buf, w.len, signature->data,
                                 signature->len));
out:
    tls_writer_reset(&w);
    return rc;
}

int mls_framing_membership_tag(const struct mls_framed_content *content,
                               const struct mls_framed_content_auth_data *auth,
                               const uint8_t *gc, size_t gc_len,
                               const uint8_t *membership_key, size_t membership_key_len,
                               uint8_t tag[CRYPTO_MAC_LEN])
{
    struct tls_writer w;
    int rc;
    if (!membership_key)
        return ERR_INVALID;
    TRY(encode_tbs(&w, MLS_WF_PUBLIC_MESSAGE, content, gc, gc_len));
    mls_framed_content_auth_data_encode(&w, content->content_type, auth);
    TRY(tls_writer_error(&w));
    crypto_mac(membership_key, membership_key_len, w.buf, w.len, tag);
out:
    tls_writer_reset(&w);
    return rc;
}

/* Deep copy through the codec (canonical, so exact). */
static int copy_content(struct mls_framed_content *dst, const struct mls_framed_content *src)
{
    struct tls_writer w;
    struct tls_reader r;
    int rc;
    memset(dst, 0, sizeof(*dst));
    tls_writer_init(&w, 0);
    mls_framed_content_encode(&w, src);
    TRY(tls_writer_error(&w));
    tls_reader_init(&r, w.buf, w.len);
    TRY(mls_framed_content_decode(&r, dst));
out:
    tls_writer_reset(&w);
    return rc;
}

int mls_framing_public_build(const struct mls_framed_content *content,
                             const struct mls_framed_content_auth_data *auth,
                             const uint8_t *gc, size_t gc_len,
                             const uint8_t *membership_key, size_t membership_key_len,
                             struct mls_public_message *out)
{
    uint8_t tag[CRYPTO_MAC_LEN];
    int rc;
    memset(out, 0, sizeof(*out));
    if (content->content_type == MLS_CONTENT_COMMIT && auth->confirmation_tag.len == 0)
        return ERR_INVALID;
    if (content->content_type == MLS_CONTENT_APPLICATION)
        return ERR_INVALID; /* §6.2: application data is never a PublicMessage */
    TRY(copy_content(&out->content, content));
    TRY(mls_bytes_set(&out->auth.signature, auth->signature.data, auth->signature.len));
    if (content->content_type == MLS_CONTENT_COMMIT)
        TRY(mls_bytes_set(&out->auth.confirmation_tag, auth->confirmation_tag.data,
                          auth->confirmation_tag.len));
    if (content->sender.sender_type == MLS_SENDER_MEMBER) {
        TRY(mls_framing_membership_tag(content, auth, gc, gc_len, membership_key,
                                       membership_key_len, tag));
        TRY(mls_bytes_set(&out->membership_tag, tag, sizeof(tag)));
    }
out:
    if (rc)
        mls_public_message_free(out);
    return rc;
}

/* ERR_BADSTATE unless content's group_id and epoch are those of gc. */
static int check_epoch(const struct mls_framed_content *content, const uint8_t *gc,
                       size_t gc_len)
{
    struct mls_group_context ctx;
    int rc = mls_group_context_parse(gc, gc_len, &ctx);
    if (rc)
        return rc == ERR_NOMEM ? rc : ERR_INVALID; /* our own caller's bytes */
    if (ctx.epoch != content->epoch || ctx.group_id.len != content->group_id.len ||
        (ctx.group_id.len &&
         memcmp(ctx.group_id.data, content->group_id.data, ctx.group_id.len) != 0))
        rc = ERR_BADSTATE;
    mls_group_context_free(&ctx);
    return rc;
}

int mls_framing_public_verify(const struct mls_public_message *pm, const uint8_t *gc,
                              size_t gc_len, const uint8_t *sig_pub, size_t sig_pub_len,
                              const uint8_t *membership_key, size_t membership_key_len)
{
    uint8_t tag[CRYPTO_MAC_LEN];
    int rc;
    const struct mls_framed_content *c = &pm->content;
    if (c->content_type == MLS_CONTENT_COMMIT && pm->auth.confirmation_tag.len == 0)
        return ERR_MALFORMED;
    if (c->content_type == MLS_CONTENT_APPLICATION)
        return ERR_INVALID; /* §6.2: application data must be a PrivateMessage */
    if (gc)
        TRY(check_epoch(c, gc, gc_len));
    TRY(mls_framing_verify(MLS_WF_PUBLIC_MESSAGE, c, gc, gc_len, sig_pub, sig_pub_len,
                           &pm->auth.signature));
    if (c->sender.sender_type == MLS_SENDER_MEMBER && membership_key) {
        TRY(mls_framing_membership_tag(c, &pm->auth, gc, gc_len, membership_key,
                                       membership_key_len, tag));
        if (pm->membership_tag.len != sizeof(tag) ||
            crypto_memeq(tag, pm->membership_tag.data, sizeof(tag)) != 0)
            rc = ERR_CRYPTO;
    }
out:
    crypto_wipe(tag, sizeof(tag));
    return rc;
}

/* ---- PrivateMessage ----------------------------------------------------- */

static void encode_sender_data_aad(struct tls_writer *w, const struct mls_bytes *group_id,
                                   uint64_t epoch, uint8_t content_type)
{
    mls_bytes_encode(w, group_id);
    tls_put_u64(w, epoch);
    tls_put_u8(w, content_type);
}

/* sender_data key and nonce: ExpandWithLabel(sender_data_secret, "key" /
 * "nonce", ciphertext_sample, Nk / Nn), where the sample is the first Nh
 * bytes of the content ciphertext (all of it when shorter). */
static int sender_data_keys(const uint8_t secret[CRYPTO_HASH_LEN], const struct mls_bytes *ct,
                            uint8_t key[CRYPTO_AEAD_KEY_LEN],
                            uint8_t nonce[CRYPTO_AEAD_NONCE_LEN])
{
    size_t sample = ct->len < CRYPTO_HASH_LEN ? ct->len : CRYPTO_HASH_LEN;
    int rc = crypto_expand_with_label(secret, CRYPTO_HASH_LEN, "key", ct->data, sample, key,
                                      CRYPTO_AEAD_KEY_LEN);
    if (!rc)
        rc = crypto_expand_with_label(secret, CRYPTO_HASH_LEN, "nonce", ct->data, sample,
                                      nonce, CRYPTO_AEAD_NONCE_LEN);
    return rc;
}

/* Seals w's plaintext into *out (owned): len + tag bytes. */
static int seal_into(const uint8_t *key, const uint8_t *nonce, const struct tls_writer *aad,
                     const struct tls_writer *pt, struct mls_bytes *out)
{
    size_t n = pt->len + CRYPTO_AEAD_TAG_LEN;
    uint8_t *ct = malloc(n);
    if (!ct)
        return ERR_NOMEM;
    int rc = crypto_aead_seal(key, nonce, aad->buf, aad->len, pt->buf, pt->len, ct);
    if (rc) {
        free(ct);
        return rc;
    }
    mls_bytes_free(out);
    out->data = ct;
    out->len = n;
    return 0;
}

int mls_framing_private_encrypt(const struct mls_framed_content *content,
                                const struct mls_framed_content_auth_data *auth,
                                const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                                uint32_t generation, const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                                const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN], size_t padding,
                                struct mls_private_message *out)
{
    struct tls_writer pt, aad;
    struct mls_sender_data sd;
    uint8_t n2[CRYPTO_AEAD_NONCE_LEN], sk[CRYPTO_AEAD_KEY_LEN], sn[CRYPTO_AEAD_NONCE_LEN];
    int rc;
    memset(out, 0, sizeof(*out));
    memset(&sd, 0, sizeof(sd));
    tls_writer_init(&pt, 0);
    tls_writer_init(&aad, 0);
    if (content->sender.sender_type != MLS_SENDER_MEMBER || padding > MLS_FRAMING_MAX_PADDING ||
        (content->content_type == MLS_CONTENT_COMMIT && auth->confirmation_tag.len == 0)) {
        rc = ERR_INVALID;
        goto out;
    }

    /* PrivateMessageContent: the content body, auth, zero padding. */
    switch (content->content_type) {
    case MLS_CONTENT_APPLICATION:
        mls_bytes_encode(&pt, &content->application_data);
        break;
    case MLS_CONTENT_PROPOSAL:
        mls_proposal_encode(&pt, &content->proposal);
        break;
    case MLS_CONTENT_COMMIT:
        mls_commit_encode(&pt, &content->commit);
        break;
    default:
        rc = ERR_INVALID;
        goto out;
    }
    mls_framed_content_auth_data_encode(&pt, content->content_type, auth);
    for (size_t i = 0; i < padding; i++)
        tls_put_u8(&pt, 0);

    /* PrivateContentAAD */
    mls_bytes_encode(&aad, &content->group_id);
    tls_put_u64(&aad, content->epoch);
    tls_put_u8(&aad, content->content_type);
    mls_bytes_encode(&aad, &content->authenticated_data);
    TRY(tls_writer_error(&pt));
    TRY(tls_writer_error(&aad));

    /* The reuse guard makes a nonce reused by a buggy or restored sender
     * still unique with high probability (§6.3.1). */
    sd.leaf_index = content->sender.leaf_index;
    sd.generation = generation;
    crypto_random(sd.reuse_guard, sizeof(sd.reuse_guard));
    memcpy(n2, nonce, sizeof(n2));
    for (size_t i = 0; i < sizeof(sd.reuse_guard); i++)
        n2[i] ^= sd.reuse_guard[i];
    TRY(seal_into(key, n2, &aad, &pt, &out->ciphertext));

    /* SenderData, keyed by the ciphertext sample. */
    tls_writer_reset(&pt);
    tls_writer_reset(&aad);
    mls_sender_data_encode(&pt, &sd);
    encode_sender_data_aad(&aad, &content->group_id, content->epoch, content->content_type);
    TRY(tls_writer_error(&pt));
    TRY(tls_writer_error(&aad));
    TRY(sender_data_keys(sender_data_secret, &out->ciphertext, sk, sn));
    TRY(seal_into(sk, sn, &aad, &pt, &out->encrypted_sender_data));

    TRY(mls_bytes_set(&out->group_id, content->group_id.data, content->group_id.len));
    TRY(mls_bytes_set(&out->authenticated_data, content->authenticated_data.data,
                      content->authenticated_data.len));
    out->epoch = content->epoch;
    out->content_type = content->content_type;
out:
    tls_writer_reset(&pt);
    tls_writer_reset(&aad);
    crypto_wipe(n2, sizeof(n2));
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(sn, sizeof(sn));
    crypto_wipe(&sd, sizeof(sd));
    if (rc)
        mls_private_message_free(out);
    return rc;
}

int mls_framing_private_decrypt_sender_data(const struct mls_private_message *pm,
                                            const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                                            struct mls_sender_data *out)
{
    struct tls_writer aad;
    struct tls_reader r;
    uint8_t sk[CRYPTO_AEAD_KEY_LEN], sn[CRYPTO_AEAD_NONCE_LEN];
    uint8_t pt[12]; /* SenderData is exactly 4 + 4 + 4 bytes */
    int rc;
    memset(out, 0, sizeof(*out));
    tls_writer_init(&aad, 0);
    if (pm->encrypted_sender_data.len != sizeof(pt) + CRYPTO_AEAD_TAG_LEN) {
        rc = ERR_CRYPTO;
        goto out;
    }
    encode_sender_data_aad(&aad, &pm->group_id, pm->epoch, pm->content_type);
    TRY(tls_writer_error(&aad));
    TRY(sender_data_keys(sender_data_secret, &pm->ciphertext, sk, sn));
    TRY(crypto_aead_open(sk, sn, aad.buf, aad.len, pm->encrypted_sender_data.data,
                         pm->encrypted_sender_data.len, pt));
    tls_reader_init(&r, pt, sizeof(pt));
    TRY(mls_sender_data_decode(&r, out));
out:
    tls_writer_reset(&aad);
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(sn, sizeof(sn));
    crypto_wipe(pt, sizeof(pt));
    return rc;
}

int mls_framing_private_decrypt_content(const struct mls_private_message *pm,
                                        const struct mls_sender_data *sd,
                                        const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                                        const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN],
                                        struct mls_framed_content *content,
                                        struct mls_framed_content_auth_data *auth)
{
    struct tls_writer aad;
    struct tls_reader r;
    uint8_t n2[CRYPTO_AEAD_NONCE_LEN];
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    int rc;
    memset(content, 0, sizeof(*content));
    memset(auth, 0, sizeof(*auth));
    tls_writer_init(&aad, 0);
    if (pm->ciphertext.len < CRYPTO_AEAD_TAG_LEN) {
        rc = ERR_CRYPTO;
        goto out;
    }
    mls_bytes_encode(&aad, &pm->group_id);
    tls_put_u64(&aad, pm->epoch);
    tls_put_u8(&aad, pm->content_type);
    mls_bytes_encode(&aad, &pm->authenticated_data);
    TRY(tls_writer_error(&aad));

    memcpy(n2, nonce, sizeof(n2));
    for (size_t i = 0; i < sizeof(sd->reuse_guard); i++)
        n2[i] ^= sd->reuse_guard[i];
    ptlen = pm->ciphertext.len - CRYPTO_AEAD_TAG_LEN;
    pt = malloc(ptlen ? ptlen : 1);
    if (!pt) {
        rc = ERR_NOMEM;
        goto out;
    }
    TRY(crypto_aead_open(key, n2, aad.buf, aad.len, pm->ciphertext.data, pm->ciphertext.len,
                         pt));

    /* PrivateMessageContent. Authenticated, but still parsed strictly. */
    tls_reader_init(&r, pt, ptlen);
    content->content_type = pm->content_type;
    switch (pm->content_type) {
    case MLS_CONTENT_APPLICATION:
        TRY(mls_bytes_decode(&r, &content->application_data));
        break;
    case MLS_CONTENT_PROPOSAL:
        TRY(mls_proposal_decode(&r, &content->proposal));
        break;
    case MLS_CONTENT_COMMIT:
        TRY(mls_commit_decode(&r, &content->commit));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
    TRY(mls_framed_content_auth_data_decode(&r, pm->content_type, auth));
    /* The rest is padding and must be all zero (§6.3.1). */
    uint8_t acc = 0;
    while (!tls_reader_done(&r)) {
        uint8_t b;
        TRY(tls_read_u8(&r, &b));
        acc |= b;
    }
    if (acc) {
        rc = ERR_MALFORMED;
        goto out;
    }

    TRY(mls_bytes_set(&content->group_id, pm->group_id.data, pm->group_id.len));
    TRY(mls_bytes_set(&content->authenticated_data, pm->authenticated_data.data,
                      pm->authenticated_data.len));
    content->epoch = pm->epoch;
    content->sender.sender_type = MLS_SENDER_MEMBER;
    content->sender.leaf_index = sd->leaf_index;
out:
    tls_writer_reset(&aad);
    crypto_wipe(n2, sizeof(n2));
    if (pt) {
        crypto_wipe(pt, ptlen);
        free(pt);
    }
    if (rc) {
        mls_framed_content_free(content);
        mls_framed_content_auth_data_free(auth);
    }
    return rc;
}

/* ---- with the secret tree ----------------------------------------------- */

static enum mls_ks_ratchet ratchet_for(uint8_t content_type)
{
    return content_type == MLS_CONTENT_APPLICATION ? MLS_KS_APPLICATION : MLS_KS_HANDSHAKE;
}

int mls_framing_private_seal(const struct mls_framed_content *content,
                             const struct mls_framed_content_auth_data *auth,
                             const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                             struct mls_ks_tree *tree, size_t padding,
                             struct mls_private_message *out)
{
    struct mls_ks_key k;
    int rc;
    memset(out, 0, sizeof(*out));
    memset(&k, 0, sizeof(k));
    if (content->sender.sender_type != MLS_SENDER_MEMBER)
        return ERR_INVALID;
    TRY(mls_ks_tree_next_key(tree, content->sender.leaf_index,
                             ratchet_for(content->content_type), &k));
    TRY(mls_framing_private_encrypt(content, auth, sender_data_secret, k.generation, k.key,
                                    k.nonce, padding, out));
out:
    mls_ks_key_wipe(&k);
    return rc;
}

int mls_framing_private_open(const struct mls_private_message *pm,
                             const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                             struct mls_ks_tree *tree, struct mls_sender_data *sd,
                             struct mls_framed_content *content,
                             struct mls_framed_content_auth_data *auth)
{
    struct mls_ks_key k;
    int rc;
    memset(&k, 0, sizeof(k));
    memset(content, 0, sizeof(*content));
    memset(auth, 0, sizeof(*auth));
    TRY(mls_framing_private_decrypt_sender_data(pm, sender_data_secret, sd));
    TRY(mls_ks_tree_key(tree, sd->leaf_index, ratchet_for(pm->content_type), sd->generation,
                        &k));
    rc = mls_framing_private_decrypt_content(pm, sd, k.key, k.nonce, content, auth);
    /* A forged or corrupted ciphertext must not burn the generation of the
     * genuine message: the key goes back to the kept keys. */
    if (rc != 0 && mls_ks_tree_key_return(tree, sd->leaf_index, ratchet_for(pm->content_type),
                                          &k) != 0)
        rc = ERR_NOMEM; /* could not keep it: report that, not the forgery */
out:
    mls_ks_key_wipe(&k);
    if (rc)
        crypto_wipe(sd, sizeof(*sd));
    return rc;
}
