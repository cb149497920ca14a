/*
 * mls_follower.c: the delivery service's secret-free view of a group. See
 * mls_follower.h for the API and MLS.md for what it cannot verify.
 *
 * Where to start: mls_follower_handle() -> handle_proposal() /
 * handle_commit(). A commit is checked and applied on a clone of the tree
 * (commit_plan), and only swapped in when everything passed, so an error
 * never leaves a half-applied epoch.
 *
 * Transcript hashes (§8.2), both SHA-256:
 * | value                        | input                                          |
 * |------------------------------|------------------------------------------------|
 * | confirmed_transcript_hash[n] | interim[n-1] || ConfirmedTranscriptHashInput   |
 * |                              | (wire_format, FramedContent, signature)        |
 * | interim_transcript_hash[n]   | confirmed[n] || InterimTranscriptHashInput     |
 * |                              | (confirmation_tag<V>)                          |
 */
#include "mls_follower.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_framing.h"
#include "mls_keypackage.h"
#include "mls_rules.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "mls_treemath.h"
#include "tls.h"

#define HLEN MLS_TREE_HASH_LEN

struct pending {
    uint8_t ref[MLS_REF_LEN];
    uint8_t sender_type;
    uint32_t sender; /* leaf index or external sender index */
    struct mls_proposal proposal;
};

struct mls_follower {
    struct mls_group_context gc; /* tree_hash, confirmed hash: HLEN bytes */
    uint8_t interim[HLEN];
    struct mls_tree *tree;
    struct mls_external_senders ext;
    struct pending *pending;
    size_t n_pending;
    size_t pending_bytes; /* encoded size of the pending proposal messages */
    bool ended; /* a ReInit was committed */
    /* optional policy check of a commit's resulting tree (see the header) */
    int (*commit_check)(void *ctx, const struct mls_tree *tree, uint32_t committer);
    void *commit_check_ctx;
};

/* ---- helpers --------------------------------------------------------------- */

static int encode_gc(const struct mls_group_context *gc, uint8_t **buf, size_t *len)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_group_context_encode(&w, gc);
    return tls_writer_take(&w, buf, len);
}

/* out = Hash(prefix || <whatever w holds>); resets w. */
static int hash_after(const uint8_t prefix[HLEN], struct tls_writer *w, uint8_t out[HLEN])
{
    int rc = tls_writer_error(w);
    if (rc == 0)
        crypto_sha256_2(prefix, HLEN, w->buf, w->len, out);
    tls_writer_reset(w);
    return rc;
}

/* Verifies a PublicMessage signature (FramedContentTBS, §6.1) by key with
 * the framing module (the same code members use, checked on
 * message-protection.json); the GroupContext is included for member
 * senders. Membership tags cannot be checked here (no membership key). */
static int verify_content(const struct mls_follower *f, const struct mls_public_message *pm,
                          const struct mls_bytes *key, bool with_gc)
{
    uint8_t *gc = NULL;
    size_t gc_len = 0;
    int rc;

    if (key->len != CRYPTO_SIGN_PUB_LEN)
        return ERR_INVALID;
    if (with_gc) {
        rc = encode_gc(&f->gc, &gc, &gc_len);
        if (rc != 0)
            return rc;
    }
    rc = mls_framing_verify(MLS_WF_PUBLIC_MESSAGE, &pm->content, gc, gc_len, key->data, key->len,
                            &pm->auth.signature);
    free(gc);
    return rc;
}

static void pending_clear(struct mls_follower *f)
{
    for (size_t i = 0; i < f->n_pending; i++)
        mls_proposal_free(&f->pending[i].proposal);
    free(f->pending);
    f->pending = NULL;
    f->n_pending = 0;
    f->pending_bytes = 0;
}

void mls_follower_free(struct mls_follower *f)
{
    if (!f)
        return;
    pending_clear(f);
    mls_group_context_free(&f->gc);
    mls_external_senders_free(&f->ext);
    mls_tree_free(f->tree);
    free(f);
}

/* ---- creation ----------------------------------------------------------------- */

int mls_follower_new(const uint8_t *group_info, size_t group_info_len, const uint8_t *tree,
                     size_t tree_len, struct mls_follower **out)
{
    struct mls_message m = {0};
    struct mls_follower *f = NULL;
    int rc;

    *out = NULL;
    rc = mls_message_parse(group_info, group_info_len, &m);
    if (rc != 0)
        goto out;
    rc = ERR_INVALID;
    if (m.wire_format != MLS_WF_GROUP_INFO)
        goto out;
    const struct mls_group_info *gi = &m.group_info;
    const struct mls_group_context *gc = &gi->group_context;
    if (gc->version != MLS_VERSION_MLS10 || gc->cipher_suite != MLS_TREE_CIPHER_SUITE) {
        rc = ERR_UNSUPPORTED;
        goto out;
    }
    /* a new group's GroupInfo (epoch 0) has an empty confirmed transcript
     * hash (RFC 9420 §11) */
    bool empty_confirmed = gc->epoch == 0 && gc->confirmed_transcript_hash.len == 0;
    if (gc->tree_hash.len != HLEN ||
        (gc->confirmed_transcript_hash.len != HLEN && !empty_confirmed) ||
        gi->confirmation_tag.len != CRYPTO_MAC_LEN ||
        mls_extension_list_check_unique(&gi->extensions) != 0)
        goto out;
    rc = ERR_NOMEM;
    f = calloc(1, sizeof(*f));
    if (!f)
        goto out;
    if (!tree) {
        const struct mls_extension *e = mls_ext_find(&gi->extensions, MLS_EXT_RATCHET_TREE);
        rc = ERR_INVALID;
        if (!e)
            goto out;
        tree = e->extension_data.data;
        tree_len = e->extension_data.len;
    }
    rc = mls_tree_decode(tree, tree_len, &f->tree);
    if (rc != 0)
        goto out;
    uint8_t th[HLEN];
    rc = mls_tree_node_hash(f->tree, mls_tree_root(f->tree), th);
    if (rc != 0)
        goto out;
    rc = ERR_INVALID;
    if (memcmp(th, gc->tree_hash.data, HLEN) != 0)
        goto out;
    rc = mls_tree_validate(f->tree, gc->group_id.data, gc->group_id.len);
    if (rc == 0)
        rc = mls_rules_tree_supports(f->tree, &gc->extensions);
    if (rc != 0)
        goto out;
    const struct mls_leaf_node *signer = mls_tree_leaf(f->tree, gi->signer);
    rc = ERR_INVALID;
    if (!signer)
        goto out;
    rc = mls_rules_group_info_signature(gi, signer->signature_key.data, signer->signature_key.len);
    if (rc != 0)
        goto out;
    rc = mls_ext_external_senders(&gc->extensions, &f->ext);
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    if (rc == 0)
        rc = mls_rules_interim_hash(gc->confirmed_transcript_hash.data,
                                    gc->confirmed_transcript_hash.len, gi->confirmation_tag.data,
                                    gi->confirmation_tag.len, f->interim);
    if (rc == 0)
        rc = mls_group_context_copy(&f->gc, gc);
    if (rc != 0)
        goto out;
    *out = f;
    f = NULL;
out:
    mls_follower_free(f);
    mls_message_free(&m);
    return rc;
}

/* ---- proposals ------------------------------------------------------------------- */

static const struct mls_bytes *gid(const struct mls_follower *f)
{
    return &f->gc.group_id;
}

/* Checks a proposal's content against the current state (the parts that do
 * not depend on the other proposals of a commit): the rules members apply,
 * mls_rules_proposal. */
static int check_proposal(const struct mls_follower *f, const struct mls_proposal *p,
                          uint8_t sender_type, uint32_t sender, uint64_t now)
{
    return mls_rules_proposal(f->tree, gid(f), p, sender_type, sender, now);
}

static int handle_proposal(struct mls_follower *f, struct mls_message *m, size_t len,
                           uint64_t now)
{
    struct mls_public_message *pm = &m->public_message;
    const struct mls_sender *s = &pm->content.sender;
    struct mls_proposal *p = &pm->content.proposal;
    const struct mls_bytes *key = NULL;
    bool with_gc = false;
    uint32_t who = 0;
    int rc;

    switch (s->sender_type) {
    case MLS_SENDER_MEMBER: {
        const struct mls_leaf_node *ln = mls_tree_leaf(f->tree, s->leaf_index);
        if (!ln)
            return ERR_DENIED;
        key = &ln->signature_key;
        with_gc = true;
        who = s->leaf_index;
        break;
    }
    case MLS_SENDER_EXTERNAL:
        if (s->sender_index >= f->ext.n)
            return ERR_DENIED;
        /* §12.1.8.1: external senders may propose these types only. */
        if (p->proposal_type != MLS_PROPOSAL_ADD && p->proposal_type != MLS_PROPOSAL_REMOVE &&
            p->proposal_type != MLS_PROPOSAL_PSK && p->proposal_type != MLS_PROPOSAL_REINIT &&
            p->proposal_type != MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS)
            return ERR_INVALID;
        key = &f->ext.v[s->sender_index].signature_key;
        who = s->sender_index;
        break;
    case MLS_SENDER_NEW_MEMBER_PROPOSAL:
        if (p->proposal_type != MLS_PROPOSAL_ADD)
            return ERR_INVALID;
        key = &p->add.leaf_node.signature_key;
        break;
    default:
        return ERR_INVALID;
    }
    if (p->proposal_type == MLS_PROPOSAL_EXTERNAL_INIT)
        return ERR_INVALID; /* only by value in an external commit */
    rc = verify_content(f, pm, key, with_gc);
    if (rc == 0)
        rc = check_proposal(f, p, s->sender_type, who, now);
    if (rc != 0)
        return rc;
    uint8_t ref[MLS_REF_LEN];
    rc = mls_proposal_ref(MLS_WF_PUBLIC_MESSAGE, &pm->content, &pm->auth, ref);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < f->n_pending; i++)
        if (memcmp(f->pending[i].ref, ref, MLS_REF_LEN) == 0)
            return ERR_CONFLICT; /* the same proposal again */
    if (f->n_pending >= MLS_FOLLOWER_MAX_PENDING ||
        len > MLS_FOLLOWER_MAX_PENDING_BYTES - f->pending_bytes)
        return ERR_LIMIT;
    struct pending *np = realloc(f->pending, (f->n_pending + 1) * sizeof(*np));
    if (!np)
        return ERR_NOMEM;
    f->pending = np;
    struct pending *e = &f->pending[f->n_pending++];
    memcpy(e->ref, ref, MLS_REF_LEN);
    e->sender_type = s->sender_type;
    e->sender = who;
    f->pending_bytes += len;
    /* Move the decoded proposal into our list (owned members). */
    e->proposal = *p;
    memset(p, 0, sizeof(*p));
    return 0;
}

/* ---- commits ------------------------------------------------------------------------ */

struct item {
    const struct mls_proposal *p;
    uint8_t sender_type;
    uint32_t sender;
    bool by_ref;
};

/* The outcome of a commit, computed before anything is changed. */
struct plan {
    bool external;      /* an external commit (sender new_member_commit) */
    uint32_t committer; /* its leaf; for an external commit set once added */
    struct item *items;
    size_t n;
    struct mls_tree *tree;
    bool has_gce;
    struct mls_extension_list ext;     /* new group extensions (if has_gce) */
    struct mls_external_senders senders; /* decoded from ext (if has_gce) */
    bool reinit;
    uint32_t *added; /* leaf indices of this commit's Adds */
    size_t n_added;
};

static void plan_free(struct plan *pl)
{
    free(pl->items);
    free(pl->added);
    mls_tree_free(pl->tree);
    mls_extension_list_free(&pl->ext);
    mls_external_senders_free(&pl->senders);
}

static int resolve_items(const struct mls_follower *f, const struct mls_commit *c,
                         struct plan *pl)
{
    pl->items = calloc(c->n_proposals ? c->n_proposals : 1, sizeof(*pl->items));
    if (!pl->items)
        return ERR_NOMEM;
    for (size_t i = 0; i < c->n_proposals; i++) {
        const struct mls_proposal_or_ref *por = &c->proposals[i];
        struct item *it = &pl->items[pl->n++];
        if (por->type == MLS_POR_PROPOSAL) {
            it->p = &por->proposal;
            it->sender_type = pl->external ? MLS_SENDER_NEW_MEMBER_COMMIT : MLS_SENDER_MEMBER;
            it->sender = pl->committer;
            continue;
        }
        /* An external joiner cannot judge proposals sent in the group
         * (§12.4.3.2): none by reference. */
        if (pl->external)
            return ERR_INVALID;
        const struct pending *hit = NULL;
        for (size_t k = 0; k < f->n_pending && !hit; k++)
            if (por->reference.len == MLS_REF_LEN &&
                memcmp(f->pending[k].ref, por->reference.data, MLS_REF_LEN) == 0)
                hit = &f->pending[k];
        if (!hit)
            return ERR_NOT_FOUND;
        it->p = &hit->proposal;
        it->sender_type = hit->sender_type;
        it->sender = hit->sender;
        it->by_ref = true;
    }
    return 0;
}

/* The rules on the proposal list as a whole (mls_rules_commit_*, the same
 * as members apply); by-value proposals are checked here too, having never
 * been seen before. joiner is an external commit's path LeafNode. Sets
 * *path_required. */
static int check_items(const struct mls_follower *f, const struct plan *pl,
                       const struct mls_leaf_node *joiner, uint64_t now, bool *path_required)
{
    struct mls_rules_commit rules;
    int rc = mls_rules_commit_init(&rules, f->tree, f->gc.version, pl->committer, pl->external,
                                   joiner, pl->n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < pl->n && rc == 0; i++) {
        const struct item *it = &pl->items[i];
        rc = mls_rules_commit_item(&rules, it->p, it->sender_type, it->sender, it->by_ref);
        if (rc == 0 && !it->by_ref)
            rc = check_proposal(f, it->p, it->sender_type, it->sender, now);
    }
    if (rc == 0)
        rc = mls_rules_commit_end(&rules);
    *path_required = rules.path_required;
    mls_rules_commit_reset(&rules);
    return rc;
}

static int check_secret_counts(const struct mls_tree *t, uint32_t committer,
                               const struct mls_update_path *path, const struct plan *pl)
{
    uint32_t fdp[MLS_TREEMATH_MAX_DEPTH];
    size_t n_fdp = 0;
    uint32_t *res = NULL;
    int rc = mls_tree_filtered_direct_path(t, committer, fdp, MLS_TREEMATH_MAX_DEPTH, &n_fdp);
    if (rc != 0)
        return rc;
    if (n_fdp != path->n_nodes)
        return ERR_INVALID;
    res = calloc(mls_tree_node_count(t), sizeof(*res));
    if (!res)
        return ERR_NOMEM;
    for (size_t i = 0; i < n_fdp && rc == 0; i++) {
        uint32_t l = 0, r = 0;
        size_t n_res = 0, count = 0;
        if (mls_treemath_left(fdp[i], &l) || mls_treemath_right(fdp[i], &r)) {
            rc = ERR_INTERNAL;
            break;
        }
        uint32_t cop = mls_treemath_in_subtree(l, 2 * committer) ? r : l;
        rc = mls_tree_resolution(t, cop, res, mls_tree_node_count(t), &n_res);
        for (size_t k = 0; k < n_res && rc == 0; k++) {
            bool is_new = false;
            for (size_t a = 0; a < pl->n_added && !is_new; a++)
                is_new = res[k] == 2 * pl->added[a];
            count += !is_new;
        }
        if (rc == 0 && count != path->nodes[i].n_encrypted_path_secret)
            rc = ERR_INVALID;
    }
    free(res);
    return rc;
}

/* Applies the commit's proposals (GroupContextExtensions, Update, Remove,
 * Add: §12.4.2) and path to a clone of the tree. */
static int apply_items(const struct mls_follower *f, const struct mls_commit *c,
                       struct plan *pl)
{
    const struct mls_bytes *g = gid(f);
    const struct mls_extension_list *ext = &f->gc.extensions;
    int rc = mls_tree_clone(f->tree, &pl->tree);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < pl->n; i++) {
        const struct mls_proposal *p = pl->items[i].p;
        if (p->proposal_type == MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS) {
            rc = mls_extension_list_copy(&pl->ext, &p->gce);
            if (rc == 0)
                rc = mls_ext_external_senders(&pl->ext, &pl->senders);
            if (rc == ERR_NOT_FOUND)
                rc = 0;
            else if (rc == ERR_MALFORMED || rc == ERR_TOO_BIG)
                rc = ERR_INVALID;
            if (rc != 0)
                return rc;
            pl->has_gce = true;
            ext = &pl->ext;
        }
        if (p->proposal_type == MLS_PROPOSAL_REINIT)
            pl->reinit = true;
    }
    for (size_t i = 0; i < pl->n; i++) {
        const struct item *it = &pl->items[i];
        if (it->p->proposal_type != MLS_PROPOSAL_UPDATE)
            continue;
        rc = mls_tree_validate_leaf(pl->tree, &it->p->update, MLS_LEAF_SOURCE_UPDATE, it->sender,
                                    g->data, g->len);
        if (rc == 0)
            rc = mls_tree_update(pl->tree, it->sender, &it->p->update);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->items[i].p->proposal_type != MLS_PROPOSAL_REMOVE)
            continue;
        rc = mls_tree_remove(pl->tree, pl->items[i].p->remove);
        if (rc != 0)
            return rc;
    }
    pl->added = calloc(pl->n ? pl->n : 1, sizeof(*pl->added));
    if (!pl->added)
        return ERR_NOMEM;
    /* An external joiner takes the leftmost blank leaf, as an Add would, and
     * its path is computed from there (§12.4.3.2); its LeafNode (source
     * commit) is validated by mls_tree_apply_path below. */
    if (pl->external) {
        rc = mls_tree_add(pl->tree, &c->path.leaf_node, &pl->committer);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < pl->n; i++) {
        const struct mls_proposal *p = pl->items[i].p;
        if (p->proposal_type != MLS_PROPOSAL_ADD)
            continue;
        /* Against the members so far, including earlier Adds: duplicate
         * signature or encryption keys are refused here. */
        rc = mls_tree_validate_leaf(pl->tree, &p->add.leaf_node, MLS_LEAF_SOURCE_KEY_PACKAGE,
                                    mls_tree_leaf_count(pl->tree), g->data, g->len);
        if (rc == 0)
            rc = mls_tree_add(pl->tree, &p->add.leaf_node, &pl->added[pl->n_added]);
        if (rc != 0)
            return rc;
        pl->n_added++;
    }
    if (c->has_path) {
        rc = check_secret_counts(pl->tree, pl->committer, &c->path, pl);
        if (rc == 0)
            rc = mls_tree_apply_path(pl->tree, pl->committer, &c->path, g->data, g->len);
        if (rc != 0)
            return rc;
    }
    return mls_rules_tree_supports(pl->tree, ext);
}

static int handle_commit(struct mls_follower *f, const struct mls_message *m, uint64_t now)
{
    const struct mls_public_message *pm = &m->public_message;
    const struct mls_framed_content *fc = &pm->content;
    const struct mls_commit *c = &fc->commit;
    struct plan pl = {0};
    uint8_t th[HLEN], confirmed[HLEN], interim[HLEN];
    bool path_required = false;
    int rc;

    const struct mls_bytes *key;
    if (fc->sender.sender_type == MLS_SENDER_NEW_MEMBER_COMMIT) {
        /* External commit: signed by the joiner's new LeafNode key. */
        if (!c->has_path)
            return ERR_INVALID;
        pl.external = true;
        pl.committer = UINT32_MAX;
        key = &c->path.leaf_node.signature_key;
    } else if (fc->sender.sender_type == MLS_SENDER_MEMBER) {
        pl.committer = fc->sender.leaf_index;
        const struct mls_leaf_node *ln = mls_tree_leaf(f->tree, pl.committer);
        if (!ln)
            return ERR_DENIED;
        key = &ln->signature_key;
    } else {
        return ERR_INVALID;
    }
    if (pm->auth.confirmation_tag.len != CRYPTO_MAC_LEN)
        return ERR_INVALID;
    /* Each proposal costs work linear in the group size: bound them. */
    if (c->n_proposals > MLS_FOLLOWER_MAX_PENDING)
        return ERR_LIMIT;
    rc = verify_content(f, pm, key, true);
    if (rc == 0)
        rc = resolve_items(f, c, &pl);
    if (rc == 0)
        rc = check_items(f, &pl, &c->path.leaf_node, now, &path_required);
    if (rc == 0 && path_required && !c->has_path)
        rc = ERR_INVALID;
    if (rc == 0)
        rc = apply_items(f, c, &pl);
    if (rc == 0)
        rc = mls_tree_node_hash(pl.tree, mls_tree_root(pl.tree), th);
    if (rc != 0)
        goto out;
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_confirmed_transcript_hash_input_encode(&w, MLS_WF_PUBLIC_MESSAGE, fc, &pm->auth.signature);
    rc = hash_after(f->interim, &w, confirmed);
    if (rc == 0)
        rc = mls_rules_interim_hash(confirmed, HLEN, pm->auth.confirmation_tag.data,
                                    pm->auth.confirmation_tag.len, interim);
    if (rc != 0)
        goto out;

    /* The caller's policy (e.g. the server's authentication service) sees
     * the resulting tree before anything changes. */
    if (f->commit_check) {
        rc = f->commit_check(f->commit_check_ctx, pl.tree, pl.committer);
        if (rc != 0)
            goto out;
    }
    /* The first commit of a new group gives the (empty) confirmed hash its
     * length; allocated before anything switches. */
    if (f->gc.confirmed_transcript_hash.len != HLEN) {
        rc = mls_bytes_set(&f->gc.confirmed_transcript_hash, confirmed, HLEN);
        if (rc != 0)
            goto out;
    }
    /* Everything checked and allocated: switch to the new epoch. */
    struct mls_tree *old = f->tree;
    f->tree = pl.tree;
    pl.tree = old;
    if (pl.has_gce) {
        struct mls_extension_list e = f->gc.extensions;
        f->gc.extensions = pl.ext;
        pl.ext = e;
        struct mls_external_senders s = f->ext;
        f->ext = pl.senders;
        pl.senders = s;
    }
    f->gc.epoch++;
    memcpy(f->gc.tree_hash.data, th, HLEN);
    memcpy(f->gc.confirmed_transcript_hash.data, confirmed, HLEN);
    memcpy(f->interim, interim, HLEN);
    pending_clear(f);
    f->ended = pl.reinit;
out:
    plan_free(&pl);
    return rc;
}

int mls_follower_handle(struct mls_follower *f, const uint8_t *msg, size_t len, uint64_t now,
                        int *event)
{
    struct mls_message m = {0};
    int rc = mls_message_parse(msg, len, &m);
    if (rc != 0)
        goto out;
    rc = ERR_UNSUPPORTED;
    if (m.wire_format != MLS_WF_PUBLIC_MESSAGE)
        goto out;
    const struct mls_framed_content *fc = &m.public_message.content;
    rc = ERR_BADSTATE;
    if (f->ended)
        goto out;
    rc = ERR_INVALID;
    if (fc->group_id.len != f->gc.group_id.len ||
        (fc->group_id.len && memcmp(fc->group_id.data, f->gc.group_id.data, fc->group_id.len)))
        goto out;
    rc = ERR_BADSTATE;
    if (fc->epoch != f->gc.epoch)
        goto out;
    if (fc->content_type == MLS_CONTENT_PROPOSAL) {
        rc = handle_proposal(f, &m, len, now);
        if (rc == 0 && event)
            *event = MLS_FOLLOWER_PROPOSAL;
    } else if (fc->content_type == MLS_CONTENT_COMMIT) {
        rc = handle_commit(f, &m, now);
        if (rc == 0 && event)
            *event = MLS_FOLLOWER_COMMIT;
    } else {
        /* Application data is never sent as a PublicMessage (§6.2). */
        rc = ERR_INVALID;
    }
out:
    mls_message_free(&m);
    return rc;
}

/* ---- external sender ------------------------------------------------------------ */

/* Signs and encodes an external proposal whose proposal field the caller
 * has filled in m (PublicMessage framing set here). Frees nothing. External
 * senders sign FramedContentTBS without a GroupContext and send no
 * membership tag (§6.1, §6.2). */
static int external_proposal(const struct mls_follower *f, struct mls_message *m,
                             const uint8_t signer_priv[32], uint32_t sender_index,
                             uint8_t **out, size_t *out_len)
{
    struct tls_writer w;
    uint8_t sig[CRYPTO_SIG_LEN];
    m->version = MLS_VERSION_MLS10;
    m->wire_format = MLS_WF_PUBLIC_MESSAGE;
    struct mls_framed_content *fc = &m->public_message.content;
    int rc = mls_bytes_set(&fc->group_id, f->gc.group_id.data, f->gc.group_id.len);
    if (rc != 0)
        return rc;
    fc->epoch = f->gc.epoch;
    fc->sender.sender_type = MLS_SENDER_EXTERNAL;
    fc->sender.sender_index = sender_index;
    fc->content_type = MLS_CONTENT_PROPOSAL;
    tls_writer_init(&w, 0);
    mls_framed_content_encode_tbs(&w, MLS_WF_PUBLIC_MESSAGE, fc, NULL, 0);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_sign_with_label(signer_priv, "FramedContentTBS", w.buf, w.len, sig);
    tls_writer_reset(&w);
    if (rc == 0)
        rc = mls_bytes_set(&m->public_message.auth.signature, sig, sizeof(sig));
    if (rc != 0)
        return rc;
    tls_writer_init(&w, 0);
    mls_message_encode(&w, m);
    return tls_writer_take(&w, out, out_len);
}

/* May signer_priv sign as external sender sender_index of a live group?
 * ERR_BADSTATE (ended), ERR_NOT_FOUND (no such sender), ERR_DENIED (another
 * key). */
static int signer_check(const struct mls_follower *f, const uint8_t signer_priv[32],
                        uint32_t sender_index)
{
    uint8_t pub[CRYPTO_SIGN_PUB_LEN];
    if (f->ended)
        return ERR_BADSTATE;
    if (sender_index >= f->ext.n)
        return ERR_NOT_FOUND;
    const struct mls_bytes *key = &f->ext.v[sender_index].signature_key;
    crypto_sig_public(signer_priv, pub);
    if (key->len != sizeof(pub) || crypto_memeq(key->data, pub, sizeof(pub)) != 0)
        return ERR_DENIED;
    return 0;
}

int mls_follower_external_remove(const struct mls_follower *f, uint32_t removed_leaf,
                                 const uint8_t signer_priv[32], uint32_t sender_index,
                                 uint8_t **out, size_t *out_len)
{
    struct mls_message m = {0};
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = signer_check(f, signer_priv, sender_index)) != 0)
        return rc;
    if (!mls_tree_leaf(f->tree, removed_leaf))
        return ERR_INVALID;
    m.public_message.content.proposal.proposal_type = MLS_PROPOSAL_REMOVE;
    m.public_message.content.proposal.remove = removed_leaf;
    rc = external_proposal(f, &m, signer_priv, sender_index, out, out_len);
    mls_message_free(&m);
    return rc;
}

int mls_follower_external_add(const struct mls_follower *f, const uint8_t *key_package_msg,
                              size_t key_package_len, const uint8_t signer_priv[32],
                              uint32_t sender_index, uint8_t **out, size_t *out_len)
{
    struct mls_message kpm = {0};
    struct mls_message m = {0};
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = signer_check(f, signer_priv, sender_index)) != 0)
        return rc;
    rc = mls_message_parse(key_package_msg, key_package_len, &kpm);
    if (rc != 0)
        goto out;
    if (kpm.wire_format != MLS_WF_KEY_PACKAGE) {
        rc = ERR_INVALID;
        goto out;
    }
    /* move the decoded KeyPackage into the proposal (freed once, with m) */
    m.public_message.content.proposal.proposal_type = MLS_PROPOSAL_ADD;
    m.public_message.content.proposal.add = kpm.key_package;
    memset(&kpm.key_package, 0, sizeof(kpm.key_package));
    rc = external_proposal(f, &m, signer_priv, sender_index, out, out_len);
out:
    mls_message_free(&kpm);
    mls_message_free(&m);
    return rc;
}

void mls_follower_set_commit_check(struct mls_follower *f,
                                   int (*fn)(void *ctx, const struct mls_tree *tree,
                                             uint32_t committer),
                                   void *ctx)
{
    f->commit_check = fn;
    f->commit_check_ctx = ctx;
}

/* ---- state --------------------------------------------------------------------------- */

uint64_t mls_follower_epoch(const struct mls_follower *f)
{
    return f->gc.epoch;
}

const uint8_t *mls_follower_group_id(const struct mls_follower *f, size_t *len)
{
    *len = f->gc.group_id.len;
    return f->gc.group_id.data;
}

void mls_follower_tree_hash(const struct mls_follower *f, uint8_t out[MLS_TREE_HASH_LEN])
{
    memcpy(out, f->gc.tree_hash.data, HLEN);
}

void mls_follower_confirmed_transcript_hash(const struct mls_follower *f,
                                            uint8_t out[MLS_TREE_HASH_LEN])
{
    /* epoch 0 of a new group: the hash is the empty string; report zeros */
    if (f->gc.confirmed_transcript_hash.len != HLEN)
        memset(out, 0, HLEN);
    else
        memcpy(out, f->gc.confirmed_transcript_hash.data, HLEN);
}

void mls_follower_interim_transcript_hash(const struct mls_follower *f,
                                          uint8_t out[MLS_TREE_HASH_LEN])
{
    memcpy(out, f->interim, HLEN);
}

int mls_follower_group_context(const struct mls_follower *f, uint8_t **out, size_t *len)
{
    return encode_gc(&f->gc, out, len);
}

int mls_follower_tree(const struct mls_follower *f, uint8_t **out, size_t *len)
{
    return mls_tree_encode(f->tree, out, len);
}

int mls_follower_roster(const struct mls_follower *f, struct mls_roster_entry *out, size_t cap,
                        size_t *n)
{
    return mls_tree_roster(f->tree, out, cap, n);
}

int mls_follower_pending(const struct mls_follower *f, struct mls_follower_pending *out,
                         size_t cap, size_t *n)
{
    *n = f->n_pending;
    for (size_t i = 0; i < f->n_pending && i < cap; i++) {
        memcpy(out[i].ref, f->pending[i].ref, MLS_REF_LEN);
        out[i].proposal_type = f->pending[i].proposal.proposal_type;
        out[i].sender_type = f->pending[i].sender_type;
        out[i].sender = f->pending[i].sender;
    }
    return f->n_pending > cap ? ERR_TOO_BIG : 0;
}

/* ---- persistence ------------------------------------------------------------------ */

/* State format, version 1 (TLS presentation language, MLS varints):
 * | field        | type                                                      |
 * |--------------|-----------------------------------------------------------|
 * | version      | uint16 = MLS_FOLLOWER_STATE_VERSION                       |
 * | context      | GroupContext                                              |
 * | interim      | opaque[32]  interim transcript hash                       |
 * | tree         | opaque<V>   ratchet tree (extension body form)            |
 * | ended        | uint8       0 / 1                                         |
 * | pending_bytes| uint64      accounted size of the pending proposals       |
 * | pending      | Pending<V>: opaque ref[32]; uint8 sender_type;            |
 * |              |             uint32 sender; Proposal                       |
 * The external senders are derived from the context again. */

int mls_follower_save(const struct mls_follower *f, uint8_t **out, size_t *len)
{
    struct tls_writer w;
    uint8_t *tree = NULL;
    size_t tree_len = 0;
    *out = NULL;
    *len = 0;
    int rc = mls_tree_encode(f->tree, &tree, &tree_len);
    if (rc != 0)
        return rc;
    tls_writer_init(&w, 0);
    tls_put_u16(&w, MLS_FOLLOWER_STATE_VERSION);
    mls_group_context_encode(&w, &f->gc);
    tls_put_fixed(&w, f->interim, HLEN);
    tls_put_opaque(&w, tree, tree_len);
    tls_put_u8(&w, f->ended ? 1 : 0);
    tls_put_u64(&w, f->pending_bytes);
    size_t mark = tls_vector_begin(&w);
    for (size_t i = 0; i < f->n_pending; i++) {
        tls_put_fixed(&w, f->pending[i].ref, MLS_REF_LEN);
        tls_put_u8(&w, f->pending[i].sender_type);
        tls_put_u32(&w, f->pending[i].sender);
        mls_proposal_encode(&w, &f->pending[i].proposal);
    }
    tls_vector_end(&w, mark);
    free(tree);
    return tls_writer_take(&w, out, len);
}

int mls_follower_load(const uint8_t *buf, size_t len, struct mls_follower **out)
{
    struct tls_reader r, sub;
    struct mls_follower *f = NULL;
    const uint8_t *p;
    size_t n;
    uint16_t version;
    uint8_t ended;
    uint64_t pbytes;
    int rc;

    *out = NULL;
    tls_reader_init(&r, buf, len);
    rc = tls_read_u16(&r, &version);
    if (rc != 0)
        return rc;
    if (version != MLS_FOLLOWER_STATE_VERSION)
        return ERR_UNSUPPORTED;
    f = calloc(1, sizeof(*f));
    if (!f)
        return ERR_NOMEM;
    rc = mls_group_context_decode(&r, &f->gc);
    if (rc == 0)
        rc = tls_read_fixed(&r, HLEN, &p);
    if (rc == 0) {
        memcpy(f->interim, p, HLEN);
        rc = tls_read_opaque(&r, &p, &n);
    }
    if (rc == 0)
        rc = mls_tree_decode(p, n, &f->tree);
    if (rc == 0)
        rc = tls_read_u8(&r, &ended);
    if (rc == 0)
        rc = tls_read_u64(&r, &pbytes);
    if (rc == 0)
        rc = tls_read_vector(&r, &sub);
    if (rc != 0)
        goto out;
    rc = ERR_MALFORMED;
    if (ended > 1 || pbytes > MLS_FOLLOWER_MAX_PENDING_BYTES)
        goto out;
    f->ended = ended == 1;
    f->pending_bytes = (size_t)pbytes;
    while (!tls_reader_done(&sub)) {
        /* each entry is at least ref + type + sender + a proposal type */
        if (f->n_pending >= MLS_FOLLOWER_MAX_PENDING ||
            tls_reader_remaining(&sub) < MLS_REF_LEN + 1 + 4 + 2) {
            rc = ERR_MALFORMED;
            goto out;
        }
        struct pending *np = realloc(f->pending, (f->n_pending + 1) * sizeof(*np));
        if (!np) {
            rc = ERR_NOMEM;
            goto out;
        }
        f->pending = np;
        struct pending *e = &f->pending[f->n_pending];
        memset(e, 0, sizeof(*e));
        rc = tls_read_fixed(&sub, MLS_REF_LEN, &p);
        if (rc == 0) {
            memcpy(e->ref, p, MLS_REF_LEN);
            rc = tls_read_u8(&sub, &e->sender_type);
        }
        if (rc == 0)
            rc = tls_read_u32(&sub, &e->sender);
        if (rc == 0)
            rc = mls_proposal_decode(&sub, &e->proposal);
        if (rc != 0)
            goto out;
        f->n_pending++;
    }
    rc = ERR_MALFORMED;
    if (!tls_reader_done(&r))
        goto out;
    /* the same invariants mls_follower_new establishes */
    rc = ERR_INVALID;
    if (f->gc.version != MLS_VERSION_MLS10 || f->gc.cipher_suite != MLS_TREE_CIPHER_SUITE ||
        f->gc.tree_hash.len != HLEN ||
        (f->gc.confirmed_transcript_hash.len != HLEN &&
         !(f->gc.epoch == 0 && f->gc.confirmed_transcript_hash.len == 0)))
        goto out;
    uint8_t th[HLEN];
    rc = mls_tree_node_hash(f->tree, mls_tree_root(f->tree), th);
    if (rc != 0)
        goto out;
    rc = ERR_INVALID;
    if (memcmp(th, f->gc.tree_hash.data, HLEN) != 0)
        goto out;
    rc = mls_ext_external_senders(&f->gc.extensions, &f->ext);
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    if (rc != 0)
        goto out;
    *out = f;
    f = NULL;
out:
    mls_follower_free(f);
    return rc;
}
