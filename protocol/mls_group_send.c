/*
 * mls_group_send.c: what a member sends: application messages
 * (PrivateMessage), proposals and commits (PublicMessage, Sammen's policy),
 * Welcome and GroupInfo. See mls_group.h for the life cycle.
 *
 * Where to start: mls_group_commit_create(). It builds the next epoch into
 * a new struct gstate, exactly as a receiver would (gplan_build), plus our
 * UpdatePath (mls_treekem_path_generate/_encrypt), signs the commit, runs
 * the key schedule, and parks the result in g->pend until the delivery
 * service's answer: mls_group_commit_confirm() or _discard().
 *
 * Welcome (§12.4.3.1):
 * | part                   | how                                                |
 * |------------------------|----------------------------------------------------|
 * | GroupInfo              | new GroupContext, external_pub (+ ratchet_tree),   |
 * |                        | confirmation_tag, signer = us, SignWithLabel       |
 * |                        | ("GroupInfoTBS")                                   |
 * | encrypted_group_info   | AEAD(welcome_key, welcome_nonce, "", GroupInfo)    |
 * | GroupSecrets           | joiner_secret, path secret of the lowest common    |
 * |                        | ancestor with the new member, PSK ids              |
 * | encrypted_group_secrets| EncryptWithLabel(init_key, "Welcome",              |
 * |                        | encrypted_group_info, GroupSecrets)                |
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hpke.h"
#include "mls_framing.h"
#include "mls_group.h"
#include "mls_group_int.h"
#include "mls_treemath.h"
#include "tls.h"

/* ---- helpers -------------------------------------------------------------------- */

static int content_init(const struct gstate *s, struct mls_framed_content *fc, uint8_t type,
                        const uint8_t *ad, size_t ad_len)
{
    int rc;
    memset(fc, 0, sizeof(*fc));
    fc->epoch = s->gc.epoch;
    fc->sender.sender_type = MLS_SENDER_MEMBER;
    fc->sender.leaf_index = s->own_leaf;
    fc->content_type = type;
    if ((rc = mls_bytes_set(&fc->group_id, s->gc.group_id.data, s->gc.group_id.len)) != 0)
        return rc;
    return mls_bytes_set(&fc->authenticated_data, ad, ad_len);
}

/* Builds the PublicMessage of a signed content (membership tag with this
 * epoch's key) and encodes it as an MLSMessage. */
static int build_public(const struct gstate *s, const struct mls_framed_content *fc,
                        const struct mls_framed_content_auth_data *auth, uint8_t **out,
                        size_t *len)
{
    struct mls_public_message pm;
    uint8_t mk[HLEN];
    int rc = mls_ks_epoch_secret(s->ks, MLS_KS_MEMBERSHIP_KEY, mk);
    memset(&pm, 0, sizeof(pm));
    if (rc == 0)
        rc = mls_framing_public_build(fc, auth, s->gc_enc, s->gc_len, mk, HLEN, &pm);
    crypto_wipe(mk, sizeof(mk));
    if (rc == 0)
        rc = encode_public_message(&pm, out, len);
    mls_public_message_free(&pm);
    return rc;
}

int sign_public(const struct gstate *s, struct mls_framed_content *fc,
                struct mls_framed_content_auth_data *auth, uint8_t **out, size_t *len)
{
    int rc = mls_framing_sign(MLS_WF_PUBLIC_MESSAGE, fc, s->gc_enc, s->gc_len, s->sec->sig_priv,
                              &auth->signature);
    if (rc == 0)
        rc = build_public(s, fc, auth, out, len);
    return rc;
}

static int ext_append(struct mls_extension_list *l, uint16_t type, uint8_t *data, size_t len)
{
    struct mls_extension *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    if (!nv) {
        free(data);
        return ERR_NOMEM;
    }
    l->v = nv;
    nv[l->n].extension_type = type;
    nv[l->n].extension_data.data = data;
    nv[l->n].extension_data.len = len;
    l->n++;
    return 0;
}

int make_group_info(const struct gstate *s, bool with_tree, const uint8_t *confirmation_tag,
                    struct mls_group_info *gi)
{
    uint8_t pub[CRYPTO_KEM_PUB_LEN], sig[CRYPTO_SIG_LEN], *b = NULL;
    size_t blen = 0;
    struct tls_writer w;
    int rc;

    memset(gi, 0, sizeof(*gi));
    if ((rc = mls_group_context_copy(&gi->group_context, &s->gc)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_external_pub(s->ks, pub)) != 0)
        goto out;
    tls_writer_init(&w, 0);
    tls_put_opaque(&w, pub, sizeof(pub));
    if ((rc = tls_writer_take(&w, &b, &blen)) != 0 ||
        (rc = ext_append(&gi->extensions, MLS_EXT_EXTERNAL_PUB, b, blen)) != 0)
        goto out;
    if (with_tree) {
        if ((rc = mls_tree_encode(s->tree, &b, &blen)) != 0 ||
            (rc = ext_append(&gi->extensions, MLS_EXT_RATCHET_TREE, b, blen)) != 0)
            goto out;
    }
    if ((rc = mls_bytes_set(&gi->confirmation_tag, confirmation_tag, CRYPTO_MAC_LEN)) != 0)
        goto out;
    gi->signer = s->own_leaf;
    tls_writer_init(&w, 0);
    mls_group_info_encode_tbs(&w, gi);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_sign_with_label(s->sec->sig_priv, "GroupInfoTBS", w.buf, w.len, sig);
    tls_writer_reset(&w);
    if (rc == 0)
        rc = mls_bytes_set(&gi->signature, sig, sizeof(sig));
out:
    if (rc != 0)
        mls_group_info_free(gi);
    return rc;
}

static int encode_message(uint16_t wf, const struct mls_message *m, uint8_t **out, size_t *len)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    tls_put_u16(&w, MLS_VERSION_MLS10);
    tls_put_u16(&w, wf);
    switch (wf) {
    case MLS_WF_PRIVATE_MESSAGE:
        mls_private_message_encode(&w, &m->private_message);
        break;
    case MLS_WF_WELCOME:
        mls_welcome_encode(&w, &m->welcome);
        break;
    case MLS_WF_GROUP_INFO:
        mls_group_info_encode(&w, &m->group_info);
        break;
    default:
        tls_writer_reset(&w);
        return ERR_INVALID;
    }
    return tls_writer_take(&w, out, len);
}

int mls_group_group_info(const struct mls_group *g, bool with_tree, uint8_t **out, size_t *len)
{
    struct mls_message m;
    int rc;
    memset(&m, 0, sizeof(m));
    if (!g->cur->active)
        return ERR_BADSTATE;
    rc = make_group_info(g->cur, with_tree, g->cur->ctag, &m.group_info);
    if (rc == 0)
        rc = encode_message(MLS_WF_GROUP_INFO, &m, out, len);
    mls_group_info_free(&m.group_info);
    return rc;
}

/* ---- application messages ------------------------------------------------------- */

int mls_group_encrypt(struct mls_group *g, const uint8_t *pt, size_t len, const uint8_t *ad,
                      size_t ad_len, uint8_t **out, size_t *out_len)
{
    struct gstate *s = g->cur;
    struct mls_framed_content fc;
    struct mls_framed_content_auth_data auth;
    struct mls_message m;
    uint8_t sds[HLEN];
    size_t padding = 0;
    int rc;

    memset(&auth, 0, sizeof(auth));
    memset(&m, 0, sizeof(m));
    if (!s->active)
        return ERR_BADSTATE;
    if ((rc = content_init(s, &fc, MLS_CONTENT_APPLICATION, ad, ad_len)) != 0 ||
        (rc = mls_bytes_set(&fc.application_data, pt, len)) != 0)
        goto out;
    if (g->padding)
        padding = (g->padding - (len % g->padding)) % g->padding;
    if ((rc = mls_framing_sign(MLS_WF_PRIVATE_MESSAGE, &fc, s->gc_enc, s->gc_len,
                               s->sec->sig_priv, &auth.signature)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_secret(s->ks, MLS_KS_SENDER_DATA, sds)) != 0)
        goto out;
    rc = mls_framing_private_seal(&fc, &auth, sds, s->st, padding, &m.private_message);
    crypto_wipe(sds, sizeof(sds));
    if (rc == 0)
        rc = encode_message(MLS_WF_PRIVATE_MESSAGE, &m, out, out_len);
out:
    mls_private_message_free(&m.private_message);
    mls_framed_content_free(&fc);
    mls_framed_content_auth_data_free(&auth);
    return rc;
}

/* ---- proposals -------------------------------------------------------------------- */

/* Signs and sends proposal *p (moved in: freed here in all cases) and
 * remembers it; update_priv is the new leaf key of an Update. */
static int propose(struct mls_group *g, struct mls_proposal *p, const uint8_t *update_priv,
                   uint8_t **out, size_t *out_len)
{
    struct gstate *s = g->cur;
    struct mls_framed_content fc;
    struct mls_framed_content_auth_data auth;
    struct gprop *added = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    memset(&auth, 0, sizeof(auth));
    *out = NULL;
    if ((rc = content_init(s, &fc, MLS_CONTENT_PROPOSAL, NULL, 0)) != 0)
        goto out;
    fc.proposal = *p;
    memset(p, 0, sizeof(*p));
    if ((rc = sign_public(s, &fc, &auth, &buf, &len)) != 0)
        goto out;
    if ((rc = gprop_add(s, MLS_WF_PUBLIC_MESSAGE, &fc, &auth, s->own_leaf, &added)) != 0)
        goto out;
    if (update_priv) {
        added->has_update_priv = true;
        memcpy(added->update_priv, update_priv, CRYPTO_KEM_PRIV_LEN);
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    mls_proposal_free(p);
    mls_framed_content_free(&fc);
    mls_framed_content_auth_data_free(&auth);
    return rc;
}

int mls_group_propose_add(struct mls_group *g, const uint8_t *key_package, size_t kp_len,
                          uint64_t now, uint8_t **out, size_t *out_len)
{
    struct mls_proposal p;
    int rc;
    memset(&p, 0, sizeof(p));
    if (!g->cur->active)
        return ERR_BADSTATE;
    p.proposal_type = MLS_PROPOSAL_ADD;
    if ((rc = mls_key_package_parse_any(key_package, kp_len, &p.add)) == 0 &&
        (rc = check_proposal(g, g->cur, &p, MLS_SENDER_MEMBER, g->cur->own_leaf, now)) == 0)
        return propose(g, &p, NULL, out, out_len);
    mls_proposal_free(&p);
    return rc;
}

int mls_group_propose_remove(struct mls_group *g, uint32_t leaf, uint8_t **out, size_t *out_len)
{
    struct mls_proposal p;
    memset(&p, 0, sizeof(p));
    if (!g->cur->active)
        return ERR_BADSTATE;
    if (!mls_tree_leaf(g->cur->tree, leaf))
        return ERR_INVALID;
    p.proposal_type = MLS_PROPOSAL_REMOVE;
    p.remove = leaf;
    return propose(g, &p, NULL, out, out_len);
}

/* Our LeafNode with a fresh encryption key, re-signed for `source`. */
static int fresh_leaf(const struct gstate *s, struct mls_leaf_node *ln, uint8_t priv[32])
{
    const struct mls_leaf_node *old = mls_tree_leaf(s->tree, s->own_leaf);
    uint8_t pub[CRYPTO_KEM_PUB_LEN], sig[CRYPTO_SIG_LEN];
    struct tls_writer w;
    int rc;
    if (!old)
        return ERR_BADSTATE;
    if ((rc = mls_leaf_node_copy(ln, old)) != 0)
        return rc;
    if ((rc = hpke_generate_keypair(priv, pub)) != 0 ||
        (rc = mls_bytes_set(&ln->encryption_key, pub, sizeof(pub))) != 0)
        goto out;
    ln->leaf_node_source = MLS_LEAF_SOURCE_UPDATE;
    ln->lifetime.not_before = ln->lifetime.not_after = 0;
    mls_bytes_free(&ln->parent_hash);
    tls_writer_init(&w, 0);
    mls_leaf_node_encode_tbs(&w, ln, s->gc.group_id.data, s->gc.group_id.len, s->own_leaf);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_sign_with_label(s->sec->sig_priv, "LeafNodeTBS", w.buf, w.len, sig);
    tls_writer_reset(&w);
    if (rc == 0)
        rc = mls_bytes_set(&ln->signature, sig, sizeof(sig));
out:
    if (rc != 0)
        mls_leaf_node_free(ln);
    return rc;
}

int mls_group_propose_update(struct mls_group *g, uint8_t **out, size_t *out_len)
{
    struct mls_proposal p;
    uint8_t priv[CRYPTO_KEM_PRIV_LEN];
    int rc;
    memset(&p, 0, sizeof(p));
    if (!g->cur->active)
        return ERR_BADSTATE;
    p.proposal_type = MLS_PROPOSAL_UPDATE;
    rc = fresh_leaf(g->cur, &p.update, priv);
    if (rc == 0)
        rc = propose(g, &p, priv, out, out_len);
    crypto_wipe(priv, sizeof(priv));
    mls_proposal_free(&p);
    return rc;
}

static int psk_id_init(const struct gstate *s, struct mls_pre_shared_key_id *id,
                       const uint8_t *psk_id, size_t psk_id_len, uint64_t epoch)
{
    uint8_t nonce[HLEN];
    int rc;
    memset(id, 0, sizeof(*id));
    crypto_random(nonce, sizeof(nonce));
    if ((rc = mls_bytes_set(&id->psk_nonce, nonce, sizeof(nonce))) != 0)
        return rc;
    if (psk_id) {
        id->psktype = MLS_PSK_EXTERNAL;
        return mls_bytes_set(&id->psk_id, psk_id, psk_id_len);
    }
    id->psktype = MLS_PSK_RESUMPTION;
    id->usage = MLS_RESUMPTION_APPLICATION;
    id->psk_epoch = epoch;
    return mls_bytes_set(&id->psk_group_id, s->gc.group_id.data, s->gc.group_id.len);
}

int mls_group_propose_psk(struct mls_group *g, const uint8_t *psk_id, size_t psk_id_len,
                          uint64_t epoch, uint8_t **out, size_t *out_len)
{
    struct mls_proposal p;
    const uint8_t *v;
    size_t vl;
    int rc;
    memset(&p, 0, sizeof(p));
    if (!g->cur->active)
        return ERR_BADSTATE;
    p.proposal_type = MLS_PROPOSAL_PSK;
    if ((rc = psk_id_init(g->cur, &p.psk, psk_id, psk_id_len, epoch)) == 0 &&
        (rc = psk_lookup(g, g->cur, &p.psk, NULL, 0, NULL, &v, &vl)) == 0)
        return propose(g, &p, NULL, out, out_len);
    mls_proposal_free(&p);
    return rc;
}

int mls_group_propose_gce(struct mls_group *g, const struct mls_extension_list *ext, uint8_t **out,
                          size_t *out_len)
{
    struct mls_proposal p;
    int rc;
    memset(&p, 0, sizeof(p));
    if (!g->cur->active)
        return ERR_BADSTATE;
    p.proposal_type = MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS;
    if ((rc = mls_extension_list_copy(&p.gce, ext)) == 0 &&
        (rc = check_proposal(g, g->cur, &p, MLS_SENDER_MEMBER, g->cur->own_leaf, 0)) == 0)
        return propose(g, &p, NULL, out, out_len);
    mls_proposal_free(&p);
    return rc;
}

int mls_group_propose_reinit(struct mls_group *g, const uint8_t *group_id, size_t group_id_len,
                             const struct mls_extension_list *ext, uint8_t **out, size_t *out_len)
{
    struct mls_proposal p;
    int rc;
    memset(&p, 0, sizeof(p));
    if (!g->cur->active)
        return ERR_BADSTATE;
    if (group_id_len == 0 || group_id_len > 255)
        return ERR_INVALID;
    p.proposal_type = MLS_PROPOSAL_REINIT;
    p.reinit.version = MLS_VERSION_MLS10;
    p.reinit.cipher_suite = 3;
    if ((rc = mls_bytes_set(&p.reinit.group_id, group_id, group_id_len)) == 0 &&
        (!ext || (rc = mls_extension_list_copy(&p.reinit.extensions, ext)) == 0))
        return propose(g, &p, NULL, out, out_len);
    mls_proposal_free(&p);
    return rc;
}

/* ---- commits ------------------------------------------------------------------------ */

void mls_group_commit_out_reset(struct mls_group_commit_out *out)
{
    free(out->commit);
    free(out->welcome);
    free(out->group_info);
    memset(out, 0, sizeof(*out));
}

/* Appends a by-value proposal slot to c; returns it (zeroed) or NULL. */
static struct mls_proposal *add_value(struct mls_commit *c, size_t cap, uint16_t type)
{
    if (c->n_proposals >= cap)
        return NULL;
    struct mls_proposal_or_ref *por = &c->proposals[c->n_proposals++];
    memset(por, 0, sizeof(*por));
    por->type = MLS_POR_PROPOSAL;
    por->proposal.proposal_type = type;
    return &por->proposal;
}

/* Should remembered proposal pr go into our commit by reference? Leaves
 * out what we may not commit (our own removal or update, a second
 * Update/Remove of a leaf, ReInit, ExternalInit) and what no longer
 * validates against the current tree. */
static bool ref_usable(const struct mls_group *g, const struct gstate *s, const struct gprop *pr,
                       const uint32_t *touched, size_t n_touched, uint64_t now)
{
    uint32_t leaf;
    switch (pr->p.proposal_type) {
    case MLS_PROPOSAL_REMOVE:
        leaf = pr->p.remove;
        if (leaf == s->own_leaf)
            return false;
        break;
    case MLS_PROPOSAL_UPDATE:
        leaf = pr->sender;
        if (leaf == s->own_leaf)
            return false;
        break;
    case MLS_PROPOSAL_REINIT:
        /* Only alone (§12.2): when it is the one proposal remembered. */
        return s->n_props == 1 && n_touched == 0;
    case MLS_PROPOSAL_EXTERNAL_INIT:
        return false;
    case MLS_PROPOSAL_ADD:
        /* Not a KeyPackage whose keys a member already uses. */
        if (mls_tree_validate_leaf(s->tree, &pr->p.add.leaf_node, MLS_LEAF_SOURCE_KEY_PACKAGE,
                                   mls_tree_leaf_count(s->tree), s->gc.group_id.data,
                                   s->gc.group_id.len) != 0)
            return false;
        return check_proposal(g, s, &pr->p, pr->sender_type, pr->sender, now) == 0;
    default:
        return check_proposal(g, s, &pr->p, pr->sender_type, pr->sender, now) == 0;
    }
    for (size_t i = 0; i < n_touched; i++)
        if (touched[i] == leaf)
            return false;
    return check_proposal(g, s, &pr->p, pr->sender_type, pr->sender, now) == 0;
}

/* The Welcome for the new members of plan pl. */
static int make_welcome(const struct gstate *ns, const struct gplan *pl,
                        const struct mls_treekem_update *u, bool has_path, bool with_tree,
                        const uint8_t psk_secret[HLEN], struct mls_group_commit_out *out)
{
    struct mls_message m;
    struct mls_group_info gi;
    struct mls_group_secrets gs;
    struct tls_writer w;
    uint8_t joiner[HLEN], key[CRYPTO_AEAD_KEY_LEN], nonce[CRYPTO_AEAD_NONCE_LEN];
    uint8_t *gib = NULL;
    size_t gil = 0;
    int rc;

    memset(&m, 0, sizeof(m));
    memset(&gs, 0, sizeof(gs));
    m.welcome.cipher_suite = 3;
    if ((rc = make_group_info(ns, with_tree, ns->ctag, &gi)) != 0)
        return rc;
    tls_writer_init(&w, 0);
    mls_group_info_encode(&w, &gi);
    mls_group_info_free(&gi);
    if ((rc = tls_writer_take(&w, &gib, &gil)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_secret(ns->ks, MLS_KS_JOINER, joiner)) != 0 ||
        (rc = mls_ks_welcome_key(joiner, psk_secret, key, nonce)) != 0)
        goto out;
    m.welcome.encrypted_group_info.data = malloc(gil + CRYPTO_AEAD_TAG_LEN);
    if (!m.welcome.encrypted_group_info.data) {
        rc = ERR_NOMEM;
        goto out;
    }
    m.welcome.encrypted_group_info.len = gil + CRYPTO_AEAD_TAG_LEN;
    if ((rc = crypto_aead_seal(key, nonce, NULL, 0, gib, gil,
                               m.welcome.encrypted_group_info.data)) != 0)
        goto out;

    /* GroupSecrets: the same joiner secret and PSK ids for everyone. */
    if ((rc = mls_bytes_set(&gs.joiner_secret, joiner, HLEN)) != 0)
        goto out;
    size_t n_psk = 0;
    for (size_t i = 0; i < pl->n; i++)
        n_psk += pl->items[i].p->proposal_type == MLS_PROPOSAL_PSK;
    if (n_psk) {
        gs.psks = calloc(n_psk, sizeof(*gs.psks));
        if (!gs.psks) {
            rc = ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < pl->n; i++) {
            if (pl->items[i].p->proposal_type != MLS_PROPOSAL_PSK)
                continue;
            /* Deep copy through the codec. */
            tls_writer_init(&w, 0);
            mls_pre_shared_key_id_encode(&w, &pl->items[i].p->psk);
            struct tls_reader r;
            rc = tls_writer_error(&w);
            if (rc == 0) {
                tls_reader_init(&r, w.buf, w.len);
                rc = mls_pre_shared_key_id_decode(&r, &gs.psks[gs.n_psks]);
            }
            tls_writer_reset(&w);
            if (rc != 0)
                goto out;
            gs.n_psks++;
        }
    }
    m.welcome.secrets = calloc(pl->n_added, sizeof(*m.welcome.secrets));
    if (!m.welcome.secrets) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < pl->n_added; i++) {
        struct mls_encrypted_group_secrets *egs = &m.welcome.secrets[m.welcome.n_secrets++];
        const struct mls_key_package *kp = pl->added_kp[i];
        uint8_t ref[MLS_REF_LEN], ps[HLEN], kem[CRYPTO_KEM_ENC_LEN];
        uint32_t node;
        uint8_t *gsb = NULL, *ct = NULL;
        size_t gsl = 0;

        mls_bytes_free(&gs.path_secret);
        gs.has_path_secret = false;
        if (has_path && mls_treekem_update_secret_for(u, pl->added[i], &node, ps) == 0) {
            gs.has_path_secret = true;
            rc = mls_bytes_set(&gs.path_secret, ps, HLEN);
            crypto_wipe(ps, sizeof(ps));
            if (rc != 0)
                goto out;
        }
        tls_writer_init(&w, 0);
        mls_group_secrets_encode(&w, &gs);
        if ((rc = tls_writer_take(&w, &gsb, &gsl)) != 0)
            goto out;
        ct = malloc(gsl + CRYPTO_AEAD_TAG_LEN);
        rc = ct ? 0 : ERR_NOMEM;
        if (rc == 0 && kp->init_key.len != CRYPTO_KEM_PUB_LEN)
            rc = ERR_INVALID;
        if (rc == 0)
            rc = crypto_encrypt_with_label(kp->init_key.data, "Welcome",
                                           m.welcome.encrypted_group_info.data,
                                           m.welcome.encrypted_group_info.len, gsb, gsl, kem, ct);
        crypto_wipe(gsb, gsl);
        free(gsb);
        if (rc == 0)
            rc = mls_keypackage_ref(kp, ref);
        if (rc == 0)
            rc = mls_bytes_set(&egs->new_member, ref, sizeof(ref));
        if (rc == 0)
            rc = mls_bytes_set(&egs->encrypted_group_secrets.kem_output, kem, sizeof(kem));
        if (rc == 0) {
            egs->encrypted_group_secrets.ciphertext.data = ct;
            egs->encrypted_group_secrets.ciphertext.len = gsl + CRYPTO_AEAD_TAG_LEN;
            ct = NULL;
        }
        free(ct);
        if (rc != 0)
            goto out;
    }
    rc = encode_message(MLS_WF_WELCOME, &m, &out->welcome, &out->welcome_len);
out:
    crypto_wipe(joiner, sizeof(joiner));
    crypto_wipe(key, sizeof(key));
    crypto_wipe(nonce, sizeof(nonce));
    if (gib) {
        crypto_wipe(gib, gil);
        free(gib);
    }
    mls_group_secrets_free(&gs);
    mls_welcome_free(&m.welcome);
    return rc;
}

int mls_group_commit_create(struct mls_group *g, const struct mls_group_commit_opts *opts,
                            uint64_t now, struct mls_group_commit_out *out)
{
    struct gstate *s = g->cur, *ns = NULL;
    struct mls_framed_content fc;
    struct mls_framed_content_auth_data auth;
    struct mls_commit *c;
    struct mls_treekem_update u;
    struct gplan pl;
    struct mls_message gim;
    uint8_t th[HLEN], commit_secret[HLEN] = {0}, psk_secret[HLEN], init[HLEN];
    uint8_t tag[CRYPTO_MAC_LEN], *pgc = NULL;
    size_t pgc_len = 0, cap, n_touched = 0;
    uint32_t *touched = NULL;
    bool has_path = false;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&auth, 0, sizeof(auth));
    memset(&u, 0, sizeof(u));
    memset(&pl, 0, sizeof(pl));
    memset(&gim, 0, sizeof(gim));
    if (g->pend || !s->active)
        return ERR_BADSTATE;
    if ((rc = content_init(s, &fc, MLS_CONTENT_COMMIT, opts->authenticated_data,
                           opts->ad_len)) != 0)
        goto out;
    c = &fc.commit;
    cap = (opts->include_pending ? s->n_props : 0) + opts->n_add + opts->n_remove + opts->n_psks +
          (opts->gce ? 1 : 0);
    if (cap > MLS_GROUP_MAX_PROPOSALS) {
        rc = ERR_LIMIT;
        goto out;
    }
    c->proposals = calloc(cap ? cap : 1, sizeof(*c->proposals));
    touched = calloc(cap ? cap : 1, sizeof(*touched));
    if (!c->proposals || !touched) {
        rc = ERR_NOMEM;
        goto out;
    }
    /* By value first: Removes and the other explicit requests. */
    for (size_t i = 0; i < opts->n_remove; i++) {
        struct mls_proposal *p = add_value(c, cap, MLS_PROPOSAL_REMOVE);
        p->remove = opts->remove[i];
        touched[n_touched++] = opts->remove[i];
    }
    for (size_t i = 0; i < opts->n_add; i++) {
        struct mls_proposal *p = add_value(c, cap, MLS_PROPOSAL_ADD);
        if ((rc = mls_key_package_parse_any(opts->add_kps[i], opts->add_kp_lens[i], &p->add)) != 0)
            goto out;
    }
    for (size_t i = 0; i < opts->n_psks; i++) {
        struct mls_proposal *p = add_value(c, cap, MLS_PROPOSAL_PSK);
        if ((rc = psk_id_init(s, &p->psk, opts->psks[i].id, opts->psks[i].id_len, 0)) != 0)
            goto out;
    }
    if (opts->gce) {
        struct mls_proposal *p = add_value(c, cap, MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS);
        if ((rc = mls_extension_list_copy(&p->gce, opts->gce)) != 0)
            goto out;
    }
    /* Then what we received this epoch, by reference. */
    for (size_t i = 0; opts->include_pending && i < s->n_props; i++) {
        const struct gprop *pr = &s->props[i];
        if (!ref_usable(g, s, pr, touched, n_touched, now))
            continue;
        struct mls_proposal_or_ref *por = &c->proposals[c->n_proposals++];
        memset(por, 0, sizeof(*por));
        por->type = MLS_POR_REFERENCE;
        if ((rc = mls_bytes_set(&por->reference, pr->ref, MLS_REF_LEN)) != 0)
            goto out;
        if (pr->p.proposal_type == MLS_PROPOSAL_REMOVE)
            touched[n_touched++] = pr->p.remove;
        if (pr->p.proposal_type == MLS_PROPOSAL_UPDATE)
            touched[n_touched++] = pr->sender;
    }
    /* External PSK values given here are registered for the key schedule. */
    for (size_t i = 0; i < opts->n_psks; i++)
        if ((rc = mls_group_add_external_psk(g, &opts->psks[i])) != 0)
            goto out;

    if ((rc = gplan_resolve(s, c, s->own_leaf, &pl)) != 0 ||
        (rc = gplan_build(g, s, &pl, s->own_leaf, now)) != 0)
        goto out;
    if ((rc = gstate_next(g->flags, s, &pl, &ns)) != 0)
        goto out;
    has_path = pl.path_required || opts->force_path;
    if (has_path) {
        struct mls_leaf_node old;
        const struct mls_leaf_node *cur_leaf = mls_tree_leaf(ns->tree, ns->own_leaf);
        memset(&old, 0, sizeof(old));
        if (!cur_leaf) {
            rc = ERR_BADSTATE;
            goto out;
        }
        if ((rc = mls_leaf_node_copy(&old, cur_leaf)) != 0)
            goto out;
        rc = mls_treekem_path_generate(ns->tree, ns->own_leaf, &old, s->sec->sig_priv,
                                       s->gc.group_id.data, s->gc.group_id.len, NULL,
                                       &ns->sec->tk, &u);
        mls_leaf_node_free(&old);
        if (rc != 0)
            goto out;
        if ((rc = mls_tree_node_hash(ns->tree, mls_tree_root(ns->tree), th)) != 0 ||
            (rc = mls_bytes_set(&ns->gc.tree_hash, th, HLEN)) != 0 ||
            (rc = encode_gc(&ns->gc, &pgc, &pgc_len)) != 0)
            goto out;
        if ((rc = mls_treekem_path_encrypt(ns->tree, &u, pl.added, pl.n_added, pgc, pgc_len)) != 0)
            goto out;
        memcpy(commit_secret, u.commit_secret, HLEN);
        c->has_path = true;
        c->path = *u.path;
        memset(u.path, 0, sizeof(*u.path));
    } else {
        if ((rc = mls_tree_node_hash(ns->tree, mls_tree_root(ns->tree), th)) != 0 ||
            (rc = mls_bytes_set(&ns->gc.tree_hash, th, HLEN)) != 0)
            goto out;
    }
    mls_treekem_priv_prune(&ns->sec->tk, ns->tree);
    if ((rc = gplan_psk_secret(g, s, &pl, psk_secret)) != 0)
        goto out;

    /* Sign, then the transcript and key schedule give the tag. */
    if ((rc = mls_framing_sign(MLS_WF_PUBLIC_MESSAGE, &fc, s->gc_enc, s->gc_len, s->sec->sig_priv,
                               &auth.signature)) != 0)
        goto out;
    if ((rc = confirmed_hash(s, MLS_WF_PUBLIC_MESSAGE, &fc, &auth.signature, th)) != 0 ||
        (rc = mls_bytes_set(&ns->gc.confirmed_transcript_hash, th, HLEN)) != 0 ||
        (rc = gstate_set_gc(ns)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_secret(s->ks, MLS_KS_INIT, init)) != 0 ||
        (rc = mls_ks_epoch_new(init, commit_secret, psk_secret, ns->gc_enc, ns->gc_len,
                               &ns->ks)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_confirmation_tag(ns->ks, th, tag)) != 0 ||
        (rc = mls_bytes_set(&auth.confirmation_tag, tag, sizeof(tag))) != 0)
        goto out;
    memcpy(ns->ctag, tag, sizeof(tag));
    if ((rc = mls_rules_interim_hash(th, HLEN, tag, sizeof(tag), ns->interim)) != 0)
        goto out;
    if ((rc = build_public(s, &fc, &auth, &out->commit, &out->commit_len)) != 0)
        goto out;
    if (pl.n_added &&
        (rc = make_welcome(ns, &pl, &u, has_path, opts->tree_in_welcome, psk_secret, out)) != 0)
        goto out;
    if ((rc = gstate_finish_epoch(ns)) != 0)
        goto out;
    if ((rc = make_group_info(ns, true, ns->ctag, &gim.group_info)) != 0 ||
        (rc = encode_message(MLS_WF_GROUP_INFO, &gim, &out->group_info, &out->group_info_len)) != 0)
        goto out;
    g->pend_commit = malloc(out->commit_len);
    if (!g->pend_commit) {
        rc = ERR_NOMEM;
        goto out;
    }
    memcpy(g->pend_commit, out->commit, out->commit_len);
    g->pend_commit_len = out->commit_len;
    if (pl.reinit)
        ns->active = false; /* the group ends once this commit is confirmed */
    g->pend = ns;
    ns = NULL;
out:
    if (rc != 0)
        mls_group_commit_out_reset(out);
    crypto_wipe(commit_secret, sizeof(commit_secret));
    crypto_wipe(psk_secret, sizeof(psk_secret));
    crypto_wipe(init, sizeof(init));
    free(pgc);
    free(touched);
    mls_group_info_free(&gim.group_info);
    mls_treekem_update_reset(&u);
    gplan_free(&pl);
    gstate_free(ns);
    mls_framed_content_free(&fc);
    mls_framed_content_auth_data_free(&auth);
    return rc;
}

int mls_group_commit_pending(struct mls_group *g, uint64_t now, struct mls_group_commit_out *out)
{
    struct mls_group_commit_opts o;
    memset(&o, 0, sizeof(o));
    memset(out, 0, sizeof(*out));
    if (g->cur->n_props == 0)
        return ERR_NOT_FOUND;
    o.include_pending = true;
    o.force_path = true;
    /* Sammen's delivery service hands joiners no tree out of band: a device
     * added by a pending (e.g. the server's external) Add must find the
     * ratchet tree in its Welcome. */
    o.tree_in_welcome = true;
    return mls_group_commit_create(g, &o, now, out);
}
