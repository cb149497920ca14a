/*
 * mls_group_save.c: a group's complete state as bytes, and back
 * (mls_group_save / mls_group_load). The output holds every secret of the
 * current epoch: the caller encrypts it at rest.
 *
 * Format, version 1 (TLS presentation language, MLS varints for <V>):
 * | field                 | encoding                                          |
 * |-----------------------|---------------------------------------------------|
 * | version               | uint8 = MLS_GROUP_STATE_VERSION                   |
 * | padding               | uint32 (application message padding block)        |
 * | own_leaf, active      | uint32, uint8 (0/1)                               |
 * | group_context         | GroupContext                                      |
 * | interim hash, tag     | opaque[32], opaque[32] (this epoch's confirmation)|
 * | ratchet tree          | opaque<V> (ratchet_tree extension body)           |
 * | key schedule          | uint8 encryption_taken, 11 x opaque[32]           |
 * | secret tree           | see mls_ks_tree_save (mls_ks_tree.c)              |
 * | signature key         | opaque[32] (Ed25519 seed)                         |
 * | tree private keys     | uint32 n (<= 32), n x {uint32 node, opaque[32]}   |
 * | resumption PSKs       | uint32 n (<= KEEP), n x {uint64 epoch, opaque[32]}|
 * | proposals             | uint32 n (<= MAX), n x {opaque[32] ref, uint8     |
 * |                       |   sender_type, uint32 sender, Proposal, uint8     |
 * |                       |   has_update_priv, [opaque[32] update_priv]}      |
 * Not saved: a pending (unconfirmed) commit, registered external PSKs.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_group.h"
#include "mls_group_int.h"
#include "mls_treemath.h"
#include "tls.h"

int mls_group_save(const struct mls_group *g, uint8_t **out, size_t *len)
{
    const struct gstate *s = g->cur;
    const struct gsecrets *sec = s->sec;
    struct tls_writer w;
    uint8_t *tree = NULL, sbuf[HLEN];
    size_t tree_len = 0;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = mls_tree_encode(s->tree, &tree, &tree_len)) != 0)
        return rc;
    tls_writer_init(&w, 0);
    tls_put_u8(&w, MLS_GROUP_STATE_VERSION);
    tls_put_u32(&w, g->padding);
    tls_put_u32(&w, s->own_leaf);
    tls_put_u8(&w, s->active ? 1 : 0);
    mls_group_context_encode(&w, &s->gc);
    tls_put_fixed(&w, s->interim, HLEN);
    tls_put_fixed(&w, s->ctag, CRYPTO_MAC_LEN);
    tls_put_opaque(&w, tree, tree_len);
    free(tree);
    tls_put_u8(&w, mls_ks_epoch_encryption_taken(s->ks) ? 1 : 0);
    for (int i = 0; i < MLS_KS_SECRET_COUNT; i++) {
        if ((rc = mls_ks_epoch_secret(s->ks, (enum mls_ks_secret)i, sbuf)) != 0) {
            tls_writer_reset(&w);
            return rc;
        }
        tls_put_fixed(&w, sbuf, HLEN);
    }
    crypto_wipe(sbuf, sizeof(sbuf));
    mls_ks_tree_save(s->st, &w);
    tls_put_fixed(&w, sec->sig_priv, CRYPTO_SIGN_PRIV_LEN);
    tls_put_u32(&w, sec->tk.n);
    for (uint32_t i = 0; i < sec->tk.n; i++) {
        tls_put_u32(&w, sec->tk.keys[i].node);
        tls_put_fixed(&w, sec->tk.keys[i].priv, CRYPTO_KEM_PRIV_LEN);
    }
    tls_put_u32(&w, sec->n_res);
    for (uint32_t i = 0; i < sec->n_res; i++) {
        tls_put_u64(&w, sec->res_epoch[i]);
        tls_put_fixed(&w, sec->res_psk[i], HLEN);
    }
    tls_put_u32(&w, (uint32_t)s->n_props);
    for (size_t i = 0; i < s->n_props; i++) {
        const struct gprop *p = &s->props[i];
        tls_put_fixed(&w, p->ref, MLS_REF_LEN);
        tls_put_u8(&w, p->sender_type);
        tls_put_u32(&w, p->sender);
        mls_proposal_encode(&w, &p->p);
        tls_put_u8(&w, p->has_update_priv ? 1 : 0);
        if (p->has_update_priv)
            tls_put_fixed(&w, p->update_priv, CRYPTO_KEM_PRIV_LEN);
    }
    return tls_writer_take(&w, out, len);
}

static int rd32(struct tls_reader *r, const uint8_t **p)
{
    return tls_read_fixed(r, HLEN, p) == 0 ? 0 : ERR_MALFORMED;
}

int mls_group_load(const uint8_t *buf, size_t len, unsigned flags, struct mls_group **out)
{
    struct tls_reader r;
    struct mls_group *g = NULL;
    struct gstate *s = NULL;
    uint8_t ver, active, taken, th[HLEN];
    uint8_t (*secrets)[HLEN] = NULL;
    const uint8_t *p, *tree;
    size_t tree_len;
    uint32_t n;
    int rc = ERR_MALFORMED;

    *out = NULL;
    tls_reader_init(&r, buf, len);
    if (tls_read_u8(&r, &ver) != 0)
        return ERR_MALFORMED;
    if (ver != MLS_GROUP_STATE_VERSION)
        return ERR_UNSUPPORTED;
    g = calloc(1, sizeof(*g));
    if (!g || !(s = gstate_new(flags, NULL))) {
        free(g);
        return ERR_NOMEM;
    }
    g->flags = flags;
    g->cur = s;
    if (tls_read_u32(&r, &g->padding) != 0 || tls_read_u32(&r, &s->own_leaf) != 0 ||
        tls_read_u8(&r, &active) != 0 || active > 1)
        goto out;
    s->active = active == 1;
    if ((rc = mls_group_context_decode(&r, &s->gc)) != 0)
        goto out;
    rc = ERR_MALFORMED;
    if (rd32(&r, &p) != 0)
        goto out;
    memcpy(s->interim, p, HLEN);
    if (rd32(&r, &p) != 0)
        goto out;
    memcpy(s->ctag, p, HLEN);
    if (tls_read_opaque(&r, &tree, &tree_len) != 0)
        goto out;
    if ((rc = mls_tree_decode(tree, tree_len, &s->tree)) != 0)
        goto out;
    rc = ERR_MALFORMED;
    if (tls_read_u8(&r, &taken) != 0 || taken > 1)
        goto out;
    secrets = malloc(MLS_KS_SECRET_COUNT * HLEN);
    if (!secrets) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < MLS_KS_SECRET_COUNT; i++) {
        if (rd32(&r, &p) != 0)
            goto out;
        memcpy(secrets[i], p, HLEN);
    }
    /* A secret tree took encryption_secret: it is saved as zeros (canonical). */
    if (taken) {
        static const uint8_t zero[HLEN];
        if (crypto_memeq(secrets[MLS_KS_ENCRYPTION], zero, HLEN) != 0)
            goto out;
    }
    if ((rc = mls_ks_epoch_restore((const uint8_t(*)[HLEN])secrets, taken == 1, &s->ks)) != 0)
        goto out;
    if ((rc = mls_ks_tree_load(&r, &s->st)) != 0)
        goto out;
    if ((flags & MLS_GROUP_F_PLAIN_MEMORY) &&
        ((rc = mls_ks_epoch_make_plain(&s->ks)) != 0 || (rc = mls_ks_tree_make_plain(s->st)) != 0))
        goto out;
    rc = ERR_MALFORMED;
    if (tls_read_fixed(&r, CRYPTO_SIGN_PRIV_LEN, &p) != 0)
        goto out;
    memcpy(s->sec->sig_priv, p, CRYPTO_SIGN_PRIV_LEN);
    s->sec->tk.own_leaf = s->own_leaf;
    if (tls_read_u32(&r, &n) != 0 || n > MLS_TREEKEM_MAX_KEYS)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t node;
        if (tls_read_u32(&r, &node) != 0 || tls_read_fixed(&r, CRYPTO_KEM_PRIV_LEN, &p) != 0)
            goto out;
        if (mls_treekem_priv_get(&s->sec->tk, node) || mls_treekem_priv_set(&s->sec->tk, node, p))
            goto out;
    }
    if (tls_read_u32(&r, &n) != 0 || n > MLS_GROUP_RESUMPTION_KEEP)
        goto out;
    s->sec->n_res = n;
    for (uint32_t i = 0; i < n; i++) {
        if (tls_read_u64(&r, &s->sec->res_epoch[i]) != 0 || rd32(&r, &p) != 0)
            goto out;
        memcpy(s->sec->res_psk[i], p, HLEN);
    }
    if (tls_read_u32(&r, &n) != 0 || n > MLS_GROUP_MAX_PROPOSALS ||
        tls_reader_remaining(&r) < (size_t)n * 40)
        goto out;
    if (n) {
        s->props = calloc(n, sizeof(*s->props));
        if (!s->props) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        struct gprop *e = &s->props[i];
        uint8_t has;
        if (rd32(&r, &p) != 0)
            goto out;
        memcpy(e->ref, p, MLS_REF_LEN);
        if (tls_read_u8(&r, &e->sender_type) != 0 || tls_read_u32(&r, &e->sender) != 0)
            goto out;
        if ((rc = mls_proposal_decode(&r, &e->p)) != 0)
            goto out;
        s->n_props++;
        rc = ERR_MALFORMED;
        if (tls_read_u8(&r, &has) != 0 || has > 1)
            goto out;
        if (has) {
            if (tls_read_fixed(&r, CRYPTO_KEM_PRIV_LEN, &p) != 0)
                goto out;
            e->has_update_priv = true;
            memcpy(e->update_priv, p, CRYPTO_KEM_PRIV_LEN);
        }
    }
    if (!tls_reader_done(&r))
        goto out;

    /* Consistency: the tree is the one the GroupContext names, our leaf
     * is in it, the secret tree covers it, our keys match it. */
    rc = ERR_INVALID;
    if (s->gc.version != MLS_VERSION_MLS10 || s->gc.cipher_suite != 3 ||
        s->gc.tree_hash.len != HLEN)
        goto out;
    if ((rc = mls_tree_node_hash(s->tree, mls_tree_root(s->tree), th)) != 0)
        goto out;
    rc = ERR_INVALID;
    if (memcmp(th, s->gc.tree_hash.data, HLEN) != 0)
        goto out;
    if (s->active && !mls_tree_leaf(s->tree, s->own_leaf))
        goto out;
    {
        uint32_t before = s->sec->tk.n;
        mls_treekem_priv_prune(&s->sec->tk, s->tree);
        if (s->sec->tk.n != before)
            goto out;
    }
    if ((rc = gstate_set_gc(s)) != 0)
        goto out;
    *out = g;
    g = NULL;
out:
    if (secrets) {
        crypto_wipe(secrets, MLS_KS_SECRET_COUNT * HLEN);
        free(secrets);
    }
    mls_group_free(g);
    return rc;
}
