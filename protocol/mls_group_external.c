/*
 * mls_group_external.c: joining a group by external commit (RFC 9420
 * §12.4.3.2) from its GroupInfo, without a Welcome: for a device that lost
 * its state and re-syncs, or a group that allows open joins.
 *
 * Steps (mls_group_join_external):
 *  1. GroupInfo: signature by its signer (from the validated tree, whose
 *     hash must match the GroupContext), external_pub extension;
 *  2. ExternalInit: kem_output and init_secret from HPKE to external_pub
 *     (mls_ks_external_init_join, §8.3); optionally a Remove of our old leaf
 *     (same identity: "resync");
 *  3. our LeafNode goes into the leftmost blank leaf (after the Remove),
 *     then an UpdatePath from there, encrypted to everyone under the
 *     provisional GroupContext;
 *  4. the commit is signed as new_member_commit (GroupContext included, no
 *     membership tag); transcript hashes from the GroupInfo's confirmed hash
 *     and confirmation tag; key schedule from init_secret and the path's
 *     commit_secret; our confirmation tag.
 * The result is a group at the new epoch and the commit to send. If the
 * delivery service refuses it, the caller frees the group.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_framing.h"
#include "mls_group.h"
#include "mls_group_int.h"
#include "mls_kp.h"
#include "mls_treemath.h"
#include "tls.h"

/* Our old leaf: same credential identity as ln. UINT32_MAX when none. */
static uint32_t find_old_leaf(const struct mls_tree *t, const struct mls_leaf_node *ln)
{
    for (uint32_t l = 0; l < mls_tree_leaf_count(t); l++) {
        const struct mls_leaf_node *o = mls_tree_leaf(t, l);
        if (o && o->credential.credential_type == ln->credential.credential_type &&
            o->credential.identity.len == ln->credential.identity.len &&
            memcmp(o->credential.identity.data, ln->credential.identity.data,
                   ln->credential.identity.len) == 0)
            return l;
    }
    return UINT32_MAX;
}

int mls_group_join_external(const uint8_t *group_info, size_t group_info_len, const uint8_t *tree,
                            size_t tree_len, const struct mls_kp *kp, bool resync, uint64_t now,
                            unsigned flags, struct mls_group **out, uint8_t **commit,
                            size_t *commit_len)
{
    struct mls_message m;
    struct mls_group *g = NULL;
    struct gstate *old = NULL, *ns = NULL;
    struct mls_framed_content fc;
    struct mls_framed_content_auth_data auth;
    struct mls_treekem_update u;
    struct mls_bytes ext_pub = {0};
    const struct mls_leaf_node *signer;
    uint8_t th[HLEN], init[HLEN], kem[CRYPTO_KEM_ENC_LEN], zero[HLEN] = {0};
    uint8_t tag[CRYPTO_MAC_LEN], *pgc = NULL;
    size_t pgc_len = 0;
    uint32_t me = 0, old_leaf = UINT32_MAX;
    int rc;

    (void)now;
    *out = NULL;
    *commit = NULL;
    *commit_len = 0;
    memset(&fc, 0, sizeof(fc));
    memset(&auth, 0, sizeof(auth));
    memset(&u, 0, sizeof(u));
    if ((rc = mls_message_parse(group_info, group_info_len, &m)) != 0)
        return rc;
    struct mls_group_info *gi = &m.group_info;
    if (m.wire_format != MLS_WF_GROUP_INFO) {
        rc = ERR_INVALID;
        goto out;
    }
    if (gi->group_context.version != MLS_VERSION_MLS10 || gi->group_context.cipher_suite != 3) {
        rc = ERR_UNSUPPORTED;
        goto out;
    }
    /* 1. The public state we join from: tree, hash, signature. */
    if (!(old = gstate_new(flags, NULL))) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (tree) {
        rc = mls_tree_decode(tree, tree_len, &old->tree);
    } else {
        const struct mls_extension *e = mls_ext_find(&gi->extensions, MLS_EXT_RATCHET_TREE);
        rc = e ? mls_tree_decode(e->extension_data.data, e->extension_data.len, &old->tree)
               : ERR_NOT_FOUND;
    }
    if (rc != 0)
        goto out;
    if ((rc = mls_extension_list_check_unique(&gi->extensions)) != 0 ||
        (rc = mls_tree_validate(old->tree, gi->group_context.group_id.data,
                                gi->group_context.group_id.len)) != 0 ||
        (rc = mls_tree_node_hash(old->tree, mls_tree_root(old->tree), th)) != 0)
        goto out;
    if (gi->group_context.tree_hash.len != HLEN || memcmp(th, gi->group_context.tree_hash.data,
                                                          HLEN) != 0 ||
        gi->confirmation_tag.len != CRYPTO_MAC_LEN) {
        rc = ERR_INVALID;
        goto out;
    }
    if (!(signer = mls_tree_leaf(old->tree, gi->signer)) ||
        signer->signature_key.len != CRYPTO_SIGN_PUB_LEN) {
        rc = ERR_INVALID;
        goto out;
    }
    if ((rc = mls_rules_group_info_signature(gi, signer->signature_key.data,
                                             signer->signature_key.len)) != 0)
        goto out;
    if ((rc = mls_ext_external_pub(&gi->extensions, &ext_pub)) != 0) {
        rc = rc == ERR_NOT_FOUND ? ERR_UNSUPPORTED : rc;
        goto out;
    }
    if (ext_pub.len != CRYPTO_KEM_PUB_LEN) {
        rc = ERR_INVALID;
        goto out;
    }
    if ((rc = mls_group_context_copy(&old->gc, &gi->group_context)) != 0 ||
        (rc = gstate_set_gc(old)) != 0)
        goto out;
    if ((rc = mls_rules_interim_hash(old->gc.confirmed_transcript_hash.data,
                                     old->gc.confirmed_transcript_hash.len,
                                     gi->confirmation_tag.data, gi->confirmation_tag.len,
                                     old->interim)) != 0)
        goto out;

    /* 2. Proposals: ExternalInit (+ Remove of our old leaf). */
    if ((rc = mls_ks_external_init_join(ext_pub.data, kem, init)) != 0)
        goto out;
    fc.epoch = old->gc.epoch;
    fc.sender.sender_type = MLS_SENDER_NEW_MEMBER_COMMIT;
    fc.content_type = MLS_CONTENT_COMMIT;
    if ((rc = mls_bytes_set(&fc.group_id, old->gc.group_id.data, old->gc.group_id.len)) != 0)
        goto out;
    if (resync)
        old_leaf = find_old_leaf(old->tree, &mls_kp_key_package(kp)->leaf_node);
    fc.commit.proposals = calloc(2, sizeof(*fc.commit.proposals));
    if (!fc.commit.proposals) {
        rc = ERR_NOMEM;
        goto out;
    }
    {
        struct mls_proposal_or_ref *por = &fc.commit.proposals[fc.commit.n_proposals++];
        por->type = MLS_POR_PROPOSAL;
        por->proposal.proposal_type = MLS_PROPOSAL_EXTERNAL_INIT;
        if ((rc = mls_bytes_set(&por->proposal.external_init, kem, sizeof(kem))) != 0)
            goto out;
        if (old_leaf != UINT32_MAX) {
            por = &fc.commit.proposals[fc.commit.n_proposals++];
            por->type = MLS_POR_PROPOSAL;
            por->proposal.proposal_type = MLS_PROPOSAL_REMOVE;
            por->proposal.remove = old_leaf;
        }
    }

    /* 3. The new tree: Remove, our leaf, our path. */
    if (!(ns = gstate_new(flags, NULL))) {
        rc = ERR_NOMEM;
        goto out;
    }
    if ((rc = mls_tree_clone(old->tree, &ns->tree)) != 0)
        goto out;
    if (old_leaf != UINT32_MAX && (rc = mls_tree_remove(ns->tree, old_leaf)) != 0)
        goto out;
    if ((rc = mls_tree_add(ns->tree, &mls_kp_key_package(kp)->leaf_node, &me)) != 0)
        goto out;
    ns->own_leaf = me;
    memcpy(ns->sec->sig_priv, mls_kp_sig_priv(kp), CRYPTO_SIGN_PRIV_LEN);
    mls_treekem_priv_init(&ns->sec->tk, me, mls_kp_enc_priv(kp));
    if ((rc = mls_group_context_copy(&ns->gc, &old->gc)) != 0)
        goto out;
    ns->gc.epoch = old->gc.epoch + 1;
    rc = mls_treekem_path_generate(ns->tree, me, &mls_kp_key_package(kp)->leaf_node,
                                   ns->sec->sig_priv, old->gc.group_id.data, old->gc.group_id.len,
                                   NULL, &ns->sec->tk, &u);
    if (rc != 0)
        goto out;
    if ((rc = mls_rules_tree_supports(ns->tree, &ns->gc.extensions)) != 0)
        goto out;
    if ((rc = mls_tree_node_hash(ns->tree, mls_tree_root(ns->tree), th)) != 0 ||
        (rc = mls_bytes_set(&ns->gc.tree_hash, th, HLEN)) != 0 ||
        (rc = encode_gc(&ns->gc, &pgc, &pgc_len)) != 0 ||
        (rc = mls_treekem_path_encrypt(ns->tree, &u, NULL, 0, pgc, pgc_len)) != 0)
        goto out;
    fc.commit.has_path = true;
    fc.commit.path = *u.path;
    memset(u.path, 0, sizeof(*u.path));
    mls_treekem_priv_prune(&ns->sec->tk, ns->tree);

    /* 4. Sign, transcript, key schedule, tag. */
    if ((rc = mls_framing_sign(MLS_WF_PUBLIC_MESSAGE, &fc, old->gc_enc, old->gc_len,
                               ns->sec->sig_priv, &auth.signature)) != 0)
        goto out;
    if ((rc = confirmed_hash(old, MLS_WF_PUBLIC_MESSAGE, &fc, &auth.signature, th)) != 0 ||
        (rc = mls_bytes_set(&ns->gc.confirmed_transcript_hash, th, HLEN)) != 0 ||
        (rc = gstate_set_gc(ns)) != 0)
        goto out;
    if ((rc = mls_ks_epoch_new(init, u.commit_secret, zero, ns->gc_enc, ns->gc_len, &ns->ks)) != 0 ||
        (rc = mls_ks_epoch_confirmation_tag(ns->ks, th, tag)) != 0 ||
        (rc = mls_bytes_set(&auth.confirmation_tag, tag, sizeof(tag))) != 0)
        goto out;
    memcpy(ns->ctag, tag, sizeof(tag));
    if ((rc = mls_rules_interim_hash(th, HLEN, tag, sizeof(tag), ns->interim)) != 0 ||
        (rc = gstate_finish_epoch(ns)) != 0)
        goto out;
    {
        struct mls_public_message pm;
        memset(&pm, 0, sizeof(pm));
        rc = mls_framing_public_build(&fc, &auth, old->gc_enc, old->gc_len, NULL, 0, &pm);
        if (rc == 0)
            rc = encode_public_message(&pm, commit, commit_len);
        mls_public_message_free(&pm);
        if (rc != 0)
            goto out;
    }
    g = calloc(1, sizeof(*g));
    if (!g) {
        rc = ERR_NOMEM;
        free(*commit);
        *commit = NULL;
        *commit_len = 0;
        goto out;
    }
    g->flags = flags;
    g->padding = MLS_GROUP_PAD_BLOCK;
    g->cur = ns;
    ns = NULL;
    *out = g;
out:
    crypto_wipe(init, sizeof(init));
    free(pgc);
    mls_bytes_free(&ext_pub);
    mls_treekem_update_reset(&u);
    mls_framed_content_free(&fc);
    mls_framed_content_auth_data_free(&auth);
    gstate_free(old);
    gstate_free(ns);
    mls_message_free(&m);
    return rc;
}
