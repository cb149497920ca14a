/* test_tree_math.c: mls_treemath on tree-math.json (RFC 9420 App. C) plus
 * hand-checked direct paths, copaths and common ancestors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "err.h"
#include "mls_treemath.h"
#include "vectors.h"

typedef int (*rel_fn)(uint32_t x, uint32_t n_leaves, uint32_t *out);

static int left_fn(uint32_t x, uint32_t n, uint32_t *out)
{
    (void)n;
    return mls_treemath_left(x, out);
}

static int right_fn(uint32_t x, uint32_t n, uint32_t *out)
{
    (void)n;
    return mls_treemath_right(x, out);
}

/* Compares one relation array (null = no such node) with fn. */
static bool check_rel(const json_t *e, const char *key, rel_fn fn, uint32_t n_leaves,
                      uint32_t n_nodes)
{
    const json_t *arr = json_object_get(e, key);
    if (!json_is_array(arr) || json_array_size(arr) != n_nodes) {
        fprintf(stderr, "%s: bad array\n", key);
        return false;
    }
    for (uint32_t x = 0; x < n_nodes; x++) {
        const json_t *v = json_array_get(arr, x);
        uint32_t got = 0;
        int rc = fn(x, n_leaves, &got);
        if (json_is_null(v)) {
            if (rc == 0) {
                fprintf(stderr, "%s(%u) n=%u: expected none, got %u\n", key, x, n_leaves, got);
                return false;
            }
        } else if (rc != 0 || got != (uint32_t)json_integer_value(v)) {
            fprintf(stderr, "%s(%u) n=%u: expected %lld, got %u rc %d\n", key, x, n_leaves,
                    json_integer_value(v), got, rc);
            return false;
        }
    }
    return true;
}

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    uint32_t n_leaves = (uint32_t)vec_uint(e, "n_leaves");
    uint32_t n_nodes = (uint32_t)vec_uint(e, "n_nodes");
    uint32_t r = 0, dummy;
    bool ok = mls_treemath_node_width(n_leaves) == n_nodes;
    ok = ok && mls_treemath_root(n_leaves, &r) == 0 && r == vec_uint(e, "root");
    ok = ok && check_rel(e, "left", left_fn, n_leaves, n_nodes);
    ok = ok && check_rel(e, "right", right_fn, n_leaves, n_nodes);
    ok = ok && check_rel(e, "parent", mls_treemath_parent, n_leaves, n_nodes);
    ok = ok && check_rel(e, "sibling", mls_treemath_sibling, n_leaves, n_nodes);
    /* Nodes past the tree are refused. */
    ok = ok && mls_treemath_parent(n_nodes, n_leaves, &dummy) == ERR_INVALID;
    return ok;
}

static void tree_math_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/tree-math.json", "tree-math.json", VEC_ANY_SUITE,
                             check_entry, NULL),
                     0);
}

static void paths_by_hand(void **state)
{
    (void)state;
    uint32_t out[MLS_TREEMATH_MAX_DEPTH];
    size_t n = 0;

    /* 8 leaves (15 nodes), leaf 2 = node 4: direct path 5, 3, 7; copath 6, 1, 11. */
    assert_int_equal(mls_treemath_direct_path(4, 8, out, MLS_TREEMATH_MAX_DEPTH, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 5);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 7);
    assert_int_equal(mls_treemath_copath(4, 8, out, MLS_TREEMATH_MAX_DEPTH, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 6);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 11);
    /* The root has an empty direct path; too small a buffer is refused. */
    assert_int_equal(mls_treemath_direct_path(7, 8, out, MLS_TREEMATH_MAX_DEPTH, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(mls_treemath_direct_path(4, 8, out, 2, &n), ERR_TOO_BIG);
    /* A one-leaf tree: node 0 is the root. */
    assert_int_equal(mls_treemath_direct_path(0, 1, out, MLS_TREEMATH_MAX_DEPTH, &n), 0);
    assert_int_equal(n, 0);
    /* Not a power of two, or out of range. */
    assert_int_equal(mls_treemath_direct_path(0, 3, out, MLS_TREEMATH_MAX_DEPTH, &n),
                     ERR_INVALID);
    assert_int_equal(mls_treemath_direct_path(15, 8, out, MLS_TREEMATH_MAX_DEPTH, &n),
                     ERR_INVALID);
    uint32_t r;
    assert_int_equal(mls_treemath_root(0, &r), ERR_INVALID);
    assert_int_equal(mls_treemath_root(6, &r), ERR_INVALID);

    assert_int_equal(mls_treemath_common_ancestor(0, 2), 1);
    assert_int_equal(mls_treemath_common_ancestor(0, 6), 3);
    assert_int_equal(mls_treemath_common_ancestor(2, 8), 7);
    assert_int_equal(mls_treemath_common_ancestor(4, 5), 5);
    assert_int_equal(mls_treemath_common_ancestor(5, 4), 5);
    assert_int_equal(mls_treemath_common_ancestor(9, 9), 9);
    assert_int_equal(mls_treemath_common_ancestor(12, 1), 7);
    assert_true(mls_treemath_in_subtree(3, 0));
    assert_true(mls_treemath_in_subtree(3, 6));
    assert_false(mls_treemath_in_subtree(3, 8));
    assert_true(mls_treemath_in_subtree(8, 8));
    assert_false(mls_treemath_in_subtree(8, 10));
    assert_int_equal(mls_treemath_level(7), 3);
    assert_int_equal(mls_treemath_leaf_to_node(5), 10);
    assert_int_equal(mls_treemath_node_to_leaf(10), 5);
}

/* Relations that must hold for every node of every tree up to 2^10 leaves. */
static void properties(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 1024; n *= 2) {
        uint32_t w = mls_treemath_node_width(n), root = 0;
        assert_int_equal(mls_treemath_root(n, &root), 0);
        for (uint32_t x = 0; x < w; x++) {
            uint32_t a, b, p, s, s2;
            uint32_t dp[MLS_TREEMATH_MAX_DEPTH], cp[MLS_TREEMATH_MAX_DEPTH];
            size_t ndp, ncp;
            if (!mls_treemath_is_leaf(x)) {
                assert_int_equal(mls_treemath_left(x, &a), 0);
                assert_int_equal(mls_treemath_right(x, &b), 0);
                assert_int_equal(mls_treemath_parent(a, n, &p), 0);
                assert_int_equal(p, x);
                assert_int_equal(mls_treemath_parent(b, n, &p), 0);
                assert_int_equal(p, x);
                assert_true(a < x && x < b);
                assert_int_equal(mls_treemath_level(a) + 1, mls_treemath_level(x));
            }
            assert_int_equal(mls_treemath_direct_path(x, n, dp, MLS_TREEMATH_MAX_DEPTH, &ndp), 0);
            assert_int_equal(mls_treemath_copath(x, n, cp, MLS_TREEMATH_MAX_DEPTH, &ncp), 0);
            assert_int_equal(ndp, ncp);
            if (x == root) {
                assert_int_equal(ndp, 0);
                continue;
            }
            assert_int_equal(dp[ndp - 1], root);
            assert_int_equal(mls_treemath_sibling(x, n, &s), 0);
            assert_int_equal(mls_treemath_sibling(s, n, &s2), 0);
            assert_int_equal(s2, x);
            assert_int_equal(cp[0], s);
            for (size_t i = 0; i < ndp; i++) {
                assert_true(mls_treemath_in_subtree(dp[i], x));
                assert_false(mls_treemath_in_subtree(cp[i], x));
                assert_int_equal(mls_treemath_common_ancestor(x, cp[i]), dp[i]);
            }
            assert_int_equal(mls_treemath_common_ancestor(x, root), root);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_math_vectors),
        cmocka_unit_test(paths_by_hand),
        cmocka_unit_test(properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
