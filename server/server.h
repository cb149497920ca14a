/*
 * server.h: `struct server` (the one global, `srv`) and the types shared by
 * the server's modules. Start reading at main.c, then ws.c (lws callbacks),
 * conn.c (per-connection state and queues), handle.c (dispatch) and the
 * handle_*.c files (one per family of operations).
 *
 * Life of a request: lws delivers bytes (ws.c) → conn_receive() reassembles
 * one binary frame (≤ max_frame) → handle_frame() decodes it with
 * wire_decode(), finds the op in the table, checks auth, opens a savepoint
 * (write ops: inside the iteration's transaction) and calls the handler →
 * the handler's answer is queued with conn_send(); while a write
 * transaction is open, everything queued is *held* on srv.held → after
 * lws_service() returns, main calls server_commit(): COMMIT, then the held
 * messages move to their connections' outbound queues → conn_flush_all()
 * writes each connection's queue at once, several messages per send() as
 * consecutive WebSocket frames; what the socket does not take goes out
 * from LWS_CALLBACK_SERVER_WRITEABLE (conn_writeable()).
 */
#ifndef SAMMEN_SERVER_H
#define SAMMEN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "store.h"

struct lws;
struct lws_context;
struct conn;

/* One encoded message waiting to be sent: LWS_PRE bytes of headroom, then
 * len bytes. */
/* Bytes several queued messages share (an `entry` event for every
 * recipient of a thread message): one copy, freed with the last reference
 * (conn.c outbody_*). */
struct outbody {
    uint32_t refs;
    size_t len;
    uint8_t buf[];       /* LWS_PRE + len */
};

struct outmsg {
    struct outmsg *next;
    struct conn *conn;   /* held list only */
    uint32_t id;         /* response id (held list: to turn into an error) */
    bool is_ok;          /* held: a successful response */
    bool is_event;       /* held: an event (dropped when the commit fails) */
    bool close_after;    /* close the connection once this one is sent */
    size_t len;
    struct outbody *body; /* the bytes, when shared; else in buf */
    uint8_t buf[];       /* LWS_PRE + len (body == NULL) */
};

/* Login attempts in the current minute for one key ("id:..." / "ip:..."). */
struct rate_slot {
    char key[STORE_ID_MAX + 8];
    uint64_t window; /* minute number (clock_now() / 60) */
    uint32_t count;
};
#define RATE_SLOTS 1024

struct server {
    struct cfg cfg;
    char domain[256];           /* from the store */
    struct store *store;
    struct lws_context *ctx;
    struct conn *conns;         /* live connections */
    struct conn *dead;          /* closed by lws, freed after the next commit */
    size_t nconns;
    struct outmsg *held_head;   /* waiting for the current transaction */
    struct outmsg *held_tail;
    volatile int stop;          /* set by SIGTERM/SIGINT */
    bool stopping;              /* draining: refuse new connections */
    struct rate_slot rate[RATE_SLOTS];
    /* the server's Ed25519 key: signs consent receipts and external
     * proposals; seed in sodium_malloc memory (server_key_load) */
    uint8_t *key_seed;
    uint8_t key_pk[32];
    char server_cred[300];      /* "server@" + domain: MLS external sender */
    uint64_t last_sweep;        /* clock_now() of the last expiry sweep */
    /* group commit (server_commit_due): write requests in the open
     * transaction, in the last committed one, and when it began */
    uint32_t txn_writes, last_txn_writes;
    uint64_t txn_began_us;
    bool txn_doomed; /* a request without a savepoint failed after writing (handle.c) */
};

extern struct server srv;

/* Commits the iteration's transaction (if any) and releases the held
 * messages; on a failed commit turns held successes into `internal` errors
 * and closes their connections, and drops held events. Frees dead connections. */
void server_commit(void);
/* Whether the loop should call server_commit() now (group commit, see
 * server.c); if not, the loop is woken when the wait is over. */
bool server_commit_due(void);
/* Timer work of the loop (at most once per clock second): grant expiry and
 * the delivery offline limit, inside the iteration's transaction. */
void server_sweep(void);

#endif

#ifndef SAMMEN_SERVER_CMDS
#define SAMMEN_SERVER_CMDS
/* `init`: creates the data directory (0700; an existing one must be
 * empty), the database, the server key (DIR/server.key) and the first
 * administrator's invitation; prints the code (json: one JSON document).
 * Returns the process exit status. */
int server_cmd_init(const struct cfg *cfg, const char *admin_name, bool json);
/* `audit-verify`: checks the audit chain; prints the result. Exit status
 * 0 intact, 1 broken or unreadable. */
int server_cmd_audit_verify(const struct cfg *cfg);
/* Runs the server until SIGTERM/SIGINT. Exit status. */
int server_cmd_run(void);
/* Path of a file in the data directory; ERR_TOO_BIG if it does not fit. */
int server_path(const char *dir, const char *file, char *out, size_t cap);
#endif
