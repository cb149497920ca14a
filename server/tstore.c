/*
 * tstore.c: issue-5 statements (see tstore.h). `sql[]` is the one list of
 * them; the tables are described by store.c's migration 1 -> 2.
 */
#include "tstore.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"

/* Grants that count for a thread: not revoked, not expired, scope = kind or
 * thread:ID. ?1 citizen ?2 kind ?3 "thread:ID" ?4 now ?5 thread id. */
#define LIVE_GRANT                                                                          \
    " g.citizen = ?1 AND (g.scope = ?2 OR g.scope = ?3) AND (g.expires = 0 OR g.expires > ?4)" \
    " AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.grant_id = g.id)"

/* Threads identity ?1 may be entitled to or is in (a superset: scope,
 * expiry and revocation are left to entitle.c). Every OR term is an index
 * search (schema 6), so SQLite answers it with a MULTI-INDEX OR instead of
 * scanning grants and thread_members: the grant terms are a UNION ALL, not
 * an OR inside one subquery. */
#define THREADS_CANDIDATE_SQL                                                                \
    "SELECT id, citizen, kind, title, epoch FROM threads WHERE (citizen = ?1"                 \
    " OR citizen IN (SELECT citizen FROM proxies WHERE proxy = ?1)"                          \
    " OR citizen IN (SELECT citizen FROM grants WHERE grantee = ?1"                          \
    "   UNION ALL SELECT citizen FROM grants WHERE grantee_kind = 2 AND grantee_name IN"     \
    "     (SELECT department FROM staff_assignments WHERE identity = ?1)"                    \
    "   UNION ALL SELECT citizen FROM grants WHERE grantee_kind = 3 AND grantee_name IN"     \
    "     (SELECT association FROM association_members WHERE identity = ?1))"                \
    " OR id IN (SELECT thread FROM breakglass WHERE staff = ?1)"                             \
    " OR id IN (SELECT thread FROM thread_members WHERE identity = ?1))"

static const char *const sql[Q_COUNT] = {
    [Q_GRANT_ADD] = "INSERT INTO grants(id, citizen, grantee, grantee_kind, grantee_name, scope,"
                    " basis, purpose, form, granter, granter_device, granter_key, reason, issued,"
                    " expires, stored, tbs, sig, receipt)"
                    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)",
    [Q_GRANT_GET] = "SELECT g.citizen, g.scope, g.expires, coalesce(r.time, 0), g.grantee"
                    " FROM grants g LEFT JOIN revocations r ON r.grant_id = g.id WHERE g.id = ?1",
    [Q_GRANT_EACH_CITIZEN] =
        "SELECT g.id, g.citizen, g.grantee, g.scope, g.basis, g.purpose, g.form, g.granter,"
        " g.granter_device, g.granter_key, g.reason, g.issued, g.expires, coalesce(r.time, 0),"
        " g.tbs, g.sig, g.receipt, g.stored"
        " FROM grants g LEFT JOIN revocations r ON r.grant_id = g.id WHERE g.citizen = ?1"
        " ORDER BY g.stored, g.id",
    [Q_GRANT_EXPIRED_DUE] =
        "SELECT g.id, g.citizen, g.grantee, g.scope FROM grants g WHERE g.expires != 0"
        " AND g.expires <= ?1 AND NOT EXISTS (SELECT 1 FROM grant_expiries x"
        " WHERE x.grant_id = g.id) AND NOT EXISTS (SELECT 1 FROM revocations r"
        " WHERE r.grant_id = g.id) LIMIT 100",
    [Q_GRANT_EXPIRY_ADD] = "INSERT INTO grant_expiries(grant_id, time) VALUES(?1, ?2)",
    [Q_REVOKE_ADD] = "INSERT INTO revocations(grant_id, revoker, revoker_device, revoked_at, time,"
                     " tbs, sig) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_PROXY_ACTIVE] = "SELECT registration FROM proxies WHERE citizen = ?1 AND proxy = ?2"
                       " AND ended IS NULL",
    [Q_PROXY_ADD] = "INSERT INTO proxies(citizen, proxy, basis, created_by, created,"
                    " registration) VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(citizen, proxy)"
                    " DO UPDATE SET ended = NULL, basis = excluded.basis,"
                    " created_by = excluded.created_by, created = excluded.created,"
                    " registration = excluded.registration"
                    " WHERE ended IS NOT NULL OR registration = ''",
    /* ends the active registration ?4 of proxy ?2 (no change: not active) */
    [Q_PROXY_END] = "UPDATE proxies SET ended = ?3 WHERE citizen = ?1 AND proxy = ?2"
                    " AND ended IS NULL AND registration = ?4",
    [Q_DEV_ACTIVE_COUNT] = "SELECT count(*) FROM devices WHERE identity = ?1 AND revoked IS NULL",
    [Q_STAFF_IN_GRANTED_DEPT] =
        "SELECT 1 FROM grants g JOIN staff_assignments sa ON sa.department = g.grantee_name"
        " WHERE g.citizen = ?1 AND g.grantee_kind = 2 AND sa.identity = ?2 LIMIT 1",
    [Q_ENTITLED] =
        "SELECT d.id, e.identity, e.basis, d.pubkey FROM ("
        " SELECT ?1 AS identity, 'citizen' AS basis, 0 AS o"
        " UNION ALL SELECT proxy, 'proxy', 1 FROM proxies WHERE citizen = ?1 AND ended IS NULL"
        " UNION ALL SELECT g.grantee, g.id, 2 FROM grants g WHERE g.grantee_kind = 1 AND"
        LIVE_GRANT
        " UNION ALL SELECT sa.identity, g.id, 2 FROM grants g JOIN staff_assignments sa"
        " ON sa.department = g.grantee_name WHERE g.grantee_kind = 2 AND" LIVE_GRANT
        " UNION ALL SELECT am.identity, g.id, 2 FROM grants g JOIN association_members am"
        " ON am.association = g.grantee_name WHERE g.grantee_kind = 3 AND" LIVE_GRANT
        " UNION ALL SELECT staff, 'breakglass', 3 FROM breakglass WHERE thread = ?5"
        " AND expires > ?4"
        ") e JOIN devices d ON d.identity = e.identity AND d.revoked IS NULL"
        " ORDER BY e.o, e.basis, d.id",
    [Q_KP_ADD] = "INSERT INTO key_packages(ref, device, data, last_resort, created)"
                 " VALUES(?1,?2,?3,?4,?5)",
    [Q_KP_COUNT] = "SELECT coalesce(sum(last_resort = 0), 0), coalesce(sum(last_resort = 1), 0)"
                   " FROM key_packages WHERE device = ?1 AND claimed IS NULL",
    [Q_KP_LAST_RESORT_RETIRE] = "UPDATE key_packages SET claimed = ?2, claimed_for = 'retired'"
                                " WHERE device = ?1 AND last_resort = 1 AND claimed IS NULL",
    [Q_KP_PICK] = "SELECT ref, data, last_resort FROM key_packages WHERE device = ?1"
                  " AND claimed IS NULL ORDER BY last_resort, created, ref LIMIT 1",
    [Q_KP_CLAIM] = "UPDATE key_packages SET claimed = ?2, claimed_for = ?3 WHERE ref = ?1"
                   " AND claimed IS NULL",
    [Q_KP_GET] = "SELECT data, device FROM key_packages WHERE ref = ?1",
    [Q_KP_DEVICE] = "SELECT device, claimed_for, last_resort FROM key_packages WHERE ref = ?1",
    [Q_KP_DEL] = "DELETE FROM key_packages WHERE ref = ?1",
    [Q_THREAD_ADD] = "INSERT INTO threads(id, citizen, kind, title, creator, created, epoch,"
                     " group_info) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [Q_THREAD_GET] = "SELECT t.citizen, t.kind, t.title, t.epoch, t.removal_pending,"
                     " coalesce((SELECT max(m.seq) FROM messages m WHERE m.tnum = t.num), 0),"
                     " coalesce(t.latest_gi, t.group_info) FROM threads t WHERE t.id = ?1",
    [Q_THREAD_SET_EPOCH] = "UPDATE threads SET epoch = ?2 WHERE id = ?1",
    [Q_THREAD_SET_REMOVAL] = "UPDATE threads SET removal_pending = ?2 WHERE id = ?1",
    [Q_THREAD_EACH] = "SELECT id, citizen, kind, title, epoch FROM threads ORDER BY created, id",
    [Q_THREAD_EACH_CITIZEN] = "SELECT id FROM threads WHERE citizen = ?1 ORDER BY id",
    [Q_THREAD_SET_GI] = "UPDATE threads SET latest_gi = ?2 WHERE id = ?1",
    [Q_MEMBER_ADD] = "INSERT INTO thread_members(thread, device, identity, leaf, basis, joined,"
                     " joined_seq) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_MEMBER_GET] = "SELECT identity, leaf, basis, removing FROM thread_members"
                     " WHERE thread = ?1 AND device = ?2",
    [Q_MEMBER_DEL] = "DELETE FROM thread_members WHERE thread = ?1 AND device = ?2",
    [Q_MEMBER_EACH] = "SELECT device, identity, leaf, basis, removing FROM thread_members"
                      " WHERE thread = ?1 ORDER BY leaf",
    [Q_MEMBER_SET_REMOVING] = "UPDATE thread_members SET removing = ?3 WHERE thread = ?1"
                              " AND device = ?2",
    [Q_MEMBER_SET_BASIS] = "UPDATE thread_members SET basis = ?3 WHERE thread = ?1"
                           " AND device = ?2",
    [Q_MEMBER_SET_LEAF] = "UPDATE thread_members SET leaf = ?3 WHERE thread = ?1 AND device = ?2",
    [Q_MEMBER_OF_IDENTITY] = "SELECT 1 FROM thread_members WHERE thread = ?1 AND identity = ?2"
                             " AND removing = 0 LIMIT 1",
    [Q_PROP_GET] = "SELECT epoch, kp_ref FROM thread_proposals WHERE thread = ?1 AND device = ?2"
                   " AND kind = ?3",
    [Q_PROP_PUT] = "INSERT INTO thread_proposals(thread, device, kind, epoch, kp_ref, basis)"
                   " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(thread, device, kind) DO UPDATE SET"
                   " epoch = excluded.epoch, kp_ref = excluded.kp_ref, basis = excluded.basis",
    [Q_PROP_BASIS] = "SELECT basis FROM thread_proposals WHERE thread = ?1 AND device = ?2"
                     " AND kind = 'add'",
    [Q_PROP_DEL] = "DELETE FROM thread_proposals WHERE thread = ?1 AND device = ?2 AND kind = ?3",
    [Q_HS_ADD] = "INSERT INTO handshakes(thread, idx, epoch, time, data) VALUES(?1,"
                 " (SELECT coalesce(max(idx), 0) + 1 FROM handshakes WHERE thread = ?1),"
                 " ?2, ?3, ?4)",
    [Q_HS_EACH] = "SELECT time, data FROM handshakes WHERE thread = ?1 ORDER BY idx",
    /* `messages` is keyed by the thread's number (schema 10): ?1 is
     * threads.num (hot.c holds it), not the text id */
    [Q_MSG_ADD] = "INSERT INTO messages(tnum, seq, kind, sender, device, time, epoch, data,"
                  " targets, gseq) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    /* the statements off the send and settle paths bind the text id ?1 and
     * look its number up (one search of threads' primary key) */
    [Q_MSG_GET] = "SELECT kind, sender, device, time, data IS NOT NULL, targets, acked,"
                  " undeliverable, coalesce(gseq, 0) FROM messages"
                  " WHERE tnum = (SELECT num FROM threads WHERE id = ?1) AND seq = ?2",
    /* v2 inbox rows (message > 0, schema 2 data still pending): an ack up
     * to seq ?2 by device ?1, in one statement: each message with an inbox
     * row of that device up to seq counts that device's rows. */
    [Q_MSG_ACK_UPTO] = "UPDATE messages SET acked = acked + (SELECT count(*) FROM inbox i"
                       " INDEXED BY inbox_message"
                       " WHERE i.thread = (SELECT id FROM threads WHERE num = messages.tnum)"
                       " AND i.message = messages.seq AND i.device = ?1 AND i.seq <= ?2)"
                       " WHERE (tnum, seq) IN (SELECT t.num, i.message FROM inbox i"
                       " JOIN threads t ON t.id = i.thread"
                       " WHERE i.device = ?1 AND i.seq <= ?2 AND i.message > 0)"
                       " RETURNING (SELECT id FROM threads WHERE num = messages.tnum), seq,"
                       " acked, targets, device, kind",
    [Q_MSG_DROP_DATA] = "UPDATE messages SET data = NULL"
                        " WHERE tnum = (SELECT num FROM threads WHERE id = ?1) AND seq = ?2",
    /* The offline-limit sweep's step: at most ?2 rows still holding their
     * ciphertext, threads from ?1 on, each thread's in gseq order (its
     * oldest first; ?1 a thread number). Read from messages_pending (schema
     * 8: it carries `time`, and seq as the key's tail; the thread's text id
     * from threads by number); deliver_sweep checks the times and moves
     * on, so each call costs a bounded step whatever the number of pending
     * rows, and the calls pass over all of them in turn. (Schema 7 had an
     * index on time for this; it cost every insert.) */
    [Q_MSG_EXPIRED_DUE] = "SELECT m.tnum, t.id, m.seq, coalesce(m.gseq, 0), m.time FROM messages m"
                          " INDEXED BY messages_pending CROSS JOIN threads t ON t.num = m.tnum"
                          " WHERE m.data IS NOT NULL AND m.tnum >= ?1"
                          " ORDER BY m.tnum, m.gseq LIMIT ?2",
    [Q_MSG_UNDELIVERABLE] = "UPDATE messages SET undeliverable = undeliverable + ?3"
                            " WHERE tnum = (SELECT num FROM threads WHERE id = ?1) AND seq = ?2",
    [Q_GSEQ_GET] = "SELECT last FROM delivery_seq WHERE id = 1",
    [Q_GSEQ_PUT] = "UPDATE delivery_seq SET last = max(last, ?1) WHERE id = 1",
    [Q_CURSOR_GET] = "SELECT acked FROM delivery_cursors WHERE device = ?1",
    [Q_CURSOR_PUT] = "INSERT INTO delivery_cursors(device, acked) VALUES(?1, ?2)"
                     " ON CONFLICT(device) DO UPDATE SET acked = max(acked, excluded.acked)",
    /* A thread's windows with their devices' cursors */
    [Q_WIN_OF_THREAD] = "SELECT w.device, w.after_seq, w.upto_seq IS NULL,"
                        " coalesce(w.upto_seq, 0), coalesce(c.acked, 0)"
                        " FROM member_windows w LEFT JOIN delivery_cursors c"
                        " ON c.device = w.device WHERE w.thread = ?1",
    /* A thread's messages whose ciphertext is still kept, in order, after
     * entry seq ?2 (0: all; deliver.c reads only what is new since its
     * cached list); ?1 the thread's number */
    [Q_MSG_PENDING] = "SELECT seq, gseq, device, kind, targets, undeliverable FROM messages"
                      " WHERE tnum = ?1 AND data IS NOT NULL AND gseq IS NOT NULL"
                      " AND gseq > ?2 ORDER BY gseq",
    /* Every target has it (or is counted undeliverable ?3): drop the data */
    [Q_MSG_COMPLETE] = "UPDATE messages SET data = NULL, undeliverable = undeliverable + ?3,"
                       " acked = ?4 WHERE tnum = (SELECT num FROM threads WHERE id = ?1)"
                       " AND seq = ?2",
    /* Closed windows of thread ?1 (number ?2) with no pending message left */
    [Q_WIN_SWEEP] = "DELETE FROM member_windows WHERE thread = ?1 AND upto_seq IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.tnum = ?2"
                    " AND m.data IS NOT NULL AND m.gseq IS NOT NULL"
                    " AND m.seq > member_windows.after_seq AND m.seq <= member_windows.upto_seq)",
    /* thread.list's unread: v2 inbox rows + app messages in device ?1's
     * windows of thread ?2 after its cursor ?3 */
    [Q_UNREAD] = "SELECT (SELECT count(*) FROM inbox WHERE device = ?1 AND thread = ?2"
                 " AND kind = 'app') + (SELECT count(*) FROM member_windows w JOIN messages m"
                 " ON m.tnum = (SELECT num FROM threads WHERE id = ?2)"
                 " AND m.data IS NOT NULL AND m.gseq IS NOT NULL"
                 " AND m.gseq > ?3 AND m.seq > w.after_seq"
                 " AND (w.upto_seq IS NULL OR m.seq <= w.upto_seq)"
                 " WHERE w.device = ?1 AND w.thread = ?2 AND m.device != ?1"
                 " AND m.kind = 'app')",
    [Q_INBOX_ADD] = "INSERT INTO inbox(device, seq, thread, message, kind, sender, sender_device,"
                    " time, data) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    /* A device's entries after ?2: its inbox rows (welcomes, notices, v2
     * rows) and the pending messages of its windows not sent by itself */
    [Q_INBOX_PAGE] = "SELECT seq, thread, message, kind, sender, sender_device, time, data FROM ("
                     "SELECT i.seq AS seq, i.thread AS thread, i.message AS message,"
                     " i.kind AS kind, i.sender AS sender, i.sender_device AS sender_device,"
                     " i.time AS time, coalesce(i.data, m.data) AS data FROM inbox i"
                     " LEFT JOIN messages m ON i.data IS NULL"
                     " AND m.tnum = (SELECT num FROM threads t WHERE t.id = i.thread)"
                     " AND m.seq = i.message WHERE i.device = ?1 AND i.seq > ?2"
                     " UNION ALL SELECT m.gseq, w.thread, m.seq, m.kind, m.sender, m.device,"
                     " m.time, m.data FROM member_windows w JOIN threads t ON t.id = w.thread"
                     /* the pending rows after the cursor, not the window's
                      * history: without the hint SQLite takes the primary
                      * key (seq > after_seq) of the WITHOUT ROWID table */
                     " JOIN messages m INDEXED BY messages_pending"
                     " ON m.tnum = t.num AND m.data IS NOT NULL AND m.gseq IS NOT NULL"
                     " AND m.gseq > ?2 AND m.seq > w.after_seq"
                     " AND (w.upto_seq IS NULL OR m.seq <= w.upto_seq)"
                     " WHERE w.device = ?1 AND m.device != ?1"
                     ") ORDER BY seq LIMIT ?3",
    /* After Q_MSG_ACK_UPTO: drop the data of those messages now complete */
    [Q_MSG_DROP_ACKED] = "UPDATE messages SET data = NULL WHERE data IS NOT NULL"
                         " AND acked + undeliverable >= targets AND (tnum, seq) IN"
                         " (SELECT t.num, i.message FROM inbox i JOIN threads t"
                         " ON t.id = i.thread WHERE i.device = ?1 AND i.seq <= ?2"
                         " AND i.message > 0)",
    [Q_INBOX_V2_ANY] = "SELECT 1 FROM inbox WHERE message > 0 LIMIT 1",
    [Q_INBOX_DEL_UPTO] = "DELETE FROM inbox WHERE device = ?1 AND seq <= ?2",
    [Q_INBOX_OF_MESSAGE] = "SELECT device FROM inbox WHERE thread = ?1 AND message = ?2",
    [Q_INBOX_DEL_MESSAGE] = "DELETE FROM inbox WHERE thread = ?1 AND message = ?2",
    [Q_MISSED_ADD] = "INSERT INTO missed(device, thread, count) VALUES(?1,?2,?3)"
                     " ON CONFLICT(device, thread) DO UPDATE SET count = count + excluded.count",
    [Q_MISSED_EACH] = "SELECT thread, count FROM missed WHERE device = ?1 ORDER BY thread",
    [Q_MISSED_CLEAR] = "DELETE FROM missed WHERE device = ?1",
    [Q_HISTORY_READ] = "INSERT OR IGNORE INTO history_reads(device, thread, day) VALUES(?1,?2,?3)",
    [Q_ACCESS_ADD] = "INSERT INTO access_log(time, citizen, thread, actor, action, subject)"
                     " VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_ACCESS_EACH_THREAD] = "SELECT time, actor, action, subject FROM access_log"
                             " WHERE thread = ?1 OR (thread = '' AND citizen = ?2)"
                             " ORDER BY seq",
    [Q_PROXIES_OF_CITIZEN] = "SELECT proxy FROM proxies WHERE citizen = ?1 AND ended IS NULL"
                             " ORDER BY proxy",
    [Q_REL_ADD] = "INSERT INTO relatives(identity, citizen, child, grant_id) VALUES(?1,?2,?3,?4)"
                  " ON CONFLICT(identity) DO UPDATE SET child = excluded.child",
    [Q_REQ_ADD] = "INSERT INTO consent_requests(id, citizen, requester, scope, note, status,"
                  " created) VALUES(?1,?2,?3,?4,?5,'open',?6)",
    [Q_REQ_GET] = "SELECT citizen, requester, scope, note, status, created, grant_id"
                  " FROM consent_requests WHERE id = ?1",
    [Q_REQ_EACH] = "SELECT id, citizen, requester, scope, note, status, created, grant_id"
                   " FROM consent_requests WHERE requester = ?1 OR citizen = ?1 OR citizen IN"
                   " (SELECT citizen FROM proxies WHERE proxy = ?1 AND ended IS NULL)"
                   " ORDER BY created, id",
    [Q_REQ_SET] = "UPDATE consent_requests SET status = ?2, grant_id = ?3 WHERE id = ?1"
                  " AND status = 'open'",
    [Q_BG_ADD] = "INSERT INTO breakglass(id, staff, citizen, thread, reason, opened, expires,"
                 " staff_device, staff_key, hours, tbs, sig)"
                 " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
    [Q_BG_EXPIRED_DUE] = "SELECT id, citizen, thread, staff FROM breakglass WHERE expires <= ?1"
                         " AND expired_logged = 0 LIMIT 100",
    [Q_BG_SET_LOGGED] = "UPDATE breakglass SET expired_logged = 1 WHERE id = ?1",
    [Q_AGR_ADD] = "INSERT INTO agreements(id, thread, message, pinned_by, time)"
                  " VALUES(?1,?2,?3,?4,?5)",
    [Q_AGR_LATEST] = "SELECT id, message FROM agreements WHERE thread = ?1"
                     " ORDER BY time DESC, rowid DESC LIMIT 1",
    [Q_AGR_ACK_ADD] = "INSERT INTO agreement_acks(agreement, identity, time) VALUES(?1,?2,?3)",
    [Q_AGR_ACKS] = "SELECT identity, time FROM agreement_acks WHERE agreement = ?1"
                   " ORDER BY time, identity",
    [Q_AGR_GET] = "SELECT thread FROM agreements WHERE id = ?1",
    [Q_THREADS_OF_IDENTITY] = "SELECT DISTINCT m.thread, t.citizen FROM thread_members m"
                              " JOIN threads t ON t.id = m.thread WHERE m.identity = ?1",
    /* thread.send's read: no blobs */
    [Q_THREAD_HOT] = "SELECT t.epoch, t.removal_pending,"
                     " coalesce((SELECT max(m.seq) FROM messages m WHERE m.tnum = t.num), 0),"
                     " t.num FROM threads t WHERE t.id = ?1",
    /* threads identity ?1 may be entitled to or is in */
    [Q_THREADS_CANDIDATE] = THREADS_CANDIDATE_SQL " ORDER BY created, id",
    /* the candidates a device's new KeyPackages can matter to: those it is
     * not a member of yet (?2 = the device) */
    [Q_THREADS_WANTING_DEVICE] =
        THREADS_CANDIDATE_SQL
        " AND id NOT IN (SELECT thread FROM thread_members WHERE device = ?2)"
        " ORDER BY created, id",
    [Q_PREG_ADD] = "INSERT INTO proxy_registrations(id, citizen, proxy, basis, registrar,"
                   " registrar_device, registrar_key, registered_at, stored, tbs, sig, receipt)"
                   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
    [Q_PREG_EACH_CITIZEN] =
        "SELECT p.id, p.proxy, p.basis, p.registrar, p.registrar_device, p.registrar_key,"
        " p.registered_at, p.stored, p.tbs, p.sig, p.receipt, coalesce(e.stored, 0), e.tbs,"
        " e.sig, e.ender_key"
        " FROM proxy_registrations p LEFT JOIN proxy_ends e ON e.registration = p.id"
        " WHERE p.citizen = ?1 ORDER BY p.stored, p.id",
    [Q_PEND_ADD] = "INSERT INTO proxy_ends(registration, ender, ender_device, ender_key,"
                   " ended_at, stored, tbs, sig) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [Q_BG_EACH_CITIZEN] =
        "SELECT id, staff, thread, reason, opened, expires, staff_device, staff_key, hours,"
        " tbs, sig FROM breakglass WHERE citizen = ?1 ORDER BY opened, id",
    /* threads whose roster holds device ?1 */
    [Q_THREADS_OF_DEVICE] = "SELECT thread FROM thread_members WHERE device = ?1 ORDER BY thread",
    /* threads of citizens who granted department ?1 (whose entitlement a
     * staff assignment to it can change) */
    [Q_THREADS_OF_DEPARTMENT] = "SELECT id FROM threads WHERE citizen IN (SELECT citizen FROM"
                                " grants WHERE grantee_kind = 2 AND grantee_name = ?1)"
                                " ORDER BY created, id",
    /* A thread's windows without cursors (deliver.c caches them per thread
     * and takes the cursors from its cursor cache) */
    [Q_WIN_ONLY] = "SELECT device, after_seq, upto_seq IS NULL, coalesce(upto_seq, 0)"
                   " FROM member_windows WHERE thread = ?1",
    /* The threads where device ?1 has a window (once per window) */
    [Q_WIN_OF_DEVICE] = "SELECT thread FROM member_windows WHERE device = ?1",
    /* Whether device ?1 has inbox rows left (after an ack's delete) */
    [Q_INBOX_DEVICE_ANY] = "SELECT 1 FROM inbox WHERE device = ?1 LIMIT 1",
    /* Messages ?2..?3 of thread ?1, every one complete with the same count
     * ?4: the data of those still pending dropped in one statement (the
     * caller checks the number of rows changed against its list); ?1 is
     * the thread's number */
    [Q_MSG_COMPLETE_RANGE] = "UPDATE messages SET data = NULL, acked = ?4 WHERE tnum = ?1"
                             " AND seq >= ?2 AND seq <= ?3 AND data IS NOT NULL"
                             " AND gseq IS NOT NULL",
    [Q_THREAD_FOLLOWER] = "SELECT follower, group_info FROM threads WHERE id = ?1",
    [Q_THREAD_SET_FOLLOWER] = "UPDATE threads SET follower = ?2 WHERE id = ?1",
};

static sqlite3 *db;
static struct store *store;
static sqlite3_stmt *q[Q_COUNT];

/* Statement profile (HACKING.md): with SAMMEN_STMT_PROFILE=FILE in the
 * environment, the time spent in sqlite3_step() is summed per statement and
 * written to FILE when the store closes. Off by default (one branch). */
static bool prof_on;
static const char *prof_path;
static uint64_t prof_ns[Q_COUNT], prof_steps[Q_COUNT];

/* tstore_roster_gen(): bumped by SQLite's update hook (row_hook) for every row
 * written to `threads` or `thread_members` (by any statement or trigger on
 * this connection); see tstore_roster_gen() for the rest */
static uint64_t roster_gen = 1;
/* tstore_windows_gen(): the same for `member_windows` (deliver.c) */
static uint64_t windows_gen = 1;
/* tstore_inbox_gen(): bumped by every row inserted into `inbox` */
static uint64_t inbox_gen = 1;
static void row_hook(void *ctx, int op, const char *db_name, const char *table,
                        sqlite3_int64 rowid)
{
    (void)ctx;
    (void)op;
    (void)db_name;
    (void)rowid;
    if (strcmp(table, "thread_members") == 0 || strcmp(table, "threads") == 0)
        roster_gen++;
    else if (strcmp(table, "member_windows") == 0)
        windows_gen++;
    else if (op == SQLITE_INSERT && strcmp(table, "inbox") == 0)
        inbox_gen++;
    /* `messages` is WITHOUT ROWID (schema 8): the hook never sees it */
}

static uint64_t seen_rollbacks;

uint64_t tstore_roster_gen(void)
{
    uint64_t rb = store ? store_rollbacks(store) : 0;
    if (rb != seen_rollbacks) {
        seen_rollbacks = rb;
        roster_gen++;
    }
    return roster_gen;
}

uint64_t tstore_inbox_gen(void)
{
    return inbox_gen;
}

uint64_t tstore_windows_gen(void)
{
    return windows_gen;
}

static int step(sqlite3_stmt *s)
{
    if (!prof_on)
        return sqlite3_step(s);
    uint64_t t0 = mono_ns();
    int rc = sqlite3_step(s);
    uint64_t dt = mono_ns() - t0;
    for (int i = 0; i < Q_COUNT; i++) {
        if (q[i] == s) {
            prof_ns[i] += dt;
            prof_steps[i]++;
            break;
        }
    }
    return rc;
}

static void prof_write(void)
{
    if (!prof_on)
        return;
    FILE *f = fopen(prof_path, "w");
    if (!f) {
        log_warn("tstore: cannot write the statement profile to %s", prof_path);
        return;
    }
    fprintf(f, "# statement  total_us  steps  us_per_step  sql\n");
    for (int i = 0; i < Q_COUNT; i++) {
        if (!prof_steps[i])
            continue;
        fprintf(f, "%d %.0f %llu %.2f %s\n", i, (double)prof_ns[i] / 1e3,
                (unsigned long long)prof_steps[i],
                (double)prof_ns[i] / 1e3 / (double)prof_steps[i], sql[i]);
    }
    if (fclose(f) != 0)
        log_warn("tstore: cannot write the statement profile to %s", prof_path);
}

static int fail(const char *what, int rc)
{
    log_error("tstore: %s: %s (%d)", what, db ? sqlite3_errmsg(db) : "?", rc);
    return ERR_IO;
}

int tstore_open(struct store *st)
{
    tstore_close();
    db = store_db(st);
    store = st;
    seen_rollbacks = store_rollbacks(st);
    prof_path = getenv("SAMMEN_STMT_PROFILE");
    prof_on = prof_path && prof_path[0];
    memset(prof_ns, 0, sizeof(prof_ns));
    memset(prof_steps, 0, sizeof(prof_steps));
    roster_gen++;
    windows_gen++;
    inbox_gen++;
    (void)sqlite3_update_hook(db, row_hook, NULL);
    for (int i = 0; i < Q_COUNT; i++) {
        int rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q[i], NULL);
        if (rc != SQLITE_OK) {
            int err = fail(sql[i], rc);
            tstore_close();
            return err;
        }
    }
    return 0;
}

void tstore_close(void)
{
    if (db) {
        prof_write();
        (void)sqlite3_update_hook(db, NULL, NULL);
    }
    roster_gen++;
    windows_gen++;
    inbox_gen++;
    for (int i = 0; i < Q_COUNT; i++) {
        sqlite3_finalize(q[i]);
        q[i] = NULL;
    }
    db = NULL;
    store = NULL;
}

sqlite3_stmt *tq(enum tq i)
{
    sqlite3_stmt *s = q[i];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

int tq_text(sqlite3_stmt *s, int i, const char *v)
{
    int rc = sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : fail("bind", rc);
}

int tq_blob(sqlite3_stmt *s, int i, const uint8_t *v, size_t n)
{
    int rc = v ? sqlite3_bind_blob64(s, i, v, n, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
    return rc == SQLITE_OK ? 0 : fail("bind", rc);
}

int tq_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    int rc = sqlite3_bind_int64(s, i, (sqlite3_int64)v);
    return rc == SQLITE_OK ? 0 : fail("bind", rc);
}

int tq_run(sqlite3_stmt *s)
{
    int rc = step(s);
    int ext = sqlite3_extended_errcode(db);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            return ERR_CONFLICT;
        log_warn("tstore: %s", sqlite3_errmsg(db));
        return ERR_INVALID;
    }
    return fail(sqlite3_sql(s), rc);
}

int tq_row(sqlite3_stmt *s)
{
    int rc = step(s);
    if (rc == SQLITE_ROW)
        return 0;
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return ERR_NOT_FOUND;
    return fail(sqlite3_sql(s), rc);
}

void tq_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
}

void tq_col_text(sqlite3_stmt *s, int i, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(buf, t, n);
    buf[n] = 0;
}

uint64_t tq_col_u64(sqlite3_stmt *s, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(s, i);
    return v < 0 ? 0 : (uint64_t)v;
}

int tq_changes(void)
{
    return sqlite3_changes(db);
}
