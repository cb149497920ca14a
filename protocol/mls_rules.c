/*
 * mls_rules.c: checks shared by members and the follower (see
 * mls_rules.h). Each function is a transcription of one RFC 9420 rule,
 * cited by section.
 */
#include "mls_rules.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_keypackage.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "tls.h"

bool mls_rules_u16_in(const struct mls_u16_list *l, uint16_t v)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return true;
    return false;
}

/* Extension types 1-5 and proposal types 1-7 are RFC 9420's own. */
static bool default_extension(uint16_t t)
{
    return t >= 1 && t <= 5;
}

static bool default_proposal(uint16_t t)
{
    return t >= 1 && t <= 7;
}

/* Does ln meet required_capabilities r (§11.1)? */
static bool leaf_supports(const struct mls_leaf_node *ln, const struct mls_required_capabilities *r)
{
    for (size_t i = 0; i < r->extension_types.n; i++) {
        uint16_t t = r->extension_types.v[i];
        if (!default_extension(t) && !mls_rules_u16_in(&ln->capabilities.extensions, t))
            return false;
    }
    for (size_t i = 0; i < r->proposal_types.n; i++) {
        uint16_t t = r->proposal_types.v[i];
        if (!default_proposal(t) && !mls_rules_u16_in(&ln->capabilities.proposals, t))
            return false;
    }
    for (size_t i = 0; i < r->credential_types.n; i++)
        if (!mls_rules_u16_in(&ln->capabilities.credentials, r->credential_types.v[i]))
            return false;
    return true;
}

int mls_rules_tree_supports(const struct mls_tree *t, const struct mls_extension_list *ext)
{
    struct mls_required_capabilities req = {0};
    int rc = mls_extension_list_check_unique(ext);
    if (rc != 0)
        return ERR_INVALID;
    rc = mls_ext_required_capabilities(ext, &req);
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    else if (rc != 0)
        return rc == ERR_NOMEM ? rc : ERR_INVALID;
    for (uint32_t l = 0; l < mls_tree_leaf_count(t) && rc == 0; l++) {
        const struct mls_leaf_node *ln = mls_tree_leaf(t, l);
        if (!ln)
            continue;
        if (!leaf_supports(ln, &req))
            rc = ERR_INVALID;
        for (size_t i = 0; i < ext->n && rc == 0; i++) {
            uint16_t type = ext->v[i].extension_type;
            if (!default_extension(type) && !mls_rules_u16_in(&ln->capabilities.extensions, type))
                rc = ERR_INVALID;
        }
    }
    mls_required_capabilities_free(&req);
    return rc;
}

static int encode_psk_id(const struct mls_pre_shared_key_id *id, uint8_t **b, size_t *n)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_pre_shared_key_id_encode(&w, id);
    return tls_writer_take(&w, b, n);
}

int mls_rules_psks_distinct(const struct mls_pre_shared_key_id *const *ids, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t *a = NULL;
        size_t an = 0;
        rc = encode_psk_id(ids[i], &a, &an);
        for (size_t k = i + 1; k < n && rc == 0; k++) {
            uint8_t *b = NULL;
            size_t bn = 0;
            rc = encode_psk_id(ids[k], &b, &bn);
            if (rc == 0 && an == bn && (an == 0 || memcmp(a, b, an) == 0))
                rc = ERR_INVALID;
            free(b);
        }
        free(a);
    }
    return rc;
}

int mls_rules_proposal(const struct mls_tree *tree, const struct mls_bytes *group_id,
                       const struct mls_proposal *p, uint8_t sender_type, uint32_t sender,
                       uint64_t now)
{
    if (sender_type == MLS_SENDER_EXTERNAL &&
        p->proposal_type != MLS_PROPOSAL_ADD && p->proposal_type != MLS_PROPOSAL_REMOVE &&
        p->proposal_type != MLS_PROPOSAL_PSK && p->proposal_type != MLS_PROPOSAL_REINIT &&
        p->proposal_type != MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS)
        return ERR_INVALID;
    if (sender_type == MLS_SENDER_NEW_MEMBER_PROPOSAL && p->proposal_type != MLS_PROPOSAL_ADD)
        return ERR_INVALID;
    switch (p->proposal_type) {
    case MLS_PROPOSAL_ADD:
        return mls_keypackage_validate(&p->add, now);
    case MLS_PROPOSAL_UPDATE:
        if (sender_type != MLS_SENDER_MEMBER)
            return ERR_INVALID;
        return mls_tree_validate_leaf(tree, &p->update, MLS_LEAF_SOURCE_UPDATE, sender,
                                      group_id->data, group_id->len);
    case MLS_PROPOSAL_REMOVE:
        return mls_tree_leaf(tree, p->remove) ? 0 : ERR_INVALID;
    case MLS_PROPOSAL_PSK:
        if (p->psk.psk_nonce.len != CRYPTO_HASH_LEN)
            return ERR_INVALID;
        if (p->psk.psktype == MLS_PSK_RESUMPTION && p->psk.usage != MLS_RESUMPTION_APPLICATION)
            return ERR_INVALID;
        return 0;
    case MLS_PROPOSAL_EXTERNAL_INIT:
        /* Only inside an external commit, by value (§12.4.3.2). */
        if (sender_type != MLS_SENDER_NEW_MEMBER_COMMIT)
            return ERR_INVALID;
        return p->external_init.len == CRYPTO_KEM_ENC_LEN ? 0 : ERR_INVALID;
    case MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS:
        return mls_rules_tree_supports(tree, &p->gce);
    default:
        return 0;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int mls_rules_commit_init(struct mls_rules_commit *c, const struct mls_tree *tree,
                          uint16_t version, uint32_t committer, bool external,
                          const struct mls_leaf_node *joiner, size_t n_items)
{
    memset(c, 0, sizeof(*c));
    c->tree = tree;
    c->version = version;
    c->committer = committer;
    c->external = external;
    c->joiner = joiner;
    c->n_items = n_items;
    /* An empty commit and an external one always carry a path (§12.4). */
    c->path_required = n_items == 0 || external;
    c->leaves = calloc(n_items ? n_items : 1, sizeof(*c->leaves));
    return c->leaves ? 0 : ERR_NOMEM;
}

/* §12.4.3.2: an external commit may remove only the joiner's old leaf,
 * recognised by the same credential. */
static bool same_credential(const struct mls_leaf_node *old, const struct mls_leaf_node *joiner)
{
    const struct mls_credential *a = &old->credential, *b = &joiner->credential;
    return a->credential_type == b->credential_type && a->identity.len == b->identity.len &&
           (a->identity.len == 0 || memcmp(a->identity.data, b->identity.data, a->identity.len) == 0);
}

int mls_rules_commit_item(struct mls_rules_commit *c, const struct mls_proposal *p,
                          uint8_t sender_type, uint32_t sender, bool by_ref)
{
    /* External commits (§12.4.3.2): ExternalInit, at most one Remove (the
     * joiner's old leaf, "resync") and PreSharedKey only. */
    if (c->external && p->proposal_type != MLS_PROPOSAL_EXTERNAL_INIT &&
        p->proposal_type != MLS_PROPOSAL_REMOVE && p->proposal_type != MLS_PROPOSAL_PSK)
        return ERR_INVALID;
    switch (p->proposal_type) {
    case MLS_PROPOSAL_ADD:
        break;
    case MLS_PROPOSAL_PSK:
        if (c->n_psk < MLS_RULES_MAX_PSKS)
            c->psks[c->n_psk] = &p->psk;
        c->n_psk++;
        break;
    case MLS_PROPOSAL_UPDATE:
        /* By reference only, by a member, never the committer's own (§12.2). */
        if (!by_ref || sender_type != MLS_SENDER_MEMBER || sender == c->committer)
            return ERR_INVALID;
        c->leaves[c->n_leaves++] = sender;
        c->path_required = true;
        break;
    case MLS_PROPOSAL_REMOVE:
        if (p->remove == c->committer)
            return ERR_INVALID;
        if (c->external) {
            const struct mls_leaf_node *old = mls_tree_leaf(c->tree, p->remove);
            if (!old || !c->joiner || !same_credential(old, c->joiner))
                return ERR_INVALID;
            c->n_remove++;
        }
        c->leaves[c->n_leaves++] = p->remove;
        c->path_required = true;
        break;
    case MLS_PROPOSAL_REINIT:
        /* Ends the group (§12.1.5); never back to an older version. */
        if (p->reinit.version < c->version)
            return ERR_INVALID;
        c->reinit = true;
        break;
    case MLS_PROPOSAL_EXTERNAL_INIT:
        if (!c->external)
            return ERR_INVALID;
        c->n_init++;
        break;
    case MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS:
        c->n_gce++;
        c->path_required = true;
        break;
    default:
        /* A type outside RFC 9420 (GREASE included): every member must
         * list it (§13.5); committing it needs a path. */
        for (uint32_t l = 0; l < mls_tree_leaf_count(c->tree); l++) {
            const struct mls_leaf_node *ln = mls_tree_leaf(c->tree, l);
            if (ln && !mls_rules_u16_in(&ln->capabilities.proposals, p->proposal_type))
                return ERR_INVALID;
        }
        c->path_required = true;
        break;
    }
    return 0;
}

int mls_rules_commit_end(struct mls_rules_commit *c)
{
    if (c->n_gce > 1 || (c->external && (c->n_init != 1 || c->n_remove > 1)) ||
        (c->reinit && c->n_items != 1))
        return ERR_INVALID;
    /* At most one Update or Remove per leaf. */
    qsort(c->leaves, c->n_leaves, sizeof(*c->leaves), cmp_u32);
    for (size_t i = 1; i < c->n_leaves; i++)
        if (c->leaves[i] == c->leaves[i - 1])
            return ERR_INVALID;
    if (c->n_psk > MLS_RULES_MAX_PSKS)
        return ERR_LIMIT;
    return mls_rules_psks_distinct(c->psks, c->n_psk);
}

void mls_rules_commit_reset(struct mls_rules_commit *c)
{
    free(c->leaves);
    memset(c, 0, sizeof(*c));
}

int mls_rules_group_info_signature(const struct mls_group_info *gi, const uint8_t *signer_pub,
                                   size_t signer_pub_len)
{
    struct tls_writer w;
    int rc;
    if (signer_pub_len != CRYPTO_SIGN_PUB_LEN)
        return ERR_CRYPTO;
    tls_writer_init(&w, 0);
    mls_group_info_encode_tbs(&w, gi);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_verify_with_label(signer_pub, "GroupInfoTBS", w.buf, w.len,
                                      gi->signature.data, gi->signature.len);
    tls_writer_reset(&w);
    return rc;
}

int mls_rules_interim_hash(const uint8_t *confirmed, size_t clen, const uint8_t *tag,
                           size_t taglen, uint8_t out[CRYPTO_HASH_LEN])
{
    struct tls_writer w;
    int rc;
    tls_writer_init(&w, 0);
    tls_put_opaque(&w, tag, taglen);
    rc = tls_writer_error(&w);
    if (rc == 0)
        crypto_sha256_2(confirmed, clen, w.buf, w.len, out);
    tls_writer_reset(&w);
    return rc;
}
