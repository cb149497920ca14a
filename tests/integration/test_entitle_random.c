/*
 * test_entitle_random.c: randomized entitlement test (issue 5, "Done when"
 * item 3). Thousands of random grant / revoke / expire / assign / unassign /
 * link-device / revoke-device steps (now and then also a proxy registered or
 * ended, or a break-glass access opened; grants and revocations signed by
 * the citizen or an active proxy) against the real server, with real
 * devices running the client library's sync engine (client_thread.h), and
 * an independent model of the contract's entitlement rule
 * (tests/support/entitle_model.h, itself checked on hand-made cases by
 * model_rules). After every step:
 *
 *   1. at once (before any device syncs): the server's roster is unchanged
 *      (only a commit changes it); thread.members lists as pending_removal
 *      exactly the roster devices the model no longer entitles and as
 *      pending_add exactly the entitled devices not in the roster; an
 *      application message from a member is refused with `state` while a
 *      removal is pending, else queued for exactly the other roster devices
 *      (a probe, checked in 3); no device outside a thread has anything of
 *      it in its inbox but a `removed` notice (check_inboxes);
 *   2. the devices inside some thread sync (the engine commits the server's
 *      external proposals, joins from Welcomes) until nothing new can be
 *      waiting (settle);
 *   3. every thread's roster equals the model's entitled devices in the
 *      server's ratchet tree and in its last accepted GroupInfo (thread.state),
 *      in thread.members (with a basis the model accepts), and in the MLS
 *      group state of every entitled device (same epoch, same epoch
 *      authenticator); devices not entitled hold no current-epoch state; the
 *      probe was decrypted by every recipient and reached no other device
 *      (check_settled).
 *
 * SAMMEN_SEED=N replays a run's choices (the seed is printed);
 * SAMMEN_RANDOM_STEPS sets the step count (default 2000, 300 under
 * AddressSanitizer), and SAMMEN_RANDOM_SECONDS a time budget (default 400 s)
 * after which the run stops early, saying so; SAMMEN_RANDOM_VERBOSE prints
 * each step as it runs. On a mismatch the test prints the seed and the whole
 * step history.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "it.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client_consent.h"
#include "client_state.h"
#include "client_thread.h"
#include "crypto.h"
#include "entitle_model.h"
#include "mls_follower.h"
#include "mls_group.h"
#include "mls_tree.h"
#include "msg_grant.h"

#define DOMAIN "random.test"
#define TIMEOUT 10000
#define MAX_SETTLE_ROUNDS 12
#define MAX_DEVS_PER_ID 3
#define MAX_LIVE_DEVS 22
#define MAX_PROBES EM_MAX_THREADS
#define EXPIRY_GRAIN 600 /* grant expiries fall on multiples of this (seconds) */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* One device of the run (indexed like the model's devices). */
struct rdev {
    bool live;
    uint8_t seed[32];
    struct client_conn *c;
    struct client_dev *d;
    uint64_t checked[EM_MAX_THREADS]; /* history read up to this message */
};

struct probe {
    size_t thread;
    uint64_t message;
    char text[64];
    size_t sender;
    bool to[EM_MAX_DEVS]; /* queued for (model device index) */
    bool got[EM_MAX_DEVS];
};

struct world {
    struct testserver ts;
    char statedir[192]; /* the devices' profiles (tmpfs when there is one) */
    struct client_ctx *ctx;
    struct client_conn *admin;
    uint8_t server_key[32];
    struct em_model *m;
    struct rdev devs[EM_MAX_DEVS];
    size_t anchor;          /* the citizen's first device (never revoked) */
    int64_t offset;         /* server clock - real clock */
    uint64_t rng;
    uint64_t seed;
    struct em_set roster[EM_MAX_THREADS]; /* as of the last settled state */
    struct probe probes[MAX_PROBES];
    size_t nprobes;
    uint64_t probe_no;
    char (*hist)[200];
    size_t nhist, capsteps;
    bool self_checked;
    /* counters for the summary */
    unsigned n_ops[9], n_commits, n_welcomes, n_refused_sends, n_probes;
    int64_t ms_op, ms_immediate, ms_settle, ms_settled; /* where the time goes */
};

static struct world *W;

/* ---- failure reporting --------------------------------------------------------- */

static void print_history(void)
{
    fprintf(stderr, "---- step history (seed %llu, %zu entries) ----\n",
            (unsigned long long)W->seed, W->nhist);
    for (size_t i = 0; i < W->nhist; i++)
        fprintf(stderr, "%s\n", W->hist[i]);
    fprintf(stderr, "---- reproduce with SAMMEN_SEED=%llu ----\n", (unsigned long long)W->seed);
}

static void die(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int line, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "MISMATCH (line %d): %s\n", line, msg);
    print_history();
    fail_msg("test_entitle_random: %s (seed %llu)", msg, (unsigned long long)W->seed);
    abort(); /* not reached: fail_msg jumps out */
}

#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            die(__LINE__, __VA_ARGS__);                                                            \
    } while (0)

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    if (W->nhist == W->capsteps) {
        size_t nc = W->capsteps ? 2 * W->capsteps : 256;
        void *p = realloc(W->hist, nc * sizeof(*W->hist));
        assert_non_null(p);
        W->hist = p;
        W->capsteps = nc;
    }
    va_start(ap, fmt);
    vsnprintf(W->hist[W->nhist], sizeof(W->hist[0]), fmt, ap);
    va_end(ap);
    if (getenv("SAMMEN_RANDOM_VERBOSE"))
        fprintf(stderr, "%s\n", W->hist[W->nhist]);
    W->nhist++;
}

/* ---- randomness (xorshift64*, reproducible from the seed) ----------------------- */

static uint64_t rnd64(void)
{
    uint64_t x = W->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    W->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t rnd(size_t n)
{
    return n ? (size_t)(rnd64() % n) : 0;
}

static uint64_t server_now(void)
{
    return (uint64_t)((int64_t)time(NULL) + W->offset);
}

/* ---- calls ---------------------------------------------------------------------- */

struct arg {
    const char *key;
    const char *str;
    const uint8_t *bin;
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
    int rc = client_sync_call(c, id, &e, TIMEOUT, r);
    wire_enc_reset(&e);
    return rc;
}

/* Calls op and requires `ok`; the caller frees *r. */
static void call_ok(struct client_conn *c, const char *op, const struct arg *a, size_t n,
                    struct client_frame *r)
{
    int rc = call(c, op, a, n, r);
    REQUIRE(rc == 0, "%s: %s (%s: %.*s)", op, err_str(rc), r->buf ? r->msg.name : "-",
            r->buf ? (int)r->msg.err_msg_len : 0, r->buf && r->msg.err_msg ? r->msg.err_msg : "");
}

static void call_ok_free(struct client_conn *c, const char *op, const struct arg *a, size_t n)
{
    struct client_frame r;
    call_ok(c, op, a, n, &r);
    client_frame_free(&r);
}

/* ---- devices ---------------------------------------------------------------------- */

static size_t live_devices_of(int ident, size_t *out)
{
    size_t n = 0;
    for (size_t d = 0; d < W->m->ndevs; d++)
        if (W->devs[d].live && W->m->devs[d].ident == ident)
            out[n++] = d;
    return n;
}

static size_t live_count(void)
{
    size_t n = 0;
    for (size_t d = 0; d < W->m->ndevs; d++)
        n += W->devs[d].live;
    return n;
}

static void dev_key(size_t d, char key[EM_KEY_MAX])
{
    em_device_key(W->m, d, key);
}

/* Enrolls a new device with code (an invitation or a link code) for
 * identity ident: connection, device state, KeyPackage stock. Returns the
 * model's device index. */
static size_t dev_enroll(const char *code, int ident)
{
    struct client_frame r;
    char id[CLIENT_ID_MAX + 1], device[19], dir[300];
    struct client_conn *c = NULL;
    uint8_t seed[32];
    int rc;

    rc = client_sync_open(W->ctx, W->ts.url, TIMEOUT, &c);
    REQUIRE(rc == 0, "open: %s", err_str(rc));
    randombytes_buf(seed, sizeof(seed));
    rc = client_auth_enroll(c, code, seed, "random", TIMEOUT, &r);
    REQUIRE(rc == 0, "enroll: %s", err_str(rc));
    REQUIRE(wire_get_cstr(&r.msg.body, "id", id, sizeof(id)) == 0 &&
                wire_get_cstr(&r.msg.body, "device", device, sizeof(device)) == 0,
            "enroll: no id/device");
    client_frame_free(&r);
    REQUIRE(strcmp(id, W->m->ids[ident].id) == 0, "enrolled as %s, wanted %s", id,
            W->m->ids[ident].id);
    int di = em_add_device(W->m, ident, device);
    REQUIRE(di >= 0, "model: too many devices");
    struct rdev *rd = &W->devs[di];
    memset(rd, 0, sizeof(*rd));
    memcpy(rd->seed, seed, 32);
    sodium_memzero(seed, sizeof(seed));
    rd->c = c;
    snprintf(dir, sizeof(dir), "%s/dev-%s", W->statedir, device);
    REQUIRE(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
    rc = client_dev_open(c, dir, id, device, DOMAIN, rd->seed, TIMEOUT, &rd->d);
    REQUIRE(rc == 0, "client_dev_open: %s", err_str(rc));
    rc = client_dev_server_key(rd->d);
    REQUIRE(rc == 0, "server key: %s", err_str(rc));
    REQUIRE(memcmp(rd->d->server_key, W->server_key, 32) == 0, "server key differs");
    rc = client_thread_kp_stock(rd->d, NULL);
    REQUIRE(rc == 0, "kp stock: %s (%s %s)", err_str(rc), rd->d->err_code, rd->d->err_msg);
    rd->live = true;
    return (size_t)di;
}

static void dev_close(size_t d)
{
    struct rdev *rd = &W->devs[d];
    client_dev_free(rd->d);
    rd->d = NULL;
    client_conn_free(rd->c);
    rd->c = NULL;
    sodium_memzero(rd->seed, sizeof(rd->seed));
    rd->live = false;
}

/* ---- what the server says --------------------------------------------------------- */

/* Adds "identity/device" from an MLS roster entry to s. */
static void roster_add(struct em_set *s, const struct mls_roster_entry *e)
{
    char key[EM_KEY_MAX];
    REQUIRE(e->identity_len < sizeof(key), "roster identity too long");
    memcpy(key, e->identity, e->identity_len);
    key[e->identity_len] = '\0';
    REQUIRE(em_set_add(s, key), "roster set full");
}

/* thread.state of thread t: epoch, the roster of the server's ratchet tree
 * and of its latest accepted GroupInfo (checked by a follower). */
static void server_state(size_t t, uint64_t *epoch, struct em_set *tree_roster,
                         struct em_set *gi_roster)
{
    struct client_frame r;
    struct arg a[] = {{.key = "thread", .str = W->m->threads[t].id}};
    const uint8_t *tree, *gi;
    size_t tl, gl, n = 0;
    struct mls_tree *mt = NULL;
    struct mls_follower *f = NULL;
    struct mls_roster_entry ro[EM_SET_MAX];
    int rc;

    call_ok(W->devs[W->anchor].c, "thread.state", a, 1, &r);
    REQUIRE(wire_get_uint(&r.msg.body, "epoch", epoch) == 0, "thread.state: no epoch");
    REQUIRE(wire_get_bin(&r.msg.body, "tree", &tree, &tl) == 0, "thread.state: no tree");
    rc = mls_tree_decode(tree, tl, &mt);
    REQUIRE(rc == 0, "thread.state tree: %s", err_str(rc));
    rc = mls_tree_roster(mt, ro, EM_SET_MAX, &n);
    REQUIRE(rc == 0, "tree roster: %s", err_str(rc));
    em_set_clear(tree_roster);
    for (size_t i = 0; i < n; i++)
        roster_add(tree_roster, &ro[i]);
    mls_tree_free(mt);
    if (gi_roster) {
        REQUIRE(wire_get_bin(&r.msg.body, "group_info", &gi, &gl) == 0,
                "thread.state: no group_info");
        rc = mls_follower_new(gi, gl, NULL, 0, &f);
        REQUIRE(rc == 0, "thread.state group_info does not verify: %s", err_str(rc));
        REQUIRE(mls_follower_epoch(f) == *epoch, "group_info epoch %llu, thread epoch %llu",
                (unsigned long long)mls_follower_epoch(f), (unsigned long long)*epoch);
        rc = mls_follower_roster(f, ro, EM_SET_MAX, &n);
        REQUIRE(rc == 0, "group_info roster: %s", err_str(rc));
        em_set_clear(gi_roster);
        for (size_t i = 0; i < n; i++)
            roster_add(gi_roster, &ro[i]);
        mls_follower_free(f);
    }
    client_frame_free(&r);
}

/* The key of device id dev as the model knows it (or "?/dev"). */
static void key_of_device(const char *dev, char key[EM_KEY_MAX])
{
    int d = em_find_device(W->m, dev);
    if (d >= 0)
        dev_key((size_t)d, key);
    else
        snprintf(key, EM_KEY_MAX, "?/%.60s", dev);
}

static void str_list(const struct wire_array *a, struct em_set *s)
{
    em_set_clear(s);
    for (uint32_t i = 0; i < a->n; i++) {
        const char *p;
        size_t l;
        char dev[EM_DEV_MAX + 8], key[EM_KEY_MAX];
        REQUIRE(wire_array_str(a, i, &p, &l) == 0 && l < sizeof(dev), "bad device string");
        memcpy(dev, p, l);
        dev[l] = '\0';
        key_of_device(dev, key);
        REQUIRE(em_set_add(s, key), "set full");
    }
}

/* thread.members of t: the member devices (with each basis checked against
 * the model at now when check_basis), pending removals and adds. */
static void server_members(size_t t, uint64_t now, bool check_basis, struct em_set *members,
                           struct em_set *removal, struct em_set *add)
{
    struct client_frame r;
    struct arg a[] = {{.key = "thread", .str = W->m->threads[t].id}};
    struct wire_array ma, pa;

    call_ok(W->devs[W->anchor].c, "thread.members", a, 1, &r);
    REQUIRE(wire_get_array(&r.msg.body, "members", &ma) == 0, "thread.members: no members");
    em_set_clear(members);
    for (uint32_t i = 0; i < ma.n; i++) {
        struct wire_map mm;
        struct wire_array da;
        char who[EM_NAME_MAX], basis[64];
        REQUIRE(wire_array_map(&ma, i, &mm) == 0 &&
                    wire_get_cstr(&mm, "id", who, sizeof(who)) == 0 &&
                    wire_get_cstr(&mm, "grant", basis, sizeof(basis)) == 0 &&
                    wire_get_array(&mm, "devices", &da) == 0,
                "thread.members: bad member entry");
        int ident = em_find_identity(W->m, who);
        REQUIRE(ident >= 0, "thread.members lists unknown identity %s", who);
        if (check_basis)
            REQUIRE(em_basis_valid(W->m, (size_t)ident, t, now, basis),
                    "thread %zu: %s is listed with basis %s, which the model does not accept", t,
                    who, basis);
        for (uint32_t j = 0; j < da.n; j++) {
            const char *p;
            size_t l;
            char key[EM_KEY_MAX];
            REQUIRE(wire_array_str(&da, j, &p, &l) == 0 && l < 40, "bad device string");
            snprintf(key, sizeof(key), "%s/%.*s", who, (int)l, p);
            REQUIRE(em_set_add(members, key), "set full");
        }
    }
    REQUIRE(wire_get_array(&r.msg.body, "pending_removal", &pa) == 0, "no pending_removal");
    str_list(&pa, removal);
    REQUIRE(wire_get_array(&r.msg.body, "pending_add", &pa) == 0, "no pending_add");
    str_list(&pa, add);
    client_frame_free(&r);
}

/* Requires want == got, naming what differs. */
static void same_set(const struct em_set *want, const struct em_set *got, const char *what)
{
    char why[2048];
    size_t diff = em_set_compare(want, got, why, sizeof(why));
    REQUIRE(diff == 0, "%s: %zu differences: %s", what, diff, why);
}

/* ---- a member's MLS state, without the sync engine ------------------------------------ */

/* Loads device d's stored group of thread t (the client engine's "group"
 * record), or NULL when it has none. */
static struct mls_group *group_of(size_t d, size_t t)
{
    uint8_t *b = NULL;
    size_t len = 0;
    struct mls_group *g = NULL;
    int rc = client_state_get(W->devs[d].d->st, "group", W->m->threads[t].id, &b, &len);
    if (rc == ERR_NOT_FOUND)
        return NULL;
    REQUIRE(rc == 0, "state get group: %s", err_str(rc));
    rc = mls_group_load(b, len, MLS_GROUP_F_PLAIN_MEMORY, &g);
    sodium_memzero(b, len);
    free(b);
    REQUIRE(rc == 0, "group load: %s", err_str(rc));
    return g;
}

/* Sends text as an application message of thread t from device d right
 * now, without syncing first (client_thread_send syncs, which would commit
 * the pending proposals before we could look): as the engine does, the
 * group is saved after encrypting and before sending. Returns 0 or the
 * error; code gets the server's error code. */
static int raw_send(size_t d, size_t t, const char *text, uint64_t *message, uint64_t *devices,
                    char *code, size_t cap)
{
    struct mls_group *g = group_of(d, t);
    uint8_t *ct = NULL, *b = NULL;
    size_t cl = 0, bl = 0;
    struct client_frame r;
    const char *thread = W->m->threads[t].id;
    int rc;

    REQUIRE(g != NULL, "sender has no group for %s", thread);
    rc = mls_group_encrypt(g, (const uint8_t *)text, strlen(text), NULL, 0, &ct, &cl);
    REQUIRE(rc == 0, "encrypt: %s", err_str(rc));
    rc = mls_group_save(g, &b, &bl);
    REQUIRE(rc == 0, "save: %s", err_str(rc));
    rc = client_state_put(W->devs[d].d->st, "group", thread, thread, 0, 0, b, bl);
    REQUIRE(rc == 0, "state put: %s", err_str(rc));
    sodium_memzero(b, bl);
    free(b);
    mls_group_free(g);
    struct arg a[] = {{.key = "thread", .str = thread}, {.key = "msg", .bin = ct, .len = cl}};
    rc = call(W->devs[d].c, "thread.send", a, 2, &r);
    free(ct);
    code[0] = '\0';
    if (rc == 0) {
        REQUIRE(wire_get_uint(&r.msg.body, "message", message) == 0 &&
                    wire_get_uint(&r.msg.body, "devices", devices) == 0,
                "thread.send: no message/devices");
    } else {
        REQUIRE(r.buf != NULL, "thread.send: no answer (%s)", err_str(rc));
        size_t nl = strnlen(r.msg.name, cap - 1);
        memcpy(code, r.msg.name, nl);
        code[nl] = '\0';
    }
    client_frame_free(&r);
    return rc;
}

/* ---- checks ------------------------------------------------------------------------- */

/* Never more, at the inbox: a device the model does not entitle to a thread
 * has nothing of that thread waiting (but a `removed` notice) right after a
 * step. Everything before the step was synced and acknowledged while
 * settling, so anything here was queued by the step itself. The inbox is
 * read with a plain `sync` after the engine's cursor, without acknowledging
 * or touching the device's state. */
static void check_inboxes(uint64_t now)
{
    struct em_set *ent = malloc(sizeof(*ent) * EM_MAX_THREADS);
    assert_non_null(ent);
    for (size_t t = 0; t < W->m->nthreads; t++)
        em_entitled(W->m, t, now, &ent[t]);
    for (size_t d = 0; d < W->m->ndevs; d++) {
        char key[EM_KEY_MAX];
        bool outside = false;
        if (!W->devs[d].live)
            continue;
        dev_key(d, key);
        for (size_t t = 0; t < W->m->nthreads; t++)
            outside |= !em_set_has(&ent[t], key);
        if (!outside)
            continue;
        uint64_t cursor = 0;
        int rc = client_state_get_u64(W->devs[d].d->st, "meta", "cursor", 0, &cursor);
        REQUIRE(rc == 0, "cursor of %s: %s", key, err_str(rc));
        struct client_frame r;
        struct wire_array arr;
        struct arg a[] = {{.key = "after", .is_uint = true, .u = cursor},
                          {.key = "limit", .is_uint = true, .u = 500}};
        call_ok(W->devs[d].c, "sync", a, 2, &r);
        REQUIRE(wire_get_array(&r.msg.body, "entries", &arr) == 0, "sync: no entries");
        for (uint32_t i = 0; i < arr.n; i++) {
            struct wire_map m;
            char kind[16], th[48];
            uint64_t msg = 0;
            REQUIRE(wire_array_map(&arr, i, &m) == 0 &&
                        wire_get_cstr(&m, "kind", kind, sizeof(kind)) == 0 &&
                        wire_get_cstr(&m, "thread", th, sizeof(th)) == 0,
                    "sync: bad entry");
            (void)wire_get_uint(&m, "message", &msg);
            for (size_t t = 0; t < W->m->nthreads; t++)
                REQUIRE(strcmp(th, W->m->threads[t].id) != 0 || em_set_has(&ent[t], key) ||
                            strcmp(kind, "notice") == 0,
                        "%s is not entitled to thread %zu, yet the server queued a %s entry "
                        "(message %llu) of it for this device after the step",
                        key, t, kind, (unsigned long long)msg);
        }
        client_frame_free(&r);
    }
    free(ent);
}

/* Right after a step, before any device has synced. */
static void check_immediate(void)
{
    uint64_t now = server_now();
    for (size_t t = 0; t < W->m->nthreads; t++) {
        struct em_set *ent = malloc(sizeof(*ent)), *roster = malloc(sizeof(*roster)),
                      *members = malloc(sizeof(*members)), *removal = malloc(sizeof(*removal)),
                      *add = malloc(sizeof(*add)), *want = malloc(sizeof(*want));
        assert_true(ent && roster && members && removal && add && want);
        uint64_t epoch;
        char what[128];

        em_entitled(W->m, t, now, ent);
        server_state(t, &epoch, roster, NULL);
        snprintf(what, sizeof(what), "thread %zu right after the step: server roster vs. last settled roster", t);
        same_set(&W->roster[t], roster, what);
        server_members(t, now, false, members, removal, add);
        snprintf(what, sizeof(what), "thread %zu: thread.members devices vs. the ratchet tree", t);
        same_set(roster, members, what);
        /* never more: every roster device that lost entitlement is being
         * removed (and so gets nothing more), and no other */
        em_set_minus(roster, ent, want);
        snprintf(what, sizeof(what), "thread %zu: pending_removal vs. roster minus entitled", t);
        same_set(want, removal, what);
        em_set_minus(ent, roster, want);
        snprintf(what, sizeof(what), "thread %zu: pending_add vs. entitled minus roster", t);
        same_set(want, add, what);

        /* a probe from a member that stays */
        size_t cand[EM_MAX_DEVS], nc = 0;
        for (size_t d = 0; d < W->m->ndevs; d++) {
            char key[EM_KEY_MAX];
            if (!W->devs[d].live)
                continue;
            dev_key(d, key);
            if (em_set_has(roster, key) && em_set_has(ent, key))
                cand[nc++] = d;
        }
        REQUIRE(nc > 0, "thread %zu: no member left to send from", t);
        size_t s = cand[rnd(nc)];
        struct probe *p = &W->probes[W->nprobes];
        memset(p, 0, sizeof(*p));
        snprintf(p->text, sizeof(p->text), "probe %llu seed %llu",
                 (unsigned long long)++W->probe_no, (unsigned long long)W->seed);
        uint64_t message = 0, devices = 0;
        char code[64];
        int rc = raw_send(s, t, p->text, &message, &devices, code, sizeof(code));
        if (removal->n > 0) {
            REQUIRE(rc != 0 && strcmp(code, "state") == 0,
                    "thread %zu: a send while %zu removal(s) are pending was %s", t, removal->n,
                    rc == 0 ? "accepted" : code);
            W->n_refused_sends++;
        } else {
            REQUIRE(rc == 0, "thread %zu: send refused: %s", t, code);
            REQUIRE(devices + 1 == roster->n,
                    "thread %zu: message queued for %llu devices, roster has %zu (incl. sender)", t,
                    (unsigned long long)devices, roster->n);
            p->thread = t;
            p->message = message;
            p->sender = s;
            for (size_t d = 0; d < W->m->ndevs; d++) {
                char key[EM_KEY_MAX];
                dev_key(d, key);
                p->to[d] = d != s && em_set_has(roster, key);
            }
            W->nprobes++;
            W->n_probes++;
        }
        free(ent);
        free(roster);
        free(members);
        free(removal);
        free(add);
        free(want);
    }
    check_inboxes(now);
}

/* Every live device syncs until nothing new can be waiting. Only a commit
 * or a KeyPackage upload (the server then reconciles) makes new inbox
 * entries, so after a round whose last such event came from the device at
 * position p, the devices after p have seen everything and only those up
 * to p sync again. (Should this ever stop too early, the settled checks
 * fail: every member must be at the server's epoch.) */
static void settle(void)
{
    size_t order[EM_MAX_DEVS], n = 0;
    uint64_t now = server_now();
    struct em_set *ent = malloc(sizeof(*ent) * EM_MAX_THREADS);
    assert_non_null(ent);
    for (size_t t = 0; t < W->m->nthreads; t++)
        em_entitled(W->m, t, now, &ent[t]);
    /* Devices outside every thread (not entitled, not in a roster before
     * the step) can get nothing but `removed` notices: they need not sync.
     * Should the server queue them anything else, the inbox check of the
     * next step (check_inboxes) finds it. */
    for (size_t d = 0; d < W->m->ndevs; d++) {
        char key[EM_KEY_MAX];
        bool inside = false;
        if (!W->devs[d].live)
            continue;
        dev_key(d, key);
        for (size_t t = 0; t < W->m->nthreads && !inside; t++)
            inside = em_set_has(&ent[t], key) || em_set_has(&W->roster[t], key);
        if (inside)
            order[n++] = d;
    }
    free(ent);
    for (size_t i = n; i > 1; i--) { /* shuffle: anyone may commit first */
        size_t j = rnd(i), tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
    for (int round = 0; n > 0; round++) {
        size_t last = 0;
        bool any = false;
        REQUIRE(round < MAX_SETTLE_ROUNDS, "no quiescence after %d sync rounds", round);
        for (size_t i = 0; i < n; i++) {
            struct rdev *rd = &W->devs[order[i]];
            struct client_sync_stats st;
            char key[EM_KEY_MAX];
            unsigned up = 0;
            int rc = client_thread_sync(rd->d, &st);
            dev_key(order[i], key);
            REQUIRE(rc == 0, "sync of %s: %s (%s %s)", key, err_str(rc), rd->d->err_code,
                    rd->d->err_msg);
            REQUIRE(st.failed == 0, "sync of %s: %u entries failed", key, st.failed);
            /* an honest server's proposals are all well-formed: a device
             * refusing to commit them is a bug on one side */
            REQUIRE(st.refused == 0, "sync of %s: refused to commit the proposals: %s", key,
                    rd->d->err_msg);
            W->n_commits += st.commits;
            W->n_welcomes += st.welcomes;
            if (st.welcomes) {
                /* as every CLI operation does: keep the KeyPackage stock */
                rc = client_thread_kp_stock(rd->d, &up);
                REQUIRE(rc == 0, "kp stock of %s: %s", key, err_str(rc));
            }
            if (st.commits || up) {
                last = i;
                any = true;
            }
        }
        if (!any)
            break;
        n = last + 1;
    }
}

struct hist_walk {
    size_t dev;
    size_t thread;
    uint64_t last;
};

static int hist_cb(const struct client_msg *cm, void *user)
{
    struct hist_walk *hw = user;
    char key[EM_KEY_MAX];
    dev_key(hw->dev, key);
    if (cm->message > hw->last)
        hw->last = cm->message;
    struct probe *p = NULL;
    for (size_t i = 0; i < W->nprobes; i++)
        if (W->probes[i].thread == hw->thread && W->probes[i].message == cm->message)
            p = &W->probes[i];
    REQUIRE(p != NULL, "%s holds message %llu of thread %zu, which is no probe of this step",
            key, (unsigned long long)cm->message, hw->thread);
    REQUIRE(p->to[hw->dev], "%s received probe %llu of thread %zu, not meant for it (%s)", key,
            (unsigned long long)cm->message, hw->thread, cm->error ? cm->error : "decrypted");
    REQUIRE(cm->error == NULL, "%s could not read probe %llu: %s", key,
            (unsigned long long)cm->message, cm->error);
    REQUIRE(cm->text_len == strlen(p->text) && memcmp(cm->text, p->text, cm->text_len) == 0,
            "%s read a different text for probe %llu", key, (unsigned long long)cm->message);
    p->got[hw->dev] = true;
    return 0;
}

/* After settling: every roster equals the model's entitled devices. */
static void check_settled(void)
{
    uint64_t now = server_now();
    for (size_t t = 0; t < W->m->nthreads; t++) {
        struct em_set *ent = malloc(sizeof(*ent)), *roster = malloc(sizeof(*roster)),
                      *gir = malloc(sizeof(*gir)), *members = malloc(sizeof(*members)),
                      *removal = malloc(sizeof(*removal)), *add = malloc(sizeof(*add)),
                      *mine = malloc(sizeof(*mine));
        assert_true(ent && roster && gir && members && removal && add && mine);
        uint64_t epoch;
        char what[EM_KEY_MAX + 128];
        uint8_t auth0[CRYPTO_HASH_LEN];
        bool have_auth = false;
        size_t nmembers = 0;

        em_entitled(W->m, t, now, ent);
        server_state(t, &epoch, roster, gir);
        snprintf(what, sizeof(what), "thread %zu settled: the server's ratchet tree vs. the model", t);
        same_set(ent, roster, what);
        snprintf(what, sizeof(what), "thread %zu settled: the last GroupInfo vs. the model", t);
        same_set(ent, gir, what);
        if (!W->self_checked) {
            /* the comparison must be able to fail: a wrong expectation (one
             * entitled device dropped, one stranger added) is reported */
            char why[512];
            struct em_set *wrong = malloc(sizeof(*wrong));
            assert_non_null(wrong);
            *wrong = *ent;
            REQUIRE(wrong->n > 1, "self-check needs a thread with two members");
            memmove(wrong->v[0], wrong->v[1], (wrong->n - 1) * sizeof(wrong->v[0]));
            wrong->n--;
            REQUIRE(em_set_compare(wrong, roster, why, sizeof(why)) == 1,
                    "self-check: a missing device was not reported");
            REQUIRE(strstr(why, "extra: ") != NULL, "self-check: %s", why);
            REQUIRE(em_set_add(wrong, "nobody@" DOMAIN "/d_0000000000000000"),
                    "self-check: set full");
            REQUIRE(em_set_compare(wrong, roster, why, sizeof(why)) == 2,
                    "self-check: a stranger was not reported");
            REQUIRE(strstr(why, "missing: nobody@") != NULL, "self-check: %s", why);
            REQUIRE(!em_basis_valid(W->m, (size_t)W->m->citizen, t, now, "proxy") &&
                        !em_basis_valid(W->m, 0, t, now, "g_0000000000000000"),
                    "self-check: the model accepts a bogus basis");
            free(wrong);
            fprintf(stderr, "self-check: wrong expectations are reported as mismatches\n");
        }
        server_members(t, now, true, members, removal, add);
        snprintf(what, sizeof(what), "thread %zu settled: thread.members vs. the model", t);
        same_set(ent, members, what);
        REQUIRE(removal->n == 0 && add->n == 0,
                "thread %zu settled: %zu removals and %zu adds still pending", t, removal->n,
                add->n);
        /* each live device's own MLS state */
        for (size_t d = 0; d < W->m->ndevs; d++) {
            char key[EM_KEY_MAX];
            if (!W->devs[d].live)
                continue;
            dev_key(d, key);
            struct mls_group *g = group_of(d, t);
            if (!em_set_has(ent, key)) {
                REQUIRE(g == NULL || mls_group_epoch(g) < epoch,
                        "%s is not entitled to thread %zu but holds its epoch %llu", key, t,
                        (unsigned long long)epoch);
                mls_group_free(g);
                continue;
            }
            REQUIRE(g != NULL, "%s is entitled to thread %zu but has no group state", key, t);
            REQUIRE(mls_group_epoch(g) == epoch, "%s is at epoch %llu of thread %zu, server %llu",
                    key, (unsigned long long)mls_group_epoch(g), t, (unsigned long long)epoch);
            uint8_t auth[CRYPTO_HASH_LEN];
            REQUIRE(mls_group_epoch_authenticator(g, auth) == 0, "epoch authenticator");
            if (!have_auth) {
                memcpy(auth0, auth, sizeof(auth0));
                have_auth = true;
            } else {
                REQUIRE(memcmp(auth0, auth, sizeof(auth)) == 0,
                        "%s disagrees on thread %zu's epoch authenticator", key, t);
            }
            /* the roster this member's MLS state holds */
            struct mls_roster_entry ro[EM_SET_MAX];
            size_t nr = 0;
            REQUIRE(mls_group_roster(g, ro, EM_SET_MAX, &nr) == 0, "roster of %s", key);
            em_set_clear(mine);
            for (size_t i = 0; i < nr; i++)
                roster_add(mine, &ro[i]);
            mls_group_free(g);
            snprintf(what, sizeof(what), "thread %zu settled: MLS roster of %s vs. the model", t,
                     key);
            same_set(ent, mine, what);
            nmembers++;
            if (rnd(nmembers) != 0)
                continue;
            /* and as the client library shows it (the first member, then each
             * with falling odds; the credential-to-key binding checked) */
            struct client_roster_dev *rd = NULL;
            int rc = client_thread_roster(W->devs[d].d, W->m->threads[t].id, &rd, &nr);
            REQUIRE(rc == 0, "roster of %s: %s", key, err_str(rc));
            em_set_clear(mine);
            for (size_t i = 0; i < nr; i++) {
                char k2[CLIENT_ID_MAX + 32];
                REQUIRE(rd[i].bound, "%s: leaf %s/%s does not bind its key", key,
                        rd[i].identity, rd[i].device);
                snprintf(k2, sizeof(k2), "%s/%s", rd[i].identity, rd[i].device);
                REQUIRE(em_set_add(mine, k2), "set full");
            }
            free(rd);
            snprintf(what, sizeof(what),
                     "thread %zu settled: client_thread_roster of %s vs. the model", t, key);
            same_set(ent, mine, what);
        }
        W->roster[t] = *ent;
        free(ent);
        free(roster);
        free(gir);
        free(members);
        free(removal);
        free(add);
        free(mine);
    }
    W->self_checked = true;
    /* probes: decrypted by every recipient, held by nobody else */
    for (size_t d = 0; d < W->m->ndevs; d++) {
        if (!W->devs[d].live)
            continue;
        for (size_t t = 0; t < W->m->nthreads; t++) {
            struct hist_walk hw = {d, t, W->devs[d].checked[t]};
            int rc = client_thread_history(W->devs[d].d, W->m->threads[t].id,
                                           W->devs[d].checked[t], hist_cb, &hw);
            REQUIRE(rc == 0, "history: %s", err_str(rc));
            W->devs[d].checked[t] = hw.last;
        }
    }
    for (size_t i = 0; i < W->nprobes; i++) {
        struct probe *p = &W->probes[i];
        for (size_t d = 0; d < W->m->ndevs; d++) {
            char key[EM_KEY_MAX];
            dev_key(d, key);
            REQUIRE(!p->to[d] || !W->devs[d].live || p->got[d],
                    "%s never received probe %llu of thread %zu", key,
                    (unsigned long long)p->message, p->thread);
        }
    }
    W->nprobes = 0;
}

/* ---- steps ------------------------------------------------------------------------- */

enum {
    OP_GRANT,
    OP_REVOKE,
    OP_EXPIRE,
    OP_ASSIGN,
    OP_UNASSIGN,
    OP_LINK,
    OP_REVOKE_DEVICE,
    OP_PROXY,
    OP_BREAKGLASS
};
#define NOPS 9

static const char *scope_str(int scope, char *buf, size_t cap)
{
    if (scope == EM_S_CARE)
        return "care";
    if (scope == EM_S_COORDINATION)
        return "coordination";
    snprintf(buf, cap, "thread:%s", W->m->threads[scope - EM_S_THREAD].id);
    return buf;
}

static void grantee_str(int kind, int target, char *buf, size_t cap)
{
    if (kind == EM_G_PERSON)
        snprintf(buf, cap, "%s", W->m->ids[target].id);
    else if (kind == EM_G_DEPARTMENT)
        snprintf(buf, cap, "department:%s@%s", W->m->depts[target], DOMAIN);
    else
        snprintf(buf, cap, "association:%s@%s", W->m->assocs[target], DOMAIN);
}

/* The device that signs consent this step: the citizen's anchor device,
 * or now and then a live device of an active proxy (form 2). */
static size_t pick_signer(void)
{
    size_t cand[EM_MAX_DEVS], n = 0;
    for (size_t d = 0; d < W->m->ndevs; d++)
        if (W->devs[d].live && W->m->ids[W->m->devs[d].ident].proxy_active)
            cand[n++] = d;
    if (n == 0 || rnd(3) != 0)
        return W->anchor;
    return cand[rnd(n)];
}

/* Signs a grant of the citizen on device `by` (the citizen's: form 1, a
 * proxy's: form 2). *tbs malloc'd. */
static void sign_grant(size_t by, const char *grantee, const char *scope, uint64_t expires,
                       uint8_t **tbs, size_t *len, uint8_t sig[64],
                       char gid[MSG_GRANT_GID_LEN + 1])
{
    struct msg_grant *g = malloc(sizeof(*g));
    const char *granter = W->m->ids[W->m->devs[by].ident].id;
    assert_non_null(g);
    msg_grant_init(g);
    snprintf(g->citizen, sizeof(g->citizen), "%s", W->m->ids[W->m->citizen].id);
    snprintf(g->grantee, sizeof(g->grantee), "%s", grantee);
    snprintf(g->scope, sizeof(g->scope), "%s", scope);
    snprintf(g->basis, sizeof(g->basis), "consent");
    snprintf(g->purpose, sizeof(g->purpose), "randomized entitlement test");
    g->issued_at = server_now(); /* the server checks +-1 day of ITS clock */
    g->expires_at = expires;
    g->form = by == W->anchor ? MSG_GRANT_FORM_CITIZEN : MSG_GRANT_FORM_PROXY;
    snprintf(g->granter, sizeof(g->granter), "%s", granter);
    snprintf(g->granter_device, sizeof(g->granter_device), "%s", W->m->devs[by].dev);
    int rc = client_consent_sign_grant(g, W->devs[by].seed, tbs, len, sig, gid);
    free(g);
    REQUIRE(rc == 0, "sign grant: %s", err_str(rc));
}

static void op_grant(size_t step)
{
    int kind, target, scope;
    size_t r = rnd(10);
    char grantee[EM_NAME_MAX + 32], sbuf[64], gid[MSG_GRANT_GID_LEN + 1], got[32];
    if (r < 5) {
        kind = EM_G_PERSON;
        do
            target = (int)rnd(W->m->nids);
        while (target == W->m->citizen);
    } else if (r < 8) {
        kind = EM_G_DEPARTMENT;
        target = (int)rnd(W->m->ndepts);
    } else {
        kind = EM_G_ASSOCIATION;
        target = (int)rnd(W->m->nassocs);
    }
    r = rnd(5);
    scope = r < 2 ? EM_S_CARE : r < 4 ? EM_S_COORDINATION
                                      : EM_S_THREAD + (int)rnd(W->m->nthreads);
    /* expiries on a 10-minute boundary, 50 minutes to 9 hours ahead: the
     * expire step shifts the clock to 5 minutes past one, so no expiry is
     * within minutes of the server's clock when the model and the server
     * are compared (the server's sweep runs once a second) */
    uint64_t expires = 0;
    if (rnd(2)) {
        expires = server_now() + 3600 + 60 * rnd(8 * 60);
        expires -= expires % EXPIRY_GRAIN;
    }
    grantee_str(kind, target, grantee, sizeof(grantee));
    uint8_t *tbs = NULL, sig[64];
    size_t len;
    const char *sc = scope_str(scope, sbuf, sizeof(sbuf));
    size_t by = pick_signer();
    sign_grant(by, grantee, sc, expires, &tbs, &len, sig, gid);
    struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len}, {.key = "sig", .bin = sig, .len = 64}};
    struct client_frame fr;
    note("%zu: grant %s to %s scope %s expires %s, signed by %s", step, gid, grantee, sc,
         expires ? "set" : "never", W->m->ids[W->m->devs[by].ident].id);
    call_ok(W->devs[by].c, "consent.grant", a, 2, &fr);
    free(tbs);
    REQUIRE(wire_get_cstr(&fr.msg.body, "grant", got, sizeof(got)) == 0 && strcmp(got, gid) == 0,
            "consent.grant answered another grant id");
    client_frame_free(&fr);
    REQUIRE(em_add_grant(W->m, gid, kind, target, scope, expires) >= 0, "model: grants full");
}

static void op_revoke(size_t step)
{
    size_t n = 0, g = 0;
    uint64_t now = server_now();
    for (size_t k = 0; k < W->m->ngrants; k++) /* one active grant, uniformly */
        if (em_grant_active(W->m, k, now) && rnd(++n) == 0)
            g = k;
    if (n == 0) {
        op_grant(step);
        return;
    }
    uint8_t *tbs = NULL, sig[64];
    size_t len;
    size_t by = pick_signer();
    int rc = client_consent_sign_revocation(W->m->grants[g].gid,
                                            W->m->ids[W->m->devs[by].ident].id,
                                            W->m->devs[by].dev, now, W->devs[by].seed, &tbs,
                                            &len, sig);
    REQUIRE(rc == 0, "sign revocation: %s", err_str(rc));
    note("%zu: revoke %s, signed by %s", step, W->m->grants[g].gid,
         W->m->ids[W->m->devs[by].ident].id);
    struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len}, {.key = "sig", .bin = sig, .len = 64}};
    call_ok_free(W->devs[by].c, "consent.revoke", a, 2);
    free(tbs);
    W->m->grants[g].revoked = true;
}

static void shift_clock(int64_t by)
{
    struct wire_enc e;
    struct client_frame r;
    uint32_t id = client_conn_next_id(W->admin);
    int64_t off;
    wire_enc_init(&e);
    wire_enc_request(&e, id, "test.clock_shift", 1);
    wire_enc_key(&e, "seconds");
    wire_enc_int(&e, by);
    int rc = client_sync_call(W->admin, id, &e, TIMEOUT, &r);
    wire_enc_reset(&e);
    REQUIRE(rc == 0, "test.clock_shift: %s", err_str(rc));
    REQUIRE(wire_get_int(&r.msg.body, "offset", &off) == 0, "test.clock_shift: no offset");
    client_frame_free(&r);
    W->offset = off;
    /* the expiry sweep runs between two requests: this one follows it */
    call_ok_free(W->admin, "ping", NULL, 0);
}

/* The middle of the grain slot after t: every shift of the expire step
 * lands there, so it is minutes away from any grant expiry (on the grain)
 * and any break-glass expiry (a few seconds past the grain, see
 * op_breakglass). */
static uint64_t slot_middle_after(uint64_t t)
{
    uint64_t base = t - t % EXPIRY_GRAIN;
    return t % EXPIRY_GRAIN < EXPIRY_GRAIN / 2 ? base + EXPIRY_GRAIN / 2
                                               : base + EXPIRY_GRAIN + EXPIRY_GRAIN / 2;
}

static void op_expire(size_t step)
{
    size_t n = 0;
    uint64_t now = server_now(), first = 0, pick = 0;
    const char *what = "";
    char label[64];
    /* mostly the next expiry of a grant or break-glass access (keeps the
     * total shift small: KeyPackages and the offline limit follow the
     * server's clock too), sometimes a later one, which ends everything
     * expiring before it at once */
    for (size_t k = 0; k < W->m->ngrants; k++) {
        uint64_t x = W->m->grants[k].expires;
        if (!em_grant_active(W->m, k, now) || !x)
            continue;
        if (n == 0 || x < first)
            first = x;
        if (rnd(++n) == 0) {
            pick = x;
            what = W->m->grants[k].gid;
        }
    }
    for (size_t b = 0; b < W->m->nbgs; b++) {
        uint64_t x = W->m->bgs[b].expires;
        if (x <= now)
            continue;
        if (n == 0 || x < first)
            first = x;
        if (rnd(++n) == 0) {
            pick = x;
            what = "a break-glass access";
        }
    }
    if (n == 0) {
        uint64_t target = slot_middle_after(now + 1);
        note("%zu: expire: nothing to expire; clock +%llu s", step,
             (unsigned long long)(target - now));
        shift_clock((int64_t)(target - now));
        return;
    }
    if (rnd(4) != 0) {
        pick = first;
        snprintf(label, sizeof(label), "the next expiry");
        what = label;
    }
    uint64_t target = slot_middle_after(pick);
    note("%zu: expire %s: clock +%llu s", step, what, (unsigned long long)(target - now));
    shift_clock((int64_t)(target - now));
}

/* Staff open a break-glass access to a thread. The clock first moves to
 * just past a grain boundary with no break-glass expiry near it, so the
 * access ends a few seconds past a boundary: far from where the expire
 * step puts the clock. */
static void op_breakglass(size_t step)
{
    size_t cand[EM_MAX_DEVS], n = 0;
    uint64_t now = server_now();
    for (size_t d = 0; d < W->m->ndevs; d++)
        if (W->devs[d].live && W->m->ids[W->m->devs[d].ident].role == EM_STAFF)
            cand[n++] = d;
    REQUIRE(n > 0, "no staff device left");
    size_t by = cand[rnd(n)];
    int ident = W->m->devs[by].ident;
    size_t t = rnd(W->m->nthreads);
    if (em_breakglass_active(W->m, (size_t)ident, t, now)) {
        op_grant(step);
        return;
    }
    uint64_t target = now - now % EXPIRY_GRAIN + EXPIRY_GRAIN + 5;
    for (bool clash = true; clash;) {
        clash = false;
        for (size_t b = 0; b < W->m->nbgs; b++)
            if (W->m->bgs[b].expires + 10 >= target && W->m->bgs[b].expires <= target + 60)
                clash = true;
        if (clash)
            target += EXPIRY_GRAIN;
    }
    uint64_t hours = 1 + rnd(3);
    note("%zu: break-glass by %s into thread %zu for %llu h (clock +%llu s first)", step,
         W->m->ids[ident].id, t, (unsigned long long)hours,
         (unsigned long long)(target - now));
    shift_clock((int64_t)(target - now));
    /* The shift may pass a grant's expiry: check and settle that change on its
     * own, so the break-glass below is one transition (a Remove already
     * proposed for a device that break-glass then re-entitles stays pending
     * until committed; the device is added back afterwards). */
    check_immediate();
    settle();
    check_settled();
    /* a BreakglassTBS signed on the staff device with the server's time */
    struct msg_breakglass *b = calloc(1, sizeof(*b));
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    REQUIRE(b != NULL, "out of memory");
    msg_breakglass_init(b);
    snprintf(b->citizen, sizeof(b->citizen), "%s", W->m->ids[W->m->citizen].id);
    REQUIRE(strlen(W->m->threads[t].id) < sizeof(b->thread), "thread id too long");
    memcpy(b->thread, W->m->threads[t].id, strlen(W->m->threads[t].id) + 1);
    snprintf(b->staff, sizeof(b->staff), "%s", W->m->ids[W->m->devs[by].ident].id);
    snprintf(b->staff_device, sizeof(b->staff_device), "%s", W->m->devs[by].dev);
    snprintf(b->reason, sizeof(b->reason), "randomized test: no answer at the door");
    b->opened_at = server_now();
    b->hours = (uint16_t)hours;
    REQUIRE(msg_breakglass_encode(b, &tbs, &tl) == 0, "breakglass encode");
    REQUIRE(msg_breakglass_sign(W->devs[by].seed, tbs, tl, sig) == 0, "breakglass sign");
    free(b);
    struct arg a[] = {{.key = "tbs", .bin = tbs, .len = tl}, {.key = "sig", .bin = sig, .len = 64}};
    struct client_frame r;
    uint64_t expires;
    call_ok(W->devs[by].c, "breakglass.open", a, 2, &r);
    free(tbs);
    REQUIRE(wire_get_uint(&r.msg.body, "expires", &expires) == 0, "breakglass.open: no expires");
    client_frame_free(&r);
    uint64_t after = server_now();
    REQUIRE(expires >= target + hours * 3600 && expires <= after + hours * 3600 + 1,
            "break-glass expires at %llu, opened between %llu and %llu for %llu h",
            (unsigned long long)expires, (unsigned long long)target, (unsigned long long)after,
            (unsigned long long)hours);
    REQUIRE(em_add_breakglass(W->m, ident, (int)t, expires) >= 0, "model: break-glass full");
}

static void op_assign(size_t step, bool assign)
{
    size_t cs[64], cd[64], n = 0;
    for (size_t i = 0; i < W->m->nids; i++) {
        if (W->m->ids[i].role != EM_STAFF)
            continue;
        for (size_t k = 0; k < W->m->ndepts; k++) {
            bool is = (W->m->ids[i].depts & (1u << k)) != 0;
            if (is != assign && n < 64) {
                cs[n] = i;
                cd[n++] = k;
            }
        }
    }
    if (n == 0) {
        op_assign(step, !assign);
        return;
    }
    size_t j = rnd(n);
    note("%zu: %s %s %s", step, assign ? "assign" : "unassign", W->m->ids[cs[j]].id,
         W->m->depts[cd[j]]);
    struct arg a[] = {{.key = "staff", .str = W->m->ids[cs[j]].id},
                      {.key = "department", .str = W->m->depts[cd[j]]}};
    call_ok_free(W->admin, assign ? "admin.assign" : "admin.unassign", a, 2);
    if (assign)
        W->m->ids[cs[j]].depts |= 1u << cd[j];
    else
        W->m->ids[cs[j]].depts &= ~(1u << cd[j]);
}

static size_t link_device(int ident)
{
    size_t live[EM_MAX_DEVS];
    size_t n = live_devices_of(ident, live);
    REQUIRE(n > 0, "%s has no device to link from", W->m->ids[ident].id);
    struct client_frame r;
    char code[64];
    call_ok(W->devs[live[rnd(n)]].c, "device.link_code", NULL, 0, &r);
    REQUIRE(wire_get_cstr(&r.msg.body, "code", code, sizeof(code)) == 0, "no link code");
    client_frame_free(&r);
    return dev_enroll(code, ident);
}

/* Identities that may link one more device; devices that may be revoked
 * (never the anchor, never an identity's last device). */
static size_t link_candidates(size_t *cand)
{
    size_t n = 0, tmp[EM_MAX_DEVS];
    if (live_count() < MAX_LIVE_DEVS && W->m->ndevs < EM_MAX_DEVS - 1)
        for (size_t i = 0; i < W->m->nids; i++)
            if (live_devices_of((int)i, tmp) < MAX_DEVS_PER_ID)
                cand[n++] = i;
    return n;
}

static size_t revoke_candidates(size_t *cand)
{
    size_t n = 0, tmp[EM_MAX_DEVS];
    for (size_t d = 0; d < W->m->ndevs; d++)
        if (W->devs[d].live && d != W->anchor && live_devices_of(W->m->devs[d].ident, tmp) > 1)
            cand[n++] = d;
    return n;
}

static void op_revoke_device(size_t step);

static void op_link(size_t step)
{
    size_t cand[EM_MAX_IDS], tmp[EM_MAX_DEVS];
    size_t n = link_candidates(cand);
    if (n == 0) {
        if (revoke_candidates(tmp) > 0)
            op_revoke_device(step);
        else
            op_grant(step);
        return;
    }
    size_t i = cand[rnd(n)];
    size_t d = link_device((int)i);
    note("%zu: link %s/%s", step, W->m->ids[i].id, W->m->devs[d].dev);
}

static void op_revoke_device(size_t step)
{
    size_t cand[EM_MAX_DEVS], tmp[EM_MAX_DEVS], ids[EM_MAX_IDS];
    size_t n = revoke_candidates(cand);
    if (n == 0) {
        if (link_candidates(ids) > 0)
            op_link(step);
        else
            op_grant(step);
        return;
    }
    size_t d = cand[rnd(n)];
    int ident = W->m->devs[d].ident;
    size_t k = live_devices_of(ident, tmp), by;
    do
        by = tmp[rnd(k)];
    while (by == d);
    char key[EM_KEY_MAX];
    dev_key(d, key);
    note("%zu: revoke device %s", step, key);
    struct arg a[] = {{.key = "device", .str = W->m->devs[d].dev}};
    call_ok_free(W->devs[by].c, "device.revoke", a, 1);
    W->m->devs[d].revoked = true;
    dev_close(d);
}

/* Staff register a relative as the citizen's proxy (an existing identity:
 * no new code), or end an active proxy registration. */
static void op_proxy(size_t step)
{
    size_t staff[EM_MAX_DEVS], ns = 0, rel[EM_MAX_IDS], nr = 0, act[EM_MAX_IDS], na = 0;
    for (size_t d = 0; d < W->m->ndevs; d++)
        if (W->devs[d].live && W->m->ids[W->m->devs[d].ident].role == EM_STAFF)
            staff[ns++] = d;
    for (size_t i = 0; i < W->m->nids; i++) {
        if (W->m->ids[i].role != EM_RELATIVE)
            continue;
        if (W->m->ids[i].proxy_active)
            act[na++] = i;
        else
            rel[nr++] = i;
    }
    REQUIRE(ns > 0, "no staff device left");
    size_t by = staff[rnd(ns)];
    char name[EM_NAME_MAX];
    bool end = na > 0 && (nr == 0 || rnd(2) == 0);
    size_t who = end ? act[rnd(na)] : rel[rnd(nr)];
    snprintf(name, sizeof(name), "%s", W->m->ids[who].id);
    *strchr(name, '@') = '\0';
    note("%zu: %s proxy %s (by %s)", step, end ? "end" : "register", W->m->ids[who].id,
         W->m->ids[W->m->devs[by].ident].id);
    /* signed on the staff device with the server's time; the end names the
     * registration the register step got back */
    static char reg[EM_MAX_IDS][MSG_GRANT_GID_LEN + 1];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    const char *citizen = W->m->ids[W->m->citizen].id, *proxy = W->m->ids[who].id;
    const char *stid = W->m->ids[W->m->devs[by].ident].id, *sdev = W->m->devs[by].dev;
    (void)name;
    if (end) {
        struct msg_proxy_end p;
        msg_proxy_end_init(&p);
        snprintf(p.registration, sizeof(p.registration), "%s", reg[who]);
        snprintf(p.citizen, sizeof(p.citizen), "%s", citizen);
        snprintf(p.proxy, sizeof(p.proxy), "%s", proxy);
        p.ended_at = server_now();
        snprintf(p.ender, sizeof(p.ender), "%s", stid);
        snprintf(p.ender_device, sizeof(p.ender_device), "%s", sdev);
        REQUIRE(msg_proxy_end_encode(&p, &tbs, &tl) == 0, "proxy end encode");
        REQUIRE(msg_proxy_end_sign(W->devs[by].seed, tbs, tl, sig) == 0, "proxy end sign");
        struct arg a[] = {{.key = "tbs", .bin = tbs, .len = tl},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_ok_free(W->devs[by].c, "proxy.end", a, 2);
    } else {
        struct msg_proxy_reg p;
        msg_proxy_reg_init(&p);
        snprintf(p.citizen, sizeof(p.citizen), "%s", citizen);
        snprintf(p.proxy, sizeof(p.proxy), "%s", proxy);
        snprintf(p.basis, sizeof(p.basis), "%s", rnd(2) ? "guardianship" : "power-of-attorney");
        p.registered_at = server_now();
        snprintf(p.registrar, sizeof(p.registrar), "%s", stid);
        snprintf(p.registrar_device, sizeof(p.registrar_device), "%s", sdev);
        REQUIRE(msg_proxy_reg_encode(&p, &tbs, &tl) == 0, "proxy registration encode");
        REQUIRE(msg_proxy_reg_sign(W->devs[by].seed, tbs, tl, sig) == 0, "proxy reg sign");
        msg_proxy_reg_id(tbs, tl, sig, reg[who]);
        struct arg a[] = {{.key = "tbs", .bin = tbs, .len = tl},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_ok_free(W->devs[by].c, "proxy.register", a, 2);
    }
    free(tbs);
    W->m->ids[who].proxy_active = !end;
}

static void step_once(size_t step)
{
    /* weights: grants and revocations drive most changes */
    static const unsigned weight[NOPS] = {26, 16, 10, 12, 12, 12, 12, 5, 4};
    unsigned total = 0, r;
    int op = 0;
    for (size_t i = 0; i < NOPS; i++)
        total += weight[i];
    r = (unsigned)rnd(total);
    while (r >= weight[op]) {
        r -= weight[op];
        op++;
    }
    W->n_ops[op]++;
    int64_t t0 = client_sync_now_ms();
    switch (op) {
    case OP_GRANT: op_grant(step); break;
    case OP_REVOKE: op_revoke(step); break;
    case OP_EXPIRE: op_expire(step); break;
    case OP_ASSIGN: op_assign(step, true); break;
    case OP_UNASSIGN: op_assign(step, false); break;
    case OP_LINK: op_link(step); break;
    case OP_REVOKE_DEVICE: op_revoke_device(step); break;
    case OP_PROXY: op_proxy(step); break;
    default: op_breakglass(step); break;
    }
    int64_t t1 = client_sync_now_ms();
    check_immediate();
    int64_t t2 = client_sync_now_ms();
    settle();
    int64_t t3 = client_sync_now_ms();
    check_settled();
    int64_t t4 = client_sync_now_ms();
    W->ms_op += t1 - t0;
    W->ms_immediate += t2 - t1;
    W->ms_settle += t3 - t2;
    W->ms_settled += t4 - t3;
}

/* ---- setup ------------------------------------------------------------------------- */

static void admin_invite(const char *role, const char *name, const char *dept,
                         const char *assoc, char *code, size_t cap)
{
    struct client_frame r;
    struct arg a[3] = {{.key = "role", .str = role}, {.key = "name", .str = name}};
    size_t n = 2;
    if (dept)
        a[n++] = (struct arg){.key = "department", .str = dept};
    if (assoc)
        a[n++] = (struct arg){.key = "association", .str = assoc};
    call_ok(W->admin, "admin.invite", a, n, &r);
    REQUIRE(wire_get_cstr(&r.msg.body, "code", code, cap) == 0, "admin.invite: no code");
    client_frame_free(&r);
}

static void build_world(void)
{
    struct client_frame r;
    char code[64], name[32], id[EM_NAME_MAX];
    uint8_t seed[32];
    char aid[CLIENT_ID_MAX + 1], adev[19];

    W->admin = it_enroll(W->ctx, W->ts.url, W->ts.admin_code, seed, aid, sizeof(aid), adev);
    sodium_memzero(seed, sizeof(seed));
    call_ok(W->admin, "server.info", NULL, 0, &r);
    {
        const uint8_t *k;
        size_t kl;
        REQUIRE(wire_get_bin(&r.msg.body, "key", &k, &kl) == 0 && kl == 32, "server.info");
        memcpy(W->server_key, k, 32);
    }
    client_frame_free(&r);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "dept%d", i);
        struct arg a[] = {{.key = "name", .str = name}};
        call_ok_free(W->admin, "admin.department.add", a, 1);
        REQUIRE(em_add_department(W->m, name) == i, "model dept");
    }
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "assoc%d", i);
        struct arg a[] = {{.key = "name", .str = name}};
        call_ok_free(W->admin, "admin.association.add", a, 1);
        REQUIRE(em_add_association(W->m, name) == i, "model assoc");
    }
    /* the citizen and her anchor device */
    admin_invite("citizen", "karen", NULL, NULL, code, sizeof(code));
    int citizen = em_add_identity(W->m, "karen@" DOMAIN, EM_CITIZEN);
    W->anchor = dev_enroll(code, citizen);
    note("setup: citizen karen@%s, anchor device %s", DOMAIN, W->m->devs[W->anchor].dev);
    /* staff (some in a department from the start) and volunteers */
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "staff%d", i);
        size_t dk = rnd(W->m->ndepts + 1);
        admin_invite("staff", name, dk < W->m->ndepts ? W->m->depts[dk] : NULL, NULL, code,
                     sizeof(code));
        snprintf(id, sizeof(id), "%s@%s", name, DOMAIN);
        int x = em_add_identity(W->m, id, EM_STAFF);
        if (dk < W->m->ndepts)
            W->m->ids[x].depts = 1u << dk;
        size_t d = dev_enroll(code, x);
        note("setup: staff %s (%s) device %s", id, dk < W->m->ndepts ? W->m->depts[dk] : "-",
             W->m->devs[d].dev);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "vol%d", i);
        size_t ak = (size_t)i % W->m->nassocs;
        admin_invite("volunteer", name, NULL, W->m->assocs[ak], code, sizeof(code));
        snprintf(id, sizeof(id), "%s@%s", name, DOMAIN);
        int x = em_add_identity(W->m, id, EM_VOLUNTEER);
        W->m->ids[x].assocs = 1u << ak;
        size_t d = dev_enroll(code, x);
        note("setup: volunteer %s (%s) device %s", id, W->m->assocs[ak], W->m->devs[d].dev);
    }
    /* the threads (before the relatives, so grants may name them) */
    static const char *const kinds[] = {"care", "coordination"};
    for (int k = 0; k < 2; k++) {
        char thread[CLIENT_THREAD_ID_LEN + 1];
        struct client_dev *ad = W->devs[W->anchor].d;
        int rc = client_thread_create(ad, W->m->ids[citizen].id, kinds[k], kinds[k], thread);
        REQUIRE(rc == 0, "thread.create: %s (%s %s)", err_str(rc), ad->err_code, ad->err_msg);
        REQUIRE(em_add_thread(W->m, thread, k == 0 ? EM_CARE : EM_COORDINATION) == k, "model");
        em_set_clear(&W->roster[k]);
        char key[EM_KEY_MAX];
        dev_key(W->anchor, key);
        em_set_add(&W->roster[k], key);
        note("setup: %s thread %s", kinds[k], thread);
    }
    /* relatives, each invited with a grant naming them */
    for (int i = 0; i < 3; i++) {
        char grantee[EM_NAME_MAX], gid[MSG_GRANT_GID_LEN + 1], sbuf[64], got[32];
        uint8_t *tbs = NULL, sig[64];
        size_t len;
        int scope = i == 2 ? EM_S_THREAD + 1 : i == 1 ? EM_S_COORDINATION : EM_S_CARE;
        snprintf(name, sizeof(name), "rel%d", i);
        snprintf(grantee, sizeof(grantee), "%s@%s", name, DOMAIN);
        const char *sc = scope_str(scope, sbuf, sizeof(sbuf));
        sign_grant(W->anchor, grantee, sc, 0, &tbs, &len, sig, gid);
        struct arg a[] = {{.key = "citizen", .str = W->m->ids[citizen].id},
                          {.key = "name", .str = name},
                          {.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_ok(W->devs[W->anchor].c, "relative.invite", a, 4, &r);
        free(tbs);
        REQUIRE(wire_get_cstr(&r.msg.body, "code", code, sizeof(code)) == 0 &&
                    wire_get_cstr(&r.msg.body, "grant", got, sizeof(got)) == 0 &&
                    strcmp(got, gid) == 0,
                "relative.invite answer");
        client_frame_free(&r);
        int x = em_add_identity(W->m, grantee, EM_RELATIVE);
        REQUIRE(em_add_grant(W->m, gid, EM_G_PERSON, x, scope, 0) >= 0, "model grant");
        size_t d = dev_enroll(code, x);
        note("setup: relative %s device %s, grant %s scope %s", grantee, W->m->devs[d].dev, gid,
             sc);
    }
    /* a second device for some */
    for (size_t i = 0; i < W->m->nids; i++) {
        if (rnd(2)) {
            size_t d = link_device((int)i);
            note("setup: link %s/%s", W->m->ids[i].id, W->m->devs[d].dev);
        }
    }
    /* at least one grant so the first settled check has company */
    {
        char gid[MSG_GRANT_GID_LEN + 1], got[32];
        uint8_t *tbs = NULL, sig[64];
        size_t len;
        char grantee[EM_NAME_MAX + 32];
        grantee_str(EM_G_ASSOCIATION, 0, grantee, sizeof(grantee));
        sign_grant(W->anchor, grantee, "care", 0, &tbs, &len, sig, gid);
        struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_ok(W->devs[W->anchor].c, "consent.grant", a, 2, &r);
        free(tbs);
        REQUIRE(wire_get_cstr(&r.msg.body, "grant", got, sizeof(got)) == 0 &&
                    strcmp(got, gid) == 0,
                "consent.grant id");
        client_frame_free(&r);
        REQUIRE(em_add_grant(W->m, gid, EM_G_ASSOCIATION, 0, EM_S_CARE, 0) >= 0, "model");
        note("setup: grant %s to %s scope care", gid, grantee);
    }
    check_immediate();
    settle();
    check_settled();
}

/* ---- the test ------------------------------------------------------------------------ */

static void entitle_random(void **state)
{
    (void)state;
    size_t steps = UNDER_ASAN ? 300 : 2000;
    const char *e = getenv("SAMMEN_RANDOM_STEPS");
    if (e && *e)
        steps = (size_t)strtoull(e, NULL, 10);
    e = getenv("SAMMEN_SEED");
    if (e && *e)
        W->seed = strtoull(e, NULL, 10);
    else
        W->seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ randombytes_random();
    W->rng = W->seed ? W->seed : 1;
    fprintf(stderr, "test_entitle_random: seed %llu, %zu steps%s\n", (unsigned long long)W->seed,
            steps, UNDER_ASAN ? " (AddressSanitizer)" : "");

    int64_t budget_ms = 400 * 1000; /* under CTest's 600 s timeout on a busy machine */
    e = getenv("SAMMEN_RANDOM_SECONDS");
    if (e && *e)
        budget_ms = (int64_t)strtoll(e, NULL, 10) * 1000;
    int64_t t0 = client_sync_now_ms();
    build_world();
    for (size_t s = 1; s <= steps; s++) {
        if (client_sync_now_ms() - t0 > budget_ms) {
            fprintf(stderr,
                    "test_entitle_random: time budget of %lld s used up after %zu of %zu steps "
                    "(a busy machine; SAMMEN_RANDOM_SECONDS raises it)\n",
                    (long long)(budget_ms / 1000), s - 1, steps);
            steps = s - 1;
            break;
        }
        step_once(s);
        if (s % 100 == 0)
            fprintf(stderr,
                    "  step %zu: %zu devices live, %zu grants, %u commits, %.1f s (steps %.1f, "
                    "immediate %.1f, settling %.1f, settled %.1f)\n",
                    s, live_count(), W->m->ngrants, W->n_commits,
                    (double)(client_sync_now_ms() - t0) / 1000.0, (double)W->ms_op / 1000.0,
                    (double)W->ms_immediate / 1000.0, (double)W->ms_settle / 1000.0,
                    (double)W->ms_settled / 1000.0);
    }
    fprintf(stderr,
            "test_entitle_random: %zu steps (grant %u, revoke %u, expire %u, assign %u, "
            "unassign %u, link %u, revoke-device %u, proxy %u, break-glass %u); %u commits, %u "
            "welcomes, %u probes delivered, %u sends refused while a removal was pending; "
            "%.1f s\n",
            steps, W->n_ops[0], W->n_ops[1], W->n_ops[2], W->n_ops[3], W->n_ops[4], W->n_ops[5],
            W->n_ops[6], W->n_ops[7], W->n_ops[8], W->n_commits, W->n_welcomes, W->n_probes, W->n_refused_sends,
            (double)(client_sync_now_ms() - t0) / 1000.0);
    fprintf(stderr, "time: steps %.1f s, immediate checks %.1f s, settling %.1f s, settled checks %.1f s\n",
            (double)W->ms_op / 1000.0, (double)W->ms_immediate / 1000.0,
            (double)W->ms_settle / 1000.0, (double)W->ms_settled / 1000.0);
    /* a clean stop: under the sanitizers the server checks for leaks */
    REQUIRE(testserver_stop(&W->ts, SIGTERM) == 0, "server did not stop cleanly");
}

static int setup(void **state)
{
    (void)state;
    W = calloc(1, sizeof(*W));
    if (!W || sodium_init() < 0)
        return -1;
    W->m = malloc(sizeof(*W->m));
    if (!W->m)
        return -1;
    em_init(W->m);
    if (testserver_init(&W->ts, DOMAIN, true) != 0 || testserver_start(&W->ts) != 0)
        return -1;
    if (client_ctx_new(NULL, &W->ctx) != 0)
        return -1;
    /* The device states take one SQLite transaction per inbox entry; on
     * tmpfs their fsyncs cost nothing, which keeps thousands of steps
     * within a couple of minutes. Durability is not what this test is
     * about. */
    snprintf(W->statedir, sizeof(W->statedir), "/dev/shm/sammen-rnd-XXXXXX");
    if (!mkdtemp(W->statedir)) {
        snprintf(W->statedir, sizeof(W->statedir), "%s/devices", W->ts.dir);
        if (mkdir(W->statedir, 0700) != 0)
            return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    if (!W)
        return 0;
    for (size_t d = 0; d < EM_MAX_DEVS; d++)
        if (W->devs[d].live)
            dev_close(d);
    if (W->admin)
        client_conn_free(W->admin);
    client_ctx_free(W->ctx);
    if (W->statedir[0] && nftw(W->statedir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", W->statedir);
    testserver_cleanup(&W->ts);
    free(W->hist);
    free(W->m);
    free(W);
    W = NULL;
    return 0;
}

/* The model itself on hand-made cases, each rule of the contract once, so a
 * wrong model cannot agree with a wrong server by accident. */
static void model_rules(void **state)
{
    (void)state;
    struct em_model *m = malloc(sizeof(*m));
    struct em_set *s = malloc(sizeof(*s));
    char why[512];
    assert_non_null(m);
    assert_non_null(s);
    em_init(m);
    int c = em_add_identity(m, "c@x", EM_CITIZEN);
    int st = em_add_identity(m, "s@x", EM_STAFF);
    int v = em_add_identity(m, "v@x", EM_VOLUNTEER);
    int r = em_add_identity(m, "r@x", EM_RELATIVE);
    assert_int_equal(em_add_department(m, "d0"), 0);
    assert_int_equal(em_add_department(m, "d1"), 1);
    assert_int_equal(em_add_association(m, "a0"), 0);
    assert_int_equal(em_add_thread(m, "t_care", EM_CARE), 0);
    assert_int_equal(em_add_thread(m, "t_coord", EM_COORDINATION), 1);
    int dc = em_add_device(m, c, "d_c");
    int ds = em_add_device(m, st, "d_s");
    int dv = em_add_device(m, v, "d_v");
    int dr1 = em_add_device(m, r, "d_r1");
    int dr2 = em_add_device(m, r, "d_r2");
    assert_true(dc >= 0 && ds >= 0 && dv >= 0 && dr1 >= 0 && dr2 >= 0);
    m->ids[v].assocs = 1u; /* member of a0 */

    /* only the citizen's devices without grants */
    em_entitled(m, 0, 100, s);
    assert_int_equal(s->n, 1);
    assert_true(em_set_has(s, "c@x/d_c"));
    /* a care grant to the relative: both devices, care thread only */
    assert_int_equal(em_add_grant(m, "g_r", EM_G_PERSON, r, EM_S_CARE, 0), 0);
    em_entitled(m, 0, 100, s);
    assert_int_equal(s->n, 3);
    assert_true(em_set_has(s, "r@x/d_r1") && em_set_has(s, "r@x/d_r2"));
    em_entitled(m, 1, 100, s);
    assert_int_equal(s->n, 1);
    assert_true(em_basis_valid(m, (size_t)r, 0, 100, "g_r"));
    assert_false(em_basis_valid(m, (size_t)r, 1, 100, "g_r"));
    /* a revoked device drops out, the other stays */
    m->devs[dr2].revoked = true;
    em_entitled(m, 0, 100, s);
    assert_int_equal(s->n, 2);
    assert_false(em_set_has(s, "r@x/d_r2"));
    /* a department grant follows assignment */
    assert_int_equal(em_add_grant(m, "g_d", EM_G_DEPARTMENT, 1, EM_S_COORDINATION, 0), 1);
    em_entitled(m, 1, 100, s);
    assert_false(em_set_has(s, "s@x/d_s"));
    m->ids[st].depts = 1u << 1;
    em_entitled(m, 1, 100, s);
    assert_true(em_set_has(s, "s@x/d_s"));
    m->ids[st].depts = 1u << 0;
    em_entitled(m, 1, 100, s);
    assert_false(em_set_has(s, "s@x/d_s"));
    /* an association grant scoped to one thread, expiring at 200 */
    assert_int_equal(em_add_grant(m, "g_a", EM_G_ASSOCIATION, 0, EM_S_THREAD + 1, 200), 2);
    em_entitled(m, 1, 199, s);
    assert_true(em_set_has(s, "v@x/d_v"));
    em_entitled(m, 0, 199, s);
    assert_false(em_set_has(s, "v@x/d_v"));
    em_entitled(m, 1, 200, s); /* expiry at exactly now has passed */
    assert_false(em_set_has(s, "v@x/d_v"));
    /* revocation ends a grant; a second grant keeps the member */
    assert_int_equal(em_add_grant(m, "g_r2", EM_G_PERSON, r, EM_S_THREAD + 0, 0), 3);
    m->grants[0].revoked = true;
    em_entitled(m, 0, 100, s);
    assert_true(em_set_has(s, "r@x/d_r1"));
    assert_false(em_basis_valid(m, (size_t)r, 0, 100, "g_r"));
    assert_true(em_basis_valid(m, (size_t)r, 0, 100, "g_r2"));
    m->grants[3].revoked = true;
    em_entitled(m, 0, 100, s);
    assert_false(em_set_has(s, "r@x/d_r1"));
    /* a proxy is in every thread, with basis "proxy" */
    m->ids[r].proxy_active = true;
    em_entitled(m, 1, 100, s);
    assert_true(em_set_has(s, "r@x/d_r1"));
    assert_true(em_basis_valid(m, (size_t)r, 1, 100, "proxy"));
    assert_true(em_basis_valid(m, (size_t)c, 1, 100, "citizen"));
    assert_false(em_basis_valid(m, (size_t)st, 1, 100, "citizen"));
    /* a person grant to staff holds without any department */
    assert_int_equal(em_add_grant(m, "g_s", EM_G_PERSON, st, EM_S_CARE, 0), 4);
    m->ids[st].depts = 0;
    em_entitled(m, 0, 100, s);
    assert_true(em_set_has(s, "s@x/d_s"));
    /* break-glass: staff only, that thread only, until it expires */
    assert_int_equal(em_add_breakglass(m, st, 1, 300), 0);
    assert_int_equal(em_add_breakglass(m, v, 1, 300), 1);
    em_entitled(m, 1, 299, s);
    assert_true(em_set_has(s, "s@x/d_s"));
    assert_false(em_set_has(s, "v@x/d_v"));
    assert_true(em_basis_valid(m, (size_t)st, 1, 299, "breakglass"));
    em_entitled(m, 1, 300, s);
    assert_false(em_set_has(s, "s@x/d_s"));
    em_entitled(m, 0, 100, s);
    /* the comparison names both sides */
    struct em_set *t = malloc(sizeof(*t));
    assert_non_null(t);
    *t = *s;
    assert_true(em_set_add(t, "z@x/d_z"));
    assert_int_equal(em_set_compare(s, t, why, sizeof(why)), 1);
    assert_string_equal(why, "extra: z@x/d_z");
    assert_int_equal(em_set_compare(t, s, why, sizeof(why)), 1);
    assert_string_equal(why, "missing: z@x/d_z");
    assert_int_equal(em_set_compare(s, s, why, sizeof(why)), 0);
    free(t);
    free(s);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_rules),
        cmocka_unit_test_setup_teardown(entitle_random, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
