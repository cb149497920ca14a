/*
 * test_write_batch.c: the server's batched write path (server/conn.c,
 * write_queue()) against the real binary. When one loop iteration queues
 * several answers for a connection, conn.c frames up to 64 KiB of them
 * itself (frame_header(): 2-byte header below 126 bytes, 4-byte below
 * 65,536, 10-byte above) and hands them to lws as one raw write; a single
 * answer, or one too big for the batch, goes out with lws_write(BINARY).
 *
 * What a user sees when this works: every answer and event arrives, whole,
 * in order, however many the server had for the device at once and however
 * slowly the device reads. When it breaks: the client's WebSocket library
 * reports a protocol error and drops the connection (a wrong length or
 * header byte desynchronises the stream), or answers arrive cut, glued
 * together, out of order or not at all; the app hangs waiting for them.
 *
 * How: the client pipelines many requests in one TCP write, so the server
 * answers them in one iteration. The answers' sizes are under the test's
 * control: `admin.departments` lists every department, and the
 * `admin.department.add` requests placed before it in the same pipeline
 * grow that list by exactly the bytes the test plans (the answer's id width,
 * 1, 2 or 3 bytes in msgpack, gives steps of one byte). Each pipeline walks
 * answer sizes across the header boundaries (125 | 126, 65,535 | 65,536),
 * the batch limit (a message of 65,526 bytes plus its 10 reserved header
 * bytes fills RAW_BATCH_BYTES) and beyond it (100 and 140 kB), with pings
 * and the adds' own small answers between them. Every answer is compared
 * byte for byte with the one the test encodes itself from its model of the
 * server's departments (pings: id, size and a plausible time).
 *
 * Two transports: plain ws through a raw socket client written here, which
 * parses the server's frames strictly (FIN + binary, unmasked, the shortest
 * length encoding: so a wrong but self-consistent header fails too), and
 * wss through a libwebsockets client (TLS: the server's writes go through
 * OpenSSL, which takes them in records). A reader that stops reading: the
 * client sends a pipeline whose answers (about 11 MB) do not fit the socket
 * buffers, reads nothing for 1.5 s (the raw client checks that the server
 * could not write them all: lws holds the rest and writing resumes on
 * WRITEABLE), then reads everything and checks it. A reader that never reads
 * is disconnected at max_outq: test_server_limits.c (slow_reader_disconnected).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "wsraw.h"

#define MAX_NAMES 4000  /* the server lists at most 4096 */
#define NAME_MAX_LEN 64 /* handle_name_valid() */
#define READ_MS 20000   /* per answer; generous for the sanitizer build */
/* the batch limit in conn.c: a message of this size fills a batch alone */
#define BATCH_FULL (64u * 1024u - 10u)

/* ------------------------------------------------------------ model */

/* The server's departments and associations as the test expects them:
 * names sorted as SQLite's ORDER BY name (memcmp order). */
struct model {
    char *dep[MAX_NAMES];
    size_t ndep;
    char *assoc[MAX_NAMES];
    size_t nassoc;
    uint64_t made[NAME_MAX_LEN + 1]; /* names generated per length */
};

static size_t find_slot(char *const *v, size_t n, const char *name, bool *found)
{
    size_t lo = 0, hi = n;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid], name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void model_insert(char **v, size_t *n, const char *name)
{
    bool found;
    size_t at = find_slot(v, *n, name, &found);
    assert_false(found);
    assert_true(*n < MAX_NAMES);
    memmove(v + at + 1, v + at, (*n - at) * sizeof(*v));
    v[at] = strdup(name);
    assert_non_null(v[at]);
    (*n)++;
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->ndep; i++)
        free(m->dep[i]);
    for (size_t i = 0; i < m->nassoc; i++)
        free(m->assoc[i]);
    memset(m, 0, sizeof(*m));
}

/* A new department name of exactly len characters: a per-length counter in
 * base 36, padded with '0' (a valid name: a-z 0-9, starting with either). */
static void new_name(struct model *m, size_t len, char out[NAME_MAX_LEN + 1])
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    assert_true(len >= 1 && len <= NAME_MAX_LEN);
    for (;;) {
        uint64_t c = m->made[len]++;
        for (size_t i = len; i > 0; i--) {
            out[i - 1] = digits[c % 36];
            c /= 36;
        }
        assert_int_equal(c, 0); /* ran out of names of this length */
        out[len] = 0;
        bool found;
        find_slot(m->dep, m->ndep, out, &found);
        if (!found)
            return;
    }
}

/* Bytes one more department of len characters adds to the listing: the str
 * header (fixstr below 32, str8 up to 255) and the name. The array header
 * does not change while 16 <= n < 65536 (array16); the model keeps n >= 16. */
static size_t name_cost(size_t len)
{
    return len + (len < 32 ? 1 : 2);
}

/* --------------------------------------------------------- expected */

enum want_kind { W_PING, W_EXACT };

struct want {
    enum want_kind kind;
    uint32_t id;
    uint8_t *bytes; /* W_EXACT: the whole answer */
    size_t len;
};

/* One pipeline: the requests as masked client frames back to back, and the
 * answers they must produce, in order. */
struct pipe {
    uint8_t *buf;
    size_t len, cap;
    struct want *w;
    size_t nw, capw;
};

static void pipe_free(struct pipe *p)
{
    for (size_t i = 0; i < p->nw; i++)
        free(p->w[i].bytes);
    free(p->w);
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

static void grow(void **v, size_t *cap, size_t need, size_t each)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *nv = realloc(*v, c * each);
    assert_non_null(nv);
    *v = nv;
    *cap = c;
}

/* Appends payload as one masked client frame (RFC 6455 5.2). */
static void pipe_frame(struct pipe *p, const uint8_t *d, size_t len)
{
    grow((void **)&p->buf, &p->cap, p->len + len + 14, 1);
    uint8_t *o = p->buf + p->len;
    size_t h = 0;
    o[h++] = 0x82;
    if (len < 126) {
        o[h++] = (uint8_t)(0x80u | len);
    } else if (len < 65536) {
        o[h++] = 0x80 | 126;
        o[h++] = (uint8_t)(len >> 8);
        o[h++] = (uint8_t)len;
    } else {
        o[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            o[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t *mask = o + h;
    randombytes_buf(mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        o[h + i] = d[i] ^ mask[i % 4];
    p->len += h + len;
}

static void pipe_request(struct pipe *p, struct wire_enc *e)
{
    const uint8_t *d;
    size_t len;
    assert_int_equal(wire_enc_finish(e, &d, &len), 0);
    pipe_frame(p, d, len);
    wire_enc_reset(e);
}

static void pipe_want(struct pipe *p, enum want_kind kind, uint32_t id, struct wire_enc *e)
{
    const uint8_t *d;
    size_t len;
    assert_int_equal(wire_enc_finish(e, &d, &len), 0);
    grow((void **)&p->w, &p->capw, p->nw + 1, sizeof(*p->w));
    struct want *w = &p->w[p->nw++];
    w->kind = kind;
    w->id = id;
    w->len = len;
    w->bytes = NULL;
    if (kind == W_EXACT) {
        w->bytes = malloc(len);
        assert_non_null(w->bytes);
        memcpy(w->bytes, d, len);
    }
    wire_enc_reset(e);
}

/* Ids: answers carry them as msgpack uints, 1 byte below 128, 2 below 256,
 * 3 below 65536. The pools give the planner one-byte steps. */
struct ids {
    uint32_t small, mid, big;
};

static void ids_init(struct ids *ids)
{
    ids->small = 1;
    ids->mid = 128;
    ids->big = 1000;
}

static uint32_t id_small(struct ids *ids)
{
    assert_true(ids->small < 128);
    return ids->small++;
}

static uint32_t id_mid(struct ids *ids)
{
    assert_true(ids->mid < 256);
    return ids->mid++;
}

static uint32_t id_big(struct ids *ids)
{
    assert_true(ids->big < 65536);
    return ids->big++;
}

static void pipe_ping(struct pipe *p, uint32_t id)
{
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, id, "ping", 0);
    pipe_request(p, &e);
    wire_enc_init(&e);
    wire_enc_ok(&e, id, 1);
    wire_kv_uint(&e, "time", 2000000000u); /* a uint32, as every time now */
    pipe_want(p, W_PING, id, &e);
}

static void pipe_add(struct pipe *p, struct model *m, size_t len, uint32_t id)
{
    char name[NAME_MAX_LEN + 1];
    new_name(m, len, name);
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, id, "admin.department.add", 1);
    wire_kv_str(&e, "name", name);
    pipe_request(p, &e);
    wire_enc_init(&e);
    wire_enc_ok(&e, id, 1);
    wire_kv_str(&e, "department", name);
    pipe_want(p, W_EXACT, id, &e);
    model_insert(m->dep, &m->ndep, name);
}

static void enc_names(struct wire_enc *e, const char *key, char *const *v, size_t n)
{
    wire_enc_key(e, key);
    wire_enc_array(e, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        wire_enc_str(e, v[i]);
}

static void enc_deps(struct wire_enc *e, const struct model *m, uint32_t id)
{
    wire_enc_init(e);
    wire_enc_ok(e, id, 2);
    enc_names(e, "departments", m->dep, m->ndep);
    enc_names(e, "associations", m->assoc, m->nassoc);
}

static size_t deps_len(const struct model *m, uint32_t id)
{
    struct wire_enc e;
    const uint8_t *d;
    size_t len;
    enc_deps(&e, m, id);
    assert_int_equal(wire_enc_finish(&e, &d, &len), 0);
    wire_enc_reset(&e);
    return len;
}

/* admin.departments; returns the size of its answer. */
static size_t pipe_deps(struct pipe *p, const struct model *m, uint32_t id)
{
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, id, "admin.departments", 0);
    pipe_request(p, &e);
    enc_deps(&e, m, id);
    pipe_want(p, W_EXACT, id, &e);
    return p->w[p->nw - 1].len;
}

/* Adds departments (each add is in the pipeline too) until the listing
 * answered with id is exactly target bytes, then asks for it. */
static void pipe_deps_sized(struct pipe *p, struct model *m, struct ids *ids, size_t target,
                            uint32_t id)
{
    assert_true(m->ndep >= 16);
    size_t cur = deps_len(m, id);
    assert_true(target == cur || target >= cur + 2);
    while (cur < target) {
        size_t d = target - cur, len;
        if (d > name_cost(NAME_MAX_LEN))
            len = d - name_cost(NAME_MAX_LEN) >= 2 ? NAME_MAX_LEN : 31;
        else if (d >= name_cost(32))
            len = d - 2;
        else if (d == name_cost(31) + 1)
            len = 1; /* 33 = 2 + 31 */
        else
            len = d - 1;
        pipe_add(p, m, len, id_big(ids));
        cur += name_cost(len);
    }
    size_t got = pipe_deps(p, m, id);
    if (got != target)
        fail_msg("planned a listing of %zu bytes, encoded %zu", target, got);
}

/* ------------------------------------------------------ raw client */

/* A plain-ws client on a socket of its own: one write for a whole
 * pipeline, and a strict parser for what the server sends. */
struct rawc {
    int fd;
    uint8_t *buf;
    size_t off, len, cap; /* unread bytes: buf[off .. off+len) */
};

static int read_more(struct rawc *r, int ms)
{
    if (r->off && r->off + r->len + 65536 > r->cap) {
        memmove(r->buf, r->buf + r->off, r->len);
        r->off = 0;
    }
    grow((void **)&r->buf, &r->cap, r->off + r->len + 65536, 1);
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, ms);
    if (pr <= 0)
        return -1;
    ssize_t n = recv(r->fd, r->buf + r->off + r->len, r->cap - r->off - r->len, 0);
    if (n <= 0)
        return -1;
    r->len += (size_t)n;
    return 0;
}

static void send_all(int fd, const uint8_t *d, size_t len)
{
    while (len) {
        ssize_t n = send(fd, d, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail_msg("send: %s", strerror(errno));
        d += n;
        len -= (size_t)n;
    }
}

/* Connects and upgrades; rcvbuf > 0 shrinks the socket's receive buffer
 * (before connect, so the TCP window is small from the start). */
static struct rawc *rawc_open(uint16_t port, int rcvbuf)
{
    struct rawc *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* the key and accept value of RFC 6455 section 1.3 */
    static const char req[] = "GET / HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: sammen.v1\r\n\r\n";
    send_all(r->fd, (const uint8_t *)req, sizeof(req) - 1);
    const uint8_t *end = NULL;
    while (!end) {
        assert_int_equal(read_more(r, 5000), 0);
        for (size_t i = 3; i < r->len && !end; i++)
            if (!memcmp(r->buf + i - 3, "\r\n\r\n", 4))
                end = r->buf + i + 1;
        assert_true(r->len < 4096);
    }
    size_t hl = (size_t)(end - r->buf);
    char *head = strndup((const char *)r->buf, hl);
    assert_non_null(head);
    if (strncmp(head, "HTTP/1.1 101", 12) != 0 ||
        !strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") || !strstr(head, "sammen.v1"))
        fail_msg("bad upgrade answer: %s", head);
    free(head);
    r->off = hl;
    r->len -= hl;
    return r;
}

static void rawc_free(struct rawc *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r->buf);
    free(r);
}

/* The next server frame, which must be a whole binary message (FIN,
 * opcode 2, no RSV bits, unmasked) with its length in the shortest form.
 * *payload points into r's buffer until the next call. */
static void rawc_next(struct rawc *r, const uint8_t **payload, size_t *plen, size_t idx)
{
    for (;;) {
        const uint8_t *h = r->buf + r->off;
        if (r->len >= 2) {
            if (h[0] != 0x82)
                fail_msg("answer %zu: frame starts 0x%02x, want 0x82 (final binary)", idx,
                         h[0]);
            if (h[1] & 0x80)
                fail_msg("answer %zu: server frame is masked", idx);
            size_t hl = 2, len = h[1] & 0x7fu;
            if (len == 126)
                hl = 4;
            else if (len == 127)
                hl = 10;
            if (r->len >= hl) {
                if (hl == 4) {
                    len = (size_t)h[2] << 8 | h[3];
                    if (len < 126)
                        fail_msg("answer %zu: %zu bytes with a 16-bit length", idx, len);
                } else if (hl == 10) {
                    uint64_t l = 0;
                    for (int i = 2; i < 10; i++)
                        l = l << 8 | h[i];
                    if (l < 65536 || l > (64u << 20))
                        fail_msg("answer %zu: %llu bytes with a 64-bit length", idx,
                                 (unsigned long long)l);
                    len = (size_t)l;
                }
                if (r->len >= hl + len) {
                    *payload = h + hl;
                    *plen = len;
                    r->off += hl + len;
                    r->len -= hl + len;
                    return;
                }
            }
        }
        if (read_more(r, READ_MS) != 0)
            fail_msg("answer %zu: connection closed or silent for %d ms", idx, READ_MS);
    }
}

/* ---------------------------------------------------------- checks */

static void check_answer(const struct want *w, const uint8_t *d, size_t len, size_t idx)
{
    if (w->kind == W_EXACT) {
        if (len != w->len || memcmp(d, w->bytes, len) != 0)
            fail_msg("answer %zu (id %u): %zu bytes%s, want %zu bytes as encoded here", idx,
                     w->id, len, len == w->len ? " that differ" : "", w->len);
        return;
    }
    struct wire_msg m;
    if (wire_decode(d, len, &m) != 0)
        fail_msg("answer %zu (id %u): %zu bytes that do not decode", idx, w->id, len);
    uint64_t t = 0;
    bool good = m.kind == WIRE_RESPONSE && m.ok && m.id == w->id && len == w->len &&
                wire_get_uint(&m.body, "time", &t) == 0;
    wire_msg_free(&m);
    if (!good)
        fail_msg("answer %zu: want the ping answer id %u (%zu bytes), got %zu bytes", idx,
                 w->id, w->len, len);
    uint64_t now = (uint64_t)time(NULL);
    assert_true(t + 600 > now && t < now + 600);
}

/* Sends p in one write and checks every answer. */
static void raw_run(struct rawc *r, const struct pipe *p)
{
    send_all(r->fd, p->buf, p->len);
    for (size_t i = 0; i < p->nw; i++) {
        const uint8_t *d;
        size_t len;
        rawc_next(r, &d, &len, i);
        check_answer(&p->w[i], d, len, i);
    }
}

/* Calls one request on r (test set-up): returns the decoded answer. */
static void raw_call(struct rawc *r, struct wire_enc *e, struct wire_msg *out, uint8_t **keep)
{
    struct pipe p = {0};
    pipe_request(&p, e);
    send_all(r->fd, p.buf, p.len);
    pipe_free(&p);
    const uint8_t *d;
    size_t len;
    rawc_next(r, &d, &len, 0);
    *keep = malloc(len);
    assert_non_null(*keep);
    memcpy(*keep, d, len);
    assert_int_equal(wire_decode(*keep, len, out), 0);
}

/* ------------------------------------------------------ the server */

/* One server per test; the teardown stops it even when the test fails. */
struct fixture {
    struct tsrv s;
    bool inited;
    char log[224]; /* the server's stderr */
    struct model m;
    struct ids ids;
};

/* Enrolls the administrator with the init code (request built into e). */
static void enroll_req(const struct tsrv *s, struct wire_enc *e)
{
    uint8_t pk[32], sk[64], sig[64], msg[128];
    crypto_sign_keypair(pk, sk);
    size_t cl = strlen(s->admin_code);
    assert_true(17 + cl <= sizeof(msg));
    memcpy(msg, "sammen-enroll-v1", 16);
    msg[16] = 0;
    memcpy(msg + 17, s->admin_code, cl);
    crypto_sign_detached(sig, NULL, msg, 17 + cl, sk);
    sodium_memzero(sk, sizeof(sk));
    wire_enc_init(e);
    wire_enc_request(e, 1, "enroll", 3);
    wire_kv_str(e, "code", s->admin_code);
    wire_kv_bin(e, "key", pk, 32);
    wire_kv_bin(e, "sig", sig, 64);
}

/* Fills the model from an admin.departments answer. */
static void model_load(struct model *m, const struct wire_msg *msg)
{
    assert_true(msg->ok);
    const char *keys[2] = {"departments", "associations"};
    for (int k = 0; k < 2; k++) {
        struct wire_array a;
        assert_int_equal(wire_get_array(&msg->body, keys[k], &a), 0);
        for (uint32_t i = 0; i < a.n; i++) {
            const char *s;
            size_t sl;
            assert_int_equal(wire_array_str(&a, i, &s, &sl), 0);
            char name[NAME_MAX_LEN + 1];
            assert_true(sl <= NAME_MAX_LEN);
            memcpy(name, s, sl);
            name[sl] = 0;
            if (k == 0)
                model_insert(m->dep, &m->ndep, name);
            else
                model_insert(m->assoc, &m->nassoc, name);
        }
    }
}

static void start(struct fixture *f, const char *const *args)
{
    ids_init(&f->ids);
    assert_int_equal(tsrv_init(&f->s, "batch.test"), 0);
    f->inited = true;
    snprintf(f->log, sizeof(f->log), "%s/server.log", f->s.root);
    f->s.stderr_path = f->log;
    assert_int_equal(tsrv_start(&f->s, args), 0);
}

static int fx_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->s.pid = -1;
    f->s.out_fd = -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fixture *f = *state;
    if (f->inited)
        tsrv_cleanup(&f->s);
    model_free(&f->m);
    free(f);
    wsc_use_tls = false;
    return 0;
}

/* Stops the server: it must exit cleanly after all this. */
static void stop(struct fixture *f)
{
    assert_int_equal(tsrv_stop(&f->s, SIGTERM), 0);
}

/* Logs the raw client in as the administrator, loads the model and makes
 * sure it holds 16 departments at least (the listing's array header stays
 * 3 bytes from there on). */
static void raw_admin(struct fixture *f, struct rawc *r)
{
    struct wire_enc e;
    struct wire_msg m;
    uint8_t *keep;
    enroll_req(&f->s, &e);
    raw_call(r, &e, &m, &keep);
    if (!m.ok)
        fail_msg("enroll: %s: %.*s", m.name, (int)m.err_msg_len, m.err_msg);
    wire_msg_free(&m);
    free(keep);
    wire_enc_init(&e);
    wire_enc_request(&e, 2, "admin.departments", 0);
    raw_call(r, &e, &m, &keep);
    model_load(&f->m, &m);
    wire_msg_free(&m);
    free(keep);
    struct pipe p = {0};
    while (f->m.ndep < 16)
        pipe_add(&p, &f->m, 3, id_big(&f->ids));
    raw_run(r, &p);
    pipe_free(&p);
}

/* Answer sizes around the 2/4-byte header boundary and through the 4-byte
 * range, several per batch. */
static void plan_small(struct pipe *p, struct fixture *f)
{
    struct model *m = &f->m;
    struct ids *ids = &f->ids;
    pipe_ping(p, id_big(ids));
    pipe_add(p, m, 5, id_big(ids));
    pipe_ping(p, id_small(ids));
    pipe_deps(p, m, id_big(ids));
    pipe_deps_sized(p, m, ids, 124, id_small(ids));
    pipe_deps_sized(p, m, ids, 125, id_mid(ids)); /* largest with a 2-byte header */
    assert_int_equal(pipe_deps(p, m, id_big(ids)), 126); /* smallest with a 4-byte one */
    pipe_ping(p, id_big(ids));
    assert_int_equal(pipe_deps(p, m, id_big(ids)), 126);
    pipe_deps_sized(p, m, ids, 128, id_big(ids));
    pipe_deps_sized(p, m, ids, 255, id_small(ids));
    assert_int_equal(pipe_deps(p, m, id_mid(ids)), 256);
    static const size_t sizes[] = {300, 1000, 4000, 20000, 30000, 40000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        pipe_deps_sized(p, m, ids, sizes[i], id_big(ids));
        pipe_ping(p, id_big(ids));
        pipe_deps(p, m, id_big(ids));
    }
    for (int i = 0; i < 20; i++)
        pipe_ping(p, id_big(ids));
}

/* Sizes at the batch limit, the 4/10-byte boundary and past 64 KiB. */
static void plan_large(struct pipe *p, struct fixture *f)
{
    struct model *m = &f->m;
    struct ids *ids = &f->ids;
    pipe_deps_sized(p, m, ids, 65000, id_big(ids));
    pipe_ping(p, id_big(ids));
    pipe_deps(p, m, id_big(ids));
    pipe_deps_sized(p, m, ids, BATCH_FULL - 1, id_small(ids));
    assert_int_equal(pipe_deps(p, m, id_mid(ids)), BATCH_FULL);
    assert_int_equal(pipe_deps(p, m, id_big(ids)), BATCH_FULL + 1);
    pipe_ping(p, id_big(ids));
    pipe_deps_sized(p, m, ids, 65535, id_mid(ids)); /* largest with a 4-byte header */
    assert_int_equal(pipe_deps(p, m, id_big(ids)), 65536); /* smallest with a 10-byte one */
    pipe_ping(p, id_big(ids));
    assert_int_equal(pipe_deps(p, m, id_big(ids)), 65536);
    pipe_deps_sized(p, m, ids, 65538, id_big(ids));
    pipe_deps_sized(p, m, ids, 100000, id_big(ids));
    pipe_ping(p, id_big(ids));
    pipe_deps_sized(p, m, ids, 140000, id_big(ids));
    pipe_deps(p, m, id_big(ids));
    pipe_ping(p, id_big(ids));
}

/* Output that cannot fit the socket buffers (Linux lets a send buffer grow
 * to 4 MB, tcp_wmem): 80 listings of ~140 kB, about 11 MB, with small
 * answers between them. */
static size_t plan_flood(struct pipe *p, struct fixture *f)
{
    size_t total = 0;
    for (int i = 0; i < 80; i++) {
        total += pipe_deps(p, &f->m, id_big(&f->ids));
        pipe_ping(p, id_big(&f->ids));
        pipe_add(p, &f->m, 40, id_big(&f->ids));
    }
    return total;
}

static const char *const run_args[] = {"--max-outq", "64M", NULL};

static void plain_ws(void **state)
{
    struct fixture *f = *state;
    start(f, run_args);
    struct rawc *r = rawc_open(f->s.port, 0);
    raw_admin(f, r);
    struct pipe p = {0};
    plan_small(&p, f);
    raw_run(r, &p);
    fprintf(stderr, "plain ws: %zu answers from a %zu-byte pipeline\n", p.nw, p.len);
    pipe_free(&p);
    plan_large(&p, f);
    raw_run(r, &p);
    fprintf(stderr, "plain ws: %zu answers from a %zu-byte pipeline\n", p.nw, p.len);
    pipe_free(&p);
    rawc_free(r);
    stop(f);
}

static void slow_reader_plain(void **state)
{
    struct fixture *f = *state;
    start(f, run_args);
    struct rawc *r = rawc_open(f->s.port, 8192);
    raw_admin(f, r);
    struct pipe p = {0};
    pipe_deps_sized(&p, &f->m, &f->ids, 140000, id_big(&f->ids));
    raw_run(r, &p);
    pipe_free(&p);
    size_t total = plan_flood(&p, f);
    send_all(r->fd, p.buf, p.len);
    usleep(1500 * 1000);
    int queued = -1;
    assert_int_equal(ioctl(r->fd, FIONREAD, &queued), 0);
    fprintf(stderr, "slow reader: %zu answers, %zu bytes of listings; %d bytes reached us "
                    "while we did not read\n",
            p.nw, total, queued);
    /* the socket filled: most of it is still on the server's side */
    assert_true(queued >= 0 && (size_t)queued + r->len < total / 2);
    for (size_t i = 0; i < p.nw; i++) {
        const uint8_t *d;
        size_t len;
        rawc_next(r, &d, &len, i);
        check_answer(&p.w[i], d, len, i);
    }
    pipe_free(&p);
    rawc_free(r);
    stop(f);
}

/* ------------------------------------------------------------- wss */

static char cert[256], key[256];
static bool have_tls;
static char tls_root[128];

/* Checks every answer of p as it arrives on the lws client c. */
static void wsc_check(struct wsc *c, const struct pipe *p)
{
    for (size_t i = 0; i < p->nw; i++) {
        struct wsmsg *msg = wsc_recv(c, READ_MS);
        if (!msg)
            fail_msg("wss answer %zu (id %u): connection closed or silent", i, p->w[i].id);
        assert_true(msg->binary);
        check_answer(&p->w[i], msg->data, msg->len, i);
        free(msg);
    }
}

static void wsc_run(struct wsc *c, const struct pipe *p)
{
    /* the frames are masked here already: one raw write, as one TCP
     * write would carry them (TLS records in lws's hands) */
    assert_int_equal(wsc_write(c, p->buf, p->len, LWS_WRITE_RAW), 0);
    wsc_check(c, p);
}

static void wss(void **state)
{
    struct fixture *f = *state;
    if (!have_tls)
        skip();
    const char *const args[] = {"--max-outq", "64M", "--tls-cert", cert, "--tls-key", key, NULL};
    start(f, args);
    wsc_use_tls = true;
    struct wsc *c = wsc_open(f->s.port);
    assert_int_equal(c->state, WSC_OPEN);

    struct wire_enc e;
    enroll_req(&f->s, &e);
    struct pipe p = {0};
    pipe_request(&p, &e);
    assert_int_equal(wsc_write(c, p.buf, p.len, LWS_WRITE_RAW), 0);
    pipe_free(&p);
    struct wsresp r;
    assert_int_equal(wsc_next(c, &r, READ_MS), 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.msg.ok);
    wsresp_free(&r);
    assert_int_equal(wsc_call0(c, 2, "admin.departments", &r), 0);
    assert_int_equal(r.rc, 0);
    model_load(&f->m, &r.msg);
    wsresp_free(&r);
    while (f->m.ndep < 16)
        pipe_add(&p, &f->m, 3, id_big(&f->ids));
    wsc_run(c, &p);
    pipe_free(&p);

    plan_small(&p, f);
    wsc_run(c, &p);
    pipe_free(&p);
    plan_large(&p, f);
    wsc_run(c, &p);
    pipe_free(&p);

    /* stop reading for 1.5 s while the server has megabytes for us */
    plan_flood(&p, f);
    lws_rx_flow_control(c->wsi, 0);
    assert_int_equal(wsc_write(c, p.buf, p.len, LWS_WRITE_RAW), 0);
    wsc_service_until(wsc_never, NULL, 1500);
    assert_null(c->head); /* we really did not read */
    lws_rx_flow_control(c->wsi, 1);
    wsc_check(c, &p);
    pipe_free(&p);

    wsc_free(c);
    stop(f);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    if (testserver_mkdtemp(tls_root, sizeof(tls_root)) != 0)
        return -1;
    snprintf(cert, sizeof(cert), "%s/cert.pem", tls_root);
    snprintf(key, sizeof(key), "%s/key.pem", tls_root);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 1 "
             "-subj /CN=127.0.0.1 >/dev/null 2>&1",
             key, cert);
    /* the openssl tool is only needed to make the test certificate */
    have_tls = system(cmd) == 0;
    if (!have_tls)
        fprintf(stderr, "openssl tool not available: the wss test is skipped\n");
    return wsc_global_init();
}

static int teardown(void **state)
{
    (void)state;
    wsc_global_free();
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tls_root);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plain_ws, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(slow_reader_plain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(wss, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
