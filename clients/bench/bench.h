/*
 * bench.h: sammen-bench, the load generator (issue 6). Shared types of its
 * modules; start reading at main.c.
 *
 *   main.c        options, the run: profile, server, workers, report
 *   bench_net.c   thin WebSocket client with source addresses (bench_net.h)
 *   bench_prof.c  the bench profile directory and bulk provisioning
 *                 (admin.invite → enroll through the real protocol)
 *   bench_srv.c   spawning sammen-server (init, run) and /proc readings
 *   bench_stat.c  latency histograms, worker processes and their pipes
 *   bench_idle.c  the `idle` workload
 *   bench_out.c   the table and the --json document
 *   bench_parse.c the fast reader of pushed `entry` events
 */
#ifndef SAMMEN_BENCH_H
#define SAMMEN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define BENCH_ID_MAX 96
#define BENCH_MAX_SOURCES 64
#define BENCH_MAX_PROCS 64

/* One provisioned device: identity, device id and its Ed25519 seed. Bench
 * devices keep seeds in ordinary memory (issue 6 allows it: thousands of
 * guarded allocations would exhaust the kernel's map count). */
struct bench_dev {
    char id[BENCH_ID_MAX];
    char device[20];
    char role[16];
    uint8_t seed[32];
};

/* Where the server is and how to reach it. */
struct bench_target {
    char host[64];
    int port;
    char url[128];
    char domain[128];
    pid_t pid;          /* server process for /proc readings; 0 = unknown */
    bool spawned;
    /* source addresses 127.0.0.(first..first+n-1) */
    int nsources;
    char sources[BENCH_MAX_SOURCES][16];
};

/* Everything the command line sets. */
struct bench_opts {
    const char *workload;
    const char *profile;
    const char *url;
    const char *bin_dir;
    const char *admin_code;
    bool spawn, json, fresh;
    pid_t server_pid;
    int procs;          /* worker processes (0: enough for per_proc) */
    int per_proc;       /* sessions per worker process at most */
    int sources;        /* source addresses */
    int concurrency;    /* connections being set up at once, per process */
    /* idle */
    int sessions;
    double window;      /* seconds of the idle CPU window */
    double keepalive;   /* seconds between a session's pings; 0 = none */
    double settle;      /* seconds to wait before reading memory */
    /* care, catchup, fanout */
    int threads;        /* threads (T) */
    int members;        /* member devices per thread (M), the citizen's included */
    double rate;        /* messages per second, all threads together */
    double duration;    /* seconds of sending */
    double drain;       /* seconds to wait for the last deliveries */
    int backlog;        /* catchup: messages per thread while members are away */
    int payload;        /* plaintext bytes per message */
    double ack_every;   /* care/fanout: seconds between a member's acks */
};

/* ---- profile and provisioning (bench_prof.c) ---- */

struct bench_profile {
    char dir[512];
    char server[128];    /* URL it was provisioned against ("" with --spawn) */
    char domain[128];
    struct bench_dev admin;
    bool has_admin;
    struct bench_dev *devs;
    size_t ndevs, cap;
};

/* Loads DIR/bench.json into p (an absent file gives an empty profile).
 * Returns 0, ERR_MALFORMED, ERR_IO, ERR_NOMEM. */
int bench_prof_load(const char *dir, struct bench_profile *p);
/* Writes DIR/bench.json (0600, temp file + fsync + rename). */
int bench_prof_save(const struct bench_profile *p);
void bench_prof_free(struct bench_profile *p);
/* Count of devices named with prefix (pool) in the profile. */
size_t bench_prof_count(const struct bench_profile *p, const char *prefix);
/* Pointers to the first n devices of pool prefix, in profile order (valid
 * while p is unchanged). Returns 0 or ERR_BADSTATE (fewer than n). */
int bench_prof_select(const struct bench_profile *p, const char *prefix, size_t n,
                      const struct bench_dev **out);
/* Makes sure the profile holds `want` devices of pool `prefix` (names
 * prefix000000, ...) with role: enrolls the administrator first if needed
 * (admin_code), then admin.invite + enroll for each missing one through
 * the server at t, `conc` at a time, and saves the profile. Returns 0 or
 * an ERR_*; progress goes to stderr. */
int bench_prof_provision(struct bench_profile *p, const struct bench_target *t,
                         const char *admin_code, const char *prefix, const char *role,
                         size_t want, int conc);

/* ---- the server (bench_srv.c) ---- */

/* Runs `sammen-server --data DIR --domain DOMAIN init --json` from bin_dir
 * and copies the administrator's code. Returns 0 or ERR_IO. */
int bench_srv_init(const char *bin_dir, const char *data_dir, const char *domain, char *code,
                   size_t cap);
/* Starts sammen-server on 127.0.0.1:0 (stderr to log_path) with extra
 * arguments argv_extra (NULL-terminated) and waits until it listens.
 * Returns 0 with *pid and *port, or ERR_IO. */
int bench_srv_start(const char *bin_dir, const char *data_dir, const char *log_path,
                    const char *const *argv_extra, pid_t *pid, int *port);
/* SIGTERM and wait (SIGKILL after 10 s). */
void bench_srv_stop(pid_t pid);
/* VmRSS and VmHWM of pid in KiB. Returns 0 or ERR_IO. */
int bench_proc_mem(pid_t pid, uint64_t *rss_kib, uint64_t *hwm_kib);
/* utime + stime of pid in seconds. Returns 0 or ERR_IO. */
int bench_proc_cpu(pid_t pid, double *seconds);
/* Parses the text of /proc/PID/stat (len bytes, not NUL-terminated) and
 * gives utime and stime in clock ticks. Returns 0 or ERR_MALFORMED. */
int bench_proc_parse_stat(const char *buf, size_t len, uint64_t *utime, uint64_t *stime);
/* Parses the text of /proc/PID/status for "KEY: N kB". Returns 0,
 * ERR_NOT_FOUND or ERR_MALFORMED. */
int bench_proc_parse_status(const char *buf, size_t len, const char *key, uint64_t *kib);

/* ---- statistics and workers (bench_stat.c) ---- */

/* Log-linear latency histogram in microseconds: exact below 64 µs, then
 * 32 buckets per power of two (relative error under 3.2 %). */
#define BENCH_HIST_N 1216
struct bench_hist {
    uint64_t n[BENCH_HIST_N];
};
void bench_hist_add(struct bench_hist *h, uint64_t us);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
uint64_t bench_hist_count(const struct bench_hist *h);
/* The q-quantile (0..1) in microseconds (bucket midpoint); 0 when empty. */
double bench_hist_quantile(const struct bench_hist *h, double q);

/* What a worker reports (READY after setup, DONE at the end). */
enum { BENCH_MSG_READY = 1, BENCH_MSG_DONE = 2, BENCH_MSG_PHASE = 3 };
#define BENCH_NCOUNT 20
struct bench_wmsg {
    uint32_t kind;
    uint32_t worker;
    uint64_t c[BENCH_NCOUNT]; /* workload-defined counters */
    struct bench_hist hist;
};

/* A worker process: fn runs in the child with its index, the read end of
 * the control pipe (bytes 'G' go, 'R' next phase, 'S' stop) and the write end of the
 * result pipe; its return is the child's exit status. */
typedef int bench_worker_fn(int index, int ctl_fd, int res_fd, void *arg);
struct bench_pool {
    int n;
    pid_t pid[BENCH_MAX_PROCS];
    int ctl[BENCH_MAX_PROCS]; /* parent's write ends */
    int res[BENCH_MAX_PROCS]; /* parent's read ends */
};
/* Forks n workers. Returns 0 or ERR_IO (those started are killed). */
int bench_pool_start(struct bench_pool *pool, int n, bench_worker_fn *fn, void *arg);
/* Sends one control byte to every worker. */
void bench_pool_signal(struct bench_pool *pool, char what);
/* Reads one message of kind from every worker into out[0..n) (each within
 * timeout_ms overall). Returns 0, ERR_EXPIRED or ERR_IO (a worker died). */
int bench_pool_collect(struct bench_pool *pool, uint32_t kind, struct bench_wmsg *out,
                       int timeout_ms);
/* Waits for every worker (killing those still running after 10 s). Returns
 * the number that exited with a non-zero status. */
int bench_pool_wait(struct bench_pool *pool);

/* Worker side: sends a message (blocking). Returns 0 or ERR_IO. */
int bench_worker_send(int res_fd, const struct bench_wmsg *m);
/* Worker side: the next control byte if one is waiting (non-blocking), 0
 * when none, -1 when the parent is gone. */
int bench_worker_poll(int ctl_fd);
/* Worker side: this process's CPU time so far (user + system, getrusage
 * RUSAGE_SELF) in microseconds. Returns 0 or ERR_IO. */
int bench_self_cpu_us(uint64_t *us);

/* ---- the fast `entry` reader (bench_parse.c) ---- */

#define BENCH_ENTRY_THREAD_MAX 40 /* thread id bytes + NUL, as the workloads keep it */
#define BENCH_ENTRY_KIND_MAX 16
/* What the bench takes from a pushed `entry` event. The pointers point into
 * the frame (not NUL-terminated) and are valid while it is. */
struct bench_entry {
    uint64_t seq;
    const char *thread;
    size_t thread_len;
    const char *kind;
    size_t kind_len;
    const uint8_t *data;
    size_t data_len;
};
/* Reads buf[0..len) if it is a plain `entry` event (the table in
 * bench_parse.c). Returns 0 with *out filled, or ERR_NOT_FOUND for any
 * other frame, well-formed or not: decode that one with wire_decode(). */
int bench_entry_parse(const uint8_t *buf, size_t len, struct bench_entry *out);

/* ---- output (bench_out.c) ---- */

/* A run's report: parameters, server settings, figures (in insertion
 * order) each with a unit for the table. */
struct bench_report {
    json_t *doc;
    json_t *params;
    json_t *server;
    json_t *figures;
    json_t *units; /* figure name -> unit string */
};
int bench_report_init(struct bench_report *r, const char *workload);
void bench_report_free(struct bench_report *r);
void bench_report_fig(struct bench_report *r, const char *name, double v, const char *unit);
void bench_report_figi(struct bench_report *r, const char *name, uint64_t v, const char *unit);
/* Prints the table (json false) or the JSON document to stdout. */
void bench_report_print(const struct bench_report *r, bool json);

/* ---- workloads ---- */

/* Each runs one workload against t with the profile and fills r. Returns
 * 0 or an ERR_* (the report may then hold partial figures). */
int bench_idle_run(const struct bench_opts *o, struct bench_profile *p,
                   const struct bench_target *t, struct bench_report *r);

int bench_care_run(const struct bench_opts *o, struct bench_profile *p,
                   const struct bench_target *t, struct bench_report *r);

/* Shared helper: logs c in as dev (challenge, sign, login) and calls done
 * with rc once. Returns 0 or the send error (done not called). */
struct bconn;
typedef void bench_login_fn(struct bconn *c, int rc, void *arg);
int bench_login_start(struct bconn *c, const struct bench_dev *dev, bench_login_fn *done,
                      void *arg);

#endif
