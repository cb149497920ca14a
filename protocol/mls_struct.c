/*
 * mls_struct.c: strict decoders, canonical encoders and free functions for
 * the RFC 9420 wire structures declared in mls_struct.h.
 *
 * Where to start: mls_message_decode() at the bottom; it walks down through
 * the framing, proposal, commit, tree and key package types above it, in
 * the reverse of the order they appear here.
 *
 * Every decoder has the same shape: zero *out, read each field with TRY()
 * (which jumps to `out` on the first error), and on error free what was
 * built so *out is left zeroed. Vectors of structures are decoded by the
 * LIST_FUNCS() generated helpers, which refuse more than MLS_MAX_ITEMS
 * items and grow their array only as items are actually read (each item
 * consumes at least one input byte, so a short input cannot make us
 * allocate much).
 */
#include "mls_struct.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define TRY(expr)                                                              \
    do {                                                                       \
        if ((rc = (expr)) != 0)                                                \
            goto out;                                                          \
    } while (0)

/* Marks the writer as failed (encoding a value we cannot represent). */
static void writer_fail(struct tls_writer *w, int err)
{
    if (!w->err)
        w->err = err;
}

/* Grows *v (of *cap items of `size` bytes) so index n fits. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    if (n >= MLS_MAX_ITEMS)
        return ERR_TOO_BIG;
    size_t nc = *cap ? *cap * 2 : 4;
    if (nc > MLS_MAX_ITEMS)
        nc = MLS_MAX_ITEMS;
    void *nv = realloc(*v, nc * size);
    if (!nv)
        return ERR_NOMEM;
    *v = nv;
    *cap = nc;
    return 0;
}

/*
 * LIST_FUNCS(T): static helpers for `struct mls_T items<V>`:
 *   T_list_decode(r, &items, &n), T_list_encode(w, items, n),
 *   T_list_free(&items, &n).
 */
#define LIST_FUNCS(T)                                                          \
    static void T##_list_free(struct mls_##T **items, size_t *n)               \
    {                                                                          \
        if (*items) {                                                          \
            for (size_t i = 0; i < *n; i++)                                    \
                mls_##T##_free(&(*items)[i]);                                  \
            free(*items);                                                      \
        }                                                                      \
        *items = NULL;                                                         \
        *n = 0;                                                                \
    }                                                                          \
    static int T##_list_decode(struct tls_reader *r, struct mls_##T **items,   \
                               size_t *n)                                      \
    {                                                                          \
        struct tls_reader sub;                                                 \
        size_t cap = 0;                                                        \
        int rc;                                                                \
        *items = NULL;                                                         \
        *n = 0;                                                                \
        TRY(tls_read_vector(r, &sub));                                         \
        while (!tls_reader_done(&sub)) {                                       \
            void *p = *items;                                                  \
            TRY(grow(&p, &cap, *n, sizeof(struct mls_##T)));                   \
            *items = p;                                                        \
            TRY(mls_##T##_decode(&sub, &(*items)[*n]));                        \
            (*n)++;                                                            \
        }                                                                      \
    out:                                                                       \
        if (rc)                                                                \
            T##_list_free(items, n);                                           \
        return rc;                                                             \
    }                                                                          \
    static void T##_list_encode(struct tls_writer *w,                          \
                                const struct mls_##T *items, size_t n)         \
    {                                                                          \
        size_t m = tls_vector_begin(w);                                        \
        for (size_t i = 0; i < n; i++)                                         \
            mls_##T##_encode(w, &items[i]);                                    \
        tls_vector_end(w, m);                                                  \
    }

/* ---- bytes and integer lists ------------------------------------------- */

int mls_bytes_set(struct mls_bytes *b, const uint8_t *p, size_t len)
{
    uint8_t *d = NULL;
    if (len) {
        d = malloc(len);
        if (!d)
            return ERR_NOMEM;
        memcpy(d, p, len);
    }
    mls_bytes_free(b);
    b->data = d;
    b->len = len;
    return 0;
}

void mls_bytes_free(struct mls_bytes *b)
{
    if (!b)
        return;
    if (b->data) {
        sodium_memzero(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}

int mls_bytes_decode(struct tls_reader *r, struct mls_bytes *out)
{
    const uint8_t *p;
    size_t n;
    memset(out, 0, sizeof(*out));
    int rc = tls_read_opaque(r, &p, &n);
    if (rc)
        return rc;
    return mls_bytes_set(out, p, n);
}

void mls_bytes_encode(struct tls_writer *w, const struct mls_bytes *b)
{
    tls_put_opaque(w, b->data, b->len);
}

LIST_FUNCS(bytes)

int mls_u16_list_decode(struct tls_reader *r, struct mls_u16_list *out)
{
    struct tls_reader sub;
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_vector(r, &sub));
    size_t len = tls_reader_remaining(&sub);
    if (len % 2) {
        rc = ERR_MALFORMED;
        goto out;
    }
    if (len / 2 > MLS_MAX_ITEMS) {
        rc = ERR_TOO_BIG;
        goto out;
    }
    if (len) {
        out->v = malloc(len); /* len/2 items of 2 bytes */
        if (!out->v) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    while (!tls_reader_done(&sub))
        TRY(tls_read_u16(&sub, &out->v[out->n++]));
out:
    if (rc)
        mls_u16_list_free(out);
    return rc;
}

void mls_u16_list_encode(struct tls_writer *w, const struct mls_u16_list *in)
{
    size_t m = tls_vector_begin(w);
    for (size_t i = 0; i < in->n; i++)
        tls_put_u16(w, in->v[i]);
    tls_vector_end(w, m);
}

void mls_u16_list_free(struct mls_u16_list *x)
{
    if (!x)
        return;
    free(x->v);
    x->v = NULL;
    x->n = 0;
}

int mls_u32_list_decode(struct tls_reader *r, struct mls_u32_list *out)
{
    struct tls_reader sub;
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_vector(r, &sub));
    size_t len = tls_reader_remaining(&sub);
    if (len % 4) {
        rc = ERR_MALFORMED;
        goto out;
    }
    if (len / 4 > MLS_MAX_ITEMS) {
        rc = ERR_TOO_BIG;
        goto out;
    }
    if (len) {
        out->v = malloc(len); /* len/4 items of 4 bytes */
        if (!out->v) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    while (!tls_reader_done(&sub))
        TRY(tls_read_u32(&sub, &out->v[out->n++]));
out:
    if (rc)
        mls_u32_list_free(out);
    return rc;
}

void mls_u32_list_encode(struct tls_writer *w, const struct mls_u32_list *in)
{
    size_t m = tls_vector_begin(w);
    for (size_t i = 0; i < in->n; i++)
        tls_put_u32(w, in->v[i]);
    tls_vector_end(w, m);
}

void mls_u32_list_free(struct mls_u32_list *x)
{
    if (!x)
        return;
    free(x->v);
    x->v = NULL;
    x->n = 0;
}

/* ---- §5.3 Credential ----------------------------------------------------
 * | credential_type u16 | basic: identity<V>                          |
 * |                     | x509:  Certificate certificates<V>          |
 * |                     | other: opaque<V> (OpenMLS/mls-rs convention)|
 */
int mls_credential_decode(struct tls_reader *r, struct mls_credential *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u16(r, &out->credential_type));
    switch (out->credential_type) {
    case MLS_CREDENTIAL_BASIC:
        TRY(mls_bytes_decode(r, &out->identity));
        break;
    case MLS_CREDENTIAL_X509:
        TRY(bytes_list_decode(r, &out->certificates, &out->n_certificates));
        break;
    default:
        TRY(mls_bytes_decode(r, &out->other));
        break;
    }
out:
    if (rc)
        mls_credential_free(out);
    return rc;
}

void mls_credential_encode(struct tls_writer *w, const struct mls_credential *in)
{
    tls_put_u16(w, in->credential_type);
    switch (in->credential_type) {
    case MLS_CREDENTIAL_BASIC:
        mls_bytes_encode(w, &in->identity);
        break;
    case MLS_CREDENTIAL_X509:
        bytes_list_encode(w, in->certificates, in->n_certificates);
        break;
    default:
        mls_bytes_encode(w, &in->other);
        break;
    }
}

void mls_credential_free(struct mls_credential *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->identity);
    bytes_list_free(&x->certificates, &x->n_certificates);
    mls_bytes_free(&x->other);
    memset(x, 0, sizeof(*x));
}

/* ---- §7.2 Capabilities, Lifetime, Extension ----------------------------- */
int mls_capabilities_decode(struct tls_reader *r, struct mls_capabilities *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_u16_list_decode(r, &out->versions));
    TRY(mls_u16_list_decode(r, &out->cipher_suites));
    TRY(mls_u16_list_decode(r, &out->extensions));
    TRY(mls_u16_list_decode(r, &out->proposals));
    TRY(mls_u16_list_decode(r, &out->credentials));
out:
    if (rc)
        mls_capabilities_free(out);
    return rc;
}

void mls_capabilities_encode(struct tls_writer *w, const struct mls_capabilities *in)
{
    mls_u16_list_encode(w, &in->versions);
    mls_u16_list_encode(w, &in->cipher_suites);
    mls_u16_list_encode(w, &in->extensions);
    mls_u16_list_encode(w, &in->proposals);
    mls_u16_list_encode(w, &in->credentials);
}

void mls_capabilities_free(struct mls_capabilities *x)
{
    if (!x)
        return;
    mls_u16_list_free(&x->versions);
    mls_u16_list_free(&x->cipher_suites);
    mls_u16_list_free(&x->extensions);
    mls_u16_list_free(&x->proposals);
    mls_u16_list_free(&x->credentials);
}

int mls_lifetime_decode(struct tls_reader *r, struct mls_lifetime *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u64(r, &out->not_before));
    TRY(tls_read_u64(r, &out->not_after));
out:
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

void mls_lifetime_encode(struct tls_writer *w, const struct mls_lifetime *in)
{
    tls_put_u64(w, in->not_before);
    tls_put_u64(w, in->not_after);
}

void mls_lifetime_free(struct mls_lifetime *x)
{
    if (x)
        memset(x, 0, sizeof(*x));
}

int mls_extension_decode(struct tls_reader *r, struct mls_extension *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u16(r, &out->extension_type));
    TRY(mls_bytes_decode(r, &out->extension_data));
out:
    if (rc)
        mls_extension_free(out);
    return rc;
}

void mls_extension_encode(struct tls_writer *w, const struct mls_extension *in)
{
    tls_put_u16(w, in->extension_type);
    mls_bytes_encode(w, &in->extension_data);
}

void mls_extension_free(struct mls_extension *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->extension_data);
    x->extension_type = 0;
}

LIST_FUNCS(extension)

int mls_extension_list_decode(struct tls_reader *r, struct mls_extension_list *out)
{
    memset(out, 0, sizeof(*out));
    return extension_list_decode(r, &out->v, &out->n);
}

void mls_extension_list_encode(struct tls_writer *w, const struct mls_extension_list *in)
{
    extension_list_encode(w, in->v, in->n);
}

void mls_extension_list_free(struct mls_extension_list *x)
{
    if (x)
        extension_list_free(&x->v, &x->n);
}

/* ---- §7.2 LeafNode ------------------------------------------------------
 * | encryption_key<V> | signature_key<V> | Credential | Capabilities |
 * | leaf_node_source u8 | key_package: Lifetime; update: -;           |
 * |                     | commit: parent_hash<V>                      |
 * | Extension extensions<V> | signature<V>                            |
 */
static int leaf_node_decode_content(struct tls_reader *r, struct mls_leaf_node *out)
{
    int rc;
    TRY(mls_bytes_decode(r, &out->encryption_key));
    TRY(mls_bytes_decode(r, &out->signature_key));
    TRY(mls_credential_decode(r, &out->credential));
    TRY(mls_capabilities_decode(r, &out->capabilities));
    TRY(tls_read_u8(r, &out->leaf_node_source));
    switch (out->leaf_node_source) {
    case MLS_LEAF_SOURCE_KEY_PACKAGE:
        TRY(mls_lifetime_decode(r, &out->lifetime));
        break;
    case MLS_LEAF_SOURCE_UPDATE:
        break;
    case MLS_LEAF_SOURCE_COMMIT:
        TRY(mls_bytes_decode(r, &out->parent_hash));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
    TRY(mls_extension_list_decode(r, &out->extensions));
out:
    return rc;
}

int mls_leaf_node_decode(struct tls_reader *r, struct mls_leaf_node *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(leaf_node_decode_content(r, out));
    TRY(mls_bytes_decode(r, &out->signature));
out:
    if (rc)
        mls_leaf_node_free(out);
    return rc;
}

static void leaf_node_encode_content(struct tls_writer *w, const struct mls_leaf_node *in)
{
    mls_bytes_encode(w, &in->encryption_key);
    mls_bytes_encode(w, &in->signature_key);
    mls_credential_encode(w, &in->credential);
    mls_capabilities_encode(w, &in->capabilities);
    tls_put_u8(w, in->leaf_node_source);
    switch (in->leaf_node_source) {
    case MLS_LEAF_SOURCE_KEY_PACKAGE:
        mls_lifetime_encode(w, &in->lifetime);
        break;
    case MLS_LEAF_SOURCE_UPDATE:
        break;
    case MLS_LEAF_SOURCE_COMMIT:
        mls_bytes_encode(w, &in->parent_hash);
        break;
    default:
        writer_fail(w, ERR_INVALID);
        return;
    }
    mls_extension_list_encode(w, &in->extensions);
}

void mls_leaf_node_encode(struct tls_writer *w, const struct mls_leaf_node *in)
{
    leaf_node_encode_content(w, in);
    mls_bytes_encode(w, &in->signature);
}

void mls_leaf_node_encode_tbs(struct tls_writer *w, const struct mls_leaf_node *leaf,
                              const uint8_t *group_id, size_t group_id_len,
                              uint32_t leaf_index)
{
    leaf_node_encode_content(w, leaf);
    if (leaf->leaf_node_source == MLS_LEAF_SOURCE_UPDATE ||
        leaf->leaf_node_source == MLS_LEAF_SOURCE_COMMIT) {
        tls_put_opaque(w, group_id, group_id_len);
        tls_put_u32(w, leaf_index);
    }
}

void mls_leaf_node_free(struct mls_leaf_node *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->encryption_key);
    mls_bytes_free(&x->signature_key);
    mls_credential_free(&x->credential);
    mls_capabilities_free(&x->capabilities);
    mls_bytes_free(&x->parent_hash);
    mls_extension_list_free(&x->extensions);
    mls_bytes_free(&x->signature);
    memset(x, 0, sizeof(*x));
}

/* ---- §7.1 ParentNode, optional<Node>, ratchet tree ---------------------- */
int mls_parent_node_decode(struct tls_reader *r, struct mls_parent_node *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->encryption_key));
    TRY(mls_bytes_decode(r, &out->parent_hash));
    TRY(mls_u32_list_decode(r, &out->unmerged_leaves));
out:
    if (rc)
        mls_parent_node_free(out);
    return rc;
}

void mls_parent_node_encode(struct tls_writer *w, const struct mls_parent_node *in)
{
    mls_bytes_encode(w, &in->encryption_key);
    mls_bytes_encode(w, &in->parent_hash);
    mls_u32_list_encode(w, &in->unmerged_leaves);
}

void mls_parent_node_free(struct mls_parent_node *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->encryption_key);
    mls_bytes_free(&x->parent_hash);
    mls_u32_list_free(&x->unmerged_leaves);
}

/* mls_node_decode/encode handle optional<Node>: the presence octet, then
 * node_type u8 and the leaf or parent. */
int mls_node_decode(struct tls_reader *r, struct mls_node *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_optional(r, &out->present));
    if (!out->present)
        goto out;
    TRY(tls_read_u8(r, &out->node_type));
    switch (out->node_type) {
    case MLS_NODE_LEAF:
        TRY(mls_leaf_node_decode(r, &out->leaf));
        break;
    case MLS_NODE_PARENT:
        TRY(mls_parent_node_decode(r, &out->parent));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
out:
    if (rc)
        mls_node_free(out);
    return rc;
}

void mls_node_encode(struct tls_writer *w, const struct mls_node *in)
{
    tls_put_optional(w, in->present);
    if (!in->present)
        return;
    tls_put_u8(w, in->node_type);
    if (in->node_type == MLS_NODE_LEAF)
        mls_leaf_node_encode(w, &in->leaf);
    else if (in->node_type == MLS_NODE_PARENT)
        mls_parent_node_encode(w, &in->parent);
    else
        writer_fail(w, ERR_INVALID);
}

void mls_node_free(struct mls_node *x)
{
    if (!x)
        return;
    mls_leaf_node_free(&x->leaf);
    mls_parent_node_free(&x->parent);
    memset(x, 0, sizeof(*x));
}

LIST_FUNCS(node)

int mls_ratchet_tree_decode(struct tls_reader *r, struct mls_ratchet_tree *out)
{
    memset(out, 0, sizeof(*out));
    return node_list_decode(r, &out->nodes, &out->n_nodes);
}

void mls_ratchet_tree_encode(struct tls_writer *w, const struct mls_ratchet_tree *in)
{
    node_list_encode(w, in->nodes, in->n_nodes);
}

void mls_ratchet_tree_free(struct mls_ratchet_tree *x)
{
    if (x)
        node_list_free(&x->nodes, &x->n_nodes);
}

/* ---- §7.6 UpdatePath ---------------------------------------------------- */
int mls_hpke_ciphertext_decode(struct tls_reader *r, struct mls_hpke_ciphertext *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->kem_output));
    TRY(mls_bytes_decode(r, &out->ciphertext));
out:
    if (rc)
        mls_hpke_ciphertext_free(out);
    return rc;
}

void mls_hpke_ciphertext_encode(struct tls_writer *w, const struct mls_hpke_ciphertext *in)
{
    mls_bytes_encode(w, &in->kem_output);
    mls_bytes_encode(w, &in->ciphertext);
}

void mls_hpke_ciphertext_free(struct mls_hpke_ciphertext *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->kem_output);
    mls_bytes_free(&x->ciphertext);
}

LIST_FUNCS(hpke_ciphertext)

int mls_update_path_node_decode(struct tls_reader *r, struct mls_update_path_node *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->encryption_key));
    TRY(hpke_ciphertext_list_decode(r, &out->encrypted_path_secret,
                                    &out->n_encrypted_path_secret));
out:
    if (rc)
        mls_update_path_node_free(out);
    return rc;
}

void mls_update_path_node_encode(struct tls_writer *w, const struct mls_update_path_node *in)
{
    mls_bytes_encode(w, &in->encryption_key);
    hpke_ciphertext_list_encode(w, in->encrypted_path_secret, in->n_encrypted_path_secret);
}

void mls_update_path_node_free(struct mls_update_path_node *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->encryption_key);
    hpke_ciphertext_list_free(&x->encrypted_path_secret, &x->n_encrypted_path_secret);
}

LIST_FUNCS(update_path_node)

int mls_update_path_decode(struct tls_reader *r, struct mls_update_path *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_leaf_node_decode(r, &out->leaf_node));
    TRY(update_path_node_list_decode(r, &out->nodes, &out->n_nodes));
out:
    if (rc)
        mls_update_path_free(out);
    return rc;
}

void mls_update_path_encode(struct tls_writer *w, const struct mls_update_path *in)
{
    mls_leaf_node_encode(w, &in->leaf_node);
    update_path_node_list_encode(w, in->nodes, in->n_nodes);
}

void mls_update_path_free(struct mls_update_path *x)
{
    if (!x)
        return;
    mls_leaf_node_free(&x->leaf_node);
    update_path_node_list_free(&x->nodes, &x->n_nodes);
}

/* ---- §10 KeyPackage -----------------------------------------------------
 * | version u16 | cipher_suite u16 | init_key<V> | LeafNode |
 * | Extension extensions<V> | signature<V>                  |
 */
static int key_package_decode_tbs(struct tls_reader *r, struct mls_key_package *out)
{
    int rc;
    TRY(tls_read_u16(r, &out->version));
    TRY(tls_read_u16(r, &out->cipher_suite));
    TRY(mls_bytes_decode(r, &out->init_key));
    TRY(mls_leaf_node_decode(r, &out->leaf_node));
    TRY(mls_extension_list_decode(r, &out->extensions));
out:
    return rc;
}

int mls_key_package_decode(struct tls_reader *r, struct mls_key_package *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(key_package_decode_tbs(r, out));
    TRY(mls_bytes_decode(r, &out->signature));
out:
    if (rc)
        mls_key_package_free(out);
    return rc;
}

void mls_key_package_encode_tbs(struct tls_writer *w, const struct mls_key_package *kp)
{
    tls_put_u16(w, kp->version);
    tls_put_u16(w, kp->cipher_suite);
    mls_bytes_encode(w, &kp->init_key);
    mls_leaf_node_encode(w, &kp->leaf_node);
    mls_extension_list_encode(w, &kp->extensions);
}

void mls_key_package_encode(struct tls_writer *w, const struct mls_key_package *in)
{
    mls_key_package_encode_tbs(w, in);
    mls_bytes_encode(w, &in->signature);
}

void mls_key_package_free(struct mls_key_package *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->init_key);
    mls_leaf_node_free(&x->leaf_node);
    mls_extension_list_free(&x->extensions);
    mls_bytes_free(&x->signature);
    memset(x, 0, sizeof(*x));
}

/* ---- §8.4 PreSharedKeyID, §12.1 proposals ------------------------------- */
int mls_pre_shared_key_id_decode(struct tls_reader *r, struct mls_pre_shared_key_id *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u8(r, &out->psktype));
    switch (out->psktype) {
    case MLS_PSK_EXTERNAL:
        TRY(mls_bytes_decode(r, &out->psk_id));
        break;
    case MLS_PSK_RESUMPTION:
        TRY(tls_read_u8(r, &out->usage));
        TRY(mls_bytes_decode(r, &out->psk_group_id));
        TRY(tls_read_u64(r, &out->psk_epoch));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
    TRY(mls_bytes_decode(r, &out->psk_nonce));
out:
    if (rc)
        mls_pre_shared_key_id_free(out);
    return rc;
}

void mls_pre_shared_key_id_encode(struct tls_writer *w, const struct mls_pre_shared_key_id *in)
{
    tls_put_u8(w, in->psktype);
    switch (in->psktype) {
    case MLS_PSK_EXTERNAL:
        mls_bytes_encode(w, &in->psk_id);
        break;
    case MLS_PSK_RESUMPTION:
        tls_put_u8(w, in->usage);
        mls_bytes_encode(w, &in->psk_group_id);
        tls_put_u64(w, in->psk_epoch);
        break;
    default:
        writer_fail(w, ERR_INVALID);
        return;
    }
    mls_bytes_encode(w, &in->psk_nonce);
}

void mls_pre_shared_key_id_free(struct mls_pre_shared_key_id *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->psk_id);
    mls_bytes_free(&x->psk_group_id);
    mls_bytes_free(&x->psk_nonce);
    memset(x, 0, sizeof(*x));
}

LIST_FUNCS(pre_shared_key_id)

int mls_reinit_decode(struct tls_reader *r, struct mls_reinit *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->group_id));
    TRY(tls_read_u16(r, &out->version));
    TRY(tls_read_u16(r, &out->cipher_suite));
    TRY(mls_extension_list_decode(r, &out->extensions));
out:
    if (rc)
        mls_reinit_free(out);
    return rc;
}

void mls_reinit_encode(struct tls_writer *w, const struct mls_reinit *in)
{
    mls_bytes_encode(w, &in->group_id);
    tls_put_u16(w, in->version);
    tls_put_u16(w, in->cipher_suite);
    mls_extension_list_encode(w, &in->extensions);
}

void mls_reinit_free(struct mls_reinit *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->group_id);
    mls_extension_list_free(&x->extensions);
    memset(x, 0, sizeof(*x));
}

/* | proposal_type u16 | add: KeyPackage | update: LeafNode | remove: u32 |
 * | psk: PreSharedKeyID | reinit: ReInit | external_init: kem_output<V> |
 * | group_context_extensions: Extension<V> | other: opaque<V>          | */
int mls_proposal_decode(struct tls_reader *r, struct mls_proposal *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u16(r, &out->proposal_type));
    switch (out->proposal_type) {
    case MLS_PROPOSAL_ADD:
        TRY(mls_key_package_decode(r, &out->add));
        break;
    case MLS_PROPOSAL_UPDATE:
        TRY(mls_leaf_node_decode(r, &out->update));
        break;
    case MLS_PROPOSAL_REMOVE:
        TRY(tls_read_u32(r, &out->remove));
        break;
    case MLS_PROPOSAL_PSK:
        TRY(mls_pre_shared_key_id_decode(r, &out->psk));
        break;
    case MLS_PROPOSAL_REINIT:
        TRY(mls_reinit_decode(r, &out->reinit));
        break;
    case MLS_PROPOSAL_EXTERNAL_INIT:
        TRY(mls_bytes_decode(r, &out->external_init));
        break;
    case MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS:
        TRY(mls_extension_list_decode(r, &out->gce));
        break;
    default:
        TRY(mls_bytes_decode(r, &out->other));
        break;
    }
out:
    if (rc)
        mls_proposal_free(out);
    return rc;
}

void mls_proposal_encode(struct tls_writer *w, const struct mls_proposal *in)
{
    tls_put_u16(w, in->proposal_type);
    switch (in->proposal_type) {
    case MLS_PROPOSAL_ADD:
        mls_key_package_encode(w, &in->add);
        break;
    case MLS_PROPOSAL_UPDATE:
        mls_leaf_node_encode(w, &in->update);
        break;
    case MLS_PROPOSAL_REMOVE:
        tls_put_u32(w, in->remove);
        break;
    case MLS_PROPOSAL_PSK:
        mls_pre_shared_key_id_encode(w, &in->psk);
        break;
    case MLS_PROPOSAL_REINIT:
        mls_reinit_encode(w, &in->reinit);
        break;
    case MLS_PROPOSAL_EXTERNAL_INIT:
        mls_bytes_encode(w, &in->external_init);
        break;
    case MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS:
        mls_extension_list_encode(w, &in->gce);
        break;
    default:
        mls_bytes_encode(w, &in->other);
        break;
    }
}

void mls_proposal_free(struct mls_proposal *x)
{
    if (!x)
        return;
    /* The members share storage: free only the one the type names. */
    switch (x->proposal_type) {
    case MLS_PROPOSAL_ADD:
        mls_key_package_free(&x->add);
        break;
    case MLS_PROPOSAL_UPDATE:
        mls_leaf_node_free(&x->update);
        break;
    case MLS_PROPOSAL_REMOVE:
        break;
    case MLS_PROPOSAL_PSK:
        mls_pre_shared_key_id_free(&x->psk);
        break;
    case MLS_PROPOSAL_REINIT:
        mls_reinit_free(&x->reinit);
        break;
    case MLS_PROPOSAL_EXTERNAL_INIT:
        mls_bytes_free(&x->external_init);
        break;
    case MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS:
        mls_extension_list_free(&x->gce);
        break;
    default:
        mls_bytes_free(&x->other);
        break;
    }
    memset(x, 0, sizeof(*x));
}

int mls_proposal_or_ref_decode(struct tls_reader *r, struct mls_proposal_or_ref *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u8(r, &out->type));
    switch (out->type) {
    case MLS_POR_PROPOSAL:
        TRY(mls_proposal_decode(r, &out->proposal));
        break;
    case MLS_POR_REFERENCE:
        TRY(mls_bytes_decode(r, &out->reference));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
out:
    if (rc)
        mls_proposal_or_ref_free(out);
    return rc;
}

void mls_proposal_or_ref_encode(struct tls_writer *w, const struct mls_proposal_or_ref *in)
{
    tls_put_u8(w, in->type);
    if (in->type == MLS_POR_PROPOSAL)
        mls_proposal_encode(w, &in->proposal);
    else if (in->type == MLS_POR_REFERENCE)
        mls_bytes_encode(w, &in->reference);
    else
        writer_fail(w, ERR_INVALID);
}

void mls_proposal_or_ref_free(struct mls_proposal_or_ref *x)
{
    if (!x)
        return;
    mls_proposal_free(&x->proposal);
    mls_bytes_free(&x->reference);
    memset(x, 0, sizeof(*x));
}

LIST_FUNCS(proposal_or_ref)

/* ---- §12.4 Commit: ProposalOrRef proposals<V>; optional<UpdatePath> ----- */
int mls_commit_decode(struct tls_reader *r, struct mls_commit *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(proposal_or_ref_list_decode(r, &out->proposals, &out->n_proposals));
    TRY(tls_read_optional(r, &out->has_path));
    if (out->has_path)
        TRY(mls_update_path_decode(r, &out->path));
out:
    if (rc)
        mls_commit_free(out);
    return rc;
}

void mls_commit_encode(struct tls_writer *w, const struct mls_commit *in)
{
    proposal_or_ref_list_encode(w, in->proposals, in->n_proposals);
    tls_put_optional(w, in->has_path);
    if (in->has_path)
        mls_update_path_encode(w, &in->path);
}

void mls_commit_free(struct mls_commit *x)
{
    if (!x)
        return;
    proposal_or_ref_list_free(&x->proposals, &x->n_proposals);
    mls_update_path_free(&x->path);
    memset(x, 0, sizeof(*x));
}

/* ---- §6 Sender, FramedContent, auth data, Public/PrivateMessage --------- */
int mls_sender_decode(struct tls_reader *r, struct mls_sender *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u8(r, &out->sender_type));
    switch (out->sender_type) {
    case MLS_SENDER_MEMBER:
        TRY(tls_read_u32(r, &out->leaf_index));
        break;
    case MLS_SENDER_EXTERNAL:
        TRY(tls_read_u32(r, &out->sender_index));
        break;
    case MLS_SENDER_NEW_MEMBER_PROPOSAL:
    case MLS_SENDER_NEW_MEMBER_COMMIT:
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
out:
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

void mls_sender_encode(struct tls_writer *w, const struct mls_sender *in)
{
    tls_put_u8(w, in->sender_type);
    switch (in->sender_type) {
    case MLS_SENDER_MEMBER:
        tls_put_u32(w, in->leaf_index);
        break;
    case MLS_SENDER_EXTERNAL:
        tls_put_u32(w, in->sender_index);
        break;
    case MLS_SENDER_NEW_MEMBER_PROPOSAL:
    case MLS_SENDER_NEW_MEMBER_COMMIT:
        break;
    default:
        writer_fail(w, ERR_INVALID);
    }
}

void mls_sender_free(struct mls_sender *x)
{
    if (x)
        memset(x, 0, sizeof(*x));
}

int mls_framed_content_decode(struct tls_reader *r, struct mls_framed_content *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->group_id));
    TRY(tls_read_u64(r, &out->epoch));
    TRY(mls_sender_decode(r, &out->sender));
    TRY(mls_bytes_decode(r, &out->authenticated_data));
    TRY(tls_read_u8(r, &out->content_type));
    switch (out->content_type) {
    case MLS_CONTENT_APPLICATION:
        TRY(mls_bytes_decode(r, &out->application_data));
        break;
    case MLS_CONTENT_PROPOSAL:
        TRY(mls_proposal_decode(r, &out->proposal));
        break;
    case MLS_CONTENT_COMMIT:
        TRY(mls_commit_decode(r, &out->commit));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
out:
    if (rc)
        mls_framed_content_free(out);
    return rc;
}

void mls_framed_content_encode(struct tls_writer *w, const struct mls_framed_content *in)
{
    mls_bytes_encode(w, &in->group_id);
    tls_put_u64(w, in->epoch);
    mls_sender_encode(w, &in->sender);
    mls_bytes_encode(w, &in->authenticated_data);
    tls_put_u8(w, in->content_type);
    switch (in->content_type) {
    case MLS_CONTENT_APPLICATION:
        mls_bytes_encode(w, &in->application_data);
        break;
    case MLS_CONTENT_PROPOSAL:
        mls_proposal_encode(w, &in->proposal);
        break;
    case MLS_CONTENT_COMMIT:
        mls_commit_encode(w, &in->commit);
        break;
    default:
        writer_fail(w, ERR_INVALID);
    }
}

void mls_framed_content_free(struct mls_framed_content *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->group_id);
    mls_bytes_free(&x->authenticated_data);
    mls_bytes_free(&x->application_data);
    mls_proposal_free(&x->proposal);
    mls_commit_free(&x->commit);
    memset(x, 0, sizeof(*x));
}

int mls_framed_content_auth_data_decode(struct tls_reader *r, uint8_t content_type,
                                        struct mls_framed_content_auth_data *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->signature));
    if (content_type == MLS_CONTENT_COMMIT)
        TRY(mls_bytes_decode(r, &out->confirmation_tag));
out:
    if (rc)
        mls_framed_content_auth_data_free(out);
    return rc;
}

void mls_framed_content_auth_data_encode(struct tls_writer *w, uint8_t content_type,
                                         const struct mls_framed_content_auth_data *in)
{
    mls_bytes_encode(w, &in->signature);
    if (content_type == MLS_CONTENT_COMMIT)
        mls_bytes_encode(w, &in->confirmation_tag);
}

void mls_framed_content_auth_data_free(struct mls_framed_content_auth_data *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->signature);
    mls_bytes_free(&x->confirmation_tag);
}

int mls_public_message_decode(struct tls_reader *r, struct mls_public_message *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_framed_content_decode(r, &out->content));
    TRY(mls_framed_content_auth_data_decode(r, out->content.content_type, &out->auth));
    if (out->content.sender.sender_type == MLS_SENDER_MEMBER)
        TRY(mls_bytes_decode(r, &out->membership_tag));
out:
    if (rc)
        mls_public_message_free(out);
    return rc;
}

void mls_public_message_encode(struct tls_writer *w, const struct mls_public_message *in)
{
    mls_framed_content_encode(w, &in->content);
    mls_framed_content_auth_data_encode(w, in->content.content_type, &in->auth);
    if (in->content.sender.sender_type == MLS_SENDER_MEMBER)
        mls_bytes_encode(w, &in->membership_tag);
}

void mls_public_message_free(struct mls_public_message *x)
{
    if (!x)
        return;
    mls_framed_content_free(&x->content);
    mls_framed_content_auth_data_free(&x->auth);
    mls_bytes_free(&x->membership_tag);
}

int mls_private_message_decode(struct tls_reader *r, struct mls_private_message *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->group_id));
    TRY(tls_read_u64(r, &out->epoch));
    TRY(tls_read_u8(r, &out->content_type));
    if (out->content_type < MLS_CONTENT_APPLICATION || out->content_type > MLS_CONTENT_COMMIT) {
        rc = ERR_MALFORMED;
        goto out;
    }
    TRY(mls_bytes_decode(r, &out->authenticated_data));
    TRY(mls_bytes_decode(r, &out->encrypted_sender_data));
    TRY(mls_bytes_decode(r, &out->ciphertext));
out:
    if (rc)
        mls_private_message_free(out);
    return rc;
}

void mls_private_message_encode(struct tls_writer *w, const struct mls_private_message *in)
{
    mls_bytes_encode(w, &in->group_id);
    tls_put_u64(w, in->epoch);
    tls_put_u8(w, in->content_type);
    mls_bytes_encode(w, &in->authenticated_data);
    mls_bytes_encode(w, &in->encrypted_sender_data);
    mls_bytes_encode(w, &in->ciphertext);
}

void mls_private_message_free(struct mls_private_message *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->group_id);
    mls_bytes_free(&x->authenticated_data);
    mls_bytes_free(&x->encrypted_sender_data);
    mls_bytes_free(&x->ciphertext);
    memset(x, 0, sizeof(*x));
}

/* ---- §8.1 GroupContext, §12.4.3 GroupInfo ------------------------------- */
int mls_group_context_decode(struct tls_reader *r, struct mls_group_context *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u16(r, &out->version));
    TRY(tls_read_u16(r, &out->cipher_suite));
    TRY(mls_bytes_decode(r, &out->group_id));
    TRY(tls_read_u64(r, &out->epoch));
    TRY(mls_bytes_decode(r, &out->tree_hash));
    TRY(mls_bytes_decode(r, &out->confirmed_transcript_hash));
    TRY(mls_extension_list_decode(r, &out->extensions));
out:
    if (rc)
        mls_group_context_free(out);
    return rc;
}

void mls_group_context_encode(struct tls_writer *w, const struct mls_group_context *in)
{
    tls_put_u16(w, in->version);
    tls_put_u16(w, in->cipher_suite);
    mls_bytes_encode(w, &in->group_id);
    tls_put_u64(w, in->epoch);
    mls_bytes_encode(w, &in->tree_hash);
    mls_bytes_encode(w, &in->confirmed_transcript_hash);
    mls_extension_list_encode(w, &in->extensions);
}

void mls_group_context_free(struct mls_group_context *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->group_id);
    mls_bytes_free(&x->tree_hash);
    mls_bytes_free(&x->confirmed_transcript_hash);
    mls_extension_list_free(&x->extensions);
    memset(x, 0, sizeof(*x));
}

int mls_group_info_decode(struct tls_reader *r, struct mls_group_info *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_group_context_decode(r, &out->group_context));
    TRY(mls_extension_list_decode(r, &out->extensions));
    TRY(mls_bytes_decode(r, &out->confirmation_tag));
    TRY(tls_read_u32(r, &out->signer));
    TRY(mls_bytes_decode(r, &out->signature));
out:
    if (rc)
        mls_group_info_free(out);
    return rc;
}

void mls_group_info_encode_tbs(struct tls_writer *w, const struct mls_group_info *gi)
{
    mls_group_context_encode(w, &gi->group_context);
    mls_extension_list_encode(w, &gi->extensions);
    mls_bytes_encode(w, &gi->confirmation_tag);
    tls_put_u32(w, gi->signer);
}

void mls_group_info_encode(struct tls_writer *w, const struct mls_group_info *in)
{
    mls_group_info_encode_tbs(w, in);
    mls_bytes_encode(w, &in->signature);
}

void mls_group_info_free(struct mls_group_info *x)
{
    if (!x)
        return;
    mls_group_context_free(&x->group_context);
    mls_extension_list_free(&x->extensions);
    mls_bytes_free(&x->confirmation_tag);
    mls_bytes_free(&x->signature);
    memset(x, 0, sizeof(*x));
}

/* ---- §12.4.3.1 GroupSecrets, EncryptedGroupSecrets, Welcome ------------- */
int mls_group_secrets_decode(struct tls_reader *r, struct mls_group_secrets *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->joiner_secret));
    TRY(tls_read_optional(r, &out->has_path_secret));
    if (out->has_path_secret)
        TRY(mls_bytes_decode(r, &out->path_secret));
    TRY(pre_shared_key_id_list_decode(r, &out->psks, &out->n_psks));
out:
    if (rc)
        mls_group_secrets_free(out);
    return rc;
}

void mls_group_secrets_encode(struct tls_writer *w, const struct mls_group_secrets *in)
{
    mls_bytes_encode(w, &in->joiner_secret);
    tls_put_optional(w, in->has_path_secret);
    if (in->has_path_secret)
        mls_bytes_encode(w, &in->path_secret);
    pre_shared_key_id_list_encode(w, in->psks, in->n_psks);
}

void mls_group_secrets_free(struct mls_group_secrets *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->joiner_secret);
    mls_bytes_free(&x->path_secret);
    pre_shared_key_id_list_free(&x->psks, &x->n_psks);
    x->has_path_secret = false;
}

int mls_encrypted_group_secrets_decode(struct tls_reader *r,
                                       struct mls_encrypted_group_secrets *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->new_member));
    TRY(mls_hpke_ciphertext_decode(r, &out->encrypted_group_secrets));
out:
    if (rc)
        mls_encrypted_group_secrets_free(out);
    return rc;
}

void mls_encrypted_group_secrets_encode(struct tls_writer *w,
                                        const struct mls_encrypted_group_secrets *in)
{
    mls_bytes_encode(w, &in->new_member);
    mls_hpke_ciphertext_encode(w, &in->encrypted_group_secrets);
}

void mls_encrypted_group_secrets_free(struct mls_encrypted_group_secrets *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->new_member);
    mls_hpke_ciphertext_free(&x->encrypted_group_secrets);
}

LIST_FUNCS(encrypted_group_secrets)

int mls_welcome_decode(struct tls_reader *r, struct mls_welcome *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u16(r, &out->cipher_suite));
    TRY(encrypted_group_secrets_list_decode(r, &out->secrets, &out->n_secrets));
    TRY(mls_bytes_decode(r, &out->encrypted_group_info));
out:
    if (rc)
        mls_welcome_free(out);
    return rc;
}

void mls_welcome_encode(struct tls_writer *w, const struct mls_welcome *in)
{
    tls_put_u16(w, in->cipher_suite);
    encrypted_group_secrets_list_encode(w, in->secrets, in->n_secrets);
    mls_bytes_encode(w, &in->encrypted_group_info);
}

void mls_welcome_free(struct mls_welcome *x)
{
    if (!x)
        return;
    encrypted_group_secrets_list_free(&x->secrets, &x->n_secrets);
    mls_bytes_free(&x->encrypted_group_info);
    x->cipher_suite = 0;
}

/* ---- §6 MLSMessage ------------------------------------------------------
 * | version u16 (mls10) | wire_format u16 | the selected message |
 */
int mls_message_decode(struct tls_reader *r, struct mls_message *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u16(r, &out->version));
    if (out->version != MLS_VERSION_MLS10) {
        rc = ERR_UNSUPPORTED;
        goto out;
    }
    TRY(tls_read_u16(r, &out->wire_format));
    switch (out->wire_format) {
    case MLS_WF_PUBLIC_MESSAGE:
        TRY(mls_public_message_decode(r, &out->public_message));
        break;
    case MLS_WF_PRIVATE_MESSAGE:
        TRY(mls_private_message_decode(r, &out->private_message));
        break;
    case MLS_WF_WELCOME:
        TRY(mls_welcome_decode(r, &out->welcome));
        break;
    case MLS_WF_GROUP_INFO:
        TRY(mls_group_info_decode(r, &out->group_info));
        break;
    case MLS_WF_KEY_PACKAGE:
        TRY(mls_key_package_decode(r, &out->key_package));
        break;
    default:
        rc = ERR_MALFORMED;
        goto out;
    }
out:
    if (rc)
        mls_message_free(out);
    return rc;
}

void mls_message_encode(struct tls_writer *w, const struct mls_message *in)
{
    tls_put_u16(w, in->version);
    tls_put_u16(w, in->wire_format);
    switch (in->wire_format) {
    case MLS_WF_PUBLIC_MESSAGE:
        mls_public_message_encode(w, &in->public_message);
        break;
    case MLS_WF_PRIVATE_MESSAGE:
        mls_private_message_encode(w, &in->private_message);
        break;
    case MLS_WF_WELCOME:
        mls_welcome_encode(w, &in->welcome);
        break;
    case MLS_WF_GROUP_INFO:
        mls_group_info_encode(w, &in->group_info);
        break;
    case MLS_WF_KEY_PACKAGE:
        mls_key_package_encode(w, &in->key_package);
        break;
    default:
        writer_fail(w, ERR_INVALID);
    }
}

void mls_message_free(struct mls_message *x)
{
    if (!x)
        return;
    mls_public_message_free(&x->public_message);
    mls_private_message_free(&x->private_message);
    mls_welcome_free(&x->welcome);
    mls_group_info_free(&x->group_info);
    mls_key_package_free(&x->key_package);
    memset(x, 0, sizeof(*x));
}

const struct mls_public_message *mls_message_public(const struct mls_message *m)
{
    return m->wire_format == MLS_WF_PUBLIC_MESSAGE ? &m->public_message : NULL;
}

/* ---- extension contents ------------------------------------------------- */
int mls_required_capabilities_decode(struct tls_reader *r,
                                     struct mls_required_capabilities *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_u16_list_decode(r, &out->extension_types));
    TRY(mls_u16_list_decode(r, &out->proposal_types));
    TRY(mls_u16_list_decode(r, &out->credential_types));
out:
    if (rc)
        mls_required_capabilities_free(out);
    return rc;
}

void mls_required_capabilities_encode(struct tls_writer *w,
                                      const struct mls_required_capabilities *in)
{
    mls_u16_list_encode(w, &in->extension_types);
    mls_u16_list_encode(w, &in->proposal_types);
    mls_u16_list_encode(w, &in->credential_types);
}

void mls_required_capabilities_free(struct mls_required_capabilities *x)
{
    if (!x)
        return;
    mls_u16_list_free(&x->extension_types);
    mls_u16_list_free(&x->proposal_types);
    mls_u16_list_free(&x->credential_types);
}

int mls_external_sender_decode(struct tls_reader *r, struct mls_external_sender *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_bytes_decode(r, &out->signature_key));
    TRY(mls_credential_decode(r, &out->credential));
out:
    if (rc)
        mls_external_sender_free(out);
    return rc;
}

void mls_external_sender_encode(struct tls_writer *w, const struct mls_external_sender *in)
{
    mls_bytes_encode(w, &in->signature_key);
    mls_credential_encode(w, &in->credential);
}

void mls_external_sender_free(struct mls_external_sender *x)
{
    if (!x)
        return;
    mls_bytes_free(&x->signature_key);
    mls_credential_free(&x->credential);
}

LIST_FUNCS(external_sender)

int mls_external_senders_decode(struct tls_reader *r, struct mls_external_senders *out)
{
    memset(out, 0, sizeof(*out));
    return external_sender_list_decode(r, &out->v, &out->n);
}

void mls_external_senders_encode(struct tls_writer *w, const struct mls_external_senders *in)
{
    external_sender_list_encode(w, in->v, in->n);
}

void mls_external_senders_free(struct mls_external_senders *x)
{
    if (x)
        external_sender_list_free(&x->v, &x->n);
}

/* ---- §8.4 PSKLabel, §6.3.2 SenderData ----------------------------------- */
int mls_psk_label_decode(struct tls_reader *r, struct mls_psk_label *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(mls_pre_shared_key_id_decode(r, &out->id));
    TRY(tls_read_u16(r, &out->index));
    TRY(tls_read_u16(r, &out->count));
out:
    if (rc)
        mls_psk_label_free(out);
    return rc;
}

void mls_psk_label_encode(struct tls_writer *w, const struct mls_psk_label *in)
{
    mls_pre_shared_key_id_encode(w, &in->id);
    tls_put_u16(w, in->index);
    tls_put_u16(w, in->count);
}

void mls_psk_label_free(struct mls_psk_label *x)
{
    if (!x)
        return;
    mls_pre_shared_key_id_free(&x->id);
    x->index = x->count = 0;
}

int mls_sender_data_decode(struct tls_reader *r, struct mls_sender_data *out)
{
    const uint8_t *g;
    int rc;
    memset(out, 0, sizeof(*out));
    TRY(tls_read_u32(r, &out->leaf_index));
    TRY(tls_read_u32(r, &out->generation));
    TRY(tls_read_fixed(r, sizeof(out->reuse_guard), &g));
    memcpy(out->reuse_guard, g, sizeof(out->reuse_guard));
out:
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

void mls_sender_data_encode(struct tls_writer *w, const struct mls_sender_data *in)
{
    tls_put_u32(w, in->leaf_index);
    tls_put_u32(w, in->generation);
    tls_put_fixed(w, in->reuse_guard, sizeof(in->reuse_guard));
}

void mls_sender_data_free(struct mls_sender_data *x)
{
    if (x)
        sodium_memzero(x, sizeof(*x));
}
