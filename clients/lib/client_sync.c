/* client_sync.c: blocking waits over the event-driven core (client_sync.h).
 * Each wait runs the context's loop in slices of at most 50 ms until its
 * condition holds or its deadline passes. */
#include "client_sync.h"

#include <string.h>
#include <time.h>

#include "err.h"

#define SLICE_MS 50

struct waiter {
    bool done;
    int rc;
    struct client_frame reply;
};

int64_t client_sync_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until *done or the deadline. Returns 0 or ERR_EXPIRED. */
static int run_until(struct client_ctx *ctx, const bool *done, int64_t deadline)
{
    while (!*done) {
        int64_t left = deadline - client_sync_now_ms();
        if (left <= 0)
            return ERR_EXPIRED;
        if (client_ctx_service(ctx, left < SLICE_MS ? (int)left : SLICE_MS) != 0)
            return ERR_INTERNAL;
    }
    return 0;
}

int client_sync_open(struct client_ctx *ctx, const char *url, int timeout_ms,
                     struct client_conn **out)
{
    struct client_conn *c = NULL;
    int64_t deadline = client_sync_now_ms() + timeout_ms;
    int rc;

    *out = NULL;
    rc = client_conn_open(ctx, url, NULL, NULL, &c);
    if (rc != 0)
        return rc;
    while (client_conn_state(c) == CLIENT_CONNECTING) {
        int64_t left = deadline - client_sync_now_ms();
        if (left <= 0) {
            rc = ERR_EXPIRED;
            goto out;
        }
        if (client_ctx_service(ctx, left < SLICE_MS ? (int)left : SLICE_MS) != 0) {
            rc = ERR_INTERNAL;
            goto out;
        }
    }
    if (client_conn_state(c) != CLIENT_OPEN) {
        rc = ERR_IO;
        goto out;
    }
    *out = c;
    c = NULL;
out:
    client_conn_free(c);
    return rc;
}

static void on_response(struct client_conn *c, const struct client_frame *resp, int rc,
                        void *user)
{
    struct waiter *w = user;
    (void)c;
    w->done = true;
    w->rc = rc;
    if (resp && client_frame_copy(&w->reply, resp) != 0) {
        memset(&w->reply, 0, sizeof(w->reply));
        w->rc = ERR_NOMEM;
    }
}

int client_sync_call(struct client_conn *c, uint32_t id, struct wire_enc *e, int timeout_ms,
                     struct client_frame *reply)
{
    struct waiter w;
    const uint8_t *data;
    size_t len;
    int rc;

    memset(reply, 0, sizeof(*reply));
    memset(&w, 0, sizeof(w));
    rc = wire_enc_finish(e, &data, &len);
    if (rc != 0)
        return rc;
    rc = client_conn_send(c, id, data, len, on_response, &w);
    if (rc != 0)
        return rc;
    rc = run_until(client_conn_ctx(c), &w.done, client_sync_now_ms() + timeout_ms);
    if (rc != 0) {
        /* the waiter lives on this stack frame: forget the request */
        client_conn_cancel(c, id);
        client_frame_free(&w.reply);
        return rc;
    }
    *reply = w.reply;
    return w.rc;
}

int client_sync_event(struct client_conn *c, int timeout_ms, struct client_frame *ev)
{
    int64_t deadline = client_sync_now_ms() + timeout_ms;

    for (;;) {
        int rc = client_conn_pop_event(c, ev);
        if (rc != ERR_NOT_FOUND)
            return rc;
        if (client_conn_state(c) == CLIENT_CLOSED)
            return ERR_IO;
        int64_t left = deadline - client_sync_now_ms();
        if (left <= 0)
            return ERR_EXPIRED;
        if (client_ctx_service(client_conn_ctx(c), left < SLICE_MS ? (int)left : SLICE_MS) != 0)
            return ERR_INTERNAL;
    }
}

int client_sync_closed(struct client_conn *c, int timeout_ms)
{
    int64_t deadline = client_sync_now_ms() + timeout_ms;

    while (client_conn_state(c) != CLIENT_CLOSED) {
        int64_t left = deadline - client_sync_now_ms();
        if (left <= 0)
            return ERR_EXPIRED;
        if (client_ctx_service(client_conn_ctx(c), left < SLICE_MS ? (int)left : SLICE_MS) != 0)
            return ERR_INTERNAL;
    }
    return 0;
}
