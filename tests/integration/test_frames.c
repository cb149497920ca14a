/*
 * test_frames.c: the real sammen-server against bad frames. Malformed,
 * oversized, text, unknown-op, wrong-version, fragmented and "huge count"
 * frames are answered (and a valid frame near max_frame is reassembled) with the right error codes; connections are closed
 * only where continuing is unsafe (no readable id, text, oversized); a
 * second connection carries on throughout, and the server still serves and
 * exits cleanly (status 0 on SIGTERM) afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsraw.h"

#define MAX_FRAME 300000

static struct tsrv S;

/* Expects the next message on c to be an error response with code and id. */
static void expect_err(struct wsc *c, uint32_t id, const char *code)
{
    struct wsresp r;
    assert_int_equal(wsc_next(c, &r, 5000), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.msg.kind, WIRE_RESPONSE);
    assert_false(r.msg.ok);
    assert_int_equal(r.msg.id, id);
    if (strcmp(r.msg.name, code) != 0)
        fail_msg("expected error %s, got %s", code, r.msg.name);
    wsresp_free(&r);
}

/* Pings on c and checks the answer: the connection still works. */
static void expect_alive(struct wsc *c, uint32_t id)
{
    struct wsresp r;
    assert_int_equal(wsc_call0(c, id, "ping", &r), 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.msg.ok);
    assert_int_equal(r.msg.id, id);
    uint64_t t = 0;
    assert_int_equal(wire_get_uint(&r.msg.body, "time", &t), 0);
    assert_true(t > 1600000000u);
    wsresp_free(&r);
}

static int setup(void **state)
{
    (void)state;
    if (tsrv_init(&S, "frames.test") != 0)
        return -1;
    static const char *const extra[] = {"--max-frame", "300000", "--max-outq", "1M", NULL};
    if (tsrv_start(&S, extra) != 0)
        return -1;
    return wsc_global_init();
}

static int teardown(void **state)
{
    (void)state;
    wsc_global_free();
    int st = tsrv_stop(&S, SIGTERM);
    tsrv_cleanup(&S);
    return st == 0 ? 0 : -1;
}

static void ping_and_unknown_op(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    assert_int_equal(a->state, WSC_OPEN);
    expect_alive(a, 1);
    struct wsresp r;
    assert_int_equal(wsc_call0(a, 2, "no.such.op", &r), 0);
    assert_false(r.msg.ok);
    assert_string_equal(r.msg.name, "unknown_op");
    wsresp_free(&r);
    /* the test-only op does not exist without --test-clock */
    assert_int_equal(wsc_call0(a, 3, "test.clock_shift", &r), 0);
    assert_string_equal(r.msg.name, "unknown_op");
    wsresp_free(&r);
    /* needs login */
    assert_int_equal(wsc_call0(a, 4, "whoami", &r), 0);
    assert_string_equal(r.msg.name, "unauthenticated");
    wsresp_free(&r);
    assert_int_equal(wsc_call0(a, 5, "admin.departments", &r), 0);
    assert_string_equal(r.msg.name, "unauthenticated");
    wsresp_free(&r);
    expect_alive(a, 6);
    wsc_free(a);
}

static void garbage_closes_other_carries_on(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    struct wsc *b = wsc_open(S.port);
    assert_int_equal(a->state, WSC_OPEN);
    assert_int_equal(b->state, WSC_OPEN);
    static const uint8_t junk[] = {0xc1, 0x00, 0xff};
    assert_int_equal(wsc_send(b, junk, sizeof(junk)), 0);
    expect_err(b, 0, "malformed");
    assert_true(wsc_wait_closed(b, 5000));
    expect_alive(a, 10);
    wsc_free(b);

    /* the five-byte "4 billion element array" */
    b = wsc_open(S.port);
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(wsc_send(b, huge, sizeof(huge)), 0);
    expect_err(b, 0, "too_big");
    assert_true(wsc_wait_closed(b, 5000));
    expect_alive(a, 11);
    wsc_free(b);

    /* a response sent to the server is not a request */
    b = wsc_open(S.port);
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_ok(&e, 5, 0);
    assert_int_equal(wsc_send_enc(b, &e), 0);
    expect_err(b, 0, "malformed");
    assert_true(wsc_wait_closed(b, 5000));
    wsc_free(b);
    expect_alive(a, 12);
    wsc_free(a);
}

static void bad_fields_with_id_keep_connection(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    /* {v:1, id:7, op:"ping", args:1}: malformed, but the id is known */
    static const uint8_t bad_args[] = {0x84, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0x07, 0xa2, 'o',
                                       'p', 0xa4, 'p', 'i', 'n', 'g', 0xa4, 'a', 'r', 'g', 's',
                                       0x01};
    assert_int_equal(wsc_send(a, bad_args, sizeof(bad_args)), 0);
    expect_err(a, 7, "malformed");
    expect_alive(a, 8);
    /* protocol version 2 */
    static const uint8_t v2[] = {0x83, 0xa1, 'v', 0x02, 0xa2, 'i', 'd', 0x09,
                                 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'};
    assert_int_equal(wsc_send(a, v2, sizeof(v2)), 0);
    expect_err(a, 9, "unsupported");
    /* an op longer than 64 bytes */
    char op[80];
    memset(op, 'x', 70);
    op[70] = 0;
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, 10, op, 0);
    assert_int_equal(wsc_send_enc(a, &e), 0);
    expect_err(a, 10, "too_big");
    /* missing and mistyped arguments */
    wire_enc_init(&e);
    wire_enc_request(&e, 11, "enroll", 1);
    wire_kv_uint(&e, "code", 5);
    assert_int_equal(wsc_send_enc(a, &e), 0);
    expect_err(a, 11, "bad_request");
    wire_enc_init(&e);
    wire_enc_request(&e, 12, "auth.login", 0);
    assert_int_equal(wsc_send_enc(a, &e), 0);
    expect_err(a, 12, "bad_request");
    expect_alive(a, 13);
    wsc_free(a);
}

static void text_and_oversized_frames(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    struct wsc *b = wsc_open(S.port);
    assert_int_equal(wsc_write(b, "{\"op\":\"ping\"}", 13, LWS_WRITE_TEXT), 0);
    expect_err(b, 0, "malformed");
    assert_true(wsc_wait_closed(b, 5000));
    wsc_free(b);
    expect_alive(a, 20);

    b = wsc_open(S.port);
    uint8_t *big = calloc(1, MAX_FRAME + 100);
    assert_non_null(big);
    assert_int_equal(wsc_send(b, big, MAX_FRAME + 100), 0);
    expect_err(b, 0, "too_big");
    assert_true(wsc_wait_closed(b, 5000));
    wsc_free(b);
    expect_alive(a, 21);

    /* oversized in fragments: the limit applies to the reassembled frame */
    b = wsc_open(S.port);
    assert_int_equal(wsc_write(b, big, 160000, LWS_WRITE_BINARY | LWS_WRITE_NO_FIN), 0);
    assert_int_equal(wsc_write(b, big, 160000, LWS_WRITE_CONTINUATION), 0);
    expect_err(b, 0, "too_big");
    assert_true(wsc_wait_closed(b, 5000));
    wsc_free(b);
    free(big);
    expect_alive(a, 22);
    wsc_free(a);
}

static void fragmented_request_reassembled(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    struct wire_enc e;
    const uint8_t *d;
    size_t len;
    wire_enc_init(&e);
    wire_enc_request(&e, 30, "ping", 0);
    assert_int_equal(wire_enc_finish(&e, &d, &len), 0);
    assert_true(len > 6);
    assert_int_equal(wsc_write(a, d, 3, LWS_WRITE_BINARY | LWS_WRITE_NO_FIN), 0);
    assert_int_equal(wsc_write(a, d + 3, 2, LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN), 0);
    assert_int_equal(wsc_write(a, d + 5, len - 5, LWS_WRITE_CONTINUATION), 0);
    wire_enc_reset(&e);
    struct wsresp r;
    assert_int_equal(wsc_next(a, &r, 5000), 0);
    assert_true(r.msg.ok);
    assert_int_equal(r.msg.id, 30);
    wsresp_free(&r);
    wsc_free(a);
}

/* A valid frame just under max_frame (delivered by lws in several chunks)
 * is reassembled and answered; unknown keys are ignored. */
static void large_valid_frame(void **state)
{
    (void)state;
    struct wsc *a = wsc_open(S.port);
    size_t pad = MAX_FRAME - 100;
    uint8_t *p = calloc(1, pad);
    assert_non_null(p);
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, 50, "ping", 1);
    wire_kv_bin(&e, "padding", p, pad);
    free(p);
    const uint8_t *d;
    size_t len;
    assert_int_equal(wire_enc_finish(&e, &d, &len), 0);
    assert_true(len <= MAX_FRAME);
    assert_int_equal(wsc_send(a, d, len), 0);
    wire_enc_reset(&e);
    struct wsresp r;
    assert_int_equal(wsc_next(a, &r, 5000), 0);
    assert_true(r.msg.ok);
    assert_int_equal(r.msg.id, 50);
    wsresp_free(&r);
    expect_alive(a, 51);
    wsc_free(a);
}

static void no_subprotocol_refused(void **state)
{
    (void)state;
    struct wsc *c = wsc_open_proto(S.port, "");
    assert_int_not_equal(c->state, WSC_OPEN);
    wsc_free(c);
    c = wsc_open_proto(S.port, "other.v9");
    assert_int_not_equal(c->state, WSC_OPEN);
    wsc_free(c);
    struct wsc *a = wsc_open(S.port);
    expect_alive(a, 40);
    wsc_free(a);
}

static void many_requests_in_one_burst(void **state)
{
    (void)state;
    /* 200 pings written back to back: every one answered exactly once */
    struct wsc *a = wsc_open(S.port);
    for (uint32_t i = 1; i <= 200; i++) {
        struct wire_enc e;
        wire_enc_init(&e);
        wire_enc_request(&e, 1000 + i, "ping", 0);
        assert_int_equal(wsc_send_enc(a, &e), 0);
    }
    bool seen[201] = {false};
    for (int i = 0; i < 200; i++) {
        struct wsresp r;
        assert_int_equal(wsc_next(a, &r, 5000), 0);
        assert_true(r.msg.ok);
        assert_true(r.msg.id > 1000 && r.msg.id <= 1200);
        assert_false(seen[r.msg.id - 1000]);
        seen[r.msg.id - 1000] = true;
        wsresp_free(&r);
    }
    wsc_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_and_unknown_op),
        cmocka_unit_test(garbage_closes_other_carries_on),
        cmocka_unit_test(bad_fields_with_id_keep_connection),
        cmocka_unit_test(text_and_oversized_frames),
        cmocka_unit_test(fragmented_request_reassembled),
        cmocka_unit_test(large_valid_frame),
        cmocka_unit_test(no_subprotocol_refused),
        cmocka_unit_test(many_requests_in_one_burst),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
