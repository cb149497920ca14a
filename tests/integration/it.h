/*
 * it.h: small helpers shared by the C integration tests (header-only so
 * each test is one file; all static inline). They sit on the client
 * library's blocking layer and cmocka's asserts.
 */
#ifndef SAMMEN_IT_H
#define SAMMEN_IT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client.h"
#include "client_auth.h"
#include "client_sync.h"
#include "err.h"
#include "keys_id.h"
#include "testserver.h"

#define IT_TIMEOUT 5000

/* Opens a connection (asserts it opens). */
static inline struct client_conn *it_open(struct client_ctx *ctx, const char *url)
{
    struct client_conn *c = NULL;
    int rc = client_sync_open(ctx, url, IT_TIMEOUT, &c);
    if (rc != 0)
        fprintf(stderr, "it_open %s: %s\n", url, err_str(rc));
    assert_int_equal(rc, 0);
    return c;
}

/* Calls op with string arguments kv = {key, value, ..., NULL}; *reply gets
 * the response (caller frees). Returns as client_sync_call(). */
static inline int it_call(struct client_conn *c, const char *op, const char *const *kv,
                          struct client_frame *reply)
{
    struct wire_enc e;
    uint32_t n = 0, id = client_conn_next_id(c);
    int rc;

    for (size_t i = 0; kv && kv[i]; i += 2)
        n++;
    wire_enc_init(&e);
    wire_enc_request(&e, id, op, n);
    for (size_t i = 0; kv && kv[i]; i += 2)
        wire_kv_str(&e, kv[i], kv[i + 1]);
    rc = client_sync_call(c, id, &e, IT_TIMEOUT, reply);
    wire_enc_reset(&e);
    return rc;
}

/* Prints a server error response (for failing asserts). */
static inline void it_show(const char *what, int rc, const struct client_frame *r)
{
    if (rc != 0)
        fprintf(stderr, "%s: rc %s, code %s, msg %.*s\n", what, err_str(rc),
                r->buf ? r->msg.name : "-", r->buf ? (int)r->msg.err_msg_len : 0,
                r->buf && r->msg.err_msg ? r->msg.err_msg : "");
}

/* Calls op and asserts `ok`; copies string field `field` (may be NULL) of
 * the answer into out (cap bytes). */
static inline void it_ok(struct client_conn *c, const char *op, const char *const *kv,
                         const char *field, char *out, size_t cap)
{
    struct client_frame r;
    int rc = it_call(c, op, kv, &r);
    it_show(op, rc, &r);
    assert_int_equal(rc, 0);
    if (field)
        assert_int_equal(wire_get_cstr(&r.msg.body, field, out, cap), 0);
    client_frame_free(&r);
}

/* Calls op and asserts an `err` response with wire code `code`. */
static inline void it_err(struct client_conn *c, const char *op, const char *const *kv,
                          const char *code)
{
    struct client_frame r;
    int rc = it_call(c, op, kv, &r);
    assert_int_not_equal(rc, 0);
    assert_non_null(r.buf);
    if (strcmp(r.msg.name, code) != 0)
        fprintf(stderr, "%s: want %s, got %s (%.*s)\n", op, code, r.msg.name,
                (int)r.msg.err_msg_len, r.msg.err_msg ? r.msg.err_msg : "");
    assert_string_equal(r.msg.name, code);
    client_frame_free(&r);
}

/* Enrolls a fresh device key with code on a new connection; returns the
 * open, logged-in connection, the seed and the identity / device id. */
static inline struct client_conn *it_enroll(struct client_ctx *ctx, const char *url,
                                            const char *code, uint8_t seed[32], char *id,
                                            size_t idcap, char device[19])
{
    struct client_conn *c = it_open(ctx, url);
    struct client_frame r;
    int rc;

    randombytes_buf(seed, 32);
    rc = client_auth_enroll(c, code, seed, "test", IT_TIMEOUT, &r);
    it_show("enroll", rc, &r);
    assert_int_equal(rc, 0);
    assert_int_equal(wire_get_cstr(&r.msg.body, "id", id, idcap), 0);
    assert_int_equal(wire_get_cstr(&r.msg.body, "device", device, 19), 0);
    client_frame_free(&r);
    return c;
}

/* Opens a connection and logs in; asserts success. */
static inline struct client_conn *it_login(struct client_ctx *ctx, const char *url,
                                           const char *id, const uint8_t seed[32])
{
    struct client_conn *c = it_open(ctx, url);
    struct client_frame r;
    int rc = client_auth_login(c, id, seed, IT_TIMEOUT, &r);
    it_show("login", rc, &r);
    assert_int_equal(rc, 0);
    client_frame_free(&r);
    return c;
}

/* Shifts the server's test clock by seconds (server started with
 * --test-clock). */
static inline void it_shift_clock(struct client_conn *c, int64_t seconds)
{
    struct wire_enc e;
    struct client_frame r;
    uint32_t id = client_conn_next_id(c);
    int rc;

    wire_enc_init(&e);
    wire_enc_request(&e, id, "test.clock_shift", 1);
    wire_enc_key(&e, "seconds");
    wire_enc_int(&e, seconds);
    rc = client_sync_call(c, id, &e, IT_TIMEOUT, &r);
    wire_enc_reset(&e);
    it_show("test.clock_shift", rc, &r);
    assert_int_equal(rc, 0);
    client_frame_free(&r);
}

#endif
