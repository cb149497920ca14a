/*
 * client.h: the Sammen client library, event-driven core.
 *
 * One struct client_ctx wraps one libwebsockets client context and carries
 * any number of connections (struct client_conn), all served by
 * client_ctx_service() on the caller's thread. Nothing here blocks: open a
 * connection, queue requests with client_conn_send(), and the library calls
 * back when the connection opens, when a response arrives (matched by id),
 * when the server pushes an event, and when the connection closes. The
 * blocking convenience layer for simple programs (the CLI, tests) is
 * client_sync.h; the login and enrollment exchanges are client_auth.h; the
 * on-disk profile is client_profile.h.
 *
 * Threading: a context and its connections belong to one thread. Use one
 * context per process: with libwebsockets 4.1 and OpenSSL 3, destroying a
 * second context while another lives leaks the first one's certificate
 * store (seen under LeakSanitizer), and one context carries any number of
 * connections anyway.
 *
 * Ownership:
 * - client_ctx_new() / client_ctx_free(). Freeing the context closes and
 *   frees every connection still on it.
 * - client_conn_open() returns a connection owned by the caller until
 *   client_conn_free(), which closes it if it is open. Callbacks may call
 *   client_conn_free() on their own connection: the memory is released only
 *   once libwebsockets is done with it. After client_conn_free() no more
 *   callbacks arrive for that connection.
 * - Frames passed to callbacks (struct client_frame) are valid only during
 *   the callback; client_frame_copy() keeps one.
 */
#ifndef SAMMEN_CLIENT_H
#define SAMMEN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define CLIENT_DEFAULT_MAX_FRAME ((size_t)1 << 20)
#define CLIENT_DEFAULT_MAX_OUTQ ((size_t)4 << 20)
#define CLIENT_MAX_QUEUED_EVENTS 256
#define CLIENT_URL_MAX 512

struct client_ctx;
struct client_conn;

struct client_ctx_opts {
    const char *ca_file;   /* wss: CA bundle; NULL = the system's */
    bool allow_selfsigned; /* wss: accept a self-signed server certificate */
    size_t max_frame;      /* largest inbound message; 0 = CLIENT_DEFAULT_MAX_FRAME */
    size_t max_outq;       /* bytes queued for sending per connection; 0 = default */
};

/* One received frame: the bytes and their decoded envelope (msg points into
 * buf). */
struct client_frame {
    uint8_t *buf;
    size_t len;
    struct wire_msg msg;
};

enum client_state { CLIENT_CONNECTING = 1, CLIENT_OPEN = 2, CLIENT_CLOSED = 3 };

/* Callbacks of one connection; any may be NULL. */
struct client_conn_cbs {
    void (*on_open)(struct client_conn *c, void *user);
    /* A server-pushed event. When NULL, events are queued (up to
     * CLIENT_MAX_QUEUED_EVENTS; older ones are kept, newer ones dropped) for
     * client_conn_pop_event(). */
    void (*on_event)(struct client_conn *c, const struct client_frame *ev, void *user);
    /* The connection is closed (or could not be opened); reason is a
     * negative ERR_* (ERR_IO for a plain close or connect failure). Pending
     * requests have already been failed. */
    void (*on_close)(struct client_conn *c, int reason, void *user);
    /* An error response with id 0: the server refused a notification
     * (client_conn_notify; the connection stays open), or could not read
     * the id of a frame we sent (the server then closes the connection).
     * It never answers a pending request. rc is client_err_from_code() of
     * the error. Whether or not this is set, the connection counts these and
     * keeps the last one (client_conn_note_errors). */
    void (*on_note_error)(struct client_conn *c, const struct client_frame *err, int rc,
                          void *user);
};

/* A response to one request. rc is 0 for an `ok` response, the ERR_* that
 * client_err_from_code() gives for an `err` response (resp non-NULL in both
 * cases), or a negative ERR_* with resp NULL when the connection closed or the
 * request was cancelled before an answer came. */
typedef void client_response_fn(struct client_conn *c, const struct client_frame *resp, int rc,
                                void *user);

/* ---- context ---- */

/* Creates a client context. opts may be NULL (defaults). Returns 0,
 * ERR_NOMEM, ERR_INTERNAL (libwebsockets refused). */
int client_ctx_new(const struct client_ctx_opts *opts, struct client_ctx **out);
/* Closes and frees every connection still on ctx, then ctx: connections the
 * user still holds first fail their pending requests (ERR_IO) and get
 * on_close; their pointers are invalid afterwards. NULL is a no-op. */
void client_ctx_free(struct client_ctx *ctx);
/* Runs the event loop once: waits at most timeout_ms for network activity
 * and runs the callbacks due. Returns 0 or ERR_INTERNAL. */
int client_ctx_service(struct client_ctx *ctx, int timeout_ms);

/* Why the last connection attempt on ctx failed, as libwebsockets put it
 * ("" when none failed). Valid until the next failure. */
const char *client_ctx_last_error(const struct client_ctx *ctx);

/* ---- connections ---- */

/* Splits a ws:// or wss:// URL. host gets the host (without brackets for an
 * IPv6 literal), path defaults to "/", port to 80 / 443. Returns 0 or
 * ERR_INVALID. */
int client_url_parse(const char *url, char *host, size_t host_cap, int *port, char *path,
                     size_t path_cap, bool *tls);

/* Starts connecting to url (subprotocol sammen.v1). cbs may be NULL; cbs
 * is copied. Returns 0 and *out, ERR_INVALID (bad URL), ERR_NOMEM, ERR_IO. */
int client_conn_open(struct client_ctx *ctx, const char *url, const struct client_conn_cbs *cbs,
                     void *user, struct client_conn **out);
/* Closes (if open) and releases the connection; see Ownership. NULL is a
 * no-op. Pending requests are failed with ERR_IO: their callbacks run
 * inside this call (on_close does not). */
void client_conn_free(struct client_conn *c);
/* Asks to close the connection; on_close follows from the event loop. */
void client_conn_close(struct client_conn *c);

enum client_state client_conn_state(const struct client_conn *c);
/* The context the connection runs on. */
struct client_ctx *client_conn_ctx(struct client_conn *c);
/* Why the connection closed (0 while it is not closed). */
int client_conn_close_reason(const struct client_conn *c);
/* A fresh request id for this connection (1, 2, ...; never 0: id 0 is the
 * server's answer to a frame without a readable id, e.g. a notification). */
uint32_t client_conn_next_id(struct client_conn *c);
/* Requests sent and not yet answered. */
size_t client_conn_pending(const struct client_conn *c);

/* Queues an encoded request (frame is copied) whose id is `id` (not 0), and
 * calls cb once with its response. Frames queued while connecting are sent
 * once the connection opens. Returns 0, ERR_INVALID (id 0), ERR_BADSTATE
 * (closed), ERR_CONFLICT (id already pending), ERR_LIMIT (outbound queue
 * full), ERR_NOMEM. */
int client_conn_send(struct client_conn *c, uint32_t id, const uint8_t *frame, size_t len,
                     client_response_fn *cb, void *user);
/* Queues an encoded notification (a request without id, wire_enc_note():
 * PROTOCOL.md "Envelope"; the server accepts only `ack` so). Nothing comes
 * back when the server carries it out; a refusal arrives later as an error
 * response with id 0 (on_note_error, client_conn_note_errors). Unlike
 * requests, notifications queued when the connection is asked to close are
 * still sent before it closes. Returns as client_conn_send(). */
int client_conn_notify(struct client_conn *c, const uint8_t *frame, size_t len);
/* Queues bytes as one binary frame without tracking a response (tests use
 * it to send malformed frames). Returns as client_conn_send(). */
int client_conn_send_raw(struct client_conn *c, const uint8_t *frame, size_t len);
/* Forgets the pending request id without calling its callback. */
void client_conn_cancel(struct client_conn *c, uint32_t id);

/* Takes the oldest queued event into *ev (caller frees with
 * client_frame_free). Returns 0 or ERR_NOT_FOUND when none is queued. */
int client_conn_pop_event(struct client_conn *c, struct client_frame *ev);
/* Events dropped because the queue was full. */
size_t client_conn_dropped_events(const struct client_conn *c);

/* The last error response with id 0, as the server put it (truncated). */
struct client_note_error {
    char code[WIRE_MAX_NAME + 1];
    char msg[256];
};
/* How many error responses with id 0 came on this connection (see
 * on_note_error); *last (may be NULL) gets the latest one when there was
 * any. */
size_t client_conn_note_errors(const struct client_conn *c, struct client_note_error *last);

/* What went over the connection: frames queued by client_conn_send() /
 * client_conn_notify() and responses / events received. */
struct client_conn_counts {
    uint64_t requests, notes; /* queued */
    uint64_t responses;       /* with an id other than 0 (matched or not) */
    uint64_t note_errors;     /* error responses with id 0 */
    uint64_t events;
};
void client_conn_counts(const struct client_conn *c, struct client_conn_counts *out);

/* ---- the receive path without a network (tests, fuzzing) ---- */

/* A connection on ctx that is open but has no socket: what is sent to it
 * queues up (and is dropped at free), and client_conn_receive() plays the
 * server's part. Returns 0 or ERR_NOMEM. Free with client_conn_free(). */
int client_conn_new_offline(struct client_ctx *ctx, const struct client_conn_cbs *cbs,
                            void *user, struct client_conn **out);
/* Handles msg[0..len) as one complete message from the server: decode,
 * match a response to its pending request, deliver or queue an event.
 * Returns 0, or the error for which a real connection would be closed
 * (ERR_MALFORMED, ERR_TOO_BIG, ERR_UNSUPPORTED, ERR_NOMEM). */
int client_conn_receive(struct client_conn *c, const uint8_t *msg, size_t len);

/* ---- frames and errors ---- */

/* Decodes buf[0..len) (taking ownership of buf, a malloc()ed block) into
 * f. Returns 0 or the wire_decode() error (buf is freed then). */
int client_frame_adopt(struct client_frame *f, uint8_t *buf, size_t len);
/* Deep copy of src into dst. Returns 0 or ERR_NOMEM / a decode error. */
int client_frame_copy(struct client_frame *dst, const struct client_frame *src);
/* Frees what f holds and zeroes it; safe on a zeroed frame. */
void client_frame_free(struct client_frame *f);

/* The ERR_* for a wire error code string (PROTOCOL.md "Error codes"):
 * err_str() names map back to their codes; "bad_request" gives ERR_INVALID,
 * "unknown_op" ERR_UNSUPPORTED, "unauthenticated" ERR_BADSTATE, anything else
 * ERR_INTERNAL. */
int client_err_from_code(const char *code);

#endif
