/*
 * tls.h: the TLS presentation language codec used by MLS (RFC 9420 §2.1).
 *
 * Reading: a `struct tls_reader` walks a caller-owned buffer. Every read is
 * checked against the bytes that remain; nothing is allocated. Opaque
 * vectors are returned as pointers into the input (valid while the input
 * is). Variable-length vectors use the MLS varint header (§2.1.2), which must
 * be minimally encoded; lengths above TLS_MAX_VECTOR are refused.
 *
 * Writing: a `struct tls_writer` grows a heap buffer up to a caller-set
 * maximum. Errors are sticky: after the first failure every put is a no-op
 * and tls_writer_error() reports it, so an encoder can put everything and
 * check once at the end. tls_writer_reset() frees the buffer;
 * tls_writer_take() hands it to the caller (free with free()).
 *
 * Layout of a varint header (RFC 9420 §2.1.2):
 * | first two bits | bytes | value range     |
 * |----------------|-------|-----------------|
 * | 00             | 1     | 0 .. 63         |
 * | 01             | 2     | 64 .. 16383     |
 * | 10             | 4     | 16384 .. 2^30-1 |
 * | 11             | -     | invalid         |
 */
#ifndef SAMMEN_TLS_H
#define SAMMEN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_MAX_VARINT ((uint64_t)0x3fffffff)
/* Upper bound for any single vector we accept (16 MiB). */
#define TLS_MAX_VECTOR ((size_t)16 * 1024 * 1024)

struct tls_reader {
    const uint8_t *buf;
    size_t len;
    size_t off;
};

void tls_reader_init(struct tls_reader *r, const uint8_t *buf, size_t len);
/* Bytes not yet read. */
size_t tls_reader_remaining(const struct tls_reader *r);
/* True when every byte has been consumed. */
bool tls_reader_done(const struct tls_reader *r);

/* Each returns 0, or ERR_MALFORMED when the input is short or invalid. */
int tls_read_u8(struct tls_reader *r, uint8_t *v);
int tls_read_u16(struct tls_reader *r, uint16_t *v);
int tls_read_u32(struct tls_reader *r, uint32_t *v);
int tls_read_u64(struct tls_reader *r, uint64_t *v);
/* A minimally encoded MLS varint. */
int tls_read_varint(struct tls_reader *r, uint64_t *v);
/* n raw bytes; *p points into the input. */
int tls_read_fixed(struct tls_reader *r, size_t n, const uint8_t **p);
/* opaque data<V>: varint length then bytes; *p points into the input. */
int tls_read_opaque(struct tls_reader *r, const uint8_t **p, size_t *len);
/* T items<V>: varint length, then `sub` is set up to read exactly those
 * bytes; the caller loops until tls_reader_done(sub). */
int tls_read_vector(struct tls_reader *r, struct tls_reader *sub);
/* optional<T>: reads the presence octet (0 or 1; anything else malformed). */
int tls_read_optional(struct tls_reader *r, bool *present);

struct tls_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t max;
    int err;
};

/* max: largest buffer the writer may grow to (0 means TLS_MAX_VECTOR * 4). */
void tls_writer_init(struct tls_writer *w, size_t max);
/* Frees the buffer (wiping it: encoders also serialize secrets). */
void tls_writer_reset(struct tls_writer *w);
/* 0, or the first error (ERR_NOMEM, ERR_TOO_BIG, ERR_INVALID). */
int tls_writer_error(const struct tls_writer *w);
/* On success hands the buffer to the caller (free() it; may be NULL when
 * len is 0) and resets the writer. On a sticky error frees and returns it. */
int tls_writer_take(struct tls_writer *w, uint8_t **buf, size_t *len);

void tls_put_u8(struct tls_writer *w, uint8_t v);
void tls_put_u16(struct tls_writer *w, uint16_t v);
void tls_put_u32(struct tls_writer *w, uint32_t v);
void tls_put_u64(struct tls_writer *w, uint64_t v);
void tls_put_varint(struct tls_writer *w, uint64_t v);
void tls_put_fixed(struct tls_writer *w, const uint8_t *p, size_t n);
void tls_put_opaque(struct tls_writer *w, const uint8_t *p, size_t n);
void tls_put_optional(struct tls_writer *w, bool present);

/* A vector whose length is known only after its items are written:
 *     size_t m = tls_vector_begin(w);  ...puts...  tls_vector_end(w, m);
 * The header is fixed up in place with the minimal varint. */
size_t tls_vector_begin(struct tls_writer *w);
void tls_vector_end(struct tls_writer *w, size_t mark);

/* Bytes a varint header for n takes (1, 2 or 4); 0 if n is too large. */
size_t tls_varint_size(uint64_t n);

#endif
