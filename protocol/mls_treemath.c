/*
 * mls_treemath.c: array tree arithmetic (RFC 9420 §4.2 and Appendix C).
 *
 * In a full tree of 2^d leaves, node x at level k (k trailing 1 bits)
 * spans nodes x - (2^k - 1) .. x + (2^k - 1); its children are
 * x ^ (1 << (k-1)) and x ^ (3 << (k-1)); its parent is found by setting bit
 * k and clearing bit k+1 when x was a right child.
 */
#include "mls_treemath.h"

#include "err.h"

uint32_t mls_treemath_level(uint32_t x)
{
    uint32_t k = 0;

    while (k < 32 && ((x >> k) & 1u) == 1u)
        k++;
    return k;
}

bool mls_treemath_is_leaf(uint32_t x)
{
    return (x & 1u) == 0;
}

uint32_t mls_treemath_leaf_to_node(uint32_t leaf)
{
    return leaf * 2u;
}

uint32_t mls_treemath_node_to_leaf(uint32_t node)
{
    return node / 2u;
}

bool mls_treemath_valid_leaves(uint32_t n_leaves)
{
    return n_leaves != 0 && n_leaves <= MLS_TREEMATH_MAX_LEAVES &&
           (n_leaves & (n_leaves - 1)) == 0;
}

uint32_t mls_treemath_node_width(uint32_t n_leaves)
{
    return n_leaves == 0 ? 0 : 2u * (n_leaves - 1u) + 1u;
}

int mls_treemath_root(uint32_t n_leaves, uint32_t *root)
{
    if (!mls_treemath_valid_leaves(n_leaves))
        return ERR_INVALID;
    /* For 2^d leaves the root is node 2^d - 1. */
    *root = n_leaves - 1u;
    return 0;
}

int mls_treemath_left(uint32_t x, uint32_t *out)
{
    uint32_t k = mls_treemath_level(x);

    if (k == 0 || k > 31)
        return ERR_INVALID;
    *out = x ^ (1u << (k - 1u));
    return 0;
}

int mls_treemath_right(uint32_t x, uint32_t *out)
{
    uint32_t k = mls_treemath_level(x);

    if (k == 0 || k > 30)
        return ERR_INVALID;
    *out = x ^ (3u << (k - 1u));
    return 0;
}

static bool in_tree(uint32_t x, uint32_t n_leaves)
{
    return mls_treemath_valid_leaves(n_leaves) && x < mls_treemath_node_width(n_leaves);
}

int mls_treemath_parent(uint32_t x, uint32_t n_leaves, uint32_t *out)
{
    uint32_t k, b;

    if (!in_tree(x, n_leaves) || x == n_leaves - 1u)
        return ERR_INVALID;
    /* Below the root, so k <= 29 and the shifts stay in range. */
    k = mls_treemath_level(x);
    b = (x >> (k + 1u)) & 1u;
    *out = (x | (1u << k)) ^ (b << (k + 1u));
    return 0;
}

int mls_treemath_sibling(uint32_t x, uint32_t n_leaves, uint32_t *out)
{
    uint32_t p;
    int rc;

    rc = mls_treemath_parent(x, n_leaves, &p);
    if (rc != 0)
        return rc;
    return x < p ? mls_treemath_right(p, out) : mls_treemath_left(p, out);
}

int mls_treemath_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap,
                             size_t *n)
{
    size_t count = 0;

    *n = 0;
    if (!in_tree(x, n_leaves))
        return ERR_INVALID;
    while (x != n_leaves - 1u) {
        uint32_t p;
        int rc = mls_treemath_parent(x, n_leaves, &p);
        if (rc != 0)
            return rc;
        if (count == cap)
            return ERR_TOO_BIG;
        out[count++] = p;
        x = p;
    }
    *n = count;
    return 0;
}

int mls_treemath_copath(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap, size_t *n)
{
    size_t count = 0;

    *n = 0;
    if (!in_tree(x, n_leaves))
        return ERR_INVALID;
    /* copath = sibling of x, then of each direct-path node below the root. */
    while (x != n_leaves - 1u) {
        uint32_t s, p;
        int rc = mls_treemath_sibling(x, n_leaves, &s);
        if (rc == 0)
            rc = mls_treemath_parent(x, n_leaves, &p);
        if (rc != 0)
            return rc;
        if (count == cap)
            return ERR_TOO_BIG;
        out[count++] = s;
        x = p;
    }
    *n = count;
    return 0;
}

uint32_t mls_treemath_common_ancestor(uint32_t x, uint32_t y)
{
    uint32_t lx = mls_treemath_level(x) + 1u, ly = mls_treemath_level(y) + 1u;
    uint32_t k = 0;

    if (lx <= ly && ly < 32 && (x >> ly) == (y >> ly))
        return y;
    if (ly <= lx && lx < 32 && (x >> lx) == (y >> lx))
        return x;
    while (x != y) {
        x >>= 1;
        y >>= 1;
        k++;
    }
    /* k >= 1 here: x != y on entry, else one of the checks above held. */
    return (x << k) + (1u << (k - 1u)) - 1u;
}

bool mls_treemath_in_subtree(uint32_t x, uint32_t y)
{
    uint32_t k = mls_treemath_level(x);
    uint64_t span = (k >= 32) ? UINT32_MAX : ((uint64_t)1 << k) - 1u;

    return (uint64_t)y + span >= x && (uint64_t)y <= (uint64_t)x + span;
}
