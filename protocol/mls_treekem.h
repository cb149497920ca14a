/*
 * mls_treekem.h: the private half of the ratchet tree (RFC 9420 §7.4-7.6):
 * path secrets, node private keys, creating and processing UpdatePaths.
 *
 * The public tree (mls_tree.h) knows every node's public key; a member also
 * holds the private keys of its own leaf and of some nodes on its direct
 * path. struct mls_treekem_priv keeps those (at most one per level), as a
 * plain fixed-size struct so the group can embed it in its one secret
 * allocation. After any change to the public tree call
 * mls_treekem_priv_prune(): keys of nodes that are now blank, or whose
 * public key changed, are wiped.
 *
 * Creating a path (committer), in this order, because the encryption
 * context is the provisional GroupContext, which contains the tree hash
 * after the path:
 *   1. apply the commit's proposals to the public tree;
 *   2. mls_treekem_path_generate(): fresh leaf secret -> path secrets up the
 *      filtered direct path -> node key pairs; parent hashes; our new
 *      LeafNode (source commit, parent_hash, signed); the public path is
 *      applied to the tree, and the private keys are set in *priv (new_priv,
 *      not yet the group's: the commit is only pending);
 *   3. build the provisional GroupContext (tree hash of the new tree);
 *   4. mls_treekem_path_encrypt(): each path secret encrypted to the
 *      resolution of the copath child (minus the leaves added by this
 *      commit), EncryptWithLabel(..., "UpdatePathNode", GroupContext).
 * Processing a path (other members):
 *   1. apply the proposals; 2. mls_tree_apply_path() (checks parent hashes
 *   and the new leaf); 3. provisional GroupContext;
 *   4. mls_treekem_path_decrypt(): finds the one ciphertext for a node we
 *      hold a key for, decrypts, derives upward, checks each derived public
 *      key against the path, sets the private keys, gives commit_secret.
 *
 * Derivations (§7.4): path_secret[n+1] = DeriveSecret(path_secret[n],
 * "path"); node_secret = DeriveSecret(path_secret, "node"); node key pair =
 * DeriveKeyPair(node_secret); commit_secret = DeriveSecret(last path
 * secret, "path"). The leaf's first path_secret is a fresh leaf_secret
 * (its key pair = DeriveKeyPair(DeriveSecret(leaf_secret, "node"))).
 *
 * Every function returns 0 or a negative ERR_*; outputs are caller storage.
 */
#ifndef SAMMEN_MLS_TREEKEM_H
#define SAMMEN_MLS_TREEKEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "mls_treemath.h"

struct mls_tree;
struct mls_leaf_node;
struct mls_update_path;

/* Own leaf + one node per level of the direct path. */
#define MLS_TREEKEM_MAX_KEYS (MLS_TREEMATH_MAX_DEPTH + 1)

/* Private keys we hold, by node index. Plain data: copy with memcpy,
 * wipe with mls_treekem_priv_wipe. */
struct mls_treekem_priv {
    uint32_t own_leaf;
    uint32_t n;
    struct {
        uint32_t node;
        uint8_t priv[CRYPTO_KEM_PRIV_LEN];
    } keys[MLS_TREEKEM_MAX_KEYS];
};

void mls_treekem_priv_init(struct mls_treekem_priv *p, uint32_t own_leaf,
                           const uint8_t leaf_priv[CRYPTO_KEM_PRIV_LEN]);
void mls_treekem_priv_wipe(struct mls_treekem_priv *p);
/* The private key of node, or NULL. */
const uint8_t *mls_treekem_priv_get(const struct mls_treekem_priv *p, uint32_t node);
/* Sets (or replaces) the key of node. ERR_LIMIT when full. */
int mls_treekem_priv_set(struct mls_treekem_priv *p, uint32_t node,
                         const uint8_t priv[CRYPTO_KEM_PRIV_LEN]);
/* Wipes the keys of nodes that are blank in t or whose public key in t is
 * not the one of the private key. */
void mls_treekem_priv_prune(struct mls_treekem_priv *p, const struct mls_tree *t);
/* Sets the keys of node and its ancestors on own_leaf's filtered direct
 * path from path_secret (the path secret of node), as a joiner does with
 * GroupSecrets.path_secret or as the treekem vectors give them. Checks that
 * each derived public key equals the tree's (ERR_CRYPTO). */
int mls_treekem_priv_from_path_secret(struct mls_treekem_priv *p, const struct mls_tree *t,
                                      uint32_t node, const uint8_t path_secret[CRYPTO_HASH_LEN]);

/* Derivation helpers. */
int mls_treekem_derive_keypair(const uint8_t path_secret[CRYPTO_HASH_LEN],
                               uint8_t priv[CRYPTO_KEM_PRIV_LEN], uint8_t pub[CRYPTO_KEM_PUB_LEN]);

/* A path being created. Secrets: wipe with mls_treekem_update_reset. */
struct mls_treekem_update {
    struct mls_update_path *path; /* heap, owned (mls_update_path_free + free) */
    uint32_t sender;
    size_t n;                                    /* filtered direct path length */
    uint32_t nodes[MLS_TREEMATH_MAX_DEPTH];      /* filtered direct path */
    uint8_t secrets[MLS_TREEMATH_MAX_DEPTH][CRYPTO_HASH_LEN]; /* path secret per node */
    uint8_t commit_secret[CRYPTO_HASH_LEN];
    uint8_t leaf_priv[CRYPTO_KEM_PRIV_LEN];
};

void mls_treekem_update_reset(struct mls_treekem_update *u);

/* Step 2 above. t: the tree after the proposals (changed: the path is
 * applied). old_leaf: the sender's current LeafNode, whose credential,
 * capabilities and extensions are kept. leaf_secret: NULL for a fresh
 * random one (tests pass their own). priv: receives the new private keys
 * (leaf and path nodes), replacing the sender's old ones. On error t and
 * priv are unchanged and *u is reset. */
int mls_treekem_path_generate(struct mls_tree *t, uint32_t sender,
                              const struct mls_leaf_node *old_leaf,
                              const uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN], const uint8_t *group_id,
                              size_t group_id_len, const uint8_t *leaf_secret,
                              struct mls_treekem_priv *priv, struct mls_treekem_update *u);

/* Step 4: fills u->path's encrypted_path_secret lists. exclude: leaf
 * indices added by this commit (left out of resolutions). gc: the encoded
 * provisional GroupContext. */
int mls_treekem_path_encrypt(const struct mls_tree *t, struct mls_treekem_update *u,
                             const uint32_t *exclude, size_t n_exclude, const uint8_t *gc,
                             size_t gc_len);

/* The path secret of the lowest node of u's path that is an ancestor of
 * `leaf` (what goes into a new member's GroupSecrets.path_secret), and
 * that node. ERR_NOT_FOUND when there is none. */
int mls_treekem_update_secret_for(const struct mls_treekem_update *u, uint32_t leaf,
                                  uint32_t *node, uint8_t out[CRYPTO_HASH_LEN]);

/* Receiver side, after mls_tree_apply_path(t, sender, path). priv must be
 * for a leaf other than sender. exclude as above. On success the keys of
 * the path nodes from the decrypted one upward are set in priv (callers
 * prune first or after), commit_secret is written, and, when not NULL,
 * path_secret/node get the decrypted (lowest) path secret and its node.
 * ERR_INVALID (shape), ERR_NOT_FOUND (no node we hold a key for),
 * ERR_CRYPTO (decryption failed or derived keys differ). */
int mls_treekem_path_decrypt(const struct mls_tree *t, struct mls_treekem_priv *priv,
                             uint32_t sender, const struct mls_update_path *path,
                             const uint32_t *exclude, size_t n_exclude, const uint8_t *gc,
                             size_t gc_len, uint8_t commit_secret[CRYPTO_HASH_LEN],
                             uint8_t *path_secret, uint32_t *node);

#endif
