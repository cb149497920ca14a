/*
 * bench_care.c: the thread workloads `care`, `catchup` and `fanout`.
 *
 * Set-up, in each worker process for its share of the threads (a thread
 * and all its member devices stay in one process), through the real
 * protocol with real MLS:
 *   1. every member device connects (from the source addresses) and logs in;
 *   2. members other than the citizen upload one KeyPackage (kp.upload);
 *   3. the citizen creates the MLS group (external_senders = the server)
 *      and the thread (thread.create);
 *   4. the citizen grants each member (consent.grant, scope "care"); the
 *      server answers each new entitlement with an external Add proposal
 *      pushed to the citizen as an `entry`;
 *   5. once all M-1 proposals are processed, the citizen commits them
 *      (mls_group_commit_pending → thread.commit with Welcome);
 *   6. every member joins from the Welcome it is pushed.
 * Measured phase:
 *   care/fanout: application messages (PrivateMessage of the current
 *     epoch, encrypted before the clock starts: the bench's own signing
 *     would otherwise compete with the server for the two cores) go out at
 *     the total rate R from random members for D seconds; each carries the
 *     marker (sender, counter) in authenticated_data (bench_mls.c), so a
 *     receiving member accounts for it without decrypting: latency from the
 *     moment the bench queued the send to the `entry` push, duplicates,
 *     and at the end the messages some member never got (lost). Members
 *     acknowledge (`ack`, cumulative) every 20 ms (--ack-every).
 *   catchup: every member but the citizen disconnects; the citizen sends
 *     B messages per thread; then all reconnect, log in and `sync` (500 a
 *     page, ack each page) until nothing is left: the time to drain.
 *
 * Counters (struct bench_wmsg c[]): see the C_* enum.
 */
#include "bench.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "bench_mls.h"
#include "bench_net.h"
#include "err.h"
#include "keys_id.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"

enum {
    C_THREADS, C_MEMBERS, C_SETUP_NS, C_ERRORS,
    C_SENT, C_ACCEPTED, C_REJECTED, C_EXPECTED,
    C_RECEIVED, C_DUPLICATES, C_ACTIVE_NS, C_LOST_CONNS,
    C_DRAIN_NS, C_DRAINED, C_ACKS, C_NOT_SENT,
    C_CPU_US, /* the worker's own CPU over the measured window (getrusage) */
    C_RX_LATE, /* deliveries in the second half of the sending window */
};

#define WINDOW_PER_CONN 8 /* requests in flight per connection */
#define MAX_KPS 8

enum mstate { M_NEW, M_CONNECTING, M_LOGGED, M_CLOSED };

struct acc {                /* per sender: its pre-encrypted messages */
    uint32_t n, next, resp; /* prepared, sent, answered */
    uint64_t *send_ns;      /* 0 until sent */
    uint16_t *recv;         /* receipts by other members */
    uint8_t *status;        /* 0 not sent, 1 in flight, 2 accepted, 3 refused */
    uint8_t **ct;
    uint32_t *ct_len;
};

struct cthread;

struct cmember {
    struct cworker *w;
    struct cthread *th;
    uint16_t idx;
    const struct bench_dev *dev;
    enum mstate st;
    struct bconn *c;
    struct mls_kp *kps[MAX_KPS]; /* saved stock + the one uploaded now */
    size_t nkps;
    struct mls_group *g;
    uint64_t inbox, acked;
    bool on_ackq;           /* on w->ackq: received since its last ack */
    bool syncing, drained, back; /* catchup */
    int64_t *last;          /* per sender: the highest counter received (-1: none) */
    struct acc acc;
};

struct cthread {
    char id[40];
    int m;                   /* members */
    struct cmember *mem;     /* mem[0] is the citizen */
    int proposals;           /* external Add proposals processed by the citizen */
    int joined;              /* members in the group (the citizen included) */
    bool created, committed, commit_sent;
};

struct care_arg {
    const struct bench_opts *o;
    const struct bench_target *t;
    const struct bench_dev **cit; /* citizens, one per thread */
    const struct bench_dev **mem; /* other members, (M-1) per thread */
    int procs;
    bool catchup;
};

struct cworker {
    const struct care_arg *a;
    struct bnet *net;
    struct cthread *th;
    size_t nth;
    struct cmember **all;
    size_t nall;
    uint8_t server_key[32];
    bool have_key;
    size_t pending;     /* set-up requests outstanding */
    size_t connecting;
    uint64_t c[BENCH_NCOUNT];
    struct bench_hist hist;
    bool measuring;
    uint64_t t_start, t_last_rx;
    uint64_t late_from, late_to; /* the second half of the sending window (ns) */
    uint64_t cpu0_us; /* own CPU when the measured window opened */
    uint64_t last_ctl; /* when the control pipe was last read */
    /* members whose inbox is ahead of their last ack: the only ones an ack
     * round has to look at (10,000 members, most with nothing new) */
    struct cmember **ackq;
    size_t nackq;
    bool debug; /* SAMMEN_BENCH_DEBUG, read once */
    size_t ndrained; /* catchup: members back and drained (or given up) */
    int first_errs;
};

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static void werr(struct cworker *w, const char *what, int rc, const struct wire_msg *m)
{
    w->c[C_ERRORS]++;
    if (w->first_errs++ < 5)
        fprintf(stderr, "sammen-bench: %s: %s%s%.*s\n", what, err_str(rc),
                m && !m->ok ? " " : "", m && !m->ok ? (int)m->err_msg_len : 0,
                m && !m->ok && m->err_msg ? m->err_msg : "");
}

/* ---- receiving ---- */

static void account_app(struct cmember *m, const uint8_t *data, size_t len)
{
    struct cworker *w = m->w;
    struct cthread *th = m->th;
    uint16_t sender;
    uint32_t counter;
    struct acc *a;

    if (bench_mls_read_marker(data, len, &sender, &counter) != 0 || sender >= th->m ||
        sender == m->idx) {
        werr(w, "app entry without a valid marker", ERR_MALFORMED, NULL);
        return;
    }
    a = &th->mem[sender].acc;
    if (counter >= a->n || a->send_ns[counter] == 0) {
        werr(w, "app entry for a message never sent", ERR_INVALID, NULL);
        return;
    }
    /* one sender's messages reach each member in the order they were sent
     * (per-thread order): an old counter is a duplicate */
    if ((int64_t)counter <= m->last[sender]) {
        w->c[C_DUPLICATES]++;
        return;
    }
    m->last[sender] = counter;
    a->recv[counter]++;
    w->c[C_RECEIVED]++;
    w->t_last_rx = bnet_now_ns();
    if (!w->a->catchup) {
        if (w->t_last_rx >= w->late_from && w->t_last_rx < w->late_to)
            w->c[C_RX_LATE]++;
        bench_hist_add(&w->hist, (w->t_last_rx - a->send_ns[counter]) / 1000u);
    }
}

/* The fields of an entry in a decoded map (a sync page, or an event the
 * fast reader left to wire_decode), held to the fast reader's rules:
 * kind and thread are strings that fit (NUL included) and hold no NUL.
 * Returns 0 or ERR_MALFORMED. */
static int entry_from_map(const struct wire_map *e, struct bench_entry *out)
{
    memset(out, 0, sizeof(*out));
    if (wire_get_uint(e, "seq", &out->seq) != 0 ||
        wire_get_str(e, "kind", &out->kind, &out->kind_len) != 0 ||
        wire_get_str(e, "thread", &out->thread, &out->thread_len) != 0 ||
        wire_get_bin(e, "data", &out->data, &out->data_len) != 0 ||
        out->kind_len >= BENCH_ENTRY_KIND_MAX || memchr(out->kind, 0, out->kind_len) ||
        out->thread_len >= BENCH_ENTRY_THREAD_MAX || memchr(out->thread, 0, out->thread_len))
        return ERR_MALFORMED;
    return 0;
}

static bool str_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* m's inbox moved ahead of its last ack: the next ack round looks at it. */
static void ackq_add(struct cmember *m)
{
    struct cworker *w = m->w;
    if (m->on_ackq)
        return;
    assert(w->nackq < w->nall);
    w->ackq[w->nackq++] = m;
    m->on_ackq = true;
}

static void process_entry(struct cmember *m, const struct bench_entry *e)
{
    struct cworker *w = m->w;
    struct cthread *th = m->th;
    const uint8_t *data = e->data;
    size_t len = e->data_len;
    int rc;

    if (e->seq > m->inbox) {
        m->inbox = e->seq;
        ackq_add(m);
    }
    if (!str_is(e->thread, e->thread_len, th->id))
        return; /* not this run's thread (an older run's, on a reused server) */
    if (str_is(e->kind, e->kind_len, "app")) {
        account_app(m, data, len);
    } else if (str_is(e->kind, e->kind_len, "welcome")) {
        if (m->g)
            return;
        rc = mls_group_join(data, len, m->kps, m->nkps, NULL, 0, NULL, 0, NULL, now_s(),
                            MLS_GROUP_F_PLAIN_MEMORY, &m->g);
        if (rc != 0) {
            werr(w, "join from Welcome", rc, NULL);
            return;
        }
        th->joined++;
    } else if (str_is(e->kind, e->kind_len, "handshake") && m->g) {
        struct mls_group_event ev;
        memset(&ev, 0, sizeof(ev));
        rc = mls_group_process(m->g, data, len, now_s(), &ev);
        if (rc != 0)
            werr(w, "handshake", rc, NULL);
        else if (ev.type == MLS_GROUP_EV_PROPOSAL && m->idx == 0)
            th->proposals++;
        mls_group_event_reset(&ev);
    }
}

static void on_event(struct bconn *c, const struct wire_msg *msg, void *user)
{
    struct cmember *m = user;
    struct bench_entry e;
    (void)c;
    if (strcmp(msg->name, "entry") != 0)
        return;
    if (entry_from_map(&msg->body, &e) != 0) {
        werr(m->w, "entry", ERR_MALFORMED, NULL);
        return;
    }
    process_entry(m, &e);
}

/* Every pushed frame comes here first: an `entry` event (every delivery)
 * is read in place by bench_entry_parse(); anything else goes to the
 * general decoder and on_event. */
static int on_frame(struct bconn *c, const uint8_t *buf, size_t len, void *user)
{
    struct bench_entry e;
    (void)c;
    if (bench_entry_parse(buf, len, &e) != 0)
        return ERR_NOT_FOUND;
    process_entry(user, &e);
    return 0;
}

/* Reads the control pipe at most every 20 ms (a read() per loop turn was a
 * sixth of a worker's CPU). Returns -1 when the parent is gone, else 0 (a
 * control byte other than a stop is not expected while running). */
static int ctl_check(struct cworker *w, int ctl_fd, uint64_t now)
{
    if (now - w->last_ctl < 20000000u)
        return 0;
    w->last_ctl = now;
    return bench_worker_poll(ctl_fd) < 0 ? -1 : 0;
}

/* catchup: m is done (drained, or lost on the way); counted once, so the
 * drain loop need not walk every member on every turn. */
static void set_drained(struct cmember *m)
{
    if (m->drained)
        return;
    m->drained = true;
    if (m->idx > 0)
        m->w->ndrained++;
}

static void on_close(struct bconn *c, int reason, void *user)
{
    struct cmember *m = user;
    (void)c;
    (void)reason;
    if (m->st == M_CONNECTING)
        m->w->connecting--;
    if (m->st == M_LOGGED && !m->w->a->catchup)
        m->w->c[C_LOST_CONNS]++;
    if (m->back && !m->drained) {
        /* came back but lost the connection before it had caught up */
        set_drained(m);
        m->w->c[C_LOST_CONNS]++;
    }
    m->st = M_CLOSED;
    m->c = NULL;
}

/* Acknowledges what m received, as a notification (an `ack` without an id:
 * PROTOCOL.md "Envelope"): the server does not answer it, so nothing waits
 * for an answer and no window slot is taken; an error would come back with
 * id 0 and end the connection (counted as lost). */
static void send_ack(struct cmember *m)
{
    struct wire_enc e;

    if (!m->c || m->st != M_LOGGED || m->inbox <= m->acked)
        return;
    wire_enc_init(&e);
    wire_enc_note(&e, "ack", 1);
    wire_kv_uint(&e, "seq", m->inbox);
    if (bconn_notify(m->c, &e) == 0) {
        m->acked = m->inbox;
        m->w->c[C_ACKS]++;
    }
    wire_enc_reset(&e);
}

/* Sends an ack for every member whose inbox is ahead of its last ack (the
 * policy of --ack-every: what a member received, acknowledged every round);
 * a member whose ack could not be queued stays listed. */
static void ack_round(struct cworker *w)
{
    size_t keep = 0;
    for (size_t i = 0; i < w->nackq; i++) {
        struct cmember *m = w->ackq[i];
        send_ack(m);
        if (m->inbox > m->acked)
            w->ackq[keep++] = m;
        else
            m->on_ackq = false;
    }
    w->nackq = keep;
}

/* ---- set-up steps ---- */

static void logged(struct bconn *c, int rc, void *arg)
{
    struct cmember *m = arg;
    m->w->connecting--;
    if (rc != 0) {
        werr(m->w, "login", rc, NULL);
        m->st = M_CLOSED; /* counted; on_close follows */
        bconn_close(c);
        return;
    }
    m->st = M_LOGGED;
}

static void opened(struct bconn *c, void *user)
{
    struct cmember *m = user;
    if (bench_login_start(c, m->dev, logged, m) != 0) {
        m->w->connecting--;
        m->st = M_CLOSED;
        bconn_close(c);
    }
}

/* Connects and logs in every member in list[0..n) that is not logged in,
 * conc at a time. */
static void connect_all(struct cworker *w, struct cmember **list, size_t n)
{
    const struct bench_target *t = w->a->t;
    const struct bconn_cbs cbs = {opened, on_event, on_close, on_frame};
    size_t next = 0;
    static unsigned rr;

    while (next < n || w->connecting > 0) {
        while (next < n && w->connecting < (size_t)w->a->o->concurrency) {
            struct cmember *m = list[next++];
            const char *src = t->nsources ? t->sources[rr++ % (unsigned)t->nsources] : NULL;
            if (m->st == M_LOGGED)
                continue;
            m->st = M_CONNECTING;
            w->connecting++;
            if (bconn_open(w->net, t->host, t->port, "/", src, &cbs, m, &m->c) != 0) {
                w->connecting--;
                m->st = M_CLOSED;
                werr(w, "connect", ERR_IO, NULL);
            }
        }
        (void)bnet_service(w->net, 10);
    }
}

static void setup_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg)
{
    struct cmember *m = arg;
    (void)c;
    m->w->pending--;
    if (rc != 0)
        werr(m->w, "set-up request", rc, msg);
}

static void info_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg)
{
    struct cworker *w = arg;
    const uint8_t *k;
    size_t kl;
    (void)c;
    w->pending--;
    if (rc == 0 && wire_get_bin(&msg->body, "key", &k, &kl) == 0 && kl == 32) {
        memcpy(w->server_key, k, 32);
        w->have_key = true;
    } else {
        werr(w, "server.info", rc ? rc : ERR_MALFORMED, msg);
    }
}

static void create_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg)
{
    struct cmember *m = arg;
    (void)c;
    m->w->pending--;
    if (rc == 0 && wire_get_cstr(&msg->body, "thread", m->th->id, sizeof(m->th->id)) == 0) {
        m->th->created = true;
        m->th->joined = 1;
    } else {
        werr(m->w, "thread.create", rc ? rc : ERR_MALFORMED, msg);
    }
}

static void commit_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg)
{
    struct cmember *m = arg;
    (void)c;
    m->w->pending--;
    if (rc == 0 && mls_group_commit_confirm(m->g) == 0) {
        m->th->committed = true;
    } else {
        mls_group_commit_discard(m->g);
        werr(m->w, "thread.commit", rc ? rc : ERR_INTERNAL, msg);
    }
}

/* Services the loop until pending reaches 0 (or the deadline). */
static int wait_pending(struct cworker *w, int ctl_fd, double seconds)
{
    uint64_t until = bnet_now_ns() + (uint64_t)(seconds * 1e9);
    while (w->pending > 0) {
        if (bnet_now_ns() > until)
            return ERR_EXPIRED;
        if (bench_worker_poll(ctl_fd) < 0)
            return ERR_IO;
        (void)bnet_service(w->net, 10);
    }
    return 0;
}

/* Requests a window at a time: waits while conn has WINDOW_PER_CONN in
 * flight. */
static int room(struct cworker *w, struct bconn *c)
{
    uint64_t until = bnet_now_ns() + 60000000000ull;
    while (c && bconn_pending(c) >= WINDOW_PER_CONN) {
        if (bnet_now_ns() > until)
            return ERR_EXPIRED;
        (void)bnet_service(w->net, 5);
    }
    return c ? 0 : ERR_IO;
}

static int upload_kp(struct cworker *w, struct cmember *m)
{
    uint8_t pk[32], ident[MLS_KP_MAX_IDENTITY], *msg = NULL;
    size_t il, ml;
    struct wire_enc e;
    uint32_t id;
    int rc;

    rc = keys_id_public(m->dev->seed, pk);
    if (rc == 0)
        rc = mls_kp_identity(m->dev->id, pk, ident, sizeof(ident), &il);
    if (rc == 0 && m->nkps >= MAX_KPS)
        rc = ERR_LIMIT;
    if (rc == 0)
        rc = mls_kp_create(ident, il, m->dev->seed, now_s() - 3600, now_s() + 30 * 86400,
                           &m->kps[m->nkps]);
    if (rc == 0)
        rc = mls_kp_message(m->kps[m->nkps++], &msg, &ml);
    if (rc == 0)
        rc = room(w, m->c);
    if (rc != 0)
        goto out;
    id = bconn_next_id(m->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "kp.upload", 1);
    wire_enc_key(&e, "key_packages");
    wire_enc_array(&e, 1);
    wire_enc_bin(&e, msg, ml);
    rc = bconn_request(m->c, id, &e, setup_resp, m);
    wire_enc_reset(&e);
    if (rc == 0)
        w->pending++;
out:
    free(msg);
    return rc;
}

static int create_thread(struct cworker *w, struct cthread *th)
{
    struct cmember *cz = &th->mem[0];
    struct mls_extension_list ext;
    struct mls_kp *kp = NULL;
    uint8_t gid[16], pk[32], ident[MLS_KP_MAX_IDENTITY], *gi = NULL;
    size_t il, gil;
    struct wire_enc e;
    uint32_t id;
    int rc;

    memset(&ext, 0, sizeof(ext));
    randombytes_buf(gid, sizeof(gid));
    rc = bench_mls_server_ext(w->a->t->domain, w->server_key, &ext);
    if (rc == 0)
        rc = keys_id_public(cz->dev->seed, pk);
    if (rc == 0)
        rc = mls_kp_identity(cz->dev->id, pk, ident, sizeof(ident), &il);
    if (rc == 0)
        rc = mls_kp_create(ident, il, cz->dev->seed, now_s() - 3600, now_s() + 30 * 86400, &kp);
    if (rc == 0)
        rc = mls_group_create(gid, sizeof(gid), kp, &ext, MLS_GROUP_F_PLAIN_MEMORY, &cz->g);
    if (rc == 0)
        rc = mls_group_group_info(cz->g, true, &gi, &gil);
    if (rc == 0)
        rc = room(w, cz->c);
    if (rc != 0)
        goto out;
    id = bconn_next_id(cz->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "thread.create", 4);
    wire_kv_str(&e, "citizen", cz->dev->id);
    wire_kv_str(&e, "kind", "care");
    wire_kv_str(&e, "title", "sammen-bench");
    wire_kv_bin(&e, "group_info", gi, gil);
    rc = bconn_request(cz->c, id, &e, create_resp, cz);
    wire_enc_reset(&e);
    if (rc == 0)
        w->pending++;
out:
    free(gi);
    mls_kp_free(kp);
    mls_extension_list_free(&ext);
    return rc;
}

static int grant(struct cworker *w, struct cthread *th, struct cmember *m)
{
    struct cmember *cz = &th->mem[0];
    uint8_t *tbs = NULL, sig[64];
    size_t len;
    struct wire_enc e;
    uint32_t id;
    int rc;

    char scope[64];

    /* scope: this thread only, so a rerun on the same server (whose older
     * threads and grants remain) sees exactly the same flow */
    snprintf(scope, sizeof(scope), "thread:%s", th->id);
    rc = bench_mls_grant(cz->dev->seed, cz->dev->id, cz->dev->device, m->dev->id, scope,
                         now_s(), &tbs, &len, sig);
    if (rc == 0)
        rc = room(w, cz->c);
    if (rc != 0)
        goto out;
    id = bconn_next_id(cz->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "consent.grant", 2);
    wire_kv_bin(&e, "tbs", tbs, len);
    wire_kv_bin(&e, "sig", sig, sizeof(sig));
    rc = bconn_request(cz->c, id, &e, setup_resp, cz);
    wire_enc_reset(&e);
    if (rc == 0)
        w->pending++;
out:
    free(tbs);
    return rc;
}

static int commit_adds(struct cworker *w, struct cthread *th)
{
    struct cmember *cz = &th->mem[0];
    struct mls_group_commit_out co;
    struct mls_group_commit_opts opts;
    struct wire_enc e;
    uint32_t id;
    int rc;

    memset(&co, 0, sizeof(co));
    /* the server's Add proposals by reference, and the ratchet tree in the
     * Welcome so the new members need nothing else */
    memset(&opts, 0, sizeof(opts));
    opts.include_pending = true;
    opts.tree_in_welcome = true;
    opts.force_path = true;
    rc = mls_group_commit_create(cz->g, &opts, now_s(), &co);
    if (rc == 0)
        rc = room(w, cz->c);
    if (rc != 0)
        goto out;
    id = bconn_next_id(cz->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "thread.commit", co.welcome ? 4 : 3);
    wire_kv_str(&e, "thread", th->id);
    wire_kv_bin(&e, "commit", co.commit, co.commit_len);
    wire_kv_bin(&e, "group_info", co.group_info, co.group_info_len);
    if (co.welcome)
        wire_kv_bin(&e, "welcome", co.welcome, co.welcome_len);
    rc = bconn_request(cz->c, id, &e, commit_resp, cz);
    wire_enc_reset(&e);
    if (rc == 0) {
        w->pending++;
        th->commit_sent = true;
    } else {
        mls_group_commit_discard(cz->g);
    }
out:
    mls_group_commit_out_reset(&co);
    return rc;
}

/* Runs the loop until cond(w) holds or seconds pass. */
static int wait_until(struct cworker *w, int ctl_fd, bool (*cond)(struct cworker *),
                      double seconds)
{
    uint64_t until = bnet_now_ns() + (uint64_t)(seconds * 1e9);
    while (!cond(w)) {
        if (bnet_now_ns() > until)
            return ERR_EXPIRED;
        if (bench_worker_poll(ctl_fd) < 0)
            return ERR_IO;
        (void)bnet_service(w->net, 10);
        ack_round(w);
    }
    return 0;
}

static bool all_proposed(struct cworker *w)
{
    for (size_t i = 0; i < w->nth; i++)
        if (w->th[i].proposals < w->th[i].m - 1)
            return false;
    return true;
}

static bool all_joined(struct cworker *w)
{
    for (size_t i = 0; i < w->nth; i++)
        if (w->th[i].joined < w->th[i].m)
            return false;
    return w->pending == 0;
}

/* ---- the KeyPackage stock in the profile ---- */

static int kp_path(const struct cworker *w, const struct cmember *m, char *buf, size_t cap,
                   bool dir_only)
{
    int n = dir_only ? snprintf(buf, cap, "%s/kps", w->a->o->profile)
                     : snprintf(buf, cap, "%s/kps/%s", w->a->o->profile, m->dev->device);
    return n < 0 || (size_t)n >= cap ? ERR_TOO_BIG : 0;
}

static int kp_record(const uint8_t *rec, size_t n, void *arg)
{
    struct cmember *m = arg;
    if (m->nkps >= MAX_KPS - 1)
        return 0; /* keep room for a new one; the rest stay unused */
    return mls_kp_load(rec, n, &m->kps[m->nkps++]) == 0 ? 0 : (m->nkps--, 0);
}

/* Loads the KeyPackages an earlier run uploaded and nobody claimed: the
 * server may hand out one of them, so we must be able to join with it. */
static void load_kps(struct cworker *w, struct cmember *m)
{
    char path[700];
    FILE *f;
    uint8_t *buf;
    size_t len;

    if (kp_path(w, m, path, sizeof(path), false) != 0 || !(f = fopen(path, "rb")))
        return;
    buf = malloc(MAX_KPS * (BENCH_KPFILE_MAX_RECORD + 4));
    if (buf) {
        len = fread(buf, 1, MAX_KPS * (BENCH_KPFILE_MAX_RECORD + 4), f);
        if (bench_mls_kpfile_parse(buf, len, kp_record, m) != 0)
            werr(w, "KeyPackage stock file", ERR_MALFORMED, NULL);
        sodium_memzero(buf, len);
        free(buf);
    }
    fclose(f);
}

/* Rewrites the stock with the KeyPackages not used by a join. */
static int save_kps(struct cworker *w, struct cmember *m)
{
    char dir[700], path[700], tmp[720];
    FILE *f;
    int rc = 0;

    if (kp_path(w, m, dir, sizeof(dir), true) != 0 || kp_path(w, m, path, sizeof(path), false))
        return ERR_TOO_BIG;
    (void)mkdir(dir, 0700);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f)
        return ERR_IO;
    for (size_t i = 0; i < m->nkps && rc == 0; i++) {
        uint8_t *b = NULL, hdr[4];
        size_t n;
        if (mls_kp_used(m->kps[i]))
            continue;
        rc = mls_kp_save(m->kps[i], &b, &n);
        if (rc != 0)
            break;
        hdr[0] = (uint8_t)(n >> 24);
        hdr[1] = (uint8_t)(n >> 16);
        hdr[2] = (uint8_t)(n >> 8);
        hdr[3] = (uint8_t)n;
        if (fwrite(hdr, 1, 4, f) != 4 || fwrite(b, 1, n, f) != n)
            rc = ERR_IO;
        sodium_memzero(b, n);
        free(b);
    }
    if (fclose(f) != 0 && rc == 0)
        rc = ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = ERR_IO;
    if (rc != 0)
        (void)remove(tmp);
    return rc;
}

static int setup(struct cworker *w, int ctl_fd)
{
    struct wire_enc e;
    uint32_t id;
    int rc;

    connect_all(w, w->all, w->nall);
    for (size_t i = 0; i < w->nall; i++)
        if (w->all[i]->st != M_LOGGED)
            return ERR_IO;
    /* the server's key, for the external_senders extension */
    id = bconn_next_id(w->all[0]->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "server.info", 0);
    rc = bconn_request(w->all[0]->c, id, &e, info_resp, w);
    wire_enc_reset(&e);
    if (rc != 0)
        return rc;
    w->pending++;
    if ((rc = wait_pending(w, ctl_fd, 60)) != 0 || !w->have_key)
        return rc ? rc : ERR_INVALID;
    for (size_t i = 0; i < w->nall; i++) {
        if (w->all[i]->idx == 0)
            continue;
        load_kps(w, w->all[i]);
        if ((rc = upload_kp(w, w->all[i])) != 0 || (rc = save_kps(w, w->all[i])) != 0)
            return rc;
    }
    if ((rc = wait_pending(w, ctl_fd, 120)) != 0)
        return rc;
    for (size_t i = 0; i < w->nth; i++)
        if ((rc = create_thread(w, &w->th[i])) != 0)
            return rc;
    if ((rc = wait_pending(w, ctl_fd, 120)) != 0)
        return rc;
    for (size_t i = 0; i < w->nth; i++)
        if (!w->th[i].created)
            return ERR_BADSTATE;
    for (size_t i = 0; i < w->nth; i++)
        for (int k = 1; k < w->th[i].m; k++)
            if ((rc = grant(w, &w->th[i], &w->th[i].mem[k])) != 0)
                return rc;
    if ((rc = wait_pending(w, ctl_fd, 300)) != 0)
        return rc;
    if ((rc = wait_until(w, ctl_fd, all_proposed, 120)) != 0) {
        werr(w, "waiting for the server's external Add proposals", rc, NULL);
        return rc;
    }
    for (size_t i = 0; i < w->nth; i++)
        if ((rc = commit_adds(w, &w->th[i])) != 0)
            return rc;
    rc = wait_until(w, ctl_fd, all_joined, 300);
    /* the stock left for the next run, whatever happened */
    for (size_t i = 0; i < w->nall; i++)
        if (w->all[i]->idx > 0)
            (void)save_kps(w, w->all[i]);
    if (rc != 0) {
        werr(w, "waiting for the members to join", rc, NULL);
        return rc;
    }
    return w->c[C_ERRORS] ? ERR_INTERNAL : 0;
}

/* ---- messages ---- */

static int acc_alloc(struct acc *a)
{
    size_t n = a->n ? a->n : 1;
    a->send_ns = calloc(n, sizeof(*a->send_ns));
    a->recv = calloc(n, sizeof(*a->recv));
    a->status = calloc(n, sizeof(*a->status));
    a->ct = calloc(n, sizeof(*a->ct));
    a->ct_len = calloc(n, sizeof(*a->ct_len));
    return a->send_ns && a->recv && a->status && a->ct && a->ct_len ? 0 : ERR_NOMEM;
}

static void acc_free(struct acc *a)
{
    for (uint32_t i = 0; a->ct && i < a->n; i++)
        free(a->ct[i]);
    free(a->send_ns);
    free(a->recv);
    free(a->status);
    free(a->ct);
    free(a->ct_len);
    memset(a, 0, sizeof(*a));
}

/* Encrypts every member's messages (counts in acc.n) ahead of the clock. */
static int prepare(struct cworker *w)
{
    uint8_t *pt = calloc(1, (size_t)w->a->o->payload + 1);
    int rc = 0;

    if (!pt)
        return ERR_NOMEM;
    randombytes_buf(pt, (size_t)w->a->o->payload);
    for (size_t i = 0; i < w->nall && rc == 0; i++) {
        struct cmember *m = w->all[i];
        rc = acc_alloc(&m->acc);
        for (uint32_t k = 0; k < m->acc.n && rc == 0; k++) {
            uint8_t mk[BENCH_MARKER_LEN];
            size_t len;
            bench_mls_marker(m->idx, k, mk);
            rc = mls_group_encrypt(m->g, pt, (size_t)w->a->o->payload, mk, sizeof(mk),
                                   &m->acc.ct[k], &len);
            m->acc.ct_len[k] = (uint32_t)len;
        }
    }
    free(pt);
    return rc;
}

static void send_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg)
{
    struct cmember *m = arg;
    struct cworker *w = m->w;
    uint32_t k;
    (void)c;
    /* the server answers one connection's requests in order: this is the
     * oldest send in flight */
    while (m->acc.resp < m->acc.next && m->acc.status[m->acc.resp] != 1)
        m->acc.resp++;
    k = m->acc.resp;
    if (k >= m->acc.next)
        return;
    if (rc == 0) {
        m->acc.status[k] = 2;
        w->c[C_ACCEPTED]++;
        w->c[C_EXPECTED] += (uint64_t)(m->th->m - 1);
    } else {
        m->acc.status[k] = 3;
        w->c[C_REJECTED]++;
        if (rc != ERR_IO)
            werr(w, "thread.send", rc, msg);
    }
}

/* Sends m's next prepared message, stamped as sent at now (the caller's
 * clock reading of this loop turn; the frame goes out at the next
 * bnet_service()). Returns 0, ERR_LIMIT (window full: try later),
 * ERR_NOT_FOUND (none left) or a send error. */
static int send_next(struct cworker *w, struct cmember *m, uint64_t now)
{
    struct acc *a = &m->acc;
    struct wire_enc e;
    uint32_t id, k = a->next;
    int rc;

    if (k >= a->n)
        return ERR_NOT_FOUND;
    if (!m->c || m->st != M_LOGGED)
        return ERR_IO;
    if (bconn_pending(m->c) >= WINDOW_PER_CONN)
        return ERR_LIMIT;
    id = bconn_next_id(m->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "thread.send", 2);
    wire_kv_str(&e, "thread", m->th->id);
    wire_kv_bin(&e, "msg", a->ct[k], a->ct_len[k]);
    a->send_ns[k] = now;
    rc = bconn_request(m->c, id, &e, send_resp, m);
    wire_enc_reset(&e);
    if (rc != 0) {
        a->send_ns[k] = 0;
        return rc;
    }
    a->status[k] = 1;
    a->next++;
    w->c[C_SENT]++;
    free(a->ct[k]); /* sent: the frame was copied */
    a->ct[k] = NULL;
    return 0;
}

static bool all_delivered(struct cworker *w)
{
    return w->c[C_RECEIVED] >= w->c[C_EXPECTED] &&
           w->c[C_ACCEPTED] + w->c[C_REJECTED] >= w->c[C_SENT];
}

/* care / fanout: R/procs messages per second for D seconds from random
 * members, following a schedule drawn in advance. */
static int run_care(struct cworker *w, int ctl_fd, const uint32_t *sched, size_t nsched)
{
    const struct bench_opts *o = w->a->o;
    uint64_t t0, dur = (uint64_t)(o->duration * 1e9), last_ack = 0;
    uint64_t ack_every = (uint64_t)(o->ack_every * 1e9);
    double rate = o->rate / w->a->procs;
    size_t sent = 0;

    w->measuring = true;
    t0 = w->t_start = bnet_now_ns();
    w->late_from = t0 + dur / 2;
    w->late_to = t0 + dur;
    while (sent < nsched) {
        /* one clock reading per turn: the schedule, the send stamps, the
         * ack period and the control pipe all use it */
        uint64_t now = bnet_now_ns();
        size_t due = (size_t)((double)(now - t0) / 1e9 * rate);
        if (now - t0 > dur + 5000000000ull)
            break; /* the bench could not keep up: report what was sent */
        if (due > nsched)
            due = nsched;
        while (sent < due) {
            int rc = send_next(w, w->all[sched[sent]], now);
            if (rc == ERR_LIMIT) {
                if (w->debug)
                    fprintf(stderr, "window full: member %u pending %u st %d\n",
                            w->all[sched[sent]]->idx, bconn_pending(w->all[sched[sent]]->c),
                            (int)w->all[sched[sent]]->st);
                break; /* that member's window is full: next round */
            }
            if (rc != 0) {
                w->c[C_NOT_SENT]++;
                werr(w, "send", rc, NULL);
            }
            sent++;
        }
        if (now - last_ack > ack_every) {
            ack_round(w);
            last_ack = now;
        }
        if (ctl_check(w, ctl_fd, now) < 0)
            return ERR_IO;
        /* Wait for I/O or 1 ms. sent < due here only when the next
         * member's window is full, and then only an answer (I/O) can let
         * it go on: waiting 0 ms there was a busy loop of epoll_wait and
         * clock reads, at 1,000 × 10 a third of a worker's CPU. */
        (void)bnet_service(w->net, 1);
    }
    if (w->debug)
        fprintf(stderr, "run: sent %zu of %zu in %.3f s\n", sent, nsched,
                (double)(bnet_now_ns() - t0) / 1e9);
    w->c[C_NOT_SENT] += nsched - sent;
    /* drain: the last deliveries and acks */
    {
        uint64_t until = bnet_now_ns() + (uint64_t)(o->drain * 1e9);
        while (!all_delivered(w) && bnet_now_ns() < until) {
            uint64_t now = bnet_now_ns();
            if (now - last_ack > ack_every) {
                ack_round(w);
                last_ack = now;
            }
            (void)bnet_service(w->net, 2);
        }
        /* the last acks: notifications, written out here; nothing waits
         * for an answer */
        ack_round(w);
        (void)bnet_service(w->net, 0);
    }
    w->c[C_ACTIVE_NS] = (w->t_last_rx > t0 ? w->t_last_rx : bnet_now_ns()) - t0;
    return 0;
}

/* ---- catchup ---- */

static void sync_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg);

static void send_sync(struct cmember *m)
{
    struct wire_enc e;
    uint32_t id = bconn_next_id(m->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "sync", 2);
    wire_kv_uint(&e, "after", m->inbox);
    wire_kv_uint(&e, "limit", 500);
    if (bconn_request(m->c, id, &e, sync_resp, m) != 0) {
        werr(m->w, "sync", ERR_IO, NULL);
        m->syncing = false;
        set_drained(m);
    }
    wire_enc_reset(&e);
}

static void sync_resp(struct bconn *c, const struct wire_msg *msg, int rc, void *arg)
{
    struct cmember *m = arg;
    struct wire_array arr;
    bool more = false;
    (void)c;
    if (rc != 0 || wire_get_array(&msg->body, "entries", &arr) != 0) {
        werr(m->w, "sync", rc ? rc : ERR_MALFORMED, msg);
        m->syncing = false;
        set_drained(m);
        return;
    }
    for (uint32_t i = 0; i < arr.n; i++) {
        struct wire_map e;
        struct bench_entry be;
        if (wire_array_map(&arr, i, &e) == 0) {
            if (entry_from_map(&e, &be) == 0)
                process_entry(m, &be);
            else
                werr(m->w, "entry", ERR_MALFORMED, NULL);
        }
        m->w->c[C_DRAINED]++;
    }
    (void)wire_get_bool(&msg->body, "more", &more);
    send_ack(m);
    if (more && arr.n > 0) {
        send_sync(m);
        return;
    }
    m->syncing = false;
    set_drained(m);
}

static void catch_logged(struct bconn *c, int rc, void *arg)
{
    struct cmember *m = arg;
    logged(c, rc, arg);
    if (rc == 0) {
        m->syncing = true;
        send_sync(m);
    }
}

static void catch_opened(struct bconn *c, void *user)
{
    struct cmember *m = user;
    if (bench_login_start(c, m->dev, catch_logged, m) != 0) {
        m->w->connecting--;
        m->st = M_CLOSED;
        bconn_close(c);
    }
}

static int run_catchup(struct cworker *w, int ctl_fd, int res_fd)
{
    const struct bench_target *t = w->a->t;
    const struct bconn_cbs cbs = {catch_opened, on_event, on_close, on_frame};
    uint64_t until, t0;
    size_t next = 0, away = 0, done;
    unsigned rr = 0;

    w->measuring = true;
    /* everyone but the citizens goes away */
    for (size_t i = 0; i < w->nall; i++)
        if (w->all[i]->idx > 0 && w->all[i]->c) {
            bconn_close(w->all[i]->c);
            away++;
        }
    until = bnet_now_ns() + 30000000000ull;
    for (;;) {
        size_t open = 0;
        for (size_t i = 0; i < w->nall; i++)
            open += w->all[i]->idx > 0 && w->all[i]->c != NULL;
        if (open == 0 || bnet_now_ns() > until)
            break;
        (void)bnet_service(w->net, 10);
    }
    /* the backlog: the citizens send B messages each, a window at a time */
    w->t_start = bnet_now_ns();
    for (;;) {
        bool left = false;
        for (size_t i = 0; i < w->nth; i++) {
            struct cmember *cz = &w->th[i].mem[0];
            int rc;
            uint64_t now = bnet_now_ns();
            while ((rc = send_next(w, cz, now)) == 0)
                ;
            if (rc != ERR_NOT_FOUND)
                left = true;
        }
        if (!left)
            break;
        if (bench_worker_poll(ctl_fd) < 0)
            return ERR_IO;
        (void)bnet_service(w->net, 1);
    }
    until = bnet_now_ns() + 120000000000ull;
    while (w->c[C_ACCEPTED] + w->c[C_REJECTED] < w->c[C_SENT] && bnet_now_ns() < until)
        (void)bnet_service(w->net, 2);
    /* tell the parent the backlog is in, and wait for every worker's
     * members to come back at the same moment ('R') */
    {
        struct bench_wmsg *pm = calloc(1, sizeof(*pm));
        int ctl;
        if (!pm)
            return ERR_NOMEM;
        pm->kind = BENCH_MSG_PHASE;
        ctl = bench_worker_send(res_fd, pm);
        free(pm);
        if (ctl != 0)
            return ERR_IO;
        while ((ctl = bench_worker_poll(ctl_fd)) == 0)
            (void)bnet_service(w->net, 5);
        if (ctl != 'R')
            return ERR_IO;
        /* like the server's, the bench's CPU is counted over the drain only */
        if (bench_self_cpu_us(&w->cpu0_us) != 0)
            return ERR_IO;
    }
    /* they come back: connect, log in, sync until drained */
    t0 = bnet_now_ns();
    do {
        while (next < w->nall && w->connecting < (size_t)w->a->o->concurrency) {
            struct cmember *m = w->all[next++];
            const char *src = t->nsources ? t->sources[rr++ % (unsigned)t->nsources] : NULL;
            if (m->idx == 0)
                continue;
            m->st = M_CONNECTING;
            m->drained = false;
            m->back = true;
            w->connecting++;
            if (bconn_open(w->net, t->host, t->port, "/", src, &cbs, m, &m->c) != 0) {
                w->connecting--;
                m->st = M_CLOSED;
                set_drained(m);
                werr(w, "reconnect", ERR_IO, NULL);
            }
        }
        (void)bnet_service(w->net, 2);
        done = w->ndrained;
        if (ctl_check(w, ctl_fd, bnet_now_ns()) < 0)
            return ERR_IO;
    } while (done < away && bnet_now_ns() - t0 < (uint64_t)(w->a->o->drain * 1e9) + 60000000000ull);
    w->c[C_DRAIN_NS] = bnet_now_ns() - t0;
    /* the last acks (notifications) are written out */
    (void)bnet_service(w->net, 0);
    w->c[C_ACTIVE_NS] = w->c[C_DRAIN_NS];
    return 0;
}

/* ---- the worker ---- */

static int care_worker(int index, int ctl_fd, int res_fd, void *argp)
{
    const struct care_arg *a = argp;
    const struct bench_opts *o = a->o;
    struct cworker w;
    struct bench_wmsg *msg = calloc(1, sizeof(*msg));
    uint32_t *sched = NULL;
    size_t nsched = 0, tlo, thi;
    uint64_t t0 = bnet_now_ns();
    int rc = ERR_NOMEM, ctl, status = 1;

    memset(&w, 0, sizeof(w));
    w.a = a;
    tlo = (size_t)o->threads * (size_t)index / (size_t)a->procs;
    thi = (size_t)o->threads * (size_t)(index + 1) / (size_t)a->procs;
    w.nth = thi - tlo;
    w.th = calloc(w.nth ? w.nth : 1, sizeof(*w.th));
    w.nall = w.nth * (size_t)o->members;
    w.all = calloc(w.nall ? w.nall : 1, sizeof(*w.all));
    w.ackq = calloc(w.nall ? w.nall : 1, sizeof(*w.ackq));
    w.debug = getenv("SAMMEN_BENCH_DEBUG") != NULL;
    if (!msg || !w.th || !w.all || !w.ackq || bnet_new(4u << 20, &w.net) != 0)
        goto out;
    for (size_t i = 0; i < w.nth; i++) {
        struct cthread *th = &w.th[i];
        size_t gt = tlo + i;
        th->m = o->members;
        th->mem = calloc((size_t)th->m, sizeof(*th->mem));
        if (!th->mem)
            goto out;
        for (int k = 0; k < th->m; k++) {
            struct cmember *m = &th->mem[k];
            m->w = &w;
            m->th = th;
            m->idx = (uint16_t)k;
            m->dev = k == 0 ? a->cit[gt] : a->mem[gt * (size_t)(o->members - 1) + (size_t)k - 1];
            m->last = malloc((size_t)th->m * sizeof(*m->last));
            if (!m->last)
                goto out;
            for (int j = 0; j < th->m; j++)
                m->last[j] = -1;
            w.all[i * (size_t)o->members + (size_t)k] = m;
        }
    }
    rc = setup(&w, ctl_fd);
    if (rc != 0) {
        werr(&w, "set-up", rc, NULL);
        goto report;
    }
    /* what each member will send, drawn now and encrypted before the clock */
    if (w.nth > 0) {
        if (a->catchup) {
            for (size_t i = 0; i < w.nth; i++)
                w.th[i].mem[0].acc.n = (uint32_t)o->backlog;
        } else {
            double share = o->rate / a->procs * o->duration;
            nsched = (size_t)(share + 0.5);
            sched = calloc(nsched ? nsched : 1, sizeof(*sched));
            if (!sched) {
                rc = ERR_NOMEM;
                goto report;
            }
            for (size_t i = 0; i < nsched; i++) {
                uint32_t who = randombytes_uniform((uint32_t)w.nall);
                sched[i] = who;
                w.all[who]->acc.n++;
            }
        }
        rc = prepare(&w);
        if (rc != 0) {
            werr(&w, "encrypting", rc, NULL);
            goto report;
        }
    }
report:
    msg->kind = BENCH_MSG_READY;
    msg->worker = (uint32_t)index;
    msg->c[C_THREADS] = w.nth;
    msg->c[C_MEMBERS] = w.nall;
    msg->c[C_SETUP_NS] = bnet_now_ns() - t0;
    msg->c[C_ERRORS] = rc != 0 ? w.c[C_ERRORS] + 1 : 0;
    if (bench_worker_send(res_fd, msg) != 0)
        goto out;
    if (rc != 0) {
        status = 2;
        goto out;
    }
    while ((ctl = bench_worker_poll(ctl_fd)) == 0)
        (void)bnet_service(w.net, 10);
    if (ctl != 'G' || bench_self_cpu_us(&w.cpu0_us) != 0)
        goto out;
    rc = a->catchup ? run_catchup(&w, ctl_fd, res_fd) : run_care(&w, ctl_fd, sched, nsched);
    if (rc != 0)
        werr(&w, "run", rc, NULL);
    memset(msg, 0, sizeof(*msg));
    msg->kind = BENCH_MSG_DONE;
    msg->worker = (uint32_t)index;
    memcpy(msg->c, w.c, sizeof(msg->c));
    msg->c[C_THREADS] = w.nth;
    msg->c[C_MEMBERS] = w.nall;
    msg->hist = w.hist;
    {
        uint64_t cpu1;
        if (bench_self_cpu_us(&cpu1) == 0 && cpu1 >= w.cpu0_us)
            msg->c[C_CPU_US] = cpu1 - w.cpu0_us;
    }
    if (bench_worker_send(res_fd, msg) == 0)
        status = 0;
out:
    bnet_free(w.net);
    for (size_t i = 0; w.th && i < w.nth; i++) {
        for (int k = 0; w.th[i].mem && k < w.th[i].m; k++) {
            mls_group_free(w.th[i].mem[k].g);
            for (size_t j = 0; j < w.th[i].mem[k].nkps; j++)
                mls_kp_free(w.th[i].mem[k].kps[j]);
            acc_free(&w.th[i].mem[k].acc);
            free(w.th[i].mem[k].last);
        }
        free(w.th[i].mem);
    }
    free(w.th);
    free(w.all);
    free(w.ackq);
    free(sched);
    free(msg);
    return status;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int bench_care_run(const struct bench_opts *o, struct bench_profile *p,
                   const struct bench_target *t, struct bench_report *r)
{
    struct care_arg a;
    struct bench_pool pool;
    struct bench_wmsg *ready = NULL, *done = NULL;
    struct bench_hist hist;
    uint64_t tot[BENCH_NCOUNT], setup_ns = 0, active_ns = 0, drain_ns = 0;
    uint64_t rss0 = 0, hwm0 = 0, rss1 = 0, hwm1 = 0;
    double cpu0 = 0, cpu1 = 0, cpu_mid = 0;
    uint64_t rss_mid = 0;
    bool catchup = strcmp(o->workload, "catchup") == 0, have_pid = t->pid > 0;
    size_t nmem = (size_t)o->threads * (size_t)(o->members - 1);
    int procs, rc;

    memset(&a, 0, sizeof(a));
    memset(tot, 0, sizeof(tot));
    memset(&hist, 0, sizeof(hist));
    procs = o->procs > 0 ? o->procs
                         : (int)(((size_t)o->threads * (size_t)o->members + (size_t)o->per_proc -
                                  1) / (size_t)o->per_proc);
    if (procs < 1)
        procs = 1;
    if (procs > o->threads)
        procs = o->threads;
    if (procs > BENCH_MAX_PROCS)
        procs = BENCH_MAX_PROCS;
    a.o = o;
    a.t = t;
    a.procs = procs;
    a.catchup = catchup;
    a.cit = calloc((size_t)o->threads, sizeof(*a.cit));
    a.mem = calloc(nmem ? nmem : 1, sizeof(*a.mem));
    ready = calloc((size_t)procs, sizeof(*ready));
    done = calloc((size_t)procs, sizeof(*done));
    if (!a.cit || !a.mem || !ready || !done) {
        rc = ERR_NOMEM;
        goto out;
    }
    rc = bench_prof_select(p, "carec", (size_t)o->threads, a.cit);
    if (rc == 0)
        rc = bench_prof_select(p, "carem", nmem, a.mem);
    if (rc != 0)
        goto out;

    json_object_set_new(r->params, "threads", json_integer(o->threads));
    json_object_set_new(r->params, "members", json_integer(o->members));
    json_object_set_new(r->params, "devices", json_integer(o->threads * o->members));
    if (catchup) {
        json_object_set_new(r->params, "backlog_per_thread", json_integer(o->backlog));
        json_object_set_new(r->params, "backlog_per_device", json_integer(o->backlog));
    } else {
        json_object_set_new(r->params, "rate", json_real(o->rate));
        json_object_set_new(r->params, "duration_s", json_real(o->duration));
    }
    json_object_set_new(r->params, "payload_bytes", json_integer(o->payload));
    if (!catchup)
        json_object_set_new(r->params, "ack_every_ms", json_real(o->ack_every * 1000));
    json_object_set_new(r->params, "procs", json_integer(procs));
    json_object_set_new(r->params, "sources", json_integer(t->nsources));
    json_object_set_new(r->params, "prepared_ciphertexts", json_true());

    rc = bench_pool_start(&pool, procs, care_worker, &a);
    if (rc != 0)
        goto out;
    rc = bench_pool_collect(&pool, BENCH_MSG_READY, ready, 3600000);
    for (int i = 0; rc == 0 && i < procs; i++) {
        if (ready[i].c[C_ERRORS])
            rc = ERR_INTERNAL;
        if (ready[i].c[C_SETUP_NS] > setup_ns)
            setup_ns = ready[i].c[C_SETUP_NS];
    }
    if (rc != 0) {
        fprintf(stderr, "sammen-bench: set-up failed\n");
        bench_pool_signal(&pool, 'S');
        bench_pool_wait(&pool);
        goto out;
    }
    if (have_pid) {
        sleep_ms(200);
        (void)bench_proc_mem(t->pid, &rss0, &hwm0);
        (void)bench_proc_cpu(t->pid, &cpu0);
    }
    fprintf(stderr, "sammen-bench: set-up done in %.1f s; measuring\n", (double)setup_ns / 1e9);
    bench_pool_signal(&pool, 'G');
    if (catchup) {
        /* the backlog is in: the drain is measured from here */
        rc = bench_pool_collect(&pool, BENCH_MSG_PHASE, done, 3600000);
        if (rc != 0) {
            bench_pool_signal(&pool, 'S');
            bench_pool_wait(&pool);
            goto out;
        }
        if (have_pid) {
            (void)bench_proc_cpu(t->pid, &cpu_mid);
            (void)bench_proc_mem(t->pid, &rss_mid, &hwm1);
        }
        fprintf(stderr, "sammen-bench: backlog in; draining\n");
        bench_pool_signal(&pool, 'R');
    }
    rc = bench_pool_collect(&pool, BENCH_MSG_DONE, done, 3600000);
    if (have_pid) {
        (void)bench_proc_cpu(t->pid, &cpu1);
        (void)bench_proc_mem(t->pid, &rss1, &hwm1);
    }
    if (bench_pool_wait(&pool) != 0 && rc == 0)
        rc = ERR_INTERNAL;
    if (rc != 0)
        goto out;
    for (int i = 0; i < procs; i++) {
        for (int k = 0; k < BENCH_NCOUNT; k++)
            tot[k] += done[i].c[k];
        if (done[i].c[C_ACTIVE_NS] > active_ns)
            active_ns = done[i].c[C_ACTIVE_NS];
        if (done[i].c[C_DRAIN_NS] > drain_ns)
            drain_ns = done[i].c[C_DRAIN_NS];
        bench_hist_merge(&hist, &done[i].hist);
    }
    {
        double act = (double)active_ns / 1e9, cpu = cpu1 - cpu0;
        uint64_t lost = tot[C_EXPECTED] > tot[C_RECEIVED] ? tot[C_EXPECTED] - tot[C_RECEIVED] : 0;
        uint64_t answered = tot[C_ACCEPTED] + tot[C_REJECTED];
        uint64_t unanswered = tot[C_SENT] > answered ? tot[C_SENT] - answered : 0;
        bench_report_fig(r, "setup_time", (double)setup_ns / 1e9, "s");
        bench_report_figi(r, "messages_sent", tot[C_SENT], "");
        bench_report_figi(r, "messages_accepted", tot[C_ACCEPTED], "");
        bench_report_figi(r, "messages_refused", tot[C_REJECTED], "");
        bench_report_figi(r, "messages_not_sent", tot[C_NOT_SENT], "");
        /* sent, but no answer before the drain ran out: the server fell
         * that far behind; nothing else in the run is meaningful then */
        bench_report_figi(r, "messages_unanswered", unanswered, "");
        bench_report_figi(r, "deliveries_expected", tot[C_EXPECTED], "");
        bench_report_figi(r, "deliveries", tot[C_RECEIVED], "");
        bench_report_figi(r, "lost", lost, "");
        bench_report_figi(r, "duplicated", tot[C_DUPLICATES], "");
        bench_report_figi(r, "acks_sent", tot[C_ACKS], "");
        bench_report_figi(r, "connections_lost", tot[C_LOST_CONNS], "");
        bench_report_figi(r, "errors", tot[C_ERRORS], "");
        if (catchup) {
            double d = (double)drain_ns / 1e9;
            bench_report_fig(r, "drain_time", d, "s");
            bench_report_fig(r, "drained_per_s", d > 0 ? (double)tot[C_RECEIVED] / d : 0, "/s");
        } else {
            bench_report_fig(r, "accepted_per_s",
                             o->duration > 0 ? (double)tot[C_ACCEPTED] / o->duration : 0, "/s");
            bench_report_fig(r, "deliveries_per_s", act > 0 ? (double)tot[C_RECEIVED] / act : 0,
                             "/s");
            /* The delivery rate once the pipeline is full: deliveries
             * received in the second half of the sending window, per
             * second. deliveries_per_s divides every delivery by the
             * window plus the last message's latency (the queue filling
             * at the start, draining at the end), so it stays below the
             * offered rate by that tail even when every message is
             * delivered in bounded time; a server that keeps up delivers
             * the offered rate here, one that falls behind less. */
            double half = o->duration / 2;
            bench_report_fig(r, "deliveries_per_s_steady",
                             half > 0 ? (double)tot[C_RX_LATE] / half : 0, "/s");
            bench_report_fig(r, "latency_p50", bench_hist_quantile(&hist, 0.5) / 1000.0, "ms");
            bench_report_fig(r, "latency_p99", bench_hist_quantile(&hist, 0.99) / 1000.0, "ms");
            bench_report_fig(r, "latency_p999", bench_hist_quantile(&hist, 0.999) / 1000.0, "ms");
            bench_report_fig(r, "latency_max", bench_hist_quantile(&hist, 1.0) / 1000.0, "ms");
        }
        if (have_pid && catchup) {
            /* the drain alone: from the moment the members come back */
            bench_report_fig(r, "server_cpu_backlog", cpu_mid - cpu0, "s");
            bench_report_figi(r, "server_rss_backlog", rss_mid, "KiB");
            cpu = cpu1 - cpu_mid;
        }
        if (have_pid) {
            bench_report_fig(r, "server_cpu", cpu, "s");
            bench_report_fig(r, "server_cpu_share", act > 0 ? cpu / act : 0, "cores");
            bench_report_fig(r, "deliveries_per_server_cpu_s",
                             cpu > 0 ? (double)tot[C_RECEIVED] / cpu : 0, "/s");
            bench_report_fig(r, "server_cpu_us_per_delivery",
                             tot[C_RECEIVED] ? cpu * 1e6 / (double)tot[C_RECEIVED] : 0, "us");
            bench_report_figi(r, "server_rss_start", rss0, "KiB");
            bench_report_figi(r, "server_rss_end", rss1, "KiB");
            bench_report_figi(r, "server_hwm_end", hwm1, "KiB");
        }
        {
            /* the bench's own worker processes over the same window (their
             * getrusage, summed): the load generator shares the machine */
            double bcpu = (double)tot[C_CPU_US] / 1e6;
            bench_report_fig(r, "bench_cpu", bcpu, "s");
            bench_report_fig(r, "bench_cpu_share", act > 0 ? bcpu / act : 0, "cores");
            bench_report_fig(r, "bench_cpu_us_per_delivery",
                             tot[C_RECEIVED] ? bcpu * 1e6 / (double)tot[C_RECEIVED] : 0, "us");
        }
        if (lost > 0 || tot[C_DUPLICATES] > 0 || tot[C_REJECTED] > 0 || tot[C_ERRORS] > 0)
            rc = ERR_INTERNAL;
        else if (unanswered > 0 || tot[C_SENT] == 0)
            rc = ERR_EXPIRED; /* give a longer --drain or a lower --rate */
    }
out:
    free(a.cit);
    free(a.mem);
    free(ready);
    free(done);
    return rc;
}
