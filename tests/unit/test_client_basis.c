/* test_client_basis.c: the client's own check of a member's basis
 * (client_thread_check_basis, which the commit path runs for every Add the
 * server proposes) against a consent.list answer built here, as a
 * compromised server might send it: a good signed grant verifies; a forged
 * signature, a grant whose id does not match its bytes, a revoked, expired,
 * out-of-scope or other-grantee grant, and an unknown basis are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client.h"
#include "client_thread.h"
#include "err.h"
#include "keys_id.h"
#include "msg_grant.h"
#include "wire.h"

#define CITIZEN "ella@t.test"
#define THREAD "t_0102030405060708090a0b0c0d0e0f10"
#define NOW 1700001000u

static char dir[64];

struct signed_grant {
    uint8_t *tbs;
    size_t len;
    uint8_t sig[64];
    char gid[MSG_GRANT_GID_LEN + 1];
};

static void make_grant(const uint8_t seed[32], const char *grantee, const char *scope,
                       uint64_t expires, struct signed_grant *out)
{
    struct msg_grant g;
    msg_grant_init(&g);
    strcpy(g.citizen, CITIZEN);
    strcpy(g.grantee, grantee);
    strcpy(g.scope, scope);
    strcpy(g.basis, "consent");
    g.issued_at = NOW - 100;
    g.expires_at = expires;
    g.form = MSG_GRANT_FORM_CITIZEN;
    strcpy(g.granter, CITIZEN);
    uint8_t pub[32];
    assert_int_equal(keys_id_public(seed, pub), 0);
    keys_id_device(pub, g.granter_device); /* the device of the signing key */
    assert_int_equal(msg_grant_encode(&g, &out->tbs, &out->len), 0);
    assert_int_equal(msg_grant_sign(seed, out->tbs, out->len, out->sig), 0);
    msg_grant_id(out->tbs, out->len, out->sig, out->gid);
}

/* One ledger row; the id listed may differ from the grant's real one. */
static void put_row(struct wire_enc *e, const struct signed_grant *sg, const char *listed_id,
                    const uint8_t key[32], uint64_t revoked)
{
    wire_enc_map(e, 5);
    wire_kv_str(e, "grant", listed_id);
    wire_kv_bin(e, "tbs", sg->tbs, sg->len);
    wire_kv_bin(e, "sig", sg->sig, 64);
    wire_kv_bin(e, "granter_key", key, 32);
    wire_kv_uint(e, "revoked", revoked);
}

static void basis(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], dseed[32], dpub[32];
    char dev[KEYS_ID_DEVICE_LEN + 1];
    struct signed_grant good, forged, expired, other, scoped, revoked;
    struct client_dev *d = NULL;
    struct wire_enc e;
    const uint8_t *buf;
    uint8_t *copy;
    size_t len;
    int rc;
    char why[300], fake_id[MSG_GRANT_GID_LEN + 1];

    randombytes_buf(seed, sizeof(seed));
    randombytes_buf(dseed, sizeof(dseed));
    assert_int_equal(keys_id_public(dseed, dpub), 0);
    keys_id_device(dpub, dev);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    make_grant(seed, "nurse@t.test", "care", 0, &good);
    make_grant(seed, "mallory@t.test", "care", 0, &forged);
    forged.sig[5] ^= 0x40; /* the server forged (or damaged) it */
    make_grant(seed, "old@t.test", "care", NOW - 10, &expired);
    make_grant(seed, "olga@t.test", "care", 0, &other);
    make_grant(seed, "sam@t.test", "thread:t_ffffffffffffffffffffffffffffffff", 0, &scoped);
    make_grant(seed, "rev@t.test", "care", 0, &revoked);
    snprintf(fake_id, sizeof(fake_id), "g_00112233445566%02x", (unsigned)good.gid[17]);

    wire_enc_init(&e);
    wire_enc_ok(&e, 1, 1);
    wire_enc_key(&e, "grants");
    wire_enc_array(&e, 7);
    put_row(&e, &good, good.gid, pk, 0);
    put_row(&e, &forged, forged.gid, pk, 0);
    put_row(&e, &expired, expired.gid, pk, 0);
    put_row(&e, &other, other.gid, pk, 0);
    put_row(&e, &scoped, scoped.gid, pk, 0);
    put_row(&e, &revoked, revoked.gid, pk, NOW - 5);
    put_row(&e, &good, fake_id, pk, 0); /* good bytes listed under another id */
    assert_int_equal(wire_enc_finish(&e, &buf, &len), 0);
    copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    wire_enc_reset(&e);

    assert_int_equal(client_dev_open(NULL, dir, "nurse@t.test", dev, "t.test",
                                     dseed, 1000, &d),
                     0);
    /* the ledger as if consent.list had answered this sync */
    assert_int_equal(client_frame_adopt(&d->ledger, copy, len), 0);
    snprintf(d->ledger_citizen, sizeof(d->ledger_citizen), "%s", CITIZEN);

#define CHECK(member, b, want)                                                                   \
    assert_int_equal(client_thread_check_basis(d, CITIZEN, THREAD, "care", member, b, NOW, why, \
                                               sizeof(why)),                                     \
                     want)
    rc = client_thread_check_basis(d, CITIZEN, THREAD, "care", "nurse@t.test", good.gid, NOW,
                                   why, sizeof(why));
    assert_int_equal(rc, 0);
    CHECK(CITIZEN, "citizen", 0);
    CHECK("mallory@t.test", "citizen", ERR_DENIED);
    CHECK("mallory@t.test", forged.gid, ERR_DENIED);
    assert_non_null(strstr(why, "signature"));
    CHECK("old@t.test", expired.gid, ERR_DENIED);
    CHECK("mallory@t.test", other.gid, ERR_DENIED); /* the grant names olga */
    CHECK("olga@t.test", other.gid, 0);
    CHECK("sam@t.test", scoped.gid, ERR_DENIED); /* another thread */
    CHECK("rev@t.test", revoked.gid, ERR_DENIED);
    assert_non_null(strstr(why, "revoked"));
    CHECK("nurse@t.test", fake_id, ERR_DENIED); /* id does not match the bytes */
    CHECK("nurse@t.test", "g_ffffffffffffffff", ERR_DENIED); /* not in the ledger */
    CHECK("nurse@t.test", "friendship", ERR_DENIED);
#undef CHECK
    client_dev_free(d);
    free(good.tbs);
    free(forged.tbs);
    free(expired.tbs);
    free(other.tbs);
    free(scoped.tbs);
    free(revoked.tbs);
}

static int setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    snprintf(dir, sizeof(dir), "/tmp/sammen-cbasis-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char p[128];
    (void)state;
    snprintf(p, sizeof(p), "%s/state.db", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/state.db-journal", dir);
    unlink(p);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(basis, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
