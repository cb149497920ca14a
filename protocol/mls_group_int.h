/*
 * mls_group_int.h: internals shared by mls_group.c (state, receiving,
 * joining), mls_group_send.c (proposals, commits, Welcome) and
 * mls_group_save.c (serialization). Not for callers.
 *
 * A group is a pointer to the current epoch's `struct gstate` plus, while a
 * commit of ours is unconfirmed, the pending next one. Every change builds a
 * new gstate (tree clone, new key schedule, copy of the secrets) and swaps
 * it in only when everything succeeded, so errors never leave a half-made
 * epoch, and leaving an epoch is freeing its gstate (which wipes it).
 */
#ifndef SAMMEN_MLS_GROUP_INT_H
#define SAMMEN_MLS_GROUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "mls_group.h"
#include "mls_keypackage.h"
#include "mls_ks.h"
#include "mls_rules.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "mls_treekem.h"

#define HLEN CRYPTO_HASH_LEN

/* Secrets of one epoch state: one allocation (sodium_malloc, or malloc
 * with MLS_GROUP_F_PLAIN_MEMORY), wiped when freed. */
struct gsecrets {
    uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN];
    struct mls_treekem_priv tk;
    uint32_t n_res;
    uint64_t res_epoch[MLS_GROUP_RESUMPTION_KEEP]; /* newest first */
    uint8_t res_psk[MLS_GROUP_RESUMPTION_KEEP][HLEN];
};

/* A proposal remembered this epoch. */
struct gprop {
    uint8_t ref[MLS_REF_LEN];
    uint8_t sender_type;
    uint32_t sender;
    struct mls_proposal p;
    bool has_update_priv; /* our own Update: the new leaf's private key */
    uint8_t update_priv[CRYPTO_KEM_PRIV_LEN];
};

struct gstate {
    unsigned flags;
    struct mls_group_context gc;
    uint8_t *gc_enc; /* encoded gc */
    size_t gc_len;
    uint8_t interim[HLEN];
    uint8_t ctag[CRYPTO_MAC_LEN]; /* this epoch's confirmation tag */
    struct mls_tree *tree;
    struct mls_ks_epoch *ks;
    struct mls_ks_tree *st;
    struct mls_external_senders ext; /* from gc.extensions */
    struct gsecrets *sec;
    uint32_t own_leaf;
    bool active; /* false once removed */
    struct gprop *props;
    size_t n_props;
};

struct gpsk {
    uint8_t *id;
    size_t id_len;
    uint8_t *secret;
    size_t secret_len;
};

struct mls_group {
    unsigned flags;
    uint32_t padding;
    struct gstate *cur;
    struct gstate *pend;  /* our unconfirmed commit's next epoch */
    uint8_t *pend_commit; /* its MLSMessage bytes, to recognise the echo */
    size_t pend_commit_len;
    struct gpsk *psks;
    size_t n_psks;
};

/* ---- mls_group.c ---- */
struct gsecrets *gsecrets_new(unsigned flags);
void gstate_free(struct gstate *s);
/* A fresh gstate with a copy of s's secrets and (when s is not NULL) its
 * flags and own leaf; everything else empty. */
struct gstate *gstate_new(unsigned flags, const struct gsecrets *copy);
/* (Re)encodes s->gc into s->gc_enc and decodes the external senders. */
int gstate_set_gc(struct gstate *s);
/* Builds the secret tree from s->ks for s->tree and pushes the epoch's
 * resumption PSK. */
int gstate_finish_epoch(struct gstate *s);
void gprops_clear(struct gstate *s);
int encode_gc(const struct mls_group_context *gc, uint8_t **buf, size_t *len);
/* MLSMessage(PublicMessage) bytes. */
int encode_public_message(const struct mls_public_message *pm, uint8_t **out, size_t *len);

/* A commit plan: the resolved proposals and the tree after them. */
struct gitem {
    const struct mls_proposal *p;
    uint8_t sender_type;
    uint32_t sender;
    bool by_ref;
    const struct gprop *prop; /* when by_ref */
};

struct gplan {
    struct gitem *items;
    size_t n;
    struct mls_tree *tree;
    bool has_gce;
    struct mls_extension_list ext;
    uint32_t *added;
    size_t n_added;
    const struct mls_key_package **added_kp;
    bool path_required;
    bool removes_us;
    /* External commit (sender new_member_commit): the joiner's LeafNode
     * (set by the caller), its ExternalInit, and the leaf it got, which
     * gplan_build writes into committer. */
    bool reinit; /* a committed ReInit: the group ends */
    bool external;
    const struct mls_leaf_node *ext_leaf;
    const struct mls_bytes *external_init;
    uint32_t committer;
};

void gplan_free(struct gplan *pl);
/* The next epoch's state after s under the built plan pl: pl's tree and
 * new group extensions (moved out of pl), s's GroupContext at epoch + 1, a
 * copy of s's secrets, the same own leaf. Keys, hashes and the interim
 * hash are the caller's to set. *out is the caller's (gstate_free).
 * 0, ERR_NOMEM. */
int gstate_next(unsigned flags, const struct gstate *s, struct gplan *pl, struct gstate **out);
/* Resolves a commit's proposals into pl->items. */
int gplan_resolve(const struct gstate *s, const struct mls_commit *c, uint32_t committer,
                  struct gplan *pl);
/* confirmed = Hash(s->interim || ConfirmedTranscriptHashInput). */
int confirmed_hash(const struct gstate *s, uint16_t wf, const struct mls_framed_content *fc,
                   const struct mls_bytes *sig, uint8_t out[HLEN]);
/* A PSK's value (external: registered in g or in extra; resumption: the
 * ring of s, or of `from` for reinit/branch usages). */
int psk_lookup(const struct mls_group *g, const struct gstate *s,
               const struct mls_pre_shared_key_id *id, const struct mls_group_psk *extra,
               size_t n_extra, const struct mls_group *from, const uint8_t **val, size_t *len);
/* Moves the pending state in (the epoch advances). */
void confirm_pending(struct mls_group *g);
/* Checks a proposal against the state (sender rules, validity at now). */
int check_proposal(const struct mls_group *g, const struct gstate *s, const struct mls_proposal *p,
                   uint8_t sender_type, uint32_t sender, uint64_t now);
/* Checks the items of pl as a whole and applies them to a clone of s's
 * tree (pl->tree). */
int gplan_build(const struct mls_group *g, const struct gstate *s, struct gplan *pl,
                uint32_t committer, uint64_t now);
/* psk_secret for the PSK proposals of pl. */
int gplan_psk_secret(const struct mls_group *g, const struct gstate *s, const struct gplan *pl,
                     uint8_t out[HLEN]);
/* Remembers a verified proposal (moves *p). */
int gprop_add(struct gstate *s, uint16_t wf, const struct mls_framed_content *fc,
              const struct mls_framed_content_auth_data *auth, uint32_t sender,
              struct gprop **added);
/* Signs content as us (PublicMessage) and builds the MLSMessage bytes. */
int sign_public(const struct gstate *s, struct mls_framed_content *fc,
                struct mls_framed_content_auth_data *auth, uint8_t **out, size_t *len);
/* A GroupInfo for state s, signed by us. */
int make_group_info(const struct gstate *s, bool with_tree, const uint8_t *confirmation_tag,
                    struct mls_group_info *gi);

#endif
