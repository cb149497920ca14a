/*
 * fuzz_mls_tree.c: the public ratchet tree on hostile bytes.
 * Input: a ratchet_tree extension body. If it decodes: re-encoding gives the
 * same bytes; every resolution, filtered direct path and the tree hash are
 * computed; the tree is validated (parent hashes, unmerged leaves,
 * signatures, uniqueness); then a clone is changed (Update, Remove, Add of
 * its first member) and must stay consistent (encode -> decode -> same
 * hash). Seeds: trees from tree-validation.json and tree-operations.json.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_struct.h"
#include "mls_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t GID[] = {0x23, 0xde, 0x91, 0xf8};

static void same_hash_after_roundtrip(const struct mls_tree *t)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    struct mls_tree *d = NULL;
    uint8_t a[MLS_TREE_HASH_LEN], b[MLS_TREE_HASH_LEN];
    if (mls_tree_encode(t, &enc, &len) != 0)
        return;
    if (mls_tree_decode(enc, len, &d) != 0 || mls_tree_node_hash(t, mls_tree_root(t), a) != 0 ||
        mls_tree_node_hash(d, mls_tree_root(d), b) != 0 || memcmp(a, b, sizeof(a)) != 0)
        abort();
    mls_tree_free(d);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_tree *t = NULL, *c = NULL;
    uint32_t *buf = NULL;
    if (crypto_init() != 0)
        abort();
    if (mls_tree_decode(data, size, &t) != 0)
        return 0;
    uint8_t *enc = NULL;
    size_t len = 0;
    if (mls_tree_encode(t, &enc, &len) != 0 || len != size || memcmp(enc, data, size) != 0)
        abort();
    free(enc);

    /* Decoding does not check unmerged_leaves lists (validation does), so
     * a hostile list can hold more entries than the tree has nodes: the
     * resolution then reports ERR_TOO_BIG. Of a valid tree it never fails
     * with a cap of the node count. */
    bool valid = mls_tree_validate(t, GID, sizeof(GID)) == 0;
    uint32_t n = mls_tree_node_count(t);
    buf = calloc(n, sizeof(*buf));
    if (!buf)
        goto out;
    for (uint32_t x = 0; x < n; x++) {
        size_t k = 0;
        int rc = mls_tree_resolution(t, x, buf, n, &k);
        if (rc != 0 && (valid || rc != ERR_TOO_BIG))
            abort();
    }
    for (uint32_t l = 0; l < mls_tree_leaf_count(t); l++) {
        uint32_t fdp[32];
        size_t k = 0;
        if (mls_tree_filtered_direct_path(t, l, fdp, 32, &k) != 0)
            abort();
    }
    uint8_t h[MLS_TREE_HASH_LEN];
    (void)mls_tree_node_hash(t, mls_tree_root(t), h);

    size_t members = 0;
    (void)mls_tree_roster(t, NULL, 0, &members);
    if (mls_tree_clone(t, &c) != 0)
        goto out;
    for (uint32_t l = 0; l < mls_tree_leaf_count(c); l++) {
        const struct mls_leaf_node *ln = mls_tree_leaf(c, l);
        if (!ln)
            continue;
        struct mls_leaf_node copy = {0};
        if (mls_leaf_node_copy(&copy, ln) != 0)
            break;
        uint32_t at = 0;
        if (mls_tree_update(c, l, &copy) != 0 || mls_tree_remove(c, l) != 0 ||
            mls_tree_add(c, &copy, &at) != 0 || at > l)
            abort(); /* the leftmost blank leaf is at most the one removed */
        mls_leaf_node_free(&copy);
        break;
    }
    same_hash_after_roundtrip(c);
out:
    free(buf);
    mls_tree_free(c);
    mls_tree_free(t);
    return 0;
}
