/*
 * store.c: SQLite storage (see store.h). Start with `migrations[]` (the
 * schema, in order) and `stmt_sql[]` (every statement, prepared at open).
 *
 * Identifiers are strings that carry their domain (`name@domain`), so that
 * federation can later store remote identities in the same tables. Every
 * table has a `v` (record version) column for future record changes.
 */
#include "store.h"

#include <pthread.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

/* The membership-window triggers as schema 7 wrote them (the thread's last
 * seq read as max(seq) of its messages). Schema 8 rebuilt `messages`, which
 * drops them, and creates them again from the same text: one copy here, so
 * that the two migrations cannot drift apart. Append-only: never edit. */
#define WINDOW_TRIGGERS_V7 \
    "CREATE TRIGGER member_window_open AFTER INSERT ON thread_members BEGIN" \
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq, upto_seq)" \
    "  SELECT new.thread, new.device, s.last, CASE WHEN new.removing != 0 THEN s.last END" \
    "  FROM (SELECT coalesce((SELECT max(seq) FROM messages WHERE thread = new.thread), 0)" \
    "  AS last) s; END;" \
    "CREATE TRIGGER member_window_close AFTER UPDATE OF removing ON thread_members" \
    "  WHEN new.removing != 0 AND old.removing = 0 BEGIN" \
    "  UPDATE member_windows SET upto_seq =" \
    "  coalesce((SELECT max(seq) FROM messages WHERE thread = new.thread), 0)" \
    "  WHERE thread = new.thread AND device = new.device AND upto_seq IS NULL; END;" \
    "CREATE TRIGGER member_window_reopen AFTER UPDATE OF removing ON thread_members" \
    "  WHEN new.removing = 0 AND old.removing != 0 BEGIN" \
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq)" \
    "  VALUES(new.thread, new.device," \
    "  coalesce((SELECT max(seq) FROM messages WHERE thread = new.thread), 0)); END;" \
    "CREATE TRIGGER member_window_end AFTER DELETE ON thread_members BEGIN" \
    "  UPDATE member_windows SET upto_seq =" \
    "  coalesce((SELECT max(seq) FROM messages WHERE thread = old.thread), 0)" \
    "  WHERE thread = old.thread AND device = old.device AND upto_seq IS NULL; END;"

/* Ordered migrations: migrations[i] brings the schema from version i to
 * i + 1. Never edit a shipped migration; append a new one. */
static const char *const migrations[] = {
    /* 0 -> 1: foundation */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE identities(id TEXT PRIMARY KEY, name TEXT NOT NULL, domain TEXT NOT NULL,"
    "  role TEXT NOT NULL, created INTEGER NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE devices(id TEXT PRIMARY KEY, identity TEXT NOT NULL REFERENCES identities(id),"
    "  pubkey BLOB NOT NULL UNIQUE, label TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
    "  last_seen INTEGER, revoked INTEGER, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX devices_identity ON devices(identity);"
    "CREATE TABLE codes(hash BLOB PRIMARY KEY, kind TEXT NOT NULL, identity TEXT NOT NULL,"
    "  role TEXT NOT NULL DEFAULT '', department TEXT NOT NULL DEFAULT '',"
    "  association TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL, expires INTEGER NOT NULL, used INTEGER,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE departments(name TEXT PRIMARY KEY, domain TEXT NOT NULL,"
    "  created INTEGER NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE associations(name TEXT PRIMARY KEY, domain TEXT NOT NULL,"
    "  created INTEGER NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE staff_assignments(identity TEXT NOT NULL REFERENCES identities(id),"
    "  department TEXT NOT NULL REFERENCES departments(name), created INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(identity, department));"
    "CREATE TABLE association_members(identity TEXT NOT NULL REFERENCES identities(id),"
    "  association TEXT NOT NULL REFERENCES associations(name), created INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(identity, association));"
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL,"
    "  prev BLOB NOT NULL, hash BLOB NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    /* append-only: the database refuses to change or delete audit rows */
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",
    /* 1 -> 2: issue 5: consent ledger, threads, delivery (statements in
     * tstore.c). Grants and the access log are immutable. */
    /* proxy / relative identities may be registered before they enroll
     * (their invitation creates them), so no foreign key on them */
    "CREATE TABLE proxies(citizen TEXT NOT NULL REFERENCES identities(id),"
    "  proxy TEXT NOT NULL, basis TEXT NOT NULL,"
    "  created_by TEXT NOT NULL, created INTEGER NOT NULL, ended INTEGER,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(citizen, proxy));"
    "CREATE INDEX proxies_proxy ON proxies(proxy);"
    "CREATE TABLE relatives(identity TEXT PRIMARY KEY, citizen TEXT NOT NULL,"
    "  child INTEGER NOT NULL, grant_id TEXT NOT NULL DEFAULT '', v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE grants(id TEXT PRIMARY KEY, citizen TEXT NOT NULL, grantee TEXT NOT NULL,"
    "  grantee_kind INTEGER NOT NULL, grantee_name TEXT NOT NULL, scope TEXT NOT NULL,"
    "  basis TEXT NOT NULL, purpose TEXT NOT NULL, form INTEGER NOT NULL, granter TEXT NOT NULL,"
    "  granter_device TEXT NOT NULL, granter_key BLOB NOT NULL, reason TEXT NOT NULL,"
    "  issued INTEGER NOT NULL, expires INTEGER NOT NULL, stored INTEGER NOT NULL,"
    "  tbs BLOB NOT NULL, sig BLOB NOT NULL, receipt BLOB NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX grants_citizen ON grants(citizen);"
    "CREATE INDEX grants_expires ON grants(expires) WHERE expires != 0;"
    "CREATE INDEX grants_grantee ON grants(grantee);"
    "CREATE TRIGGER grants_no_update BEFORE UPDATE ON grants"
    "  BEGIN SELECT RAISE(ABORT, 'grants are immutable'); END;"
    "CREATE TRIGGER grants_no_delete BEFORE DELETE ON grants"
    "  BEGIN SELECT RAISE(ABORT, 'grants are immutable'); END;"
    "CREATE TABLE revocations(grant_id TEXT PRIMARY KEY REFERENCES grants(id),"
    "  revoker TEXT NOT NULL, revoker_device TEXT NOT NULL, revoked_at INTEGER NOT NULL,"
    "  time INTEGER NOT NULL, tbs BLOB NOT NULL, sig BLOB NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE grant_expiries(grant_id TEXT PRIMARY KEY REFERENCES grants(id),"
    "  time INTEGER NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE consent_requests(id TEXT PRIMARY KEY, citizen TEXT NOT NULL,"
    "  requester TEXT NOT NULL, scope TEXT NOT NULL, note TEXT NOT NULL, status TEXT NOT NULL,"
    "  created INTEGER NOT NULL, grant_id TEXT NOT NULL DEFAULT '',"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE breakglass(id TEXT PRIMARY KEY, staff TEXT NOT NULL, citizen TEXT NOT NULL,"
    "  thread TEXT NOT NULL, reason TEXT NOT NULL, opened INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL, expired_logged INTEGER NOT NULL DEFAULT 0,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX breakglass_thread ON breakglass(thread);"
    "CREATE INDEX breakglass_due ON breakglass(expires) WHERE expired_logged = 0;"
    "CREATE TABLE key_packages(ref BLOB PRIMARY KEY, device TEXT NOT NULL REFERENCES devices(id),"
    "  data BLOB NOT NULL, last_resort INTEGER NOT NULL, created INTEGER NOT NULL,"
    "  claimed INTEGER, claimed_for TEXT NOT NULL DEFAULT '', v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX key_packages_device ON key_packages(device, claimed, last_resort);"
    "CREATE TABLE threads(id TEXT PRIMARY KEY, citizen TEXT NOT NULL, kind TEXT NOT NULL,"
    "  title TEXT NOT NULL, creator TEXT NOT NULL, created INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL, group_info BLOB NOT NULL, latest_gi BLOB, follower BLOB,"
    "  removal_pending INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX threads_citizen ON threads(citizen);"
    "CREATE TABLE thread_members(thread TEXT NOT NULL REFERENCES threads(id),"
    "  device TEXT NOT NULL, identity TEXT NOT NULL, leaf INTEGER NOT NULL,"
    "  basis TEXT NOT NULL, joined INTEGER NOT NULL, joined_seq INTEGER NOT NULL,"
    "  removing INTEGER NOT NULL DEFAULT 0, v INTEGER NOT NULL DEFAULT 1,"
    "  PRIMARY KEY(thread, device));"
    "CREATE INDEX thread_members_device ON thread_members(device);"
    "CREATE TABLE thread_proposals(thread TEXT NOT NULL REFERENCES threads(id),"
    "  device TEXT NOT NULL, kind TEXT NOT NULL, epoch INTEGER NOT NULL,"
    "  kp_ref BLOB, basis TEXT NOT NULL DEFAULT '', v INTEGER NOT NULL DEFAULT 1,"
    "  PRIMARY KEY(thread, device, kind));"
    "CREATE TABLE handshakes(thread TEXT NOT NULL REFERENCES threads(id), idx INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL, time INTEGER NOT NULL, data BLOB NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(thread, idx));"
    "CREATE TABLE messages(thread TEXT NOT NULL REFERENCES threads(id), seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, sender TEXT NOT NULL, device TEXT NOT NULL, time INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL, data BLOB, targets INTEGER NOT NULL DEFAULT 0,"
    "  acked INTEGER NOT NULL DEFAULT 0, undeliverable INTEGER NOT NULL DEFAULT 0,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(thread, seq));"
    "CREATE INDEX messages_time ON messages(time) WHERE data IS NOT NULL;"
    "CREATE TABLE inbox_seq(device TEXT PRIMARY KEY, last INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE inbox(device TEXT NOT NULL, seq INTEGER NOT NULL, thread TEXT NOT NULL,"
    "  message INTEGER NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL,"
    "  sender_device TEXT NOT NULL, time INTEGER NOT NULL, data BLOB,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(device, seq));"
    "CREATE INDEX inbox_message ON inbox(thread, message);"
    "CREATE TABLE missed(device TEXT NOT NULL, thread TEXT NOT NULL, count INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(device, thread));"
    "CREATE TABLE history_reads(device TEXT NOT NULL, thread TEXT NOT NULL, day INTEGER NOT NULL,"
    "  PRIMARY KEY(device, thread, day));"
    "CREATE TABLE agreements(id TEXT PRIMARY KEY, thread TEXT NOT NULL REFERENCES threads(id),"
    "  message INTEGER NOT NULL, pinned_by TEXT NOT NULL, time INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE agreement_acks(agreement TEXT NOT NULL REFERENCES agreements(id),"
    "  identity TEXT NOT NULL, time INTEGER NOT NULL, v INTEGER NOT NULL DEFAULT 1,"
    "  PRIMARY KEY(agreement, identity));"
    "CREATE TABLE access_log(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    "  citizen TEXT NOT NULL, thread TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    "  subject TEXT NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX access_log_thread ON access_log(thread);"
    "CREATE INDEX access_log_citizen ON access_log(citizen);"
    "CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log"
    "  BEGIN SELECT RAISE(ABORT, 'access log is append-only'); END;"
    "CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log"
    "  BEGIN SELECT RAISE(ABORT, 'access log is append-only'); END;",
    /* 2 -> 3: delivery by cursors (deliver.c). A thread message is stored
     * once with a server-wide sequence `gseq` (every device's entry seq)
     * and no inbox row per recipient; a device reads the messages of its
     * membership windows after its cursor. Windows follow thread_members
     * by triggers: opened when a device is added (after the thread's last
     * seq), closed when its removal is marked or its row deleted, kept
     * until no message of the window is pending. Inbox rows remain for
     * welcomes and notices, and the v2 rows still pending are kept as they
     * are (their seqs are below every new gseq). */
    "ALTER TABLE messages ADD COLUMN gseq INTEGER;"
    "CREATE INDEX messages_pending ON messages(thread, gseq)"
    "  WHERE data IS NOT NULL AND gseq IS NOT NULL;"
    "CREATE TABLE delivery_seq(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "INSERT INTO delivery_seq(id, last) VALUES(1, max("
    "  coalesce((SELECT max(last) FROM inbox_seq), 0), coalesce((SELECT max(seq) FROM inbox), 0)));"
    "DROP TABLE inbox_seq;"
    "CREATE TABLE delivery_cursors(device TEXT PRIMARY KEY, acked INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE member_windows(thread TEXT NOT NULL, device TEXT NOT NULL,"
    "  after_seq INTEGER NOT NULL, upto_seq INTEGER, v INTEGER NOT NULL DEFAULT 1,"
    "  PRIMARY KEY(thread, device, after_seq));"
    "CREATE INDEX member_windows_device ON member_windows(device);"
    "INSERT INTO member_windows(thread, device, after_seq)"
    "  SELECT m.thread, m.device, t.last_seq FROM thread_members m"
    "  JOIN threads t ON t.id = m.thread WHERE m.removing = 0;"
    "CREATE TRIGGER member_window_open AFTER INSERT ON thread_members BEGIN"
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq, upto_seq)"
    "  SELECT new.thread, new.device, s.last, CASE WHEN new.removing != 0 THEN s.last END"
    "  FROM (SELECT coalesce((SELECT last_seq FROM threads WHERE id = new.thread), 0)"
    "  AS last) s; END;"
    "CREATE TRIGGER member_window_close AFTER UPDATE OF removing ON thread_members"
    "  WHEN new.removing != 0 AND old.removing = 0 BEGIN"
    "  UPDATE member_windows SET upto_seq ="
    "  coalesce((SELECT last_seq FROM threads WHERE id = new.thread), 0)"
    "  WHERE thread = new.thread AND device = new.device AND upto_seq IS NULL; END;"
    "CREATE TRIGGER member_window_reopen AFTER UPDATE OF removing ON thread_members"
    "  WHEN new.removing = 0 AND old.removing != 0 BEGIN"
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq)"
    "  VALUES(new.thread, new.device,"
    "  coalesce((SELECT last_seq FROM threads WHERE id = new.thread), 0)); END;"
    "CREATE TRIGGER member_window_end AFTER DELETE ON thread_members BEGIN"
    "  UPDATE member_windows SET upto_seq ="
    "  coalesce((SELECT last_seq FROM threads WHERE id = old.thread), 0)"
    "  WHERE thread = old.thread AND device = old.device AND upto_seq IS NULL; END;",
    /* 3 -> 4: signed proxy registrations and ends (ProxyRegistrationTBS,
     * ProxyEndTBS), stored immutably like grants; `proxies` stays the
     * current state and names the registration behind it. Break-glass
     * accesses keep their signed BreakglassTBS (rows of earlier versions have
     * none: they were opened unsigned). */
    "CREATE TABLE proxy_registrations(id TEXT PRIMARY KEY, citizen TEXT NOT NULL,"
    "  proxy TEXT NOT NULL, basis TEXT NOT NULL, registrar TEXT NOT NULL,"
    "  registrar_device TEXT NOT NULL, registrar_key BLOB NOT NULL,"
    "  registered_at INTEGER NOT NULL, stored INTEGER NOT NULL, tbs BLOB NOT NULL,"
    "  sig BLOB NOT NULL, receipt BLOB NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX proxy_registrations_citizen ON proxy_registrations(citizen);"
    "CREATE TRIGGER proxy_registrations_no_update BEFORE UPDATE ON proxy_registrations"
    "  BEGIN SELECT RAISE(ABORT, 'proxy registrations are immutable'); END;"
    "CREATE TRIGGER proxy_registrations_no_delete BEFORE DELETE ON proxy_registrations"
    "  BEGIN SELECT RAISE(ABORT, 'proxy registrations are immutable'); END;"
    "CREATE TABLE proxy_ends(registration TEXT PRIMARY KEY"
    "  REFERENCES proxy_registrations(id), ender TEXT NOT NULL, ender_device TEXT NOT NULL,"
    "  ender_key BLOB NOT NULL, ended_at INTEGER NOT NULL, stored INTEGER NOT NULL,"
    "  tbs BLOB NOT NULL, sig BLOB NOT NULL, v INTEGER NOT NULL DEFAULT 1);"
    "CREATE TRIGGER proxy_ends_no_update BEFORE UPDATE ON proxy_ends"
    "  BEGIN SELECT RAISE(ABORT, 'proxy ends are immutable'); END;"
    "CREATE TRIGGER proxy_ends_no_delete BEFORE DELETE ON proxy_ends"
    "  BEGIN SELECT RAISE(ABORT, 'proxy ends are immutable'); END;"
    "ALTER TABLE proxies ADD COLUMN registration TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE breakglass ADD COLUMN staff_device TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE breakglass ADD COLUMN staff_key BLOB;"
    "ALTER TABLE breakglass ADD COLUMN hours INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE breakglass ADD COLUMN tbs BLOB;"
    "ALTER TABLE breakglass ADD COLUMN sig BLOB;"
    /* the signed part of an access never changes (expired_logged may) */
    "CREATE TRIGGER breakglass_signed_fixed BEFORE UPDATE OF id, staff, citizen, thread,"
    "  reason, opened, expires, staff_device, staff_key, hours, tbs, sig ON breakglass"
    "  BEGIN SELECT RAISE(ABORT, 'break-glass accesses are immutable'); END;"
    "CREATE TRIGGER breakglass_no_delete BEFORE DELETE ON breakglass"
    "  BEGIN SELECT RAISE(ABORT, 'break-glass accesses are immutable'); END;",
    /* 4 -> 5: the per-thread message counter in a narrow row of its own:
     * `threads.last_seq + 1` rewrote the whole threads row (the follower
     * and GroupInfo blobs, ~6 KB on overflow pages) for every message.
     * threads.last_seq stays as it was at the migration; the triggers of
     * migration 3 read the new table. */
    "CREATE TABLE thread_seqs(thread TEXT PRIMARY KEY, last INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;"
    "INSERT INTO thread_seqs(thread, last) SELECT id, last_seq FROM threads;"
    "DROP TRIGGER member_window_open;"
    "DROP TRIGGER member_window_close;"
    "DROP TRIGGER member_window_reopen;"
    "DROP TRIGGER member_window_end;"
    "CREATE TRIGGER member_window_open AFTER INSERT ON thread_members BEGIN"
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq, upto_seq)"
    "  SELECT new.thread, new.device, s.last, CASE WHEN new.removing != 0 THEN s.last END"
    "  FROM (SELECT coalesce((SELECT last FROM thread_seqs WHERE thread = new.thread), 0)"
    "  AS last) s; END;"
    "CREATE TRIGGER member_window_close AFTER UPDATE OF removing ON thread_members"
    "  WHEN new.removing != 0 AND old.removing = 0 BEGIN"
    "  UPDATE member_windows SET upto_seq ="
    "  coalesce((SELECT last FROM thread_seqs WHERE thread = new.thread), 0)"
    "  WHERE thread = new.thread AND device = new.device AND upto_seq IS NULL; END;"
    "CREATE TRIGGER member_window_reopen AFTER UPDATE OF removing ON thread_members"
    "  WHEN new.removing = 0 AND old.removing != 0 BEGIN"
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq)"
    "  VALUES(new.thread, new.device,"
    "  coalesce((SELECT last FROM thread_seqs WHERE thread = new.thread), 0)); END;"
    "CREATE TRIGGER member_window_end AFTER DELETE ON thread_members BEGIN"
    "  UPDATE member_windows SET upto_seq ="
    "  coalesce((SELECT last FROM thread_seqs WHERE thread = old.thread), 0)"
    "  WHERE thread = old.thread AND device = old.device AND upto_seq IS NULL; END;",
    /* 5 -> 6: indexes for "which threads may this identity be entitled to
     * or be in" (tstore Q_THREADS_CANDIDATE: kp.upload, device.revoke,
     * admin.assign, thread.list), which scanned grants, thread_members and
     * breakglass on every call (O(members) per KeyPackage upload) */
    "CREATE INDEX thread_members_identity ON thread_members(identity);"
    /* name first: an index led by grantee_kind (three values) would be
     * taken for entitle's "grantee_kind = 1 AND citizen = ?" and scan every
     * grant of that kind instead of the citizen's */
    "CREATE INDEX grants_grantee_name ON grants(grantee_name, grantee_kind);"
    "CREATE INDEX breakglass_staff ON breakglass(staff);",
    /* 6 -> 7: a thread's last message seq is max(seq) of its messages (the
     * primary key's index answers it in one seek; rows are never deleted),
     * so the counter table goes: the server keeps the next seq in memory
     * (hot.c) instead of an upsert per message. The window triggers read
     * the same max. */
    "DROP TRIGGER member_window_open;"
    "DROP TRIGGER member_window_close;"
    "DROP TRIGGER member_window_reopen;"
    "DROP TRIGGER member_window_end;"
    WINDOW_TRIGGERS_V7
    "DROP TABLE thread_seqs;",
    /* 7 -> 8: a cheaper message row (PERFORMANCE.md "The message row").
     * - WITHOUT ROWID, keyed by (thread, seq): one B-tree holds the row and
     *   its key, where the rowid table kept the row plus the primary key's
     *   autoindex, and dropping the ciphertext rewrites the row in place.
     *   SQLite's update hook does not fire for WITHOUT ROWID tables: the
     *   one insert (deliver_thread_message) tells deliver.c's cache itself.
     * - No `messages_time`: the offline-limit sweep reads `time` from
     *   `messages_pending`, which now holds every row still holding its
     *   ciphertext (v2 rows without gseq too) and carries `time`. The sweep
     *   reads the pending rows, a bounded step per call, never history.
     * - No foreign key to threads (a lookup per insert): the sender's
     *   thread is known to exist (hot.c read it), threads are never
     *   deleted, and a trigger refuses deleting one that has messages.
     * The window triggers name `messages`, so they are dropped while the
     * table is rebuilt and created again as they were in 6 -> 7. */
    "DROP TRIGGER member_window_open;"
    "DROP TRIGGER member_window_close;"
    "DROP TRIGGER member_window_reopen;"
    "DROP TRIGGER member_window_end;"
    "CREATE TABLE messages_new(thread TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, sender TEXT NOT NULL, device TEXT NOT NULL, time INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL, data BLOB, targets INTEGER NOT NULL DEFAULT 0,"
    "  acked INTEGER NOT NULL DEFAULT 0, undeliverable INTEGER NOT NULL DEFAULT 0,"
    "  v INTEGER NOT NULL DEFAULT 1, gseq INTEGER, PRIMARY KEY(thread, seq)) WITHOUT ROWID;"
    "INSERT INTO messages_new(thread, seq, kind, sender, device, time, epoch, data, targets,"
    "  acked, undeliverable, v, gseq) SELECT thread, seq, kind, sender, device, time, epoch,"
    "  data, targets, acked, undeliverable, v, gseq FROM messages;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_new RENAME TO messages;"
    "CREATE INDEX messages_pending ON messages(thread, gseq, time) WHERE data IS NOT NULL;"
    "CREATE TRIGGER threads_keep_messages BEFORE DELETE ON threads"
    "  WHEN EXISTS (SELECT 1 FROM messages WHERE thread = old.id)"
    "  BEGIN SELECT RAISE(ABORT, 'the thread has messages'); END;"
    WINDOW_TRIGGERS_V7,
    /* 8 -> 9: a cheaper cursor row (PERFORMANCE.md "The cursor table
     * (session 5)"). Every ack upserts its device's cursor (tstore
     * Q_CURSOR_PUT); as a rowid table with the primary key's autoindex that
     * searched and wrote two B-trees. WITHOUT ROWID keyed by device: one
     * B-tree holds key and row. Same columns, same meaning. WITHOUT ROWID
     * makes the key NOT NULL: a row with a NULL device (none is ever
     * written: the device is always bound) could never be read by
     * `device = ?`, so it is not copied. No trigger or view names the
     * table; the update hook (tstore.c) does not watch it. */
    "CREATE TABLE delivery_cursors_new(device TEXT PRIMARY KEY, acked INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;"
    "INSERT INTO delivery_cursors_new(device, acked, v)"
    "  SELECT device, acked, v FROM delivery_cursors WHERE device IS NOT NULL;"
    "DROP TABLE delivery_cursors;"
    "ALTER TABLE delivery_cursors_new RENAME TO delivery_cursors;",
    /* 9 -> 10: the thread as an integer key in `messages` (PERFORMANCE.md
     * "The thread as an integer key (session 6)"). Every message row and
     * its index entry carried the 34-character thread id twice (table key,
     * messages_pending key); a number is 1-3 bytes.
     * - threads.num: the thread's number, assigned when the row is
     *   inserted (trigger threads_num_assign, from the counter
     *   thread_nums, so never reused even if a thread were deleted), unique
     *   and never changed (threads_num_fixed). Not the rowid, which VACUUM
     *   may renumber. Existing threads are numbered from their rowid once.
     * - messages keyed (tnum, seq) WITHOUT ROWID, every row copied with its
     *   thread's number; a row whose thread does not exist (none can: the
     *   foreign key of schema 2-7, then the server's own reads) would fail
     *   NOT NULL and stop the migration rather than be lost.
     * - messages_pending on (tnum, gseq, time) WHERE data IS NOT NULL.
     * Other tables keep the text id (inbox, member_windows, ...): none is
     * written per message. The triggers that name `messages` are dropped
     * while it is rebuilt and created again through the number. */
    "ALTER TABLE threads ADD COLUMN num INTEGER;"
    "UPDATE threads SET num = rowid;"
    "CREATE UNIQUE INDEX threads_num ON threads(num);"
    "CREATE TABLE thread_nums(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL,"
    "  v INTEGER NOT NULL DEFAULT 1);"
    "INSERT INTO thread_nums(id, last) VALUES(1, coalesce((SELECT max(num) FROM threads), 0));"
    "CREATE TRIGGER threads_num_assign AFTER INSERT ON threads BEGIN"
    "  UPDATE thread_nums SET last = last + 1 WHERE id = 1;"
    "  UPDATE threads SET num = (SELECT last FROM thread_nums WHERE id = 1)"
    "  WHERE id = new.id; END;"
    "CREATE TRIGGER threads_num_fixed BEFORE UPDATE OF num ON threads"
    "  WHEN old.num IS NOT NULL BEGIN SELECT RAISE(ABORT, 'a thread keeps its number'); END;"
    "DROP TRIGGER member_window_open;"
    "DROP TRIGGER member_window_close;"
    "DROP TRIGGER member_window_reopen;"
    "DROP TRIGGER member_window_end;"
    "DROP TRIGGER threads_keep_messages;"
    "CREATE TABLE messages_new(tnum INTEGER NOT NULL, seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, sender TEXT NOT NULL, device TEXT NOT NULL, time INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL, data BLOB, targets INTEGER NOT NULL DEFAULT 0,"
    "  acked INTEGER NOT NULL DEFAULT 0, undeliverable INTEGER NOT NULL DEFAULT 0,"
    "  v INTEGER NOT NULL DEFAULT 1, gseq INTEGER, PRIMARY KEY(tnum, seq)) WITHOUT ROWID;"
    "INSERT INTO messages_new(tnum, seq, kind, sender, device, time, epoch, data, targets,"
    "  acked, undeliverable, v, gseq) SELECT (SELECT num FROM threads t WHERE t.id = m.thread),"
    "  seq, kind, sender, device, time, epoch, data, targets, acked, undeliverable, v, gseq"
    "  FROM messages m;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_new RENAME TO messages;"
    "CREATE INDEX messages_pending ON messages(tnum, gseq, time) WHERE data IS NOT NULL;"
    "CREATE TRIGGER threads_keep_messages BEFORE DELETE ON threads"
    "  WHEN EXISTS (SELECT 1 FROM messages WHERE tnum = old.num)"
    "  BEGIN SELECT RAISE(ABORT, 'the thread has messages'); END;"
    "CREATE TRIGGER member_window_open AFTER INSERT ON thread_members BEGIN"
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq, upto_seq)"
    "  SELECT new.thread, new.device, s.last, CASE WHEN new.removing != 0 THEN s.last END"
    "  FROM (SELECT coalesce((SELECT max(seq) FROM messages WHERE tnum ="
    "  (SELECT num FROM threads WHERE id = new.thread)), 0) AS last) s; END;"
    "CREATE TRIGGER member_window_close AFTER UPDATE OF removing ON thread_members"
    "  WHEN new.removing != 0 AND old.removing = 0 BEGIN"
    "  UPDATE member_windows SET upto_seq = coalesce((SELECT max(seq) FROM messages"
    "  WHERE tnum = (SELECT num FROM threads WHERE id = new.thread)), 0)"
    "  WHERE thread = new.thread AND device = new.device AND upto_seq IS NULL; END;"
    "CREATE TRIGGER member_window_reopen AFTER UPDATE OF removing ON thread_members"
    "  WHEN new.removing = 0 AND old.removing != 0 BEGIN"
    "  INSERT OR REPLACE INTO member_windows(thread, device, after_seq)"
    "  VALUES(new.thread, new.device, coalesce((SELECT max(seq) FROM messages"
    "  WHERE tnum = (SELECT num FROM threads WHERE id = new.thread)), 0)); END;"
    "CREATE TRIGGER member_window_end AFTER DELETE ON thread_members BEGIN"
    "  UPDATE member_windows SET upto_seq = coalesce((SELECT max(seq) FROM messages"
    "  WHERE tnum = (SELECT num FROM threads WHERE id = old.thread)), 0)"
    "  WHERE thread = old.thread AND device = old.device AND upto_seq IS NULL; END;",
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(NMIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

enum stmt {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_META_GET, S_META_SET,
    S_ID_ADD, S_ID_GET,
    S_DEV_ADD, S_DEV_GET, S_DEV_TOUCH, S_DEV_REVOKE, S_DEV_EACH,
    S_CODE_ADD, S_CODE_GET, S_CODE_USE,
    S_DEPT_ADD, S_DEPT_GET, S_DEPT_EACH, S_ASSOC_ADD, S_ASSOC_GET, S_ASSOC_EACH,
    S_ASSIGN_ADD, S_ASSIGN_DEL, S_ASSIGN_EACH, S_MEMBER_ADD, S_MEMBER_DEL, S_MEMBER_EACH,
    S_AUDIT_LAST, S_AUDIT_ADD, S_AUDIT_EACH,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT req",
    [S_RELEASE] = "RELEASE req",
    [S_ROLLBACK_TO] = "ROLLBACK TO req",
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_ID_ADD] = "INSERT INTO identities(id, name, domain, role, created) VALUES(?1,?2,?3,?4,?5)",
    [S_ID_GET] = "SELECT role FROM identities WHERE id = ?1",
    [S_DEV_ADD] = "INSERT INTO devices(id, identity, pubkey, label, created) VALUES(?1,?2,?3,?4,?5)",
    [S_DEV_GET] = "SELECT id, identity, pubkey, label, created, last_seen, revoked FROM devices"
                  " WHERE id = ?1",
    [S_DEV_TOUCH] = "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
    [S_DEV_REVOKE] = "UPDATE devices SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
    [S_DEV_EACH] = "SELECT id, identity, pubkey, label, created, last_seen, revoked FROM devices"
                   " WHERE identity = ?1 ORDER BY created, id",
    [S_CODE_ADD] = "INSERT INTO codes(hash, kind, identity, role, department, association,"
                   " created_by, created, expires) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [S_CODE_GET] = "SELECT kind, identity, role, department, association, created_by, created,"
                   " expires, used FROM codes WHERE hash = ?1",
    [S_CODE_USE] = "UPDATE codes SET used = ?2 WHERE hash = ?1 AND used IS NULL",
    [S_DEPT_ADD] = "INSERT INTO departments(name, domain, created) VALUES(?1,?2,?3)",
    [S_DEPT_GET] = "SELECT 1 FROM departments WHERE name = ?1",
    [S_DEPT_EACH] = "SELECT name FROM departments ORDER BY name",
    [S_ASSOC_ADD] = "INSERT INTO associations(name, domain, created) VALUES(?1,?2,?3)",
    [S_ASSOC_GET] = "SELECT 1 FROM associations WHERE name = ?1",
    [S_ASSOC_EACH] = "SELECT name FROM associations ORDER BY name",
    [S_ASSIGN_ADD] = "INSERT INTO staff_assignments(identity, department, created) VALUES(?1,?2,?3)",
    [S_ASSIGN_DEL] = "DELETE FROM staff_assignments WHERE identity = ?1 AND department = ?2",
    [S_ASSIGN_EACH] = "SELECT department FROM staff_assignments WHERE identity = ?1"
                      " ORDER BY department",
    [S_MEMBER_ADD] = "INSERT INTO association_members(identity, association, created)"
                     " VALUES(?1,?2,?3)",
    [S_MEMBER_DEL] = "DELETE FROM association_members WHERE identity = ?1 AND association = ?2",
    [S_MEMBER_EACH] = "SELECT association FROM association_members WHERE identity = ?1"
                      " ORDER BY association",
    [S_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [S_AUDIT_ADD] = "INSERT INTO audit(seq, time, actor, action, subject, detail, prev, hash)"
                    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [S_AUDIT_EACH] = "SELECT seq, time, actor, action, subject, detail, prev, hash FROM audit"
                     " ORDER BY seq",
};

/* The background checkpointer (store_checkpoint_in_background). */
struct ckpt {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db;       /* its own connection, used only by the thread */
    bool want, stop;   /* under mu */
    uint64_t passes;   /* checkpoints run (under mu) */
    int pages;         /* WAL pages that wake the thread (read by the writer's hook) */
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *s[S_COUNT];
    bool in_txn;
    uint64_t rollbacks; /* store_rollbacks() */
    struct ckpt *ck;    /* NULL: SQLite checkpoints in COMMIT (tests, tools) */
};

/* ------------------------------------------------------------ helpers */

static int db_err(struct store *st, const char *what, int rc)
{
    log_error("store: %s: %s (%d)", what, sqlite3_errmsg(st->db), rc);
    return ERR_IO;
}

/* Resets and clears a statement; returns it for binding. */
static sqlite3_stmt *use(struct store *st, enum stmt i)
{
    sqlite3_stmt *s = st->s[i];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int bind_text(struct store *st, sqlite3_stmt *s, int i, const char *v)
{
    int rc = sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : db_err(st, "bind", rc);
}

static int bind_blob(struct store *st, sqlite3_stmt *s, int i, const uint8_t *v, size_t n)
{
    int rc = sqlite3_bind_blob(s, i, v, (int)n, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : db_err(st, "bind", rc);
}

static int bind_u64(struct store *st, sqlite3_stmt *s, int i, uint64_t v)
{
    int rc = sqlite3_bind_int64(s, i, (sqlite3_int64)v);
    return rc == SQLITE_OK ? 0 : db_err(st, "bind", rc);
}

/* Runs a statement that returns no rows. A UNIQUE/PRIMARY KEY violation
 * gives ERR_CONFLICT, other constraint failures ERR_INVALID. */
static int run(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    int ext = sqlite3_extended_errcode(st->db);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) { /* extended result codes are on */
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            return ERR_CONFLICT;
        log_warn("store: %s: %s", what, sqlite3_errmsg(st->db));
        return ERR_INVALID;
    }
    return db_err(st, what, rc);
}

/* Steps a query: 0 with a row, ERR_NOT_FOUND when done, ERR_IO. */
static int row(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return ERR_NOT_FOUND;
    return db_err(st, what, rc);
}

static void col_text(sqlite3_stmt *s, int i, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    if (n >= cap)
        n = cap - 1; /* all our columns are length-checked on the way in */
    if (n)
        memcpy(buf, t, n);
    buf[n] = 0;
}

static int col_blob(sqlite3_stmt *s, int i, uint8_t *buf, size_t len)
{
    const void *b = sqlite3_column_blob(s, i);
    if (!b || (size_t)sqlite3_column_bytes(s, i) != len)
        return ERR_INTERNAL;
    memcpy(buf, b, len);
    return 0;
}

static uint64_t col_u64(sqlite3_stmt *s, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(s, i);
    return v < 0 ? 0 : (uint64_t)v;
}

static int exec(struct store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("store: %s: %s", sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return ERR_IO;
    }
    return 0;
}

/* ------------------------------------------------------- open / close */

static int get_version(struct store *st, int *version)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "SELECT max(version) FROM schema_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(st, "schema_version", rc);
    rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    else
        err = db_err(st, "schema_version", rc);
    sqlite3_finalize(s);
    return err;
}

static int migrate(struct store *st, int target)
{
    int rc = exec(st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY,"
                      " applied INTEGER NOT NULL)");
    if (rc)
        return rc;
    int version = 0;
    rc = get_version(st, &version);
    if (rc)
        return rc;
    if (version > (int)NMIGRATIONS) {
        log_error("store: database schema version %d is newer than this server (%d)", version,
                  (int)NMIGRATIONS);
        return ERR_UNSUPPORTED;
    }
    for (int v = version; v < target; v++) {
        /* each migration in its own transaction with its version row */
        rc = exec(st, "BEGIN IMMEDIATE");
        if (rc)
            return rc;
        rc = exec(st, migrations[v]);
        if (!rc) {
            char sql[128];
            snprintf(sql, sizeof(sql),
                     "INSERT INTO schema_version(version, applied) VALUES(%d, strftime('%%s','now'))",
                     v + 1);
            rc = exec(st, sql);
        }
        if (rc) {
            (void)exec(st, "ROLLBACK");
            return rc;
        }
        rc = exec(st, "COMMIT");
        if (rc)
            return rc;
        log_info("store: migrated schema to version %d", v + 1);
    }
    return 0;
}

int store_open(const char *path, bool create, struct store **out)
{
    return store_open_upto(path, create, (int)NMIGRATIONS, out);
}

int store_open_upto(const char *path, bool create, int version, struct store **out)
{
    *out = NULL;
    if (version < 1 || version > (int)NMIGRATIONS)
        return ERR_INVALID;
    struct store *st = calloc(1, sizeof(*st));
    if (!st)
        return ERR_NOMEM;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    int err = 0;
    if (rc != SQLITE_OK) {
        if (!create && (rc & 0xff) == SQLITE_CANTOPEN) {
            err = ERR_NOT_FOUND;
        } else {
            log_error("store: open %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "no memory");
            err = ERR_IO;
        }
        goto out;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if ((rc = sqlite3_busy_timeout(st->db, 5000)) != SQLITE_OK) {
        err = db_err(st, "busy_timeout", rc);
        goto out;
    }
    /* WAL for concurrent readers (audit-verify, sqlite3 shell); FULL: a
     * committed transaction survives power loss, which our acks promise. */
    err = exec(st, "PRAGMA journal_mode=WAL");
    if (!err)
        err = exec(st, "PRAGMA synchronous=FULL");
    if (!err)
        err = exec(st, "PRAGMA foreign_keys=ON");
    /* 64 MiB page cache (the default is 2 MiB): a busy iteration's
     * transaction (fan-out inbox rows, acks) dirtied more pages than that,
     * and SQLite then spilled them to the WAL mid-transaction, writing the
     * same pages again at COMMIT (a fifth of the server's CPU on care).
     * Pages are allocated as used, so a small database costs little. */
    if (!err)
        err = exec(st, "PRAGMA cache_size=-65536");
    /* Every request runs in a savepoint, so the first change to a page
     * saves its old content in a statement journal; past 64 KiB SQLite put
     * that journal in a temporary file, and a quarter of the server's CPU
     * went to writing it. In memory it is the same rollback, without the
     * file. Durability is untouched: it only serves ROLLBACK TO within the
     * open transaction. */
    if (!err)
        err = exec(st, "PRAGMA temp_store=MEMORY");
    if (!err)
        err = migrate(st, version);
    if (err)
        goto out;
    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->s[i],
                                NULL);
        if (rc != SQLITE_OK) {
            err = db_err(st, stmt_sql[i], rc);
            goto out;
        }
    }
    *out = st;
    st = NULL;
out:
    store_close(st);
    return err;
}

/* ------------------------------------------------------ checkpoints */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct ckpt *ck = arg;
    if (pages >= ck->pages && pthread_mutex_lock(&ck->mu) == 0) {
        ck->want = true;
        (void)pthread_cond_signal(&ck->cv);
        (void)pthread_mutex_unlock(&ck->mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct ckpt *ck = arg;
    for (;;) {
        if (pthread_mutex_lock(&ck->mu) != 0)
            break;
        while (!ck->want && !ck->stop)
            (void)pthread_cond_wait(&ck->cv, &ck->mu);
        bool stop = ck->stop;
        ck->want = false;
        (void)pthread_mutex_unlock(&ck->mu);
        if (stop)
            break;
        /* PASSIVE: copies what no reader still needs and never blocks the
         * writer; the writer starts the WAL over once a pass is complete */
        int frames = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames,
                                           &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("store: checkpoint: %s (the WAL keeps the data; retried at the next "
                     "%d pages)",
                     sqlite3_errstr(rc), ck->pages);
        if (rc == SQLITE_OK && pthread_mutex_lock(&ck->mu) == 0) {
            ck->passes++;
            (void)pthread_mutex_unlock(&ck->mu);
        }
    }
    return NULL;
}

uint64_t store_checkpoints(struct store *st)
{
    uint64_t n = 0;
    if (st->ck && pthread_mutex_lock(&st->ck->mu) == 0) {
        n = st->ck->passes;
        (void)pthread_mutex_unlock(&st->ck->mu);
    }
    return n;
}

static void ckpt_stop(struct store *st)
{
    struct ckpt *ck = st->ck;
    if (!ck)
        return;
    (void)sqlite3_wal_hook(st->db, NULL, NULL);
    if (pthread_mutex_lock(&ck->mu) == 0) {
        ck->stop = true;
        (void)pthread_cond_signal(&ck->cv);
        (void)pthread_mutex_unlock(&ck->mu);
    }
    (void)pthread_join(ck->thread, NULL);
    (void)sqlite3_close(ck->db);
    (void)pthread_cond_destroy(&ck->cv);
    (void)pthread_mutex_destroy(&ck->mu);
    free(ck);
    st->ck = NULL;
    (void)sqlite3_wal_autocheckpoint(st->db, 1000);
}

int store_checkpoint_in_background(struct store *st, const char *path, int pages)
{
    if (st->ck)
        return 0;
    if (pages < 1)
        return ERR_INVALID;
    struct ckpt *ck = calloc(1, sizeof(*ck));
    if (!ck)
        return ERR_NOMEM;
    ck->pages = pages;
    if (pthread_mutex_init(&ck->mu, NULL) != 0) {
        free(ck);
        return ERR_NOMEM;
    }
    if (pthread_cond_init(&ck->cv, NULL) != 0) {
        (void)pthread_mutex_destroy(&ck->mu);
        free(ck);
        return ERR_NOMEM;
    }
    int rc = sqlite3_open_v2(path, &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ck->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK || pthread_create(&ck->thread, NULL, ckpt_main, ck) != 0) {
        log_error("store: cannot start the checkpointer: %s",
                  rc != SQLITE_OK ? sqlite3_errstr(rc) : "no thread");
        (void)sqlite3_close(ck->db);
        (void)pthread_cond_destroy(&ck->cv);
        (void)pthread_mutex_destroy(&ck->mu);
        free(ck);
        return ERR_IO;
    }
    st->ck = ck;
    /* replaces SQLite's automatic checkpoint in COMMIT */
    (void)sqlite3_wal_hook(st->db, wal_hook, ck);
    return 0;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    ckpt_stop(st);
    if (st->in_txn)
        store_rollback(st);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->s[i]);
    if (st->db) {
        int rc = sqlite3_close(st->db);
        if (rc != SQLITE_OK)
            log_error("store: close: %s", sqlite3_errstr(rc));
    }
    free(st);
}

struct sqlite3 *store_db(struct store *st)
{
    return st->db;
}

int store_schema_version(struct store *st, int *version)
{
    return get_version(st, version);
}

/* ------------------------------------------------------- transactions */

int store_begin(struct store *st)
{
    if (st->in_txn)
        return 0;
    int rc = run(st, use(st, S_BEGIN), "begin");
    if (rc == 0)
        st->in_txn = true;
    return rc;
}

bool store_in_txn(const struct store *st)
{
    return st->in_txn;
}

int store_commit(struct store *st)
{
    if (!st->in_txn)
        return 0;
    int rc = run(st, use(st, S_COMMIT), "commit");
    if (rc) {
        store_rollback(st);
        return rc;
    }
    st->in_txn = false;
    return 0;
}

uint64_t store_changes(const struct store *st)
{
    return (uint64_t)sqlite3_total_changes64(st->db);
}

uint64_t store_rollbacks(const struct store *st)
{
    return st->rollbacks;
}

void store_rollback(struct store *st)
{
    if (!st->in_txn)
        return;
    st->rollbacks++;
    /* after a failed COMMIT SQLite may already have rolled back */
    if (!sqlite3_get_autocommit(st->db))
        (void)run(st, use(st, S_ROLLBACK), "rollback");
    st->in_txn = false;
}

int store_savepoint(struct store *st)
{
    return run(st, use(st, S_SAVEPOINT), "savepoint");
}

int store_release(struct store *st)
{
    return run(st, use(st, S_RELEASE), "release");
}

void store_rollback_to(struct store *st)
{
    st->rollbacks++;
    if (run(st, use(st, S_ROLLBACK_TO), "rollback to") == 0)
        (void)run(st, use(st, S_RELEASE), "release");
}

/* ------------------------------------------------------------- meta */

int store_meta_get(struct store *st, const char *key, char *buf, size_t cap)
{
    sqlite3_stmt *s = use(st, S_META_GET);
    int rc = bind_text(st, s, 1, key);
    if (!rc)
        rc = row(st, s, "meta get");
    if (!rc)
        col_text(s, 0, buf, cap);
    sqlite3_reset(s);
    return rc;
}

int store_meta_set(struct store *st, const char *key, const char *value)
{
    sqlite3_stmt *s = use(st, S_META_SET);
    int rc = bind_text(st, s, 1, key);
    if (!rc)
        rc = bind_text(st, s, 2, value);
    return rc ? rc : run(st, s, "meta set");
}

/* -------------------------------------------------------- identities */

int store_identity_add(struct store *st, const char *id, const char *name, const char *domain,
                       const char *role, uint64_t now)
{
    sqlite3_stmt *s = use(st, S_ID_ADD);
    int rc = bind_text(st, s, 1, id);
    if (!rc) rc = bind_text(st, s, 2, name);
    if (!rc) rc = bind_text(st, s, 3, domain);
    if (!rc) rc = bind_text(st, s, 4, role);
    if (!rc) rc = bind_u64(st, s, 5, now);
    return rc ? rc : run(st, s, "identity add");
}

int store_identity_get(struct store *st, const char *id, char *role, size_t cap)
{
    sqlite3_stmt *s = use(st, S_ID_GET);
    int rc = bind_text(st, s, 1, id);
    if (!rc)
        rc = row(st, s, "identity get");
    if (!rc && role)
        col_text(s, 0, role, cap);
    sqlite3_reset(s);
    return rc;
}

/* ----------------------------------------------------------- devices */

int store_device_add(struct store *st, const char *id, const char *identity,
                     const uint8_t pk[32], const char *label, uint64_t now)
{
    sqlite3_stmt *s = use(st, S_DEV_ADD);
    int rc = bind_text(st, s, 1, id);
    if (!rc) rc = bind_text(st, s, 2, identity);
    if (!rc) rc = bind_blob(st, s, 3, pk, 32);
    if (!rc) rc = bind_text(st, s, 4, label);
    if (!rc) rc = bind_u64(st, s, 5, now);
    return rc ? rc : run(st, s, "device add");
}

static int read_device(sqlite3_stmt *s, struct store_device *d)
{
    memset(d, 0, sizeof(*d));
    col_text(s, 0, d->id, sizeof(d->id));
    col_text(s, 1, d->identity, sizeof(d->identity));
    int rc = col_blob(s, 2, d->pk, 32);
    col_text(s, 3, d->label, sizeof(d->label));
    d->created = col_u64(s, 4);
    d->last_seen = col_u64(s, 5);
    d->revoked = col_u64(s, 6);
    return rc;
}

int store_device_get(struct store *st, const char *id, struct store_device *out)
{
    sqlite3_stmt *s = use(st, S_DEV_GET);
    int rc = bind_text(st, s, 1, id);
    if (!rc)
        rc = row(st, s, "device get");
    if (!rc)
        rc = read_device(s, out);
    sqlite3_reset(s);
    return rc;
}

int store_device_touch(struct store *st, const char *id, uint64_t now)
{
    sqlite3_stmt *s = use(st, S_DEV_TOUCH);
    int rc = bind_text(st, s, 1, id);
    if (!rc) rc = bind_u64(st, s, 2, now);
    return rc ? rc : run(st, s, "device touch");
}

int store_device_revoke(struct store *st, const char *id, uint64_t now)
{
    sqlite3_stmt *s = use(st, S_DEV_REVOKE);
    int rc = bind_text(st, s, 1, id);
    if (!rc) rc = bind_u64(st, s, 2, now);
    if (!rc) rc = run(st, s, "device revoke");
    if (!rc && sqlite3_changes(st->db) == 0)
        rc = ERR_CONFLICT;
    return rc;
}

int store_device_each(struct store *st, const char *identity,
                      int (*fn)(void *ctx, const struct store_device *d), void *ctx)
{
    sqlite3_stmt *s = use(st, S_DEV_EACH);
    int rc = bind_text(st, s, 1, identity);
    while (!rc) {
        rc = row(st, s, "device each");
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            break;
        }
        struct store_device d;
        if (!rc)
            rc = read_device(s, &d);
        if (!rc)
            rc = fn(ctx, &d);
    }
    sqlite3_reset(s);
    return rc;
}

/* ------------------------------------------------------------- codes */

int store_code_add(struct store *st, const struct store_code *c)
{
    sqlite3_stmt *s = use(st, S_CODE_ADD);
    int rc = bind_blob(st, s, 1, c->hash, 32);
    if (!rc) rc = bind_text(st, s, 2, c->kind);
    if (!rc) rc = bind_text(st, s, 3, c->identity);
    if (!rc) rc = bind_text(st, s, 4, c->role);
    if (!rc) rc = bind_text(st, s, 5, c->department);
    if (!rc) rc = bind_text(st, s, 6, c->association);
    if (!rc) rc = bind_text(st, s, 7, c->created_by);
    if (!rc) rc = bind_u64(st, s, 8, c->created);
    if (!rc) rc = bind_u64(st, s, 9, c->expires);
    return rc ? rc : run(st, s, "code add");
}

int store_code_get(struct store *st, const uint8_t hash[32], struct store_code *out)
{
    sqlite3_stmt *s = use(st, S_CODE_GET);
    int rc = bind_blob(st, s, 1, hash, 32);
    if (!rc)
        rc = row(st, s, "code get");
    if (!rc) {
        memset(out, 0, sizeof(*out));
        memcpy(out->hash, hash, 32);
        col_text(s, 0, out->kind, sizeof(out->kind));
        col_text(s, 1, out->identity, sizeof(out->identity));
        col_text(s, 2, out->role, sizeof(out->role));
        col_text(s, 3, out->department, sizeof(out->department));
        col_text(s, 4, out->association, sizeof(out->association));
        col_text(s, 5, out->created_by, sizeof(out->created_by));
        out->created = col_u64(s, 6);
        out->expires = col_u64(s, 7);
        out->used = col_u64(s, 8);
    }
    sqlite3_reset(s);
    return rc;
}

int store_code_use(struct store *st, const uint8_t hash[32], uint64_t now)
{
    sqlite3_stmt *s = use(st, S_CODE_USE);
    int rc = bind_blob(st, s, 1, hash, 32);
    if (!rc) rc = bind_u64(st, s, 2, now);
    if (!rc) rc = run(st, s, "code use");
    if (!rc && sqlite3_changes(st->db) == 0)
        rc = ERR_CONFLICT;
    return rc;
}

/* ------------------------------------------------ departments, associations */

int store_unit_add(struct store *st, enum store_unit kind, const char *name, const char *domain,
                   uint64_t now)
{
    sqlite3_stmt *s = use(st, kind == STORE_DEPARTMENT ? S_DEPT_ADD : S_ASSOC_ADD);
    int rc = bind_text(st, s, 1, name);
    if (!rc) rc = bind_text(st, s, 2, domain);
    if (!rc) rc = bind_u64(st, s, 3, now);
    return rc ? rc : run(st, s, "unit add");
}

int store_unit_exists(struct store *st, enum store_unit kind, const char *name)
{
    sqlite3_stmt *s = use(st, kind == STORE_DEPARTMENT ? S_DEPT_GET : S_ASSOC_GET);
    int rc = bind_text(st, s, 1, name);
    if (!rc)
        rc = row(st, s, "unit get");
    sqlite3_reset(s);
    return rc;
}

static int each_name(struct store *st, sqlite3_stmt *s, int (*fn)(void *, const char *),
                     void *ctx)
{
    int rc = 0;
    while (!rc) {
        rc = row(st, s, "list");
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (!rc) {
            char name[STORE_NAME_MAX];
            col_text(s, 0, name, sizeof(name));
            rc = fn(ctx, name);
        }
    }
    sqlite3_reset(s);
    return rc;
}

int store_unit_each(struct store *st, enum store_unit kind,
                    int (*fn)(void *ctx, const char *name), void *ctx)
{
    return each_name(st, use(st, kind == STORE_DEPARTMENT ? S_DEPT_EACH : S_ASSOC_EACH), fn,
                     ctx);
}

int store_member_add(struct store *st, enum store_unit kind, const char *identity,
                     const char *name, uint64_t now)
{
    sqlite3_stmt *s = use(st, kind == STORE_DEPARTMENT ? S_ASSIGN_ADD : S_MEMBER_ADD);
    int rc = bind_text(st, s, 1, identity);
    if (!rc) rc = bind_text(st, s, 2, name);
    if (!rc) rc = bind_u64(st, s, 3, now);
    return rc ? rc : run(st, s, "member add");
}

int store_member_remove(struct store *st, enum store_unit kind, const char *identity,
                        const char *name)
{
    sqlite3_stmt *s = use(st, kind == STORE_DEPARTMENT ? S_ASSIGN_DEL : S_MEMBER_DEL);
    int rc = bind_text(st, s, 1, identity);
    if (!rc) rc = bind_text(st, s, 2, name);
    if (!rc) rc = run(st, s, "member remove");
    if (!rc && sqlite3_changes(st->db) == 0)
        rc = ERR_NOT_FOUND;
    return rc;
}

int store_member_each(struct store *st, enum store_unit kind, const char *identity,
                      int (*fn)(void *ctx, const char *name), void *ctx)
{
    sqlite3_stmt *s = use(st, kind == STORE_DEPARTMENT ? S_ASSIGN_EACH : S_MEMBER_EACH);
    int rc = bind_text(st, s, 1, identity);
    if (rc)
        return rc;
    return each_name(st, s, fn, ctx);
}

/* ------------------------------------------------------------- audit */

int store_audit_last(struct store *st, int64_t *seq, uint8_t hash[32])
{
    sqlite3_stmt *s = use(st, S_AUDIT_LAST);
    int rc = row(st, s, "audit last");
    if (!rc) {
        *seq = sqlite3_column_int64(s, 0);
        rc = col_blob(s, 1, hash, 32);
    }
    sqlite3_reset(s);
    return rc;
}

int store_audit_insert(struct store *st, const struct store_audit *r)
{
    sqlite3_stmt *s = use(st, S_AUDIT_ADD);
    int rc = sqlite3_bind_int64(s, 1, r->seq) == SQLITE_OK ? 0 : db_err(st, "bind", 0);
    if (!rc) rc = bind_u64(st, s, 2, r->time);
    if (!rc) rc = bind_text(st, s, 3, r->actor);
    if (!rc) rc = bind_text(st, s, 4, r->action);
    if (!rc) rc = bind_text(st, s, 5, r->subject);
    if (!rc) rc = bind_text(st, s, 6, r->detail);
    if (!rc) rc = bind_blob(st, s, 7, r->prev, 32);
    if (!rc) rc = bind_blob(st, s, 8, r->hash, 32);
    return rc ? rc : run(st, s, "audit insert");
}

int store_audit_each(struct store *st, int (*fn)(void *ctx, const struct store_audit *r),
                     void *ctx)
{
    sqlite3_stmt *s = use(st, S_AUDIT_EACH);
    int rc = 0;
    while (!rc) {
        rc = row(st, s, "audit each");
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        struct store_audit r;
        memset(&r, 0, sizeof(r));
        r.seq = sqlite3_column_int64(s, 0);
        r.time = col_u64(s, 1);
        col_text(s, 2, r.actor, sizeof(r.actor));
        col_text(s, 3, r.action, sizeof(r.action));
        col_text(s, 4, r.subject, sizeof(r.subject));
        col_text(s, 5, r.detail, sizeof(r.detail));
        /* a tampered row may have a wrong-sized hash: leave it zero, the
         * chain check then fails on it */
        (void)col_blob(s, 6, r.prev, 32);
        (void)col_blob(s, 7, r.hash, 32);
        rc = fn(ctx, &r);
    }
    sqlite3_reset(s);
    return rc;
}
