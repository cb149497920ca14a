/*
 * handle_thread.c: thread.create, thread.list, thread.members,
 * thread.state, thread.commit, thread.send, thread.log, sync, ack
 * (PROTOCOL.md "Threads and MLS", "Delivery", "Access log"). The rules live
 * in thread.c, entitle.c and deliver.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consent.h"
#include "deliver.h"
#include "entitle.h"
#include "err.h"
#include "handle.h"
#include "kp.h"
#include "log.h"
#include "accesslog.h"
#include "server.h"
#include "thread.h"
#include "tstore.h"

#define MLS_MSG_MAX (4u << 20)

static int bin_arg(struct req *r, const char *key, bool required, const uint8_t **p,
                   size_t *len)
{
    int rc = wire_get_bin(r->args, key, p, len);
    if (rc == ERR_NOT_FOUND) {
        *p = NULL;
        *len = 0;
        return required ? req_fail(r, "bad_request", "missing argument '%s'", key) : 0;
    }
    if (rc)
        return req_fail(r, "bad_request", "argument '%s' must be bin", key);
    if (*len == 0)
        return req_fail(r, "bad_request", "argument '%s' is empty", key);
    if (*len > MLS_MSG_MAX)
        return req_fail(r, "too_big", "argument '%s' is too large", key);
    return 0;
}

static int thread_arg(struct req *r, char *id, struct thread_row *t)
{
    if (req_str(r, "thread", id, THREAD_ID_MAX))
        return -1;
    if (!thread_id_valid(id))
        return req_fail(r, "invalid", "'%s' is not a thread id", id);
    int rc = thread_get(id, t);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no thread %s", id);
    if (rc)
        return req_fail_err(r, rc, "thread");
    return 0;
}

/* The caller's identity has a device in the roster (not being removed). */
static bool is_member(const char *thread, const char *identity)
{
    sqlite3_stmt *s = tq(Q_MEMBER_OF_IDENTITY);
    if (tq_text(s, 1, thread) || tq_text(s, 2, identity) || tq_row(s) != 0)
        return false;
    tq_done(s);
    return true;
}

static int member_arg(struct req *r, char *id, struct thread_row *t)
{
    if (thread_arg(r, id, t))
        return -1;
    if (!is_member(id, r->c->identity))
        return req_fail(r, "denied", "you are not a member of %s", id);
    return 0;
}

int handle_thread_create(struct req *r)
{
    char in[STORE_ID_MAX], citizen[STORE_ID_MAX], name[STORE_NAME_MAX], kind[16], title[256];
    char role[16], id[THREAD_ID_MAX], why[STORE_ID_MAX * 2];
    const uint8_t *gi;
    size_t gilen;
    const char *code = "invalid";
    if (req_str(r, "citizen", in, sizeof(in)) || req_str(r, "kind", kind, sizeof(kind)) ||
        req_str_opt(r, "title", title, 201) || bin_arg(r, "group_info", true, &gi, &gilen))
        return -1;
    if (strcmp(kind, "care") != 0 && strcmp(kind, "coordination") != 0)
        return req_fail(r, "invalid", "kind must be care or coordination");
    if (req_identity(r, in, citizen, sizeof(citizen), name))
        return -1;
    int rc = store_identity_get(srv.store, citizen, role, sizeof(role));
    if (rc)
        return req_fail_err(r, rc, citizen);
    if (strcmp(role, "citizen") != 0)
        return req_fail(r, "invalid", "%s is not a citizen", citizen);
    uint64_t now = clock_now();
    rc = thread_create(r->c->identity, r->c->device, citizen, kind, title, gi, gilen, now, id,
                       &code, why, sizeof(why));
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL || rc == ERR_LIMIT)
        return req_fail_err(r, rc, "thread.create");
    if (rc)
        return req_fail(r, code, "%s", why);
    log_info("thread: %s created %s (%s) for %s", r->c->identity, id, kind, citizen);
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "thread", id);
    wire_kv_uint(r->out, "epoch", 0);
    return 0;
}

struct tl {
    char id[THREAD_ID_MAX];
    char citizen[STORE_ID_MAX];
    char kind[16];
    char title[256];
    uint64_t epoch;
    bool member;
};

int handle_thread_list(struct req *r)
{
    struct tl *v = NULL;
    size_t n = 0, cap = 0;
    struct entitled_set ent = {0};
    uint64_t now = clock_now();
    /* candidates: threads the caller may be entitled to or is in */
    sqlite3_stmt *s = tq(Q_THREADS_CANDIDATE);
    int rc = tq_text(s, 1, r->c->identity);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct tl *g = realloc(v, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            v = g;
            cap = nc;
        }
        tq_col_text(s, 0, v[n].id, THREAD_ID_MAX);
        tq_col_text(s, 1, v[n].citizen, STORE_ID_MAX);
        tq_col_text(s, 2, v[n].kind, 16);
        tq_col_text(s, 3, v[n].title, 256);
        v[n].epoch = tq_col_u64(s, 4);
        n++;
    }
    if (rc != ERR_NOT_FOUND)
        goto out;
    rc = 0;
    /* keep threads where the caller is in the roster or entitled */
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        v[i].member = is_member(v[i].id, r->c->identity);
        bool keep = v[i].member;
        if (!keep) {
            rc = entitle_thread(v[i].id, v[i].citizen, v[i].kind, now, &ent);
            keep = !rc && entitle_find_identity(&ent, r->c->identity) != NULL;
        }
        if (keep)
            v[k++] = v[i];
    }
    if (rc)
        goto out;
    if (k > WIRE_MAX_COUNT)
        k = WIRE_MAX_COUNT;
    wire_enc_ok(r->out, r->id, 1);
    wire_enc_key(r->out, "threads");
    wire_enc_array(r->out, (uint32_t)k);
    for (size_t i = 0; i < k; i++) {
        uint64_t unread = 0;
        if (deliver_unread(r->c->device, v[i].id, &unread) != 0)
            unread = 0;
        wire_enc_map(r->out, 7);
        wire_kv_str(r->out, "thread", v[i].id);
        wire_kv_str(r->out, "citizen", v[i].citizen);
        wire_kv_str(r->out, "kind", v[i].kind);
        wire_kv_str(r->out, "title", v[i].title);
        wire_kv_uint(r->out, "epoch", v[i].epoch);
        wire_kv_uint(r->out, "unread", unread);
        wire_kv_bool(r->out, "member", v[i].member);
    }
out:
    entitle_free(&ent);
    free(v);
    return rc ? req_fail_err(r, rc, "thread.list") : 0;
}

struct mrow {
    char device[32];
    char identity[STORE_ID_MAX];
    char basis[24];
    bool removing;
};

int handle_thread_members(struct req *r)
{
    char id[THREAD_ID_MAX];
    struct thread_row t;
    struct mrow *m = NULL;
    size_t n = 0, cap = 0, nrem = 0;
    struct entitled_set ent = {0};
    if (member_arg(r, id, &t))
        return -1;
    sqlite3_stmt *s = tq(Q_MEMBER_EACH);
    int rc = tq_text(s, 1, id);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct mrow *g = realloc(m, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            m = g;
            cap = nc;
        }
        tq_col_text(s, 0, m[n].device, sizeof(m[n].device));
        tq_col_text(s, 1, m[n].identity, sizeof(m[n].identity));
        tq_col_text(s, 3, m[n].basis, sizeof(m[n].basis));
        m[n].removing = sqlite3_column_int(s, 4) != 0;
        nrem += m[n].removing;
        n++;
    }
    if (rc != ERR_NOT_FOUND)
        goto out;
    rc = entitle_thread(id, t.citizen, t.kind, clock_now(), &ent);
    if (rc)
        goto out;
    /* identities, in roster order, each once */
    size_t nid = 0;
    for (size_t i = 0; i < n; i++) {
        bool first = true;
        for (size_t k = 0; k < i; k++)
            if (strcmp(m[k].identity, m[i].identity) == 0)
                first = false;
        nid += first;
    }
    wire_enc_ok(r->out, r->id, 4);
    wire_enc_key(r->out, "members");
    wire_enc_array(r->out, (uint32_t)nid);
    for (size_t i = 0; i < n; i++) {
        bool first = true;
        for (size_t k = 0; k < i; k++)
            if (strcmp(m[k].identity, m[i].identity) == 0)
                first = false;
        if (!first)
            continue;
        uint32_t nd = 0;
        for (size_t k = i; k < n; k++)
            nd += strcmp(m[k].identity, m[i].identity) == 0;
        wire_enc_map(r->out, 3);
        wire_kv_str(r->out, "id", m[i].identity);
        wire_enc_key(r->out, "devices");
        wire_enc_array(r->out, nd);
        for (size_t k = i; k < n; k++)
            if (strcmp(m[k].identity, m[i].identity) == 0)
                wire_enc_str(r->out, m[k].device);
        wire_kv_str(r->out, "grant", m[i].basis);
    }
    wire_enc_key(r->out, "pending_removal");
    wire_enc_array(r->out, (uint32_t)nrem);
    for (size_t i = 0; i < n; i++)
        if (m[i].removing)
            wire_enc_str(r->out, m[i].device);
    uint32_t nadd = 0;
    for (size_t k = 0; k < ent.n; k++) {
        bool in = false;
        for (size_t i = 0; i < n && !in; i++)
            in = strcmp(m[i].device, ent.v[k].device) == 0;
        nadd += !in;
    }
    wire_enc_key(r->out, "pending_add");
    wire_enc_array(r->out, nadd);
    for (size_t k = 0; k < ent.n; k++) {
        bool in = false;
        for (size_t i = 0; i < n && !in; i++)
            in = strcmp(m[i].device, ent.v[k].device) == 0;
        if (!in)
            wire_enc_str(r->out, ent.v[k].device);
    }
    /* the same devices with the identity and the basis the server claims for
     * them: a committing client verifies that basis before it adds them */
    wire_enc_key(r->out, "pending");
    wire_enc_array(r->out, nadd);
    for (size_t k = 0; k < ent.n; k++) {
        bool in = false;
        for (size_t i = 0; i < n && !in; i++)
            in = strcmp(m[i].device, ent.v[k].device) == 0;
        if (in)
            continue;
        wire_enc_map(r->out, 3);
        wire_kv_str(r->out, "device", ent.v[k].device);
        wire_kv_str(r->out, "id", ent.v[k].identity);
        wire_kv_str(r->out, "grant", ent.v[k].basis);
    }
    rc = 0;
out:
    entitle_free(&ent);
    free(m);
    return rc ? req_fail_err(r, rc, "thread.members") : 0;
}

int handle_thread_state(struct req *r)
{
    char id[THREAD_ID_MAX];
    struct thread_row t;
    uint8_t *tree = NULL;
    size_t tlen = 0;
    if (member_arg(r, id, &t))
        return -1;
    int rc = thread_tree(id, &tree, &tlen);
    if (rc)
        return req_fail_err(r, rc, "thread.state");
    sqlite3_stmt *s = tq(Q_THREAD_GET);
    rc = tq_text(s, 1, id);
    if (!rc)
        rc = tq_row(s);
    if (rc) {
        free(tree);
        return req_fail_err(r, rc, "thread.state");
    }
    wire_enc_ok(r->out, r->id, 4);
    wire_kv_str(r->out, "thread", id);
    wire_kv_uint(r->out, "epoch", t.epoch);
    wire_kv_bin(r->out, "group_info", sqlite3_column_blob(s, 6),
                (size_t)sqlite3_column_bytes(s, 6));
    wire_kv_bin(r->out, "tree", tree, tlen);
    tq_done(s);
    free(tree);
    return 0;
}

int handle_thread_commit(struct req *r)
{
    char id[THREAD_ID_MAX], why[STORE_ID_MAX * 2];
    struct thread_row t;
    const uint8_t *commit, *welcome, *gi;
    size_t clen, wlen, glen;
    const char *code = "invalid";
    uint64_t epoch = 0;
    if (thread_arg(r, id, &t) || bin_arg(r, "commit", true, &commit, &clen) ||
        bin_arg(r, "welcome", false, &welcome, &wlen) ||
        bin_arg(r, "group_info", false, &gi, &glen))
        return -1;
    int rc = thread_commit(id, r->c->identity, r->c->device, commit, clen, welcome, wlen, gi,
                           glen, clock_now(), &epoch, &code, why, sizeof(why));
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL || rc == ERR_LIMIT)
        return req_fail_err(r, rc, "thread.commit");
    if (rc)
        return req_fail(r, code, "%s", why);
    log_info("thread %s: %s/%s committed epoch %llu", id, r->c->identity, r->c->device,
             (unsigned long long)epoch);
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_uint(r->out, "epoch", epoch);
    return 0;
}

int handle_thread_send(struct req *r)
{
    char id[THREAD_ID_MAX], why[STORE_ID_MAX * 2];
    const uint8_t *msg;
    size_t len;
    const char *code = "invalid";
    uint64_t seq = 0;
    uint32_t devices = 0;
    if (req_str(r, "thread", id, sizeof(id)) || bin_arg(r, "msg", true, &msg, &len))
        return -1;
    if (!thread_id_valid(id))
        return req_fail(r, "invalid", "'%s' is not a thread id", id);
    uint64_t now = clock_now(); /* the message's time, also in the answer */
    int rc = thread_send(id, r->c->identity, r->c->device, msg, len, now, &seq, &devices, &code,
                         why, sizeof(why));
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no thread %s", id);
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL || rc == ERR_LIMIT)
        return req_fail_err(r, rc, "thread.send");
    if (rc)
        return req_fail(r, code, "%s", why);
    wire_enc_ok(r->out, r->id, 3);
    wire_kv_uint(r->out, "message", seq);
    wire_kv_uint(r->out, "devices", devices);
    wire_kv_uint(r->out, "time", now);
    return 0;
}

int handle_thread_log(struct req *r)
{
    char id[THREAD_ID_MAX], role[16];
    struct thread_row t;
    if (thread_arg(r, id, &t))
        return -1;
    int rc = store_identity_get(srv.store, r->c->identity, role, sizeof(role));
    if (rc)
        return req_fail_err(r, rc, "identity");
    bool ok = strcmp(r->c->identity, t.citizen) == 0 || consent_is_proxy(t.citizen, r->c->identity) ||
              (strcmp(role, "staff") == 0 && is_member(id, r->c->identity));
    if (!ok)
        return req_fail(r, "denied", "the log of %s is for the citizen, proxies and staff members",
                        id);
    uint32_t n = 0;
    sqlite3_stmt *s = tq(Q_ACCESS_EACH_THREAD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, t.citizen);
    while (!rc && (rc = tq_row(s)) == 0)
        n++;
    if (rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc ? rc : ERR_INTERNAL, "thread.log");
    if (n > WIRE_MAX_COUNT)
        n = WIRE_MAX_COUNT;
    wire_enc_ok(r->out, r->id, 1);
    wire_enc_key(r->out, "entries");
    wire_enc_array(r->out, n);
    s = tq(Q_ACCESS_EACH_THREAD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, t.citizen);
    uint32_t got = 0;
    while (!rc && got < n && (rc = tq_row(s)) == 0) {
        char actor[STORE_ID_MAX], action[32], subject[600];
        tq_col_text(s, 1, actor, sizeof(actor));
        tq_col_text(s, 2, action, sizeof(action));
        tq_col_text(s, 3, subject, sizeof(subject));
        wire_enc_map(r->out, 4);
        wire_kv_uint(r->out, "time", tq_col_u64(s, 0));
        wire_kv_str(r->out, "actor", actor);
        wire_kv_str(r->out, "action", action);
        wire_kv_str(r->out, "subject", subject);
        got++;
    }
    if (rc == 0)
        tq_done(s);
    if (got != n)
        return req_fail(r, "internal", "the log changed while it was read");
    return 0;
}

int handle_sync(struct req *r)
{
    uint64_t after = 0, limit = 200;
    int rc = wire_get_uint(r->args, "after", &after);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument 'after'");
    if (rc)
        return req_fail(r, "bad_request", "'after' must be an unsigned integer");
    rc = wire_get_uint(r->args, "limit", &limit);
    if (rc == ERR_NOT_FOUND)
        limit = 200;
    else if (rc)
        return req_fail(r, "bad_request", "'limit' must be an unsigned integer");
    if (limit < 1 || limit > 500)
        return req_fail(r, "invalid", "limit is 1..500");
    wire_enc_ok(r->out, r->id, 3);
    rc = deliver_sync(r->c->device, r->c->identity, after, (uint32_t)limit, clock_now(), r->out);
    if (rc)
        return req_fail_err(r, rc, "sync");
    return 0;
}

int handle_ack(struct req *r)
{
    uint64_t seq = 0;
    int rc = wire_get_uint(r->args, "seq", &seq);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "bad_request", "missing argument 'seq'");
    if (rc)
        return req_fail(r, "bad_request", "'seq' must be an unsigned integer");
    rc = deliver_ack(r->c->device, seq);
    if (rc)
        return req_fail_err(r, rc, "ack");
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_uint(r->out, "acked", seq);
    return 0;
}

/* ---- thread.status, agreements, kp.claim ------------------------------------------- */

/* Reads the `message` argument and that message's row of thread id into
 * *m. 0, or -1 after answering the request with the error. */
struct msg_row {
    uint64_t message;
    char kind[16];
    char sender[STORE_ID_MAX];
    uint64_t targets, acked, undeliverable;
};

static int message_arg(struct req *r, const char *id, struct msg_row *m)
{
    int rc = wire_get_uint(r->args, "message", &m->message);
    if (rc)
        return req_fail(r, "bad_request", "'message' must be an unsigned integer");
    sqlite3_stmt *s = tq(Q_MSG_GET);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_u64(s, 2, m->message);
    if (!rc) rc = tq_row(s);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no message %llu in %s",
                        (unsigned long long)m->message, id);
    if (rc)
        return req_fail_err(r, rc, r->op);
    tq_col_text(s, 0, m->kind, sizeof(m->kind));
    tq_col_text(s, 1, m->sender, sizeof(m->sender));
    m->targets = tq_col_u64(s, 5);
    m->undeliverable = tq_col_u64(s, 7);
    tq_done(s);
    rc = deliver_delivered_to(id, m->message, &m->acked);
    if (rc)
        return req_fail_err(r, rc, r->op);
    return 0;
}

int handle_thread_status(struct req *r)
{
    char id[THREAD_ID_MAX];
    struct thread_row t;
    struct msg_row m;
    if (thread_arg(r, id, &t) || message_arg(r, id, &m))
        return -1;
    if (strcmp(m.sender, r->c->identity) != 0 && !is_member(id, r->c->identity))
        return req_fail(r, "denied", "you are not the sender or a member of %s", id);
    wire_enc_ok(r->out, r->id, 4);
    wire_kv_uint(r->out, "message", m.message);
    wire_kv_uint(r->out, "delivered_to", m.acked);
    wire_kv_uint(r->out, "devices", m.targets);
    wire_kv_uint(r->out, "undeliverable", m.undeliverable);
    return 0;
}

int handle_agreement_pin(struct req *r)
{
    char id[THREAD_ID_MAX], aid[19];
    struct thread_row t;
    struct msg_row m;
    uint64_t now = clock_now();
    uint8_t b[8];
    if (member_arg(r, id, &t) || message_arg(r, id, &m))
        return -1;
    if (strcmp(m.kind, "app") != 0)
        return req_fail(r, "invalid", "an agreement is an application message");
    randombytes_buf(b, sizeof(b));
    aid[0] = 'a';
    aid[1] = '_';
    for (size_t i = 0; i < 8; i++)
        snprintf(aid + 2 + 2 * i, 3, "%02x", b[i]);
    sqlite3_stmt *s = tq(Q_AGR_ADD);
    int rc = tq_text(s, 1, aid);
    if (!rc) rc = tq_text(s, 2, id);
    if (!rc) rc = tq_u64(s, 3, m.message);
    if (!rc) rc = tq_text(s, 4, r->c->identity);
    if (!rc) rc = tq_u64(s, 5, now);
    if (!rc) rc = tq_run(s);
    if (!rc) rc = accesslog_add(now, t.citizen, id, r->c->identity, "agreement_pinned", aid);
    if (rc)
        return req_fail_err(r, rc, "agreement.pin");
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_str(r->out, "agreement", aid);
    return 0;
}

static int count_acks(const char *aid, uint64_t *n)
{
    sqlite3_stmt *s = tq(Q_AGR_ACKS);
    int rc = tq_text(s, 1, aid);
    *n = 0;
    while (!rc && (rc = tq_row(s)) == 0)
        (*n)++;
    return rc == ERR_NOT_FOUND ? 0 : rc ? rc : ERR_INTERNAL;
}

int handle_agreement_ack(struct req *r)
{
    char id[THREAD_ID_MAX], aid[24], th[THREAD_ID_MAX];
    struct thread_row t;
    uint64_t now = clock_now(), n;
    if (member_arg(r, id, &t) || req_str(r, "agreement", aid, sizeof(aid)))
        return -1;
    sqlite3_stmt *s = tq(Q_AGR_GET);
    int rc = tq_text(s, 1, aid);
    if (!rc) rc = tq_row(s);
    if (rc == 0) {
        tq_col_text(s, 0, th, sizeof(th));
        tq_done(s);
    }
    if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(th, id) != 0))
        return req_fail(r, "not_found", "no agreement %s in %s", aid, id);
    if (rc)
        return req_fail_err(r, rc, "agreement");
    s = tq(Q_AGR_ACK_ADD);
    rc = tq_text(s, 1, aid);
    if (!rc) rc = tq_text(s, 2, r->c->identity);
    if (!rc) rc = tq_u64(s, 3, now);
    if (!rc) rc = tq_run(s);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "you already acknowledged %s", aid);
    if (!rc) rc = accesslog_add(now, t.citizen, id, r->c->identity, "agreement_acknowledged", aid);
    if (!rc) rc = count_acks(aid, &n);
    if (rc)
        return req_fail_err(r, rc, "agreement.ack");
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "agreement", aid);
    wire_kv_uint(r->out, "acks", n);
    return 0;
}

int handle_agreement_show(struct req *r)
{
    char id[THREAD_ID_MAX], aid[24];
    struct thread_row t;
    uint64_t message = 0, nacks = 0;
    static char acked[256][STORE_ID_MAX], members[256][STORE_ID_MAX];
    size_t na = 0, nm = 0;
    if (member_arg(r, id, &t))
        return -1;
    sqlite3_stmt *s = tq(Q_AGR_LATEST);
    int rc = tq_text(s, 1, id);
    if (!rc) rc = tq_row(s);
    if (rc == ERR_NOT_FOUND) {
        wire_enc_ok(r->out, r->id, 4);
        wire_enc_key(r->out, "agreement");
        wire_enc_nil(r->out);
        wire_kv_uint(r->out, "message", 0);
        wire_enc_key(r->out, "acks");
        wire_enc_array(r->out, 0);
        wire_enc_key(r->out, "pending");
        wire_enc_array(r->out, 0);
        return 0;
    }
    if (rc)
        return req_fail_err(r, rc, "agreement.show");
    tq_col_text(s, 0, aid, sizeof(aid));
    message = tq_col_u64(s, 1);
    tq_done(s);
    rc = count_acks(aid, &nacks);
    if (rc)
        return req_fail_err(r, rc, "agreement.show");
    wire_enc_ok(r->out, r->id, 4);
    wire_kv_str(r->out, "agreement", aid);
    wire_kv_uint(r->out, "message", message);
    wire_enc_key(r->out, "acks");
    wire_enc_array(r->out, (uint32_t)(nacks > 256 ? 256 : nacks));
    s = tq(Q_AGR_ACKS);
    rc = tq_text(s, 1, aid);
    while (!rc && na < 256 && (rc = tq_row(s)) == 0) {
        tq_col_text(s, 0, acked[na], STORE_ID_MAX);
        wire_enc_map(r->out, 2);
        wire_kv_str(r->out, "id", acked[na]);
        wire_kv_uint(r->out, "time", tq_col_u64(s, 1));
        na++;
    }
    if (rc == 0)
        tq_done(s);
    if (na != (nacks > 256 ? 256 : nacks))
        return req_fail(r, "internal", "acknowledgements changed while read");
    /* pending: member identities without an acknowledgement */
    s = tq(Q_MEMBER_EACH);
    rc = tq_text(s, 1, id);
    while (!rc && (rc = tq_row(s)) == 0) {
        char who[STORE_ID_MAX];
        tq_col_text(s, 1, who, sizeof(who));
        if (sqlite3_column_int(s, 4) != 0)
            continue;
        bool seen = false;
        for (size_t i = 0; i < na && !seen; i++)
            seen = strcmp(acked[i], who) == 0;
        for (size_t i = 0; i < nm && !seen; i++)
            seen = strcmp(members[i], who) == 0;
        if (!seen && nm < 256)
            memcpy(members[nm++], who, sizeof(who));
    }
    wire_enc_key(r->out, "pending");
    wire_enc_array(r->out, (uint32_t)nm);
    for (size_t i = 0; i < nm; i++)
        wire_enc_str(r->out, members[i]);
    return 0;
}

/* kp.claim rate limit: claims per device per minute. */
struct claim_slot {
    char device[32];
    uint64_t minute;
    uint64_t count;
};
static struct claim_slot claim_slots[256];

static bool claim_allowed(const char *device, uint64_t now)
{
    uint64_t minute = now / 60;
    struct claim_slot *free_slot = NULL;
    for (size_t i = 0; i < 256; i++) {
        struct claim_slot *c = &claim_slots[i];
        if (strcmp(c->device, device) == 0) {
            if (c->minute != minute) {
                c->minute = minute;
                c->count = 0;
            }
            return ++c->count <= srv.cfg.kp_claims_per_minute;
        }
        if (!free_slot && (c->device[0] == 0 || c->minute != minute))
            free_slot = c;
    }
    if (!free_slot)
        return false; /* every slot busy this minute: refuse rather than forget */
    snprintf(free_slot->device, sizeof(free_slot->device), "%s", device);
    free_slot->minute = minute;
    free_slot->count = 1;
    return free_slot->count <= srv.cfg.kp_claims_per_minute;
}

int handle_kp_claim(struct req *r)
{
    char id[THREAD_ID_MAX], in[STORE_ID_MAX], who[STORE_ID_MAX], name[STORE_NAME_MAX];
    struct thread_row t;
    struct entitled_set ent = {0};
    uint64_t now = clock_now();
    static struct {
        char device[32];
        uint8_t *kp;
        size_t len;
    } out[64];
    size_t n = 0;
    if (member_arg(r, id, &t) || req_str(r, "identity", in, sizeof(in)) ||
        req_identity(r, in, who, sizeof(who), name))
        return -1;
    if (!claim_allowed(r->c->device, now))
        return req_fail(r, "limit", "at most %llu kp.claim per minute",
                        (unsigned long long)srv.cfg.kp_claims_per_minute);
    int rc = entitle_thread(id, t.citizen, t.kind, now, &ent);
    if (rc)
        return req_fail_err(r, rc, "kp.claim");
    if (!entitle_find_identity(&ent, who)) {
        entitle_free(&ent);
        return req_fail(r, "denied", "%s is not entitled to %s", who, id);
    }
    for (size_t i = 0; i < ent.n && !rc && n < 64; i++) {
        if (strcmp(ent.v[i].identity, who) != 0)
            continue;
        sqlite3_stmt *s = tq(Q_MEMBER_GET);
        rc = tq_text(s, 1, id);
        if (!rc) rc = tq_text(s, 2, ent.v[i].device);
        if (!rc) rc = tq_row(s);
        if (rc == 0) {
            tq_done(s);
            continue; /* already in the thread */
        }
        if (rc != ERR_NOT_FOUND)
            break;
        uint8_t ref[32];
        rc = kp_claim(ent.v[i].device, id, now, ref, &out[n].kp, &out[n].len);
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        snprintf(out[n].device, sizeof(out[n].device), "%s", ent.v[i].device);
        n++;
    }
    entitle_free(&ent);
    if (!rc) {
        wire_enc_ok(r->out, r->id, 1);
        wire_enc_key(r->out, "key_packages");
        wire_enc_array(r->out, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            wire_enc_map(r->out, 2);
            wire_kv_str(r->out, "device", out[i].device);
            wire_kv_bin(r->out, "key_package", out[i].kp, out[i].len);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(out[i].kp);
    return rc ? req_fail_err(r, rc, "kp.claim") : 0;
}
