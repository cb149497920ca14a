/*
 * mls_rules.h: RFC 9420 checks and small computations that a member
 * (mls_group*.c) and the delivery service's secret-free follower
 * (mls_follower.c) must do the same way: one implementation, so that the
 * server never accepts what a member refuses, or the reverse.
 *
 * Inputs are codec structures (mls_struct.h) and trees (mls_tree.h),
 * borrowed for the duration of the call; nothing is kept. Every int
 * function returns 0 or a negative ERR_* (err.h).
 */
#ifndef SAMMEN_MLS_RULES_H
#define SAMMEN_MLS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct mls_bytes;
struct mls_extension_list;
struct mls_group_info;
struct mls_leaf_node;
struct mls_proposal;
struct mls_pre_shared_key_id;
struct mls_tree;
struct mls_u16_list;

/* True when v is one of l's values. */
bool mls_rules_u16_in(const struct mls_u16_list *l, uint16_t v);

/* Every leaf of t supports the group extensions ext (§11.1, §12.1.7):
 * each non-default extension type is listed in the leaf's capabilities,
 * and the leaf meets ext's required_capabilities, if any (types RFC 9420
 * defines, extensions 1-5 and proposals 1-7, need not be listed).
 * ERR_INVALID (duplicate extension types, a malformed
 * required_capabilities, a leaf lacking something), ERR_NOMEM. */
int mls_rules_tree_supports(const struct mls_tree *t, const struct mls_extension_list *ext);

/* No two of ids[0..n) name the same PSK (§12.2): ERR_INVALID when two
 * encode to the same PreSharedKeyID bytes, ERR_NOMEM. Quadratic: callers
 * bound n. */
int mls_rules_psks_distinct(const struct mls_pre_shared_key_id *const *ids, size_t n);

/* The checks of one proposal's own content (§12.1), on arrival or by
 * value in a commit, against tree (the current epoch's) of the group
 * group_id: sender types (§12.1.8: external senders may propose Add,
 * Remove, PSK, ReInit and GroupContextExtensions; new members only Add;
 * ExternalInit only in an external commit); Add: a valid KeyPackage at
 * `now`; Update: a member's LeafNode valid for its leaf; Remove: an
 * occupied leaf; PSK: a nonce of Nh bytes, resumption only for an
 * application; GroupContextExtensions supported by every member. Other
 * types pass (mls_rules_commit_item checks that members list them).
 * ERR_INVALID, ERR_EXPIRED, ERR_CRYPTO, ERR_UNSUPPORTED, ERR_NOMEM. */
int mls_rules_proposal(const struct mls_tree *tree, const struct mls_bytes *group_id,
                       const struct mls_proposal *p, uint8_t sender_type, uint32_t sender,
                       uint64_t now);

/* PreSharedKey proposals accepted in one commit (the distinctness check is
 * quadratic). */
#define MLS_RULES_MAX_PSKS 64

/*
 * The rules on a commit's list of proposals as a whole (§12.2, §12.4.2,
 * external commits §12.4.3.2), applied identically by a member processing
 * or creating a commit and by the follower. Use:
 *   mls_rules_commit_init(&rc, tree, version, committer, external, joiner, n)
 *   mls_rules_commit_item(&rc, ...) for each proposal, in order
 *   mls_rules_commit_end(&rc)
 *   mls_rules_commit_reset(&rc) always, once init was called
 * Checks of a proposal's own content (KeyPackage, LeafNode, PSK id, ...)
 * stay with the caller. After _end, path_required and reinit are the
 * commit's.
 */
struct mls_rules_commit {
    const struct mls_tree *tree;        /* the tree before the commit */
    uint16_t version;                   /* the group's protocol version */
    uint32_t committer;                 /* the committer's leaf (not for external) */
    bool external;                      /* sender new_member_commit */
    const struct mls_leaf_node *joiner; /* external: the joiner's new LeafNode */
    size_t n_items;
    uint32_t *leaves; /* leaves updated or removed so far */
    size_t n_leaves;
    size_t n_gce, n_init, n_remove, n_psk;
    const struct mls_pre_shared_key_id *psks[MLS_RULES_MAX_PSKS];
    bool reinit;
    bool path_required;
};

/* Starts the checks of a commit of n_items proposals. 0 or ERR_NOMEM. */
int mls_rules_commit_init(struct mls_rules_commit *c, const struct mls_tree *tree,
                          uint16_t version, uint32_t committer, bool external,
                          const struct mls_leaf_node *joiner, size_t n_items);
/* One proposal p, sent by (sender_type, sender), by reference or by value.
 * ERR_INVALID when it may not be in this commit: an Update by value, by a
 * non-member or by the committer; a Remove of the committer; in an
 * external commit anything but ExternalInit, Remove (of a leaf with the
 * joiner's credential) and PreSharedKey; ExternalInit elsewhere; a ReInit
 * to an older version; a proposal type outside RFC 9420 that some member
 * does not list. Borrowed pointers must outlive _end. */
int mls_rules_commit_item(struct mls_rules_commit *c, const struct mls_proposal *p,
                          uint8_t sender_type, uint32_t sender, bool by_ref);
/* The checks on the whole list: at most one GroupContextExtensions, a
 * ReInit alone, an external commit with one ExternalInit and at most one
 * Remove, one Update or Remove per leaf (ERR_INVALID); at most
 * MLS_RULES_MAX_PSKS PSKs (ERR_LIMIT), all distinct (ERR_INVALID). */
int mls_rules_commit_end(struct mls_rules_commit *c);
/* Frees what init allocated; c may be reused after another init. */
void mls_rules_commit_reset(struct mls_rules_commit *c);

/* Verifies gi's signature over GroupInfoTBS (§12.4.3) with signer_pub
 * (the signature key of leaf gi->signer). ERR_CRYPTO (bad signature, or a
 * key of the wrong length), ERR_NOMEM. */
int mls_rules_group_info_signature(const struct mls_group_info *gi, const uint8_t *signer_pub,
                                   size_t signer_pub_len);

/* interim_transcript_hash = Hash(confirmed || InterimTranscriptHashInput)
 * with InterimTranscriptHashInput = confirmation_tag<V> (§8.2). clen is
 * CRYPTO_HASH_LEN, or 0 at epoch 0, whose confirmed hash is empty (§11).
 * 0 or ERR_NOMEM. */
int mls_rules_interim_hash(const uint8_t *confirmed, size_t clen, const uint8_t *tag,
                           size_t taglen, uint8_t out[CRYPTO_HASH_LEN]);

#endif
