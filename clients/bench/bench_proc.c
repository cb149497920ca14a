/*
 * bench_proc.c: a process's memory and CPU time from /proc (bench.h).
 *
 *   /proc/PID/status  "VmRSS:\t  1234 kB" lines
 *   /proc/PID/stat    "pid (comm) state f4 ... f13 utime(14) stime(15) ..."
 *                     comm may hold spaces and ')': fields are counted
 *                     from the last ')'.
 * The parsers take the text with its length and never read past it
 * (tests/fuzz/fuzz_bench_parse.c).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"



/* Reads up to cap-1 bytes of path into buf (NUL-terminated). */
static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    if (fd < 0)
        return ERR_IO;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            return ERR_IO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return 0;
}

int bench_proc_parse_status(const char *buf, size_t len, const char *key, uint64_t *kib)
{
    size_t klen = strlen(key);
    size_t i = 0;

    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n')
            e++;
        if (e - i > klen && memcmp(buf + i, key, klen) == 0 && buf[i + klen] == ':') {
            size_t j = i + klen + 1;
            uint64_t v = 0;
            bool digit = false;
            while (j < e && (buf[j] == ' ' || buf[j] == '\t'))
                j++;
            while (j < e && buf[j] >= '0' && buf[j] <= '9') {
                if (v > (UINT64_MAX - 9) / 10)
                    return ERR_MALFORMED;
                v = v * 10 + (uint64_t)(buf[j] - '0');
                digit = true;
                j++;
            }
            if (!digit)
                return ERR_MALFORMED;
            *kib = v;
            return 0;
        }
        i = e + 1;
    }
    return ERR_NOT_FOUND;
}

int bench_proc_parse_stat(const char *buf, size_t len, uint64_t *utime, uint64_t *stime)
{
    size_t i, field = 2; /* the field after ')' is field 3 (state) */
    uint64_t v[2] = {0, 0};

    /* the last ')' ends comm */
    i = len;
    while (i > 0 && buf[i - 1] != ')')
        i--;
    if (i == 0)
        return ERR_MALFORMED;
    while (i < len) {
        size_t s;
        while (i < len && buf[i] == ' ')
            i++;
        if (i >= len)
            break;
        field++;
        s = i;
        while (i < len && buf[i] != ' ' && buf[i] != '\n')
            i++;
        if (field == 14 || field == 15) {
            uint64_t x = 0;
            if (s == i)
                return ERR_MALFORMED;
            for (size_t k = s; k < i; k++) {
                if (buf[k] < '0' || buf[k] > '9' || x > (UINT64_MAX - 9) / 10)
                    return ERR_MALFORMED;
                x = x * 10 + (uint64_t)(buf[k] - '0');
            }
            v[field - 14] = x;
            if (field == 15) {
                *utime = v[0];
                *stime = v[1];
                return 0;
            }
        }
        if (i < len && buf[i] == '\n')
            break;
    }
    return ERR_MALFORMED;
}

int bench_proc_mem(pid_t pid, uint64_t *rss_kib, uint64_t *hwm_kib)
{
    char path[64], buf[8192];
    size_t len;
    int rc;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    rc = read_small(path, buf, sizeof(buf), &len);
    if (rc == 0)
        rc = bench_proc_parse_status(buf, len, "VmRSS", rss_kib);
    if (rc == 0)
        rc = bench_proc_parse_status(buf, len, "VmHWM", hwm_kib);
    return rc == 0 ? 0 : ERR_IO;
}

int bench_proc_cpu(pid_t pid, double *seconds)
{
    char path[64], buf[4096];
    size_t len;
    uint64_t u, s;
    long tck = sysconf(_SC_CLK_TCK);
    int rc;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    rc = read_small(path, buf, sizeof(buf), &len);
    if (rc == 0)
        rc = bench_proc_parse_stat(buf, len, &u, &s);
    if (rc != 0 || tck <= 0)
        return ERR_IO;
    *seconds = (double)(u + s) / (double)tck;
    return 0;
}
