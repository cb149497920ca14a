/* testserver.c: start/stop the real sammen-server (see testserver.h). */
#define _GNU_SOURCE /* prlimit() */
#include "testserver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#ifndef SAMMEN_BIN_DIR
#define SAMMEN_BIN_DIR "."
#endif

#define WAIT_MS 10000
#define TS_DIR_PREFIX "sammen-it-"
#define TS_LOG_TAIL_LINES 40

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* In a forked child before exec: SIGKILL when the test process dies. A
 * test that crashes (assert, sanitizer abort, signal) runs no cleanup; a
 * server left behind would keep running and, with ctest's output pipe
 * inherited, make ctest wait for the test's timeout. The death signal
 * survives exec and fires when the forking thread exits (tests fork from
 * their main thread). A parent that died before the prctl has already
 * orphaned the child: getppid() differs, and it exits. */
static void die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
}

/* Waits for pid to exit within ms. Returns its decoded status or -2 on
 * timeout, -1 on error. */
static int wait_exit(pid_t pid, int ms)
{
    long long deadline = now_ms() + ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status)     ? WEXITSTATUS(status)
                   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                         : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() > deadline)
            return -2;
        sleep_ms(10);
    }
}

int testserver_mkdtemp(char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/" TS_DIR_PREFIX "XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= cap || strchr(dir, '\'')) {
        fprintf(stderr, "testserver: TMPDIR too long or has a quote\n");
        dir[0] = '\0';
        return -1;
    }
    if (!mkdtemp(dir)) {
        fprintf(stderr, "testserver: mkdtemp %s: %s\n", dir, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

int testserver_init(struct testserver *ts, const char *domain, bool test_clock)
{
    const char *bindir = getenv("SAMMEN_BIN_DIR");
    int pipefd[2] = {-1, -1};
    char out[8192];
    size_t len = 0;
    pid_t pid, parent;
    int rc = -1, st;
    json_t *doc = NULL;

    memset(ts, 0, sizeof(*ts));
    snprintf(ts->bin, sizeof(ts->bin), "%s/sammen-server",
             bindir && *bindir ? bindir : SAMMEN_BIN_DIR);
    snprintf(ts->domain, sizeof(ts->domain), "%s", domain);
    ts->test_clock = test_clock;
    if (testserver_mkdtemp(ts->dir, sizeof(ts->dir)) != 0)
        return -1;
    snprintf(ts->data, sizeof(ts->data), "%s/data", ts->dir);
    snprintf(ts->log, sizeof(ts->log), "%s/server.log", ts->dir);
    if (pipe(pipefd) != 0)
        goto out;
    parent = getpid();
    pid = fork();
    if (pid < 0)
        goto out;
    if (pid == 0) {
        die_with_parent(parent);
        int logfd = open(ts->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(pipefd[0]);
        execl(ts->bin, ts->bin, "--data", ts->data, "--domain", ts->domain, "init", "--json",
              (char *)NULL);
        fprintf(stderr, "testserver: exec %s: %s\n", ts->bin, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    pipefd[1] = -1;
    /* read stdout until EOF, bounded in time and size */
    long long deadline = now_ms() + WAIT_MS * 3;
    for (;;) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "testserver: init did not finish\n");
            kill(pid, SIGKILL);
            wait_exit(pid, WAIT_MS);
            goto out;
        }
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(pipefd[0], out + len, sizeof(out) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(out) - 1)
            break;
    }
    out[len] = '\0';
    st = wait_exit(pid, WAIT_MS);
    if (st != 0) {
        fprintf(stderr, "testserver: init exited with %d; output: %s\n", st, out);
        if (st == -2)
            kill(pid, SIGKILL), wait_exit(pid, WAIT_MS);
        goto out;
    }
    json_error_t jerr;
    doc = json_loads(out, 0, &jerr);
    const char *code = doc ? json_string_value(json_object_get(doc, "code")) : NULL;
    if (!code || strlen(code) >= sizeof(ts->admin_code)) {
        fprintf(stderr, "testserver: init --json gave no code: %s\n", out);
        goto out;
    }
    strcpy(ts->admin_code, code);
    rc = 0;
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    json_decref(doc);
    return rc;
}

/* Finds the last "listening on 127.0.0.1:PORT" in the log after offset. */
static int find_port(const struct testserver *ts, long offset)
{
    char *log = testserver_log(ts);
    int port = 0;

    if (!log)
        return 0;
    if (offset <= (long)strlen(log)) {
        const char *p = log + offset, *hit;
        while ((hit = strstr(p, "listening on 127.0.0.1:")) != NULL) {
            port = atoi(hit + strlen("listening on 127.0.0.1:"));
            p = hit + 1;
        }
    }
    free(log);
    return port;
}

int testserver_start(struct testserver *ts)
{
    return testserver_start_args(ts, NULL);
}

int testserver_start_args(struct testserver *ts, const char *const *extra_args)
{
    const char *argv[32];
    int argc = 0;
    struct stat st;
    long offset = 0;
    pid_t pid;

    if (ts->pid) {
        fprintf(stderr, "testserver: already running\n");
        return -1;
    }
    if (stat(ts->log, &st) == 0)
        offset = (long)st.st_size;
    argv[argc++] = ts->bin;
    argv[argc++] = "--data";
    argv[argc++] = ts->data;
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    if (ts->test_clock)
        argv[argc++] = "--test-clock";
    for (size_t i = 0; extra_args && extra_args[i] && argc < 30; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        die_with_parent(parent);
        int logfd = open(ts->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nullfd = open("/dev/null", O_RDONLY);
        if (logfd < 0 || nullfd < 0)
            _exit(127);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execv(ts->bin, (char *const *)(uintptr_t)argv);
        fprintf(stderr, "testserver: exec %s: %s\n", ts->bin, strerror(errno));
        _exit(127);
    }
    ts->pid = pid;
    long long deadline = now_ms() + WAIT_MS;
    while (now_ms() < deadline) {
        int port = find_port(ts, offset);
        if (port > 0) {
            ts->port = port;
            snprintf(ts->url, sizeof(ts->url), "ws://127.0.0.1:%d", port);
            return 0;
        }
        int status = wait_exit(pid, 0);
        if (status != -2) {
            char *log = testserver_log(ts);
            fprintf(stderr, "testserver: server exited (%d) before listening; log:\n%s\n", status,
                    log ? log + (offset <= (long)strlen(log) ? offset : 0) : "");
            free(log);
            ts->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "testserver: no 'listening on' line within %d ms\n", WAIT_MS);
    kill(pid, SIGKILL);
    wait_exit(pid, WAIT_MS);
    ts->pid = 0;
    return -1;
}

int testserver_stop(struct testserver *ts, int sig)
{
    int status;

    if (!ts->pid)
        return -1;
    kill(ts->pid, sig);
    status = wait_exit(ts->pid, WAIT_MS);
    if (status == -2) {
        fprintf(stderr, "testserver: no exit within %d ms of signal %d; killing\n", WAIT_MS, sig);
        kill(ts->pid, SIGKILL);
        wait_exit(ts->pid, WAIT_MS);
        status = -1;
    }
    ts->pid = 0;
    ts->port = 0;
    ts->url[0] = '\0';
    return status;
}

char *testserver_log(const struct testserver *ts)
{
    FILE *f = fopen(ts->log, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf) {
            size_t got = fread(buf, 1, (size_t)n, f);
            buf[got] = '\0';
        }
    }
    fclose(f);
    return buf;
}

int testserver_set_fsize(const struct testserver *ts, rlim_t cur, rlim_t *old_cur)
{
    struct rlimit old, lim;
    if (!ts->pid || prlimit(ts->pid, RLIMIT_FSIZE, NULL, &old) != 0)
        return -1;
    lim.rlim_cur = cur;
    lim.rlim_max = old.rlim_max;
    if (prlimit(ts->pid, RLIMIT_FSIZE, &lim, NULL) != 0)
        return -1;
    if (old_cur)
        *old_cur = old.rlim_cur;
    return 0;
}

/* Prints the last lines of the server's log to stderr. ctest shows a
 * test's output only when it fails, so this costs nothing on success and
 * says why the server refused something when it does not. */
static void print_log_tail(const struct testserver *ts)
{
    char *log = testserver_log(ts);
    if (!log || !*log) {
        free(log);
        return;
    }
    size_t len = strlen(log);
    const char *p = log + len;
    int lines = 0;
    while (p > log && lines <= TS_LOG_TAIL_LINES)
        if (*--p == '\n')
            lines++;
    if (*p == '\n')
        p++;
    fprintf(stderr, "testserver: the last lines of %s:\n%s%s", ts->log, p,
            log[len - 1] == '\n' ? "" : "\n");
    free(log);
}

void testserver_cleanup(struct testserver *ts)
{
    char cmd[256];

    if (ts->pid)
        testserver_stop(ts, SIGKILL);
    if (ts->dir[0])
        print_log_tail(ts);
    const char *base = strrchr(ts->dir, '/');
    if (ts->dir[0] && base && strncmp(base + 1, TS_DIR_PREFIX, strlen(TS_DIR_PREFIX)) == 0 &&
        strchr(ts->dir, '\'') == NULL && !getenv("SAMMEN_KEEP_TEST_DIR")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ts->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "testserver: could not remove %s\n", ts->dir);
    }
    ts->dir[0] = '\0';
}
