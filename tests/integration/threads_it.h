/*
 * threads_it.h: helpers shared by the issue-5 integration tests (header-only,
 * static functions, like it.h): parties with device keys, KeyPackages and an
 * MLS group each; calls with binary arguments; grants and revocations;
 * sync that feeds entries through the party's group (joining from
 * Welcomes); commits; thread creation with the server as external sender.
 * Define DOMAIN before including it.
 */
#ifndef SAMMEN_THREADS_IT_H
#define SAMMEN_THREADS_IT_H

#include "it.h"

#include <stdlib.h>
#include <time.h>

#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"
#include "msg_grant.h"
#include "tls.h"

#define MAX_KPS 8

struct party {
    struct client_conn *c;
    uint8_t seed[32], pk[32];
    char id[CLIENT_ID_MAX + 1];
    char dev[19];
    struct mls_kp *kps[MAX_KPS];
    size_t nkps;
    struct mls_group *g; /* the current thread's group */
    uint64_t after;      /* inbox cursor */
};

struct st {
    struct testserver ts;
    struct client_ctx *ctx;
    uint8_t server_key[32];
    struct party admin, karen, ole, per, mette, lise;
};

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

/* ---- calls with binary arguments ------------------------------------------ */

struct arg {
    const char *key;
    const char *str;     /* or */
    const uint8_t *bin;  /* with len */
    size_t len;
    bool is_uint;
    uint64_t u;
};

static int call(struct client_conn *c, const char *op, const struct arg *a, size_t n,
                struct client_frame *r)
{
    struct wire_enc e;
    uint32_t id = client_conn_next_id(c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, op, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        if (a[i].is_uint)
            wire_kv_uint(&e, a[i].key, a[i].u);
        else if (a[i].bin)
            wire_kv_bin(&e, a[i].key, a[i].bin, a[i].len);
        else
            wire_kv_str(&e, a[i].key, a[i].str);
    }
    int rc = client_sync_call(c, id, &e, IT_TIMEOUT, r);
    wire_enc_reset(&e);
    return rc;
}

static void call_ok(struct client_conn *c, const char *op, const struct arg *a, size_t n,
                    struct client_frame *r)
{
    int rc = call(c, op, a, n, r);
    it_show(op, rc, r);
    assert_int_equal(rc, 0);
}

static void call_err(struct client_conn *c, const char *op, const struct arg *a, size_t n,
                     const char *code)
{
    struct client_frame r;
    int rc = call(c, op, a, n, &r);
    assert_int_not_equal(rc, 0);
    assert_non_null(r.buf);
    if (strcmp(r.msg.name, code) != 0)
        fprintf(stderr, "%s: want %s, got %s (%.*s)\n", op, code, r.msg.name,
                (int)r.msg.err_msg_len, r.msg.err_msg ? r.msg.err_msg : "");
    assert_string_equal(r.msg.name, code);
    client_frame_free(&r);
}

/* ---- parties ----------------------------------------------------------------- */

static void invite(struct st *s, const char *role, const char *name, const char *dept,
                   char *code, size_t cap)
{
    const char *kv[] = {"role", role, "name", name, dept ? "department" : NULL, dept, NULL};
    it_ok(s->admin.c, "admin.invite", kv, "code", code, cap);
}

static void enroll(struct st *s, struct party *p, const char *code)
{
    p->c = it_enroll(s->ctx, s->ts.url, code, p->seed, p->id, sizeof(p->id), p->dev);
    assert_int_equal(keys_id_public(p->seed, p->pk), 0);
}

static struct mls_kp *make_kp(const struct party *p)
{
    uint8_t ident[MLS_KP_MAX_IDENTITY];
    size_t il;
    struct mls_kp *kp = NULL;
    assert_int_equal(mls_kp_identity(p->id, p->pk, ident, sizeof(ident), &il), 0);
    assert_int_equal(mls_kp_create(ident, il, p->seed, now_s() - 3600, now_s() + 30 * 86400, &kp),
                     0);
    return kp;
}

/* Creates n KeyPackages, keeps them, uploads them; returns the stored count. */
__attribute__((unused)) static void upload_kps(struct party *p, size_t n)
{
    struct wire_enc e;
    struct client_frame r;
    uint32_t id = client_conn_next_id(p->c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "kp.upload", 1);
    wire_enc_key(&e, "key_packages");
    wire_enc_array(&e, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        assert_true(p->nkps < MAX_KPS);
        struct mls_kp *kp = make_kp(p);
        uint8_t *m = NULL;
        size_t ml;
        assert_int_equal(mls_kp_message(kp, &m, &ml), 0);
        wire_enc_bin(&e, m, ml);
        free(m);
        p->kps[p->nkps++] = kp;
    }
    int rc = client_sync_call(p->c, id, &e, IT_TIMEOUT, &r);
    wire_enc_reset(&e);
    it_show("kp.upload", rc, &r);
    assert_int_equal(rc, 0);
    uint64_t stored;
    assert_int_equal(wire_get_uint(&r.msg.body, "stored", &stored), 0);
    assert_int_equal(stored, n);
    client_frame_free(&r);
}

/* ---- grants -------------------------------------------------------------------- */

/* Signs a grant of citizen c for grantee with scope; granter p. */
static void grant_bytes(const struct party *p, const char *citizen, const char *grantee,
                        const char *scope, uint8_t form, const char *reason, uint64_t expires,
                        uint8_t **tbs, size_t *len, uint8_t sig[64])
{
    struct msg_grant g;
    msg_grant_init(&g);
    snprintf(g.citizen, sizeof(g.citizen), "%s", citizen);
    snprintf(g.grantee, sizeof(g.grantee), "%s", grantee);
    snprintf(g.scope, sizeof(g.scope), "%s", scope);
    snprintf(g.basis, sizeof(g.basis), "consent");
    snprintf(g.purpose, sizeof(g.purpose), "care coordination");
    g.issued_at = now_s();
    g.expires_at = expires;
    g.form = form;
    snprintf(g.granter, sizeof(g.granter), "%s", p->id);
    snprintf(g.granter_device, sizeof(g.granter_device), "%s", p->dev);
    snprintf(g.reason, sizeof(g.reason), "%s", reason ? reason : "");
    assert_int_equal(msg_grant_encode(&g, tbs, len), 0);
    assert_int_equal(msg_grant_sign(p->seed, *tbs, *len, sig), 0);
}

/* Grants and returns the grant id; checks the receipt. */
static void grant(struct st *s, const struct party *p, const char *grantee, const char *scope,
                  char gid[MSG_GRANT_GID_LEN + 1])
{
    uint8_t *tbs, sig[64], hash[32];
    size_t len;
    struct client_frame r;
    grant_bytes(p, p->id, grantee, scope, MSG_GRANT_FORM_CITIZEN, NULL, 0, &tbs, &len, sig);
    struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len}, {.key = "sig", .bin = sig, .len = 64}};
    call_ok(p->c, "consent.grant", a, 2, &r);
    const uint8_t *receipt;
    size_t rl;
    uint64_t stored;
    assert_int_equal(wire_get_cstr(&r.msg.body, "grant", gid, MSG_GRANT_GID_LEN + 1), 0);
    assert_int_equal(wire_get_bin(&r.msg.body, "receipt", &receipt, &rl), 0);
    assert_int_equal(rl, 64);
    assert_int_equal(wire_get_uint(&r.msg.body, "stored", &stored), 0);
    char want[MSG_GRANT_GID_LEN + 1];
    msg_grant_id(tbs, len, sig, want);
    assert_string_equal(gid, want);
    msg_grant_hash(tbs, len, sig, hash);
    assert_int_equal(msg_grant_receipt_verify(s->server_key, gid, hash, stored, receipt), 0);
    client_frame_free(&r);
    free(tbs);
}

/* Grants grantee the scope thread:ID of one thread (grant()). */
__attribute__((unused)) static void grant_thread(struct st *s, const struct party *p,
                                                 const char *grantee, const char *thread,
                                                 char gid[MSG_GRANT_GID_LEN + 1])
{
    char scope[64];
    assert_true((size_t)snprintf(scope, sizeof(scope), "thread:%s", thread) < sizeof(scope));
    grant(s, p, grantee, scope, gid);
}

__attribute__((unused)) static void revoke(const struct party *p, const char *gid)
{
    struct msg_revocation v;
    uint8_t *tbs, sig[64];
    size_t len;
    struct client_frame r;
    msg_revocation_init(&v);
    snprintf(v.grant, sizeof(v.grant), "%s", gid);
    snprintf(v.revoker, sizeof(v.revoker), "%s", p->id);
    snprintf(v.revoker_device, sizeof(v.revoker_device), "%s", p->dev);
    v.revoked_at = now_s();
    assert_int_equal(msg_revocation_encode(&v, &tbs, &len), 0);
    assert_int_equal(msg_revocation_sign(p->seed, tbs, len, sig), 0);
    struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len}, {.key = "sig", .bin = sig, .len = 64}};
    call_ok(p->c, "consent.revoke", a, 2, &r);
    client_frame_free(&r);
    free(tbs);
}

/* ---- signed proxy registrations, ends, break-glass ----------------------------- */

/* The server's clock (ping), which signed times are checked against. */
__attribute__((unused)) static uint64_t server_time(struct client_conn *c)
{
    struct client_frame r;
    uint64_t t = 0;
    call_ok(c, "ping", NULL, 0, &r);
    assert_int_equal(wire_get_uint(&r.msg.body, "time", &t), 0);
    client_frame_free(&r);
    return t;
}

/* A ProxyRegistrationTBS naming registrar p (its device), signed with seed
 * (p->seed for an honest one). *tbs is malloc'd. */
__attribute__((unused)) static void proxy_reg_bytes(const struct party *p, const uint8_t *seed,
                                                    const char *citizen, const char *proxy,
                                                    const char *basis, uint64_t at,
                                                    uint8_t **tbs, size_t *len, uint8_t sig[64])
{
    struct msg_proxy_reg g;
    msg_proxy_reg_init(&g);
    snprintf(g.citizen, sizeof(g.citizen), "%s", citizen);
    snprintf(g.proxy, sizeof(g.proxy), "%s", proxy);
    snprintf(g.basis, sizeof(g.basis), "%s", basis);
    g.registered_at = at;
    snprintf(g.registrar, sizeof(g.registrar), "%s", p->id);
    snprintf(g.registrar_device, sizeof(g.registrar_device), "%s", p->dev);
    assert_int_equal(msg_proxy_reg_encode(&g, tbs, len), 0);
    assert_int_equal(msg_proxy_reg_sign(seed, *tbs, *len, sig), 0);
}

__attribute__((unused)) static void proxy_end_bytes(const struct party *p, const char *reg,
                                                    const char *citizen, const char *proxy,
                                                    uint64_t at, uint8_t **tbs, size_t *len,
                                                    uint8_t sig[64])
{
    struct msg_proxy_end g;
    msg_proxy_end_init(&g);
    snprintf(g.registration, sizeof(g.registration), "%s", reg);
    snprintf(g.citizen, sizeof(g.citizen), "%s", citizen);
    snprintf(g.proxy, sizeof(g.proxy), "%s", proxy);
    g.ended_at = at;
    snprintf(g.ender, sizeof(g.ender), "%s", p->id);
    snprintf(g.ender_device, sizeof(g.ender_device), "%s", p->dev);
    assert_int_equal(msg_proxy_end_encode(&g, tbs, len), 0);
    assert_int_equal(msg_proxy_end_sign(p->seed, *tbs, *len, sig), 0);
}

__attribute__((unused)) static void breakglass_bytes(const struct party *p, const char *citizen,
                                                     const char *thread, const char *reason,
                                                     uint16_t hours, uint64_t at, uint8_t **tbs,
                                                     size_t *len, uint8_t sig[64])
{
    struct msg_breakglass b;
    msg_breakglass_init(&b);
    snprintf(b.citizen, sizeof(b.citizen), "%s", citizen);
    int n = snprintf(b.thread, sizeof(b.thread), "%s", thread);
    assert_true(n > 0 && (size_t)n < sizeof(b.thread));
    snprintf(b.staff, sizeof(b.staff), "%s", p->id);
    snprintf(b.staff_device, sizeof(b.staff_device), "%s", p->dev);
    snprintf(b.reason, sizeof(b.reason), "%s", reason);
    b.opened_at = at;
    b.hours = hours;
    assert_int_equal(msg_breakglass_encode(&b, tbs, len), 0);
    assert_int_equal(msg_breakglass_sign(p->seed, *tbs, *len, sig), 0);
}

/* ---- sync / MLS plumbing --------------------------------------------------------- */

/* Syncs p and processes every entry of thread: handshakes and app messages
 * through p->g, a Welcome by joining. Counts what it saw; acks at the end.
 * *app_text (may be NULL) gets the last application plaintext. */
struct seen {
    int handshakes, apps, welcomes, notices;
    bool external_pending;
    char last_app[128];
    char last_notice_type[16];
};

__attribute__((unused)) static void sync_party(struct party *p, const char *thread, struct seen *sn)
{
    struct client_frame r;
    memset(sn, 0, sizeof(*sn));
    struct arg a[] = {{.key = "after", .is_uint = true, .u = p->after}};
    call_ok(p->c, "sync", a, 1, &r);
    struct wire_array arr;
    assert_int_equal(wire_get_array(&r.msg.body, "entries", &arr), 0);
    for (uint32_t i = 0; i < arr.n; i++) {
        struct wire_map m;
        char kind[16], th[40];
        uint64_t seq;
        const uint8_t *data;
        size_t dl;
        assert_int_equal(wire_array_map(&arr, i, &m), 0);
        assert_int_equal(wire_get_uint(&m, "seq", &seq), 0);
        assert_true(seq > p->after);
        p->after = seq;
        assert_int_equal(wire_get_cstr(&m, "kind", kind, sizeof(kind)), 0);
        assert_int_equal(wire_get_cstr(&m, "thread", th, sizeof(th)), 0);
        assert_int_equal(wire_get_bin(&m, "data", &data, &dl), 0);
        if (thread && strcmp(th, thread) != 0)
            continue;
        if (strcmp(kind, "welcome") == 0) {
            sn->welcomes++;
            mls_group_free(p->g);
            p->g = NULL;
            int rc = mls_group_join(data, dl, p->kps, p->nkps, NULL, 0, NULL, 0, NULL, now_s(),
                                    MLS_GROUP_F_PLAIN_MEMORY, &p->g);
            if (rc)
                fprintf(stderr, "join: %s\n", err_str(rc));
            assert_int_equal(rc, 0);
        } else if (strcmp(kind, "notice") == 0) {
            sn->notices++;
            /* notice data is a msgpack map {type, thread, ...} */
            msgpack_unpacked up;
            msgpack_unpacked_init(&up);
            assert_int_equal(msgpack_unpack_next(&up, (const char *)data, dl, NULL),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
            struct wire_map wm = {up.data.via.map.ptr, up.data.via.map.size};
            assert_int_equal(wire_get_cstr(&wm, "type", sn->last_notice_type,
                                           sizeof(sn->last_notice_type)),
                             0);
            msgpack_unpacked_destroy(&up);
        } else if (p->g) {
            struct mls_group_event ev = {0};
            int rc = mls_group_process(p->g, data, dl, now_s(), &ev);
            if (rc)
                fprintf(stderr, "%s process %s: %s\n", p->id, kind, err_str(rc));
            assert_int_equal(rc, 0);
            if (ev.type == MLS_GROUP_EV_APPLICATION) {
                sn->apps++;
                snprintf(sn->last_app, sizeof(sn->last_app), "%.*s", (int)ev.len, ev.data);
            } else {
                sn->handshakes++;
            }
            if (ev.external_pending)
                sn->external_pending = true;
            mls_group_event_reset(&ev);
        }
    }
    client_frame_free(&r);
    struct arg ack[] = {{.key = "seq", .is_uint = true, .u = p->after}};
    call_ok(p->c, "ack", ack, 1, &r);
    client_frame_free(&r);
}

/* Sends a commit (and its welcome / group_info); returns the wire error
 * code or "" on success, and confirms or discards it in p->g accordingly. */
static const char *commit(struct party *p, const char *thread, struct mls_group_commit_out *co,
                          char *code, size_t cap)
{
    struct client_frame r;
    struct arg a[4] = {{.key = "thread", .str = thread},
                       {.key = "commit", .bin = co->commit, .len = co->commit_len}};
    size_t n = 2;
    if (co->welcome)
        a[n++] = (struct arg){.key = "welcome", .bin = co->welcome, .len = co->welcome_len};
    if (co->group_info)
        a[n++] = (struct arg){.key = "group_info", .bin = co->group_info,
                              .len = co->group_info_len};
    int rc = call(p->c, "thread.commit", a, n, &r);
    if (rc == 0) {
        uint64_t epoch;
        assert_int_equal(wire_get_uint(&r.msg.body, "epoch", &epoch), 0);
        assert_int_equal(mls_group_commit_confirm(p->g), 0);
        assert_int_equal(mls_group_epoch(p->g), epoch);
        code[0] = 0;
    } else {
        assert_non_null(r.buf);
        int cn = snprintf(code, cap, "%s", r.msg.name);
        assert_true(cn >= 0 && (size_t)cn < cap);
        mls_group_commit_discard(p->g);
    }
    client_frame_free(&r);
    mls_group_commit_out_reset(co);
    return code;
}

/* p commits an Add by value of kp (an MLSMessage); returns the code. */
__attribute__((unused)) static const char *commit_add(struct party *p, const char *thread, const struct mls_kp *kp,
                              char *code, size_t cap)
{
    uint8_t *m = NULL;
    size_t ml;
    struct mls_group_commit_out co = {0};
    assert_int_equal(mls_kp_message(kp, &m, &ml), 0);
    const uint8_t *kps[1] = {m};
    size_t lens[1] = {ml};
    struct mls_group_commit_opts o = {.add_kps = kps, .add_kp_lens = lens, .n_add = 1};
    assert_int_equal(mls_group_commit_create(p->g, &o, now_s(), &co), 0);
    free(m);
    return commit(p, thread, &co, code, cap);
}

__attribute__((unused)) static int send_app(struct party *p, const char *thread,
                                            const char *text, uint64_t *devices, char *code,
                                            size_t cap)
{
    uint8_t *ct = NULL;
    size_t cl;
    struct client_frame r;
    assert_int_equal(mls_group_encrypt(p->g, (const uint8_t *)text, strlen(text), NULL, 0, &ct,
                                       &cl),
                     0);
    struct arg a[] = {{.key = "thread", .str = thread}, {.key = "msg", .bin = ct, .len = cl}};
    int rc = call(p->c, "thread.send", a, 2, &r);
    free(ct);
    code[0] = 0;
    if (rc == 0) {
        if (devices)
            assert_int_equal(wire_get_uint(&r.msg.body, "devices", devices), 0);
    } else {
        assert_non_null(r.buf);
        int cn = snprintf(code, cap, "%s", r.msg.name);
        assert_true(cn >= 0 && (size_t)cn < cap);
    }
    client_frame_free(&r);
    return rc;
}

/* The external_senders extension naming this server. */
static void server_ext(const struct st *s, struct mls_extension_list *ext)
{
    struct mls_external_senders es = {0};
    struct tls_writer tw;
    char cred[160];
    snprintf(cred, sizeof(cred), "server@%s", DOMAIN);
    es.v = calloc(1, sizeof(*es.v));
    assert_non_null(es.v);
    es.n = 1;
    assert_int_equal(mls_bytes_set(&es.v[0].signature_key, s->server_key, 32), 0);
    es.v[0].credential.credential_type = MLS_CREDENTIAL_BASIC;
    assert_int_equal(mls_bytes_set(&es.v[0].credential.identity, (const uint8_t *)cred,
                                   strlen(cred)),
                     0);
    tls_writer_init(&tw, 0);
    mls_external_senders_encode(&tw, &es);
    mls_external_senders_free(&es);
    assert_int_equal(tw.err, 0);
    memset(ext, 0, sizeof(*ext));
    ext->v = calloc(1, sizeof(struct mls_extension));
    assert_non_null(ext->v);
    ext->n = 1;
    ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    assert_int_equal(mls_bytes_set(&ext->v[0].extension_data, tw.buf, tw.len), 0);
    tls_writer_reset(&tw);
}

/* p creates a care thread of citizen; returns its id. */
__attribute__((unused)) static void create_thread(struct st *s, struct party *p, const char *citizen, char *thread,
                          const char *want_err)
{
    uint8_t gid[16];
    struct mls_extension_list ext;
    uint8_t *gi = NULL;
    size_t gil;
    struct client_frame r;
    randombytes_buf(gid, sizeof(gid));
    server_ext(s, &ext);
    struct mls_kp *kp = make_kp(p);
    mls_group_free(p->g);
    p->g = NULL;
    assert_int_equal(mls_group_create(gid, sizeof(gid), kp, &ext, MLS_GROUP_F_PLAIN_MEMORY, &p->g),
                     0);
    mls_kp_free(kp);
    mls_extension_list_free(&ext);
    assert_int_equal(mls_group_group_info(p->g, true, &gi, &gil), 0);
    struct arg a[] = {{.key = "citizen", .str = citizen},
                      {.key = "kind", .str = "care"},
                      {.key = "title", .str = "Karens pleje"},
                      {.key = "group_info", .bin = gi, .len = gil}};
    if (want_err) {
        call_err(p->c, "thread.create", a, 4, want_err);
        mls_group_free(p->g);
        p->g = NULL;
    } else {
        call_ok(p->c, "thread.create", a, 4, &r);
        assert_int_equal(wire_get_cstr(&r.msg.body, "thread", thread, 40), 0);
        client_frame_free(&r);
    }
    free(gi);
}

/* The server's signing key from server.info (p asks), into s->server_key:
 * create_thread names it as the threads' external sender. */
__attribute__((unused)) static void fetch_server_key(struct st *s, struct party *p)
{
    struct client_frame r;
    const uint8_t *k;
    size_t kl;
    call_ok(p->c, "server.info", NULL, 0, &r);
    assert_int_equal(wire_get_bin(&r.msg.body, "key", &k, &kl), 0);
    assert_int_equal(kl, 32);
    memcpy(s->server_key, k, 32);
    client_frame_free(&r);
}

/* The last entry seq waiting for p: a sync that does not acknowledge
 * (sync_party does). */
__attribute__((unused)) static uint64_t last_entry(struct party *p)
{
    struct client_frame r;
    struct wire_array arr;
    uint64_t last = 0;
    struct arg a[] = {{.key = "after", .is_uint = true, .u = p->after}};
    call_ok(p->c, "sync", a, 1, &r);
    assert_int_equal(wire_get_array(&r.msg.body, "entries", &arr), 0);
    for (uint32_t i = 0; i < arr.n; i++) {
        struct wire_map m;
        uint64_t seq;
        assert_int_equal(wire_array_map(&arr, i, &m), 0);
        assert_int_equal(wire_get_uint(&m, "seq", &seq), 0);
        if (seq > last)
            last = seq;
    }
    client_frame_free(&r);
    return last;
}

/* The cast of most thread tests: the admin, karen (a citizen) and ole (a
 * volunteer) enrolled; karen has the server's key for her threads. */
__attribute__((unused)) static void enroll_karen_ole(struct st *s)
{
    char code[64];
    enroll(s, &s->admin, s->ts.admin_code);
    invite(s, "citizen", "karen", NULL, code, sizeof(code));
    enroll(s, &s->karen, code);
    invite(s, "volunteer", "ole", NULL, code, sizeof(code));
    enroll(s, &s->ole, code);
    fetch_server_key(s, &s->karen);
}

/* The new member's entitlement brought an external Add: the committer
 * syncs, commits it with a Welcome, the joiner syncs and joins. */
__attribute__((unused)) static void admit(struct party *committer, struct party *joiner,
                                          const char *thread)
{
    struct seen sn;
    char err[32];
    sync_party(committer, thread, &sn);
    assert_true(sn.external_pending);
    struct mls_group_commit_out co = {0};
    struct mls_group_commit_opts o = {.include_pending = true, .force_path = true,
                                      .tree_in_welcome = true};
    assert_int_equal(mls_group_commit_create(committer->g, &o, now_s(), &co), 0);
    assert_non_null(co.welcome);
    assert_string_equal(commit(committer, thread, &co, err, sizeof(err)), "");
    sync_party(joiner, thread, &sn);
    assert_int_equal(sn.welcomes, 1);
    assert_non_null(joiner->g);
    assert_int_equal(mls_group_epoch(joiner->g), mls_group_epoch(committer->g));
}

/* Sends text to thread as p (an application message of p's group);
 * returns its message seq. */
__attribute__((unused)) static uint64_t sent_message(struct party *p, const char *thread,
                                                     const char *text)
{
    uint8_t *ct = NULL;
    size_t cl;
    struct client_frame r;
    uint64_t seq;
    assert_int_equal(mls_group_encrypt(p->g, (const uint8_t *)text, strlen(text), NULL, 0, &ct,
                                       &cl),
                     0);
    struct arg a[] = {{.key = "thread", .str = thread}, {.key = "msg", .bin = ct, .len = cl}};
    call_ok(p->c, "thread.send", a, 2, &r);
    assert_int_equal(wire_get_uint(&r.msg.body, "message", &seq), 0);
    client_frame_free(&r);
    free(ct);
    return seq;
}

/* thread.status of message msg as p sees it. */
__attribute__((unused)) static void msg_status(struct party *p, const char *thread, uint64_t msg,
                                               uint64_t *delivered, uint64_t *devices,
                                               uint64_t *undeliverable)
{
    struct client_frame r;
    struct arg a[] = {{.key = "thread", .str = thread}, {.key = "message", .is_uint = true, .u = msg}};
    call_ok(p->c, "thread.status", a, 2, &r);
    assert_int_equal(wire_get_uint(&r.msg.body, "delivered_to", delivered), 0);
    assert_int_equal(wire_get_uint(&r.msg.body, "devices", devices), 0);
    assert_int_equal(wire_get_uint(&r.msg.body, "undeliverable", undeliverable), 0);
    client_frame_free(&r);
}

/* Waits for an event ev on p's connection whose str field key equals val
 * (skipping others, which stay consumed). True when it came. */
__attribute__((unused)) static bool wait_event(struct party *p, const char *ev, const char *key,
                                               const char *val)
{
    for (int i = 0; i < 64; i++) {
        struct client_frame f;
        if (client_sync_event(p->c, 2000, &f) != 0)
            return false;
        bool hit = false;
        if (strcmp(f.msg.name, ev) == 0) {
            char v[64];
            hit = !key || (wire_get_cstr(&f.msg.body, key, v, sizeof(v)) == 0 &&
                           strcmp(v, val) == 0);
        }
        client_frame_free(&f);
        if (hit)
            return true;
    }
    return false;
}

/* ---- fixture ----------------------------------------------------------------------- */

static int setup(void **state)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s || sodium_init() < 0)
        return -1;
    *state = s; /* the teardown frees what a failed setup made */
#ifdef THREADS_IT_ARGS
    static const char *const args[] = {THREADS_IT_ARGS, NULL};
    if (testserver_init(&s->ts, DOMAIN, true) != 0 || testserver_start_args(&s->ts, args) != 0)
        return -1;
#else
    if (testserver_init(&s->ts, DOMAIN, true) != 0 || testserver_start(&s->ts) != 0)
        return -1;
#endif
    if (client_ctx_new(NULL, &s->ctx) != 0)
        return -1;
    return 0;
}

static void party_free(struct party *p)
{
    for (size_t i = 0; i < p->nkps; i++)
        mls_kp_free(p->kps[i]);
    mls_group_free(p->g);
    if (p->c)
        client_conn_free(p->c);
}

static int teardown(void **state)
{
    struct st *s = *state;
    if (!s)
        return 0;
    party_free(&s->admin);
    party_free(&s->karen);
    party_free(&s->ole);
    party_free(&s->per);
    party_free(&s->mette);
    party_free(&s->lise);
    client_ctx_free(s->ctx);
    testserver_cleanup(&s->ts);
    free(s);
    return 0;
}

#endif
