/*
 * bench_net.h: the load generator's own thin WebSocket client on one
 * libwebsockets context: many connections, each bound to a chosen local
 * (source) address, requests matched to responses by id, server events
 * handed to a callback with the frame already decoded.
 *
 * Why not clients/lib (client.h)? The bench needs two things the product
 * library does not offer and should not carry: a per-connection source
 * address (lws_client_connect_info.iface, so one machine can open more
 * connections than one address has ephemeral ports), and a small, fixed
 * per-connection footprint (no event queue, a fixed table of pending
 * requests), so tens of thousands of sessions fit in a few processes.
 *
 * Lifetime: a connection lives from bconn_open() until its on_close
 * callback has returned; bench_net frees it right after, so the caller
 * must drop its pointer in on_close. bnet_free() closes whatever is left
 * (on_close runs for each).
 */
#ifndef SAMMEN_BENCH_NET_H
#define SAMMEN_BENCH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define BCONN_MAX_PENDING 16

struct bnet;
struct bconn;

/* A response: rc 0 for `ok`, the ERR_* of an `err` response (m non-NULL
 * in both cases), or ERR_IO with m NULL when the connection closed first.
 * m is valid only during the call. */
typedef void bconn_resp_fn(struct bconn *c, const struct wire_msg *m, int rc, void *arg);

struct bconn_cbs {
    void (*on_open)(struct bconn *c, void *user);
    /* A server event; m is valid only during the call. */
    void (*on_event)(struct bconn *c, const struct wire_msg *m, void *user);
    /* Last callback of the connection (also when it never opened); reason
     * is ERR_IO for a plain close or a refused connect. */
    void (*on_close)(struct bconn *c, int reason, void *user);
    /* Optional, offered every complete inbound frame first (buf valid only
     * during the call): 0 = handled, ERR_NOT_FOUND = not yours (decoded and
     * dispatched as usual), another ERR_* closes the connection. */
    int (*on_frame)(struct bconn *c, const uint8_t *buf, size_t len, void *user);
};

/* Creates the context. max_frame bounds one inbound message. Returns 0,
 * ERR_NOMEM, ERR_INTERNAL. */
int bnet_new(size_t max_frame, struct bnet **out);
/* Closes every connection (on_close runs for each) and frees the context.
 * NULL is a no-op. */
void bnet_free(struct bnet *n);
/* Writes the frames queued since the last call (bconn_request), then one
 * round of the event loop, waiting at most timeout_ms. */
int bnet_service(struct bnet *n, int timeout_ms);
/* Connections open or opening. */
size_t bnet_live(const struct bnet *n);

/* Starts a connection to ws://host:port/path (subprotocol sammen.v1) from
 * the local address iface (an IPv4 literal such as "127.0.0.2"; NULL: the
 * kernel's choice). cbs is copied. Returns 0 and *out (valid until its
 * on_close returns), ERR_NOMEM, ERR_IO (lws refused at once; no callback
 * runs then). */
int bconn_open(struct bnet *n, const char *host, int port, const char *path, const char *iface,
               const struct bconn_cbs *cbs, void *user, struct bconn **out);
/* Asks to close; on_close follows from the event loop. */
void bconn_close(struct bconn *c);
bool bconn_is_open(const struct bconn *c);
/* A fresh request id (never 0). */
uint32_t bconn_next_id(struct bconn *c);
/* Requests sent and not yet answered. */
unsigned bconn_pending(const struct bconn *c);
/* Whether bench_net reads this connection's socket itself (bench_net.c:
 * after the upgrade, unless SAMMEN_BENCH_LWS_RX is set or lws delivered
 * something before the takeover), and how many of the net's do. */
bool bconn_rx_own(const struct bconn *c);
size_t bnet_rx_owned(const struct bnet *n);

/* Queues the finished request e (whose id is id; e keeps its buffer; it
 * goes out at the next bnet_service()) and calls cb(arg) once with its
 * response. Returns 0, ERR_BADSTATE (closing or
 * closed), ERR_LIMIT (BCONN_MAX_PENDING requests in flight), ERR_NOMEM, or
 * the encoder's error. */
int bconn_request(struct bconn *c, uint32_t id, struct wire_enc *e, bconn_resp_fn *cb,
                  void *arg);
/* Queues the finished notification e (a request without an id, e.g. from
 * wire_enc_note: never answered when it succeeds; an error comes back with
 * id 0 and ends the connection). Returns 0, ERR_BADSTATE or ERR_NOMEM. */
int bconn_notify(struct bconn *c, struct wire_enc *e);

/* The ERR_* for a wire error code string ("bad_request" → ERR_INVALID,
 * "unknown_op" → ERR_UNSUPPORTED, "unauthenticated" → ERR_BADSTATE, unknown
 * → ERR_INTERNAL). */
int bnet_err_from_code(const char *code);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC: comparable between the
 * bench's processes on one machine). */
uint64_t bnet_now_ns(void);

#endif
