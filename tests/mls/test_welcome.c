/* test_welcome.c: opening a Welcome on welcome.json (suite 3): find our
 * GroupSecrets by KeyPackageRef, decrypt them, decrypt the GroupInfo,
 * verify its signature and confirmation tag; and every failure path
 * (wrong init key, wrong signer, tampered tag, tampered ciphertext, a
 * KeyPackage the Welcome is not for). */
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
#include "mls_ks.h"
#include "mls_struct.h"
#include "mls_welcome.h"
#include "vectors.h"

struct fixture {
    struct vec_bytes init_priv, kp_msg, signer_pub, welcome_msg;
    struct mls_message kp, welcome;
};

static bool load(const json_t *e, struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    return vec_hex(e, "init_priv", &f->init_priv) && vec_hex(e, "key_package", &f->kp_msg) &&
           vec_hex(e, "signer_pub", &f->signer_pub) && vec_hex(e, "welcome", &f->welcome_msg) &&
           f->init_priv.len == CRYPTO_KEM_PRIV_LEN &&
           mls_message_parse(f->kp_msg.p, f->kp_msg.len, &f->kp) == 0 &&
           f->kp.wire_format == MLS_WF_KEY_PACKAGE &&
           mls_message_parse(f->welcome_msg.p, f->welcome_msg.len, &f->welcome) == 0 &&
           f->welcome.wire_format == MLS_WF_WELCOME;
}

static void unload(struct fixture *f)
{
    mls_message_free(&f->kp);
    mls_message_free(&f->welcome);
    vec_bytes_free(&f->init_priv);
    vec_bytes_free(&f->kp_msg);
    vec_bytes_free(&f->signer_pub);
    vec_bytes_free(&f->welcome_msg);
}

/* The whole join; returns the first error. */
static int join(const struct fixture *f, const uint8_t *init_priv, const uint8_t *signer,
                size_t signer_len, struct mls_ks_epoch **ep)
{
    struct mls_group_secrets gs;
    struct mls_group_info gi;
    uint8_t psk_secret[MLS_KS_NH];
    int rc;

    *ep = NULL;
    rc = mls_welcome_open_secrets(&f->welcome.welcome, &f->kp.key_package, init_priv, &gs);
    if (rc != 0)
        return rc;
    rc = mls_welcome_psk_secret(&gs, NULL, 0, psk_secret);
    if (rc == 0)
        rc = mls_welcome_open_group_info(&f->welcome.welcome, &gs, psk_secret, &gi);
    if (rc == 0) {
        rc = mls_welcome_verify_group_info(&gi, signer, signer_len, &gs, psk_secret, ep);
        mls_group_info_free(&gi);
    }
    mls_group_secrets_free(&gs);
    return rc;
}

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    struct fixture f;
    struct mls_ks_epoch *ep = NULL;
    bool ok = load(e, &f);

    ok = ok && join(&f, f.init_priv.p, f.signer_pub.p, f.signer_pub.len, &ep) == 0 && ep != NULL;
    mls_ks_epoch_free(ep);
    if (ok) {
        /* Wrong init key. */
        uint8_t bad[CRYPTO_KEM_PRIV_LEN];
        memcpy(bad, f.init_priv.p, sizeof(bad));
        bad[3] ^= 1;
        ok = join(&f, bad, f.signer_pub.p, f.signer_pub.len, &ep) == ERR_CRYPTO && ep == NULL;
        /* Wrong signer key; a signer key of the wrong size. */
        uint8_t other[CRYPTO_SIGN_PUB_LEN], sk[CRYPTO_SIGN_PRIV_LEN];
        crypto_sig_keygen(other, sk);
        ok = ok && join(&f, f.init_priv.p, other, sizeof(other), &ep) == ERR_CRYPTO;
        ok = ok && join(&f, f.init_priv.p, f.signer_pub.p, 31, &ep) == ERR_CRYPTO;
    }
    if (ok) {
        /* Tampered encrypted_group_info: GroupSecrets no longer decrypt
         * (it is their HPKE context) */
        struct mls_bytes *egi = &f.welcome.welcome.encrypted_group_info;
        egi->data[egi->len - 1] ^= 1;
        ok = join(&f, f.init_priv.p, f.signer_pub.p, f.signer_pub.len, &ep) == ERR_CRYPTO;
        egi->data[egi->len - 1] ^= 1;
    }
    if (ok) {
        /* A GroupInfo whose confirmation tag or signature is altered. */
        struct mls_group_secrets gs;
        struct mls_group_info gi;
        uint8_t psk_secret[MLS_KS_NH] = {0};
        ok = mls_welcome_open_secrets(&f.welcome.welcome, &f.kp.key_package, f.init_priv.p,
                                      &gs) == 0 &&
             mls_welcome_open_group_info(&f.welcome.welcome, &gs, psk_secret, &gi) == 0;
        if (ok) {
            gi.confirmation_tag.data[0] ^= 1;
            /* The tag is signed too, so the signature fails first. */
            ok = mls_welcome_verify_group_info(&gi, f.signer_pub.p, f.signer_pub.len, &gs,
                                               psk_secret, &ep) == ERR_CRYPTO;
            gi.confirmation_tag.data[0] ^= 1;
            /* A PSK the sender did not use: wrong epoch secrets, so the
             * GroupInfo does not even decrypt. */
            uint8_t wrong_psk[MLS_KS_NH] = {1};
            struct mls_group_info gi2;
            ok = ok && mls_welcome_open_group_info(&f.welcome.welcome, &gs, wrong_psk, &gi2) ==
                           ERR_CRYPTO;
            /* PSK count mismatch. */
            struct mls_bytes one = {0};
            ok = ok && mls_welcome_psk_secret(&gs, &one, 1, psk_secret) == ERR_INVALID;
            /* The epoch: its epoch_authenticator is stable across joins. */
            struct mls_ks_epoch *a = NULL, *b = NULL;
            uint8_t x[MLS_KS_NH], y[MLS_KS_NH];
            ok = ok &&
                 mls_welcome_verify_group_info(&gi, f.signer_pub.p, f.signer_pub.len, &gs,
                                               psk_secret, &a) == 0 &&
                 mls_welcome_verify_group_info(&gi, f.signer_pub.p, f.signer_pub.len, &gs,
                                               psk_secret, &b) == 0 &&
                 mls_ks_epoch_secret(a, MLS_KS_EPOCH_AUTHENTICATOR, x) == 0 &&
                 mls_ks_epoch_secret(b, MLS_KS_EPOCH_AUTHENTICATOR, y) == 0 &&
                 memcmp(x, y, sizeof(x)) == 0;
            mls_ks_epoch_free(a);
            mls_ks_epoch_free(b);
            mls_group_info_free(&gi);
        }
        mls_group_secrets_free(&gs);
    }
    if (ok) {
        /* A KeyPackage this Welcome is not for. */
        struct mls_bytes *ik = &f.kp.key_package.init_key;
        ik->data[0] ^= 1;
        ok = join(&f, f.init_priv.p, f.signer_pub.p, f.signer_pub.len, &ep) == ERR_NOT_FOUND;
        ik->data[0] ^= 1;
    }
    unload(&f);
    return ok;
}

static void welcome_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/welcome.json", "welcome.json", VEC_SUITE_3, check_entry, NULL), 0);
}

/* passive-client-welcome.json: the joins only (the epochs after them are
 * the group engine's, in "MLS (2 of 2)"). The PSKs named in GroupSecrets
 * are looked up in external_psks; the signer's key is read from the ratchet
 * tree (out of band, or the GroupInfo's ratchet_tree extension) without
 * validating the tree, which is the tree module's job. The joined epoch's
 * epoch_authenticator must equal initial_epoch_authenticator. */
static bool passive_join(const json_t *e)
{
    struct vec_bytes init_priv = {0}, kp_msg = {0}, w_msg = {0}, tree_bytes = {0}, want = {0};
    struct mls_message kp, w;
    struct mls_group_secrets gs;
    struct mls_group_info gi;
    struct mls_ratchet_tree tree;
    struct mls_bytes vals[8];
    struct vec_bytes ids[8], psks[8];
    struct mls_ks_epoch *ep = NULL;
    uint8_t psk_secret[MLS_KS_NH], auth[MLS_KS_NH];
    const json_t *ext = json_object_get(e, "external_psks");
    size_t n_ext = json_array_size(ext);
    bool ok;

    memset(&kp, 0, sizeof(kp));
    memset(&w, 0, sizeof(w));
    memset(&gs, 0, sizeof(gs));
    memset(&gi, 0, sizeof(gi));
    memset(&tree, 0, sizeof(tree));
    memset(vals, 0, sizeof(vals));
    memset(ids, 0, sizeof(ids));
    memset(psks, 0, sizeof(psks));
    ok = n_ext <= 8 && vec_hex(e, "init_priv", &init_priv) &&
         vec_hex(e, "key_package", &kp_msg) && vec_hex(e, "welcome", &w_msg) &&
         vec_hex(e, "initial_epoch_authenticator", &want) &&
         init_priv.len == CRYPTO_KEM_PRIV_LEN &&
         mls_message_parse(kp_msg.p, kp_msg.len, &kp) == 0 &&
         mls_message_parse(w_msg.p, w_msg.len, &w) == 0 && kp.wire_format == MLS_WF_KEY_PACKAGE &&
         w.wire_format == MLS_WF_WELCOME;
    for (size_t i = 0; ok && i < n_ext; i++)
        ok = vec_hex(json_array_get(ext, i), "psk_id", &ids[i]) &&
             vec_hex(json_array_get(ext, i), "psk", &psks[i]);
    ok = ok && mls_welcome_open_secrets(&w.welcome, &kp.key_package, init_priv.p, &gs) == 0 &&
         gs.n_psks <= 8;
    /* Look up each PSK GroupSecrets names. */
    for (size_t i = 0; ok && i < gs.n_psks; i++) {
        const struct mls_pre_shared_key_id *id = &gs.psks[i];
        bool found = false;
        for (size_t j = 0; id->psktype == MLS_PSK_EXTERNAL && j < n_ext && !found; j++) {
            if (ids[j].len == id->psk_id.len &&
                memcmp(ids[j].p, id->psk_id.data, ids[j].len) == 0) {
                vals[i].data = psks[j].p; /* borrowed: not freed via vals */
                vals[i].len = psks[j].len;
                found = true;
            }
        }
        ok = found;
    }
    ok = ok && mls_welcome_psk_secret(&gs, vals, gs.n_psks, psk_secret) == 0 &&
         mls_welcome_open_group_info(&w.welcome, &gs, psk_secret, &gi) == 0;
    if (ok) {
        const json_t *rt = json_object_get(e, "ratchet_tree");
        if (json_is_string(rt))
            ok = vec_hex_value(rt, &tree_bytes) &&
                 mls_ratchet_tree_parse(tree_bytes.p, tree_bytes.len, &tree) == 0;
        else
            ok = mls_ext_ratchet_tree(&gi.extensions, &tree) == 0;
    }
    size_t node = (size_t)gi.signer * 2;
    ok = ok && node < tree.n_nodes && tree.nodes[node].present &&
         tree.nodes[node].node_type == MLS_NODE_LEAF;
    ok = ok &&
         mls_welcome_verify_group_info(&gi, tree.nodes[node].leaf.signature_key.data,
                                       tree.nodes[node].leaf.signature_key.len, &gs, psk_secret,
                                       &ep) == 0 &&
         mls_ks_epoch_secret(ep, MLS_KS_EPOCH_AUTHENTICATOR, auth) == 0 &&
         vec_eq("initial_epoch_authenticator", &want, auth, sizeof(auth));
    /* With PSKs, leaving them out must fail. */
    if (ok && gs.n_psks > 0) {
        struct mls_group_info gi2;
        uint8_t none[MLS_KS_NH] = {0};
        ok = mls_welcome_open_group_info(&w.welcome, &gs, none, &gi2) == ERR_CRYPTO;
    }
    mls_ks_epoch_free(ep);
    mls_ratchet_tree_free(&tree);
    mls_group_info_free(&gi);
    mls_group_secrets_free(&gs);
    mls_message_free(&kp);
    mls_message_free(&w);
    for (size_t i = 0; i < 8; i++) {
        vec_bytes_free(&ids[i]);
        vec_bytes_free(&psks[i]);
    }
    vec_bytes_free(&init_priv);
    vec_bytes_free(&kp_msg);
    vec_bytes_free(&w_msg);
    vec_bytes_free(&tree_bytes);
    vec_bytes_free(&want);
    return ok;
}

/* One join (ctx: the count of entries with external PSKs). */
static bool join_entry(size_t index, const json_t *e, void *ctx)
{
    unsigned *with_psk = ctx;
    (void)index;
    if (json_array_size(json_object_get(e, "external_psks")) > 0)
        (*with_psk)++;
    return passive_join(e);
}

static void passive_client_welcome_joins(void **state)
{
    (void)state;
    unsigned with_psk = 0;
    int rc = vec_run("mls-test-vectors/passive-client-welcome.json",
                     "passive-client-welcome.json (joins only)", VEC_SUITE_3, join_entry, &with_psk);
    printf("passive-client-welcome.json: %u with external PSKs\n", with_psk);
    assert_int_equal(rc, 0);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(welcome_vectors),
        cmocka_unit_test(passive_client_welcome_joins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
