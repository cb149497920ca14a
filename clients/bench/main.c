/*
 * main.c: sammen-bench, the load generator (issue 6; see bench.h for the
 * modules and PERFORMANCE.md for the method).
 *
 *   sammen-bench idle --spawn --sessions 19000 --json
 *   sammen-bench idle --url ws://127.0.0.1:8480 --server-pid PID \
 *                --admin-code CODE --profile DIR
 *
 * A run: options → the bench profile (DIR/bench.json: provisioned devices
 * and their keys, reused by later runs) → the server (--spawn: our own
 * sammen-server from --bin-dir with its data in DIR/data, created fresh
 * when the profile is new; or --url) → provisioning of the devices the
 * workload needs (admin.invite → enroll) → the workload in worker
 * processes → a table, or with --json one JSON document, on stdout.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "bench_net.h"
#include "err.h"

#define SPAWN_DOMAIN "bench.test"
#define SERVER_FD_CAP_MARGIN 100 /* files the server needs besides sockets */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sammen-bench WORKLOAD [options]\n"
            "workloads:\n"
            "  idle      N authenticated sessions held open; server memory per session\n"
            "            and the CPU cost of keep-alives\n"
            "  care      T threads of M member devices, all online, R messages/s for D s\n"
            "            from random members: throughput, latency, server CPU, lost/dup\n"
            "  catchup   members go offline, B messages per thread wait, they come back\n"
            "            and sync: time to drain\n"
            "  fanout    care with one thread of several hundred members (default M 300)\n"
            "server (one of):\n"
            "  --spawn               start sammen-server from --bin-dir, data in PROFILE/data\n"
            "  --url ws://HOST:PORT  a running server (add --server-pid for /proc figures)\n"
            "options:\n"
            "  --profile DIR         bench profile (devices and keys; default ./bench-profile)\n"
            "  --fresh               forget the profile (and the spawned server's data) first\n"
            "  --admin-code CODE     admin invitation code for a profile's first run (--url)\n"
            "  --bin-dir DIR         where sammen-server is (default: next to sammen-bench)\n"
            "  --server-pid PID      server process to read /proc figures from (--url)\n"
            "  --procs N             worker processes (default: sessions / per-proc)\n"
            "  --per-proc N          sessions per worker process (default 8000)\n"
            "  --sources N           source addresses 127.0.0.1..N (default 8)\n"
            "  --concurrency N       sessions set up at once per process (default 256)\n"
            "  --json                one JSON document instead of the table\n"
            "idle:\n"
            "  --sessions N          sessions (default 1000)\n"
            "  --window S            seconds of the CPU window (default 10)\n"
            "  --keepalive S         seconds between one session's pings, 0 = none (default 30)\n"
            "  --settle S            seconds to wait before reading memory (default 1)\n"
            "care, catchup, fanout:\n"
            "  --threads T           threads (default 100; fanout 1)\n"
            "  --members M           member devices per thread, the citizen's included\n"
            "                        (default 10; fanout 300)\n"
            "  --rate R              messages per second in total (default 1000; fanout 20)\n"
            "  --duration D          seconds of sending (default 10)\n"
            "  --drain S             seconds to wait for the last deliveries (default 10)\n"
            "  --backlog B           catchup: messages waiting per device (default 100)\n"
            "  --payload N           plaintext bytes per message (default 100)\n"
            "  --ack-every MS        care, fanout: milliseconds between a member's\n"
            "                        cumulative acks (default 20)\n");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int rm_rf(const char *path)
{
    if (access(path, F_OK) != 0)
        return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : ERR_IO;
}

static int parse_url(const char *url, struct bench_target *t)
{
    const char *p, *colon;
    size_t hl;

    if (strncmp(url, "ws://", 5) != 0)
        return ERR_INVALID; /* the bench speaks plain ws to loopback servers */
    p = url + 5;
    colon = strchr(p, ':');
    if (!colon)
        return ERR_INVALID;
    hl = (size_t)(colon - p);
    if (hl == 0 || hl >= sizeof(t->host))
        return ERR_INVALID;
    memcpy(t->host, p, hl);
    t->host[hl] = '\0';
    t->port = atoi(colon + 1);
    if (t->port <= 0 || t->port > 65535)
        return ERR_INVALID;
    snprintf(t->url, sizeof(t->url), "ws://%s:%d", t->host, t->port);
    return 0;
}

static void default_bin_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    char *slash;
    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
}

static int num(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (errno || end == s || *end || *v < lo || *v > hi)
        return ERR_INVALID;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"spawn", no_argument, NULL, 'S'},      {"url", required_argument, NULL, 'u'},
        {"profile", required_argument, NULL, 'p'}, {"fresh", no_argument, NULL, 'F'},
        {"admin-code", required_argument, NULL, 'a'}, {"bin-dir", required_argument, NULL, 'b'},
        {"server-pid", required_argument, NULL, 'P'}, {"procs", required_argument, NULL, 'n'},
        {"per-proc", required_argument, NULL, 'e'}, {"sources", required_argument, NULL, 's'},
        {"concurrency", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"sessions", required_argument, NULL, 'N'}, {"window", required_argument, NULL, 'w'},
        {"keepalive", required_argument, NULL, 'k'}, {"settle", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'T'}, {"members", required_argument, NULL, 'M'},
        {"rate", required_argument, NULL, 'R'},    {"duration", required_argument, NULL, 'D'},
        {"drain", required_argument, NULL, 'd'},   {"backlog", required_argument, NULL, 'B'},
        {"payload", required_argument, NULL, 'y'},
        {"ack-every", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int threads = 0, members = 0;
    double rate = 0;
    struct bench_opts o;
    struct bench_target t;
    struct bench_profile prof;
    struct bench_report rep;
    char bin_dir[PATH_MAX], data_dir[600], log_path[600], code[128] = "";
    char maxconn[32];
    bool have_prof = false, have_rep = false;
    int rc = ERR_INVALID, opt, status = 1;
    double v;

    memset(&o, 0, sizeof(o));
    memset(&t, 0, sizeof(t));
    o.profile = "./bench-profile";
    o.per_proc = 8000;
    o.sources = 8;
    o.concurrency = 256;
    o.sessions = 1000;
    o.window = 10;
    o.keepalive = 30;
    o.settle = 1;
    o.duration = 10;
    o.drain = 10;
    o.backlog = 100;
    o.payload = 100;
    o.ack_every = 0.02;
    default_bin_dir(bin_dir, sizeof(bin_dir));
    o.bin_dir = bin_dir;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'S': o.spawn = true; break;
        case 'u': o.url = optarg; break;
        case 'p': o.profile = optarg; break;
        case 'F': o.fresh = true; break;
        case 'a': o.admin_code = optarg; break;
        case 'b': o.bin_dir = optarg; break;
        case 'j': o.json = true; break;
        case 'h': usage(stdout); return 0;
        case 'P':
            if (num(optarg, 1, 4194304, &v) != 0)
                goto bad;
            o.server_pid = (pid_t)v;
            break;
        case 'n':
            if (num(optarg, 1, BENCH_MAX_PROCS, &v) != 0)
                goto bad;
            o.procs = (int)v;
            break;
        case 'e':
            if (num(optarg, 1, 1000000, &v) != 0)
                goto bad;
            o.per_proc = (int)v;
            break;
        case 's':
            if (num(optarg, 0, BENCH_MAX_SOURCES, &v) != 0)
                goto bad;
            o.sources = (int)v;
            break;
        case 'c':
            if (num(optarg, 1, 100000, &v) != 0)
                goto bad;
            o.concurrency = (int)v;
            break;
        case 'N':
            if (num(optarg, 1, 1000000, &v) != 0)
                goto bad;
            o.sessions = (int)v;
            break;
        case 'w':
            if (num(optarg, 0, 86400, &o.window) != 0)
                goto bad;
            break;
        case 'k':
            if (num(optarg, 0, 86400, &o.keepalive) != 0)
                goto bad;
            break;
        case 't':
            if (num(optarg, 0, 3600, &o.settle) != 0)
                goto bad;
            break;
        case 'T':
            if (num(optarg, 1, 100000, &v) != 0)
                goto bad;
            threads = (int)v;
            break;
        case 'M':
            if (num(optarg, 2, 1000, &v) != 0)
                goto bad;
            members = (int)v;
            break;
        case 'R':
            if (num(optarg, 0.001, 1e7, &rate) != 0)
                goto bad;
            break;
        case 'D':
            if (num(optarg, 0.1, 86400, &o.duration) != 0)
                goto bad;
            break;
        case 'd':
            if (num(optarg, 0, 3600, &o.drain) != 0)
                goto bad;
            break;
        case 'B':
            if (num(optarg, 1, 1000000, &v) != 0)
                goto bad;
            o.backlog = (int)v;
            break;
        case 'y':
            if (num(optarg, 1, 65536, &v) != 0)
                goto bad;
            o.payload = (int)v;
            break;
        case 'A':
            if (num(optarg, 1, 60000, &v) != 0)
                goto bad;
            o.ack_every = v / 1000;
            break;
        default:
            goto bad;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "sammen-bench: give exactly one workload\n");
        goto bad;
    }
    o.workload = argv[optind];
    {
        bool fan = strcmp(o.workload, "fanout") == 0;
        if (strcmp(o.workload, "idle") != 0 && strcmp(o.workload, "care") != 0 &&
            strcmp(o.workload, "catchup") != 0 && !fan) {
            fprintf(stderr, "sammen-bench: unknown workload '%s'\n", o.workload);
            goto bad;
        }
        o.threads = threads ? threads : fan ? 1 : 100;
        o.members = members ? members : fan ? 300 : 10;
        o.rate = rate > 0 ? rate : fan ? 20 : 1000;
    }
    if (o.members > 65535 || (long)o.threads * o.members > 1000000) {
        fprintf(stderr, "sammen-bench: too many devices\n");
        goto bad;
    }
    if (o.spawn == (o.url != NULL)) {
        fprintf(stderr, "sammen-bench: give exactly one of --spawn and --url\n");
        goto bad;
    }
    if (sodium_init() < 0)
        return 1;
    {
        /* as many files as the hard limit allows: one per session */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (mkdir(o.profile, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "sammen-bench: cannot create %s: %s\n", o.profile, strerror(errno));
        return 1;
    }
    snprintf(data_dir, sizeof(data_dir), "%s/data", o.profile);
    snprintf(log_path, sizeof(log_path), "%s/server.log", o.profile);
    if (o.fresh) {
        char path[700];
        snprintf(path, sizeof(path), "%s/bench.json", o.profile);
        (void)remove(path);
        if (rm_rf(data_dir) != 0) {
            fprintf(stderr, "sammen-bench: cannot remove %s\n", data_dir);
            return 1;
        }
    }
    rc = bench_prof_load(o.profile, &prof);
    if (rc != 0) {
        fprintf(stderr, "sammen-bench: %s/bench.json: %s\n", o.profile, err_str(rc));
        return 1;
    }
    have_prof = true;

    /* the server */
    if (o.spawn) {
        const char *extra[16];
        int nx = 0, port = 0;
        long need = (strcmp(o.workload, "idle") == 0 ? (long)o.sessions
                                                      : (long)o.threads * o.members) +
                    512;
        if (access(data_dir, F_OK) != 0) {
            /* a new server: the profile's devices (if any) are not on it */
            bench_prof_free(&prof);
            strcpy(prof.server, "");
            strcpy(prof.domain, "");
            rc = bench_srv_init(o.bin_dir, data_dir, SPAWN_DOMAIN, code, sizeof(code));
            if (rc != 0) {
                fprintf(stderr, "sammen-bench: sammen-server init failed (bin dir %s)\n",
                        o.bin_dir);
                goto out;
            }
            o.admin_code = code;
        }
        {
            /* the server may hold as many sockets as its open-file cap
             * allows (it inherits ours), less what it needs besides */
            struct rlimit rl;
            if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                need > (long)rl.rlim_cur - SERVER_FD_CAP_MARGIN)
                need = (long)rl.rlim_cur - SERVER_FD_CAP_MARGIN;
            if (need > 100000)
                need = 100000;
        }
        snprintf(maxconn, sizeof(maxconn), "%ld", need);
        extra[nx++] = "--max-connections";
        extra[nx++] = maxconn;
        extra[nx++] = "--login-per-minute";
        extra[nx++] = "100000";
        extra[nx++] = "--log-level";
        extra[nx++] = "warn";
        extra[nx] = NULL;
        rc = bench_srv_start(o.bin_dir, data_dir, log_path, extra, &t.pid, &port);
        if (rc != 0) {
            fprintf(stderr, "sammen-bench: sammen-server did not start (see %s)\n", log_path);
            goto out;
        }
        strcpy(t.host, "127.0.0.1");
        t.port = port;
        snprintf(t.url, sizeof(t.url), "ws://127.0.0.1:%d", port);
        t.spawned = true;
    } else {
        rc = parse_url(o.url, &t);
        if (rc != 0) {
            fprintf(stderr, "sammen-bench: --url must be ws://HOST:PORT\n");
            goto out;
        }
        t.pid = o.server_pid;
        if (prof.server[0] && strcmp(prof.server, t.url) != 0)
            fprintf(stderr, "sammen-bench: note: profile was provisioned against %s\n",
                    prof.server);
        snprintf(prof.server, sizeof(prof.server), "%s", t.url);
    }
    if (strncmp(t.host, "127.", 4) == 0) {
        t.nsources = o.sources;
        for (int i = 0; i < t.nsources; i++)
            snprintf(t.sources[i], sizeof(t.sources[i]), "127.0.0.%d", (i + 1) & 0xff);
    }

    /* the devices: pools by name prefix */
    if (strcmp(o.workload, "idle") == 0) {
        rc = bench_prof_provision(&prof, &t, o.admin_code, "idle", "citizen",
                                  (size_t)o.sessions, o.concurrency < 128 ? o.concurrency : 128);
    } else {
        rc = bench_prof_provision(&prof, &t, o.admin_code, "carec", "citizen",
                                  (size_t)o.threads, o.concurrency < 128 ? o.concurrency : 128);
        if (rc == 0)
            rc = bench_prof_provision(&prof, &t, o.admin_code, "carem", "volunteer",
                                      (size_t)o.threads * (size_t)(o.members - 1),
                                      o.concurrency < 128 ? o.concurrency : 128);
    }
    if (rc != 0) {
        fprintf(stderr, "sammen-bench: provisioning failed: %s\n", err_str(rc));
        goto out;
    }

    strcpy(t.domain, prof.domain); /* known once the administrator enrolled */
    rc = bench_report_init(&rep, o.workload);
    if (rc != 0)
        goto out;
    have_rep = true;
    json_object_set_new(rep.server, "url", json_string(t.url));
    json_object_set_new(rep.server, "spawned", json_boolean(t.spawned));
    json_object_set_new(rep.server, "pid", json_integer(t.pid));
    json_object_set_new(rep.server, "domain", json_string(prof.domain));
    /* store.c: journal_mode=WAL, synchronous=FULL; every write op's
     * transaction is committed (fsync) before its answer is released */
    json_object_set_new(rep.server, "durability",
                        json_string("WAL, synchronous=FULL, group commit per loop iteration"));
    if (t.spawned) {
        json_object_set_new(rep.server, "max_connections", json_string(maxconn));
        json_object_set_new(rep.server, "login_per_minute", json_integer(100000));
        json_object_set_new(rep.server, "data", json_string(data_dir));
    }
    fprintf(stderr, "sammen-bench: running %s against %s\n", o.workload, t.url);
    rc = strcmp(o.workload, "idle") == 0 ? bench_idle_run(&o, &prof, &t, &rep)
                                         : bench_care_run(&o, &prof, &t, &rep);
    json_object_set_new(rep.doc, "ok", json_boolean(rc == 0));
    if (rc != 0)
        json_object_set_new(rep.doc, "error", json_string(err_str(rc)));
    bench_report_print(&rep, o.json);
    status = rc == 0 ? 0 : 1;
out:
    if (t.spawned)
        bench_srv_stop(t.pid);
    if (have_rep)
        bench_report_free(&rep);
    if (have_prof)
        bench_prof_free(&prof);
    return status;
bad:
    usage(stderr);
    return 2;
}
