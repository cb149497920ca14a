/* test_wire.c: known answers for the envelope codec (protocol/wire.c):
 * round trips, every decoder limit refused with its error, and the 5-byte
 * "huge array" frame refused before anything is allocated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "wire.h"

static void request_roundtrip(void **state)
{
    (void)state;
    struct wire_enc e;
    wire_enc_init(&e);
    wire_enc_request(&e, 7, "admin.invite", 4);
    wire_kv_str(&e, "role", "staff");
    wire_kv_bin(&e, "sig", (const uint8_t *)"\x01\x02\x03", 3);
    wire_kv_uint(&e, "n", 42);
    wire_enc_key(&e, "list");
    wire_enc_array(&e, 2);
    wire_enc_str(&e, "a");
    wire_enc_map(&e, 1);
    wire_kv_bool(&e, "x", true);
    const uint8_t *data;
    size_t len;
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);

    struct wire_msg m;
    assert_int_equal(wire_decode(data, len, &m), 0);
    assert_int_equal(m.kind, WIRE_REQUEST);
    assert_int_equal(m.id, 7);
    assert_int_equal(m.version, 1);
    assert_string_equal(m.name, "admin.invite");
    const char *s;
    size_t sl;
    assert_int_equal(wire_get_str(&m.body, "role", &s, &sl), 0);
    assert_int_equal(sl, 5);
    assert_memory_equal(s, "staff", 5);
    const uint8_t *b;
    size_t bl;
    assert_int_equal(wire_get_bin(&m.body, "sig", &b, &bl), 0);
    assert_int_equal(bl, 3);
    uint64_t u;
    assert_int_equal(wire_get_uint(&m.body, "n", &u), 0);
    assert_int_equal(u, 42);
    struct wire_array a;
    assert_int_equal(wire_get_array(&m.body, "list", &a), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(wire_array_str(&a, 0, &s, &sl), 0);
    struct wire_map inner;
    assert_int_equal(wire_array_map(&a, 1, &inner), 0);
    bool bv = false;
    assert_int_equal(wire_get_bool(&inner, "x", &bv), 0);
    assert_true(bv);
    /* wrong types and absent keys */
    assert_int_equal(wire_get_uint(&m.body, "role", &u), ERR_MALFORMED);
    assert_int_equal(wire_get_str(&m.body, "nope", &s, &sl), ERR_NOT_FOUND);
    assert_int_equal(wire_array_str(&a, 1, &s, &sl), ERR_MALFORMED);
    assert_int_equal(wire_array_str(&a, 2, &s, &sl), ERR_NOT_FOUND);
    char small[4];
    assert_int_equal(wire_get_cstr(&m.body, "role", small, sizeof(small)), ERR_TOO_BIG);
    char big[8];
    assert_int_equal(wire_get_cstr(&m.body, "role", big, sizeof(big)), 0);
    assert_string_equal(big, "staff");
    wire_msg_free(&m);
    wire_enc_reset(&e);
}

static void response_event_roundtrip(void **state)
{
    (void)state;
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    struct wire_msg m;

    wire_enc_init(&e);
    wire_enc_ok(&e, 99, 1);
    wire_kv_uint(&e, "time", 1700000000);
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(wire_decode(data, len, &m), 0);
    assert_int_equal(m.kind, WIRE_RESPONSE);
    assert_true(m.ok);
    assert_int_equal(m.id, 99);
    wire_msg_free(&m);
    wire_enc_reset(&e);

    wire_enc_init(&e);
    wire_enc_err(&e, 0, "malformed", "bad frame");
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(wire_decode(data, len, &m), 0);
    assert_int_equal(m.kind, WIRE_RESPONSE);
    assert_false(m.ok);
    assert_int_equal(m.id, 0);
    assert_string_equal(m.name, "malformed");
    assert_int_equal(m.err_msg_len, 9);
    assert_memory_equal(m.err_msg, "bad frame", 9);
    wire_msg_free(&m);
    wire_enc_reset(&e);

    wire_enc_init(&e);
    wire_enc_event(&e, "session.ended", 1);
    wire_kv_str(&e, "reason", "revoked");
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(wire_decode(data, len, &m), 0);
    assert_int_equal(m.kind, WIRE_EVENT);
    assert_string_equal(m.name, "session.ended");
    const char *s;
    size_t sl;
    assert_int_equal(wire_get_str(&m.body, "reason", &s, &sl), 0);
    wire_msg_free(&m);
    wire_enc_reset(&e);
}

/* The 5-byte frame declaring a 4-billion-element array: refused by the
 * walker (too_big) before msgpack-c sees it. Under ASan an allocation of
 * that size would abort, so passing shows nothing was allocated. */
/* A request without an id is a notification (PROTOCOL.md "Envelope"). */
static void note_roundtrip(void **state)
{
    (void)state;
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    struct wire_msg m;
    uint64_t u;

    wire_enc_init(&e);
    wire_enc_note(&e, "ack", 1);
    wire_kv_uint(&e, "seq", 77);
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(wire_decode(data, len, &m), 0);
    assert_int_equal(m.kind, WIRE_NOTE);
    assert_int_equal(m.id, 0);
    assert_string_equal(m.name, "ack");
    assert_int_equal(wire_get_uint(&m.body, "seq", &u), 0);
    assert_int_equal(u, 77);
    assert_false(wire_has(&m.body, "id"));
    wire_msg_free(&m);
    wire_enc_reset(&e);

    /* {v:1, op:"ping"}: no args is an empty map, as for a request */
    static const uint8_t bare[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'};
    assert_int_equal(wire_decode(bare, sizeof(bare), &m), 0);
    assert_int_equal(m.kind, WIRE_NOTE);
    assert_string_equal(m.name, "ping");
    assert_int_equal(m.body.n, 0);
    wire_msg_free(&m);

    /* {v:2, op:"ack"}: another version is refused, kind still known */
    static const uint8_t v2[] = {0x82, 0xa1, 'v', 0x02, 0xa2, 'o', 'p', 0xa3, 'a', 'c', 'k'};
    assert_int_equal(wire_decode(v2, sizeof(v2), &m), ERR_UNSUPPORTED);
    assert_int_equal(m.kind, WIRE_NOTE);
    wire_msg_free(&m);

    /* {v:1, op:"ack", args:1}: args must be a map */
    static const uint8_t bad[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa3, 'a', 'c', 'k',
                                  0xa4, 'a', 'r', 'g', 's', 0x01};
    assert_int_equal(wire_decode(bad, sizeof(bad), &m), ERR_MALFORMED);
    wire_msg_free(&m);
}

static void huge_counts_refused(void **state)
{
    (void)state;
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bin32[] = {0xc6, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t arr_lie[] = {0xdc, 0x0f, 0xff, 0x01, 0x02}; /* 4095 claimed, 2 left */
    static const uint8_t arr_4097[] = {0xdc, 0x10, 0x01};
    struct wire_msg m;
    assert_int_equal(wire_check(arr32, sizeof(arr32)), ERR_TOO_BIG);
    assert_int_equal(wire_decode(arr32, sizeof(arr32), &m), ERR_TOO_BIG);
    wire_msg_free(&m);
    assert_int_equal(wire_check(map32, sizeof(map32)), ERR_TOO_BIG);
    assert_int_equal(wire_check(str32, sizeof(str32)), ERR_MALFORMED);
    assert_int_equal(wire_check(bin32, sizeof(bin32)), ERR_MALFORMED);
    assert_int_equal(wire_check(arr_lie, sizeof(arr_lie)), ERR_MALFORMED);
    assert_int_equal(wire_check(arr_4097, sizeof(arr_4097)), ERR_TOO_BIG);
}

static void depth_limit(void **state)
{
    (void)state;
    /* depth 8 of nested single-element arrays holding nil: accepted;
     * depth 9: too_big */
    uint8_t buf[16];
    for (size_t d = 1; d <= 9; d++) {
        for (size_t i = 0; i < d; i++)
            buf[i] = 0x91;
        buf[d] = 0xc0;
        int rc = wire_check(buf, d + 1);
        assert_int_equal(rc, d <= WIRE_MAX_DEPTH ? 0 : ERR_TOO_BIG);
    }
}

static void total_limit(void **state)
{
    (void)state;
    /* 17 arrays of 4096 nils: 69633 objects > WIRE_MAX_TOTAL */
    size_t len = 3 + 17 * (3 + 4096);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    size_t o = 0;
    buf[o++] = 0xdc;
    buf[o++] = 0;
    buf[o++] = 17;
    for (int i = 0; i < 17; i++) {
        buf[o++] = 0xdc;
        buf[o++] = 0x10;
        buf[o++] = 0x00;
        memset(buf + o, 0xc0, 4096);
        o += 4096;
    }
    assert_int_equal(o, len);
    assert_int_equal(wire_check(buf, len), ERR_TOO_BIG);
    /* 15 arrays: fine */
    buf[2] = 15;
    assert_int_equal(wire_check(buf, 3 + 15 * (3 + 4096)), 0);
    free(buf);
}

static void malformed_frames(void **state)
{
    (void)state;
    static const struct {
        const char *hex_desc;
        uint8_t b[24];
        size_t len;
        int rc;
    } cases[] = {
        {"empty", {0}, 0, ERR_MALFORMED},
        {"ext type", {0xd4, 0x01, 0x02}, 3, ERR_MALFORMED},
        {"c1", {0xc1}, 1, ERR_MALFORMED},
        {"trailing", {0x80, 0x80}, 2, ERR_MALFORMED},
        {"truncated str", {0xa5, 'a'}, 2, ERR_MALFORMED},
        {"int key", {0x81, 0x01, 0x02}, 3, ERR_MALFORMED},
        {"not a map", {0x92, 0x01, 0x02}, 3, ERR_MALFORMED},
        {"no v", {0x81, 0xa2, 'i', 'd', 0x01}, 5, ERR_MALFORMED},
        /* {v:1, id:1} — neither op, ev, ok nor err */
        {"no kind", {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0x01}, 8, ERR_MALFORMED},
        /* {v:1, id:0, op:"ping"} — a request's id is 1..2^32-1 (without an
         * id it is a notification: note_roundtrip) */
        {"id 0",
         {0x83, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0x00, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'},
         16, ERR_MALFORMED},
        /* {v:2, id:5, op:"ping"} — unsupported version, id still read */
        {"v2",
         {0x83, 0xa1, 'v', 0x02, 0xa2, 'i', 'd', 0x05, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'},
         16, ERR_UNSUPPORTED},
        /* {v:1, id:5, op:7} — op not a str, id still read */
        {"op int", {0x83, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0x05, 0xa2, 'o', 'p', 0x07}, 12,
         ERR_MALFORMED},
        /* {v:1, id:5, op:"ping", args:1} */
        {"args int",
         {0x84, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0x05, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g',
          0xa4, 'a', 'r', 'g', 's', 0x01},
         22, ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wire_msg m;
        int rc = wire_decode(cases[i].b, cases[i].len, &m);
        if (rc != cases[i].rc)
            fail_msg("%s: got %d want %d", cases[i].hex_desc, rc, cases[i].rc);
        if (i >= 10)
            assert_int_equal(m.id, 5);
        wire_msg_free(&m);
    }
}

static void long_op_refused(void **state)
{
    (void)state;
    char op[80];
    memset(op, 'x', 65);
    op[65] = 0;
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    struct wire_msg m;
    wire_enc_init(&e);
    wire_enc_request(&e, 3, op, 0);
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(wire_decode(data, len, &m), ERR_TOO_BIG);
    assert_int_equal(m.id, 3);
    wire_msg_free(&m);
    wire_enc_reset(&e);
    op[64] = 0; /* 64 bytes: fine */
    wire_enc_init(&e);
    wire_enc_request(&e, 3, op, 0);
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(wire_decode(data, len, &m), 0);
    wire_msg_free(&m);
    wire_enc_reset(&e);
}

/* An array whose elements were encoded by another builder is byte for byte
 * the array encoded in place; a failed builder's error is passed on. */
static void append_equals_inline(void **state)
{
    (void)state;
    struct wire_enc direct, outer, items;
    const uint8_t *d1, *d2;
    size_t l1, l2;
    wire_enc_init(&direct);
    wire_enc_ok(&direct, 9, 1);
    wire_enc_key(&direct, "entries");
    wire_enc_array(&direct, 2);
    wire_enc_map(&direct, 1);
    wire_kv_uint(&direct, "seq", 5);
    wire_enc_map(&direct, 1);
    wire_kv_bin(&direct, "data", (const uint8_t *)"\xff\x00", 2);
    assert_int_equal(wire_enc_finish(&direct, &d1, &l1), 0);

    wire_enc_init(&items);
    wire_enc_map(&items, 1);
    wire_kv_uint(&items, "seq", 5);
    wire_enc_map(&items, 1);
    wire_kv_bin(&items, "data", (const uint8_t *)"\xff\x00", 2);
    wire_enc_init(&outer);
    wire_enc_ok(&outer, 9, 1);
    wire_enc_key(&outer, "entries");
    wire_enc_array(&outer, 2);
    wire_enc_append(&outer, &items);
    assert_int_equal(wire_enc_finish(&outer, &d2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(d1, d2, l1);

    struct wire_msg m;
    struct wire_array a;
    assert_int_equal(wire_decode(d2, l2, &m), 0);
    assert_int_equal(wire_get_array(&m.body, "entries", &a), 0);
    assert_int_equal(a.n, 2);
    wire_msg_free(&m);

    items.err = ERR_NOMEM; /* as after a failed allocation */
    wire_enc_append(&outer, &items);
    assert_int_equal(wire_enc_finish(&outer, &d2, &l2), ERR_NOMEM);
    wire_enc_reset(&items);
    wire_enc_reset(&outer);
    wire_enc_reset(&direct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_roundtrip),
        cmocka_unit_test(response_event_roundtrip),
        cmocka_unit_test(note_roundtrip),
        cmocka_unit_test(huge_counts_refused),
        cmocka_unit_test(depth_limit),
        cmocka_unit_test(total_limit),
        cmocka_unit_test(malformed_frames),
        cmocka_unit_test(long_op_refused),
        cmocka_unit_test(append_equals_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
