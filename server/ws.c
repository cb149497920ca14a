/*
 * ws.c: libwebsockets glue. protocols[0] catches HTTP and WebSocket
 * upgrades without our subprotocol (refused); protocols[1] is "sammen.v1".
 * The callback only translates lws events into conn_* calls: it never
 * frees a conn (CLOSED detaches it; server_commit() frees it later). It
 * writes from SERVER_WRITEABLE; the rest of the writing happens in
 * conn_flush_all(), at the end of each loop iteration, outside callbacks.
 */
#include "ws.h"

#include "lws_inc.h"
#include <string.h>
#include <uv.h>

#include "conn.h"
#include "err.h"
#include "log.h"
#include "server.h"
#include "uvwake.h"

struct pss {
    struct conn *c;
};

static int cb_default(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) {
        char peer[64] = "?";
        lws_get_peer_simple(wsi, peer, sizeof(peer));
        log_warn("%s: WebSocket without subprotocol sammen.v1 refused", peer);
        return 1;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static int cb_sammen(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct pss *pss = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (srv.stopping)
            return 1;
        if (srv.nconns >= srv.cfg.max_connections) {
            char peer[64] = "?";
            lws_get_peer_simple(wsi, peer, sizeof(peer));
            log_warn("%s: refused: max_connections (%llu) reached", peer,
                     (unsigned long long)srv.cfg.max_connections);
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        if (!pss)
            return -1;
        pss->c = conn_new(wsi);
        if (!pss->c) {
            log_error("out of memory for a new connection");
            return -1;
        }
        log_info("conn %llu %s: connected", (unsigned long long)pss->c->serial, pss->c->peer);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!pss || !pss->c)
            return -1;
        return conn_receive(pss->c, in, len, lws_is_first_fragment(wsi) != 0,
                            lws_is_final_fragment(wsi) != 0, lws_frame_is_binary(wsi) != 0);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!pss || !pss->c)
            return -1;
        return conn_writeable(pss->c);
    case LWS_CALLBACK_CLOSED:
        if (pss && pss->c) {
            log_info("conn %llu %s: closed", (unsigned long long)pss->c->serial, pss->c->peer);
            conn_detach(pss->c);
            pss->c = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", cb_default, 0, 0, 0, NULL, 0},
    {"sammen.v1", cb_sammen, sizeof(struct pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        log_error("lws: %.*s", (int)n, line);
    else
        log_warn("lws: %.*s", (int)n, line);
}

/* libuv (epoll) instead of lws's built-in poll(): poll() walks every
 * socket on each loop iteration, so with thousands of idle sessions each
 * iteration cost O(sessions) (PERFORMANCE.md). lws runs on our loop. */
static uv_loop_t loop;
static bool loop_ok;
/* Wakes the loop once a second even when no socket is active, so the
 * caller's per-iteration work (expiry sweeps, the shutdown drain's
 * deadline) runs on an idle server as it did under lws's poll loop. */
static uv_timer_t tick;
static bool tick_ok;

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void tick_closed(uv_handle_t *h)
{
    (void)h;
    tick_ok = false;
}

/* lws's own liveness check is off: by default (4.1) every WebSocket gets a
 * "validity" timer (PING after 300 s of silence, hang up at 310 s), filed
 * in lws's sorted timer list by a linear walk (lws_dll2_add_sorted) when the
 * connection opens and again whenever it is confirmed. That walk was a third
 * of the server's CPU while 19,000 sessions logged in (PERFORMANCE.md,
 * finding 5). Liveness is covered instead by the kernel (TCP keepalive
 * below: a peer that vanished without a FIN is found in about
 * WS_KA_TIME + WS_KA_PROBES * WS_KA_INTERVAL seconds, with no timer of
 * ours), by the bounded outbound queue (a peer that stops reading is
 * killed at max_outq), and, before login, by unauth_timeout (conn.c). */
static const lws_retry_bo_t no_validity = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};
#define WS_KA_TIME 240
#define WS_KA_INTERVAL 15
#define WS_KA_PROBES 4

/* the loop's wake-ups (group commit, settling); see uvwake.h */
static struct uvwake wake;
static bool wake_ok;

void ws_wake_in(uint64_t us)
{
    if (!wake_ok)
        return;
    /* several callers (group commit, settling): the earliest wake stands;
     * libuv timers have 1 ms resolution */
    uvwake_in_ms(&wake, (us + 999) / 1000);
}

int ws_service(void)
{
    uvwake_run_once(&wake);
    return 0;
}

int ws_start(uint16_t *port)
{
    void *loops[1] = {&loop};
    if (uv_loop_init(&loop) != 0) {
        log_error("cannot create the event loop");
        return ERR_IO;
    }
    loop_ok = true;
    if (uv_timer_init(&loop, &tick) != 0 || uv_timer_start(&tick, tick_cb, 1000, 1000) != 0) {
        log_error("cannot create the event loop's timer");
        ws_stop();
        return ERR_IO;
    }
    tick_ok = true;
    if (uvwake_init(&wake, &loop) != 0) {
        log_error("cannot create the event loop's timer");
        ws_stop();
        return ERR_IO;
    }
    wake_ok = true;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    const char *host = srv.cfg.host;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    info.port = srv.cfg.port;
    info.iface = host;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.vhost_name = "sammen";
    info.retry_and_idle_policy = &no_validity;
    info.ka_time = WS_KA_TIME;
    info.ka_interval = WS_KA_INTERVAL;
    info.ka_probes = WS_KA_PROBES;
    info.options |= LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    if (!strchr(host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (srv.cfg.tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = srv.cfg.tls_cert;
        info.ssl_private_key_filepath = srv.cfg.tls_key;
    }
    /* The context first, then its vhost: when the vhost fails (address in
     * use, bad TLS files), lws_create_context() alone still returns a
     * context whose destruction frees uv handles our loop still lists
     * (a crash on exit). A context made whole, then a vhost that fails,
     * is destroyed like any other. */
    info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    srv.ctx = lws_create_context(&info);
    if (!srv.ctx) {
        log_error("cannot create the WebSocket context");
        ws_stop();
        return ERR_IO;
    }
    struct lws_vhost *vh = lws_create_vhost(srv.ctx, &info);
    if (!vh) {
        log_error("cannot listen on %s (address in use, bad address or TLS files?)",
                  srv.cfg.listen);
        ws_stop();
        return ERR_IO;
    }
    int p = lws_get_vhost_listen_port(vh);
    if (p <= 0 || p > 65535) {
        /* lws keeps a vhost whose interface does not exist (yet) */
        log_error("cannot listen on %s (no such local address?)", srv.cfg.listen);
        ws_stop();
        return ERR_IO;
    }
    *port = (uint16_t)p;
    return 0;
}

void ws_stop(void)
{
    if (wake_ok) {
        uvwake_close(&wake);
        wake_ok = false;
    }
    if (tick_ok && !uv_is_closing((uv_handle_t *)&tick)) {
        (void)uv_timer_stop(&tick);
        uv_close((uv_handle_t *)&tick, tick_closed);
    }
    if (srv.ctx) {
        /* On a foreign libuv loop lws 4.1 destroys in two steps: the first
         * call closes its uv handles, which finish on the loop; the second,
         * once they have, frees the rest (LeakSanitizer finds the fd
         * tables otherwise). */
        lws_context_destroy(srv.ctx);
        for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
            ;
        lws_context_destroy(srv.ctx);
    }
    srv.ctx = NULL;
    if (loop_ok) {
        /* let the remaining handles finish closing on our loop */
        while (uv_loop_close(&loop) == UV_EBUSY)
            (void)uv_run(&loop, UV_RUN_NOWAIT);
        loop_ok = false;
    }
}
