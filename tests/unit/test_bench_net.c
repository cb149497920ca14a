/* test_bench_net.c: the bench's own receive path (clients/bench/bench_net.c
 * with bench_ws.c, compiled in here: the bench is a program, not a library)
 * against a scripted WebSocket server on a thread (plain sockets, so every
 * byte and every write boundary is chosen here):
 *  - takeover: after the upgrade the connection's socket is read by
 *    bench_net, not lws (bconn_rx_own); a response cut into 1-byte writes,
 *    several frames in one write, a fragmented event with a ping between
 *    its fragments (answered by a masked pong with the same payload), then
 *    the server's close frame: on_close exactly once;
 *  - nothing lost at the takeover: a server that sends an event in the
 *    same write as its 101 answer (the protocol's server never does); the
 *    event reaches on_event, and the connection stays on lws's receive
 *    path (taking over at ESTABLISHED would lose it: lws had read it);
 *  - a malformed frame (text) closes the connection with ERR_MALFORMED,
 *    a frame over max_frame with ERR_TOO_BIG, each on_close once;
 *  - the bench closing: on_close once, in well under lws's 5 s close
 *    timeout.
 * bnet_free() frees everything (ASan+LSan run the suite). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>

#include "../../clients/bench/bench_net.c"
#include "../../clients/bench/bench_ws.c"

enum script { S_TAKEOVER, S_EARLY_EVENT, S_TEXT, S_TOO_BIG, S_CLIENT_CLOSE };

struct srv {
    int lfd, port;
    enum script script;
    pthread_t th;
    bool ok;         /* the server side saw what it expected */
    char why[128];
};

static int rd_exact(int fd, uint8_t *b, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int wr(int fd, const void *b, size_t n)
{
    return send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* reads one client frame (must be masked); returns its opcode or -1 */
static int rd_frame(int fd, uint8_t *pay, size_t cap, size_t *len)
{
    uint8_t h[14];
    uint64_t n;
    if (rd_exact(fd, h, 2) != 0 || !(h[1] & 0x80))
        return -1;
    n = h[1] & 0x7fu;
    if (n == 126) {
        if (rd_exact(fd, h + 2, 2) != 0)
            return -1;
        n = (uint64_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        return -1;
    }
    if (n > cap || rd_exact(fd, h + 4, 4) != 0 || rd_exact(fd, pay, (size_t)n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        pay[i] ^= h[4 + (i & 3)];
    *len = (size_t)n;
    return h[0] & 0x0f;
}

static size_t frame(uint8_t *out, uint8_t b0, const uint8_t *p, size_t n)
{
    size_t h = 2;
    out[0] = b0;
    if (n < 126) {
        out[1] = (uint8_t)n;
    } else {
        out[1] = 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        h = 4;
    }
    memcpy(out + h, p, n);
    return h + n;
}

/* an encoded event or response in out (static buffer of the encoder) */
static size_t msg_event(uint8_t *out, const char *ev, uint64_t k)
{
    struct wire_enc e;
    const uint8_t *d;
    size_t n;
    wire_enc_init(&e);
    wire_enc_event(&e, ev, 1);
    wire_kv_uint(&e, "k", k);
    assert_int_equal(wire_enc_finish(&e, &d, &n), 0);
    memcpy(out, d, n);
    wire_enc_reset(&e);
    return n;
}

static size_t msg_ok(uint8_t *out, uint32_t id)
{
    struct wire_enc e;
    const uint8_t *d;
    size_t n;
    wire_enc_init(&e);
    wire_enc_ok(&e, id, 1);
    wire_kv_str(&e, "pad", "0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_int_equal(wire_enc_finish(&e, &d, &n), 0);
    memcpy(out, d, n);
    wire_enc_reset(&e);
    return n;
}

#define FAIL(...)                                                    \
    do {                                                             \
        snprintf(s->why, sizeof(s->why), __VA_ARGS__);              \
        goto out;                                                    \
    } while (0)

static void *server(void *arg)
{
    struct srv *s = arg;
    char req[4096], key[64] = "", acc[64], resp[512];
    uint8_t buf[70000], pay[512], m[512];
    unsigned char sha[20];
    size_t len = 0, n, ml;
    int fd, op;
    char *k;

    req[0] = 0;
    fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        snprintf(s->why, sizeof(s->why), "accept");
        return NULL;
    }
    while (len < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (r <= 0)
            FAIL("upgrade request");
        len += (size_t)r;
        req[len] = 0;
    }
    for (k = req; *k && strncasecmp(k, "Sec-WebSocket-Key:", 18) != 0; k++)
        ;
    if (!*k)
        k = NULL;
    if (!k || sscanf(k + 18, " %60s", key) != 1)
        FAIL("no key");
    snprintf(resp, sizeof(resp), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    lws_SHA1((const unsigned char *)resp, strlen(resp), sha);
    if (lws_b64_encode_string((const char *)sha, 20, acc, sizeof(acc)) < 0)
        FAIL("b64");
    n = (size_t)snprintf(resp, sizeof(resp),
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                         "Sec-WebSocket-Protocol: sammen.v1\r\n\r\n",
                         acc);
    memcpy(buf, resp, n);
    if (s->script == S_EARLY_EVENT) {
        /* an event in the same write as the 101 */
        ml = msg_event(m, "early", 7);
        n += frame(buf + n, 0x82, m, ml);
    }
    if (wr(fd, buf, n) != 0)
        FAIL("101");
    /* the client's request (its id is 1) */
    op = rd_frame(fd, pay, sizeof(pay), &n);
    if (op != 2)
        FAIL("request: opcode %d", op);
    switch (s->script) {
    case S_TAKEOVER:
        /* the response, one byte per write */
        ml = msg_ok(m, 1);
        n = frame(buf, 0x82, m, ml);
        for (size_t i = 0; i < n; i++) {
            if (wr(fd, buf + i, 1) != 0)
                FAIL("1-byte writes");
            usleep(200);
        }
        /* five events in one write, the last cut in two writes */
        len = 0;
        for (uint64_t i = 1; i <= 5; i++) {
            ml = msg_event(m, "ev", i);
            len += frame(buf + len, 0x82, m, ml);
        }
        if (wr(fd, buf, len - 3) != 0)
            FAIL("burst");
        usleep(20000);
        if (wr(fd, buf + len - 3, 3) != 0)
            FAIL("burst end");
        /* a fragmented event (6) with a ping between its fragments */
        ml = msg_event(m, "ev", 6);
        len = frame(buf, 0x02, m, 4);
        len += frame(buf + len, 0x89, (const uint8_t *)"hello", 5);
        len += frame(buf + len, 0x80, m + 4, ml - 4);
        if (wr(fd, buf, len) != 0)
            FAIL("fragments");
        op = rd_frame(fd, pay, sizeof(pay), &n);
        if (op != 0xa || n != 5 || memcmp(pay, "hello", 5) != 0)
            FAIL("pong: opcode %d len %zu", op, n);
        /* the server closes */
        len = frame(buf, 0x88, (const uint8_t *)"\x03\xe8", 2);
        if (wr(fd, buf, len) != 0)
            FAIL("close");
        /* the client answers with a close frame (lws, after the hand-back)
         * or just ends the connection */
        op = rd_frame(fd, pay, sizeof(pay), &n);
        if (op != 8 && op != -1)
            FAIL("after close: opcode %d", op);
        break;
    case S_EARLY_EVENT:
    case S_CLIENT_CLOSE:
        ml = msg_ok(m, 1);
        n = frame(buf, 0x82, m, ml);
        if (wr(fd, buf, n) != 0)
            FAIL("response");
        /* the bench closes (lws 4.1 ends the TCP connection without a
         * close frame here, on lws's receive path too); nothing else */
        op = rd_frame(fd, pay, sizeof(pay), &n);
        if (op != 8 && op != -1)
            FAIL("after the bench's close: opcode %d", op);
        if (op == 8) {
            len = frame(buf, 0x88, pay, n);
            (void)wr(fd, buf, len);
        }
        break;
    case S_TEXT:
        len = frame(buf, 0x81, (const uint8_t *)"hi", 2);
        if (wr(fd, buf, len) != 0)
            FAIL("text");
        (void)rd_frame(fd, pay, sizeof(pay), &n); /* until the client ends it */
        break;
    case S_TOO_BIG:
        /* the header alone says 65000 > max_frame 4096 */
        buf[0] = 0x82, buf[1] = 126, buf[2] = 65000 >> 8, buf[3] = 65000 & 0xff;
        if (wr(fd, buf, 4) != 0)
            FAIL("big");
        (void)rd_frame(fd, pay, sizeof(pay), &n);
        break;
    }
    s->ok = true;
out:
    close(fd);
    return NULL;
}

struct client {
    int resp_rc, nresp;
    int nclose, close_rc;
    uint64_t ks[16];
    int nev;
    bool early;
    struct bconn *c;
};

static void on_resp(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct client *cl = arg;
    (void)c;
    (void)m;
    cl->resp_rc = rc;
    cl->nresp++;
}

static void on_open(struct bconn *c, void *user)
{
    struct wire_enc e;
    (void)user;
    wire_enc_init(&e);
    wire_enc_request(&e, bconn_next_id(c), "noop", 0);
    assert_int_equal(bconn_request(c, 1, &e, on_resp, user), 0);
    wire_enc_reset(&e);
}

static void on_event(struct bconn *c, const struct wire_msg *m, void *user)
{
    struct client *cl = user;
    uint64_t k = 0;
    (void)c;
    assert_int_equal(wire_get_uint(&m->body, "k", &k), 0);
    if (strcmp(m->name, "early") == 0)
        cl->early = true;
    else if (cl->nev < 16)
        cl->ks[cl->nev++] = k;
}

static void on_close(struct bconn *c, int reason, void *user)
{
    struct client *cl = user;
    (void)c;
    cl->nclose++;
    cl->close_rc = reason;
    cl->c = NULL;
}

static void start(struct srv *s, enum script sc)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(s, 0, sizeof(*s));
    s->script = sc;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, server, s), 0);
}

/* runs one scripted connection; the bench closes it once it got its
 * response when close_after_resp */
static void run(enum script sc, struct client *cl, bool *owned, bool close_after_resp)
{
    struct srv s;
    struct bnet *n;
    struct bconn_cbs cbs = {on_open, on_event, on_close, NULL};
    uint64_t t0 = bnet_now_ns();

    memset(cl, 0, sizeof(*cl));
    start(&s, sc);
    assert_int_equal(bnet_new(4096, &n), 0);
    assert_int_equal(bconn_open(n, "127.0.0.1", s.port, "/", NULL, &cbs, cl, &cl->c), 0);
    *owned = false;
    while (cl->nclose == 0 && bnet_now_ns() - t0 < 10000000000ull) {
        bnet_service(n, 20);
        if (cl->c && bconn_rx_own(cl->c))
            *owned = true;
        if (close_after_resp && cl->nresp && cl->c)
            bconn_close(cl->c);
    }
    bnet_free(n);
    pthread_join(s.th, NULL);
    close(s.lfd);
    if (!s.ok)
        fail_msg("server side: %s", s.why);
}

static void takeover(void **state)
{
    struct client cl;
    bool owned;
    (void)state;
    run(S_TAKEOVER, &cl, &owned, false);
    assert_true(owned);
    assert_int_equal(cl.nresp, 1);
    assert_int_equal(cl.resp_rc, 0);
    assert_int_equal(cl.nev, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(cl.ks[i], (uint64_t)i + 1);
    assert_int_equal(cl.nclose, 1);
    assert_int_equal(cl.close_rc, ERR_IO);
}

static void nothing_lost_before_takeover(void **state)
{
    struct client cl;
    bool owned;
    (void)state;
    run(S_EARLY_EVENT, &cl, &owned, true);
    assert_true(cl.early); /* lws had read it with the 101: not lost */
    assert_false(owned);   /* so the connection stayed on lws */
    assert_int_equal(cl.nresp, 1);
    assert_int_equal(cl.nclose, 1);
}

static void client_close(void **state)
{
    struct client cl;
    bool owned;
    (void)state;
    uint64_t t0 = bnet_now_ns();
    run(S_CLIENT_CLOSE, &cl, &owned, true);
    /* under lws's 5 s close timeout (what a close that went wrong would
     * wait for), with room for a loaded sanitizer run */
    assert_true(bnet_now_ns() - t0 < 4000000000ull);
    assert_true(owned);
    assert_int_equal(cl.nresp, 1);
    assert_int_equal(cl.nclose, 1);
}

static void text_closes(void **state)
{
    struct client cl;
    bool owned;
    (void)state;
    run(S_TEXT, &cl, &owned, false);
    assert_true(owned);
    assert_int_equal(cl.nclose, 1);
    assert_int_equal(cl.close_rc, ERR_MALFORMED);
    assert_int_equal(cl.nresp, 1); /* the pending request failed with ERR_IO */
    assert_int_equal(cl.resp_rc, ERR_IO);
}

static void too_big_closes(void **state)
{
    struct client cl;
    bool owned;
    (void)state;
    run(S_TOO_BIG, &cl, &owned, false);
    assert_true(owned);
    assert_int_equal(cl.nclose, 1);
    assert_int_equal(cl.close_rc, ERR_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(takeover),
        cmocka_unit_test(nothing_lost_before_takeover),
        cmocka_unit_test(client_close),
        cmocka_unit_test(text_closes),
        cmocka_unit_test(too_big_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
