/*
 * test_keypackage.c: KeyPackage validation, KeyPackageRef and ProposalRef.
 *  - welcome.json and passive-client-welcome.json: each key_package (an
 *    MLSMessage) validates, and its KeyPackageRef is the new_member of one of
 *    the Welcome's EncryptedGroupSecrets. passive-client-welcome's packages
 *    live from 2023-03-03 to 2024-03-02: valid inside, ERR_EXPIRED outside.
 *  - passive-client-handling-commit.json: every proposal reference in a
 *    commit equals the ProposalRef of one of the epoch's proposal messages.
 *  - damaged packages are refused with the right error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "mls_keypackage.h"
#include "mls_struct.h"
#include "vectors.h"

/* 2023-06-01T00:00:00Z, inside passive-client-welcome's lifetimes. */
#define T_2023_06 UINT64_C(1685577600)
#define T_2026 UINT64_C(1767225600)
#define T_2020 UINT64_C(1577836800)

static bool parse_msg(const json_t *e, const char *key, uint16_t wf, struct mls_message *m)
{
    struct vec_bytes b = {0};
    bool ok = vec_hex(e, key, &b) && mls_message_parse(b.p, b.len, m) == 0 &&
              m->wire_format == wf;
    vec_bytes_free(&b);
    return ok;
}

/* Validates the entry's key package at `now` (expecting want) and finds its
 * ref in the Welcome. */
static bool kp_entry(const json_t *e, uint64_t now, int want, uint64_t bad_now)
{
    struct mls_message kp = {0}, w = {0};
    bool ok = false;
    if (!parse_msg(e, "key_package", MLS_WF_KEY_PACKAGE, &kp) ||
        !parse_msg(e, "welcome", MLS_WF_WELCOME, &w))
        goto out;
    int rc = mls_keypackage_validate(&kp.key_package, now);
    if (rc != want) {
        fprintf(stderr, "validate: %s\n", err_str(rc));
        goto out;
    }
    if (bad_now && mls_keypackage_validate(&kp.key_package, bad_now) != ERR_EXPIRED)
        goto out;
    uint8_t ref[MLS_REF_LEN];
    if (mls_keypackage_ref(&kp.key_package, ref) != 0)
        goto out;
    for (size_t i = 0; i < w.welcome.n_secrets && !ok; i++) {
        const struct mls_bytes *nm = &w.welcome.secrets[i].new_member;
        ok = nm->len == MLS_REF_LEN && memcmp(nm->data, ref, MLS_REF_LEN) == 0;
    }
out:
    mls_message_free(&kp);
    mls_message_free(&w);
    return ok;
}

static bool welcome_kp_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    return kp_entry(e, T_2026, 0, 0);
}

/* passive-client-welcome.json's KeyPackages live from mid-2023 on. */
static bool passive_kp_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    return kp_entry(e, T_2023_06, 0, T_2026) && kp_entry(e, T_2020, ERR_EXPIRED, 0);
}

static void welcome_keypackages(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/welcome.json", NULL, VEC_ANY_SUITE,
                             welcome_kp_entry, NULL),
                     0);
    assert_int_equal(vec_run("mls-test-vectors/passive-client-welcome.json", NULL, VEC_ANY_SUITE,
                             passive_kp_entry, NULL),
                     0);
}

/* Every proposal of every epoch is committed by reference, under the
 * ProposalRef we compute (ctx: the count of references matched). */
static bool refs_entry(size_t index, const json_t *e, void *ctx)
{
    unsigned *refs = ctx;
    bool ok = true;
    (void)index;
    size_t k;
    json_t *ep;
    json_array_foreach(json_object_get(e, "epochs"), k, ep)
    {
        const json_t *props = json_object_get(ep, "proposals");
        size_t np = json_array_size(props);
        uint8_t(*pr)[MLS_REF_LEN] = calloc(np ? np : 1, MLS_REF_LEN);
        assert_non_null(pr);
        for (size_t j = 0; j < np; j++) {
            struct mls_message m = {0};
            struct vec_bytes b = {0};
            ok = ok && vec_hex_value(json_array_get(props, j), &b) &&
                 mls_message_parse(b.p, b.len, &m) == 0 &&
                 m.wire_format == MLS_WF_PUBLIC_MESSAGE &&
                 mls_proposal_ref(m.wire_format, &m.public_message.content,
                                  &m.public_message.auth, pr[j]) == 0;
            mls_message_free(&m);
            vec_bytes_free(&b);
        }
        struct mls_message c = {0};
        ok = ok && parse_msg(ep, "commit", MLS_WF_PUBLIC_MESSAGE, &c);
        size_t n_refs = 0;
        const struct mls_commit *cm = &c.public_message.content.commit;
        for (size_t j = 0; ok && j < cm->n_proposals; j++) {
            if (cm->proposals[j].type != MLS_POR_REFERENCE)
                continue;
            n_refs++;
            bool found = false;
            for (size_t q = 0; q < np && !found; q++)
                found = cm->proposals[j].reference.len == MLS_REF_LEN &&
                        memcmp(cm->proposals[j].reference.data, pr[q], MLS_REF_LEN) == 0;
            ok = found;
        }
        /* Every proposal of the epoch is committed by reference. */
        ok = ok && n_refs == np;
        *refs += (unsigned)n_refs;
        mls_message_free(&c);
        free(pr);
    }
    return ok;
}

static void proposal_refs(void **state)
{
    (void)state;
    unsigned refs = 0;
    assert_int_equal(vec_run("mls-test-vectors/passive-client-handling-commit.json", NULL,
                             VEC_ANY_SUITE, refs_entry, &refs),
                     0);
    print_message("%u proposal references matched\n", refs);
    assert_true(refs > 0);
}

static void damaged_keypackages(void **state)
{
    (void)state;
    json_t *root = vec_load("mls-test-vectors/welcome.json");
    json_t *e = json_array_get(root, 0);
    struct mls_message m = {0};
    assert_true(parse_msg(e, "key_package", MLS_WF_KEY_PACKAGE, &m));
    struct mls_key_package *kp = &m.key_package;
    assert_int_equal(mls_keypackage_validate(kp, 0), 0);

    kp->signature.data[3] ^= 1;
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_CRYPTO);
    kp->signature.data[3] ^= 1;

    kp->cipher_suite = 1;
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_UNSUPPORTED);
    kp->cipher_suite = 3;
    kp->version = 2;
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_UNSUPPORTED);
    kp->version = 1;

    /* init_key equal to the encryption key. */
    uint8_t saved[32];
    memcpy(saved, kp->init_key.data, 32);
    memcpy(kp->init_key.data, kp->leaf_node.encryption_key.data, 32);
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_INVALID);
    memcpy(kp->init_key.data, saved, 32);

    /* A changed init_key is caught by the KeyPackage signature. */
    kp->init_key.data[0] ^= 1;
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_CRYPTO);
    kp->init_key.data[0] ^= 1;

    /* The LeafNode's own signature. */
    kp->leaf_node.signature.data[0] ^= 1;
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_CRYPTO);
    kp->leaf_node.signature.data[0] ^= 1;

    /* A leaf that does not list suite 3. */
    struct mls_u16_list *cs = &kp->leaf_node.capabilities.cipher_suites;
    for (size_t i = 0; i < cs->n; i++)
        if (cs->v[i] == 3)
            cs->v[i] = 0x7a7a;
    assert_int_equal(mls_keypackage_validate(kp, 0), ERR_INVALID);

    mls_message_free(&m);
    json_decref(root);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(welcome_keypackages),
        cmocka_unit_test(proposal_refs),
        cmocka_unit_test(damaged_keypackages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
