/*
 * client.c: the event-driven core of the client library (see client.h).
 *
 * Start at client_conn_open() and callback(): libwebsockets calls
 * callback() for every connection of the context; the connection's
 * struct client_conn is the wsi's opaque user data. Outbound frames wait in
 * a bounded FIFO and are written one per LWS_CALLBACK_CLIENT_WRITEABLE.
 * Inbound fragments are reassembled (bounded by max_frame), decoded with
 * wire_decode() and dispatched: responses to the pending request with the
 * same id, events to on_event or the event queue, error responses with id 0
 * (the server refused a notification) to on_note_error and a counter: id 0
 * is never a request's id, so such an answer cannot complete one.
 *
 * Lifetime: a connection is released when both the caller has called
 * client_conn_free() (user_released) and libwebsockets has let go of the
 * wsi (wsi == NULL). While a user callback runs (in_cb > 0), the release
 * waits until the callback returns.
 */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "err.h"

struct outframe {
    struct outframe *next;
    size_t len;
    bool note; /* a notification: still sent when the connection is closing */
    uint8_t data[]; /* LWS_PRE bytes of headroom, then len bytes */
};

struct pending {
    struct pending *next;
    uint32_t id;
    client_response_fn *cb;
    void *user;
};

struct evnode {
    struct evnode *next;
    size_t len;
    uint8_t *buf;
};

struct client_conn {
    struct client_ctx *ctx;
    struct client_conn *next, *prev; /* ctx->conns */
    struct lws *wsi;
    enum client_state state;
    int close_reason;
    bool close_requested;
    bool user_released;
    bool detached; /* lws has let go of the wsi */
    bool freeing;  /* inside client_conn_free() */
    int in_cb;
    struct client_conn_cbs cbs;
    void *user;
    uint32_t next_id;

    struct outframe *out_head, *out_tail;
    size_t out_bytes;
    struct pending *pending;
    size_t npending;
    struct evnode *ev_head, *ev_tail;
    size_t nev, dropped_ev;
    struct client_conn_counts counts;
    struct client_note_error last_note_err;

    uint8_t *rx;
    size_t rx_len, rx_cap;
    bool rx_bad; /* current message is being discarded */
};

struct client_ctx {
    struct lws_context *lws;
    lws_sorted_usec_list_t wake;
    struct client_conn *conns;
    size_t max_frame, max_outq;
    bool allow_selfsigned;
    char last_error[160]; /* why the last connection attempt failed */
};

/* ---- frames and errors ---- */

int client_frame_adopt(struct client_frame *f, uint8_t *buf, size_t len)
{
    int rc;

    memset(f, 0, sizeof(*f));
    rc = wire_decode(buf, len, &f->msg);
    if (rc != 0) {
        wire_msg_free(&f->msg);
        memset(&f->msg, 0, sizeof(f->msg));
        free(buf);
        return rc;
    }
    f->buf = buf;
    f->len = len;
    return 0;
}

int client_frame_copy(struct client_frame *dst, const struct client_frame *src)
{
    uint8_t *b;

    memset(dst, 0, sizeof(*dst));
    b = malloc(src->len ? src->len : 1);
    if (!b)
        return ERR_NOMEM;
    memcpy(b, src->buf, src->len);
    return client_frame_adopt(dst, b, src->len);
}

void client_frame_free(struct client_frame *f)
{
    if (!f)
        return;
    if (f->buf)
        wire_msg_free(&f->msg);
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

int client_err_from_code(const char *code)
{
    static const int codes[] = {ERR_MALFORMED, ERR_TOO_BIG,   ERR_CRYPTO,  ERR_INVALID,
                                ERR_UNSUPPORTED, ERR_BADSTATE,   ERR_NOT_FOUND, ERR_DENIED,
                                ERR_IO,        ERR_EXPIRED,   ERR_CONFLICT, ERR_LIMIT,
                                ERR_INTERNAL,  ERR_NOMEM};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, err_str(codes[i])) == 0)
            return codes[i];
    if (strcmp(code, "bad_request") == 0)
        return ERR_INVALID;
    if (strcmp(code, "unknown_op") == 0)
        return ERR_UNSUPPORTED;
    if (strcmp(code, "unauthenticated") == 0)
        return ERR_BADSTATE;
    return ERR_INTERNAL;
}

/* ---- URL ---- */

int client_url_parse(const char *url, char *host, size_t host_cap, int *port, char *path,
                     size_t path_cap, bool *tls)
{
    const char *p, *hs, *he, *ps;
    size_t n;
    long v = 0;

    if (strncmp(url, "ws://", 5) == 0) {
        *tls = false;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        *tls = true;
        p = url + 6;
    } else {
        return ERR_INVALID;
    }
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he)
            return ERR_INVALID;
        p = he + 1;
    } else {
        hs = p;
        while (*p && *p != ':' && *p != '/')
            p++;
        he = p;
    }
    n = (size_t)(he - hs);
    if (n == 0 || n >= host_cap)
        return ERR_INVALID;
    memcpy(host, hs, n);
    host[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (host[i] == '@' || host[i] == ' ' || (unsigned char)host[i] < 0x21)
            return ERR_INVALID;
    *port = *tls ? 443 : 80;
    if (*p == ':') {
        p++;
        if (*p < '0' || *p > '9')
            return ERR_INVALID;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            if (v > 65535)
                return ERR_INVALID;
            p++;
        }
        if (v == 0)
            return ERR_INVALID;
        *port = (int)v;
    }
    if (*p != '\0' && *p != '/')
        return ERR_INVALID;
    ps = *p ? p : "/";
    if (strlen(ps) >= path_cap)
        return ERR_INVALID;
    strcpy(path, ps);
    return 0;
}

/* ---- connection internals ---- */

static void outq_clear(struct client_conn *c)
{
    struct outframe *f = c->out_head;
    while (f) {
        struct outframe *n = f->next;
        free(f);
        f = n;
    }
    c->out_head = c->out_tail = NULL;
    c->out_bytes = 0;
}

static void events_clear(struct client_conn *c)
{
    struct evnode *e = c->ev_head;
    while (e) {
        struct evnode *n = e->next;
        free(e->buf);
        free(e);
        e = n;
    }
    c->ev_head = c->ev_tail = NULL;
    c->nev = 0;
}

static void conn_destroy(struct client_conn *c)
{
    struct client_ctx *ctx = c->ctx;

    if (c->prev)
        c->prev->next = c->next;
    else
        ctx->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    outq_clear(c);
    events_clear(c);
    while (c->pending) {
        struct pending *p = c->pending;
        c->pending = p->next;
        free(p);
    }
    free(c->rx);
    free(c);
}

/* Frees c if nobody needs it any more. Returns true when freed. */
static bool maybe_destroy(struct client_conn *c)
{
    if (c->user_released && !c->wsi && c->in_cb == 0) {
        conn_destroy(c);
        return true;
    }
    return false;
}

/* Fails every pending request with rc (callbacks run unless the user has
 * released the connection). */
static void fail_pending(struct client_conn *c, int rc)
{
    while (c->pending) {
        struct pending *p = c->pending;
        c->pending = p->next;
        c->npending--;
        if (p->cb && !c->user_released) {
            c->in_cb++;
            p->cb(c, NULL, rc, p->user);
            c->in_cb--;
        }
        free(p);
    }
}

/* Marks the connection closed, fails what is pending, tells the user. */
static void mark_closed(struct client_conn *c, int reason)
{
    if (c->state == CLIENT_CLOSED)
        return;
    c->state = CLIENT_CLOSED;
    c->close_reason = reason;
    outq_clear(c);
    fail_pending(c, reason);
    if (c->cbs.on_close && !c->user_released) {
        c->in_cb++;
        c->cbs.on_close(c, reason, c->user);
        c->in_cb--;
    }
}

static int enqueue(struct client_conn *c, const uint8_t *frame, size_t len, bool note)
{
    struct outframe *f;

    if (c->state == CLIENT_CLOSED || c->close_requested || c->freeing)
        return ERR_BADSTATE;
    if (len > c->ctx->max_outq || c->out_bytes > c->ctx->max_outq - len)
        return ERR_LIMIT;
    f = malloc(sizeof(*f) + LWS_PRE + len);
    if (!f)
        return ERR_NOMEM;
    f->next = NULL;
    f->len = len;
    f->note = note;
    memcpy(f->data + LWS_PRE, frame, len);
    if (c->out_tail)
        c->out_tail->next = f;
    else
        c->out_head = f;
    c->out_tail = f;
    c->out_bytes += len;
    if (c->state == CLIENT_OPEN && c->wsi)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static void queue_event(struct client_conn *c, const struct client_frame *f)
{
    struct evnode *e;

    if (c->nev >= CLIENT_MAX_QUEUED_EVENTS) {
        c->dropped_ev++;
        return;
    }
    e = malloc(sizeof(*e));
    if (!e) {
        c->dropped_ev++;
        return;
    }
    e->buf = malloc(f->len ? f->len : 1);
    if (!e->buf) {
        free(e);
        c->dropped_ev++;
        return;
    }
    memcpy(e->buf, f->buf, f->len);
    e->len = f->len;
    e->next = NULL;
    if (c->ev_tail)
        c->ev_tail->next = e;
    else
        c->ev_head = e;
    c->ev_tail = e;
    c->nev++;
}

/* Handles one complete inbound message in c->rx. Returns 0, or a negative
 * ERR_* when the connection must be closed (the server sent garbage). */
static int dispatch(struct client_conn *c)
{
    struct client_frame f;
    int rc;

    memset(&f, 0, sizeof(f));
    f.buf = c->rx;
    f.len = c->rx_len;
    /* Undecodable, over a limit, or another protocol version: nothing from
     * this server can be trusted any more, so the caller closes. */
    rc = wire_decode(c->rx, c->rx_len, &f.msg);
    if (rc != 0)
        goto out;
    if (f.msg.kind == WIRE_EVENT) {
        c->counts.events++;
        if (c->cbs.on_event) {
            c->in_cb++;
            c->cbs.on_event(c, &f, c->user);
            c->in_cb--;
        } else {
            queue_event(c, &f);
        }
    } else if (f.msg.kind == WIRE_RESPONSE && f.msg.id == 0) {
        /* no request has id 0 (client_conn_send refuses it): the server
         * refused a notification, or a frame whose id it could not read */
        if (f.msg.ok)
            goto done; /* servers do not send these; nothing to tell */
        c->counts.note_errors++;
        {
            size_t n = f.msg.err_msg_len < sizeof(c->last_note_err.msg) - 1
                           ? f.msg.err_msg_len
                           : sizeof(c->last_note_err.msg) - 1;
            snprintf(c->last_note_err.code, sizeof(c->last_note_err.code), "%s", f.msg.name);
            if (f.msg.err_msg && n)
                memcpy(c->last_note_err.msg, f.msg.err_msg, n);
            c->last_note_err.msg[n] = '\0';
        }
        if (c->cbs.on_note_error && !c->user_released) {
            c->in_cb++;
            c->cbs.on_note_error(c, &f, client_err_from_code(f.msg.name), c->user);
            c->in_cb--;
        }
    } else if (f.msg.kind == WIRE_RESPONSE) {
        struct pending **pp = &c->pending, *p;
        c->counts.responses++;
        while (*pp && (*pp)->id != f.msg.id)
            pp = &(*pp)->next;
        p = *pp;
        if (p) {
            *pp = p->next;
            c->npending--;
            if (p->cb && !c->user_released) {
                int r = f.msg.ok ? 0 : client_err_from_code(f.msg.name);
                c->in_cb++;
                p->cb(c, &f, r, p->user);
                c->in_cb--;
            }
            free(p);
        }
        /* a response to nothing pending (a cancelled request) is dropped */
    } else {
        rc = ERR_MALFORMED; /* servers do not send requests */
        goto out;
    }
done:
    rc = 0;
out:
    wire_msg_free(&f.msg);
    return rc;
}

static int rx_append(struct client_conn *c, const uint8_t *in, size_t len)
{
    size_t need;

    if (len > c->ctx->max_frame - c->rx_len)
        return ERR_TOO_BIG;
    if (len == 0)
        return 0; /* an empty message or fragment: c->rx may still be NULL */
    need = c->rx_len + len;
    if (need > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        uint8_t *nb;
        while (cap < need)
            cap *= 2;
        if (cap > c->ctx->max_frame)
            cap = c->ctx->max_frame;
        nb = realloc(c->rx, cap);
        if (!nb)
            return ERR_NOMEM;
        c->rx = nb;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct client_conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    int ret = 0;

    (void)user;
    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = CLIENT_OPEN;
        if (c->close_requested) {
            lws_callback_on_writable(wsi);
            break;
        }
        if (c->cbs.on_open && !c->user_released) {
            c->in_cb++;
            c->cbs.on_open(c, c->user);
            c->in_cb--;
        }
        if (c->out_head || c->close_requested)
            lws_callback_on_writable(wsi);
        break;

    case LWS_CALLBACK_CLIENT_RECEIVE: {
        int rc;
        if (lws_is_first_fragment(wsi)) {
            c->rx_len = 0;
            c->rx_bad = false;
        }
        if (!lws_frame_is_binary(wsi)) {
            ret = -1; /* text frames are not part of the protocol */
            c->close_reason = ERR_MALFORMED;
            break;
        }
        rc = rx_append(c, in, len);
        if (rc != 0) {
            ret = -1;
            c->close_reason = rc;
            break;
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            rc = dispatch(c);
            c->rx_len = 0;
            if (rc != 0) {
                ret = -1;
                c->close_reason = rc;
            }
        }
        break;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        struct outframe *f;
        if (c->close_requested) {
            /* requests not yet written are dropped (their callbacks fail
             * with the close); notifications go first, one per writeable
             * callback, and the close follows once they are out */
            while (c->out_head && !c->out_head->note) {
                f = c->out_head;
                c->out_head = f->next;
                c->out_bytes -= f->len;
                free(f);
            }
            if (!c->out_head)
                c->out_tail = NULL;
        }
        f = c->out_head;
        if (c->close_requested && !f) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            ret = -1;
            break;
        }
        if (!f)
            break;
        if (lws_write(wsi, f->data + LWS_PRE, f->len, LWS_WRITE_BINARY) < (int)f->len) {
            ret = -1;
            c->close_reason = ERR_IO;
            break;
        }
        c->out_head = f->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_bytes -= f->len;
        free(f);
        if (c->out_head || c->close_requested)
            lws_callback_on_writable(wsi);
        break;
    }

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        /* lws says why (refused, TLS verification, bad handshake...) */
        if (in)
            snprintf(c->ctx->last_error, sizeof(c->ctx->last_error), "%.*s",
                     (int)(len > 0 && len < 150 ? len : strnlen(in, 150)), (const char *)in);
        else
            snprintf(c->ctx->last_error, sizeof(c->ctx->last_error), "connection failed");
        /* fall through */
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        /* lws is done with this wsi: detach before anything else so no
         * later callback can reach c. */
        lws_set_opaque_user_data(wsi, NULL);
        c->wsi = NULL;
        c->detached = true;
        mark_closed(c, c->close_reason ? c->close_reason : ERR_IO);
        maybe_destroy(c);
        return 0;

    default:
        break;
    }
    return ret;
}

static const struct lws_protocols protocols[] = {
    {"sammen.v1", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- context ---- */

static void wake_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only here to end lws_service()'s wait */
}

int client_ctx_new(const struct client_ctx_opts *opts, struct client_ctx **out)
{
    struct lws_context_creation_info info;
    struct client_ctx *ctx;

    *out = NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return ERR_NOMEM;
    ctx->max_frame = opts && opts->max_frame ? opts->max_frame : CLIENT_DEFAULT_MAX_FRAME;
    ctx->max_outq = opts && opts->max_outq ? opts->max_outq : CLIENT_DEFAULT_MAX_OUTQ;
    ctx->allow_selfsigned = opts && opts->allow_selfsigned;
    lws_set_log_level(getenv("SAMMEN_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
                                                 : 0,
                      NULL);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.gid = -1;
    info.uid = -1;
    if (opts && opts->ca_file)
        info.client_ssl_ca_filepath = opts->ca_file;
    ctx->lws = lws_create_context(&info);
    if (!ctx->lws) {
        free(ctx);
        return ERR_INTERNAL;
    }
    *out = ctx;
    return 0;
}

void client_ctx_free(struct client_ctx *ctx)
{
    if (!ctx)
        return;
    /* First close every connection the user still holds, so pending
     * requests fail and on_close runs while callbacks may still run.
     * Callbacks may free connections: rescan from the head each time. */
    for (;;) {
        struct client_conn *c = ctx->conns;
        while (c && (c->state == CLIENT_CLOSED || c->user_released))
            c = c->next;
        if (!c)
            break;
        mark_closed(c, ERR_IO);
    }
    /* Destroying the lws context closes every wsi (callbacks detach the
     * connections); then free whatever the user had not released. */
    for (struct client_conn *c = ctx->conns; c; c = c->next)
        c->user_released = true;
    lws_context_destroy(ctx->lws);
    while (ctx->conns) {
        ctx->conns->wsi = NULL;
        ctx->conns->in_cb = 0;
        conn_destroy(ctx->conns);
    }
    free(ctx);
}

const char *client_ctx_last_error(const struct client_ctx *ctx)
{
    return ctx->last_error;
}

int client_ctx_service(struct client_ctx *ctx, int timeout_ms)
{
    if (timeout_ms < 0)
        timeout_ms = 0;
    lws_sul_schedule(ctx->lws, 0, &ctx->wake, wake_cb, (lws_usec_t)timeout_ms * LWS_US_PER_MS);
    if (lws_service(ctx->lws, 0) < 0)
        return ERR_INTERNAL;
    return 0;
}

/* ---- connections ---- */

int client_conn_open(struct client_ctx *ctx, const char *url, const struct client_conn_cbs *cbs,
                     void *user, struct client_conn **out)
{
    struct lws_client_connect_info ci;
    char host[256], path[CLIENT_URL_MAX];
    int port, rc;
    bool tls;
    struct client_conn *c;

    *out = NULL;
    rc = client_url_parse(url, host, sizeof(host), &port, path, sizeof(path), &tls);
    if (rc != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    c->ctx = ctx;
    c->state = CLIENT_CONNECTING;
    c->user = user;
    if (cbs)
        c->cbs = *cbs;
    c->next = ctx->conns;
    if (ctx->conns)
        ctx->conns->prev = c;
    ctx->conns = c;

    memset(&ci, 0, sizeof(ci));
    ci.context = ctx->lws;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = "sammen.v1";
    ci.opaque_user_data = c;
    if (tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (ctx->allow_selfsigned)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED;
    }
    /* No pwsi: lws would write through it after c may be gone. A connect
     * that fails at once may already have run CONNECTION_ERROR (which only
     * detaches c); either way c is ours to free. */
    c->wsi = lws_client_connect_via_info(&ci);
    if (c->detached)
        c->wsi = NULL;
    if (!c->wsi) {
        conn_destroy(c);
        return ERR_IO;
    }
    *out = c;
    return 0;
}

int client_conn_new_offline(struct client_ctx *ctx, const struct client_conn_cbs *cbs,
                            void *user, struct client_conn **out)
{
    struct client_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return ERR_NOMEM;
    c->ctx = ctx;
    c->state = CLIENT_OPEN;
    c->detached = true;
    c->user = user;
    if (cbs)
        c->cbs = *cbs;
    c->next = ctx->conns;
    if (ctx->conns)
        ctx->conns->prev = c;
    ctx->conns = c;
    *out = c;
    return 0;
}

int client_conn_receive(struct client_conn *c, const uint8_t *msg, size_t len)
{
    int rc;

    if (c->state == CLIENT_CLOSED)
        return ERR_BADSTATE;
    /* the same steps as LWS_CALLBACK_CLIENT_RECEIVE for one whole message */
    c->rx_len = 0;
    rc = rx_append(c, msg, len);
    if (rc == 0)
        rc = dispatch(c);
    c->rx_len = 0;
    /* a callback may have freed c; with no socket nothing else will */
    maybe_destroy(c);
    return rc;
}

void client_conn_close(struct client_conn *c)
{
    if (!c || c->state == CLIENT_CLOSED || c->close_requested)
        return;
    c->close_requested = true;
    if (c->wsi && c->state == CLIENT_OPEN)
        lws_callback_on_writable(c->wsi);
}

void client_conn_free(struct client_conn *c)
{
    if (!c || c->user_released || c->freeing)
        return;
    /* Fail what is pending while the user's callbacks may still run (an
     * asynchronous flow frees its state there); a callback that frees c
     * again is a no-op thanks to `freeing`. */
    c->freeing = true;
    fail_pending(c, ERR_IO);
    c->user_released = true;
    if (maybe_destroy(c))
        return;
    if (c->wsi && !c->close_requested) {
        c->close_requested = true;
        if (c->state == CLIENT_OPEN)
            lws_callback_on_writable(c->wsi);
    }
}

enum client_state client_conn_state(const struct client_conn *c)
{
    return c->state;
}

struct client_ctx *client_conn_ctx(struct client_conn *c)
{
    return c->ctx;
}

int client_conn_close_reason(const struct client_conn *c)
{
    return c->state == CLIENT_CLOSED ? c->close_reason : 0;
}

uint32_t client_conn_next_id(struct client_conn *c)
{
    if (++c->next_id == 0)
        c->next_id = 1;
    return c->next_id;
}

size_t client_conn_pending(const struct client_conn *c)
{
    return c->npending;
}

int client_conn_send(struct client_conn *c, uint32_t id, const uint8_t *frame, size_t len,
                     client_response_fn *cb, void *user)
{
    struct pending *p;
    int rc;

    if (id == 0)
        return ERR_INVALID;
    if (c->state == CLIENT_CLOSED || c->close_requested || c->freeing)
        return ERR_BADSTATE;
    for (p = c->pending; p; p = p->next)
        if (p->id == id)
            return ERR_CONFLICT;
    p = malloc(sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    rc = enqueue(c, frame, len, false);
    if (rc != 0) {
        free(p);
        return rc;
    }
    c->counts.requests++;
    p->id = id;
    p->cb = cb;
    p->user = user;
    p->next = c->pending;
    c->pending = p;
    c->npending++;
    return 0;
}

int client_conn_notify(struct client_conn *c, const uint8_t *frame, size_t len)
{
    int rc = enqueue(c, frame, len, true);
    if (rc == 0)
        c->counts.notes++;
    return rc;
}

int client_conn_send_raw(struct client_conn *c, const uint8_t *frame, size_t len)
{
    return enqueue(c, frame, len, false);
}

void client_conn_cancel(struct client_conn *c, uint32_t id)
{
    for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            c->npending--;
            free(p);
            return;
        }
    }
}

int client_conn_pop_event(struct client_conn *c, struct client_frame *ev)
{
    struct evnode *e = c->ev_head;
    int rc;

    memset(ev, 0, sizeof(*ev));
    if (!e)
        return ERR_NOT_FOUND;
    c->ev_head = e->next;
    if (!c->ev_head)
        c->ev_tail = NULL;
    c->nev--;
    rc = client_frame_adopt(ev, e->buf, e->len);
    free(e);
    return rc;
}

size_t client_conn_dropped_events(const struct client_conn *c)
{
    return c->dropped_ev;
}

size_t client_conn_note_errors(const struct client_conn *c, struct client_note_error *last)
{
    if (last && c->counts.note_errors)
        *last = c->last_note_err;
    return (size_t)c->counts.note_errors;
}

void client_conn_counts(const struct client_conn *c, struct client_conn_counts *out)
{
    *out = c->counts;
}
