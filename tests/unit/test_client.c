/* test_client.c: the client library's pure parts: the table-driven
 * argument parser (with a table shaped like the CLI's), URL parsing, wire
 * error code mapping, and the profile directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "client.h"
#include "client_args.h"
#include "client_profile.h"
#include "err.h"

static const char *const globals[] = {"server=", "profile=", "json", NULL};
static const char *const opt_invite[] = {"role=", "name=", "department=", NULL};
static const char *const req_invite[] = {"role", "name", NULL};
static const struct client_cmd table[] = {
    {"enroll", "CODE", 1, 1, NULL, NULL, "", 0},
    {"devices", "", 0, 0, NULL, NULL, "", 1},
    {"devices revoke", "DEVICE", 1, 1, NULL, NULL, "", 2},
    {"admin invite", "", 0, 0, opt_invite, req_invite, "", 3},
    {"admin department add", "D", 1, 1, NULL, NULL, "", 4},
    {"admin departments", "", 0, 0, NULL, NULL, "", 5},
};
#define N (sizeof(table) / sizeof(table[0]))

static int parse(struct client_args *a, char *err, size_t cap, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, cap);
    argv[argc++] = (char *)"sammen";
    for (char *s; (s = va_arg(ap, char *)) != NULL;)
        argv[argc++] = s;
    va_end(ap);
    return client_args_parse(table, N, globals, argc, argv, a, err, cap);
}

static void args_commands(void **state)
{
    (void)state;
    struct client_args a;
    char err[256];

    assert_int_equal(parse(&a, err, sizeof(err), "--server", "ws://x:1", "--profile", "/p",
                           "enroll", "abcde", NULL), 0);
    assert_int_equal(a.cmd->tag, 0);
    assert_int_equal(a.npos, 1);
    assert_string_equal(a.pos[0], "abcde");
    assert_string_equal(client_args_get(&a, "server"), "ws://x:1");
    assert_string_equal(client_args_get(&a, "profile"), "/p");
    assert_null(client_args_get(&a, "json"));

    /* longest match: "devices revoke" rather than "devices" + argument */
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "revoke", "d_1", "--json", NULL), 0);
    assert_int_equal(a.cmd->tag, 2);
    assert_string_equal(a.pos[0], "d_1");
    assert_string_equal(client_args_get(&a, "json"), "");
    assert_int_equal(parse(&a, err, sizeof(err), "devices", NULL), 0);
    assert_int_equal(a.cmd->tag, 1);

    /* options anywhere after the command, --opt=value form */
    assert_int_equal(parse(&a, err, sizeof(err), "admin", "--json", "invite", "--role=staff",
                           "--name", "anna", "--profile=/q", NULL), 0);
    assert_int_equal(a.cmd->tag, 3);
    assert_string_equal(client_args_get(&a, "role"), "staff");
    assert_string_equal(client_args_get(&a, "name"), "anna");
    assert_string_equal(client_args_get(&a, "profile"), "/q");
    assert_null(client_args_get(&a, "department"));

    assert_int_equal(parse(&a, err, sizeof(err), "admin", "department", "add", "care", NULL),
                     0);
    assert_int_equal(a.cmd->tag, 4);
    assert_string_equal(a.pos[0], "care");
    /* "--" makes what follows a word even if it starts with "-" */
    assert_int_equal(parse(&a, err, sizeof(err), "admin", "department", "add", "--", "-x",
                           NULL), 0);
    assert_string_equal(a.pos[0], "-x");

    assert_int_equal(parse(&a, err, sizeof(err), "--help", NULL), 0);
    assert_true(a.help);
    assert_null(a.cmd);
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "revoke", "-h", NULL), 0);
    assert_true(a.help);
    assert_int_equal(a.cmd->tag, 2);
}

static void args_usage_errors(void **state)
{
    (void)state;
    struct client_args a;
    char err[256];

    assert_int_equal(parse(&a, err, sizeof(err), NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "frobnicate", NULL), ERR_INVALID);
    assert_non_null(strstr(err, "frobnicate"));
    assert_int_equal(parse(&a, err, sizeof(err), "enroll", NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "enroll", "a", "b", NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "revoke", NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "admin", "invite", "--role", "staff", NULL),
                     ERR_INVALID);
    assert_non_null(strstr(err, "--name"));
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "--bogus", NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "-x", NULL), ERR_INVALID);
    /* an option of another command does not apply */
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "--role", "x", NULL), ERR_INVALID);
    assert_non_null(strstr(err, "does not apply"));
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "--server", NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "--json=1", NULL), ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "devices", "--json", "--json", NULL),
                     ERR_INVALID);
    assert_int_equal(parse(&a, err, sizeof(err), "admin", NULL), ERR_INVALID);
}

static void urls(void **state)
{
    (void)state;
    char host[64], path[64];
    int port;
    bool tls;

    assert_int_equal(client_url_parse("ws://127.0.0.1:8480", host, sizeof(host), &port, path,
                                      sizeof(path), &tls), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8480);
    assert_string_equal(path, "/");
    assert_false(tls);
    assert_int_equal(client_url_parse("wss://chat.example.org/ws", host, sizeof(host), &port,
                                      path, sizeof(path), &tls), 0);
    assert_string_equal(host, "chat.example.org");
    assert_int_equal(port, 443);
    assert_string_equal(path, "/ws");
    assert_true(tls);
    assert_int_equal(client_url_parse("ws://[::1]:9/", host, sizeof(host), &port, path,
                                      sizeof(path), &tls), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9);
    const char *bad[] = {"http://x", "ws://", "ws://:80", "ws://x:", "ws://x:0", "ws://x:65536",
                         "ws://x:80x", "ws://[::1", "ws://us@er:1", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(client_url_parse(bad[i], host, sizeof(host), &port, path,
                                          sizeof(path), &tls), ERR_INVALID);
}

static void error_codes(void **state)
{
    (void)state;
    assert_int_equal(client_err_from_code("denied"), ERR_DENIED);
    assert_int_equal(client_err_from_code("expired"), ERR_EXPIRED);
    assert_int_equal(client_err_from_code("conflict"), ERR_CONFLICT);
    assert_int_equal(client_err_from_code("crypto"), ERR_CRYPTO);
    assert_int_equal(client_err_from_code("not_found"), ERR_NOT_FOUND);
    assert_int_equal(client_err_from_code("bad_request"), ERR_INVALID);
    assert_int_equal(client_err_from_code("unknown_op"), ERR_UNSUPPORTED);
    assert_int_equal(client_err_from_code("unauthenticated"), ERR_BADSTATE);
    assert_int_equal(client_err_from_code("no such thing"), ERR_INTERNAL);
}

static void profile(void **state)
{
    (void)state;
    char dir[64] = "/tmp/sammen-profile-XXXXXX", sub[128], path[160], cmd[200];
    struct client_profile p, q;
    struct stat st;
    uint8_t seed[32], back[32];

    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/prof", dir);
    assert_int_equal(client_profile_load(sub, &q), ERR_NOT_FOUND);
    memset(&p, 0, sizeof(p));
    strcpy(p.server, "ws://127.0.0.1:1");
    strcpy(p.id, "anna@example.org");
    strcpy(p.device, "d_0011223344556677");
    strcpy(p.domain, "example.org");
    strcpy(p.role, "admin");
    assert_int_equal(client_profile_save(sub, &p), 0);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(client_profile_path(sub, "profile.json", path, sizeof(path)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(client_profile_load(sub, &q), 0);
    assert_memory_equal(&p, &q, sizeof(p));
    /* a profile others can read is refused */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(client_profile_load(sub, &q), ERR_DENIED);
    assert_int_equal(chmod(path, 0600), 0);
    /* garbage and a wrong version are malformed */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"version\": 2}", f);
    fclose(f);
    assert_int_equal(client_profile_load(sub, &q), ERR_MALFORMED);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{not json", f);
    fclose(f);
    assert_int_equal(client_profile_load(sub, &q), ERR_MALFORMED);
    /* the decoder itself */
    static const char ok[] = "{\"version\": 1, \"id\": \"a@b\", \"extra\": [1, 2]}";
    assert_int_equal(client_profile_parse(ok, strlen(ok), &q), 0);
    assert_string_equal(q.id, "a@b");
    assert_string_equal(q.server, "");
    static const char longdev[] = "{\"version\": 1, \"device\": \"d_00112233445566778\"}";
    assert_int_equal(client_profile_parse(longdev, strlen(longdev), &q), ERR_TOO_BIG);
    static const char badtype[] = "{\"version\": 1, \"role\": 7}";
    assert_int_equal(client_profile_parse(badtype, strlen(badtype), &q), ERR_MALFORMED);
    static const char dup[] = "{\"version\": 1, \"id\": \"x\", \"id\": \"y\"}";
    assert_int_equal(client_profile_parse(dup, strlen(dup), &q), ERR_MALFORMED);
    assert_int_equal(client_profile_parse("[]", 2, &q), ERR_MALFORMED);
    assert_int_equal(client_profile_parse("", 0, &q), ERR_MALFORMED);
    /* the device key */
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(client_profile_write_key(sub, seed, NULL), 0);
    assert_int_equal(client_profile_read_key(sub, NULL, back), 0);
    assert_memory_equal(seed, back, 32);
    /* a directory others may read is tightened to 0700 */
    assert_int_equal(chmod(sub, 0755), 0);
    assert_int_equal(client_profile_mkdir(sub), 0);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a directory others may write is refused */
    assert_int_equal(chmod(sub, 0777), 0);
    assert_int_equal(client_profile_mkdir(sub), ERR_DENIED);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the receive path on an offline connection ---- */

struct seen {
    int calls, rc;
    char code[WIRE_MAX_NAME + 1];
    bool had_resp;
    bool free_in_cb;
};

static void on_resp(struct client_conn *c, const struct client_frame *resp, int rc, void *user)
{
    struct seen *s = user;
    s->calls++;
    s->rc = rc;
    s->had_resp = resp != NULL;
    if (resp)
        snprintf(s->code, sizeof(s->code), "%s", resp->msg.name);
    if (s->free_in_cb)
        client_conn_free(c);
}

static uint8_t *encode_ok(uint32_t id, size_t *len)
{
    struct wire_enc e;
    const uint8_t *d;
    uint8_t *out;
    wire_enc_init(&e);
    wire_enc_ok(&e, id, 1);
    wire_kv_str(&e, "x", "y");
    assert_int_equal(wire_enc_finish(&e, &d, len), 0);
    out = malloc(*len);
    memcpy(out, d, *len);
    wire_enc_reset(&e);
    return out;
}

static uint8_t *encode_err(uint32_t id, const char *code, size_t *len)
{
    struct wire_enc e;
    const uint8_t *d;
    uint8_t *out;
    wire_enc_init(&e);
    wire_enc_err(&e, id, code, "because");
    assert_int_equal(wire_enc_finish(&e, &d, len), 0);
    out = malloc(*len);
    memcpy(out, d, *len);
    wire_enc_reset(&e);
    return out;
}

static uint8_t *encode_event(const char *ev, size_t *len)
{
    struct wire_enc e;
    const uint8_t *d;
    uint8_t *out;
    wire_enc_init(&e);
    wire_enc_event(&e, ev, 1);
    wire_kv_str(&e, "reason", "revoked");
    assert_int_equal(wire_enc_finish(&e, &d, len), 0);
    out = malloc(*len);
    memcpy(out, d, *len);
    wire_enc_reset(&e);
    return out;
}

static void receive_path(void **state)
{
    (void)state;
    struct client_ctx *ctx = NULL;
    struct client_conn *c = NULL;
    struct seen a = {0}, b = {0}, d = {0};
    static const uint8_t req[1] = {0x80};
    uint8_t *m;
    size_t len;

    assert_int_equal(client_ctx_new(NULL, &ctx), 0);
    assert_int_equal(client_conn_new_offline(ctx, NULL, NULL, &c), 0);
    assert_int_equal(client_conn_state(c), CLIENT_OPEN);
    assert_int_equal(client_conn_send(c, 1, req, 1, on_resp, &a), 0);
    assert_int_equal(client_conn_send(c, 2, req, 1, on_resp, &b), 0);
    assert_int_equal(client_conn_send(c, 3, req, 1, on_resp, &d), 0);
    assert_int_equal(client_conn_send(c, 3, req, 1, on_resp, &d), ERR_CONFLICT);
    assert_int_equal(client_conn_pending(c), 3);

    /* answers in any order, each delivered once */
    m = encode_err(2, "denied", &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.rc, ERR_DENIED);
    assert_string_equal(b.code, "denied");
    m = encode_ok(1, &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    assert_int_equal(client_conn_receive(c, m, len), 0); /* a duplicate is dropped */
    free(m);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(client_conn_pending(c), 1);

    /* events queue without an on_event callback, up to the bound */
    m = encode_event("session.ended", &len);
    for (int i = 0; i < CLIENT_MAX_QUEUED_EVENTS + 5; i++)
        assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(client_conn_dropped_events(c), 5);
    struct client_frame ev;
    assert_int_equal(client_conn_pop_event(c, &ev), 0);
    assert_int_equal(ev.msg.kind, WIRE_EVENT);
    assert_string_equal(ev.msg.name, "session.ended");
    client_frame_free(&ev);

    /* a request from the server, garbage, another version: fatal */
    static const uint8_t garbage[] = {0xc1};
    assert_int_equal(client_conn_receive(c, garbage, sizeof(garbage)), ERR_MALFORMED);
    {
        struct wire_enc e;
        const uint8_t *p;
        wire_enc_init(&e);
        wire_enc_request(&e, 9, "ping", 0);
        assert_int_equal(wire_enc_finish(&e, &p, &len), 0);
        assert_int_equal(client_conn_receive(c, p, len), ERR_MALFORMED);
        wire_enc_reset(&e);
    }
    assert_int_equal(d.calls, 0);

    /* freeing fails what is pending, once, without a response */
    client_conn_free(c);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, ERR_IO);
    assert_false(d.had_resp);

    /* a callback may free its own connection */
    struct seen e2 = {0};
    e2.free_in_cb = true;
    assert_int_equal(client_conn_new_offline(ctx, NULL, NULL, &c), 0);
    assert_int_equal(client_conn_send(c, 5, req, 1, on_resp, &e2), 0);
    m = encode_ok(5, &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(e2.calls, 1);

    /* a frame above max_frame is refused */
    struct client_ctx_opts opts = {NULL, false, 64, 4096};
    client_ctx_free(ctx);
    assert_int_equal(client_ctx_new(&opts, &ctx), 0);
    assert_int_equal(client_conn_new_offline(ctx, NULL, NULL, &c), 0);
    uint8_t big[100];
    memset(big, 0xc0, sizeof(big));
    assert_int_equal(client_conn_receive(c, big, sizeof(big)), ERR_TOO_BIG);
    /* the outbound queue is bounded too */
    static uint8_t chunk[3000];
    assert_int_equal(client_conn_send_raw(c, chunk, sizeof(chunk)), 0);
    assert_int_equal(client_conn_send_raw(c, chunk, sizeof(chunk)), ERR_LIMIT);
    client_ctx_free(ctx); /* frees c as well */
}

/* An error response with id 0 answers a notification: it never completes a
 * pending request (no request has id 0), goes to on_note_error and the
 * counters, and the connection stays open. */
struct note_seen {
    int calls, rc;
    char code[WIRE_MAX_NAME + 1];
};

static void on_note_err(struct client_conn *c, const struct client_frame *err, int rc,
                        void *user)
{
    struct note_seen *n = user;
    (void)c;
    n->calls++;
    n->rc = rc;
    snprintf(n->code, sizeof(n->code), "%s", err->msg.name);
}

static void note_errors(void **state)
{
    (void)state;
    struct client_ctx *ctx = NULL;
    struct client_conn *c = NULL;
    struct seen a = {0};
    struct note_seen ns = {0};
    struct client_note_error last;
    struct client_conn_counts k;
    struct client_conn_cbs cbs = {.on_note_error = on_note_err};
    static const uint8_t req[1] = {0x80};
    uint8_t *m;
    size_t len;

    assert_int_equal(client_ctx_new(NULL, &ctx), 0);
    assert_int_equal(client_conn_new_offline(ctx, NULL, NULL, &c), 0);
    /* id 0 is not a request id */
    assert_int_equal(client_conn_send(c, 0, req, 1, on_resp, &a), ERR_INVALID);
    assert_int_equal(client_conn_pending(c), 0);
    assert_int_equal(client_conn_send(c, 1, req, 1, on_resp, &a), 0);
    assert_int_equal(client_conn_notify(c, req, 1), 0);
    assert_int_equal(client_conn_note_errors(c, &last), 0);

    /* without a callback: counted, the last one kept, the request waits */
    m = encode_err(0, "bad_request", &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    m = encode_err(0, "unauthenticated", &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(a.calls, 0);
    assert_int_equal(client_conn_pending(c), 1);
    assert_int_equal(client_conn_state(c), CLIENT_OPEN);
    memset(&last, 0, sizeof(last));
    assert_int_equal(client_conn_note_errors(c, &last), 2);
    assert_string_equal(last.code, "unauthenticated");
    assert_string_equal(last.msg, "because");
    /* an `ok` with id 0 answers nothing either (and is no error) */
    m = encode_ok(0, &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(a.calls, 0);
    assert_int_equal(client_conn_note_errors(c, NULL), 2);
    /* the request's own answer still completes it */
    m = encode_ok(1, &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, 0);
    client_conn_counts(c, &k);
    assert_int_equal(k.requests, 1);
    assert_int_equal(k.notes, 1);
    assert_int_equal(k.responses, 1);
    assert_int_equal(k.note_errors, 2);
    assert_int_equal(k.events, 0);
    client_conn_free(c);

    /* with on_note_error: called with the mapped error */
    assert_int_equal(client_conn_new_offline(ctx, &cbs, &ns, &c), 0);
    m = encode_err(0, "bad_request", &len);
    assert_int_equal(client_conn_receive(c, m, len), 0);
    free(m);
    assert_int_equal(ns.calls, 1);
    assert_int_equal(ns.rc, ERR_INVALID);
    assert_string_equal(ns.code, "bad_request");
    assert_int_equal(client_conn_note_errors(c, NULL), 1);
    /* a long message is cut to the buffer, NUL-terminated */
    {
        struct wire_enc e;
        const uint8_t *p;
        char longmsg[600];
        memset(longmsg, 'x', sizeof(longmsg) - 1);
        longmsg[sizeof(longmsg) - 1] = '\0';
        wire_enc_init(&e);
        wire_enc_err(&e, 0, "internal", longmsg);
        assert_int_equal(wire_enc_finish(&e, &p, &len), 0);
        assert_int_equal(client_conn_receive(c, p, len), 0);
        wire_enc_reset(&e);
        assert_int_equal(client_conn_note_errors(c, &last), 2);
        assert_string_equal(last.code, "internal");
        assert_int_equal(strlen(last.msg), sizeof(last.msg) - 1);
    }
    assert_int_equal(ns.calls, 2);
    client_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_commands), cmocka_unit_test(args_usage_errors),
        cmocka_unit_test(urls),          cmocka_unit_test(error_codes),
        cmocka_unit_test(profile),       cmocka_unit_test(receive_path),
        cmocka_unit_test(note_errors),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
