/*
 * mls_ks_tree.c: the secret tree (RFC 9420 §9) with per-leaf handshake and
 * application ratchets and an out-of-order window. See mls_ks.h.
 *
 * Derivation:
 * | from                  | to                     | how                                    |
 * |-----------------------|------------------------|----------------------------------------|
 * | root                  | encryption_secret      |                                        |
 * | node secret           | left / right child     | ExpandWithLabel(s, "tree", "left"/"right", Nh) |
 * | leaf secret           | ratchet secret gen 0   | ExpandWithLabel(s, "handshake"/"application", "", Nh) |
 * | ratchet secret gen j  | key, nonce             | DeriveTreeSecret(s, "key"/"nonce", j, Nk/Nn) |
 * | ratchet secret gen j  | ratchet secret gen j+1 | DeriveTreeSecret(s, "secret", j, Nh)   |
 * A node's secret is erased once both children are derived, a leaf's once
 * its two ratchets are, and a ratchet secret once the next one is (§9.2).
 *
 * Memory: node and ratchet secrets live in one sodium_malloc'd block sized
 * at creation (32 bytes per node and per ratchet); the kept keys of skipped
 * generations in a second one, created on the first skip and grown by
 * doubling up to MLS_KS_MAX_SKIPPED entries. Which node secrets exist and
 * where each ratchet stands is not secret and lives on the normal heap.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_ks.h"
#include "mls_ks_int.h"
#include "mls_treemath.h"
#include "tls.h"

enum ratchet_state { R_UNBORN = 0, R_LIVE, R_EXHAUSTED };

struct ratchet {
    uint32_t next_gen; /* generation of the secret held in the block */
    uint8_t state;
};

struct skipped {
    uint64_t seq; /* insertion order, to drop the oldest first */
    uint32_t leaf;
    uint32_t generation;
    uint8_t which;
    uint8_t key[CRYPTO_AEAD_KEY_LEN];
    uint8_t nonce[CRYPTO_AEAD_NONCE_LEN];
};

struct mls_ks_tree {
    uint32_t n_leaves;
    uint32_t n_nodes;
    uint8_t *node_has;         /* n_nodes flags: node secret present */
    struct ratchet *ratchets;  /* 2 * n_leaves: [leaf * 2 + which] */
    uint8_t *sec;              /* guarded: node secrets, then ratchet secrets */
    struct skipped *skip;      /* guarded, or NULL */
    size_t n_skip, cap_skip;
    uint64_t skip_seq;
    bool plain; /* sec and skip in plain malloc'd memory (still wiped) */
};

/* Secret memory of the tree: guarded, or plain once mls_ks_tree_make_plain
 * was called (benchmarks with thousands of groups). */
static void *sec_alloc(const struct mls_ks_tree *t, size_t len)
{
    return t->plain ? malloc(len) : crypto_secure_alloc(len);
}

static void sec_free(const struct mls_ks_tree *t, void *p, size_t len)
{
    if (p == NULL)
        return;
    if (t->plain) {
        crypto_wipe(p, len);
        free(p);
    } else {
        crypto_secure_free(p);
    }
}

static size_t sec_len(const struct mls_ks_tree *t)
{
    return ((size_t)t->n_nodes + (size_t)t->n_leaves * 2) * MLS_KS_NH;
}

static uint8_t *node_secret(struct mls_ks_tree *t, uint32_t node)
{
    return t->sec + (size_t)node * MLS_KS_NH;
}

static uint8_t *ratchet_secret(struct mls_ks_tree *t, size_t r)
{
    return t->sec + ((size_t)t->n_nodes + r) * MLS_KS_NH;
}

void mls_ks_key_wipe(struct mls_ks_key *k)
{
    crypto_wipe(k, sizeof(*k));
}

int mls_ks_tree_new(const uint8_t encryption_secret[MLS_KS_NH], uint32_t n_leaves,
                    struct mls_ks_tree **out)
{
    struct mls_ks_tree *t;
    uint32_t root;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (!mls_treemath_valid_leaves(n_leaves) || n_leaves > MLS_KS_MAX_LEAVES)
        return ERR_INVALID;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ERR_NOMEM;
    t->n_leaves = n_leaves;
    t->n_nodes = mls_treemath_node_width(n_leaves);
    t->node_has = calloc(t->n_nodes, 1);
    t->ratchets = calloc((size_t)n_leaves * 2, sizeof(*t->ratchets));
    t->sec = crypto_secure_alloc(((size_t)t->n_nodes + (size_t)n_leaves * 2) * MLS_KS_NH);
    if (t->node_has == NULL || t->ratchets == NULL || t->sec == NULL)
        goto out;
    rc = mls_treemath_root(n_leaves, &root);
    if (rc != 0)
        goto out;
    memcpy(node_secret(t, root), encryption_secret, MLS_KS_NH);
    t->node_has[root] = 1;
    *out = t;
    return 0;
out:
    mls_ks_tree_free(t);
    return rc;
}

int mls_ks_tree_new_from_epoch(struct mls_ks_epoch *ep, uint32_t n_leaves,
                               struct mls_ks_tree **out)
{
    int rc;

    *out = NULL;
    if (ep->encryption_taken)
        return ERR_BADSTATE;
    rc = mls_ks_tree_new(ep->s[MLS_KS_ENCRYPTION], n_leaves, out);
    if (rc == 0) {
        crypto_wipe(ep->s[MLS_KS_ENCRYPTION], MLS_KS_NH);
        ep->encryption_taken = true;
    }
    return rc;
}

void mls_ks_tree_free(struct mls_ks_tree *t)
{
    if (t == NULL)
        return;
    sec_free(t, t->sec, sec_len(t));
    sec_free(t, t->skip, t->cap_skip * sizeof(*t->skip));
    free(t->node_has);
    free(t->ratchets);
    free(t);
}

/* Brings the leaf's two ratchets to life, deriving the path from the
 * nearest present ancestor down and erasing each node used up (§9). */
static int init_leaf(struct mls_ks_tree *t, uint32_t leaf)
{
    uint32_t path[MLS_TREEMATH_MAX_DEPTH + 1];
    uint32_t x = mls_treemath_leaf_to_node(leaf);
    size_t n = 0;
    int rc;

    /* Walk up to the nearest node that still holds a secret. */
    path[n++] = x;
    while (!t->node_has[x]) {
        uint32_t p;
        rc = mls_treemath_parent(x, t->n_leaves, &p);
        if (rc != 0)
            return ERR_INTERNAL; /* the root's secret was consumed: cannot happen */
        path[n++] = p;
        x = p;
    }
    /* Derive down from path[n-1] to path[1]'s child. */
    for (size_t i = n - 1; i > 0; i--) {
        uint32_t node = path[i], l, r;
        if (mls_treemath_left(node, &l) != 0 || mls_treemath_right(node, &r) != 0)
            return ERR_INTERNAL;
        rc = crypto_expand_with_label(node_secret(t, node), MLS_KS_NH, "tree",
                                      (const uint8_t *)"left", 4, node_secret(t, l), MLS_KS_NH);
        if (rc == 0)
            rc = crypto_expand_with_label(node_secret(t, node), MLS_KS_NH, "tree",
                                          (const uint8_t *)"right", 5, node_secret(t, r),
                                          MLS_KS_NH);
        if (rc != 0)
            return rc;
        t->node_has[l] = t->node_has[r] = 1;
        crypto_wipe(node_secret(t, node), MLS_KS_NH);
        t->node_has[node] = 0;
    }
    x = path[0];
    rc = crypto_expand_with_label(node_secret(t, x), MLS_KS_NH, "handshake", NULL, 0,
                                  ratchet_secret(t, (size_t)leaf * 2 + MLS_KS_HANDSHAKE),
                                  MLS_KS_NH);
    if (rc == 0)
        rc = crypto_expand_with_label(node_secret(t, x), MLS_KS_NH, "application", NULL, 0,
                                      ratchet_secret(t, (size_t)leaf * 2 + MLS_KS_APPLICATION),
                                      MLS_KS_NH);
    if (rc != 0)
        return rc;
    crypto_wipe(node_secret(t, x), MLS_KS_NH);
    t->node_has[x] = 0;
    t->ratchets[(size_t)leaf * 2 + MLS_KS_HANDSHAKE].state = R_LIVE;
    t->ratchets[(size_t)leaf * 2 + MLS_KS_APPLICATION].state = R_LIVE;
    return 0;
}

/* Key and nonce of the ratchet's current generation; then moves the
 * ratchet to the next generation, erasing the old secret. */
static int ratchet_step(struct mls_ks_tree *t, size_t r, struct mls_ks_key *out)
{
    struct ratchet *rt = &t->ratchets[r];
    uint8_t *s = ratchet_secret(t, r);
    uint8_t next[MLS_KS_NH];
    uint32_t g = rt->next_gen;
    int rc;

    if (rt->state != R_LIVE)
        return ERR_LIMIT;
    rc = crypto_derive_tree_secret(s, MLS_KS_NH, "key", g, out->key, sizeof(out->key));
    if (rc == 0)
        rc = crypto_derive_tree_secret(s, MLS_KS_NH, "nonce", g, out->nonce, sizeof(out->nonce));
    if (rc == 0)
        rc = crypto_derive_tree_secret(s, MLS_KS_NH, "secret", g, next, sizeof(next));
    if (rc != 0) {
        mls_ks_key_wipe(out);
        crypto_wipe(next, sizeof(next));
        return rc;
    }
    out->generation = g;
    memcpy(s, next, MLS_KS_NH);
    crypto_wipe(next, sizeof(next));
    if (g == UINT32_MAX) {
        /* No generation after this one: the ratchet is spent. */
        crypto_wipe(s, MLS_KS_NH);
        rt->state = R_EXHAUSTED;
    } else {
        rt->next_gen = g + 1;
    }
    return 0;
}

static void skip_remove(struct mls_ks_tree *t, size_t i)
{
    t->n_skip--;
    if (i != t->n_skip)
        t->skip[i] = t->skip[t->n_skip];
    crypto_wipe(&t->skip[t->n_skip], sizeof(t->skip[0]));
}

/* Keeps a skipped generation's key, growing the pool or dropping the
 * oldest entry when it is full. */
static int skip_add(struct mls_ks_tree *t, uint32_t leaf, uint8_t which,
                    const struct mls_ks_key *k)
{
    struct skipped *e;

    if (t->n_skip == t->cap_skip) {
        if (t->cap_skip < MLS_KS_MAX_SKIPPED) {
            size_t cap = t->cap_skip == 0 ? 64 : t->cap_skip * 2;
            if (cap > MLS_KS_MAX_SKIPPED)
                cap = MLS_KS_MAX_SKIPPED;
            struct skipped *n = sec_alloc(t, cap * sizeof(*n));
            if (n == NULL)
                return ERR_NOMEM;
            if (t->n_skip > 0)
                memcpy(n, t->skip, t->n_skip * sizeof(*n));
            sec_free(t, t->skip, t->cap_skip * sizeof(*t->skip));
            t->skip = n;
            t->cap_skip = cap;
        } else {
            size_t oldest = 0;
            for (size_t i = 1; i < t->n_skip; i++)
                if (t->skip[i].seq < t->skip[oldest].seq)
                    oldest = i;
            skip_remove(t, oldest);
        }
    }
    e = &t->skip[t->n_skip++];
    e->seq = t->skip_seq++;
    e->leaf = leaf;
    e->which = which;
    e->generation = k->generation;
    memcpy(e->key, k->key, sizeof(e->key));
    memcpy(e->nonce, k->nonce, sizeof(e->nonce));
    return 0;
}

/* Drops kept keys of this ratchet that fell out of the window: more than
 * MLS_KS_WINDOW generations behind the newest one handed out. */
static void skip_purge(struct mls_ks_tree *t, uint32_t leaf, uint8_t which, uint32_t newest)
{
    if (newest <= MLS_KS_WINDOW)
        return;
    for (size_t i = 0; i < t->n_skip;) {
        struct skipped *e = &t->skip[i];
        if (e->leaf == leaf && e->which == which && e->generation < newest - MLS_KS_WINDOW)
            skip_remove(t, i);
        else
            i++;
    }
}

static int check_args(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which)
{
    if (leaf >= t->n_leaves || (which != MLS_KS_HANDSHAKE && which != MLS_KS_APPLICATION))
        return ERR_INVALID;
    if (t->ratchets[(size_t)leaf * 2 + (size_t)which].state == R_UNBORN)
        return init_leaf(t, leaf);
    return 0;
}

int mls_ks_tree_next_key(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which,
                         struct mls_ks_key *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = check_args(t, leaf, which);
    if (rc == 0)
        rc = ratchet_step(t, (size_t)leaf * 2 + (size_t)which, out);
    return rc;
}

int mls_ks_tree_key(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which,
                    uint32_t generation, struct mls_ks_key *out)
{
    struct ratchet *rt;
    size_t r;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = check_args(t, leaf, which);
    if (rc != 0)
        return rc;
    r = (size_t)leaf * 2 + (size_t)which;
    rt = &t->ratchets[r];
    if (rt->state == R_EXHAUSTED || generation < rt->next_gen) {
        /* Behind the ratchet: only a kept key will do, and only once. */
        for (size_t i = 0; i < t->n_skip; i++) {
            struct skipped *e = &t->skip[i];
            if (e->leaf == leaf && e->which == (uint8_t)which && e->generation == generation) {
                memcpy(out->key, e->key, sizeof(out->key));
                memcpy(out->nonce, e->nonce, sizeof(out->nonce));
                out->generation = generation;
                skip_remove(t, i);
                return 0;
            }
        }
        return ERR_BADSTATE;
    }
    if (generation - rt->next_gen > MLS_KS_MAX_FORWARD)
        return ERR_LIMIT;
    while (rt->next_gen < generation) {
        struct mls_ks_key k;
        rc = ratchet_step(t, r, &k);
        /* Generations older than the window would be purged at once. */
        if (rc == 0 && (uint64_t)k.generation + MLS_KS_WINDOW >= generation)
            rc = skip_add(t, leaf, (uint8_t)which, &k);
        mls_ks_key_wipe(&k);
        if (rc != 0)
            return rc;
    }
    rc = ratchet_step(t, r, out);
    if (rc == 0)
        skip_purge(t, leaf, (uint8_t)which, generation);
    return rc;
}

/* ---- persistence (added for mls_group's saved state) ----------------------
 * | field       | encoding                                             |
 * |-------------|------------------------------------------------------|
 * | n_leaves    | uint32                                               |
 * | node_has    | n_nodes bytes (0/1), then 32 bytes per present node  |
 * | ratchets    | 2*n_leaves x {uint8 state, uint32 next_gen,          |
 * |             |   32-byte secret when state is live}                 |
 * | skip_seq    | uint64                                               |
 * | kept keys   | uint32 n, then n x {uint64 seq, uint32 leaf, uint32  |
 * |             |   generation, uint8 which, key[32], nonce[12]}       |
 */

void mls_ks_tree_save(const struct mls_ks_tree *t, struct tls_writer *w)
{
    tls_put_u32(w, t->n_leaves);
    tls_put_fixed(w, t->node_has, t->n_nodes);
    for (uint32_t i = 0; i < t->n_nodes; i++)
        if (t->node_has[i])
            tls_put_fixed(w, t->sec + (size_t)i * MLS_KS_NH, MLS_KS_NH);
    for (size_t r = 0; r < (size_t)t->n_leaves * 2; r++) {
        tls_put_u8(w, t->ratchets[r].state);
        tls_put_u32(w, t->ratchets[r].next_gen);
        if (t->ratchets[r].state == R_LIVE)
            tls_put_fixed(w, t->sec + ((size_t)t->n_nodes + r) * MLS_KS_NH, MLS_KS_NH);
    }
    tls_put_u64(w, t->skip_seq);
    tls_put_u32(w, (uint32_t)t->n_skip);
    for (size_t i = 0; i < t->n_skip; i++) {
        const struct skipped *e = &t->skip[i];
        tls_put_u64(w, e->seq);
        tls_put_u32(w, e->leaf);
        tls_put_u32(w, e->generation);
        tls_put_u8(w, e->which);
        tls_put_fixed(w, e->key, sizeof(e->key));
        tls_put_fixed(w, e->nonce, sizeof(e->nonce));
    }
}

int mls_ks_tree_load(struct tls_reader *r, struct mls_ks_tree **out)
{
    static const uint8_t zero[MLS_KS_NH];
    struct mls_ks_tree *t = NULL;
    const uint8_t *p;
    uint32_t n_leaves, n_skip;
    uint64_t skip_seq;
    int rc = ERR_MALFORMED;

    *out = NULL;
    if (tls_read_u32(r, &n_leaves) != 0 || !mls_treemath_valid_leaves(n_leaves) ||
        n_leaves > MLS_KS_MAX_LEAVES)
        return ERR_MALFORMED;
    /* Every node flag and ratchet header must be there before we allocate. */
    if (tls_reader_remaining(r) < (size_t)mls_treemath_node_width(n_leaves) + (size_t)n_leaves * 10)
        return ERR_MALFORMED;
    if ((rc = mls_ks_tree_new(zero, n_leaves, &t)) != 0)
        return rc;
    rc = ERR_MALFORMED;
    if (tls_read_fixed(r, t->n_nodes, &p) != 0)
        goto out;
    for (uint32_t i = 0; i < t->n_nodes; i++) {
        if (p[i] > 1)
            goto out;
        t->node_has[i] = p[i];
    }
    for (uint32_t i = 0; i < t->n_nodes; i++) {
        const uint8_t *s;
        if (!t->node_has[i])
            continue;
        if (tls_read_fixed(r, MLS_KS_NH, &s) != 0)
            goto out;
        memcpy(node_secret(t, i), s, MLS_KS_NH);
    }
    for (size_t i = 0; i < (size_t)n_leaves * 2; i++) {
        uint8_t st;
        const uint8_t *s;
        if (tls_read_u8(r, &st) != 0 || st > R_EXHAUSTED ||
            tls_read_u32(r, &t->ratchets[i].next_gen) != 0)
            goto out;
        t->ratchets[i].state = st;
        if (st == R_LIVE) {
            if (tls_read_fixed(r, MLS_KS_NH, &s) != 0)
                goto out;
            memcpy(ratchet_secret(t, i), s, MLS_KS_NH);
        }
    }
    if (tls_read_u64(r, &skip_seq) != 0 || tls_read_u32(r, &n_skip) != 0 ||
        n_skip > MLS_KS_MAX_SKIPPED || tls_reader_remaining(r) < (size_t)n_skip * 61)
        goto out;
    for (uint32_t i = 0; i < n_skip; i++) {
        struct mls_ks_key k;
        uint64_t seq;
        uint32_t leaf;
        uint8_t which;
        const uint8_t *kb, *nb;
        if (tls_read_u64(r, &seq) != 0 || tls_read_u32(r, &leaf) != 0 ||
            tls_read_u32(r, &k.generation) != 0 || tls_read_u8(r, &which) != 0 ||
            tls_read_fixed(r, CRYPTO_AEAD_KEY_LEN, &kb) != 0 ||
            tls_read_fixed(r, CRYPTO_AEAD_NONCE_LEN, &nb) != 0 || leaf >= n_leaves || which > 1)
            goto out;
        memcpy(k.key, kb, sizeof(k.key));
        memcpy(k.nonce, nb, sizeof(k.nonce));
        rc = skip_add(t, leaf, which, &k);
        mls_ks_key_wipe(&k);
        if (rc != 0)
            goto out;
        t->skip[t->n_skip - 1].seq = seq;
        rc = ERR_MALFORMED;
    }
    t->skip_seq = skip_seq;
    *out = t;
    t = NULL;
    rc = 0;
out:
    mls_ks_tree_free(t);
    return rc;
}

int mls_ks_tree_make_plain(struct mls_ks_tree *t)
{
    uint8_t *sec;
    struct skipped *skip = NULL;
    if (t->plain)
        return 0;
    sec = malloc(sec_len(t));
    if (sec == NULL)
        return ERR_NOMEM;
    if (t->cap_skip > 0) {
        skip = malloc(t->cap_skip * sizeof(*skip));
        if (skip == NULL) {
            free(sec);
            return ERR_NOMEM;
        }
        memcpy(skip, t->skip, t->cap_skip * sizeof(*skip));
    }
    memcpy(sec, t->sec, sec_len(t));
    crypto_secure_free(t->sec);
    crypto_secure_free(t->skip);
    t->sec = sec;
    t->skip = skip;
    t->plain = true;
    return 0;
}

int mls_ks_tree_key_return(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which,
                           const struct mls_ks_key *k)
{
    if (leaf >= t->n_leaves || (which != MLS_KS_HANDSHAKE && which != MLS_KS_APPLICATION))
        return ERR_INVALID;
    return skip_add(t, leaf, (uint8_t)which, k);
}
