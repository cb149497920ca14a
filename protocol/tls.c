/*
 * tls.c: TLS presentation language reader and writer (see tls.h for the
 * contract and the varint table).
 */
#include "tls.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void tls_reader_init(struct tls_reader *r, const uint8_t *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->off = 0;
}

size_t tls_reader_remaining(const struct tls_reader *r)
{
    return r->len - r->off;
}

bool tls_reader_done(const struct tls_reader *r)
{
    return r->off == r->len;
}

int tls_read_fixed(struct tls_reader *r, size_t n, const uint8_t **p)
{
    if (n > tls_reader_remaining(r))
        return ERR_MALFORMED;
    *p = r->buf + r->off;
    r->off += n;
    return 0;
}

static int read_be(struct tls_reader *r, size_t n, uint64_t *v)
{
    const uint8_t *p;
    int rc = tls_read_fixed(r, n, &p);
    if (rc)
        return rc;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | p[i];
    *v = x;
    return 0;
}

int tls_read_u8(struct tls_reader *r, uint8_t *v)
{
    uint64_t x;
    int rc = read_be(r, 1, &x);
    if (!rc)
        *v = (uint8_t)x;
    return rc;
}

int tls_read_u16(struct tls_reader *r, uint16_t *v)
{
    uint64_t x;
    int rc = read_be(r, 2, &x);
    if (!rc)
        *v = (uint16_t)x;
    return rc;
}

int tls_read_u32(struct tls_reader *r, uint32_t *v)
{
    uint64_t x;
    int rc = read_be(r, 4, &x);
    if (!rc)
        *v = (uint32_t)x;
    return rc;
}

int tls_read_u64(struct tls_reader *r, uint64_t *v)
{
    return read_be(r, 8, v);
}

int tls_read_varint(struct tls_reader *r, uint64_t *v)
{
    if (tls_reader_remaining(r) < 1)
        return ERR_MALFORMED;
    unsigned prefix = r->buf[r->off] >> 6;
    size_t n;
    uint64_t min;
    switch (prefix) {
    case 0: n = 1; min = 0; break;
    case 1: n = 2; min = 64; break;
    case 2: n = 4; min = 16384; break;
    default: return ERR_MALFORMED;
    }
    uint64_t x;
    int rc = read_be(r, n, &x);
    if (rc)
        return rc;
    x &= (n == 1) ? 0x3f : (n == 2) ? 0x3fff : 0x3fffffff;
    if (x < min) /* RFC 9420 §2.1.2: minimum encoding required */
        return ERR_MALFORMED;
    *v = x;
    return 0;
}

int tls_read_opaque(struct tls_reader *r, const uint8_t **p, size_t *len)
{
    uint64_t n;
    int rc = tls_read_varint(r, &n);
    if (rc)
        return rc;
    if (n > TLS_MAX_VECTOR)
        return ERR_TOO_BIG;
    rc = tls_read_fixed(r, (size_t)n, p);
    if (rc)
        return rc;
    *len = (size_t)n;
    return 0;
}

int tls_read_vector(struct tls_reader *r, struct tls_reader *sub)
{
    const uint8_t *p;
    size_t n;
    int rc = tls_read_opaque(r, &p, &n);
    if (rc)
        return rc;
    tls_reader_init(sub, p, n);
    return 0;
}

int tls_read_optional(struct tls_reader *r, bool *present)
{
    uint8_t b;
    int rc = tls_read_u8(r, &b);
    if (rc)
        return rc;
    if (b > 1)
        return ERR_MALFORMED;
    *present = b == 1;
    return 0;
}

void tls_writer_init(struct tls_writer *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max ? max : TLS_MAX_VECTOR * 4;
}

void tls_writer_reset(struct tls_writer *w)
{
    if (w->buf) {
        sodium_memzero(w->buf, w->cap);
        free(w->buf);
    }
    size_t max = w->max;
    memset(w, 0, sizeof(*w));
    w->max = max;
}

int tls_writer_error(const struct tls_writer *w)
{
    return w->err;
}

int tls_writer_take(struct tls_writer *w, uint8_t **buf, size_t *len)
{
    int err = w->err;
    if (err) {
        tls_writer_reset(w);
        *buf = NULL;
        *len = 0;
        return err;
    }
    *buf = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return 0;
}

/* Makes room for n more bytes; sets the sticky error on failure. */
static bool reserve(struct tls_writer *w, size_t n)
{
    if (w->err)
        return false;
    if (n > w->max || w->len > w->max - n) {
        w->err = ERR_TOO_BIG;
        return false;
    }
    if (w->len + n <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->len + n)
        cap = cap > w->max / 2 ? w->max : cap * 2;
    /* Not realloc: the old buffer may hold secrets and must be wiped. */
    uint8_t *nb = malloc(cap);
    if (!nb) {
        w->err = ERR_NOMEM;
        return false;
    }
    if (w->buf) {
        memcpy(nb, w->buf, w->len);
        sodium_memzero(w->buf, w->cap);
        free(w->buf);
    }
    w->buf = nb;
    w->cap = cap;
    return true;
}

static void put_be(struct tls_writer *w, uint64_t v, size_t n)
{
    if (!reserve(w, n))
        return;
    for (size_t i = 0; i < n; i++)
        w->buf[w->len + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    w->len += n;
}

void tls_put_u8(struct tls_writer *w, uint8_t v) { put_be(w, v, 1); }
void tls_put_u16(struct tls_writer *w, uint16_t v) { put_be(w, v, 2); }
void tls_put_u32(struct tls_writer *w, uint32_t v) { put_be(w, v, 4); }
void tls_put_u64(struct tls_writer *w, uint64_t v) { put_be(w, v, 8); }

size_t tls_varint_size(uint64_t n)
{
    if (n < 64)
        return 1;
    if (n < 16384)
        return 2;
    if (n <= TLS_MAX_VARINT)
        return 4;
    return 0;
}

void tls_put_varint(struct tls_writer *w, uint64_t v)
{
    switch (tls_varint_size(v)) {
    case 1: put_be(w, v, 1); break;
    case 2: put_be(w, v | 0x4000, 2); break;
    case 4: put_be(w, v | 0x80000000u, 4); break;
    default:
        if (!w->err)
            w->err = ERR_INVALID;
    }
}

void tls_put_fixed(struct tls_writer *w, const uint8_t *p, size_t n)
{
    if (!n || !reserve(w, n))
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void tls_put_opaque(struct tls_writer *w, const uint8_t *p, size_t n)
{
    tls_put_varint(w, n);
    tls_put_fixed(w, p, n);
}

void tls_put_optional(struct tls_writer *w, bool present)
{
    tls_put_u8(w, present ? 1 : 0);
}

size_t tls_vector_begin(struct tls_writer *w)
{
    /* Reserve one header byte; tls_vector_end widens it if needed. */
    tls_put_u8(w, 0);
    return w->len;
}

void tls_vector_end(struct tls_writer *w, size_t mark)
{
    if (w->err)
        return;
    size_t body = w->len - mark;
    size_t hs = tls_varint_size(body);
    if (hs == 0) {
        w->err = ERR_TOO_BIG;
        return;
    }
    if (hs > 1) {
        if (!reserve(w, hs - 1))
            return;
        memmove(w->buf + mark + hs - 1, w->buf + mark, body);
        w->len += hs - 1;
    }
    uint64_t v = body | (hs == 2 ? 0x4000u : hs == 4 ? 0x80000000u : 0);
    for (size_t i = 0; i < hs; i++)
        w->buf[mark - 1 + i] = (uint8_t)(v >> (8 * (hs - 1 - i)));
}
