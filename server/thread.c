/*
 * thread.c: threads as MLS groups: the follower cache, thread.create,
 * thread.commit acceptance (the authentication service), thread.send
 * admission, and reconciliation of rosters with entitlement. See thread.h.
 *
 * Where to start: thread_commit() and commit_check() (what a commit must
 * satisfy), then thread_reconcile() (what the server proposes).
 */
#include "thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "deliver.h"
#include "entitle.h"
#include "err.h"
#include "kp.h"
#include "log.h"
#include "mls_follower.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "server.h"
#include "strhash.h"
#include "tls.h"
#include "hot.h"
#include "tstore.h"

#define GROUP_ID_LEN 16
#define ROSTER_MAX 4096
#define DEV_MAX 32

/* ---- follower cache ------------------------------------------------------- */

/*
 * Followers kept in memory, found by thread id through a hash table
 * (chained, power-of-two buckets, grown as the cache grows), in an LRU list
 * for eviction (most recently used at the head), and, while a request is in
 * progress, on a "dirty" list of the entries it changed. keep() and abort()
 * walk only that list, so a request costs O(entries it touched), not
 * O(cached threads).
 *
 *   field        role
 *   hnext        next entry in the same hash bucket
 *   prev, next   LRU neighbours (head = most recent)
 *   dnext        next dirty entry (only while dirty)
 *   dirty        changed by the request in progress: never evicted;
 *                dropped by thread_cache_abort() (the store, rolled back,
 *                holds the old state and is read again on next use)
 */
struct cached {
    struct cached *hnext;
    struct cached *prev, *next;
    struct cached *dnext;
    char id[THREAD_ID_MAX];
    struct mls_follower *f;
    bool dirty;
};

static struct cached **buckets;
static size_t nbuckets; /* 0 or a power of two */
static struct cached *lru_head, *lru_tail;
static struct cached *dirty_head;
static size_t ncached;

static struct cached **bucket_of(const char *id)
{
    return &buckets[str_hash(id) & (nbuckets - 1)];
}

/* Doubles the bucket array (or makes the first one). On ERR_NOMEM the old
 * table stays usable (chains only get longer). */
static int rehash(void)
{
    size_t nn = nbuckets ? nbuckets * 2 : 64;
    struct cached **nb = calloc(nn, sizeof(*nb));
    if (!nb)
        return ERR_NOMEM;
    for (size_t i = 0; i < nbuckets; i++) {
        struct cached *c = buckets[i];
        while (c) {
            struct cached *next = c->hnext;
            size_t b = str_hash(c->id) & (nn - 1);
            c->hnext = nb[b];
            nb[b] = c;
            c = next;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = nn;
    return 0;
}

static struct cached *cache_find(const char *thread)
{
    if (!nbuckets)
        return NULL;
    for (struct cached *c = *bucket_of(thread); c; c = c->hnext)
        if (strcmp(c->id, thread) == 0)
            return c;
    return NULL;
}

static void lru_unlink(struct cached *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        lru_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        lru_tail = c->prev;
    c->prev = c->next = NULL;
}

static void lru_push_front(struct cached *c)
{
    c->prev = NULL;
    c->next = lru_head;
    if (lru_head)
        lru_head->prev = c;
    else
        lru_tail = c;
    lru_head = c;
}

/* Files a new entry (hash + LRU head). Takes ownership of c. */
static int cache_insert(struct cached *c)
{
    if (ncached + 1 > nbuckets && rehash() != 0 && !nbuckets)
        return ERR_NOMEM;
    struct cached **b = bucket_of(c->id);
    c->hnext = *b;
    *b = c;
    lru_push_front(c);
    ncached++;
    return 0;
}

/* Unfiles and frees an entry (not on the dirty list, or the caller is
 * emptying that list). */
static void cache_remove(struct cached *c)
{
    for (struct cached **pp = bucket_of(c->id); *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    lru_unlink(c);
    ncached--;
    mls_follower_free(c->f);
    free(c);
}

/* Marks c as changed by the request in progress. Call it *before* changing
 * c->f, so that a failure half-way through drops the entry too. */
static void mark_dirty(struct cached *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dnext = dirty_head;
    dirty_head = c;
}

void thread_cache_keep(void)
{
    struct cached *c = dirty_head;
    dirty_head = NULL;
    while (c) {
        struct cached *next = c->dnext;
        c->dirty = false;
        c->dnext = NULL;
        c = next;
    }
}

void thread_cache_abort(void)
{
    struct cached *c = dirty_head;
    dirty_head = NULL;
    while (c) {
        struct cached *next = c->dnext;
        cache_remove(c);
        c = next;
    }
}

void thread_cache_clear(void)
{
    while (lru_head)
        cache_remove(lru_head);
    dirty_head = NULL;
    free(buckets);
    buckets = NULL;
    nbuckets = 0;
}

/* Loads a thread's follower: from its saved state (threads.follower), or,
 * when there is none (or it does not load), by replaying the creation
 * GroupInfo and every accepted handshake (table handshakes). */
static int load_follower(const char *thread, struct mls_follower **out)
{
    struct mls_follower *f = NULL;
    sqlite3_stmt *s = tq(Q_THREAD_FOLLOWER);
    int rc = tq_text(s, 1, thread);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    if (sqlite3_column_type(s, 0) == SQLITE_BLOB) {
        rc = mls_follower_load(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
                               &f);
        if (rc == 0) {
            tq_done(s);
            *out = f;
            return 0;
        }
        log_warn("thread %s: saved group state refused (%s); replaying its history", thread,
                 err_str(rc));
    }
    rc = mls_follower_new(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), NULL, 0,
                          &f);
    tq_done(s);
    if (rc) {
        log_error("thread %s: stored GroupInfo refused by the follower: %s", thread,
                  err_str(rc));
        return ERR_INTERNAL;
    }
    s = tq(Q_HS_EACH);
    rc = tq_text(s, 1, thread);
    while (!rc && (rc = tq_row(s)) == 0) {
        int r = mls_follower_handle(f, sqlite3_column_blob(s, 1),
                                    (size_t)sqlite3_column_bytes(s, 1), tq_col_u64(s, 0), NULL);
        if (r) {
            tq_done(s);
            log_error("thread %s: replay of an accepted handshake failed: %s", thread,
                      err_str(r));
            mls_follower_free(f);
            return ERR_INTERNAL;
        }
    }
    if (rc != ERR_NOT_FOUND) {
        mls_follower_free(f);
        return rc ? rc : ERR_INTERNAL;
    }
    *out = f;
    return 0;
}

/* Saves a changed follower in the current transaction. */
static int save_follower(const char *thread, const struct mls_follower *f)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mls_follower_save(f, &buf, &len);
    if (rc)
        return rc;
    sqlite3_stmt *s = tq(Q_THREAD_SET_FOLLOWER);
    rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_blob(s, 2, buf, len);
    if (!rc) rc = tq_run(s);
    free(buf);
    return rc;
}

/* Followers kept in memory (cfg thread_cache; 4096 when unset, as in unit
 * tests); the least recently used clean ones beyond are dropped (their
 * state is in the store and loads again quickly). */
#define THREAD_CACHE_MAX (srv.cfg.thread_cache ? srv.cfg.thread_cache : 4096)

/* Drops least recently used clean entries while the cache is over its
 * limit, never keep (the entry just used). Dirty entries stay until the
 * request ends; they are few (one request's threads). */
static void cache_trim(const struct cached *keep)
{
    struct cached *e = lru_tail;
    while (ncached > (size_t)THREAD_CACHE_MAX && e) {
        struct cached *prev = e->prev;
        if (!e->dirty && e != keep)
            cache_remove(e);
        e = prev;
    }
}

static int follower(const char *thread, struct cached **out)
{
    struct cached *c = cache_find(thread);
    if (c) {
        if (c != lru_head) {
            lru_unlink(c);
            lru_push_front(c);
        }
        *out = c;
        return 0;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    snprintf(c->id, sizeof(c->id), "%s", thread);
    int rc = load_follower(thread, &c->f);
    if (!rc && (rc = cache_insert(c)) != 0)
        mls_follower_free(c->f);
    if (rc) {
        free(c);
        return rc;
    }
    cache_trim(c);
    *out = c;
    return 0;
}

/* ---- small helpers ------------------------------------------------------------ */

bool thread_id_valid(const char *id)
{
    if (strlen(id) != 34 || id[0] != 't' || id[1] != '_')
        return false;
    for (size_t i = 2; i < 34; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static void gid_to_id(const uint8_t *gid, char id[THREAD_ID_MAX])
{
    static const char hx[] = "0123456789abcdef";
    id[0] = 't';
    id[1] = '_';
    for (size_t i = 0; i < GROUP_ID_LEN; i++) {
        id[2 + 2 * i] = hx[gid[i] >> 4];
        id[3 + 2 * i] = hx[gid[i] & 15];
    }
    id[2 + 2 * GROUP_ID_LEN] = 0;
}

int thread_get(const char *thread, struct thread_row *out)
{
    sqlite3_stmt *s = tq(Q_THREAD_GET);
    int rc = tq_text(s, 1, thread);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    tq_col_text(s, 0, out->citizen, sizeof(out->citizen));
    tq_col_text(s, 1, out->kind, sizeof(out->kind));
    tq_col_text(s, 2, out->title, sizeof(out->title));
    out->epoch = tq_col_u64(s, 3);
    out->removal_pending = tq_col_u64(s, 4) != 0;
    out->last_seq = tq_col_u64(s, 5);
    tq_done(s);
    return 0;
}

/* Splits a leaf credential "name@domain/d_…" into identity and device. */
static bool split_cred(const uint8_t *p, size_t n, char *identity, size_t icap, char *device,
                       size_t dcap)
{
    const uint8_t *slash = NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == 0)
            return false;
        if (p[i] == '/')
            slash = p + i;
    }
    if (!slash)
        return false;
    size_t il = (size_t)(slash - p), dl = n - il - 1;
    if (il == 0 || il >= icap || dl == 0 || dl >= dcap)
        return false;
    memcpy(identity, p, il);
    identity[il] = 0;
    memcpy(device, slash + 1, dl);
    device[dl] = 0;
    return true;
}

static int roster_of(const struct mls_tree *t, const struct mls_follower *f,
                     struct mls_roster_entry **out, size_t *n)
{
    size_t cnt = 0;
    int rc = t ? mls_tree_roster(t, NULL, 0, &cnt) : mls_follower_roster(f, NULL, 0, &cnt);
    if (rc && rc != ERR_TOO_BIG)
        return rc;
    if (cnt > ROSTER_MAX)
        return ERR_LIMIT;
    struct mls_roster_entry *v = calloc(cnt ? cnt : 1, sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    rc = t ? mls_tree_roster(t, v, cnt, &cnt) : mls_follower_roster(f, v, cnt, &cnt);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* Records an accepted handshake (for replay). */
static int record_handshake(const char *thread, uint64_t epoch, uint64_t now,
                            const uint8_t *data, size_t len)
{
    sqlite3_stmt *s = tq(Q_HS_ADD);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, epoch);
    if (!rc) rc = tq_u64(s, 3, now);
    if (!rc) rc = tq_blob(s, 4, data, len);
    return rc ? rc : tq_run(s);
}

static int set_epoch(const char *thread, uint64_t epoch)
{
    sqlite3_stmt *s = tq(Q_THREAD_SET_EPOCH);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, epoch);
    return rc ? rc : tq_run(s);
}

static int set_removal(const char *thread, bool pending)
{
    sqlite3_stmt *s = tq(Q_THREAD_SET_REMOVAL);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_u64(s, 2, pending ? 1 : 0);
    return rc ? rc : tq_run(s);
}

static int member_add(const char *thread, const char *device, const char *identity,
                      uint32_t leaf, const char *basis, uint64_t now, uint64_t seq)
{
    sqlite3_stmt *s = tq(Q_MEMBER_ADD);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_text(s, 2, device);
    if (!rc) rc = tq_text(s, 3, identity);
    if (!rc) rc = tq_u64(s, 4, leaf);
    if (!rc) rc = tq_text(s, 5, basis);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_u64(s, 7, seq);
    return rc ? rc : tq_run(s);
}

static int prop_epoch(const char *thread, const char *device, const char *kind, uint64_t *epoch,
                      uint8_t ref[32], bool *has_ref);

/* ---- thread.create ---------------------------------------------------------------- */

#define FAIL(c, ...)                                                                         \
    do {                                                                                     \
        *code = (c);                                                                         \
        snprintf(why, whycap, __VA_ARGS__);                                                  \
        rc = ERR_INVALID;                                                                    \
        goto out;                                                                            \
    } while (0)

/* The GroupContext's external_senders must be exactly this server. */
static bool senders_ok(const struct mls_group_info *gi)
{
    struct mls_external_senders es = {0};
    bool ok = false;
    if (mls_ext_external_senders(&gi->group_context.extensions, &es) != 0)
        return false;
    if (es.n == 1 && es.v[0].signature_key.len == 32 &&
        memcmp(es.v[0].signature_key.data, srv.key_pk, 32) == 0 &&
        es.v[0].credential.credential_type == MLS_CREDENTIAL_BASIC &&
        es.v[0].credential.identity.len == strlen(srv.server_cred) &&
        memcmp(es.v[0].credential.identity.data, srv.server_cred,
               es.v[0].credential.identity.len) == 0)
        ok = true;
    mls_external_senders_free(&es);
    return ok;
}

int thread_create(const char *creator, const char *device, const char *citizen,
                  const char *kind, const char *title, const uint8_t *gi, size_t gi_len,
                  uint64_t now, char *id_out, const char **code, char *why, size_t whycap)
{
    struct mls_message m = {0};
    struct mls_follower *f = NULL;
    struct entitled_set ent = {0};
    struct mls_roster_entry *ro = NULL;
    size_t nro = 0;
    char id[THREAD_ID_MAX];
    int rc = mls_message_parse(gi, gi_len, &m);
    if (rc || m.wire_format != MLS_WF_GROUP_INFO)
        FAIL("invalid", "group_info is not an MLSMessage GroupInfo");
    const struct mls_group_context *gc = &m.group_info.group_context;
    if (gc->cipher_suite != 3)
        FAIL("invalid", "cipher suite must be 3");
    if (gc->group_id.len != GROUP_ID_LEN)
        FAIL("invalid", "group_id must be 16 bytes");
    if (gc->epoch != 0)
        FAIL("invalid", "a new thread's GroupInfo must be of epoch 0");
    if (!senders_ok(&m.group_info))
        FAIL("invalid", "external_senders must hold exactly this server's key and %s",
             srv.server_cred);
    gid_to_id(gc->group_id.data, id);
    rc = mls_follower_new(gi, gi_len, NULL, 0, &f);
    if (rc == ERR_CRYPTO)
        FAIL("crypto", "GroupInfo signature does not verify");
    if (rc)
        FAIL("invalid", "GroupInfo refused: %s", err_str(rc));
    rc = roster_of(NULL, f, &ro, &nro);
    if (rc)
        goto out;
    char rid[STORE_ID_MAX], rdev[DEV_MAX];
    if (nro != 1 || ro[0].credential_type != MLS_CREDENTIAL_BASIC ||
        !split_cred(ro[0].identity, ro[0].identity_len, rid, sizeof(rid), rdev, sizeof(rdev)) ||
        strcmp(rid, creator) != 0 || strcmp(rdev, device) != 0)
        FAIL("invalid", "the creator's device %s/%s must be the only leaf", creator, device);
    rc = entitle_thread(id, citizen, kind, now, &ent);
    if (rc)
        goto out;
    const struct entitled *me = entitle_find(&ent, device);
    if (!me)
        FAIL("denied", "%s is not entitled to a %s thread of %s", creator, kind, citizen);
    if (ro[0].signature_key_len != 32 || memcmp(ro[0].signature_key, me->pk, 32) != 0)
        FAIL("denied", "the leaf's signature key is not the device's enrolled key");
    sqlite3_stmt *s = tq(Q_THREAD_ADD);
    rc = tq_text(s, 1, id);
    if (!rc) rc = tq_text(s, 2, citizen);
    if (!rc) rc = tq_text(s, 3, kind);
    if (!rc) rc = tq_text(s, 4, title);
    if (!rc) rc = tq_text(s, 5, creator);
    if (!rc) rc = tq_u64(s, 6, now);
    if (!rc) rc = tq_u64(s, 7, 0);
    if (!rc) rc = tq_blob(s, 8, gi, gi_len);
    if (!rc) rc = tq_run(s);
    if (rc == ERR_CONFLICT)
        FAIL("conflict", "thread %s already exists", id);
    if (!rc) rc = member_add(id, device, creator, ro[0].leaf_index, me->basis, now, 0);
    if (!rc) {
        char subj[STORE_ID_MAX + DEV_MAX];
        snprintf(subj, sizeof(subj), "%s/%s", creator, device);
        rc = accesslog_add(now, citizen, id, creator, "thread_created", id);
        if (!rc)
            rc = accesslog_add(now, citizen, id, creator, "member_added", subj);
    }
    if (rc)
        goto out;
    /* cache the follower we already have */
    struct cached *c = calloc(1, sizeof(*c));
    if (!c) {
        rc = ERR_NOMEM;
        goto out;
    }
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->f = f;
    rc = cache_insert(c);
    if (rc) {
        free(c);
        goto out; /* f is still ours: freed below */
    }
    f = NULL;
    mark_dirty(c); /* a failure below drops it with the request */
    cache_trim(c);
    rc = thread_reconcile(id, now);
    if (!rc)
        snprintf(id_out, THREAD_ID_MAX, "%s", id);
out:
    free(ro);
    entitle_free(&ent);
    mls_follower_free(f);
    mls_message_free(&m);
    return rc;
}

/* ---- commit acceptance --------------------------------------------------------------- */

#define LATE_MAX 64

struct check_ctx {
    const char *thread;
    const struct entitled_set *ent;
    uint64_t epoch;             /* the epoch the commit is for */
    const char *code;
    char why[STORE_ID_MAX + 200];
    /* devices added by this commit through the server's own Add proposal
     * of this epoch that have lost their entitlement since: accepted (so
     * that committing every pending proposal always works), never sent the
     * Welcome, and proposed for removal at once */
    char late[LATE_MAX][DEV_MAX];
    size_t nlate;
};

/* Did the server propose adding device in this epoch, and is the leaf the
 * device's own (identity and enrolled key, revoked or not)? */
static bool late_add(const struct check_ctx *cx, const char *id, const char *dev,
                     const struct mls_roster_entry *re)
{
    uint64_t pe;
    bool has_ref;
    struct store_device d;
    if (prop_epoch(cx->thread, dev, "add", &pe, NULL, &has_ref) != 0 || pe != cx->epoch)
        return false;
    if (store_device_get(srv.store, dev, &d) != 0 || strcmp(d.identity, id) != 0)
        return false;
    return re->signature_key_len == 32 && memcmp(re->signature_key, d.pk, 32) == 0;
}

static bool member_exists(const char *thread, const char *device)
{
    sqlite3_stmt *s = tq(Q_MEMBER_GET);
    if (tq_text(s, 1, thread) || tq_text(s, 2, device) || tq_row(s))
        return false;
    tq_done(s);
    return true;
}

static bool member_removing(const char *thread, const char *device)
{
    sqlite3_stmt *s = tq(Q_MEMBER_GET);
    if (tq_text(s, 1, thread) || tq_text(s, 2, device) || tq_row(s))
        return false;
    bool removing = sqlite3_column_int(s, 3) != 0;
    tq_done(s);
    return removing;
}

/* The authentication service: every leaf of the new tree is an enrolled,
 * unrevoked device of an entitled identity with its own key, no device twice,
 * and no device whose removal is pending. */
static int commit_check(void *vctx, const struct mls_tree *tree, uint32_t committer)
{
    struct check_ctx *cx = vctx;
    struct mls_roster_entry *ro = NULL;
    size_t n = 0;
    (void)committer;
    int rc = roster_of(tree, NULL, &ro, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        char id[STORE_ID_MAX], dev[DEV_MAX];
        if (ro[i].credential_type != MLS_CREDENTIAL_BASIC ||
            !split_cred(ro[i].identity, ro[i].identity_len, id, sizeof(id), dev, sizeof(dev))) {
            cx->code = "denied";
            snprintf(cx->why, sizeof(cx->why), "leaf %u: credential is not name@domain/device",
                     ro[i].leaf_index);
            rc = ERR_DENIED;
            break;
        }
        for (size_t k = 0; k < i; k++) {
            char id2[STORE_ID_MAX], dev2[DEV_MAX];
            if (split_cred(ro[k].identity, ro[k].identity_len, id2, sizeof(id2), dev2,
                           sizeof(dev2)) &&
                strcmp(dev, dev2) == 0) {
                cx->code = "denied";
                snprintf(cx->why, sizeof(cx->why), "device %s is in the group twice", dev);
                rc = ERR_DENIED;
            }
        }
        if (rc)
            break;
        if (member_removing(cx->thread, dev)) {
            cx->code = "invalid";
            snprintf(cx->why, sizeof(cx->why),
                     "the commit must remove %s (its removal is pending)", dev);
            rc = ERR_INVALID;
            break;
        }
        const struct entitled *e = entitle_find(cx->ent, dev);
        if ((!e || strcmp(e->identity, id) != 0) && !member_exists(cx->thread, dev) &&
            cx->nlate < LATE_MAX && late_add(cx, id, dev, &ro[i])) {
            memcpy(cx->late[cx->nlate++], dev, DEV_MAX);
            continue;
        }
        if (!e || strcmp(e->identity, id) != 0) {
            cx->code = "denied";
            snprintf(cx->why, sizeof(cx->why),
                     "%s/%s is not an enrolled, unrevoked device of an entitled identity", id,
                     dev);
            rc = ERR_DENIED;
            break;
        }
        if (ro[i].signature_key_len != 32 || memcmp(ro[i].signature_key, e->pk, 32) != 0) {
            cx->code = "denied";
            snprintf(cx->why, sizeof(cx->why),
                     "leaf of %s/%s does not carry the device's enrolled key", id, dev);
            rc = ERR_DENIED;
        }
    }
    free(ro);
    return rc;
}

/* Reads the epoch of a PublicMessage/PrivateMessage without decoding the
 * body: version, wire_format, group_id<V>, epoch. */
static int peek_epoch(const uint8_t *msg, size_t len, uint16_t *wf, const uint8_t **gid,
                      size_t *gid_len, uint64_t *epoch)
{
    struct tls_reader r;
    uint16_t version;
    tls_reader_init(&r, msg, len);
    if (tls_read_u16(&r, &version) || tls_read_u16(&r, wf) || version != 1)
        return ERR_MALFORMED;
    if (*wf != MLS_WF_PUBLIC_MESSAGE && *wf != MLS_WF_PRIVATE_MESSAGE)
        return ERR_INVALID;
    if (tls_read_opaque(&r, gid, gid_len) || tls_read_u64(&r, epoch))
        return ERR_MALFORMED;
    return 0;
}

/* Routes each Welcome secret to the new device whose KeyPackage it names. */
static int route_welcome(const char *thread, const char *sender, const char *sender_device,
                         const uint8_t *welcome, size_t len, const char (*newdev)[DEV_MAX],
                         size_t nnew, uint64_t now, uint32_t *routed)
{
    struct mls_message m = {0};
    bool *done = calloc(nnew ? nnew : 1, sizeof(*done));
    if (!done)
        return ERR_NOMEM;
    int rc = mls_message_parse(welcome, len, &m);
    *routed = 0;
    if (rc || m.wire_format != MLS_WF_WELCOME) {
        mls_message_free(&m);
        free(done);
        return ERR_INVALID;
    }
    for (size_t i = 0; i < m.welcome.n_secrets && !rc; i++) {
        const struct mls_bytes *ref = &m.welcome.secrets[i].new_member;
        char dev[DEV_MAX] = "", claimed_for[THREAD_ID_MAX + 8] = "";
        bool last_resort = false;
        sqlite3_stmt *s = tq(Q_KP_DEVICE);
        rc = tq_blob(s, 1, ref->data, ref->len);
        if (!rc && (rc = tq_row(s)) == 0) {
            tq_col_text(s, 0, dev, sizeof(dev));
            tq_col_text(s, 1, claimed_for, sizeof(claimed_for));
            last_resort = tq_col_u64(s, 2) != 0;
            tq_done(s);
        }
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        /* a KeyPackage is used once: one the server handed out for another
         * thread (or retired) must not be used again */
        if (!last_resort && claimed_for[0] && strcmp(claimed_for, thread) != 0) {
            rc = ERR_CONFLICT;
            break;
        }
        for (size_t k = 0; k < nnew && !rc; k++) {
            if (strcmp(newdev[k], dev) == 0 && !done[k]) {
                rc = deliver_inbox_add(dev, thread, 0, "welcome", sender, sender_device, now,
                                       welcome, len, NULL);
                done[k] = true;
                (*routed)++;
            }
        }
    }
    mls_message_free(&m);
    free(done);
    return rc;
}

/* Checks a GroupInfo offered for thread.state against the follower. */
static int check_group_info(const struct mls_follower *f, const uint8_t *gi, size_t len)
{
    struct mls_follower *g = NULL;
    uint8_t *a = NULL, *b = NULL;
    size_t al, bl;
    int rc = mls_follower_new(gi, len, NULL, 0, &g);
    if (!rc) rc = mls_follower_group_context(f, &a, &al);
    if (!rc) rc = mls_follower_group_context(g, &b, &bl);
    if (!rc && (al != bl || memcmp(a, b, al) != 0))
        rc = ERR_INVALID;
    free(a);
    free(b);
    mls_follower_free(g);
    return rc;
}

int thread_commit(const char *thread, const char *identity, const char *device,
                  const uint8_t *commit, size_t commit_len, const uint8_t *welcome,
                  size_t welcome_len, const uint8_t *gi, size_t gi_len, uint64_t now,
                  uint64_t *epoch_out, const char **code, char *why, size_t whycap)
{
    struct thread_row t;
    struct entitled_set ent = {0};
    struct mls_roster_entry *ro = NULL;
    size_t nro = 0;
    struct cached *c = NULL;
    char (*newdev)[DEV_MAX] = NULL;
    size_t nnew = 0;
    uint16_t wf;
    const uint8_t *gid;
    size_t gid_len;
    uint64_t epoch;
    int rc = thread_get(thread, &t);
    if (rc == ERR_NOT_FOUND)
        FAIL("not_found", "no thread %s", thread);
    if (rc)
        goto out;
    sqlite3_stmt *s = tq(Q_MEMBER_GET);
    rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_text(s, 2, device);
    if (!rc) rc = tq_row(s);
    if (rc == ERR_NOT_FOUND)
        FAIL("denied", "device %s is not in thread %s", device, thread);
    if (rc)
        goto out;
    bool removing = sqlite3_column_int(s, 3) != 0;
    uint64_t my_leaf = tq_col_u64(s, 1);
    tq_done(s);
    if (removing)
        FAIL("denied", "device %s is being removed from %s", device, thread);
    rc = peek_epoch(commit, commit_len, &wf, &gid, &gid_len, &epoch);
    if (rc || wf != MLS_WF_PUBLIC_MESSAGE)
        FAIL("invalid", "commit must be an MLSMessage PublicMessage");
    {
        /* the commit must be the calling device's own (its leaf signs it) */
        struct tls_reader rd;
        uint16_t u16;
        const uint8_t *p;
        size_t n;
        uint64_t u64;
        uint8_t stype = 0;
        uint32_t leaf = 0;
        tls_reader_init(&rd, commit, commit_len);
        if (tls_read_u16(&rd, &u16) || tls_read_u16(&rd, &u16) || tls_read_opaque(&rd, &p, &n) ||
            tls_read_u64(&rd, &u64) || tls_read_u8(&rd, &stype) ||
            (stype == MLS_SENDER_MEMBER && tls_read_u32(&rd, &leaf)))
            FAIL("invalid", "commit must be an MLSMessage PublicMessage");
        if (stype != MLS_SENDER_MEMBER || leaf != my_leaf)
            FAIL("denied", "the commit is not signed by the calling device's leaf");
    }
    if (epoch != t.epoch)
        FAIL("conflict", "commit is for epoch %llu; the thread is at epoch %llu (sync, retry)",
             (unsigned long long)epoch, (unsigned long long)t.epoch);
    if (welcome) {
        struct mls_message wm = {0};
        int wr = mls_message_parse(welcome, welcome_len, &wm);
        bool ok = wr == 0 && wm.wire_format == MLS_WF_WELCOME;
        mls_message_free(&wm);
        if (!ok)
            FAIL("invalid", "welcome is not an MLSMessage Welcome");
    }
    rc = follower(thread, &c);
    if (rc)
        goto out;
    rc = entitle_thread(thread, t.citizen, t.kind, now, &ent);
    if (rc)
        goto out;
    static struct check_ctx cx;
    memset(&cx, 0, sizeof(cx));
    cx.thread = thread;
    cx.ent = &ent;
    cx.epoch = epoch;
    int event = 0;
    /* dirty before handling: whatever the follower did on a refusal is
     * dropped with the request, and the next use reloads the stored state */
    mark_dirty(c);
    mls_follower_set_commit_check(c->f, commit_check, &cx);
    rc = mls_follower_handle(c->f, commit, commit_len, now, &event);
    mls_follower_set_commit_check(c->f, NULL, NULL);
    if (rc) {
        if (cx.code) {
            *code = cx.code;
            snprintf(why, whycap, "%s", cx.why);
        } else if (rc == ERR_BADSTATE) {
            *code = "conflict";
            snprintf(why, whycap, "not the current epoch (sync, retry)");
        } else if (rc == ERR_CRYPTO) {
            *code = "crypto";
            snprintf(why, whycap, "commit signature does not verify");
        } else if (rc == ERR_DENIED) {
            *code = "denied";
            snprintf(why, whycap, "the committer is not a member of the group");
        } else {
            *code = "invalid";
            snprintf(why, whycap, "commit refused by MLS rules: %s", err_str(rc));
        }
        rc = ERR_INVALID;
        goto out;
    }
    if (event != MLS_FOLLOWER_COMMIT)
        FAIL("invalid", "not a commit");
    uint64_t new_epoch = mls_follower_epoch(c->f);
    if (gi && check_group_info(c->f, gi, gi_len) != 0)
        FAIL("invalid", "group_info does not match the new epoch's GroupContext");

    /* persist: handshake log, epoch, the commit to the old roster */
    uint64_t seq;
    rc = record_handshake(thread, epoch, now, commit, commit_len);
    if (!rc) rc = save_follower(thread, c->f);
    if (!rc) rc = set_epoch(thread, new_epoch);
    if (!rc)
        rc = deliver_thread_message(thread, "handshake", identity, device, epoch, commit,
                                    commit_len, now, &seq, NULL);
    if (!rc && gi) {
        s = tq(Q_THREAD_SET_GI);
        rc = tq_text(s, 1, thread);
        if (!rc) rc = tq_blob(s, 2, gi, gi_len);
        if (!rc) rc = tq_run(s);
    }
    /* proposal rows stay: reconcile re-sends stale ones at the new epoch
     * with the same KeyPackage; rows of devices that joined or left are
     * deleted below */
    if (!rc) rc = roster_of(NULL, c->f, &ro, &nro);
    if (rc)
        goto out;

    /* roster -> thread_members: leaves moved, devices added / removed */
    newdev = calloc(nro ? nro : 1, sizeof(*newdev));
    if (!newdev) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nro && !rc; i++) {
        char id[STORE_ID_MAX], dev[DEV_MAX];
        if (!split_cred(ro[i].identity, ro[i].identity_len, id, sizeof(id), dev, sizeof(dev))) {
            rc = ERR_INTERNAL;
            break;
        }
        s = tq(Q_MEMBER_GET);
        rc = tq_text(s, 1, thread);
        if (!rc) rc = tq_text(s, 2, dev);
        if (!rc) rc = tq_row(s);
        if (rc == 0) {
            uint64_t leaf = tq_col_u64(s, 1);
            tq_done(s);
            if (leaf != ro[i].leaf_index) {
                s = tq(Q_MEMBER_SET_LEAF);
                rc = tq_text(s, 1, thread);
                if (!rc) rc = tq_text(s, 2, dev);
                if (!rc) rc = tq_u64(s, 3, ro[i].leaf_index);
                if (!rc) rc = tq_run(s);
            }
            continue;
        }
        if (rc != ERR_NOT_FOUND)
            break;
        const struct entitled *e = entitle_find(&ent, dev);
        char basis[ENTITLE_BASIS_MAX] = "";
        if (e) {
            snprintf(basis, sizeof(basis), "%s", e->basis);
        } else {
            /* a late Add: the basis it was proposed under */
            s = tq(Q_PROP_BASIS);
            if (!tq_text(s, 1, thread) && !tq_text(s, 2, dev) && tq_row(s) == 0) {
                tq_col_text(s, 0, basis, sizeof(basis));
                tq_done(s);
            }
        }
        rc = member_add(thread, dev, id, ro[i].leaf_index, basis, now, seq);
        if (!rc) {
            char subj[STORE_ID_MAX + DEV_MAX];
            snprintf(subj, sizeof(subj), "%s/%s", id, dev);
            rc = accesslog_add(now, t.citizen, thread, identity, "member_added", subj);
        }
        if (!rc) {
            s = tq(Q_PROP_DEL);
            rc = tq_text(s, 1, thread);
            if (!rc) rc = tq_text(s, 2, dev);
            if (!rc) rc = tq_text(s, 3, "add");
            if (!rc) rc = tq_run(s);
        }
        bool late = false;
        for (size_t k = 0; k < cx.nlate && !late; k++)
            late = strcmp(cx.late[k], dev) == 0;
        if (late) {
            /* no Welcome; reconcile below proposes its removal */
            log_info("thread %s: %s joined by a late Add and is removed again", thread, dev);
            continue;
        }
        memcpy(newdev[nnew++], dev, DEV_MAX);
    }
    if (rc)
        goto out;
    /* members no longer in the tree */
    {
        char (*gone)[DEV_MAX] = NULL;
        char (*goneid)[STORE_ID_MAX] = NULL;
        size_t ngone = 0, cap = 0;
        s = tq(Q_MEMBER_EACH);
        rc = tq_text(s, 1, thread);
        while (!rc && (rc = tq_row(s)) == 0) {
            char dev[DEV_MAX];
            tq_col_text(s, 0, dev, sizeof(dev));
            bool in = false;
            for (size_t i = 0; i < nro && !in; i++) {
                char id2[STORE_ID_MAX], dev2[DEV_MAX];
                in = split_cred(ro[i].identity, ro[i].identity_len, id2, sizeof(id2), dev2,
                                sizeof(dev2)) &&
                     strcmp(dev, dev2) == 0;
            }
            if (in)
                continue;
            if (ngone == cap) {
                size_t nc = cap ? cap * 2 : 8;
                void *g1 = realloc(gone, nc * sizeof(*gone));
                if (g1)
                    gone = g1;
                void *g2 = g1 ? realloc(goneid, nc * sizeof(*goneid)) : NULL;
                if (g2)
                    goneid = g2;
                if (!g1 || !g2) {
                    tq_done(s);
                    rc = ERR_NOMEM;
                    break;
                }
                cap = nc;
            }
            memcpy(gone[ngone], dev, DEV_MAX);
            tq_col_text(s, 1, goneid[ngone], STORE_ID_MAX);
            ngone++;
        }
        if (rc == ERR_NOT_FOUND)
            rc = 0;
        for (size_t i = 0; i < ngone && !rc; i++) {
            char subj[STORE_ID_MAX + DEV_MAX];
            s = tq(Q_MEMBER_DEL);
            rc = tq_text(s, 1, thread);
            if (!rc) rc = tq_text(s, 2, gone[i]);
            if (!rc) rc = tq_run(s);
            snprintf(subj, sizeof(subj), "%s/%s", goneid[i], gone[i]);
            if (!rc) rc = accesslog_add(now, t.citizen, thread, identity, "member_removed", subj);
            if (!rc) rc = deliver_notice(gone[i], thread, "removed", 0, "", "", 0, now);
            s = tq(Q_PROP_DEL);
            if (!rc) rc = tq_text(s, 1, thread);
            if (!rc) rc = tq_text(s, 2, gone[i]);
            if (!rc) rc = tq_text(s, 3, "remove");
            if (!rc) rc = tq_run(s);
        }
        free(gone);
        free(goneid);
        if (rc)
            goto out;
    }
    rc = set_removal(thread, false);
    if (!rc && nnew && !welcome)
        FAIL("invalid", "the commit adds %zu device(s): send their Welcome", nnew);
    if (!rc && nnew) {
        uint32_t routed;
        rc = route_welcome(thread, identity, device, welcome, welcome_len,
                           (const char(*)[DEV_MAX])newdev, nnew, now, &routed);
        if (rc == ERR_INVALID)
            FAIL("invalid", "welcome does not decode");
        if (rc == ERR_CONFLICT)
            FAIL("invalid", "the welcome uses a KeyPackage already claimed for another thread");
        if (!rc && routed != nnew)
            FAIL("invalid",
                 "the welcome must name a KeyPackage the server handed out for each added "
                 "device (%u of %zu)",
                 routed, nnew);
    }
    if (!rc)
        rc = thread_reconcile(thread, now);
    if (!rc)
        *epoch_out = new_epoch;
out:
    free(newdev);
    free(ro);
    entitle_free(&ent);
    return rc;
}

/* ---- thread.send ------------------------------------------------------------------ */

int thread_send(const char *thread, const char *identity, const char *device,
                const uint8_t *msg, size_t len, uint64_t now, uint64_t *seq, uint32_t *devices,
                const char **code, char *why, size_t whycap)
{
    struct thread_row t;
    uint16_t wf;
    const uint8_t *gid;
    size_t gid_len;
    uint64_t epoch;
    int rc;
    /* the hot path: the thread's state from memory (hot.c), no follower */
    const struct hot_thread *h;
    rc = hot_get(thread, &h);
    if (rc == ERR_NOT_FOUND)
        FAIL("denied", "device %s is not a member of %s", device, thread);
    if (rc)
        goto out;
    const struct hot_member *me = hot_member(h, device);
    if (!me)
        FAIL("denied", "device %s is not a member of %s", device, thread);
    if (me->removing)
        FAIL("denied", "device %s is being removed from %s", device, thread);
    t.epoch = h->epoch;
    t.removal_pending = h->removal_pending;
    if (t.removal_pending)
        FAIL("state", "a removal is pending in %s: commit it first", thread);
    rc = peek_epoch(msg, len, &wf, &gid, &gid_len, &epoch);
    if (rc || wf != MLS_WF_PRIVATE_MESSAGE)
        FAIL("invalid", "msg must be an MLSMessage PrivateMessage");
    char gidhex[THREAD_ID_MAX];
    if (gid_len != GROUP_ID_LEN)
        FAIL("invalid", "msg is not for this thread");
    gid_to_id(gid, gidhex);
    if (strcmp(gidhex, thread) != 0)
        FAIL("invalid", "msg is not for this thread");
    if (epoch != t.epoch)
        FAIL("conflict", "msg is of epoch %llu; the thread is at epoch %llu",
             (unsigned long long)epoch, (unsigned long long)t.epoch);
    rc = deliver_thread_message(thread, "app", identity, device, epoch, msg, len, now, seq,
                                devices);
out:
    return rc;
}

/* ---- reconciliation ---------------------------------------------------------------- */

/* Sends a server-made proposal: follower, handshake log, delivery. */
static int send_proposal(struct cached *c, const char *thread, const uint8_t *p, size_t len,
                         uint64_t now)
{
    uint64_t epoch = mls_follower_epoch(c->f);
    mark_dirty(c);
    int rc = mls_follower_handle(c->f, p, len, now, NULL);
    if (rc)
        return rc;
    rc = record_handshake(thread, epoch, now, p, len);
    if (!rc)
        rc = save_follower(thread, c->f);
    if (!rc)
        rc = deliver_thread_message(thread, "handshake", srv.server_cred, DELIVER_SERVER_DEVICE,
                                    epoch, p, len, now, NULL, NULL);
    return rc;
}

static int prop_epoch(const char *thread, const char *device, const char *kind, uint64_t *epoch,
                      uint8_t ref[32], bool *has_ref)
{
    sqlite3_stmt *s = tq(Q_PROP_GET);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_text(s, 2, device);
    if (!rc) rc = tq_text(s, 3, kind);
    if (!rc) rc = tq_row(s);
    if (rc)
        return rc;
    *epoch = tq_col_u64(s, 0);
    *has_ref = false;
    if (ref && sqlite3_column_bytes(s, 1) == 32) {
        memcpy(ref, sqlite3_column_blob(s, 1), 32);
        *has_ref = true;
    }
    tq_done(s);
    return 0;
}

static int prop_put(const char *thread, const char *device, const char *kind, uint64_t epoch,
                    const uint8_t *ref, const char *basis)
{
    sqlite3_stmt *s = tq(Q_PROP_PUT);
    int rc = tq_text(s, 1, thread);
    if (!rc) rc = tq_text(s, 2, device);
    if (!rc) rc = tq_text(s, 3, kind);
    if (!rc) rc = tq_u64(s, 4, epoch);
    if (!rc) rc = tq_blob(s, 5, ref, ref ? 32 : 0);
    if (!rc) rc = tq_text(s, 6, basis);
    return rc ? rc : tq_run(s);
}

struct memb {
    char device[DEV_MAX];
    char identity[STORE_ID_MAX];
    char basis[ENTITLE_BASIS_MAX];
    uint32_t leaf;
    bool removing;
};

int thread_reconcile(const char *thread, uint64_t now)
{
    struct thread_row t;
    struct entitled_set ent = {0};
    struct memb *mv = NULL;
    size_t nm = 0, cap = 0;
    struct cached *c = NULL;
    bool pending = false;
    int rc = thread_get(thread, &t);
    if (rc)
        return rc;
    rc = follower(thread, &c);
    if (rc)
        return rc;
    uint64_t epoch = mls_follower_epoch(c->f);
    rc = entitle_thread(thread, t.citizen, t.kind, now, &ent);
    if (rc)
        goto out;
    sqlite3_stmt *s = tq(Q_MEMBER_EACH);
    rc = tq_text(s, 1, thread);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (nm == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct memb *g = realloc(mv, ncap * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            mv = g;
            cap = ncap;
        }
        tq_col_text(s, 0, mv[nm].device, DEV_MAX);
        tq_col_text(s, 1, mv[nm].identity, STORE_ID_MAX);
        mv[nm].leaf = (uint32_t)tq_col_u64(s, 2);
        tq_col_text(s, 3, mv[nm].basis, ENTITLE_BASIS_MAX);
        mv[nm].removing = sqlite3_column_int(s, 4) != 0;
        nm++;
    }
    if (rc != ERR_NOT_FOUND)
        goto out;
    rc = 0;

    /* removals first, in two passes: every leaving device is marked (so
     * delivery to all of them stops at once, including the Remove
     * proposals of the others), then the proposals are sent; members who
     * stay but under another basis (a grant ended, another still holds)
     * get their basis updated */
    for (size_t i = 0; i < nm && !rc; i++) {
        const struct entitled *e = entitle_find(&ent, mv[i].device);
        if (e && !mv[i].removing) {
            if (strcmp(e->basis, mv[i].basis) != 0) {
                s = tq(Q_MEMBER_SET_BASIS);
                rc = tq_text(s, 1, thread);
                if (!rc) rc = tq_text(s, 2, mv[i].device);
                if (!rc) rc = tq_text(s, 3, e->basis);
                if (!rc) rc = tq_run(s);
            }
            continue;
        }
        pending = true;
        if (mv[i].removing)
            continue;
        s = tq(Q_MEMBER_SET_REMOVING);
        rc = tq_text(s, 1, thread);
        if (!rc) rc = tq_text(s, 2, mv[i].device);
        if (!rc) rc = tq_u64(s, 3, 1);
        if (!rc) rc = tq_run(s);
        char subj[STORE_ID_MAX + DEV_MAX];
        snprintf(subj, sizeof(subj), "%s/%s", mv[i].identity, mv[i].device);
        if (!rc)
            rc = accesslog_add(now, t.citizen, thread, srv.server_cred, "removal_proposed", subj);
        mv[i].removing = true;
    }
    for (size_t i = 0; i < nm && !rc; i++) {
        if (!mv[i].removing)
            continue;
        uint64_t pe;
        bool hr;
        int pr = prop_epoch(thread, mv[i].device, "remove", &pe, NULL, &hr);
        if (pr == 0 && pe == epoch)
            continue; /* already proposed this epoch */
        if (pr && pr != ERR_NOT_FOUND) {
            rc = pr;
            break;
        }
        uint8_t *p = NULL;
        size_t plen;
        rc = mls_follower_external_remove(c->f, mv[i].leaf, srv.key_seed, 0, &p, &plen);
        if (!rc)
            rc = send_proposal(c, thread, p, plen, now);
        free(p);
        if (!rc)
            rc = prop_put(thread, mv[i].device, "remove", epoch, NULL, "");
        if (rc)
            log_warn("thread %s: external Remove of %s failed: %s", thread, mv[i].device,
                     err_str(rc));
    }
    if (rc)
        goto out;
    if (pending != t.removal_pending)
        rc = set_removal(thread, pending);

    /* adds: newly entitled devices with a KeyPackage */
    for (size_t k = 0; k < ent.n && !rc; k++) {
        const struct entitled *e = &ent.v[k];
        bool member = false;
        for (size_t i = 0; i < nm && !member; i++)
            member = strcmp(mv[i].device, e->device) == 0;
        if (member)
            continue;
        uint64_t pe;
        uint8_t ref[32];
        bool has_ref = false;
        int pr = prop_epoch(thread, e->device, "add", &pe, ref, &has_ref);
        if (pr == 0 && pe == epoch)
            continue;
        if (pr && pr != ERR_NOT_FOUND) {
            rc = pr;
            break;
        }
        /* A KeyPackage the group refuses (expired, capabilities, a key
         * already in the tree) is dropped and the next one tried. */
        for (int attempt = 0; attempt < 4 && !rc; attempt++) {
            uint8_t *kp = NULL, *p = NULL;
            size_t kplen = 0, plen = 0;
            if (has_ref) {
                rc = kp_get(ref, &kp, &kplen);
                has_ref = false;
                if (rc == ERR_NOT_FOUND)
                    rc = kp_claim(e->device, thread, now, ref, &kp, &kplen);
            } else {
                rc = kp_claim(e->device, thread, now, ref, &kp, &kplen);
            }
            if (rc == ERR_NOT_FOUND) {
                rc = 0; /* no KeyPackage yet: kp.upload reconciles again */
                break;
            }
            if (rc)
                break;
            rc = mls_follower_external_add(c->f, kp, kplen, srv.key_seed, 0, &p, &plen);
            free(kp);
            if (!rc)
                rc = send_proposal(c, thread, p, plen, now);
            free(p);
            if (rc == 0) {
                rc = prop_put(thread, e->device, "add", epoch, ref, e->basis);
                break;
            }
            if (rc == ERR_IO || rc == ERR_NOMEM || rc == ERR_INTERNAL)
                break;
            log_warn("thread %s: KeyPackage of %s refused (%s); dropped", thread, e->device,
                     err_str(rc));
            rc = kp_drop(ref);
        }
    }
out:
    free(mv);
    entitle_free(&ent);
    return rc;
}

/* Reconciles every thread query q lists (column 0: the thread id; ?1 =
 * arg1 and ?2 = arg2 when given). */
static int reconcile_list(enum tq q, const char *arg1, const char *arg2, uint64_t now)
{
    char (*ids)[THREAD_ID_MAX] = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s = tq(q);
    int rc = arg1 ? tq_text(s, 1, arg1) : 0;
    if (!rc && arg2)
        rc = tq_text(s, 2, arg2);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *g = realloc(ids, nc * sizeof(*ids));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            ids = g;
            cap = nc;
        }
        tq_col_text(s, 0, ids[n++], THREAD_ID_MAX);
    }
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = thread_reconcile(ids[i], now);
    free(ids);
    return rc;
}

int thread_reconcile_citizen(const char *citizen, uint64_t now)
{
    return reconcile_list(Q_THREAD_EACH_CITIZEN, citizen, NULL, now);
}

int thread_reconcile_identity(const char *identity, uint64_t now)
{
    return reconcile_list(Q_THREADS_CANDIDATE, identity, NULL, now);
}

int thread_reconcile_new_kps(const char *identity, const char *device, uint64_t now)
{
    return reconcile_list(Q_THREADS_WANTING_DEVICE, identity, device, now);
}

int thread_reconcile_device(const char *device, uint64_t now)
{
    return reconcile_list(Q_THREADS_OF_DEVICE, device, NULL, now);
}

int thread_reconcile_department(const char *department, uint64_t now)
{
    return reconcile_list(Q_THREADS_OF_DEPARTMENT, department, NULL, now);
}

int thread_reconcile_all(uint64_t now)
{
    return reconcile_list(Q_THREAD_EACH, NULL, NULL, now);
}

int thread_tree(const char *thread, uint8_t **out, size_t *len)
{
    struct cached *c;
    int rc = follower(thread, &c);
    return rc ? rc : mls_follower_tree(c->f, out, len);
}

int thread_log_device(const char *identity, const char *device, const char *action,
                      uint64_t now)
{
    struct tl {
        char thread[THREAD_ID_MAX];
        char citizen[STORE_ID_MAX];
    } *v = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s = tq(Q_THREADS_OF_IDENTITY);
    int rc = tq_text(s, 1, identity);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct tl *g = realloc(v, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                rc = ERR_NOMEM;
                break;
            }
            v = g;
            cap = nc;
        }
        tq_col_text(s, 0, v[n].thread, THREAD_ID_MAX);
        tq_col_text(s, 1, v[n].citizen, STORE_ID_MAX);
        n++;
    }
    if (rc == ERR_NOT_FOUND)
        rc = 0;
    char subj[STORE_ID_MAX + DEV_MAX];
    snprintf(subj, sizeof(subj), "%s/%s", identity, device);
    for (size_t i = 0; i < n && !rc; i++)
        rc = accesslog_add(now, v[i].citizen, v[i].thread, identity, action, subj);
    free(v);
    return rc;
}
