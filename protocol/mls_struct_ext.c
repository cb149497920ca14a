/*
 * mls_struct_ext.c: the parts of the mls_struct module built on the plain
 * codecs in mls_struct.c: whole-buffer parse entry points, deep copies,
 * decoding the known extension types, and the signed / hashed encodings
 * (FramedContentTBS, AuthenticatedContent, transcript hash inputs).
 */
#include "mls_struct.h"

#include <string.h>

#include "err.h"

/* Whole-buffer parse: one value, no trailing bytes. */
#define PARSE_FUNC(name)                                                       \
    int mls_##name##_parse(const uint8_t *buf, size_t len, struct mls_##name *out) \
    {                                                                          \
        struct tls_reader r;                                                   \
        tls_reader_init(&r, buf, len);                                         \
        int rc = mls_##name##_decode(&r, out);                                 \
        if (rc)                                                                \
            return rc;                                                         \
        if (!tls_reader_done(&r)) {                                            \
            mls_##name##_free(out);                                            \
            return ERR_MALFORMED;                                              \
        }                                                                      \
        return 0;                                                              \
    }

PARSE_FUNC(message)
PARSE_FUNC(key_package)
PARSE_FUNC(group_info)
PARSE_FUNC(welcome)
PARSE_FUNC(ratchet_tree)
PARSE_FUNC(group_secrets)
PARSE_FUNC(group_context)
PARSE_FUNC(leaf_node)
PARSE_FUNC(proposal)
PARSE_FUNC(commit)
PARSE_FUNC(required_capabilities)
PARSE_FUNC(external_senders)

int mls_key_package_parse_any(const uint8_t *buf, size_t len, struct mls_key_package *out)
{
    struct mls_message m;
    int rc = mls_message_parse(buf, len, &m);
    if (rc != 0)
        return mls_key_package_parse(buf, len, out);
    if (m.wire_format != MLS_WF_KEY_PACKAGE) {
        mls_message_free(&m);
        return ERR_INVALID;
    }
    /* move the KeyPackage out of the message */
    *out = m.key_package;
    memset(&m.key_package, 0, sizeof(m.key_package));
    mls_message_free(&m);
    return 0;
}

/*
 * Deep copies go through the codec: encode src, decode into dst. The codec
 * is canonical, so this is exact, and it keeps one place that knows every
 * field. The intermediate buffer is wiped by tls_writer_reset().
 */
#define COPY_FUNC(name)                                                        \
    int mls_##name##_copy(struct mls_##name *dst, const struct mls_##name *src) \
    {                                                                          \
        struct tls_writer w;                                                   \
        struct tls_reader r;                                                   \
        int rc;                                                                \
        memset(dst, 0, sizeof(*dst));                                          \
        tls_writer_init(&w, 0);                                                \
        mls_##name##_encode(&w, src);                                          \
        rc = tls_writer_error(&w);                                             \
        if (!rc) {                                                             \
            tls_reader_init(&r, w.buf, w.len);                                 \
            rc = mls_##name##_decode(&r, dst);                                 \
            if (!rc && !tls_reader_done(&r)) {                                 \
                mls_##name##_free(dst);                                        \
                rc = ERR_INTERNAL;                                             \
            }                                                                  \
        }                                                                      \
        tls_writer_reset(&w);                                                  \
        return rc;                                                             \
    }

COPY_FUNC(credential)
COPY_FUNC(leaf_node)
COPY_FUNC(extension_list)
COPY_FUNC(group_context)

/* ---- extensions --------------------------------------------------------- */
const struct mls_extension *mls_ext_find(const struct mls_extension_list *list, uint16_t type)
{
    for (size_t i = 0; i < list->n; i++)
        if (list->v[i].extension_type == type)
            return &list->v[i];
    return NULL;
}

int mls_extension_list_check_unique(const struct mls_extension_list *list)
{
    /* Lists are short (a handful of entries): quadratic is fine. */
    for (size_t i = 0; i < list->n; i++)
        for (size_t j = i + 1; j < list->n; j++)
            if (list->v[i].extension_type == list->v[j].extension_type)
                return ERR_INVALID;
    return 0;
}

/* Finds `type` and points a reader at its data. */
static int ext_reader(const struct mls_extension_list *list, uint16_t type,
                      struct tls_reader *r)
{
    const struct mls_extension *e = mls_ext_find(list, type);
    if (!e)
        return ERR_NOT_FOUND;
    tls_reader_init(r, e->extension_data.data, e->extension_data.len);
    return 0;
}

int mls_ext_ratchet_tree(const struct mls_extension_list *list, struct mls_ratchet_tree *out)
{
    const struct mls_extension *e = mls_ext_find(list, MLS_EXT_RATCHET_TREE);
    memset(out, 0, sizeof(*out));
    if (!e)
        return ERR_NOT_FOUND;
    return mls_ratchet_tree_parse(e->extension_data.data, e->extension_data.len, out);
}

int mls_ext_required_capabilities(const struct mls_extension_list *list,
                                  struct mls_required_capabilities *out)
{
    const struct mls_extension *e = mls_ext_find(list, MLS_EXT_REQUIRED_CAPABILITIES);
    memset(out, 0, sizeof(*out));
    if (!e)
        return ERR_NOT_FOUND;
    return mls_required_capabilities_parse(e->extension_data.data, e->extension_data.len, out);
}

int mls_ext_external_senders(const struct mls_extension_list *list,
                             struct mls_external_senders *out)
{
    const struct mls_extension *e = mls_ext_find(list, MLS_EXT_EXTERNAL_SENDERS);
    memset(out, 0, sizeof(*out));
    if (!e)
        return ERR_NOT_FOUND;
    return mls_external_senders_parse(e->extension_data.data, e->extension_data.len, out);
}

/* ExternalPub { HPKEPublicKey external_pub; } and ApplicationId { opaque
 * application_id<V>; } are both a single opaque<V>. */
static int ext_single_opaque(const struct mls_extension_list *list, uint16_t type,
                             struct mls_bytes *out)
{
    struct tls_reader r;
    memset(out, 0, sizeof(*out));
    int rc = ext_reader(list, type, &r);
    if (rc)
        return rc;
    rc = mls_bytes_decode(&r, out);
    if (rc)
        return rc;
    if (!tls_reader_done(&r)) {
        mls_bytes_free(out);
        return ERR_MALFORMED;
    }
    return 0;
}

int mls_ext_external_pub(const struct mls_extension_list *list, struct mls_bytes *out)
{
    return ext_single_opaque(list, MLS_EXT_EXTERNAL_PUB, out);
}

int mls_ext_application_id(const struct mls_extension_list *list, struct mls_bytes *out)
{
    return ext_single_opaque(list, MLS_EXT_APPLICATION_ID, out);
}

/* ---- signed and hashed forms -------------------------------------------- */

/* FramedContentTBS (§6.1):
 * | version u16 | wire_format u16 | FramedContent |
 * | member / new_member_commit: GroupContext (already serialized) | */
void mls_framed_content_encode_tbs(struct tls_writer *w, uint16_t wire_format,
                                   const struct mls_framed_content *content,
                                   const uint8_t *group_context, size_t group_context_len)
{
    tls_put_u16(w, MLS_VERSION_MLS10);
    tls_put_u16(w, wire_format);
    mls_framed_content_encode(w, content);
    uint8_t st = content->sender.sender_type;
    if (st == MLS_SENDER_MEMBER || st == MLS_SENDER_NEW_MEMBER_COMMIT) {
        if (!group_context || !group_context_len) {
            if (!w->err)
                w->err = ERR_INVALID;
            return;
        }
        tls_put_fixed(w, group_context, group_context_len);
    }
}

/* AuthenticatedContent (§6.1): | wire_format u16 | FramedContent | auth | */
void mls_authenticated_content_encode(struct tls_writer *w, uint16_t wire_format,
                                      const struct mls_framed_content *content,
                                      const struct mls_framed_content_auth_data *auth)
{
    tls_put_u16(w, wire_format);
    mls_framed_content_encode(w, content);
    mls_framed_content_auth_data_encode(w, content->content_type, auth);
}

/* ConfirmedTranscriptHashInput (§8.2):
 * | wire_format u16 | FramedContent (commit) | signature<V> | */
void mls_confirmed_transcript_hash_input_encode(struct tls_writer *w, uint16_t wire_format,
                                                const struct mls_framed_content *content,
                                                const struct mls_bytes *signature)
{
    if (content->content_type != MLS_CONTENT_COMMIT) {
        if (!w->err)
            w->err = ERR_INVALID;
        return;
    }
    tls_put_u16(w, wire_format);
    mls_framed_content_encode(w, content);
    mls_bytes_encode(w, signature);
}

void mls_interim_transcript_hash_input_encode(struct tls_writer *w,
                                              const struct mls_bytes *confirmation_tag)
{
    mls_bytes_encode(w, confirmation_tag);
}
