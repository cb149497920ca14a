/*
 * deliver.c: inbox, sync, cumulative ack, delivery counts, offline limit,
 * and the events that go with them (see deliver.h).
 */
#include "deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "server.h"
#include "tstore.h"

#define DEV_MAX 32
#define THREAD_MAX 40 /* "t_" + 32 hex + NUL */
#define MEMBERS_MAX 4096

/* ---- events -------------------------------------------------------------- */

struct pend {
    struct pend *next;
    char device[DEV_MAX];
    size_t len;
    uint8_t data[];
};

static struct pend *pend_head, *pend_tail;

/* inbox sequence counters (see next_inbox_seq) */
struct seqslot {
    char device[DEV_MAX];
    uint64_t last;
    bool dirty;
};

static struct seqslot *seqtab;
static size_t seqcap, seqn;

/* Logged-in connections by device id: an open-addressing table built at
 * most once per loop iteration (deliver_iteration_end() drops it), so
 * fan-out costs O(1) per target device instead of a walk over every
 * connection. A connection that logs in later in the same iteration is
 * missed by pushes until the next one; it fetches with sync anyway. Entries
 * are re-checked (wsi, authed, device) on use; detached connections are
 * freed only after the iteration ends, so the pointers stay valid. */
static struct conn **idx;
static size_t idx_cap;
static bool idx_valid;

static size_t dev_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

static void idx_build(void)
{
    size_t n = 0, cap = 64;
    for (struct conn *c = srv.conns; c; c = c->next)
        n += c->authed && c->wsi;
    while (cap < 2 * n + 2)
        cap *= 2;
    if (cap != idx_cap) {
        struct conn **g = realloc(idx, cap * sizeof(*g));
        if (!g) {
            idx_valid = false; /* fall back to walking the list */
            return;
        }
        idx = g;
        idx_cap = cap;
    }
    memset(idx, 0, idx_cap * sizeof(*idx));
    for (struct conn *c = srv.conns; c; c = c->next) {
        if (!c->authed || !c->wsi)
            continue;
        size_t i = dev_hash(c->device) & (idx_cap - 1);
        while (idx[i])
            i = (i + 1) & (idx_cap - 1);
        idx[i] = c;
    }
    idx_valid = true;
}

void deliver_iteration_end(void)
{
    idx_valid = false;
}

void deliver_shutdown(void)
{
    free(idx);
    idx = NULL;
    idx_cap = 0;
    idx_valid = false;
    free(seqtab);
    seqtab = NULL;
    seqcap = seqn = 0;
}

/* Calls fn for every live, logged-in connection of device. */
static void each_conn(const char *device, void (*fn)(struct conn *c, void *ctx), void *ctx)
{
    if (!idx_valid)
        idx_build();
    if (!idx_valid) {
        for (struct conn *c = srv.conns; c; c = c->next)
            if (c->authed && c->wsi && strcmp(c->device, device) == 0)
                fn(c, ctx);
        return;
    }
    for (size_t i = dev_hash(device) & (idx_cap - 1); idx[i]; i = (i + 1) & (idx_cap - 1)) {
        struct conn *c = idx[i];
        if (c->authed && c->wsi && strcmp(c->device, device) == 0)
            fn(c, ctx);
    }
}

static void mark_online(struct conn *c, void *ctx)
{
    (void)c;
    *(bool *)ctx = true;
}

static bool device_online(const char *device)
{
    bool on = false;
    each_conn(device, mark_online, &on);
    return on;
}

static void send_pend(struct conn *c, void *ctx)
{
    const struct pend *p = ctx;
    (void)conn_send(c, p->data, p->len, 0, false, false);
}

int deliver_event(const char *device, const uint8_t *data, size_t len)
{
    if (!device_online(device))
        return 0;
    struct pend *p = malloc(sizeof(*p) + len);
    if (!p)
        return ERR_NOMEM;
    p->next = NULL;
    snprintf(p->device, sizeof(p->device), "%s", device);
    p->len = len;
    memcpy(p->data, data, len);
    if (pend_tail)
        pend_tail->next = p;
    else
        pend_head = p;
    pend_tail = p;
    return 0;
}

void deliver_flush(void)
{
    struct pend *p = pend_head;
    pend_head = pend_tail = NULL;
    while (p) {
        struct pend *next = p->next;
        each_conn(p->device, send_pend, p);
        free(p);
        p = next;
    }
}

void deliver_discard(void)
{
    struct pend *p = pend_head;
    pend_head = pend_tail = NULL;
    while (p) {
        struct pend *next = p->next;
        free(p);
        p = next;
    }
}

/* ---- inbox ----------------------------------------------------------------- */

/* Per-device inbox sequence numbers, counted in memory and written to
 * inbox_seq once per transaction (deliver_before_commit) instead of one
 * UPDATE per inbox row (that UPDATE was a third of thread.send's cost).
 * Only increasing matters, not contiguity: a rolled-back request or
 * transaction leaves the counters ahead of the store, which only makes a
 * gap; after a restart the store's value is at least every committed
 * seq, because it is written in the same transaction as the rows. */
static struct seqslot *seq_find(const char *device)
{
    for (size_t i = dev_hash(device) & (seqcap - 1);; i = (i + 1) & (seqcap - 1)) {
        if (!seqtab[i].device[0] || strcmp(seqtab[i].device, device) == 0)
            return &seqtab[i];
    }
}

static int seq_grow(void)
{
    size_t cap = seqcap ? seqcap * 2 : 1024;
    struct seqslot *old = seqtab, *t = calloc(cap, sizeof(*t));
    if (!t)
        return ERR_NOMEM;
    size_t oldcap = seqcap;
    seqtab = t;
    seqcap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].device[0])
            *seq_find(old[i].device) = old[i];
    free(old);
    return 0;
}

static int next_inbox_seq(const char *device, uint64_t *seq)
{
    int rc;
    if (strlen(device) >= DEV_MAX)
        return ERR_INVALID;
    if (2 * (seqn + 1) > seqcap && (rc = seq_grow()) != 0)
        return rc;
    struct seqslot *e = seq_find(device);
    if (!e->device[0]) {
        uint64_t last = 0;
        sqlite3_stmt *s = tq(Q_INBOX_SEQ_GET);
        rc = tq_text(s, 1, device);
        if (!rc)
            rc = tq_row(s);
        if (rc == 0) {
            last = tq_col_u64(s, 0);
            tq_done(s);
        } else if (rc != ERR_NOT_FOUND) {
            return rc;
        }
        snprintf(e->device, sizeof(e->device), "%s", device);
        e->last = last;
        e->dirty = false;
        seqn++;
    }
    e->last++;
    e->dirty = true;
    *seq = e->last;
    return 0;
}

int deliver_before_commit(void)
{
    for (size_t i = 0; i < seqcap; i++) {
        struct seqslot *e = &seqtab[i];
        if (!e->device[0] || !e->dirty)
            continue;
        sqlite3_stmt *s = tq(Q_INBOX_SEQ_PUT);
        int rc = tq_text(s, 1, e->device);
        if (!rc) rc = tq_u64(s, 2, e->last);
        if (!rc) rc = tq_run(s);
        if (rc)
            return rc;
        e->dirty = false;
    }
    return 0;
}

static void put_entry(struct wire_enc *e, uint64_t seq, const char *thread, uint64_t message,
                      const char *kind, const char *sender, const char *sender_device,
                      uint64_t time, const uint8_t *data, size_t len)
{
    wire_kv_uint(e, "seq", seq);
    wire_kv_str(e, "thread", thread);
    wire_kv_uint(e, "message", message);
    wire_kv_str(e, "kind", kind);
    wire_kv_str(e, "sender", sender);
    wire_kv_str(e, "device", sender_device);
    wire_kv_uint(e, "time", time);
    wire_kv_bin(e, "data", data, len);
}

static int push_entry(const char *device, uint64_t seq, const char *thread, uint64_t message,
                      const char *kind, const char *sender, const char *sender_device,
                      uint64_t time, const uint8_t *data, size_t len)
{
    if (!device_online(device))
        return 0;
    struct wire_enc e;
    const uint8_t *out;
    size_t olen;
    wire_enc_init(&e);
    wire_enc_event(&e, "entry", 8);
    put_entry(&e, seq, thread, message, kind, sender, sender_device, time, data, len);
    int rc = wire_enc_finish(&e, &out, &olen);
    if (!rc)
        rc = deliver_event(device, out, olen);
    wire_enc_reset(&e);
    return rc;
}

/* Inserts the row; data NULL refers to messages(thread, message); evdata is
 * what the pushed entry carries. */
static int inbox_insert(const char *device, const char *thread, uint64_t message,
                        const char *kind, const char *sender, const char *sender_device,
                        uint64_t now, const uint8_t *data, size_t len, const uint8_t *evdata,
                        size_t evlen, uint64_t *seq_out)
{
    uint64_t seq;
    int rc = next_inbox_seq(device, &seq);
    if (rc)
        return rc;
    sqlite3_stmt *s = tq(Q_INBOX_ADD);
    rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_text(s, 3, thread);
    if (!rc) rc = tq_u64(s, 4, message);
    if (!rc) rc = tq_text(s, 5, kind);
    if (!rc) rc = tq_text(s, 6, sender);
    if (!rc) rc = tq_text(s, 7, sender_device);
    if (!rc) rc = tq_u64(s, 8, now);
    if (!rc) rc = tq_blob(s, 9, data, len);
    if (!rc) rc = tq_run(s);
    if (!rc)
        rc = push_entry(device, seq, thread, message, kind, sender, sender_device, now, evdata,
                        evlen);
    if (!rc && seq_out)
        *seq_out = seq;
    return rc;
}

int deliver_inbox_add(const char *device, const char *thread, uint64_t message, const char *kind,
                      const char *sender, const char *sender_device, uint64_t now,
                      const uint8_t *data, size_t len, uint64_t *seq)
{
    return inbox_insert(device, thread, message, kind, sender, sender_device, now, data, len,
                        data, len, seq);
}

int deliver_thread_message(const char *thread, const char *kind, const char *sender,
                           const char *sender_device, uint64_t epoch, const uint8_t *data,
                           size_t len, uint64_t now, uint64_t *seq_out, uint32_t *targets_out)
{
    static char devs[MEMBERS_MAX][DEV_MAX];
    uint32_t n = 0;
    uint64_t seq = 0;
    int rc;

    /* the roster first (the member statement is not kept open while the
     * inbox statements run) */
    sqlite3_stmt *s = tq(Q_MEMBER_EACH);
    rc = tq_text(s, 1, thread);
    while (!rc && (rc = tq_row(s)) == 0) {
        char dev[DEV_MAX];
        tq_col_text(s, 0, dev, sizeof(dev));
        if (sqlite3_column_int(s, 4) != 0 || strcmp(dev, sender_device) == 0)
            continue;
        if (n == MEMBERS_MAX) {
            tq_done(s);
            return ERR_LIMIT;
        }
        memcpy(devs[n++], dev, DEV_MAX);
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;

    s = tq(Q_THREAD_NEXT_SEQ);
    rc = tq_text(s, 1, thread);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc == ERR_NOT_FOUND ? ERR_NOT_FOUND : rc;
    seq = tq_col_u64(s, 0);
    tq_done(s);

    s = tq(Q_MSG_ADD);
    rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_text(s, 3, kind);
    if (!rc) rc = tq_text(s, 4, sender);
    if (!rc) rc = tq_text(s, 5, sender_device);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_u64(s, 7, epoch);
    /* nobody to deliver to: keep no ciphertext */
    if (!rc) rc = tq_blob(s, 8, n ? data : NULL, len);
    if (!rc) rc = tq_u64(s, 9, n);
    if (!rc) rc = tq_run(s);
    for (uint32_t i = 0; !rc && i < n; i++)
        rc = inbox_insert(devs[i], thread, seq, kind, sender, sender_device, now, NULL, 0, data,
                          len, NULL);
    if (rc)
        return rc;
    if (seq_out)
        *seq_out = seq;
    if (targets_out)
        *targets_out = n;
    return 0;
}

int deliver_notice(const char *device, const char *thread, const char *type, uint64_t count,
                   const char *actor, const char *reason, uint64_t expires, uint64_t now)
{
    struct wire_enc e;
    const uint8_t *out;
    size_t olen;
    bool missed = strcmp(type, "missed") == 0, bg = strcmp(type, "breakglass") == 0;
    wire_enc_init(&e);
    wire_enc_map(&e, 2u + (missed ? 1u : 0u) + (bg ? 3u : 0u));
    wire_kv_str(&e, "type", type);
    wire_kv_str(&e, "thread", thread);
    if (missed)
        wire_kv_uint(&e, "count", count);
    if (bg) {
        wire_kv_str(&e, "actor", actor);
        wire_kv_str(&e, "reason", reason);
        wire_kv_uint(&e, "expires", expires);
    }
    int rc = wire_enc_finish(&e, &out, &olen);
    if (!rc)
        rc = inbox_insert(device, thread, 0, "notice", srv.server_cred, DELIVER_SERVER_DEVICE,
                          now, out, olen, out, olen, NULL);
    wire_enc_reset(&e);
    return rc;
}

/* ---- sync / ack ------------------------------------------------------------ */

int deliver_sync(const char *device, const char *identity, uint64_t after, uint32_t limit,
                 uint64_t now, struct wire_enc *e)
{
    static char logged[64][THREAD_MAX];
    uint32_t nlogged = 0, n = 0;
    bool more = false;
    int rc;

    /* count first (msgpack needs the array size up front) */
    sqlite3_stmt *s = tq(Q_INBOX_PAGE);
    rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, after);
    if (!rc) rc = tq_u64(s, 3, (uint64_t)limit + 1);
    while (!rc && (rc = tq_row(s)) == 0)
        n++;
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    if (n > limit) {
        more = true;
        n = limit;
    }
    wire_enc_key(e, "entries");
    wire_enc_array(e, n);
    s = tq(Q_INBOX_PAGE);
    rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, after);
    if (!rc) rc = tq_u64(s, 3, n);
    uint32_t got = 0;
    while (!rc && (rc = tq_row(s)) == 0) {
        char thread[THREAD_MAX], kind[16], sender[STORE_ID_MAX], sdev[DEV_MAX];
        tq_col_text(s, 1, thread, sizeof(thread));
        tq_col_text(s, 3, kind, sizeof(kind));
        tq_col_text(s, 4, sender, sizeof(sender));
        tq_col_text(s, 5, sdev, sizeof(sdev));
        const uint8_t *data = sqlite3_column_blob(s, 7);
        size_t dlen = (size_t)sqlite3_column_bytes(s, 7);
        wire_enc_map(e, 8);
        put_entry(e, tq_col_u64(s, 0), thread, tq_col_u64(s, 2), kind, sender, sdev,
                  tq_col_u64(s, 6), data, dlen);
        got++;
        /* history read: remembered once per thread in this page */
        if (strcmp(kind, "app") == 0) {
            bool seen = false;
            for (uint32_t i = 0; i < nlogged; i++)
                if (strcmp(logged[i], thread) == 0)
                    seen = true;
            if (!seen && nlogged < 64)
                memcpy(logged[nlogged++], thread, sizeof(thread));
        }
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    if (got != n)
        return ERR_INTERNAL;
    wire_kv_bool(e, "more", more);

    /* missed notices accumulated by the offline limit */
    uint32_t nm = 0;
    s = tq(Q_MISSED_EACH);
    rc = tq_text(s, 1, device);
    while (!rc && (rc = tq_row(s)) == 0)
        nm++;
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    wire_enc_key(e, "missed");
    wire_enc_array(e, nm);
    s = tq(Q_MISSED_EACH);
    rc = tq_text(s, 1, device);
    while (!rc && (rc = tq_row(s)) == 0) {
        char thread[THREAD_MAX];
        tq_col_text(s, 0, thread, sizeof(thread));
        wire_enc_map(e, 2);
        wire_kv_str(e, "thread", thread);
        wire_kv_uint(e, "count", tq_col_u64(s, 1));
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    if (nm) {
        s = tq(Q_MISSED_CLEAR);
        rc = tq_text(s, 1, device);
        if (!rc)
            rc = tq_run(s);
        if (rc)
            return rc;
    }

    /* access log: history synced, first time per device, thread and day */
    for (uint32_t i = 0; i < nlogged; i++) {
        s = tq(Q_HISTORY_READ);
        rc = tq_text(s, 1, device);
        if (!rc) rc = tq_text(s, 2, logged[i]);
        if (!rc) rc = tq_u64(s, 3, now / 86400);
        if (!rc) rc = tq_run(s);
        if (rc)
            return rc;
        if (tq_changes() == 1) {
            char citizen[STORE_ID_MAX];
            s = tq(Q_THREAD_GET);
            rc = tq_text(s, 1, logged[i]);
            if (!rc)
                rc = tq_row(s);
            if (rc)
                return rc == ERR_NOT_FOUND ? 0 : rc;
            tq_col_text(s, 0, citizen, sizeof(citizen));
            tq_done(s);
            char subject[64];
            snprintf(subject, sizeof(subject), "%s", device);
            rc = accesslog_add(now, citizen, logged[i], identity, "history_synced", subject);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Tells the sender's online devices that a message reached one more
 * device (delivered_to of devices). */
static int tell_delivered(const char *thread, uint64_t message, uint64_t acked, uint64_t targets,
                          const char *sender_dev)
{
    if (!sender_dev[0] || !device_online(sender_dev))
        return 0;
    struct wire_enc e;
    const uint8_t *out;
    size_t olen;
    wire_enc_init(&e);
    wire_enc_event(&e, "delivered", 4);
    wire_kv_str(&e, "thread", thread);
    wire_kv_uint(&e, "message", message);
    wire_kv_uint(&e, "delivered_to", acked);
    wire_kv_uint(&e, "devices", targets);
    int rc = wire_enc_finish(&e, &out, &olen);
    if (!rc)
        rc = deliver_event(sender_dev, out, olen);
    wire_enc_reset(&e);
    return rc;
}

int deliver_ack(const char *device, uint64_t seq)
{
    /* Three statements per ack, however many entries it covers (was a
     * query per entry): count every acknowledged message, drop the data of
     * those now complete, delete the inbox rows. The counted rows are
     * collected first and the events sent after (the RETURNING statement
     * must not stay open across the others). */
    struct ackrow {
        char thread[THREAD_MAX];
        char sender_dev[DEV_MAX];
        uint64_t message, acked, targets;
    };
    size_t n = 0, cap = 16;
    struct ackrow *rows = malloc(cap * sizeof(*rows));
    if (!rows)
        return ERR_NOMEM;
    sqlite3_stmt *s = tq(Q_MSG_ACK_UPTO);
    int rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, seq);
    while (!rc && (rc = tq_row(s)) == 0) {
        char kind[16];
        tq_col_text(s, 5, kind, sizeof(kind));
        if (strcmp(kind, "app") != 0)
            continue; /* counted; only application messages are reported */
        if (n == cap) {
            struct ackrow *g = realloc(rows, 2 * cap * sizeof(*rows));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            rows = g;
            cap *= 2;
        }
        tq_col_text(s, 0, rows[n].thread, sizeof(rows[n].thread));
        rows[n].message = tq_col_u64(s, 1);
        rows[n].acked = tq_col_u64(s, 2);
        rows[n].targets = tq_col_u64(s, 3);
        tq_col_text(s, 4, rows[n].sender_dev, sizeof(rows[n].sender_dev));
        n++;
    }
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    if (!rc) {
        s = tq(Q_MSG_DROP_ACKED);
        rc = tq_text(s, 1, device);
        if (!rc) rc = tq_u64(s, 2, seq);
        if (!rc) rc = tq_run(s);
    }
    if (!rc) {
        s = tq(Q_INBOX_DEL_UPTO);
        rc = tq_text(s, 1, device);
        if (!rc) rc = tq_u64(s, 2, seq);
        if (!rc) rc = tq_run(s);
    }
    for (size_t i = 0; !rc && i < n; i++)
        rc = tell_delivered(rows[i].thread, rows[i].message, rows[i].acked, rows[i].targets,
                            rows[i].sender_dev);
    free(rows);
    return rc;
}

/* ---- offline limit ----------------------------------------------------------- */

int deliver_sweep(uint64_t now, bool *did)
{
    struct due {
        char thread[THREAD_MAX];
        uint64_t seq;
    } due[200];
    size_t n = 0;
    uint64_t limit = srv.cfg.offline_days * 86400;
    *did = false;
    if (now <= limit)
        return 0;
    sqlite3_stmt *s = tq(Q_MSG_EXPIRED_DUE);
    int rc = tq_u64(s, 1, now - limit);
    while (!rc && (rc = tq_row(s)) == 0 && n < 200) {
        tq_col_text(s, 0, due[n].thread, sizeof(due[n].thread));
        due[n].seq = tq_col_u64(s, 1);
        n++;
    }
    if (rc == 0)
        tq_done(s);
    else if (rc != ERR_NOT_FOUND)
        return rc;
    if (n == 0)
        return 0;
    if (!store_in_txn(srv.store) && (rc = store_begin(srv.store)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        static char devs[MEMBERS_MAX][DEV_MAX];
        uint32_t nd = 0;
        s = tq(Q_INBOX_OF_MESSAGE);
        rc = tq_text(s, 1, due[i].thread);
        if (!rc) rc = tq_u64(s, 2, due[i].seq);
        while (!rc && (rc = tq_row(s)) == 0) {
            if (nd < MEMBERS_MAX)
                tq_col_text(s, 0, devs[nd++], DEV_MAX);
        }
        if (rc != ERR_NOT_FOUND)
            return rc ? rc : ERR_INTERNAL;
        for (uint32_t k = 0; k < nd; k++) {
            s = tq(Q_MISSED_ADD);
            rc = tq_text(s, 1, devs[k]);
            if (!rc) rc = tq_text(s, 2, due[i].thread);
            if (!rc) rc = tq_u64(s, 3, 1);
            if (!rc) rc = tq_run(s);
            if (!rc) rc = deliver_notice(devs[k], due[i].thread, "missed", 1, "", "", 0, now);
            if (rc)
                return rc;
        }
        s = tq(Q_INBOX_DEL_MESSAGE);
        rc = tq_text(s, 1, due[i].thread);
        if (!rc) rc = tq_u64(s, 2, due[i].seq);
        if (!rc) rc = tq_run(s);
        s = tq(Q_MSG_UNDELIVERABLE);
        if (!rc) rc = tq_text(s, 1, due[i].thread);
        if (!rc) rc = tq_u64(s, 2, due[i].seq);
        if (!rc) rc = tq_u64(s, 3, nd);
        if (!rc) rc = tq_run(s);
        s = tq(Q_MSG_DROP_DATA);
        if (!rc) rc = tq_text(s, 1, due[i].thread);
        if (!rc) rc = tq_u64(s, 2, due[i].seq);
        if (!rc) rc = tq_run(s);
        if (rc)
            return rc;
        log_info("delivery: thread %s message %llu dropped at the offline limit (%u devices)",
                 due[i].thread, (unsigned long long)due[i].seq, nd);
    }
    *did = true;
    return 0;
}
