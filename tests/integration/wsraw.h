/*
 * wsraw.h: test helpers for the server's integration tests (header-only,
 * included by test_frames.c and test_server_*.c; not a test itself):
 *   - tsrv_*: init a fresh data directory with the real sammen-server
 *     (init --json), start it on 127.0.0.1:0 and read the port from its
 *     "listening on" line, stop it with a signal; a server dies with the
 *     test process (tsrv_die_with_parent), however that ends;
 *   - wsc_*: a raw libwebsockets client that sends arbitrary frames (text,
 *     fragmented, oversized, garbage) and collects what comes back;
 *   - small msgpack helpers on protocol/wire.h.
 */
#ifndef SAMMEN_WSRAW_H
#define SAMMEN_WSRAW_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "testserver.h"
#include "wire.h"

#define WSRAW_UNUSED __attribute__((unused))

/* ------------------------------------------------------------ server */

struct tsrv {
    pid_t pid;
    int out_fd;
    char root[128]; /* temp dir */
    char data[192]; /* root/data */
    uint16_t port;
    char admin_code[64];
    const char *stderr_path; /* when set, the server's stderr goes there */
};

static WSRAW_UNUSED const char *tsrv_bin(void)
{
    static char path[512];
    const char *dir = getenv("SAMMEN_BIN_DIR");
    snprintf(path, sizeof(path), "%s/sammen-server", dir ? dir : SAMMEN_BIN_DIR);
    return path;
}

static WSRAW_UNUSED uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Creates a temp dir and runs `init --json`; stores the admin code. */
static WSRAW_UNUSED int tsrv_init(struct tsrv *s, const char *domain)
{
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    s->out_fd = -1;
    if (testserver_mkdtemp(s->root, sizeof(s->root)) != 0)
        return -1;
    snprintf(s->data, sizeof(s->data), "%s/data", s->root);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' --data '%s' --domain '%s' init --json", tsrv_bin(), s->data,
             domain);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = 0;
    if (pclose(p) != 0)
        return -1;
    const char *k = strstr(buf, "\"code\": \"");
    if (!k)
        return -1;
    k += 9;
    const char *e = strchr(k, '"');
    if (!e || (size_t)(e - k) >= sizeof(s->admin_code))
        return -1;
    memcpy(s->admin_code, k, (size_t)(e - k));
    s->admin_code[e - k] = 0;
    return 0;
}

/* In a forked child before exec: SIGKILL when the test process dies. A
 * test that crashes (assert, sanitizer abort, signal) runs no cleanup, and
 * a server left running keeps ctest's output pipe open, so ctest would wait
 * for the test's timeout instead of reporting the crash. The death signal
 * survives exec; it fires when the thread that forked exits (tests fork from
 * their main thread). If the parent died before the prctl, the child was
 * already reparented: getppid() no longer matches and it exits. */
static WSRAW_UNUSED void tsrv_die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
}

/* Starts the server (extra: NULL-terminated extra arguments) and waits for
 * its "listening on 127.0.0.1:PORT" line. */
static WSRAW_UNUSED int tsrv_start(struct tsrv *s, const char *const *extra)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    const char *argv[32];
    int a = 0;
    argv[a++] = tsrv_bin();
    argv[a++] = "--data";
    argv[a++] = s->data;
    argv[a++] = "--listen";
    argv[a++] = "127.0.0.1:0";
    for (int i = 0; extra && extra[i] && a < 30; i++)
        argv[a++] = extra[i];
    argv[a] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        tsrv_die_with_parent(parent);
        dup2(fds[1], 1);
        if (s->stderr_path) {
            int fd = open(s->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0)
                dup2(fd, 2);
        }
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    s->pid = pid;
    s->out_fd = fds[0];
    char line[512];
    size_t len = 0;
    uint64_t deadline = now_ms() + 15000;
    while (now_ms() < deadline) {
        struct pollfd pfd = {.fd = s->out_fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t r = read(s->out_fd, line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        line[len] = 0;
        const char *p = strstr(line, "listening on 127.0.0.1:");
        if (p && strchr(p, '\n')) {
            s->port = (uint16_t)atoi(p + strlen("listening on 127.0.0.1:"));
            return s->port ? 0 : -1;
        }
        if (len == sizeof(line) - 1)
            return -1;
    }
    return -1;
}

/* Sends sig and waits; returns the exit status (or 128+signal). */
static WSRAW_UNUSED int tsrv_stop(struct tsrv *s, int sig)
{
    int status = -1;
    if (s->pid > 0) {
        kill(s->pid, sig);
        int st;
        if (waitpid(s->pid, &st, 0) == s->pid)
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        s->pid = -1;
    }
    if (s->out_fd >= 0)
        close(s->out_fd);
    s->out_fd = -1;
    return status;
}

static WSRAW_UNUSED void tsrv_cleanup(struct tsrv *s)
{
    tsrv_stop(s, SIGTERM);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", s->root);
}

/* ------------------------------------------------------------ client */

struct wsmsg {
    struct wsmsg *next;
    size_t len;
    bool binary;
    uint8_t data[];
};

enum { WSC_CONNECTING, WSC_OPEN, WSC_CLOSED };

struct wsc {
    struct lws *wsi;
    int state;
    uint8_t *rx;
    size_t rx_len;
    bool rx_binary;
    struct wsmsg *head, *tail;
    /* one pending outbound write */
    uint8_t *tx;
    size_t tx_len;
    int tx_flags;
    bool tx_pending;
};

static struct lws_context *wsc_ctx;
/* Set to connect with TLS (accepting a self-signed certificate). */
static bool wsc_use_tls;
static lws_sorted_usec_list_t wsc_tick;

static void wsc_tick_cb(lws_sorted_usec_list_t *sul)
{
    /* wakes lws_service() up regularly so loops can check deadlines */
    lws_sul_schedule(wsc_ctx, 0, sul, wsc_tick_cb, 50 * LWS_US_PER_MS);
}

static int wsc_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    (void)user;
    struct wsc *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c)
            c->state = WSC_OPEN;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (!c)
            break;
        if (lws_is_first_fragment(wsi)) {
            c->rx_len = 0;
            c->rx_binary = lws_frame_is_binary(wsi) != 0;
        }
        uint8_t *nb = realloc(c->rx, c->rx_len + len + 1);
        if (!nb)
            return -1;
        c->rx = nb;
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (lws_is_final_fragment(wsi)) {
            struct wsmsg *m = malloc(sizeof(*m) + c->rx_len);
            if (!m)
                return -1;
            m->next = NULL;
            m->len = c->rx_len;
            m->binary = c->rx_binary;
            memcpy(m->data, c->rx, c->rx_len);
            if (c->tail)
                c->tail->next = m;
            else
                c->head = m;
            c->tail = m;
            c->rx_len = 0;
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c && c->tx_pending) {
            c->tx_pending = false;
            if (lws_write(wsi, c->tx + LWS_PRE, c->tx_len, (enum lws_write_protocol)c->tx_flags) <
                0)
                return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        /* WSI_DESTROY too: a connection lws drops without CLOSED (seen: a
         * plain client refused by a TLS server) must not leave c->wsi
         * dangling for wsc_free() */
        if (c) {
            c->state = WSC_CLOSED;
            c->wsi = NULL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols wsc_protocols[] = {
    {"sammen.v1", wsc_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static WSRAW_UNUSED int wsc_global_init(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = wsc_protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.gid = -1;
    info.uid = -1;
    wsc_ctx = lws_create_context(&info);
    if (!wsc_ctx)
        return -1;
    lws_sul_schedule(wsc_ctx, 0, &wsc_tick, wsc_tick_cb, 50 * LWS_US_PER_MS);
    return 0;
}

static WSRAW_UNUSED void wsc_global_free(void)
{
    if (wsc_ctx)
        lws_context_destroy(wsc_ctx);
    wsc_ctx = NULL;
}

static WSRAW_UNUSED void wsc_service_until(bool (*done)(void *), void *arg, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (!done(arg) && now_ms() < deadline)
        lws_service(wsc_ctx, 0);
}

static bool wsc_not_connecting(void *arg)
{
    return ((struct wsc *)arg)->state != WSC_CONNECTING;
}

/* Opens a connection (subprotocol: "sammen.v1" unless proto given, "" for
 * none). Returns a heap wsc whose state is WSC_OPEN on success. */
static WSRAW_UNUSED struct wsc *wsc_open_proto(uint16_t port, const char *proto)
{
    struct wsc *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = wsc_ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/";
    ci.host = "127.0.0.1";
    ci.origin = "127.0.0.1";
    ci.protocol = proto && !proto[0] ? NULL : (proto ? proto : "sammen.v1");
    ci.local_protocol_name = "sammen.v1";
    ci.opaque_user_data = c;
    if (wsc_use_tls)
        ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
                            LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
    c->state = WSC_CONNECTING;
    c->wsi = lws_client_connect_via_info(&ci);
    if (!c->wsi)
        c->state = WSC_CLOSED;
    wsc_service_until(wsc_not_connecting, c, 5000);
    return c;
}

static WSRAW_UNUSED struct wsc *wsc_open(uint16_t port)
{
    return wsc_open_proto(port, NULL);
}

static bool wsc_sent(void *arg)
{
    struct wsc *c = arg;
    return !c->tx_pending || c->state == WSC_CLOSED;
}

/* Writes one frame (or fragment: flags from lws_write_protocol). */
static WSRAW_UNUSED int wsc_write(struct wsc *c, const void *data, size_t len, int flags)
{
    if (c->state != WSC_OPEN)
        return -1;
    free(c->tx);
    c->tx = malloc(LWS_PRE + len + 1);
    if (!c->tx)
        return -1;
    memcpy(c->tx + LWS_PRE, data, len);
    c->tx_len = len;
    c->tx_flags = flags;
    c->tx_pending = true;
    lws_callback_on_writable(c->wsi);
    wsc_service_until(wsc_sent, c, 5000);
    return c->tx_pending ? -1 : 0;
}

static WSRAW_UNUSED int wsc_send(struct wsc *c, const void *data, size_t len)
{
    return wsc_write(c, data, len, LWS_WRITE_BINARY);
}

static bool wsc_has_msg(void *arg)
{
    struct wsc *c = arg;
    return c->head || c->state == WSC_CLOSED;
}

/* Waits up to ms for one message; caller frees it. NULL on close/timeout. */
static WSRAW_UNUSED struct wsmsg *wsc_recv(struct wsc *c, int ms)
{
    wsc_service_until(wsc_has_msg, c, ms);
    struct wsmsg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
    }
    return m;
}

static bool wsc_is_closed(void *arg)
{
    return ((struct wsc *)arg)->state == WSC_CLOSED;
}

/* Waits up to ms for the server to close; true if it did. */
static WSRAW_UNUSED bool wsc_wait_closed(struct wsc *c, int ms)
{
    wsc_service_until(wsc_is_closed, c, ms);
    return c->state == WSC_CLOSED;
}

static bool wsc_never(void *arg)
{
    (void)arg;
    return false;
}

static WSRAW_UNUSED void wsc_free(struct wsc *c)
{
    if (!c)
        return;
    if (c->wsi) {
        lws_set_opaque_user_data(c->wsi, NULL);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        c->wsi = NULL;
        wsc_service_until(wsc_never, NULL, 20);
    }
    while (c->head) {
        struct wsmsg *m = c->head;
        c->head = m->next;
        free(m);
    }
    free(c->rx);
    free(c->tx);
    free(c);
}

/* ------------------------------------------------------------ msgpack */

/* Sends a request built by the caller in e; frees e. */
static WSRAW_UNUSED int wsc_send_enc(struct wsc *c, struct wire_enc *e)
{
    const uint8_t *d;
    size_t len;
    int rc = wire_enc_finish(e, &d, &len);
    if (rc == 0)
        rc = wsc_send(c, d, len);
    wire_enc_reset(e);
    return rc;
}

/* A received, decoded response (msg points into m). */
struct wsresp {
    struct wsmsg *raw;
    struct wire_msg msg;
    int rc;
};

/* Waits for the next message and decodes it. Returns 0 with r filled, -1
 * on close/timeout. Free with wsresp_free. */
static WSRAW_UNUSED int wsc_next(struct wsc *c, struct wsresp *r, int ms)
{
    memset(r, 0, sizeof(*r));
    r->raw = wsc_recv(c, ms);
    if (!r->raw)
        return -1;
    r->rc = wire_decode(r->raw->data, r->raw->len, &r->msg);
    return 0;
}

static WSRAW_UNUSED void wsresp_free(struct wsresp *r)
{
    wire_msg_free(&r->msg);
    free(r->raw);
    r->raw = NULL;
}

/* Sends {op} with no args and waits for the answer. */
static WSRAW_UNUSED int wsc_call0(struct wsc *c, uint32_t id, const char *op, struct wsresp *r)
{
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, id, op, 0);
    if (wsc_send_enc(c, &e) != 0)
        return -1;
    return wsc_next(c, r, 5000);
}

#endif
