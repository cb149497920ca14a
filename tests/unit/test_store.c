/* test_store.c: the server store and audit chain: migrations and the
 * schema version, reopen, unique keys, savepoints, the append-only
 * triggers, and audit-verify finding a row tampered with behind SQLite's
 * back (triggers dropped, as an attacker with file access could). Also the
 * one-time code format and the shiftable clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "clock.h"
#include "code.h"
#include "err.h"
#include "hot.h"
#include "store.h"
#include "tstore.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/sammen-store-XXXXXX");
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

static void open_migrate_reopen(void **state)
{
    (void)state;
    struct store *st;
    assert_int_equal(store_open(path, false, &st), ERR_NOT_FOUND);
    assert_int_equal(store_open(path, true, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    /* WAL and FULL sync are on */
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(store_db(st), "PRAGMA synchronous", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 2); /* FULL */
    sqlite3_finalize(s);

    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_meta_set(st, "domain", "x.test"), 0);
    assert_int_equal(store_identity_add(st, "a@x.test", "a", "x.test", "admin", 1), 0);
    assert_int_equal(store_identity_add(st, "a@x.test", "a", "x.test", "admin", 1), ERR_CONFLICT);
    assert_int_equal(store_commit(st), 0);
    store_close(st);

    /* reopen: no migration re-run, data there */
    assert_int_equal(store_open(path, false, &st), 0);
    char buf[64];
    assert_int_equal(store_meta_get(st, "domain", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "x.test");
    assert_int_equal(store_identity_get(st, "a@x.test", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "admin");
    assert_int_equal(store_identity_get(st, "b@x.test", buf, sizeof(buf)), ERR_NOT_FOUND);
    store_close(st);
}

static void savepoints_and_rows(void **state)
{
    (void)state;
    struct store *st;
    assert_int_equal(store_open(path, true, &st), 0);
    assert_int_equal(store_begin(st), 0);
    /* a failed request's writes vanish; the iteration's others stay */
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(store_unit_add(st, STORE_DEPARTMENT, "kept", "x.test", 1), 0);
    assert_int_equal(store_release(st), 0);
    assert_int_equal(store_savepoint(st), 0);
    assert_int_equal(store_unit_add(st, STORE_DEPARTMENT, "dropped", "x.test", 1), 0);
    store_rollback_to(st);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_unit_exists(st, STORE_DEPARTMENT, "kept"), 0);
    assert_int_equal(store_unit_exists(st, STORE_DEPARTMENT, "dropped"), ERR_NOT_FOUND);

    /* devices and codes */
    uint8_t pk[32] = {1, 2, 3};
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_device_add(st, "d_1", "a@x.test", pk, "phone", 10), 0);
    assert_int_equal(store_device_add(st, "d_2", "a@x.test", pk, "dup key", 10), ERR_CONFLICT);
    assert_int_equal(store_device_add(st, "d_3", "nobody@x.test", (uint8_t[32]){9}, "", 10),
                     ERR_INVALID); /* foreign key */
    assert_int_equal(store_device_revoke(st, "d_1", 20), 0);
    assert_int_equal(store_device_revoke(st, "d_1", 21), ERR_CONFLICT);
    struct store_device d;
    assert_int_equal(store_device_get(st, "d_1", &d), 0);
    assert_int_equal(d.revoked, 20);
    assert_memory_equal(d.pk, pk, 32);
    assert_string_equal(d.label, "phone");
    struct store_code c;
    memset(&c, 0, sizeof(c));
    c.hash[0] = 7;
    strcpy(c.kind, "invite");
    strcpy(c.identity, "z@x.test");
    strcpy(c.role, "staff");
    c.created = 1;
    c.expires = 100;
    assert_int_equal(store_code_add(st, &c), 0);
    assert_int_equal(store_code_use(st, c.hash, 50), 0);
    assert_int_equal(store_code_use(st, c.hash, 51), ERR_CONFLICT);
    struct store_code got;
    assert_int_equal(store_code_get(st, c.hash, &got), 0);
    assert_int_equal(got.used, 50);
    assert_string_equal(got.role, "staff");
    assert_int_equal(store_commit(st), 0);
    store_close(st);
}

static int exec_sql(const char *sql)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void audit_chain_and_tampering(void **state)
{
    (void)state;
    struct store *st;
    assert_int_equal(store_open(path, true, &st), 0);
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < 5; i++) {
        char subject[32];
        snprintf(subject, sizeof(subject), "user%d@x.test", i);
        assert_int_equal(audit_append(st, 1000 + (uint64_t)i, "admin@x.test", "invite", subject,
                                      "role staff"),
                         0);
    }
    assert_int_equal(store_commit(st), 0);
    int64_t bad = -1, rows = 0;
    assert_int_equal(audit_verify(st, &bad, &rows), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(rows, 5);
    store_close(st);

    /* the database itself refuses updates and deletes */
    assert_int_not_equal(exec_sql("UPDATE audit SET actor = 'eve' WHERE seq = 3"), SQLITE_OK);
    assert_int_not_equal(exec_sql("DELETE FROM audit WHERE seq = 3"), SQLITE_OK);
    /* an attacker with the file drops the trigger and edits row 3 */
    assert_int_equal(exec_sql("DROP TRIGGER audit_no_update;"
                              "UPDATE audit SET subject = 'eve@x.test' WHERE seq = 3"),
                     SQLITE_OK);
    assert_int_equal(store_open(path, false, &st), 0);
    assert_int_equal(audit_verify(st, &bad, &rows), 0);
    assert_int_equal(bad, 3);
    store_close(st);
    /* deleting a middle row is found at the next row */
    assert_int_equal(exec_sql("UPDATE audit SET subject = 'user2@x.test' WHERE seq = 3;"
                              "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2"),
                     SQLITE_OK);
    assert_int_equal(store_open(path, false, &st), 0);
    assert_int_equal(audit_verify(st, &bad, &rows), 0);
    assert_int_equal(bad, 3);
    store_close(st);
}

static void codes(void **state)
{
    (void)state;
    char shown[CODE_SHOWN + 1];
    uint8_t h1[32], h2[32];
    code_new(shown, h1);
    assert_int_equal(strlen(shown), 23);
    assert_int_equal(shown[5], '-');
    assert_int_equal(shown[11], '-');
    assert_int_equal(code_hash(shown, strlen(shown), h2), 0);
    assert_memory_equal(h1, h2, 32);
    /* case, dashes and spaces do not matter */
    char typed[40];
    size_t o = 0;
    for (size_t i = 0; shown[i]; i++) {
        if (shown[i] == '-') {
            typed[o++] = ' ';
            continue;
        }
        typed[o++] = (char)(shown[i] >= 'a' && shown[i] <= 'z' ? shown[i] - 32 : shown[i]);
    }
    typed[o] = 0;
    assert_int_equal(code_hash(typed, o, h2), 0);
    assert_memory_equal(h1, h2, 32);
    assert_int_equal(code_hash("abcde", 5, h2), ERR_INVALID);
    assert_int_equal(code_hash("abcde-fghjk-mnpqr-stuv0", 23, h2), ERR_INVALID); /* 0 */
    assert_int_equal(code_hash("abcde-fghjk-mnpqr-stuvwx", 24, h2), ERR_INVALID);
    assert_int_equal(code_hash("abcde-fghjk-mnpqr-stuvw", 23, h2), 0);
    /* known answer: SHA-256 of the 20 normalized characters */
    uint8_t want[32];
    crypto_hash_sha256(want, (const uint8_t *)"abcdefghjkmnpqrstuvw", 20);
    assert_memory_equal(h2, want, 32);
}

static int sql_rc(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static long long sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    long long v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Migration 3 -> 4: a schema-3 proxy and break-glass access (unsigned)
 * survive the upgrade with no registration / signed form; the new signed
 * tables refuse UPDATE and DELETE; a break-glass row's signed columns are
 * fixed while expired_logged may still be set. */
static void signed_ledger_migration(void **state)
{
    (void)state;
    struct store *st;
    char p4[160];
    snprintf(p4, sizeof(p4), "%s/upgrade4.db", dir);
    assert_int_equal(store_open_upto(p4, true, 3, &st), 0);
    sqlite3 *db = store_db(st);
    assert_int_equal(sql_rc(db, "INSERT INTO identities(id, name, domain, role, created)"
                                " VALUES('c@x.test', 'c', 'x.test', 'citizen', 1);"
                                "INSERT INTO proxies(citizen, proxy, basis, created_by, created)"
                                " VALUES('c@x.test', 'p@x.test', 'guardianship', 's@x.test', 1);"
                                "INSERT INTO breakglass(id, staff, citizen, thread, reason, opened,"
                                " expires) VALUES('b_1', 's@x.test', 'c@x.test', 't_1',"
                                " 'an old unsigned access', 1, 7201);"),
                     SQLITE_OK);
    store_close(st);

    assert_int_equal(store_open(p4, false, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    db = store_db(st);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM proxies WHERE registration = ''"
                                 " AND ended IS NULL"),
                     1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM breakglass WHERE tbs IS NULL"
                                 " AND staff_device = '' AND hours = 0"),
                     1);
    /* break-glass: the sweep's flag may change, the signed part may not */
    assert_int_equal(sql_rc(db, "UPDATE breakglass SET expired_logged = 1"), SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "UPDATE breakglass SET reason = 'rewritten reason'"),
                         SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "UPDATE breakglass SET expires = 99999"), SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "DELETE FROM breakglass"), SQLITE_OK);
    /* registrations and ends are immutable */
    assert_int_equal(sql_rc(db, "INSERT INTO proxy_registrations(id, citizen, proxy, basis,"
                                " registrar, registrar_device, registrar_key, registered_at,"
                                " stored, tbs, sig, receipt) VALUES('p_1', 'c@x.test',"
                                " 'p@x.test', 'guardianship', 's@x.test', 'd_1', x'00', 1, 1,"
                                " x'01', x'02', x'03');"
                                "INSERT INTO proxy_ends(registration, ender, ender_device,"
                                " ender_key, ended_at, stored, tbs, sig) VALUES('p_1',"
                                " 's@x.test', 'd_1', x'00', 2, 2, x'04', x'05');"),
                     SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "UPDATE proxy_registrations SET proxy = 'q@x.test'"),
                         SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "DELETE FROM proxy_registrations"), SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "UPDATE proxy_ends SET ended_at = 3"), SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "DELETE FROM proxy_ends"), SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM proxy_registrations p"
                                 " JOIN proxy_ends e ON e.registration = p.id"
                                 " WHERE p.proxy = 'p@x.test' AND e.ended_at = 2"),
                     1);
    store_close(st);
}

/* 6 -> 7: the per-thread counter table goes; the membership windows still
 * open and close at the thread's last message seq, now max(seq) */
static void seq_counter_migration(void **state)
{
    (void)state;
    struct store *st;
    char p6[160];
    snprintf(p6, sizeof(p6), "%s/upgrade6.db", dir);
    assert_int_equal(store_open_upto(p6, true, 6, &st), 0);
    sqlite3 *db = store_db(st);
    assert_int_equal(sql_rc(db, "INSERT INTO threads(id, citizen, kind, title, creator, created,"
                                " epoch, group_info) VALUES('t_1', 'c@x.test', 'care', 't',"
                                " 'c@x.test', 1, 1, x'00');"
                                "INSERT INTO thread_members(thread, device, identity, leaf, basis,"
                                " joined, joined_seq) VALUES('t_1', 'dA', 'a@x.test', 0, 'c', 1, 0);"
                                "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, gseq) VALUES"
                                " ('t_1', 1, 'app', 'a@x.test', 'dA', 1, 1, x'01', 0, 1),"
                                " ('t_1', 2, 'app', 'a@x.test', 'dA', 1, 1, x'02', 0, 2),"
                                " ('t_1', 3, 'app', 'a@x.test', 'dA', 1, 1, x'03', 0, 3);"
                                "INSERT INTO thread_seqs(thread, last) VALUES('t_1', 3);"),
                     SQLITE_OK);
    store_close(st);

    /* to schema 7 only: the statements below write `messages` as it was
     * keyed until schema 10 (intkey_migration covers 9 -> 10) */
    assert_int_equal(store_open_upto(p6, false, 7, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, 7);
    db = store_db(st);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'thread_seqs'"),
                     0);
    /* a device added now gets what comes after message 3 */
    assert_int_equal(sql_rc(db, "INSERT INTO thread_members(thread, device, identity, leaf,"
                                " basis, joined, joined_seq) VALUES('t_1', 'dB', 'b@x.test', 1,"
                                " 'g', 2, 3)"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT after_seq FROM member_windows WHERE device = 'dB'"
                                 " AND upto_seq IS NULL"),
                     3);
    assert_int_equal(sql_rc(db, "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, gseq) VALUES"
                                " ('t_1', 4, 'app', 'a@x.test', 'dA', 1, 1, x'04', 1, 4)"),
                     SQLITE_OK);
    /* its removal is marked after message 4: its window ends there */
    assert_int_equal(sql_rc(db, "UPDATE thread_members SET removing = 1 WHERE device = 'dB'"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT upto_seq FROM member_windows WHERE device = 'dB'"), 4);
    /* reopened, then deleted after message 5 */
    assert_int_equal(sql_rc(db, "UPDATE thread_members SET removing = 0 WHERE device = 'dB'"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM member_windows WHERE device = 'dB'"
                                 " AND after_seq = 4 AND upto_seq IS NULL"),
                     1);
    assert_int_equal(sql_rc(db, "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, gseq) VALUES"
                                " ('t_1', 5, 'app', 'a@x.test', 'dA', 1, 1, x'05', 1, 5);"
                                "DELETE FROM thread_members WHERE device = 'dB'"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT upto_seq FROM member_windows WHERE device = 'dB'"
                                 " AND after_seq = 4"),
                     5);
    store_close(st);
}

/* A text column of one row (the caller frees), NULL without a row */
static char *sql_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    char *v = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        v = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
}

/* Every column of every message, in key order: the same before and after
 * the migration */
#define ALL_MESSAGES                                                                        \
    "SELECT group_concat(quote(thread) || ',' || seq || ',' || kind || ',' || sender || ','" \
    " || device || ',' || time || ',' || epoch || ',' || quote(data) || ',' || targets || ','" \
    " || acked || ',' || undeliverable || ',' || v || ',' || quote(gseq), ';')"              \
    " FROM (SELECT * FROM messages ORDER BY thread, seq)"

/* 7 -> 8: the message row rebuilt WITHOUT ROWID, with no messages_time
 * index and no foreign key. Every row (dropped, pending, a v2 row without
 * gseq) comes through unchanged; messages_pending holds exactly the rows
 * with data, v2 included (the offline-limit sweep reads it); a thread with
 * messages cannot be deleted; the window triggers still work. */
static void message_row_migration(void **state)
{
    (void)state;
    struct store *st;
    char p7[160];
    snprintf(p7, sizeof(p7), "%s/upgrade7.db", dir);
    assert_int_equal(store_open_upto(p7, true, 7, &st), 0);
    sqlite3 *db = store_db(st);
    assert_int_equal(sql_rc(db, "INSERT INTO threads(id, citizen, kind, title, creator, created,"
                                " epoch, group_info) VALUES"
                                " ('t_1', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00'),"
                                " ('t_2', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00'),"
                                " ('t_3', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00');"
                                "INSERT INTO thread_members(thread, device, identity, leaf, basis,"
                                " joined, joined_seq) VALUES('t_1', 'dA', 'a@x.test', 0, 'c', 1, 0);"
                                "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, acked, undeliverable, gseq) VALUES"
                                " ('t_1', 1, 'app', 'a@x.test', 'dA', 10, 1, x'01', 2, 0, 0, NULL),"
                                " ('t_1', 2, 'app', 'a@x.test', 'dA', 11, 1, NULL, 2, 2, 0, 5),"
                                " ('t_1', 3, 'commit', 'a@x.test', 'dA', 12, 2, x'03', 2, 1, 0, 6),"
                                " ('t_2', 1, 'app', 'b@x.test', 'dB', 13, 1, NULL, 1, 0, 1, 7),"
                                " ('t_2', 2, 'app', 'b@x.test', 'dB', 14, 1, x'0505', 1, 0, 0, 8);"),
                     SQLITE_OK);
    char *before = sql_text(db, ALL_MESSAGES);
    assert_non_null(before);
    store_close(st);

    /* to schema 8 only: `messages` as 8 left it (text thread key) */
    assert_int_equal(store_open_upto(p7, false, 8, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, 8);
    db = store_db(st);
    char *after = sql_text(db, ALL_MESSAGES);
    assert_non_null(after);
    assert_string_equal(after, before);
    free(before);
    free(after);
    /* one B-tree: no rowid; no time index; no foreign key */
    assert_int_not_equal(sql_rc(db, "SELECT rowid FROM messages"), SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'messages_time'"),
                     0);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM pragma_foreign_key_list('messages')"), 0);
    /* the pending index: every row with data (the v2 row too), nothing else */
    assert_int_equal(sql_int(db, "SELECT count(*) FROM messages INDEXED BY messages_pending"
                                 " WHERE data IS NOT NULL"),
                     3);
    /* the sweep's scan (tstore Q_MSG_EXPIRED_DUE) finds the old pending rows */
    char *due = sql_text(db, "SELECT group_concat(thread || '/' || seq) FROM (SELECT thread, seq"
                             " FROM messages INDEXED BY messages_pending WHERE data IS NOT NULL"
                             " AND time <= 12 ORDER BY thread, seq)");
    assert_non_null(due);
    assert_string_equal(due, "t_1/1,t_1/3");
    free(due);
    /* dropping data takes the row out of the index */
    assert_int_equal(sql_rc(db, "UPDATE messages SET data = NULL WHERE thread = 't_1' AND seq = 3"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM messages INDEXED BY messages_pending"
                                 " WHERE data IS NOT NULL AND thread = 't_1'"),
                     1);
    /* the primary key still refuses a second (thread, seq) */
    assert_int_equal(sql_rc(db, "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, gseq) VALUES"
                                " ('t_1', 3, 'app', 'a@x.test', 'dA', 15, 1, x'09', 1, 9)"),
                     SQLITE_CONSTRAINT_PRIMARYKEY);
    /* a thread with messages stays; one without can go */
    assert_int_equal(sql_rc(db, "DELETE FROM threads WHERE id = 't_2'"), SQLITE_CONSTRAINT_TRIGGER);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM threads WHERE id = 't_2'"), 1);
    assert_int_equal(sql_rc(db, "DELETE FROM threads WHERE id = 't_3'"), SQLITE_OK);
    /* the window triggers read max(seq) of the rebuilt table */
    assert_int_equal(sql_rc(db, "INSERT INTO thread_members(thread, device, identity, leaf,"
                                " basis, joined, joined_seq) VALUES('t_1', 'dB', 'b@x.test', 1,"
                                " 'g', 2, 3)"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT after_seq FROM member_windows WHERE device = 'dB'"
                                 " AND upto_seq IS NULL"),
                     3);
    assert_int_equal(sql_rc(db, "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, gseq) VALUES"
                                " ('t_1', 4, 'app', 'a@x.test', 'dA', 16, 1, x'04', 1, 10);"
                                "DELETE FROM thread_members WHERE device = 'dB'"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT upto_seq FROM member_windows WHERE device = 'dB'"), 4);
    store_close(st);
}

/* Every cursor, in key order: the same before and after the migration */
#define ALL_CURSORS                                                                          \
    "SELECT group_concat(device || ',' || acked || ',' || v, ';')"                           \
    " FROM (SELECT * FROM delivery_cursors ORDER BY device)"

/* The query plan of a statement, its details joined by '|' (the caller
 * frees) */
static char *plan_of(sqlite3 *db, const char *sql)
{
    char q[4096];
    sqlite3_stmt *s;
    int n = snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
    assert_true(n > 0 && (size_t)n < sizeof(q));
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    size_t len = 0;
    char *out = calloc(1, 1);
    assert_non_null(out);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        size_t dl = d ? strlen(d) : 0;
        char *grown = realloc(out, len + dl + 2);
        assert_non_null(grown);
        out = grown;
        if (len)
            out[len++] = '|';
        memcpy(out + len, d ? d : "", dl);
        len += dl;
        out[len] = '\0';
    }
    sqlite3_finalize(s);
    return out;
}

/* The statements of tstore.c that name delivery_cursors */
/* The server's own cursor upsert (tstore Q_CURSOR_PUT). */
static void cursor_put(const char *device, uint64_t acked)
{
    sqlite3_stmt *s = tq(Q_CURSOR_PUT);
    assert_int_equal(tq_text(s, 1, device), 0);
    assert_int_equal(tq_u64(s, 2, acked), 0);
    assert_int_equal(tq_run(s), 0);
}

/* 8 -> 9: the cursor row rebuilt WITHOUT ROWID keyed by device. Every
 * cursor comes through unchanged; there is no rowid and no autoindex left;
 * the upsert still keeps the max and adds new devices; the statements that
 * read it search the primary key. */
static void cursor_row_migration(void **state)
{
    (void)state;
    struct store *st;
    char p8[160];
    snprintf(p8, sizeof(p8), "%s/upgrade8.db", dir);
    assert_int_equal(store_open_upto(p8, true, 8, &st), 0);
    sqlite3 *db = store_db(st);
    assert_int_equal(sql_rc(db, "INSERT INTO delivery_cursors(device, acked, v) VALUES"
                                " ('dA', 7, 1), ('dB', 0, 1), ('dC', 123456789012, 2);"
                                "INSERT INTO threads(id, citizen, kind, title, creator, created,"
                                " epoch, group_info) VALUES"
                                " ('t_1', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00');"
                                "INSERT INTO thread_members(thread, device, identity, leaf, basis,"
                                " joined, joined_seq) VALUES"
                                " ('t_1', 'dA', 'a@x.test', 0, 'c', 1, 0),"
                                " ('t_1', 'dD', 'd@x.test', 1, 'c', 1, 0);"),
                     SQLITE_OK);
    /* schema 8: a rowid table and the key's autoindex */
    assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                 " AND tbl_name = 'delivery_cursors'"),
                     1);
    char *before = sql_text(db, ALL_CURSORS);
    assert_non_null(before);
    assert_string_equal(before, "dA,7,1;dB,0,1;dC,123456789012,2");
    store_close(st);

    assert_int_equal(store_open(p8, false, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    db = store_db(st);
    assert_int_equal(tstore_open(st), 0); /* the server's statements, as it runs them */
    char *after = sql_text(db, ALL_CURSORS);
    assert_non_null(after);
    assert_string_equal(after, before);
    free(before);
    free(after);
    /* one B-tree: no rowid, no index beside it, the old table gone */
    assert_int_not_equal(sql_rc(db, "SELECT rowid FROM delivery_cursors"), SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                 " AND tbl_name = 'delivery_cursors'"),
                     0);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_schema"
                                 " WHERE name = 'delivery_cursors_new'"),
                     0);
    /* the upsert keeps the max: lower and equal leave it, higher moves it,
     * a new device gets a row with v = 1 */
    cursor_put("dA", 3);
    assert_int_equal(sql_int(db, "SELECT acked FROM delivery_cursors WHERE device = 'dA'"), 7);
    cursor_put("dA", 9);
    assert_int_equal(sql_int(db, "SELECT acked FROM delivery_cursors WHERE device = 'dA'"), 9);
    cursor_put("dE", 4);
    assert_int_equal(sql_int(db, "SELECT acked * 10 + v FROM delivery_cursors"
                                 " WHERE device = 'dE'"),
                     41);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM delivery_cursors"), 4);
    /* the key refuses a second row for a device, and a NULL device */
    assert_int_equal(sql_rc(db, "INSERT INTO delivery_cursors(device, acked) VALUES('dB', 1)"),
                     SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_int_not_equal(sql_rc(db, "INSERT INTO delivery_cursors(device, acked)"
                                    " VALUES(NULL, 1)"),
                         SQLITE_OK);
    /* the windows' join: a cursor where there is one, 0 where none */
    char *joined = sql_text(db, "SELECT group_concat(device || '=' || a, ',') FROM"
                                " (SELECT w.device, coalesce(c.acked, 0) AS a"
                                " FROM member_windows w LEFT JOIN delivery_cursors c"
                                " ON c.device = w.device WHERE w.thread = 't_1'"
                                " ORDER BY w.device)");
    assert_non_null(joined);
    assert_string_equal(joined, "dA=9,dD=0");
    free(joined);
    /* every statement that names the table searches its primary key */
    char *plan = plan_of(db, sqlite3_sql(tq(Q_CURSOR_GET)));
    assert_non_null(strstr(plan, "SEARCH delivery_cursors USING PRIMARY KEY (device=?)"));
    free(plan);
    plan = plan_of(db, sqlite3_sql(tq(Q_WIN_OF_THREAD)));
    assert_non_null(strstr(plan, "SEARCH c USING PRIMARY KEY (device=?)"));
    free(plan);
    /* the upsert has no plan rows of its own: it must run */
    cursor_put("dB", 5);
    assert_int_equal(sql_int(db, "SELECT acked FROM delivery_cursors WHERE device = 'dB'"), 5);
    tstore_close();
    store_close(st);
}

/* Every message with its thread's text id, in (thread id, seq) order: the
 * same rows before (schema 9: `thread` is the id) and after (schema 10:
 * `tnum` is threads.num) the migration */
#define MESSAGE_ROWS(FROM)                                                                    \
    "SELECT group_concat(thread || ',' || seq || ',' || kind || ',' || sender || ','"        \
    " || device || ',' || time || ',' || epoch || ',' || quote(data) || ',' || targets || ','" \
    " || acked || ',' || undeliverable || ',' || v || ',' || quote(gseq), ';')"              \
    " FROM (SELECT * FROM " FROM " ORDER BY thread, seq)"
#define MESSAGES_V9 MESSAGE_ROWS("messages")
#define MESSAGES_V10 \
    MESSAGE_ROWS("(SELECT t.id AS thread, m.* FROM messages m JOIN threads t ON t.num = m.tnum)")
/* The tables that keep the text id, whole */
#define WINDOWS_ALL                                                                          \
    "SELECT group_concat(thread || ',' || device || ',' || after_seq || ','"                  \
    " || quote(upto_seq) || ',' || v, ';') FROM (SELECT * FROM member_windows"               \
    " ORDER BY thread, device, after_seq)"
#define INBOX_ALL                                                                            \
    "SELECT group_concat(device || ',' || seq || ',' || thread || ',' || message || ','"      \
    " || kind || ',' || quote(data), ';') FROM (SELECT * FROM inbox ORDER BY device, seq)"

/* Joins the rows of a server statement (already bound) into text: each
 * row's columns (blobs in hex) joined by '/', rows by ',' (the caller
 * frees) */
static char *rows_of(sqlite3_stmt *s)
{
    char *out = calloc(1, 1);
    size_t len = 0;
    assert_non_null(out);
    int rc;
    while ((rc = tq_row(s)) == 0) {
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            char cell[256];
            if (sqlite3_column_type(s, c) == SQLITE_BLOB) {
                const uint8_t *b = sqlite3_column_blob(s, c);
                size_t n = (size_t)sqlite3_column_bytes(s, c), k = 0;
                for (size_t i = 0; i < n && k + 3 < sizeof(cell); i++)
                    k += (size_t)snprintf(cell + k, sizeof(cell) - k, "%02X", b[i]);
                cell[k] = 0;
            } else {
                const unsigned char *t = sqlite3_column_text(s, c);
                snprintf(cell, sizeof(cell), "%s", t ? (const char *)t : "NULL");
            }
            size_t cl = strlen(cell);
            char *g = realloc(out, len + cl + 2);
            assert_non_null(g);
            out = g;
            if (c)
                out[len++] = '/';
            else if (len)
                out[len++] = ',';
            memcpy(out + len, cell, cl + 1);
            len += cl;
        }
    }
    assert_int_equal(rc, ERR_NOT_FOUND);
    return out;
}

static void expect_rows(sqlite3_stmt *s, const char *want)
{
    char *got = rows_of(s);
    assert_string_equal(got, want);
    free(got);
}

static void expect_plan(sqlite3 *db, enum tq i, const char *want)
{
    char *plan = plan_of(db, sqlite3_sql(tq(i)));
    if (!strstr(plan, want))
        fail_msg("plan of %d: %s (wanted %s)", (int)i, plan, want);
    free(plan);
}

/* 9 -> 10: `messages` keyed by the thread's number. A schema-9 database
 * with pending, dropped and v2 rows, windows (one closed), inbox rows and
 * cursors comes through with the same rows; threads are numbered (unique,
 * fixed, never reused); the server's own statements (tstore.c, hot.c) give
 * the answers the rows call for; their plans search the keys. */
static void intkey_migration(void **state)
{
    (void)state;
    struct store *st;
    char p9[160];
    snprintf(p9, sizeof(p9), "%s/upgrade9.db", dir);
    assert_int_equal(store_open_upto(p9, true, 9, &st), 0);
    sqlite3 *db = store_db(st);
    /* t_b is created before t_a (rowids 1, 2): numbers follow creation,
     * not the text order */
    assert_int_equal(sql_rc(db, "INSERT INTO threads(id, citizen, kind, title, creator, created,"
                                " epoch, group_info) VALUES"
                                " ('t_b', 'c@x.test', 'care', 't', 'c@x.test', 1, 1, x'00'),"
                                " ('t_a', 'c@x.test', 'care', 't', 'c@x.test', 2, 1, x'00'),"
                                " ('t_c', 'c@x.test', 'care', 't', 'c@x.test', 3, 1, x'00');"
                                "INSERT INTO thread_members(thread, device, identity, leaf, basis,"
                                " joined, joined_seq) VALUES"
                                " ('t_a', 'dA', 'a@x.test', 0, 'c', 1, 0),"
                                " ('t_a', 'dB', 'b@x.test', 1, 'g', 1, 0),"
                                " ('t_b', 'dB', 'b@x.test', 0, 'g', 1, 0);"
                                "INSERT INTO messages(thread, seq, kind, sender, device, time,"
                                " epoch, data, targets, acked, undeliverable, gseq) VALUES"
                                " ('t_a', 1, 'app', 'a@x.test', 'dA', 10, 1, x'a1', 1, 0, 0, 11),"
                                " ('t_a', 2, 'app', 'a@x.test', 'dA', 11, 1, NULL, 1, 1, 0, 12),"
                                " ('t_a', 3, 'commit', 'a@x.test', 'dA', 12, 2, x'a3', 1, 0, 0, 13),"
                                " ('t_b', 1, 'app', 'b@x.test', 'dB', 13, 1, x'b1', 1, 0, 0, NULL),"
                                " ('t_b', 2, 'app', 'c@x.test', 'dC', 14, 1, x'b2', 1, 0, 0, 14);"
                                /* dB's window of t_b closes after message 2 */
                                "UPDATE thread_members SET removing = 1 WHERE thread = 't_b';"
                                "INSERT INTO inbox(device, seq, thread, message, kind, sender,"
                                " sender_device, time, data) VALUES"
                                " ('dX', 5, 't_b', 1, 'app', 'b@x.test', 'dB', 13, NULL),"
                                " ('dB', 6, 't_a', 0, 'notice', 's@x.test', '', 14, x'80');"
                                "INSERT INTO delivery_cursors(device, acked) VALUES('dB', 11);"
                                "UPDATE delivery_seq SET last = 14;"),
                     SQLITE_OK);
    char *msgs = sql_text(db, MESSAGES_V9), *wins = sql_text(db, WINDOWS_ALL),
         *inbox = sql_text(db, INBOX_ALL);
    assert_non_null(msgs);
    assert_non_null(wins);
    assert_non_null(inbox);
    assert_string_equal(wins, "t_a,dA,0,NULL,1;t_a,dB,0,NULL,1;t_b,dB,0,2,1");
    store_close(st);

    assert_int_equal(store_open(p9, false, &st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(st, &v), 0);
    assert_int_equal(v, 10);
    db = store_db(st);
    assert_int_equal(tstore_open(st), 0); /* the server's statements, as it runs them */
    /* the same rows, every column; nothing else changed */
    char *after = sql_text(db, MESSAGES_V10);
    assert_non_null(after);
    assert_string_equal(after, msgs);
    free(after);
    after = sql_text(db, WINDOWS_ALL);
    assert_string_equal(after, wins);
    free(after);
    after = sql_text(db, INBOX_ALL);
    assert_string_equal(after, inbox);
    free(after);
    free(msgs);
    free(wins);
    free(inbox);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'messages_new'"),
                     0);
    assert_int_not_equal(sql_rc(db, "SELECT rowid FROM messages"), SQLITE_OK);
    assert_int_not_equal(sql_rc(db, "SELECT thread FROM messages"), SQLITE_OK);
    /* numbered in creation order; the counter at the highest */
    char *nums = sql_text(db, "SELECT group_concat(id || '=' || num, ',') FROM"
                              " (SELECT id, num FROM threads ORDER BY num)");
    assert_string_equal(nums, "t_b=1,t_a=2,t_c=3");
    free(nums);
    assert_int_equal(sql_int(db, "SELECT last FROM thread_nums"), 3);
    /* the pending index: the rows with data, keyed by number */
    assert_int_equal(sql_int(db, "SELECT count(*) FROM messages INDEXED BY messages_pending"
                                 " WHERE data IS NOT NULL"),
                     4);

    /* the server's statements. hot.c: t_a's number and last seq */
    const struct hot_thread *h;
    assert_int_equal(hot_get("t_a", &h), 0);
    assert_int_equal(h->num, 2);
    assert_int_equal(h->last_seq, 3);
    uint64_t num_b = 0;
    assert_int_equal(hot_num("t_b", &num_b), 0);
    assert_int_equal(num_b, 1);
    assert_int_equal(hot_num("t_zz", &num_b), ERR_NOT_FOUND);
    sqlite3_stmt *s = tq(Q_THREAD_GET);
    assert_int_equal(tq_text(s, 1, "t_b"), 0);
    assert_int_equal(tq_row(s), 0);
    assert_int_equal(tq_col_u64(s, 5), 2); /* its last seq */
    tq_done(s);
    /* a message by text id; a thread's pending list by number */
    s = tq(Q_MSG_GET);
    assert_int_equal(tq_text(s, 1, "t_a"), 0);
    assert_int_equal(tq_u64(s, 2, 2), 0);
    expect_rows(s, "app/a@x.test/dA/11/0/1/1/0/12");
    s = tq(Q_MSG_PENDING);
    assert_int_equal(tq_u64(s, 1, 2), 0);
    assert_int_equal(tq_u64(s, 2, 0), 0);
    expect_rows(s, "1/11/dA/app/1/0,3/13/dA/commit/1/0");
    /* a device's page: its notice, then the pending messages of its
     * windows (t_a's open one, t_b's closed one) not sent by itself */
    s = tq(Q_INBOX_PAGE);
    assert_int_equal(tq_text(s, 1, "dB"), 0);
    assert_int_equal(tq_u64(s, 2, 0), 0);
    assert_int_equal(tq_u64(s, 3, 10), 0);
    expect_rows(s, "6/t_a/0/notice/s@x.test//14/80,11/t_a/1/app/a@x.test/dA/10/A1,"
                   "13/t_a/3/commit/a@x.test/dA/12/A3,14/t_b/2/app/c@x.test/dC/14/B2");
    /* a v2 inbox row reads its data from the message through the number */
    s = tq(Q_INBOX_PAGE);
    assert_int_equal(tq_text(s, 1, "dX"), 0);
    assert_int_equal(tq_u64(s, 2, 0), 0);
    assert_int_equal(tq_u64(s, 3, 10), 0);
    expect_rows(s, "5/t_b/1/app/b@x.test/dB/13/B1");
    s = tq(Q_UNREAD);
    assert_int_equal(tq_text(s, 1, "dB"), 0);
    assert_int_equal(tq_text(s, 2, "t_a"), 0);
    assert_int_equal(tq_u64(s, 3, 0), 0);
    expect_rows(s, "1");
    /* the sweep's step: pending rows by thread number, then gseq */
    s = tq(Q_MSG_EXPIRED_DUE);
    assert_int_equal(tq_u64(s, 1, 0), 0);
    assert_int_equal(tq_u64(s, 2, 10), 0);
    expect_rows(s, "1/t_b/1/0/13,1/t_b/2/14/14,2/t_a/1/11/10,2/t_a/3/13/12");
    s = tq(Q_MSG_EXPIRED_DUE);
    assert_int_equal(tq_u64(s, 1, 2), 0);
    assert_int_equal(tq_u64(s, 2, 1), 0);
    expect_rows(s, "2/t_a/1/11/10");
    /* the v2 ack: counted, reported by text id, then dropped */
    s = tq(Q_MSG_ACK_UPTO);
    assert_int_equal(tq_text(s, 1, "dX"), 0);
    assert_int_equal(tq_u64(s, 2, 5), 0);
    expect_rows(s, "t_b/1/1/1/dB/app");
    s = tq(Q_MSG_DROP_ACKED);
    assert_int_equal(tq_text(s, 1, "dX"), 0);
    assert_int_equal(tq_u64(s, 2, 5), 0);
    assert_int_equal(tq_run(s), 0);
    assert_int_equal(tq_changes(), 1);
    assert_int_equal(sql_int(db, "SELECT data IS NULL FROM messages WHERE tnum = 1 AND seq = 1"),
                     1);
    /* the settle's drop of a run: the two still pending of 1..3 */
    s = tq(Q_MSG_COMPLETE_RANGE);
    assert_int_equal(tq_u64(s, 1, 2), 0);
    assert_int_equal(tq_u64(s, 2, 1), 0);
    assert_int_equal(tq_u64(s, 3, 3), 0);
    assert_int_equal(tq_u64(s, 4, 1), 0);
    assert_int_equal(tq_run(s), 0);
    assert_int_equal(tq_changes(), 2);
    /* a closed window stays while a message of it is pending */
    s = tq(Q_WIN_SWEEP);
    assert_int_equal(tq_text(s, 1, "t_b"), 0);
    assert_int_equal(tq_u64(s, 2, 1), 0);
    assert_int_equal(tq_run(s), 0);
    assert_int_equal(tq_changes(), 0);
    s = tq(Q_MSG_COMPLETE);
    assert_int_equal(tq_text(s, 1, "t_b"), 0);
    assert_int_equal(tq_u64(s, 2, 2), 0);
    assert_int_equal(tq_u64(s, 3, 0), 0);
    assert_int_equal(tq_u64(s, 4, 1), 0);
    assert_int_equal(tq_run(s), 0);
    assert_int_equal(tq_changes(), 1);
    s = tq(Q_WIN_SWEEP);
    assert_int_equal(tq_text(s, 1, "t_b"), 0);
    assert_int_equal(tq_u64(s, 2, 1), 0);
    assert_int_equal(tq_run(s), 0);
    assert_int_equal(tq_changes(), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM messages WHERE data IS NOT NULL"), 0);

    /* a new thread gets the next number; a deleted one's is not reused;
     * numbers never change */
    s = tq(Q_THREAD_ADD);
    assert_int_equal(tq_text(s, 1, "t_d"), 0);
    assert_int_equal(tq_text(s, 2, "c@x.test"), 0);
    assert_int_equal(tq_text(s, 3, "care"), 0);
    assert_int_equal(tq_text(s, 4, "t"), 0);
    assert_int_equal(tq_text(s, 5, "c@x.test"), 0);
    assert_int_equal(tq_u64(s, 6, 4), 0);
    assert_int_equal(tq_u64(s, 7, 1), 0);
    assert_int_equal(tq_blob(s, 8, (const uint8_t *)"g", 1), 0);
    assert_int_equal(tq_run(s), 0);
    assert_int_equal(sql_int(db, "SELECT num FROM threads WHERE id = 't_d'"), 4);
    assert_int_equal(sql_rc(db, "DELETE FROM threads WHERE id = 't_d'"), SQLITE_OK);
    assert_int_equal(sql_rc(db, "INSERT INTO threads(id, citizen, kind, title, creator, created,"
                                " epoch, group_info) VALUES"
                                " ('t_e', 'c@x.test', 'care', 't', 'c@x.test', 5, 1, x'00')"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT num FROM threads WHERE id = 't_e'"), 5);
    assert_int_equal(sql_rc(db, "UPDATE threads SET num = 9 WHERE id = 't_e'"),
                     SQLITE_CONSTRAINT_TRIGGER);
    assert_int_equal(sql_rc(db, "UPDATE threads SET title = 'u' WHERE id = 't_e'"), SQLITE_OK);
    /* a thread with messages stays */
    assert_int_equal(sql_rc(db, "DELETE FROM threads WHERE id = 't_a'"), SQLITE_CONSTRAINT_TRIGGER);
    /* the window triggers read the last seq through the number */
    assert_int_equal(sql_rc(db, "INSERT INTO thread_members(thread, device, identity, leaf,"
                                " basis, joined, joined_seq) VALUES('t_a', 'dC', 'c@x.test', 2,"
                                " 'g', 2, 3)"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT after_seq FROM member_windows WHERE device = 'dC'"), 3);
    assert_int_equal(sql_rc(db, "UPDATE thread_members SET removing = 1 WHERE device = 'dC'"),
                     SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT upto_seq FROM member_windows WHERE device = 'dC'"), 3);

    /* the plans: the statements of the send, settle and read paths search
     * (tnum, ...) keys, none scans `messages` */
    expect_plan(db, Q_MSG_GET, "SEARCH messages USING PRIMARY KEY (tnum=? AND seq=?)");
    expect_plan(db, Q_MSG_PENDING, "SEARCH messages USING INDEX messages_pending (tnum=? AND gseq>?)");
    expect_plan(db, Q_MSG_COMPLETE_RANGE,
                "SEARCH messages USING PRIMARY KEY (tnum=? AND seq>? AND seq<?)");
    expect_plan(db, Q_THREAD_HOT, "SEARCH m USING PRIMARY KEY (tnum=?)");
    expect_plan(db, Q_INBOX_PAGE, "SEARCH m USING INDEX messages_pending (tnum=? AND gseq>?)");
    expect_plan(db, Q_MSG_EXPIRED_DUE, "SEARCH t USING INDEX threads_num (num=?)");
    expect_plan(db, Q_WIN_SWEEP, "SEARCH m USING PRIMARY KEY (tnum=? AND seq>? AND seq<?)");
    for (int i = 0; i < Q_COUNT; i++) {
        char *plan = plan_of(db, sqlite3_sql(tq((enum tq)i)));
        if (strstr(plan, "SCAN messages") || strstr(plan, "SCAN m "))
            fail_msg("statement %d scans messages: %s", i, plan);
        free(plan);
    }
    hot_clear();
    tstore_close();
    store_close(st);
}

/* 40 commits of 100 rows of 2 KiB: ~8 MiB, about 2,000 pages per 10 commits */
static void write_scratch(struct store *st, int commits)
{
    sqlite3 *db = store_db(st);
    for (int c = 0; c < commits; c++) {
        assert_int_equal(store_begin(st), 0);
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
                 " INSERT INTO scratch(k, v) SELECT %d * 100 + i, randomblob(2048) FROM n",
                 c);
        assert_int_equal(sql_rc(db, sql), SQLITE_OK);
        assert_int_equal(store_commit(st), 0);
    }
}

/* The server's checkpointer: COMMITs past its pages of WAL wake it, it
 * copies the WAL back into the database file on its own connection, the
 * writer carries on meanwhile, and everything reads back after a reopen. */
static void background_checkpoint(void **state)
{
    (void)state;
    struct store *st;
    char pc[160];
    snprintf(pc, sizeof(pc), "%s/ckpt.db", dir);
    assert_int_equal(store_open(pc, true, &st), 0);
    assert_int_equal(store_checkpoint_in_background(st, pc, 0), ERR_INVALID);
    assert_int_equal(store_checkpoint_in_background(st, pc, 2000), 0);
    assert_int_equal(store_checkpoints(st), 0);
    sqlite3 *db = store_db(st);
    assert_int_equal(sql_rc(db, "CREATE TABLE scratch(k INTEGER PRIMARY KEY, v BLOB)"), SQLITE_OK);
    struct stat before;
    assert_int_equal(stat(pc, &before), 0);
    write_scratch(st, 40);
    for (int i = 0; i < 200 && store_checkpoints(st) == 0; i++)
        usleep(50 * 1000);
    assert_true(store_checkpoints(st) >= 1);
    struct stat after;
    assert_int_equal(stat(pc, &after), 0);
    assert_true(after.st_size > before.st_size + 4 * 1024 * 1024); /* copied into the file */
    store_close(st);
    assert_int_equal(store_open(pc, false, &st), 0);
    assert_int_equal(sql_int(store_db(st), "SELECT count(*) FROM scratch"), 4000);
    assert_int_equal(store_checkpoints(st), 0); /* off unless started */
    store_close(st);
}

/* Below its threshold the checkpointer stays asleep: the WAL keeps every
 * page (no copy into the database file), and the rows are there after a
 * reopen, which checkpoints. */
static void checkpoint_threshold(void **state)
{
    (void)state;
    struct store *st;
    char pc[160];
    snprintf(pc, sizeof(pc), "%s/ckpt_t.db", dir);
    assert_int_equal(store_open(pc, true, &st), 0);
    assert_int_equal(store_checkpoint_in_background(st, pc, 100000), 0);
    assert_int_equal(sql_rc(store_db(st), "CREATE TABLE scratch(k INTEGER PRIMARY KEY, v BLOB)"),
                     SQLITE_OK);
    struct stat before;
    assert_int_equal(stat(pc, &before), 0);
    write_scratch(st, 40); /* ~2,000 pages per 10 commits: far below 100,000 */
    usleep(300 * 1000);
    assert_int_equal(store_checkpoints(st), 0);
    char pw[176];
    snprintf(pw, sizeof(pw), "%s-wal", pc);
    struct stat file, wal;
    assert_int_equal(stat(pc, &file), 0);
    assert_int_equal(stat(pw, &wal), 0);
    assert_true(file.st_size < before.st_size + 1024 * 1024); /* nothing copied back */
    assert_true(wal.st_size > 8 * 1024 * 1024);                 /* all of it in the WAL */
    store_close(st);
    assert_int_equal(store_open(pc, false, &st), 0);
    assert_int_equal(sql_int(store_db(st), "SELECT count(*) FROM scratch"), 4000);
    store_close(st);
}

static void clock_shifts(void **state)
{
    (void)state;
    uint64_t t0 = clock_now();
    assert_true(t0 >= (uint64_t)time(NULL) - 1 && t0 <= (uint64_t)time(NULL) + 1);
    clock_shift(86400);
    assert_true(clock_now() >= t0 + 86400);
    assert_int_equal(clock_offset(), 86400);
    clock_shift(-86400);
    assert_int_equal(clock_offset(), 0);
    assert_true(clock_now() < t0 + 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_migrate_reopen),
        cmocka_unit_test(savepoints_and_rows),
        cmocka_unit_test(audit_chain_and_tampering),
        cmocka_unit_test(codes),
        cmocka_unit_test(clock_shifts),
        cmocka_unit_test(signed_ledger_migration),
        cmocka_unit_test(seq_counter_migration),
        cmocka_unit_test(message_row_migration),
        cmocka_unit_test(cursor_row_migration),
        cmocka_unit_test(intkey_migration),
        cmocka_unit_test(background_checkpoint),
        cmocka_unit_test(checkpoint_threshold),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
