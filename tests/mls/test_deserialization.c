/* test_deserialization.c: deserialization.json, the MLS variable-length
 * vector headers (RFC 9420 §2.1.2): each header decodes to its length,
 * consuming exactly the header, and the length encodes back to the same
 * minimal header; an opaque<V> with that header and body decodes through
 * mls_bytes_decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "mls_struct.h"
#include "tls.h"
#include "vectors.h"

static bool check_entry(size_t i, const json_t *e, void *ctx)
{
    (void)ctx;
    struct vec_bytes h;
    struct tls_reader r;
    struct tls_writer w;
    uint64_t v = 0;
    bool ok = false;
    uint64_t want = vec_uint(e, "length");

    if (!vec_hex(e, "vlbytes_header", &h))
        return false;
    tls_reader_init(&r, h.p, h.len);
    if (tls_read_varint(&r, &v) || !tls_reader_done(&r) || v != want) {
        fprintf(stderr, "entry %zu: header decodes to %llu, want %llu\n", i,
                (unsigned long long)v, (unsigned long long)want);
        goto out;
    }
    tls_writer_init(&w, 0);
    tls_put_varint(&w, want);
    ok = tls_writer_error(&w) == 0 && vec_eq("header", &h, w.buf, w.len);
    tls_writer_reset(&w);
    if (!ok)
        goto out;

    /* As an opaque<V>: header + body decodes; one byte short is refused. */
    if (want <= 1u << 20) {
        size_t n = h.len + (size_t)want;
        uint8_t *buf = calloc(1, n);
        struct mls_bytes b;
        assert_non_null(buf);
        memcpy(buf, h.p, h.len);
        tls_reader_init(&r, buf, n);
        ok = mls_bytes_decode(&r, &b) == 0 && b.len == want && tls_reader_done(&r);
        mls_bytes_free(&b);
        tls_reader_init(&r, buf, n - 1);
        ok = ok && mls_bytes_decode(&r, &b) == ERR_MALFORMED;
        free(buf);
    }
out:
    vec_bytes_free(&h);
    return ok;
}

static void deserialization_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/deserialization.json", "deserialization.json",
                             VEC_ANY_SUITE, check_entry, NULL),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deserialization_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
