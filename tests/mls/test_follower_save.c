/* test_follower_save.c: mls_follower_save / mls_follower_load on a real
 * group (protocol/mls_group.h): the state round-trips byte for byte, with
 * pending proposals; a loaded follower accepts the group's next commit
 * exactly as the original does; truncated, extended, wrong-version and
 * tampered states are refused. With SAMMEN_WRITE_CORPUS=DIR it also writes
 * the saved states as seeds for fuzz_mls_follower_load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "mls_follower.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"
#include "tls.h"

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static struct mls_kp *kp_for(const char *user, uint8_t seed[32])
{
    uint8_t pub[32], ident[MLS_KP_MAX_IDENTITY];
    size_t il;
    struct mls_kp *kp = NULL;
    crypto_random(seed, 32);
    crypto_sig_public(seed, pub);
    assert_int_equal(mls_kp_identity(user, pub, ident, sizeof(ident), &il), 0);
    assert_int_equal(mls_kp_create(ident, il, seed, now_s() - 60, now_s() + 86400, &kp), 0);
    return kp;
}

static void server_ext(const uint8_t server_pub[32], struct mls_extension_list *ext)
{
    struct mls_external_senders es = {0};
    struct tls_writer tw;
    es.v = calloc(1, sizeof(*es.v));
    assert_non_null(es.v);
    es.n = 1;
    assert_int_equal(mls_bytes_set(&es.v[0].signature_key, server_pub, 32), 0);
    es.v[0].credential.credential_type = MLS_CREDENTIAL_BASIC;
    assert_int_equal(mls_bytes_set(&es.v[0].credential.identity, (const uint8_t *)"server@x.test",
                                   13),
                     0);
    tls_writer_init(&tw, 0);
    mls_external_senders_encode(&tw, &es);
    mls_external_senders_free(&es);
    assert_int_equal(tw.err, 0);
    memset(ext, 0, sizeof(*ext));
    ext->v = calloc(1, sizeof(struct mls_extension));
    assert_non_null(ext->v);
    ext->n = 1;
    ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    assert_int_equal(mls_bytes_set(&ext->v[0].extension_data, tw.buf, tw.len), 0);
    tls_writer_reset(&tw);
}

static void write_seed(const char *name, const uint8_t *buf, size_t len)
{
    const char *dir = getenv("SAMMEN_WRITE_CORPUS");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* save(f) == save(load(save(f))); returns the loaded copy. */
static struct mls_follower *roundtrip(const struct mls_follower *f, const char *seed_name)
{
    uint8_t *a = NULL, *b = NULL;
    size_t al, bl;
    struct mls_follower *g = NULL;
    assert_int_equal(mls_follower_save(f, &a, &al), 0);
    write_seed(seed_name, a, al);
    assert_int_equal(mls_follower_load(a, al, &g), 0);
    assert_int_equal(mls_follower_save(g, &b, &bl), 0);
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    assert_int_equal(mls_follower_epoch(f), mls_follower_epoch(g));

    /* refusals: every strict prefix, a trailing byte, another version,
     * a tampered tree hash */
    for (size_t i = 0; i < al; i += (al > 200 ? 7 : 1)) {
        struct mls_follower *x = NULL;
        assert_int_not_equal(mls_follower_load(a, i, &x), 0);
        assert_null(x);
    }
    uint8_t *c = malloc(al + 1);
    assert_non_null(c);
    memcpy(c, a, al);
    c[al] = 0;
    struct mls_follower *x = NULL;
    assert_int_equal(mls_follower_load(c, al + 1, &x), ERR_MALFORMED);
    c[1] ^= 2;
    assert_int_equal(mls_follower_load(c, al, &x), ERR_UNSUPPORTED);
    c[1] ^= 2;
    /* the GroupContext's tree_hash: version(2) suite(2) group_id<V>(1+16)
     * epoch(8), then tree_hash<V> (1 + 32) */
    size_t th = 2 + 2 + 2 + 1 + 16 + 8 + 1;
    c[th] ^= 1;
    assert_int_equal(mls_follower_load(c, al, &x), ERR_INVALID);
    free(c);
    free(a);
    free(b);
    return g;
}

static void save_load(void **state)
{
    (void)state;
    uint8_t server_seed[32], server_pub[32], sa[32], sb[32], gid[16];
    struct mls_extension_list ext;
    struct mls_group *A = NULL, *B = NULL;
    struct mls_follower *f = NULL, *g = NULL;
    uint8_t *gi = NULL, *msg = NULL;
    size_t gil, msgl;
    struct mls_group_event ev = {0};
    struct mls_group_commit_out co = {0};

    crypto_random(server_seed, 32);
    crypto_sig_public(server_seed, server_pub);
    crypto_random(gid, sizeof(gid));
    server_ext(server_pub, &ext);
    struct mls_kp *ka = kp_for("anna@x.test", sa);
    struct mls_kp *kb = kp_for("bo@x.test", sb);
    assert_int_equal(mls_group_create(gid, sizeof(gid), ka, &ext, MLS_GROUP_F_PLAIN_MEMORY, &A), 0);
    mls_extension_list_free(&ext);
    assert_int_equal(mls_group_group_info(A, true, &gi, &gil), 0);
    assert_int_equal(mls_follower_new(gi, gil, NULL, 0, &f), 0);
    free(gi);

    /* epoch 0, nothing pending */
    g = roundtrip(f, "epoch0");
    mls_follower_free(g);

    /* an external Add pending */
    uint8_t *kbm = NULL;
    size_t kbl;
    assert_int_equal(mls_kp_message(kb, &kbm, &kbl), 0);
    assert_int_equal(mls_follower_external_add(f, kbm, kbl, server_seed, 0, &msg, &msgl), 0);
    free(kbm);
    assert_int_equal(mls_follower_handle(f, msg, msgl, now_s(), NULL), 0);
    assert_int_equal(mls_group_process(A, msg, msgl, now_s(), &ev), 0);
    mls_group_event_reset(&ev);
    free(msg);
    g = roundtrip(f, "pending_add");
    size_t n1, n2;
    struct mls_follower_pending p1[2], p2[2];
    assert_int_equal(mls_follower_pending(f, p1, 2, &n1), 0);
    assert_int_equal(mls_follower_pending(g, p2, 2, &n2), 0);
    assert_int_equal(n1, 1);
    assert_int_equal(n2, 1);
    assert_memory_equal(p1[0].ref, p2[0].ref, 32);

    /* A commits it: both followers accept the commit and agree */
    struct mls_group_commit_opts o = {.include_pending = true, .force_path = true,
                                      .tree_in_welcome = true};
    assert_int_equal(mls_group_commit_create(A, &o, now_s(), &co), 0);
    assert_int_equal(mls_follower_handle(f, co.commit, co.commit_len, now_s(), NULL), 0);
    assert_int_equal(mls_follower_handle(g, co.commit, co.commit_len, now_s(), NULL), 0);
    assert_int_equal(mls_group_commit_confirm(A), 0);
    assert_int_equal(mls_group_join(co.welcome, co.welcome_len, &kb, 1, NULL, 0, NULL, 0, NULL,
                                    now_s(), MLS_GROUP_F_PLAIN_MEMORY, &B),
                     0);
    mls_group_commit_out_reset(&co);
    {
        uint8_t *a = NULL, *b = NULL;
        size_t al, bl;
        assert_int_equal(mls_follower_save(f, &a, &al), 0);
        assert_int_equal(mls_follower_save(g, &b, &bl), 0);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        free(a);
        free(b);
    }
    mls_follower_free(g);

    /* an external Remove pending at epoch 1, round trip, then B commits it
     * and the loaded follower accepts */
    assert_int_equal(mls_follower_external_remove(f, 0, server_seed, 0, &msg, &msgl), 0);
    assert_int_equal(mls_follower_handle(f, msg, msgl, now_s(), NULL), 0);
    assert_int_equal(mls_group_process(B, msg, msgl, now_s(), &ev), 0);
    mls_group_event_reset(&ev);
    free(msg);
    g = roundtrip(f, "pending_remove");
    assert_int_equal(mls_group_commit_pending(B, now_s(), &co), 0);
    assert_int_equal(mls_follower_handle(g, co.commit, co.commit_len, now_s(), NULL), 0);
    assert_int_equal(mls_follower_epoch(g), 2);
    mls_group_commit_out_reset(&co);
    assert_int_equal(mls_group_commit_confirm(B), 0);

    mls_follower_free(g);
    mls_follower_free(f);
    mls_group_free(A);
    mls_group_free(B);
    mls_kp_free(ka);
    mls_kp_free(kb);
}

int main(void)
{
    if (crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(save_load)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
