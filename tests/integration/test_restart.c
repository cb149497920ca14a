/*
 * test_restart.c: durability against the real server.
 * - SIGTERM drains and exits 0; after a restart on the same data dir the
 *   identity, its device and the departments are all there.
 * - SIGKILL right after an acknowledged write (department, association,
 *   assignment, invitation), then restart: every acknowledged write is
 *   present. Repeated a few times, killing at once after the ack.
 */
#include "it.h"

#include <signal.h>
#include <stdlib.h>

struct st {
    struct testserver ts;
    struct client_ctx *ctx;
    uint8_t seed[32];
    char id[CLIENT_ID_MAX + 1];
    char dev[19];
};

static int setup(void **state)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s || sodium_init() < 0)
        return -1;
    *state = s; /* the teardown frees what a failed setup made */
    if (testserver_init(&s->ts, "restart.test", false) != 0 || testserver_start(&s->ts) != 0)
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

/* True when string s is in the array field of an ok answer. */
static bool listed(const struct client_frame *r, const char *field, const char *s)
{
    struct wire_array a;
    if (wire_get_array(&r->msg.body, field, &a) != 0)
        return false;
    for (uint32_t i = 0; i < a.n; i++) {
        const char *p;
        size_t len;
        if (wire_array_str(&a, i, &p, &len) == 0 && len == strlen(s) && memcmp(p, s, len) == 0)
            return true;
    }
    return false;
}

static void sigterm_restart(void **state)
{
    struct st *s = *state;
    struct client_frame r;
    struct client_conn *c = it_enroll(s->ctx, s->ts.url, s->ts.admin_code, s->seed, s->id,
                                      sizeof(s->id), s->dev);
    const char *dep[] = {"name", "elderly-care", NULL};
    char got[64];

    it_ok(c, "admin.department.add", dep, "department", got, sizeof(got));
    assert_string_equal(got, "elderly-care");
    /* an open session is told the server is going away */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
    assert_int_equal(client_sync_closed(c, IT_TIMEOUT), 0);
    client_conn_free(c);
    /* a clean stop is in the log, and no enrollment code or key is */
    char *log = testserver_log(&s->ts);
    assert_non_null(log);
    assert_non_null(strstr(log, "stopped"));
    assert_null(strstr(log, s->ts.admin_code));
    free(log);

    assert_int_equal(testserver_start(&s->ts), 0);
    c = it_login(s->ctx, s->ts.url, s->id, s->seed);
    assert_int_equal(it_call(c, "admin.departments", NULL, &r), 0);
    assert_true(listed(&r, "departments", "elderly-care"));
    client_frame_free(&r);
    /* the server's domain survived too */
    char dom[CLIENT_DOMAIN_MAX + 1];
    uint8_t nonce[CLIENT_NONCE_LEN];
    assert_int_equal(client_auth_challenge(c, IT_TIMEOUT, nonce, dom, NULL), 0);
    assert_string_equal(dom, "restart.test");
    client_conn_free(c);
}

static void sigkill_after_ack(void **state)
{
    struct st *s = *state;
    char name[64], got[64], code[64];

    for (int round = 0; round < 3; round++) {
        struct client_frame r;
        struct client_conn *c = it_login(s->ctx, s->ts.url, s->id, s->seed);

        snprintf(name, sizeof(name), "dept-%d", round);
        const char *dep[] = {"name", name, NULL};
        it_ok(c, "admin.department.add", dep, "department", got, sizeof(got));
        snprintf(name, sizeof(name), "assoc-%d", round);
        const char *assoc[] = {"name", name, NULL};
        it_ok(c, "admin.association.add", assoc, "association", got, sizeof(got));
        /* the last acknowledged write before the kill: an invitation */
        snprintf(name, sizeof(name), "staff%d", round);
        const char *inv[] = {"role", "staff", "name", name, NULL};
        it_ok(c, "admin.invite", inv, "code", code, sizeof(code));
        int st = testserver_stop(&s->ts, SIGKILL);
        assert_int_equal(st, 128 + SIGKILL);
        client_conn_free(c);

        assert_int_equal(testserver_start(&s->ts), 0);
        c = it_login(s->ctx, s->ts.url, s->id, s->seed);
        assert_int_equal(it_call(c, "admin.departments", NULL, &r), 0);
        for (int k = 0; k <= round; k++) {
            snprintf(name, sizeof(name), "dept-%d", k);
            assert_true(listed(&r, "departments", name));
            snprintf(name, sizeof(name), "assoc-%d", k);
            assert_true(listed(&r, "associations", name));
        }
        client_frame_free(&r);
        /* the invitation is there: its code enrolls staff<round> */
        uint8_t seed[32];
        char id[CLIENT_ID_MAX + 1], dev[19];
        struct client_conn *n = it_enroll(s->ctx, s->ts.url, code, seed, id, sizeof(id), dev);
        snprintf(name, sizeof(name), "staff%d@restart.test", round);
        assert_string_equal(id, name);
        client_conn_free(n);
        client_conn_free(c);
    }
}

/* An assignment acknowledged just before SIGKILL shows in whoami after. */
static void sigkill_assignment(void **state)
{
    struct st *s = *state;
    char code[64], got[64], id[CLIENT_ID_MAX + 1], dev[19];
    uint8_t seed[32];
    struct client_frame r;
    struct client_conn *c = it_login(s->ctx, s->ts.url, s->id, s->seed);
    const char *inv[] = {"role", "staff", "name", "nurse", NULL};

    it_ok(c, "admin.invite", inv, "code", code, sizeof(code));
    struct client_conn *n = it_enroll(s->ctx, s->ts.url, code, seed, id, sizeof(id), dev);
    client_conn_free(n);
    const char *as[] = {"staff", "nurse", "department", "elderly-care", NULL};
    it_ok(c, "admin.assign", as, "staff", got, sizeof(got));
    assert_string_equal(got, "nurse@restart.test");
    assert_int_equal(testserver_stop(&s->ts, SIGKILL), 128 + SIGKILL);
    client_conn_free(c);

    assert_int_equal(testserver_start(&s->ts), 0);
    n = it_login(s->ctx, s->ts.url, id, seed);
    assert_int_equal(it_call(n, "whoami", NULL, &r), 0);
    assert_true(listed(&r, "departments", "elderly-care"));
    client_frame_free(&r);
    client_conn_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigterm_restart),
        cmocka_unit_test(sigkill_after_ack),
        cmocka_unit_test(sigkill_assignment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
