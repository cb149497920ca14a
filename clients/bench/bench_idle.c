/*
 * bench_idle.c: the `idle` workload. N provisioned devices log in (each
 * its own WebSocket session, spread over worker processes and source
 * addresses) and stay connected; each session sends a `ping` request every
 * --keepalive seconds (staggered), the application-level keep-alive a
 * mobile client would send to keep NAT mappings and detect dead links.
 *
 * Measured on the server process: VmRSS before the sessions open and
 * after all are logged in (memory per session), and utime+stime over a
 * window of --window seconds while the sessions idle (CPU of keep-alives).
 * Worker counters (struct bench_wmsg c[]):
 *   READY: 0 logged in, 1 failed, 2 setup time (ns)
 *   DONE:  0 still open, 1 failed, 2 pings sent, 3 pings answered,
 *          4 sessions lost after login; hist = ping round trips (µs)
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"
#include "err.h"

enum sess_state { S_NEW, S_CONNECTING, S_LOGGED, S_FAILED };

struct sess {
    struct idle_worker *w;
    struct bconn *c;
    const struct bench_dev *dev;
    enum sess_state st;
    uint64_t ping_sent_ns;
};

struct idle_worker {
    struct bnet *net;
    struct sess *s;
    size_t n, logged, failed, setting_up, lost;
    uint64_t pings_sent, pings_ok;
    struct bench_hist hist;
    bool measuring;
};

struct idle_arg {
    const struct bench_opts *o;
    const struct bench_profile *p;
    const struct bench_target *t;
    const struct bench_dev **devs; /* the idle pool */
    size_t n;
    int procs;
};

static void sess_logged(struct bconn *c, int rc, void *arg)
{
    struct sess *s = arg;
    struct idle_worker *w = s->w;

    w->setting_up--;
    if (rc != 0) {
        s->st = S_FAILED;
        w->failed++;
        if (w->failed <= 3)
            fprintf(stderr, "sammen-bench: login of %s failed: %s\n", s->dev->id, err_str(rc));
        bconn_close(c);
        return;
    }
    s->st = S_LOGGED;
    w->logged++;
}

static void sess_open(struct bconn *c, void *user)
{
    struct sess *s = user;
    int rc = bench_login_start(c, s->dev, sess_logged, s);
    if (rc != 0) {
        s->w->setting_up--;
        s->st = S_FAILED;
        s->w->failed++;
        bconn_close(c);
    }
}

static void sess_close(struct bconn *c, int reason, void *user)
{
    struct sess *s = user;
    struct idle_worker *w = s->w;
    (void)c;
    (void)reason;
    s->c = NULL;
    if (s->st == S_CONNECTING) {
        w->setting_up--;
        w->failed++;
        s->st = S_FAILED;
    } else if (s->st == S_LOGGED) {
        w->logged--;
        w->lost++;
        s->st = S_FAILED;
    }
}

static void ping_resp(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct sess *s = arg;
    (void)c;
    (void)m;
    if (rc == 0) {
        s->w->pings_ok++;
        bench_hist_add(&s->w->hist, (bnet_now_ns() - s->ping_sent_ns) / 1000u);
    }
}

static void send_ping(struct sess *s)
{
    struct wire_enc e;
    uint32_t id;

    if (!s->c || s->st != S_LOGGED || bconn_pending(s->c) > 0)
        return;
    id = bconn_next_id(s->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "ping", 0);
    s->ping_sent_ns = bnet_now_ns();
    if (bconn_request(s->c, id, &e, ping_resp, s) == 0)
        s->w->pings_sent++;
    wire_enc_reset(&e);
}

static int idle_worker(int index, int ctl_fd, int res_fd, void *argp)
{
    const struct idle_arg *a = argp;
    const struct bench_opts *o = a->o;
    const struct bench_target *t = a->t;
    struct idle_worker w;
    struct bench_wmsg *msg = NULL;
    const struct bconn_cbs cbs = {sess_open, NULL, sess_close, NULL};
    size_t lo = a->n * (size_t)index / (size_t)a->procs;
    size_t hi = a->n * (size_t)(index + 1) / (size_t)a->procs;
    size_t next = 0, rr = 0;
    uint64_t t0 = bnet_now_ns(), ka_start = 0, ka_sent = 0;
    int rc = 1, ctl = 0;

    memset(&w, 0, sizeof(w));
    msg = calloc(1, sizeof(*msg));
    w.n = hi - lo;
    w.s = calloc(w.n ? w.n : 1, sizeof(*w.s));
    if (!msg || !w.s || bnet_new(1u << 20, &w.net) != 0)
        goto out;
    for (size_t i = 0; i < w.n; i++) {
        w.s[i].w = &w;
        w.s[i].dev = a->devs[lo + i];
    }
    /* set up: at most --concurrency sessions connecting/logging in at once */
    while (next < w.n || w.setting_up > 0) {
        while (next < w.n && w.setting_up < (size_t)o->concurrency) {
            struct sess *s = &w.s[next];
            const char *src = t->nsources ? t->sources[(next + (size_t)index) %
                                                       (size_t)t->nsources]
                                          : NULL;
            next++;
            s->st = S_CONNECTING;
            w.setting_up++;
            if (bconn_open(w.net, t->host, t->port, "/", src, &cbs, s, &s->c) != 0) {
                w.setting_up--;
                w.failed++;
                s->st = S_FAILED;
            }
        }
        (void)bnet_service(w.net, 10);
        if (bench_worker_poll(ctl_fd) < 0)
            goto out;
    }
    msg->kind = BENCH_MSG_READY;
    msg->worker = (uint32_t)index;
    msg->c[0] = w.logged;
    msg->c[1] = w.failed;
    msg->c[2] = bnet_now_ns() - t0;
    if (bench_worker_send(res_fd, msg) != 0)
        goto out;
    /* idle: keep-alive pings spread evenly over the interval */
    ka_start = bnet_now_ns();
    for (;;) {
        ctl = bench_worker_poll(ctl_fd);
        if (ctl == 'S' || ctl < 0)
            break;
        if (o->keepalive > 0 && w.n > 0) {
            double el = (double)(bnet_now_ns() - ka_start) / 1e9;
            uint64_t due = (uint64_t)(el * (double)w.n / o->keepalive);
            while (ka_sent < due) {
                send_ping(&w.s[rr++ % w.n]);
                ka_sent++;
            }
        }
        (void)bnet_service(w.net, 20);
    }
    memset(msg, 0, sizeof(*msg));
    msg->kind = BENCH_MSG_DONE;
    msg->worker = (uint32_t)index;
    msg->c[0] = w.logged;
    msg->c[1] = w.failed;
    msg->c[2] = w.pings_sent;
    msg->c[3] = w.pings_ok;
    msg->c[4] = w.lost;
    msg->hist = w.hist;
    if (bench_worker_send(res_fd, msg) != 0)
        goto out;
    rc = 0;
out:
    bnet_free(w.net);
    free(w.s);
    free(msg);
    return rc;
}

static void sleep_s(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int bench_idle_run(const struct bench_opts *o, struct bench_profile *p,
                   const struct bench_target *t, struct bench_report *r)
{
    struct idle_arg a;
    struct bench_pool pool;
    struct bench_wmsg *ready = NULL, *done = NULL;
    struct bench_hist hist;
    uint64_t rss0 = 0, hwm0 = 0, rss1 = 0, hwm1 = 0, rss2 = 0, hwm2 = 0;
    uint64_t logged = 0, failed = 0, pings = 0, pings_ok = 0, lost = 0, setup_ns = 0;
    double cpu0 = 0, cpu1 = 0, cpu_base = 0;
    bool have_pid = t->pid > 0;
    int procs, rc;

    memset(&a, 0, sizeof(a));
    memset(&hist, 0, sizeof(hist));
    a.devs = calloc((size_t)o->sessions, sizeof(*a.devs));
    if (!a.devs)
        return ERR_NOMEM;
    rc = bench_prof_select(p, "idle", (size_t)o->sessions, a.devs);
    if (rc != 0)
        goto out;
    procs = o->procs > 0 ? o->procs : (o->sessions + o->per_proc - 1) / o->per_proc;
    if (procs < 1)
        procs = 1;
    if (procs > BENCH_MAX_PROCS)
        procs = BENCH_MAX_PROCS;
    a.o = o;
    a.p = p;
    a.t = t;
    a.n = (size_t)o->sessions;
    a.procs = procs;

    json_object_set_new(r->params, "sessions", json_integer(o->sessions));
    json_object_set_new(r->params, "procs", json_integer(procs));
    json_object_set_new(r->params, "sources", json_integer(t->nsources));
    json_object_set_new(r->params, "keepalive_s", json_real(o->keepalive));
    json_object_set_new(r->params, "window_s", json_real(o->window));
    json_object_set_new(r->params, "concurrency", json_integer(o->concurrency));

    ready = calloc((size_t)procs, sizeof(*ready));
    done = calloc((size_t)procs, sizeof(*done));
    if (!ready || !done) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (have_pid) {
        /* baseline: the server's memory and its idle CPU with no sessions */
        sleep_s(o->settle);
        rc = bench_proc_mem(t->pid, &rss0, &hwm0);
        if (rc == 0)
            rc = bench_proc_cpu(t->pid, &cpu_base);
        if (rc != 0)
            goto out;
    }
    rc = bench_pool_start(&pool, procs, idle_worker, &a);
    if (rc != 0)
        goto out;
    rc = bench_pool_collect(&pool, BENCH_MSG_READY, ready, 1200000);
    if (rc != 0) {
        bench_pool_signal(&pool, 'S');
        bench_pool_wait(&pool);
        goto out;
    }
    for (int i = 0; i < procs; i++) {
        logged += ready[i].c[0];
        failed += ready[i].c[1];
        if (ready[i].c[2] > setup_ns)
            setup_ns = ready[i].c[2];
    }
    fprintf(stderr, "sammen-bench: %llu sessions logged in; measuring\n",
            (unsigned long long)logged);
    if (have_pid) {
        sleep_s(o->settle);
        (void)bench_proc_mem(t->pid, &rss1, &hwm1);
        (void)bench_proc_cpu(t->pid, &cpu0);
    }
    sleep_s(o->window);
    if (have_pid) {
        (void)bench_proc_cpu(t->pid, &cpu1);
        (void)bench_proc_mem(t->pid, &rss2, &hwm2);
    }
    bench_pool_signal(&pool, 'S');
    rc = bench_pool_collect(&pool, BENCH_MSG_DONE, done, 120000);
    if (bench_pool_wait(&pool) != 0 && rc == 0)
        rc = ERR_INTERNAL;
    if (rc != 0)
        goto out;
    for (int i = 0; i < procs; i++) {
        pings += done[i].c[2];
        pings_ok += done[i].c[3];
        lost += done[i].c[4];
        bench_hist_merge(&hist, &done[i].hist);
    }
    bench_report_figi(r, "sessions_logged_in", logged, "");
    bench_report_figi(r, "sessions_failed", failed, "");
    bench_report_figi(r, "sessions_lost", lost, "");
    bench_report_fig(r, "setup_time", (double)setup_ns / 1e9, "s");
    bench_report_fig(r, "logins_per_s", setup_ns ? (double)logged / ((double)setup_ns / 1e9) : 0,
                     "/s");
    if (have_pid) {
        double per = logged ? ((double)rss1 - (double)rss0) / (double)logged : 0;
        bench_report_figi(r, "server_rss_before", rss0, "KiB");
        bench_report_figi(r, "server_rss_after", rss1, "KiB");
        bench_report_figi(r, "server_rss_end", rss2, "KiB");
        bench_report_figi(r, "server_hwm_end", hwm2, "KiB");
        bench_report_fig(r, "server_kib_per_session", per, "KiB");
        bench_report_fig(r, "server_bytes_per_session", per * 1024.0, "B");
        bench_report_fig(r, "server_cpu_window", cpu1 - cpu0, "s");
        bench_report_fig(r, "server_cpu_share", o->window > 0 ? (cpu1 - cpu0) / o->window : 0,
                         "cores");
        /* pings in the window: each logged-in session sends one per
         * keepalive interval */
        double wpings = o->keepalive > 0 ? o->window * (double)logged / o->keepalive : 0;
        bench_report_fig(r, "server_cpu_us_per_ping",
                         wpings > 0 ? (cpu1 - cpu0) * 1e6 / wpings : 0, "us");
        bench_report_fig(r, "server_cpu_setup", cpu0 - cpu_base, "s");
        bench_report_fig(r, "projected_rss_100k_sessions",
                         ((double)rss0 + per * 100000.0) / 1024.0, "MiB");
    }
    bench_report_figi(r, "pings_sent", pings, "");
    bench_report_figi(r, "pings_answered", pings_ok, "");
    bench_report_fig(r, "ping_rtt_p50", bench_hist_quantile(&hist, 0.5) / 1000.0, "ms");
    bench_report_fig(r, "ping_rtt_p99", bench_hist_quantile(&hist, 0.99) / 1000.0, "ms");
    if (failed > 0 || lost > 0)
        rc = ERR_IO;
out:
    free(a.devs);
    free(ready);
    free(done);
    return rc;
}
