/*
 * wire.h: the Sammen client<->server envelope (see PROTOCOL.md), shared by
 * the server and every client. Start here: wire_decode() and the wire_get_*
 * getters to read a frame; struct wire_enc and wire_enc_* to build one.
 *
 * Decoding is bounded. wire_check() walks the raw msgpack bytes first and
 * refuses, before anything is allocated:
 *   | check                                   | error          |
 *   |-----------------------------------------|----------------|
 *   | truncated / invalid type byte / ext     | ERR_MALFORMED  |
 *   | str/bin length > bytes remaining        | ERR_MALFORMED  |
 *   | map/array count > bytes remaining       | ERR_MALFORMED  |
 *   | map key that is not a str               | ERR_MALFORMED  |
 *   | trailing bytes after the top object     | ERR_MALFORMED  |
 *   | map/array count > WIRE_MAX_COUNT (4096) | ERR_TOO_BIG    |
 *   | elements in the frame > WIRE_MAX_TOTAL  | ERR_TOO_BIG    |
 *   | nesting depth > WIRE_MAX_DEPTH (8)      | ERR_TOO_BIG    |
 *   | frame > WIRE_MAX_FRAME (16 MiB)         | ERR_TOO_BIG    |
 * Only then is msgpack-c's unpacker run on it, so its allocations are bounded
 * by the frame size. The server applies its own, smaller max_frame first.
 *
 * Ownership: a decoded struct wire_msg and every view taken from it (maps,
 * arrays, string and bin pointers) point into the msg's msgpack zone AND into
 * the input buffer; both must stay alive while they are used. Strings are
 * NOT NUL-terminated (use the length). wire_msg_free() releases the zone.
 */
#ifndef SAMMEN_WIRE_H
#define SAMMEN_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define WIRE_VERSION 1
#define WIRE_MAX_DEPTH 8
#define WIRE_MAX_COUNT 4096
#define WIRE_MAX_TOTAL 65536           /* objects (keys and values) in one frame */
#define WIRE_MAX_FRAME (16u << 20)     /* absolute cap; the server's max_frame is lower */
#define WIRE_MAX_NAME 64               /* op, ev, err.code */

/* WIRE_NOTE: a notification, a request without `id` (client to server; never
 * answered when it succeeds: PROTOCOL.md "Envelope"). */
enum wire_kind { WIRE_REQUEST = 1, WIRE_RESPONSE = 2, WIRE_EVENT = 3, WIRE_NOTE = 4 };

/* A view of a decoded msgpack map whose keys are all str (checked). */
struct wire_map {
    const msgpack_object_kv *kv;
    uint32_t n;
};

/* A view of a decoded msgpack array. */
struct wire_array {
    const msgpack_object *item;
    uint32_t n;
};

/* One decoded envelope. */
struct wire_msg {
    enum wire_kind kind;
    uint64_t version;          /* `v` */
    uint32_t id;               /* request/response id; 0 for events or when absent */
    bool ok;                   /* response: true for `ok`, false for `err` */
    char name[WIRE_MAX_NAME + 1]; /* request: op; event: ev; error response: err.code */
    struct wire_map body;      /* request: args; ok response: ok; event: data;
                                  error response: the err map */
    const char *err_msg;       /* error response: err.msg (not NUL-terminated) */
    size_t err_msg_len;
    msgpack_zone *zone;        /* owns the decoded objects' maps and arrays
                                  (strings and bins point into the frame);
                                  NULL: nothing to free */
    msgpack_object root;
};

/* Walks buf[0..len) as exactly one msgpack object and checks every limit in
 * the table above without allocating. Returns 0, ERR_MALFORMED, ERR_TOO_BIG. */
int wire_check(const uint8_t *buf, size_t len);

/* Decodes one frame into *out (which the caller provides; no need to
 * initialise it). Validates the envelope: top-level map, `v` uint, then by
 * kind (request: `id` uint 1..2^32-1, `op` str 1..64, `args` map or absent =
 * empty; response: `id` uint 0..2^32-1 (0: the server could not read the
 * request's id), exactly one of `ok` map / `err` map{code, msg};
 * event: `ev` str 1..64, `data` map or absent = empty).
 * Returns 0; ERR_MALFORMED / ERR_TOO_BIG (see wire_check; also bad envelope
 * types, and op/ev/code longer than 64 → ERR_TOO_BIG); ERR_UNSUPPORTED when
 * `v` is not WIRE_VERSION (the rest is still decoded as far as possible);
 * ERR_NOMEM. On every return out->id holds the request id if one could be
 * read (else 0), so a server can address its error answer, and out must be
 * released with wire_msg_free(). buf must outlive out. */
int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *out);

/* Releases what wire_decode() allocated; safe on a zeroed or freed msg. */
void wire_msg_free(struct wire_msg *msg);

/* ---- getters: look up `key` in map. All return 0, ERR_NOT_FOUND (absent,
 * or present as nil), ERR_MALFORMED (present with another type). ---- */
int wire_get_str(const struct wire_map *map, const char *key, const char **p, size_t *len);
int wire_get_bin(const struct wire_map *map, const char *key, const uint8_t **p, size_t *len);
int wire_get_uint(const struct wire_map *map, const char *key, uint64_t *v);
int wire_get_int(const struct wire_map *map, const char *key, int64_t *v);
int wire_get_bool(const struct wire_map *map, const char *key, bool *v);
int wire_get_map(const struct wire_map *map, const char *key, struct wire_map *out);
int wire_get_array(const struct wire_map *map, const char *key, struct wire_array *out);
/* Copies a str value into dst as a NUL-terminated string; ERR_TOO_BIG if
 * it (plus NUL) does not fit in cap, ERR_INVALID if it contains a NUL byte. */
int wire_get_cstr(const struct wire_map *map, const char *key, char *dst, size_t cap);
/* True when key is present (with any type, including nil). */
bool wire_has(const struct wire_map *map, const char *key);

/* Array element access: 0, ERR_NOT_FOUND (index out of range), ERR_MALFORMED. */
int wire_array_str(const struct wire_array *a, uint32_t i, const char **p, size_t *len);
int wire_array_map(const struct wire_array *a, uint32_t i, struct wire_map *out);

/* ---- encoder ----
 * A builder over msgpack_sbuffer with a sticky error: calls after a failure
 * do nothing, wire_enc_finish() reports it. Maps and arrays take their
 * element count up front (msgpack needs it): after wire_enc_request(e, id,
 * op, n) put exactly n key/value pairs (wire_kv_* or wire_enc_key + a value).
 *
 *   struct wire_enc e;
 *   wire_enc_init(&e);
 *   wire_enc_request(&e, 7, "admin.invite", 2);
 *   wire_kv_str(&e, "role", "staff");
 *   wire_kv_str(&e, "name", "anna");
 *   if (wire_enc_finish(&e, &data, &len) == 0) send(data, len);
 *   wire_enc_reset(&e);                       // frees the buffer
 */
struct wire_enc {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int err;
};

void wire_enc_init(struct wire_enc *e);
/* Frees the buffer; the builder may be initialised again. */
void wire_enc_reset(struct wire_enc *e);

/* Envelope openers: each writes the top map and the envelope keys, then opens
 * the body map (args / ok / data) with nbody entries to follow. */
void wire_enc_request(struct wire_enc *e, uint32_t id, const char *op, uint32_t nbody);
/* A notification: a request without an id ({v, op, args}). */
void wire_enc_note(struct wire_enc *e, const char *op, uint32_t nbody);
void wire_enc_ok(struct wire_enc *e, uint32_t id, uint32_t nbody);
void wire_enc_event(struct wire_enc *e, const char *ev, uint32_t nbody);
/* A complete error response: {v, id, err: {code, msg}}. code e.g. err_str(). */
void wire_enc_err(struct wire_enc *e, uint32_t id, const char *code, const char *msg);

/* Values. */
void wire_enc_str(struct wire_enc *e, const char *s);        /* s NUL-terminated */
void wire_enc_strn(struct wire_enc *e, const char *s, size_t len);
void wire_enc_bin(struct wire_enc *e, const uint8_t *p, size_t len);
void wire_enc_uint(struct wire_enc *e, uint64_t v);
void wire_enc_int(struct wire_enc *e, int64_t v);
void wire_enc_bool(struct wire_enc *e, bool v);
void wire_enc_nil(struct wire_enc *e);
void wire_enc_map(struct wire_enc *e, uint32_t n);   /* then n key/value pairs */
void wire_enc_array(struct wire_enc *e, uint32_t n); /* then n values */
void wire_enc_key(struct wire_enc *e, const char *key);
/* key + value shorthands */
void wire_kv_str(struct wire_enc *e, const char *key, const char *s);
void wire_kv_strn(struct wire_enc *e, const char *key, const char *s, size_t len);
void wire_kv_bin(struct wire_enc *e, const char *key, const uint8_t *p, size_t len);
void wire_kv_uint(struct wire_enc *e, const char *key, uint64_t v);
void wire_kv_bool(struct wire_enc *e, const char *key, bool v);
/* Appends the bytes of values another builder encoded (e.g. the elements of
 * an array whose length was known only after encoding them). */
void wire_enc_append(struct wire_enc *e, const struct wire_enc *values);

/* Returns 0 and the encoded bytes (owned by e, valid until the next call on
 * e or wire_enc_reset()), or ERR_NOMEM / ERR_INVALID if any step failed. */
int wire_enc_finish(struct wire_enc *e, const uint8_t **data, size_t *len);

#endif
