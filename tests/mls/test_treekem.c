/* test_treekem.c: treekem.json (suite 3) through mls_treekem.
 *
 * For each entry: every leaf's private state (leaf key, path secrets) is
 * checked against the tree's public keys; every UpdatePath is applied
 * (mls_tree_apply_path), its tree hash compared, and each other leaf with
 * private state decrypts it and must find the vector's path secret and
 * commit secret. Then each leaf with private state creates a new path
 * (mls_treekem_path_generate + _encrypt) and every other one must process
 * it to the same commit secret and tree hash. Negative: a tampered
 * ciphertext and a wrong GroupContext are refused. */
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
#include "mls_struct.h"
#include "mls_tree.h"
#include "mls_treekem.h"
#include "vectors.h"

#define MAXLEAF 64

struct priv_leaf {
    uint32_t index;
    uint8_t sig_priv[32];
    struct mls_treekem_priv p;
};

static int encode_gc(const struct vec_bytes *gid, uint64_t epoch, const uint8_t th[32],
                     const struct vec_bytes *cth, uint8_t **out, size_t *len)
{
    struct mls_group_context gc;
    struct tls_writer w;
    memset(&gc, 0, sizeof(gc));
    gc.version = 1;
    gc.cipher_suite = 3;
    gc.epoch = epoch;
    if (mls_bytes_set(&gc.group_id, gid->p, gid->len) || mls_bytes_set(&gc.tree_hash, th, 32) ||
        mls_bytes_set(&gc.confirmed_transcript_hash, cth->p, cth->len)) {
        mls_group_context_free(&gc);
        return ERR_NOMEM;
    }
    tls_writer_init(&w, 0);
    mls_group_context_encode(&w, &gc);
    mls_group_context_free(&gc);
    return tls_writer_take(&w, out, len);
}

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    unsigned *entries = ctx;
    (*entries)++;
    struct vec_bytes gid = {0}, cth = {0}, rt = {0};
    struct mls_tree *tree = NULL;
    struct priv_leaf *pl = calloc(MAXLEAF, sizeof(*pl));
    size_t npl = 0;
    bool ok = pl && vec_hex(e, "group_id", &gid) && vec_hex(e, "confirmed_transcript_hash", &cth) &&
              vec_hex(e, "ratchet_tree", &rt) && mls_tree_decode(rt.p, rt.len, &tree) == 0;
    uint64_t epoch = ok ? vec_uint(e, "epoch") : 0;
    const json_t *lp = json_object_get(e, "leaves_private");
    const json_t *ups = json_object_get(e, "update_paths");
    size_t i, j;
    const json_t *x;

    /* Private state of each leaf. */
    json_array_foreach(lp, i, x) {
        struct vec_bytes ep = {0}, sp = {0};
        const json_t *pss = json_object_get(x, "path_secrets"), *y;
        if (!ok || npl >= MAXLEAF)
            break;
        ok = vec_hex(x, "encryption_priv", &ep) && ep.len == 32 &&
             vec_hex(x, "signature_priv", &sp) && sp.len == 32;
        if (ok) {
            pl[npl].index = (uint32_t)vec_uint(x, "index");
            memcpy(pl[npl].sig_priv, sp.p, 32);
            mls_treekem_priv_init(&pl[npl].p, pl[npl].index, ep.p);
        }
        json_array_foreach(pss, j, y) {
            struct vec_bytes ps = {0};
            uint8_t priv[32], pub[32];
            uint32_t node = (uint32_t)vec_uint(y, "node");
            const struct mls_node *nd;
            ok = ok && vec_hex(y, "path_secret", &ps) && ps.len == 32 &&
                 mls_treekem_derive_keypair(ps.p, priv, pub) == 0 &&
                 (nd = mls_tree_node(tree, node)) != NULL && nd->node_type == MLS_NODE_PARENT &&
                 nd->parent.encryption_key.len == 32 &&
                 memcmp(nd->parent.encryption_key.data, pub, 32) == 0 &&
                 mls_treekem_priv_set(&pl[npl].p, node, priv) == 0;
            vec_bytes_free(&ps);
        }
        if (ok) {
            /* Every key we hold matches the tree: pruning keeps them all. */
            uint32_t before = pl[npl].p.n;
            mls_treekem_priv_prune(&pl[npl].p, tree);
            ok = pl[npl].p.n == before;
            npl++;
        }
        vec_bytes_free(&ep);
        vec_bytes_free(&sp);
    }

    /* Process each UpdatePath of the vector. */
    json_array_foreach(ups, i, x) {
        struct vec_bytes upb = {0}, cs = {0}, tha = {0};
        struct mls_update_path up;
        struct tls_reader r;
        struct mls_tree *t2 = NULL;
        uint8_t th[32], *gc = NULL;
        size_t gc_len = 0;
        uint32_t sender = (uint32_t)vec_uint(x, "sender");
        const json_t *pss = json_object_get(x, "path_secrets");
        memset(&up, 0, sizeof(up));
        if (!ok)
            break;
        ok = vec_hex(x, "update_path", &upb) && vec_hex(x, "commit_secret", &cs) &&
             vec_hex(x, "tree_hash_after", &tha);
        tls_reader_init(&r, upb.p, upb.len);
        ok = ok && mls_update_path_decode(&r, &up) == 0 && tls_reader_done(&r) &&
             mls_tree_clone(tree, &t2) == 0 &&
             mls_tree_apply_path(t2, sender, &up, gid.p, gid.len) == 0 &&
             mls_tree_node_hash(t2, mls_tree_root(t2), th) == 0 &&
             vec_eq("tree_hash_after", &tha, th, 32) &&
             encode_gc(&gid, epoch, th, &cth, &gc, &gc_len) == 0;
        for (j = 0; ok && j < npl; j++) {
            struct mls_treekem_priv p;
            uint8_t commit[32], ps[32];
            struct vec_bytes want = {0};
            if (pl[j].index == sender)
                continue;
            memcpy(&p, &pl[j].p, sizeof(p));
            ok = mls_treekem_path_decrypt(t2, &p, sender, &up, NULL, 0, gc, gc_len, commit, ps,
                                          NULL) == 0 &&
                 vec_eq("commit_secret", &cs, commit, 32) &&
                 vec_hex_value(json_array_get(pss, pl[j].index), &want) &&
                 vec_eq("path_secret", &want, ps, 32);
            if (ok) {
                /* Tampered ciphertext and a different GroupContext fail. */
                struct mls_treekem_priv q;
                memcpy(&q, &pl[j].p, sizeof(q));
                gc[gc_len - 1] ^= 1;
                ok = mls_treekem_path_decrypt(t2, &q, sender, &up, NULL, 0, gc, gc_len, commit,
                                              NULL, NULL) == ERR_CRYPTO;
                gc[gc_len - 1] ^= 1;
                mls_treekem_priv_wipe(&q);
            }
            mls_treekem_priv_wipe(&p);
            vec_bytes_free(&want);
        }
        free(gc);
        mls_tree_free(t2);
        mls_update_path_free(&up);
        vec_bytes_free(&upb);
        vec_bytes_free(&cs);
        vec_bytes_free(&tha);
    }

    /* Each leaf with private state creates a path; the others process it. */
    for (i = 0; ok && i < npl; i++) {
        struct mls_tree *ta = NULL;
        struct mls_treekem_update u;
        struct mls_treekem_priv p;
        uint8_t th[32], *gc = NULL;
        size_t gc_len = 0;
        const struct mls_leaf_node *old = mls_tree_leaf(tree, pl[i].index);
        memset(&u, 0, sizeof(u));
        memcpy(&p, &pl[i].p, sizeof(p));
        ok = old && mls_tree_clone(tree, &ta) == 0 &&
             mls_treekem_path_generate(ta, pl[i].index, old, pl[i].sig_priv, gid.p, gid.len, NULL,
                                       &p, &u) == 0 &&
             mls_tree_node_hash(ta, mls_tree_root(ta), th) == 0 &&
             encode_gc(&gid, epoch, th, &cth, &gc, &gc_len) == 0 &&
             mls_treekem_path_encrypt(ta, &u, NULL, 0, gc, gc_len) == 0;
        for (j = 0; ok && j < npl; j++) {
            struct mls_tree *tb = NULL;
            struct mls_treekem_priv q;
            uint8_t th2[32], commit[32];
            if (j == i)
                continue;
            memcpy(&q, &pl[j].p, sizeof(q));
            ok = mls_tree_clone(tree, &tb) == 0 &&
                 mls_tree_apply_path(tb, pl[i].index, u.path, gid.p, gid.len) == 0 &&
                 mls_tree_node_hash(tb, mls_tree_root(tb), th2) == 0 &&
                 memcmp(th, th2, 32) == 0 &&
                 mls_treekem_path_decrypt(tb, &q, pl[i].index, u.path, NULL, 0, gc, gc_len,
                                          commit, NULL, NULL) == 0 &&
                 memcmp(commit, u.commit_secret, 32) == 0;
            if (!ok)
                fprintf(stderr, "leaf %u cannot process the path of leaf %u\n", pl[j].index,
                        pl[i].index);
            mls_treekem_priv_wipe(&q);
            mls_tree_free(tb);
        }
        /* The creator now holds keys matching every node of its new path. */
        if (ok) {
            uint32_t before = p.n;
            mls_treekem_priv_prune(&p, ta);
            ok = p.n == before && p.n == u.n + 1;
        }
        mls_treekem_update_reset(&u);
        mls_treekem_priv_wipe(&p);
        free(gc);
        mls_tree_free(ta);
    }

    free(pl);
    mls_tree_free(tree);
    vec_bytes_free(&gid);
    vec_bytes_free(&cth);
    vec_bytes_free(&rt);
    return ok;
}

static void test_treekem(void **state)
{
    (void)state;
    unsigned entries = 0;
    assert_int_equal(vec_run("mls-test-vectors/treekem.json", "treekem.json", VEC_SUITE_3,
                             check_entry, &entries),
                     0);
    assert_int_equal(entries, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_treekem)};
    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
