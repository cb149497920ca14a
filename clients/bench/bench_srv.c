/*
 * bench_srv.c: running sammen-server for a bench (init, start, stop) and
 * the /proc readings are in bench_proc.c (bench.h).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"
#include "err.h"

/* In a forked child: die with the bench (SIGKILL when it exits, however
 * it ends), and at once if it already ended before the prctl. A bench that
 * crashed used to leave its spawned server running. */
static void die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
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
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return ERR_IO;
    }
    if (pid == 0) {
        die_with_parent(parent);
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
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        close(fd);
        return ERR_IO;
    }
    if (pid == 0) {
        die_with_parent(parent);
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

