/*
 * mls_tree.h: the public ratchet tree (RFC 9420 §4, §7): everything a group
 * member or the delivery service can know without any group secret.
 *
 * Where to start: mls_tree_decode() takes the body of a ratchet_tree
 * extension (optional<Node> ratchet_tree<V>, §12.4.3.3) and gives a tree;
 * mls_tree_validate() checks it the way a joiner must (§12.4.3.1): parent-hash
 * chains, unmerged leaves, leaf nodes (§7.3) and key uniqueness;
 * mls_tree_node_hash(t, mls_tree_root(t), h) is the tree_hash of the
 * GroupContext. Proposals change it with mls_tree_add/update/remove and a
 * commit's UpdatePath with mls_tree_apply_path().
 *
 * The tree is an array of optional nodes, node i at index i (§4.1): even
 * nodes are leaves (LeafNode), odd ones parents (ParentNode with
 * unmerged_leaves). Internally it always spans a full tree (a power-of-two
 * number of leaves); the encoding drops trailing blank nodes and decoding
 * pads them back.
 *
 * Ownership: struct mls_tree is opaque; mls_tree_free() releases it
 * (NULL is a no-op). Pointers returned by mls_tree_leaf() point into the tree
 * and stay valid until the tree is next changed or freed. Every function
 * returns 0 or a negative ERR_* (err.h); a function that fails leaves the
 * tree unchanged unless it says otherwise. No I/O, no globals; not
 * thread-safe per tree (callers serialize access to one tree).
 *
 * Only cipher suite 3 is meant (SHA-256, Ed25519, X25519): hashes are
 * MLS_TREE_HASH_LEN bytes.
 */
#ifndef SAMMEN_MLS_TREE_H
#define SAMMEN_MLS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MLS_TREE_HASH_LEN 32
/* Largest tree we accept: 2^16 leaves (the codec's MLS_MAX_ITEMS bounds a
 * decoded node vector to 2^17 entries). */
#define MLS_TREE_MAX_LEAVES ((uint32_t)1 << 16)
/* Policy bound on each capabilities list and on a LeafNode's extensions
 * (real clients list a handful): longer ones are refused as ERR_INVALID. */
#define MLS_TREE_MAX_LIST 256
/* The cipher suite the tree checks leaf capabilities against. */
#define MLS_TREE_CIPHER_SUITE 3

struct mls_tree;
struct mls_node;
struct mls_leaf_node;
struct mls_update_path;

/* Decodes the ratchet_tree extension body buf[0..len) strictly: node types
 * must match positions (leaves even, parents odd), the last node must be
 * present, the node count must fit a full tree of at most
 * MLS_TREE_MAX_LEAVES leaves, no trailing bytes. Structural checks only:
 * call mls_tree_validate() before trusting it. On success *out is the
 * caller's (mls_tree_free). ERR_MALFORMED, ERR_TOO_BIG, ERR_NOMEM. */
int mls_tree_decode(const uint8_t *buf, size_t len, struct mls_tree **out);
/* Encodes the tree as a ratchet_tree extension body (trailing blank nodes
 * dropped). *buf is the caller's (free()). 0, ERR_NOMEM. */
int mls_tree_encode(const struct mls_tree *t, uint8_t **buf, size_t *len);
/* A deep copy. 0 or ERR_NOMEM. */
int mls_tree_clone(const struct mls_tree *t, struct mls_tree **out);
/* A one-leaf tree holding a copy of leaf (a group's creator). */
int mls_tree_new_one(const struct mls_leaf_node *leaf, struct mls_tree **out);
void mls_tree_free(struct mls_tree *t);

/* Number of leaves (a power of two) and of nodes (2 * leaves - 1). */
uint32_t mls_tree_leaf_count(const struct mls_tree *t);
uint32_t mls_tree_node_count(const struct mls_tree *t);
/* Index of the root node. */
uint32_t mls_tree_root(const struct mls_tree *t);
/* The LeafNode at leaf index `leaf`, or NULL when that leaf is blank or
 * outside the tree. Valid until the tree changes. */
const struct mls_leaf_node *mls_tree_leaf(const struct mls_tree *t, uint32_t leaf);
/* Node `node` (leaf or parent, see node_type), or NULL when it is blank or
 * outside the tree. Valid until the tree changes. (Added for the group
 * state machine, which needs parent public keys and unmerged leaves.) */
const struct mls_node *mls_tree_node(const struct mls_tree *t, uint32_t node);
/* True when some non-blank leaf has source update or commit (its signature
 * binds the group_id). */
bool mls_tree_has_group_bound_leaf(const struct mls_tree *t);

/* Resolution of `node` (§4.1.1), in order: node indices, at most cap of
 * them (cap = node count always suffices). ERR_INVALID for a bad node,
 * ERR_TOO_BIG when cap is too small. */
int mls_tree_resolution(const struct mls_tree *t, uint32_t node, uint32_t *out, size_t cap,
                        size_t *n);
/* Filtered direct path of leaf (§4.1.2): direct-path nodes whose copath
 * child has a non-empty resolution, bottom up. cap >= 32 always suffices.
 * ERR_INVALID, ERR_TOO_BIG, ERR_NOMEM. */
int mls_tree_filtered_direct_path(const struct mls_tree *t, uint32_t leaf, uint32_t *out,
                                  size_t cap, size_t *n);

/* Tree hash (§7.8) of the subtree rooted at node. ERR_INVALID, ERR_NOMEM. */
int mls_tree_node_hash(const struct mls_tree *t, uint32_t node, uint8_t out[MLS_TREE_HASH_LEN]);

/* Checks that every non-blank parent node is parent-hash valid with respect
 * to exactly one descendant (§7.9.2). 0, ERR_INVALID, ERR_NOMEM. */
int mls_tree_verify_parent_hashes(const struct mls_tree *t);

/* Full validation of a tree received from outside (§12.4.3.1 / §7.3):
 * parent hashes; unmerged leaves (each a non-blank leaf below the node and
 * listed by every non-blank node in between); for every leaf: its signature
 * (under group_id and its leaf index for update/commit sources), its
 * capabilities include suite 3, MLS 1.0, its own extensions and the
 * credential type of every member; signature and encryption keys unique
 * among all nodes. Lifetimes are not checked here (a tree's leaves may be
 * old): see mls_keypackage_validate for new members. 0, ERR_INVALID,
 * ERR_CRYPTO (a bad signature), ERR_NOMEM. */
int mls_tree_validate(const struct mls_tree *t, const uint8_t *group_id, size_t group_id_len);

/* The checks of one LeafNode that need no tree (§7.3): source equals
 * `source`; key sizes; capabilities list MLS 1.0, suite 3, the leaf's own
 * credential type and its non-default extension types; extensions unique;
 * no list longer than MLS_TREE_MAX_LIST;
 * signature by its signature_key over LeafNodeTBS (with group_id and leaf
 * for update/commit sources; ignored, may be NULL/0, for key_package).
 * 0, ERR_INVALID, ERR_CRYPTO, ERR_NOMEM. */
int mls_tree_leaf_node_check(const struct mls_leaf_node *ln, uint8_t source, uint32_t leaf,
                             const uint8_t *group_id, size_t group_id_len);

/* Validates one LeafNode about to enter the tree at `leaf` (§7.3; leaf may
 * be mls_tree_leaf_count(t) for a leaf not yet placed) for
 * `source` (enum mls_leaf_node_source): source matches; signature (group_id
 * and leaf used for update/commit); capabilities as in mls_tree_validate
 * against the other members; signature and encryption keys not used by any
 * other node (the node at `leaf` itself is ignored, so an Update may keep
 * its signature key). Lifetime not checked. */
int mls_tree_validate_leaf(const struct mls_tree *t, const struct mls_leaf_node *ln,
                           uint8_t source, uint32_t leaf, const uint8_t *group_id,
                           size_t group_id_len);

/* ---- changes (§12.1, §7.5, §7.9) ------------------------------------------
 * None of these validate the LeafNode: callers do (mls_tree_validate_leaf,
 * mls_keypackage_validate). On error the tree is unchanged. */

/* Add: puts a copy of leaf into the leftmost blank leaf (doubling the tree
 * when there is none) and adds it to the unmerged_leaves of every non-blank
 * parent above. *leaf_index gets its index. ERR_TOO_BIG, ERR_NOMEM. */
int mls_tree_add(struct mls_tree *t, const struct mls_leaf_node *leaf, uint32_t *leaf_index);
/* Update: replaces leaf `leaf_index` with a copy and blanks its direct path.
 * ERR_INVALID when that leaf is blank. */
int mls_tree_update(struct mls_tree *t, uint32_t leaf_index, const struct mls_leaf_node *leaf);
/* Remove: blanks the leaf and its direct path, then truncates the tree to
 * the smallest full tree holding the rightmost non-blank leaf. ERR_INVALID
 * when that leaf is blank. */
int mls_tree_remove(struct mls_tree *t, uint32_t leaf_index);

/* Applies the public part of a commit's UpdatePath from sender (§7.5,
 * §12.4.2): checks the path length matches the sender's filtered direct
 * path (computed after the commit's proposals were applied: call this after
 * them), blanks the direct path, installs the new encryption keys on the
 * filtered direct path with empty unmerged_leaves, computes the parent
 * hashes and checks the new LeafNode's parent_hash; validates the LeafNode
 * (source commit, signature under group_id/sender, capabilities, unique
 * keys) and replaces the sender's leaf. The encrypted path secrets are not
 * (cannot be) checked. ERR_INVALID, ERR_CRYPTO, ERR_NOMEM; on error the tree
 * is unchanged. */
int mls_tree_apply_path(struct mls_tree *t, uint32_t sender, const struct mls_update_path *path,
                        const uint8_t *group_id, size_t group_id_len);

/* The parent_hash the sender's new LeafNode must carry for `path` (whose
 * LeafNode is ignored) on tree t (after the commit's proposals): what a
 * committer signs into its leaf. *out_len is 0 (empty parent_hash) when the
 * filtered direct path is empty, else MLS_TREE_HASH_LEN. Same shape errors
 * as mls_tree_apply_path. */
int mls_tree_path_parent_hash(const struct mls_tree *t, uint32_t sender,
                              const struct mls_update_path *path, uint8_t out[MLS_TREE_HASH_LEN],
                              size_t *out_len);

/* ---- roster --------------------------------------------------------------- */
struct mls_roster_entry {
    uint32_t leaf_index;
    uint16_t credential_type;     /* enum mls_credential_type */
    const uint8_t *identity;      /* basic: identity; x509: first cert */
    size_t identity_len;
    const uint8_t *signature_key; /* Ed25519 public key */
    size_t signature_key_len;
};

/* Lists the non-blank leaves in leaf order into out[0..cap); *n gets how
 * many members there are (even when cap is too small: then ERR_TOO_BIG).
 * Pointers stay valid until the tree changes. */
int mls_tree_roster(const struct mls_tree *t, struct mls_roster_entry *out, size_t cap,
                    size_t *n);

#endif
