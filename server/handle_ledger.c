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

int handle_proxy_register(struct req *r)
{
    char citizen[STORE_ID_MAX], in[STORE_ID_MAX], proxy[STORE_ID_MAX], name[STORE_NAME_MAX];
    char basis[32], role[16], shown[CODE_SHOWN + 1] = "";
    uint64_t expires = 0, now = clock_now();
    if (caller_role(r, role, sizeof(role)))
        return -1;
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "denied", "proxies are registered by staff");
    if (citizen_arg(r, "citizen", citizen) || req_str(r, "name", in, sizeof(in)) ||
        req_str(r, "basis", basis, sizeof(basis)))
        return -1;
    if (strcmp(basis, "guardianship") != 0 && strcmp(basis, "power-of-attorney") != 0)
        return req_fail(r, "invalid", "basis is guardianship or power-of-attorney");
    if (req_identity(r, in, proxy, sizeof(proxy), name))
        return -1;
    if (strcmp(proxy, citizen) == 0)
        return req_fail(r, "invalid", "a citizen is not their own proxy");
    int rc = store_identity_get(srv.store, proxy, NULL, 0);
    bool exists = rc == 0;
    if (rc && rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc, "identity");
    if (!exists && relative_code(r, proxy, now, shown, &expires))
        return -1;
    sqlite3_stmt *s = tq(Q_PROXY_ADD);
    rc = tq_text(s, 1, citizen);
    if (!rc) rc = tq_text(s, 2, proxy);
    if (!rc) rc = tq_text(s, 3, basis);
    if (!rc) rc = tq_text(s, 4, r->c->identity);
    if (!rc) rc = tq_u64(s, 5, now);
    if (!rc) rc = tq_run(s);
    char subj[STORE_ID_MAX + 40];
    snprintf(subj, sizeof(subj), "%s (%s)", proxy, basis);
    if (!rc) rc = accesslog_add(now, citizen, "", r->c->identity, "proxy_registered", subj);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "proxy_register", citizen, proxy);
    if (!rc) rc = thread_reconcile_citizen(citizen, now);
    if (rc)
        return req_fail_err(r, rc, "proxy.register");
    wire_enc_ok(r->out, r->id, 3);
    wire_kv_str(r->out, "proxy", proxy);
    wire_enc_key(r->out, "code");
    if (exists)
        wire_enc_nil(r->out);
    else
        wire_enc_str(r->out, shown);
    wire_kv_uint(r->out, "expires", expires);
    sodium_memzero(shown, sizeof(shown));
    return 0;
}

int handle_proxy_end(struct req *r)
{
    char citizen[STORE_ID_MAX], in[STORE_ID_MAX], proxy[STORE_ID_MAX], name[STORE_NAME_MAX];
    char role[16];
    uint64_t now = clock_now();
    if (caller_role(r, role, sizeof(role)))
        return -1;
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "denied", "proxies are ended by staff");
    if (citizen_arg(r, "citizen", citizen) || req_str(r, "proxy", in, sizeof(in)) ||
        req_identity(r, in, proxy, sizeof(proxy), name))
        return -1;
    sqlite3_stmt *s = tq(Q_PROXY_END);
    int rc = tq_text(s, 1, citizen);
    if (!rc) rc = tq_text(s, 2, proxy);
    if (!rc) rc = tq_u64(s, 3, now);
    if (!rc) rc = tq_run(s);
    if (!rc && tq_changes() == 0)
        return req_fail(r, "not_found", "%s is not an active proxy of %s", proxy, citizen);
    if (!rc) rc = accesslog_add(now, citizen, "", r->c->identity, "proxy_ended", proxy);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "proxy_end", citizen, proxy);
    if (!rc) rc = thread_reconcile_citizen(citizen, now);
    if (rc)
        return req_fail_err(r, rc, "proxy.end");
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_str(r->out, "proxy", proxy);
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

int handle_breakglass_open(struct req *r)
{
    char citizen[STORE_ID_MAX], thread[THREAD_ID_MAX], reason[1025], role[16], id[19];
    uint64_t hours = 4, now = clock_now();
    struct thread_row t;
    if (caller_role(r, role, sizeof(role)))
        return -1;
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "denied", "break-glass access is for staff");
    if (citizen_arg(r, "citizen", citizen) || req_str(r, "thread", thread, sizeof(thread)) ||
        req_str(r, "reason", reason, sizeof(reason)))
        return -1;
    int rc = wire_get_uint(r->args, "hours", &hours);
    if (rc == ERR_NOT_FOUND)
        hours = 4;
    else if (rc)
        return req_fail(r, "bad_request", "'hours' must be an unsigned integer");
    if (hours < 1 || hours > 72)
        return req_fail(r, "invalid", "hours is 1..72");
    if (strlen(reason) < 10)
        return req_fail(r, "invalid", "a break-glass reason is at least 10 characters");
    if (!thread_id_valid(thread))
        return req_fail(r, "invalid", "'%s' is not a thread id", thread);
    rc = thread_get(thread, &t);
    if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(t.citizen, citizen) != 0))
        return req_fail(r, "not_found", "no thread %s of %s", thread, citizen);
    if (rc)
        return req_fail_err(r, rc, "thread");
    uint64_t expires = now + hours * 3600;
    new_id('b', id);
    sqlite3_stmt *s = tq(Q_BG_ADD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, r->c->identity);
    if (!rc) rc = tq_text(s, 3, citizen);
    if (!rc) rc = tq_text(s, 4, thread);
    if (!rc) rc = tq_text(s, 5, reason);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_u64(s, 7, expires);
    if (!rc) rc = tq_run(s);
    char subj[1100];
    snprintf(subj, sizeof(subj), "BREAK-GLASS %s until %llu: %s", id, (unsigned long long)expires,
             reason);
    if (!rc) rc = accesslog_add(now, citizen, thread, r->c->identity, "breakglass_opened", subj);
    if (!rc) rc = audit_append(srv.store, now, r->c->identity, "breakglass", thread, id);
    if (!rc) rc = notify_breakglass(citizen, thread, r->c->identity, reason, expires, now);
    if (!rc) rc = thread_reconcile(thread, now);
    if (rc)
        return req_fail_err(r, rc, "breakglass.open");
    log_warn("BREAK-GLASS: %s opened %s on %s of %s for %llu h", r->c->identity, id, thread,
             citizen, (unsigned long long)hours);
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "access", id);
    wire_kv_uint(r->out, "expires", expires);
    return 0;
}
