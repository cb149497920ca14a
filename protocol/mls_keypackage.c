/*
 * mls_keypackage.c: KeyPackage validation (RFC 9420 §10.1) and the RefHash
 * references of §5.2. See mls_keypackage.h.
 *
 * KeyPackageTBS (§10):
 * | field        | type                          |
 * |--------------|-------------------------------|
 * | version      | uint16 (mls10 = 1)            |
 * | cipher_suite | uint16                        |
 * | init_key     | HPKEPublicKey (opaque<V>)     |
 * | leaf_node    | LeafNode (source key_package) |
 * | extensions   | Extension extensions<V>       |
 * followed in KeyPackage by opaque signature<V>.
 */
#include "mls_keypackage.h"

#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "tls.h"

int mls_keypackage_validate(const struct mls_key_package *kp, uint64_t now)
{
    const struct mls_leaf_node *ln = &kp->leaf_node;
    struct tls_writer w;
    int rc;

    if (kp->version != MLS_VERSION_MLS10 || kp->cipher_suite != MLS_TREE_CIPHER_SUITE)
        return ERR_UNSUPPORTED;
    if (kp->init_key.len != CRYPTO_KEM_PUB_LEN)
        return ERR_INVALID;
    /* §10.1: init_key and encryption_key MUST differ (public values, so an
     * ordinary comparison is fine). */
    if (ln->encryption_key.len == kp->init_key.len &&
        memcmp(ln->encryption_key.data, kp->init_key.data, kp->init_key.len) == 0)
        return ERR_INVALID;
    if (mls_extension_list_check_unique(&kp->extensions) != 0)
        return ERR_INVALID;
    rc = mls_tree_leaf_node_check(ln, MLS_LEAF_SOURCE_KEY_PACKAGE, 0, NULL, 0);
    if (rc != 0)
        return rc;
    tls_writer_init(&w, 0);
    mls_key_package_encode_tbs(&w, kp);
    rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_verify_with_label(ln->signature_key.data, "KeyPackageTBS", w.buf, w.len,
                                      kp->signature.data, kp->signature.len);
    tls_writer_reset(&w);
    if (rc != 0)
        return rc;
    /* Lifetime last: an expired but otherwise good package is ERR_EXPIRED. */
    if (now < ln->lifetime.not_before || now > ln->lifetime.not_after)
        return ERR_EXPIRED;
    return 0;
}

int mls_keypackage_ref(const struct mls_key_package *kp, uint8_t out[MLS_REF_LEN])
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_key_package_encode(&w, kp);
    int rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_make_keypackage_ref(w.buf, w.len, out);
    tls_writer_reset(&w);
    return rc;
}

int mls_proposal_ref(uint16_t wire_format, const struct mls_framed_content *content,
                     const struct mls_framed_content_auth_data *auth, uint8_t out[MLS_REF_LEN])
{
    if (content->content_type != MLS_CONTENT_PROPOSAL)
        return ERR_INVALID;
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_authenticated_content_encode(&w, wire_format, content, auth);
    int rc = tls_writer_error(&w);
    if (rc == 0)
        rc = crypto_make_proposal_ref(w.buf, w.len, out);
    tls_writer_reset(&w);
    return rc;
}
