/*
 * handle_consent.c: server.info, consent.grant, consent.revoke,
 * consent.list, kp.upload, kp.count (PROTOCOL.md "Consent", "Threads and
 * MLS"). The rules live in consent.c and kp.c; this file reads arguments
 * and writes answers.
 */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "consent.h"
#include "err.h"
#include "handle.h"
#include "kp.h"
#include "log.h"
#include "msg_grant.h"
#include "server.h"
#include "thread.h"
#include "tstore.h"

/* Reads a bin argument of 1..max bytes. */
static int req_bin_var(struct req *r, const char *key, size_t max, const uint8_t **p,
                       size_t *len)
{
    int rc = wire_get_bin(r->args, key, p, len);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument '%s'", key);
    if (rc)
        return req_fail(r, "bad_request", "argument '%s' must be bin", key);
    if (*len == 0)
        return req_fail(r, "bad_request", "argument '%s' is empty", key);
    if (*len > max)
        return req_fail(r, "too_big", "argument '%s' is longer than %zu bytes", key, max);
    return 0;
}

int handle_server_info(struct req *r)
{
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "domain", srv.domain);
    wire_kv_bin(r->out, "key", srv.key_pk, 32);
    return 0;
}

int handle_consent_grant(struct req *r)
{
    const uint8_t *tbs, *sig;
    size_t len;
    const char *code = "invalid";
    char why[400];
    static struct consent_stored st;
    if (req_bin_var(r, "tbs", MSG_GRANT_TBS_MAX, &tbs, &len) ||
        req_bin(r, "sig", &sig, MSG_GRANT_SIG_LEN))
        return -1;
    int rc = consent_grant(tbs, len, sig, r->c->identity, r->c->device, NULL, clock_now(), &st,
                           &code, why, sizeof(why));
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL)
        return req_fail_err(r, rc, "consent.grant");
    if (rc)
        return req_fail(r, code, "%s", why);
    log_info("consent: %s stored grant %s for %s (%s)", r->c->identity, st.id, st.g.citizen,
             st.g.scope);
    wire_enc_ok(r->out, r->id, 3);
    wire_kv_str(r->out, "grant", st.id);
    wire_kv_bin(r->out, "receipt", st.receipt, sizeof(st.receipt));
    wire_kv_uint(r->out, "stored", st.stored);
    return 0;
}

int handle_consent_revoke(struct req *r)
{
    const uint8_t *tbs, *sig;
    size_t len;
    const char *code = "invalid";
    char why[400], gid[MSG_GRANT_GID_LEN + 1];
    uint64_t revoked;
    if (req_bin_var(r, "tbs", MSG_GRANT_TBS_MAX, &tbs, &len) ||
        req_bin(r, "sig", &sig, MSG_GRANT_SIG_LEN))
        return -1;
    int rc = consent_revoke(tbs, len, sig, r->c->identity, r->c->device, clock_now(), gid,
                            &revoked, &code, why, sizeof(why));
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL)
        return req_fail_err(r, rc, "consent.revoke");
    if (rc)
        return req_fail(r, code, "%s", why);
    log_info("consent: %s revoked grant %s", r->c->identity, gid);
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "grant", gid);
    wire_kv_uint(r->out, "revoked", revoked);
    return 0;
}

/* May the caller read citizen's ledger? The citizen, an active proxy, a
 * member of one of the citizen's threads, staff of a granted department. */
static bool may_read_ledger(const char *caller, const char *citizen)
{
    if (strcmp(caller, citizen) == 0 || consent_is_proxy(citizen, caller))
        return true;
    sqlite3_stmt *s = tq(Q_STAFF_IN_GRANTED_DEPT);
    if (!tq_text(s, 1, citizen) && !tq_text(s, 2, caller) && tq_row(s) == 0) {
        tq_done(s);
        return true;
    }
    char thread[THREAD_ID_MAX];
    bool member = false;
    s = tq(Q_THREAD_EACH_CITIZEN);
    if (tq_text(s, 1, citizen))
        return false;
    while (!member && tq_row(s) == 0) {
        tq_col_text(s, 0, thread, sizeof(thread));
        sqlite3_stmt *m = tq(Q_MEMBER_OF_IDENTITY);
        if (!tq_text(m, 1, thread) && !tq_text(m, 2, caller) && tq_row(m) == 0) {
            tq_done(m);
            member = true;
        }
    }
    tq_done(s);
    return member;
}

static int count_rows(enum tq q, const char *citizen, uint32_t *n)
{
    sqlite3_stmt *s = tq(q);
    int rc = tq_text(s, 1, citizen);
    *n = 0;
    while (!rc && (rc = tq_row(s)) == 0)
        (*n)++;
    return rc == ERR_NOT_FOUND ? 0 : rc ? rc : ERR_INTERNAL;
}

static void kv_col_bin(struct req *r, const char *key, sqlite3_stmt *s, int i)
{
    static const uint8_t none[1];
    const uint8_t *p = sqlite3_column_blob(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    wire_kv_bin(r->out, key, p ? p : none, p ? n : 0); /* NULL: an empty bin */
}

/* consent.list "proxies": every signed registration of the citizen, with
 * its signed end when there is one (PROTOCOL.md "Consent"). */
static int list_proxies(struct req *r, const char *citizen, uint32_t n)
{
    static char txt[MSG_GRANT_ID_MAX];
    uint32_t got = 0;
    wire_enc_key(r->out, "proxies");
    wire_enc_array(r->out, n);
    sqlite3_stmt *s = tq(Q_PREG_EACH_CITIZEN);
    int rc = tq_text(s, 1, citizen);
    while (!rc && got < n && (rc = tq_row(s)) == 0) {
        const char *cols[] = {"registration", "proxy", "basis", "registrar", "registrar_device"};
        bool ended = tq_col_u64(s, 11) != 0;
        wire_enc_map(r->out, ended ? 15 : 12);
        for (int i = 0; i < 5; i++) {
            tq_col_text(s, i, txt, sizeof(txt));
            wire_kv_str(r->out, cols[i], txt);
        }
        kv_col_bin(r, "registrar_key", s, 5);
        wire_kv_uint(r->out, "registered", tq_col_u64(s, 6));
        wire_kv_uint(r->out, "stored", tq_col_u64(s, 7));
        kv_col_bin(r, "tbs", s, 8);
        kv_col_bin(r, "sig", s, 9);
        kv_col_bin(r, "receipt", s, 10);
        wire_kv_uint(r->out, "ended", tq_col_u64(s, 11));
        if (ended) {
            kv_col_bin(r, "end_tbs", s, 12);
            kv_col_bin(r, "end_sig", s, 13);
            kv_col_bin(r, "ender_key", s, 14);
        }
        got++;
    }
    if (rc == 0)
        tq_done(s);
    else if (rc != ERR_NOT_FOUND)
        return rc;
    return got == n ? 0 : ERR_CONFLICT;
}

/* consent.list "breakglass": every break-glass access into the citizen's
 * threads, with its signed BreakglassTBS (none for accesses opened before
 * schema version 4). */
static int list_breakglass(struct req *r, const char *citizen, uint32_t n)
{
    static char txt[MSG_GRANT_TEXT_MAX];
    uint32_t got = 0;
    wire_enc_key(r->out, "breakglass");
    wire_enc_array(r->out, n);
    sqlite3_stmt *s = tq(Q_BG_EACH_CITIZEN);
    int rc = tq_text(s, 1, citizen);
    while (!rc && got < n && (rc = tq_row(s)) == 0) {
        const char *cols[] = {"access", "staff", "thread", "reason"};
        wire_enc_map(r->out, 11);
        for (int i = 0; i < 4; i++) {
            tq_col_text(s, i, txt, sizeof(txt));
            wire_kv_str(r->out, cols[i], txt);
        }
        wire_kv_uint(r->out, "opened", tq_col_u64(s, 4));
        wire_kv_uint(r->out, "expires", tq_col_u64(s, 5));
        tq_col_text(s, 6, txt, sizeof(txt));
        wire_kv_str(r->out, "staff_device", txt);
        kv_col_bin(r, "staff_key", s, 7);
        wire_kv_uint(r->out, "hours", tq_col_u64(s, 8));
        kv_col_bin(r, "tbs", s, 9);
        kv_col_bin(r, "sig", s, 10);
        got++;
    }
    if (rc == 0)
        tq_done(s);
    else if (rc != ERR_NOT_FOUND)
        return rc;
    return got == n ? 0 : ERR_CONFLICT;
}

int handle_consent_list(struct req *r)
{
    char in[STORE_ID_MAX], citizen[STORE_ID_MAX], name[STORE_NAME_MAX];
    if (req_str_opt(r, "citizen", in, sizeof(in)))
        return -1;
    if (!in[0])
        snprintf(citizen, sizeof(citizen), "%s", r->c->identity);
    else if (req_identity(r, in, citizen, sizeof(citizen), name))
        return -1;
    if (!may_read_ledger(r->c->identity, citizen))
        return req_fail(r, "denied", "you may not read the consent ledger of %s", citizen);
    uint32_t n = 0;
    sqlite3_stmt *s = tq(Q_GRANT_EACH_CITIZEN);
    int rc = tq_text(s, 1, citizen);
    while (!rc && (rc = tq_row(s)) == 0)
        n++;
    if (rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc ? rc : ERR_INTERNAL, "consent.list");
    if (n > WIRE_MAX_COUNT)
        return req_fail(r, "too_big", "more than %d grants", WIRE_MAX_COUNT);
    uint32_t np = 0, nb = 0;
    if ((rc = count_rows(Q_PREG_EACH_CITIZEN, citizen, &np)) != 0 ||
        (rc = count_rows(Q_BG_EACH_CITIZEN, citizen, &nb)) != 0)
        return req_fail_err(r, rc, "consent.list");
    if (np > WIRE_MAX_COUNT || nb > WIRE_MAX_COUNT)
        return req_fail(r, "too_big", "more than %d proxy registrations or accesses",
                        WIRE_MAX_COUNT);
    wire_enc_ok(r->out, r->id, 3);
    wire_enc_key(r->out, "grants");
    wire_enc_array(r->out, n);
    s = tq(Q_GRANT_EACH_CITIZEN);
    rc = tq_text(s, 1, citizen);
    uint32_t got = 0;
    while (!rc && (rc = tq_row(s)) == 0 && got < n) {
        static char txt[MSG_GRANT_TEXT_MAX];
        const char *cols[] = {"grant", "citizen", "grantee", "scope", "basis", "purpose"};
        wire_enc_map(r->out, 18);
        for (int i = 0; i < 6; i++) {
            tq_col_text(s, i, txt, sizeof(txt));
            wire_kv_str(r->out, cols[i], txt);
        }
        const char *form = msg_grant_form_name((uint8_t)tq_col_u64(s, 6));
        wire_kv_str(r->out, "form", form ? form : "unknown");
        tq_col_text(s, 7, txt, sizeof(txt));
        wire_kv_str(r->out, "granter", txt);
        tq_col_text(s, 8, txt, sizeof(txt));
        wire_kv_str(r->out, "granter_device", txt);
        wire_kv_bin(r->out, "granter_key", sqlite3_column_blob(s, 9),
                    (size_t)sqlite3_column_bytes(s, 9));
        tq_col_text(s, 10, txt, sizeof(txt));
        wire_kv_str(r->out, "reason", txt);
        wire_kv_uint(r->out, "issued", tq_col_u64(s, 11));
        wire_kv_uint(r->out, "expires", tq_col_u64(s, 12));
        wire_kv_uint(r->out, "revoked", tq_col_u64(s, 13));
        wire_kv_bin(r->out, "tbs", sqlite3_column_blob(s, 14), (size_t)sqlite3_column_bytes(s, 14));
        wire_kv_bin(r->out, "sig", sqlite3_column_blob(s, 15), (size_t)sqlite3_column_bytes(s, 15));
        wire_kv_bin(r->out, "receipt", sqlite3_column_blob(s, 16),
                    (size_t)sqlite3_column_bytes(s, 16));
        wire_kv_uint(r->out, "stored", tq_col_u64(s, 17));
        got++;
    }
    if (rc == 0)
        tq_done(s);
    else if (rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc, "consent.list");
    if (got != n)
        return req_fail(r, "internal", "the ledger changed while it was read");
    if ((rc = list_proxies(r, citizen, np)) != 0 || (rc = list_breakglass(r, citizen, nb)) != 0)
        return req_fail_err(r, rc, "consent.list");
    return 0;
}

int handle_kp_upload(struct req *r)
{
    struct wire_array a;
    bool last_resort = false;
    struct store_device d;
    int rc = wire_get_array(r->args, "key_packages", &a);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument 'key_packages'");
    if (rc)
        return req_fail(r, "bad_request", "'key_packages' must be an array of bin");
    if (a.n == 0 || a.n > KP_UPLOAD_MAX)
        return req_fail(r, "invalid", "1..%d key packages per upload", KP_UPLOAD_MAX);
    rc = wire_get_bool(r->args, "last_resort", &last_resort);
    if (rc && rc != ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "'last_resort' must be a bool");
    if (last_resort && a.n != 1)
        return req_fail(r, "invalid", "a last-resort upload holds exactly one key package");
    rc = store_device_get(srv.store, r->c->device, &d);
    if (rc)
        return req_fail_err(r, rc, "device");
    uint64_t now = clock_now();
    for (uint32_t i = 0; i < a.n; i++) {
        const msgpack_object *o = &a.item[i];
        if (o->type != MSGPACK_OBJECT_BIN)
            return req_fail(r, "bad_request", "key_packages[%u] is not bin", i);
        const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
        size_t len = o->via.bin.size;
        uint8_t ref[32];
        rc = kp_validate(p, len, r->c->identity, r->c->device, d.pk, now, ref);
        if (rc == ERR_DENIED)
            return req_fail(r, "denied",
                            "key_packages[%u]: the leaf must carry %s/%s and the device's key",
                            i, r->c->identity, r->c->device);
        if (rc == ERR_EXPIRED)
            return req_fail(r, "expired", "key_packages[%u]: outside its lifetime", i);
        if (rc == ERR_CRYPTO)
            return req_fail(r, "crypto", "key_packages[%u]: bad signature", i);
        if (rc == ERR_TOO_BIG)
            return req_fail(r, "too_big", "key_packages[%u] is too large", i);
        if (rc)
            return req_fail(r, "invalid", "key_packages[%u]: %s", i, err_str(rc));
        rc = kp_store(r->c->device, ref, p, len, last_resort, now);
        if (rc == ERR_CONFLICT)
            return req_fail(r, "conflict", "key_packages[%u] was uploaded before", i);
        if (rc == ERR_LIMIT)
            return req_fail(r, "limit", "at most %d unclaimed key packages per device",
                            KP_STOCK_MAX);
        if (rc)
            return req_fail_err(r, rc, "kp.upload");
    }
    /* threads waiting for this device's KeyPackages can now add it */
    rc = thread_reconcile_new_kps(r->c->identity, r->c->device, now);
    if (rc)
        return req_fail_err(r, rc, "reconcile");
    uint64_t count;
    bool lr;
    rc = kp_count(r->c->device, &count, &lr);
    if (rc)
        return req_fail_err(r, rc, "kp.count");
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_uint(r->out, "stored", a.n);
    wire_kv_uint(r->out, "count", count);
    return 0;
}

int handle_kp_count(struct req *r)
{
    uint64_t count;
    bool lr;
    int rc = kp_count(r->c->device, &count, &lr);
    if (rc)
        return req_fail_err(r, rc, "kp.count");
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_uint(r->out, "count", count);
    wire_kv_bool(r->out, "last_resort", lr);
    return 0;
}
