/*
 * client_sync.h: a blocking layer over client.h for simple programs (the
 * `sammen` CLI, integration tests): open a connection and wait for it, send
 * a request and wait for its response, wait for an event, each with a
 * timeout. It runs client_ctx_service() on the caller's thread, so other
 * connections on the same context keep being served meanwhile.
 *
 * Timeouts are in milliseconds; a wait that runs out returns ERR_EXPIRED.
 */
#ifndef SAMMEN_CLIENT_SYNC_H
#define SAMMEN_CLIENT_SYNC_H

#include "client.h"

/* Opens a connection to url and waits until it is open. Returns 0 and *out
 * (free with client_conn_free), ERR_INVALID (bad URL), ERR_IO (refused or
 * closed), ERR_EXPIRED, ERR_NOMEM. */
int client_sync_open(struct client_ctx *ctx, const char *url, int timeout_ms,
                     struct client_conn **out);

/* Sends the finished request in e (whose id is id) and waits for its
 * response. On any response, *reply holds it (caller frees with
 * client_frame_free) and the return is 0 for `ok` or the mapped ERR_* of
 * the `err` (client_err_from_code). Without a response *reply is zeroed and
 * the return is ERR_EXPIRED, ERR_IO (connection closed), ERR_BADSTATE,
 * ERR_LIMIT, ERR_NOMEM, or the encoder's error. */
int client_sync_call(struct client_conn *c, uint32_t id, struct wire_enc *e, int timeout_ms,
                     struct client_frame *reply);

/* Waits for the next server event (queued events first). Returns 0 and *ev
 * (caller frees), ERR_EXPIRED, ERR_IO (closed and none queued). Only for
 * connections opened without an on_event callback. */
int client_sync_event(struct client_conn *c, int timeout_ms, struct client_frame *ev);

/* Waits until the connection is closed. Returns 0 or ERR_EXPIRED. */
int client_sync_closed(struct client_conn *c, int timeout_ms);

/* Milliseconds on a monotonic clock. */
int64_t client_sync_now_ms(void);

#endif
