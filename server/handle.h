/*
 * handle.h: request dispatch (handle.c) and what the handle_*.c files share.
 *
 * A handler gets a struct req, reads r->args with the wire_get_* getters,
 * and either writes a complete `ok` response into r->out (wire_enc_ok(...,
 * r->id, n) and n pairs) and returns 0, or returns req_fail(r, code, msg)
 * (code: a PROTOCOL.md error string). Handlers of write operations run
 * inside a savepoint: a failure rolls the request's writes back, unless the
 * handler sets r->keep_writes (failed logins are audited).
 */
#ifndef SAMMEN_HANDLE_H
#define SAMMEN_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "wire.h"

struct req {
    struct conn *c;
    uint32_t id;
    const char *op;
    const struct wire_map *args;
    struct wire_enc *out;
    const char *ecode;
    char emsg[160];
    bool keep_writes;
    bool end_own_session; /* after the response: end c's session (revoked itself) */
};

/* Decodes and answers one complete inbound frame. */
void handle_frame(struct conn *c, const uint8_t *buf, size_t len);

/* Records an error answer; returns -1 for `return req_fail(...)`. */
int req_fail(struct req *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a store/internal ERR_* to a failure (not_found, conflict, internal...). */
int req_fail_err(struct req *r, int err, const char *what);

/* Reads a required str argument into dst (1..cap-1 bytes, no NUL).
 * Fails the request with bad_request / too_big and returns -1. */
int req_str(struct req *r, const char *key, char *dst, size_t cap);
/* Same, optional: returns 0 and dst = "" when absent. */
int req_str_opt(struct req *r, const char *key, char *dst, size_t cap);
/* Required bin argument of exactly n bytes. */
int req_bin(struct req *r, const char *key, const uint8_t **p, size_t n);

/* Name rule: 1..64 of [a-z0-9._-], starting with a letter or digit. */
bool handle_name_valid(const char *name);
/* Normalizes "name" or "name@domain" of this server into out (cap bytes)
 * and name (STORE_NAME_MAX). Fails the request (invalid / not_found for
 * another domain) and returns -1. */
int req_identity(struct req *r, const char *in, char *out, size_t cap, char *name);

/* Name lists for replies: filled by store_*_each(..., handle_names_add,
 * &names), encoded as an array by handle_names_put. Two shared buffers
 * (one thread; used within one handler call). */
#define HANDLE_LIST_MAX WIRE_MAX_COUNT
struct names {
    char (*v)[STORE_NAME_MAX];
    uint32_t n, cap;
};
extern char handle_list_a[HANDLE_LIST_MAX][STORE_NAME_MAX];
extern char handle_list_b[HANDLE_LIST_MAX][STORE_NAME_MAX];
int handle_names_add(void *ctx, const char *name);
void handle_names_put(struct wire_enc *e, const char *key, const struct names *ns);

/* handlers */
int handle_ping(struct req *r);
int handle_test_write_fail(struct req *r);
int handle_clock_shift(struct req *r);
int handle_challenge(struct req *r);
int handle_login(struct req *r);
int handle_enroll(struct req *r);
int handle_whoami(struct req *r);
int handle_device_list(struct req *r);
int handle_device_revoke(struct req *r);
int handle_device_link_code(struct req *r);
int handle_admin_invite(struct req *r);
int handle_admin_department_add(struct req *r);
int handle_admin_association_add(struct req *r);
int handle_admin_departments(struct req *r);
int handle_admin_assign(struct req *r);
int handle_admin_unassign(struct req *r);
/* issue 5: handle_consent.c */
int handle_server_info(struct req *r);
int handle_consent_grant(struct req *r);
int handle_consent_revoke(struct req *r);
int handle_consent_list(struct req *r);
int handle_kp_upload(struct req *r);
int handle_kp_count(struct req *r);
/* issue 5: handle_ledger.c */
int handle_proxy_register(struct req *r);
int handle_proxy_end(struct req *r);
int handle_relative_invite(struct req *r);
int handle_consent_request(struct req *r);
int handle_consent_requests(struct req *r);
int handle_consent_approve(struct req *r);
int handle_consent_decline(struct req *r);
int handle_breakglass_open(struct req *r);
/* issue 5: handle_thread.c */
int handle_thread_create(struct req *r);
int handle_thread_list(struct req *r);
int handle_thread_members(struct req *r);
int handle_thread_state(struct req *r);
int handle_thread_commit(struct req *r);
int handle_thread_send(struct req *r);
int handle_thread_log(struct req *r);
int handle_sync(struct req *r);
int handle_ack(struct req *r);
int handle_thread_status(struct req *r);
int handle_agreement_pin(struct req *r);
int handle_agreement_ack(struct req *r);
int handle_agreement_show(struct req *r);
int handle_kp_claim(struct req *r);

/* Ends every live session of device (device revoked). */
void handle_end_device_sessions(const char *device, const char *reason);

#endif
