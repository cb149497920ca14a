/*
 * handle_ledger.c: the rest of the consent ledger's operations:
 * proxy.register, proxy.end, relative.invite, consent.request,
 * consent.requests, consent.approve, consent.decline, breakglass.open
 * (PROTOCOL.md "Consent"). Grants themselves are checked by consent.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "accesslog.h"
#include "audit.h"
#include "clock.h"
#include "code.h"
#include "consent.h"
#include "deliver.h"
#include "err.h"
#include "handle.h"
#include "log.h"
#include "msg_grant.h"
#include "server.h"
#include "thread.h"
#include "tstore.h"

#define INVITE_LIFETIME (7 * 86400)

static void new_id(char prefix, char out[19])
{
    uint8_t b[8];
    randombytes_buf(b, sizeof(b));
    out[0] = prefix;
    out[1] = '_';
    sodium_bin2hex(out + 2, 17, b, sizeof(b));
}

static int caller_role(struct req *r, char *role, size_t cap)
{
    int rc = store_identity_get(srv.store, r->c->identity, role, cap);
    return rc ? req_fail_err(r, rc, "identity") : 0;
}

/* An existing citizen of this server from argument key. */
static int citizen_arg(struct req *r, const char *key, char *citizen)
{
    char in[STORE_ID_MAX], name[STORE_NAME_MAX], role[16];
    if (req_str(r, key, in, sizeof(in)) || req_identity(r, in, citizen, STORE_ID_MAX, name))
        return -1;
    int rc = store_identity_get(srv.store, citizen, role, sizeof(role));
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no identity %s", citizen);
    if (rc)
        return req_fail_err(r, rc, "identity");
    if (strcmp(role, "citizen") != 0)
        return req_fail(r, "invalid", "%s is not a citizen", citizen);
    return 0;
}

/* A one-time invitation code for a new relative identity. */
static int relative_code(struct req *r, const char *id, uint64_t now, char shown[CODE_SHOWN + 1],
                         uint64_t *expires)
{
    struct store_code sc;
    memset(&sc, 0, sizeof(sc));
    code_new(shown, sc.hash);
    snprintf(sc.kind, sizeof(sc.kind), "invite");
    snprintf(sc.identity, sizeof(sc.identity), "%s", id);
    snprintf(sc.role, sizeof(sc.role), "relative");
    snprintf(sc.created_by, sizeof(sc.created_by), "%s", r->c->identity);
    sc.created = now;
    sc.expires = now + INVITE_LIFETIME;
    *expires = sc.expires;
    int rc = store_code_add(srv.store, &sc);
    return rc ? req_fail_err(r, rc, "code") : 0;
}

/* How far a signed registered_at / ended_at / opened_at may be from the
 * server's clock (the clients sign with the server's time from `ping`). */
#define SIGNED_SKEW 600

static bool near_now(uint64_t t, uint64_t now)
{
    return t + SIGNED_SKEW >= now && t <= now + SIGNED_SKEW;
}

static const char *decode_code(int rc)
{
    return rc == ERR_TOO_BIG ? "too_big" : rc == ERR_UNSUPPORTED ? "unsupported" : "invalid";
}

/* The signed arguments tbs (1..MSG_GRANT_TBS_MAX bytes) and sig (64). The
 * unsigned forms of proxy.register / proxy.end / breakglass.open are gone:
 * without tbs the request is `invalid`. */
static int signed_args(struct req *r, const char *what, const uint8_t **tbs, size_t *len,
                       const uint8_t **sig)
{
    int rc = wire_get_bin(r->args, "tbs", tbs, len);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "invalid", "%s takes a signed %s: arguments 'tbs' and 'sig'",
                        r->op, what);
    if (rc || *len == 0)
        return req_fail(r, "bad_request", "argument 'tbs' must be non-empty bin");
    if (*len > MSG_GRANT_TBS_MAX)
        return req_fail(r, "too_big", "tbs is too large");
    return req_bin(r, "sig", sig, MSG_GRANT_SIG_LEN);
}

/* The signer named in a signed object must be the calling identity and
 * device; pk gets that device's enrolled key. */
static int caller_key(struct req *r, const char *who, const char *device, uint8_t pk[32])
{
    struct store_device d;
    if (strcmp(who, r->c->identity) != 0 || strcmp(device, r->c->device) != 0)
        return req_fail(r, "denied", "the signer (%s, %s) must be the calling device", who,
                        device);
    int rc = store_device_get(srv.store, device, &d);
    if (rc == ERR_NOT_FOUND || (rc == 0 && (d.revoked || strcmp(d.identity, who) != 0)))
        return req_fail(r, "denied", "%s is not an enrolled, unrevoked device of %s", device,
                        who);
    if (rc)
        return req_fail_err(r, rc, "device");
    memcpy(pk, d.pk, 32);
    return 0;
}

/* citizen must be an identity of this server with role citizen. */
static int citizen_check(struct req *r, const char *citizen)
{
    char role[16];
    int rc = store_identity_get(srv.store, citizen, role, sizeof(role));
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no identity %s", citizen);
    if (rc)
        return req_fail_err(r, rc, "identity");
    if (strcmp(role, "citizen") != 0)
        return req_fail(r, "invalid", "%s is not a citizen", citizen);
    return 0;
}

static bool of_this_server(const char *id)
{
    const char *at = strchr(id, '@');
    return at && strcmp(at + 1, srv.domain) == 0;
}

/* proxy.register {tbs, sig}: a ProxyRegistrationTBS signed on the staff
 * member's own device. Stored immutably with a receipt; the proxy becomes
 * active (an invitation code when the identity is new). */
int handle_proxy_register(struct req *r)
{
    static struct msg_proxy_reg p;
    char role[16], shown[CODE_SHOWN + 1] = "", id[MSG_GRANT_GID_LEN + 1];
    const uint8_t *tbs, *sig;
    size_t len;
    uint8_t pk[32], hash[MSG_GRANT_HASH_LEN], receipt[MSG_GRANT_SIG_LEN];
    uint64_t expires = 0, now = clock_now();
    if (caller_role(r, role, sizeof(role)))
        return -1;
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "denied", "proxies are registered by staff");
    if (signed_args(r, "ProxyRegistrationTBS", &tbs, &len, &sig))
        return -1;
    int rc = msg_proxy_reg_decode(tbs, len, &p);
    if (rc)
        return req_fail(r, decode_code(rc), "tbs is not a valid ProxyRegistrationTBS (%s)",
                        err_str(rc));
    if (caller_key(r, p.registrar, p.registrar_device, pk))
        return -1;
    if (msg_proxy_reg_verify(pk, tbs, len, sig) != 0)
        return req_fail(r, "crypto", "the registration signature does not verify with %s's key",
                        p.registrar_device);
    if (!near_now(p.registered_at, now))
        return req_fail(r, "invalid", "registered_at is more than %d s from the server's clock",
                        SIGNED_SKEW);
    if (citizen_check(r, p.citizen))
        return -1;
    if (!of_this_server(p.proxy))
        return req_fail(r, "not_found", "%s is not an identity of this server (%s)", p.proxy,
                        srv.domain);
    /* an active proxy is registered once; one registered before schema 4
     * (unsigned: its row names no registration) may be re-registered with
     * a signed registration, which then replaces it */
    sqlite3_stmt *s = tq(Q_PROXY_ACTIVE);
    rc = tq_text(s, 1, p.citizen);
    if (!rc) rc = tq_text(s, 2, p.proxy);
    if (!rc) rc = tq_row(s);
    if (rc == 0) {
        char prev[MSG_GRANT_GID_LEN + 1];
        tq_col_text(s, 0, prev, sizeof(prev));
        tq_done(s);
        if (prev[0])
            return req_fail(r, "conflict", "%s is already an active proxy of %s (%s)", p.proxy,
                            p.citizen, prev);
    } else if (rc != ERR_NOT_FOUND) {
        return req_fail_err(r, rc, "proxies");
    }
    rc = store_identity_get(srv.store, p.proxy, NULL, 0);
    bool exists = rc == 0;
    if (rc && rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc, "identity");
    msg_grant_hash(tbs, len, sig, hash);
    msg_proxy_reg_id(tbs, len, sig, id);
    rc = msg_grant_receipt_sign(srv.key_seed, id, hash, now, receipt);
    if (rc)
        return req_fail_err(r, rc, "receipt");
    if (!exists && relative_code(r, p.proxy, now, shown, &expires))
        return -1;
    s = tq(Q_PREG_ADD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, p.citizen);
    if (!rc) rc = tq_text(s, 3, p.proxy);
    if (!rc) rc = tq_text(s, 4, p.basis);
    if (!rc) rc = tq_text(s, 5, p.registrar);
    if (!rc) rc = tq_text(s, 6, p.registrar_device);
    if (!rc) rc = tq_blob(s, 7, pk, 32);
    if (!rc) rc = tq_u64(s, 8, p.registered_at);
    if (!rc) rc = tq_u64(s, 9, now);
    if (!rc) rc = tq_blob(s, 10, tbs, len);
    if (!rc) rc = tq_blob(s, 11, sig, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_blob(s, 12, receipt, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_run(s);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "registration %s is already stored", id);
    s = tq(Q_PROXY_ADD);
    if (!rc) rc = tq_text(s, 1, p.citizen);
    if (!rc) rc = tq_text(s, 2, p.proxy);
    if (!rc) rc = tq_text(s, 3, p.basis);
    if (!rc) rc = tq_text(s, 4, r->c->identity);
    if (!rc) rc = tq_u64(s, 5, now);
    if (!rc) rc = tq_text(s, 6, id);
    if (!rc) rc = tq_run(s);
    if (!rc && tq_changes() != 1)
        rc = ERR_CONFLICT; /* checked above: cannot happen inside the transaction */
    char subj[MSG_GRANT_ID_MAX + MSG_GRANT_SHORT_MAX + MSG_GRANT_GID_LEN + 8];
    snprintf(subj, sizeof(subj), "%s (%s) %s", p.proxy, p.basis, id);
    if (!rc) rc = accesslog_add(now, p.citizen, "", r->c->identity, "proxy_registered", subj);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "proxy_register", p.citizen, id);
    if (!rc) rc = thread_reconcile_citizen(p.citizen, now);
    if (rc)
        return req_fail_err(r, rc, "proxy.register");
    wire_enc_ok(r->out, r->id, 6);
    wire_kv_str(r->out, "proxy", p.proxy);
    wire_enc_key(r->out, "code");
    if (exists)
        wire_enc_nil(r->out);
    else
        wire_enc_str(r->out, shown);
    wire_kv_uint(r->out, "expires", expires);
    wire_kv_str(r->out, "registration", id);
    wire_kv_bin(r->out, "receipt", receipt, sizeof(receipt));
    wire_kv_uint(r->out, "stored", now);
    sodium_memzero(shown, sizeof(shown));
    return 0;
}

/* proxy.end {tbs, sig}: a ProxyEndTBS naming the active registration,
 * signed on a staff member's own device; stored immutably. */
int handle_proxy_end(struct req *r)
{
    static struct msg_proxy_end p;
    char role[16];
    const uint8_t *tbs, *sig;
    size_t len;
    uint8_t pk[32];
    uint64_t now = clock_now();
    if (caller_role(r, role, sizeof(role)))
        return -1;
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "denied", "proxies are ended by staff");
    if (signed_args(r, "ProxyEndTBS", &tbs, &len, &sig))
        return -1;
    int rc = msg_proxy_end_decode(tbs, len, &p);
    if (rc)
        return req_fail(r, decode_code(rc), "tbs is not a valid ProxyEndTBS (%s)", err_str(rc));
    if (caller_key(r, p.ender, p.ender_device, pk))
        return -1;
    if (msg_proxy_end_verify(pk, tbs, len, sig) != 0)
        return req_fail(r, "crypto", "the end's signature does not verify with %s's key",
                        p.ender_device);
    if (!near_now(p.ended_at, now))
        return req_fail(r, "invalid", "ended_at is more than %d s from the server's clock",
                        SIGNED_SKEW);
    sqlite3_stmt *s = tq(Q_PROXY_END);
    rc = tq_text(s, 1, p.citizen);
    if (!rc) rc = tq_text(s, 2, p.proxy);
    if (!rc) rc = tq_u64(s, 3, now);
    if (!rc) rc = tq_text(s, 4, p.registration);
    if (!rc) rc = tq_run(s);
    if (!rc && tq_changes() == 0)
        return req_fail(r, "not_found", "%s is not the active registration of %s for %s",
                        p.registration, p.proxy, p.citizen);
    s = tq(Q_PEND_ADD);
    if (!rc) rc = tq_text(s, 1, p.registration);
    if (!rc) rc = tq_text(s, 2, p.ender);
    if (!rc) rc = tq_text(s, 3, p.ender_device);
    if (!rc) rc = tq_blob(s, 4, pk, 32);
    if (!rc) rc = tq_u64(s, 5, p.ended_at);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_blob(s, 7, tbs, len);
    if (!rc) rc = tq_blob(s, 8, sig, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_run(s);
    char subj[MSG_GRANT_ID_MAX + MSG_GRANT_GID_LEN + 8];
    snprintf(subj, sizeof(subj), "%s %s", p.proxy, p.registration);
    if (!rc) rc = accesslog_add(now, p.citizen, "", r->c->identity, "proxy_ended", subj);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "proxy_end", p.citizen,
                               p.registration);
    if (!rc) rc = thread_reconcile_citizen(p.citizen, now);
    if (rc)
        return req_fail_err(r, rc, "proxy.end");
    wire_enc_ok(r->out, r->id, 3);
    wire_kv_str(r->out, "proxy", p.proxy);
    wire_kv_str(r->out, "registration", p.registration);
    wire_kv_uint(r->out, "ended", now);
    return 0;
}

/* Reads tbs/sig, stores the grant; on refusal fails the request. */
static int take_grant(struct req *r, const char *invitee, uint64_t now,
                      struct consent_stored *st)
{
    const uint8_t *tbs, *sig;
    size_t len;
    const char *code = "invalid";
    char why[400];
    int rc = wire_get_bin(r->args, "tbs", &tbs, &len);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument 'tbs'");
    if (rc || len == 0)
        return req_fail(r, "bad_request", "argument 'tbs' must be non-empty bin");
    if (len > MSG_GRANT_TBS_MAX)
        return req_fail(r, "too_big", "tbs is too large");
    if (req_bin(r, "sig", &sig, MSG_GRANT_SIG_LEN))
        return -1;
    rc = consent_grant(tbs, len, sig, r->c->identity, r->c->device, invitee, now, st, &code, why,
                       sizeof(why));
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL)
        return req_fail_err(r, rc, "grant");
    if (rc)
        return req_fail(r, code, "%s", why);
    return 0;
}

int handle_relative_invite(struct req *r)
{
    static struct consent_stored st;
    char citizen[STORE_ID_MAX], in[STORE_ID_MAX], id[STORE_ID_MAX], name[STORE_NAME_MAX];
    char shown[CODE_SHOWN + 1];
    bool child = false;
    uint64_t expires, now = clock_now();
    if (citizen_arg(r, "citizen", citizen) || req_str(r, "name", in, sizeof(in)) ||
        req_identity(r, in, id, sizeof(id), name))
        return -1;
    int rc = wire_get_bool(r->args, "child", &child);
    if (rc && rc != ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "'child' must be a bool");
    rc = store_identity_get(srv.store, id, NULL, 0);
    if (rc == 0)
        return req_fail(r, "conflict", "%s already exists (grant to them directly)", id);
    if (rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc, "identity");
    /* who may invite: the citizen, an active proxy, or staff recording oral
     * consent; consent_grant checks the grant's form against the caller */
    if (take_grant(r, id, now, &st))
        return -1;
    if (strcmp(st.g.citizen, citizen) != 0)
        return req_fail(r, "invalid", "the grant is not for %s", citizen);
    if (relative_code(r, id, now, shown, &expires))
        return -1;
    sqlite3_stmt *s = tq(Q_REL_ADD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, citizen);
    if (!rc) rc = tq_u64(s, 3, child ? 1 : 0);
    if (!rc) rc = tq_text(s, 4, st.id);
    if (!rc) rc = tq_run(s);
    char subj[STORE_ID_MAX + 40];
    snprintf(subj, sizeof(subj), "%s%s", id, child ? " (child)" : "");
    if (!rc) rc = accesslog_add(now, citizen, "", r->c->identity, "relative_invited", subj);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "relative_invite", id, st.id);
    if (rc)
        return req_fail_err(r, rc, "relative.invite");
    wire_enc_ok(r->out, r->id, 6);
    wire_kv_str(r->out, "id", id);
    wire_kv_str(r->out, "code", shown);
    wire_kv_str(r->out, "grant", st.id);
    wire_kv_bin(r->out, "receipt", st.receipt, sizeof(st.receipt));
    wire_kv_uint(r->out, "stored", st.stored);
    wire_kv_uint(r->out, "expires", expires);
    sodium_memzero(shown, sizeof(shown));
    return 0;
}

int handle_consent_request(struct req *r)
{
    char citizen[STORE_ID_MAX], scope[MSG_GRANT_SHORT_MAX], note[MSG_GRANT_TEXT_MAX], id[19];
    uint64_t now = clock_now();
    if (citizen_arg(r, "citizen", citizen) || req_str(r, "scope", scope, sizeof(scope)) ||
        req_str_opt(r, "note", note, sizeof(note)))
        return -1;
    if (!msg_grant_scope_valid(scope))
        return req_fail(r, "invalid", "scope is care, coordination or thread:ID");
    if (strcmp(citizen, r->c->identity) == 0)
        return req_fail(r, "invalid", "a citizen needs no consent from themselves");
    new_id('r', id);
    sqlite3_stmt *s = tq(Q_REQ_ADD);
    int rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, citizen);
    if (!rc) rc = tq_text(s, 3, r->c->identity);
    if (!rc) rc = tq_text(s, 4, scope);
    if (!rc) rc = tq_text(s, 5, note);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_run(s);
    char subj[96];
    snprintf(subj, sizeof(subj), "%s %s", id, scope);
    if (!rc) rc = accesslog_add(now, citizen, "", r->c->identity, "consent_requested", subj);
    if (rc)
        return req_fail_err(r, rc, "consent.request");
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_str(r->out, "request", id);
    return 0;
}

int handle_consent_requests(struct req *r)
{
    uint32_t n = 0;
    sqlite3_stmt *s = tq(Q_REQ_EACH);
    int rc = tq_text(s, 1, r->c->identity);
    while (!rc && (rc = tq_row(s)) == 0)
        n++;
    if (rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc ? rc : ERR_INTERNAL, "consent.requests");
    if (n > WIRE_MAX_COUNT)
        n = WIRE_MAX_COUNT;
    wire_enc_ok(r->out, r->id, 1);
    wire_enc_key(r->out, "requests");
    wire_enc_array(r->out, n);
    s = tq(Q_REQ_EACH);
    rc = tq_text(s, 1, r->c->identity);
    uint32_t got = 0;
    while (!rc && got < n && (rc = tq_row(s)) == 0) {
        static char txt[MSG_GRANT_TEXT_MAX];
        const char *keys[] = {"request", "citizen", "requester", "scope", "note", "status"};
        wire_enc_map(r->out, 8);
        for (int i = 0; i < 6; i++) {
            tq_col_text(s, i, txt, sizeof(txt));
            wire_kv_str(r->out, keys[i], txt);
        }
        wire_kv_uint(r->out, "created", tq_col_u64(s, 6));
        tq_col_text(s, 7, txt, sizeof(txt));
        wire_kv_str(r->out, "grant", txt);
        got++;
    }
    if (rc == 0)
        tq_done(s);
    if (got != n)
        return req_fail(r, "internal", "the requests changed while they were read");
    return 0;
}

/* An open request the caller (citizen or active proxy) may decide. */
static int request_arg(struct req *r, char *id, char *citizen, char *requester, char *scope)
{
    char status[16];
    if (req_str(r, "request", id, 19))
        return -1;
    sqlite3_stmt *s = tq(Q_REQ_GET);
    int rc = tq_text(s, 1, id);
    if (!rc)
        rc = tq_row(s);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no request %s", id);
    if (rc)
        return req_fail_err(r, rc, "request");
    tq_col_text(s, 0, citizen, STORE_ID_MAX);
    tq_col_text(s, 1, requester, STORE_ID_MAX);
    tq_col_text(s, 2, scope, MSG_GRANT_SHORT_MAX);
    tq_col_text(s, 4, status, sizeof(status));
    tq_done(s);
    if (strcmp(citizen, r->c->identity) != 0 && !consent_is_proxy(citizen, r->c->identity))
        return req_fail(r, "denied", "only %s or a proxy decides this request", citizen);
    if (strcmp(status, "open") != 0)
        return req_fail(r, "conflict", "request %s is already %s", id, status);
    return 0;
}

static int set_request(const char *id, const char *status, const char *grant)
{
    sqlite3_stmt *s = tq(Q_REQ_SET);
    int rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, status);
    if (!rc) rc = tq_text(s, 3, grant);
    if (!rc) rc = tq_run(s);
    if (!rc && tq_changes() != 1)
        rc = ERR_CONFLICT;
    return rc;
}

int handle_consent_approve(struct req *r)
{
    static struct consent_stored st;
    char id[19], citizen[STORE_ID_MAX], requester[STORE_ID_MAX], scope[MSG_GRANT_SHORT_MAX];
    uint64_t now = clock_now();
    if (request_arg(r, id, citizen, requester, scope) || take_grant(r, NULL, now, &st))
        return -1;
    if (strcmp(st.g.citizen, citizen) != 0 || strcmp(st.g.grantee, requester) != 0 ||
        strcmp(st.g.scope, scope) != 0)
        return req_fail(r, "invalid", "the grant must be for %s with scope %s, of %s", requester,
                        scope, citizen);
    int rc = set_request(id, "approved", st.id);
    if (!rc) rc = accesslog_add(now, citizen, "", r->c->identity, "consent_approved", id);
    if (rc)
        return req_fail_err(r, rc, "consent.approve");
    wire_enc_ok(r->out, r->id, 4);
    wire_kv_str(r->out, "request", id);
    wire_kv_str(r->out, "grant", st.id);
    wire_kv_bin(r->out, "receipt", st.receipt, sizeof(st.receipt));
    wire_kv_uint(r->out, "stored", st.stored);
    return 0;
}

int handle_consent_decline(struct req *r)
{
    char id[19], citizen[STORE_ID_MAX], requester[STORE_ID_MAX], scope[MSG_GRANT_SHORT_MAX];
    uint64_t now = clock_now();
    if (request_arg(r, id, citizen, requester, scope))
        return -1;
    int rc = set_request(id, "declined", "");
    if (!rc) rc = accesslog_add(now, citizen, "", r->c->identity, "consent_declined", id);
    if (rc)
        return req_fail_err(r, rc, "consent.decline");
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_str(r->out, "request", id);
    return 0;
}

struct devlist {
    char d[64][32];
    size_t n;
};

static int collect_device(void *ctx, const struct store_device *d)
{
    struct devlist *devs = ctx;
    if (!d->revoked && devs->n < 64)
        snprintf(devs->d[devs->n++], sizeof(devs->d[0]), "%s", d->id);
    return 0;
}

/* Notifies the citizen's and active proxies' devices. */
static int notify_breakglass(const char *citizen, const char *thread, const char *actor,
                             const char *reason, uint64_t expires, uint64_t now)
{
    static char ids[64][STORE_ID_MAX];
    static struct devlist devs;
    size_t n = 0;
    snprintf(ids[n++], STORE_ID_MAX, "%s", citizen);
    sqlite3_stmt *s = tq(Q_PROXIES_OF_CITIZEN);
    int rc = tq_text(s, 1, citizen);
    while (!rc && (rc = tq_row(s)) == 0)
        if (n < 64)
            tq_col_text(s, 0, ids[n++], STORE_ID_MAX);
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        devs.n = 0;
        rc = store_device_each(srv.store, ids[i], collect_device, &devs);
        for (size_t k = 0; k < devs.n && !rc; k++)
            rc = deliver_notice(devs.d[k], thread, "breakglass", 0, actor, reason, expires, now);
    }
    return rc;
}

/* breakglass.open {tbs, sig}: a BreakglassTBS signed on the staff member's
 * own device; stored with the access row and listed by consent.list. */
int handle_breakglass_open(struct req *r)
{
    static struct msg_breakglass b;
    char role[16], id[MSG_GRANT_GID_LEN + 1];
    const uint8_t *tbs, *sig;
    size_t len;
    uint8_t pk[32];
    uint64_t now = clock_now();
    struct thread_row t;
    if (caller_role(r, role, sizeof(role)))
        return -1;
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "denied", "break-glass access is for staff");
    if (signed_args(r, "BreakglassTBS", &tbs, &len, &sig))
        return -1;
    int rc = msg_breakglass_decode(tbs, len, &b);
    if (rc)
        return req_fail(r, decode_code(rc),
                        "tbs is not a valid BreakglassTBS (%s): hours 1..72, a reason of at "
                        "least 10 bytes",
                        err_str(rc));
    if (caller_key(r, b.staff, b.staff_device, pk))
        return -1;
    if (msg_breakglass_verify(pk, tbs, len, sig) != 0)
        return req_fail(r, "crypto", "the break-glass signature does not verify with %s's key",
                        b.staff_device);
    if (!near_now(b.opened_at, now))
        return req_fail(r, "invalid", "opened_at is more than %d s from the server's clock",
                        SIGNED_SKEW);
    if (citizen_check(r, b.citizen))
        return -1;
    rc = thread_get(b.thread, &t);
    if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(t.citizen, b.citizen) != 0))
        return req_fail(r, "not_found", "no thread %s of %s", b.thread, b.citizen);
    if (rc)
        return req_fail_err(r, rc, "thread");
    /* the access ends where the signed form says, so a client checking it
     * against the server's time agrees with the server */
    uint64_t expires = b.opened_at + (uint64_t)b.hours * 3600;
    msg_breakglass_id(tbs, len, sig, id);
    sqlite3_stmt *s = tq(Q_BG_ADD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, b.staff);
    if (!rc) rc = tq_text(s, 3, b.citizen);
    if (!rc) rc = tq_text(s, 4, b.thread);
    if (!rc) rc = tq_text(s, 5, b.reason);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_u64(s, 7, expires);
    if (!rc) rc = tq_text(s, 8, b.staff_device);
    if (!rc) rc = tq_blob(s, 9, pk, 32);
    if (!rc) rc = tq_u64(s, 10, b.hours);
    if (!rc) rc = tq_blob(s, 11, tbs, len);
    if (!rc) rc = tq_blob(s, 12, sig, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_run(s);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "break-glass access %s is already stored", id);
    char subj[1100];
    snprintf(subj, sizeof(subj), "BREAK-GLASS %s until %llu: %s", id, (unsigned long long)expires,
             b.reason);
    if (!rc) rc = accesslog_add(now, b.citizen, b.thread, r->c->identity, "breakglass_opened", subj);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "breakglass", b.thread, id);
    if (!rc) rc = notify_breakglass(b.citizen, b.thread, r->c->identity, b.reason, expires, now);
    if (!rc) rc = thread_reconcile(b.thread, now);
    if (rc)
        return req_fail_err(r, rc, "breakglass.open");
    log_warn("BREAK-GLASS: %s opened %s on %s of %s for %u h", r->c->identity, id, b.thread,
             b.citizen, (unsigned)b.hours);
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "access", id);
    wire_kv_uint(r->out, "expires", expires);
    return 0;
}
