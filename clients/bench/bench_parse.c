/*
 * bench_parse.c: the bench's fast reader of a pushed `entry` event.
 *
 * Every delivery the bench measures is one `entry` event, and decoding each
 * in full (wire_decode: wire_check, msgpack-c's unpacker and its zone, then
 * a getter per field) was a tenth of a care worker's CPU. This reader walks
 * the frame once, allocates nothing, and takes only what the bench uses:
 *
 *   | where         | key      | accepted msgpack types           |
 *   |---------------|----------|----------------------------------|
 *   | top-level map | `v`      | positive fixint, uint 8..64 == 1 |
 *   |               | `ev`     | str == "entry"                   |
 *   |               | `data`   | map of at most WIRE_MAX_COUNT    |
 *   | data map      | `seq`    | positive fixint, uint 8..64      |
 *   |               | `thread` | str, < BENCH_ENTRY_THREAD_MAX, no NUL |
 *   |               | `kind`   | str, < BENCH_ENTRY_KIND_MAX, no NUL   |
 *   |               | `data`   | bin 8..32                        |
 *   |               | other    | any scalar (skipped)             |
 *
 * It is deliberately narrow. Anything else (another top-level key, a
 * duplicate top-level key, a nested map or array inside `data`, ext types,
 * int-typed (0xd0..0xd3) numbers, a missing or nil field, a length past
 * the end, trailing bytes, other events, responses) gives ERR_NOT_FOUND,
 * and the caller decodes the frame in full with wire_decode(), which keeps
 * every check and error report of the general path. So whatever this
 * reader accepts, wire_decode() accepts too, with the same values (as in
 * wire.c, the first occurrence of a key in the data map wins);
 * tests/fuzz/fuzz_bench_parse.c checks exactly that.
 */
#include "bench.h"

#include <string.h>

#include "err.h"
#include "wire.h"

struct rd {
    const uint8_t *p, *end;
};

static size_t left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* Reads a big-endian unsigned of n (1, 2, 4, 8) bytes. */
static int be(struct rd *r, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    if (left(r) < n)
        return ERR_NOT_FOUND;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | r->p[i];
    r->p += n;
    *v = x;
    return 0;
}

static int rd_uint(struct rd *r, uint64_t *v)
{
    uint8_t t;
    if (left(r) < 1)
        return ERR_NOT_FOUND;
    t = *r->p++;
    if (t <= 0x7f) {
        *v = t;
        return 0;
    }
    if (t >= 0xcc && t <= 0xcf)
        return be(r, (size_t)1 << (t - 0xcc), v);
    return ERR_NOT_FOUND;
}

/* A str (want_bin false) or bin (true): its bytes stay in the input. */
static int rd_bytes(struct rd *r, bool want_bin, const uint8_t **p, size_t *len)
{
    uint64_t n;
    uint8_t t;
    if (left(r) < 1)
        return ERR_NOT_FOUND;
    t = *r->p++;
    if (!want_bin && t >= 0xa0 && t <= 0xbf) {
        n = t & 0x1fu;
    } else if (!want_bin && t >= 0xd9 && t <= 0xdb) {
        if (be(r, (size_t)1 << (t - 0xd9), &n) != 0)
            return ERR_NOT_FOUND;
    } else if (want_bin && t >= 0xc4 && t <= 0xc6) {
        if (be(r, (size_t)1 << (t - 0xc4), &n) != 0)
            return ERR_NOT_FOUND;
    } else {
        return ERR_NOT_FOUND;
    }
    if (n > left(r))
        return ERR_NOT_FOUND;
    *p = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

static int rd_map(struct rd *r, uint64_t *n)
{
    uint8_t t;
    if (left(r) < 1)
        return ERR_NOT_FOUND;
    t = *r->p++;
    if (t >= 0x80 && t <= 0x8f) {
        *n = t & 0x0fu;
        return 0;
    }
    if (t == 0xde || t == 0xdf)
        return be(r, t == 0xde ? 2 : 4, n);
    return ERR_NOT_FOUND;
}

/* Skips one scalar (nil, bool, int, float, str, bin); maps, arrays, ext
 * and the never-used byte 0xc1 are not ours. */
static int skip_scalar(struct rd *r)
{
    const uint8_t *p;
    size_t len;
    size_t n;
    uint8_t t;

    if (left(r) < 1)
        return ERR_NOT_FOUND;
    t = *r->p;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
        r->p++;
        return 0;
    }
    if ((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb))
        return rd_bytes(r, false, &p, &len);
    if (t >= 0xc4 && t <= 0xc6)
        return rd_bytes(r, true, &p, &len);
    if (t == 0xca || t == 0xcb)
        n = t == 0xca ? 4 : 8;
    else if (t >= 0xcc && t <= 0xcf)
        n = (size_t)1 << (t - 0xcc);
    else if (t >= 0xd0 && t <= 0xd3)
        n = (size_t)1 << (t - 0xd0);
    else
        return ERR_NOT_FOUND;
    if (left(r) < 1 + n)
        return ERR_NOT_FOUND;
    r->p += 1 + n;
    return 0;
}

static bool key_is(const uint8_t *k, size_t kl, const char *want)
{
    size_t wl = strlen(want);
    return kl == wl && memcmp(k, want, wl) == 0;
}

/* A str field of the data map: within cap (NUL included) and without NUL,
 * as wire_get_cstr() wants it. */
static int rd_cstr(struct rd *r, size_t cap, const char **p, size_t *len)
{
    const uint8_t *b;
    if (rd_bytes(r, false, &b, len) != 0 || *len >= cap || memchr(b, 0, *len))
        return ERR_NOT_FOUND;
    *p = (const char *)b;
    return 0;
}

static int read_data(struct rd *r, struct bench_entry *out)
{
    bool has_seq = false, has_thread = false, has_kind = false, has_data = false;
    uint64_t n;

    if (rd_map(r, &n) != 0 || n > WIRE_MAX_COUNT)
        return ERR_NOT_FOUND;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k;
        size_t kl;
        int rc;
        if (rd_bytes(r, false, &k, &kl) != 0)
            return ERR_NOT_FOUND;
        /* a key seen before: wire.c's lookup() takes the first one */
        if (key_is(k, kl, "seq") && !has_seq) {
            rc = rd_uint(r, &out->seq);
            has_seq = true;
        } else if (key_is(k, kl, "thread") && !has_thread) {
            rc = rd_cstr(r, BENCH_ENTRY_THREAD_MAX, &out->thread, &out->thread_len);
            has_thread = true;
        } else if (key_is(k, kl, "kind") && !has_kind) {
            rc = rd_cstr(r, BENCH_ENTRY_KIND_MAX, &out->kind, &out->kind_len);
            has_kind = true;
        } else if (key_is(k, kl, "data") && !has_data) {
            rc = rd_bytes(r, true, &out->data, &out->data_len);
            has_data = true;
        } else {
            rc = skip_scalar(r);
        }
        if (rc != 0)
            return ERR_NOT_FOUND;
    }
    return has_seq && has_thread && has_kind && has_data ? 0 : ERR_NOT_FOUND;
}

int bench_entry_parse(const uint8_t *buf, size_t len, struct bench_entry *out)
{
    struct rd r = {buf, buf + len};
    bool has_v = false, has_ev = false, has_data = false;
    uint64_t n, v = 0;

    memset(out, 0, sizeof(*out));
    if (rd_map(&r, &n) != 0 || n != 3)
        return ERR_NOT_FOUND;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k, *s;
        size_t kl, sl;
        if (rd_bytes(&r, false, &k, &kl) != 0)
            return ERR_NOT_FOUND;
        if (key_is(k, kl, "v") && !has_v) {
            if (rd_uint(&r, &v) != 0 || v != WIRE_VERSION)
                return ERR_NOT_FOUND;
            has_v = true;
        } else if (key_is(k, kl, "ev") && !has_ev) {
            if (rd_bytes(&r, false, &s, &sl) != 0 || !key_is(s, sl, "entry"))
                return ERR_NOT_FOUND;
            has_ev = true;
        } else if (key_is(k, kl, "data") && !has_data) {
            if (read_data(&r, out) != 0)
                return ERR_NOT_FOUND;
            has_data = true;
        } else {
            return ERR_NOT_FOUND; /* any other shape: the general decoder */
        }
    }
    if (r.p != r.end || !has_v || !has_ev || !has_data)
        return ERR_NOT_FOUND;
    return 0;
}
