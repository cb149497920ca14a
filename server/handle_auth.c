/*
 * handle_auth.c: ping, auth.challenge, auth.login, enroll (and the
 * test-only test.clock_shift). Signed messages (PROTOCOL.md):
 *   login:  "sammen-login-v1"  0x00 domain 0x00 nonce(32) device_id
 *   enroll: "sammen-enroll-v1" 0x00 code (exactly as sent in `code`)
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "code.h"
#include "err.h"
#include "handle.h"
#include "keys_id.h"
#include "log.h"
#include "thread.h"

#define NONCE_LIFETIME 60

int handle_ping(struct req *r)
{
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_uint(r->out, "time", clock_now());
    return 0;
}

int handle_clock_shift(struct req *r)
{
    int64_t by;
    if (wire_get_int(r->args, "seconds", &by) != 0)
        return req_fail(r, "bad_request", "argument 'seconds' (int) is required");
    if (by > 100LL * 365 * 86400 || by < -100LL * 365 * 86400)
        return req_fail(r, "invalid", "shift too large");
    clock_shift(by);
    log_warn("test clock shifted by %lld s (offset now %lld s)", (long long)by,
             (long long)clock_offset());
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_uint(r->out, "time", clock_now());
    wire_enc_key(r->out, "offset");
    wire_enc_int(r->out, clock_offset());
    return 0;
}

int handle_test_write_fail(struct req *r)
{
    /* test-only: a write without a savepoint (direct) that fails after
     * writing, as a real one would on an internal error: its row must not
     * survive (the transaction is given up, handle.c / server_commit) */
    int rc = store_meta_set(srv.store, "test.write_fail", "written");
    if (rc)
        return req_fail_err(r, rc, "meta");
    return req_fail(r, "internal", "failed after writing (test)");
}

int handle_challenge(struct req *r)
{
    randombytes_buf(r->c->nonce, sizeof(r->c->nonce));
    r->c->nonce_expires = clock_now() + NONCE_LIFETIME;
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_bin(r->out, "nonce", r->c->nonce, sizeof(r->c->nonce));
    wire_kv_str(r->out, "domain", srv.domain);
    return 0;
}

/* Counts one login attempt for key in the current minute; true when the
 * key is over login_per_minute. Fixed one-minute windows in a small
 * open-addressed table; a full probe evicts its oldest slot. */
static bool rate_hit(const char *key)
{
    uint64_t window = clock_now() / 60;
    uint8_t h[8];
    crypto_generichash(h, sizeof(h), (const uint8_t *)key, strlen(key), NULL, 0);
    size_t start = ((size_t)h[0] | (size_t)h[1] << 8) % RATE_SLOTS;
    struct rate_slot *victim = NULL;
    for (size_t i = 0; i < 8; i++) {
        struct rate_slot *s = &srv.rate[(start + i) % RATE_SLOTS];
        if (strcmp(s->key, key) == 0) {
            if (s->window != window) {
                s->window = window;
                s->count = 0;
            }
            s->count++;
            return s->count > srv.cfg.login_per_minute;
        }
        if (!victim || s->window < victim->window)
            victim = s;
    }
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    victim->window = window;
    victim->count = 1;
    return victim->count > srv.cfg.login_per_minute;
}

static int login_failed(struct req *r, const char *identity, const char *device,
                        const char *code, const char *why)
{
    char actor[96], detail[128];
    snprintf(actor, sizeof(actor), "peer:%s", r->c->peer);
    snprintf(detail, sizeof(detail), "device %s: %s", device, why);
    int rc = audit_append(srv.store, clock_now(), actor, "login_fail", identity, detail);
    if (rc == 0)
        r->keep_writes = true;
    log_warn("conn %llu %s: login of %s/%s failed: %s", (unsigned long long)r->c->serial,
             r->c->peer, identity, device, why);
    return req_fail(r, code, "login failed: %s", why);
}

int handle_login(struct req *r)
{
    struct conn *c = r->c;
    char idin[STORE_ID_MAX], device[32], id[STORE_ID_MAX], name[STORE_NAME_MAX];
    const uint8_t *sig;
    if (req_str(r, "id", idin, sizeof(idin)) || req_str(r, "device", device, sizeof(device)) ||
        req_bin(r, "sig", &sig, crypto_sign_BYTES))
        return -1;
    if (req_identity(r, idin, id, sizeof(id), name))
        return -1;
    uint64_t now = clock_now();
    char ipkey[80], idkey[STORE_ID_MAX + 8];
    snprintf(ipkey, sizeof(ipkey), "ip:%s", c->peer);
    snprintf(idkey, sizeof(idkey), "id:%s", id);
    bool over = rate_hit(idkey);
    over = rate_hit(ipkey) || over;
    if (over) {
        log_warn("conn %llu %s: login rate limit reached for %s", (unsigned long long)c->serial,
                 c->peer, id);
        return req_fail(r, "limit", "too many login attempts; wait a minute");
    }

    /* The nonce is consumed by any attempt: one signature, one try. */
    uint8_t nonce[32];
    uint64_t expires = c->nonce_expires;
    memcpy(nonce, c->nonce, sizeof(nonce));
    sodium_memzero(c->nonce, sizeof(c->nonce));
    c->nonce_expires = 0;
    if (expires == 0)
        return login_failed(r, id, device, "expired", "no challenge outstanding");
    if (now > expires)
        return login_failed(r, id, device, "expired", "challenge expired");

    struct store_device d;
    int rc = store_device_get(srv.store, device, &d);
    if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(d.identity, id) != 0))
        return login_failed(r, id, device, "not_found", "no such device for this identity");
    if (rc)
        return req_fail_err(r, rc, "device");
    if (d.revoked)
        return login_failed(r, id, device, "denied", "device revoked");

    /* "sammen-login-v1" 0x00 domain 0x00 nonce device_id (keys_id.h) */
    uint8_t msg[16 + 256 + 1 + 32 + 32];
    size_t mlen;
    rc = keys_id_login_msg(srv.domain, nonce, sizeof(nonce), device, msg, sizeof(msg), &mlen);
    if (rc)
        return req_fail_err(r, rc, "login message");
    if (keys_id_verify(d.pk, msg, mlen, sig) != 0)
        return login_failed(r, id, device, "crypto", "bad signature");

    char role[16];
    rc = store_identity_get(srv.store, id, role, sizeof(role));
    if (rc)
        return req_fail_err(r, rc, "identity");
    rc = store_device_touch(srv.store, device, now);
    if (rc)
        return req_fail_err(r, rc, "device");
    conn_login(c, id, device, role);
    log_info("conn %llu %s: logged in as %s/%s (%s)", (unsigned long long)c->serial, c->peer, id,
             device, role);
    wire_enc_ok(r->out, r->id, 3);
    wire_kv_str(r->out, "id", id);
    wire_kv_str(r->out, "device", device);
    wire_kv_str(r->out, "role", role);
    return 0;
}

int handle_enroll(struct req *r)
{
    struct conn *c = r->c;
    char code[64], label[STORE_NAME_MAX];
    const uint8_t *pk, *sig;
    if (req_str(r, "code", code, sizeof(code)) || req_bin(r, "key", &pk, 32) ||
        req_bin(r, "sig", &sig, crypto_sign_BYTES) ||
        req_str_opt(r, "label", label, sizeof(label)))
        return -1;
    uint8_t hash[32];
    if (code_hash(code, strlen(code), hash) != 0)
        return req_fail(r, "invalid", "not a code: 20 letters and digits in groups of 5");
    uint64_t now = clock_now();
    struct store_code sc;
    int rc = store_code_get(srv.store, hash, &sc);
    if (rc)
        return req_fail_err(r, rc, "code");
    if (sc.used)
        return req_fail(r, "conflict", "this code was already used");
    if (now >= sc.expires)
        return req_fail(r, "expired", "this code has expired");

    uint8_t msg[17 + 64];
    size_t mlen;
    rc = keys_id_enroll_msg(code, msg, sizeof(msg), &mlen);
    if (rc)
        return req_fail_err(r, rc, "enroll message");
    if (keys_id_verify(pk, msg, mlen, sig) != 0)
        return req_fail(r, "crypto", "the signature does not prove possession of the key");

    char dev[KEYS_ID_DEVICE_LEN + 1];
    keys_id_device(pk, dev);
    char role[16];
    const char *action;
    if (strcmp(sc.kind, "invite") == 0) {
        action = "enroll";
        char name[STORE_NAME_MAX];
        const char *at = strchr(sc.identity, '@');
        size_t nl = at ? (size_t)(at - sc.identity) : 0;
        if (!at || nl >= sizeof(name))
            return req_fail_err(r, ERR_INTERNAL, "code identity");
        memcpy(name, sc.identity, nl);
        name[nl] = 0;
        rc = store_identity_add(srv.store, sc.identity, name, at + 1, sc.role, now);
        if (rc == ERR_CONFLICT)
            return req_fail(r, "conflict", "%s already exists", sc.identity);
        if (rc)
            return req_fail_err(r, rc, "identity");
        if (sc.department[0] &&
            (rc = store_member_add(srv.store, STORE_DEPARTMENT, sc.identity, sc.department, now)))
            return req_fail_err(r, rc, "department assignment");
        if (sc.association[0] && (rc = store_member_add(srv.store, STORE_ASSOCIATION,
                                                        sc.identity, sc.association, now)))
            return req_fail_err(r, rc, "association membership");
        snprintf(role, sizeof(role), "%s", sc.role);
    } else if (strcmp(sc.kind, "link") == 0) {
        action = "device_link";
        rc = store_identity_get(srv.store, sc.identity, role, sizeof(role));
        if (rc)
            return req_fail_err(r, rc, "identity");
    } else {
        return req_fail_err(r, ERR_INTERNAL, "code kind");
    }
    rc = store_device_add(srv.store, dev, sc.identity, pk, label, now);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "this key is already enrolled");
    if (rc)
        return req_fail_err(r, rc, "device");
    rc = store_code_use(srv.store, hash, now);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "this code was already used");
    if (rc)
        return req_fail_err(r, rc, "code");
    /* a linked device is told to the citizens whose threads the identity
     * is in (it joins them once it uploads KeyPackages) */
    if (strcmp(sc.kind, "link") == 0 &&
        (rc = thread_log_device(sc.identity, dev, "device_linked", now)) != 0)
        return req_fail_err(r, rc, "access log");
    char detail[128];
    snprintf(detail, sizeof(detail), "device %s role %s%s%s", dev, role,
             sc.department[0] ? " department " : "", sc.department);
    rc = audit_append(srv.store, now, sc.identity, action, dev, detail);
    if (rc)
        return req_fail_err(r, rc, "audit");
    rc = store_device_touch(srv.store, dev, now);
    if (rc)
        return req_fail_err(r, rc, "device");

    conn_login(c, sc.identity, dev, role);
    log_info("conn %llu %s: %s: %s/%s (%s)", (unsigned long long)c->serial, c->peer, action,
             sc.identity, dev, role);
    wire_enc_ok(r->out, r->id, 4);
    wire_kv_str(r->out, "id", sc.identity);
    wire_kv_str(r->out, "device", dev);
    wire_kv_str(r->out, "role", role);
    wire_kv_str(r->out, "domain", srv.domain);
    return 0;
}
