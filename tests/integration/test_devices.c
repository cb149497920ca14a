/*
 * test_devices.c: device linking and revocation against the real server.
 * A logged-in device makes a link code; a second device enrolls with it
 * into the same identity; both are listed. Revoking the second device
 * ends its open session at once (session.ended, then the server closes
 * the connection) and it cannot log in again; the first device carries on.
 */
#include "it.h"

#include <signal.h>
#include <stdlib.h>

struct st {
    struct testserver ts;
    struct client_ctx *ctx;
    uint8_t seed[32]; /* the first device of link_and_revoke */
    char id[CLIENT_ID_MAX + 1];
};

static int setup(void **state)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s || sodium_init() < 0)
        return -1;
    *state = s; /* the teardown frees what a failed setup made */
    if (testserver_init(&s->ts, "dev.test", false) != 0 || testserver_start(&s->ts) != 0)
        return -1;
    if (client_ctx_new(NULL, &s->ctx) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    struct st *s = *state;
    if (!s)
        return 0;
    client_ctx_free(s->ctx);
    testserver_cleanup(&s->ts);
    free(s);
    return 0;
}

/* Finds device dev in a device.list answer; returns its index or -1 and
 * sets *revoked, *current. */
static int find_device(const struct client_frame *r, const char *dev, bool *revoked,
                       bool *current, uint32_t *count)
{
    struct wire_array a;
    assert_int_equal(wire_get_array(&r->msg.body, "devices", &a), 0);
    *count = a.n;
    for (uint32_t i = 0; i < a.n; i++) {
        struct wire_map m;
        char id[32], fpr[KEYS_ID_FINGERPRINT_LEN + 1];
        uint64_t created;
        assert_int_equal(wire_array_map(&a, i, &m), 0);
        assert_int_equal(wire_get_cstr(&m, "device", id, sizeof(id)), 0);
        assert_int_equal(wire_get_cstr(&m, "fingerprint", fpr, sizeof(fpr)), 0);
        assert_int_equal(strlen(fpr), KEYS_ID_FINGERPRINT_LEN);
        assert_int_equal(wire_get_uint(&m, "created", &created), 0);
        assert_true(wire_has(&m, "last_seen"));
        if (strcmp(id, dev) == 0) {
            assert_int_equal(wire_get_bool(&m, "revoked", revoked), 0);
            assert_int_equal(wire_get_bool(&m, "current", current), 0);
            return (int)i;
        }
    }
    return -1;
}

static void link_and_revoke(void **state)
{
    struct st *s = *state;
    uint8_t seed1[32], seed2[32], pk2[32];
    char id1[CLIENT_ID_MAX + 1], id2[CLIENT_ID_MAX + 1], dev1[19], dev2[19], code[64];
    char fpr2[KEYS_ID_FINGERPRINT_LEN + 1];
    struct client_frame r;
    bool revoked, current;
    uint32_t n;

    struct client_conn *a = it_enroll(s->ctx, s->ts.url, s->ts.admin_code, seed1, id1,
                                      sizeof(id1), dev1);
    it_ok(a, "device.link_code", NULL, "code", code, sizeof(code));
    struct client_conn *b = it_enroll(s->ctx, s->ts.url, code, seed2, id2, sizeof(id2), dev2);
    assert_string_equal(id1, id2);
    assert_string_not_equal(dev1, dev2);
    /* the link code is one-time */
    {
        uint8_t seed3[32];
        struct client_conn *c = it_open(s->ctx, s->ts.url);
        randombytes_buf(seed3, sizeof(seed3));
        assert_int_equal(client_auth_enroll(c, code, seed3, NULL, IT_TIMEOUT, &r),
                         ERR_CONFLICT);
        client_frame_free(&r);
        client_conn_free(c);
    }

    /* both devices are listed, from either one; fingerprints match ours */
    assert_int_equal(it_call(a, "device.list", NULL, &r), 0);
    assert_true(find_device(&r, dev1, &revoked, &current, &n) >= 0);
    assert_false(revoked);
    assert_true(current);
    assert_true(find_device(&r, dev2, &revoked, &current, &n) >= 0);
    assert_false(current);
    assert_int_equal(n, 2);
    client_frame_free(&r);
    assert_int_equal(it_call(b, "device.list", NULL, &r), 0);
    assert_true(find_device(&r, dev2, &revoked, &current, &n) >= 0);
    assert_true(current);
    {
        struct wire_array arr;
        assert_int_equal(wire_get_array(&r.msg.body, "devices", &arr), 0);
        assert_int_equal(keys_id_public(seed2, pk2), 0);
        keys_id_fingerprint(pk2, fpr2);
        bool seen = false;
        for (uint32_t i = 0; i < arr.n; i++) {
            struct wire_map m;
            char d[32], f[KEYS_ID_FINGERPRINT_LEN + 1];
            assert_int_equal(wire_array_map(&arr, i, &m), 0);
            assert_int_equal(wire_get_cstr(&m, "device", d, sizeof(d)), 0);
            assert_int_equal(wire_get_cstr(&m, "fingerprint", f, sizeof(f)), 0);
            if (strcmp(d, dev2) == 0) {
                assert_string_equal(f, fpr2);
                seen = true;
            }
        }
        assert_true(seen);
    }
    client_frame_free(&r);

    /* someone else's device cannot be revoked; an unknown one is not found */
    const char *unknown[] = {"device", "d_0000000000000000", NULL};
    it_err(a, "device.revoke", unknown, "not_found");

    /* revoke B from A: B's open session ends at once */
    const char *rev[] = {"device", dev2, NULL};
    char got[32];
    it_ok(a, "device.revoke", rev, "device", got, sizeof(got));
    assert_string_equal(got, dev2);
    struct client_frame ev;
    int rc = client_sync_event(b, IT_TIMEOUT, &ev);
    assert_int_equal(rc, 0);
    assert_int_equal(ev.msg.kind, WIRE_EVENT);
    assert_string_equal(ev.msg.name, "session.ended");
    client_frame_free(&ev);
    assert_int_equal(client_sync_closed(b, IT_TIMEOUT), 0);
    client_conn_free(b);

    /* B cannot log in again */
    struct client_conn *c = it_open(s->ctx, s->ts.url);
    assert_int_not_equal(client_auth_login(c, id2, seed2, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    it_err(c, "whoami", NULL, "unauthenticated");
    client_conn_free(c);

    /* revoking twice is a conflict; A carries on and sees B revoked */
    it_err(a, "device.revoke", rev, "conflict");
    assert_int_equal(it_call(a, "device.list", NULL, &r), 0);
    assert_true(find_device(&r, dev2, &revoked, &current, &n) >= 0);
    assert_true(revoked);
    client_frame_free(&r);
    client_conn_free(a);

    /* and A still logs in on a fresh connection */
    c = it_login(s->ctx, s->ts.url, id1, seed1);
    client_conn_free(c);
    memcpy(s->seed, seed1, sizeof(seed1));
    strcpy(s->id, id1);
}

struct login_count {
    int ok, failed, last_rc;
};

static void on_logged_in(struct client_conn *c, int rc, const struct client_frame *reply,
                         void *user)
{
    struct login_count *n = user;
    (void)c;
    (void)reply;
    n->last_rc = rc;
    if (rc == 0)
        n->ok++;
    else
        n->failed++;
}

static void on_pong(struct client_conn *c, const struct client_frame *resp, int rc, void *user)
{
    uint64_t t = 0;
    (void)c;
    assert_int_equal(rc, 0);
    assert_non_null(resp);
    assert_int_equal(wire_get_uint(&resp->msg.body, "time", &t), 0);
    assert_true(t > 0);
    (*(int *)user)++;
}

/* Many connections on one context: the event-driven core serves them
 * together (the load generator will rely on this). */
static void many_connections(void **state)
{
    struct st *s = *state;
    enum { N = 20 };
    struct client_conn *c[N];

    for (int i = 0; i < N; i++)
        assert_int_equal(client_conn_open(s->ctx, s->ts.url, NULL, NULL, &c[i]), 0);
    int64_t deadline = client_sync_now_ms() + IT_TIMEOUT;
    for (;;) {
        int open = 0;
        for (int i = 0; i < N; i++)
            open += client_conn_state(c[i]) == CLIENT_OPEN;
        if (open == N)
            break;
        assert_true(client_sync_now_ms() < deadline);
        assert_int_equal(client_ctx_service(s->ctx, 50), 0);
    }
    /* log every connection in at once with the asynchronous flow */
    struct login_count lc = {0, 0, 0};
    for (int i = 0; i < N; i++)
        assert_int_equal(client_auth_login_start(c[i], s->id, s->seed, on_logged_in, &lc), 0);
    deadline = client_sync_now_ms() + IT_TIMEOUT;
    while (lc.ok + lc.failed < N) {
        assert_true(client_sync_now_ms() < deadline);
        assert_int_equal(client_ctx_service(s->ctx, 50), 0);
    }
    assert_int_equal(lc.ok, N);
    {
        char id[CLIENT_ID_MAX + 1];
        it_ok(c[N - 1], "whoami", NULL, "id", id, sizeof(id));
        assert_string_equal(id, s->id);
    }
    /* a login with a wrong key fails through the same callback */
    {
        uint8_t wrong[32];
        struct client_conn *w = it_open(s->ctx, s->ts.url);
        struct login_count bad = {0, 0, 0};
        randombytes_buf(wrong, sizeof(wrong));
        assert_int_equal(client_auth_login_start(w, s->id, wrong, on_logged_in, &bad), 0);
        deadline = client_sync_now_ms() + IT_TIMEOUT;
        while (bad.ok + bad.failed == 0) {
            assert_true(client_sync_now_ms() < deadline);
            assert_int_equal(client_ctx_service(s->ctx, 50), 0);
        }
        assert_int_equal(bad.failed, 1);
        assert_int_not_equal(bad.last_rc, 0);
        /* freeing a connection mid-flow ends the flow with ERR_IO */
        struct login_count cut = {0, 0, 0};
        assert_int_equal(client_auth_login_start(w, s->id, s->seed, on_logged_in, &cut), 0);
        client_conn_free(w);
        assert_int_equal(cut.failed, 1);
        assert_int_equal(cut.last_rc, ERR_IO);
    }

    /* one ping queued on every connection at once, answered in any order */
    int answered = 0;
    for (int i = 0; i < N; i++) {
        struct wire_enc e;
        const uint8_t *data;
        size_t len;
        uint32_t id = client_conn_next_id(c[i]);
        wire_enc_init(&e);
        wire_enc_request(&e, id, "ping", 0);
        assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
        assert_int_equal(client_conn_send(c[i], id, data, len, on_pong, &answered), 0);
        assert_int_equal(client_conn_send(c[i], id, data, len, on_pong, &answered),
                         ERR_CONFLICT);
        wire_enc_reset(&e);
    }
    deadline = client_sync_now_ms() + IT_TIMEOUT;
    while (answered < N) {
        assert_true(client_sync_now_ms() < deadline);
        assert_int_equal(client_ctx_service(s->ctx, 50), 0);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(client_conn_pending(c[i]), 0);
    /* c[0] is left to teardown's client_ctx_free() with a login flow in
     * progress: the flow must end (ERR_IO) and free its state (the
     * sanitizer build checks for leaks). */
    static struct login_count left_over;
    assert_int_equal(client_auth_login_start(c[0], s->id, s->seed, on_logged_in, &left_over),
                     0);
    for (int i = 1; i < N; i++)
        client_conn_free(c[i]);
}

/* An answer larger than libwebsockets' receive buffer arrives in pieces:
 * 60 linked devices make device.list several kilobytes, which the client
 * must reassemble into one message. */
static void large_answer(void **state)
{
    struct st *s = *state;
    enum { M = 60 };
    struct client_conn *a = it_login(s->ctx, s->ts.url, s->id, s->seed);
    struct client_frame r;
    struct wire_array arr;

    for (int i = 0; i < M; i++) {
        char code[64], id[CLIENT_ID_MAX + 1], dev[19];
        uint8_t seed[32];
        it_ok(a, "device.link_code", NULL, "code", code, sizeof(code));
        struct client_conn *n = it_enroll(s->ctx, s->ts.url, code, seed, id, sizeof(id), dev);
        client_conn_free(n);
    }
    assert_int_equal(it_call(a, "device.list", NULL, &r), 0);
    assert_true(r.len > 8192);
    assert_int_equal(wire_get_array(&r.msg.body, "devices", &arr), 0);
    assert_true(arr.n >= M + 1);
    client_frame_free(&r);
    client_conn_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(link_and_revoke),
        cmocka_unit_test(many_connections),
        cmocka_unit_test(large_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
