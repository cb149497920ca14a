/*
 * mls_treekem.c: private TreeKEM state and UpdatePath create/process
 * (RFC 9420 §7.4-7.6). See mls_treekem.h for the order of the steps.
 *
 * Where to start: mls_treekem_path_generate() (committer) and
 * mls_treekem_path_decrypt() (receiver). Both walk the sender's filtered
 * direct path bottom-up; node i of that path gets path_secret[i]:
 *
 * | value             | derivation                                   |
 * |-------------------|----------------------------------------------|
 * | leaf key pair     | DeriveKeyPair(DeriveSecret(leaf_secret,"node")) |
 * | path_secret[0]    | DeriveSecret(leaf_secret, "path")            |
 * | path_secret[i+1]  | DeriveSecret(path_secret[i], "path")         |
 * | node i key pair   | DeriveKeyPair(DeriveSecret(path_secret[i],"node")) |
 * | commit_secret     | path_secret[n] (one past the root)           |
 */
#include "mls_treekem.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hpke.h"
#include "mls_struct.h"
#include "mls_tree.h"

#define NH CRYPTO_HASH_LEN
#define MAXD MLS_TREEMATH_MAX_DEPTH

/* ---- private key set ------------------------------------------------------- */

void mls_treekem_priv_init(struct mls_treekem_priv *p, uint32_t own_leaf,
                           const uint8_t leaf_priv[CRYPTO_KEM_PRIV_LEN])
{
    crypto_wipe(p, sizeof(*p));
    p->own_leaf = own_leaf;
    p->n = 1;
    p->keys[0].node = mls_treemath_leaf_to_node(own_leaf);
    memcpy(p->keys[0].priv, leaf_priv, CRYPTO_KEM_PRIV_LEN);
}

void mls_treekem_priv_wipe(struct mls_treekem_priv *p)
{
    crypto_wipe(p, sizeof(*p));
}

const uint8_t *mls_treekem_priv_get(const struct mls_treekem_priv *p, uint32_t node)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->keys[i].node == node)
            return p->keys[i].priv;
    return NULL;
}

int mls_treekem_priv_set(struct mls_treekem_priv *p, uint32_t node,
                         const uint8_t priv[CRYPTO_KEM_PRIV_LEN])
{
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->keys[i].node == node) {
            memcpy(p->keys[i].priv, priv, CRYPTO_KEM_PRIV_LEN);
            return 0;
        }
    }
    if (p->n >= MLS_TREEKEM_MAX_KEYS)
        return ERR_LIMIT;
    p->keys[p->n].node = node;
    memcpy(p->keys[p->n].priv, priv, CRYPTO_KEM_PRIV_LEN);
    p->n++;
    return 0;
}

/* The public encryption key of a non-blank node, or NULL. */
static const struct mls_bytes *node_pub(const struct mls_tree *t, uint32_t node)
{
    const struct mls_node *nd = mls_tree_node(t, node);
    if (!nd)
        return NULL;
    return nd->node_type == MLS_NODE_LEAF ? &nd->leaf.encryption_key
                                          : &nd->parent.encryption_key;
}

void mls_treekem_priv_prune(struct mls_treekem_priv *p, const struct mls_tree *t)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        const struct mls_bytes *pub = node_pub(t, p->keys[i].node);
        uint8_t mine[CRYPTO_KEM_PUB_LEN];
        bool keep = false;
        if (pub && pub->len == CRYPTO_KEM_PUB_LEN) {
            crypto_x25519_public(p->keys[i].priv, mine);
            keep = crypto_memeq(mine, pub->data, CRYPTO_KEM_PUB_LEN) == 0;
        }
        if (keep) {
            if (w != i)
                memcpy(&p->keys[w], &p->keys[i], sizeof(p->keys[0]));
            w++;
        }
    }
    for (uint32_t i = w; i < p->n; i++)
        crypto_wipe(&p->keys[i], sizeof(p->keys[0]));
    p->n = w;
}

int mls_treekem_derive_keypair(const uint8_t path_secret[CRYPTO_HASH_LEN],
                               uint8_t priv[CRYPTO_KEM_PRIV_LEN], uint8_t pub[CRYPTO_KEM_PUB_LEN])
{
    uint8_t node_secret[NH];
    int rc = crypto_derive_secret(path_secret, NH, "node", node_secret);
    if (rc == 0)
        rc = hpke_derive_keypair(node_secret, NH, priv, pub);
    crypto_wipe(node_secret, sizeof(node_secret));
    return rc;
}

/* From path_secret at index `from` of the filtered direct path nodes[0..n),
 * derives the key of every node from there up, checks each public key
 * against expect(i) and sets it in p; writes the commit secret (one past
 * the root) when commit_secret is not NULL. */
static int derive_up(struct mls_treekem_priv *p, const struct mls_tree *t,
                     const struct mls_update_path *path, const uint32_t *nodes, size_t n,
                     size_t from, const uint8_t first[NH], uint8_t *commit_secret)
{
    uint8_t ps[NH], next[NH], priv[CRYPTO_KEM_PRIV_LEN], pub[CRYPTO_KEM_PUB_LEN];
    struct mls_treekem_priv tmp;
    int rc = 0;
    memcpy(&tmp, p, sizeof(tmp));
    memcpy(ps, first, NH);
    for (size_t i = from; i < n; i++) {
        const struct mls_bytes *want =
            path ? &path->nodes[i].encryption_key : node_pub(t, nodes[i]);
        if ((rc = mls_treekem_derive_keypair(ps, priv, pub)) != 0)
            goto out;
        if (!want || want->len != CRYPTO_KEM_PUB_LEN ||
            crypto_memeq(pub, want->data, CRYPTO_KEM_PUB_LEN) != 0) {
            rc = ERR_CRYPTO;
            goto out;
        }
        if ((rc = mls_treekem_priv_set(&tmp, nodes[i], priv)) != 0)
            goto out;
        if ((rc = crypto_derive_secret(ps, NH, "path", next)) != 0)
            goto out;
        memcpy(ps, next, NH);
    }
    if (commit_secret)
        memcpy(commit_secret, ps, NH);
    memcpy(p, &tmp, sizeof(tmp));
out:
    crypto_wipe(&tmp, sizeof(tmp));
    crypto_wipe(ps, sizeof(ps));
    crypto_wipe(next, sizeof(next));
    crypto_wipe(priv, sizeof(priv));
    return rc;
}

int mls_treekem_priv_from_path_secret(struct mls_treekem_priv *p, const struct mls_tree *t,
                                      uint32_t node, const uint8_t path_secret[CRYPTO_HASH_LEN])
{
    uint32_t nodes[MAXD];
    size_t n = 0;
    int rc = mls_tree_filtered_direct_path(t, p->own_leaf, nodes, MAXD, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (nodes[i] == node)
            return derive_up(p, t, NULL, nodes, n, i, path_secret, NULL);
    return ERR_INVALID;
}

/* ---- creating a path -------------------------------------------------------- */

void mls_treekem_update_reset(struct mls_treekem_update *u)
{
    if (u->path) {
        mls_update_path_free(u->path);
        free(u->path);
    }
    crypto_wipe(u, sizeof(*u));
}

static int sign_leaf(struct mls_leaf_node *ln, const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN],
                     const uint8_t *gid, size_t gid_len, uint32_t leaf)
{
    struct tls_writer w;
    uint8_t sig[CRYPTO_SIG_LEN];
    int rc;
    tls_writer_init(&w, 0);
    mls_leaf_node_encode_tbs(&w, ln, gid, gid_len, leaf);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_sign_with_label(sig_priv, "LeafNodeTBS", w.buf, w.len, sig);
    tls_writer_reset(&w);
    if (rc == 0)
        rc = mls_bytes_set(&ln->signature, sig, sizeof(sig));
    return rc;
}

int mls_treekem_path_generate(struct mls_tree *t, uint32_t sender,
                              const struct mls_leaf_node *old_leaf,
                              const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN], const uint8_t *group_id,
                              size_t group_id_len, const uint8_t *leaf_secret,
                              struct mls_treekem_priv *priv, struct mls_treekem_update *u)
{
    uint8_t ls[NH], ps[NH], kpriv[CRYPTO_KEM_PRIV_LEN], kpub[CRYPTO_KEM_PUB_LEN];
    uint8_t ph[MLS_TREE_HASH_LEN];
    size_t ph_len = 0;
    struct mls_treekem_priv tmp;
    struct mls_update_path *path = NULL;
    int rc;

    memset(u, 0, sizeof(*u));
    memcpy(&tmp, priv, sizeof(tmp));
    u->sender = sender;
    if (leaf_secret)
        memcpy(ls, leaf_secret, NH);
    else
        crypto_random(ls, NH);
    if ((rc = mls_tree_filtered_direct_path(t, sender, u->nodes, MAXD, &u->n)) != 0)
        goto out;
    path = calloc(1, sizeof(*path));
    if (!path || (u->n && !(path->nodes = calloc(u->n, sizeof(*path->nodes))))) {
        rc = ERR_NOMEM;
        goto out;
    }
    u->path = path;
    path->n_nodes = u->n;

    /* Leaf key pair, then the path secrets up to the commit secret. */
    if ((rc = mls_treekem_derive_keypair(ls, u->leaf_priv, kpub)) != 0)
        goto out;
    if ((rc = crypto_derive_secret(ls, NH, "path", ps)) != 0)
        goto out;
    for (size_t i = 0; i < u->n; i++) {
        memcpy(u->secrets[i], ps, NH);
        if ((rc = mls_treekem_derive_keypair(ps, kpriv, kpub)) != 0)
            goto out;
        if ((rc = mls_bytes_set(&path->nodes[i].encryption_key, kpub, sizeof(kpub))) != 0)
            goto out;
        if ((rc = crypto_derive_secret(u->secrets[i], NH, "path", ps)) != 0)
            goto out;
    }
    memcpy(u->commit_secret, ps, NH);

    /* The new LeafNode: old content, new key, source commit, parent hash. */
    if ((rc = mls_leaf_node_copy(&path->leaf_node, old_leaf)) != 0)
        goto out;
    crypto_x25519_public(u->leaf_priv, kpub);
    if ((rc = mls_bytes_set(&path->leaf_node.encryption_key, kpub, sizeof(kpub))) != 0)
        goto out;
    path->leaf_node.leaf_node_source = MLS_LEAF_SOURCE_COMMIT;
    path->leaf_node.lifetime.not_before = 0;
    path->leaf_node.lifetime.not_after = 0;
    if ((rc = mls_tree_path_parent_hash(t, sender, path, ph, &ph_len)) != 0)
        goto out;
    if ((rc = mls_bytes_set(&path->leaf_node.parent_hash, ph, ph_len)) != 0)
        goto out;
    mls_bytes_free(&path->leaf_node.signature);
    if ((rc = sign_leaf(&path->leaf_node, sig_priv, group_id, group_id_len, sender)) != 0)
        goto out;

    /* Private keys: ours for the leaf and every path node. */
    if ((rc = mls_treekem_priv_set(&tmp, mls_treemath_leaf_to_node(sender), u->leaf_priv)) != 0)
        goto out;
    for (size_t i = 0; i < u->n; i++) {
        if ((rc = mls_treekem_derive_keypair(u->secrets[i], kpriv, kpub)) != 0)
            goto out;
        if ((rc = mls_treekem_priv_set(&tmp, u->nodes[i], kpriv)) != 0)
            goto out;
    }
    if ((rc = mls_tree_apply_path(t, sender, path, group_id, group_id_len)) != 0)
        goto out;
    mls_treekem_priv_prune(&tmp, t);
    memcpy(priv, &tmp, sizeof(tmp));
out:
    if (rc != 0) {
        if (path && !u->path) {
            mls_update_path_free(path);
            free(path);
        }
        mls_treekem_update_reset(u);
    }
    crypto_wipe(&tmp, sizeof(tmp));
    crypto_wipe(ls, sizeof(ls));
    crypto_wipe(ps, sizeof(ps));
    crypto_wipe(kpriv, sizeof(kpriv));
    return rc;
}

static bool excluded(uint32_t node, const uint32_t *exclude, size_t n_exclude)
{
    if (!mls_treemath_is_leaf(node))
        return false;
    for (size_t i = 0; i < n_exclude; i++)
        if (mls_treemath_leaf_to_node(exclude[i]) == node)
            return true;
    return false;
}

/* The child of `node` (on the sender's filtered direct path) that is not
 * an ancestor of `leaf_node`: the copath child. */
static int copath_child(uint32_t node, uint32_t leaf_node, uint32_t *out)
{
    uint32_t l, r;
    int rc = mls_treemath_left(node, &l);
    if (rc == 0)
        rc = mls_treemath_right(node, &r);
    if (rc != 0)
        return rc;
    *out = mls_treemath_in_subtree(l, leaf_node) ? r : l;
    return 0;
}

/* Resolution of c without the excluded leaves. *res is the caller's. */
static int resolution_excl(const struct mls_tree *t, uint32_t c, const uint32_t *exclude,
                           size_t n_exclude, uint32_t **res, size_t *n)
{
    size_t cap = mls_tree_node_count(t), k = 0, m = 0;
    uint32_t *r = calloc(cap ? cap : 1, sizeof(*r));
    int rc;
    if (!r)
        return ERR_NOMEM;
    if ((rc = mls_tree_resolution(t, c, r, cap, &m)) != 0) {
        free(r);
        return rc;
    }
    for (size_t i = 0; i < m; i++)
        if (!excluded(r[i], exclude, n_exclude))
            r[k++] = r[i];
    *res = r;
    *n = k;
    return 0;
}

int mls_treekem_path_encrypt(const struct mls_tree *t, struct mls_treekem_update *u,
                             const uint32_t *exclude, size_t n_exclude, const uint8_t *gc,
                             size_t gc_len)
{
    uint32_t own = mls_treemath_leaf_to_node(u->sender);
    uint32_t *res = NULL;
    int rc = 0;
    if (!u->path)
        return ERR_INVALID;
    for (size_t i = 0; i < u->n; i++) {
        struct mls_update_path_node *pn = &u->path->nodes[i];
        uint32_t c;
        size_t m = 0;
        if ((rc = copath_child(u->nodes[i], own, &c)) != 0)
            goto out;
        free(res);
        res = NULL;
        if ((rc = resolution_excl(t, c, exclude, n_exclude, &res, &m)) != 0)
            goto out;
        for (size_t j = 0; j < pn->n_encrypted_path_secret; j++)
            mls_hpke_ciphertext_free(&pn->encrypted_path_secret[j]);
        free(pn->encrypted_path_secret);
        pn->encrypted_path_secret = NULL;
        pn->n_encrypted_path_secret = 0;
        if (m == 0)
            continue;
        pn->encrypted_path_secret = calloc(m, sizeof(*pn->encrypted_path_secret));
        if (!pn->encrypted_path_secret) {
            rc = ERR_NOMEM;
            goto out;
        }
        pn->n_encrypted_path_secret = m;
        for (size_t j = 0; j < m; j++) {
            const struct mls_bytes *pub = node_pub(t, res[j]);
            uint8_t kem[CRYPTO_KEM_ENC_LEN], ct[NH + CRYPTO_AEAD_TAG_LEN];
            if (!pub || pub->len != CRYPTO_KEM_PUB_LEN) {
                rc = ERR_INVALID;
                goto out;
            }
            rc = crypto_encrypt_with_label(pub->data, "UpdatePathNode", gc, gc_len, u->secrets[i],
                                           NH, kem, ct);
            if (rc == 0)
                rc = mls_bytes_set(&pn->encrypted_path_secret[j].kem_output, kem, sizeof(kem));
            if (rc == 0)
                rc = mls_bytes_set(&pn->encrypted_path_secret[j].ciphertext, ct, sizeof(ct));
            if (rc != 0)
                goto out;
        }
    }
out:
    free(res);
    return rc;
}

int mls_treekem_update_secret_for(const struct mls_treekem_update *u, uint32_t leaf,
                                  uint32_t *node, uint8_t out[CRYPTO_HASH_LEN])
{
    uint32_t ln = mls_treemath_leaf_to_node(leaf);
    for (size_t i = 0; i < u->n; i++) {
        if (mls_treemath_in_subtree(u->nodes[i], ln)) {
            *node = u->nodes[i];
            memcpy(out, u->secrets[i], NH);
            return 0;
        }
    }
    return ERR_NOT_FOUND;
}

/* ---- processing a path ------------------------------------------------------ */

int mls_treekem_path_decrypt(const struct mls_tree *t, struct mls_treekem_priv *priv,
                             uint32_t sender, const struct mls_update_path *path,
                             const uint32_t *exclude, size_t n_exclude, const uint8_t *gc,
                             size_t gc_len, uint8_t commit_secret[CRYPTO_HASH_LEN],
                             uint8_t *path_secret, uint32_t *node)
{
    uint32_t nodes[MAXD], c, own = mls_treemath_leaf_to_node(priv->own_leaf);
    uint32_t snode = mls_treemath_leaf_to_node(sender);
    uint32_t *res = NULL;
    size_t n = 0, m = 0, i, j;
    uint8_t ps[NH];
    const uint8_t *key = NULL;
    const struct mls_hpke_ciphertext *ct;
    int rc;

    if (priv->own_leaf == sender)
        return ERR_INVALID;
    if ((rc = mls_tree_filtered_direct_path(t, sender, nodes, MAXD, &n)) != 0)
        return rc;
    if (n != path->n_nodes)
        return ERR_INVALID;
    for (i = 0; i < n; i++)
        if (mls_treemath_in_subtree(nodes[i], own))
            break;
    if (i == n)
        return ERR_NOT_FOUND;
    if ((rc = copath_child(nodes[i], snode, &c)) != 0)
        return rc;
    if ((rc = resolution_excl(t, c, exclude, n_exclude, &res, &m)) != 0)
        return rc;
    if (path->nodes[i].n_encrypted_path_secret != m) {
        rc = ERR_INVALID;
        goto out;
    }
    for (j = 0; j < m; j++)
        if ((key = mls_treekem_priv_get(priv, res[j])) != NULL)
            break;
    if (!key) {
        rc = ERR_NOT_FOUND;
        goto out;
    }
    ct = &path->nodes[i].encrypted_path_secret[j];
    if (ct->ciphertext.len != NH + CRYPTO_AEAD_TAG_LEN) {
        rc = ERR_CRYPTO;
        goto out;
    }
    rc = crypto_decrypt_with_label(key, "UpdatePathNode", gc, gc_len, ct->kem_output.data,
                                   ct->kem_output.len, ct->ciphertext.data, ct->ciphertext.len,
                                   ps);
    if (rc != 0)
        goto out;
    if ((rc = derive_up(priv, t, path, nodes, n, i, ps, commit_secret)) != 0)
        goto out;
    if (path_secret)
        memcpy(path_secret, ps, NH);
    if (node)
        *node = nodes[i];
out:
    crypto_wipe(ps, sizeof(ps));
    free(res);
    return rc;
}
