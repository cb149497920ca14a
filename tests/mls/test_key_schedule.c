/* test_key_schedule.c: mls_ks epochs on key-schedule.json (suite 3): the
 * GroupContext encoding, joiner/welcome secrets, every derived secret,
 * external_pub and the exporter, chained across the vector's epochs; plus
 * external init both ways and the secret tree taking encryption_secret. */
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
#include "mls_ks.h"
#include "tls.h"
#include "vectors.h"

static const struct {
    const char *key;
    enum mls_ks_secret which;
} secrets[] = {
    {"joiner_secret", MLS_KS_JOINER},
    {"welcome_secret", MLS_KS_WELCOME},
    {"sender_data_secret", MLS_KS_SENDER_DATA},
    {"encryption_secret", MLS_KS_ENCRYPTION},
    {"exporter_secret", MLS_KS_EXPORTER},
    {"external_secret", MLS_KS_EXTERNAL},
    {"confirmation_key", MLS_KS_CONFIRMATION_KEY},
    {"membership_key", MLS_KS_MEMBERSHIP_KEY},
    {"resumption_psk", MLS_KS_RESUMPTION_PSK},
    {"epoch_authenticator", MLS_KS_EPOCH_AUTHENTICATOR},
    {"init_secret", MLS_KS_INIT},
};

/* GroupContext { uint16 version = mls10; uint16 cipher_suite; opaque
 * group_id<V>; uint64 epoch; opaque tree_hash<V>; opaque
 * confirmed_transcript_hash<V>; Extension extensions<V>; } */
static int encode_gc(const struct vec_bytes *gid, uint64_t epoch, const struct vec_bytes *th,
                     const struct vec_bytes *cth, uint8_t **buf, size_t *len)
{
    struct tls_writer w;
    tls_writer_init(&w, 0);
    tls_put_u16(&w, 1);
    tls_put_u16(&w, 3);
    tls_put_opaque(&w, gid->p, gid->len);
    tls_put_u64(&w, epoch);
    tls_put_opaque(&w, th->p, th->len);
    tls_put_opaque(&w, cth->p, cth->len);
    tls_put_varint(&w, 0);
    return tls_writer_take(&w, buf, len);
}

static bool check_epoch(const json_t *ev, const struct vec_bytes *gid, uint64_t n,
                        uint8_t init_secret[MLS_KS_NH])
{
    struct vec_bytes th = {0}, cth = {0}, commit = {0}, psk = {0}, gc = {0}, want = {0};
    struct vec_bytes elabel = {0}, ectx = {0}, esecret = {0};
    struct mls_ks_epoch *ep = NULL;
    struct mls_ks_tree *tree = NULL;
    uint8_t *gcbuf = NULL;
    size_t gclen = 0;
    uint8_t s[MLS_KS_NH], pub[CRYPTO_KEM_PUB_LEN];
    bool ok = vec_hex(ev, "tree_hash", &th) && vec_hex(ev, "confirmed_transcript_hash", &cth) &&
              vec_hex(ev, "commit_secret", &commit) && vec_hex(ev, "psk_secret", &psk) &&
              vec_hex(ev, "group_context", &gc) && commit.len == MLS_KS_NH &&
              psk.len == MLS_KS_NH;
    ok = ok && encode_gc(gid, n, &th, &cth, &gcbuf, &gclen) == 0 &&
         vec_eq("group_context", &gc, gcbuf, gclen);
    ok = ok && mls_ks_epoch_new(init_secret, commit.p, psk.p, gcbuf, gclen, &ep) == 0;
    for (size_t i = 0; ok && i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        ok = vec_hex(ev, secrets[i].key, &want) &&
             mls_ks_epoch_secret(ep, secrets[i].which, s) == 0 &&
             vec_eq(secrets[i].key, &want, s, sizeof(s));
        vec_bytes_free(&want);
    }
    ok = ok && vec_hex(ev, "external_pub", &want) && mls_ks_epoch_external_pub(ep, pub) == 0 &&
         vec_eq("external_pub", &want, pub, sizeof(pub));
    vec_bytes_free(&want);

    const json_t *ex = json_object_get(ev, "exporter");
    size_t elen = ex ? (size_t)vec_uint(ex, "length") : 0;
    uint8_t *eout = malloc(elen + 1);
    /* The vectors' generator used the label's *hex text* as the label
     * bytes (checked against an independent computation), so pass that;
     * the context is hex-decoded as usual. */
    const char *ltext = json_string_value(json_object_get(ex, "label"));
    ok = ok && eout && ltext && vec_hex(ex, "label", &elabel) && vec_hex(ex, "context", &ectx) &&
         vec_hex(ex, "secret", &esecret) &&
         mls_ks_epoch_export(ep, (const uint8_t *)ltext, strlen(ltext), ectx.p, ectx.len, eout,
                             elen) == 0 &&
         vec_eq("exporter", &esecret, eout, elen);
    free(eout);

    /* The same epoch from the joiner secret (a Welcome's path). */
    if (ok) {
        struct mls_ks_epoch *ep2 = NULL;
        uint8_t joiner[MLS_KS_NH], a[MLS_KS_NH], b[MLS_KS_NH];
        ok = mls_ks_epoch_secret(ep, MLS_KS_JOINER, joiner) == 0 &&
             mls_ks_epoch_from_joiner(joiner, psk.p, gcbuf, gclen, &ep2) == 0;
        for (int i = 0; ok && i < MLS_KS_SECRET_COUNT; i++)
            ok = mls_ks_epoch_secret(ep, (enum mls_ks_secret)i, a) == 0 &&
                 mls_ks_epoch_secret(ep2, (enum mls_ks_secret)i, b) == 0 &&
                 memcmp(a, b, MLS_KS_NH) == 0;
        mls_ks_epoch_free(ep2);
    }
    /* The secret tree takes encryption_secret once and wipes it. */
    if (ok) {
        static const uint8_t zero[MLS_KS_NH];
        ok = mls_ks_tree_new_from_epoch(ep, 4, &tree) == 0 &&
             mls_ks_epoch_secret(ep, MLS_KS_ENCRYPTION, s) == 0 && memcmp(s, zero, 32) == 0;
        mls_ks_tree_free(tree);
        tree = NULL;
        ok = ok && mls_ks_tree_new_from_epoch(ep, 4, &tree) == ERR_BADSTATE && tree == NULL;
    }
    if (ok)
        ok = mls_ks_epoch_secret(ep, MLS_KS_INIT, init_secret) == 0;
    mls_ks_epoch_free(ep);
    free(gcbuf);
    vec_bytes_free(&th);
    vec_bytes_free(&cth);
    vec_bytes_free(&commit);
    vec_bytes_free(&psk);
    vec_bytes_free(&gc);
    vec_bytes_free(&elabel);
    vec_bytes_free(&ectx);
    vec_bytes_free(&esecret);
    return ok;
}

/* One entry: its epochs in order, each from the previous one's init
 * secret (ctx: the count of epochs checked). */
static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    unsigned *epochs = ctx;
    struct vec_bytes gid = {0}, init = {0};
    uint8_t init_secret[MLS_KS_NH];
    size_t j;
    json_t *ev;
    bool ok = vec_hex(e, "group_id", &gid) && vec_hex(e, "initial_init_secret", &init) &&
              init.len == MLS_KS_NH;
    if (ok)
        memcpy(init_secret, init.p, MLS_KS_NH);
    json_array_foreach(json_object_get(e, "epochs"), j, ev) {
        if (!ok)
            break;
        ok = check_epoch(ev, &gid, (uint64_t)j, init_secret);
        if (ok)
            (*epochs)++;
        else
            fprintf(stderr, "key-schedule entry %zu epoch %zu failed\n", index, j);
    }
    vec_bytes_free(&gid);
    vec_bytes_free(&init);
    return ok;
}

static void key_schedule_vectors(void **state)
{
    (void)state;
    unsigned epochs = 0;
    int rc = vec_run("mls-test-vectors/key-schedule.json", "key-schedule.json", VEC_SUITE_3,
                     check_entry, &epochs);
    printf("key-schedule.json: %u epochs checked\n", epochs);
    assert_int_equal(rc, 0);
}

static void external_init_round_trip(void **state)
{
    (void)state;
    uint8_t init[MLS_KS_NH], commit[MLS_KS_NH] = {0}, gc[8] = {1, 2, 3};
    uint8_t pub[CRYPTO_KEM_PUB_LEN], kem[CRYPTO_KEM_ENC_LEN], a[MLS_KS_NH], b[MLS_KS_NH];
    struct mls_ks_epoch *ep = NULL;

    crypto_random(init, sizeof(init));
    assert_int_equal(mls_ks_epoch_new(init, commit, NULL, gc, sizeof(gc), &ep), 0);
    assert_int_equal(mls_ks_epoch_external_pub(ep, pub), 0);
    assert_int_equal(mls_ks_external_init_join(pub, kem, a), 0);
    assert_int_equal(mls_ks_epoch_external_init(ep, kem, sizeof(kem), b), 0);
    assert_memory_equal(a, b, sizeof(a));
    assert_int_equal(mls_ks_epoch_external_init(ep, kem, sizeof(kem) - 1, b), ERR_CRYPTO);
    kem[0] ^= 1;
    assert_int_equal(mls_ks_epoch_external_init(ep, kem, sizeof(kem), b), 0);
    assert_memory_not_equal(a, b, sizeof(a));

    /* Tags: MAC round trip and rejection. */
    uint8_t cth[MLS_KS_NH] = {9}, tag[CRYPTO_MAC_LEN];
    assert_int_equal(mls_ks_epoch_confirmation_tag(ep, cth, tag), 0);
    assert_int_equal(mls_ks_epoch_verify_confirmation_tag(ep, cth, tag, sizeof(tag)), 0);
    tag[0] ^= 1;
    assert_int_equal(mls_ks_epoch_verify_confirmation_tag(ep, cth, tag, sizeof(tag)),
                     ERR_CRYPTO);
    assert_int_equal(mls_ks_epoch_membership_tag(ep, gc, sizeof(gc), tag), 0);
    assert_int_equal(mls_ks_epoch_verify_membership_tag(ep, gc, sizeof(gc), tag, sizeof(tag)), 0);
    assert_int_equal(mls_ks_epoch_verify_membership_tag(ep, gc, 3, tag, sizeof(tag)), ERR_CRYPTO);
    assert_int_equal(mls_ks_epoch_secret(ep, MLS_KS_SECRET_COUNT, a), ERR_INVALID);
    mls_ks_epoch_free(ep);
    mls_ks_epoch_free(NULL);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_schedule_vectors),
        cmocka_unit_test(external_init_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
