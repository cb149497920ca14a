/*
 * bench_stat.c: latency histograms and the worker processes (bench.h).
 *
 * Histogram buckets (values in microseconds):
 *   | value v        | bucket                                   |
 *   |----------------|------------------------------------------|
 *   | 0 .. 63        | v                                        |
 *   | 2^m .. 2^(m+1) | 64 + (m-6)*32 + (v >> (m-5)) - 32, m ≥ 6 |
 * Workers talk to the parent over two pipes: control bytes down ('G', 'S'),
 * fixed-size struct bench_wmsg records up.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"
#include "err.h"

static unsigned bucket_of(uint64_t us)
{
    unsigned m, idx;

    if (us < 64)
        return (unsigned)us;
    m = 63u - (unsigned)__builtin_clzll(us);
    idx = 64u + (m - 6u) * 32u + (unsigned)(us >> (m - 5u)) - 32u;
    return idx < BENCH_HIST_N ? idx : BENCH_HIST_N - 1;
}

static double bucket_mid(unsigned idx)
{
    unsigned m, sub;
    double lo, width;

    if (idx < 64)
        return idx;
    m = (idx - 64u) / 32u + 6u;
    sub = (idx - 64u) % 32u;
    width = (double)(1ull << (m - 5u));
    lo = (double)(sub + 32u) * width;
    return lo + width / 2;
}

void bench_hist_add(struct bench_hist *h, uint64_t us)
{
    h->n[bucket_of(us)]++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_N; i++)
        dst->n[i] += src->n[i];
}

uint64_t bench_hist_count(const struct bench_hist *h)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < BENCH_HIST_N; i++)
        t += h->n[i];
    return t;
}

double bench_hist_quantile(const struct bench_hist *h, double q)
{
    uint64_t total = bench_hist_count(h), rank, seen = 0;

    if (total == 0)
        return 0;
    /* the smallest value with at least q of the samples at or below it */
    rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > total)
        rank = total;
    for (unsigned i = 0; i < BENCH_HIST_N; i++) {
        seen += h->n[i];
        if (seen >= rank)
            return bucket_mid(i);
    }
    return bucket_mid(BENCH_HIST_N - 1);
}

/* ---- pipes ---- */

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int bench_worker_send(int res_fd, const struct bench_wmsg *m)
{
    return write_all(res_fd, m, sizeof(*m));
}

int bench_worker_poll(int ctl_fd)
{
    char b;
    ssize_t r = read(ctl_fd, &b, 1);
    if (r == 1)
        return (unsigned char)b;
    if (r == 0)
        return -1;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
}

int bench_self_cpu_us(uint64_t *us)
{
    struct rusage ru;

    *us = 0;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return ERR_IO;
    *us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
          (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    return 0;
}

int bench_pool_start(struct bench_pool *pool, int n, bench_worker_fn *fn, void *arg)
{
    memset(pool, 0, sizeof(*pool));
    if (n < 1 || n > BENCH_MAX_PROCS)
        return ERR_INVALID;
    for (int i = 0; i < n; i++) {
        int ctl[2], res[2];
        pid_t pid;
        if (pipe(ctl) != 0)
            goto fail;
        if (pipe(res) != 0) {
            close(ctl[0]);
            close(ctl[1]);
            goto fail;
        }
        pid = fork();
        if (pid < 0) {
            close(ctl[0]);
            close(ctl[1]);
            close(res[0]);
            close(res[1]);
            goto fail;
        }
        if (pid == 0) {
            int st;
            /* the child keeps only its own ends */
            for (int j = 0; j < pool->n; j++) {
                close(pool->ctl[j]);
                close(pool->res[j]);
            }
            close(ctl[1]);
            close(res[0]);
            (void)fcntl(ctl[0], F_SETFL, O_NONBLOCK);
            st = fn(i, ctl[0], res[1], arg);
            close(ctl[0]);
            close(res[1]);
            _exit(st);
        }
        close(ctl[0]);
        close(res[1]);
        pool->pid[i] = pid;
        pool->ctl[i] = ctl[1];
        pool->res[i] = res[0];
        pool->n++;
    }
    return 0;
fail:
    for (int j = 0; j < pool->n; j++)
        kill(pool->pid[j], SIGKILL);
    bench_pool_wait(pool);
    return ERR_IO;
}

void bench_pool_signal(struct bench_pool *pool, char what)
{
    for (int i = 0; i < pool->n; i++)
        if (pool->ctl[i] >= 0)
            (void)write_all(pool->ctl[i], &what, 1);
}

int bench_pool_collect(struct bench_pool *pool, uint32_t kind, struct bench_wmsg *out,
                       int timeout_ms)
{
    uint64_t deadline = bnet_now_ns() + (uint64_t)timeout_ms * 1000000u;

    for (int i = 0; i < pool->n; i++) {
        size_t got = 0;
        uint8_t *p = (uint8_t *)&out[i];
        while (got < sizeof(out[i])) {
            struct pollfd pfd = {.fd = pool->res[i], .events = POLLIN};
            uint64_t now = bnet_now_ns();
            int left, pr;
            ssize_t r;
            if (now >= deadline)
                return ERR_EXPIRED;
            left = (int)((deadline - now) / 1000000u) + 1;
            pr = poll(&pfd, 1, left);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0)
                return ERR_IO;
            if (pr == 0)
                continue;
            r = read(pool->res[i], p + got, sizeof(out[i]) - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return ERR_IO;
            got += (size_t)r;
        }
        if (out[i].kind != kind)
            return ERR_IO;
    }
    return 0;
}

int bench_pool_wait(struct bench_pool *pool)
{
    int bad = 0;
    uint64_t deadline = bnet_now_ns() + 10000000000ull;

    for (int i = 0; i < pool->n; i++) {
        if (pool->ctl[i] >= 0)
            close(pool->ctl[i]);
        pool->ctl[i] = -1;
    }
    for (int i = 0; i < pool->n; i++) {
        int st = 0;
        for (;;) {
            pid_t r = waitpid(pool->pid[i], &st, WNOHANG);
            if (r == pool->pid[i])
                break;
            if (r < 0 && errno != EINTR) {
                st = 1;
                break;
            }
            if (bnet_now_ns() > deadline) {
                kill(pool->pid[i], SIGKILL);
                (void)waitpid(pool->pid[i], &st, 0);
                st = 1;
                break;
            }
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        if (pool->res[i] >= 0)
            close(pool->res[i]);
        pool->res[i] = -1;
    }
    pool->n = 0;
    return bad;
}
