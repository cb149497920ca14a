/*
 * test_tree_operations.c: applying proposals and UpdatePaths to the public
 * ratchet tree.
 *  - tree-operations.json (5 entries, suite 1: tree operations only use
 *    SHA-256 and Ed25519, shared with suite 3): decode tree_before, check its
 *    tree hash, apply the Add/Update/Remove proposal from proposal_sender,
 *    check the encoded tree and its hash against tree_after/tree_hash_after.
 *  - treekem.json (suite-3 entries), public part only: apply each
 *    update_path from its sender to ratchet_tree (parent hashes computed,
 *    the new LeafNode's parent_hash and signature checked) and compare the
 *    tree hash with tree_hash_after; the result must still validate.
 *  - hand-made damage to an UpdatePath is refused and leaves the tree as it
 *    was.
 */
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
#include "vectors.h"

static const char *OPS_FILE = "mls-test-vectors/tree-operations.json";
static const char *KEM_FILE = "mls-test-vectors/treekem.json";

static bool root_hash_is(const struct mls_tree *t, const json_t *e, const char *key)
{
    struct vec_bytes want = {0};
    uint8_t h[MLS_TREE_HASH_LEN];
    bool ok = vec_hex(e, key, &want) && mls_tree_node_hash(t, mls_tree_root(t), h) == 0 &&
              vec_eq(key, &want, h, sizeof(h));
    vec_bytes_free(&want);
    return ok;
}

static bool tree_is(const struct mls_tree *t, const json_t *e, const char *key)
{
    struct vec_bytes want = {0};
    uint8_t *enc = NULL;
    size_t len = 0;
    bool ok = vec_hex(e, key, &want) && mls_tree_encode(t, &enc, &len) == 0 &&
              vec_eq(key, &want, enc, len);
    free(enc);
    vec_bytes_free(&want);
    return ok;
}

static bool ops_entry(size_t index, const json_t *e, void *ctx)
{
    unsigned idx = (unsigned)index;
    (void)ctx;
    struct vec_bytes before = {0}, prop = {0};
    struct mls_proposal p = {0};
    struct mls_tree *t = NULL;
    bool ok = false;
    int rc = ERR_INVALID;

    if (!vec_hex(e, "tree_before", &before) || !vec_hex(e, "proposal", &prop))
        goto out;
    uint32_t sender = (uint32_t)vec_uint(e, "proposal_sender");
    if (mls_tree_decode(before.p, before.len, &t) != 0 || !root_hash_is(t, e, "tree_hash_before"))
        goto out;
    if (mls_proposal_parse(prop.p, prop.len, &p) != 0)
        goto out;
    uint32_t added = 0;
    switch (p.proposal_type) {
    case MLS_PROPOSAL_ADD:
        rc = mls_tree_add(t, &p.add.leaf_node, &added);
        break;
    case MLS_PROPOSAL_UPDATE:
        rc = mls_tree_update(t, sender, &p.update);
        break;
    case MLS_PROPOSAL_REMOVE:
        rc = mls_tree_remove(t, p.remove);
        break;
    default:
        break;
    }
    if (rc != 0) {
        fprintf(stderr, "entry %u: applying proposal type %u: %s\n", idx, p.proposal_type,
                err_str(rc));
        goto out;
    }
    ok = tree_is(t, e, "tree_after") && root_hash_is(t, e, "tree_hash_after");
out:
    if (!ok)
        fprintf(stderr, "tree-operations entry %u failed\n", idx);
    mls_proposal_free(&p);
    mls_tree_free(t);
    vec_bytes_free(&before);
    vec_bytes_free(&prop);
    return ok;
}

static void tree_operations_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run(OPS_FILE, NULL, VEC_ANY_SUITE, ops_entry, NULL), 0);
}

static bool kem_path(const struct vec_bytes *tree, const struct vec_bytes *gid, const json_t *up,
                     unsigned idx)
{
    struct vec_bytes pb = {0};
    struct mls_update_path path = {0};
    struct tls_reader r;
    struct mls_tree *t = NULL;
    bool ok = false;

    if (!vec_hex(up, "update_path", &pb) || mls_tree_decode(tree->p, tree->len, &t) != 0)
        goto out;
    tls_reader_init(&r, pb.p, pb.len);
    if (mls_update_path_decode(&r, &path) != 0 || !tls_reader_done(&r))
        goto out;
    uint32_t sender = (uint32_t)vec_uint(up, "sender");
    int rc = mls_tree_apply_path(t, sender, &path, gid->p, gid->len);
    if (rc != 0) {
        fprintf(stderr, "treekem entry %u: apply path from %u: %s\n", idx, sender, err_str(rc));
        goto out;
    }
    rc = mls_tree_validate(t, gid->p, gid->len);
    if (rc != 0) {
        fprintf(stderr, "treekem entry %u: tree after path invalid: %s\n", idx, err_str(rc));
        goto out;
    }
    ok = root_hash_is(t, up, "tree_hash_after");
out:
    mls_update_path_free(&path);
    mls_tree_free(t);
    vec_bytes_free(&pb);
    return ok;
}

static void treekem_public_paths(void **state)
{
    (void)state;
    json_t *root = vec_load(KEM_FILE);
    unsigned passed = 0, total = 0, paths = 0;
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e)
    {
        struct vec_bytes tree = {0}, gid = {0};
        bool ok = vec_uint(e, "cipher_suite") == 3 && vec_hex(e, "ratchet_tree", &tree) &&
                  vec_hex(e, "group_id", &gid);
        struct mls_tree *t = NULL;
        ok = ok && mls_tree_decode(tree.p, tree.len, &t) == 0 &&
             mls_tree_validate(t, gid.p, gid.len) == 0;
        mls_tree_free(t);
        size_t k;
        json_t *up;
        json_array_foreach(json_object_get(e, "update_paths"), k, up)
        {
            paths++;
            ok = kem_path(&tree, &gid, up, (unsigned)i) && ok;
        }
        total++;
        passed += ok;
        vec_bytes_free(&tree);
        vec_bytes_free(&gid);
    }
    json_decref(root);
    print_message("treekem.json: %u update paths applied (public part)\n", paths);
    assert_true(total > 0);
    assert_int_equal(vec_report("mls-test-vectors/treekem.json (public part)", passed, total), 0);
}

/* Damaged UpdatePaths are refused and the tree is left unchanged. */
static void update_path_rejects(void **state)
{
    (void)state;
    json_t *root = vec_load(KEM_FILE);
    json_t *e = json_array_get(root, 0);
    json_t *up = json_array_get(json_object_get(e, "update_paths"), 0);
    struct vec_bytes tree = {0}, gid = {0}, pb = {0};
    assert_true(vec_hex(e, "ratchet_tree", &tree));
    assert_true(vec_hex(e, "group_id", &gid));
    assert_true(vec_hex(up, "update_path", &pb));
    uint32_t sender = (uint32_t)vec_uint(up, "sender");
    struct mls_tree *t = NULL;
    assert_int_equal(mls_tree_decode(tree.p, tree.len, &t), 0);
    uint8_t h0[MLS_TREE_HASH_LEN], h1[MLS_TREE_HASH_LEN];
    assert_int_equal(mls_tree_node_hash(t, mls_tree_root(t), h0), 0);

    struct mls_update_path path = {0};
    struct tls_reader r;
    tls_reader_init(&r, pb.p, pb.len);
    assert_int_equal(mls_update_path_decode(&r, &path), 0);
    assert_true(path.n_nodes > 0);

    /* 1. A replaced path key breaks the leaf's parent_hash. */
    path.nodes[0].encryption_key.data[0] ^= 1;
    assert_int_equal(mls_tree_apply_path(t, sender, &path, gid.p, gid.len), ERR_INVALID);
    path.nodes[0].encryption_key.data[0] ^= 1;
    /* 2. A wrong group_id breaks the leaf signature. */
    gid.p[0] ^= 1;
    assert_int_equal(mls_tree_apply_path(t, sender, &path, gid.p, gid.len), ERR_CRYPTO);
    gid.p[0] ^= 1;
    /* 3. A path from another sender (its filtered direct path differs or
     * the signature's leaf index does). */
    uint32_t other = sender == 0 ? 1 : 0;
    if (mls_tree_leaf(t, other))
        assert_int_not_equal(mls_tree_apply_path(t, other, &path, gid.p, gid.len), 0);
    /* 4. A path one node short. */
    path.n_nodes--;
    assert_int_equal(mls_tree_apply_path(t, sender, &path, gid.p, gid.len), ERR_INVALID);
    path.n_nodes++;
    assert_int_equal(mls_tree_node_hash(t, mls_tree_root(t), h1), 0);
    assert_memory_equal(h0, h1, sizeof(h0));
    /* The intact path applies. */
    assert_int_equal(mls_tree_apply_path(t, sender, &path, gid.p, gid.len), 0);

    mls_update_path_free(&path);
    mls_tree_free(t);
    vec_bytes_free(&tree);
    vec_bytes_free(&gid);
    vec_bytes_free(&pb);
    json_decref(root);
}

/* Shape rules on a tree built by hand from the first treekem entry's
 * leaves: Add fills the leftmost blank leaf and doubles a full tree, puts
 * the new leaf into the unmerged_leaves of non-blank parents above it (so
 * resolutions list it), Remove truncates to the smallest full tree holding
 * the rightmost member, and the roster follows. */
static void shapes(void **state)
{
    (void)state;
    json_t *root = vec_load(KEM_FILE);
    json_t *e = json_array_get(root, 0);
    json_t *up = json_array_get(json_object_get(e, "update_paths"), 0);
    struct vec_bytes tree = {0}, gid = {0}, pb = {0};
    assert_true(vec_hex(e, "ratchet_tree", &tree));
    assert_true(vec_hex(e, "group_id", &gid));
    assert_true(vec_hex(up, "update_path", &pb));
    uint32_t sender = (uint32_t)vec_uint(up, "sender");
    struct mls_tree *src = NULL;
    assert_int_equal(mls_tree_decode(tree.p, tree.len, &src), 0);
    /* Apply a path so that parents are non-blank. */
    struct mls_update_path path = {0};
    struct tls_reader r;
    tls_reader_init(&r, pb.p, pb.len);
    assert_int_equal(mls_update_path_decode(&r, &path), 0);
    assert_int_equal(mls_tree_apply_path(src, sender, &path, gid.p, gid.len), 0);
    uint32_t leaves = mls_tree_leaf_count(src);
    assert_true(leaves >= 2);
    size_t members = 0;
    int rrc = mls_tree_roster(src, NULL, 0, &members);
    assert_true(members > 0);
    assert_int_equal(rrc, ERR_TOO_BIG);

    /* Fill every blank leaf, then one more: the tree doubles. */
    const struct mls_leaf_node *any = mls_tree_leaf(src, sender);
    assert_non_null(any);
    struct mls_leaf_node copy = {0};
    assert_int_equal(mls_leaf_node_copy(&copy, any), 0);
    uint32_t at = 0, added = 0;
    while (members + added < leaves) {
        assert_int_equal(mls_tree_add(src, &copy, &at), 0);
        added++;
        assert_true(at < leaves);
        /* The new leaf is unmerged at its lowest non-blank ancestor: the
         * root's resolution (the root is on the sender's path) lists it. */
        uint32_t res[256];
        size_t n = 0;
        assert_int_equal(mls_tree_resolution(src, mls_tree_root(src), res, 256, &n), 0);
        bool listed = false;
        for (size_t k = 0; k < n; k++)
            listed = listed || res[k] == 2 * at;
        assert_true(listed);
        /* ...and the tree still passes parent-hash verification. */
        assert_int_equal(mls_tree_verify_parent_hashes(src), 0);
    }
    assert_int_equal(mls_tree_add(src, &copy, &at), 0);
    assert_int_equal(at, leaves);
    assert_int_equal(mls_tree_leaf_count(src), 2 * leaves);
    assert_int_equal(mls_tree_node_count(src), 4 * leaves - 1);
    /* Removing that last leaf truncates back. */
    assert_int_equal(mls_tree_remove(src, at), 0);
    assert_int_equal(mls_tree_leaf_count(src), leaves);
    assert_int_equal(mls_tree_remove(src, at), ERR_INVALID);
    /* Removing everyone but leaf 0 leaves a one-leaf tree. */
    for (uint32_t l = leaves; l-- > 1;)
        if (mls_tree_leaf(src, l))
            assert_int_equal(mls_tree_remove(src, l), 0);
    if (!mls_tree_leaf(src, 0))
        assert_int_equal(mls_tree_add(src, &copy, &at), 0);
    assert_int_equal(mls_tree_leaf_count(src), 1);
    assert_int_equal(mls_tree_node_count(src), 1);
    struct mls_roster_entry one[2];
    assert_int_equal(mls_tree_roster(src, one, 2, &members), 0);
    assert_int_equal(members, 1);
    assert_int_equal(one[0].leaf_index, 0);
    /* The one-leaf tree encodes and decodes to the same hash. */
    uint8_t *enc = NULL;
    size_t len = 0;
    struct mls_tree *back = NULL;
    uint8_t h1[MLS_TREE_HASH_LEN], h2[MLS_TREE_HASH_LEN];
    assert_int_equal(mls_tree_encode(src, &enc, &len), 0);
    assert_int_equal(mls_tree_decode(enc, len, &back), 0);
    assert_int_equal(mls_tree_node_hash(src, 0, h1), 0);
    assert_int_equal(mls_tree_node_hash(back, 0, h2), 0);
    assert_memory_equal(h1, h2, sizeof(h1));
    free(enc);
    mls_tree_free(back);
    mls_leaf_node_free(&copy);
    mls_update_path_free(&path);
    mls_tree_free(src);
    vec_bytes_free(&tree);
    vec_bytes_free(&gid);
    vec_bytes_free(&pb);
    json_decref(root);
}

int main(void)
{
    if (crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_operations_vectors),
        cmocka_unit_test(treekem_public_paths),
        cmocka_unit_test(update_path_rejects),
        cmocka_unit_test(shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
