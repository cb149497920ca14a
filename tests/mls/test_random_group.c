/*
 * test_random_group.c: randomized test of the group state machine
 * (mls_group.h) with the server's follower (mls_follower.h) alongside.
 *
 * RG_DEVICES simulated devices and one delivery service (this file) run
 * through RG_EPOCHS epochs (SAMMEN_RANDOM_EPOCHS overrides). Each epoch one
 * random operation moves the group on:
 *   - a commit by value: Adds of non-members, Removes, both, or an empty
 *     commit with a path (key update);
 *   - proposals from other members (Update, Remove, Add) committed by
 *     reference by a random committer;
 *   - PreSharedKey proposals (an external PSK every device knows, or the
 *     resumption PSK of the current epoch) committed by reference;
 *   - an external Remove signed by the follower as the group's external
 *     sender, committed by a member through mls_group_commit_pending (the
 *     client policy hook);
 *   - a commit race: two members commit in the same epoch, the delivery
 *     service accepts one at random, the other's pending commit is dropped
 *     when the winner's commit arrives.
 * Before each operation random members send application messages (random
 * sizes, sometimes with authenticated data), delivered to every other member
 * in an independent random order (out-of-order within the window), now and
 * then preceded by forged copies (SenderData or content tampered) that must
 * be refused without disturbing the genuine message. Now and
 * then a random member is saved, freed and restored (mls_group_save/load),
 * and the restored state must save to the same bytes.
 *
 * Checked after every epoch: every member has the same epoch and epoch
 * authenticator and the roster the test expects; the follower, fed the same
 * handshake messages, has the same epoch and roster. Removed devices keep
 * their group object ("ghost"): every application message and commit sent
 * after their removal must be refused by it, and by a copy of their state
 * from just before the removing commit (saved and restored: a device that
 * ignores its removal).
 *
 * The operation sequence is reproducible from the seed, printed at start
 * (SAMMEN_RANDOM_SEED overrides; key material comes from libsodium and is
 * not seeded, but does not influence the choices).
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "mls_follower.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "tls.h"

#define RG_DEVICES 10
#define RG_EPOCHS 300
#define RG_DEFAULT_SEED 0x53616d6d656e01ULL /* "Sammen" 01 */
#define RG_MAX_MSGS 12

struct rg_dev {
    uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN];
    char user[32];
    uint8_t ident[MLS_KP_MAX_IDENTITY];
    size_t ident_len;
    struct mls_kp *kp;       /* unused KeyPackage, while not a member */
    struct mls_group *g;     /* member state, NULL when not a member */
    struct mls_group *ghost; /* state kept after our removal */
    struct mls_group *stale; /* our state just before the removing commit,
                                restored from a save: it ignores the removal */
};

struct rg_msg {
    uint8_t *wire;
    size_t len;
    uint8_t pt[160];
    size_t pt_len;
    uint8_t ad[8];
    size_t ad_len;
    unsigned sender;
};

struct rg_world {
    struct rg_dev d[RG_DEVICES];
    struct mls_follower *fol;
    uint8_t server_priv[CRYPTO_SIGN_PRIV_LEN];
    uint64_t rng;
    uint64_t now;
    bool verbose;
    /* counters, printed at the end */
    unsigned commits, adds, removes, updates, ext_removes, races, props, psks, app_msgs, forgeries,
        restores,
        ghost_refusals;
};

/* The external PSK every device knows (registered after create, join and
 * restore: mls_group_save does not keep PSK values). */
static const uint8_t rg_psk_id[] = "random-group-psk";
static const uint8_t rg_psk_secret[32] = {0x70, 0x73, 0x6b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                          13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                                          27, 28, 29};

static const struct mls_group_psk rg_psk = {
    .id = rg_psk_id,
    .id_len = sizeof(rg_psk_id) - 1,
    .secret = rg_psk_secret,
    .secret_len = sizeof(rg_psk_secret),
};

/* ---- reproducible choices: splitmix64 ------------------------------------- */

static uint64_t rnd64(struct rg_world *w)
{
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rnd(struct rg_world *w, unsigned n)
{
    return n == 0 ? 0 : (unsigned)(rnd64(w) % n);
}

static void shuffle(struct rg_world *w, unsigned *v, unsigned n)
{
    for (unsigned i = n; i > 1; i--) {
        unsigned j = rnd(w, i), t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

#define TRACE(w, ...)                                                                              \
    do {                                                                                           \
        if ((w)->verbose)                                                                          \
            printf(__VA_ARGS__);                                                                   \
    } while (0)

/* ---- devices ---------------------------------------------------------------- */

static void dev_new_kp(struct rg_world *w, unsigned i)
{
    struct rg_dev *d = &w->d[i];

    mls_kp_free(d->kp);
    d->kp = NULL;
    assert_int_equal(mls_kp_create(d->ident, d->ident_len, d->sig_priv, w->now - 3600,
                                   w->now + 86400, &d->kp),
                     0);
}

static unsigned members(const struct rg_world *w, unsigned *out)
{
    unsigned n = 0;

    for (unsigned i = 0; i < RG_DEVICES; i++)
        if (w->d[i].g != NULL)
            out[n++] = i;
    return n;
}

static unsigned outsiders(const struct rg_world *w, unsigned *out)
{
    unsigned n = 0;

    for (unsigned i = 0; i < RG_DEVICES; i++)
        if (w->d[i].g == NULL)
            out[n++] = i;
    return n;
}

static unsigned random_member(struct rg_world *w, int except)
{
    unsigned m[RG_DEVICES], n = members(w, m), k;

    do
        k = m[rnd(w, n)];
    while ((int)k == except);
    return k;
}

static uint32_t leaf_of(const struct rg_world *w, unsigned k)
{
    return mls_group_own_leaf(w->d[k].g);
}

/* ---- the checks --------------------------------------------------------------- */

/* Every member agrees on epoch, epoch authenticator and roster, which is
 * exactly the set of devices holding a group; the follower agrees too. */
static void check_epoch(struct rg_world *w)
{
    unsigned m[RG_DEVICES], n = members(w, m);
    uint8_t ea0[CRYPTO_HASH_LEN], ea[CRYPTO_HASH_LEN];
    struct mls_roster_entry r0[RG_DEVICES], r[RG_DEVICES];
    size_t n0 = 0, nr = 0;
    uint64_t epoch;

    assert_true(n >= 1);
    epoch = mls_group_epoch(w->d[m[0]].g);
    assert_int_equal(mls_group_epoch_authenticator(w->d[m[0]].g, ea0), 0);
    assert_int_equal(mls_group_roster(w->d[m[0]].g, r0, RG_DEVICES, &n0), 0);
    assert_int_equal(n0, n);
    /* the roster is the expected device set (each member found once) */
    for (unsigned i = 0; i < n; i++) {
        unsigned hits = 0;
        for (size_t j = 0; j < n0; j++)
            if (r0[j].identity_len == w->d[m[i]].ident_len &&
                memcmp(r0[j].identity, w->d[m[i]].ident, r0[j].identity_len) == 0) {
                hits++;
                assert_int_equal(r0[j].leaf_index, leaf_of(w, m[i]));
            }
        assert_int_equal(hits, 1);
    }
    for (unsigned i = 1; i < n; i++) {
        struct mls_group *g = w->d[m[i]].g;
        assert_true(mls_group_active(g));
        assert_false(mls_group_has_pending_commit(g));
        assert_int_equal(mls_group_epoch(g), epoch);
        assert_int_equal(mls_group_epoch_authenticator(g, ea), 0);
        assert_memory_equal(ea, ea0, sizeof(ea));
        assert_int_equal(mls_group_roster(g, r, RG_DEVICES, &nr), 0);
        assert_int_equal(nr, n0);
        for (size_t j = 0; j < nr; j++) {
            assert_int_equal(r[j].leaf_index, r0[j].leaf_index);
            assert_int_equal(r[j].identity_len, r0[j].identity_len);
            assert_memory_equal(r[j].identity, r0[j].identity, r[j].identity_len);
        }
    }
    if (w->fol == NULL)
        return;
    assert_int_equal(mls_follower_epoch(w->fol), epoch);
    assert_int_equal(mls_follower_roster(w->fol, r, RG_DEVICES, &nr), 0);
    assert_int_equal(nr, n0);
    for (size_t j = 0; j < nr; j++) {
        assert_int_equal(r[j].leaf_index, r0[j].leaf_index);
        assert_int_equal(r[j].identity_len, r0[j].identity_len);
        assert_memory_equal(r[j].identity, r0[j].identity, r[j].identity_len);
        assert_int_equal(r[j].signature_key_len, r0[j].signature_key_len);
        assert_memory_equal(r[j].signature_key, r0[j].signature_key, r[j].signature_key_len);
    }
}

/* Every ghost must refuse msg (sent after its removal). */
static void ghosts_refuse(struct rg_world *w, const uint8_t *msg, size_t len)
{
    for (unsigned i = 0; i < RG_DEVICES; i++) {
        struct mls_group_event ev;
        uint64_t epoch;

        if (w->d[i].ghost == NULL)
            continue;
        epoch = mls_group_epoch(w->d[i].ghost);
        memset(&ev, 0, sizeof(ev));
        assert_true(mls_group_process(w->d[i].ghost, msg, len, w->now, &ev) < 0);
        assert_null(ev.data);
        mls_group_event_reset(&ev);
        assert_int_equal(mls_group_epoch(w->d[i].ghost), epoch);
        w->ghost_refusals++;
        if (w->d[i].stale == NULL)
            continue;
        epoch = mls_group_epoch(w->d[i].stale);
        memset(&ev, 0, sizeof(ev));
        assert_true(mls_group_process(w->d[i].stale, msg, len, w->now, &ev) < 0);
        assert_null(ev.data);
        mls_group_event_reset(&ev);
        assert_int_equal(mls_group_epoch(w->d[i].stale), epoch);
        w->ghost_refusals++;
    }
}

/* True when device k is in g's roster. */
static bool in_roster(const struct rg_world *w, const struct mls_group *g, unsigned k)
{
    struct mls_roster_entry r[RG_DEVICES];
    size_t n = 0;

    assert_int_equal(mls_group_roster(g, r, RG_DEVICES, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (r[i].identity_len == w->d[k].ident_len &&
            memcmp(r[i].identity, w->d[k].ident, r[i].identity_len) == 0)
            return true;
    return false;
}

/* A copy of msg (a PrivateMessage) with one byte of the encrypted
 * SenderData (content false) or of the content ciphertext flipped. */
static uint8_t *tampered(const uint8_t *msg, size_t msg_len, bool content, size_t *len)
{
    struct mls_message m;
    struct tls_writer tw;
    struct mls_bytes *b;
    uint8_t *out = NULL;

    memset(&m, 0, sizeof(m));
    assert_int_equal(mls_message_parse(msg, msg_len, &m), 0);
    assert_int_equal(m.wire_format, MLS_WF_PRIVATE_MESSAGE);
    b = content ? &m.private_message.ciphertext : &m.private_message.encrypted_sender_data;
    assert_true(b->len > 4);
    b->data[b->len / 2] ^= 0x01;
    tls_writer_init(&tw, 0);
    mls_message_encode(&tw, &m);
    assert_int_equal(tls_writer_take(&tw, &out, len), 0);
    mls_message_free(&m);
    return out;
}

/* Forged copies of msg are refused by g, and g's epoch stays. */
static void refuses_forgeries(struct rg_world *w, struct mls_group *g, const uint8_t *msg,
                              size_t len)
{
    for (int content = 0; content < 2; content++) {
        struct mls_group_event ev;
        size_t blen = 0;
        uint8_t *bad = tampered(msg, len, content != 0, &blen);
        uint64_t epoch = mls_group_epoch(g);

        memset(&ev, 0, sizeof(ev));
        assert_true(mls_group_process(g, bad, blen, w->now, &ev) < 0);
        assert_null(ev.data);
        mls_group_event_reset(&ev);
        assert_int_equal(mls_group_epoch(g), epoch);
        free(bad);
        w->forgeries++;
    }
}

/* ---- delivery --------------------------------------------------------------- */

/* A proposal from device `from`: every other member and the follower. */
static void deliver_proposal(struct rg_world *w, int from, const uint8_t *msg, size_t len,
                             bool external)
{
    int fev = 0;

    if (w->fol != NULL) {
        assert_int_equal(mls_follower_handle(w->fol, msg, len, w->now, &fev), 0);
        assert_int_equal(fev, MLS_FOLLOWER_PROPOSAL);
    }
    for (unsigned i = 0; i < RG_DEVICES; i++) {
        struct mls_group_event ev;

        if (w->d[i].g == NULL || (int)i == from)
            continue;
        memset(&ev, 0, sizeof(ev));
        assert_int_equal(mls_group_process(w->d[i].g, msg, len, w->now, &ev), 0);
        assert_int_equal(ev.type, MLS_GROUP_EV_PROPOSAL);
        assert_int_equal(ev.external_pending, external);
        mls_group_event_reset(&ev);
    }
    ghosts_refuse(w, msg, len);
    w->props++;
}

/* A commit accepted by the delivery service, sent by `from` (already
 * confirmed there): every other member processes it; removed ones become
 * ghosts; the follower applies it; added devices join from the Welcome. */
static void deliver_commit(struct rg_world *w, unsigned from, const struct mls_group_commit_out *co,
                           bool tree_in_welcome)
{
    uint64_t epoch = mls_group_epoch(w->d[from].g);
    int fev = 0;
    bool joined_any = false;

    /* ghosts of earlier removals refuse it */
    ghosts_refuse(w, co->commit, co->commit_len);
    if (w->fol != NULL) {
        assert_int_equal(mls_follower_handle(w->fol, co->commit, co->commit_len, w->now, &fev), 0);
        assert_int_equal(fev, MLS_FOLLOWER_COMMIT);
    }
    for (unsigned i = 0; i < RG_DEVICES; i++) {
        struct mls_group_event ev;
        struct mls_group *stale = NULL;

        if (w->d[i].g == NULL || i == from)
            continue;
        if (!in_roster(w, w->d[from].g, i)) {
            /* Being removed: keep a copy of the state before the commit. */
            uint8_t *b = NULL;
            size_t blen = 0;
            assert_int_equal(mls_group_save(w->d[i].g, &b, &blen), 0);
            assert_int_equal(mls_group_load(b, blen, 0, &stale), 0);
            crypto_wipe(b, blen);
            free(b);
        }
        memset(&ev, 0, sizeof(ev));
        assert_int_equal(mls_group_process(w->d[i].g, co->commit, co->commit_len, w->now, &ev), 0);
        assert_int_equal(ev.type, MLS_GROUP_EV_COMMIT);
        assert_false(ev.own_commit);
        if (ev.removed) {
            TRACE(w, "  dev %u removed\n", i);
            assert_false(mls_group_active(w->d[i].g));
            assert_non_null(stale);
            mls_group_free(w->d[i].ghost);
            mls_group_free(w->d[i].stale);
            w->d[i].ghost = w->d[i].g;
            w->d[i].stale = stale;
            stale = NULL;
            w->d[i].g = NULL;
            dev_new_kp(w, i);
            w->removes++;
        } else {
            assert_null(stale);
            assert_int_equal(ev.epoch, epoch);
        }
        mls_group_event_reset(&ev);
    }
    if (co->welcome != NULL) {
        uint8_t *tree = NULL;
        size_t tree_len = 0;
        /* Without the ratchet_tree extension the joiner gets the tree out
         * of band (as the server would hand it over). */
        if (!tree_in_welcome)
            assert_int_equal(mls_group_tree(w->d[from].g, &tree, &tree_len), 0);
        for (unsigned i = 0; i < RG_DEVICES; i++) {
            struct mls_group *g = NULL;
            int rc;

            if (w->d[i].g != NULL || w->d[i].kp == NULL)
                continue;
            rc = mls_group_join(co->welcome, co->welcome_len, &w->d[i].kp, 1, tree, tree_len,
                                &rg_psk, 1, NULL, w->now, 0, &g);
            if (!in_roster(w, w->d[from].g, i)) {
                /* Not added: the Welcome names none of its KeyPackages. */
                assert_int_equal(rc, ERR_NOT_FOUND);
                assert_null(g);
                assert_false(mls_kp_used(w->d[i].kp));
                continue;
            }
            assert_int_equal(rc, 0);
            assert_true(mls_kp_used(w->d[i].kp));
            TRACE(w, "  dev %u joined at leaf %" PRIu32 "\n", i, mls_group_own_leaf(g));
            assert_int_equal(mls_group_add_external_psk(g, &rg_psk), 0);
            w->d[i].g = g;
            mls_kp_free(w->d[i].kp);
            w->d[i].kp = NULL;
            mls_group_free(w->d[i].ghost);
            mls_group_free(w->d[i].stale);
            w->d[i].ghost = w->d[i].stale = NULL;
            joined_any = true;
            w->adds++;
        }
        free(tree);
        assert_true(joined_any);
    }
    w->commits++;
}

/* Random application traffic in the current epoch. */
static void traffic(struct rg_world *w)
{
    struct rg_msg msgs[RG_MAX_MSGS];
    unsigned n = 0, senders = rnd(w, 4), m[RG_DEVICES], nm = members(w, m);

    memset(msgs, 0, sizeof(msgs));
    for (unsigned s = 0; s < senders && n < RG_MAX_MSGS; s++) {
        unsigned from = m[rnd(w, nm)], count = 1 + rnd(w, 3);
        for (unsigned c = 0; c < count && n < RG_MAX_MSGS; c++, n++) {
            struct rg_msg *x = &msgs[n];
            x->sender = from;
            x->pt_len = rnd(w, sizeof(x->pt) + 1);
            for (size_t b = 0; b < x->pt_len; b++)
                x->pt[b] = (uint8_t)rnd64(w);
            x->ad_len = rnd(w, 2) ? rnd(w, sizeof(x->ad) + 1) : 0;
            for (size_t b = 0; b < x->ad_len; b++)
                x->ad[b] = (uint8_t)rnd64(w);
            assert_int_equal(mls_group_encrypt(w->d[from].g, x->pt, x->pt_len, x->ad, x->ad_len,
                                               &x->wire, &x->len),
                             0);
        }
    }
    for (unsigned k = 0; k < nm; k++) {
        unsigned order[RG_MAX_MSGS];
        for (unsigned i = 0; i < n; i++)
            order[i] = i;
        shuffle(w, order, n);
        for (unsigned i = 0; i < n; i++) {
            struct rg_msg *x = &msgs[order[i]];
            struct mls_group_event ev;
            if (x->sender == m[k])
                continue;
            /* Now and then forged copies arrive first; the genuine message
             * must still be accepted after them. */
            if (rnd(w, 16) == 0)
                refuses_forgeries(w, w->d[m[k]].g, x->wire, x->len);
            memset(&ev, 0, sizeof(ev));
            assert_int_equal(mls_group_process(w->d[m[k]].g, x->wire, x->len, w->now, &ev), 0);
            assert_int_equal(ev.type, MLS_GROUP_EV_APPLICATION);
            assert_int_equal(ev.sender, leaf_of(w, x->sender));
            assert_int_equal(ev.len, x->pt_len);
            if (x->pt_len > 0)
                assert_memory_equal(ev.data, x->pt, x->pt_len);
            assert_int_equal(ev.ad_len, x->ad_len);
            if (x->ad_len > 0)
                assert_memory_equal(ev.authenticated_data, x->ad, x->ad_len);
            mls_group_event_reset(&ev);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        ghosts_refuse(w, msgs[i].wire, msgs[i].len);
        free(msgs[i].wire);
        w->app_msgs++;
    }
}

/* Save, free, restore one random member; the restored state saves to the
 * same bytes. */
static void restore_one(struct rg_world *w)
{
    unsigned k = random_member(w, -1);
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    struct mls_group *g = NULL;

    assert_int_equal(mls_group_save(w->d[k].g, &a, &alen), 0);
    assert_int_equal(mls_group_load(a, alen, 0, &g), 0);
    assert_int_equal(mls_group_save(g, &b, &blen), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    /* A truncated state is refused. */
    {
        struct mls_group *bad = NULL;
        assert_true(mls_group_load(a, alen / 2, 0, &bad) < 0);
        assert_null(bad);
    }
    crypto_wipe(a, alen);
    crypto_wipe(b, blen);
    free(a);
    free(b);
    assert_int_equal(mls_group_add_external_psk(g, &rg_psk), 0);
    mls_group_free(w->d[k].g);
    w->d[k].g = g;
    TRACE(w, "  dev %u restored\n", k);
    w->restores++;
}

/* ---- operations --------------------------------------------------------------- */

/* Commit by value from `c`: adds, removes, or an empty commit. May race. */
static void op_commit_by_value(struct rg_world *w)
{
    unsigned c = random_member(w, -1), out[RG_DEVICES], nout = outsiders(w, out);
    unsigned mem[RG_DEVICES], nmem = members(w, mem);
    const uint8_t *kps[RG_DEVICES];
    size_t kp_lens[RG_DEVICES];
    uint8_t *kp_bufs[RG_DEVICES];
    uint32_t rm[RG_DEVICES];
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co;
    unsigned n_add = 0, n_rm = 0;

    memset(&o, 0, sizeof(o));
    memset(kp_bufs, 0, sizeof(kp_bufs));
    /* Keep the group between 3 and RG_DEVICES members. */
    if (nout > 0 && (nmem < 4 || rnd(w, 2)))
        n_add = 1 + rnd(w, nout < 3 ? nout : 3);
    if (nmem > 4 && rnd(w, 2))
        n_rm = 1 + rnd(w, 2);
    shuffle(w, out, nout);
    for (unsigned i = 0; i < n_add; i++) {
        assert_int_equal(mls_kp_message(w->d[out[i]].kp, &kp_bufs[i], &kp_lens[i]), 0);
        kps[i] = kp_bufs[i];
    }
    shuffle(w, mem, nmem);
    for (unsigned i = 0, k = 0; k < n_rm && i < nmem; i++)
        if (mem[i] != c)
            rm[k++] = leaf_of(w, mem[i]);
    o.add_kps = kps;
    o.add_kp_lens = kp_lens;
    o.n_add = n_add;
    o.remove = rm;
    o.n_remove = n_rm;
    o.force_path = n_add + n_rm == 0 || rnd(w, 3) == 0;
    o.tree_in_welcome = rnd(w, 2);
    if (rnd(w, 4) == 0) {
        static const uint8_t ad[] = "commit ad";
        o.authenticated_data = ad;
        o.ad_len = sizeof(ad) - 1;
    }
    TRACE(w, "epoch %" PRIu64 ": dev %u commits +%u -%u%s\n", mls_group_epoch(w->d[c].g), c,
          n_add, n_rm, o.force_path ? " path" : "");
    memset(&co, 0, sizeof(co));
    assert_int_equal(mls_group_commit_create(w->d[c].g, &o, w->now, &co), 0);
    assert_true(mls_group_has_pending_commit(w->d[c].g));
    /* A second commit attempt while one is pending is refused. */
    {
        struct mls_group_commit_out again;
        memset(&again, 0, sizeof(again));
        assert_int_equal(mls_group_commit_create(w->d[c].g, &o, w->now, &again), ERR_BADSTATE);
        mls_group_commit_out_reset(&again);
    }
    if (nmem > 1 && rnd(w, 6) == 0) {
        /* Race: another member commits in the same epoch. */
        unsigned r = random_member(w, (int)c);
        struct mls_group_commit_opts ro;
        struct mls_group_commit_out rco;
        memset(&ro, 0, sizeof(ro));
        ro.force_path = true;
        memset(&rco, 0, sizeof(rco));
        assert_int_equal(mls_group_commit_create(w->d[r].g, &ro, w->now, &rco), 0);
        w->races++;
        if (rnd(w, 2)) {
            /* r wins: c's pending commit is dropped by r's arriving. */
            TRACE(w, "  race: dev %u wins\n", r);
            assert_int_equal(mls_group_commit_confirm(w->d[r].g), 0);
            deliver_commit(w, r, &rco, false);
            assert_false(mls_group_has_pending_commit(w->d[c].g));
            mls_group_commit_out_reset(&rco);
            mls_group_commit_out_reset(&co);
            w->updates++;
            goto out;
        }
        TRACE(w, "  race: dev %u loses\n", r);
        mls_group_commit_out_reset(&rco);
        /* r learns it lost when c's commit arrives (deliver_commit). */
    }
    if (rnd(w, 2)) {
        assert_int_equal(mls_group_commit_confirm(w->d[c].g), 0);
    } else {
        /* Our own commit coming back from the delivery service confirms it. */
        struct mls_group_event ev;
        memset(&ev, 0, sizeof(ev));
        assert_int_equal(mls_group_process(w->d[c].g, co.commit, co.commit_len, w->now, &ev), 0);
        assert_int_equal(ev.type, MLS_GROUP_EV_COMMIT);
        assert_true(ev.own_commit);
        mls_group_event_reset(&ev);
    }
    assert_false(mls_group_has_pending_commit(w->d[c].g));
    deliver_commit(w, c, &co, o.tree_in_welcome);
    if (n_add + n_rm == 0)
        w->updates++;
    mls_group_commit_out_reset(&co);
out:
    for (unsigned i = 0; i < n_add; i++)
        free(kp_bufs[i]);
}

/* Members propose (Update / Remove / Add); a random member commits them all
 * by reference. */
static void op_proposals(struct rg_world *w)
{
    unsigned mem[RG_DEVICES], nmem = members(w, mem), out[RG_DEVICES], nout = outsiders(w, out);
    unsigned c = random_member(w, -1), nprop = 1 + rnd(w, 3);
    bool touched[RG_DEVICES] = {false}; /* one Update/Remove per leaf */
    unsigned removing = 0, adding = 0;
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co;

    touched[c] = true; /* the committer is neither updated nor removed */
    TRACE(w, "epoch %" PRIu64 ": %u proposals, dev %u commits\n", mls_group_epoch(w->d[c].g),
          nprop, c);
    shuffle(w, out, nout);
    for (unsigned p = 0; p < nprop; p++) {
        unsigned from = mem[rnd(w, nmem)], kind = rnd(w, 3);
        uint8_t *msg = NULL;
        size_t len = 0;

        if (kind == 0 && !touched[from]) {
            assert_int_equal(mls_group_propose_update(w->d[from].g, &msg, &len), 0);
            touched[from] = true;
            TRACE(w, "  dev %u proposes update\n", from);
        } else if (kind == 1 && nmem - removing > 3) {
            unsigned victim = mem[rnd(w, nmem)];
            if (touched[victim] || victim == from)
                continue;
            assert_int_equal(mls_group_propose_remove(w->d[from].g, leaf_of(w, victim), &msg, &len),
                             0);
            touched[victim] = true;
            removing++;
            TRACE(w, "  dev %u proposes removing dev %u\n", from, victim);
        } else if (kind == 2 && adding < nout) {
            uint8_t *kp = NULL;
            size_t kp_len = 0;
            assert_int_equal(mls_kp_message(w->d[out[adding]].kp, &kp, &kp_len), 0);
            assert_int_equal(mls_group_propose_add(w->d[from].g, kp, kp_len, w->now, &msg, &len), 0);
            free(kp);
            TRACE(w, "  dev %u proposes adding dev %u\n", from, out[adding]);
            adding++;
        } else {
            continue;
        }
        deliver_proposal(w, (int)from, msg, len, false);
        free(msg);
    }
    memset(&o, 0, sizeof(o));
    o.include_pending = true;
    o.force_path = rnd(w, 2);
    o.tree_in_welcome = rnd(w, 2);
    memset(&co, 0, sizeof(co));
    if (mls_group_pending_proposals(w->d[c].g, NULL) == 0)
        o.force_path = true; /* nothing was proposed: an empty commit */
    assert_int_equal(mls_group_commit_create(w->d[c].g, &o, w->now, &co), 0);
    assert_int_equal(mls_group_commit_confirm(w->d[c].g), 0);
    deliver_commit(w, c, &co, o.tree_in_welcome);
    mls_group_commit_out_reset(&co);
}

/* The server removes a member through an external Remove proposal; a
 * member commits it with mls_group_commit_pending (the policy hook). */
static void op_external_remove(struct rg_world *w)
{
    unsigned victim = random_member(w, -1), c = random_member(w, (int)victim);
    uint8_t *msg = NULL;
    size_t len = 0, ext = 0;
    struct mls_group_commit_out co;

    TRACE(w, "epoch %" PRIu64 ": server removes dev %u, dev %u commits\n",
          mls_follower_epoch(w->fol), victim, c);
    assert_int_equal(
        mls_follower_external_remove(w->fol, leaf_of(w, victim), w->server_priv, 0, &msg, &len), 0);
    deliver_proposal(w, -1, msg, len, true);
    free(msg);
    assert_int_equal(mls_group_pending_proposals(w->d[c].g, &ext), 1);
    assert_int_equal(ext, 1);
    memset(&co, 0, sizeof(co));
    assert_int_equal(mls_group_commit_pending(w->d[c].g, w->now, &co), 0);
    assert_int_equal(mls_group_commit_confirm(w->d[c].g), 0);
    deliver_commit(w, c, &co, false);
    mls_group_commit_out_reset(&co);
    assert_null(w->d[victim].g);
    w->ext_removes++;
}

/* PreSharedKey proposals (the external PSK, or the resumption PSK of the
 * current epoch) from random members, committed by reference. No Adds here:
 * a joiner could not know a resumption PSK. */
static void op_psk(struct rg_world *w)
{
    unsigned c = random_member(w, -1), n = 1 + rnd(w, 2);
    bool used_ext = false, used_res = false;
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co;

    TRACE(w, "epoch %" PRIu64 ": PSK proposals, dev %u commits\n", mls_group_epoch(w->d[c].g), c);
    for (unsigned i = 0; i < n; i++) {
        unsigned from = random_member(w, -1);
        uint8_t *msg = NULL;
        size_t len = 0;
        bool ext = rnd(w, 2) == 0;

        /* One proposal per PSK: duplicates in a commit are invalid. */
        if ((ext && used_ext) || (!ext && used_res))
            continue;
        if (ext)
            assert_int_equal(mls_group_propose_psk(w->d[from].g, rg_psk.id, rg_psk.id_len, 0, &msg,
                                                   &len),
                             0);
        else
            assert_int_equal(mls_group_propose_psk(w->d[from].g, NULL, 0,
                                                   mls_group_epoch(w->d[from].g), &msg, &len),
                             0);
        *(ext ? &used_ext : &used_res) = true;
        deliver_proposal(w, (int)from, msg, len, false);
        free(msg);
    }
    memset(&o, 0, sizeof(o));
    o.include_pending = true;
    o.force_path = rnd(w, 2);
    memset(&co, 0, sizeof(co));
    assert_int_equal(mls_group_commit_create(w->d[c].g, &o, w->now, &co), 0);
    assert_int_equal(mls_group_commit_confirm(w->d[c].g), 0);
    deliver_commit(w, c, &co, false);
    mls_group_commit_out_reset(&co);
    w->psks++;
}

/* ---- set-up ---------------------------------------------------------------------- */

/* external_senders = [{server key, basic "server"}] as an extension list. */
static void server_ext(struct rg_world *w, struct mls_extension_list *ext)
{
    struct mls_external_senders es = {0};
    uint8_t pub[CRYPTO_SIGN_PUB_LEN];
    struct tls_writer tw;

    crypto_sig_keygen(pub, w->server_priv);
    es.v = calloc(1, sizeof(*es.v));
    assert_non_null(es.v);
    es.n = 1;
    assert_int_equal(mls_bytes_set(&es.v[0].signature_key, pub, sizeof(pub)), 0);
    es.v[0].credential.credential_type = MLS_CREDENTIAL_BASIC;
    assert_int_equal(mls_bytes_set(&es.v[0].credential.identity, (const uint8_t *)"server", 6), 0);
    tls_writer_init(&tw, 0);
    mls_external_senders_encode(&tw, &es);
    mls_external_senders_free(&es);
    assert_int_equal(tls_writer_error(&tw), 0);
    ext->v = calloc(1, sizeof(*ext->v));
    assert_non_null(ext->v);
    ext->n = 1;
    ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    assert_int_equal(mls_bytes_set(&ext->v[0].extension_data, tw.buf, tw.len), 0);
    tls_writer_reset(&tw);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s == '\0')
        return dflt;
    v = strtoull(s, &end, 0);
    if (end == NULL || *end != '\0') {
        fprintf(stderr, "%s: not a number: %s\n", name, s);
        exit(2);
    }
    return (uint64_t)v;
}

static void test_random_group(void **state)
{
    struct rg_world *w = calloc(1, sizeof(*w));
    struct mls_extension_list ext = {0};
    uint64_t seed = env_u64("SAMMEN_RANDOM_SEED", RG_DEFAULT_SEED);
    uint64_t epochs = env_u64("SAMMEN_RANDOM_EPOCHS", RG_EPOCHS);
    static const uint8_t gid[] = "random group";
    uint8_t *gi = NULL;
    size_t gi_len = 0;
    clock_t t0 = clock();

    (void)state;
    assert_non_null(w);
    w->rng = seed;
    w->now = (uint64_t)time(NULL);
    w->verbose = getenv("SAMMEN_RANDOM_VERBOSE") != NULL;
    printf("test_random_group: seed=0x%" PRIx64 " epochs=%" PRIu64
           " (reproduce with SAMMEN_RANDOM_SEED=0x%" PRIx64 ")\n",
           seed, epochs, seed);
    fflush(stdout);

    for (unsigned i = 0; i < RG_DEVICES; i++) {
        uint8_t pub[CRYPTO_SIGN_PUB_LEN];
        crypto_sig_keygen(pub, w->d[i].sig_priv);
        snprintf(w->d[i].user, sizeof(w->d[i].user), "dev%u@random.example", i);
        assert_int_equal(mls_kp_identity(w->d[i].user, pub, w->d[i].ident, sizeof(w->d[i].ident),
                                         &w->d[i].ident_len),
                         0);
        dev_new_kp(w, i);
    }
    server_ext(w, &ext);
    assert_int_equal(mls_group_create(gid, sizeof(gid) - 1, w->d[0].kp, &ext, 0, &w->d[0].g), 0);
    assert_int_equal(mls_group_add_external_psk(w->d[0].g, &rg_psk), 0);
    mls_kp_free(w->d[0].kp);
    w->d[0].kp = NULL;
    for (size_t i = 0; i < ext.n; i++)
        mls_bytes_free(&ext.v[i].extension_data);
    free(ext.v);
    /* The server follows the group from its creation (epoch 0). */
    assert_int_equal(mls_group_group_info(w->d[0].g, true, &gi, &gi_len), 0);
    assert_int_equal(mls_follower_new(gi, gi_len, NULL, 0, &w->fol), 0);
    free(gi);
    check_epoch(w);
    op_commit_by_value(w); /* the first Adds */
    check_epoch(w);

    for (uint64_t e = 0; e < epochs; e++) {
        unsigned m[RG_DEVICES], nm = members(w, m), op = rnd(w, 11);

        traffic(w);
        if (rnd(w, 8) == 0)
            restore_one(w);
        if (nm < 3 || op < 5)
            op_commit_by_value(w);
        else if (op < 8)
            op_proposals(w);
        else if (op < 10)
            op_external_remove(w);
        else
            op_psk(w);
        check_epoch(w);
    }
    traffic(w);

    printf("test_random_group: %" PRIu64 " epochs, %u commits (%u races, %u with PSKs), %u joins, "
           "%u removals (%u external), %u key updates, %u proposals, %u application messages, "
           "%u forgeries refused, %u restores, %u refusals by removed members, %.2f s\n",
           mls_follower_epoch(w->fol), w->commits, w->races, w->psks, w->adds, w->removes,
           w->ext_removes, w->updates, w->props, w->app_msgs, w->forgeries, w->restores,
           w->ghost_refusals,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    assert_true(mls_follower_epoch(w->fol) >= epochs);

    for (unsigned i = 0; i < RG_DEVICES; i++) {
        mls_group_free(w->d[i].g);
        mls_group_free(w->d[i].ghost);
        mls_group_free(w->d[i].stale);
        mls_kp_free(w->d[i].kp);
        crypto_wipe(w->d[i].sig_priv, sizeof(w->d[i].sig_priv));
    }
    mls_follower_free(w->fol);
    crypto_wipe(w->server_priv, sizeof(w->server_priv));
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_group),
    };

    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
