/* test_messages.c: messages.json (all entries): every field decodes with its
 * structure's strict decoder and re-encodes byte for byte; plus hand-made
 * malformed inputs (truncation, trailing bytes, bad enum values, non-minimal
 * varints) that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "mls_struct.h"
#include "vectors.h"

/* Round trip through one structure type: decode all of in (no trailing
 * bytes), encode into w. Returns the decode error or the writer's. */
#define ROUNDTRIP(name)                                                        \
    static int rt_##name(const uint8_t *in, size_t len, struct tls_writer *w)  \
    {                                                                          \
        struct mls_##name x;                                                   \
        struct tls_reader r;                                                   \
        tls_reader_init(&r, in, len);                                          \
        int rc = mls_##name##_decode(&r, &x);                                  \
        if (rc)                                                                \
            return rc;                                                         \
        if (!tls_reader_done(&r)) {                                            \
            mls_##name##_free(&x);                                             \
            return ERR_MALFORMED;                                              \
        }                                                                      \
        mls_##name##_encode(w, &x);                                            \
        mls_##name##_free(&x);                                                 \
        return tls_writer_error(w);                                            \
    }

ROUNDTRIP(message)
ROUNDTRIP(ratchet_tree)
ROUNDTRIP(group_secrets)
ROUNDTRIP(commit)
ROUNDTRIP(key_package)
ROUNDTRIP(leaf_node)
ROUNDTRIP(pre_shared_key_id)
ROUNDTRIP(reinit)
ROUNDTRIP(extension_list)
ROUNDTRIP(bytes)

/* The proposal fields of messages.json hold a proposal body without its
 * type (Add, Update, Remove, ...). Prefix the type and go through
 * mls_proposal_decode, so the Proposal select is exercised too. */
static int rt_proposal_body(uint16_t type, const uint8_t *in, size_t len, struct tls_writer *w)
{
    uint8_t *buf = malloc(len + 2);
    struct mls_proposal p;
    struct tls_reader r;
    int rc;
    if (!buf)
        return ERR_NOMEM;
    buf[0] = (uint8_t)(type >> 8);
    buf[1] = (uint8_t)type;
    if (len)
        memcpy(buf + 2, in, len);
    tls_reader_init(&r, buf, len + 2);
    rc = mls_proposal_decode(&r, &p);
    if (!rc && !tls_reader_done(&r)) {
        mls_proposal_free(&p);
        rc = ERR_MALFORMED;
    }
    free(buf);
    if (rc)
        return rc;
    if (p.proposal_type != type) {
        mls_proposal_free(&p);
        return ERR_INVALID;
    }
    struct tls_writer pw;
    tls_writer_init(&pw, 0);
    mls_proposal_encode(&pw, &p);
    mls_proposal_free(&p);
    rc = tls_writer_error(&pw);
    if (!rc)
        tls_put_fixed(w, pw.buf + 2, pw.len - 2);
    tls_writer_reset(&pw);
    return rc ? rc : tls_writer_error(w);
}

#define PROPOSAL_RT(fn, type)                                                  \
    static int fn(const uint8_t *in, size_t len, struct tls_writer *w)         \
    {                                                                          \
        return rt_proposal_body(type, in, len, w);                             \
    }
PROPOSAL_RT(rt_add, MLS_PROPOSAL_ADD)
PROPOSAL_RT(rt_update, MLS_PROPOSAL_UPDATE)
PROPOSAL_RT(rt_remove, MLS_PROPOSAL_REMOVE)
PROPOSAL_RT(rt_psk, MLS_PROPOSAL_PSK)
PROPOSAL_RT(rt_reinit_p, MLS_PROPOSAL_REINIT)
PROPOSAL_RT(rt_external_init, MLS_PROPOSAL_EXTERNAL_INIT)
PROPOSAL_RT(rt_gce, MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS)

struct field {
    const char *key;
    int (*rt)(const uint8_t *, size_t, struct tls_writer *);
    uint16_t wire_format; /* for MLSMessage fields: the expected format */
};

static const struct field fields[] = {
    {"mls_welcome", rt_message, MLS_WF_WELCOME},
    {"mls_group_info", rt_message, MLS_WF_GROUP_INFO},
    {"mls_key_package", rt_message, MLS_WF_KEY_PACKAGE},
    {"ratchet_tree", rt_ratchet_tree, 0},
    {"group_secrets", rt_group_secrets, 0},
    {"add_proposal", rt_add, 0},
    {"update_proposal", rt_update, 0},
    {"remove_proposal", rt_remove, 0},
    {"pre_shared_key_proposal", rt_psk, 0},
    {"re_init_proposal", rt_reinit_p, 0},
    {"external_init_proposal", rt_external_init, 0},
    {"group_context_extensions_proposal", rt_gce, 0},
    {"commit", rt_commit, 0},
    {"public_message_application", rt_message, MLS_WF_PUBLIC_MESSAGE},
    {"public_message_proposal", rt_message, MLS_WF_PUBLIC_MESSAGE},
    {"public_message_commit", rt_message, MLS_WF_PUBLIC_MESSAGE},
    {"private_message", rt_message, MLS_WF_PRIVATE_MESSAGE},
    /* The proposal bodies once more through their own structure types. */
    {"add_proposal", rt_key_package, 0},
    {"update_proposal", rt_leaf_node, 0},
    {"pre_shared_key_proposal", rt_pre_shared_key_id, 0},
    {"re_init_proposal", rt_reinit, 0},
    {"external_init_proposal", rt_bytes, 0},
    {"group_context_extensions_proposal", rt_extension_list, 0},
};

/* Checks the MLSMessage's wire format and the content type of the three
 * public message fields. */
static bool check_format(const struct field *f, const struct vec_bytes *b)
{
    struct mls_message m;
    if (!f->wire_format)
        return true;
    if (mls_message_parse(b->p, b->len, &m))
        return false;
    bool ok = m.wire_format == f->wire_format;
    if (ok && f->wire_format == MLS_WF_PUBLIC_MESSAGE) {
        uint8_t ct = m.public_message.content.content_type;
        if (strstr(f->key, "application"))
            ok = ct == MLS_CONTENT_APPLICATION;
        else if (strstr(f->key, "proposal"))
            ok = ct == MLS_CONTENT_PROPOSAL;
        else
            ok = ct == MLS_CONTENT_COMMIT;
    }
    mls_message_free(&m);
    return ok;
}

static bool check_field(size_t entry, const struct field *f, const json_t *e)
{
    struct vec_bytes b;
    struct tls_writer w;
    bool ok = false;
    if (!vec_hex(e, f->key, &b)) {
        fprintf(stderr, "entry %zu: no field %s\n", entry, f->key);
        return false;
    }
    tls_writer_init(&w, 0);
    int rc = f->rt(b.p, b.len, &w);
    if (rc) {
        fprintf(stderr, "entry %zu %s: %s\n", entry, f->key, err_str(rc));
    } else {
        ok = vec_eq(f->key, &b, w.buf, w.len) && check_format(f, &b);
        /* Strictness: one byte short and one byte extra are both refused. */
        if (ok && b.len > 0) {
            struct tls_writer w2;
            tls_writer_init(&w2, 0);
            if (f->rt(b.p, b.len - 1, &w2) == 0) {
                fprintf(stderr, "entry %zu %s: truncated input accepted\n", entry, f->key);
                ok = false;
            }
            tls_writer_reset(&w2);
        }
        if (ok) {
            uint8_t *ext = malloc(b.len + 1);
            struct tls_writer w2;
            assert_non_null(ext);
            memcpy(ext, b.p, b.len);
            ext[b.len] = 0;
            tls_writer_init(&w2, 0);
            if (f->rt(ext, b.len + 1, &w2) == 0) {
                fprintf(stderr, "entry %zu %s: trailing byte accepted\n", entry, f->key);
                ok = false;
            }
            tls_writer_reset(&w2);
            free(ext);
        }
    }
    tls_writer_reset(&w);
    vec_bytes_free(&b);
    return ok;
}

/* Every structure of one entry (ctx: the count that round-tripped). */
static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    unsigned *fields_ok = ctx;
    bool ok = true;
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        if (check_field(index, &fields[k], e))
            (*fields_ok)++;
        else
            ok = false;
    }
    return ok;
}

static void messages_vectors(void **state)
{
    (void)state;
    unsigned fields_ok = 0;
    int rc = vec_run("mls-test-vectors/messages.json", "messages.json", VEC_ANY_SUITE,
                     check_entry, &fields_ok);
    printf("messages.json: %u structures decoded and re-encoded byte-exactly\n", fields_ok);
    assert_int_equal(rc, 0);
}

/* Hand-made rejects: each must fail to parse as an MLSMessage. */
static void malformed_inputs(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t in[16];
        size_t len;
        int want;
    } cases[] = {
        {"empty", {0}, 0, ERR_MALFORMED},
        {"version mls11", {0x00, 0x02, 0x00, 0x05}, 4, ERR_UNSUPPORTED},
        {"unknown wire format", {0x00, 0x01, 0x00, 0x09}, 4, ERR_MALFORMED},
        /* PrivateMessage with content_type 4 */
        {"bad content type", {0x00, 0x01, 0x00, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0}, 16,
         ERR_MALFORMED},
        /* Welcome: suite 3, secrets vector with a non-minimal length 0x4000 */
        {"non-minimal varint", {0x00, 0x01, 0x00, 0x03, 0x00, 0x03, 0x40, 0x00, 0x00}, 9,
         ERR_MALFORMED},
        /* Welcome: secrets vector claims 63 bytes, only 1 present */
        {"short vector", {0x00, 0x01, 0x00, 0x03, 0x00, 0x03, 0x3f, 0x00}, 8, ERR_MALFORMED},
        /* Welcome: varint prefix 11 */
        {"varint prefix 11", {0x00, 0x01, 0x00, 0x03, 0x00, 0x03, 0xc0, 0, 0, 0}, 10,
         ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mls_message m;
        int rc = mls_message_parse(cases[i].in, cases[i].len, &m);
        if (rc != cases[i].want)
            fprintf(stderr, "%s: got %s\n", cases[i].what, err_str(rc));
        assert_int_equal(rc, cases[i].want);
    }

    /* optional<> presence octet 2, in a Commit with no proposals. */
    static const uint8_t commit_bad_opt[] = {0x00, 0x02};
    struct mls_commit c;
    assert_int_equal(mls_commit_parse(commit_bad_opt, sizeof(commit_bad_opt), &c),
                     ERR_MALFORMED);
    static const uint8_t commit_ok[] = {0x00, 0x00};
    assert_int_equal(mls_commit_parse(commit_ok, sizeof(commit_ok), &c), 0);
    assert_int_equal(c.n_proposals, 0);
    assert_false(c.has_path);
    mls_commit_free(&c);

    /* Unknown proposal and credential types keep an opaque body and
     * re-encode identically (GREASE 0x0a0a). */
    static const uint8_t grease_prop[] = {0x0a, 0x0a, 0x03, 0xaa, 0xbb, 0xcc};
    struct mls_proposal p;
    assert_int_equal(mls_proposal_parse(grease_prop, sizeof(grease_prop), &p), 0);
    assert_int_equal(p.proposal_type, 0x0a0a);
    assert_int_equal(p.other.len, 3);
    struct tls_writer w;
    tls_writer_init(&w, 0);
    mls_proposal_encode(&w, &p);
    assert_int_equal(tls_writer_error(&w), 0);
    assert_int_equal(w.len, sizeof(grease_prop));
    assert_memory_equal(w.buf, grease_prop, sizeof(grease_prop));
    tls_writer_reset(&w);
    mls_proposal_free(&p);

    /* A u16 list of odd length. */
    static const uint8_t odd[] = {0x03, 0x00, 0x01, 0x00};
    struct tls_reader r;
    struct mls_u16_list l;
    tls_reader_init(&r, odd, sizeof(odd));
    assert_int_equal(mls_u16_list_decode(&r, &l), ERR_MALFORMED);
}

/* Decodes buf as a `name`, re-encodes, compares; or expects error `want`. */
#define EXPECT_RT(name, bytes_, want)                                             \
    do {                                                                       \
        struct tls_reader r_;                                                  \
        struct mls_##name x_;                                                  \
        tls_reader_init(&r_, (bytes_), sizeof(bytes_));                              \
        int rc_ = mls_##name##_decode(&r_, &x_);                               \
        assert_int_equal(rc_, (want));                                         \
        if (rc_ == 0) {                                                        \
            struct tls_writer w_;                                              \
            assert_true(tls_reader_done(&r_));                                 \
            tls_writer_init(&w_, 0);                                           \
            mls_##name##_encode(&w_, &x_);                                     \
            assert_int_equal(tls_writer_error(&w_), 0);                        \
            assert_int_equal(w_.len, sizeof(bytes_));                             \
            assert_memory_equal(w_.buf, (bytes_), sizeof(bytes_));                   \
            tls_writer_reset(&w_);                                             \
            mls_##name##_free(&x_);                                            \
        }                                                                      \
    } while (0)

/* Credentials of every kind, and the select values that must be refused. */
static void selects(void **state)
{
    (void)state;
    /* x509 with two certificates */
    static const uint8_t x509[] = {0x00, 0x02, 0x07, 0x02, 0xaa, 0xbb, 0x03, 0x01, 0x02, 0x03};
    EXPECT_RT(credential, x509, 0);
    /* x509 whose certificate list is cut short inside */
    static const uint8_t x509_bad[] = {0x00, 0x02, 0x03, 0x03, 0xaa, 0xbb};
    EXPECT_RT(credential, x509_bad, ERR_MALFORMED);
    /* unknown (GREASE) credential type: opaque body */
    static const uint8_t grease_cred[] = {0x1a, 0x1a, 0x02, 0x00, 0x01};
    EXPECT_RT(credential, grease_cred, 0);
    /* GREASE extension inside a list */
    static const uint8_t ext_list[] = {0x07, 0x3a, 0x3a, 0x01, 0xff, 0x00, 0x01, 0x00};
    EXPECT_RT(extension_list, ext_list, 0);
    /* sender types: 3 and 4 carry nothing, 5 is unknown */
    static const uint8_t s_nmp[] = {0x03};
    static const uint8_t s_bad[] = {0x05};
    static const uint8_t s_ext[] = {0x02, 0, 0, 0, 9};
    EXPECT_RT(sender, s_nmp, 0);
    EXPECT_RT(sender, s_ext, 0);
    EXPECT_RT(sender, s_bad, ERR_MALFORMED);
    /* PreSharedKeyID: resumption (branch usage) ok, psktype 3 refused */
    static const uint8_t psk_res[] = {0x02, 0x03, 0x01, 'g', 0, 0, 0, 0, 0, 0, 0, 4, 0x01, 'n'};
    static const uint8_t psk_bad[] = {0x03, 0x00, 0x00};
    EXPECT_RT(pre_shared_key_id, psk_res, 0);
    EXPECT_RT(pre_shared_key_id, psk_bad, ERR_MALFORMED);
    /* ProposalOrRef: reference ok, type 3 refused */
    static const uint8_t por_ref[] = {0x02, 0x02, 0xde, 0xad};
    static const uint8_t por_bad[] = {0x03, 0x00};
    EXPECT_RT(proposal_or_ref, por_ref, 0);
    EXPECT_RT(proposal_or_ref, por_bad, ERR_MALFORMED);
    /* optional<Node>: blank; a parent; node_type 3 refused */
    static const uint8_t blank[] = {0x00};
    static const uint8_t parent[] = {0x01, 0x02, 0x01, 0xee, 0x00, 0x04, 0, 0, 0, 1};
    static const uint8_t node_bad[] = {0x01, 0x03};
    EXPECT_RT(node, blank, 0);
    EXPECT_RT(node, parent, 0);
    EXPECT_RT(node, node_bad, ERR_MALFORMED);
    /* unmerged_leaves not a multiple of 4 */
    static const uint8_t parent_bad[] = {0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 1};
    EXPECT_RT(node, parent_bad, ERR_MALFORMED);
    /* LeafNode with leaf_node_source 4 (after keys, basic credential and
     * empty capabilities) */
    static const uint8_t leaf_bad[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x04, 0x00, 0x00};
    EXPECT_RT(leaf_node, leaf_bad, ERR_MALFORMED);
    /* the same with source update, empty extensions and signature: fine */
    static const uint8_t leaf_upd[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x02, 0x00, 0x00};
    EXPECT_RT(leaf_node, leaf_upd, 0);
    /* ... and its LeafNodeTBS carries group_id and leaf_index */
    struct mls_leaf_node ln;
    struct tls_writer w;
    assert_int_equal(mls_leaf_node_parse(leaf_upd, sizeof(leaf_upd), &ln), 0);
    tls_writer_init(&w, 0);
    mls_leaf_node_encode_tbs(&w, &ln, (const uint8_t *)"g", 1, 7);
    static const uint8_t tbs[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x02, 0x00, 0x01, 'g',  0,    0,    0,    7};
    assert_int_equal(w.len, sizeof(tbs));
    assert_memory_equal(w.buf, tbs, sizeof(tbs));
    tls_writer_reset(&w);
    mls_leaf_node_free(&ln);
}

/* Copies and extension helpers on a hand-built GroupContext. */
static void copy_and_extensions(void **state)
{
    (void)state;
    struct mls_group_context gc, cp;
    memset(&gc, 0, sizeof(gc));
    gc.version = 1;
    gc.cipher_suite = 3;
    assert_int_equal(mls_bytes_set(&gc.group_id, (const uint8_t *)"grp", 3), 0);
    gc.epoch = 7;
    gc.extensions.v = calloc(2, sizeof(struct mls_extension));
    assert_non_null(gc.extensions.v);
    gc.extensions.n = 2;
    gc.extensions.v[0].extension_type = MLS_EXT_EXTERNAL_PUB;
    static const uint8_t pub[] = {0x02, 0x11, 0x22};
    assert_int_equal(mls_bytes_set(&gc.extensions.v[0].extension_data, pub, sizeof(pub)), 0);
    gc.extensions.v[1].extension_type = MLS_EXT_APPLICATION_ID;
    static const uint8_t bad[] = {0x05, 0x11};
    assert_int_equal(mls_bytes_set(&gc.extensions.v[1].extension_data, bad, sizeof(bad)), 0);

    assert_int_equal(mls_group_context_copy(&cp, &gc), 0);
    assert_int_equal(cp.epoch, 7);
    assert_int_equal(cp.extensions.n, 2);
    assert_memory_equal(cp.group_id.data, "grp", 3);

    struct mls_bytes out;
    assert_int_equal(mls_ext_external_pub(&cp.extensions, &out), 0);
    assert_int_equal(out.len, 2);
    mls_bytes_free(&out);
    assert_int_equal(mls_ext_application_id(&cp.extensions, &out), ERR_MALFORMED);
    struct mls_ratchet_tree t;
    assert_int_equal(mls_ext_ratchet_tree(&cp.extensions, &t), ERR_NOT_FOUND);
    assert_int_equal(mls_extension_list_check_unique(&cp.extensions), 0);
    cp.extensions.v[1].extension_type = MLS_EXT_EXTERNAL_PUB;
    assert_int_equal(mls_extension_list_check_unique(&cp.extensions), ERR_INVALID);

    mls_group_context_free(&cp);
    mls_group_context_free(&gc);
    mls_group_context_free(&gc); /* freeing twice is a no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages_vectors),
        cmocka_unit_test(malformed_inputs),
        cmocka_unit_test(selects),
        cmocka_unit_test(copy_and_extensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
