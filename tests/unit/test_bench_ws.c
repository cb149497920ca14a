/* test_bench_ws.c: the bench's decoder of server -> client WebSocket frames
 * (clients/bench/bench_ws.c, compiled in here: the bench is a program, not
 * a library), on known answers: the three length forms, a frame cut at
 * every byte (incomplete, never an error), a fragmented message with a
 * ping between its fragments, and each refusal (masked, RSV, text,
 * reserved opcode, long or fragmented control frame, a lone continuation,
 * a data frame inside a fragmented one, the size bound from the header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../clients/bench/bench_ws.c"

struct res {
    int rc, kind;
    size_t used, len;
    const uint8_t *out;
};

static struct res next(struct bws_dec *d, const uint8_t *b, size_t n)
{
    struct res r;
    r.rc = bws_dec_next(d, b, n, &r.used, &r.kind, &r.out, &r.len);
    return r;
}

static void lengths(void **state)
{
    static uint8_t f[10 + 70000];
    struct bws_dec d;
    struct res r;
    (void)state;

    bws_dec_init(&d, 1u << 20);
    /* 7-bit: 82 03 'a' 'b' 'c', handed out in place */
    memcpy(f, "\x82\x03" "abc", 5);
    r = next(&d, f, 5);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.used, 5);
    assert_int_equal(r.kind, BWS_MESSAGE);
    assert_int_equal(r.len, 3);
    assert_ptr_equal(r.out, f + 2);
    /* every cut of it is "read more" */
    for (size_t i = 0; i < 5; i++) {
        r = next(&d, f, i);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.used, 0);
    }
    /* 16-bit: 82 7e 01 00 + 256 bytes */
    f[0] = 0x82, f[1] = 126, f[2] = 1, f[3] = 0;
    memset(f + 4, 'x', 256);
    r = next(&d, f, 4 + 256 + 7); /* followed by more bytes */
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.used, 260);
    assert_int_equal(r.len, 256);
    assert_ptr_equal(r.out, f + 4);
    r = next(&d, f, 259);
    assert_int_equal(r.used, 0);
    /* 64-bit: 82 7f 00..00 01 11 70 (70000) */
    memcpy(f, "\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10);
    r = next(&d, f, 10 + 70000);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.used, 10 + 70000);
    assert_int_equal(r.len, 70000);
    r = next(&d, f, 9);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.used, 0);
    /* an empty binary message */
    r = next(&d, (const uint8_t *)"\x82\x00", 2);
    assert_int_equal(r.kind, BWS_MESSAGE);
    assert_int_equal(r.len, 0);
    bws_dec_reset(&d);
}

static void fragments_and_control(void **state)
{
    /* 02 02 "ab" | 89 01 "p" | 00 01 "c" | 8a 00 | 80 02 "de" | 88 02 03 e8 */
    static const uint8_t s[] = {0x02, 0x02, 'a', 'b', 0x89, 0x01, 'p', 0x00, 0x01, 'c', 0x8a,
                                0x00, 0x80, 0x02, 'd',  'e', 0x88, 0x02, 0x03, 0xe8};
    static const int kinds[] = {BWS_NONE, BWS_PING, BWS_NONE, BWS_PONG, BWS_MESSAGE, BWS_CLOSE};
    struct bws_dec d;
    struct res r;
    size_t off = 0;
    (void)state;

    bws_dec_init(&d, 64);
    for (unsigned i = 0; i < 6; i++) {
        r = next(&d, s + off, sizeof(s) - off);
        assert_int_equal(r.rc, 0);
        assert_true(r.used > 0);
        assert_int_equal(r.kind, kinds[i]);
        if (r.kind == BWS_PING)
            assert_memory_equal(r.out, "p", 1);
        if (r.kind == BWS_MESSAGE) {
            assert_int_equal(r.len, 5);
            assert_memory_equal(r.out, "abcde", 5);
        }
        if (r.kind == BWS_CLOSE) {
            assert_int_equal(r.len, 2);
            assert_int_equal(r.out[0] << 8 | r.out[1], 1000);
        }
        off += r.used;
    }
    assert_int_equal(off, sizeof(s));
    bws_dec_reset(&d);
}

static int refuse(const char *b, size_t n, size_t max, bool open_frag)
{
    struct bws_dec d;
    struct res r;
    bws_dec_init(&d, max);
    if (open_frag) {
        r = next(&d, (const uint8_t *)"\x02\x01x", 3);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.kind, BWS_NONE);
    }
    r = next(&d, (const uint8_t *)b, n);
    bws_dec_reset(&d);
    return r.rc;
}

static void refusals(void **state)
{
    (void)state;
    assert_int_equal(refuse("\x82\x81\x00\x00\x00\x00x", 7, 64, false), ERR_MALFORMED); /* masked */
    assert_int_equal(refuse("\xc2\x01x", 3, 64, false), ERR_MALFORMED);                 /* RSV1 */
    assert_int_equal(refuse("\x81\x01x", 3, 64, false), ERR_MALFORMED);                 /* text */
    assert_int_equal(refuse("\x83\x00", 2, 64, false), ERR_MALFORMED);                  /* reserved */
    assert_int_equal(refuse("\x8b\x00", 2, 64, false), ERR_MALFORMED);                  /* reserved */
    assert_int_equal(refuse("\x09\x00", 2, 64, false), ERR_MALFORMED);   /* fragmented ping */
    assert_int_equal(refuse("\x89\x7e\x00\x7e", 4, 1024, false), ERR_MALFORMED); /* ping > 125 */
    assert_int_equal(refuse("\x88\x01\x03", 3, 64, false), ERR_MALFORMED);       /* close of 1 byte */
    assert_int_equal(refuse("\x80\x01x", 3, 64, false), ERR_MALFORMED);  /* lone continuation */
    assert_int_equal(refuse("\x82\x01x", 3, 64, true), ERR_MALFORMED);   /* data inside a fragmented one */
    assert_int_equal(refuse("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, 64, false), ERR_MALFORMED);
    /* the bound, from the header alone (no payload yet) */
    assert_int_equal(refuse("\x82\x41", 2, 64, false), ERR_TOO_BIG);
    assert_int_equal(refuse("\x82\x40", 2, 64, false), 0);
    assert_int_equal(refuse("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 10, 1u << 20, false), ERR_TOO_BIG);
    /* fragments count together: 1 byte open + 64 > 64 */
    assert_int_equal(refuse("\x80\x40", 2, 64, true), ERR_TOO_BIG);
    assert_int_equal(refuse("\x80\x3f", 2, 64, true), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lengths),
        cmocka_unit_test(fragments_and_control),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
