/*
 * test_server_limits.c: the server's resource limits against the real
 * binary: max_connections refuses extra handshakes (and frees slots when
 * connections close); a slow reader (a client that stops reading while
 * asking for large answers) is disconnected when its outbound queue passes
 * max_outq, while another connection carries on; a second server on the
 * same data directory refuses to start; SIGTERM with open
 * sessions sends `session.ended {reason: shutdown}` and exits 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "wsraw.h"

static struct tsrv S;
static const char *const run_args[] = {"--max-connections", "4", "--max-outq", "16K",
                                       "--max-frame", "8K", NULL};
static uint8_t admin_pk[32], admin_sk[64];
static char admin_dev[19];

static void expect_ok(struct wsc *c, uint32_t id)
{
    struct wsresp r;
    assert_int_equal(wsc_next(c, &r, 5000), 0);
    assert_int_equal(r.msg.id, id);
    if (!r.msg.ok)
        fail_msg("id %u: %s: %.*s", id, r.msg.name, (int)r.msg.err_msg_len, r.msg.err_msg);
    wsresp_free(&r);
}

static void ping(struct wsc *c, uint32_t id)
{
    struct wsresp r;
    assert_int_equal(wsc_call0(c, id, "ping", &r), 0);
    assert_true(r.msg.ok);
    wsresp_free(&r);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 || tsrv_init(&S, "limits.test") != 0 || tsrv_start(&S, run_args) != 0)
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

static void max_connections(void **state)
{
    (void)state;
    struct wsc *c[5];
    for (int i = 0; i < 4; i++) {
        c[i] = wsc_open(S.port);
        assert_int_equal(c[i]->state, WSC_OPEN);
    }
    c[4] = wsc_open(S.port);
    assert_int_not_equal(c[4]->state, WSC_OPEN);
    wsc_free(c[4]);
    ping(c[0], 1);
    wsc_free(c[3]);
    /* give the server a moment to see the close */
    struct wsc *again = NULL;
    for (int tries = 0; tries < 50; tries++) {
        again = wsc_open(S.port);
        if (again->state == WSC_OPEN)
            break;
        wsc_free(again);
        again = NULL;
        usleep(100000);
    }
    assert_non_null(again);
    ping(again, 2);
    wsc_free(again);
    for (int i = 0; i < 3; i++)
        wsc_free(c[i]);
}

/* Enrolls the admin with the init code on c. */
static void enroll_admin(struct wsc *c)
{
    crypto_sign_keypair(admin_pk, admin_sk);
    uint8_t h[32];
    crypto_hash_sha256(h, admin_pk, 32);
    memcpy(admin_dev, "d_", 2);
    sodium_bin2hex(admin_dev + 2, 17, h, 8);
    uint8_t msg[128], sig[64];
    size_t cl = strlen(S.admin_code);
    memcpy(msg, "sammen-enroll-v1", 16);
    msg[16] = 0;
    memcpy(msg + 17, S.admin_code, cl);
    crypto_sign_detached(sig, NULL, msg, 17 + cl, admin_sk);
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, 100, "enroll", 3);
    wire_kv_str(&e, "code", S.admin_code);
    wire_kv_bin(&e, "key", admin_pk, 32);
    wire_kv_bin(&e, "sig", sig, 64);
    assert_int_equal(wsc_send_enc(c, &e), 0);
    expect_ok(c, 100);
}

static void slow_reader_disconnected(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    enroll_admin(a);
    /* 60 departments with long names: admin.departments answers ~4 KB */
    for (uint32_t i = 0; i < 60; i++) {
        char name[70];
        snprintf(name, sizeof(name), "department-%02u-with-a-rather-long-name-for-the-test-xx", i);
        struct wire_enc e;
        wire_enc_init(&e);
        wire_enc_request(&e, 200 + i, "admin.department.add", 1);
        wire_kv_str(&e, "name", name);
        assert_int_equal(wsc_send_enc(a, &e), 0);
        expect_ok(a, 200 + i);
    }
    /* stop reading, keep asking */
    lws_rx_flow_control(a->wsi, 0);
    uint32_t sent = 0;
    for (uint32_t i = 0; i < 8000; i++) {
        struct wire_enc e;
        wire_enc_init(&e);
        wire_enc_request(&e, 1000 + i, "admin.departments", 0);
        if (wsc_send_enc(a, &e) != 0)
            break;
        sent++;
    }
    /* the server must have given up on us: read what is there until the
     * close; far fewer answers than requests arrive */
    if (a->wsi)
        lws_rx_flow_control(a->wsi, 1);
    uint32_t got = 0;
    struct wsmsg *m;
    while ((m = wsc_recv(a, 3000)) != NULL) {
        got++;
        free(m);
    }
    assert_true(wsc_wait_closed(a, 5000));
    fprintf(stderr, "slow reader: sent %u requests, got %u answers before the close\n", sent,
            got);
    assert_true(got < sent);
    wsc_free(a);
    /* the server is fine */
    struct wsc *b = wsc_open(S.port);
    assert_int_equal(b->state, WSC_OPEN);
    ping(b, 1);
    wsc_free(b);
}

static void second_server_on_same_data_refused(void **state)
{
    (void)state;
    struct tsrv other = S;
    other.pid = -1;
    other.out_fd = -1;
    assert_int_not_equal(tsrv_start(&other, NULL), 0);
    assert_int_equal(tsrv_stop(&other, 0), 1);
    struct wsc *a = wsc_open(S.port);
    ping(a, 1);
    wsc_free(a);
}

static void shutdown_ends_sessions(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    struct wsc *b = wsc_open(S.port);
    ping(a, 1);
    kill(S.pid, SIGTERM);
    for (int i = 0; i < 2; i++) {
        struct wsc *c = i ? b : a;
        struct wsresp r;
        assert_int_equal(wsc_next(c, &r, 5000), 0);
        assert_int_equal(r.msg.kind, WIRE_EVENT);
        assert_string_equal(r.msg.name, "session.ended");
        char reason[32];
        assert_int_equal(wire_get_cstr(&r.msg.body, "reason", reason, sizeof(reason)), 0);
        assert_string_equal(reason, "shutdown");
        wsresp_free(&r);
        assert_true(wsc_wait_closed(c, 5000));
    }
    assert_int_equal(tsrv_stop(&S, 0), 0);
    wsc_free(a);
    wsc_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(max_connections),
        cmocka_unit_test(slow_reader_disconnected),
        cmocka_unit_test(second_server_on_same_data_refused),
        cmocka_unit_test(shutdown_ends_sessions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
