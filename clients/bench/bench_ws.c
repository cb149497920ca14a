/*
 * bench_ws.c: the bench's decoder of server -> client WebSocket frames
 * (format and contract in bench_ws.h). Pure: no I/O, no globals; fuzzed by
 * tests/fuzz/fuzz_bench_ws.c, known answers in tests/unit/test_bench_ws.c.
 *
 * A frame that arrives whole and unfragmented (the usual case: one `entry`
 * or one response) is handed out where it lies, without a copy; only the
 * fragments of a fragmented message are copied, into d->frag.
 */
#include "bench_ws.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xa,
};

void bws_dec_init(struct bws_dec *d, size_t max_frame)
{
    memset(d, 0, sizeof(*d));
    d->max_frame = max_frame;
}

void bws_dec_reset(struct bws_dec *d)
{
    free(d->frag);
    d->frag = NULL;
    d->frag_len = d->frag_cap = 0;
    d->in_frag = false;
}

static int frag_append(struct bws_dec *d, const uint8_t *p, size_t n)
{
    size_t need = d->frag_len + n; /* <= max_frame: checked by the caller */

    if (need > d->frag_cap) {
        size_t cap = d->frag_cap ? d->frag_cap : 256;
        uint8_t *nb;
        while (cap < need)
            cap = cap > d->max_frame / 2 ? d->max_frame : cap * 2;
        nb = realloc(d->frag, cap);
        if (!nb)
            return ERR_NOMEM;
        d->frag = nb;
        d->frag_cap = cap;
    }
    if (n)
        memcpy(d->frag + d->frag_len, p, n);
    d->frag_len = need;
    return 0;
}

int bws_dec_next(struct bws_dec *d, const uint8_t *buf, size_t len, size_t *used, int *kind,
                 const uint8_t **out, size_t *out_len)
{
    size_t hlen = 2;
    uint64_t plen;
    bool fin;
    unsigned op;
    int rc;

    *used = 0;
    *kind = BWS_NONE;
    *out = NULL;
    *out_len = 0;
    if (len < 2)
        return 0;
    fin = (buf[0] & 0x80) != 0;
    op = buf[0] & 0x0fu;
    if (buf[0] & 0x70)
        return ERR_MALFORMED; /* no extension was negotiated */
    if (buf[1] & 0x80)
        return ERR_MALFORMED; /* a server never masks (RFC 6455 5.1) */
    plen = buf[1] & 0x7fu;
    switch (op) {
    case OP_CONT:
        if (!d->in_frag)
            return ERR_MALFORMED;
        break;
    case OP_BINARY:
        if (d->in_frag)
            return ERR_MALFORMED;
        break;
    case OP_CLOSE:
    case OP_PING:
    case OP_PONG:
        if (!fin || plen > 125)
            return ERR_MALFORMED;
        if (op == OP_CLOSE && plen == 1)
            return ERR_MALFORMED; /* a status code is two bytes */
        break;
    default:
        return ERR_MALFORMED; /* text (PROTOCOL.md: binary only) or reserved */
    }
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        hlen = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        if (buf[2] & 0x80)
            return ERR_MALFORMED;
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = plen << 8 | buf[i];
        hlen = 10;
    }
    /* the bound before waiting for the payload: a peer cannot make us
     * buffer more than max_frame + BWS_MAX_HEADER bytes */
    if (op == OP_CONT || op == OP_BINARY) {
        size_t have = op == OP_CONT ? d->frag_len : 0;
        if (plen > d->max_frame - have)
            return ERR_TOO_BIG;
    } else if (plen > d->max_frame) {
        return ERR_TOO_BIG; /* a control frame, with a max_frame under 125 */
    }
    if (plen > len - hlen)
        return 0;
    *used = hlen + (size_t)plen;
    buf += hlen;
    switch (op) {
    case OP_BINARY:
        if (fin) {
            *kind = BWS_MESSAGE;
            *out = buf;
            *out_len = (size_t)plen;
            return 0;
        }
        d->frag_len = 0;
        d->in_frag = true;
        /* fall through */
    case OP_CONT:
        rc = frag_append(d, buf, (size_t)plen);
        if (rc != 0)
            return rc;
        if (fin) {
            d->in_frag = false;
            *kind = BWS_MESSAGE;
            *out = d->frag;
            *out_len = d->frag_len;
        }
        return 0;
    case OP_PING:
        *kind = BWS_PING;
        break;
    case OP_PONG:
        *kind = BWS_PONG;
        break;
    default:
        *kind = BWS_CLOSE;
        break;
    }
    *out = buf;
    *out_len = (size_t)plen;
    return 0;
}
