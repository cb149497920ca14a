/*
 * test_unauth_timeout.c: unauth_timeout against the real server (here 2 s,
 * max_connections 4). A connection that has not logged in and sends
 * nothing is closed after the timeout, so silent connections cannot hold
 * every place of max_connections; one that keeps talking (pings) before
 * login stays until it falls silent; a logged-in session that is idle far
 * longer than the timeout is not closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "wsraw.h"

#define TIMEOUT_S 2

static struct tsrv S;
static const char *const run_args[] = {"--unauth-timeout", "2", "--max-connections", "4", NULL};

static void ping(struct wsc *c, uint32_t id)
{
    struct wsresp r;
    assert_int_equal(wsc_call0(c, id, "ping", &r), 0);
    assert_true(r.msg.ok);
    wsresp_free(&r);
}

/* Enrolls the admin with the init code on c (logs c in). */
static void enroll_admin(struct wsc *c)
{
    uint8_t pk[32], sk[64], msg[128], sig[64];
    size_t cl = strlen(S.admin_code);
    crypto_sign_keypair(pk, sk);
    memcpy(msg, "sammen-enroll-v1", 16);
    msg[16] = 0;
    memcpy(msg + 17, S.admin_code, cl);
    crypto_sign_detached(sig, NULL, msg, 17 + cl, sk);
    struct wire_enc e;
    struct wsresp r;
    wire_enc_init(&e);
    wire_enc_request(&e, 100, "enroll", 3);
    wire_kv_str(&e, "code", S.admin_code);
    wire_kv_bin(&e, "key", pk, 32);
    wire_kv_bin(&e, "sig", sig, 64);
    assert_int_equal(wsc_send_enc(c, &e), 0);
    assert_int_equal(wsc_next(c, &r, 5000), 0);
    assert_int_equal(r.msg.id, 100);
    if (!r.msg.ok)
        fail_msg("enroll: %s: %.*s", r.msg.name, (int)r.msg.err_msg_len, r.msg.err_msg);
    wsresp_free(&r);
    sodium_memzero(sk, sizeof(sk));
}

/* Opens a connection, retrying for a while: the server may see the close
 * of an earlier one a moment after we do. NULL if it never opens. */
static struct wsc *open_retry(void)
{
    for (int tries = 0; tries < 50; tries++) {
        struct wsc *c = wsc_open(S.port);
        if (c->state == WSC_OPEN)
            return c;
        wsc_free(c);
        usleep(100000);
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 || tsrv_init(&S, "idle.test") != 0 || tsrv_start(&S, run_args) != 0)
        return -1;
    return wsc_global_init();
}

static int teardown(void **state)
{
    (void)state;
    wsc_global_free();
    tsrv_cleanup(&S);
    return 0;
}

static void silent_closed_talking_and_logged_in_kept(void **state)
{
    (void)state;
    struct wsc *silent = wsc_open(S.port);
    struct wsc *talker = wsc_open(S.port);
    struct wsc *admin = wsc_open(S.port);
    assert_int_equal(silent->state, WSC_OPEN);
    assert_int_equal(talker->state, WSC_OPEN);
    assert_int_equal(admin->state, WSC_OPEN);
    uint64_t t0 = now_ms();
    enroll_admin(admin);

    /* 2.5 timeouts: the talker pings every 500 ms, the others say nothing */
    uint32_t id = 1;
    while (now_ms() - t0 < 2500 * TIMEOUT_S) {
        ping(talker, id++);
        wsc_service_until(wsc_never, NULL, 500);
    }
    assert_int_equal(silent->state, WSC_CLOSED);
    assert_int_equal(talker->state, WSC_OPEN);
    ping(talker, id++);
    /* the logged-in session, idle for 5 s, still answers */
    assert_int_equal(admin->state, WSC_OPEN);
    ping(admin, id++);

    /* the talker falls silent: closed within about one timeout (the
     * server's sweep runs once a second) */
    uint64_t t1 = now_ms();
    assert_true(wsc_wait_closed(talker, 1000 * (TIMEOUT_S + 3)));
    assert_true(now_ms() - t1 >= 1000 * (TIMEOUT_S - 1));
    wsc_free(silent);
    wsc_free(talker);
    assert_int_equal(admin->state, WSC_OPEN);
    ping(admin, id++);
    wsc_free(admin);
}

static void silent_connections_free_their_places(void **state)
{
    (void)state;
    struct wsc *c[4];
    for (int i = 0; i < 4; i++)
        assert_non_null(c[i] = open_retry());
    /* every place taken by a silent connection: refused at the handshake */
    struct wsc *extra = wsc_open(S.port);
    assert_int_not_equal(extra->state, WSC_OPEN);
    wsc_free(extra);
    for (int i = 0; i < 4; i++)
        assert_true(wsc_wait_closed(c[i], 1000 * (TIMEOUT_S + 3)));
    /* the places are free again (the server may see the closes a moment
     * after we do) */
    struct wsc *again = open_retry();
    assert_non_null(again);
    ping(again, 1);
    wsc_free(again);
    for (int i = 0; i < 4; i++)
        wsc_free(c[i]);
    assert_int_equal(tsrv_stop(&S, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(silent_closed_talking_and_logged_in_kept),
        cmocka_unit_test(silent_connections_free_their_places),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
