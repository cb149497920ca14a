/* test_deliver.c: delivery by cursors (deliver.c, schema 3) on a database
 * upgraded from schema 2 with entries still pending: the v2 inbox rows
 * survive the migration and are served and counted as before, new thread
 * messages get entry seqs above every v2 seq and reach devices through
 * their membership windows (a device added later does not see earlier
 * messages; one being removed keeps what was queued before), an ack moves
 * a cursor at most to the last seq handed out, counts and ciphertext drops
 * follow the cursors, closed windows go once nothing of them is pending,
 * and the offline limit sends `missed` notices. No connections: events are
 * not looked at here (the integration tests and the bench do). */
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
#include "server.h"
#include "store.h"
#include "tstore.h"
#include "wire.h"

#define T "t_00112233445566778899aabbccddeeff"
#define NOW 1700000000u
/* a thread's number, the key of its rows in `messages` (schema 10) */
#define TNUM(id) "(SELECT num FROM threads WHERE id = '" id "')"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/sammen-deliver-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/sammen.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

static int64_t int_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* One `sync` of device after `after`: the entries' seqs (and kinds' first
 * letters: a(pp), n(otice), w(elcome)) and the missed count of T. */
struct page {
    uint64_t seq[64];
    uint64_t message[64];
    char kind[64];
    uint32_t n;
    uint64_t missed;
};

static void sync_page(const char *device, uint64_t after, uint32_t limit, struct page *p,
                      bool *more)
{
    struct wire_enc e;
    const uint8_t *out;
    size_t olen;
    struct wire_msg m;
    memset(p, 0, sizeof(*p));
    wire_enc_init(&e);
    wire_enc_ok(&e, 1, 3);
    assert_int_equal(deliver_sync(device, "x@x.test", after, limit, NOW, &e), 0);
    assert_int_equal(wire_enc_finish(&e, &out, &olen), 0);
    assert_int_equal(wire_decode(out, olen, &m), 0);
    struct wire_array a, ms;
    assert_int_equal(wire_get_array(&m.body, "entries", &a), 0);
    assert_true(a.n <= 64);
    for (uint32_t i = 0; i < a.n; i++) {
        struct wire_map x;
        char kind[16];
        assert_int_equal(wire_array_map(&a, i, &x), 0);
        assert_int_equal(wire_get_uint(&x, "seq", &p->seq[i]), 0);
        assert_int_equal(wire_get_uint(&x, "message", &p->message[i]), 0);
        assert_int_equal(wire_get_cstr(&x, "kind", kind, sizeof(kind)), 0);
        p->kind[i] = kind[0];
        if (i)
            assert_true(p->seq[i] > p->seq[i - 1]);
    }
    p->n = a.n;
    assert_true(p->n <= limit);
    assert_int_equal(wire_get_bool(&m.body, "more", more), 0);
    assert_int_equal(wire_get_array(&m.body, "missed", &ms), 0);
    for (uint32_t i = 0; i < ms.n; i++) {
        struct wire_map x;
        assert_int_equal(wire_array_map(&ms, i, &x), 0);
        assert_int_equal(wire_get_uint(&x, "count", &p->missed), 0);
    }
    wire_msg_free(&m);
    wire_enc_reset(&e);
}

static void sync_dev(const char *device, uint64_t after, struct page *p)
{
    bool more = true;
    sync_page(device, after, 500, p, &more);
    assert_false(more);
}

static bool has_seq(const struct page *p, uint64_t seq)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->seq[i] == seq)
            return true;
    return false;
}

static uint64_t send_msg(const char *device, const char *data, uint64_t now, uint32_t *targets)
{
    uint64_t seq = 0;
    assert_int_equal(deliver_thread_message(T, "app", "x@x.test", device, 1,
                                            (const uint8_t *)data, strlen(data), now, &seq,
                                            targets),
                     0);
    return seq;
}

static void begin(void)
{
    assert_int_equal(store_begin(srv.store), 0);
}

static void commit(void)
{
    assert_int_equal(deliver_before_commit(), 0);
    assert_int_equal(store_commit(srv.store), 0);
}

static uint64_t delivered(uint64_t message)
{
    uint64_t d = 0;
    assert_int_equal(deliver_delivered_to(T, message, &d), 0);
    return d;
}

static void upgrade_then_cursors(void **state)
{
    (void)state;
    struct store *st;
    /* a schema-2 database with entries pending: dB and dC have messages 1
     * and 2 of T waiting (inbox rows 3, 4 and 5, 6), dC also a notice (7) */
    assert_int_equal(store_open_upto(path, true, 2, &st), 0);
    sqlite3 *db = store_db(st);
    exec_ok(db,
            "INSERT INTO threads(id, citizen, kind, title, creator, created, epoch, group_info,"
            " last_seq) VALUES('" T "', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00', 2);"
            "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
            " joined_seq, removing) VALUES('" T "', 'dA', 'a@x.test', 0, 'citizen', 1, 0, 0),"
            " ('" T "', 'dB', 'b@x.test', 1, 'g', 1, 0, 0),"
            " ('" T "', 'dC', 'c2@x.test', 2, 'g', 1, 0, 0),"
            " ('" T "', 'dR', 'r@x.test', 3, 'g', 1, 0, 1);"
            "INSERT INTO messages(thread, seq, kind, sender, device, time, epoch, data, targets)"
            " VALUES('" T "', 1, 'app', 'a@x.test', 'dA', 1, 1, x'c1', 2),"
            " ('" T "', 2, 'app', 'a@x.test', 'dA', 1, 1, x'c2', 2);"
            "INSERT INTO inbox(device, seq, thread, message, kind, sender, sender_device, time,"
            " data) VALUES('dB', 3, '" T "', 1, 'app', 'a@x.test', 'dA', 1, NULL),"
            " ('dB', 4, '" T "', 2, 'app', 'a@x.test', 'dA', 1, NULL),"
            " ('dC', 5, '" T "', 1, 'app', 'a@x.test', 'dA', 1, NULL),"
            " ('dC', 6, '" T "', 2, 'app', 'a@x.test', 'dA', 1, NULL),"
            " ('dC', 7, '" T "', 0, 'notice', 's@x.test', '', 1, x'80');"
            "INSERT INTO inbox_seq(device, last) VALUES('dB', 4), ('dC', 7);");
    store_close(st);

    /* upgrade */
    assert_int_equal(store_open(path, false, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    db = store_db(st);
    assert_int_equal(int_of(db, "SELECT last FROM delivery_seq"), 7);
    assert_int_equal(int_of(db, "SELECT count(*) FROM member_windows WHERE after_seq = 2"
                                " AND upto_seq IS NULL"),
                     3); /* dA, dB, dC; not dR (removal pending) */
    srv.store = st;
    srv.cfg.offline_days = 30;
    snprintf(srv.server_cred, sizeof(srv.server_cred), "server@x.test");
    assert_int_equal(tstore_open(st), 0);

    struct page p;
    uint32_t targets = 0;
    /* the v2 entries are still there */
    sync_dev("dB", 0, &p);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.seq[0], 3);
    assert_int_equal(p.seq[1], 4);

    /* a new message: one row, seq above every v2 seq, for dB and dC */
    begin();
    assert_int_equal(send_msg("dA", "c3", NOW, &targets), 3);
    assert_int_equal(targets, 2);
    commit();
    assert_int_equal(int_of(db, "SELECT gseq FROM messages WHERE seq = 3"), 8);
    sync_dev("dB", 0, &p);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.seq[2], 8);
    assert_int_equal(p.message[2], 3);
    sync_dev("dC", 0, &p);
    assert_int_equal(p.n, 4); /* 5, 6, the notice 7, then 8 */
    assert_int_equal(p.kind[2], 'n');
    assert_int_equal(p.seq[3], 8);
    /* the same four in pages: `more` until the last page, nothing skipped */
    {
        struct page q;
        bool more = false;
        uint64_t after = 0;
        for (uint32_t k = 0; k < 4; k += 3) {
            sync_page("dC", after, 3, &q, &more);
            assert_int_equal(q.n, k == 0 ? 3 : 1);
            assert_int_equal(more, k == 0);
            for (uint32_t i = 0; i < q.n; i++)
                assert_int_equal(q.seq[i], p.seq[k + i]);
            after = q.seq[q.n - 1];
        }
        sync_page("dC", 0, 4, &q, &more); /* exactly the limit: no more */
        assert_int_equal(q.n, 4);
        assert_false(more);
        sync_page("dC", p.seq[3], 4, &q, &more);
        assert_int_equal(q.n, 0);
        assert_false(more);
    }
    sync_dev("dA", 0, &p);
    assert_int_equal(p.n, 0); /* its own */
    sync_dev("dR", 0, &p);
    assert_int_equal(p.n, 0); /* removal pending */

    /* dN joins after message 3: it gets later messages only */
    begin();
    exec_ok(db, "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
                " joined_seq) VALUES('" T "', 'dN', 'n@x.test', 4, 'g', 2, 3)");
    assert_int_equal(send_msg("dB", "c4", NOW, &targets), 4); /* gseq 9 */
    assert_int_equal(targets, 3);                          /* dA, dC, dN */
    commit();
    sync_dev("dN", 0, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.seq[0], 9);

    /* dC's removal is marked: it keeps what was queued, gets no more */
    begin();
    exec_ok(db, "UPDATE thread_members SET removing = 1 WHERE device = 'dC'");
    assert_int_equal(send_msg("dA", "c5", NOW, &targets), 5); /* gseq 10 */
    assert_int_equal(targets, 2);                          /* dB, dN */
    commit();
    sync_dev("dC", 0, &p);
    assert_int_equal(p.n, 5);
    assert_int_equal(p.seq[4], 9);
    assert_false(has_seq(&p, 10));

    /* dB acks far beyond the last seq: its cursor stops at 10 */
    begin();
    assert_int_equal(deliver_ack("dB", 1000000000), 0);
    commit();
    assert_int_equal(int_of(db, "SELECT acked FROM delivery_cursors WHERE device = 'dB'"), 10);
    assert_int_equal(int_of(db, "SELECT acked FROM messages WHERE seq = 1"), 1); /* v2 */
    assert_int_equal(delivered(3), 1);
    assert_int_equal(delivered(5), 1);
    begin();
    assert_int_equal(send_msg("dA", "c6", NOW, &targets), 6); /* gseq 11 */
    commit();
    sync_dev("dB", 0, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.seq[0], 11);
    /* unread: what is after the cursor */
    uint64_t unread = 0;
    assert_int_equal(deliver_unread("dB", T, &unread), 0);
    assert_int_equal(unread, 1);
    assert_int_equal(deliver_unread("dC", T, &unread), 0);
    assert_int_equal(unread, 4);

    /* dC leaves the roster, acks what it had: the v2 messages and message
     * 3 are complete (data dropped, count kept); message 4 still waits for
     * dA and dN, so dC's closed window stays */
    begin();
    exec_ok(db, "DELETE FROM thread_members WHERE device = 'dC'");
    assert_int_equal(deliver_ack("dC", 9), 0);
    commit();
    assert_int_equal(int_of(db, "SELECT count(*) FROM inbox"), 0);
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE seq <= 3"
                                " AND data IS NULL"),
                     3);
    assert_int_equal(int_of(db, "SELECT acked FROM messages WHERE seq = 2"), 2);
    assert_int_equal(delivered(3), 2);
    assert_int_equal(delivered(4), 1);
    assert_int_equal(int_of(db, "SELECT count(*) FROM member_windows WHERE device = 'dC'"), 1);
    begin();
    assert_int_equal(deliver_ack("dA", 11), 0);
    assert_int_equal(deliver_ack("dN", 9), 0);
    commit();
    assert_int_equal(delivered(4), 3);
    assert_int_equal(int_of(db, "SELECT data IS NULL FROM messages WHERE seq = 4"), 1);
    assert_int_equal(int_of(db, "SELECT count(*) FROM member_windows WHERE device = 'dC'"), 0);
    /* acks are cumulative and idempotent */
    begin();
    assert_int_equal(deliver_ack("dN", 5), 0);
    commit();
    assert_int_equal(int_of(db, "SELECT acked FROM delivery_cursors WHERE device = 'dN'"), 9);

    /* the offline limit: message 7 (gseq 12) reaches nobody in 31 days;
     * dN also lacks 5 and 6, dB lacks 6 */
    begin();
    assert_int_equal(send_msg("dA", "c7", NOW, &targets), 7);
    commit();
    bool did = false;
    begin();
    assert_int_equal(deliver_sweep(NOW + 31 * 86400, &did), 0);
    commit();
    assert_true(did);
    assert_int_equal(int_of(db, "SELECT undeliverable FROM messages WHERE seq = 7"), 2);
    assert_int_equal(int_of(db, "SELECT undeliverable FROM messages WHERE seq = 5"), 1);
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE data IS NOT NULL"), 0);
    assert_int_equal(delivered(5), 1);
    assert_int_equal(delivered(7), 0);
    sync_dev("dN", 0, &p);
    assert_int_equal(p.n, 3); /* three `missed` notices */
    assert_int_equal(p.kind[0], 'n');
    assert_true(p.seq[0] > 12);
    assert_int_equal(p.missed, 3);

    tstore_close();
    deliver_shutdown();
    srv.store = NULL;
    store_close(st);

    /* after a restart the counter continues above everything handed out */
    assert_int_equal(store_open(path, false, &st), 0);
    srv.store = st;
    assert_int_equal(tstore_open(st), 0);
    begin();
    assert_true(send_msg("dA", "c8", NOW, &targets) == 8);
    commit();
    assert_true(int_of(store_db(st), "SELECT gseq FROM messages WHERE seq = 8") > 15);
    tstore_close();
    deliver_shutdown();
    srv.store = NULL;
    store_close(st);
}

static uint64_t gseq_of(sqlite3 *db, uint64_t seq)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT gseq FROM messages WHERE seq = %llu",
             (unsigned long long)seq);
    return (uint64_t)int_of(db, sql);
}

static int64_t data_kept(sqlite3 *db, uint64_t seq)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT data IS NOT NULL FROM messages WHERE seq = %llu",
             (unsigned long long)seq);
    return int_of(db, sql);
}

static void open_store(struct store **st)
{
    assert_int_equal(store_open(path, true, st), 0);
    srv.store = *st;
    srv.cfg.offline_days = 30;
    snprintf(srv.server_cred, sizeof(srv.server_cred), "server@x.test");
    assert_int_equal(tstore_open(*st), 0);
}

static void close_store(struct store *st)
{
    tstore_close();
    deliver_shutdown();
    srv.store = NULL;
    store_close(st);
}

/* The ack path's caches (cursors, windows, pending lists; deliver.c) and
 * each of their invalidations: a membership change mid-stream (the
 * windows), a failed request's savepoint and a failed COMMIT (cursors and
 * pending lists), a restart with the roster changed while the server was
 * down. Each step fails if the cache concerned is not forgotten. Several
 * complete messages are dropped by one statement (the runs of
 * settle_thread) and counted as before. */
static void ack_caches(void **state)
{
    (void)state;
    struct store *st;
    struct page p;
    uint32_t targets = 0;
    open_store(&st);
    sqlite3 *db = store_db(st);
    exec_ok(db,
            "INSERT INTO threads(id, citizen, kind, title, creator, created, epoch, group_info)"
            " VALUES('" T "', 'a@x.test', 'care', 't', 'a@x.test', 1, 1, x'00');"
            "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
            " joined_seq) VALUES('" T "', 'dA', 'a@x.test', 0, 'citizen', 1, 0),"
            " ('" T "', 'dB', 'b@x.test', 1, 'g', 1, 0)");

    /* message 1 for dB; its ack settles the thread: windows {dA, dB},
     * cursors and the pending list are now cached */
    begin();
    assert_int_equal(send_msg("dA", "m1", NOW, &targets), 1);
    assert_int_equal(targets, 1);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 1)), 0);
    commit();
    assert_int_equal(data_kept(db, 1), 0);
    assert_int_equal(delivered(1), 1);

    /* membership mid-stream: dC joins (a trigger opens its window), message
     * 2 is for dB and dC; dB's ack must not complete it (stale windows
     * would drop it before dC has it) */
    begin();
    exec_ok(db, "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
                " joined_seq) VALUES('" T "', 'dC', 'c@x.test', 2, 'g', 2, 1)");
    assert_int_equal(send_msg("dA", "m2", NOW, &targets), 2);
    assert_int_equal(targets, 2);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 2)), 0);
    commit();
    assert_int_equal(data_kept(db, 2), 1);
    assert_int_equal(delivered(2), 1);
    sync_dev("dC", 0, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.seq[0], gseq_of(db, 2));

    /* a failed request's savepoint: dC's ack is rolled back; its cached
     * cursor must go with it (else sync would skip message 2 and the next
     * ack would be taken as already done) */
    begin();
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(deliver_ack("dC", gseq_of(db, 2)), 0);
    store_rollback_to(st);
    commit();
    assert_int_equal(int_of(db, "SELECT count(*) FROM delivery_cursors WHERE device = 'dC'"),
                     0);
    sync_dev("dC", 0, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(data_kept(db, 2), 1);
    begin();
    assert_int_equal(deliver_ack("dC", gseq_of(db, 2)), 0);
    commit();
    assert_int_equal(int_of(db, "SELECT acked FROM delivery_cursors WHERE device = 'dC'"),
                     (int64_t)gseq_of(db, 2));
    assert_int_equal(data_kept(db, 2), 0);
    assert_int_equal(delivered(2), 2);

    /* messages 3..5, all acked by both in one transaction whose COMMIT
     * fails (rolled back): the cursors and the drops are undone in the
     * store, and must be in the caches (else the cursors would stay ahead
     * of the store and the dropped messages off the pending list for good) */
    begin();
    for (uint64_t m = 3; m <= 5; m++)
        assert_int_equal(send_msg("dA", "m", NOW, &targets), m);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 5)), 0);
    assert_int_equal(deliver_ack("dC", gseq_of(db, 5)), 0);
    assert_int_equal(deliver_before_commit(), 0);
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE data IS NOT NULL"), 0);
    store_rollback(st);
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE data IS NOT NULL"), 3);
    sync_dev("dB", 0, &p);
    assert_int_equal(p.n, 3);
    /* now for real, one ack at a time: message 3..5 complete together, one
     * statement drops the three (same count) */
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 5)), 0);
    commit();
    assert_int_equal(delivered(4), 1);
    begin();
    assert_int_equal(deliver_ack("dC", gseq_of(db, 5)), 0);
    commit();
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE data IS NOT NULL"), 0);
    for (uint64_t m = 3; m <= 5; m++)
        assert_int_equal(delivered(m), 2);
    sync_dev("dB", 0, &p);
    assert_int_equal(p.n, 0);

    /* a restart with the roster changed while the server was down: dC
     * left (its window closed by another connection, which the update hook
     * does not see); message 6 then only waits for dB */
    close_store(st);
    {
        sqlite3 *raw;
        assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
        exec_ok(raw, "DELETE FROM thread_members WHERE device = 'dC'");
        sqlite3_close(raw);
    }
    open_store(&st);
    db = store_db(st);
    begin();
    assert_int_equal(send_msg("dA", "m6", NOW, &targets), 6);
    assert_int_equal(targets, 1);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 6)), 0);
    commit();
    assert_int_equal(data_kept(db, 6), 0);
    assert_int_equal(delivered(6), 1);
    assert_int_equal(int_of(db, "SELECT count(*) FROM member_windows WHERE device = 'dC'"), 0);
    /* the cursors after the restart are the store's */
    sync_dev("dC", 0, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(int_of(db, "SELECT acked FROM delivery_cursors WHERE device = 'dB'"),
                     (int64_t)gseq_of(db, 6));

    /* a message stored while the thread's pending list is cached joins the
     * list as it is (thr_note_insert appends it): message 7 is dB's, so it
     * waits for dA alone, and dB's own ack past it must not count for it;
     * then two in one transaction, completed together by one ack */
    begin();
    assert_int_equal(send_msg("dB", "m7", NOW, &targets), 7);
    assert_int_equal(targets, 1);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 7)), 0);
    commit();
    assert_int_equal(data_kept(db, 7), 1);
    assert_int_equal(delivered(7), 0);
    begin();
    assert_int_equal(deliver_ack("dA", gseq_of(db, 7)), 0);
    commit();
    assert_int_equal(data_kept(db, 7), 0);
    assert_int_equal(delivered(7), 1);
    begin();
    assert_int_equal(send_msg("dA", "m8", NOW, &targets), 8);
    assert_int_equal(send_msg("dA", "m9", NOW, &targets), 9);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 8)), 0);
    commit();
    assert_int_equal(data_kept(db, 8), 0);
    assert_int_equal(data_kept(db, 9), 1);
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 9)), 0);
    commit();
    assert_int_equal(data_kept(db, 9), 0);
    assert_int_equal(delivered(8), 1);
    assert_int_equal(delivered(9), 1);
    sync_dev("dB", 0, &p);
    assert_int_equal(p.n, 0);

    /* the offline-limit sweep reads a bounded step of pending rows per
     * call: 2,100 recent pending rows of one thread (more than a step)
     * before a due one in the next thread do not hide it, and 250 due rows
     * (more than one call drops) all go in a few calls */
    /* (schema 10: the rows are keyed by the threads' numbers, t_a1's
     * below t_a2's as they are created in that order) */
    exec_ok(db, "INSERT INTO threads(id, citizen, kind, title, creator, created, epoch,"
                " group_info) VALUES('t_a1', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00'),"
                " ('t_a2', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00');"
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2100)"
                " INSERT INTO messages(tnum, seq, kind, sender, device, time, epoch, data,"
                " targets, gseq) SELECT " TNUM("t_a1") ", i, 'app', 'x@x.test', 'dZ',"
                " 1900000000, 1, x'01', 1, 100000 + i FROM n;"
                "INSERT INTO messages(tnum, seq, kind, sender, device, time, epoch, data,"
                " targets, gseq) VALUES(" TNUM("t_a2") ", 1, 'app', 'x@x.test', 'dZ', 1, 1,"
                " x'02', 1, 200000);");
    assert_true(int_of(db, "SELECT " TNUM("t_a1") " < " TNUM("t_a2")));
    bool did = false;
    for (int i = 0; i < 4 && int_of(db, "SELECT data IS NOT NULL FROM messages"
                                        " WHERE tnum = " TNUM("t_a2")) != 0; i++) {
        begin();
        assert_int_equal(deliver_sweep(1800000000, &did), 0);
        commit();
    }
    assert_int_equal(int_of(db, "SELECT data IS NULL FROM messages WHERE tnum = " TNUM("t_a2")), 1);
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE tnum = " TNUM("t_a1")
                                " AND data IS NOT NULL"),
                     2100);
    exec_ok(db, "UPDATE messages SET time = 2 WHERE tnum = " TNUM("t_a1") " AND seq <= 250");
    for (int i = 0; i < 20 && int_of(db, "SELECT count(*) FROM messages WHERE tnum = " TNUM("t_a1")
                                         " AND data IS NOT NULL") > 1850; i++) {
        begin();
        assert_int_equal(deliver_sweep(1800000000, &did), 0);
        commit();
        assert_true(did);
    }
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages WHERE tnum = " TNUM("t_a1")
                                " AND data IS NOT NULL"),
                     1850);
    assert_int_equal(int_of(db, "SELECT min(seq) FROM messages WHERE tnum = " TNUM("t_a1")
                                " AND data IS NOT NULL"),
                     251);

    /* a thread that does not exist: refused before anything is stored
     * (since schema 8 no foreign key checks it; hot.c reads the thread) */
    int64_t nmsg = int_of(db, "SELECT count(*) FROM messages");
    begin();
    uint64_t nope = 0;
    assert_int_equal(deliver_thread_message("t_nope", "app", "x@x.test", "dA", 1,
                                            (const uint8_t *)"m7", 2, NOW, &nope, &targets),
                     ERR_NOT_FOUND);
    commit();
    assert_int_equal(int_of(db, "SELECT count(*) FROM messages"), nmsg);
    close_store(st);
}

/* Settling on an interval (cfg.settle_ms): an ack is stored at once and
 * thread.status counts it at once, but the drop of the ciphertext (and the
 * sender's `delivered` event) waits until settle_ms has passed since the
 * last settle; the loop is then told to open a transaction
 * (deliver_settle_due) and the next COMMIT settles everything noted. */
static void settle_interval(void **state)
{
    (void)state;
    struct store *st;
    uint32_t targets = 0;
    open_store(&st);
    srv.cfg.settle_ms = 1000;
    sqlite3 *db = store_db(st);
    exec_ok(db,
            "INSERT INTO threads(id, citizen, kind, title, creator, created, epoch, group_info)"
            " VALUES('" T "', 'a@x.test', 'care', 't', 'a@x.test', 1, 1, x'00');"
            "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
            " joined_seq) VALUES('" T "', 'dA', 'a@x.test', 0, 'citizen', 1, 0),"
            " ('" T "', 'dB', 'b@x.test', 1, 'g', 1, 0), ('" T "', 'dC', 'c@x.test', 2, 'g', 1, 0)");
    begin();
    assert_int_equal(send_msg("dA", "m1", NOW, &targets), 1);
    assert_int_equal(send_msg("dA", "m2", NOW, &targets), 2);
    commit();
    assert_false(deliver_settle_due()); /* nothing noted */

    /* the first settle after a quiet time is at once */
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 1)), 0);
    commit();
    assert_false(deliver_settle_due());
    assert_int_equal(data_kept(db, 1), 1);
    assert_int_equal(delivered(1), 1);

    /* the next acks within the interval wait: stored and counted, not settled */
    begin();
    assert_int_equal(deliver_ack("dC", gseq_of(db, 1)), 0);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", gseq_of(db, 2)), 0);
    commit();
    assert_int_equal(int_of(db, "SELECT acked FROM delivery_cursors WHERE device = 'dC'"),
                     (int64_t)gseq_of(db, 1));
    assert_int_equal(delivered(1), 2);
    assert_int_equal(delivered(2), 1);
    assert_int_equal(data_kept(db, 1), 1);
    assert_false(deliver_settle_due());

    /* once the interval is over the loop is asked for a transaction, and
     * its COMMIT settles both acks: message 1 complete, message 2 not */
    usleep(1100 * 1000);
    assert_true(deliver_settle_due());
    begin();
    commit();
    assert_false(deliver_settle_due());
    assert_int_equal(data_kept(db, 1), 0);
    assert_int_equal(int_of(db, "SELECT acked FROM messages WHERE seq = 1"), 2);
    assert_int_equal(delivered(1), 2);
    assert_int_equal(data_kept(db, 2), 1);

    /* settle_ms 0: every transaction settles */
    srv.cfg.settle_ms = 0;
    begin();
    assert_int_equal(deliver_ack("dC", gseq_of(db, 2)), 0);
    commit();
    assert_int_equal(data_kept(db, 2), 0);
    assert_int_equal(delivered(2), 2);
    close_store(st);
}

static void welcome_for(const char *device, uint64_t *seq)
{
    assert_int_equal(deliver_inbox_add(device, T, 0, "welcome", "a@x.test", "dA", NOW,
                                       (const uint8_t *)"w", 1, seq),
                     0);
}

static int64_t inbox_rows(sqlite3 *db, const char *device)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM inbox WHERE device = '%s'", device);
    return int_of(db, sql);
}

/* An ack deletes the device's inbox rows up to it; once the device has
 * none left the delete is skipped, until a row is inserted again or a
 * rollback may have brought rows back. Each step fails if the skip is
 * taken when it must not be. */
static void inbox_ack_skip(void **state)
{
    (void)state;
    struct store *st;
    uint64_t w1, w2, w3;
    open_store(&st);
    sqlite3 *db = store_db(st);
    exec_ok(db,
            "INSERT INTO threads(id, citizen, kind, title, creator, created, epoch, group_info)"
            " VALUES('" T "', 'a@x.test', 'care', 't', 'a@x.test', 1, 1, x'00')");
    begin();
    welcome_for("dB", &w1);
    welcome_for("dB", &w2);
    commit();
    /* an ack below the second row leaves it (and the device not empty) */
    begin();
    assert_int_equal(deliver_ack("dB", w1), 0);
    commit();
    assert_int_equal(inbox_rows(db, "dB"), 1);
    begin();
    assert_int_equal(deliver_ack("dB", w2), 0);
    commit();
    assert_int_equal(inbox_rows(db, "dB"), 0);
    /* a new row after the device was seen empty */
    begin();
    welcome_for("dB", &w3);
    commit();
    begin();
    assert_int_equal(deliver_ack("dB", w3), 0);
    commit();
    assert_int_equal(inbox_rows(db, "dB"), 0);
    /* a rolled-back savepoint brings rows back after they were seen gone */
    begin();
    welcome_for("dC", &w1);
    commit();
    begin();
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(deliver_ack("dC", w1), 0);
    assert_int_equal(inbox_rows(db, "dC"), 0);
    store_rollback_to(st);
    commit();
    assert_int_equal(inbox_rows(db, "dC"), 1);
    begin();
    assert_int_equal(deliver_ack("dC", w1), 0);
    commit();
    assert_int_equal(inbox_rows(db, "dC"), 0);
    close_store(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(upgrade_then_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(ack_caches, setup, teardown),
        cmocka_unit_test_setup_teardown(settle_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(inbox_ack_skip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
