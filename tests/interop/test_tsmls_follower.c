/*
 * test_tsmls_follower.c: Sammen's codec, KeyPackage validation and the
 * server's group follower (mls_follower.h) against a group run entirely by
 * ts-mls 1.6.4 (the peer in ts-mls-peer/, see tsmls_peer.h).
 *
 *   - every ts-mls message (KeyPackage, Welcome, GroupInfo, PublicMessage
 *     commit, PrivateMessage) decodes strictly and re-encodes byte for byte;
 *     ts-mls KeyPackages pass mls_keypackage_validate;
 *   - a follower seeded from a ts-mls GroupInfo of epoch 0 (ratchet tree
 *     inside) follows ts-mls commits (Adds, empty commit with a path,
 *     Remove, Add into a blank leaf) and
 *     after each agrees with ts-mls on the epoch, the serialized
 *     GroupContext (so tree hash and transcript hash) and the roster;
 *   - the follower refuses a commit with a flipped byte and a replayed one.
 * The Sammen group state machine against ts-mls is test_tsmls.c.
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
#include "mls_keypackage.h"
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
static unsigned roundtrips;

static json_t *call(const char *cmd, const char *id, json_t *extra)
{
    json_t *req = extra != NULL ? extra : json_object(), *reply = NULL;

    assert_non_null(req);
    assert_int_equal(json_object_set_new(req, "cmd", json_string(cmd)), 0);
    assert_int_equal(json_object_set_new(req, "id", json_string(id)), 0);
    assert_int_equal(tsmls_peer_call(peer, req, &reply), 0);
    json_decref(req);
    return reply;
}

static json_t *hexstr(const uint8_t *p, size_t len)
{
    char *s = tsmls_hex(p, len);
    json_t *j;

    assert_non_null(s);
    j = json_string(s);
    free(s);
    return j;
}

/* Decodes msg strictly, checks its wire format, re-encodes it identically. */
static void roundtrip(const uint8_t *msg, size_t len, uint16_t wire_format)
{
    struct mls_message m;
    struct tls_writer w;

    memset(&m, 0, sizeof(m));
    assert_int_equal(mls_message_parse(msg, len, &m), 0);
    assert_int_equal(m.wire_format, wire_format);
    tls_writer_init(&w, 0);
    mls_message_encode(&w, &m);
    assert_int_equal(tls_writer_error(&w), 0);
    assert_int_equal(w.len, len);
    assert_memory_equal(w.buf, msg, len);
    tls_writer_reset(&w);
    if (wire_format == MLS_WF_KEY_PACKAGE)
        assert_int_equal(mls_keypackage_validate(&m.key_package, now_s), 0);
    mls_message_free(&m);
    roundtrips++;
}

static void field(const json_t *r, const char *key, uint8_t **out, size_t *len, uint16_t wf)
{
    assert_int_equal(tsmls_hex_field(r, key, out, len), 0);
    if (wf != 0)
        roundtrip(*out, *len, wf);
}

static void peer_kp(const char *id, json_t *list)
{
    json_t *r = call("key_package", id, NULL);
    uint8_t *kp = NULL;
    size_t len = 0;

    field(r, "key_package", &kp, &len, MLS_WF_KEY_PACKAGE);
    assert_int_equal(json_array_append_new(list, hexstr(kp, len)), 0);
    free(kp);
    json_decref(r);
}

/* The follower agrees with ts-mls member `id`. */
static void agree(const struct mls_follower *f, const char *id)
{
    json_t *r = call("state", id, NULL), *members = json_object_get(r, "members");
    uint8_t *gc = NULL, *pgc = NULL, *ident = NULL;
    size_t gc_len = 0, pgc_len = 0, ident_len = 0, n = 0;
    struct mls_roster_entry roster[MAX_MEMBERS];

    assert_int_equal(json_integer_value(json_object_get(r, "epoch")),
                     (json_int_t)mls_follower_epoch(f));
    assert_int_equal(mls_follower_group_context(f, &gc, &gc_len), 0);
    field(r, "group_context", &pgc, &pgc_len, 0);
    assert_int_equal(gc_len, pgc_len);
    assert_memory_equal(gc, pgc, gc_len);
    assert_int_equal(mls_follower_roster(f, roster, MAX_MEMBERS, &n), 0);
    assert_int_equal(json_array_size(members), n);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(members, i);
        assert_int_equal(json_integer_value(json_object_get(m, "leaf")),
                         (json_int_t)roster[i].leaf_index);
        field(m, "identity", &ident, &ident_len, 0);
        assert_int_equal(ident_len, roster[i].identity_len);
        assert_memory_equal(ident, roster[i].identity, ident_len);
        free(ident);
        ident = NULL;
    }
    free(gc);
    free(pgc);
    json_decref(r);
}

/* Feeds a ts-mls commit to the follower (after a tampered copy, which
 * must be refused) and to the other ts-mls members. */
static void follow(struct mls_follower *f, const uint8_t *c, size_t len, const char *const *others)
{
    uint8_t *bad = malloc(len);
    uint64_t epoch = mls_follower_epoch(f);
    int ev = 0;

    assert_non_null(bad);
    memcpy(bad, c, len);
    /* A member's PublicMessage commit ends with signature<V> (65 bytes),
     * confirmation_tag<V> and membership_tag<V> (33 each); the follower
     * can check only the signature, so flip a byte inside it. */
    bad[len - 66 - 20] ^= 0x08;
    assert_true(mls_follower_handle(f, bad, len, now_s, &ev) < 0);
    assert_int_equal(mls_follower_epoch(f), epoch);
    free(bad);
    assert_int_equal(mls_follower_handle(f, c, len, now_s, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_COMMIT);
    assert_int_equal(mls_follower_epoch(f), epoch + 1);
    /* The same commit again is for an old epoch now. */
    assert_true(mls_follower_handle(f, c, len, now_s, &ev) < 0);
    for (; others != NULL && *others != NULL; others++) {
        json_t *req = json_object(), *r;
        json_object_set_new(req, "message", hexstr(c, len));
        r = call("process", *others, req);
        assert_int_equal(json_integer_value(json_object_get(r, "epoch")),
                         (json_int_t)mls_follower_epoch(f));
        json_decref(r);
    }
}

static void test_follower_follows_tsmls(void **state)
{
    static const uint8_t gid[] = "ts-mls followed group";
    const char *const bob_only[] = {"bob", NULL};
    const char *const alice_carol[] = {"alice", "carol", NULL};
    struct mls_follower *f = NULL;
    uint8_t *gi = NULL, *c = NULL, *w = NULL, *pm = NULL;
    size_t gi_len = 0, c_len = 0, w_len = 0, pm_len = 0;
    json_t *req, *r, *kps;

    (void)state;
    json_decref(call("key_package", "alice", NULL));
    req = json_object();
    json_object_set_new(req, "group_id", hexstr(gid, sizeof(gid) - 1));
    json_decref(call("create_group", "alice", req));

    /* Seed from alice's GroupInfo of epoch 0 (empty confirmed transcript
     * hash, RFC 9420 §11). */
    r = call("group_info", "alice", NULL);
    field(r, "group_info", &gi, &gi_len, MLS_WF_GROUP_INFO);
    json_decref(r);
    assert_int_equal(mls_follower_new(gi, gi_len, NULL, 0, &f), 0);
    free(gi);
    agree(f, "alice");

    /* alice adds bob and carol in one commit. */
    kps = json_array();
    peer_kp("bob", kps);
    peer_kp("carol", kps);
    req = json_object();
    json_object_set_new(req, "key_packages", kps);
    r = call("add", "alice", req);
    field(r, "commit", &c, &c_len, MLS_WF_PUBLIC_MESSAGE);
    field(r, "welcome", &w, &w_len, MLS_WF_WELCOME);
    json_decref(r);
    follow(f, c, c_len, NULL);
    /* A second follower seeded at epoch 1 agrees too. */
    {
        struct mls_follower *f1 = NULL;
        r = call("group_info", "alice", NULL);
        field(r, "group_info", &gi, &gi_len, MLS_WF_GROUP_INFO);
        json_decref(r);
        assert_int_equal(mls_follower_new(gi, gi_len, NULL, 0, &f1), 0);
        free(gi);
        agree(f1, "alice");
        mls_follower_free(f1);
    }
    req = json_object();
    json_object_set_new(req, "welcome", hexstr(w, w_len));
    json_decref(call("join", "bob", req));
    req = json_object();
    json_object_set_new(req, "welcome", hexstr(w, w_len));
    json_decref(call("join", "carol", req));
    free(c);
    free(w);
    agree(f, "alice");
    agree(f, "bob");

    /* An application message is a PrivateMessage: decodes, re-encodes,
     * and is not a handshake the follower takes. */
    req = json_object();
    json_object_set_new(req, "data", json_string("6869"));
    r = call("encrypt", "bob", req);
    field(r, "message", &pm, &pm_len, MLS_WF_PRIVATE_MESSAGE);
    json_decref(r);
    {
        int ev = 0;
        assert_int_equal(mls_follower_handle(f, pm, pm_len, now_s, &ev), ERR_UNSUPPORTED);
    }
    free(pm);

    /* bob commits with a path (no proposals). */
    r = call("update", "bob", NULL);
    field(r, "commit", &c, &c_len, MLS_WF_PUBLIC_MESSAGE);
    json_decref(r);
    follow(f, c, c_len, alice_carol);
    free(c);
    agree(f, "carol");

    /* carol removes alice. */
    req = json_object();
    json_object_set_new(req, "leaves", json_pack("[i]", 0));
    r = call("remove", "carol", req);
    field(r, "commit", &c, &c_len, MLS_WF_PUBLIC_MESSAGE);
    json_decref(r);
    follow(f, c, c_len, bob_only);
    free(c);
    agree(f, "bob");
    agree(f, "carol");

    /* bob adds dave into alice's blank leaf. */
    kps = json_array();
    peer_kp("dave", kps);
    req = json_object();
    json_object_set_new(req, "key_packages", kps);
    r = call("add", "bob", req);
    field(r, "commit", &c, &c_len, MLS_WF_PUBLIC_MESSAGE);
    field(r, "welcome", &w, &w_len, MLS_WF_WELCOME);
    json_decref(r);
    follow(f, c, c_len, (const char *const[]){"carol", NULL});
    free(c);
    free(w);
    agree(f, "bob");

    printf("test_tsmls_follower: follower at epoch %llu with ts-mls; %u ts-mls messages "
           "decoded and re-encoded byte-exactly\n",
           (unsigned long long)mls_follower_epoch(f), roundtrips);
    mls_follower_free(f);
}

static int setup(void **state)
{
    (void)state;
    if (crypto_init() != 0)
        return -1;
    now_s = (uint64_t)time(NULL);
    return tsmls_peer_start(TSMLS_PEER_DIR, &peer) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tsmls_peer_stop(peer) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower_follows_tsmls),
    };

    if (!tsmls_node_available()) {
        printf("SKIP: node/npm not installed; ts-mls interop test not run\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
