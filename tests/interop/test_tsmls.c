/*
 * test_tsmls.c: interoperability of Sammen's MLS group state machine
 * (mls_group.h) with ts-mls 1.6.4, an independent TypeScript implementation
 * of RFC 9420, on cipher suite 3.
 *
 * The ts-mls side is the peer in ts-mls-peer/ (a node process driven over a
 * JSON line protocol by tsmls_peer.c), installed into the build tree by the
 * CTest fixture interop/tsmls_install. Nothing of it is linked into Sammen.
 *
 *   (a) a Sammen device creates the group and adds a ts-mls member (ratchet
 *       tree out of band); messages both ways (with authenticated data,
 *       delivered out of order); a ts-mls commit (empty commit with a path)
 *       processed by Sammen; a Sammen commit adding a second ts-mls member
 *       (tree in the Welcome); a ts-mls commit adding a Sammen device, which
 *       joins from the ts-mls Welcome; a Sammen Update proposal committed by
 *       ts-mls; a ts-mls Remove processed by Sammen. The server's follower,
 *       seeded from a Sammen GroupInfo, accepts every commit.
 *   (b) ts-mls creates the group and adds a Sammen device, which joins;
 *       messages both ways; a Sammen commit (path) processed by ts-mls; a
 *       ts-mls commit adding another ts-mls member; a ts-mls Add proposal
 *       committed by reference by Sammen (a second Sammen device joins); a
 *       Sammen Remove processed by ts-mls.
 *   (c) three Sammen devices and three ts-mls members in one group for 40
 *       epochs (seeded, SAMMEN_INTEROP_SEED / SAMMEN_INTEROP_EPOCHS): a
 *       random member of either side commits random Adds and Removes (or
 *       only a path), everyone processes it, the added join, random members
 *       of both sides send messages to all. Two ts-mls 1.6.4 deviations from
 *       RFC 9420 are worked around, not hidden: a ts-mls join refused only
 *       by its over-strict unmerged_leaves check (the peer re-checks the
 *       tree by the RFC rule) leaves that leaf to be removed next epoch; and
 *       commits whose path would not reach the root (ts-mls then derives
 *       commit_secret one step too far) are steered away from. Both are
 *       counted in the output.
 * After every epoch change both sides must agree on the epoch, the
 * serialized GroupContext, the epoch authenticator, an exporter value and
 * the roster. Tampered ts-mls messages (SenderData, content, signature),
 * replays and commits of old epochs are refused without changing the group.
 *
 * Skipped (exit 77) only when node/npm are missing.
 */
#define _POSIX_C_SOURCE 200809L
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
#include "mls_tree.h"
#include "tls.h"
#include "tsmls_peer.h"

#ifndef TSMLS_PEER_DIR
#error "TSMLS_PEER_DIR must name the build-tree folder the peer is installed in"
#endif

#define MAX_MEMBERS 16

static struct tsmls_peer *peer;
static uint64_t now_s;
/* What crossed between the implementations, printed at the end. */
static struct {
    unsigned app_to_peer, app_from_peer, commits_to_peer, commits_from_peer, welcomes_to_peer,
        welcomes_from_peer, agreements, refused;
} seen;

/* A Sammen device: its signature key, an unused KeyPackage, its group. */
struct dev {
    uint8_t sig_priv[CRYPTO_SIGN_PRIV_LEN];
    bool has_key;
    struct mls_kp *kp;
    struct mls_group *g;
};

static void dev_kp(struct dev *d, const char *user)
{
    uint8_t pub[CRYPTO_SIGN_PUB_LEN], ident[MLS_KP_MAX_IDENTITY];
    size_t ident_len = 0;

    if (!d->has_key)
        crypto_sig_keygen(pub, d->sig_priv);
    else
        crypto_sig_public(d->sig_priv, pub);
    d->has_key = true;
    mls_kp_free(d->kp);
    d->kp = NULL;
    assert_int_equal(mls_kp_identity(user, pub, ident, sizeof(ident), &ident_len), 0);
    assert_int_equal(mls_kp_create(ident, ident_len, d->sig_priv, now_s - 3600, now_s + 7 * 86400,
                                   &d->kp),
                     0);
}

static void dev_free(struct dev *d)
{
    mls_kp_free(d->kp);
    mls_group_free(d->g);
    crypto_wipe(d->sig_priv, sizeof(d->sig_priv));
    memset(d, 0, sizeof(*d));
}

/* ---- peer calls ----------------------------------------------------------- */

/* Sends {"cmd": cmd, "id": id, ...extra} (extra is stolen, may be NULL) and
 * returns the reply (caller json_decref()s); fails the test on an error. */
static json_t *call(const char *cmd, const char *id, json_t *extra)
{
    json_t *req = extra != NULL ? extra : json_object(), *reply = NULL;

    assert_non_null(req);
    assert_int_equal(json_object_set_new(req, "cmd", json_string(cmd)), 0);
    if (id != NULL)
        assert_int_equal(json_object_set_new(req, "id", json_string(id)), 0);
    assert_int_equal(tsmls_peer_call(peer, req, &reply), 0);
    json_decref(req);
    return reply;
}

/* Like call(), but the peer is expected to refuse: returns the status. */
static int call_status(const char *cmd, const char *id, json_t *extra)
{
    json_t *req = extra, *reply = NULL;
    int rc;

    json_object_set_new(req, "cmd", json_string(cmd));
    json_object_set_new(req, "id", json_string(id));
    rc = tsmls_peer_call(peer, req, &reply);
    json_decref(req);
    json_decref(reply);
    return rc;
}

static json_t *hexstr(const uint8_t *p, size_t len)
{
    char *s = tsmls_hex(p, len);
    json_t *j;

    assert_non_null(s);
    j = json_string(s);
    free(s);
    assert_non_null(j);
    return j;
}

static void field(const json_t *reply, const char *key, uint8_t **out, size_t *len)
{
    assert_int_equal(tsmls_hex_field(reply, key, out, len), 0);
}

/* The peer's KeyPackage (MLSMessage) for identity id. */
static void peer_kp(const char *id, uint8_t **kp, size_t *len)
{
    json_t *r = call("key_package", id, NULL);

    field(r, "key_package", kp, len);
    json_decref(r);
}

/* Feeds one message to the peer; returns the reply. */
static json_t *peer_process(const char *id, const uint8_t *msg, size_t len)
{
    json_t *req = json_object();

    json_object_set_new(req, "message", hexstr(msg, len));
    return call("process", id, req);
}

static void peer_process_commit(const char *id, const uint8_t *msg, size_t len, uint64_t epoch)
{
    json_t *r = peer_process(id, msg, len);

    assert_string_equal(json_string_value(json_object_get(r, "kind")), "handshake");
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), (json_int_t)epoch);
    json_decref(r);
    seen.commits_to_peer++;
}

/* Peer `id` encrypts pt (with ad); returns the MLSMessage. */
static void peer_encrypt(const char *id, const char *pt, const char *ad, uint8_t **msg,
                         size_t *len)
{
    json_t *req = json_object(), *r;

    json_object_set_new(req, "data", hexstr((const uint8_t *)pt, strlen(pt)));
    if (ad != NULL)
        json_object_set_new(req, "aad", hexstr((const uint8_t *)ad, strlen(ad)));
    r = call("encrypt", id, req);
    field(r, "message", msg, len);
    json_decref(r);
}

/* ---- Sammen-side helpers ---------------------------------------------------- */

/* Processes msg in g and checks it is an application message with pt/ad. */
static void c_expect_app(struct mls_group *g, const uint8_t *msg, size_t len, const char *pt,
                         const char *ad)
{
    struct mls_group_event ev;

    memset(&ev, 0, sizeof(ev));
    assert_int_equal(mls_group_process(g, msg, len, now_s, &ev), 0);
    assert_int_equal(ev.type, MLS_GROUP_EV_APPLICATION);
    assert_int_equal(ev.len, strlen(pt));
    assert_memory_equal(ev.data, pt, ev.len);
    seen.app_from_peer++;
    if (ad != NULL) {
        assert_int_equal(ev.ad_len, strlen(ad));
        assert_memory_equal(ev.authenticated_data, ad, ev.ad_len);
    } else {
        assert_int_equal(ev.ad_len, 0);
    }
    mls_group_event_reset(&ev);
}

static void c_expect_commit(struct mls_group *g, const uint8_t *msg, size_t len, bool removed)
{
    struct mls_group_event ev;
    uint64_t before = mls_group_epoch(g);

    memset(&ev, 0, sizeof(ev));
    assert_int_equal(mls_group_process(g, msg, len, now_s, &ev), 0);
    assert_int_equal(ev.type, MLS_GROUP_EV_COMMIT);
    assert_int_equal(ev.removed, removed);
    seen.commits_from_peer++;
    if (!removed)
        assert_int_equal(ev.epoch, before + 1);
    mls_group_event_reset(&ev);
}

/* Peer `id` decrypts a Sammen message and must get pt (and ad). */
static void peer_expect_app(const char *id, const uint8_t *msg, size_t len, const char *pt,
                            const char *ad)
{
    json_t *r = peer_process(id, msg, len);
    uint8_t *data = NULL, *aad = NULL;
    size_t n = 0, an = 0;

    assert_string_equal(json_string_value(json_object_get(r, "kind")), "application");
    seen.app_to_peer++;
    field(r, "data", &data, &n);
    field(r, "aad", &aad, &an);
    assert_int_equal(n, strlen(pt));
    assert_memory_equal(data, pt, n);
    assert_int_equal(an, ad != NULL ? strlen(ad) : 0);
    if (an > 0)
        assert_memory_equal(aad, ad, an);
    free(data);
    free(aad);
    json_decref(r);
}

static void c_send(struct mls_group *g, const char *pt, const char *ad, uint8_t **msg, size_t *len)
{
    assert_int_equal(mls_group_encrypt(g, (const uint8_t *)pt, strlen(pt), (const uint8_t *)ad,
                                       ad != NULL ? strlen(ad) : 0, msg, len),
                     0);
}

/* Both views of the group must be equal: epoch, GroupContext bytes, epoch
 * authenticator, exporter, roster (leaf index + identity). */
static void agree(const struct mls_group *g, const char *peer_id)
{
    json_t *r, *members;
    uint8_t *gc = NULL, *pgc = NULL, *pea = NULL, *pexp = NULL, *pid = NULL;
    uint8_t ea[CRYPTO_HASH_LEN], exp[32];
    size_t gc_len = 0, pgc_len = 0, pea_len = 0, pexp_len = 0, pid_len = 0, n = 0;
    struct mls_roster_entry roster[MAX_MEMBERS];

    r = call("state", peer_id, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), (json_int_t)mls_group_epoch(g));
    assert_int_equal(mls_group_group_context(g, &gc, &gc_len), 0);
    field(r, "group_context", &pgc, &pgc_len);
    assert_int_equal(gc_len, pgc_len);
    assert_memory_equal(gc, pgc, gc_len);
    assert_int_equal(mls_group_epoch_authenticator(g, ea), 0);
    field(r, "epoch_authenticator", &pea, &pea_len);
    assert_int_equal(pea_len, sizeof(ea));
    assert_memory_equal(ea, pea, sizeof(ea));
    assert_int_equal(mls_group_export(g, "sammen interop", (const uint8_t *)"ctx", 3, exp, sizeof(exp)),
                     0);
    field(r, "exporter", &pexp, &pexp_len);
    assert_int_equal(pexp_len, sizeof(exp));
    assert_memory_equal(exp, pexp, sizeof(exp));

    assert_int_equal(mls_group_roster(g, roster, MAX_MEMBERS, &n), 0);
    members = json_object_get(r, "members");
    assert_true(json_is_array(members));
    assert_int_equal(json_array_size(members), n);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(members, i);
        assert_int_equal(json_integer_value(json_object_get(m, "leaf")),
                         (json_int_t)roster[i].leaf_index);
        field(m, "identity", &pid, &pid_len);
        assert_int_equal(pid_len, roster[i].identity_len);
        assert_memory_equal(pid, roster[i].identity, pid_len);
        free(pid);
        pid = NULL;
    }
    free(gc);
    free(pgc);
    free(pea);
    free(pexp);
    json_decref(r);
    seen.agreements++;
}

static uint32_t leaf_of(const struct mls_group *g, const char *identity)
{
    struct mls_roster_entry roster[MAX_MEMBERS];
    size_t n = 0;

    assert_int_equal(mls_group_roster(g, roster, MAX_MEMBERS, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (roster[i].identity_len == strlen(identity) &&
            memcmp(roster[i].identity, identity, roster[i].identity_len) == 0)
            return roster[i].leaf_index;
    fail_msg("no member %s", identity);
    return UINT32_MAX;
}

/* A commit Sammen created: confirm it (the delivery service accepted it). */
static void c_commit(struct mls_group *g, const struct mls_group_commit_opts *opts,
                     struct mls_group_commit_out *out)
{
    uint64_t before = mls_group_epoch(g);

    memset(out, 0, sizeof(*out));
    assert_int_equal(mls_group_commit_create(g, opts, now_s, out), 0);
    assert_int_equal(mls_group_epoch(g), before); /* unchanged until confirmed */
    assert_int_equal(mls_group_commit_confirm(g), 0);
    assert_int_equal(mls_group_epoch(g), before + 1);
}

static void follow(struct mls_follower *f, const uint8_t *msg, size_t len)
{
    int event = 0;

    assert_int_equal(mls_follower_handle(f, msg, len, now_s, &event), 0);
    assert_int_equal(event, MLS_FOLLOWER_COMMIT);
}

/* The follower's roster must equal g's. */
static void follower_agrees(const struct mls_follower *f, const struct mls_group *g)
{
    struct mls_roster_entry a[MAX_MEMBERS], b[MAX_MEMBERS];
    size_t na = 0, nb = 0;

    assert_int_equal(mls_follower_epoch(f), mls_group_epoch(g));
    assert_int_equal(mls_follower_roster(f, a, MAX_MEMBERS, &na), 0);
    assert_int_equal(mls_group_roster(g, b, MAX_MEMBERS, &nb), 0);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].leaf_index, b[i].leaf_index);
        assert_int_equal(a[i].identity_len, b[i].identity_len);
        assert_memory_equal(a[i].identity, b[i].identity, a[i].identity_len);
    }
}

/* Processing bad must fail and leave g's epoch and authenticator as they
 * were. */
static void c_refuses(struct mls_group *g, const uint8_t *bad, size_t len)
{
    uint8_t ea[CRYPTO_HASH_LEN], ea2[CRYPTO_HASH_LEN];
    struct mls_group_event ev;
    uint64_t epoch = mls_group_epoch(g);

    memset(&ev, 0, sizeof(ev));
    assert_int_equal(mls_group_epoch_authenticator(g, ea), 0);
    assert_true(mls_group_process(g, bad, len, now_s, &ev) < 0);
    assert_null(ev.data);
    mls_group_event_reset(&ev);
    assert_int_equal(mls_group_epoch(g), epoch);
    assert_int_equal(mls_group_epoch_authenticator(g, ea2), 0);
    assert_memory_equal(ea, ea2, sizeof(ea));
    seen.refused++;
}

/* msg re-encoded with one byte of a field flipped: for a PrivateMessage the
 * encrypted SenderData (at_end false) or the content ciphertext (at_end
 * true); for a PublicMessage a byte of the signature. *len gets the size. */
static uint8_t *tampered(const uint8_t *msg, size_t msg_len, bool at_end, size_t *len)
{
    struct mls_message m;
    struct tls_writer w;
    uint8_t *out = NULL;

    memset(&m, 0, sizeof(m));
    assert_int_equal(mls_message_parse(msg, msg_len, &m), 0);
    if (m.wire_format == MLS_WF_PRIVATE_MESSAGE) {
        struct mls_bytes *b = at_end ? &m.private_message.ciphertext
                                     : &m.private_message.encrypted_sender_data;
        assert_true(b->len > 20);
        b->data[at_end ? b->len - 3 : 2] ^= 0x20;
    } else {
        assert_int_equal(m.wire_format, MLS_WF_PUBLIC_MESSAGE);
        assert_true(m.public_message.auth.signature.len > 10);
        m.public_message.auth.signature.data[5] ^= 0x20;
    }
    tls_writer_init(&w, 0);
    mls_message_encode(&w, &m);
    assert_int_equal(tls_writer_take(&w, &out, len), 0);
    mls_message_free(&m);
    return out;
}

/* Forged copies of msg are refused and leave g as it was, so the genuine
 * message still goes through afterwards: for a PrivateMessage one with a
 * corrupted SenderData and one with a corrupted content ciphertext (the
 * latter must not burn the generation's key); for a PublicMessage one with a
 * corrupted signature. */
static void c_refuses_tampered(struct mls_group *g, const uint8_t *msg, size_t len)
{
    size_t blen = 0;
    uint8_t *bad = tampered(msg, len, false, &blen);

    c_refuses(g, bad, blen);
    free(bad);
    bad = tampered(msg, len, true, &blen);
    c_refuses(g, bad, blen);
    free(bad);
}

/* After msg was accepted: a forged copy and msg itself (a replay) are
 * refused. */
static void c_refuses_tampered_after(struct mls_group *g, const uint8_t *msg, size_t len)
{
    size_t blen = 0;
    uint8_t *bad = tampered(msg, len, true, &blen);

    c_refuses(g, bad, blen);
    free(bad);
    c_refuses(g, msg, len);
}

/* Identity string (NUL-terminated) of a Sammen device for user. */
static void dev_identity(const struct dev *d, const char *user, char *buf, size_t cap)
{
    uint8_t pub[CRYPTO_SIGN_PUB_LEN];
    size_t n = 0;

    crypto_sig_public(d->sig_priv, pub);
    assert_int_equal(mls_kp_identity(user, pub, (uint8_t *)buf, cap - 1, &n), 0);
    buf[n] = '\0';
}

/* ---- (a) Sammen creates the group ---------------------------------------- */

static void test_sammen_creates(void **state)
{
    struct dev alice = {0}, dave = {0};
    struct mls_follower *fol = NULL;
    struct mls_group_commit_out co;
    struct mls_group_commit_opts opts;
    uint8_t *kp = NULL, *msg = NULL, *m2 = NULL, *m3 = NULL, *tree = NULL, *gi = NULL;
    uint8_t *pwelcome = NULL, *pcommit = NULL;
    size_t kp_len = 0, len = 0, l2 = 0, l3 = 0, tree_len = 0, gi_len = 0, pw_len = 0, pc_len = 0;
    const uint8_t *kps[1];
    size_t kp_lens[1];
    char dave_id[MLS_KP_MAX_IDENTITY + 1];
    json_t *req, *r;
    static const uint8_t gid[] = "interop group A";

    (void)state;
    dev_kp(&alice, "alice@a.example");
    assert_int_equal(mls_group_create(gid, sizeof(gid) - 1, alice.kp, NULL, 0, &alice.g), 0);
    /* The server's follower, seeded from Sammen's GroupInfo of epoch 0. */
    assert_int_equal(mls_group_group_info(alice.g, true, &gi, &gi_len), 0);
    assert_int_equal(mls_follower_new(gi, gi_len, NULL, 0, &fol), 0);
    free(gi);
    gi = NULL;
    follower_agrees(fol, alice.g);

    /* alice adds ts-mls bob; the tree goes out of band. */
    peer_kp("bob", &kp, &kp_len);
    kps[0] = kp;
    kp_lens[0] = kp_len;
    memset(&opts, 0, sizeof(opts));
    opts.add_kps = kps;
    opts.add_kp_lens = kp_lens;
    opts.n_add = 1;
    c_commit(alice.g, &opts, &co);
    assert_non_null(co.welcome);
    follow(fol, co.commit, co.commit_len);
    /* A follower seeded from the GroupInfo uploaded with this commit (what
     * the server stores) agrees with the one that followed it. */
    assert_non_null(co.group_info);
    {
        struct mls_follower *f1 = NULL;
        assert_int_equal(mls_follower_new(co.group_info, co.group_info_len, NULL, 0, &f1), 0);
        follower_agrees(f1, alice.g);
        mls_follower_free(f1);
    }
    assert_int_equal(mls_group_tree(alice.g, &tree, &tree_len), 0);
    req = json_object();
    json_object_set_new(req, "welcome", hexstr(co.welcome, co.welcome_len));
    json_object_set_new(req, "ratchet_tree", hexstr(tree, tree_len));
    json_decref(call("join", "bob", req));
    seen.welcomes_to_peer++;
    mls_group_commit_out_reset(&co);
    free(kp);
    free(tree);
    kp = tree = NULL;
    agree(alice.g, "bob");
    follower_agrees(fol, alice.g);
    /* A GroupInfo signed on demand (epoch 1) seeds an equivalent follower. */
    {
        struct mls_follower *f2 = NULL;
        assert_int_equal(mls_group_group_info(alice.g, true, &gi, &gi_len), 0);
        assert_int_equal(mls_follower_new(gi, gi_len, NULL, 0, &f2), 0);
        follower_agrees(f2, alice.g);
        mls_follower_free(f2);
        free(gi);
        gi = NULL;
    }

    /* Messages both ways, with authenticated data. */
    c_send(alice.g, "hello bob, from Sammen", "ad-1", &msg, &len);
    peer_expect_app("bob", msg, len, "hello bob, from Sammen", "ad-1");
    free(msg);
    c_send(alice.g, "no ad", NULL, &msg, &len);
    peer_expect_app("bob", msg, len, "no ad", NULL);
    free(msg);
    peer_encrypt("bob", "hello alice, from ts-mls", "bob-ad", &msg, &len);
    c_refuses_tampered(alice.g, msg, len);
    c_expect_app(alice.g, msg, len, "hello alice, from ts-mls", "bob-ad");
    c_refuses_tampered_after(alice.g, msg, len);
    free(msg);
    /* Out of order: three messages delivered last first. */
    peer_encrypt("bob", "one", NULL, &msg, &len);
    peer_encrypt("bob", "two", NULL, &m2, &l2);
    peer_encrypt("bob", "three", NULL, &m3, &l3);
    c_expect_app(alice.g, m3, l3, "three", NULL);
    c_expect_app(alice.g, msg, len, "one", NULL);
    c_expect_app(alice.g, m2, l2, "two", NULL);
    c_refuses(alice.g, m2, l2); /* a replay */
    free(msg);
    free(m2);
    free(m3);

    /* ts-mls commits (no proposals: a path, i.e. a full key update). */
    r = call("update", "bob", NULL);
    field(r, "commit", &pcommit, &pc_len);
    json_decref(r);
    c_refuses_tampered(alice.g, pcommit, pc_len);
    c_expect_commit(alice.g, pcommit, pc_len, false);
    c_refuses(alice.g, pcommit, pc_len); /* now a commit of an old epoch */
    follow(fol, pcommit, pc_len);
    free(pcommit);
    pcommit = NULL;
    agree(alice.g, "bob");
    follower_agrees(fol, alice.g);

    /* Sammen commits an Add of ts-mls carol, tree inside the Welcome. */
    peer_kp("carol", &kp, &kp_len);
    kps[0] = kp;
    kp_lens[0] = kp_len;
    memset(&opts, 0, sizeof(opts));
    opts.add_kps = kps;
    opts.add_kp_lens = kp_lens;
    opts.n_add = 1;
    opts.tree_in_welcome = true;
    c_commit(alice.g, &opts, &co);
    follow(fol, co.commit, co.commit_len);
    peer_process_commit("bob", co.commit, co.commit_len, mls_group_epoch(alice.g));
    req = json_object();
    json_object_set_new(req, "welcome", hexstr(co.welcome, co.welcome_len));
    json_decref(call("join", "carol", req));
    seen.welcomes_to_peer++;
    mls_group_commit_out_reset(&co);
    free(kp);
    kp = NULL;
    agree(alice.g, "bob");
    agree(alice.g, "carol");
    follower_agrees(fol, alice.g);
    peer_encrypt("carol", "carol speaks", NULL, &msg, &len);
    c_expect_app(alice.g, msg, len, "carol speaks", NULL);
    json_decref(peer_process("bob", msg, len));
    free(msg);

    /* ts-mls bob commits an Add of Sammen device dave, who joins from the
     * ts-mls Welcome (tree inside). */
    dev_kp(&dave, "dave@d.example");
    assert_int_equal(mls_kp_message(dave.kp, &kp, &kp_len), 0);
    req = json_object();
    json_object_set_new(req, "key_packages", json_pack("[o]", hexstr(kp, kp_len)));
    r = call("add", "bob", req);
    field(r, "commit", &pcommit, &pc_len);
    field(r, "welcome", &pwelcome, &pw_len);
    json_decref(r);
    free(kp);
    kp = NULL;
    c_expect_commit(alice.g, pcommit, pc_len, false);
    follow(fol, pcommit, pc_len);
    peer_process_commit("carol", pcommit, pc_len, mls_group_epoch(alice.g));
    assert_int_equal(mls_group_join(pwelcome, pw_len, &dave.kp, 1, NULL, 0, NULL, 0, NULL, now_s, 0,
                                    &dave.g),
                     0);
    assert_true(mls_kp_used(dave.kp));
    seen.welcomes_from_peer++;
    free(pcommit);
    free(pwelcome);
    pcommit = pwelcome = NULL;
    agree(alice.g, "bob");
    agree(dave.g, "bob");
    agree(dave.g, "carol");
    follower_agrees(fol, dave.g);
    c_send(dave.g, "dave here", "d", &msg, &len);
    peer_expect_app("bob", msg, len, "dave here", "d");
    peer_expect_app("carol", msg, len, "dave here", "d");
    c_expect_app(alice.g, msg, len, "dave here", "d");
    free(msg);

    /* dave proposes an Update (PublicMessage); ts-mls bob commits it by
     * reference (its commit carries every pending proposal). */
    assert_int_equal(mls_group_propose_update(dave.g, &msg, &len), 0);
    {
        struct mls_group_event ev;
        memset(&ev, 0, sizeof(ev));
        assert_int_equal(mls_group_process(alice.g, msg, len, now_s, &ev), 0);
        assert_int_equal(ev.type, MLS_GROUP_EV_PROPOSAL);
        mls_group_event_reset(&ev);
    }
    assert_int_equal(mls_follower_handle(fol, msg, len, now_s, NULL), 0);
    json_decref(peer_process("bob", msg, len));
    json_decref(peer_process("carol", msg, len));
    free(msg);
    r = call("update", "bob", NULL);
    field(r, "commit", &pcommit, &pc_len);
    json_decref(r);
    c_expect_commit(alice.g, pcommit, pc_len, false);
    c_expect_commit(dave.g, pcommit, pc_len, false);
    follow(fol, pcommit, pc_len);
    peer_process_commit("carol", pcommit, pc_len, mls_group_epoch(alice.g));
    free(pcommit);
    pcommit = NULL;
    agree(alice.g, "bob");
    agree(dave.g, "carol");
    follower_agrees(fol, alice.g);

    /* ts-mls carol removes alice (a Sammen member); dave follows. */
    req = json_object();
    json_object_set_new(req, "leaves", json_pack("[i]", (json_int_t)mls_group_own_leaf(alice.g)));
    r = call("remove", "carol", req);
    field(r, "commit", &pcommit, &pc_len);
    json_decref(r);
    c_expect_commit(alice.g, pcommit, pc_len, true);
    assert_false(mls_group_active(alice.g));
    c_expect_commit(dave.g, pcommit, pc_len, false);
    follow(fol, pcommit, pc_len);
    peer_process_commit("bob", pcommit, pc_len, mls_group_epoch(dave.g));
    free(pcommit);
    pcommit = NULL;
    agree(dave.g, "bob");
    agree(dave.g, "carol");
    follower_agrees(fol, dave.g);
    /* alice can no longer send; what dave sends now alice cannot read. */
    assert_true(mls_group_encrypt(alice.g, (const uint8_t *)"x", 1, NULL, 0, &msg, &len) < 0);
    c_send(dave.g, "after alice left", NULL, &msg, &len);
    peer_expect_app("carol", msg, len, "after alice left", NULL);
    {
        struct mls_group_event ev;
        memset(&ev, 0, sizeof(ev));
        assert_true(mls_group_process(alice.g, msg, len, now_s, &ev) < 0);
        mls_group_event_reset(&ev);
    }
    free(msg);

    /* Sammen dave commits an Update with a path; ts-mls processes it. */
    memset(&opts, 0, sizeof(opts));
    opts.force_path = true;
    c_commit(dave.g, &opts, &co);
    follow(fol, co.commit, co.commit_len);
    peer_process_commit("bob", co.commit, co.commit_len, mls_group_epoch(dave.g));
    peer_process_commit("carol", co.commit, co.commit_len, mls_group_epoch(dave.g));
    mls_group_commit_out_reset(&co);
    agree(dave.g, "bob");
    agree(dave.g, "carol");
    follower_agrees(fol, dave.g);
    dev_identity(&dave, "dave@d.example", dave_id, sizeof(dave_id));
    assert_int_equal(leaf_of(dave.g, dave_id), mls_group_own_leaf(dave.g));

    mls_follower_free(fol);
    dev_free(&alice);
    dev_free(&dave);
}

/* ---- (b) ts-mls creates the group ------------------------------------------ */

static void test_tsmls_creates(void **state)
{
    struct dev frank = {0}, hank = {0};
    struct mls_group_commit_out co;
    struct mls_group_commit_opts opts;
    uint8_t *kp = NULL, *msg = NULL, *pwelcome = NULL, *pcommit = NULL;
    size_t kp_len = 0, len = 0, pw_len = 0, pc_len = 0;
    uint32_t remove[1];
    json_t *req, *r;
    static const uint8_t gid[] = "interop group B";

    (void)state;
    json_decref(call("key_package", "erin", NULL));
    req = json_object();
    json_object_set_new(req, "group_id", hexstr(gid, sizeof(gid) - 1));
    json_decref(call("create_group", "erin", req));

    /* erin adds Sammen frank; frank joins from the Welcome (tree inside). */
    dev_kp(&frank, "frank@f.example");
    assert_int_equal(mls_kp_message(frank.kp, &kp, &kp_len), 0);
    req = json_object();
    json_object_set_new(req, "key_packages", json_pack("[o]", hexstr(kp, kp_len)));
    r = call("add", "erin", req);
    field(r, "welcome", &pwelcome, &pw_len);
    json_decref(r);
    free(kp);
    kp = NULL;
    /* A tampered Welcome is refused and does not consume the KeyPackage. */
    pwelcome[pw_len - 3] ^= 1;
    assert_true(mls_group_join(pwelcome, pw_len, &frank.kp, 1, NULL, 0, NULL, 0, NULL, now_s, 0,
                               &frank.g) < 0);
    assert_null(frank.g);
    assert_false(mls_kp_used(frank.kp));
    pwelcome[pw_len - 3] ^= 1;
    assert_int_equal(mls_group_join(pwelcome, pw_len, &frank.kp, 1, NULL, 0, NULL, 0, NULL, now_s, 0,
                                    &frank.g),
                     0);
    free(pwelcome);
    pwelcome = NULL;
    seen.welcomes_from_peer++;
    agree(frank.g, "erin");

    /* Messages both ways. */
    c_send(frank.g, "hi erin", "f", &msg, &len);
    peer_expect_app("erin", msg, len, "hi erin", "f");
    free(msg);
    peer_encrypt("erin", "hi frank", NULL, &msg, &len);
    c_expect_app(frank.g, msg, len, "hi frank", NULL);
    free(msg);

    /* Sammen frank commits a key update (path). */
    memset(&opts, 0, sizeof(opts));
    opts.force_path = true;
    c_commit(frank.g, &opts, &co);
    peer_process_commit("erin", co.commit, co.commit_len, mls_group_epoch(frank.g));
    mls_group_commit_out_reset(&co);
    agree(frank.g, "erin");

    /* ts-mls erin adds ts-mls gina; frank processes. */
    peer_kp("gina", &kp, &kp_len);
    req = json_object();
    json_object_set_new(req, "key_packages", json_pack("[o]", hexstr(kp, kp_len)));
    r = call("add", "erin", req);
    field(r, "commit", &pcommit, &pc_len);
    field(r, "welcome", &pwelcome, &pw_len);
    json_decref(r);
    free(kp);
    kp = NULL;
    c_expect_commit(frank.g, pcommit, pc_len, false);
    req = json_object();
    json_object_set_new(req, "welcome", hexstr(pwelcome, pw_len));
    json_decref(call("join", "gina", req));
    free(pcommit);
    free(pwelcome);
    pcommit = pwelcome = NULL;
    agree(frank.g, "erin");
    agree(frank.g, "gina");
    peer_encrypt("gina", "gina says hi", "g", &msg, &len);
    c_expect_app(frank.g, msg, len, "gina says hi", "g");
    free(msg);

    /* ts-mls erin proposes adding Sammen device hank; Sammen frank commits
     * it by reference (ProposalRefs must agree across implementations);
     * erin and gina process the commit, hank joins from frank's Welcome. */
    dev_kp(&hank, "hank@h.example");
    assert_int_equal(mls_kp_message(hank.kp, &kp, &kp_len), 0);
    req = json_object();
    json_object_set_new(req, "add_key_packages", json_pack("[o]", hexstr(kp, kp_len)));
    r = call("propose", "erin", req);
    field(r, "message", &msg, &len);
    json_decref(r);
    free(kp);
    kp = NULL;
    {
        struct mls_group_event ev;
        memset(&ev, 0, sizeof(ev));
        assert_int_equal(mls_group_process(frank.g, msg, len, now_s, &ev), 0);
        assert_int_equal(ev.type, MLS_GROUP_EV_PROPOSAL);
        assert_int_equal(ev.proposal_type, MLS_PROPOSAL_ADD);
        mls_group_event_reset(&ev);
    }
    json_decref(peer_process("gina", msg, len));
    free(msg);
    memset(&opts, 0, sizeof(opts));
    opts.include_pending = true;
    opts.tree_in_welcome = true;
    c_commit(frank.g, &opts, &co);
    assert_non_null(co.welcome);
    peer_process_commit("erin", co.commit, co.commit_len, mls_group_epoch(frank.g));
    peer_process_commit("gina", co.commit, co.commit_len, mls_group_epoch(frank.g));
    assert_int_equal(mls_group_join(co.welcome, co.welcome_len, &hank.kp, 1, NULL, 0, NULL, 0, NULL,
                                    now_s, 0, &hank.g),
                     0);
    mls_group_commit_out_reset(&co);
    agree(frank.g, "erin");
    agree(hank.g, "gina");
    c_send(hank.g, "hank here", NULL, &msg, &len);
    peer_expect_app("erin", msg, len, "hank here", NULL);
    c_expect_app(frank.g, msg, len, "hank here", NULL);
    free(msg);

    /* Sammen frank removes gina (leaf 2), with a path; erin processes, and
     * gina can no longer read what frank sends. */
    remove[0] = leaf_of(frank.g, "gina");
    memset(&opts, 0, sizeof(opts));
    opts.remove = remove;
    opts.n_remove = 1;
    c_commit(frank.g, &opts, &co);
    peer_process_commit("erin", co.commit, co.commit_len, mls_group_epoch(frank.g));
    c_expect_commit(hank.g, co.commit, co.commit_len, false);
    mls_group_commit_out_reset(&co);
    agree(frank.g, "erin");
    agree(hank.g, "erin");
    c_send(frank.g, "gina is gone", NULL, &msg, &len);
    peer_expect_app("erin", msg, len, "gina is gone", NULL);
    req = json_object();
    json_object_set_new(req, "message", hexstr(msg, len));
    fprintf(stderr, "(a refusal by the removed ts-mls member follows, as expected)\n");
    assert_true(call_status("process", "gina", req) < 0);
    free(msg);

    dev_free(&frank);
    dev_free(&hank);
}

/* ---- (c) both implementations in one group, random operations ---------- */

#define MX_S 3       /* Sammen devices */
#define MX_T 3       /* ts-mls members */
#define MX_P (MX_S + MX_T)
#define MX_EPOCHS 40 /* SAMMEN_INTEROP_EPOCHS overrides */

struct mx {
    struct dev s[MX_S];
    char s_user[MX_S][32];
    char s_ident[MX_S][MLS_KP_MAX_IDENTITY + 1];
    bool t_in[MX_T];
    /* In the roster but without a ts-mls state: ts-mls refused to join an
     * RFC-valid tree (the ts-mls 1.6.4 issue described in peer.mjs); the
     * next commit removes it. */
    bool t_zombie[MX_T];
    unsigned zombies;
    unsigned steered; /* epochs changed to avoid mx_root_filtered() */
    uint64_t rng;
};

static uint64_t mx_rnd64(struct mx *x)
{
    uint64_t z = (x->rng += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned mx_rnd(struct mx *x, unsigned n)
{
    return (unsigned)(mx_rnd64(x) % n);
}

/* In the roster. */
static bool mx_in(const struct mx *x, unsigned p)
{
    return p < MX_S ? x->s[p].g != NULL : x->t_in[p - MX_S] || x->t_zombie[p - MX_S];
}

/* In the roster and holding a group state. */
static bool mx_active(const struct mx *x, unsigned p)
{
    return p < MX_S ? x->s[p].g != NULL : x->t_in[p - MX_S];
}

static void mx_tid(unsigned p, char out[8])
{
    int n = snprintf(out, 8, "t%u", p - MX_S);
    assert_true(n > 0 && n < 8);
}

static const char *mx_ident(const struct mx *x, unsigned p, char buf[8], size_t *len)
{
    if (p < MX_S) {
        *len = strlen(x->s_ident[p]);
        return x->s_ident[p];
    }
    mx_tid(p, buf);
    *len = strlen(buf);
    return buf;
}

/* A Sammen member (every group keeps one). */
static struct mls_group *mx_ref(const struct mx *x)
{
    for (unsigned p = 0; p < MX_S; p++)
        if (x->s[p].g != NULL)
            return x->s[p].g;
    fail_msg("no Sammen member left");
    return NULL;
}

static uint32_t mx_leaf(const struct mx *x, unsigned p)
{
    char buf[8];
    size_t len = 0;
    const char *id = mx_ident(x, p, buf, &len);
    struct mls_roster_entry r[MAX_MEMBERS];
    size_t n = 0;

    assert_int_equal(mls_group_roster(mx_ref(x), r, MAX_MEMBERS, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (r[i].identity_len == len && memcmp(r[i].identity, id, len) == 0)
            return r[i].leaf_index;
    fail_msg("participant %u not in the roster", p);
    return UINT32_MAX;
}

/* Every member agrees with every member of the other implementation. */
static void mx_agree(const struct mx *x)
{
    unsigned n_in = 0;
    struct mls_roster_entry r[MAX_MEMBERS];
    size_t n = 0;

    for (unsigned p = 0; p < MX_P; p++)
        n_in += mx_in(x, p);
    assert_int_equal(mls_group_roster(mx_ref(x), r, MAX_MEMBERS, &n), 0);
    assert_int_equal(n, n_in);
    for (unsigned p = 0; p < MX_S; p++) {
        if (x->s[p].g == NULL)
            continue;
        for (unsigned t = MX_S; t < MX_P; t++) {
            char id[8];
            if (!mx_active(x, t))
                continue;
            mx_tid(t, id);
            agree(x->s[p].g, id);
        }
    }
}

/* Random application messages, each delivered to every other member. */
static void mx_traffic(struct mx *x, unsigned epoch)
{
    unsigned senders = 1 + mx_rnd(x, 2);

    for (unsigned k = 0; k < senders; k++) {
        unsigned from;
        char text[64], id[8];
        uint8_t *msg = NULL;
        size_t len = 0;

        do
            from = mx_rnd(x, MX_P);
        while (!mx_active(x, from));
        snprintf(text, sizeof(text), "epoch %u message %u from %u", epoch, k, from);
        if (from < MX_S) {
            c_send(x->s[from].g, text, NULL, &msg, &len);
        } else {
            mx_tid(from, id);
            peer_encrypt(id, text, NULL, &msg, &len);
        }
        for (unsigned p = 0; p < MX_P; p++) {
            if (p == from || !mx_active(x, p))
                continue;
            if (p < MX_S) {
                if ((epoch + k + p) % 4 == 0) /* not from the PRNG: keeps the seed's path */
                    c_refuses_tampered(x->s[p].g, msg, len);
                c_expect_app(x->s[p].g, msg, len, text, NULL);
            } else {
                mx_tid(p, id);
                peer_expect_app(id, msg, len, text, NULL);
            }
        }
        free(msg);
    }
}

/* ts-mls 1.6.4 derives commit_secret by ratcheting the path secret up to
 * the root even when the root is not on the committer's filtered direct path
 * (pathSecrets.js getCommitSecret), one DeriveSecret more than RFC 9420
 * §12.4.1 ("path_secret[n+1] derived from the last path secret value
 * derived for the UpdatePath"), so neither side can then process the other's
 * commit. That happens when, after the commit's Removes and Adds (and
 * truncation), the committer is in the right half of the tree and the left
 * half is empty. This predicts it from the roster, so the test can avoid it. */
static bool mx_root_filtered(const struct mx *x, unsigned committer, const bool *removed,
                             unsigned n_add)
{
    bool occ[2 * MAX_MEMBERS] = {false};
    struct mls_roster_entry r[MAX_MEMBERS];
    uint32_t width = 1, last = 0, c = mx_leaf(x, committer);
    size_t n = 0;

    assert_int_equal(mls_group_roster(mx_ref(x), r, MAX_MEMBERS, &n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].leaf_index < MAX_MEMBERS);
        occ[r[i].leaf_index] = true;
    }
    for (unsigned p = 0; p < MX_P; p++)
        if (removed[p])
            occ[mx_leaf(x, p)] = false;
    for (unsigned k = 0; k < n_add; k++) { /* leftmost blank leaf */
        uint32_t i = 0;
        while (occ[i])
            i++;
        assert_true(i < 2 * MAX_MEMBERS);
        occ[i] = true;
    }
    for (uint32_t i = 0; i < 2 * MAX_MEMBERS; i++)
        if (occ[i])
            last = i;
    while (width <= last) /* truncation: the smallest 2^d > last */
        width *= 2;
    if (width < 2 || c < width / 2)
        return false;
    for (uint32_t i = 0; i < width / 2; i++)
        if (occ[i])
            return false;
    return true;
}

/* One epoch: a random member commits random Adds/Removes (or a path). */
static void mx_epoch(struct mx *x)
{
    unsigned committer, n_in = 0, n_add = 0, n_rm = 0, n_forced, s_left = 0, t_left = 0;
    unsigned add[MX_P], rm[MX_P];
    bool removed[MX_P] = {false};
    uint8_t *kp_bufs[MX_P], *commit = NULL, *welcome = NULL, *tree = NULL;
    size_t kp_lens[MX_P], commit_len = 0, welcome_len = 0, tree_len = 0;
    uint32_t rm_leaves[MX_P];
    bool tree_in_welcome = true;
    uint64_t new_epoch;
    char id[8];

    memset(kp_bufs, 0, sizeof(kp_bufs));
    for (unsigned p = 0; p < MX_P; p++)
        n_in += mx_in(x, p);
    do
        committer = mx_rnd(x, MX_P);
    while (!mx_active(x, committer));
    /* Removes: every zombie, then random members, keeping an active Sammen
     * member and an active ts-mls member. */
    for (unsigned p = MX_S; p < MX_P; p++)
        if (x->t_zombie[p - MX_S]) {
            removed[p] = true;
            rm[n_rm++] = p;
        }
    n_forced = n_rm;
    for (unsigned p = 0; p < MX_P; p++) {
        if (!mx_active(x, p) || p == committer)
            continue;
        if (n_in - n_rm > 2 && mx_rnd(x, 4) == 0) {
            removed[p] = true;
            rm[n_rm++] = p;
        }
    }
    for (unsigned p = 0; p < MX_P; p++)
        if (mx_active(x, p) && !removed[p])
            *(p < MX_S ? &s_left : &t_left) += 1;
    while ((s_left == 0 || t_left == 0) && n_rm > n_forced) { /* undo the last */
        unsigned p = rm[--n_rm];
        removed[p] = false;
        *(p < MX_S ? &s_left : &t_left) += 1;
    }
    /* Adds: outsiders, a third of the time each. */
    for (unsigned p = 0; p < MX_P; p++)
        if (!mx_in(x, p) && !removed[p] && mx_rnd(x, 3) == 0) {
            add[n_add++] = p;
        }
    /* Steer clear of the ts-mls commit-secret issue (see mx_root_filtered):
     * drop the random Removes, then add an outsider (it takes the leftmost
     * blank leaf), until the committer's path reaches the root. */
    if (mx_root_filtered(x, committer, removed, n_add)) {
        while (n_rm > n_forced) {
            unsigned p = rm[--n_rm];
            removed[p] = false;
        }
        for (unsigned p = 0; p < MX_P && mx_root_filtered(x, committer, removed, n_add); p++) {
            bool listed = false;
            for (unsigned i = 0; i < n_add; i++)
                listed |= add[i] == p;
            if (!mx_in(x, p) && !removed[p] && !listed)
                add[n_add++] = p;
        }
        assert_false(mx_root_filtered(x, committer, removed, n_add));
        x->steered++;
    }
    for (unsigned i = 0; i < n_rm; i++)
        rm_leaves[i] = mx_leaf(x, rm[i]);
    for (unsigned i = 0; i < n_add; i++) {
        unsigned p = add[i];
        if (p < MX_S) {
            dev_kp(&x->s[p], x->s_user[p]);
            assert_int_equal(mls_kp_message(x->s[p].kp, &kp_bufs[i], &kp_lens[i]), 0);
        } else {
            mx_tid(p, id);
            peer_kp(id, &kp_bufs[i], &kp_lens[i]);
        }
    }

    if (getenv("SAMMEN_INTEROP_VERBOSE") != NULL) {
        printf("epoch %llu: %s%u commits, +", (unsigned long long)mls_group_epoch(mx_ref(x)),
               committer < MX_S ? "s" : "t", committer < MX_S ? committer : committer - MX_S);
        for (unsigned i = 0; i < n_add; i++)
            printf(" %s%u", add[i] < MX_S ? "s" : "t", add[i] < MX_S ? add[i] : add[i] - MX_S);
        printf(" -");
        for (unsigned i = 0; i < n_rm; i++)
            printf(" %s%u(leaf %u)", rm[i] < MX_S ? "s" : "t", rm[i] < MX_S ? rm[i] : rm[i] - MX_S,
                   rm_leaves[i]);
        printf("\n");
    }
    if (committer < MX_S) {
        struct mls_group_commit_opts o;
        struct mls_group_commit_out co;
        memset(&o, 0, sizeof(o));
        o.add_kps = (const uint8_t *const *)kp_bufs;
        o.add_kp_lens = kp_lens;
        o.n_add = n_add;
        o.remove = rm_leaves;
        o.n_remove = n_rm;
        o.force_path = n_add + n_rm == 0 || mx_rnd(x, 2);
        o.tree_in_welcome = tree_in_welcome = mx_rnd(x, 2);
        c_commit(x->s[committer].g, &o, &co);
        commit = co.commit;
        commit_len = co.commit_len;
        welcome = co.welcome;
        welcome_len = co.welcome_len;
        co.commit = co.welcome = NULL;
        mls_group_commit_out_reset(&co);
        new_epoch = mls_group_epoch(x->s[committer].g);
        if (!tree_in_welcome)
            assert_int_equal(mls_group_tree(x->s[committer].g, &tree, &tree_len), 0);
    } else {
        json_t *req = json_object(), *adds = json_array(), *rms = json_array(), *r;
        for (unsigned i = 0; i < n_add; i++)
            json_array_append_new(adds, hexstr(kp_bufs[i], kp_lens[i]));
        for (unsigned i = 0; i < n_rm; i++)
            json_array_append_new(rms, json_integer(rm_leaves[i]));
        json_object_set_new(req, "add_key_packages", adds);
        json_object_set_new(req, "remove_leaves", rms);
        mx_tid(committer, id);
        r = call("commit", id, req);
        field(r, "commit", &commit, &commit_len);
        if (n_add > 0)
            field(r, "welcome", &welcome, &welcome_len);
        new_epoch = (uint64_t)json_integer_value(json_object_get(r, "epoch"));
        json_decref(r);
    }

    /* Deliver the commit to the other members. */
    for (unsigned p = 0; p < MX_P; p++) {
        if (p == committer || !mx_in(x, p))
            continue;
        if (p < MX_S) {
            c_expect_commit(x->s[p].g, commit, commit_len, removed[p]);
            if (removed[p]) {
                mls_group_free(x->s[p].g);
                x->s[p].g = NULL;
            }
        } else if (removed[p]) {
            x->t_in[p - MX_S] = false; /* ts-mls members are not told */
            x->t_zombie[p - MX_S] = false;
        } else if (x->t_zombie[p - MX_S]) {
            continue;
        } else {
            mx_tid(p, id);
            peer_process_commit(id, commit, commit_len, new_epoch);
        }
    }
    /* The added join from the Welcome. */
    for (unsigned i = 0; i < n_add; i++) {
        unsigned p = add[i];
        assert_non_null(welcome);
        if (p < MX_S) {
            assert_int_equal(mls_group_join(welcome, welcome_len, &x->s[p].kp, 1, tree, tree_len,
                                            NULL, 0, NULL, now_s, 0, &x->s[p].g),
                             0);
            mls_kp_free(x->s[p].kp);
            x->s[p].kp = NULL;
            if (committer >= MX_S)
                seen.welcomes_from_peer++;
        } else {
            json_t *req = json_object(), *r;
            uint8_t *check = NULL;
            size_t check_len = 0;
            json_object_set_new(req, "welcome", hexstr(welcome, welcome_len));
            if (tree != NULL)
                json_object_set_new(req, "ratchet_tree", hexstr(tree, tree_len));
            /* The tree as Sammen's members have it, for the peer's RFC check
             * should ts-mls refuse it (see t_zombie). */
            assert_int_equal(mls_group_tree(mx_ref(x), &check, &check_len), 0);
            json_object_set_new(req, "check_tree", hexstr(check, check_len));
            free(check);
            mx_tid(p, id);
            r = call("join", id, req);
            if (json_is_true(json_object_get(r, "joined"))) {
                x->t_in[p - MX_S] = true;
                if (committer < MX_S)
                    seen.welcomes_to_peer++;
            } else {
                const char *why = json_string_value(json_object_get(r, "known_issue"));
                assert_non_null(why);
                if (x->zombies++ == 0)
                    printf("test_mixed_random: %s (the leaf is removed next epoch)\n", why);
                x->t_zombie[p - MX_S] = true;
            }
            json_decref(r);
        }
    }
    assert_int_equal(mls_group_epoch(mx_ref(x)), new_epoch);
    for (unsigned i = 0; i < n_add; i++)
        free(kp_bufs[i]);
    free(commit);
    free(welcome);
    free(tree);
}

static void test_mixed_random(void **state)
{
    struct mx *x = calloc(1, sizeof(*x));
    static const uint8_t gid[] = "interop group C";
    const char *env = getenv("SAMMEN_INTEROP_SEED"), *envn = getenv("SAMMEN_INTEROP_EPOCHS");
    /* The default seed meets both ts-mls issues below at least once. */
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : 8;
    unsigned epochs = envn != NULL ? (unsigned)strtoul(envn, NULL, 0) : MX_EPOCHS;
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co;
    const uint8_t *kps[1];
    size_t kp_lens[1];
    uint8_t *kp = NULL;
    json_t *req;

    (void)state;
    assert_non_null(x);
    x->rng = seed;
    printf("test_mixed_random: seed=0x%llx epochs=%u (SAMMEN_INTEROP_SEED, "
           "SAMMEN_INTEROP_EPOCHS override)\n",
           (unsigned long long)seed, epochs);
    for (unsigned p = 0; p < MX_S; p++) {
        uint8_t pub[CRYPTO_SIGN_PUB_LEN];
        size_t n = 0;
        crypto_sig_keygen(pub, x->s[p].sig_priv);
        x->s[p].has_key = true;
        snprintf(x->s_user[p], sizeof(x->s_user[p]), "s%u@mixed.example", p);
        assert_int_equal(mls_kp_identity(x->s_user[p], pub, (uint8_t *)x->s_ident[p],
                                         MLS_KP_MAX_IDENTITY, &n),
                         0);
        x->s_ident[p][n] = '\0';
    }
    /* s0 creates the group and adds t0, so both implementations are in. */
    dev_kp(&x->s[0], x->s_user[0]);
    assert_int_equal(mls_group_create(gid, sizeof(gid) - 1, x->s[0].kp, NULL, 0, &x->s[0].g), 0);
    mls_kp_free(x->s[0].kp);
    x->s[0].kp = NULL;
    peer_kp("t0", &kp, &kp_lens[0]);
    kps[0] = kp;
    memset(&o, 0, sizeof(o));
    o.add_kps = kps;
    o.add_kp_lens = kp_lens;
    o.n_add = 1;
    o.tree_in_welcome = true;
    c_commit(x->s[0].g, &o, &co);
    req = json_object();
    json_object_set_new(req, "welcome", hexstr(co.welcome, co.welcome_len));
    json_decref(call("join", "t0", req));
    x->t_in[0] = true;
    mls_group_commit_out_reset(&co);
    free(kp);
    mx_agree(x);

    for (unsigned e = 0; e < epochs; e++) {
        mx_traffic(x, e);
        mx_epoch(x);
        mx_agree(x);
    }
    mx_traffic(x, epochs);
    printf("test_mixed_random: %llu epochs with Sammen and ts-mls members in one group; "
           "%u ts-mls joins refused by the ts-mls tree-validation issue; %u epochs steered "
           "around the ts-mls commit-secret issue\n",
           (unsigned long long)mls_group_epoch(mx_ref(x)), x->zombies, x->steered);
    for (unsigned p = 0; p < MX_S; p++)
        dev_free(&x->s[p]);
    free(x);
}

static int setup(void **state)
{
    (void)state;
    if (crypto_init() != 0)
        return -1;
    now_s = (uint64_t)time(NULL);
    if (tsmls_peer_start(TSMLS_PEER_DIR, &peer) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    printf("test_tsmls: Sammen <-> ts-mls 1.6.4, in groups mixing both: %u application "
           "messages decrypted by ts-mls members and %u by Sammen members; %u commits processed "
           "by ts-mls members and %u by Sammen members; %u Sammen Welcomes joined by "
           "ts-mls, %u ts-mls Welcomes by Sammen; %u state agreements (GroupContext, epoch "
           "authenticator, exporter, roster); %u forged, replayed or stale messages refused\n",
           seen.app_to_peer, seen.app_from_peer, seen.commits_to_peer, seen.commits_from_peer,
           seen.welcomes_to_peer, seen.welcomes_from_peer, seen.agreements, seen.refused);
    return tsmls_peer_stop(peer) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sammen_creates),
        cmocka_unit_test(test_tsmls_creates),
        cmocka_unit_test(test_mixed_random),
    };

    if (!tsmls_node_available()) {
        printf("SKIP: node/npm not installed; ts-mls interop test not run\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
