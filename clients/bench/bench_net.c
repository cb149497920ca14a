/*
 * bench_net.c: the bench's WebSocket client (see bench_net.h).
 *
 * Start at bconn_open() and callback(). Each connection is the wsi's
 * opaque user data; outbound frames wait in a FIFO, and a connection that
 * queued something goes on the net's flush list. bnet_service() first
 * writes every listed connection's FIFO with lws_write() directly (as the
 * server's conn_flush_all does), while lws holds nothing of ours from a
 * short write (lws_partial_buffered(): no syscall); only what is left then
 * waits for LWS_CALLBACK_CLIENT_WRITEABLE. Asking for WRITEABLE for every
 * frame cost two epoll_ctl calls and a loop turn per frame (PERFORMANCE.md,
 * "The bench's own cost"). Inbound fragments are reassembled (bounded by
 * max_frame; a frame that arrives whole is used where lws put it), offered
 * to on_frame, else decoded with wire_decode() and dispatched: responses to
 * the pending slot with the same id, events to on_event.
 *
 * The receive side is ours once a connection is established (own_rx()):
 * libwebsockets 4.1's client parser handles every received byte through
 * its state machine, which was 56 % of a bench worker (PERFORMANCE.md,
 * "The bench's own receive path"). lws keeps the connection (connect from
 * the source address, the upgrade, masked writes, close), but stops reading
 * (lws_rx_flow_control(wsi, 0)); we read a dup() of its socket from our own
 * uv_poll_t on the same loop into one buffer per bnet, decode the frames
 * in bulk (bench_ws.c: many frames per recv()) and dispatch them in place;
 * only a frame cut by the end of a read is kept, in the connection's
 * `left` buffer. The takeover happens in flush_all(), outside every lws
 * callback and before the connection's first frame goes out: the server
 * sends nothing before a request (PROTOCOL.md), and lws handed us every
 * byte it had read by then; should lws have delivered anything before the
 * takeover, the connection stays on lws's receive path (test_bench_net).
 */
#include "bench_net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <uv.h>

#include "bench_ws.h"
#include "err.h"
#include "uvwake.h"

struct outframe {
    struct outframe *next;
    size_t len;
    enum lws_write_protocol type; /* LWS_WRITE_BINARY, or PONG for a ping */
    uint8_t data[]; /* LWS_PRE headroom, then len bytes */
};

struct pend {
    uint32_t id; /* 0: free slot */
    bconn_resp_fn *cb;
    void *arg;
};

struct bconn {
    struct bnet *net;
    struct bconn *next, *prev; /* net->conns */
    struct lws *wsi;
    bool open, closing, closed;
    bool in_open, failed_in_open; /* inside bconn_open(); lws let go there */
    int close_reason;
    struct bconn_cbs cbs;
    void *user;
    uint32_t next_id;
    unsigned npend;
    struct pend pend[BCONN_MAX_PENDING];
    struct outframe *out_head, *out_tail;
    bool on_flush;               /* on net->flush */
    struct bconn *fnext, *fprev;
    struct bconn *wnext;         /* flush_all(): waits for the takeover */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    /* our own receive path (own_rx()) */
    bool lws_rx_seen;  /* lws delivered something: no takeover */
    bool lws_rx_keep;  /* no takeover (it failed, or lws stayed busy) */
    unsigned waits;    /* flush turns waited for lws to be idle */
    bool own;          /* we read the socket, lws does not */
    bool rx_cut;       /* what lws would read next may not start a frame
                          (a read error or EOF, or bytes left unused) */
    int rxfd;          /* our dup() of lws's socket; -1 when none */
    uv_poll_t *rxpoll; /* watches rxfd; freed by its close callback */
    struct bws_dec dec;
    uint8_t *left; /* a frame cut by the end of a read (bounded by */
    size_t left_len, left_cap; /* max_frame + BWS_MAX_HEADER) */
};

struct bnet {
    struct lws_context *lws;
    /* libuv (epoll) rather than lws's default poll(): poll() walks every
     * socket on each loop iteration, which at thousands of connections per
     * process costs more than the traffic itself (PERFORMANCE.md) */
    uv_loop_t loop;
    struct uvwake wake; /* bnet_service()'s timeout (server/uvwake.h) */
    bool loop_ok, wake_ok;
    struct bconn *conns;
    struct bconn *flush; /* connections with frames queued since the last flush */
    size_t live;
    size_t max_frame;
    bool debug; /* SAMMEN_BENCH_DEBUG, read once */
    bool own_rx; /* take over the receive side (SAMMEN_BENCH_LWS_RX unset) */
    bool in_rx;  /* inside on_rx(): rxbuf is in use */
    uint8_t *rxbuf; /* one read buffer for every connection: left + a read */
    size_t rxcap;
    size_t owned; /* connections whose receive side we took over */
};

uint64_t bnet_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bnet_err_from_code(const char *code)
{
    static const int codes[] = {ERR_MALFORMED, ERR_TOO_BIG, ERR_CRYPTO,   ERR_INVALID,
                                ERR_UNSUPPORTED, ERR_BADSTATE, ERR_NOT_FOUND, ERR_DENIED,
                                ERR_IO,        ERR_EXPIRED, ERR_CONFLICT, ERR_LIMIT,
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

/* ---- connection internals ---- */

static void flush_unlink(struct bconn *c)
{
    if (!c->on_flush)
        return;
    if (c->fprev)
        c->fprev->fnext = c->fnext;
    else
        c->net->flush = c->fnext;
    if (c->fnext)
        c->fnext->fprev = c->fprev;
    c->fnext = c->fprev = NULL;
    c->on_flush = false;
}

static void flush_add(struct bconn *c)
{
    if (c->on_flush)
        return;
    c->fprev = NULL;
    c->fnext = c->net->flush;
    if (c->fnext)
        c->fnext->fprev = c;
    c->net->flush = c;
    c->on_flush = true;
}

/* Writes queued frames, one lws_write(BINARY) each (client frames are
 * masked by lws), while lws holds nothing of ours from a short write; lws
 * keeps what the socket did not take and asks for WRITEABLE itself.
 * Returns 0, or -1 when a write failed. */
static int write_queue(struct bconn *c)
{
    while (c->out_head && !lws_partial_buffered(c->wsi)) {
        struct outframe *f = c->out_head;
        int n;
        c->out_head = f->next;
        if (!c->out_head)
            c->out_tail = NULL;
        n = lws_write(c->wsi, f->data + LWS_PRE, f->len, f->type);
        if (n < (int)f->len) {
            free(f);
            return -1;
        }
        free(f);
    }
    return 0;
}

static void fail_pending(struct bconn *c)
{
    for (unsigned i = 0; i < BCONN_MAX_PENDING && c->npend; i++) {
        struct pend p = c->pend[i];
        if (!p.id)
            continue;
        c->pend[i].id = 0;
        c->npend--;
        if (p.cb)
            p.cb(c, NULL, ERR_IO, p.arg);
    }
}

/* ---- our receive path ---- */

static void free_poll(uv_handle_t *h)
{
    free(h);
}

/* Stops our reading (the socket stays lws's). */
static void rx_stop(struct bconn *c)
{
    if (c->rxpoll) {
        /* uv_close() stops the watcher and takes the fd out of epoll at
         * once, so closing the fd right after is safe; the handle's memory
         * goes in its close callback */
        uv_close((uv_handle_t *)c->rxpoll, free_poll);
        c->rxpoll = NULL;
    }
    if (c->rxfd >= 0) {
        close(c->rxfd);
        c->rxfd = -1;
    }
}

/* Our reading failed (rc): stop it and close the connection through lws
 * (WRITEABLE returns -1). */
static void rx_fail(struct bconn *c, int rc)
{
    c->rx_cut = true;
    if (!c->close_reason)
        c->close_reason = rc;
    rx_stop(c);
    c->closing = true;
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

/* Queues a frame of type t (BINARY, PONG) to go out at the next flush. */
static int queue_frame(struct bconn *c, enum lws_write_protocol t, const uint8_t *data, size_t len)
{
    struct outframe *f = malloc(sizeof(*f) + LWS_PRE + len);
    if (!f)
        return ERR_NOMEM;
    f->next = NULL;
    f->len = len;
    f->type = t;
    if (len)
        memcpy(f->data + LWS_PRE, data, len);
    if (c->out_tail)
        c->out_tail->next = f;
    else
        c->out_head = f;
    c->out_tail = f;
    if (c->open && c->wsi)
        flush_add(c); /* written at the next bnet_service() */
    return 0;
}

static int dispatch(struct bconn *c, const uint8_t *buf, size_t len);

/* The socket is readable: one recv() into the shared buffer after what was
 * left of the last read, then every complete frame in it. */
static void on_rx(uv_poll_t *h, int status, int events)
{
    struct bconn *c = h->data;
    struct bnet *n = c->net;
    size_t have = c->left_len, off = 0, rest;
    ssize_t r;
    int rc = 0;

    (void)events;
    if (status < 0) {
        rx_fail(c, ERR_IO);
        return;
    }
    if (c->closing) {
        rx_stop(c); /* bconn_close(): WRITEABLE ends it */
        return;
    }
    if (n->in_rx)
        return; /* never re-entered from a callback */
    if (have)
        memcpy(n->rxbuf, c->left, have);
    do
        r = recv(c->rxfd, n->rxbuf + have, n->rxcap - have, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {
        rx_fail(c, ERR_IO); /* reset, or the server closed without a close frame */
        return;
    }
    have += (size_t)r;
    n->in_rx = true;
    while (off < have && !c->closing) {
        const uint8_t *p;
        size_t used, plen;
        int kind;

        rc = bws_dec_next(&c->dec, n->rxbuf + off, have - off, &used, &kind, &p, &plen);
        if (rc != 0 || used == 0)
            break;
        off += used;
        if (kind == BWS_MESSAGE)
            rc = dispatch(c, p, plen);
        else if (kind == BWS_PING)
            rc = queue_frame(c, LWS_WRITE_PONG, p, plen);
        else if (kind == BWS_CLOSE) {
            /* the server closes: lws answers with its close frame */
            c->closing = true;
            lws_callback_on_writable(c->wsi);
        }
        if (rc != 0)
            break;
    }
    n->in_rx = false;
    if (rc != 0) {
        rx_fail(c, rc);
        return;
    }
    if (c->closing) {
        /* the user or the server closed: what follows is not read */
        if (off < have)
            c->rx_cut = true;
        c->left_len = 0;
        rx_stop(c);
        return;
    }
    rest = have - off; /* a frame cut by the end of the read: < rxcap - 65536 */
    if (rest > c->left_cap) {
        uint8_t *nb = realloc(c->left, rest);
        if (!nb) {
            rx_fail(c, ERR_NOMEM);
            return;
        }
        c->left = nb;
        c->left_cap = rest;
    }
    if (rest)
        memcpy(c->left, n->rxbuf + off, rest);
    c->left_len = rest;
    if (!rest && c->left_cap > 65536) {
        /* do not keep a large frame's buffer for the whole run */
        free(c->left);
        c->left = NULL;
        c->left_cap = 0;
    }
}

/* Takes the receive side over from lws (see the top of the file). Called
 * outside lws callbacks, before the connection's first frame is written.
 * On any failure the connection simply stays on lws's receive path. */
static void own_rx(struct bconn *c)
{
    struct bnet *n = c->net;
    uv_poll_t *p = NULL;
    int fd, dfd = -1;

    if (!n->own_rx || c->own || c->lws_rx_seen || !c->wsi)
        return;
    if (!n->rxbuf) {
        n->rxcap = n->max_frame + BWS_MAX_HEADER + 65536;
        n->rxbuf = malloc(n->rxcap);
        if (!n->rxbuf)
            goto fail;
    }
    fd = lws_get_socket_fd(c->wsi);
    if (fd < 0)
        goto fail;
    dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        goto fail;
    p = malloc(sizeof(*p));
    if (!p)
        goto fail;
    if (uv_poll_init(&n->loop, p, dfd) != 0) {
        free(p); /* not initialised: no uv_close */
        goto fail;
    }
    p->data = c;
    if (lws_rx_flow_control(c->wsi, 0) < 0) {
        uv_close((uv_handle_t *)p, free_poll);
        goto fail;
    }
    if (uv_poll_start(p, UV_READABLE | UV_DISCONNECT, on_rx) != 0) {
        uv_close((uv_handle_t *)p, free_poll);
        (void)lws_rx_flow_control(c->wsi, 1);
        goto fail;
    }
    c->rxfd = dfd;
    c->rxpoll = p;
    c->own = true;
    n->owned++;
    return;
fail:
    if (dfd >= 0)
        close(dfd);
    if (n->debug)
        fprintf(stderr, "sammen-bench: receive path stays with lws for one connection\n");
}

/* lws is done with the wsi: tell the user (last callback), then free. */
static void finish(struct bconn *c)
{
    struct bnet *n = c->net;
    struct outframe *f;

    c->closed = true;
    c->open = false;
    rx_stop(c);
    flush_unlink(c);
    fail_pending(c);
    if (c->cbs.on_close)
        c->cbs.on_close(c, c->close_reason ? c->close_reason : ERR_IO, c->user);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->live--;
    while ((f = c->out_head)) {
        c->out_head = f->next;
        free(f);
    }
    free(c->rx);
    free(c->left);
    bws_dec_reset(&c->dec);
    if (c->own)
        n->owned--;
    free(c);
}

static int dispatch(struct bconn *c, const uint8_t *buf, size_t len)
{
    struct wire_msg m;
    int rc;

    if (c->cbs.on_frame) {
        /* the workload's fast path (the care workloads' `entry` events) */
        rc = c->cbs.on_frame(c, buf, len, c->user);
        if (rc != ERR_NOT_FOUND)
            return rc;
    }
    rc = wire_decode(buf, len, &m);
    if (rc != 0)
        goto out; /* garbage or another version: close */
    if (m.kind == WIRE_EVENT) {
        if (c->cbs.on_event)
            c->cbs.on_event(c, &m, c->user);
    } else if (m.kind == WIRE_RESPONSE && m.id == 0) {
        /* an error answering a notification (or a frame the server could
         * not read): the bench sent something wrong; the connection ends
         * with the server's code (counted as a lost connection) */
        rc = m.ok ? ERR_MALFORMED : bnet_err_from_code(m.name);
        if (c->net->debug)
            fprintf(stderr, "sammen-bench: error with id 0: %s %.*s\n", m.name,
                    (int)m.err_msg_len, m.err_msg ? m.err_msg : "");
        if (rc == 0)
            rc = ERR_INTERNAL;
    } else if (m.kind == WIRE_RESPONSE) {
        for (unsigned i = 0; i < BCONN_MAX_PENDING; i++) {
            if (c->pend[i].id != m.id || !m.id)
                continue;
            struct pend p = c->pend[i];
            c->pend[i].id = 0;
            c->npend--;
            if (p.cb)
                p.cb(c, &m, m.ok ? 0 : bnet_err_from_code(m.name), p.arg);
            break;
        }
    } else {
        rc = ERR_MALFORMED;
    }
out:
    wire_msg_free(&m);
    return rc;
}

static int rx_append(struct bconn *c, const uint8_t *in, size_t len)
{
    size_t need;

    if (len > c->net->max_frame - c->rx_len)
        return ERR_TOO_BIG;
    need = c->rx_len + len;
    if (need > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 512;
        uint8_t *nb;
        while (cap < need)
            cap *= 2;
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
    struct bconn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    int rc;

    (void)user;
    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->open = true;
        if (c->cbs.on_open && !c->closing)
            c->cbs.on_open(c, c->user);
        if (c->closing)
            lws_callback_on_writable(wsi);
        else
            flush_add(c); /* the takeover of the receive side (own_rx()),
                             and what was queued before it opened */
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE: {
        bool first = lws_is_first_fragment(wsi) != 0;
        bool last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
        c->lws_rx_seen = true;
        if (first)
            c->rx_len = 0;
        if (!lws_frame_is_binary(wsi)) {
            c->close_reason = ERR_MALFORMED;
            return -1;
        }
        if (first && last) {
            /* the whole message in one piece (the usual case): use it
             * where lws put it, no copy */
            if (len > c->net->max_frame)
                rc = ERR_TOO_BIG;
            else
                rc = dispatch(c, in, len);
            if (rc != 0) {
                c->close_reason = rc;
                return -1;
            }
            return 0;
        }
        rc = rx_append(c, in, len);
        if (rc == 0 && last) {
            rc = dispatch(c, c->rx, c->rx_len);
            c->rx_len = 0;
            if (c->rx_cap > 65536) {
                /* do not keep a large frame's buffer for the whole run */
                free(c->rx);
                c->rx = NULL;
                c->rx_cap = 0;
            }
        }
        if (rc != 0) {
            c->close_reason = rc;
            return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->closing) {
            if (c->own) {
                /* lws cannot read the server's close while we hold the
                 * receive side. At a frame boundary, hand it back so lws
                 * closes as usual (close frame, the server's answer);
                 * after a read error or inside a frame, drop the TCP
                 * connection as lws does on errors */
                bool clean = !c->rx_cut && c->left_len == 0 && !c->dec.in_frag;
                rx_stop(c);
                if (!clean || lws_rx_flow_control(wsi, 1) < 0)
                    return -1;
            }
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        if (write_queue(c) != 0) {
            c->close_reason = ERR_IO;
            return -1;
        }
        if (c->out_head)
            lws_callback_on_writable(wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c->net->debug)
            fprintf(stderr, "sammen-bench: connect failed: %.*s\n",
                    in ? (int)strnlen(in, 150) : 4, in ? (const char *)in : "(na)");
        /* fall through */
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        lws_set_opaque_user_data(wsi, NULL);
        c->wsi = NULL;
        if (c->in_open)
            c->failed_in_open = true; /* bconn_open() reports it */
        else
            finish(c);
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"sammen.v1", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- context ---- */

int bnet_new(size_t max_frame, struct bnet **out)
{
    struct lws_context_creation_info info;
    void *loops[1];
    struct bnet *n;

    *out = NULL;
    n = calloc(1, sizeof(*n));
    if (!n)
        return ERR_NOMEM;
    n->max_frame = max_frame;
    n->debug = getenv("SAMMEN_BENCH_DEBUG") != NULL;
    /* SAMMEN_BENCH_LWS_RX=1: leave the receive side to lws (comparisons) */
    n->own_rx = getenv("SAMMEN_BENCH_LWS_RX") == NULL;
    lws_set_log_level(getenv("SAMMEN_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
    if (uv_loop_init(&n->loop) != 0) {
        free(n);
        return ERR_INTERNAL;
    }
    n->loop_ok = true;
    if (uvwake_init(&n->wake, &n->loop) != 0) {
        bnet_free(n);
        return ERR_INTERNAL;
    }
    n->wake_ok = true;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    loops[0] = &n->loop;
    /* connections are to loopback servers with ws://: no TLS setup */
    n->lws = lws_create_context(&info);
    if (!n->lws) {
        bnet_free(n);
        return ERR_INTERNAL;
    }
    *out = n;
    return 0;
}

void bnet_free(struct bnet *n)
{
    if (!n)
        return;
    if (n->debug && n->rxbuf)
        fprintf(stderr, "sammen-bench: %zu of %zu connections read by bench_net\n", n->owned,
                n->live);
    /* destroying the context closes every wsi; callback() finishes each.
     * On a foreign libuv loop lws 4.1 destroys in two steps: the first call
     * closes its uv handles, which finish on the loop; the second, once
     * they have, frees the rest (the per-thread fd tables). */
    if (n->lws) {
        lws_context_destroy(n->lws);
        for (int i = 0; i < 100 && uv_run(&n->loop, UV_RUN_NOWAIT); i++)
            ;
        lws_context_destroy(n->lws);
    }
    while (n->conns) {
        n->conns->wsi = NULL;
        finish(n->conns);
    }
    if (n->wake_ok)
        uvwake_close(&n->wake);
    if (n->loop_ok) {
        /* let lws's and our handles finish closing on the loop we own */
        while (uv_loop_close(&n->loop) == UV_EBUSY)
            uv_run(&n->loop, UV_RUN_NOWAIT);
    }
    free(n->rxbuf);
    free(n);
}

/* Writes what every listed connection queued (outside any callback). */
static void flush_all(struct bnet *n)
{
    struct bconn *wait = NULL;
    /* lws keeps bytes it read beyond a frame it was parsing (after the
     * upgrade's answer, say) in a list it serves on the next loop turn;
     * while any connection has such bytes, no takeover and no first write
     * (test_bench_net's nothing_lost_before_takeover) */
    bool lws_idle = !n->own_rx || lws_service_adjust_timeout(n->lws, 1, 0) != 0;

    while (n->flush) {
        struct bconn *c = n->flush;
        flush_unlink(c);
        if (!c->wsi || !c->open || c->closing || c->closed)
            continue; /* ESTABLISHED or the close path takes it from here */
        if (!c->own && !c->lws_rx_seen && !c->lws_rx_keep) {
            if (!lws_idle && ++c->waits < 100) {
                c->wnext = wait;
                wait = c;
                continue;
            }
            /* lws busy for 100 turns (never seen): the connection is
             * served as before rather than held up */
            if (lws_idle)
                own_rx(c);
            if (!c->own)
                c->lws_rx_keep = true;
        }
        if (write_queue(c) != 0) {
            /* lws closes it; the WRITEABLE callback ends it if not */
            c->close_reason = ERR_IO;
            c->closing = true;
            lws_callback_on_writable(c->wsi);
            continue;
        }
        if (c->out_head)
            lws_callback_on_writable(c->wsi);
    }
    while (wait) {
        struct bconn *c = wait;
        wait = c->wnext;
        flush_add(c); /* the next bnet_service() */
    }
}

int bnet_service(struct bnet *n, int timeout_ms)
{
    flush_all(n);
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (timeout_ms == 0) {
        (void)uv_run(&n->loop, UV_RUN_NOWAIT);
        return 0;
    }
    /* uvwake: the wait ends at the timeout even when it falls due before
     * uv_run() polls (this process was preempted in between; libuv 1.44
     * would then sleep until lws's next timer, up to 30 s) */
    uvwake_in_ms(&n->wake, (uint64_t)timeout_ms);
    uvwake_run_once(&n->wake);
    uvwake_cancel(&n->wake);
    return 0;
}

size_t bnet_live(const struct bnet *n)
{
    return n->live;
}

/* ---- connections ---- */

int bconn_open(struct bnet *n, const char *host, int port, const char *path, const char *iface,
               const struct bconn_cbs *cbs, void *user, struct bconn **out)
{
    struct lws_client_connect_info ci;
    struct bconn *c;
    struct lws *wsi;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    c->net = n;
    c->user = user;
    c->rxfd = -1;
    bws_dec_init(&c->dec, n->max_frame);
    if (cbs)
        c->cbs = *cbs;
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->live++;

    memset(&ci, 0, sizeof(ci));
    ci.context = n->lws;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = "sammen.v1";
    ci.iface = iface;
    ci.opaque_user_data = c;
    /* A connect that fails at once may run CONNECTION_ERROR inside this
     * call; in_open keeps c alive so the failure is reported here only. */
    c->in_open = true;
    wsi = lws_client_connect_via_info(&ci);
    c->in_open = false;
    if (!wsi || c->failed_in_open) {
        if (wsi)
            lws_set_opaque_user_data(wsi, NULL);
        c->cbs.on_close = NULL;
        finish(c);
        return ERR_IO;
    }
    c->wsi = wsi;
    *out = c;
    return 0;
}

void bconn_close(struct bconn *c)
{
    if (!c || c->closing || c->closed)
        return;
    c->closing = true;
    if (c->wsi && c->open)
        lws_callback_on_writable(c->wsi);
}

bool bconn_is_open(const struct bconn *c)
{
    return c->open && !c->closing && !c->closed;
}

uint32_t bconn_next_id(struct bconn *c)
{
    if (++c->next_id == 0)
        c->next_id = 1;
    return c->next_id;
}

unsigned bconn_pending(const struct bconn *c)
{
    return c->npend;
}

int bconn_request(struct bconn *c, uint32_t id, struct wire_enc *e, bconn_resp_fn *cb, void *arg)
{
    const uint8_t *data;
    size_t len;
    unsigned slot;
    int rc;

    if (c->closing || c->closed)
        return ERR_BADSTATE;
    if (c->npend >= BCONN_MAX_PENDING)
        return ERR_LIMIT;
    rc = wire_enc_finish(e, &data, &len);
    if (rc != 0)
        return rc;
    for (slot = 0; slot < BCONN_MAX_PENDING && c->pend[slot].id; slot++)
        ;
    rc = queue_frame(c, LWS_WRITE_BINARY, data, len);
    if (rc != 0)
        return rc;
    c->pend[slot].id = id;
    c->pend[slot].cb = cb;
    c->pend[slot].arg = arg;
    c->npend++;
    return 0;
}

int bconn_notify(struct bconn *c, struct wire_enc *e)
{
    const uint8_t *data;
    size_t len;
    int rc;

    if (c->closing || c->closed)
        return ERR_BADSTATE;
    rc = wire_enc_finish(e, &data, &len);
    if (rc != 0)
        return rc;
    return queue_frame(c, LWS_WRITE_BINARY, data, len);
}

bool bconn_rx_own(const struct bconn *c)
{
    return c->own;
}

size_t bnet_rx_owned(const struct bnet *n)
{
    return n->owned;
}
