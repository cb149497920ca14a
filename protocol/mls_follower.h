/*
 * mls_follower.h: the delivery service's view of one MLS group, kept
 * without any group secret (RFC 9420 §§6, 8.2, 12).
 *
 * The server is not a member: it cannot read PrivateMessages, verify
 * membership or confirmation tags, or check encrypted path secrets. What it
 * can do is authorize membership changes: it knows the public ratchet tree,
 * the GroupContext and the transcript hashes, so it verifies the signature
 * of every handshake PublicMessage, applies proposals and commits to the
 * public tree exactly as members do, and so always knows who is in the group
 * (roster: leaf index -> credential identity, signature key). It can also
 * speak as the group's external sender (§12.1.8.1): a signed Remove proposal
 * that members then commit.
 *
 * Life cycle:
 *   mls_follower_new(group_info_msg, tree)   from a GroupInfo (MLSMessage)
 *                                            and the ratchet tree (or the
 *                                            GroupInfo's ratchet_tree
 *                                            extension); checks everything
 *   mls_follower_handle(f, msg, now, &event) each PublicMessage proposal or
 *                                            commit, in order; on error
 *                                            the state is unchanged
 *   mls_follower_roster / _epoch / ...       the current state
 *   mls_follower_external_remove(...)        a signed Remove to send
 *   mls_follower_free(f)
 *
 * Groups the server follows must send handshake messages (proposals and
 * commits) as PublicMessage; a PrivateMessage handshake is refused
 * (ERR_UNSUPPORTED). External commits (sender new_member_commit, §12.4.3.2)
 * are followed: signed by the joiner's new LeafNode, only ExternalInit (one),
 * Remove (at most one: the joiner's old leaf, which must carry the joiner's
 * credential, as members check; whether it really is the same client is the
 * caller's policy, see mls_follower_set_commit_check) and PreSharedKey
 * proposals, all by value, and a path from the leftmost blank leaf, where
 * the joiner is added. Proposals and commits are judged by the same rules
 * members apply (mls_rules.h), so the server never moves a group to an
 * epoch its members refuse.
 *
 * Errors (err.h): ERR_MALFORMED (bytes do not decode), ERR_UNSUPPORTED
 * (not a PublicMessage, suite or version other than 3/mls10), ERR_INVALID
 * (wrong group, a rule of §12.2-12.4 broken, bad tree or leaf), ERR_BADSTATE
 * (wrong epoch; group ended by ReInit), ERR_CRYPTO (bad signature),
 * ERR_DENIED (sender is not a current member or external sender),
 * ERR_NOT_FOUND (a commit references a proposal we never saw this epoch),
 * ERR_EXPIRED (a KeyPackage outside its lifetime), ERR_LIMIT (too many
 * pending proposals or bytes of them, too many proposals in a commit),
 * ERR_CONFLICT (a proposal seen before), ERR_NOMEM.
 *
 * Ownership: struct mls_follower is opaque and owns its state; all inputs
 * are borrowed for the call; outputs are caller buffers or heap buffers the
 * caller free()s, as each function says. No I/O, no clock (`now` is passed
 * in, Unix seconds), no globals.
 */
#ifndef SAMMEN_MLS_FOLLOWER_H
#define SAMMEN_MLS_FOLLOWER_H

#include <stddef.h>
#include <stdint.h>

#include "mls_tree.h"

/* Proposals kept per epoch, and proposals in one commit, before ERR_LIMIT. */
#define MLS_FOLLOWER_MAX_PENDING 1024
/* Total encoded size of the proposals kept per epoch before ERR_LIMIT. */
#define MLS_FOLLOWER_MAX_PENDING_BYTES ((size_t)8 * 1024 * 1024)

struct mls_follower;

enum mls_follower_event {
    MLS_FOLLOWER_PROPOSAL = 1, /* a proposal was verified and remembered */
    MLS_FOLLOWER_COMMIT = 2,   /* a commit was applied: the epoch advanced */
};

/* Starts following a group. group_info: a serialized MLSMessage holding a
 * GroupInfo. tree/tree_len: the ratchet tree (extension body form), or
 * NULL/0 to take it from the GroupInfo's ratchet_tree extension.
 * Checks: suite 3 and mls10; the tree decodes and validates
 * (mls_tree_validate) and its hash equals the GroupContext's tree_hash;
 * the signer is a member and the GroupInfo signature verifies with its key;
 * the GroupContext's external_senders extension, if any, decodes.
 * On success *out is the caller's (mls_follower_free). */
int mls_follower_new(const uint8_t *group_info, size_t group_info_len, const uint8_t *tree,
                     size_t tree_len, struct mls_follower **out);
void mls_follower_free(struct mls_follower *f);

/* Processes one MLSMessage (a PublicMessage proposal or commit of the
 * current epoch). Proposals: signature by the sender (a member's leaf key
 * with the GroupContext, an external sender's key, or a new member's
 * KeyPackage key), sender allowed to send that type, KeyPackages valid at
 * `now`; remembered by ProposalRef until the epoch ends. Commits: sender is
 * a current member; signature; proposals resolved by value or reference and
 * checked against §12.2-12.4 (no Update by value or from the committer, no
 * removal of the committer, at most one Update/Remove per leaf, no duplicate
 * members or PSKs, ReInit alone, no ExternalInit, one GroupContextExtensions
 * supported by every member, required capabilities, a path whenever the
 * proposals require one); then proposals (GCE, Update, Remove, Add) and the
 * path (encrypted-secret counts, new keys, parent hashes, the committer's
 * new LeafNode) are applied to the public tree, and the epoch, tree hash and
 * transcript hashes advance. *event (may be NULL) says which happened.
 * On any error nothing changes. */
int mls_follower_handle(struct mls_follower *f, const uint8_t *msg, size_t len, uint64_t now,
                        int *event);

/* Produces a Remove proposal for removed_leaf from the external sender
 * sender_index (an index into the group's external_senders extension),
 * signed with signer_priv (Ed25519 seed; its public key must be that
 * sender's signature_key, else ERR_DENIED), as a serialized MLSMessage
 * (PublicMessage, sender type external, current epoch). *out is the
 * caller's (free()). The follower does not remember it: feed it back
 * through mls_follower_handle when it is sent to the group. ERR_INVALID
 * when removed_leaf is not a member, ERR_NOT_FOUND for a bad sender_index,
 * ERR_BADSTATE when the group has ended. */
int mls_follower_external_remove(const struct mls_follower *f, uint32_t removed_leaf,
                                 const uint8_t signer_priv[32], uint32_t sender_index,
                                 uint8_t **out, size_t *out_len);

/* Produces an Add proposal for the KeyPackage in key_package_msg (a
 * serialized MLSMessage, wire_format mls_key_package) from the external
 * sender sender_index, signed with signer_priv, as a serialized MLSMessage
 * (PublicMessage, sender type external, current epoch). The KeyPackage is
 * not validated here (the caller did so when it was stored; the follower
 * validates it again when the proposal is fed back through
 * mls_follower_handle). *out is the caller's (free()). ERR_MALFORMED /
 * ERR_INVALID for a bad KeyPackage message, otherwise as
 * mls_follower_external_remove. */
int mls_follower_external_add(const struct mls_follower *f, const uint8_t *key_package_msg,
                              size_t key_package_len, const uint8_t signer_priv[32],
                              uint32_t sender_index, uint8_t **out, size_t *out_len);

/* Installs a policy check run by mls_follower_handle on every commit that
 * passed all MLS checks, with the ratchet tree the commit would produce and
 * the committer's leaf index, before the follower changes anything. A
 * non-zero return (a negative ERR_*) refuses the commit: it is returned by
 * mls_follower_handle and the state stays as it was. fn NULL removes it.
 * The tree is borrowed for the call only. */
void mls_follower_set_commit_check(struct mls_follower *f,
                                   int (*fn)(void *ctx, const struct mls_tree *tree,
                                             uint32_t committer),
                                   void *ctx);

/* Version of the mls_follower_save() format. */
#define MLS_FOLLOWER_STATE_VERSION 1

/* Serializes the follower's whole state (GroupContext, interim transcript
 * hash, ratchet tree, pending proposals, ended flag; format in
 * mls_follower.c) so that a server can keep it across restarts. No
 * secrets are in it. *out is the caller's (free()). The commit check is
 * not saved. */
int mls_follower_save(const struct mls_follower *f, uint8_t **out, size_t *len);
/* Restores a saved follower. Bounded, strict decoder: ERR_MALFORMED
 * (truncated, trailing bytes, too many pending proposals), ERR_UNSUPPORTED
 * (another version), ERR_INVALID (tree hash or GroupContext inconsistent),
 * ERR_NOMEM. On success *out is the caller's (mls_follower_free). */
int mls_follower_load(const uint8_t *buf, size_t len, struct mls_follower **out);

/* ---- state ---------------------------------------------------------------- */
uint64_t mls_follower_epoch(const struct mls_follower *f);
/* Pointer into the follower, valid until it is freed. */
const uint8_t *mls_follower_group_id(const struct mls_follower *f, size_t *len);
/* The GroupContext's tree_hash / confirmed transcript hash, and the interim
 * transcript hash (32 bytes each). */
void mls_follower_tree_hash(const struct mls_follower *f, uint8_t out[MLS_TREE_HASH_LEN]);
void mls_follower_confirmed_transcript_hash(const struct mls_follower *f,
                                            uint8_t out[MLS_TREE_HASH_LEN]);
void mls_follower_interim_transcript_hash(const struct mls_follower *f,
                                          uint8_t out[MLS_TREE_HASH_LEN]);
/* The serialized GroupContext (what member signatures cover). *out is the
 * caller's (free()). */
int mls_follower_group_context(const struct mls_follower *f, uint8_t **out, size_t *len);
/* The ratchet tree, extension body form. *out is the caller's (free()). */
int mls_follower_tree(const struct mls_follower *f, uint8_t **out, size_t *len);
/* Members, as mls_tree_roster (pointers valid until the next handle). */
int mls_follower_roster(const struct mls_follower *f, struct mls_roster_entry *out, size_t cap,
                        size_t *n);

struct mls_follower_pending {
    uint8_t ref[32];         /* ProposalRef */
    uint16_t proposal_type;  /* enum mls_proposal_type */
    uint8_t sender_type;     /* enum mls_sender_type */
    uint32_t sender;         /* leaf index (member) or sender_index (external) */
};

/* The proposals remembered this epoch, in arrival order. *n gets the count
 * (ERR_TOO_BIG when above cap). */
int mls_follower_pending(const struct mls_follower *f, struct mls_follower_pending *out,
                         size_t cap, size_t *n);

#endif
