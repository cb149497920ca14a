/* fuzz_mls_message.c: MLSMessage decode -> encode -> compare; for what
 * parses, also the signed/hashed encodings a receiver computes and the
 * known-extension decoders a GroupInfo's extensions go through. */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_extensions(const struct mls_extension_list *l)
{
    struct mls_ratchet_tree t;
    struct mls_required_capabilities rc;
    struct mls_external_senders es;
    struct mls_bytes b;
    if (mls_ext_ratchet_tree(l, &t) == 0)
        mls_ratchet_tree_free(&t);
    if (mls_ext_required_capabilities(l, &rc) == 0)
        mls_required_capabilities_free(&rc);
    if (mls_ext_external_senders(l, &es) == 0)
        mls_external_senders_free(&es);
    if (mls_ext_external_pub(l, &b) == 0)
        mls_bytes_free(&b);
    if (mls_ext_application_id(l, &b) == 0)
        mls_bytes_free(&b);
    (void)mls_extension_list_check_unique(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_message m;
    if (mls_message_parse(data, size, &m) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(message, &m, data, size);

    struct tls_writer w;
    tls_writer_init(&w, 0);
    if (m.wire_format == MLS_WF_PUBLIC_MESSAGE) {
        static const uint8_t gc[] = {0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        const struct mls_public_message *pm = mls_message_public(&m);
        mls_framed_content_encode_tbs(&w, m.wire_format, &pm->content, gc, sizeof(gc));
        mls_authenticated_content_encode(&w, m.wire_format, &pm->content, &pm->auth);
        if (pm->content.content_type == MLS_CONTENT_COMMIT)
            mls_confirmed_transcript_hash_input_encode(&w, m.wire_format, &pm->content,
                                                       &pm->auth.signature);
    } else if (m.wire_format == MLS_WF_GROUP_INFO) {
        mls_group_info_encode_tbs(&w, &m.group_info);
        touch_extensions(&m.group_info.extensions);
        touch_extensions(&m.group_info.group_context.extensions);
    } else if (m.wire_format == MLS_WF_KEY_PACKAGE) {
        mls_key_package_encode_tbs(&w, &m.key_package);
        touch_extensions(&m.key_package.extensions);
    }
    tls_writer_reset(&w);
    mls_message_free(&m);
    return 0;
}
