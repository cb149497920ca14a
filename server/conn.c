/*
 * conn.c: per-connection state (see conn.h): frame reassembly up to
 * max_frame, the bounded outbound queue, and ending sessions.
 *
 * Queue bound: q_bytes counts the payload bytes waiting in q_head..q_tail.
 * A message that would take it past max_outq kills the connection (a slow
 * reader cannot grow server memory without bound); the kill is scheduled
 * with lws_set_timeout(LWS_TO_KILL_ASYNC), which is safe from any callback
 * on the service thread and needs no writable socket.
 *
 * Unauthenticated list: every connection starts on it (at the tail, with
 * last_rx = now) and moves to the tail on each inbound frame while it is
 * not logged in, so the list stays in order of last_rx and
 * conn_idle_sweep() only looks at its head. A login does not unlink (the
 * handlers set c->authed in many places): a logged-in connection leaves
 * the list when the sweep meets it at the head, or when it closes.
 */
#include "conn.h"

#include "lws_inc.h"
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "handle.h"
#include "log.h"
#include "strhash.h"
#include "wire.h"

static uint64_t next_serial = 1;
static struct conn *unauth_head, *unauth_tail;
/* Connections that queued output this iteration (conn_flush_all). */
static struct conn *flush_head;

/* Seconds of the clock that never jumps (not the shiftable test clock: an
 * idle limit is about the peer's real silence). */
static uint64_t mono_now(void)
{
    return mono_ns() / 1000000000u;
}

static void unauth_unlink(struct conn *c)
{
    if (!c->on_unauth)
        return;
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        unauth_head = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    else
        unauth_tail = c->uprev;
    c->uprev = c->unext = NULL;
    c->on_unauth = false;
}

/* (Re)files c at the tail of the unauthenticated list with last_rx = now. */
static void unauth_touch(struct conn *c, uint64_t now)
{
    c->last_rx = now;
    if (c->on_unauth && !c->unext)
        return; /* already the tail */
    unauth_unlink(c);
    c->uprev = unauth_tail;
    c->unext = NULL;
    if (unauth_tail)
        unauth_tail->unext = c;
    else
        unauth_head = c;
    unauth_tail = c;
    c->on_unauth = true;
}

struct conn *conn_new(struct lws *wsi)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->wsi = wsi;
    c->serial = next_serial++;
    if (!lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)))
        snprintf(c->peer, sizeof(c->peer), "?");
    c->next = srv.conns;
    srv.conns = c;
    srv.nconns++;
    unauth_touch(c, mono_now());
    return c;
}

/* ---- logged-in connections by device ---- */

static struct conn **dev_tab; /* chains through conn.dnext */
static size_t dev_cap, dev_n;

static void dev_unlink(struct conn *c)
{
    if (!c->on_dev)
        return;
    for (struct conn **pp = &dev_tab[c->dhash & (dev_cap - 1)]; *pp;
         pp = &(*pp)->dnext) {
        if (*pp == c) {
            *pp = c->dnext;
            break;
        }
    }
    c->dnext = NULL;
    c->on_dev = false;
    dev_n--;
    if (dev_n == 0) { /* the last one gone (shutdown, tests): give the table back */
        free(dev_tab);
        dev_tab = NULL;
        dev_cap = 0;
    }
}

/* Grows the table to keep chains short; a failed growth keeps the old
 * table (longer chains, same answers). False only when there is none. */
static bool dev_grow(void)
{
    if (dev_tab && dev_n < dev_cap)
        return true;
    size_t cap = dev_cap ? 2 * dev_cap : 256;
    struct conn **t = calloc(cap, sizeof(*t));
    if (!t)
        return dev_tab != NULL;
    for (size_t i = 0; i < dev_cap; i++) {
        struct conn *c = dev_tab[i];
        while (c) {
            struct conn *next = c->dnext;
            size_t h = c->dhash & (cap - 1);
            c->dnext = t[h];
            t[h] = c;
            c = next;
        }
    }
    free(dev_tab);
    dev_tab = t;
    dev_cap = cap;
    return true;
}

void conn_logout(struct conn *c)
{
    dev_unlink(c);
    c->authed = false;
}

void conn_login(struct conn *c, const char *identity, const char *device, const char *role)
{
    dev_unlink(c);
    c->authed = true;
    snprintf(c->identity, sizeof(c->identity), "%s", identity);
    snprintf(c->device, sizeof(c->device), "%s", device);
    snprintf(c->role, sizeof(c->role), "%s", role);
    c->dhash = str_hash(c->device);
    if (!dev_grow()) {
        /* no table and no memory for one: the connection works, but pushes
         * miss it until a later login; it fetches with sync */
        log_warn("conn %llu %s: not indexed for pushes (out of memory)",
                 (unsigned long long)c->serial, c->peer);
        return;
    }
    size_t h = c->dhash & (dev_cap - 1);
    c->dnext = dev_tab[h];
    dev_tab[h] = c;
    c->on_dev = true;
    dev_n++;
}

void conn_each_device_h(const char *device, size_t hash, void (*fn)(struct conn *c, void *ctx),
                        void *ctx)
{
    if (!dev_tab)
        return;
    for (struct conn *c = dev_tab[hash & (dev_cap - 1)], *next; c; c = next) {
        next = c->dnext; /* fn may end c's session */
        /* only live, logged-in connections are linked: kill, detach and
         * every end of a session unlink first (conn_logout) */
        if (c->dhash == hash && strcmp(c->device, device) == 0)
            fn(c, ctx);
    }
}

void conn_each_device(const char *device, void (*fn)(struct conn *c, void *ctx), void *ctx)
{
    conn_each_device_h(device, str_hash(device), fn, ctx);
}

static void free_queue(struct conn *c)
{
    struct outmsg *m = c->q_head;
    while (m) {
        struct outmsg *n = m->next;
        outmsg_free(m);
        m = n;
    }
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
}

void conn_detach(struct conn *c)
{
    for (struct conn **pp = &srv.conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            srv.nconns--;
            break;
        }
    }
    unauth_unlink(c);
    conn_logout(c);
    c->wsi = NULL;
    free_queue(c);
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    c->next = srv.dead;
    srv.dead = c;
}

void conn_free(struct conn *c)
{
    if (!c)
        return;
    dev_unlink(c); /* detached ones are unlinked already */
    if (c->on_flush) { /* not reached from server_commit(): it flushes first */
        for (struct conn **pp = &flush_head; *pp; pp = &(*pp)->fnext) {
            if (*pp == c) {
                *pp = c->fnext;
                break;
            }
        }
    }
    free_queue(c);
    free(c->rx);
    free(c);
}

static void kill_conn(struct conn *c, const char *why)
{
    if (c->killed || !c->wsi)
        return;
    log_warn("conn %llu %s: closing: %s", (unsigned long long)c->serial, c->peer, why);
    c->killed = true;
    conn_logout(c);
    free_queue(c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    /* the WRITEABLE callback closes a killed conn at once; on the libuv
     * loop the zero timeout alone can wait for lws's next timer tick */
    lws_callback_on_writable(c->wsi);
}

void conn_enqueue(struct conn *c, struct outmsg *m)
{
    m->next = NULL;
    m->conn = NULL;
    if (!c->wsi || c->killed) {
        outmsg_free(m);
        return;
    }
    if (c->q_bytes + m->len > srv.cfg.max_outq) {
        outmsg_free(m);
        kill_conn(c, "outbound queue full (slow reader)");
        return;
    }
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
    c->q_bytes += m->len;
    if (!c->on_flush) {
        c->on_flush = true;
        c->fnext = flush_head;
        flush_head = c;
    }
}

static int queue_msg(struct conn *c, const uint8_t *data, size_t len, struct outbody *body,
                     uint32_t id, bool is_ok, bool is_event, bool close_after);

int conn_send(struct conn *c, const uint8_t *data, size_t len, uint32_t id, bool is_ok,
              bool close_after)
{
    return queue_msg(c, data, len, NULL, id, is_ok, false, close_after);
}

int conn_send_event(struct conn *c, const uint8_t *data, size_t len)
{
    return queue_msg(c, data, len, NULL, 0, false, true, false);
}

int conn_send_event_shared(struct conn *c, struct outbody *b)
{
    return queue_msg(c, NULL, 0, b, 0, false, true, false);
}

struct outbody *outbody_new(const uint8_t *data, size_t len)
{
    struct outbody *b = malloc(sizeof(*b) + LWS_PRE + len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = len;
    memcpy(b->buf + LWS_PRE, data, len);
    return b;
}

void outbody_unref(struct outbody *b)
{
    if (b && --b->refs == 0)
        free(b);
}

void outmsg_free(struct outmsg *m)
{
    if (!m)
        return;
    outbody_unref(m->body);
    free(m);
}

/* The payload of m (LWS_PRE bytes before it are ours for lws's header;
 * a shared body gets the same header bytes from every writer, and lws
 * does not change the payload of an unmasked server frame). */
static uint8_t *payload(struct outmsg *m)
{
    return (m->body ? m->body->buf : m->buf) + LWS_PRE;
}

/* Queues data (copied) or, with body, a reference to the shared body. */
static int queue_msg(struct conn *c, const uint8_t *data, size_t len, struct outbody *body,
                     uint32_t id, bool is_ok, bool is_event, bool close_after)
{
    if (!c->wsi || c->killed)
        return 0;
    struct outmsg *m = malloc(sizeof(*m) + (body ? 0 : LWS_PRE + len));
    if (!m) {
        kill_conn(c, "out of memory");
        return ERR_NOMEM;
    }
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->is_ok = is_ok;
    m->is_event = is_event;
    m->close_after = close_after;
    if (body) {
        body->refs++;
        m->body = body;
        m->len = body->len;
    } else {
        m->len = len;
        memcpy(m->buf + LWS_PRE, data, len);
    }
    if (store_in_txn(srv.store)) {
        /* held until the iteration's transaction commits (server_commit) */
        m->conn = c;
        if (srv.held_tail)
            srv.held_tail->next = m;
        else
            srv.held_head = m;
        srv.held_tail = m;
        return 0;
    }
    conn_enqueue(c, m);
    return c->killed ? ERR_LIMIT : 0;
}

void conn_send_err(struct conn *c, uint32_t id, const char *code, const char *msg,
                   bool close_after)
{
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    wire_enc_init(&e);
    wire_enc_err(&e, id, code, msg);
    if (wire_enc_finish(&e, &data, &len) == 0)
        (void)conn_send(c, data, len, id, false, close_after);
    else
        kill_conn(c, "cannot encode error");
    wire_enc_reset(&e);
    if (close_after)
        c->ignore_input = true; /* the close follows once the answer is sent */
}

void conn_end_session(struct conn *c, const char *reason)
{
    if (!c->wsi || c->killed)
        return;
    log_info("conn %llu %s: session %s/%s ended: %s", (unsigned long long)c->serial, c->peer,
             c->identity, c->device, reason);
    conn_logout(c);
    c->ignore_input = true;
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    wire_enc_init(&e);
    wire_enc_event(&e, "session.ended", 1);
    wire_kv_str(&e, "reason", reason);
    if (wire_enc_finish(&e, &data, &len) == 0)
        (void)conn_send(c, data, len, 0, false, true);
    else
        kill_conn(c, "cannot encode event");
    wire_enc_reset(&e);
    /* backstop: a peer that never reads cannot keep the session open */
    if (c->wsi && !c->killed)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

/* Bytes (payload + frame headers) one write call carries when several
 * queued messages go out together: lws_issue_raw() hands at most
 * rx_buffer_size + LWS_PRE + 4 bytes (ws.c: 64 KiB) to the socket per call
 * and copies the rest into its own buffer, so a batch stays under that. */
#define RAW_BATCH_BYTES (64u * 1024u)
/* Bytes one connection may write per call of write_queue(): enough to empty
 * a fan-out's queue in one go, small enough that one busy connection does
 * not hold up the others. */
#define WRITE_BUDGET_BYTES (256u * 1024u)

static uint8_t raw_batch[LWS_PRE + RAW_BATCH_BYTES];

/* RFC 6455 5.2 header of an unmasked, final binary frame of len bytes.
 * Batch members are at most RAW_BATCH_BYTES - 10 bytes, so the 8-byte
 * length is not used today (bigger messages go out alone, framed by lws);
 * integration/test_write_batch checks the other two at their boundaries. */
static size_t frame_header(uint8_t *p, size_t len)
{
    p[0] = 0x82;
    if (len < 126) {
        p[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        p[1] = 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Takes m off the head of c's queue (the caller frees it). */
static struct outmsg *pop_head(struct conn *c)
{
    struct outmsg *m = c->q_head;
    c->q_head = m->next;
    if (!c->q_head)
        c->q_tail = NULL;
    c->q_bytes -= m->len;
    return m;
}

/* Writes queued messages while lws has nothing of ours left over from a
 * short write (lws_partial_buffered(): no syscall) and the budget lasts.
 * One message goes out with lws_write(BINARY) from its own buffer; two or
 * more that fit RAW_BATCH_BYTES are framed here, side by side, and go out
 * as one raw write (one send() and one TCP segment train instead of one
 * per message). lws keeps what the socket did not take and asks for
 * WRITEABLE itself. Returns -1 when the write failed. */
static int write_queue(struct conn *c)
{
    size_t budget = 0;
    while (c->q_head && !c->closing && budget < WRITE_BUDGET_BYTES &&
           !lws_partial_buffered(c->wsi)) {
        struct outmsg *m = c->q_head;
        size_t total = 0, k = 0;
        for (struct outmsg *x = m; x && !x->close_after; x = x->next) {
            size_t need = x->len + 10;
            if (total + need > RAW_BATCH_BYTES)
                break;
            total += need;
            k++;
        }
        int n;
        if (k < 2) {
            m = pop_head(c);
            bool close_after = m->close_after;
            budget += m->len;
            n = lws_write(c->wsi, payload(m), m->len, LWS_WRITE_BINARY);
            outmsg_free(m);
            if (close_after)
                c->closing = true;
        } else {
            uint8_t *p = raw_batch + LWS_PRE;
            size_t off = 0;
            for (size_t i = 0; i < k; i++) {
                m = pop_head(c);
                off += frame_header(p + off, m->len);
                memcpy(p + off, payload(m), m->len);
                off += m->len;
                outmsg_free(m);
            }
            budget += off;
            n = lws_write(c->wsi, p, off, LWS_WRITE_RAW);
        }
        if (n < 0) {
            log_warn("conn %llu %s: write failed", (unsigned long long)c->serial, c->peer);
            return -1;
        }
    }
    return 0;
}

int conn_writeable(struct conn *c)
{
    if (c->killed)
        return -1;
    if (write_queue(c) < 0)
        return -1;
    if (c->closing && !lws_partial_buffered(c->wsi)) {
        /* the close_after message is out: what was queued behind it is
         * not sent (the session is over), and the connection closes */
        free_queue(c);
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    if (c->q_head)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void conn_flush_all(void)
{
    while (flush_head) {
        struct conn *c = flush_head;
        flush_head = c->fnext;
        c->fnext = NULL;
        c->on_flush = false;
        if (!c->wsi || c->killed)
            continue;
        if (write_queue(c) < 0) {
            kill_conn(c, "write failed");
            continue;
        }
        /* the rest (and a close after the last message) from WRITEABLE */
        if (c->q_head || c->closing)
            lws_callback_on_writable(c->wsi);
    }
}

void conn_idle_sweep(void)
{
    uint64_t now = mono_now();
    uint64_t limit = srv.cfg.unauth_timeout;
    while (unauth_head) {
        struct conn *c = unauth_head;
        if (c->authed || c->killed || !c->wsi) {
            unauth_unlink(c); /* logged in (or going) since: not our business */
            continue;
        }
        if (now - c->last_rx < limit)
            break; /* the rest of the list is newer */
        unauth_unlink(c);
        log_info("conn %llu %s: closing: no login and nothing received for %llu s",
                 (unsigned long long)c->serial, c->peer, (unsigned long long)limit);
        c->killed = true;
        free_queue(c);
        /* outside any callback: the WRITEABLE callback closes it (returns
         * -1 for a killed conn) on the next loop iteration; the timeout is
         * the backstop */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        lws_callback_on_writable(c->wsi);
    }
}

int conn_receive(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
                 bool binary)
{
    if (c->ignore_input || c->killed)
        return 0; /* answered already; the rest is ignored until we close */
    if (!c->authed)
        unauth_touch(c, mono_now());
    if (first) {
        c->rx_len = 0;
        if (!binary) {
            log_warn("conn %llu %s: text frame refused", (unsigned long long)c->serial,
                     c->peer);
            conn_send_err(c, 0, "malformed", "text frames are not accepted; send binary msgpack",
                          true);
            return 0;
        }
    }
    if (len > srv.cfg.max_frame - c->rx_len) {
        log_warn("conn %llu %s: frame over max_frame (%llu)", (unsigned long long)c->serial,
                 c->peer, (unsigned long long)srv.cfg.max_frame);
        conn_send_err(c, 0, "too_big", "frame exceeds the server's max_frame", true);
        return 0;
    }
    if (first && final) {
        /* the whole message in one piece (the usual case): handle it where
         * lws put it. No copy, and an idle session keeps no buffer. */
        handle_frame(c, in, len);
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > srv.cfg.max_frame)
            cap = srv.cfg.max_frame;
        uint8_t *nb = realloc(c->rx, cap);
        if (!nb) {
            kill_conn(c, "out of memory");
            return -1;
        }
        c->rx = nb;
        c->rx_cap = cap;
    }
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!final)
        return 0;
    handle_frame(c, c->rx, c->rx_len);
    c->rx_len = 0;
    /* fragmented messages are rare: keep no buffer between them */
    free(c->rx);
    c->rx = NULL;
    c->rx_cap = 0;
    return 0;
}
