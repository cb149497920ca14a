/*
 * test_tree_validation.c: tree-validation.json (suite-3 entries). For every
 * entry: decode the ratchet tree, check the resolution and tree hash of every
 * node, and that the tree is valid (parent-hash chains, unmerged leaves, leaf
 * signatures under the entry's group_id, uniqueness). Then hand-made damage
 * to a decoded tree must be detected.
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
#include "mls_tree.h"
#include "vectors.h"

static const char *FILE_NAME = "mls-test-vectors/tree-validation.json";

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    unsigned idx = (unsigned)index;
    (void)ctx;
    struct vec_bytes tree = {0}, gid = {0};
    struct mls_tree *t = NULL;
    uint32_t *res = NULL;
    bool ok = false;

    if (vec_uint(e, "cipher_suite") != 3 || !vec_hex(e, "tree", &tree) ||
        !vec_hex(e, "group_id", &gid))
        goto out;
    int rc = mls_tree_decode(tree.p, tree.len, &t);
    if (rc != 0) {
        fprintf(stderr, "entry %u: decode: %s\n", idx, err_str(rc));
        goto out;
    }
    const json_t *hashes = json_object_get(e, "tree_hashes");
    const json_t *resolutions = json_object_get(e, "resolutions");
    uint32_t n = mls_tree_node_count(t);
    if (!json_is_array(hashes) || json_array_size(hashes) != n || !json_is_array(resolutions) ||
        json_array_size(resolutions) != n) {
        fprintf(stderr, "entry %u: node count %u does not match the vector\n", idx, n);
        goto out;
    }
    res = calloc(n, sizeof(*res));
    if (!res)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        struct vec_bytes want = {0};
        uint8_t h[MLS_TREE_HASH_LEN];
        bool eq = vec_hex_value(json_array_get(hashes, i), &want) &&
                  mls_tree_node_hash(t, i, h) == 0 && vec_eq("tree hash", &want, h, sizeof(h));
        vec_bytes_free(&want);
        if (!eq) {
            fprintf(stderr, "entry %u: tree hash of node %u\n", idx, i);
            goto out;
        }
        const json_t *r = json_array_get(resolutions, i);
        size_t cnt = 0;
        if (mls_tree_resolution(t, i, res, n, &cnt) != 0 || cnt != json_array_size(r)) {
            fprintf(stderr, "entry %u: resolution size of node %u\n", idx, i);
            goto out;
        }
        for (size_t k = 0; k < cnt; k++) {
            if ((json_int_t)res[k] != json_integer_value(json_array_get(r, k))) {
                fprintf(stderr, "entry %u: resolution of node %u\n", idx, i);
                goto out;
            }
        }
    }
    rc = mls_tree_verify_parent_hashes(t);
    if (rc != 0) {
        fprintf(stderr, "entry %u: parent hashes: %s\n", idx, err_str(rc));
        goto out;
    }
    rc = mls_tree_validate(t, gid.p, gid.len);
    if (rc != 0) {
        fprintf(stderr, "entry %u: validate: %s\n", idx, err_str(rc));
        goto out;
    }
    /* A different group_id must break the signature of any leaf signed in
     * update/commit context (and only those carry a group_id). */
    gid.p[0] ^= 1;
    if (mls_tree_validate(t, gid.p, gid.len) == 0 && mls_tree_has_group_bound_leaf(t)) {
        fprintf(stderr, "entry %u: validated under a wrong group_id\n", idx);
        goto out;
    }
    /* Re-encoding gives the same bytes. */
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    rc = mls_tree_encode(t, &enc, &enc_len);
    ok = rc == 0 && vec_eq("re-encoded tree", &tree, enc, enc_len);
    free(enc);
out:
    free(res);
    mls_tree_free(t);
    vec_bytes_free(&tree);
    vec_bytes_free(&gid);
    return ok;
}

static void tree_validation_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run(FILE_NAME, NULL, VEC_ANY_SUITE, check_entry, NULL), 0);
}

/* Damage: flip one bit at every 5th byte of every vector tree. Every
 * variant must be refused: either it no longer decodes, or it fails
 * validation; and a variant that decodes always has a different tree hash
 * (so a GroupInfo's tree_hash would catch it too). */
static void tree_validation_detects_tampering(void **state)
{
    (void)state;
    json_t *root = vec_load(FILE_NAME);
    unsigned tried = 0, decoded = 0, refused = 0;
    for (size_t ei = 0; ei < json_array_size(root); ei++) {
        json_t *e = json_array_get(root, ei);
        struct vec_bytes tree = {0}, gid = {0};
        assert_true(vec_hex(e, "tree", &tree));
        assert_true(vec_hex(e, "group_id", &gid));
        struct mls_tree *orig = NULL;
        assert_int_equal(mls_tree_decode(tree.p, tree.len, &orig), 0);
        uint8_t root_hash[MLS_TREE_HASH_LEN];
        assert_int_equal(mls_tree_node_hash(orig, mls_tree_root(orig), root_hash), 0);
        for (size_t pos = ei % 5; pos < tree.len; pos += 5) {
            tree.p[pos] ^= (uint8_t)(1u << (pos % 8));
            struct mls_tree *t = NULL;
            tried++;
            if (mls_tree_decode(tree.p, tree.len, &t) == 0) {
                decoded++;
                uint8_t h[MLS_TREE_HASH_LEN];
                assert_int_equal(mls_tree_node_hash(t, mls_tree_root(t), h), 0);
                assert_memory_not_equal(h, root_hash, sizeof(h));
                if (mls_tree_validate(t, gid.p, gid.len) != 0)
                    refused++;
                else
                    fprintf(stderr, "entry %zu: flip at byte %zu not detected\n", ei, pos);
                mls_tree_free(t);
            } else {
                refused++;
            }
            tree.p[pos] ^= (uint8_t)(1u << (pos % 8));
        }
        mls_tree_free(orig);
        vec_bytes_free(&tree);
        vec_bytes_free(&gid);
    }
    print_message("tampering: %u variants, %u decoded, %u refused\n", tried, decoded, refused);
    assert_true(decoded > 0);
    assert_int_equal(refused, tried);
    json_decref(root);
}

int main(void)
{
    if (crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_validation_vectors),
        cmocka_unit_test(tree_validation_detects_tampering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
