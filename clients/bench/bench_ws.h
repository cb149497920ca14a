/*
 * bench_ws.h: server -> client WebSocket frames (RFC 6455 section 5.2) for
 * the bench's own receive path (bench_net.c reads the socket itself once a
 * connection is established; libwebsockets 4.1's client parser handled
 * every received byte through its state machine).
 *
 * One decoder per connection. It is given the bytes received and not yet
 * used, starting at a frame boundary, and takes at most one frame per call:
 *
 *   byte 0   FIN (0x80), RSV1-3 (0x70, must be 0), opcode (0x0f)
 *   byte 1   MASK (0x80, must be 0 from a server), length 0..125,
 *            126: 16-bit length follows, 127: 64-bit length follows
 *   then     the extended length (network order), then the payload
 *
 * Opcodes: 0 continuation, 2 binary, 8 close, 9 ping, 10 pong; 1 (text)
 * and the reserved ones are refused (PROTOCOL.md: every message is one
 * binary frame). Control frames are final and carry at most 125 bytes; they
 * may arrive between the fragments of a message. A message (all of its
 * fragments) is bounded by max_frame, checked from the header before any
 * payload is awaited or copied; so is a control frame's payload (which
 * matters only for a max_frame under 125 bytes).
 */
#ifndef SAMMEN_BENCH_WS_H
#define SAMMEN_BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest frame header from a server (no mask). */
#define BWS_MAX_HEADER 10

enum bws_kind {
    BWS_NONE = 0, /* a fragment taken in; nothing to hand out yet */
    BWS_MESSAGE,  /* a complete binary message */
    BWS_PING,
    BWS_PONG,
    BWS_CLOSE,
};

struct bws_dec {
    size_t max_frame;
    bool in_frag;   /* a fragmented message is open */
    uint8_t *frag;  /* its bytes so far (owned; bounded by max_frame) */
    size_t frag_len, frag_cap;
};

void bws_dec_init(struct bws_dec *d, size_t max_frame);
/* Frees the fragment buffer; d can be used again (a fresh stream). */
void bws_dec_reset(struct bws_dec *d);

/* Takes the frame at the start of buf[0..len). Returns 0 and
 *  - *used = 0 when the frame is not complete yet (keep the bytes, read
 *    more; the frame is then at most max_frame + BWS_MAX_HEADER bytes);
 *  - else *used = the frame's length and *kind; for BWS_MESSAGE, BWS_PING,
 *    BWS_PONG and BWS_CLOSE, *out and *out_len are the payload (or the whole
 *    reassembled message), pointing into buf or into d, valid until the
 *    next call on d or until buf changes.
 * Errors (the stream is then unusable: close the connection):
 * ERR_MALFORMED (masked frame, RSV bits, text or reserved opcode, a control
 * frame that is fragmented or longer than 125 bytes, a close payload of one
 * byte, a continuation without a start, a data frame while a fragmented one
 * is open, a 64-bit length with the top bit set; a length not in its
 * shortest form is accepted), ERR_TOO_BIG (the message would exceed
 * max_frame), ERR_NOMEM. */
int bws_dec_next(struct bws_dec *d, const uint8_t *buf, size_t len, size_t *used, int *kind,
                 const uint8_t **out, size_t *out_len);

#endif
