/*
 * handle_thread.c: thread.create, thread.list, thread.members,
 * thread.state, thread.commit, thread.send, thread.log, sync, ack
 * (PROTOCOL.md "Threads and MLS", "Delivery", "Access log"). The rules live
 * in thread.c, entitle.c and deliver.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consent.h"
#include "deliver.h"
#include "entitle.h"
#include "err.h"
#include "handle.h"
#include "log.h"
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
    sqlite3_stmt *s = tq(Q_THREAD_EACH);
    int rc = 0;
    while ((rc = tq_row(s)) == 0) {
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
        s = tq(Q_INBOX_UNREAD);
        if (!tq_text(s, 1, r->c->device) && !tq_text(s, 2, v[i].id) && tq_row(s) == 0) {
            unread = tq_col_u64(s, 0);
            tq_done(s);
        }
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
    wire_enc_ok(r->out, r->id, 3);
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
    int rc = thread_send(id, r->c->identity, r->c->device, msg, len, clock_now(), &seq,
                         &devices, &code, why, sizeof(why));
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "no thread %s", id);
    if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL || rc == ERR_LIMIT)
        return req_fail_err(r, rc, "thread.send");
    if (rc)
        return req_fail(r, code, "%s", why);
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_uint(r->out, "message", seq);
    wire_kv_uint(r->out, "devices", devices);
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
