/*
 * test_group_commit.c: the writes of one event-loop iteration share one
 * transaction. A plain TCP client (handshake and frames written by hand)
 * sends 40 write requests in one send(); the server reads them in one
 * iteration, so its debug log shows one commit releasing all 40 answers,
 * and all 40 writes are then visible.
 *
 * thread.send and ack run without a savepoint of their own: if such a
 * request failed after writing, the whole transaction must go (its row and
 * every other write of the iteration), and the others' answers must say
 * so. The test-only op test.write_fail is such a request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "wsraw.h"

#define N 40

static struct tsrv S;
static char logpath[256];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 || tsrv_init(&S, "gc.test") != 0)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/server.log", S.root);
    S.stderr_path = logpath;
    static const char *const args[] = {"--log-level", "debug", "--test-clock", NULL};
    return tsrv_start(&S, args);
}

static int teardown(void **state)
{
    (void)state;
    tsrv_cleanup(&S);
    return 0;
}

/* Appends one masked (zero mask) binary frame to buf. */
static size_t put_frame(uint8_t *buf, const uint8_t *p, size_t len)
{
    size_t o = 0;
    buf[o++] = 0x82;
    if (len < 126) {
        buf[o++] = (uint8_t)(0x80 | len);
    } else {
        buf[o++] = 0x80 | 126;
        buf[o++] = (uint8_t)(len >> 8);
        buf[o++] = (uint8_t)len;
    }
    memset(buf + o, 0, 4); /* mask key 0: payload unchanged */
    o += 4;
    memcpy(buf + o, p, len);
    return o + len;
}

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(S.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *hs = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sammen.v1\r\n\r\n";
    assert_int_equal(write(fd, hs, strlen(hs)), (ssize_t)strlen(hs));
    char resp[2048];
    size_t len = 0;
    while (len < sizeof(resp) - 1) {
        ssize_t r = read(fd, resp + len, 1);
        assert_true(r == 1);
        len++;
        resp[len] = 0;
        if (len >= 4 && !memcmp(resp + len - 4, "\r\n\r\n", 4))
            break;
    }
    assert_non_null(strstr(resp, " 101 "));
    return fd;
}

/* Reads one unmasked server frame's payload into buf; returns its length. */
static size_t read_frame(int fd, uint8_t *buf, size_t cap)
{
    uint8_t h[4];
    assert_int_equal(read(fd, h, 2), 2);
    size_t len = h[1] & 0x7f;
    if (len == 126) {
        assert_int_equal(read(fd, h + 2, 2), 2);
        len = (size_t)h[2] << 8 | h[3];
    }
    assert_true(len <= cap);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    return len;
}

/* Enrolls the admin on fd (a write of its own). */
static void enroll_admin(int fd)
{
    uint8_t pk[32], sk[64], sig[64], msg[128];
    crypto_sign_keypair(pk, sk);
    size_t cl = strlen(S.admin_code);
    memcpy(msg, "sammen-enroll-v1", 16);
    msg[16] = 0;
    memcpy(msg + 17, S.admin_code, cl);
    crypto_sign_detached(sig, NULL, msg, 17 + cl, sk);
    struct wire_enc e;
    const uint8_t *d;
    size_t dl;
    uint8_t out[512], in[1024];
    wire_enc_init(&e);
    wire_enc_request(&e, 1, "enroll", 3);
    wire_kv_str(&e, "code", S.admin_code);
    wire_kv_bin(&e, "key", pk, 32);
    wire_kv_bin(&e, "sig", sig, 64);
    assert_int_equal(wire_enc_finish(&e, &d, &dl), 0);
    size_t o = put_frame(out, d, dl);
    wire_enc_reset(&e);
    assert_int_equal(write(fd, out, o), (ssize_t)o);
    struct wire_msg m;
    size_t n = read_frame(fd, in, sizeof(in));
    assert_int_equal(wire_decode(in, n, &m), 0);
    assert_true(m.ok);
    wire_msg_free(&m);
}

static void one_commit_for_one_iteration(void **state)
{
    (void)state;
    int fd = raw_connect();
    struct wire_enc e;
    const uint8_t *d;
    size_t dl, n;
    static uint8_t out[N * 128 + 512], in[8192];
    struct wire_msg m;
    enroll_admin(fd);

    /* mark the log, then N department.add in one send() */
    usleep(200000);
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long mark = ftell(f);
    fclose(f);
    size_t o = 0;
    for (uint32_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dept-%u", i);
        wire_enc_init(&e);
        wire_enc_request(&e, 100 + i, "admin.department.add", 1);
        wire_kv_str(&e, "name", name);
        assert_int_equal(wire_enc_finish(&e, &d, &dl), 0);
        o += put_frame(out + o, d, dl);
        wire_enc_reset(&e);
    }
    assert_true(o < 4000); /* fits one read of the server's service buffer */
    assert_int_equal(write(fd, out, o), (ssize_t)o);
    for (uint32_t i = 0; i < N; i++) {
        n = read_frame(fd, in, sizeof(in));
        assert_int_equal(wire_decode(in, n, &m), 0);
        assert_true(m.ok);
        assert_int_equal(m.id, 100 + i); /* answered in order, all ok */
        wire_msg_free(&m);
    }
    close(fd);
    usleep(200000);

    /* count the commits logged since the mark */
    f = fopen(logpath, "r");
    assert_non_null(f);
    fseek(f, mark, SEEK_SET);
    char line[512];
    int commits = 0;
    size_t released = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *c = strstr(line, "commit: ok, ");
        if (c) {
            commits++;
            released += (size_t)atoi(c + strlen("commit: ok, "));
        }
    }
    fclose(f);
    fprintf(stderr, "%d write requests: %d commit(s), %zu messages released\n", N, commits,
            released);
    assert_true(commits >= 1);
    assert_true(commits <= 3); /* one, unless the kernel split our send */
    assert_int_equal(released, N);
}

/* Frames one request with no args or one string arg into buf. */
static size_t put_req(uint8_t *buf, uint32_t id, const char *op, const char *name)
{
    struct wire_enc e;
    const uint8_t *d;
    size_t dl;
    wire_enc_init(&e);
    wire_enc_request(&e, id, op, name ? 1 : 0);
    if (name)
        wire_kv_str(&e, "name", name);
    assert_int_equal(wire_enc_finish(&e, &d, &dl), 0);
    size_t o = put_frame(buf, d, dl);
    wire_enc_reset(&e);
    return o;
}

/* The answer to request id: 1 ok, 0 error (code in *code), -1 the server
 * closed the connection before answering. Events are skipped. */
static int answer(int fd, uint32_t id, char *code, size_t cap)
{
    static uint8_t in[8192];
    for (;;) {
        uint8_t h[2];
        ssize_t r = recv(fd, h, 2, MSG_PEEK);
        if (r <= 0)
            return -1;
        size_t n = read_frame(fd, in, sizeof(in));
        if ((h[0] & 0x0f) == 0x8)
            return -1; /* close frame */
        struct wire_msg m;
        assert_int_equal(wire_decode(in, n, &m), 0);
        if (m.kind != WIRE_RESPONSE || m.id != id) {
            wire_msg_free(&m);
            continue;
        }
        int ok = m.ok ? 1 : 0;
        size_t nl = m.ok ? 0 : strnlen(m.name, cap - 1);
        memcpy(code, m.name, nl);
        code[nl] = 0;
        wire_msg_free(&m);
        return ok;
    }
}

static int64_t count_of(const char *sql)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/data/sammen.db", S.root);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void failed_direct_write_loses_its_transaction(void **state)
{
    (void)state;
    uint8_t out[1024];
    char code[64];
    int fd = raw_connect();
    enroll_admin(fd);

    /* alone: its error, its row gone, and the next write is not affected */
    size_t o = put_req(out, 500, "test.write_fail", NULL);
    assert_int_equal(write(fd, out, o), (ssize_t)o);
    assert_int_equal(answer(fd, 500, code, sizeof(code)), 0);
    assert_string_equal(code, "internal");
    o = put_req(out, 501, "admin.department.add", "wf-after");
    assert_int_equal(write(fd, out, o), (ssize_t)o);
    assert_int_equal(answer(fd, 501, code, sizeof(code)), 1);
    assert_int_equal(count_of("SELECT count(*) FROM meta WHERE key = 'test.write_fail'"), 0);
    assert_int_equal(count_of("SELECT count(*) FROM departments WHERE name = 'wf-after'"), 1);

    /* between two other writes in one send(): whatever shared its
     * transaction is gone too and answered `internal` (then the
     * connection closes); a write answered ok is in the database */
    o = put_req(out, 601, "admin.department.add", "wf-a");
    o += put_req(out + o, 602, "test.write_fail", NULL);
    o += put_req(out + o, 603, "admin.department.add", "wf-b");
    assert_int_equal(write(fd, out, o), (ssize_t)o);
    int a = answer(fd, 601, code, sizeof(code));
    assert_true(a == 1 || (a == 0 && strcmp(code, "internal") == 0));
    int f = answer(fd, 602, code, sizeof(code));
    int b = answer(fd, 603, code, sizeof(code));
    close(fd);
    usleep(100000);
    assert_int_equal(count_of("SELECT count(*) FROM meta WHERE key = 'test.write_fail'"), 0);
    assert_int_equal(count_of("SELECT count(*) FROM departments WHERE name = 'wf-a'"), a == 1);
    /* after a rolled-back transaction the connection closes: the later
     * answers may not come, and wf-b was then never stored either */
    assert_true(f == 0 || f == -1);
    assert_int_equal(count_of("SELECT count(*) FROM departments WHERE name = 'wf-b'"), b == 1);
    fprintf(stderr, "batched: wf-a %s, test.write_fail %s, wf-b %s\n",
            a == 1 ? "ok" : "rolled back", f == 0 ? "error" : "closed",
            b == 1 ? "ok" : b == 0 ? "rolled back" : "closed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* a server each: the admin's enrollment code works once */
        cmocka_unit_test_setup_teardown(one_commit_for_one_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_direct_write_loses_its_transaction, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
