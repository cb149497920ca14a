/* test_message_protection.c: message-protection.json (suite 3 entries).
 * For each of proposal, commit and application, with leaf 1 of a two-leaf
 * group as the sender:
 *  - the *_pub PublicMessage verifies (signature over FramedContentTBS with
 *    the GroupContext, membership tag) and carries the raw proposal/commit;
 *  - protecting the raw value as a PublicMessage gives one that verifies;
 *  - the *_priv PrivateMessage decrypts with sender_data_secret and the
 *    secret tree built from encryption_secret (mls_ks), its signature
 *    verifies, and it carries the raw value;
 *  - protecting the raw value as a PrivateMessage (with padding) gives one
 *    that decrypts and verifies the same way.
 * Hand-built negatives: a flipped membership tag, a wrong signer, a wrong
 * epoch, a forged ciphertext, non-zero padding, application data as a
 * PublicMessage. */
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
#include "mls_framing.h"
#include "mls_ks.h"
#include "mls_struct.h"
#include "vectors.h"

#define SENDER_LEAF 1u

struct fixture {
    uint16_t suite;
    struct vec_bytes group_id, sig_priv, sig_pub, enc_secret, sd_secret, membership_key;
    uint64_t epoch;
    uint8_t *gc; /* serialized GroupContext */
    size_t gc_len;
    uint8_t *gc_wrong_epoch;
    size_t gc_wrong_epoch_len;
};

static bool hex(const json_t *e, const char *k, struct vec_bytes *b)
{
    if (vec_hex(e, k, b))
        return true;
    fprintf(stderr, "missing %s\n", k);
    return false;
}

/* GroupContext{version mls10, suite, group_id, epoch, tree_hash,
 * confirmed_transcript_hash, no extensions}, serialized. */
static bool build_gc(const json_t *e, uint64_t epoch, uint8_t **out, size_t *len)
{
    struct mls_group_context gc;
    struct vec_bytes gid, th, cth;
    struct tls_writer w;
    memset(&gc, 0, sizeof(gc));
    if (!hex(e, "group_id", &gid))
        return false;
    if (!hex(e, "tree_hash", &th)) {
        vec_bytes_free(&gid);
        return false;
    }
    if (!hex(e, "confirmed_transcript_hash", &cth)) {
        vec_bytes_free(&gid);
        vec_bytes_free(&th);
        return false;
    }
    gc.version = MLS_VERSION_MLS10;
    gc.cipher_suite = (uint16_t)vec_uint(e, "cipher_suite");
    gc.epoch = epoch;
    bool ok = mls_bytes_set(&gc.group_id, gid.p, gid.len) == 0 &&
              mls_bytes_set(&gc.tree_hash, th.p, th.len) == 0 &&
              mls_bytes_set(&gc.confirmed_transcript_hash, cth.p, cth.len) == 0;
    tls_writer_init(&w, 0);
    mls_group_context_encode(&w, &gc);
    ok = ok && tls_writer_take(&w, out, len) == 0;
    tls_writer_reset(&w);
    mls_group_context_free(&gc);
    vec_bytes_free(&gid);
    vec_bytes_free(&th);
    vec_bytes_free(&cth);
    return ok;
}

static void fixture_free(struct fixture *f)
{
    vec_bytes_free(&f->group_id);
    vec_bytes_free(&f->sig_priv);
    vec_bytes_free(&f->sig_pub);
    vec_bytes_free(&f->enc_secret);
    vec_bytes_free(&f->sd_secret);
    vec_bytes_free(&f->membership_key);
    free(f->gc);
    free(f->gc_wrong_epoch);
    memset(f, 0, sizeof(*f));
}

static bool fixture_load(const json_t *e, struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->suite = (uint16_t)vec_uint(e, "cipher_suite");
    f->epoch = vec_uint(e, "epoch");
    return hex(e, "group_id", &f->group_id) && hex(e, "signature_priv", &f->sig_priv) &&
           hex(e, "signature_pub", &f->sig_pub) && hex(e, "encryption_secret", &f->enc_secret) &&
           hex(e, "sender_data_secret", &f->sd_secret) &&
           hex(e, "membership_key", &f->membership_key) && f->enc_secret.len == MLS_KS_NH &&
           f->sd_secret.len == MLS_KS_NH && f->sig_priv.len == CRYPTO_SIGN_PRIV_LEN &&
           build_gc(e, f->epoch, &f->gc, &f->gc_len) &&
           build_gc(e, f->epoch + 1, &f->gc_wrong_epoch, &f->gc_wrong_epoch_len);
}

/* Encodes the body of content (application_data<V> / Proposal / Commit). */
static bool body_equals(const struct mls_framed_content *c, const struct vec_bytes *raw)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    switch (c->content_type) {
    case MLS_CONTENT_APPLICATION:
        /* the vector's "application" is the bare bytes */
        tls_put_fixed(&w, c->application_data.data, c->application_data.len);
        break;
    case MLS_CONTENT_PROPOSAL:
        mls_proposal_encode(&w, &c->proposal);
        break;
    case MLS_CONTENT_COMMIT:
        mls_commit_encode(&w, &c->commit);
        break;
    }
    bool ok = tls_writer_error(&w) == 0 && vec_eq("content body", raw, w.buf, w.len);
    tls_writer_reset(&w);
    return ok;
}

/* A member-sent FramedContent from leaf 1 carrying the raw value. */
static bool make_content(const struct fixture *f, uint8_t ct, const struct vec_bytes *raw,
                         struct mls_framed_content *c)
{
    struct tls_reader r;
    memset(c, 0, sizeof(*c));
    if (mls_bytes_set(&c->group_id, f->group_id.p, f->group_id.len))
        return false;
    c->epoch = f->epoch;
    c->sender.sender_type = MLS_SENDER_MEMBER;
    c->sender.leaf_index = SENDER_LEAF;
    c->content_type = ct;
    if (mls_bytes_set(&c->authenticated_data, (const uint8_t *)"aad", 3))
        return false;
    tls_reader_init(&r, raw->p, raw->len);
    switch (ct) {
    case MLS_CONTENT_APPLICATION:
        return mls_bytes_set(&c->application_data, raw->p, raw->len) == 0;
    case MLS_CONTENT_PROPOSAL:
        return mls_proposal_decode(&r, &c->proposal) == 0 && tls_reader_done(&r);
    default:
        return mls_commit_decode(&r, &c->commit) == 0 && tls_reader_done(&r);
    }
}

/* Re-parses an MLSMessage after encoding it, as a receiver would. */
static bool wire_roundtrip(const struct mls_message *in, struct mls_message *out)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_message_encode(&w, in);
    bool ok = tls_writer_error(&w) == 0 && mls_message_parse(w.buf, w.len, out) == 0;
    tls_writer_reset(&w);
    return ok;
}

/* ---- PublicMessage ---------------------------------------------------- */

static bool verify_pub(const struct fixture *f, const struct mls_public_message *pm,
                       const struct vec_bytes *raw)
{
    int rc = mls_framing_public_verify(pm, f->gc, f->gc_len, f->sig_pub.p, f->sig_pub.len,
                                       f->membership_key.p, f->membership_key.len);
    if (rc) {
        fprintf(stderr, "public verify: %s\n", err_str(rc));
        return false;
    }
    /* The follower's view: no membership key, signature only. */
    if (mls_framing_public_verify(pm, f->gc, f->gc_len, f->sig_pub.p, f->sig_pub.len, NULL, 0))
        return false;
    return pm->content.sender.sender_type == MLS_SENDER_MEMBER &&
           pm->content.sender.leaf_index == SENDER_LEAF && body_equals(&pm->content, raw);
}

/* Negative cases on a valid PublicMessage (restored afterwards). */
static bool pub_negatives(const struct fixture *f, struct mls_public_message *pm)
{
    bool ok = true;
    /* flipped membership tag */
    pm->membership_tag.data[0] ^= 1;
    ok = ok && mls_framing_public_verify(pm, f->gc, f->gc_len, f->sig_pub.p, f->sig_pub.len,
                                         f->membership_key.p, f->membership_key.len) ==
                   ERR_CRYPTO;
    pm->membership_tag.data[0] ^= 1;
    /* wrong signer */
    uint8_t other[CRYPTO_SIGN_PUB_LEN];
    memcpy(other, f->sig_pub.p, sizeof(other));
    other[5] ^= 0x40;
    ok = ok && mls_framing_public_verify(pm, f->gc, f->gc_len, other, sizeof(other), NULL, 0) ==
                   ERR_CRYPTO;
    /* the GroupContext of another epoch */
    ok = ok && mls_framing_public_verify(pm, f->gc_wrong_epoch, f->gc_wrong_epoch_len,
                                         f->sig_pub.p, f->sig_pub.len, NULL, 0) == ERR_BADSTATE;
    /* tampered authenticated data breaks the signature */
    if (pm->content.authenticated_data.len) {
        pm->content.authenticated_data.data[0] ^= 1;
        ok = ok && mls_framing_public_verify(pm, f->gc, f->gc_len, f->sig_pub.p, f->sig_pub.len,
                                             NULL, 0) == ERR_CRYPTO;
        pm->content.authenticated_data.data[0] ^= 1;
    }
    if (!ok)
        fprintf(stderr, "public negatives failed\n");
    return ok;
}

static bool check_pub(const struct fixture *f, const json_t *e, const char *rawkey,
                      const char *pubkey, uint8_t ct)
{
    struct vec_bytes raw, pub;
    struct mls_message m, m2;
    struct mls_framed_content c;
    struct mls_framed_content_auth_data auth;
    bool ok = false;
    memset(&m2, 0, sizeof(m2));
    memset(&auth, 0, sizeof(auth));
    memset(&c, 0, sizeof(c));
    if (!hex(e, rawkey, &raw))
        return false;
    if (!hex(e, pubkey, &pub)) {
        vec_bytes_free(&raw);
        return false;
    }
    if (mls_message_parse(pub.p, pub.len, &m) || m.wire_format != MLS_WF_PUBLIC_MESSAGE) {
        fprintf(stderr, "%s does not parse as a PublicMessage\n", pubkey);
        goto out_raw;
    }
    if (!verify_pub(f, &m.public_message, &raw)) {
        fprintf(stderr, "%s: vector message does not verify\n", pubkey);
        goto out;
    }

    /* Protect the raw value ourselves. */
    if (!make_content(f, ct, &raw, &c))
        goto out;
    if (mls_framing_sign(MLS_WF_PUBLIC_MESSAGE, &c, f->gc, f->gc_len, f->sig_priv.p,
                         &auth.signature))
        goto out;
    if (ct == MLS_CONTENT_COMMIT) {
        /* Any tag will do for framing; the real one comes from the next
         * epoch's key schedule. Reuse the vector's. */
        if (mls_bytes_set(&auth.confirmation_tag, m.public_message.auth.confirmation_tag.data,
                          m.public_message.auth.confirmation_tag.len))
            goto out;
        /* A commit without a confirmation tag is refused. */
        struct mls_bytes saved = auth.confirmation_tag;
        struct mls_public_message bad;
        auth.confirmation_tag.data = NULL;
        auth.confirmation_tag.len = 0;
        int rc = mls_framing_public_build(&c, &auth, f->gc, f->gc_len, f->membership_key.p,
                                          f->membership_key.len, &bad);
        auth.confirmation_tag = saved;
        if (rc != ERR_INVALID)
            goto out;
    }
    struct mls_message mine;
    memset(&mine, 0, sizeof(mine));
    mine.version = MLS_VERSION_MLS10;
    mine.wire_format = MLS_WF_PUBLIC_MESSAGE;
    if (mls_framing_public_build(&c, &auth, f->gc, f->gc_len, f->membership_key.p,
                                 f->membership_key.len, &mine.public_message))
        goto out;
    bool rt = wire_roundtrip(&mine, &m2);
    mls_message_free(&mine);
    if (!rt || !verify_pub(f, &m2.public_message, &raw)) {
        fprintf(stderr, "%s: our PublicMessage does not verify\n", pubkey);
        goto out;
    }
    ok = pub_negatives(f, &m2.public_message);
out:
    mls_framed_content_free(&c);
    mls_framed_content_auth_data_free(&auth);
    mls_message_free(&m2);
    mls_message_free(&m);
out_raw:
    vec_bytes_free(&raw);
    vec_bytes_free(&pub);
    return ok;
}

/* ---- PrivateMessage --------------------------------------------------- */

static enum mls_ks_ratchet ratchet_of(uint8_t ct)
{
    return ct == MLS_CONTENT_APPLICATION ? MLS_KS_APPLICATION : MLS_KS_HANDSHAKE;
}

/* Decrypts and verifies a PrivateMessage with a fresh secret tree. */
static bool open_priv(const struct fixture *f, const struct mls_private_message *pm,
                      const struct vec_bytes *raw)
{
    struct mls_ks_tree *t = NULL;
    struct mls_sender_data sd;
    struct mls_ks_key k;
    struct mls_framed_content c;
    struct mls_framed_content_auth_data auth;
    bool ok = false;
    int rc;
    memset(&k, 0, sizeof(k));
    memset(&c, 0, sizeof(c));
    memset(&auth, 0, sizeof(auth));
    if ((rc = mls_framing_private_decrypt_sender_data(pm, f->sd_secret.p, &sd)) != 0) {
        fprintf(stderr, "sender data: %s\n", err_str(rc));
        return false;
    }
    if (sd.leaf_index != SENDER_LEAF)
        goto out;
    if (mls_ks_tree_new(f->enc_secret.p, 2, &t))
        goto out;
    if (mls_ks_tree_key(t, sd.leaf_index, ratchet_of(pm->content_type), sd.generation, &k))
        goto out;
    if ((rc = mls_framing_private_decrypt_content(pm, &sd, k.key, k.nonce, &c, &auth)) != 0) {
        fprintf(stderr, "content: %s\n", err_str(rc));
        goto out;
    }
    if ((rc = mls_framing_verify(MLS_WF_PRIVATE_MESSAGE, &c, f->gc, f->gc_len, f->sig_pub.p,
                                 f->sig_pub.len, &auth.signature)) != 0) {
        fprintf(stderr, "private signature: %s\n", err_str(rc));
        goto out;
    }
    ok = c.sender.leaf_index == SENDER_LEAF && c.epoch == f->epoch && body_equals(&c, raw) &&
         (c.content_type != MLS_CONTENT_COMMIT || auth.confirmation_tag.len > 0);
out:
    mls_ks_key_wipe(&k);
    mls_ks_tree_free(t);
    mls_framed_content_free(&c);
    mls_framed_content_auth_data_free(&auth);
    return ok;
}

static bool priv_negatives(const struct fixture *f, struct mls_private_message *pm)
{
    struct mls_sender_data sd;
    bool ok = true;
    /* forged sender data */
    pm->encrypted_sender_data.data[0] ^= 1;
    ok = ok && mls_framing_private_decrypt_sender_data(pm, f->sd_secret.p, &sd) == ERR_CRYPTO;
    pm->encrypted_sender_data.data[0] ^= 1;
    /* another epoch in the header: the AAD no longer matches */
    pm->epoch++;
    ok = ok && mls_framing_private_decrypt_sender_data(pm, f->sd_secret.p, &sd) == ERR_CRYPTO;
    pm->epoch--;
    /* forged content ciphertext: the sender data key is sampled from it,
     * so sender data fails first; flip the last byte (outside the sample
     * when the ciphertext is longer than Nh) to reach the content AEAD. */
    if (pm->ciphertext.len > CRYPTO_HASH_LEN) {
        struct mls_ks_tree *t = NULL;
        struct mls_ks_key k;
        struct mls_framed_content c;
        struct mls_framed_content_auth_data auth;
        memset(&k, 0, sizeof(k));
        pm->ciphertext.data[pm->ciphertext.len - 1] ^= 1;
        ok = ok && mls_framing_private_decrypt_sender_data(pm, f->sd_secret.p, &sd) == 0;
        ok = ok && mls_ks_tree_new(f->enc_secret.p, 2, &t) == 0;
        ok = ok && mls_ks_tree_key(t, sd.leaf_index, ratchet_of(pm->content_type),
                                   sd.generation, &k) == 0;
        ok = ok && mls_framing_private_decrypt_content(pm, &sd, k.key, k.nonce, &c, &auth) ==
                       ERR_CRYPTO;
        pm->ciphertext.data[pm->ciphertext.len - 1] ^= 1;
        mls_ks_key_wipe(&k);
        mls_ks_tree_free(t);
    }
    if (!ok)
        fprintf(stderr, "private negatives failed\n");
    return ok;
}

static bool check_priv(const struct fixture *f, const json_t *e, const char *rawkey,
                       const char *privkey, uint8_t ct)
{
    struct vec_bytes raw, priv;
    struct mls_message m, m2;
    struct mls_framed_content c;
    struct mls_framed_content_auth_data auth;
    struct mls_ks_tree *t = NULL;
    struct mls_ks_key k;
    bool ok = false;
    memset(&m2, 0, sizeof(m2));
    memset(&auth, 0, sizeof(auth));
    memset(&c, 0, sizeof(c));
    memset(&k, 0, sizeof(k));
    if (!hex(e, rawkey, &raw))
        return false;
    if (!hex(e, privkey, &priv)) {
        vec_bytes_free(&raw);
        return false;
    }
    if (mls_message_parse(priv.p, priv.len, &m) || m.wire_format != MLS_WF_PRIVATE_MESSAGE) {
        fprintf(stderr, "%s does not parse as a PrivateMessage\n", privkey);
        goto out_raw;
    }
    if (!open_priv(f, &m.private_message, &raw)) {
        fprintf(stderr, "%s: vector message does not open\n", privkey);
        goto out;
    }

    /* Protect the raw value ourselves, at generation 3 with padding. */
    if (!make_content(f, ct, &raw, &c))
        goto out;
    if (mls_framing_sign(MLS_WF_PRIVATE_MESSAGE, &c, f->gc, f->gc_len, f->sig_priv.p,
                         &auth.signature))
        goto out;
    if (ct == MLS_CONTENT_COMMIT &&
        mls_bytes_set(&auth.confirmation_tag, (const uint8_t *)"0123456789abcdef0123456789abcdef",
                      32))
        goto out;
    if (mls_ks_tree_new(f->enc_secret.p, 2, &t))
        goto out;
    for (int i = 0; i < 4; i++) /* generations 0..3 */
        if (mls_ks_tree_next_key(t, SENDER_LEAF, ratchet_of(ct), &k))
            goto out;
    struct mls_message mine;
    memset(&mine, 0, sizeof(mine));
    mine.version = MLS_VERSION_MLS10;
    mine.wire_format = MLS_WF_PRIVATE_MESSAGE;
    if (mls_framing_private_encrypt(&c, &auth, f->sd_secret.p, k.generation, k.key, k.nonce, 17,
                                    &mine.private_message))
        goto out;
    bool rt = wire_roundtrip(&mine, &m2);
    mls_message_free(&mine);
    if (!rt || !open_priv(f, &m2.private_message, &raw)) {
        fprintf(stderr, "%s: our PrivateMessage does not open\n", privkey);
        goto out;
    }
    ok = priv_negatives(f, &m2.private_message);
out:
    mls_ks_key_wipe(&k);
    mls_ks_tree_free(t);
    mls_framed_content_free(&c);
    mls_framed_content_auth_data_free(&auth);
    mls_message_free(&m2);
    mls_message_free(&m);
out_raw:
    vec_bytes_free(&raw);
    vec_bytes_free(&priv);
    return ok;
}

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    struct fixture f;
    bool ok = fixture_load(e, &f);
    ok = ok && check_pub(&f, e, "proposal", "proposal_pub", MLS_CONTENT_PROPOSAL);
    ok = ok && check_pub(&f, e, "commit", "commit_pub", MLS_CONTENT_COMMIT);
    ok = ok && check_priv(&f, e, "proposal", "proposal_priv", MLS_CONTENT_PROPOSAL);
    ok = ok && check_priv(&f, e, "commit", "commit_priv", MLS_CONTENT_COMMIT);
    ok = ok && check_priv(&f, e, "application", "application_priv", MLS_CONTENT_APPLICATION);
    fixture_free(&f);
    return ok;
}

static void message_protection_vectors(void **state)
{
    (void)state;
    assert_int_equal(crypto_init(), 0);
    assert_int_equal(vec_run("mls-test-vectors/message-protection.json", "message-protection.json",
                             VEC_SUITE_3, check_entry, NULL),
                     0);
}

/* Hand-built: padding must be zero; application data is never public;
 * a PrivateMessage needs a member sender. */
static void framing_rules(void **state)
{
    (void)state;
    assert_int_equal(crypto_init(), 0);
    uint8_t priv[CRYPTO_SIGN_PRIV_LEN], pub[CRYPTO_SIGN_PUB_LEN];
    uint8_t sds[CRYPTO_HASH_LEN] = {1}, key[CRYPTO_AEAD_KEY_LEN] = {2},
            nonce[CRYPTO_AEAD_NONCE_LEN] = {3};
    static const uint8_t gc[] = {0, 1, 0, 3, 1, 'g', 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0};
    crypto_sig_keygen(pub, priv);

    struct mls_framed_content c, c2;
    struct mls_framed_content_auth_data auth, auth2;
    struct mls_private_message pm;
    struct mls_public_message pubm;
    struct mls_sender_data sd;
    memset(&c, 0, sizeof(c));
    memset(&auth, 0, sizeof(auth));
    assert_int_equal(mls_bytes_set(&c.group_id, (const uint8_t *)"g", 1), 0);
    c.epoch = 5;
    c.sender.sender_type = MLS_SENDER_MEMBER;
    c.sender.leaf_index = 0;
    c.content_type = MLS_CONTENT_APPLICATION;
    assert_int_equal(mls_bytes_set(&c.application_data, (const uint8_t *)"hello", 5), 0);
    assert_int_equal(
        mls_framing_sign(MLS_WF_PRIVATE_MESSAGE, &c, gc, sizeof(gc), priv, &auth.signature), 0);

    /* application data as a PublicMessage: refused both ways */
    assert_int_equal(mls_framing_public_build(&c, &auth, gc, sizeof(gc), key, sizeof(key), &pubm),
                     ERR_INVALID);

    /* member-sent TBS needs the GroupContext */
    struct mls_bytes sig;
    assert_int_equal(mls_framing_sign(MLS_WF_PRIVATE_MESSAGE, &c, NULL, 0, priv, &sig),
                     ERR_INVALID);

    /* a good round trip, then the same plaintext with non-zero padding */
    assert_int_equal(mls_framing_private_encrypt(&c, &auth, sds, 0, key, nonce, 8, &pm), 0);
    assert_int_equal(mls_framing_private_decrypt_sender_data(&pm, sds, &sd), 0);
    assert_int_equal(mls_framing_private_decrypt_content(&pm, &sd, key, nonce, &c2, &auth2), 0);
    assert_int_equal(mls_framing_verify(MLS_WF_PRIVATE_MESSAGE, &c2, gc, sizeof(gc), pub,
                                        sizeof(pub), &auth2.signature),
                     0);
    /* signed as a PublicMessage it does not verify as private */
    assert_int_equal(mls_framing_verify(MLS_WF_PUBLIC_MESSAGE, &c2, gc, sizeof(gc), pub,
                                        sizeof(pub), &auth2.signature),
                     ERR_CRYPTO);
    mls_framed_content_free(&c2);
    mls_framed_content_auth_data_free(&auth2);

    /* Re-seal the plaintext with a non-zero padding byte under the same
     * key and AAD, keeping the sender data valid for the new ciphertext. */
    {
        struct tls_writer pt, aad;
        uint8_t n2[CRYPTO_AEAD_NONCE_LEN];
        tls_writer_init(&pt, 0);
        tls_writer_init(&aad, 0);
        mls_bytes_encode(&pt, &c.application_data);
        mls_framed_content_auth_data_encode(&pt, c.content_type, &auth);
        tls_put_u8(&pt, 0);
        tls_put_u8(&pt, 7); /* bad padding */
        mls_bytes_encode(&aad, &pm.group_id);
        tls_put_u64(&aad, pm.epoch);
        tls_put_u8(&aad, pm.content_type);
        mls_bytes_encode(&aad, &pm.authenticated_data);
        assert_int_equal(tls_writer_error(&pt) | tls_writer_error(&aad), 0);
        memcpy(n2, nonce, sizeof(n2));
        for (int i = 0; i < 4; i++)
            n2[i] ^= sd.reuse_guard[i];
        uint8_t *ct = malloc(pt.len + CRYPTO_AEAD_TAG_LEN);
        assert_non_null(ct);
        assert_int_equal(crypto_aead_seal(key, n2, aad.buf, aad.len, pt.buf, pt.len, ct), 0);
        struct mls_private_message bad = pm;
        bad.ciphertext.data = ct;
        bad.ciphertext.len = pt.len + CRYPTO_AEAD_TAG_LEN;
        assert_int_equal(mls_framing_private_decrypt_content(&bad, &sd, key, nonce, &c2, &auth2),
                         ERR_MALFORMED);
        free(ct);
        tls_writer_reset(&pt);
        tls_writer_reset(&aad);
    }
    mls_private_message_free(&pm);

    /* external sender: no PrivateMessage */
    c.sender.sender_type = MLS_SENDER_EXTERNAL;
    assert_int_equal(mls_framing_private_encrypt(&c, &auth, sds, 0, key, nonce, 0, &pm),
                     ERR_INVALID);
    mls_framed_content_free(&c);
    mls_framed_content_auth_data_free(&auth);
}

/* seal/open with the secret tree: out of order within the window works, a
 * replayed generation is refused, and the opener learns the sender leaf. */
static void seal_open_with_tree(void **state)
{
    (void)state;
    assert_int_equal(crypto_init(), 0);
    uint8_t priv[CRYPTO_SIGN_PRIV_LEN], pub[CRYPTO_SIGN_PUB_LEN];
    uint8_t enc[MLS_KS_NH] = {9}, sds[CRYPTO_HASH_LEN] = {4};
    static const uint8_t gc[] = {0, 1, 0, 3, 1, 'g', 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0};
    struct mls_ks_tree *sender = NULL, *receiver = NULL;
    struct mls_private_message pm[3];
    crypto_sig_keygen(pub, priv);
    assert_int_equal(mls_ks_tree_new(enc, 4, &sender), 0);
    assert_int_equal(mls_ks_tree_new(enc, 4, &receiver), 0);

    for (int i = 0; i < 3; i++) {
        struct mls_framed_content c;
        struct mls_framed_content_auth_data auth;
        uint8_t msg[2] = {'m', (uint8_t)('0' + i)};
        memset(&c, 0, sizeof(c));
        memset(&auth, 0, sizeof(auth));
        assert_int_equal(mls_bytes_set(&c.group_id, (const uint8_t *)"g", 1), 0);
        c.epoch = 5;
        c.sender.sender_type = MLS_SENDER_MEMBER;
        c.sender.leaf_index = 2;
        c.content_type = MLS_CONTENT_APPLICATION;
        assert_int_equal(mls_bytes_set(&c.application_data, msg, sizeof(msg)), 0);
        assert_int_equal(mls_framing_sign(MLS_WF_PRIVATE_MESSAGE, &c, gc, sizeof(gc), priv,
                                          &auth.signature),
                         0);
        assert_int_equal(mls_framing_private_seal(&c, &auth, sds, sender, (size_t)i, &pm[i]), 0);
        mls_framed_content_free(&c);
        mls_framed_content_auth_data_free(&auth);
    }
    static const int order[] = {2, 0, 1};
    for (int j = 0; j < 3; j++) {
        int i = order[j];
        struct mls_sender_data sd;
        struct mls_framed_content c;
        struct mls_framed_content_auth_data auth;
        assert_int_equal(mls_framing_private_open(&pm[i], sds, receiver, &sd, &c, &auth), 0);
        assert_int_equal(sd.leaf_index, 2);
        assert_int_equal(sd.generation, (uint32_t)i);
        assert_int_equal(c.application_data.len, 2);
        assert_int_equal(c.application_data.data[1], '0' + i);
        assert_int_equal(mls_framing_verify(MLS_WF_PRIVATE_MESSAGE, &c, gc, sizeof(gc), pub,
                                            sizeof(pub), &auth.signature),
                         0);
        mls_framed_content_free(&c);
        mls_framed_content_auth_data_free(&auth);
    }
    /* replay */
    {
        struct mls_sender_data sd;
        struct mls_framed_content c;
        struct mls_framed_content_auth_data auth;
        assert_int_equal(mls_framing_private_open(&pm[1], sds, receiver, &sd, &c, &auth),
                         ERR_BADSTATE);
    }
    for (int i = 0; i < 3; i++)
        mls_private_message_free(&pm[i]);
    mls_ks_tree_free(sender);
    mls_ks_tree_free(receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(message_protection_vectors),
        cmocka_unit_test(framing_rules),
        cmocka_unit_test(seal_open_with_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
