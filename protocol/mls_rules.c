/*
 * mls_rules.c: checks shared by members and the follower (see
 * mls_rules.h). Each function is a transcription of one RFC 9420 rule,
 * cited by section.
 */
#include "mls_rules.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
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
