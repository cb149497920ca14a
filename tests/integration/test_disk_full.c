/*
 * test_disk_full.c: the COMMIT-failure path against the real server, with
 * no mocks. The disk refuses writes through RLIMIT_FSIZE, set on the running
 * server with prlimit(2) by testserver_set_fsize (same uid: no privilege, no
 * mount needed). SIGXFSZ is ignored in this process and so in the server it
 * forks (an ignored disposition survives exec), so write() past the limit
 * fails with EFBIG and SQLite reports SQLITE_FULL when it appends to the WAL
 * at COMMIT.
 *
 * - Writes acknowledged before the limit stay; every write tried under it
 *   gets `internal` (never `ok`), and its session is closed.
 * - Meanwhile another logged-in connection keeps reading, and the refused
 *   writes are not visible to it. A new login under the limit succeeds
 *   only when it writes nothing: it records the device's last_seen (in
 *   seconds), so a login in a later second than the device's last one is a
 *   write like any other and is refused the same way (login_under_limit).
 * - With the limit lifted, the same server takes writes again.
 * - After a restart, everything acknowledged is there and nothing that was
 *   answered with an error is.
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
    /* Inherited by the server: past the limit, write() fails instead of
     * the process being killed (as `trap '' XFSZ` before exec). */
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR)
        return -1;
    if (testserver_init(&s->ts, "disk.test", false) != 0 || testserver_start(&s->ts) != 0)
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

/* Checks the department list on c: before-0..nb-1 and after-0..na-1 are
 * there, during-0..nd-1 are not. */
static void check_departments(struct client_conn *c, int nb, int nd, int na)
{
    struct client_frame r;
    char name[32];
    int rc = it_call(c, "admin.departments", NULL, &r);
    it_show("admin.departments", rc, &r);
    assert_int_equal(rc, 0);
    for (int k = 0; k < nb; k++) {
        snprintf(name, sizeof(name), "before-%d", k);
        assert_true(listed(&r, "departments", name));
    }
    for (int k = 0; k < nd; k++) {
        snprintf(name, sizeof(name), "during-%d", k);
        assert_false(listed(&r, "departments", name));
    }
    for (int k = 0; k < na; k++) {
        snprintf(name, sizeof(name), "after-%d", k);
        assert_true(listed(&r, "departments", name));
    }
    client_frame_free(&r);
}

/* A login while the disk refuses writes: the logged-in connection, or NULL
 * when the login was refused as a write (`internal`, session closed). */
static struct client_conn *login_under_limit(struct st *s)
{
    struct client_conn *c = it_open(s->ctx, s->ts.url);
    struct client_frame r;
    int rc = client_auth_login(c, s->id, s->seed, IT_TIMEOUT, &r);
    it_show("login under the limit", rc, &r);
    if (rc == 0) {
        client_frame_free(&r);
        return c;
    }
    assert_non_null(r.buf);
    assert_string_equal(r.msg.name, "internal");
    client_frame_free(&r);
    assert_int_equal(client_sync_closed(c, IT_TIMEOUT), 0);
    client_conn_free(c);
    return NULL;
}

static void commit_failure(void **state)
{
    struct st *s = *state;
    struct client_frame r;
    char name[32], got[64];
    struct client_conn *c = it_enroll(s->ctx, s->ts.url, s->ts.admin_code, s->seed, s->id,
                                      sizeof(s->id), s->dev);
    struct client_conn *reader = it_login(s->ctx, s->ts.url, s->id, s->seed);

    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof(name), "before-%d", k);
        const char *dep[] = {"name", name, NULL};
        it_ok(c, "admin.department.add", dep, "department", got, sizeof(got));
    }
    /* The WAL already holds frames past 4 KiB (and a restarted WAL's first
     * frame ends past it too), so no COMMIT can append a frame now. */
    rlim_t before;
    assert_int_equal(testserver_set_fsize(&s->ts, 4096, &before), 0);

    enum { DURING = 3 };
    for (int k = 0; k < DURING; k++) {
        snprintf(name, sizeof(name), "during-%d", k);
        const char *dep[] = {"name", name, NULL};
        if (c) {
            it_err(c, "admin.department.add", dep, "internal");
            /* the session is closed after a failed commit */
            assert_int_equal(client_sync_closed(c, IT_TIMEOUT), 0);
            client_conn_free(c);
        }
        /* reads go on, on a session opened before and on a new one (when
         * its login wrote nothing) */
        check_departments(reader, 3, k + 1, 0);
        c = login_under_limit(s);
        if (c)
            check_departments(c, 3, k + 1, 0);
    }
    /* an invitation under the limit: refused, so no code to hand out */
    if (c) {
        const char *inv[] = {"role", "staff", "name", "nurse", NULL};
        it_err(c, "admin.invite", inv, "internal");
        assert_int_equal(client_sync_closed(c, IT_TIMEOUT), 0);
        client_conn_free(c);
    }
    assert_int_equal(it_call(reader, "whoami", NULL, &r), 0);
    client_frame_free(&r);

    /* The disk takes writes again: so does the same server. */
    assert_int_equal(testserver_set_fsize(&s->ts, before, NULL), 0);
    c = it_login(s->ctx, s->ts.url, s->id, s->seed);
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof(name), "after-%d", k);
        const char *dep[] = {"name", name, NULL};
        it_ok(c, "admin.department.add", dep, "department", got, sizeof(got));
    }
    check_departments(reader, 3, DURING, 2);
    client_conn_free(reader);
    client_conn_free(c);

    /* Restart: acknowledged writes there, refused ones not. */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
    assert_int_equal(testserver_start(&s->ts), 0);
    c = it_login(s->ctx, s->ts.url, s->id, s->seed);
    check_departments(c, 3, DURING, 2);
    /* the refused invitation created no staff entry: nurse is still free */
    const char *inv2[] = {"role", "staff", "name", "nurse", NULL};
    it_ok(c, "admin.invite", inv2, "code", got, sizeof(got));
    client_conn_free(c);
    char *log = testserver_log(&s->ts);
    assert_non_null(log);
    assert_non_null(strstr(log, "stopped"));
    free(log);
}

/* SIGKILL while the disk refuses writes: nothing refused is there after. */
static void kill_while_full(void **state)
{
    struct st *s = *state;
    char name[32], got[64];
    struct client_conn *c = it_login(s->ctx, s->ts.url, s->id, s->seed);

    snprintf(name, sizeof(name), "before-%d", 3);
    const char *dep[] = {"name", name, NULL};
    it_ok(c, "admin.department.add", dep, "department", got, sizeof(got));
    assert_int_equal(testserver_set_fsize(&s->ts, 4096, NULL), 0);
    const char *dep2[] = {"name", "during-9", NULL};
    it_err(c, "admin.department.add", dep2, "internal");
    client_conn_free(c);
    assert_int_equal(testserver_stop(&s->ts, SIGKILL), 128 + SIGKILL);

    assert_int_equal(testserver_start(&s->ts), 0);
    c = it_login(s->ctx, s->ts.url, s->id, s->seed);
    check_departments(c, 4, 0, 2);
    struct client_frame r;
    assert_int_equal(it_call(c, "admin.departments", NULL, &r), 0);
    assert_false(listed(&r, "departments", "during-9"));
    client_frame_free(&r);
    client_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commit_failure),
        cmocka_unit_test(kill_while_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
