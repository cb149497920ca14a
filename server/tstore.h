/*
 * tstore.h: the prepared statements of issue 5 (consent ledger, threads,
 * delivery, access log) over the tables of schema version 6 (store.c,
 * migrations 1 -> 2 to 5 -> 6), with small step/bind helpers. The domain
 * modules (consent.c, entitle.c, thread.c, deliver.c, kp.c, accesslog.c) bind and
 * step these directly; each statement is prepared once by tstore_open().
 *
 * Usage: sqlite3_stmt *s = tq(Q_X); tq_text(s, 1, "..."); ...;
 *        rc = tq_run(s) (no rows) or while ((rc = tq_row(s)) == 0) {...};
 *        rc == ERR_NOT_FOUND at the end of rows; tq_done(s) resets.
 * Errors are ERR_IO (logged), ERR_CONFLICT (unique key), ERR_INVALID
 * (another constraint).
 */
#ifndef SAMMEN_TSTORE_H
#define SAMMEN_TSTORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum tq {
    Q_GRANT_ADD, Q_GRANT_GET, Q_GRANT_EACH_CITIZEN, Q_GRANT_EXPIRED_DUE, Q_GRANT_EXPIRY_ADD,
    Q_REVOKE_ADD,
    Q_PROXY_ACTIVE, Q_PROXY_ADD, Q_PROXY_END,
    Q_DEV_ACTIVE_COUNT, Q_STAFF_IN_GRANTED_DEPT,
    Q_ENTITLED,
    Q_KP_ADD, Q_KP_COUNT, Q_KP_LAST_RESORT_RETIRE, Q_KP_PICK, Q_KP_CLAIM, Q_KP_GET, Q_KP_DEVICE,
    Q_KP_DEL,
    Q_THREAD_ADD, Q_THREAD_GET, Q_THREAD_SET_EPOCH, Q_THREAD_SET_REMOVAL,
    Q_THREAD_EACH, Q_THREAD_EACH_CITIZEN, Q_THREAD_SET_GI,
    Q_MEMBER_ADD, Q_MEMBER_GET, Q_MEMBER_DEL, Q_MEMBER_EACH, Q_MEMBER_SET_REMOVING,
    Q_MEMBER_SET_LEAF, Q_MEMBER_OF_IDENTITY, Q_MEMBER_SET_BASIS,
    Q_PROP_GET, Q_PROP_PUT, Q_PROP_DEL, Q_PROP_BASIS,
    Q_HS_ADD, Q_HS_EACH,
    Q_MSG_ADD, Q_MSG_GET, Q_MSG_ACK_UPTO, Q_MSG_DROP_DATA, Q_MSG_EXPIRED_DUE, Q_MSG_UNDELIVERABLE,
    Q_GSEQ_GET, Q_GSEQ_PUT, Q_CURSOR_GET, Q_CURSOR_PUT, Q_WIN_OF_THREAD,
    Q_MSG_PENDING, Q_MSG_COMPLETE, Q_WIN_SWEEP, Q_UNREAD,
    Q_INBOX_ADD, Q_INBOX_PAGE, Q_MSG_DROP_ACKED,
    Q_INBOX_V2_ANY, Q_INBOX_DEL_UPTO, Q_INBOX_OF_MESSAGE, Q_INBOX_DEL_MESSAGE,
    Q_MISSED_ADD, Q_MISSED_EACH, Q_MISSED_CLEAR,
    Q_HISTORY_READ,
    Q_ACCESS_ADD, Q_ACCESS_EACH_THREAD,
    Q_PROXIES_OF_CITIZEN, Q_REL_ADD,
    Q_REQ_ADD, Q_REQ_GET, Q_REQ_EACH, Q_REQ_SET,
    Q_BG_ADD, Q_BG_EXPIRED_DUE, Q_BG_SET_LOGGED,
    Q_AGR_ADD, Q_AGR_LATEST, Q_AGR_ACK_ADD, Q_AGR_ACKS, Q_AGR_GET,
    Q_THREADS_OF_IDENTITY, Q_THREAD_HOT, Q_THREAD_FOLLOWER, Q_THREAD_SET_FOLLOWER,
    Q_THREADS_CANDIDATE,
    /* schema 4: signed proxy registrations / ends, break-glass listing */
    Q_PREG_ADD, Q_PREG_EACH_CITIZEN, Q_PEND_ADD, Q_BG_EACH_CITIZEN,
    Q_THREADS_WANTING_DEVICE, Q_THREADS_OF_DEVICE, Q_THREADS_OF_DEPARTMENT,
    /* the acknowledgement path's caches (deliver.c) */
    Q_WIN_ONLY, Q_WIN_OF_DEVICE, Q_MSG_COMPLETE_RANGE,
    Q_INBOX_DEVICE_ANY,
    Q_COUNT
};

/* Prepares every statement on st's connection (after migrations).
 * 0 or ERR_IO. tstore_close() finalizes them (safe to call twice). */
int tstore_open(struct store *st);
void tstore_close(void);

/* The statement, reset and with its bindings cleared. */
sqlite3_stmt *tq(enum tq i);
/* Bind helpers (1-based index); 0 or ERR_IO. tq_blob with NULL binds NULL. */
int tq_text(sqlite3_stmt *s, int i, const char *v);
int tq_blob(sqlite3_stmt *s, int i, const uint8_t *v, size_t n);
int tq_u64(sqlite3_stmt *s, int i, uint64_t v);
/* Runs a statement returning no rows: 0, ERR_CONFLICT, ERR_INVALID, ERR_IO.
 * Resets it. */
int tq_run(sqlite3_stmt *s);
/* Steps a query: 0 with a row, ERR_NOT_FOUND when done (then reset),
 * ERR_IO. Call tq_done() when stopping early. */
int tq_row(sqlite3_stmt *s);
void tq_done(sqlite3_stmt *s);
/* Column helpers: text copied into buf (truncated to cap-1; every stored
 * text was length-checked on the way in); u64 (negative -> 0). */
void tq_col_text(sqlite3_stmt *s, int i, char *buf, size_t cap);
uint64_t tq_col_u64(sqlite3_stmt *s, int i);
/* Rows changed by the last tq_run. */
int tq_changes(void);
/* The windows generation: changes whenever a row of `member_windows` is
 * written on the store's connection (the same update hook; the triggers on
 * thread_members included) and when the store opens or closes, so that
 * deliver.c's window caches notice a membership change however it was
 * made. Rollbacks do not change it: deliver.c watches store_rollbacks()
 * for all its caches. */
uint64_t tstore_windows_gen(void);
/* Bumped by every row inserted into `inbox` on the server's connection (a
 * rollback does not bring it back: rollbacks are seen by
 * store_rollbacks()). */
uint64_t tstore_inbox_gen(void);

/* The roster generation: changes whenever a row of `threads` or
 * `thread_members` is written on the store's connection (SQLite's update
 * hook: any statement, trigger or test), after every rollback (which
 * reverts rows without telling the hook: store_rollbacks()), and when the
 * store opens or closes; it never goes back. Caches of those tables
 * (hot.c) are valid while it is unchanged. */
uint64_t tstore_roster_gen(void);

#endif
