/* test_client_basis.c: the client's own check of a member's basis
 * (client_thread_check_basis, which the commit path runs for every Add the
 * server proposes) against a consent.list answer built here, as a
 * compromised server might send it: a good signed grant verifies; a forged
 * signature, a grant whose id does not match its bytes, a revoked, expired,
 * out-of-scope or other-grantee grant, and an unknown basis are refused.
 * Likewise for proxies (a signed registration, not ended) and break-glass
 * (a signed access by that member to this thread, not expired): forged,
 * altered, re-keyed, ended, expired or misdirected ones are refused. */
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

/* A signed proxy registration row; mutate: 1 tamper the signature,
 * 2 list another key, 3 list another id; end: also a signed end. */
static void put_proxy(struct wire_enc *e, const uint8_t seed[32], const char *citizen,
                      const char *proxy, int mutate, bool end, uint64_t ended)
{
    struct msg_proxy_reg p;
    struct msg_proxy_end pe;
    uint8_t *tbs, *etbs = NULL, sig[64], esig[64], pub[32], other[32];
    size_t len, elen = 0;
    char reg[MSG_GRANT_GID_LEN + 1];

    assert_int_equal(keys_id_public(seed, pub), 0);
    msg_proxy_reg_init(&p);
    strcpy(p.citizen, citizen);
    strcpy(p.proxy, proxy);
    strcpy(p.basis, "guardianship");
    p.registered_at = NOW - 500;
    strcpy(p.registrar, "sofie@t.test");
    keys_id_device(pub, p.registrar_device);
    assert_int_equal(msg_proxy_reg_encode(&p, &tbs, &len), 0);
    assert_int_equal(msg_proxy_reg_sign(seed, tbs, len, sig), 0);
    msg_proxy_reg_id(tbs, len, sig, reg);
    if (end) {
        msg_proxy_end_init(&pe);
        strcpy(pe.registration, reg);
        strcpy(pe.citizen, citizen);
        strcpy(pe.proxy, proxy);
        pe.ended_at = NOW - 200;
        strcpy(pe.ender, "sofie@t.test");
        strcpy(pe.ender_device, p.registrar_device);
        assert_int_equal(msg_proxy_end_encode(&pe, &etbs, &elen), 0);
        assert_int_equal(msg_proxy_end_sign(seed, etbs, elen, esig), 0);
    }
    if (mutate == 1)
        sig[3] ^= 0x10;
    memcpy(other, pub, 32);
    other[0] ^= 1;
    if (mutate == 3)
        reg[5] = reg[5] == '0' ? '1' : '0';
    wire_enc_map(e, end ? 9 : 6);
    wire_kv_str(e, "registration", reg);
    wire_kv_str(e, "proxy", proxy);
    wire_kv_bin(e, "tbs", tbs, len);
    wire_kv_bin(e, "sig", sig, 64);
    wire_kv_bin(e, "registrar_key", mutate == 2 ? other : pub, 32);
    wire_kv_uint(e, "ended", ended);
    if (end) {
        wire_kv_bin(e, "end_tbs", etbs, elen);
        wire_kv_bin(e, "end_sig", esig, 64);
        wire_kv_bin(e, "ender_key", pub, 32);
    }
    free(tbs);
    free(etbs);
}

/* A signed break-glass row; mutate: 1 tamper the signature, 2 another id. */
static void put_access(struct wire_enc *e, const uint8_t seed[32], const char *staff,
                       const char *thread, uint64_t opened, uint16_t hours, int mutate)
{
    struct msg_breakglass b;
    uint8_t *tbs, sig[64], pub[32];
    size_t len;
    char id[MSG_GRANT_GID_LEN + 1];

    assert_int_equal(keys_id_public(seed, pub), 0);
    msg_breakglass_init(&b);
    strcpy(b.citizen, CITIZEN);
    strcpy(b.thread, thread);
    strcpy(b.staff, staff);
    keys_id_device(pub, b.staff_device);
    strcpy(b.reason, "found on the floor, no answer");
    b.opened_at = opened;
    b.hours = hours;
    assert_int_equal(msg_breakglass_encode(&b, &tbs, &len), 0);
    assert_int_equal(msg_breakglass_sign(seed, tbs, len, sig), 0);
    msg_breakglass_id(tbs, len, sig, id);
    if (mutate == 1)
        sig[60] ^= 0x01;
    if (mutate == 2)
        id[7] = id[7] == 'a' ? 'b' : 'a';
    wire_enc_map(e, 5);
    wire_kv_str(e, "access", id);
    wire_kv_str(e, "staff", staff);
    wire_kv_bin(e, "tbs", tbs, len);
    wire_kv_bin(e, "sig", sig, 64);
    wire_kv_bin(e, "staff_key", pub, 32);
    free(tbs);
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
    wire_enc_ok(&e, 1, 3);
    wire_enc_key(&e, "grants");
    wire_enc_array(&e, 7);
    put_row(&e, &good, good.gid, pk, 0);
    put_row(&e, &forged, forged.gid, pk, 0);
    put_row(&e, &expired, expired.gid, pk, 0);
    put_row(&e, &other, other.gid, pk, 0);
    put_row(&e, &scoped, scoped.gid, pk, 0);
    put_row(&e, &revoked, revoked.gid, pk, NOW - 5);
    put_row(&e, &good, fake_id, pk, 0); /* good bytes listed under another id */
    wire_enc_key(&e, "proxies");
    wire_enc_array(&e, 8);
    put_proxy(&e, seed, CITIZEN, "peter@t.test", 0, false, 0);      /* good */
    put_proxy(&e, seed, CITIZEN, "mallory@t.test", 1, false, 0);    /* forged */
    put_proxy(&e, seed, CITIZEN, "rekey@t.test", 2, false, 0);      /* another key */
    put_proxy(&e, seed, CITIZEN, "renamed@t.test", 3, false, 0);    /* another id */
    put_proxy(&e, seed, CITIZEN, "ended@t.test", 0, true, NOW - 200); /* signed end */
    put_proxy(&e, seed, CITIZEN, "hidden@t.test", 0, true, 0);      /* end, "not ended" */
    put_proxy(&e, seed, CITIZEN, "said@t.test", 0, false, NOW - 50); /* server: ended */
    put_proxy(&e, seed, "other@t.test", "olaf@t.test", 0, false, 0); /* other citizen */
    wire_enc_key(&e, "breakglass");
    wire_enc_array(&e, 6);
    put_access(&e, seed, "karen@t.test", THREAD, NOW - 100, 2, 0);  /* good */
    put_access(&e, seed, "late@t.test", THREAD, NOW - 3 * 3600, 2, 0); /* expired */
    put_access(&e, seed, "edge@t.test", THREAD, NOW - 3600, 1, 0);  /* ends at NOW */
    put_access(&e, seed, "else@t.test", "t_ffffffffffffffffffffffffffffffff", NOW, 2, 0);
    put_access(&e, seed, "forge@t.test", THREAD, NOW - 100, 2, 1);  /* forged */
    put_access(&e, seed, "swap@t.test", THREAD, NOW - 100, 2, 2);   /* another id */
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
    /* proxies: only a signed, unended registration of that very identity */
    CHECK("peter@t.test", "proxy", 0);
    assert_non_null(strstr(why, "guardianship"));
    CHECK("mallory@t.test", "proxy", ERR_DENIED);
    CHECK("rekey@t.test", "proxy", ERR_DENIED);
    CHECK("renamed@t.test", "proxy", ERR_DENIED);
    CHECK("ended@t.test", "proxy", ERR_DENIED);
    assert_non_null(strstr(why, "ended"));
    CHECK("hidden@t.test", "proxy", ERR_DENIED); /* the end verifies: it counts */
    CHECK("said@t.test", "proxy", ERR_DENIED);
    CHECK("olaf@t.test", "proxy", ERR_DENIED); /* a proxy of someone else */
    CHECK("nobody@t.test", "proxy", ERR_DENIED);
    CHECK("karen@t.test", "proxy", ERR_DENIED); /* break-glass is not a proxy */
    /* break-glass: signed by that member, for this thread, not expired */
    CHECK("karen@t.test", "breakglass", 0);
    assert_non_null(strstr(why, "found on the floor"));
    assert_int_equal(client_thread_check_basis(d, CITIZEN, THREAD, "care", "karen@t.test",
                                               "breakglass", NOW + 2 * 3600, why, sizeof(why)),
                     ERR_DENIED); /* the server's time has moved past it */
    CHECK("late@t.test", "breakglass", ERR_DENIED);
    CHECK("edge@t.test", "breakglass", ERR_DENIED);
    CHECK("else@t.test", "breakglass", ERR_DENIED);
    CHECK("forge@t.test", "breakglass", ERR_DENIED);
    CHECK("swap@t.test", "breakglass", ERR_DENIED);
    CHECK("peter@t.test", "breakglass", ERR_DENIED);
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
