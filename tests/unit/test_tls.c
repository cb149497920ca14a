/* test_tls.c: known answers for the TLS/MLS varint and vector codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "tls.h"

static void varint_known_answers(void **state)
{
    (void)state;
    /* RFC 9420 §2.1.2 examples. */
    static const struct {
        uint8_t enc[4];
        size_t len;
        uint64_t v;
    } cases[] = {
        {{0x25}, 1, 37},
        {{0x7b, 0xbd}, 2, 15293},
        {{0x9d, 0x7f, 0x3e, 0x7d}, 4, 494878333},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_reader r;
        uint64_t v = 0;
        tls_reader_init(&r, cases[i].enc, cases[i].len);
        assert_int_equal(tls_read_varint(&r, &v), 0);
        assert_int_equal(v, cases[i].v);
        assert_true(tls_reader_done(&r));

        struct tls_writer w;
        tls_writer_init(&w, 0);
        tls_put_varint(&w, cases[i].v);
        assert_int_equal(tls_writer_error(&w), 0);
        assert_int_equal(w.len, cases[i].len);
        assert_memory_equal(w.buf, cases[i].enc, cases[i].len);
        tls_writer_reset(&w);
    }
}

static void varint_rejects(void **state)
{
    (void)state;
    static const uint8_t non_minimal[] = {0x40, 0x25};
    static const uint8_t prefix11[] = {0xc0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t short_in[] = {0x80, 0x01};
    struct tls_reader r;
    uint64_t v;
    tls_reader_init(&r, non_minimal, sizeof(non_minimal));
    assert_int_equal(tls_read_varint(&r, &v), ERR_MALFORMED);
    tls_reader_init(&r, prefix11, sizeof(prefix11));
    assert_int_equal(tls_read_varint(&r, &v), ERR_MALFORMED);
    tls_reader_init(&r, short_in, sizeof(short_in));
    assert_int_equal(tls_read_varint(&r, &v), ERR_MALFORMED);
}

static void vector_roundtrip(void **state)
{
    (void)state;
    struct tls_writer w;
    tls_writer_init(&w, 0);
    size_t m = tls_vector_begin(&w);
    for (int i = 0; i < 100; i++) /* 100 items of 2 bytes: header widens to 2 */
        tls_put_u16(&w, (uint16_t)i);
    tls_vector_end(&w, m);
    tls_put_opaque(&w, (const uint8_t *)"abc", 3);
    uint8_t *buf;
    size_t len;
    assert_int_equal(tls_writer_take(&w, &buf, &len), 0);
    assert_int_equal(len, 2 + 200 + 1 + 3);

    struct tls_reader r, sub;
    tls_reader_init(&r, buf, len);
    assert_int_equal(tls_read_vector(&r, &sub), 0);
    for (int i = 0; i < 100; i++) {
        uint16_t x;
        assert_int_equal(tls_read_u16(&sub, &x), 0);
        assert_int_equal(x, i);
    }
    assert_true(tls_reader_done(&sub));
    const uint8_t *p;
    size_t n;
    assert_int_equal(tls_read_opaque(&r, &p, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "abc", 3);
    assert_true(tls_reader_done(&r));
    /* A declared length beyond the input is refused. */
    static const uint8_t lying[] = {0x05, 'a'};
    tls_reader_init(&r, lying, sizeof(lying));
    assert_int_equal(tls_read_opaque(&r, &p, &n), ERR_MALFORMED);
    free(buf);
}

static void writer_limit(void **state)
{
    (void)state;
    struct tls_writer w;
    tls_writer_init(&w, 8);
    tls_put_u64(&w, 1);
    assert_int_equal(tls_writer_error(&w), 0);
    tls_put_u8(&w, 1);
    assert_int_equal(tls_writer_error(&w), ERR_TOO_BIG);
    tls_put_u8(&w, 1); /* sticky: still no-op */
    assert_int_equal(w.len, 8);
    tls_writer_reset(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_known_answers),
        cmocka_unit_test(varint_rejects),
        cmocka_unit_test(vector_roundtrip),
        cmocka_unit_test(writer_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
