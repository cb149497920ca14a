/*
 * conn.h: one WebSocket connection: inbound frame reassembly, the bounded
 * outbound queue, login state, and deferred free.
 *
 * A conn is created by ws.c on ESTABLISHED and detached on CLOSED (wsi set
 * to NULL, moved to srv.dead); it is freed by server_commit() at the end of
 * the loop iteration, never inside its own callback, so held responses and
 * handlers may keep pointers to it for the rest of the iteration.
 */
#ifndef SAMMEN_CONN_H
#define SAMMEN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "store.h"

struct conn {
    struct conn *next;
    struct lws *wsi;            /* NULL once closed */
    uint64_t serial;            /* for logs */
    char peer[64];
    /* inbound */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    /* outbound: sent in order from WRITEABLE */
    struct outmsg *q_head, *q_tail;
    size_t q_bytes;
    struct conn *fnext;         /* on the flush list (conn.c) */
    bool on_flush;
    bool ignore_input;          /* answered with a fatal error or session ended:
                                   further input is dropped until the close */
    bool closing;               /* a close_after message was sent: close when
                                   the queue is empty */
    bool killed;                /* overflow or unsafe: closed without flushing */
    /* login */
    bool authed;                /* set and cleared only by conn_login / conn.c */
    struct conn *dnext;         /* chain in the by-device index (conn.c) */
    size_t dhash;               /* str_hash(device), set at login */
    bool on_dev;
    char device[32];            /* beside the chain: one cache line per lookup */
    char identity[STORE_ID_MAX];
    char role[16];
    uint8_t nonce[32];
    uint64_t nonce_expires;     /* 0: no challenge outstanding */
    /* not logged in yet: on the unauthenticated list (conn.c), in order of
     * last_rx, so that conn_idle_sweep() closes silent ones from its head */
    struct conn *uprev, *unext;
    bool on_unauth;
    uint64_t last_rx;           /* monotonic seconds of the last inbound frame */
};

/* Allocates a conn for wsi and links it into srv.conns. NULL on ENOMEM. */
struct conn *conn_new(struct lws *wsi);
/* Called on CLOSED: unlinks from srv.conns, moves to srv.dead. */
void conn_detach(struct conn *c);
/* Closes connections that have not logged in and sent nothing for
 * cfg.unauth_timeout seconds (they would otherwise hold a place of
 * max_connections for ever). Cost: O(connections closed or logged in
 * since the last sweep), not O(connections). Call about once a second. */
void conn_idle_sweep(void);
/* Marks c logged in as identity/device (role) and indexes it by device.
 * A connection already logged in is re-indexed. */
void conn_login(struct conn *c, const char *identity, const char *device, const char *role);
/* Ends c's login (session ended, killed, closed, device revoked). */
void conn_logout(struct conn *c);
/* Calls fn for every live, logged-in connection of device: O(1) expected
 * (a hash of the logged-in connections by device, kept at login and at
 * the end of the session), whatever the number of connections. */
void conn_each_device(const char *device, void (*fn)(struct conn *c, void *ctx), void *ctx);
/* The same with the device's str_hash() (strhash.h) known: the delivery
 * path keeps it with each member and queued event, so that a lookup is a
 * bucket, a hash compare and one strcmp, without hashing the id again. */
void conn_each_device_h(const char *device, size_t hash, void (*fn)(struct conn *c, void *ctx),
                        void *ctx);
/* Frees a detached conn (its queues and buffers). NULL ok. */
void conn_free(struct conn *c);

/* Inbound bytes of one WebSocket fragment. Returns 0, or -1 when the
 * connection must close now (the error answer, if any, is queued). */
int conn_receive(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
                 bool binary);

/* Queues an encoded message (copied). While a write transaction is open it
 * is held until commit (server.c). id/is_ok describe a response (is_ok
 * false for errors and events). close_after: close once sent. Returns 0 or
 * ERR_NOMEM / ERR_LIMIT (outbound queue overflow: the connection is being
 * killed). */
int conn_send(struct conn *c, const uint8_t *data, size_t len, uint32_t id, bool is_ok,
              bool close_after);
/* Queues an event (as conn_send); one held for the COMMIT is dropped when
 * the COMMIT fails, since what it tells of did not happen. */
int conn_send_event(struct conn *c, const uint8_t *data, size_t len);
/* A shared body holding a copy of data (one reference), NULL on ENOMEM. */
struct outbody *outbody_new(const uint8_t *data, size_t len);
/* Drops a reference; the last frees the body. NULL ok. */
void outbody_unref(struct outbody *b);
/* conn_send_event of a shared body: c's queue takes a reference instead
 * of a copy. */
int conn_send_event_shared(struct conn *c, struct outbody *b);
/* Frees a queued or held message (and its reference to a shared body). */
void outmsg_free(struct outmsg *m);
/* Appends a held message to c's queue (after commit). */
void conn_enqueue(struct conn *c, struct outmsg *m);
/* Sends an error response {id, err:{code,msg}}. */
void conn_send_err(struct conn *c, uint32_t id, const char *code, const char *msg,
                   bool close_after);
/* Sends session.ended {reason}, ends the login at once, and closes after. */
void conn_end_session(struct conn *c, const char *reason);
/* LWS_CALLBACK_SERVER_WRITEABLE: sends queued messages (up to a batch, while
 * the socket takes them whole). Returns -1 to
 * close the connection. */
int conn_writeable(struct conn *c);
/* Writes what this iteration queued, on every connection that queued
 * something, at once (outside any callback; server_commit() calls it after
 * the held answers are released). Several queued messages go out as one
 * write of consecutive WebSocket frames; what the socket does not take
 * waits for WRITEABLE. */
void conn_flush_all(void);

#endif
