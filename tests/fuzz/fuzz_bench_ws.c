/*
 * fuzz_bench_ws.c: the bench's decoder of server -> client WebSocket frames
 * (clients/bench/bench_ws.c, compiled in here: the bench is a program, not
 * a library). The first input byte picks max_frame (64 << (b % 8)) and the
 * size of the reads (1 + b / 8 bytes); the rest is the byte stream. It is
 * decoded twice: all at once, and read in pieces the way bench_net.c's
 * on_rx() does (the bytes left of a cut frame go in front of the next
 * read). Both must hand out the same frames (kind and payload) and stop
 * with the same error; a frame is never longer than max_frame +
 * BWS_MAX_HEADER, every payload lies inside the buffer or the decoder's
 * own, and no control payload exceeds 125 bytes (else abort).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../clients/bench/bench_ws.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct log {
    uint8_t *b; /* kind, 4-byte length, payload; ... */
    size_t len, cap;
};

static void log_add(struct log *l, int kind, const uint8_t *p, size_t n)
{
    size_t need = l->len + 5 + n;
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        l->b = realloc(l->b, cap);
        if (!l->b)
            abort();
        l->cap = cap;
    }
    l->b[l->len] = (uint8_t)kind;
    l->b[l->len + 1] = (uint8_t)(n >> 24);
    l->b[l->len + 2] = (uint8_t)(n >> 16);
    l->b[l->len + 3] = (uint8_t)(n >> 8);
    l->b[l->len + 4] = (uint8_t)n;
    if (n)
        memcpy(l->b + l->len + 5, p, n);
    l->len = need;
}

/* Decodes buf[0..len) as far as it goes; returns the error (0 at the end
 * of the complete frames) and sets *done to the bytes used. */
static int run(struct bws_dec *d, const uint8_t *buf, size_t len, struct log *l, size_t *done)
{
    size_t off = 0;
    int rc = 0;

    while (off < len) {
        size_t used, n;
        int kind;
        const uint8_t *p;
        rc = bws_dec_next(d, buf + off, len - off, &used, &kind, &p, &n);
        if (rc != 0 || used == 0)
            break;
        if (used > len - off || used > d->max_frame + BWS_MAX_HEADER)
            abort();
        if (kind != BWS_NONE) {
            bool in_buf = p >= buf + off && p + n <= buf + off + used;
            bool in_frag = d->frag && p >= d->frag && p + n <= d->frag + d->frag_len;
            if (n && !in_buf && !in_frag)
                abort();
            if (kind != BWS_MESSAGE && n > 125)
                abort();
            if (kind == BWS_MESSAGE && n > d->max_frame)
                abort();
        }
        log_add(l, kind, p, n);
        off += used;
    }
    *done = off;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bws_dec d1, d2;
    struct log l1 = {0}, l2 = {0};
    size_t max, step, done, off = 0, left = 0;
    uint8_t *buf;
    int rc1, rc2 = 0;

    if (size < 1)
        return 0;
    max = (size_t)64 << (data[0] % 8);
    step = 1 + data[0] / 8u;
    data++;
    size--;
    bws_dec_init(&d1, max);
    bws_dec_init(&d2, max);
    rc1 = run(&d1, data, size, &l1, &done);

    /* in pieces: left bytes + the next read, as on_rx() */
    buf = malloc(max + BWS_MAX_HEADER + step);
    if (!buf)
        abort();
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        memcpy(buf + left, data + off, n);
        off += n;
        rc2 = run(&d2, buf, left + n, &l2, &done);
        if (rc2 != 0)
            break;
        left = left + n - done;
        if (left > max + BWS_MAX_HEADER - 1)
            abort(); /* a cut frame is bounded */
        memmove(buf, buf + done, left);
    }
    if (rc1 != rc2 || l1.len != l2.len || (l1.len && memcmp(l1.b, l2.b, l1.len) != 0))
        abort();
    free(buf);
    free(l1.b);
    free(l2.b);
    bws_dec_reset(&d1);
    bws_dec_reset(&d2);
    return 0;
}
