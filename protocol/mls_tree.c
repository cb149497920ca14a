/*
 * mls_tree.c: the public ratchet tree (RFC 9420 §4, §7). See mls_tree.h for
 * the API. Where to start: hash_rec() (tree hash, §7.8), then
 * mls_tree_verify_parent_hashes() (§7.9.2), then the changes at the end.
 *
 * Representation: nodes[0 .. 2 * n_leaves - 1), a full tree, each a codec
 * struct mls_node (owned; present == false is blank). cap_nodes >= width is
 * the allocated length; nodes beyond the width are always zeroed.
 *
 * Hash inputs (§7.8, §7.9):
 * | struct              | fields                                               |
 * |---------------------|------------------------------------------------------|
 * | TreeHashInput       | uint8 node_type; LeafNodeHashInput / ParentNode...   |
 * | LeafNodeHashInput   | uint32 leaf_index; optional<LeafNode> leaf_node      |
 * | ParentNodeHashInput | optional<ParentNode> parent_node; opaque left_hash<V>;|
 * |                     | opaque right_hash<V>                                 |
 * | ParentHashInput     | HPKEPublicKey encryption_key; opaque parent_hash<V>; |
 * |                     | opaque original_sibling_tree_hash<V>                 |
 */
#include "mls_tree.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_struct.h"
#include "mls_treemath.h"
#include "tls.h"

struct mls_tree {
    struct mls_node *nodes;
    size_t cap_nodes;
    uint32_t n_leaves;
};

/* Distinct credential types we are willing to cross-check in one tree
 * (bounds the work a hostile tree can cause; real groups use one or two). */
#define MAX_CRED_TYPES 64

static uint32_t width(const struct mls_tree *t)
{
    return 2 * t->n_leaves - 1;
}

static uint32_t left_of(uint32_t x)
{
    uint32_t l = 0;
    int rc = mls_treemath_left(x, &l);
    assert(rc == 0);
    (void)rc;
    return l;
}

static uint32_t right_of(uint32_t x)
{
    uint32_t r = 0;
    int rc = mls_treemath_right(x, &r);
    assert(rc == 0);
    (void)rc;
    return r;
}

static void node_blank(struct mls_node *n)
{
    mls_node_free(n);
    memset(n, 0, sizeof(*n));
}

/* Grows the node array to hold a tree of n_leaves leaves (new slots zeroed,
 * i.e. blank); does not change t->n_leaves. */
static int reserve(struct mls_tree *t, uint32_t n_leaves)
{
    size_t need = 2 * (size_t)n_leaves - 1;
    if (need <= t->cap_nodes)
        return 0;
    struct mls_node *nn = realloc(t->nodes, need * sizeof(*nn));
    if (!nn)
        return ERR_NOMEM;
    memset(nn + t->cap_nodes, 0, (need - t->cap_nodes) * sizeof(*nn));
    t->nodes = nn;
    t->cap_nodes = need;
    return 0;
}

static void tree_release(struct mls_tree *t)
{
    for (size_t i = 0; i < t->cap_nodes; i++)
        mls_node_free(&t->nodes[i]);
    free(t->nodes);
    t->nodes = NULL;
    t->cap_nodes = 0;
}

void mls_tree_free(struct mls_tree *t)
{
    if (!t)
        return;
    tree_release(t);
    free(t);
}

/* ---- decode / encode / copy ---------------------------------------------- */

int mls_tree_decode(const uint8_t *buf, size_t len, struct mls_tree **out)
{
    struct mls_ratchet_tree rt = {0};
    struct mls_tree *t = NULL;
    int rc;

    *out = NULL;
    rc = mls_ratchet_tree_parse(buf, len, &rt);
    if (rc != 0)
        goto out;
    rc = ERR_MALFORMED;
    /* §12.4.3.3: trailing blank nodes are omitted, so the last one is
     * present; a tree has at least one node. */
    if (rt.n_nodes == 0 || !rt.nodes[rt.n_nodes - 1].present)
        goto out;
    if (rt.n_nodes > 2 * (size_t)MLS_TREE_MAX_LEAVES - 1) {
        rc = ERR_TOO_BIG;
        goto out;
    }
    for (size_t i = 0; i < rt.n_nodes; i++) {
        const struct mls_node *n = &rt.nodes[i];
        if (n->present && n->node_type != ((i % 2 == 0) ? MLS_NODE_LEAF : MLS_NODE_PARENT))
            goto out;
    }
    rc = ERR_NOMEM;
    t = calloc(1, sizeof(*t));
    if (!t)
        goto out;
    uint32_t leaves = 1;
    while (2 * (size_t)leaves - 1 < rt.n_nodes)
        leaves *= 2;
    rc = reserve(t, leaves);
    if (rc != 0)
        goto out;
    /* Move the decoded nodes (owned heap members) into our array. */
    memcpy(t->nodes, rt.nodes, rt.n_nodes * sizeof(*rt.nodes));
    free(rt.nodes);
    rt.nodes = NULL;
    rt.n_nodes = 0;
    t->n_leaves = leaves;
    *out = t;
    t = NULL;
    rc = 0;
out:
    mls_ratchet_tree_free(&rt);
    mls_tree_free(t);
    return rc;
}

int mls_tree_encode(const struct mls_tree *t, uint8_t **buf, size_t *len)
{
    uint32_t n = width(t);
    while (n > 0 && !t->nodes[n - 1].present)
        n--;
    struct mls_ratchet_tree view = {.nodes = t->nodes, .n_nodes = n};
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_ratchet_tree_encode(&w, &view);
    return tls_writer_take(&w, buf, len);
}

static int parent_node_copy(struct mls_parent_node *dst, const struct mls_parent_node *src)
{
    memset(dst, 0, sizeof(*dst));
    if (mls_bytes_set(&dst->encryption_key, src->encryption_key.data, src->encryption_key.len) ||
        mls_bytes_set(&dst->parent_hash, src->parent_hash.data, src->parent_hash.len))
        goto fail;
    if (src->unmerged_leaves.n > 0) {
        dst->unmerged_leaves.v = malloc(src->unmerged_leaves.n * sizeof(uint32_t));
        if (!dst->unmerged_leaves.v)
            goto fail;
        memcpy(dst->unmerged_leaves.v, src->unmerged_leaves.v,
               src->unmerged_leaves.n * sizeof(uint32_t));
        dst->unmerged_leaves.n = src->unmerged_leaves.n;
    }
    return 0;
fail:
    mls_parent_node_free(dst);
    return ERR_NOMEM;
}

int mls_tree_clone(const struct mls_tree *t, struct mls_tree **out)
{
    struct mls_tree *c = calloc(1, sizeof(*c));
    int rc = ERR_NOMEM;
    *out = NULL;
    if (!c)
        goto out;
    rc = reserve(c, t->n_leaves);
    if (rc != 0)
        goto out;
    c->n_leaves = t->n_leaves;
    for (uint32_t i = 0; i < width(t); i++) {
        const struct mls_node *s = &t->nodes[i];
        struct mls_node *d = &c->nodes[i];
        if (!s->present)
            continue;
        rc = (s->node_type == MLS_NODE_LEAF) ? mls_leaf_node_copy(&d->leaf, &s->leaf)
                                             : parent_node_copy(&d->parent, &s->parent);
        if (rc != 0)
            goto out;
        d->present = true;
        d->node_type = s->node_type;
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    mls_tree_free(c);
    return rc;
}

int mls_tree_new_one(const struct mls_leaf_node *leaf, struct mls_tree **out)
{
    struct mls_tree *t = calloc(1, sizeof(*t));
    int rc = ERR_NOMEM;
    *out = NULL;
    if (!t)
        goto out;
    rc = reserve(t, 1);
    if (rc != 0)
        goto out;
    t->n_leaves = 1;
    rc = mls_leaf_node_copy(&t->nodes[0].leaf, leaf);
    if (rc != 0)
        goto out;
    t->nodes[0].present = true;
    t->nodes[0].node_type = MLS_NODE_LEAF;
    *out = t;
    t = NULL;
out:
    mls_tree_free(t);
    return rc;
}

/* ---- shape ---------------------------------------------------------------- */

uint32_t mls_tree_leaf_count(const struct mls_tree *t)
{
    return t->n_leaves;
}

uint32_t mls_tree_node_count(const struct mls_tree *t)
{
    return width(t);
}

uint32_t mls_tree_root(const struct mls_tree *t)
{
    uint32_t r = 0;
    int rc = mls_treemath_root(t->n_leaves, &r);
    assert(rc == 0);
    (void)rc;
    return r;
}

const struct mls_leaf_node *mls_tree_leaf(const struct mls_tree *t, uint32_t leaf)
{
    if (leaf >= t->n_leaves || !t->nodes[2 * leaf].present)
        return NULL;
    return &t->nodes[2 * leaf].leaf;
}

const struct mls_node *mls_tree_node(const struct mls_tree *t, uint32_t node)
{
    if (node >= width(t) || !t->nodes[node].present)
        return NULL;
    return &t->nodes[node];
}

bool mls_tree_has_group_bound_leaf(const struct mls_tree *t)
{
    for (uint32_t i = 0; i < t->n_leaves; i++) {
        const struct mls_leaf_node *l = mls_tree_leaf(t, i);
        if (l && l->leaf_node_source != MLS_LEAF_SOURCE_KEY_PACKAGE)
            return true;
    }
    return false;
}

static int resolve(const struct mls_tree *t, uint32_t x, uint32_t *out, size_t cap, size_t *n)
{
    const struct mls_node *nd = &t->nodes[x];
    if (nd->present) {
        if (*n >= cap)
            return ERR_TOO_BIG;
        out[(*n)++] = x;
        if (nd->node_type == MLS_NODE_PARENT) {
            for (size_t i = 0; i < nd->parent.unmerged_leaves.n; i++) {
                if (*n >= cap)
                    return ERR_TOO_BIG;
                out[(*n)++] = 2 * nd->parent.unmerged_leaves.v[i];
            }
        }
        return 0;
    }
    if (mls_treemath_is_leaf(x))
        return 0;
    int rc = resolve(t, left_of(x), out, cap, n);
    if (rc == 0)
        rc = resolve(t, right_of(x), out, cap, n);
    return rc;
}

int mls_tree_resolution(const struct mls_tree *t, uint32_t node, uint32_t *out, size_t cap,
                        size_t *n)
{
    *n = 0;
    if (node >= width(t))
        return ERR_INVALID;
    return resolve(t, node, out, cap, n);
}

/* True when the resolution of x is not empty. */
static bool has_resolution(const struct mls_tree *t, uint32_t x)
{
    if (t->nodes[x].present)
        return true;
    if (mls_treemath_is_leaf(x))
        return false;
    return has_resolution(t, left_of(x)) || has_resolution(t, right_of(x));
}

int mls_tree_filtered_direct_path(const struct mls_tree *t, uint32_t leaf, uint32_t *out,
                                  size_t cap, size_t *n)
{
    uint32_t dp[MLS_TREEMATH_MAX_DEPTH], cp[MLS_TREEMATH_MAX_DEPTH];
    size_t ndp = 0, ncp = 0;
    *n = 0;
    if (leaf >= t->n_leaves)
        return ERR_INVALID;
    int rc = mls_treemath_direct_path(2 * leaf, t->n_leaves, dp, MLS_TREEMATH_MAX_DEPTH, &ndp);
    if (rc == 0)
        rc = mls_treemath_copath(2 * leaf, t->n_leaves, cp, MLS_TREEMATH_MAX_DEPTH, &ncp);
    if (rc != 0)
        return rc;
    if (ndp != ncp)
        return ERR_INTERNAL;
    for (size_t i = 0; i < ndp; i++) {
        if (!has_resolution(t, cp[i]))
            continue;
        if (*n >= cap)
            return ERR_TOO_BIG;
        out[(*n)++] = dp[i];
    }
    return 0;
}

/* ---- tree hash (§7.8) ------------------------------------------------------ */

/* Hashing context: `removed` (sorted leaf indices) are treated as blank and
 * dropped from every unmerged_leaves list, as the original sibling tree hash
 * of §7.9 requires; `all`, when set, receives every node's hash. */
struct hctx {
    const struct mls_tree *t;
    const uint32_t *removed;
    size_t n_removed;
    uint8_t (*all)[MLS_TREE_HASH_LEN];
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static bool is_removed(const struct hctx *c, uint32_t leaf)
{
    return c->n_removed > 0 &&
           bsearch(&leaf, c->removed, c->n_removed, sizeof(uint32_t), cmp_u32) != NULL;
}

static int put_parent_node(struct tls_writer *w, const struct hctx *c,
                           const struct mls_parent_node *p)
{
    if (c->n_removed == 0) {
        mls_parent_node_encode(w, p);
        return 0;
    }
    /* A shallow copy with the removed leaves filtered out; only the list is
     * ours to free. */
    struct mls_parent_node f = *p;
    f.unmerged_leaves.v = NULL;
    f.unmerged_leaves.n = 0;
    if (p->unmerged_leaves.n > 0) {
        f.unmerged_leaves.v = malloc(p->unmerged_leaves.n * sizeof(uint32_t));
        if (!f.unmerged_leaves.v)
            return ERR_NOMEM;
        for (size_t i = 0; i < p->unmerged_leaves.n; i++)
            if (!is_removed(c, p->unmerged_leaves.v[i]))
                f.unmerged_leaves.v[f.unmerged_leaves.n++] = p->unmerged_leaves.v[i];
    }
    mls_parent_node_encode(w, &f);
    free(f.unmerged_leaves.v);
    return 0;
}

static int hash_rec(const struct hctx *c, uint32_t x, uint8_t out[MLS_TREE_HASH_LEN])
{
    const struct mls_node *nd = &c->t->nodes[x];
    uint8_t lh[MLS_TREE_HASH_LEN], rh[MLS_TREE_HASH_LEN];
    struct tls_writer w;
    int rc;

    if (mls_treemath_is_leaf(x)) {
        bool p = nd->present && !is_removed(c, x / 2);
        tls_writer_init(&w, 0);
        tls_put_u8(&w, MLS_NODE_LEAF);
        tls_put_u32(&w, x / 2);
        tls_put_optional(&w, p);
        if (p)
            mls_leaf_node_encode(&w, &nd->leaf);
    } else {
        rc = hash_rec(c, left_of(x), lh);
        if (rc == 0)
            rc = hash_rec(c, right_of(x), rh);
        if (rc != 0)
            return rc;
        tls_writer_init(&w, 0);
        tls_put_u8(&w, MLS_NODE_PARENT);
        tls_put_optional(&w, nd->present);
        if (nd->present && put_parent_node(&w, c, &nd->parent) != 0) {
            tls_writer_reset(&w);
            return ERR_NOMEM;
        }
        tls_put_opaque(&w, lh, sizeof(lh));
        tls_put_opaque(&w, rh, sizeof(rh));
    }
    rc = tls_writer_error(&w);
    if (rc == 0) {
        crypto_sha256(w.buf, w.len, out);
        if (c->all)
            memcpy(c->all[x], out, MLS_TREE_HASH_LEN);
    } else if (rc != ERR_NOMEM) {
        rc = ERR_INTERNAL;
    }
    tls_writer_reset(&w);
    return rc;
}

int mls_tree_node_hash(const struct mls_tree *t, uint32_t node, uint8_t out[MLS_TREE_HASH_LEN])
{
    if (node >= width(t))
        return ERR_INVALID;
    struct hctx c = {.t = t};
    return hash_rec(&c, node, out);
}

/* ---- parent hash (§7.9) ------------------------------------------------------ */

/* ParentHash of parent node p given its sibling's (original) tree hash. */
static int parent_hash(const struct mls_parent_node *p, const uint8_t sib[MLS_TREE_HASH_LEN],
                       uint8_t out[MLS_TREE_HASH_LEN])
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_bytes_encode(&w, &p->encryption_key);
    mls_bytes_encode(&w, &p->parent_hash);
    tls_put_opaque(&w, sib, MLS_TREE_HASH_LEN);
    int rc = tls_writer_error(&w);
    if (rc == 0)
        crypto_sha256(w.buf, w.len, out);
    tls_writer_reset(&w);
    return rc;
}

/* The parent_hash a node D carries (parent nodes, commit-source leaves), or
 * NULL when it has none. */
static const struct mls_bytes *carried_parent_hash(const struct mls_tree *t, uint32_t d)
{
    const struct mls_node *nd = &t->nodes[d];
    if (!nd->present)
        return NULL;
    if (nd->node_type == MLS_NODE_PARENT)
        return &nd->parent.parent_hash;
    if (nd->leaf.leaf_node_source == MLS_LEAF_SOURCE_COMMIT)
        return &nd->leaf.parent_hash;
    return NULL;
}

/* The one node D of res (the resolution of child c of parent P) for which
 * res minus {D} equals P's unmerged leaves below c (as node indices): the only
 * candidate for P's parent-hash link on that side (§7.9.2). Returns false
 * when no such D exists. res is sorted in place; `sorted_u` is P's sorted
 * unmerged list. Unmerged lists are duplicate-free (check_unmerged runs
 * first) and resolutions then are too. */
static bool odd_one(const struct mls_u32_list *u, const uint32_t *sorted_u, uint32_t c,
                    uint32_t *res, size_t n_res, uint32_t *d)
{
    size_t in_sub = 0;
    for (size_t i = 0; i < u->n; i++)
        in_sub += mls_treemath_in_subtree(c, 2 * u->v[i]);
    if (in_sub + 1 != n_res)
        return false;
    qsort(res, n_res, sizeof(uint32_t), cmp_u32);
    /* Walk both sorted sequences (unmerged leaves below c, as 2l, are in
     * the same order as their leaf indices); exactly one res entry may be
     * unmatched. */
    size_t j = 0, extra = 0;
    for (size_t i = 0; i < n_res; i++) {
        while (j < u->n && !mls_treemath_in_subtree(c, 2 * sorted_u[j]))
            j++;
        if (j < u->n && 2 * sorted_u[j] == res[i]) {
            j++;
            continue;
        }
        if (extra++ > 0)
            return false;
        *d = res[i];
    }
    return extra == 1;
}

/* Sorted copies of every parent's unmerged_leaves (NULL for blank nodes
 * and empty lists), so membership tests are O(log n). */
static int sorted_unmerged(const struct mls_tree *t, uint32_t ***out)
{
    uint32_t **v = calloc(width(t), sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    for (uint32_t x = 1; x < width(t); x += 2) {
        const struct mls_u32_list *u = &t->nodes[x].parent.unmerged_leaves;
        if (!t->nodes[x].present || u->n == 0)
            continue;
        v[x] = malloc(u->n * sizeof(uint32_t));
        if (!v[x]) {
            for (uint32_t k = 1; k < x; k += 2)
                free(v[k]);
            free(v);
            return ERR_NOMEM;
        }
        memcpy(v[x], u->v, u->n * sizeof(uint32_t));
        qsort(v[x], u->n, sizeof(uint32_t), cmp_u32);
    }
    *out = v;
    return 0;
}

static void sorted_unmerged_free(const struct mls_tree *t, uint32_t **v)
{
    if (!v)
        return;
    for (uint32_t x = 1; x < width(t); x += 2)
        free(v[x]);
    free(v);
}

static bool listed(const struct mls_tree *t, uint32_t *const *sorted, uint32_t x, uint32_t l)
{
    size_t n = t->nodes[x].parent.unmerged_leaves.n;
    return n > 0 && bsearch(&l, sorted[x], n, sizeof(uint32_t), cmp_u32) != NULL;
}

/* Unmerged leaves consistency (§12.4.3.1 / §7.9.2 precondition): each listed
 * leaf is in range, non-blank, below the node, not listed twice, and listed
 * by every non-blank parent between it and the node. */
static int check_unmerged(const struct mls_tree *t, uint32_t *const *sorted)
{
    for (uint32_t x = 1; x < width(t); x += 2) {
        if (!t->nodes[x].present)
            continue;
        const struct mls_u32_list *u = &t->nodes[x].parent.unmerged_leaves;
        for (size_t i = 0; i < u->n; i++) {
            uint32_t l = u->v[i];
            if (l >= t->n_leaves || !t->nodes[2 * l].present ||
                !mls_treemath_in_subtree(x, 2 * l))
                return ERR_INVALID;
            if (i > 0 && sorted[x][i] == sorted[x][i - 1])
                return ERR_INVALID;
            uint32_t dp[MLS_TREEMATH_MAX_DEPTH];
            size_t ndp = 0;
            if (mls_treemath_direct_path(2 * l, t->n_leaves, dp, MLS_TREEMATH_MAX_DEPTH, &ndp))
                return ERR_INVALID;
            for (size_t k = 0; k < ndp && dp[k] != x; k++)
                if (t->nodes[dp[k]].present && !listed(t, sorted, dp[k], l))
                    return ERR_INVALID;
        }
    }
    return 0;
}

/* Tree hash of subtree s with the leaves in `unmerged` (P's list) removed;
 * `all` holds the unmodified hashes to use when nothing below s is removed. */
static int original_sibling_hash(const struct mls_tree *t, uint32_t s,
                                 const struct mls_u32_list *unmerged,
                                 const uint8_t (*all)[MLS_TREE_HASH_LEN],
                                 uint8_t out[MLS_TREE_HASH_LEN])
{
    bool any = false;
    for (size_t i = 0; i < unmerged->n && !any; i++)
        any = mls_treemath_in_subtree(s, 2 * unmerged->v[i]);
    if (!any) {
        memcpy(out, all[s], MLS_TREE_HASH_LEN);
        return 0;
    }
    uint32_t *sorted = malloc(unmerged->n * sizeof(uint32_t));
    if (!sorted)
        return ERR_NOMEM;
    memcpy(sorted, unmerged->v, unmerged->n * sizeof(uint32_t));
    qsort(sorted, unmerged->n, sizeof(uint32_t), cmp_u32);
    struct hctx c = {.t = t, .removed = sorted, .n_removed = unmerged->n};
    int rc = hash_rec(&c, s, out);
    free(sorted);
    return rc;
}

int mls_tree_verify_parent_hashes(const struct mls_tree *t)
{
    uint8_t(*all)[MLS_TREE_HASH_LEN] = NULL;
    uint32_t *res = NULL;
    uint32_t **sorted = NULL;
    int rc = sorted_unmerged(t, &sorted);
    if (rc != 0)
        return rc;
    rc = check_unmerged(t, sorted);
    if (rc != 0)
        goto out;
    rc = ERR_NOMEM;
    all = calloc(width(t), sizeof(*all));
    res = calloc(width(t), sizeof(*res));
    if (!all || !res)
        goto out;
    struct hctx hc = {.t = t, .all = all};
    uint8_t root_hash[MLS_TREE_HASH_LEN];
    rc = hash_rec(&hc, mls_tree_root(t), root_hash);
    if (rc != 0)
        goto out;
    for (uint32_t p = 1; p < width(t); p += 2) {
        if (!t->nodes[p].present)
            continue;
        const struct mls_parent_node *pn = &t->nodes[p].parent;
        unsigned found = 0;
        for (int side = 0; side < 2; side++) {
            uint32_t c = side == 0 ? left_of(p) : right_of(p);
            uint32_t s = side == 0 ? right_of(p) : left_of(p);
            uint8_t sib[MLS_TREE_HASH_LEN], want[MLS_TREE_HASH_LEN];
            size_t n_res = 0;
            uint32_t d = 0;
            rc = resolve(t, c, res, width(t), &n_res);
            if (rc != 0)
                goto out;
            if (!odd_one(&pn->unmerged_leaves, sorted[p], c, res, n_res, &d))
                continue;
            const struct mls_bytes *ph = carried_parent_hash(t, d);
            if (!ph || ph->len != sizeof(want))
                continue;
            rc = original_sibling_hash(t, s, &pn->unmerged_leaves,
                                       (const uint8_t(*)[MLS_TREE_HASH_LEN])all, sib);
            if (rc == 0)
                rc = parent_hash(pn, sib, want);
            if (rc != 0)
                goto out;
            found += memcmp(ph->data, want, sizeof(want)) == 0;
        }
        if (found != 1) {
            rc = ERR_INVALID;
            goto out;
        }
    }
    rc = 0;
out:
    sorted_unmerged_free(t, sorted);
    free(all);
    free(res);
    return rc;
}

/* ---- leaf validation (§7.3) ---------------------------------------------------- */

static bool u16_in(const struct mls_u16_list *l, uint16_t v)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return true;
    return false;
}

/* Extension types defined by RFC 9420 itself are "default" (§7.2): a leaf
 * may carry them without listing them in its capabilities. */
static bool default_extension(uint16_t type)
{
    return type >= MLS_EXT_APPLICATION_ID && type <= MLS_EXT_EXTERNAL_SENDERS;
}

/* Checks of one LeafNode that need no other leaf: key sizes, source,
 * signature, capabilities listing MLS 1.0, suite 3 and its own extensions
 * and credential type. */
static int check_leaf_alone(const struct mls_leaf_node *ln, uint8_t source, uint32_t leaf,
                            const uint8_t *group_id, size_t group_id_len)
{
    const struct mls_capabilities *cap = &ln->capabilities;
    if (ln->leaf_node_source != source)
        return ERR_INVALID;
    /* Policy bound: the membership tests below are linear scans. */
    if (cap->versions.n > MLS_TREE_MAX_LIST || cap->cipher_suites.n > MLS_TREE_MAX_LIST ||
        cap->extensions.n > MLS_TREE_MAX_LIST || cap->proposals.n > MLS_TREE_MAX_LIST ||
        cap->credentials.n > MLS_TREE_MAX_LIST || ln->extensions.n > MLS_TREE_MAX_LIST)
        return ERR_INVALID;
    if (ln->signature_key.len != CRYPTO_SIGN_PUB_LEN ||
        ln->encryption_key.len != CRYPTO_KEM_PUB_LEN)
        return ERR_INVALID;
    if (!u16_in(&ln->capabilities.versions, MLS_VERSION_MLS10) ||
        !u16_in(&ln->capabilities.cipher_suites, MLS_TREE_CIPHER_SUITE) ||
        !u16_in(&ln->capabilities.credentials, ln->credential.credential_type))
        return ERR_INVALID;
    for (size_t i = 0; i < ln->extensions.n; i++) {
        uint16_t type = ln->extensions.v[i].extension_type;
        if (!default_extension(type) && !u16_in(&ln->capabilities.extensions, type))
            return ERR_INVALID;
    }
    if (mls_extension_list_check_unique(&ln->extensions) != 0)
        return ERR_INVALID;
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_leaf_node_encode_tbs(&w, ln, group_id, group_id_len, leaf);
    int rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_verify_with_label(ln->signature_key.data, "LeafNodeTBS", w.buf, w.len,
                                      ln->signature.data, ln->signature.len);
    tls_writer_reset(&w);
    return rc;
}

/* ln (to sit at leaf `leaf`) against the other members: each supports ln's
 * credential type, ln supports theirs, and no other node shares ln's
 * signature key (leaves) or encryption key (any node). */
static int check_leaf_against_tree(const struct mls_tree *t, const struct mls_leaf_node *ln,
                                   uint32_t leaf)
{
    for (uint32_t x = 0; x < width(t); x++) {
        if (!t->nodes[x].present || x == 2 * leaf)
            continue;
        if (t->nodes[x].node_type == MLS_NODE_PARENT) {
            const struct mls_bytes *k = &t->nodes[x].parent.encryption_key;
            if (k->len == ln->encryption_key.len &&
                memcmp(k->data, ln->encryption_key.data, k->len) == 0)
                return ERR_INVALID;
            continue;
        }
        const struct mls_leaf_node *o = &t->nodes[x].leaf;
        if (!u16_in(&o->capabilities.credentials, ln->credential.credential_type) ||
            !u16_in(&ln->capabilities.credentials, o->credential.credential_type))
            return ERR_INVALID;
        if (o->encryption_key.len == ln->encryption_key.len &&
            memcmp(o->encryption_key.data, ln->encryption_key.data, o->encryption_key.len) == 0)
            return ERR_INVALID;
        if (o->signature_key.len == ln->signature_key.len &&
            memcmp(o->signature_key.data, ln->signature_key.data, o->signature_key.len) == 0)
            return ERR_INVALID;
    }
    return 0;
}

int mls_tree_leaf_node_check(const struct mls_leaf_node *ln, uint8_t source, uint32_t leaf,
                             const uint8_t *group_id, size_t group_id_len)
{
    return check_leaf_alone(ln, source, leaf, group_id, group_id_len);
}

int mls_tree_validate_leaf(const struct mls_tree *t, const struct mls_leaf_node *ln,
                           uint8_t source, uint32_t leaf, const uint8_t *group_id,
                           size_t group_id_len)
{
    if (leaf > MLS_TREE_MAX_LEAVES)
        return ERR_INVALID;
    int rc = check_leaf_alone(ln, source, leaf, group_id, group_id_len);
    if (rc == 0)
        rc = check_leaf_against_tree(t, ln, leaf);
    return rc;
}

/* Sorting keys to find duplicates in O(n log n). */
struct keyref {
    const struct mls_bytes *b;
};

static int cmp_key(const void *a, const void *b)
{
    const struct mls_bytes *x = ((const struct keyref *)a)->b;
    const struct mls_bytes *y = ((const struct keyref *)b)->b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->len ? memcmp(x->data, y->data, x->len) : 0;
}

static bool has_duplicate(struct keyref *k, size_t n)
{
    qsort(k, n, sizeof(*k), cmp_key);
    for (size_t i = 1; i < n; i++)
        if (cmp_key(&k[i - 1], &k[i]) == 0)
            return true;
    return false;
}

int mls_tree_validate(const struct mls_tree *t, const uint8_t *group_id, size_t group_id_len)
{
    struct keyref *enc = NULL, *sig = NULL;
    size_t n_enc = 0, n_sig = 0;
    uint16_t types[MAX_CRED_TYPES];
    size_t n_types = 0;
    int rc = mls_tree_verify_parent_hashes(t);
    if (rc != 0)
        goto out;
    rc = ERR_NOMEM;
    enc = calloc(width(t), sizeof(*enc));
    sig = calloc(t->n_leaves, sizeof(*sig));
    if (!enc || !sig)
        goto out;
    rc = ERR_INVALID;
    for (uint32_t x = 0; x < width(t); x++) {
        if (!t->nodes[x].present)
            continue;
        if (t->nodes[x].node_type == MLS_NODE_PARENT) {
            if (t->nodes[x].parent.encryption_key.len != CRYPTO_KEM_PUB_LEN)
                goto out;
            enc[n_enc++].b = &t->nodes[x].parent.encryption_key;
            continue;
        }
        const struct mls_leaf_node *ln = &t->nodes[x].leaf;
        rc = check_leaf_alone(ln, ln->leaf_node_source, x / 2, group_id, group_id_len);
        if (rc != 0)
            goto out;
        rc = ERR_INVALID;
        enc[n_enc++].b = &ln->encryption_key;
        sig[n_sig++].b = &ln->signature_key;
        bool seen = false;
        for (size_t i = 0; i < n_types && !seen; i++)
            seen = types[i] == ln->credential.credential_type;
        if (!seen) {
            if (n_types == MAX_CRED_TYPES)
                goto out;
            types[n_types++] = ln->credential.credential_type;
        }
    }
    /* Every member supports every credential type in use (§7.3). */
    for (uint32_t l = 0; l < t->n_leaves; l++) {
        const struct mls_leaf_node *ln = mls_tree_leaf(t, l);
        for (size_t i = 0; ln && i < n_types; i++)
            if (!u16_in(&ln->capabilities.credentials, types[i]))
                goto out;
    }
    if (has_duplicate(enc, n_enc) || has_duplicate(sig, n_sig))
        goto out;
    rc = 0;
out:
    free(enc);
    free(sig);
    return rc;
}

/* ---- changes (§12.1.1-3, §7.5) ------------------------------------------------ */

static int direct_path(const struct mls_tree *t, uint32_t leaf, uint32_t dp[MLS_TREEMATH_MAX_DEPTH],
                       size_t *n)
{
    return mls_treemath_direct_path(2 * leaf, t->n_leaves, dp, MLS_TREEMATH_MAX_DEPTH, n);
}

static void blank_direct_path(struct mls_tree *t, uint32_t leaf)
{
    uint32_t dp[MLS_TREEMATH_MAX_DEPTH];
    size_t n = 0;
    if (direct_path(t, leaf, dp, &n) != 0)
        return; /* cannot happen: leaf was checked against the tree */
    for (size_t i = 0; i < n; i++)
        node_blank(&t->nodes[dp[i]]);
}

int mls_tree_add(struct mls_tree *t, const struct mls_leaf_node *leaf, uint32_t *leaf_index)
{
    struct mls_leaf_node copy = {0};
    uint32_t l = 0, n_leaves = t->n_leaves;
    uint32_t dp[MLS_TREEMATH_MAX_DEPTH];
    size_t ndp = 0;
    int rc;

    while (l < t->n_leaves && t->nodes[2 * l].present)
        l++;
    if (l == t->n_leaves) {
        if (t->n_leaves >= MLS_TREE_MAX_LEAVES)
            return ERR_TOO_BIG;
        n_leaves = 2 * t->n_leaves;
    }
    /* Allocate everything first, so a failure leaves the tree as it was. */
    rc = reserve(t, n_leaves);
    if (rc == 0)
        rc = mls_leaf_node_copy(&copy, leaf);
    if (rc != 0)
        return rc;
    rc = mls_treemath_direct_path(2 * l, n_leaves, dp, MLS_TREEMATH_MAX_DEPTH, &ndp);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; i < ndp; i++) {
        struct mls_node *p = &t->nodes[dp[i]];
        if (!p->present)
            continue;
        uint32_t *v = realloc(p->parent.unmerged_leaves.v,
                              (p->parent.unmerged_leaves.n + 1) * sizeof(uint32_t));
        if (!v) {
            rc = ERR_NOMEM;
            goto fail;
        }
        p->parent.unmerged_leaves.v = v;
    }
    for (size_t i = 0; i < ndp; i++) {
        struct mls_node *p = &t->nodes[dp[i]];
        if (p->present)
            p->parent.unmerged_leaves.v[p->parent.unmerged_leaves.n++] = l;
    }
    t->n_leaves = n_leaves;
    t->nodes[2 * l].leaf = copy;
    t->nodes[2 * l].present = true;
    t->nodes[2 * l].node_type = MLS_NODE_LEAF;
    *leaf_index = l;
    return 0;
fail:
    mls_leaf_node_free(&copy);
    return rc;
}

int mls_tree_update(struct mls_tree *t, uint32_t leaf_index, const struct mls_leaf_node *leaf)
{
    struct mls_leaf_node copy = {0};
    if (!mls_tree_leaf(t, leaf_index))
        return ERR_INVALID;
    int rc = mls_leaf_node_copy(&copy, leaf);
    if (rc != 0)
        return rc;
    mls_leaf_node_free(&t->nodes[2 * leaf_index].leaf);
    t->nodes[2 * leaf_index].leaf = copy;
    blank_direct_path(t, leaf_index);
    return 0;
}

int mls_tree_remove(struct mls_tree *t, uint32_t leaf_index)
{
    if (!mls_tree_leaf(t, leaf_index))
        return ERR_INVALID;
    node_blank(&t->nodes[2 * leaf_index]);
    blank_direct_path(t, leaf_index);
    /* Truncate (§12.1.3): the smallest full tree whose leaves include the
     * rightmost non-blank one. Dropped nodes are all blank after the loop
     * below frees them (a parent above only blank leaves is meaningless). */
    uint32_t last = 0;
    for (uint32_t l = 0; l < t->n_leaves; l++)
        if (t->nodes[2 * l].present)
            last = l;
    uint32_t n = 1;
    while (n <= last)
        n *= 2;
    for (size_t x = 2 * (size_t)n - 1; x < width(t); x++)
        node_blank(&t->nodes[x]);
    t->n_leaves = n;
    return 0;
}

/* Swaps the contents of two trees. */
static void tree_swap(struct mls_tree *a, struct mls_tree *b)
{
    struct mls_tree tmp = *a;
    *a = *b;
    *b = tmp;
}

/* Installs path's keys on c's filtered direct path of sender (fdp, n_fdp)
 * after blanking the direct path, and computes the parent hashes top down
 * (§7.9): the topmost node's is empty; each lower node's covers the node
 * above it and the tree hash of that node's child off the sender's path.
 * ph/ph_len get the parent_hash the sender's new LeafNode must carry. */
static int install_path(struct mls_tree *c, uint32_t sender, const uint32_t *fdp, size_t n_fdp,
                        const struct mls_update_path *path, uint8_t ph[MLS_TREE_HASH_LEN],
                        size_t *ph_len)
{
    int rc;
    *ph_len = 0;
    blank_direct_path(c, sender);
    for (size_t i = 0; i < n_fdp; i++) {
        struct mls_node *nd = &c->nodes[fdp[i]];
        rc = mls_bytes_set(&nd->parent.encryption_key, path->nodes[i].encryption_key.data,
                           path->nodes[i].encryption_key.len);
        if (rc != 0)
            return rc;
        nd->present = true;
        nd->node_type = MLS_NODE_PARENT;
    }
    for (size_t i = n_fdp; i-- > 0;) {
        struct mls_node *nd = &c->nodes[fdp[i]];
        rc = mls_bytes_set(&nd->parent.parent_hash, ph, *ph_len);
        if (rc != 0)
            return rc;
        uint32_t l = left_of(fdp[i]);
        uint32_t sib = mls_treemath_in_subtree(l, 2 * sender) ? right_of(fdp[i]) : l;
        uint8_t sh[MLS_TREE_HASH_LEN];
        rc = mls_tree_node_hash(c, sib, sh);
        if (rc == 0)
            rc = parent_hash(&nd->parent, sh, ph);
        if (rc != 0)
            return rc;
        *ph_len = MLS_TREE_HASH_LEN;
    }
    return 0;
}

/* Checks the path's shape against sender's filtered direct path in t and
 * returns a clone of t with the path installed (see install_path). */
static int path_clone(const struct mls_tree *t, uint32_t sender,
                      const struct mls_update_path *path, struct mls_tree **out,
                      uint8_t ph[MLS_TREE_HASH_LEN], size_t *ph_len)
{
    uint32_t fdp[MLS_TREEMATH_MAX_DEPTH];
    size_t n_fdp = 0;
    struct mls_tree *c = NULL;
    *out = NULL;
    if (!mls_tree_leaf(t, sender))
        return ERR_INVALID;
    int rc = mls_tree_filtered_direct_path(t, sender, fdp, MLS_TREEMATH_MAX_DEPTH, &n_fdp);
    if (rc != 0)
        return rc;
    if (path->n_nodes != n_fdp)
        return ERR_INVALID;
    for (size_t i = 0; i < n_fdp; i++)
        if (path->nodes[i].encryption_key.len != CRYPTO_KEM_PUB_LEN)
            return ERR_INVALID;
    rc = mls_tree_clone(t, &c);
    if (rc == 0)
        rc = install_path(c, sender, fdp, n_fdp, path, ph, ph_len);
    if (rc != 0) {
        mls_tree_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int mls_tree_path_parent_hash(const struct mls_tree *t, uint32_t sender,
                              const struct mls_update_path *path, uint8_t out[MLS_TREE_HASH_LEN],
                              size_t *out_len)
{
    struct mls_tree *c = NULL;
    int rc = path_clone(t, sender, path, &c, out, out_len);
    mls_tree_free(c);
    return rc;
}

int mls_tree_apply_path(struct mls_tree *t, uint32_t sender, const struct mls_update_path *path,
                        const uint8_t *group_id, size_t group_id_len)
{
    struct mls_tree *c = NULL;
    struct mls_leaf_node copy = {0};
    uint8_t ph[MLS_TREE_HASH_LEN];
    size_t ph_len = 0;
    const struct mls_leaf_node *ln = &path->leaf_node;

    int rc = path_clone(t, sender, path, &c, ph, &ph_len);
    if (rc != 0)
        return rc;
    rc = ERR_INVALID;
    if (ln->leaf_node_source != MLS_LEAF_SOURCE_COMMIT || ln->parent_hash.len != ph_len ||
        (ph_len && crypto_memeq(ln->parent_hash.data, ph, ph_len) != 0))
        goto out;
    rc = mls_tree_validate_leaf(c, ln, MLS_LEAF_SOURCE_COMMIT, sender, group_id, group_id_len);
    if (rc == 0)
        rc = mls_leaf_node_copy(&copy, ln);
    if (rc != 0)
        goto out;
    mls_leaf_node_free(&c->nodes[2 * sender].leaf);
    c->nodes[2 * sender].leaf = copy;
    tree_swap(t, c);
out:
    mls_tree_free(c);
    return rc;
}

/* ---- roster ------------------------------------------------------------------ */

int mls_tree_roster(const struct mls_tree *t, struct mls_roster_entry *out, size_t cap,
                    size_t *n)
{
    size_t k = 0;
    for (uint32_t l = 0; l < t->n_leaves; l++) {
        const struct mls_leaf_node *ln = mls_tree_leaf(t, l);
        if (!ln)
            continue;
        if (k < cap) {
            struct mls_roster_entry *e = &out[k];
            e->leaf_index = l;
            e->credential_type = ln->credential.credential_type;
            e->identity = NULL;
            e->identity_len = 0;
            if (ln->credential.credential_type == MLS_CREDENTIAL_BASIC) {
                e->identity = ln->credential.identity.data;
                e->identity_len = ln->credential.identity.len;
            } else if (ln->credential.credential_type == MLS_CREDENTIAL_X509 &&
                       ln->credential.n_certificates > 0) {
                e->identity = ln->credential.certificates[0].data;
                e->identity_len = ln->credential.certificates[0].len;
            }
            e->signature_key = ln->signature_key.data;
            e->signature_key_len = ln->signature_key.len;
        }
        k++;
    }
    *n = k;
    return k > cap ? ERR_TOO_BIG : 0;
}
