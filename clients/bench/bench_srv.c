/*
 * bench_srv.c: running sammen-server for a bench (init, start, stop) and
 * reading a process's memory and CPU time from /proc (bench.h).
 *
 *   /proc/PID/status  "VmRSS:\t  1234 kB" lines
 *   /proc/PID/stat    "pid (comm) state f4 ... f13 utime(14) stime(15) ..."
 *                     comm may hold spaces and ')': fields are counted
 *                     from the last ')'.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"
#include "err.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

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

int bench_srv_init(const char *bin_dir, const char *data_dir, const char *domain, char *code,
                   size_t cap)
{
    char exe[1024], out[4096];
    int pfd[2], st = 0, rc = ERR_IO;
    size_t got = 0;
    pid_t pid;
    json_t *doc = NULL;
    json_error_t jerr;
    const char *c;

    if ((size_t)snprintf(exe, sizeof(exe), "%s/sammen-server", bin_dir) >= sizeof(exe))
        return ERR_TOO_BIG;
    if (pipe(pfd) != 0)
        return ERR_IO;
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return ERR_IO;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(exe, exe, "--data", data_dir, "--domain", domain, "init", "--json", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        ssize_t r = read(pfd[0], out + got, sizeof(out) - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got + 1 >= sizeof(out))
            break;
    }
    out[got] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        goto out;
    doc = json_loads(out, 0, &jerr);
    c = doc ? json_string_value(json_object_get(doc, "code")) : NULL;
    if (!c || strlen(c) >= cap)
        goto out;
    strcpy(code, c);
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int bench_srv_start(const char *bin_dir, const char *data_dir, const char *log_path,
                    const char *const *argv_extra, pid_t *pid_out, int *port_out)
{
    char exe[1024], buf[65536];
    const char *argv[64];
    int n = 0, fd;
    pid_t pid;
    off_t start;

    if ((size_t)snprintf(exe, sizeof(exe), "%s/sammen-server", bin_dir) >= sizeof(exe))
        return ERR_TOO_BIG;
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return ERR_IO;
    start = lseek(fd, 0, SEEK_END);
    argv[n++] = exe;
    argv[n++] = "--data";
    argv[n++] = data_dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (int i = 0; argv_extra && argv_extra[i] && n < 62; i++)
        argv[n++] = argv_extra[i];
    argv[n] = NULL;
    pid = fork();
    if (pid < 0) {
        close(fd);
        return ERR_IO;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    /* wait for "listening on 127.0.0.1:PORT" in the new part of the log */
    for (int i = 0; i < 400; i++) {
        int lfd = open(log_path, O_RDONLY | O_CLOEXEC);
        ssize_t r = -1;
        if (lfd >= 0) {
            if (lseek(lfd, start, SEEK_SET) == start)
                r = read(lfd, buf, sizeof(buf) - 1);
            close(lfd);
        }
        if (r > 0) {
            const char *p;
            buf[r] = '\0';
            p = strstr(buf, "listening on 127.0.0.1:");
            if (p) {
                int port = atoi(p + strlen("listening on 127.0.0.1:"));
                if (port > 0 && port < 65536) {
                    *pid_out = pid;
                    *port_out = port;
                    return 0;
                }
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return ERR_IO;
        sleep_ms(25);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    return ERR_IO;
}

void bench_srv_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return;
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
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
