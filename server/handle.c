/*
 * handle.c: decodes one frame and dispatches it through `ops[]` (the one
 * table of operations: name, who may call it, whether it writes), plus the
 * helpers the handle_*.c files share (see handle.h).
 */
#include "handle.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "deliver.h"
#include "err.h"
#include "log.h"
#include "thread.h"

enum auth { A_NONE, A_DEV, A_ADMIN };

struct op {
    const char *name;
    enum auth auth;
    bool write;
    bool test_only; /* exists only with --test-clock */
    int (*fn)(struct req *r);
    /* a write without a savepoint of its own: the handler's only failures
     * after its first write are internal ones (memory, I/O), and those give
     * up the whole transaction (server_commit), so the savepoint's cost
     * (two statements, and a copy of every page the request first touches)
     * is not paid on the hottest writes */
    bool direct;
};

static const struct op ops[] = {
    {"ping", A_NONE, false, false, handle_ping, false},
    {"auth.challenge", A_NONE, false, false, handle_challenge, false},
    {"auth.login", A_NONE, true, false, handle_login, false},
    {"enroll", A_NONE, true, false, handle_enroll, false},
    {"whoami", A_DEV, false, false, handle_whoami, false},
    {"device.list", A_DEV, false, false, handle_device_list, false},
    {"device.revoke", A_DEV, true, false, handle_device_revoke, false},
    {"device.link_code", A_DEV, true, false, handle_device_link_code, false},
    {"admin.invite", A_ADMIN, true, false, handle_admin_invite, false},
    {"admin.department.add", A_ADMIN, true, false, handle_admin_department_add, false},
    {"admin.association.add", A_ADMIN, true, false, handle_admin_association_add, false},
    {"admin.departments", A_ADMIN, false, false, handle_admin_departments, false},
    {"admin.assign", A_ADMIN, true, false, handle_admin_assign, false},
    {"admin.unassign", A_ADMIN, true, false, handle_admin_unassign, false},
    {"server.info", A_NONE, false, false, handle_server_info, false},
    {"consent.grant", A_DEV, true, false, handle_consent_grant, false},
    {"consent.revoke", A_DEV, true, false, handle_consent_revoke, false},
    {"consent.list", A_DEV, false, false, handle_consent_list, false},
    {"consent.request", A_DEV, true, false, handle_consent_request, false},
    {"consent.requests", A_DEV, false, false, handle_consent_requests, false},
    {"consent.approve", A_DEV, true, false, handle_consent_approve, false},
    {"consent.decline", A_DEV, true, false, handle_consent_decline, false},
    {"proxy.register", A_DEV, true, false, handle_proxy_register, false},
    {"proxy.end", A_DEV, true, false, handle_proxy_end, false},
    {"relative.invite", A_DEV, true, false, handle_relative_invite, false},
    {"breakglass.open", A_DEV, true, false, handle_breakglass_open, false},
    {"kp.upload", A_DEV, true, false, handle_kp_upload, false},
    {"kp.count", A_DEV, false, false, handle_kp_count, false},
    {"thread.create", A_DEV, true, false, handle_thread_create, false},
    {"thread.list", A_DEV, false, false, handle_thread_list, false},
    {"thread.members", A_DEV, false, false, handle_thread_members, false},
    {"thread.state", A_DEV, false, false, handle_thread_state, false},
    {"thread.commit", A_DEV, true, false, handle_thread_commit, false},
    {"thread.send", A_DEV, true, false, handle_thread_send, true},
    {"thread.log", A_DEV, false, false, handle_thread_log, false},
    {"thread.status", A_DEV, false, false, handle_thread_status, false},
    {"agreement.pin", A_DEV, true, false, handle_agreement_pin, false},
    {"agreement.ack", A_DEV, true, false, handle_agreement_ack, false},
    {"agreement.show", A_DEV, false, false, handle_agreement_show, false},
    {"kp.claim", A_DEV, true, false, handle_kp_claim, false},
    {"sync", A_DEV, true, false, handle_sync, false},
    {"ack", A_DEV, true, false, handle_ack, true},
    {"test.clock_shift", A_NONE, false, true, handle_clock_shift, false},
    {"test.write_fail", A_NONE, true, true, handle_test_write_fail, true},
};

/* The ops a client may send as a notification (a request without an id,
 * never answered when it succeeds): only `ack`, whose answer tells the
 * client nothing it needs (PROTOCOL.md "Envelope"). */
static bool may_be_note(const struct op *op)
{
    return op->fn == handle_ack;
}

static const struct op *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(ops[i].name, name) == 0) {
            if (ops[i].test_only && !srv.cfg.test_clock)
                return NULL;
            return &ops[i];
        }
    }
    return NULL;
}

int req_fail(struct req *r, const char *code, const char *fmt, ...)
{
    r->ecode = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->emsg, sizeof(r->emsg), fmt, ap);
    va_end(ap);
    return -1;
}

int req_fail_err(struct req *r, int err, const char *what)
{
    switch (err) {
    case ERR_NOT_FOUND: return req_fail(r, "not_found", "%s: not found", what);
    case ERR_CONFLICT: return req_fail(r, "conflict", "%s: already exists", what);
    case ERR_TOO_BIG: return req_fail(r, "too_big", "%s: too long", what);
    case ERR_INVALID: return req_fail(r, "invalid", "%s: invalid", what);
    default:
        log_error("%s: %s failed: %s", r->op, what, err_str(err));
        return req_fail(r, "internal", "%s failed on the server", what);
    }
}

int req_str(struct req *r, const char *key, char *dst, size_t cap)
{
    int rc = wire_get_cstr(r->args, key, dst, cap);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument '%s'", key);
    if (rc == ERR_TOO_BIG)
        return req_fail(r, "too_big", "argument '%s' is longer than %zu bytes", key, cap - 1);
    if (rc)
        return req_fail(r, "bad_request", "argument '%s' must be a string", key);
    if (!dst[0])
        return req_fail(r, "bad_request", "argument '%s' is empty", key);
    return 0;
}

int req_str_opt(struct req *r, const char *key, char *dst, size_t cap)
{
    dst[0] = 0;
    if (!wire_has(r->args, key))
        return 0;
    int rc = wire_get_cstr(r->args, key, dst, cap);
    if (rc == ERR_NOT_FOUND) /* nil */
        return 0;
    if (rc == ERR_TOO_BIG)
        return req_fail(r, "too_big", "argument '%s' is longer than %zu bytes", key, cap - 1);
    if (rc)
        return req_fail(r, "bad_request", "argument '%s' must be a string", key);
    return 0;
}

int req_bin(struct req *r, const char *key, const uint8_t **p, size_t n)
{
    size_t len;
    int rc = wire_get_bin(r->args, key, p, &len);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument '%s'", key);
    if (rc)
        return req_fail(r, "bad_request", "argument '%s' must be bin", key);
    if (len != n)
        return req_fail(r, "bad_request", "argument '%s' must be %zu bytes", key, n);
    return 0;
}

bool handle_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (i == 0 && !alnum)
            return false;
        if (!alnum && ch != '.' && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

int req_identity(struct req *r, const char *in, char *out, size_t cap, char *name)
{
    const char *at = strchr(in, '@');
    size_t nlen = at ? (size_t)(at - in) : strlen(in);
    if (nlen == 0 || nlen >= STORE_NAME_MAX)
        return req_fail(r, "invalid", "'%s' is not a valid identity (name@domain)", in);
    memcpy(name, in, nlen);
    name[nlen] = 0;
    if (!handle_name_valid(name))
        return req_fail(r, "invalid",
                        "'%s': a name is 1..64 of a-z 0-9 . _ -, starting with a letter or digit",
                        name);
    if (at && strcmp(at + 1, srv.domain) != 0)
        return req_fail(r, "not_found", "'%s' is not an identity of this server (%s)", in,
                        srv.domain);
    int n = snprintf(out, cap, "%s@%s", name, srv.domain);
    if (n < 0 || (size_t)n >= cap)
        return req_fail(r, "too_big", "identity too long");
    return 0;
}

char handle_list_a[HANDLE_LIST_MAX][STORE_NAME_MAX];
char handle_list_b[HANDLE_LIST_MAX][STORE_NAME_MAX];

int handle_names_add(void *ctx, const char *name)
{
    struct names *ns = ctx;
    if (ns->n == ns->cap)
        return ERR_TOO_BIG;
    snprintf(ns->v[ns->n++], STORE_NAME_MAX, "%s", name);
    return 0;
}

void handle_names_put(struct wire_enc *e, const char *key, const struct names *ns)
{
    wire_enc_key(e, key);
    wire_enc_array(e, ns->n);
    for (uint32_t i = 0; i < ns->n; i++)
        wire_enc_str(e, ns->v[i]);
}

static const char *decode_code(int rc)
{
    switch (rc) {
    case ERR_TOO_BIG: return "too_big";
    case ERR_UNSUPPORTED: return "unsupported";
    case ERR_NOMEM: return "internal";
    default: return "malformed";
    }
}

void handle_frame(struct conn *c, const uint8_t *buf, size_t len)
{
    struct wire_msg m;
    struct wire_enc out;
    wire_enc_init(&out);
    int rc = wire_decode(buf, len, &m);
    bool note = m.kind == WIRE_NOTE; /* no id: answered only if it fails, with id 0 */
    if (rc == ERR_UNSUPPORTED && (m.kind == WIRE_REQUEST || note)) {
        log_warn("conn %llu %s: protocol version %llu refused", (unsigned long long)c->serial,
                 c->peer, (unsigned long long)m.version);
        conn_send_err(c, m.id, "unsupported", "this server speaks protocol version 1", false);
        goto out;
    }
    if (rc == 0 && m.kind != WIRE_REQUEST && !note)
        rc = ERR_MALFORMED; /* clients send requests (and notifications) only */
    if (rc) {
        /* Without an id the stream cannot be trusted to stay in step with
         * the client: answer with id 0 and close (PROTOCOL.md). */
        bool close = m.id == 0 || m.kind != WIRE_REQUEST;
        log_warn("conn %llu %s: bad frame (%zu bytes): %s%s", (unsigned long long)c->serial,
                 c->peer, len, err_str(rc), close ? "; closing" : "");
        conn_send_err(c, m.kind == WIRE_REQUEST ? m.id : 0, decode_code(rc),
                      rc == ERR_TOO_BIG ? "a field or count exceeds a decoder limit"
                                        : "the frame is not a valid msgpack request envelope",
                      close);
        goto out;
    }

    const struct op *op = find_op(m.name);
    if (!op) {
        log_info("conn %llu %s: unknown op '%s'", (unsigned long long)c->serial, c->peer,
                 m.name);
        conn_send_err(c, m.id, "unknown_op", "the server does not know this operation", false);
        goto out;
    }
    if (note && !may_be_note(op)) {
        conn_send_err(c, 0, "bad_request", "only ack may be sent without an id", false);
        goto out;
    }
    if (op->auth != A_NONE && !c->authed) {
        conn_send_err(c, m.id, "unauthenticated", "log in first (auth.challenge, auth.login)",
                      false);
        goto out;
    }
    if (op->auth == A_ADMIN && strcmp(c->role, "admin") != 0) {
        log_info("conn %llu %s: %s denied to %s (%s)", (unsigned long long)c->serial, c->peer,
                 m.name, c->identity, c->role);
        conn_send_err(c, m.id, "denied", "this operation needs an administrator", false);
        goto out;
    }

    struct req r;
    memset(&r, 0, sizeof(r));
    r.c = c;
    r.id = m.id;
    r.op = op->name;
    r.args = &m.body;
    r.out = &out;
    if (op->write) {
        if (!store_in_txn(srv.store))
            srv.txn_began_us = mono_us();
        rc = store_begin(srv.store);
        if (!rc && !op->direct)
            rc = store_savepoint(srv.store);
        if (!rc)
            srv.txn_writes++;
        if (rc) {
            conn_send_err(c, m.id, "internal", "the server could not start a transaction",
                          false);
            goto out;
        }
    }
    uint64_t changes = op->direct ? store_changes(srv.store) : 0;
    int hr = op->fn(&r);
    if (op->write && op->direct) {
        if (hr != 0 && store_changes(srv.store) != changes) {
            /* it wrote, then failed, and there is no savepoint to undo
             * only this request: the transaction is given up */
            log_error("conn %llu %s: %s failed after writing: the transaction is rolled back",
                      (unsigned long long)c->serial, c->peer, op->name);
            srv.txn_doomed = true;
        }
    } else if (op->write) {
        if (hr == 0 || r.keep_writes) {
            if (store_release(srv.store) != 0) {
                store_rollback_to(srv.store);
                if (hr == 0)
                    hr = req_fail(&r, "internal", "the server could not store the change");
            }
        } else {
            store_rollback_to(srv.store);
        }
    }
    /* Followers and events changed by a failed request are dropped; by a
     * successful one kept (events then wait for the COMMIT like answers). */
    if (hr == 0) {
        thread_cache_keep();
        deliver_flush();
    } else {
        thread_cache_abort();
        deliver_discard();
    }
    const uint8_t *data;
    size_t dlen;
    if (hr == 0 && wire_enc_finish(&out, &data, &dlen) != 0)
        hr = req_fail(&r, "internal", "the server could not encode the answer");
    if (hr == 0) {
        log_debug("conn %llu %s: %s ok", (unsigned long long)c->serial, c->peer, op->name);
        if (!note)
            (void)conn_send(c, data, dlen, m.id, true, false);
    } else {
        log_info("conn %llu %s: %s → %s: %s", (unsigned long long)c->serial, c->peer, op->name,
                 r.ecode ? r.ecode : "internal", r.emsg);
        conn_send_err(c, m.id, r.ecode ? r.ecode : "internal", r.emsg, false);
    }
    if (r.end_own_session)
        conn_end_session(c, "revoked");
out:
    wire_enc_reset(&out);
    wire_msg_free(&m);
}
