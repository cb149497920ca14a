/*
 * mls_group.c: the client group state machine: epoch states, creating and
 * joining a group, receiving messages (application, proposals, commits),
 * and the accessors. Sending lives in mls_group_send.c, serialization in
 * mls_group_save.c; internals shared between them in mls_group_int.h.
 *
 * Where to start: mls_group_process() -> handle_proposal() /
 * handle_commit(). A commit is checked and applied into a new struct
 * gstate (gplan_build: proposals on a tree clone; then the UpdatePath, the
 * key schedule and the confirmation tag); only when all of it succeeded
 * does the new state replace the current one, whose secrets are wiped.
 *
 * Transcript hashes (§8.2):
 * | value     | input                                                    |
 * |-----------|----------------------------------------------------------|
 * | confirmed | interim[n-1] || ConfirmedTranscriptHashInput             |
 * | interim   | confirmed[n] || InterimTranscriptHashInput (tag<V>)      |
 * At epoch 0 the confirmed hash is empty and the interim hash is
 * Hash(tag<V>) with tag = MAC(confirmation_key, "") (§11).
 */
#include "mls_group.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_framing.h"
#include "mls_group_int.h"
#include "mls_kp.h"
#include "mls_welcome.h"
#include "mls_treemath.h"
#include "tls.h"


/* ---- epoch states ----------------------------------------------------------- */

struct gsecrets *gsecrets_new(unsigned flags)
{
    struct gsecrets *s;
    if (flags & MLS_GROUP_F_PLAIN_MEMORY)
        s = malloc(sizeof(*s));
    else
        s = crypto_secure_alloc(sizeof(*s));
    if (s)
        memset(s, 0, sizeof(*s));
    return s;
}

static void gsecrets_free(struct gsecrets *s, unsigned flags)
{
    if (!s)
        return;
    if (flags & MLS_GROUP_F_PLAIN_MEMORY) {
        crypto_wipe(s, sizeof(*s));
        free(s);
    } else {
        crypto_secure_free(s);
    }
}

void gprops_clear(struct gstate *s)
{
    for (size_t i = 0; i < s->n_props; i++) {
        mls_proposal_free(&s->props[i].p);
        crypto_wipe(&s->props[i], sizeof(s->props[i]));
    }
    free(s->props);
    s->props = NULL;
    s->n_props = 0;
}

void gstate_free(struct gstate *s)
{
    if (!s)
        return;
    mls_group_context_free(&s->gc);
    free(s->gc_enc);
    mls_tree_free(s->tree);
    mls_ks_epoch_free(s->ks);
    mls_ks_tree_free(s->st);
    mls_external_senders_free(&s->ext);
    gsecrets_free(s->sec, s->flags);
    gprops_clear(s);
    free(s);
}

struct gstate *gstate_new(unsigned flags, const struct gsecrets *copy)
{
    struct gstate *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->flags = flags;
    s->active = true;
    s->sec = gsecrets_new(flags);
    if (!s->sec) {
        free(s);
        return NULL;
    }
    if (copy)
        memcpy(s->sec, copy, sizeof(*copy));
    return s;
}

int encode_gc(const struct mls_group_context *gc, uint8_t **buf, size_t *len)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_group_context_encode(&w, gc);
    return tls_writer_take(&w, buf, len);
}

int gstate_set_gc(struct gstate *s)
{
    int rc;
    free(s->gc_enc);
    s->gc_enc = NULL;
    mls_external_senders_free(&s->ext);
    if ((rc = encode_gc(&s->gc, &s->gc_enc, &s->gc_len)) != 0)
        return rc;
    rc = mls_ext_external_senders(&s->gc.extensions, &s->ext);
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    else if (rc == ERR_MALFORMED || rc == ERR_TOO_BIG)
        rc = ERR_INVALID;
    return rc;
}

int gstate_finish_epoch(struct gstate *s)
{
    struct gsecrets *sec = s->sec;
    int rc = mls_ks_tree_new_from_epoch(s->ks, mls_tree_leaf_count(s->tree), &s->st);
    if (rc != 0)
        return rc;
    /* Benchmark devices: no guarded pages (each costs several mappings,
     * and a process can hold only so many). */
    if ((s->flags & MLS_GROUP_F_PLAIN_MEMORY) &&
        ((rc = mls_ks_epoch_make_plain(&s->ks)) != 0 || (rc = mls_ks_tree_make_plain(s->st)) != 0))
        return rc;
    uint32_t keep = sec->n_res < MLS_GROUP_RESUMPTION_KEEP ? sec->n_res + 1
                                                           : MLS_GROUP_RESUMPTION_KEEP;
    for (uint32_t i = keep - 1; i > 0; i--) {
        sec->res_epoch[i] = sec->res_epoch[i - 1];
        memcpy(sec->res_psk[i], sec->res_psk[i - 1], HLEN);
    }
    sec->res_epoch[0] = s->gc.epoch;
    sec->n_res = keep;
    return mls_ks_epoch_secret(s->ks, MLS_KS_RESUMPTION_PSK, sec->res_psk[0]);
}

int encode_public_message(const struct mls_public_message *pm, uint8_t **out, size_t *len)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    tls_put_u16(&w, MLS_VERSION_MLS10);
    tls_put_u16(&w, MLS_WF_PUBLIC_MESSAGE);
    mls_public_message_encode(&w, pm);
    return tls_writer_take(&w, out, len);
}

/* ---- creating ------------------------------------------------------------------ */

static struct mls_group *group_alloc(unsigned flags)
{
    struct mls_group *g = calloc(1, sizeof(*g));
    if (g) {
        g->flags = flags;
        g->padding = MLS_GROUP_PAD_BLOCK;
    }
    return g;
}

int mls_group_create(const uint8_t *group_id, size_t group_id_len, const struct mls_kp *kp,
                     const struct mls_extension_list *ext, unsigned flags,
                     struct mls_group **out)
{
    struct mls_group *g = group_alloc(flags);
    struct gstate *s = NULL;
    uint8_t th[HLEN], init[HLEN], zero[HLEN] = {0}, ck[HLEN], tag[CRYPTO_MAC_LEN];
    int rc = ERR_NOMEM;

    *out = NULL;
    if (!g || !(s = gstate_new(flags, NULL)))
        goto out;
    g->cur = s;
    if (group_id_len == 0 || group_id_len > 255) {
        rc = ERR_INVALID;
        goto out;
    }
    memcpy(s->sec->sig_priv, mls_kp_sig_priv(kp), CRYPTO_SIGN_PRIV_LEN);
    s->own_leaf = 0;
    mls_treekem_priv_init(&s->sec->tk, 0, mls_kp_enc_priv(kp));
    if ((rc = mls_tree_new_one(&mls_kp_key_package(kp)->leaf_node, &s->tree)) != 0)
        goto out;
    if ((rc = mls_tree_node_hash(s->tree, mls_tree_root(s->tree), th)) != 0)
        goto out;
    s->gc.version = MLS_VERSION_MLS10;
    s->gc.cipher_suite = 3;
    s->gc.epoch = 0;
    if ((rc = mls_bytes_set(&s->gc.group_id, group_id, group_id_len)) != 0 ||
        (rc = mls_bytes_set(&s->gc.tree_hash, th, HLEN)) != 0)
        goto out;
    if (ext && (rc = mls_extension_list_copy(&s->gc.extensions, ext)) != 0)
        goto out;
    if ((rc = mls_rules_tree_supports(s->tree, &s->gc.extensions)) != 0)
        goto out;
    if ((rc = gstate_set_gc(s)) != 0)
        goto out;
    crypto_random(init, HLEN);
    if ((rc = mls_ks_epoch_new(init, zero, zero, s->gc_enc, s->gc_len, &s->ks)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_secret(s->ks, MLS_KS_CONFIRMATION_KEY, ck)) != 0)
        goto out;
    crypto_mac(ck, HLEN, NULL, 0, tag);
    memcpy(s->ctag, tag, sizeof(tag));
    if ((rc = mls_rules_interim_hash(NULL, 0, tag, sizeof(tag), s->interim)) != 0)
        goto out;
    if ((rc = gstate_finish_epoch(s)) != 0)
        goto out;
    *out = g;
    g = NULL;
out:
    crypto_wipe(init, sizeof(init));
    crypto_wipe(ck, sizeof(ck));
    mls_group_free(g);
    return rc;
}

void mls_group_free(struct mls_group *g)
{
    if (!g)
        return;
    gstate_free(g->cur);
    gstate_free(g->pend);
    free(g->pend_commit);
    for (size_t i = 0; i < g->n_psks; i++) {
        free(g->psks[i].id);
        crypto_wipe(g->psks[i].secret, g->psks[i].secret_len);
        free(g->psks[i].secret);
    }
    free(g->psks);
    free(g);
}

int mls_group_add_external_psk(struct mls_group *g, const struct mls_group_psk *psk)
{
    struct gpsk *e = NULL;
    uint8_t *id, *sec;
    if (psk->id_len == 0 || psk->secret_len == 0 || psk->id_len > 65535 ||
        psk->secret_len > 65535)
        return ERR_INVALID;
    for (size_t i = 0; i < g->n_psks; i++)
        if (g->psks[i].id_len == psk->id_len && memcmp(g->psks[i].id, psk->id, psk->id_len) == 0)
            e = &g->psks[i];
    id = malloc(psk->id_len);
    sec = malloc(psk->secret_len);
    if (!id || !sec) {
        free(id);
        free(sec);
        return ERR_NOMEM;
    }
    memcpy(id, psk->id, psk->id_len);
    memcpy(sec, psk->secret, psk->secret_len);
    if (!e) {
        if (g->n_psks >= 1024) {
            free(id);
            free(sec);
            return ERR_LIMIT;
        }
        struct gpsk *np = realloc(g->psks, (g->n_psks + 1) * sizeof(*np));
        if (!np) {
            free(id);
            free(sec);
            return ERR_NOMEM;
        }
        g->psks = np;
        e = &g->psks[g->n_psks++];
    } else {
        free(e->id);
        crypto_wipe(e->secret, e->secret_len);
        free(e->secret);
    }
    e->id = id;
    e->id_len = psk->id_len;
    e->secret = sec;
    e->secret_len = psk->secret_len;
    return 0;
}

void mls_group_set_padding(struct mls_group *g, uint32_t block)
{
    g->padding = block;
}

/* ---- PSKs ------------------------------------------------------------------------ */

/* The value of a PSK: external ones registered in g, resumption ones of
 * this group (usage application) from s's ring, or of group `from`. */
int psk_lookup(const struct mls_group *g, const struct gstate *s,
                      const struct mls_pre_shared_key_id *id, const struct mls_group_psk *extra,
                      size_t n_extra, const struct mls_group *from, const uint8_t **val,
                      size_t *len)
{
    if (id->psk_nonce.len != HLEN)
        return ERR_INVALID;
    if (id->psktype == MLS_PSK_EXTERNAL) {
        for (size_t i = 0; g && i < g->n_psks; i++) {
            if (g->psks[i].id_len == id->psk_id.len &&
                memcmp(g->psks[i].id, id->psk_id.data, id->psk_id.len) == 0) {
                *val = g->psks[i].secret;
                *len = g->psks[i].secret_len;
                return 0;
            }
        }
        for (size_t i = 0; i < n_extra; i++) {
            if (extra[i].id_len == id->psk_id.len &&
                memcmp(extra[i].id, id->psk_id.data, id->psk_id.len) == 0) {
                *val = extra[i].secret;
                *len = extra[i].secret_len;
                return 0;
            }
        }
        return ERR_NOT_FOUND;
    }
    if (id->psktype != MLS_PSK_RESUMPTION)
        return ERR_INVALID;
    const struct gstate *rs = s;
    if (id->usage != MLS_RESUMPTION_APPLICATION) {
        /* ReInit / branch: only when joining, from the old group. */
        if (!from || !from->cur)
            return ERR_NOT_FOUND;
        rs = from->cur;
    }
    if (!rs || rs->gc.group_id.len != id->psk_group_id.len ||
        memcmp(rs->gc.group_id.data, id->psk_group_id.data, id->psk_group_id.len) != 0)
        return ERR_NOT_FOUND;
    for (uint32_t i = 0; i < rs->sec->n_res; i++) {
        if (rs->sec->res_epoch[i] == id->psk_epoch) {
            *val = rs->sec->res_psk[i];
            *len = HLEN;
            return 0;
        }
    }
    return ERR_NOT_FOUND;
}

static int encode_psk_id(const struct mls_pre_shared_key_id *id, uint8_t **b, size_t *n)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_pre_shared_key_id_encode(&w, id);
    return tls_writer_take(&w, b, n);
}

/* psk_secret over ids[0..n) (§8.4). */
static int psk_secret_of(const struct mls_group *g, const struct gstate *s,
                         const struct mls_pre_shared_key_id *const *ids, size_t n,
                         const struct mls_group_psk *extra, size_t n_extra,
                         const struct mls_group *from, uint8_t out[HLEN])
{
    struct mls_ks_psk *list = NULL;
    int rc = 0;
    if (n > MLS_RULES_MAX_PSKS)
        return ERR_LIMIT;
    if (n == 0)
        return mls_ks_psk_secret(NULL, 0, out);
    list = calloc(n, sizeof(*list));
    if (!list)
        return ERR_NOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t *b = NULL;
        size_t bl = 0;
        rc = psk_lookup(g, s, ids[i], extra, n_extra, from, &list[i].psk, &list[i].psk_len);
        if (rc == 0)
            rc = encode_psk_id(ids[i], &b, &bl);
        list[i].id = b;
        list[i].id_len = bl;
    }
    if (rc == 0)
        rc = mls_ks_psk_secret(list, n, out);
    for (size_t i = 0; i < n; i++)
        free((void *)list[i].id);
    free(list);
    return rc;
}

int gplan_psk_secret(const struct mls_group *g, const struct gstate *s, const struct gplan *pl,
                     uint8_t out[HLEN])
{
    const struct mls_pre_shared_key_id *ids[MLS_RULES_MAX_PSKS];
    size_t n = 0;
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->items[i].p->proposal_type != MLS_PROPOSAL_PSK)
            continue;
        if (n >= MLS_RULES_MAX_PSKS)
            return ERR_LIMIT;
        ids[n++] = &pl->items[i].p->psk;
    }
    return psk_secret_of(g, s, ids, n, NULL, 0, NULL, out);
}

/* ---- joining -------------------------------------------------------------------- */

static bool same_leaf(const struct mls_leaf_node *a, const struct mls_leaf_node *b)
{
    return a->encryption_key.len == b->encryption_key.len &&
           a->signature_key.len == b->signature_key.len &&
           memcmp(a->encryption_key.data, b->encryption_key.data, a->encryption_key.len) == 0 &&
           memcmp(a->signature_key.data, b->signature_key.data, a->signature_key.len) == 0;
}

int mls_group_join(const uint8_t *welcome, size_t welcome_len, struct mls_kp *const *kps,
                   size_t n_kps, const uint8_t *tree, size_t tree_len,
                   const struct mls_group_psk *psks, size_t n_psks, const struct mls_group *from,
                   uint64_t now, unsigned flags, struct mls_group **out)
{
    struct mls_message m;
    struct mls_group_secrets gs;
    struct mls_group_info gi;
    struct mls_kp *kp = NULL;
    struct mls_group *g = NULL;
    struct gstate *s = NULL;
    uint8_t psk_secret[HLEN], th[HLEN];
    const struct mls_pre_shared_key_id *ids[MLS_RULES_MAX_PSKS];
    const struct mls_leaf_node *signer;
    int rc;

    (void)now;
    *out = NULL;
    memset(&gs, 0, sizeof(gs));
    memset(&gi, 0, sizeof(gi));
    if ((rc = mls_message_parse(welcome, welcome_len, &m)) != 0)
        return rc;
    if (m.wire_format != MLS_WF_WELCOME) {
        rc = ERR_INVALID;
        goto out;
    }
    rc = ERR_NOT_FOUND;
    for (size_t i = 0; i < n_kps && rc == ERR_NOT_FOUND; i++) {
        rc = mls_welcome_open_secrets(&m.welcome, mls_kp_key_package(kps[i]),
                                      mls_kp_init_priv(kps[i]), &gs);
        if (rc == 0)
            kp = kps[i];
    }
    if (rc != 0)
        goto out;
    if (mls_kp_used(kp)) {
        rc = ERR_CONFLICT;
        goto out;
    }
    if (gs.n_psks > MLS_RULES_MAX_PSKS) {
        rc = ERR_LIMIT;
        goto out;
    }
    for (size_t i = 0; i < gs.n_psks; i++)
        ids[i] = &gs.psks[i];
    if ((rc = psk_secret_of(NULL, NULL, ids, gs.n_psks, psks, n_psks, from, psk_secret)) != 0)
        goto out;
    if ((rc = mls_welcome_open_group_info(&m.welcome, &gs, psk_secret, &gi)) != 0)
        goto out;

    g = group_alloc(flags);
    if (!g || !(s = gstate_new(flags, NULL))) {
        rc = ERR_NOMEM;
        goto out;
    }
    g->cur = s;
    /* The tree: from the GroupInfo's extension or out of band. */
    if (tree) {
        rc = mls_tree_decode(tree, tree_len, &s->tree);
    } else {
        const struct mls_extension *e = mls_ext_find(&gi.extensions, MLS_EXT_RATCHET_TREE);
        rc = e ? mls_tree_decode(e->extension_data.data, e->extension_data.len, &s->tree)
               : ERR_NOT_FOUND;
    }
    if (rc != 0)
        goto out;
    if ((rc = mls_extension_list_check_unique(&gi.extensions)) != 0 ||
        (rc = mls_tree_validate(s->tree, gi.group_context.group_id.data,
                                gi.group_context.group_id.len)) != 0)
        goto out;
    if ((rc = mls_tree_node_hash(s->tree, mls_tree_root(s->tree), th)) != 0)
        goto out;
    if (gi.group_context.tree_hash.len != HLEN ||
        memcmp(th, gi.group_context.tree_hash.data, HLEN) != 0) {
        rc = ERR_INVALID;
        goto out;
    }
    signer = mls_tree_leaf(s->tree, gi.signer);
    if (!signer) {
        rc = ERR_INVALID;
        goto out;
    }
    rc = mls_welcome_verify_group_info(&gi, signer->signature_key.data, signer->signature_key.len,
                                       &gs, psk_secret, &s->ks);
    if (rc != 0)
        goto out;
    /* Our leaf: the one holding our KeyPackage's LeafNode. */
    rc = ERR_INVALID;
    for (uint32_t l = 0; l < mls_tree_leaf_count(s->tree); l++) {
        const struct mls_leaf_node *ln = mls_tree_leaf(s->tree, l);
        if (ln && same_leaf(ln, &mls_kp_key_package(kp)->leaf_node)) {
            s->own_leaf = l;
            rc = 0;
            break;
        }
    }
    if (rc != 0)
        goto out;
    memcpy(s->sec->sig_priv, mls_kp_sig_priv(kp), CRYPTO_SIGN_PRIV_LEN);
    mls_treekem_priv_init(&s->sec->tk, s->own_leaf, mls_kp_enc_priv(kp));
    if (gs.has_path_secret) {
        uint32_t node = mls_treemath_common_ancestor(mls_treemath_leaf_to_node(s->own_leaf),
                                                     mls_treemath_leaf_to_node(gi.signer));
        if (gs.path_secret.len != HLEN || gi.signer == s->own_leaf) {
            rc = ERR_INVALID;
            goto out;
        }
        if ((rc = mls_treekem_priv_from_path_secret(&s->sec->tk, s->tree, node,
                                                    gs.path_secret.data)) != 0)
            goto out;
    }
    if ((rc = mls_group_context_copy(&s->gc, &gi.group_context)) != 0)
        goto out;
    if ((rc = mls_rules_tree_supports(s->tree, &s->gc.extensions)) != 0)
        goto out;
    if ((rc = gstate_set_gc(s)) != 0)
        goto out;
    if (gi.confirmation_tag.len != CRYPTO_MAC_LEN) {
        rc = ERR_INVALID;
        goto out;
    }
    memcpy(s->ctag, gi.confirmation_tag.data, CRYPTO_MAC_LEN);
    if ((rc = mls_rules_interim_hash(s->gc.confirmed_transcript_hash.data,
                                     s->gc.confirmed_transcript_hash.len, gi.confirmation_tag.data,
                                     gi.confirmation_tag.len, s->interim)) != 0)
        goto out;
    if ((rc = gstate_finish_epoch(s)) != 0)
        goto out;
    mls_kp_mark_used(kp);
    *out = g;
    g = NULL;
out:
    crypto_wipe(psk_secret, sizeof(psk_secret));
    mls_group_free(g);
    mls_group_info_free(&gi);
    mls_group_secrets_free(&gs);
    mls_message_free(&m);
    return rc;
}

/* ---- proposals ------------------------------------------------------------------- */

int check_proposal(const struct mls_group *g, const struct gstate *s, const struct mls_proposal *p,
                   uint8_t sender_type, uint32_t sender, uint64_t now)
{
    (void)g;
    return mls_rules_proposal(s->tree, &s->gc.group_id, p, sender_type, sender, now);
}

int gprop_add(struct gstate *s, uint16_t wf, const struct mls_framed_content *fc,
              const struct mls_framed_content_auth_data *auth, uint32_t sender,
              struct gprop **added)
{
    uint8_t ref[MLS_REF_LEN];
    int rc = mls_proposal_ref(wf, fc, auth, ref);
    if (rc != 0)
        return rc;
    *added = NULL;
    for (size_t i = 0; i < s->n_props; i++)
        if (memcmp(s->props[i].ref, ref, MLS_REF_LEN) == 0)
            return ERR_CONFLICT;
    if (s->n_props >= MLS_GROUP_MAX_PROPOSALS)
        return ERR_LIMIT;
    struct gprop *np = realloc(s->props, (s->n_props + 1) * sizeof(*np));
    if (!np)
        return ERR_NOMEM;
    s->props = np;
    struct gprop *e = &s->props[s->n_props];
    memset(e, 0, sizeof(*e));
    memcpy(e->ref, ref, MLS_REF_LEN);
    e->sender_type = fc->sender.sender_type;
    e->sender = sender;
    /* A deep copy through the codec keeps ownership simple. */
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_proposal_encode(&w, &fc->proposal);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = mls_proposal_parse(w.buf, w.len, &e->p);
    tls_writer_reset(&w);
    if (rc != 0)
        return rc;
    s->n_props++;
    *added = e;
    return 0;
}

static int handle_proposal(struct mls_group *g, uint16_t wf, const struct mls_framed_content *fc,
                           const struct mls_framed_content_auth_data *auth, uint32_t who,
                           uint64_t now, struct mls_group_event *ev)
{
    struct gstate *s = g->cur;
    struct gprop *added = NULL;
    int rc = check_proposal(g, s, &fc->proposal, fc->sender.sender_type, who, now);
    if (rc == 0)
        rc = gprop_add(s, wf, fc, auth, who, &added);
    if (rc == ERR_CONFLICT)
        rc = 0; /* our own proposal coming back, or a duplicate: already known */
    if (rc != 0)
        return rc;
    ev->type = MLS_GROUP_EV_PROPOSAL;
    ev->proposal_type = fc->proposal.proposal_type;
    return 0;
}

/* ---- commits -------------------------------------------------------------------- */

void gplan_free(struct gplan *pl)
{
    free(pl->items);
    free(pl->added);
    free(pl->added_kp);
    mls_tree_free(pl->tree);
    mls_extension_list_free(&pl->ext);
    memset(pl, 0, sizeof(*pl));
}

int gplan_build(const struct mls_group *g, const struct gstate *s, struct gplan *pl,
                uint32_t committer, uint64_t now)
{
    const struct mls_bytes *gid = &s->gc.group_id;
    const struct mls_extension_list *ext = &s->gc.extensions;
    struct mls_rules_commit rules;
    int rc;

    if ((rc = mls_rules_commit_init(&rules, s->tree, s->gc.version, committer, pl->external,
                                    pl->ext_leaf, pl->n)) != 0)
        return rc;
    rc = ERR_NOMEM;
    pl->added = calloc(pl->n ? pl->n : 1, sizeof(*pl->added));
    pl->added_kp = calloc(pl->n ? pl->n : 1, sizeof(*pl->added_kp));
    if (!pl->added || !pl->added_kp)
        goto out;
    for (size_t i = 0; i < pl->n; i++) {
        const struct gitem *it = &pl->items[i];
        const struct mls_proposal *p = it->p;
        if ((rc = mls_rules_commit_item(&rules, p, it->sender_type, it->sender, it->by_ref)) != 0)
            goto out;
        if (p->proposal_type == MLS_PROPOSAL_EXTERNAL_INIT)
            pl->external_init = &p->external_init;
        if (!it->by_ref && (rc = check_proposal(g, s, p, it->sender_type, it->sender, now)) != 0)
            goto out;
    }
    if ((rc = mls_rules_commit_end(&rules)) != 0)
        goto out;
    pl->path_required = rules.path_required;
    pl->reinit = rules.reinit;

    /* Apply: GroupContextExtensions, Update, Remove, Add (§12.4.2). */
    if ((rc = mls_tree_clone(s->tree, &pl->tree)) != 0)
        goto out;
    for (size_t i = 0; i < pl->n; i++) {
        const struct mls_proposal *p = pl->items[i].p;
        if (p->proposal_type != MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS)
            continue;
        if ((rc = mls_extension_list_copy(&pl->ext, &p->gce)) != 0)
            goto out;
        struct mls_external_senders es = {0};
        rc = mls_ext_external_senders(&pl->ext, &es);
        mls_external_senders_free(&es);
        if (rc == ERR_NOT_FOUND)
            rc = 0;
        else if (rc != 0) {
            rc = rc == ERR_NOMEM ? rc : ERR_INVALID;
            goto out;
        }
        pl->has_gce = true;
        ext = &pl->ext;
    }
    for (size_t i = 0; i < pl->n; i++) {
        const struct gitem *it = &pl->items[i];
        if (it->p->proposal_type != MLS_PROPOSAL_UPDATE)
            continue;
        rc = mls_tree_validate_leaf(pl->tree, &it->p->update, MLS_LEAF_SOURCE_UPDATE, it->sender,
                                    gid->data, gid->len);
        if (rc == 0)
            rc = mls_tree_update(pl->tree, it->sender, &it->p->update);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < pl->n; i++) {
        const struct mls_proposal *p = pl->items[i].p;
        if (p->proposal_type != MLS_PROPOSAL_REMOVE)
            continue;
        if (p->remove == s->own_leaf)
            pl->removes_us = true;
        if ((rc = mls_tree_remove(pl->tree, p->remove)) != 0)
            goto out;
    }
    /* An external joiner takes the leftmost blank leaf, as an Add would;
     * its path (applied by the caller) starts there. */
    if (pl->external && (rc = mls_tree_add(pl->tree, pl->ext_leaf, &pl->committer)) != 0)
        goto out;
    for (size_t i = 0; i < pl->n; i++) {
        const struct mls_proposal *p = pl->items[i].p;
        if (p->proposal_type != MLS_PROPOSAL_ADD)
            continue;
        rc = mls_tree_validate_leaf(pl->tree, &p->add.leaf_node, MLS_LEAF_SOURCE_KEY_PACKAGE,
                                    mls_tree_leaf_count(pl->tree), gid->data, gid->len);
        if (rc == 0)
            rc = mls_tree_add(pl->tree, &p->add.leaf_node, &pl->added[pl->n_added]);
        if (rc != 0)
            goto out;
        pl->added_kp[pl->n_added++] = &p->add;
    }
    rc = mls_rules_tree_supports(pl->tree, ext);
out:
    mls_rules_commit_reset(&rules);
    return rc;
}

/* Resolves a commit's proposals (by value: from the committer; by
 * reference: remembered this epoch). */
int gstate_next(unsigned flags, const struct gstate *s, struct gplan *pl, struct gstate **out)
{
    struct gstate *ns = gstate_new(flags, s->sec);
    int rc;

    *out = NULL;
    if (!ns)
        return ERR_NOMEM;
    ns->own_leaf = s->own_leaf;
    ns->tree = pl->tree;
    pl->tree = NULL;
    if ((rc = mls_group_context_copy(&ns->gc, &s->gc)) != 0) {
        gstate_free(ns);
        return rc;
    }
    ns->gc.epoch = s->gc.epoch + 1;
    if (pl->has_gce) {
        mls_extension_list_free(&ns->gc.extensions);
        ns->gc.extensions = pl->ext;
        memset(&pl->ext, 0, sizeof(pl->ext));
    }
    *out = ns;
    return 0;
}

int gplan_resolve(const struct gstate *s, const struct mls_commit *c, uint32_t committer,
                         struct gplan *pl)
{
    pl->items = calloc(c->n_proposals ? c->n_proposals : 1, sizeof(*pl->items));
    if (!pl->items)
        return ERR_NOMEM;
    for (size_t i = 0; i < c->n_proposals; i++) {
        const struct mls_proposal_or_ref *por = &c->proposals[i];
        struct gitem *it = &pl->items[pl->n++];
        if (por->type == MLS_POR_PROPOSAL) {
            it->p = &por->proposal;
            it->sender_type = pl->external ? MLS_SENDER_NEW_MEMBER_COMMIT : MLS_SENDER_MEMBER;
            it->sender = committer;
            continue;
        }
        if (pl->external)
            return ERR_INVALID; /* external commits carry proposals by value */
        const struct gprop *hit = NULL;
        for (size_t k = 0; k < s->n_props && !hit; k++)
            if (por->reference.len == MLS_REF_LEN &&
                memcmp(s->props[k].ref, por->reference.data, MLS_REF_LEN) == 0)
                hit = &s->props[k];
        if (!hit)
            return ERR_NOT_FOUND;
        it->p = &hit->p;
        it->sender_type = hit->sender_type;
        it->sender = hit->sender;
        it->by_ref = true;
        it->prop = hit;
    }
    return 0;
}

int confirmed_hash(const struct gstate *s, uint16_t wf, const struct mls_framed_content *fc,
                          const struct mls_bytes *sig, uint8_t out[HLEN])
{
    struct tls_writer w;
    int rc;
    tls_writer_init(&w, 0);
    mls_confirmed_transcript_hash_input_encode(&w, wf, fc, sig);
    rc = tls_writer_error(&w);
    if (rc == 0)
        crypto_sha256_2(s->interim, HLEN, w.buf, w.len, out);
    tls_writer_reset(&w);
    return rc;
}

void confirm_pending(struct mls_group *g)
{
    gstate_free(g->cur);
    g->cur = g->pend;
    g->pend = NULL;
    free(g->pend_commit);
    g->pend_commit = NULL;
    g->pend_commit_len = 0;
}

static int handle_commit(struct mls_group *g, const uint8_t *msg, size_t len, uint16_t wf,
                         const struct mls_framed_content *fc,
                         const struct mls_framed_content_auth_data *auth, uint64_t now,
                         struct mls_group_event *ev)
{
    struct gstate *s = g->cur, *ns = NULL;
    const struct mls_commit *c = &fc->commit;
    struct gplan pl;
    uint8_t th[HLEN], commit_secret[HLEN] = {0}, psk_secret[HLEN], init[HLEN];
    uint8_t *pgc = NULL;
    size_t pgc_len = 0;
    uint32_t committer = fc->sender.leaf_index;
    int rc;

    memset(&pl, 0, sizeof(pl));
    if (fc->sender.sender_type == MLS_SENDER_NEW_MEMBER_COMMIT) {
        /* An external commit (§12.4.3.2): the joiner's leaf comes from the
         * path; its index is known once the proposals are applied. */
        if (!c->has_path)
            return ERR_INVALID;
        pl.external = true;
        pl.ext_leaf = &c->path.leaf_node;
        committer = UINT32_MAX;
    } else if (fc->sender.sender_type != MLS_SENDER_MEMBER) {
        return ERR_INVALID;
    }
    if (!pl.external && committer == s->own_leaf) {
        /* Our own commit, echoed by the delivery service. */
        if (!g->pend || g->pend_commit_len != len || memcmp(g->pend_commit, msg, len) != 0)
            return ERR_BADSTATE;
        confirm_pending(g);
        ev->type = MLS_GROUP_EV_COMMIT;
        ev->own_commit = true;
        return 0;
    }
    if (auth->confirmation_tag.len != CRYPTO_MAC_LEN)
        return ERR_INVALID;
    /* Each proposal costs work linear in the group size: bound them. */
    if (c->n_proposals > MLS_GROUP_MAX_PROPOSALS)
        return ERR_LIMIT;
    if ((rc = gplan_resolve(s, c, committer, &pl)) != 0)
        goto out;
    if ((rc = gplan_build(g, s, &pl, committer, now)) != 0)
        goto out;
    if (pl.external)
        committer = pl.committer;
    if (pl.path_required && !c->has_path) {
        rc = ERR_INVALID;
        goto out;
    }
    if (pl.removes_us) {
        /* We cannot follow into the next epoch (the path is not for us). */
        s->active = false;
        gprops_clear(s);
        mls_group_commit_discard(g);
        ev->type = MLS_GROUP_EV_COMMIT;
        ev->removed = true;
        goto out;
    }
    if ((rc = gstate_next(g->flags, s, &pl, &ns)) != 0)
        goto out;
    /* Our own Update proposal committed by someone else: our new leaf key. */
    for (size_t i = 0; i < pl.n; i++)
        if (pl.items[i].prop && pl.items[i].prop->has_update_priv &&
            pl.items[i].sender == s->own_leaf &&
            (rc = mls_treekem_priv_set(&ns->sec->tk, mls_treemath_leaf_to_node(s->own_leaf),
                                       pl.items[i].prop->update_priv)) != 0)
            goto out;
    if (c->has_path) {
        if ((rc = mls_tree_apply_path(ns->tree, committer, &c->path, s->gc.group_id.data,
                                      s->gc.group_id.len)) != 0)
            goto out;
        if ((rc = mls_tree_node_hash(ns->tree, mls_tree_root(ns->tree), th)) != 0)
            goto out;
        /* Provisional GroupContext: new epoch, tree and extensions, old
         * confirmed transcript hash (§12.4.2). */
        if ((rc = mls_bytes_set(&ns->gc.tree_hash, th, HLEN)) != 0 ||
            (rc = encode_gc(&ns->gc, &pgc, &pgc_len)) != 0)
            goto out;
        mls_treekem_priv_prune(&ns->sec->tk, ns->tree);
        rc = mls_treekem_path_decrypt(ns->tree, &ns->sec->tk, committer, &c->path, pl.added,
                                      pl.n_added, pgc, pgc_len, commit_secret, NULL, NULL);
        if (rc == ERR_NOT_FOUND)
            rc = ERR_INVALID;
        if (rc != 0)
            goto out;
    } else {
        if ((rc = mls_tree_node_hash(ns->tree, mls_tree_root(ns->tree), th)) != 0 ||
            (rc = mls_bytes_set(&ns->gc.tree_hash, th, HLEN)) != 0)
            goto out;
    }
    mls_treekem_priv_prune(&ns->sec->tk, ns->tree);
    if (!mls_treekem_priv_get(&ns->sec->tk, mls_treemath_leaf_to_node(ns->own_leaf))) {
        rc = ERR_INVALID; /* our leaf changed under us without a key for it */
        goto out;
    }
    if ((rc = gplan_psk_secret(g, s, &pl, psk_secret)) != 0)
        goto out;
    if ((rc = confirmed_hash(s, wf, fc, &auth->signature, th)) != 0 ||
        (rc = mls_bytes_set(&ns->gc.confirmed_transcript_hash, th, HLEN)) != 0 ||
        (rc = gstate_set_gc(ns)) != 0)
        goto out;
    /* init_secret: the old epoch's, or for an external commit the one the
     * joiner exported from HPKE to our external_pub (§8.3). */
    if (pl.external)
        rc = mls_ks_epoch_external_init(s->ks, pl.external_init->data, pl.external_init->len,
                                        init);
    else
        rc = mls_ks_epoch_secret(s->ks, MLS_KS_INIT, init);
    if (rc != 0 || (rc = mls_ks_epoch_new(init, commit_secret, psk_secret, ns->gc_enc,
                                          ns->gc_len, &ns->ks)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_verify_confirmation_tag(ns->ks, th, auth->confirmation_tag.data,
                                                   auth->confirmation_tag.len)) != 0)
        goto out;
    if ((rc = mls_rules_interim_hash(th, HLEN, auth->confirmation_tag.data,
                                     auth->confirmation_tag.len, ns->interim)) != 0)
        goto out;
    memcpy(ns->ctag, auth->confirmation_tag.data, CRYPTO_MAC_LEN);
    if ((rc = gstate_finish_epoch(ns)) != 0)
        goto out;
    /* Everything checked: leave the old epoch (its secrets are wiped). */
    mls_group_commit_discard(g);
    gstate_free(g->cur);
    g->cur = ns;
    ns = NULL;
    ev->type = MLS_GROUP_EV_COMMIT;
    if (pl.reinit) {
        /* The group is over; its resumption PSK (this new epoch) stays for
         * joining the re-initialized group (mls_group_join's `from`). */
        g->cur->active = false;
        ev->reinit = true;
    }
out:
    crypto_wipe(commit_secret, sizeof(commit_secret));
    crypto_wipe(psk_secret, sizeof(psk_secret));
    crypto_wipe(init, sizeof(init));
    free(pgc);
    gstate_free(ns);
    gplan_free(&pl);
    return rc;
}

/* ---- receiving -------------------------------------------------------------------- */

void mls_group_event_reset(struct mls_group_event *ev)
{
    if (ev->data) {
        crypto_wipe(ev->data, ev->len);
        free(ev->data);
    }
    free(ev->authenticated_data);
    memset(ev, 0, sizeof(*ev));
}

/* Moves b's bytes to (*p, *len); b is left empty. */
static void take_bytes(struct mls_bytes *b, uint8_t **p, size_t *len)
{
    *p = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = 0;
}

static size_t count_external(const struct gstate *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_props; i++)
        n += s->props[i].sender_type == MLS_SENDER_EXTERNAL;
    return n;
}

int mls_group_process(struct mls_group *g, const uint8_t *msg, size_t len, uint64_t now,
                      struct mls_group_event *ev)
{
    struct gstate *s = g->cur;
    struct mls_message m;
    struct mls_framed_content pfc;
    struct mls_framed_content_auth_data pauth;
    struct mls_framed_content *fc = NULL;
    struct mls_framed_content_auth_data *auth = NULL;
    uint16_t wf;
    uint32_t who = 0;
    int rc;

    memset(ev, 0, sizeof(*ev));
    memset(&pfc, 0, sizeof(pfc));
    memset(&pauth, 0, sizeof(pauth));
    if (!s->active)
        return ERR_BADSTATE;
    if ((rc = mls_message_parse(msg, len, &m)) != 0)
        return rc;
    wf = m.wire_format;
    if (wf == MLS_WF_PUBLIC_MESSAGE) {
        struct mls_public_message *pm = &m.public_message;
        const struct mls_bytes *key = NULL;
        uint8_t mk[HLEN];
        bool member = false;
        fc = &pm->content;
        auth = &pm->auth;
        if (fc->group_id.len != s->gc.group_id.len ||
            memcmp(fc->group_id.data, s->gc.group_id.data, fc->group_id.len) != 0 ||
            fc->epoch != s->gc.epoch) {
            rc = ERR_BADSTATE;
            goto out;
        }
        switch (fc->sender.sender_type) {
        case MLS_SENDER_MEMBER: {
            const struct mls_leaf_node *ln = mls_tree_leaf(s->tree, fc->sender.leaf_index);
            if (!ln) {
                rc = ERR_DENIED;
                goto out;
            }
            key = &ln->signature_key;
            who = fc->sender.leaf_index;
            member = true;
            break;
        }
        case MLS_SENDER_EXTERNAL:
            if (fc->sender.sender_index >= s->ext.n) {
                rc = ERR_DENIED;
                goto out;
            }
            key = &s->ext.v[fc->sender.sender_index].signature_key;
            who = fc->sender.sender_index;
            break;
        case MLS_SENDER_NEW_MEMBER_PROPOSAL:
            if (fc->content_type != MLS_CONTENT_PROPOSAL ||
                fc->proposal.proposal_type != MLS_PROPOSAL_ADD) {
                rc = ERR_INVALID;
                goto out;
            }
            key = &fc->proposal.add.leaf_node.signature_key;
            break;
        case MLS_SENDER_NEW_MEMBER_COMMIT:
            /* External commit: signed by the joiner's new LeafNode key. */
            if (fc->content_type != MLS_CONTENT_COMMIT || !fc->commit.has_path) {
                rc = ERR_INVALID;
                goto out;
            }
            key = &fc->commit.path.leaf_node.signature_key;
            break;
        default:
            rc = ERR_INVALID;
            goto out;
        }
        if (member && (rc = mls_ks_epoch_secret(s->ks, MLS_KS_MEMBERSHIP_KEY, mk)) != 0)
            goto out;
        rc = mls_framing_public_verify(pm, s->gc_enc, s->gc_len, key->data, key->len,
                                       member ? mk : NULL, member ? HLEN : 0);
        crypto_wipe(mk, sizeof(mk));
        if (rc != 0)
            goto out;
    } else if (wf == MLS_WF_PRIVATE_MESSAGE) {
        struct mls_private_message *pm = &m.private_message;
        struct mls_sender_data sd;
        uint8_t sds[HLEN];
        const struct mls_leaf_node *ln;
        if (pm->group_id.len != s->gc.group_id.len ||
            memcmp(pm->group_id.data, s->gc.group_id.data, pm->group_id.len) != 0 ||
            pm->epoch != s->gc.epoch) {
            rc = ERR_BADSTATE;
            goto out;
        }
        if ((rc = mls_ks_epoch_secret(s->ks, MLS_KS_SENDER_DATA, sds)) != 0)
            goto out;
        rc = mls_framing_private_open(pm, sds, s->st, &sd, &pfc, &pauth);
        crypto_wipe(sds, sizeof(sds));
        if (rc != 0)
            goto out;
        fc = &pfc;
        auth = &pauth;
        ln = mls_tree_leaf(s->tree, sd.leaf_index);
        if (!ln) {
            rc = ERR_DENIED;
            goto out;
        }
        who = sd.leaf_index;
        if ((rc = mls_framing_verify(MLS_WF_PRIVATE_MESSAGE, fc, s->gc_enc, s->gc_len,
                                     ln->signature_key.data, ln->signature_key.len,
                                     &auth->signature)) != 0)
            goto out;
    } else {
        rc = ERR_INVALID;
        goto out;
    }

    ev->sender_type = fc->sender.sender_type;
    ev->sender = who;
    switch (fc->content_type) {
    case MLS_CONTENT_APPLICATION:
        if (wf != MLS_WF_PRIVATE_MESSAGE) {
            rc = ERR_INVALID;
            goto out;
        }
        ev->type = MLS_GROUP_EV_APPLICATION;
        take_bytes(&fc->application_data, &ev->data, &ev->len);
        break;
    case MLS_CONTENT_PROPOSAL:
        rc = handle_proposal(g, wf, fc, auth, who, now, ev);
        break;
    case MLS_CONTENT_COMMIT:
        rc = handle_commit(g, msg, len, wf, fc, auth, now, ev);
        break;
    default:
        rc = ERR_INVALID;
    }
    if (rc == 0) {
        take_bytes(&fc->authenticated_data, &ev->authenticated_data, &ev->ad_len);
        ev->epoch = g->cur->gc.epoch;
        ev->external_pending = g->cur->active && count_external(g->cur) > 0;
    } else {
        mls_group_event_reset(ev);
    }
out:
    mls_framed_content_free(&pfc);
    mls_framed_content_auth_data_free(&pauth);
    mls_message_free(&m);
    return rc;
}

/* ---- state -------------------------------------------------------------------------- */

uint64_t mls_group_epoch(const struct mls_group *g)
{
    return g->cur->gc.epoch;
}

const uint8_t *mls_group_id(const struct mls_group *g, size_t *len)
{
    *len = g->cur->gc.group_id.len;
    return g->cur->gc.group_id.data;
}

uint32_t mls_group_own_leaf(const struct mls_group *g)
{
    return g->cur->own_leaf;
}

bool mls_group_active(const struct mls_group *g)
{
    return g->cur->active;
}

int mls_group_epoch_authenticator(const struct mls_group *g, uint8_t out[CRYPTO_HASH_LEN])
{
    return mls_ks_epoch_secret(g->cur->ks, MLS_KS_EPOCH_AUTHENTICATOR, out);
}

int mls_group_export(const struct mls_group *g, const char *label, const uint8_t *context,
                     size_t ctx_len, uint8_t *out, size_t len)
{
    if (!g->cur->active)
        return ERR_BADSTATE;
    return mls_ks_epoch_export(g->cur->ks, (const uint8_t *)label, strlen(label), context, ctx_len,
                               out, len);
}

int mls_group_roster(const struct mls_group *g, struct mls_roster_entry *out, size_t cap,
                     size_t *n)
{
    return mls_tree_roster(g->cur->tree, out, cap, n);
}

int mls_group_tree(const struct mls_group *g, uint8_t **out, size_t *len)
{
    return mls_tree_encode(g->cur->tree, out, len);
}

int mls_group_group_context(const struct mls_group *g, uint8_t **out, size_t *len)
{
    return encode_gc(&g->cur->gc, out, len);
}

size_t mls_group_pending_proposals(const struct mls_group *g, size_t *external)
{
    if (external)
        *external = count_external(g->cur);
    return g->cur->n_props;
}

bool mls_group_has_pending_commit(const struct mls_group *g)
{
    return g->pend != NULL;
}

int mls_group_commit_confirm(struct mls_group *g)
{
    if (!g->pend)
        return ERR_BADSTATE;
    confirm_pending(g);
    return 0;
}

void mls_group_commit_discard(struct mls_group *g)
{
    gstate_free(g->pend);
    g->pend = NULL;
    free(g->pend_commit);
    g->pend_commit = NULL;
    g->pend_commit_len = 0;
}
