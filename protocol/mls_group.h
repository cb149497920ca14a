/*
 * mls_group.h: a client's MLS group state machine (RFC 9420 §§7-14), suite 3.
 *
 * A struct mls_group is one device's membership in one group at one epoch:
 * the public ratchet tree (mls_tree.h), our private tree keys (TreeKEM,
 * mls_treekem.h), the epoch's key schedule and secret tree (mls_ks.h), the
 * GroupContext and transcript hashes, the proposals received this epoch and
 * our Ed25519 signature key.
 *
 * Life cycle
 *
 *   mls_group_create(gid, kp, ext, flags)    a new one-member group (epoch 0)
 *   mls_group_join(welcome, kps, tree, psks) join from a Welcome; the KeyPackage
 *                                            used is marked consumed (mls_kp.h)
 *   mls_group_join_external(gi, kp, resync)  join by external commit (send the
 *                                            commit it returns)
 *   mls_group_load(state)                    restore a saved group
 *        |
 *        v
 *   mls_group_process(g, msg, now, &ev)      every MLSMessage of this group the
 *                                            delivery service hands us, in order:
 *                                            application (PrivateMessage),
 *                                            proposals and commits (PublicMessage;
 *                                            PrivateMessage handshakes are also
 *                                            accepted). A commit moves the epoch.
 *   mls_group_encrypt(g, pt, ad)             application message -> PrivateMessage
 *   mls_group_propose_*(g, ...)              a proposal -> PublicMessage; it is
 *                                            remembered at once (by reference)
 *   mls_group_commit_create(g, opts, now)    a Commit (+ Welcome for Adds, +
 *                                            GroupInfo). The group does NOT change:
 *                                            the next epoch is kept as "pending"
 *   mls_group_commit_confirm(g)              the delivery service accepted it:
 *                                            move to the pending epoch
 *   mls_group_commit_discard(g)              it was refused (e.g. another commit
 *                                            won the race): drop it
 *     (receiving our own commit back through mls_group_process while it is
 *      pending is the same as confirming it; receiving another member's
 *      commit for this epoch discards ours and applies theirs.)
 *   mls_group_commit_pending(g, now, &out)   the policy hook: commit every
 *                                            proposal received this epoch, by
 *                                            reference (e.g. the server's external
 *                                            Removes; ev.external_pending said so)
 *   mls_group_save(g) / mls_group_free(g)
 *
 * Sammen's policy: handshake messages (proposals, commits) are sent as
 * PublicMessage so the server's follower (mls_follower.h) can check them;
 * application messages are PrivateMessage, zero-padded to a multiple of the
 * group's padding block (MLS_GROUP_PAD_BLOCK by default).
 *
 * Epochs: when the epoch advances, the old epoch's secrets are wiped (key
 * schedule, secret tree, path secrets); only the resumption PSKs of the last
 * MLS_GROUP_RESUMPTION_KEEP epochs are kept (for PSK proposals). Messages of
 * older epochs are refused with ERR_BADSTATE.
 *
 * Memory: the group's secrets live in one guarded allocation (sodium_malloc)
 * for the group plus the key schedule's one per epoch and the secret tree's;
 * with MLS_GROUP_F_PLAIN_MEMORY all three are plain malloc'd memory (still
 * wiped on free), for benchmarks creating thousands of groups (a process
 * can hold only about 8000 groups' worth of guarded blocks).
 *
 * Ownership: struct mls_group is opaque and owns everything in it; inputs are
 * borrowed for the call; byte outputs are heap buffers the caller free()s
 * (application plaintext: wipe then free, or mls_group_event_reset). Pointers
 * returned by accessors stay valid until the group next changes. Not
 * thread-safe per group. No I/O, no clock: `now` is Unix seconds.
 *
 * Errors (err.h): ERR_MALFORMED (bytes do not decode), ERR_UNSUPPORTED
 * (suite/version),
 * ERR_INVALID (a rule of RFC 9420 broken; bad tree; bad leaf), ERR_CRYPTO
 * (signature, membership tag, confirmation tag, AEAD, path decryption),
 * ERR_BADSTATE (wrong group or epoch, replayed generation, a pending commit
 * exists / does not exist, we were removed), ERR_DENIED (sender is not a
 * member / external sender), ERR_NOT_FOUND (unknown proposal reference, PSK
 * or KeyPackage), ERR_EXPIRED (KeyPackage lifetime), ERR_CONFLICT (KeyPackage
 * already used), ERR_LIMIT, ERR_NOMEM. On any error the group is unchanged.
 */
#ifndef SAMMEN_MLS_GROUP_H
#define SAMMEN_MLS_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "mls_tree.h" /* struct mls_roster_entry */

struct mls_group;
struct mls_kp;
struct mls_extension_list;

/* Flags for create / join / load. */
#define MLS_GROUP_F_PLAIN_MEMORY 0x1u /* malloc instead of sodium_malloc */
/* Default PrivateMessage padding: content padded to a multiple of this. */
#define MLS_GROUP_PAD_BLOCK 32u
/* Proposals remembered per epoch. */
#define MLS_GROUP_MAX_PROPOSALS 1024u
/* Past epochs whose resumption PSK is kept. */
#define MLS_GROUP_RESUMPTION_KEEP 4u
/* Version of the mls_group_save() format. */
#define MLS_GROUP_STATE_VERSION 1u

/* An external PSK value the application knows (§8.4). Borrowed. */
struct mls_group_psk {
    const uint8_t *id;
    size_t id_len;
    const uint8_t *secret;
    size_t secret_len;
};

/* ---- creating, joining, restoring ---------------------------------------- */

/* A new group with one member, us, at epoch 0 (§11). Our leaf is kp's
 * LeafNode and its private key kp's encryption key; kp's signature seed
 * becomes the group's signing key (the KeyPackage itself is not consumed
 * and should not be published). ext: the GroupContext extensions (e.g.
 * external_senders, required_capabilities), copied; may be NULL. */
int mls_group_create(const uint8_t *group_id, size_t group_id_len, const struct mls_kp *kp,
                     const struct mls_extension_list *ext, unsigned flags,
                     struct mls_group **out);

/* Joins from a Welcome (an MLSMessage, §12.4.3.1). kps[0..n_kps): our unused
 * KeyPackages; the one the Welcome names is used and marked consumed
 * (ERR_NOT_FOUND when none matches, ERR_CONFLICT when it is already used).
 * tree/tree_len: the ratchet tree (extension body form) when it is not in the
 * GroupInfo's ratchet_tree extension, else NULL/0. psks: external PSK values
 * the GroupSecrets may name; resumption PSKs are looked up in `from` (a group
 * we are in whose resumption PSKs cover them: ReInit/branch), may be NULL.
 * Checks: GroupInfo signature and confirmation tag, tree validity and hash,
 * our leaf matches the KeyPackage, the path secret (if any) matches the
 * tree's public keys, required capabilities. `now` is for leaf lifetimes. */
int mls_group_join(const uint8_t *welcome, size_t welcome_len, struct mls_kp *const *kps,
                   size_t n_kps, const uint8_t *tree, size_t tree_len,
                   const struct mls_group_psk *psks, size_t n_psks, const struct mls_group *from,
                   uint64_t now, unsigned flags, struct mls_group **out);

/* Joins by external commit (§12.4.3.2) from a GroupInfo (an MLSMessage with
 * the external_pub extension; the tree in its ratchet_tree extension, or
 * tree/tree_len). kp gives our LeafNode, encryption and signature keys (its
 * init key is not used; the caller should not publish it). With resync, a
 * member with our credential identity is removed in the same commit (a
 * device that lost its state). On success *out is the group at the new
 * epoch and *commit (the caller's, free()) must be sent; if the delivery
 * service refuses it, free the group and try again from a newer GroupInfo.
 * ERR_UNSUPPORTED when the GroupInfo has no external_pub. */
int mls_group_join_external(const uint8_t *group_info, size_t group_info_len, const uint8_t *tree,
                            size_t tree_len, const struct mls_kp *kp, bool resync, uint64_t now,
                            unsigned flags, struct mls_group **out, uint8_t **commit,
                            size_t *commit_len);

/* Serializes the whole state (see MLS.md, "Group state machine"): version,
 * GroupContext, tree, interim transcript hash, epoch secrets, secret-tree
 * state, private tree keys, signature key, pending proposals, resumption
 * PSKs, options. A pending (unconfirmed) commit is not saved. SECRET: the
 * caller encrypts it at rest, then wipes and free()s *out. */
int mls_group_save(const struct mls_group *g, uint8_t **out, size_t *len);
/* Restores a saved group. Strict, bounded decoder: ERR_MALFORMED,
 * ERR_UNSUPPORTED (other version), ERR_INVALID (inconsistent state),
 * ERR_NOMEM. */
int mls_group_load(const uint8_t *buf, size_t len, unsigned flags, struct mls_group **out);

/* Wipes and frees; NULL is a no-op. */
void mls_group_free(struct mls_group *g);

/* Registers external PSK values the group may need for PSK proposals it
 * receives or sends (copied; replaces an entry with the same id). Not
 * saved by mls_group_save(). */
int mls_group_add_external_psk(struct mls_group *g, const struct mls_group_psk *psk);

/* Options: padding block for application messages (0: no padding). */
void mls_group_set_padding(struct mls_group *g, uint32_t block);

/* ---- receiving -------------------------------------------------------------- */

enum mls_group_event_type {
    MLS_GROUP_EV_APPLICATION = 1, /* data/len: the plaintext */
    MLS_GROUP_EV_PROPOSAL = 2,    /* a proposal was verified and remembered */
    MLS_GROUP_EV_COMMIT = 3,      /* a commit was applied; the epoch moved */
};

struct mls_group_event {
    int type;                   /* enum mls_group_event_type */
    uint8_t sender_type;        /* enum mls_sender_type */
    uint32_t sender;            /* leaf index or external sender index */
    uint16_t proposal_type;     /* for MLS_GROUP_EV_PROPOSAL */
    uint8_t *data;              /* application plaintext (owned) */
    size_t len;
    uint8_t *authenticated_data; /* owned; may be NULL */
    size_t ad_len;
    uint64_t epoch;             /* the group's epoch after the message */
    bool own_commit;            /* the commit was our pending one */
    bool removed;               /* the commit removed us: the group is over */
    bool external_pending;      /* proposals from an external sender are
                                   waiting to be committed: call
                                   mls_group_commit_pending() */
    bool reinit;                /* the commit was a ReInit: the group is over
                                   (inactive); its resumption PSK serves
                                   mls_group_join(..., from = this group) */
};

/* Wipes and frees the event's buffers and zeroes it. */
void mls_group_event_reset(struct mls_group_event *ev);

/* Processes one MLSMessage of this group (see the life cycle). *ev is filled
 * (reset it afterwards). After a commit that removed us (ev->removed) the
 * group accepts nothing more (ERR_BADSTATE). */
int mls_group_process(struct mls_group *g, const uint8_t *msg, size_t len, uint64_t now,
                      struct mls_group_event *ev);

/* ---- sending ---------------------------------------------------------------- */

/* An application message as an MLSMessage(PrivateMessage) (§6.3), with
 * authenticated_data ad (may be NULL/0). *out is the caller's (free()).
 * ERR_BADSTATE while we have been removed. */
int mls_group_encrypt(struct mls_group *g, const uint8_t *pt, size_t len, const uint8_t *ad,
                      size_t ad_len, uint8_t **out, size_t *out_len);

/* Proposals, each as an MLSMessage(PublicMessage) signed by us; each is also
 * remembered as a received proposal of this epoch (so a later commit can
 * include it by reference). *out is the caller's (free()). */
/* Add: key_package is an MLSMessage(KeyPackage) or a bare KeyPackage,
 * validated at `now`. */
int mls_group_propose_add(struct mls_group *g, const uint8_t *key_package, size_t kp_len,
                          uint64_t now, uint8_t **out, size_t *out_len);
int mls_group_propose_remove(struct mls_group *g, uint32_t leaf, uint8_t **out, size_t *out_len);
/* Update with a fresh encryption key (our leaf otherwise unchanged). */
int mls_group_propose_update(struct mls_group *g, uint8_t **out, size_t *out_len);
/* External PSK (its value must be registered) or, with psk_id NULL, a
 * resumption PSK of epoch `epoch` of this group. */
int mls_group_propose_psk(struct mls_group *g, const uint8_t *psk_id, size_t psk_id_len,
                          uint64_t epoch, uint8_t **out, size_t *out_len);
int mls_group_propose_gce(struct mls_group *g, const struct mls_extension_list *ext, uint8_t **out,
                          size_t *out_len);
/* ReInit (§12.1.5) into a new group group_id (same version and suite 3,
 * extensions ext, may be NULL). Once committed (alone: by
 * mls_group_commit_pending when it is the only remembered proposal) the
 * group is over for everyone (ev.reinit). */
int mls_group_propose_reinit(struct mls_group *g, const uint8_t *group_id, size_t group_id_len,
                             const struct mls_extension_list *ext, uint8_t **out, size_t *out_len);

/* What a commit should contain. Proposals by value are the new ones listed
 * here; with include_pending every proposal remembered this epoch is added
 * by reference (those that fail validation are left out, §12.2).
 * Zero-initialise, then fill what is needed. */
struct mls_group_commit_opts {
    const uint8_t *const *add_kps; /* MLSMessage(KeyPackage) or KeyPackage */
    const size_t *add_kp_lens;
    size_t n_add;
    const uint32_t *remove; /* leaf indices */
    size_t n_remove;
    const struct mls_group_psk *psks; /* external PSKs, by id (value needed) */
    size_t n_psks;
    const struct mls_extension_list *gce; /* new GroupContext extensions */
    bool include_pending; /* commit remembered proposals by reference */
    bool force_path;      /* include an UpdatePath even when not required */
    bool tree_in_welcome; /* ratchet_tree extension in the Welcome's GroupInfo */
    const uint8_t *authenticated_data;
    size_t ad_len;
};

struct mls_group_commit_out {
    uint8_t *commit; /* MLSMessage(PublicMessage) */
    size_t commit_len;
    uint8_t *welcome; /* MLSMessage(Welcome), NULL when nobody is added */
    size_t welcome_len;
    uint8_t *group_info; /* MLSMessage(GroupInfo) of the new epoch, with the
                            ratchet_tree extension (for the server) */
    size_t group_info_len;
};

void mls_group_commit_out_reset(struct mls_group_commit_out *out);

/* Creates a commit (§12.4). The group is unchanged until
 * mls_group_commit_confirm(); ERR_BADSTATE when a commit is already pending.
 * ERR_INVALID when the proposals are not valid together. */
int mls_group_commit_create(struct mls_group *g, const struct mls_group_commit_opts *opts,
                            uint64_t now, struct mls_group_commit_out *out);
/* Commits every proposal remembered this epoch, by reference, with a path
 * (the client policy for the server's external Adds and Removes); a Welcome
 * for added members carries the ratchet tree. ERR_NOT_FOUND when there is
 * nothing to commit. */
int mls_group_commit_pending(struct mls_group *g, uint64_t now, struct mls_group_commit_out *out);
/* Applies the pending commit: the epoch advances. ERR_BADSTATE if none. */
int mls_group_commit_confirm(struct mls_group *g);
/* Drops the pending commit (no-op when none). */
void mls_group_commit_discard(struct mls_group *g);
/* True while a commit waits for confirm/discard. */
bool mls_group_has_pending_commit(const struct mls_group *g);

/* ---- state ------------------------------------------------------------------ */
uint64_t mls_group_epoch(const struct mls_group *g);
const uint8_t *mls_group_id(const struct mls_group *g, size_t *len);
uint32_t mls_group_own_leaf(const struct mls_group *g);
/* False once a commit removed us or re-initialized the group (ReInit). */
bool mls_group_active(const struct mls_group *g);
/* epoch_authenticator of the current epoch (§8.7). */
int mls_group_epoch_authenticator(const struct mls_group *g, uint8_t out[CRYPTO_HASH_LEN]);
/* MLS-Exporter(label, context, len) (§8.5). */
int mls_group_export(const struct mls_group *g, const char *label, const uint8_t *context,
                     size_t ctx_len, uint8_t *out, size_t len);
/* Members, as mls_tree_roster (pointers valid until the group changes). */
int mls_group_roster(const struct mls_group *g, struct mls_roster_entry *out, size_t cap,
                     size_t *n);
/* The ratchet tree (extension body form). *out is the caller's (free()). */
int mls_group_tree(const struct mls_group *g, uint8_t **out, size_t *len);
/* The serialized GroupContext. *out is the caller's (free()). */
int mls_group_group_context(const struct mls_group *g, uint8_t **out, size_t *len);
/* A signed GroupInfo of the current epoch as an MLSMessage, with the
 * ratchet_tree extension when with_tree (e.g. to seed the server's
 * follower) and our external_pub. *out is the caller's (free()). */
int mls_group_group_info(const struct mls_group *g, bool with_tree, uint8_t **out, size_t *len);
/* Number of proposals remembered this epoch, and how many of them came from
 * an external sender. */
size_t mls_group_pending_proposals(const struct mls_group *g, size_t *external);

#endif
