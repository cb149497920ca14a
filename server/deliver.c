/*
 * deliver.c: inbox, sync, cumulative ack, delivery counts, offline limit,
 * and the events that go with them (see deliver.h).
 */
#include "deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "clock.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "server.h"
#include "hot.h"
#include "strhash.h"
#include "tstore.h"
#include "ws.h"

#define DEV_MAX 32
#define THREAD_MAX 40 /* "t_" + 32 hex + NUL */
#define MEMBERS_MAX 4096

/* ---- events -------------------------------------------------------------- */

struct pend {
    struct pend *next;
    char device[DEV_MAX];
    size_t hash;          /* str_hash(device) */
    struct outbody *body; /* shared bytes (an entry for every recipient), or */
    size_t len;
    uint8_t data[];       /* its own copy */
};

static struct pend *pend_head, *pend_tail;

/* The server-wide entry sequence (see next_gseq) */
static uint64_t gseq_last;
static bool gseq_loaded, gseq_dirty;

/* Whether the store still holds v2 inbox rows for thread messages: looked
 * up once; none are ever added, so "none" stays true until shutdown. */
static enum { V2_UNKNOWN, V2_SOME, V2_NONE } v2_rows;

/* Acks that moved a device's cursor over pending messages of a thread
 * since the last settle: settled once per thread in deliver_before_commit
 * (counts, `delivered` events, ciphertext drops), at most every
 * cfg.settle_ms, so that a sender gets one `delivered` per message for the
 * acks of that time and a drop covers more messages. The acks themselves
 * (cursors) are written at once; what waits is only their consequences. */
struct touch {
    char thread[THREAD_MAX];
    char device[DEV_MAX];
    uint64_t from, to; /* the cursor moved from `from` to `to` */
};

static struct touch *touches;
static size_t ntouch, touchcap;
static uint64_t last_settle_us; /* mono_us() of the last settle */

static void cache_free(void);

void deliver_shutdown(void)
{
    free(touches);
    touches = NULL;
    ntouch = touchcap = 0;
    last_settle_us = 0;
    cache_free();
    gseq_loaded = gseq_dirty = false;
    v2_rows = V2_UNKNOWN;
    gseq_last = 0;
}

static void mark_online(struct conn *c, void *ctx)
{
    (void)c;
    *(bool *)ctx = true;
}

/* device's hash (str_hash) given: see conn_each_device_h */
static bool device_online_h(const char *device, size_t hash)
{
    bool on = false;
    conn_each_device_h(device, hash, mark_online, &on);
    return on;
}

static bool device_online(const char *device)
{
    return device_online_h(device, str_hash(device));
}

static void send_pend(struct conn *c, void *ctx)
{
    struct pend *p = ctx;
    if (p->body)
        (void)conn_send_event_shared(c, p->body);
    else
        (void)conn_send_event(c, p->data, p->len);
}

static void pend_free(struct pend *p)
{
    outbody_unref(p->body);
    free(p);
}

/* Queues an event for device's connections (released by deliver_flush):
 * a copy of data, or a reference to body when body is not NULL. hash is
 * str_hash(device). */
static int pend_add(const char *device, size_t hash, const uint8_t *data, size_t len,
                    struct outbody *body)
{
    size_t dl = strlen(device);
    if (dl >= DEV_MAX)
        return ERR_INVALID;
    struct pend *p = malloc(sizeof(*p) + (body ? 0 : len));
    if (!p)
        return ERR_NOMEM;
    p->next = NULL;
    memcpy(p->device, device, dl + 1);
    p->hash = hash;
    p->body = body;
    if (body) {
        body->refs++;
        p->len = body->len;
    } else {
        p->len = len;
        memcpy(p->data, data, len);
    }
    if (pend_tail)
        pend_tail->next = p;
    else
        pend_head = p;
    pend_tail = p;
    return 0;
}

int deliver_event(const char *device, const uint8_t *data, size_t len)
{
    size_t hash = str_hash(device);
    if (!device_online_h(device, hash))
        return 0;
    return pend_add(device, hash, data, len, NULL);
}

void deliver_flush(void)
{
    struct pend *p = pend_head;
    pend_head = pend_tail = NULL;
    while (p) {
        struct pend *next = p->next;
        conn_each_device_h(p->device, p->hash, send_pend, p);
        pend_free(p);
        p = next;
    }
}

void deliver_discard(void)
{
    struct pend *p = pend_head;
    pend_head = pend_tail = NULL;
    while (p) {
        struct pend *next = p->next;
        pend_free(p);
        p = next;
    }
}

/* ---- inbox ----------------------------------------------------------------- */

/* The entry sequence: one server-wide counter for every stored thread
 * message and every inbox row (welcome, notice), so that it serves as each
 * device's entry seq ("per device, increasing, never reused; there may be
 * gaps"). Counted in memory and written to delivery_seq once per
 * transaction (deliver_before_commit). A rolled-back request or
 * transaction leaves the counter ahead of the store, which only makes a
 * gap; after a restart the store's value is at least every committed seq,
 * because it is written in the same transaction as the rows. */
static int gseq_load(void)
{
    if (gseq_loaded)
        return 0;
    sqlite3_stmt *s = tq(Q_GSEQ_GET);
    int rc = tq_row(s);
    if (rc)
        return rc == ERR_NOT_FOUND ? ERR_INTERNAL : rc;
    gseq_last = tq_col_u64(s, 0);
    tq_done(s);
    gseq_loaded = true;
    return 0;
}

static int next_gseq(uint64_t *seq)
{
    int rc = gseq_load();
    if (rc)
        return rc;
    *seq = ++gseq_last;
    gseq_dirty = true;
    return 0;
}

/* A device's membership windows of one thread (member_windows): it gets
 * the thread's messages with after < seq <= upto (open: no upto) that it
 * did not send. */
struct win {
    char device[DEV_MAX];
    uint64_t after, upto, cursor;
    bool open;
};

static bool win_covers(const struct win *w, uint64_t seq, const char *sender_dev)
{
    return w->after < seq && (w->open || seq <= w->upto) && strcmp(w->device, sender_dev) != 0;
}

/* Loads the windows of thread (with each device's cursor) into *out
 * (caller frees). */
static int load_windows(const char *thread, struct win **out, size_t *nout)
{
    size_t n = 0, cap = 16;
    struct win *v = malloc(cap * sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    sqlite3_stmt *s = tq(Q_WIN_OF_THREAD);
    int rc = tq_text(s, 1, thread);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (n == cap) {
            struct win *g = realloc(v, 2 * cap * sizeof(*v));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            v = g;
            cap *= 2;
        }
        tq_col_text(s, 0, v[n].device, sizeof(v[n].device));
        v[n].after = tq_col_u64(s, 1);
        v[n].open = sqlite3_column_int(s, 2) != 0;
        v[n].upto = tq_col_u64(s, 3);
        v[n].cursor = tq_col_u64(s, 4);
        n++;
    }
    if (rc != ERR_NOT_FOUND) {
        free(v);
        return rc ? rc : ERR_INTERNAL;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* Recipients of message (seq, gseq) from sender_dev that have it (cursor
 * at or past it) and that do not (yet). */
static void count_message(const struct win *w, size_t nw, uint64_t seq, uint64_t gseq,
                          const char *sender_dev, uint64_t *have, uint64_t *lag)
{
    *have = *lag = 0;
    for (size_t i = 0; i < nw; i++) {
        if (!win_covers(&w[i], seq, sender_dev))
            continue;
        if (w[i].cursor >= gseq)
            (*have)++;
        else
            (*lag)++;
    }
}

/* ---- the acknowledgement path's caches -------------------------------------- */

/* What the ack path used to read from the store again and again is kept in
 * memory (PERFORMANCE.md "The acknowledgement path (session 3)"):
 *  - per device: its cursor, a mirror of delivery_cursors (every move is
 *    still written at once, so the cache never holds what the store does
 *    not), and the threads where it has windows;
 *  - per thread: its windows (cursors come from the device entries) and
 *    its pending messages (ciphertext kept), read incrementally: only the
 *    rows after the last entry seq already listed.
 * Windows and device thread lists are valid while tstore_windows_gen() is
 * unchanged: every write to member_windows (the thread_members triggers
 * included) bumps it. Everything is forgotten (cache_epoch) when a
 * savepoint or the transaction was rolled back (store_rollbacks() moved),
 * since the store then went back to a state the caches may have passed,
 * and at shutdown; the offline limit forgets a thread's pending
 * list when it drops data. Entries are allocated once and reused; a table
 * that reaches its maximum is emptied. */

struct pmsg {
    uint64_t seq, gseq, targets, undeliverable;
    char device[DEV_MAX];
    bool app;
};

struct dev_ent {
    char device[DEV_MAX]; /* the key: first member (ctab) */
    uint64_t epoch;
    bool has_cursor, has_threads;
    uint64_t cursor;
    uint64_t inbox_empty_gen; /* tstore_inbox_gen() when the device was seen
                                 to have no inbox rows left; 0: not known */
    uint64_t threads_gen;
    char (*threads)[THREAD_MAX];
    size_t nthreads, tcap;
};

struct thr_ent {
    char thread[THREAD_MAX]; /* the key: first member (ctab) */
    uint64_t epoch;
    bool has_num, has_wins, has_pend;
    uint64_t num;        /* threads.num (hot.c): the key in `messages` */
    uint64_t wins_gen;
    struct win *w;
    size_t nw, wcap;
    bool pend_dirty;     /* messages were stored in the thread since pm was read */
    uint64_t pend_after; /* every pending message up to this gseq is in pm */
    struct pmsg *pm;
    size_t np, pcap;
};

#define DEV_CACHE_MAX (1u << 20)
#define THR_CACHE_MAX (1u << 18)
#define PEND_CACHE_MAX 4096 /* a longer pending list is read again per settle */

/* Open addressing over pointers to entries whose first member is the key */
struct ctab {
    void **slot;
    size_t cap, n;
};

static struct ctab devs_c, thrs_c;
static uint64_t cache_epoch = 1;
static uint64_t seen_rollbacks; /* store_rollbacks() when last looked at */

/* A rollback (of a failed request's savepoint or of the transaction) may
 * have reverted rows the caches hold: everything is forgotten then. */
static void cache_check(void)
{
    uint64_t rb = srv.store ? store_rollbacks(srv.store) : 0;
    if (rb != seen_rollbacks) {
        seen_rollbacks = rb;
        cache_epoch++;
    }
}

static void *ctab_find(const struct ctab *t, const char *key)
{
    if (!t->cap)
        return NULL;
    for (size_t i = str_hash(key) & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1))
        if (strcmp((const char *)t->slot[i], key) == 0)
            return t->slot[i];
    return NULL;
}

static void ctab_place(void **slot, size_t cap, void *e)
{
    size_t i = str_hash((const char *)e) & (cap - 1);
    while (slot[i])
        i = (i + 1) & (cap - 1);
    slot[i] = e;
}

static void dev_ent_free(void *p)
{
    struct dev_ent *d = p;
    free(d->threads);
    free(d);
}

static void thr_ent_free(void *p)
{
    struct thr_ent *t = p;
    free(t->w);
    free(t->pm);
    free(t);
}

static void ctab_free(struct ctab *t, void (*fr)(void *))
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i])
            fr(t->slot[i]);
    free(t->slot);
    t->slot = NULL;
    t->cap = t->n = 0;
}

/* Adds e (not yet in t): 0 or ERR_NOMEM (e not added). At max entries the
 * table is emptied first. */
static int ctab_add(struct ctab *t, void *e, size_t max, void (*fr)(void *))
{
    if (t->n >= max)
        ctab_free(t, fr);
    if (2 * (t->n + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        void **s = calloc(cap, sizeof(*s));
        if (!s)
            return ERR_NOMEM;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i])
                ctab_place(s, cap, t->slot[i]);
        free(t->slot);
        t->slot = s;
        t->cap = cap;
    }
    ctab_place(t->slot, t->cap, e);
    t->n++;
    return 0;
}

/* The device's entry (created), NULL if device is too long or memory is
 * short (callers then read the store). */
static struct dev_ent *dev_get(const char *device)
{
    if (strlen(device) >= DEV_MAX)
        return NULL;
    cache_check();
    struct dev_ent *d = ctab_find(&devs_c, device);
    if (!d) {
        d = calloc(1, sizeof(*d));
        if (!d)
            return NULL;
        memcpy(d->device, device, strlen(device) + 1);
        d->epoch = cache_epoch;
        if (ctab_add(&devs_c, d, DEV_CACHE_MAX, dev_ent_free) != 0) {
            free(d);
            return NULL;
        }
    }
    if (d->epoch != cache_epoch) {
        d->epoch = cache_epoch;
        d->has_cursor = d->has_threads = false;
        d->inbox_empty_gen = 0;
    }
    return d;
}

static struct thr_ent *thr_get(const char *thread)
{
    if (strlen(thread) >= THREAD_MAX)
        return NULL;
    cache_check();
    struct thr_ent *t = ctab_find(&thrs_c, thread);
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t)
            return NULL;
        memcpy(t->thread, thread, strlen(thread) + 1);
        t->epoch = cache_epoch;
        if (ctab_add(&thrs_c, t, THR_CACHE_MAX, thr_ent_free) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->epoch != cache_epoch) {
        t->epoch = cache_epoch;
        t->has_num = t->has_wins = t->has_pend = false;
    }
    return t;
}

/* The thread's number, kept in its entry (a number never changes; a
 * rollback, which could undo a new thread, forgets it with the rest) */
static int thr_num(struct thr_ent *t)
{
    if (t->has_num)
        return 0;
    int rc = hot_num(t->thread, &t->num);
    if (!rc)
        t->has_num = true;
    return rc;
}

/* Forgets every cached value (O(1): entries are reset when next used). */

static void cache_free(void)
{
    ctab_free(&devs_c, dev_ent_free);
    ctab_free(&thrs_c, thr_ent_free);
    cache_epoch++;
}

/* The device's cursor: the entry seq it acknowledged last (0: none). */
static int cursor_get(const char *device, uint64_t *cursor)
{
    struct dev_ent *d = dev_get(device);
    if (d && d->has_cursor) {
        *cursor = d->cursor;
        return 0;
    }
    sqlite3_stmt *s = tq(Q_CURSOR_GET);
    int rc = tq_text(s, 1, device);
    if (!rc)
        rc = tq_row(s);
    *cursor = 0;
    if (rc && rc != ERR_NOT_FOUND)
        return rc;
    if (!rc) {
        *cursor = tq_col_u64(s, 0);
        tq_done(s);
    }
    if (d) {
        d->cursor = *cursor;
        d->has_cursor = true;
    }
    return 0;
}

/* Moves the device's cursor to `to` (above its current one) in the store
 * and in the cache. */
static int cursor_put(const char *device, uint64_t to)
{
    sqlite3_stmt *s = tq(Q_CURSOR_PUT);
    int rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, to);
    if (!rc) rc = tq_run(s);
    struct dev_ent *d = rc ? NULL : dev_get(device);
    if (d && d->has_cursor && d->cursor < to)
        d->cursor = to; /* the store keeps the max of the two */
    return rc;
}

/* The threads where the device has windows (once per window): *out stays
 * valid until the next dev_get / cursor call. */
static int dev_threads(const char *device, struct dev_ent **out)
{
    struct dev_ent *d = dev_get(device);
    if (!d)
        return ERR_NOMEM;
    uint64_t gen = tstore_windows_gen();
    if (d->has_threads && d->threads_gen == gen) {
        *out = d;
        return 0;
    }
    d->has_threads = false;
    d->nthreads = 0;
    sqlite3_stmt *s = tq(Q_WIN_OF_DEVICE);
    int rc = tq_text(s, 1, device);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (d->nthreads == d->tcap) {
            size_t nc = d->tcap ? 2 * d->tcap : 4;
            char(*g)[THREAD_MAX] = realloc(d->threads, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            d->threads = g;
            d->tcap = nc;
        }
        tq_col_text(s, 0, d->threads[d->nthreads], THREAD_MAX);
        d->nthreads++;
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    d->threads_gen = gen;
    d->has_threads = true;
    *out = d;
    return 0;
}

/* The thread's windows (cursors not filled in) */
static int thr_windows(struct thr_ent *t)
{
    uint64_t gen = tstore_windows_gen();
    if (t->has_wins && t->wins_gen == gen)
        return 0;
    t->has_wins = false;
    t->nw = 0;
    sqlite3_stmt *s = tq(Q_WIN_ONLY);
    int rc = tq_text(s, 1, t->thread);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (t->nw == t->wcap) {
            size_t nc = t->wcap ? 2 * t->wcap : 16;
            struct win *g = realloc(t->w, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            t->w = g;
            t->wcap = nc;
        }
        struct win *w = &t->w[t->nw++];
        tq_col_text(s, 0, w->device, sizeof(w->device));
        w->after = tq_col_u64(s, 1);
        w->open = sqlite3_column_int(s, 2) != 0;
        w->upto = tq_col_u64(s, 3);
        w->cursor = 0;
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    t->wins_gen = gen;
    t->has_wins = true;
    return 0;
}

/* Brings the thread's pending list up to date: the messages stored since
 * it was read last (all of them the first time). */
static int thr_pending(struct thr_ent *t)
{
    if (!t->has_pend) {
        t->np = 0;
        t->pend_after = 0;
    }
    t->has_pend = false; /* until the read below completes */
    int rc = thr_num(t);
    if (rc)
        return rc;
    sqlite3_stmt *s = tq(Q_MSG_PENDING);
    rc = tq_u64(s, 1, t->num);
    if (!rc) rc = tq_u64(s, 2, t->pend_after);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (t->np == t->pcap) {
            size_t nc = t->pcap ? 2 * t->pcap : 32;
            struct pmsg *g = realloc(t->pm, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            t->pm = g;
            t->pcap = nc;
        }
        struct pmsg *p = &t->pm[t->np++];
        p->seq = tq_col_u64(s, 0);
        p->gseq = tq_col_u64(s, 1);
        tq_col_text(s, 2, p->device, sizeof(p->device));
        const unsigned char *kind = sqlite3_column_text(s, 3);
        p->app = kind && strcmp((const char *)kind, "app") == 0;
        p->targets = tq_col_u64(s, 4);
        p->undeliverable = tq_col_u64(s, 5);
        t->pend_after = p->gseq; /* rows come in gseq order */
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    t->has_pend = true;
    t->pend_dirty = false;
    return 0;
}

/* A message was stored in thread (deliver_thread_message, the one place
 * that inserts into `messages`; it is WITHOUT ROWID since schema 8, so
 * SQLite's update hook cannot tell us). A cached pending list that is
 * complete up to now gets the row appended, as Q_MSG_PENDING would return
 * it: its gseq is the newest, and it is pending when it kept its
 * ciphertext (someone to deliver to). Any other list is read again before
 * use. A rollback of the row is covered by cache_check(): every cache is
 * forgotten then. */
static void thr_note_insert(const char *thread, const struct pmsg *p, bool pending)
{
    cache_check();
    struct thr_ent *t = ctab_find(&thrs_c, thread);
    if (!t)
        return;
    if (!p || t->epoch != cache_epoch || !t->has_pend || t->pend_dirty ||
        p->gseq <= t->pend_after || t->np >= PEND_CACHE_MAX)
        goto reread;
    if (pending) {
        if (t->np == t->pcap) {
            size_t nc = t->pcap ? 2 * t->pcap : 32;
            struct pmsg *g = realloc(t->pm, nc * sizeof(*g));
            if (!g)
                goto reread;
            t->pm = g;
            t->pcap = nc;
        }
        t->pm[t->np++] = *p;
    }
    t->pend_after = p->gseq;
    return;
reread:
    t->pend_dirty = true;
}

/* Whether settling thread now would find nothing pending: its list is
 * read, no message was stored in it since (thr_note_insert), and it is
 * empty. */
static bool thr_idle(const char *thread)
{
    cache_check();
    const struct thr_ent *t = ctab_find(&thrs_c, thread);
    return t && t->epoch == cache_epoch && t->has_pend && !t->pend_dirty && t->np == 0;
}

/* The offline limit dropped data of thread: its pending list is read again */
static void thr_forget_pending(const char *thread)
{
    struct thr_ent *t = ctab_find(&thrs_c, thread);
    if (t)
        t->has_pend = false;
}

int deliver_delivered_to(const char *thread, uint64_t seq, uint64_t *delivered)
{
    sqlite3_stmt *s = tq(Q_MSG_GET);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_row(s);
    if (rc)
        return rc;
    char sender_dev[DEV_MAX];
    tq_col_text(s, 2, sender_dev, sizeof(sender_dev));
    bool pending = sqlite3_column_int(s, 4) != 0;
    uint64_t gseq = tq_col_u64(s, 8);
    *delivered = tq_col_u64(s, 6);
    tq_done(s);
    if (!pending || gseq == 0)
        return 0; /* settled (acked written when the data went), or a v2 row */
    struct win *w = NULL;
    size_t nw = 0;
    uint64_t lag;
    rc = load_windows(thread, &w, &nw);
    if (!rc)
        count_message(w, nw, seq, gseq, sender_dev, delivered, &lag);
    free(w);
    return rc;
}

static int tell_delivered(const char *thread, uint64_t message, uint64_t acked, uint64_t targets,
                          const char *sender_dev);

static int touch_cmp(const void *a, const void *b)
{
    return strcmp(((const struct touch *)a)->thread, ((const struct touch *)b)->thread);
}

/* Whether touch k's ack covered a pending message of this thread meant for
 * its device (in one of the device's windows, not sent by it): the test
 * the store's EXISTS made per window before the caches. */
static bool touch_real(const struct touch *k, const struct win *w, size_t nw,
                       const struct pmsg *pm, size_t np)
{
    for (size_t j = 0; j < nw; j++) {
        if (strcmp(w[j].device, k->device) != 0)
            continue;
        for (size_t i = 0; i < np && pm[i].gseq <= k->to; i++)
            if (k->from < pm[i].gseq && win_covers(&w[j], pm[i].seq, pm[i].device))
                return true;
    }
    return false;
}

/* Drops the data of pm[a..b) (complete, each with count `have`, seqs
 * rising and no other pending message between): one statement. The rows
 * changed must be exactly those, else the cache disagrees with the store
 * and the transaction is refused. */
static int drop_run(const char *thread, uint64_t num, const struct pmsg *pm, size_t a, size_t b,
                    uint64_t have)
{
    sqlite3_stmt *s = tq(Q_MSG_COMPLETE_RANGE);
    int rc = tq_u64(s, 1, num);
    if (!rc) rc = tq_u64(s, 2, pm[a].seq);
    if (!rc) rc = tq_u64(s, 3, pm[b - 1].seq);
    if (!rc) rc = tq_u64(s, 4, have);
    if (!rc) rc = tq_run(s);
    if (!rc && (size_t)tq_changes() != b - a) {
        log_error("delivery: thread %s messages %llu..%llu: %d rows pending, %zu expected",
                  thread, (unsigned long long)pm[a].seq, (unsigned long long)pm[b - 1].seq,
                  tq_changes(), b - a);
        rc = ERR_INTERNAL;
    }
    return rc;
}

/* Settles one thread after this transaction's acks (t[0..n): the acks of
 * devices with windows in it): one `delivered` event per application
 * message some ack covered, with the count of recipients that have it; the
 * ciphertext of messages every recipient has is dropped (one write per run
 * of consecutive complete messages); closed windows with nothing pending
 * left are deleted. Only acks that covered a pending message of the
 * device's windows count; a thread none of them did is left alone. */
static int settle_thread(const struct touch *t, size_t n)
{
    const char *thread = t[0].thread;
    struct thr_ent *te = thr_get(thread);
    if (!te)
        return ERR_NOMEM;
    int rc = thr_windows(te);
    if (!rc)
        rc = thr_num(te);
    if (!rc && (!te->has_pend || te->pend_dirty))
        rc = thr_pending(te);
    if (rc)
        return rc;
    struct win *w = te->w;
    struct pmsg *pm = te->pm;
    size_t nw = te->nw, np = te->np;
    bool *real = NULL, *drop = NULL;
    uint64_t *have = NULL;
    bool any = false;
    if (np == 0)
        return 0;
    real = calloc(n, sizeof(*real));
    drop = calloc(np, sizeof(*drop));
    have = calloc(np, sizeof(*have));
    if (!real || !drop || !have) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; !rc && i < nw; i++)
        rc = cursor_get(w[i].device, &w[i].cursor);
    for (size_t k = 0; !rc && k < n; k++)
        any |= real[k] = touch_real(&t[k], w, nw, pm, np);
    if (rc || !any)
        goto out;
    size_t ndrop = 0;
    for (size_t i = 0; !rc && i < np; i++) {
        uint64_t lag;
        count_message(w, nw, pm[i].seq, pm[i].gseq, pm[i].device, &have[i], &lag);
        if (lag == 0) {
            drop[i] = true;
            ndrop++;
        }
        bool told = !pm[i].app;
        for (size_t k = 0; !rc && !told && k < n; k++) {
            if (real[k] && t[k].from < pm[i].gseq && pm[i].gseq <= t[k].to &&
                strcmp(t[k].device, pm[i].device) != 0) {
                rc = tell_delivered(thread, pm[i].seq, have[i], pm[i].targets, pm[i].device);
                told = true;
            }
        }
    }
    if (rc || ndrop == 0)
        goto out;
    /* runs of consecutive complete messages with one count; the list is in
     * gseq order, which is seq order when seqs rise along it (else one
     * message per statement) */
    bool rising = true;
    for (size_t i = 1; i < np; i++)
        rising &= pm[i].seq > pm[i - 1].seq;
    for (size_t a = 0, b; !rc && a < np; a = b) {
        b = a + 1;
        if (!drop[a])
            continue;
        while (rising && b < np && drop[b] && have[b] == have[a])
            b++;
        rc = drop_run(thread, te->num, pm, a, b, have[a]);
    }
    if (rc)
        goto out;
    size_t keep = 0;
    for (size_t i = 0; i < np; i++)
        if (!drop[i])
            pm[keep++] = pm[i];
    te->np = keep;
    if (keep > PEND_CACHE_MAX) { /* read in full next time rather than kept */
        free(te->pm);
        te->pm = NULL;
        te->np = te->pcap = 0;
        te->has_pend = false;
    }
    bool closed = false;
    for (size_t i = 0; i < nw; i++)
        closed |= !w[i].open;
    if (closed) {
        sqlite3_stmt *s = tq(Q_WIN_SWEEP);
        rc = tq_text(s, 1, thread);
        if (!rc) rc = tq_u64(s, 2, te->num);
        if (!rc) rc = tq_run(s);
    }
out:
    if (rc)
        te->has_pend = false; /* some drops may have happened */
    free(real);
    free(drop);
    free(have);
    return rc;
}

/* Whether the acks noted since the last settle should be settled now; if
 * not, when (µs from now). */
static bool settle_due(uint64_t *in_us)
{
    uint64_t every = srv.cfg.settle_ms * 1000, now = mono_us();
    *in_us = 0;
    if (!every || srv.stop || srv.stopping || now - last_settle_us >= every)
        return true;
    *in_us = last_settle_us + every - now;
    return false;
}

bool deliver_settle_due(void)
{
    uint64_t in_us;
    return ntouch && settle_due(&in_us);
}

int deliver_before_commit(void)
{
    int rc = 0;
    uint64_t in_us;
    if (ntouch && !settle_due(&in_us))
        ws_wake_in(in_us); /* the loop then opens a transaction to settle */
    else if (ntouch) {
        last_settle_us = mono_us();
        qsort(touches, ntouch, sizeof(*touches), touch_cmp);
        for (size_t i = 0, j; !rc && i < ntouch; i = j) {
            for (j = i + 1; j < ntouch && strcmp(touches[j].thread, touches[i].thread) == 0; j++)
                ;
            rc = settle_thread(&touches[i], j - i);
        }
        ntouch = 0;
        if (rc) {
            deliver_discard();
            return rc;
        }
        deliver_flush(); /* the events wait for the COMMIT like everything else */
    }
    if (gseq_dirty) {
        sqlite3_stmt *s = tq(Q_GSEQ_PUT);
        rc = tq_u64(s, 1, gseq_last);
        if (!rc)
            rc = tq_run(s);
        if (rc)
            return rc;
        gseq_dirty = false;
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

/* Encodes the `entry` event of one stored entry into e (initialised by the
 * caller, which resets it). */
static int encode_entry(struct wire_enc *e, uint64_t seq, const char *thread, uint64_t message,
                        const char *kind, const char *sender, const char *sender_device,
                        uint64_t time, const uint8_t *data, size_t len, const uint8_t **out,
                        size_t *olen)
{
    wire_enc_event(e, "entry", 8);
    put_entry(e, seq, thread, message, kind, sender, sender_device, time, data, len);
    return wire_enc_finish(e, out, olen);
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
    int rc = encode_entry(&e, seq, thread, message, kind, sender, sender_device, time, data, len,
                          &out, &olen);
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
    if (strlen(device) >= DEV_MAX)
        return ERR_INVALID;
    int rc = next_gseq(&seq);
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
    uint32_t n = 0;
    uint64_t seq = 0;
    int rc;

    /* the roster from memory (hot.c); it stays valid while this message is
     * stored, since nothing here writes threads or thread_members */
    const struct hot_thread *h;
    rc = hot_get(thread, &h);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < h->n; i++)
        n += !h->m[i].removing && strcmp(h->m[i].device, sender_device) != 0;

    seq = h->last_seq + 1;

    /* one row, one entry seq; the recipients read it through their
     * membership windows (no inbox row per device) */
    uint64_t gseq;
    rc = next_gseq(&gseq);
    if (rc)
        return rc;
    sqlite3_stmt *s = tq(Q_MSG_ADD);
    rc = tq_u64(s, 1, h->num);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_text(s, 3, kind);
    if (!rc) rc = tq_text(s, 4, sender);
    if (!rc) rc = tq_text(s, 5, sender_device);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_u64(s, 7, epoch);
    /* nobody to deliver to: keep no ciphertext */
    if (!rc) rc = tq_blob(s, 8, n ? data : NULL, len);
    if (!rc) rc = tq_u64(s, 9, n);
    if (!rc) rc = tq_u64(s, 10, gseq);
    if (!rc) rc = tq_run(s);
    if (!rc) {
        hot_seq_used(h, seq);
        struct pmsg p = {.seq = seq, .gseq = gseq, .targets = n, .app = strcmp(kind, "app") == 0};
        size_t dl = strlen(sender_device);
        if (dl < sizeof(p.device)) {
            memcpy(p.device, sender_device, dl + 1);
            thr_note_insert(thread, &p, n > 0);
        } else {
            thr_note_insert(thread, NULL, false); /* not cacheable as is: read again */
        }
    }
    /* the entry is the same for every recipient (the entry seq is the
     * message's gseq): encoded once, when someone is online to get it, into
     * one body every recipient's queue refers to */
    struct outbody *body = NULL;
    for (uint32_t i = 0; !rc && i < h->n; i++) {
        const struct hot_member *m = &h->m[i];
        if (m->removing || strcmp(m->device, sender_device) == 0 ||
            !device_online_h(m->device, m->hash))
            continue;
        if (!body) {
            struct wire_enc e;
            const uint8_t *out = NULL;
            size_t olen = 0;
            wire_enc_init(&e);
            rc = encode_entry(&e, gseq, thread, seq, kind, sender, sender_device, now, data, len,
                              &out, &olen);
            if (!rc && !(body = outbody_new(out, olen)))
                rc = ERR_NOMEM;
            wire_enc_reset(&e);
        }
        if (!rc)
            rc = pend_add(m->device, m->hash, NULL, 0, body);
    }
    outbody_unref(body);
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

int deliver_unread(const char *device, const char *thread, uint64_t *unread)
{
    uint64_t cursor;
    int rc = cursor_get(device, &cursor);
    if (rc)
        return rc;
    sqlite3_stmt *s = tq(Q_UNREAD);
    rc = tq_text(s, 1, device);
    if (!rc) rc = tq_text(s, 2, thread);
    if (!rc) rc = tq_u64(s, 3, cursor);
    if (!rc) rc = tq_row(s);
    if (rc)
        return rc;
    *unread = tq_col_u64(s, 0);
    tq_done(s);
    return 0;
}

int deliver_sync(const char *device, const char *identity, uint64_t after, uint32_t limit,
                 uint64_t now, struct wire_enc *e)
{
    static char logged[64][THREAD_MAX];
    uint32_t nlogged = 0, n = 0;
    bool more = false;
    uint64_t cursor;
    int rc = cursor_get(device, &cursor);
    if (rc)
        return rc;
    /* what the device acknowledged is not sent again (v2: its inbox rows
     * were deleted by the ack) */
    if (after < cursor)
        after = cursor;

    /* One pass over the page (the query sorts the device's pending
     * entries, blobs included: running it twice to count first cost half
     * of a catch-up's CPU). The entries are encoded into their own buffer
     * and appended once their number is known; a row past the limit only
     * says there is more. */
    struct wire_enc items;
    wire_enc_init(&items);
    sqlite3_stmt *s = tq(Q_INBOX_PAGE);
    rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, after);
    if (!rc) rc = tq_u64(s, 3, (uint64_t)limit + 1);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (n == limit) {
            more = true;
            tq_done(s);
            rc = ERR_NOT_FOUND;
            break;
        }
        char thread[THREAD_MAX], kind[16], sender[STORE_ID_MAX], sdev[DEV_MAX];
        tq_col_text(s, 1, thread, sizeof(thread));
        tq_col_text(s, 3, kind, sizeof(kind));
        tq_col_text(s, 4, sender, sizeof(sender));
        tq_col_text(s, 5, sdev, sizeof(sdev));
        const uint8_t *data = sqlite3_column_blob(s, 7);
        size_t dlen = (size_t)sqlite3_column_bytes(s, 7);
        wire_enc_map(&items, 8);
        put_entry(&items, tq_col_u64(s, 0), thread, tq_col_u64(s, 2), kind, sender, sdev,
                  tq_col_u64(s, 6), data, dlen);
        n++;
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
    if (rc != ERR_NOT_FOUND) {
        wire_enc_reset(&items);
        return rc ? rc : ERR_INTERNAL;
    }
    wire_enc_key(e, "entries");
    wire_enc_array(e, n);
    wire_enc_append(e, &items);
    wire_enc_reset(&items);
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

/* The v2 inbox rows of device up to seq (data stored before schema 3 and
 * still pending): each acknowledged message counted in its row, data of
 * the complete ones dropped, `delivered` per message. Three statements
 * however many rows; nothing to do once the v2 rows are gone. */
static int ack_v2_rows(const char *device, uint64_t seq)
{
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
    for (size_t i = 0; !rc && i < n; i++)
        rc = tell_delivered(rows[i].thread, rows[i].message, rows[i].acked, rows[i].targets,
                            rows[i].sender_dev);
    free(rows);
    return rc;
}

static int v2_rows_check(void)
{
    if (v2_rows != V2_UNKNOWN)
        return 0;
    sqlite3_stmt *s = tq(Q_INBOX_V2_ANY);
    int rc = tq_row(s);
    if (rc == 0) {
        v2_rows = V2_SOME;
        tq_done(s);
    } else if (rc == ERR_NOT_FOUND) {
        v2_rows = V2_NONE;
        rc = 0;
    }
    return rc;
}

static int touch_add(const char *thread, const char *device, uint64_t from, uint64_t to)
{
    if (ntouch == touchcap) {
        size_t nc = touchcap ? 2 * touchcap : 64;
        struct touch *g = realloc(touches, nc * sizeof(*g));
        if (!g)
            return ERR_NOMEM;
        touches = g;
        touchcap = nc;
    }
    struct touch *t = &touches[ntouch++];
    size_t nt = strnlen(thread, sizeof(t->thread) - 1), nd = strnlen(device, sizeof(t->device) - 1);
    memcpy(t->thread, thread, nt);
    t->thread[nt] = 0;
    memcpy(t->device, device, nd);
    t->device[nd] = 0;
    t->from = from;
    t->to = to;
    return 0;
}

/* Deletes the device's inbox rows (welcomes, notices) up to seq. Most acks
 * find none: once the device is seen to have no rows left, that is
 * remembered until a row is inserted into `inbox` (tstore_inbox_gen()) or
 * a rollback (the cache epoch). */
static int inbox_ack(const char *device, uint64_t seq)
{
    struct dev_ent *d = dev_get(device);
    uint64_t gen = tstore_inbox_gen();
    if (d && d->inbox_empty_gen == gen)
        return 0;
    sqlite3_stmt *s = tq(Q_INBOX_DEL_UPTO);
    int rc = tq_text(s, 1, device);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_run(s);
    if (rc || !d)
        return rc;
    s = tq(Q_INBOX_DEVICE_ANY);
    rc = tq_text(s, 1, device);
    if (!rc)
        rc = tq_row(s);
    if (rc == 0) {
        tq_done(s); /* rows after seq are left */
        return 0;
    }
    if (rc != ERR_NOT_FOUND)
        return rc;
    d->inbox_empty_gen = gen;
    return 0;
}

int deliver_ack(const char *device, uint64_t seq)
{
    /* The device's cursor moves to seq: one row write per ack however many
     * entries it covers. The threads whose pending messages it passed are
     * noted and settled once per transaction (deliver_before_commit):
     * counts, `delivered` events, ciphertext drops. A seq beyond the last
     * one handed out moves the cursor only that far, so that a wrong ack
     * cannot hide later messages. */
    uint64_t cursor, to;
    if (strlen(device) >= DEV_MAX)
        return ERR_INVALID;
    int rc = v2_rows_check();
    if (!rc && v2_rows == V2_SOME)
        rc = ack_v2_rows(device, seq);
    if (!rc)
        rc = inbox_ack(device, seq);
    if (!rc) rc = gseq_load();
    if (!rc) rc = cursor_get(device, &cursor);
    if (rc)
        return rc;
    to = seq < gseq_last ? seq : gseq_last;
    if (to <= cursor)
        return 0;
    /* every thread where the device has a window and something may be
     * pending is noted; settle_thread leaves alone those where the ack
     * covered nothing pending for it */
    struct dev_ent *d;
    rc = dev_threads(device, &d);
    for (size_t i = 0; !rc && i < d->nthreads; i++)
        if (!thr_idle(d->threads[i]))
            rc = touch_add(d->threads[i], device, cursor, to);
    if (!rc)
        rc = cursor_put(device, to);
    return rc;
}

/* ---- offline limit ----------------------------------------------------------- */

/* A message at the offline limit: the recipients that do not have it get
 * a `missed` notice and count as undeliverable; the data goes. */
static int expire_message(const char *thread, uint64_t num, uint64_t seq, uint64_t gseq,
                          const char *sender_dev, uint64_t now)
{
    struct win *w = NULL;
    size_t nw = 0;
    uint64_t have = 0, nlag = 0;
    int rc = load_windows(thread, &w, &nw);
    for (size_t k = 0; !rc && k < nw; k++) {
        if (!win_covers(&w[k], seq, sender_dev))
            continue;
        if (w[k].cursor >= gseq) {
            have++;
            continue;
        }
        nlag++;
        sqlite3_stmt *s = tq(Q_MISSED_ADD);
        rc = tq_text(s, 1, w[k].device);
        if (!rc) rc = tq_text(s, 2, thread);
        if (!rc) rc = tq_u64(s, 3, 1);
        if (!rc) rc = tq_run(s);
        if (!rc) rc = deliver_notice(w[k].device, thread, "missed", 1, "", "", 0, now);
    }
    bool closed = false;
    for (size_t k = 0; k < nw; k++)
        closed |= !w[k].open;
    free(w);
    thr_forget_pending(thread);
    sqlite3_stmt *s = tq(Q_MSG_COMPLETE);
    if (!rc) rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_u64(s, 3, nlag);
    if (!rc) rc = tq_u64(s, 4, have);
    if (!rc) rc = tq_run(s);
    if (!rc && closed) {
        s = tq(Q_WIN_SWEEP);
        rc = tq_text(s, 1, thread);
        if (!rc) rc = tq_u64(s, 2, num);
        if (!rc) rc = tq_run(s);
    }
    if (!rc)
        log_info("delivery: thread %s message %llu dropped at the offline limit (%llu devices)",
                 thread, (unsigned long long)seq, (unsigned long long)nlag);
    return rc;
}

/* The same for a message stored before schema 3 (v2 inbox rows). */
static int expire_v2_message(const char *thread, uint64_t seq, uint64_t now)
{
    static char devs[MEMBERS_MAX][DEV_MAX];
    uint32_t nd = 0;
    sqlite3_stmt *s = tq(Q_INBOX_OF_MESSAGE);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (nd < MEMBERS_MAX)
            tq_col_text(s, 0, devs[nd++], DEV_MAX);
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    for (uint32_t k = 0; k < nd; k++) {
        s = tq(Q_MISSED_ADD);
        rc = tq_text(s, 1, devs[k]);
        if (!rc) rc = tq_text(s, 2, thread);
        if (!rc) rc = tq_u64(s, 3, 1);
        if (!rc) rc = tq_run(s);
        if (!rc) rc = deliver_notice(devs[k], thread, "missed", 1, "", "", 0, now);
        if (rc)
            return rc;
    }
    s = tq(Q_INBOX_DEL_MESSAGE);
    rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_run(s);
    s = tq(Q_MSG_UNDELIVERABLE);
    if (!rc) rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_u64(s, 3, nd);
    if (!rc) rc = tq_run(s);
    s = tq(Q_MSG_DROP_DATA);
    if (!rc) rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, seq);
    if (!rc) rc = tq_run(s);
    if (!rc)
        log_info("delivery: thread %s message %llu dropped at the offline limit (%u devices)",
                 thread, (unsigned long long)seq, nd);
    return rc;
}

/* The sweep reads SWEEP_STEP pending rows per call (a second), from the
 * thread it stopped at; a pass over every pending row takes
 * pending / SWEEP_STEP calls, a delay that is small against the offline
 * limit (days) and bounds the sweep's cost whatever is pending. */
#define SWEEP_STEP 2000
#define SWEEP_DUE_MAX 200
static uint64_t sweep_from; /* the thread number where the next step starts (0: first) */

int deliver_sweep(uint64_t now, bool *did)
{
    struct due {
        char thread[THREAD_MAX];
        uint64_t num, seq, gseq;
    } due[SWEEP_DUE_MAX];
    size_t n = 0, seen = 0;
    bool full = false;
    uint64_t first = 0, last = 0;
    uint64_t limit = srv.cfg.offline_days * 86400;
    *did = false;
    if (now <= limit)
        return 0;
    sqlite3_stmt *s = tq(Q_MSG_EXPIRED_DUE);
    int rc = tq_u64(s, 1, sweep_from);
    if (!rc) rc = tq_u64(s, 2, SWEEP_STEP);
    while (!rc && (rc = tq_row(s)) == 0) {
        last = tq_col_u64(s, 0);
        if (seen++ == 0)
            first = last;
        if (tq_col_u64(s, 4) > now - limit)
            continue;
        if (n == SWEEP_DUE_MAX) {
            full = true;
            continue;
        }
        due[n].num = last;
        tq_col_text(s, 1, due[n].thread, sizeof(due[n].thread));
        due[n].seq = tq_col_u64(s, 2);
        due[n].gseq = tq_col_u64(s, 3);
        n++;
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    /* the next step: this window again while it held more due rows than
     * one call takes (those dropped now leave the index); from the start
     * after the last pending row; else from the window's last thread (its
     * rows may go on past the window), or, when one thread filled the whole
     * window, from the thread after it: its oldest pending rows were just
     * seen, and they are dropped before the newer ones come due */
    if (!full) {
        if (seen < SWEEP_STEP)
            sweep_from = 0;
        else if (first != last)
            sweep_from = last;
        else
            sweep_from = last + 1;
    }
    if (n == 0)
        return 0;
    if (!store_in_txn(srv.store) && (rc = store_begin(srv.store)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (due[i].gseq == 0) {
            rc = expire_v2_message(due[i].thread, due[i].seq, now);
        } else {
            char sender_dev[DEV_MAX];
            s = tq(Q_MSG_GET);
            rc = tq_text(s, 1, due[i].thread);
            if (!rc) rc = tq_u64(s, 2, due[i].seq);
            if (!rc) rc = tq_row(s);
            if (rc)
                return rc;
            tq_col_text(s, 2, sender_dev, sizeof(sender_dev));
            tq_done(s);
            rc = expire_message(due[i].thread, due[i].num, due[i].seq, due[i].gseq, sender_dev,
                                now);
        }
        if (rc)
            return rc;
    }
    *did = true;
    return 0;
}
