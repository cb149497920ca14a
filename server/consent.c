/*
 * consent.c: grant checks, storage with receipts, revocation, expiry
 * (see consent.h). The rules are PROTOCOL.md "Consent" / "Server rules".
 */
#include "consent.h"

#include <stdio.h>
#include <string.h>

#include "accesslog.h"
#include "audit.h"
#include "err.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "thread.h"
#include "tstore.h"

#define DAY 86400

#define REFUSE(c, ...)                                                                       \
    do {                                                                                     \
        *code = (c);                                                                         \
        snprintf(why, whycap, __VA_ARGS__);                                                  \
        rc = ERR_DENIED;                                                                     \
        goto out;                                                                            \
    } while (0)

bool consent_is_proxy(const char *citizen, const char *proxy)
{
    sqlite3_stmt *s = tq(Q_PROXY_ACTIVE);
    if (tq_text(s, 1, citizen) || tq_text(s, 2, proxy))
        return false;
    if (tq_row(s) != 0)
        return false;
    tq_done(s);
    return true;
}

static int active_devices(const char *identity, uint64_t *n)
{
    sqlite3_stmt *s = tq(Q_DEV_ACTIVE_COUNT);
    int rc = tq_text(s, 1, identity);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    *n = tq_col_u64(s, 0);
    tq_done(s);
    return 0;
}

/* The caller's device must be the signer's, enrolled and unrevoked; the
 * signature must verify with its key. */
static int signer_key(const char *identity, const char *device, const char *caller,
                      const char *caller_device, uint8_t pk[32], const char **code, char *why,
                      size_t whycap)
{
    struct store_device d;
    int rc = 0;
    if (strcmp(identity, caller) != 0 || strcmp(device, caller_device) != 0)
        REFUSE("denied", "the signer (%s, %s) must be the calling device", identity, device);
    rc = store_device_get(srv.store, device, &d);
    if (rc == ERR_NOT_FOUND || (rc == 0 && (d.revoked || strcmp(d.identity, identity) != 0)))
        REFUSE("denied", "%s is not an enrolled, unrevoked device of %s", device, identity);
    if (rc)
        goto out;
    memcpy(pk, d.pk, 32);
out:
    return rc;
}

int consent_grant(const uint8_t *tbs, size_t len, const uint8_t *sig, const char *caller,
                  const char *caller_device, const char *invitee, uint64_t now,
                  struct consent_stored *out, const char **code, char *why, size_t whycap)
{
    struct msg_grant *g = &out->g;
    uint8_t pk[32], hash[MSG_GRANT_HASH_LEN];
    char role[16], name[STORE_NAME_MAX], domain[256];
    enum msg_grantee_kind kind;
    int rc = msg_grant_decode(tbs, len, g);
    if (rc) {
        *code = rc == ERR_TOO_BIG ? "too_big" : rc == ERR_UNSUPPORTED ? "unsupported" : "invalid";
        snprintf(why, whycap, "tbs is not a valid GrantTBS (%s)", err_str(rc));
        return rc;
    }
    rc = signer_key(g->granter, g->granter_device, caller, caller_device, pk, code, why, whycap);
    if (rc)
        goto out;
    if (msg_grant_verify(pk, tbs, len, sig) != 0) {
        *code = "crypto";
        snprintf(why, whycap, "the grant signature does not verify with %s's key",
                 g->granter_device);
        rc = ERR_CRYPTO;
        goto out;
    }
    if (g->issued_at + DAY < now || g->issued_at > now + DAY)
        REFUSE("invalid", "issued_at is more than a day from the server's clock");
    if (g->expires_at != 0 && g->expires_at <= now)
        REFUSE("expired", "the grant has already expired");
    /* the citizen: an identity of this server with role citizen */
    rc = store_identity_get(srv.store, g->citizen, role, sizeof(role));
    if (rc == ERR_NOT_FOUND)
        REFUSE("not_found", "no identity %s", g->citizen);
    if (rc)
        goto out;
    if (strcmp(role, "citizen") != 0)
        REFUSE("invalid", "%s is not a citizen", g->citizen);
    /* the form and its granter */
    switch (g->form) {
    case MSG_GRANT_FORM_CITIZEN:
        break; /* granter == citizen: checked by the decoder */
    case MSG_GRANT_FORM_PROXY:
        if (!consent_is_proxy(g->citizen, g->granter))
            REFUSE("denied", "%s is not an active proxy of %s", g->granter, g->citizen);
        break;
    case MSG_GRANT_FORM_ORAL: {
        uint64_t ndev = 0;
        rc = store_identity_get(srv.store, g->granter, role, sizeof(role));
        if (rc)
            goto out;
        if (strcmp(role, "staff") != 0)
            REFUSE("denied", "oral consent is recorded by staff only");
        rc = active_devices(g->citizen, &ndev);
        if (rc)
            goto out;
        if (ndev)
            REFUSE("denied", "%s has a device: consent must be signed there, not oral",
                   g->citizen);
        break;
    }
    default:
        REFUSE("invalid", "unknown form");
    }
    /* the grantee exists here (or is the identity being invited) */
    rc = msg_grant_grantee_parse(g->grantee, &kind, name, sizeof(name), domain, sizeof(domain));
    if (rc)
        REFUSE("invalid", "bad grantee");
    if (strcmp(domain, srv.domain) != 0)
        REFUSE("not_found", "grantee %s is not of this server (%s)", g->grantee, srv.domain);
    if (kind == MSG_GRANTEE_PERSON) {
        if (invitee && strcmp(invitee, g->grantee) == 0) {
            rc = 0;
        } else {
            rc = store_identity_get(srv.store, g->grantee, NULL, 0);
            if (rc == ERR_NOT_FOUND)
                REFUSE("not_found", "no identity %s", g->grantee);
            if (rc)
                goto out;
        }
    } else {
        rc = store_unit_exists(srv.store,
                               kind == MSG_GRANTEE_DEPARTMENT ? STORE_DEPARTMENT
                                                              : STORE_ASSOCIATION,
                               name);
        if (rc == ERR_NOT_FOUND)
            REFUSE("not_found", "no %s %s", kind == MSG_GRANTEE_DEPARTMENT ? "department"
                                                                           : "association",
                   name);
        if (rc)
            goto out;
    }
    if (invitee && strcmp(invitee, g->grantee) != 0)
        REFUSE("invalid", "the grant must name the invited identity %s", invitee);
    /* a thread scope names a thread of this citizen */
    if (strncmp(g->scope, "thread:", 7) == 0) {
        struct thread_row t;
        rc = thread_get(g->scope + 7, &t);
        if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(t.citizen, g->citizen) != 0))
            REFUSE("not_found", "no thread %s of %s", g->scope + 7, g->citizen);
        if (rc)
            goto out;
    }
    msg_grant_hash(tbs, len, sig, hash);
    msg_grant_id(tbs, len, sig, out->id);
    out->stored = now;
    rc = msg_grant_receipt_sign(srv.key_seed, out->id, hash, now, out->receipt);
    if (rc)
        goto out;
    sqlite3_stmt *s = tq(Q_GRANT_ADD);
    rc = tq_text(s, 1, out->id);
    if (!rc) rc = tq_text(s, 2, g->citizen);
    if (!rc) rc = tq_text(s, 3, g->grantee);
    if (!rc) rc = tq_u64(s, 4, (uint64_t)kind);
    if (!rc) rc = tq_text(s, 5, kind == MSG_GRANTEE_PERSON ? g->grantee : name);
    if (!rc) rc = tq_text(s, 6, g->scope);
    if (!rc) rc = tq_text(s, 7, g->basis);
    if (!rc) rc = tq_text(s, 8, g->purpose);
    if (!rc) rc = tq_u64(s, 9, g->form);
    if (!rc) rc = tq_text(s, 10, g->granter);
    if (!rc) rc = tq_text(s, 11, g->granter_device);
    if (!rc) rc = tq_blob(s, 12, pk, 32);
    if (!rc) rc = tq_text(s, 13, g->reason);
    if (!rc) rc = tq_u64(s, 14, g->issued_at);
    if (!rc) rc = tq_u64(s, 15, g->expires_at);
    if (!rc) rc = tq_u64(s, 16, now);
    if (!rc) rc = tq_blob(s, 17, tbs, len);
    if (!rc) rc = tq_blob(s, 18, sig, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_blob(s, 19, out->receipt, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_run(s);
    if (rc == ERR_CONFLICT) {
        *code = "conflict";
        snprintf(why, whycap, "grant %s is already stored", out->id);
        goto out;
    }
    if (rc)
        goto out;
    char subj[MSG_GRANT_GRANTEE_MAX + 160];
    snprintf(subj, sizeof(subj), "%s %s %s (%s)", out->id, g->grantee, g->scope,
             msg_grant_form_name(g->form));
    rc = accesslog_add(now, g->citizen, "", caller, "consent_granted", subj);
    if (!rc)
        rc = audit_append(srv.store, now, caller, "consent_grant", g->citizen, out->id);
    if (!rc)
        rc = thread_reconcile_citizen(g->citizen, now);
out:
    return rc;
}

int consent_revoke(const uint8_t *tbs, size_t len, const uint8_t *sig, const char *caller,
                   const char *caller_device, uint64_t now, char *gid_out, uint64_t *revoked,
                   const char **code, char *why, size_t whycap)
{
    struct msg_revocation v;
    uint8_t pk[32];
    char citizen[STORE_ID_MAX], scope[MSG_GRANT_SHORT_MAX];
    int rc = msg_revocation_decode(tbs, len, &v);
    if (rc) {
        *code = rc == ERR_TOO_BIG ? "too_big" : "invalid";
        snprintf(why, whycap, "tbs is not a valid RevocationTBS (%s)", err_str(rc));
        return rc;
    }
    rc = signer_key(v.revoker, v.revoker_device, caller, caller_device, pk, code, why, whycap);
    if (rc)
        goto out;
    if (msg_revocation_verify(pk, tbs, len, sig) != 0) {
        *code = "crypto";
        snprintf(why, whycap, "the revocation signature does not verify");
        rc = ERR_CRYPTO;
        goto out;
    }
    sqlite3_stmt *s = tq(Q_GRANT_GET);
    rc = tq_text(s, 1, v.grant);
    if (!rc)
        rc = tq_row(s);
    if (rc == ERR_NOT_FOUND)
        REFUSE("not_found", "no grant %s", v.grant);
    if (rc)
        goto out;
    tq_col_text(s, 0, citizen, sizeof(citizen));
    tq_col_text(s, 1, scope, sizeof(scope));
    uint64_t was = tq_col_u64(s, 3);
    tq_done(s);
    if (strcmp(v.revoker, citizen) != 0 && !consent_is_proxy(citizen, v.revoker))
        REFUSE("denied", "only %s or an active proxy may revoke %s", citizen, v.grant);
    if (was)
        REFUSE("conflict", "grant %s is already revoked", v.grant);
    s = tq(Q_REVOKE_ADD);
    rc = tq_text(s, 1, v.grant);
    if (!rc) rc = tq_text(s, 2, v.revoker);
    if (!rc) rc = tq_text(s, 3, v.revoker_device);
    if (!rc) rc = tq_u64(s, 4, v.revoked_at);
    if (!rc) rc = tq_u64(s, 5, now);
    if (!rc) rc = tq_blob(s, 6, tbs, len);
    if (!rc) rc = tq_blob(s, 7, sig, MSG_GRANT_SIG_LEN);
    if (!rc) rc = tq_run(s);
    if (!rc) rc = accesslog_add(now, citizen, "", caller, "consent_revoked", v.grant);
    if (!rc) rc = audit_append(srv.store, now, caller, "consent_revoke", citizen, v.grant);
    if (!rc) rc = thread_reconcile_citizen(citizen, now);
    if (!rc) {
        snprintf(gid_out, MSG_GRANT_GID_LEN + 1, "%s", v.grant);
        *revoked = now;
    }
out:
    return rc;
}

/* Break-glass accesses past their end: logged once, threads reconciled. */
static int breakglass_sweep(uint64_t now, bool *did)
{
    struct due {
        char id[24];
        char citizen[STORE_ID_MAX];
        char thread[THREAD_ID_MAX];
        char staff[STORE_ID_MAX];
    } due[32];
    size_t n = 0;
    sqlite3_stmt *s = tq(Q_BG_EXPIRED_DUE);
    int rc = tq_u64(s, 1, now);
    while (!rc && n < 32 && (rc = tq_row(s)) == 0) {
        tq_col_text(s, 0, due[n].id, sizeof(due[n].id));
        tq_col_text(s, 1, due[n].citizen, sizeof(due[n].citizen));
        tq_col_text(s, 2, due[n].thread, sizeof(due[n].thread));
        tq_col_text(s, 3, due[n].staff, sizeof(due[n].staff));
        n++;
    }
    if (rc == 0)
        tq_done(s);
    else if (rc != ERR_NOT_FOUND)
        return rc;
    if (n == 0)
        return 0;
    if (!store_in_txn(srv.store) && (rc = store_begin(srv.store)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char subj[STORE_ID_MAX + 32];
        int sn = snprintf(subj, sizeof(subj), "%s %s", due[i].id, due[i].staff);
        if (sn < 0 || (size_t)sn >= sizeof(subj))
            subj[sizeof(subj) - 1] = '\0'; /* a shortened log subject is acceptable */
        s = tq(Q_BG_SET_LOGGED);
        rc = tq_text(s, 1, due[i].id);
        if (!rc) rc = tq_run(s);
        if (!rc)
            rc = accesslog_add(now, due[i].citizen, due[i].thread, srv.server_cred,
                               "breakglass_expired", subj);
        if (!rc)
            rc = thread_reconcile(due[i].thread, now);
        if (rc)
            return rc;
    }
    *did = true;
    return 0;
}

int consent_sweep(uint64_t now, bool *did)
{
    struct due {
        char id[MSG_GRANT_GID_LEN + 1];
        char citizen[STORE_ID_MAX];
    } due[100];
    size_t n = 0;
    *did = false;
    int rc = breakglass_sweep(now, did);
    if (rc)
        return rc;
    sqlite3_stmt *s = tq(Q_GRANT_EXPIRED_DUE);
    rc = tq_u64(s, 1, now);
    while (!rc && (rc = tq_row(s)) == 0 && n < 100) {
        tq_col_text(s, 0, due[n].id, sizeof(due[n].id));
        tq_col_text(s, 1, due[n].citizen, sizeof(due[n].citizen));
        n++;
    }
    if (rc == 0)
        tq_done(s);
    else if (rc != ERR_NOT_FOUND)
        return rc;
    if (n == 0)
        return 0;
    if (!store_in_txn(srv.store) && (rc = store_begin(srv.store)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        s = tq(Q_GRANT_EXPIRY_ADD);
        rc = tq_text(s, 1, due[i].id);
        if (!rc) rc = tq_u64(s, 2, now);
        if (!rc) rc = tq_run(s);
        if (!rc)
            rc = accesslog_add(now, due[i].citizen, "", srv.server_cred, "consent_expired",
                               due[i].id);
        if (!rc)
            rc = thread_reconcile_citizen(due[i].citizen, now);
        if (rc)
            return rc;
        log_info("consent: grant %s of %s expired", due[i].id, due[i].citizen);
    }
    *did = true;
    return 0;
}
