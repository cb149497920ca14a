/* test_group.c: mls_group end to end between simulated devices.
 *
 * Alice creates a group with the server as external sender; adds Bob and
 * Carol (Welcome with the tree inside), then Dave (tree out of band);
 * application messages both ways, out of order and replayed; an Update
 * proposal committed by reference by someone else; the server's follower
 * seeded from a GroupInfo tracks every commit; a member removed cannot
 * read what follows; the server's external Remove is committed through
 * the policy hook (commit_pending); racing commits (one discarded); PSK and
 * GroupContextExtensions commits; save/load in the middle; identities and
 * KeyPackage single use. After every epoch all members must agree on the
 * epoch authenticator and an exporter value, and the follower on the
 * roster and epoch. */
#include <setjmp.h>
#include <stdarg.h>
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

#define NDEV 4
static const char *names[NDEV] = {"alice@example.org", "bob@example.org", "carol@example.org",
                                  "dave@example.org"};

struct dev {
    uint8_t sig_pub[32], sig_priv[32];
    struct mls_kp *kp;
    struct mls_group *g;
};

static struct dev d[NDEV];
static struct mls_follower *fol;
static uint8_t server_pub[32], server_priv[32];
static uint64_t now;

static void make_kp(struct dev *x, const char *user)
{
    uint8_t id[MLS_KP_MAX_IDENTITY];
    size_t idlen = 0;
    mls_kp_free(x->kp);
    assert_int_equal(mls_kp_identity(user, x->sig_pub, id, sizeof(id), &idlen), 0);
    assert_int_equal(mls_kp_identity_check(id, idlen, x->sig_pub, 32), 0);
    assert_int_equal(mls_kp_create(id, idlen, x->sig_priv, now - 3600, now + 86400, &x->kp), 0);
}

static void kp_msg(struct dev *x, uint8_t **b, size_t *l)
{
    assert_int_equal(mls_kp_message(x->kp, b, l), 0);
}

/* Feeds msg to every active member except `from` (and to the follower). */
static void deliver(int from, const uint8_t *msg, size_t len, int expect_type)
{
    for (int i = 0; i < NDEV; i++) {
        struct mls_group_event ev;
        if (i == from || !d[i].g || !mls_group_active(d[i].g))
            continue;
        int rc = mls_group_process(d[i].g, msg, len, now, &ev);
        if (rc != 0)
            fprintf(stderr, "device %d: %s\n", i, err_str(rc));
        assert_int_equal(rc, 0);
        assert_int_equal(ev.type, expect_type);
        mls_group_event_reset(&ev);
    }
}

static void follow(const uint8_t *msg, size_t len)
{
    int event = 0;
    if (fol)
        assert_int_equal(mls_follower_handle(fol, msg, len, now, &event), 0);
}

/* Every active member agrees; the follower too. */
static void agree(void)
{
    uint8_t ea0[32], ea[32], ex0[16], ex[16];
    int first = -1;
    size_t n0 = 0;
    for (int i = 0; i < NDEV; i++) {
        if (!d[i].g || !mls_group_active(d[i].g))
            continue;
        size_t n = 0;
        assert_int_equal(mls_group_roster(d[i].g, NULL, 0, &n) == 0 || n > 0, 1);
        if (first < 0) {
            first = i;
            n0 = n;
            assert_int_equal(mls_group_epoch_authenticator(d[i].g, ea0), 0);
            assert_int_equal(mls_group_export(d[i].g, "test", (const uint8_t *)"c", 1, ex0, 16),
                             0);
            continue;
        }
        assert_int_equal(mls_group_epoch(d[i].g), mls_group_epoch(d[first].g));
        assert_int_equal(mls_group_epoch_authenticator(d[i].g, ea), 0);
        assert_memory_equal(ea, ea0, 32);
        assert_int_equal(mls_group_export(d[i].g, "test", (const uint8_t *)"c", 1, ex, 16), 0);
        assert_memory_equal(ex, ex0, 16);
        assert_int_equal(n, n0);
    }
    if (fol && first >= 0) {
        size_t n = 0;
        assert_int_equal(mls_follower_epoch(fol), mls_group_epoch(d[first].g));
        /* No room: the count alone, and ERR_TOO_BIG (the group has members). */
        assert_int_equal(mls_follower_roster(fol, NULL, 0, &n), ERR_TOO_BIG);
        assert_int_equal(n, n0);
    }
}

/* dev `who` commits with opts; it is confirmed and delivered to all. */
static void commit(int who, const struct mls_group_commit_opts *o, struct mls_group_commit_out *out)
{
    uint64_t e = mls_group_epoch(d[who].g);
    assert_int_equal(mls_group_commit_create(d[who].g, o, now, out), 0);
    assert_int_equal(mls_group_epoch(d[who].g), e); /* unchanged until confirmed */
    assert_true(mls_group_has_pending_commit(d[who].g));
    follow(out->commit, out->commit_len);
    deliver(who, out->commit, out->commit_len, MLS_GROUP_EV_COMMIT);
    /* The delivery service echoes it back: that confirms it. */
    struct mls_group_event ev;
    assert_int_equal(mls_group_process(d[who].g, out->commit, out->commit_len, now, &ev), 0);
    assert_true(ev.own_commit);
    mls_group_event_reset(&ev);
    assert_int_equal(mls_group_epoch(d[who].g), e + 1);
}

static void join(int who, const struct mls_group_commit_out *out, const uint8_t *tree,
                 size_t tree_len)
{
    assert_int_equal(mls_group_join(out->welcome, out->welcome_len, &d[who].kp, 1, tree, tree_len,
                                    NULL, 0, NULL, now, MLS_GROUP_F_PLAIN_MEMORY, &d[who].g),
                     0);
    assert_true(mls_kp_used(d[who].kp));
}

static void send_app(int from, const char *text, uint8_t **out, size_t *len)
{
    assert_int_equal(mls_group_encrypt(d[from].g, (const uint8_t *)text, strlen(text),
                                       (const uint8_t *)"ad", 2, out, len),
                     0);
}

static void recv_app(int to, const uint8_t *m, size_t len, const char *text)
{
    struct mls_group_event ev;
    assert_int_equal(mls_group_process(d[to].g, m, len, now, &ev), 0);
    assert_int_equal(ev.type, MLS_GROUP_EV_APPLICATION);
    assert_int_equal(ev.len, strlen(text));
    assert_memory_equal(ev.data, text, ev.len);
    assert_int_equal(ev.ad_len, 2);
    mls_group_event_reset(&ev);
}

static int ext_external_senders(struct mls_extension_list *ext)
{
    struct mls_external_senders es = {0};
    struct mls_external_sender s;
    struct tls_writer w;
    memset(&s, 0, sizeof(s));
    s.credential.credential_type = MLS_CREDENTIAL_BASIC;
    if (mls_bytes_set(&s.signature_key, server_pub, 32) ||
        mls_bytes_set(&s.credential.identity, (const uint8_t *)"example.org", 11))
        return ERR_NOMEM;
    es.v = &s;
    es.n = 1;
    tls_writer_init(&w, 0);
    mls_external_senders_encode(&w, &es);
    mls_external_sender_free(&s);
    ext->v = calloc(1, sizeof(*ext->v));
    if (!ext->v)
        return ERR_NOMEM;
    ext->n = 1;
    ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    return tls_writer_take(&w, &ext->v[0].extension_data.data, &ext->v[0].extension_data.len);
}

static void test_group(void **state)
{
    (void)state;
    struct mls_extension_list ext = {0};
    struct mls_group_commit_opts o;
    struct mls_group_commit_out out;
    struct mls_group_event ev;
    uint8_t *kb[2], *m[4], *tree = NULL;
    size_t kl[2], ml[4], tree_len = 0;
    const uint8_t *const *kbc = (const uint8_t *const *)kb;

    now = (uint64_t)time(NULL);
    crypto_sig_keygen(server_pub, server_priv);
    for (int i = 0; i < NDEV; i++) {
        crypto_sig_keygen(d[i].sig_pub, d[i].sig_priv);
        make_kp(&d[i], names[i]);
    }
    /* Identity bytes are bound to the key. */
    {
        uint8_t id[128];
        size_t n;
        assert_int_equal(mls_kp_identity(names[0], d[0].sig_pub, id, sizeof(id), &n), 0);
        assert_int_equal(mls_kp_identity_check(id, n, d[1].sig_pub, 32), ERR_INVALID);
        assert_int_equal(mls_kp_identity("no-at-sign", d[0].sig_pub, id, sizeof(id), &n),
                         ERR_INVALID);
        assert_int_equal(mls_kp_identity(names[0], d[0].sig_pub, id, 10, &n), ERR_TOO_BIG);
    }
    assert_int_equal(ext_external_senders(&ext), 0);
    assert_int_equal(mls_group_create((const uint8_t *)"group-1", 7, d[0].kp, &ext, 0, &d[0].g), 0);
    mls_extension_list_free(&ext);
    make_kp(&d[0], names[0]); /* the creator's KeyPackage is not published */

    /* Alice adds Bob and Carol; the ratchet tree travels in the Welcome. */
    memset(&o, 0, sizeof(o));
    kp_msg(&d[1], &kb[0], &kl[0]);
    kp_msg(&d[2], &kb[1], &kl[1]);
    o.add_kps = kbc;
    o.add_kp_lens = kl;
    o.n_add = 2;
    o.tree_in_welcome = true;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), 0);
    assert_int_equal(mls_group_epoch(d[0].g), 0);
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &(struct mls_group_commit_out){0}),
                     ERR_BADSTATE);
    assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
    assert_int_equal(mls_group_epoch(d[0].g), 1);
    join(1, &out, NULL, 0);
    join(2, &out, NULL, 0);
    /* A KeyPackage opens one Welcome only. */
    struct mls_group *again = NULL;
    assert_int_equal(mls_group_join(out.welcome, out.welcome_len, &d[1].kp, 1, NULL, 0, NULL, 0,
                                    NULL, now, 0, &again),
                     ERR_CONFLICT);
    assert_int_equal(mls_follower_new(out.group_info, out.group_info_len, NULL, 0, &fol), 0);
    mls_group_commit_out_reset(&out);
    free(kb[0]);
    free(kb[1]);
    agree();

    /* Messages, out of order and replayed. */
    send_app(0, "hello", &m[0], &ml[0]);
    recv_app(1, m[0], ml[0], "hello");
    recv_app(2, m[0], ml[0], "hello");
    assert_int_not_equal(mls_group_process(d[1].g, m[0], ml[0], now, &ev), 0);
    free(m[0]);
    send_app(1, "one", &m[0], &ml[0]);
    send_app(1, "two", &m[1], &ml[1]);
    send_app(1, "three", &m[2], &ml[2]);
    recv_app(2, m[2], ml[2], "three");
    /* A corrupted copy fails and does not burn the genuine message's key. */
    m[0][ml[0] - 1] ^= 1;
    assert_int_equal(mls_group_process(d[2].g, m[0], ml[0], now, &ev), ERR_CRYPTO);
    m[0][ml[0] - 1] ^= 1;
    recv_app(2, m[0], ml[0], "one");
    recv_app(0, m[1], ml[1], "two");
    recv_app(2, m[1], ml[1], "two");
    for (int i = 0; i < 3; i++)
        free(m[i]);

    /* Bob proposes an Update; Carol commits it by reference. */
    assert_int_equal(mls_group_propose_update(d[1].g, &m[0], &ml[0]), 0);
    follow(m[0], ml[0]);
    deliver(1, m[0], ml[0], MLS_GROUP_EV_PROPOSAL);
    free(m[0]);
    assert_int_equal(mls_group_commit_pending(d[2].g, now, &out), 0);
    follow(out.commit, out.commit_len);
    deliver(2, out.commit, out.commit_len, MLS_GROUP_EV_COMMIT);
    assert_int_equal(mls_group_process(d[2].g, out.commit, out.commit_len, now, &ev), 0);
    assert_true(ev.own_commit);
    mls_group_event_reset(&ev);
    mls_group_commit_out_reset(&out);
    agree();

    /* Save and restore Bob (secrets included) and go on with the copy. */
    {
        uint8_t *sb = NULL;
        size_t sl = 0;
        struct mls_group *ng = NULL;
        assert_int_equal(mls_group_save(d[1].g, &sb, &sl), 0);
        assert_int_equal(mls_group_load(sb, sl, 0, &ng), 0);
        sb[0] = 99;
        assert_int_equal(mls_group_load(sb, sl, 0, &again), ERR_UNSUPPORTED);
        sb[0] = MLS_GROUP_STATE_VERSION;
        assert_int_equal(mls_group_load(sb, sl - 1, 0, &again), ERR_MALFORMED);
        crypto_wipe(sb, sl);
        free(sb);
        mls_group_free(d[1].g);
        d[1].g = ng;
    }

    /* Alice adds Dave; the tree goes out of band. */
    memset(&o, 0, sizeof(o));
    kp_msg(&d[3], &kb[0], &kl[0]);
    o.add_kps = kbc;
    o.add_kp_lens = kl;
    o.n_add = 1;
    commit(0, &o, &out);
    free(kb[0]);
    assert_int_equal(mls_group_tree(d[0].g, &tree, &tree_len), 0);
    assert_int_not_equal(mls_group_join(out.welcome, out.welcome_len, &d[3].kp, 1, NULL, 0, NULL,
                                        0, NULL, now, 0, &again),
                         0);
    join(3, &out, tree, tree_len);
    free(tree);
    mls_group_commit_out_reset(&out);
    agree();
    send_app(3, "dave here", &m[0], &ml[0]);
    for (int i = 0; i < 3; i++)
        recv_app(i, m[0], ml[0], "dave here");
    free(m[0]);

    /* Racing commits: Bob's wins, Alice's pending one is dropped. */
    memset(&o, 0, sizeof(o));
    o.force_path = true;
    struct mls_group_commit_out lost;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &lost), 0);
    commit(1, &o, &out); /* Alice processes Bob's commit: her pending goes */
    assert_false(mls_group_has_pending_commit(d[0].g));
    assert_int_not_equal(mls_group_process(d[2].g, lost.commit, lost.commit_len, now, &ev), 0);
    mls_group_commit_out_reset(&lost);
    mls_group_commit_out_reset(&out);
    agree();

    /* A PSK and new GroupContext extensions. */
    {
        struct mls_group_psk psk = {(const uint8_t *)"psk-1", 5, (const uint8_t *)"secret", 6};
        for (int i = 0; i < NDEV; i++)
            assert_int_equal(mls_group_add_external_psk(d[i].g, &psk), 0);
        memset(&o, 0, sizeof(o));
        o.psks = &psk;
        o.n_psks = 1;
        commit(2, &o, &out);
        mls_group_commit_out_reset(&out);
        agree();
        assert_int_equal(mls_group_propose_psk(d[0].g, NULL, 0, mls_group_epoch(d[0].g), &m[0],
                                               &ml[0]),
                         0);
        follow(m[0], ml[0]);
        deliver(0, m[0], ml[0], MLS_GROUP_EV_PROPOSAL);
        free(m[0]);
        assert_int_equal(mls_group_commit_pending(d[0].g, now, &out), 0);
        follow(out.commit, out.commit_len);
        deliver(0, out.commit, out.commit_len, MLS_GROUP_EV_COMMIT);
        assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
        mls_group_commit_out_reset(&out);
        agree();
    }

    /* Carol is removed: she cannot read anything sent afterwards. */
    memset(&o, 0, sizeof(o));
    uint32_t carol = mls_group_own_leaf(d[2].g);
    o.remove = &carol;
    o.n_remove = 1;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), 0);
    follow(out.commit, out.commit_len);
    assert_int_equal(mls_group_process(d[2].g, out.commit, out.commit_len, now, &ev), 0);
    assert_true(ev.removed);
    mls_group_event_reset(&ev);
    assert_false(mls_group_active(d[2].g));
    deliver(0, out.commit, out.commit_len, MLS_GROUP_EV_COMMIT);
    assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
    mls_group_commit_out_reset(&out);
    agree();
    send_app(0, "after carol", &m[0], &ml[0]);
    assert_int_not_equal(mls_group_process(d[2].g, m[0], ml[0], now, &ev), 0);
    recv_app(1, m[0], ml[0], "after carol");
    free(m[0]);

    /* The server removes Dave; Bob's client commits it promptly. */
    uint8_t *xr = NULL;
    size_t xl = 0;
    assert_int_equal(mls_follower_external_remove(fol, mls_group_own_leaf(d[3].g), server_priv, 0,
                                                  &xr, &xl),
                     0);
    follow(xr, xl);
    for (int i = 0; i < NDEV; i++) {
        if (!mls_group_active(d[i].g))
            continue;
        assert_int_equal(mls_group_process(d[i].g, xr, xl, now, &ev), 0);
        assert_int_equal(ev.type, MLS_GROUP_EV_PROPOSAL);
        assert_int_equal(ev.sender_type, MLS_SENDER_EXTERNAL);
        assert_true(ev.external_pending);
        mls_group_event_reset(&ev);
    }
    free(xr);
    assert_int_equal(mls_group_commit_pending(d[1].g, now, &out), 0);
    follow(out.commit, out.commit_len);
    assert_int_equal(mls_group_process(d[3].g, out.commit, out.commit_len, now, &ev), 0);
    assert_true(ev.removed);
    mls_group_event_reset(&ev);
    deliver(1, out.commit, out.commit_len, MLS_GROUP_EV_COMMIT);
    assert_int_equal(mls_group_commit_confirm(d[1].g), 0);
    mls_group_commit_out_reset(&out);
    agree();
    assert_int_equal(mls_group_commit_pending(d[1].g, now, &out), ERR_NOT_FOUND);

    /* A GroupInfo of the current epoch starts a follower that agrees. */
    {
        uint8_t *gi = NULL;
        size_t gl = 0;
        struct mls_follower *f2 = NULL;
        assert_int_equal(mls_group_group_info(d[0].g, true, &gi, &gl), 0);
        assert_int_equal(mls_follower_new(gi, gl, NULL, 0, &f2), 0);
        assert_int_equal(mls_follower_epoch(f2), mls_group_epoch(d[0].g));
        mls_follower_free(f2);
        free(gi);
    }

    /* Dave comes back by external commit; then Bob's device resyncs (its
     * old leaf is removed in the same commit). */
    {
        uint8_t *gi = NULL, *cm = NULL;
        size_t gl = 0, cl = 0;
        struct mls_group *ng = NULL;
        make_kp(&d[3], names[3]);
        assert_int_equal(mls_group_group_info(d[0].g, true, &gi, &gl), 0);
        assert_int_equal(mls_group_join_external(gi, gl, NULL, 0, d[3].kp, false, now, 0, &ng, &cm,
                                                 &cl),
                         0);
        free(gi);
        follow(cm, cl);
        mls_group_free(d[3].g);
        d[3].g = ng;
        deliver(3, cm, cl, MLS_GROUP_EV_COMMIT);
        free(cm);
        agree();

        make_kp(&d[1], names[1]);
        assert_int_equal(mls_group_group_info(d[3].g, false, &gi, &gl), 0);
        assert_int_equal(mls_group_tree(d[3].g, &tree, &tree_len), 0);
        assert_int_equal(mls_group_join_external(gi, gl, tree, tree_len, d[1].kp, true, now, 0,
                                                 &ng, &cm, &cl),
                         0);
        free(gi);
        free(tree);
        follow(cm, cl);
        assert_int_equal(mls_group_process(d[1].g, cm, cl, now, &ev), 0);
        assert_true(ev.removed);
        mls_group_event_reset(&ev);
        mls_group_free(d[1].g);
        d[1].g = ng;
        deliver(1, cm, cl, MLS_GROUP_EV_COMMIT);
        free(cm);
        agree();
        send_app(1, "back again", &m[0], &ml[0]);
        recv_app(0, m[0], ml[0], "back again");
        recv_app(3, m[0], ml[0], "back again");
        free(m[0]);
        size_t n = 0;
        assert_int_equal(mls_group_roster(d[0].g, NULL, 0, &n), ERR_TOO_BIG);
        assert_int_equal(n, 3);
    }

    for (int i = 0; i < NDEV; i++) {
        mls_group_free(d[i].g);
        mls_kp_free(d[i].kp);
        d[i].g = NULL;
        d[i].kp = NULL;
    }
    mls_follower_free(fol);
    fol = NULL;
}

/* Commit rules and failure paths; the group is unchanged after each. */
static void test_group_rules(void **state)
{
    (void)state;
    struct mls_group_commit_opts o;
    struct mls_group_commit_out out;
    struct mls_group_event ev;
    uint8_t *kb[2], *m = NULL, ea[32], ea2[32];
    size_t kl[2], ml = 0;
    const uint8_t *const *kbc = (const uint8_t *const *)kb;

    now = (uint64_t)time(NULL);
    for (int i = 0; i < 3; i++) {
        crypto_sig_keygen(d[i].sig_pub, d[i].sig_priv);
        make_kp(&d[i], names[i]);
    }
    assert_int_equal(mls_group_create((const uint8_t *)"group-2", 7, d[0].kp, NULL, 0, &d[0].g), 0);
    make_kp(&d[0], names[0]);
    /* The same KeyPackage twice in one commit. */
    memset(&o, 0, sizeof(o));
    kp_msg(&d[1], &kb[0], &kl[0]);
    kp_msg(&d[1], &kb[1], &kl[1]);
    o.add_kps = kbc;
    o.add_kp_lens = kl;
    o.n_add = 2;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), ERR_INVALID);
    free(kb[1]);
    /* An expired KeyPackage. */
    o.n_add = 1;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now + 10 * 86400, &out), ERR_EXPIRED);
    kp_msg(&d[2], &kb[1], &kl[1]);
    o.n_add = 2;
    o.tree_in_welcome = true;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), 0);
    assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
    join(1, &out, NULL, 0);
    join(2, &out, NULL, 0);
    mls_group_commit_out_reset(&out);
    free(kb[0]);
    free(kb[1]);
    agree();

    /* Removing ourselves, or a blank leaf, is refused. */
    uint32_t self = mls_group_own_leaf(d[0].g), blank = 7;
    memset(&o, 0, sizeof(o));
    o.remove = &self;
    o.n_remove = 1;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), ERR_INVALID);
    o.remove = &blank;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), ERR_INVALID);
    assert_false(mls_group_has_pending_commit(d[0].g));
    /* Group extensions nobody supports. */
    {
        struct mls_extension e = {0xff0a, {NULL, 0}};
        struct mls_extension_list l = {&e, 1};
        memset(&o, 0, sizeof(o));
        o.gce = &l;
        assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), ERR_INVALID);
    }

    /* A tampered commit is refused and changes nothing; the original works. */
    memset(&o, 0, sizeof(o));
    o.force_path = true;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), 0);
    assert_int_equal(mls_group_epoch_authenticator(d[1].g, ea), 0);
    for (size_t off = 20; off < out.commit_len; off += out.commit_len / 7) {
        out.commit[off] ^= 0x40;
        assert_int_not_equal(mls_group_process(d[1].g, out.commit, out.commit_len, now, &ev), 0);
        out.commit[off] ^= 0x40;
        assert_int_equal(mls_group_epoch_authenticator(d[1].g, ea2), 0);
        assert_memory_equal(ea, ea2, 32);
    }
    deliver(0, out.commit, out.commit_len, MLS_GROUP_EV_COMMIT);
    assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
    mls_group_commit_out_reset(&out);
    agree();

    /* A commit that references a proposal Carol never saw. */
    assert_int_equal(mls_group_propose_remove(d[1].g, mls_group_own_leaf(d[2].g), &m, &ml), 0);
    assert_int_equal(mls_group_process(d[0].g, m, ml, now, &ev), 0);
    mls_group_event_reset(&ev);
    memset(&o, 0, sizeof(o));
    o.include_pending = true;
    assert_int_equal(mls_group_commit_create(d[0].g, &o, now, &out), 0);
    assert_int_equal(mls_group_process(d[2].g, out.commit, out.commit_len, now, &ev),
                     ERR_NOT_FOUND);
    assert_int_equal(mls_group_process(d[1].g, out.commit, out.commit_len, now, &ev), 0);
    mls_group_event_reset(&ev);
    assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
    mls_group_commit_out_reset(&out);
    free(m);
    /* A message of an old epoch is refused. */
    assert_int_equal(mls_group_encrypt(d[2].g, (const uint8_t *)"x", 1, NULL, 0, &m, &ml), 0);
    assert_int_equal(mls_group_process(d[1].g, m, ml, now, &ev), ERR_BADSTATE);
    free(m);
    d[2].g = (mls_group_free(d[2].g), NULL);
    agree();

    /* A ReInit ends the group for everyone. */
    assert_int_equal(mls_group_propose_reinit(d[1].g, (const uint8_t *)"group-2b", 8, NULL, &m, &ml),
                     0);
    deliver(1, m, ml, MLS_GROUP_EV_PROPOSAL);
    free(m);
    assert_int_equal(mls_group_commit_pending(d[0].g, now, &out), 0);
    assert_int_equal(mls_group_process(d[1].g, out.commit, out.commit_len, now, &ev), 0);
    assert_true(ev.reinit);
    mls_group_event_reset(&ev);
    assert_false(mls_group_active(d[1].g));
    assert_int_equal(mls_group_commit_confirm(d[0].g), 0);
    assert_false(mls_group_active(d[0].g));
    assert_int_equal(mls_group_epoch(d[0].g), mls_group_epoch(d[1].g));
    assert_int_equal(mls_group_encrypt(d[1].g, (const uint8_t *)"x", 1, NULL, 0, &m, &ml),
                     ERR_BADSTATE);
    mls_group_commit_out_reset(&out);

    for (int i = 0; i < NDEV; i++) {
        mls_group_free(d[i].g);
        mls_kp_free(d[i].kp);
        d[i].g = NULL;
        d[i].kp = NULL;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_group),
                                       cmocka_unit_test(test_group_rules)};
    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
