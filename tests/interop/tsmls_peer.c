/*
 * tsmls_peer.c: child-process driver for the ts-mls interop peer (see
 * tsmls_peer.h). fork/exec of node with two pipes; requests are written as
 * one compact JSON line; replies are read line by line with poll() and a
 * timeout, into a buffer capped at TSMLS_MAX_LINE.
 */
#define _POSIX_C_SOURCE 200809L
#include "tsmls_peer.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"

#define TSMLS_MAX_LINE (16u << 20) /* a reply line larger than this is a failure */
#define TSMLS_TIMEOUT_MS 60000

struct tsmls_peer {
    pid_t pid;
    int to_child;   /* peer's stdin */
    int from_child; /* peer's stdout */
    char *buf;      /* bytes read but not yet consumed */
    size_t len, cap;
};

int tsmls_node_available(void)
{
    return system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") == 0;
}

int tsmls_peer_start(const char *dir, struct tsmls_peer **out)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    struct tsmls_peer *p = NULL;
    char script[4096];
    int rc = ERR_IO;

    *out = NULL;
    /* A peer that dies must show up as a failed write, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    if (snprintf(script, sizeof(script), "%s/peer.mjs", dir) >= (int)sizeof(script))
        return ERR_TOO_BIG;
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "tsmls_peer: %s not found (install step not run?)\n", script);
        return ERR_NOT_FOUND;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return ERR_NOMEM;
    if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0)
        goto out;
    p->pid = fork();
    if (p->pid < 0)
        goto out;
    if (p->pid == 0) {
        if (dup2(in_pipe[0], 0) < 0 || dup2(out_pipe[1], 1) < 0)
            _exit(127);
        close(in_pipe[0]);
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(out_pipe[1]);
        execlp("node", "node", script, (char *)NULL);
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    p->to_child = in_pipe[1];
    p->from_child = out_pipe[0];
    in_pipe[0] = in_pipe[1] = out_pipe[0] = out_pipe[1] = -1;
    *out = p;
    p = NULL;
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (in_pipe[i] >= 0)
            close(in_pipe[i]);
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
    }
    free(p);
    return rc;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ERR_IO;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until buf holds a '\n'; returns the line length (excluding it). */
static int read_line(struct tsmls_peer *p, size_t *line_len)
{
    for (;;) {
        char *nl = p->len > 0 ? memchr(p->buf, '\n', p->len) : NULL;
        if (nl != NULL) {
            *line_len = (size_t)(nl - p->buf);
            return 0;
        }
        if (p->len == p->cap) {
            size_t ncap = p->cap == 0 ? 65536 : p->cap * 2;
            char *nb;
            if (ncap > TSMLS_MAX_LINE)
                return ERR_TOO_BIG;
            nb = realloc(p->buf, ncap);
            if (nb == NULL)
                return ERR_NOMEM;
            p->buf = nb;
            p->cap = ncap;
        }
        struct pollfd pfd = {.fd = p->from_child, .events = POLLIN};
        int pr = poll(&pfd, 1, TSMLS_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            fprintf(stderr, "tsmls_peer: no reply within %d ms\n", TSMLS_TIMEOUT_MS);
            return ERR_IO;
        }
        ssize_t r = read(p->from_child, p->buf + p->len, p->cap - p->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "tsmls_peer: peer closed its output\n");
            return ERR_IO;
        }
        p->len += (size_t)r;
    }
}

int tsmls_peer_call(struct tsmls_peer *p, const json_t *req, json_t **reply)
{
    char *line = NULL;
    json_t *r = NULL;
    json_error_t jerr;
    size_t n = 0;
    int rc;

    *reply = NULL;
    line = json_dumps(req, JSON_COMPACT);
    if (line == NULL)
        return ERR_NOMEM;
    rc = write_all(p->to_child, line, strlen(line));
    if (rc == 0)
        rc = write_all(p->to_child, "\n", 1);
    if (rc != 0)
        goto out;
    rc = read_line(p, &n);
    if (rc != 0)
        goto out;
    r = json_loadb(p->buf, n, 0, &jerr);
    memmove(p->buf, p->buf + n + 1, p->len - n - 1);
    p->len -= n + 1;
    if (r == NULL || !json_is_object(r)) {
        fprintf(stderr, "tsmls_peer: reply is not a JSON object\n");
        rc = ERR_MALFORMED;
        goto out;
    }
    if (!json_is_true(json_object_get(r, "ok"))) {
        const char *cmd = json_string_value(json_object_get(req, "cmd"));
        const char *e = json_string_value(json_object_get(r, "error"));
        fprintf(stderr, "tsmls_peer: %s failed: %s\n", cmd ? cmd : "?", e ? e : "?");
        rc = ERR_INVALID;
        goto out;
    }
    *reply = r;
    r = NULL;
out:
    json_decref(r);
    free(line);
    return rc;
}

int tsmls_peer_stop(struct tsmls_peer *p)
{
    int status = 0, rc;

    if (p == NULL)
        return 0;
    (void)write_all(p->to_child, "{\"cmd\":\"quit\"}\n", 15);
    close(p->to_child);
    close(p->from_child);
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    free(p->buf);
    free(p);
    return rc;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tsmls_hex_field(const json_t *obj, const char *key, uint8_t **out, size_t *len)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t n;
    uint8_t *b;

    *out = NULL;
    *len = 0;
    if (s == NULL)
        return ERR_NOT_FOUND;
    n = strlen(s);
    if (n % 2 != 0)
        return ERR_MALFORMED;
    b = malloc(n / 2 + 1);
    if (b == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return ERR_MALFORMED;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return 0;
}

char *tsmls_hex(const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * len] = '\0';
    return s;
}
