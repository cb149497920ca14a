/* test_hot.c: the per-thread send state cache (server/hot.c). What the
 * cache answers must always be what the store holds: a member added,
 * marked for removal or deleted, a new epoch, a pending removal — by a
 * tstore statement or by any other SQL on the connection — is seen by the
 * next hot_get(); a request rolled back to its savepoint and a transaction
 * rolled back leave no trace; storing messages does not make the entry
 * stale but advances its last seq (a rolled-back message's seq is handed
 * out again); a thread that does not exist takes no place; more threads
 * than the cache holds are all still answered right. */
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
#include <sqlite3.h>

#include "deliver.h"
#include "err.h"
#include "hot.h"
#include "server.h"
#include "store.h"
#include "tstore.h"

#define T "t_00112233445566778899aabbccddeeff"
#define NOW 1700000000u

static char dir[64];
static char path[128];
static struct store *st;
static sqlite3 *db;

static void exec_ok(const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/sammen-hot-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/sammen.db", dir);
    if (store_open(path, true, &st) != 0)
        return -1;
    db = store_db(st);
    srv.store = st;
    srv.cfg.offline_days = 30;
    snprintf(srv.server_cred, sizeof(srv.server_cred), "server@x.test");
    if (tstore_open(st) != 0)
        return -1;
    exec_ok("INSERT INTO threads(id, citizen, kind, title, creator, created, epoch,"
            " group_info) VALUES('" T "', 'c@x.test', 'care', 't', 'c@x.test', 1, 3, x'00');"
            "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
            " joined_seq) VALUES('" T "', 'dA', 'a@x.test', 0, 'citizen', 1, 0),"
            " ('" T "', 'dB', 'b@x.test', 1, 'g', 1, 0);");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hot_clear();
    tstore_close();
    deliver_shutdown();
    store_close(st);
    srv.store = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The roster as "dA dB- ..." ('-' marks a removal), and the epoch. */
static void roster(char *out, size_t cap, uint64_t *epoch, bool *removal_pending)
{
    const struct hot_thread *h;
    assert_int_equal(hot_get(T, &h), 0);
    out[0] = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s%s", l ? " " : "", h->m[i].device,
                 h->m[i].removing ? "-" : "");
    }
    *epoch = h->epoch;
    *removal_pending = h->removal_pending;
}

static void expect(const char *want, uint64_t want_epoch, bool want_pending)
{
    char got[256];
    uint64_t epoch;
    bool pending;
    roster(got, sizeof(got), &epoch, &pending);
    assert_string_equal(got, want);
    assert_int_equal(epoch, want_epoch);
    assert_int_equal(pending, want_pending);
}

static void follows_the_store(void **state)
{
    (void)state;
    expect("dA dB", 3, false);
    const struct hot_thread *h;
    assert_int_equal(hot_get(T, &h), 0);
    assert_non_null(hot_member(h, "dA"));
    assert_null(hot_member(h, "dZ"));

    /* through tstore's statements */
    sqlite3_stmt *s = tq(Q_MEMBER_ADD);
    assert_int_equal(tq_text(s, 1, T), 0);
    assert_int_equal(tq_text(s, 2, "dC"), 0);
    assert_int_equal(tq_text(s, 3, "c2@x.test"), 0);
    assert_int_equal(tq_u64(s, 4, 2), 0);
    assert_int_equal(tq_text(s, 5, "g"), 0);
    assert_int_equal(tq_u64(s, 6, 2), 0);
    assert_int_equal(tq_u64(s, 7, 0), 0);
    assert_int_equal(tq_run(s), 0);
    expect("dA dB dC", 3, false);
    s = tq(Q_MEMBER_SET_REMOVING);
    assert_int_equal(tq_text(s, 1, T), 0);
    assert_int_equal(tq_text(s, 2, "dB"), 0);
    assert_int_equal(tq_u64(s, 3, 1), 0);
    assert_int_equal(tq_run(s), 0);
    expect("dA dB- dC", 3, false);
    s = tq(Q_THREAD_SET_EPOCH);
    assert_int_equal(tq_text(s, 1, T), 0);
    assert_int_equal(tq_u64(s, 2, 4), 0);
    assert_int_equal(tq_run(s), 0);
    expect("dA dB- dC", 4, false);

    /* through any other SQL on the connection */
    exec_ok("UPDATE threads SET removal_pending = 1 WHERE id = '" T "'");
    expect("dA dB- dC", 4, true);
    exec_ok("DELETE FROM thread_members WHERE device = 'dB';"
            "UPDATE threads SET removal_pending = 0 WHERE id = '" T "'");
    expect("dA dC", 4, false);

    /* storing messages leaves the entry as it is (same pointer, same gen) */
    assert_int_equal(hot_get(T, &h), 0);
    uint64_t gen = h->gen;
    assert_int_equal(store_begin(st), 0);
    uint64_t seq = 0;
    uint32_t targets = 0;
    assert_int_equal(deliver_thread_message(T, "app", "a@x.test", "dA", 4,
                                            (const uint8_t *)"c1", 2, NOW, &seq, &targets),
                     0);
    assert_int_equal(targets, 1); /* dC */
    assert_int_equal(seq, 1);
    assert_int_equal(h->last_seq, 1);
    assert_int_equal(deliver_before_commit(), 0);
    assert_int_equal(store_commit(st), 0);
    const struct hot_thread *h2;
    assert_int_equal(hot_get(T, &h2), 0);
    assert_ptr_equal(h2, h);
    assert_int_equal(h2->gen, gen);
    assert_int_equal(tstore_roster_gen(), gen);
}

static void rollbacks_leave_no_trace(void **state)
{
    (void)state;
    expect("dA dB", 3, false);
    /* a request's savepoint rolled back */
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_savepoint(st), 0);
    exec_ok("INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
            " joined_seq) VALUES('" T "', 'dX', 'x@x.test', 2, 'g', 1, 0)");
    expect("dA dB dX", 3, false);
    store_rollback_to(st);
    expect("dA dB", 3, false);
    /* a whole transaction rolled back (a failed COMMIT does this too) */
    assert_int_equal(store_savepoint(st), 0);
    exec_ok("UPDATE threads SET epoch = 9 WHERE id = '" T "'");
    assert_int_equal(store_release(st), 0);
    expect("dA dB", 9, false);
    store_rollback(st);
    expect("dA dB", 3, false);
    /* a message rolled back with its request: its seq is handed out again */
    const struct hot_thread *h;
    uint64_t seq = 0;
    uint32_t targets = 0;
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(deliver_thread_message(T, "app", "a@x.test", "dA", 3,
                                            (const uint8_t *)"c1", 2, NOW, &seq, &targets),
                     0);
    assert_int_equal(seq, 1);
    assert_int_equal(store_release(st), 0);
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(deliver_thread_message(T, "app", "a@x.test", "dA", 3,
                                            (const uint8_t *)"c2", 2, NOW, &seq, &targets),
                     0);
    assert_int_equal(seq, 2);
    store_rollback_to(st);
    assert_int_equal(hot_get(T, &h), 0);
    assert_int_equal(h->last_seq, 1);
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(deliver_thread_message(T, "app", "a@x.test", "dA", 3,
                                            (const uint8_t *)"c3", 2, NOW, &seq, &targets),
                     0);
    assert_int_equal(seq, 2);
    assert_int_equal(store_release(st), 0);
    deliver_discard();
    store_rollback(st);
    assert_int_equal(hot_get(T, &h), 0);
    assert_int_equal(h->last_seq, 0);
}

static void unknown_and_many_threads(void **state)
{
    (void)state;
    const struct hot_thread *h;
    assert_int_equal(hot_get("t_ffffffffffffffffffffffffffffffff", &h), ERR_NOT_FOUND);
    assert_int_equal(hot_get("t_much_too_long_to_be_a_thread_id_at_all_0123456789", &h),
                     ERR_NOT_FOUND);
    /* more threads than the cache holds: each answered from its own rows */
    assert_int_equal(store_begin(st), 0);
    exec_ok("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9000)"
            " INSERT INTO threads(id, citizen, kind, title, creator, created, epoch, group_info)"
            " SELECT printf('t_%032x', i), 'c@x.test', 'care', 't', 'c@x.test', 1, i, x'00'"
            " FROM n;"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9000)"
            " INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
            " joined_seq) SELECT printf('t_%032x', i), printf('d%u', i), 'a@x.test', 0, 'g',"
            " 1, 0 FROM n;");
    assert_int_equal(store_commit(st), 0);
    for (int round = 0; round < 2; round++) {
        for (unsigned i = 1; i <= 9000; i += (round ? 7 : 1)) {
            char id[THREAD_ID_MAX], dev[16];
            snprintf(id, sizeof(id), "t_%032x", i);
            snprintf(dev, sizeof(dev), "d%u", i);
            assert_int_equal(hot_get(id, &h), 0);
            assert_string_equal(h->id, id);
            assert_int_equal(h->epoch, i);
            assert_int_equal(h->n, 1);
            assert_string_equal(h->m[0].device, dev);
        }
    }
    expect("dA dB", 3, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(follows_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(rollbacks_leave_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_and_many_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
