/* handle_device.c: whoami, device.list, device.revoke, device.link_code. */
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

#define LINK_LIFETIME 600

int handle_whoami(struct req *r)
{
    struct names deps = {handle_list_a, 0, HANDLE_LIST_MAX},
                 assocs = {handle_list_b, 0, HANDLE_LIST_MAX};
    int rc = store_member_each(srv.store, STORE_DEPARTMENT, r->c->identity, handle_names_add, &deps);
    if (!rc)
        rc = store_member_each(srv.store, STORE_ASSOCIATION, r->c->identity, handle_names_add, &assocs);
    if (rc)
        return req_fail_err(r, rc, "memberships");
    wire_enc_ok(r->out, r->id, 5);
    wire_kv_str(r->out, "id", r->c->identity);
    wire_kv_str(r->out, "device", r->c->device);
    wire_kv_str(r->out, "role", r->c->role);
    handle_names_put(r->out, "departments", &deps);
    handle_names_put(r->out, "associations", &assocs);
    return 0;
}

/* Devices are listed in two passes (count, then encode) because msgpack
 * needs the array length first. */
struct dev_list {
    struct req *r;
    uint32_t n;
    bool encode;
};

static int count_dev(void *ctx, const struct store_device *d)
{
    (void)d;
    struct dev_list *l = ctx;
    if (++l->n > WIRE_MAX_COUNT)
        return ERR_TOO_BIG;
    return 0;
}

static int enc_dev(void *ctx, const struct store_device *d)
{
    struct dev_list *l = ctx;
    struct wire_enc *e = l->r->out;
    char fp[KEYS_ID_FINGERPRINT_LEN + 1];
    keys_id_fingerprint(d->pk, fp);
    wire_enc_map(e, 7);
    wire_kv_str(e, "device", d->id);
    wire_kv_str(e, "fingerprint", fp);
    wire_kv_str(e, "label", d->label);
    wire_kv_uint(e, "created", d->created);
    wire_enc_key(e, "last_seen");
    if (d->last_seen)
        wire_enc_uint(e, d->last_seen);
    else
        wire_enc_nil(e);
    wire_kv_bool(e, "revoked", d->revoked != 0);
    wire_kv_bool(e, "current", strcmp(d->id, l->r->c->device) == 0);
    return 0;
}

int handle_device_list(struct req *r)
{
    struct dev_list l = {r, 0, false};
    int rc = store_device_each(srv.store, r->c->identity, count_dev, &l);
    if (rc)
        return req_fail_err(r, rc, "devices");
    wire_enc_ok(r->out, r->id, 1);
    wire_enc_key(r->out, "devices");
    wire_enc_array(r->out, l.n);
    l.encode = true;
    rc = store_device_each(srv.store, r->c->identity, enc_dev, &l);
    if (rc)
        return req_fail_err(r, rc, "devices");
    return 0;
}

void handle_end_device_sessions(const char *device, const char *reason)
{
    for (struct conn *c = srv.conns; c; c = c->next)
        if (c->authed && strcmp(c->device, device) == 0)
            conn_end_session(c, reason);
}

int handle_device_revoke(struct req *r)
{
    char dev[32];
    if (req_str(r, "device", dev, sizeof(dev)))
        return -1;
    struct store_device d;
    int rc = store_device_get(srv.store, dev, &d);
    /* another identity's device is "not found": do not confirm it exists */
    if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(d.identity, r->c->identity) != 0))
        return req_fail(r, "not_found", "you have no device %s", dev);
    if (rc)
        return req_fail_err(r, rc, "device");
    uint64_t now = clock_now();
    rc = store_device_revoke(srv.store, dev, now);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "device %s is already revoked", dev);
    if (rc)
        return req_fail_err(r, rc, "device");
    char detail[64];
    snprintf(detail, sizeof(detail), "by device %s", r->c->device);
    rc = audit_append(srv.store, now, r->c->identity, "device_revoke", dev, detail);
    if (rc)
        return req_fail_err(r, rc, "audit");
    /* the device leaves every thread: delivery stops, Removes are proposed */
    rc = thread_log_device(r->c->identity, dev, "device_revoked", now);
    if (!rc)
        rc = thread_reconcile_device(dev, now);
    if (rc)
        return req_fail_err(r, rc, "reconcile");
    /* other sessions of that device end now (their event is sent after the
     * commit, like every message of this iteration); our own session, if
     * it revoked itself, ends after this response */
    bool own = strcmp(dev, r->c->device) == 0;
    if (own)
        conn_logout(r->c); /* nothing else runs as a revoked device */
    handle_end_device_sessions(dev, "revoked");
    r->end_own_session = own;
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_str(r->out, "device", dev);
    return 0;
}

int handle_device_link_code(struct req *r)
{
    struct store_code sc;
    memset(&sc, 0, sizeof(sc));
    char shown[CODE_SHOWN + 1];
    code_new(shown, sc.hash);
    uint64_t now = clock_now();
    snprintf(sc.kind, sizeof(sc.kind), "link");
    snprintf(sc.identity, sizeof(sc.identity), "%s", r->c->identity);
    snprintf(sc.created_by, sizeof(sc.created_by), "%s", r->c->identity);
    sc.created = now;
    sc.expires = now + LINK_LIFETIME;
    int rc = store_code_add(srv.store, &sc);
    if (rc)
        return req_fail_err(r, rc, "code");
    char detail[64];
    snprintf(detail, sizeof(detail), "by device %s", r->c->device);
    rc = audit_append(srv.store, now, r->c->identity, "link_code", r->c->identity, detail);
    if (rc)
        return req_fail_err(r, rc, "audit");
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "code", shown);
    wire_kv_uint(r->out, "expires", sc.expires);
    sodium_memzero(shown, sizeof(shown));
    return 0;
}
