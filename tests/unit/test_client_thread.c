/* test_client_thread.c: the client's sync engine (client_thread_ingest) without a server.
 * Alice's MLS group (protocol/mls_group.h) plays the other member; the entries a server would
 * hand Bob's device are built here: Bob joins from a Welcome with a KeyPackage from his
 * encrypted state, decrypts Alice's message into his history (sender from the MLS leaf),
 * records why a replayed message and one whose claimed sender lies cannot be read, skips what
 * he has already processed, and forgets the group's keys when Alice's commit removes him. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client_state.h"
#include "client_thread.h"
#include "err.h"
#include "keys_id.h"
#include "mls_follower.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"
#include "tls.h"
#include "wire.h"

#define THREAD "t_0102030405060708090a0b0c0d0e0f10"
static const uint8_t gid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static char dir[64];
static uint64_t now;

struct who {
    uint8_t seed[32], pub[32];
    char id[64], dev[KEYS_ID_DEVICE_LEN + 1];
    struct mls_kp *kp;
};

static void person(struct who *w, const char *id)
{
    uint8_t ident[MLS_KP_MAX_IDENTITY];
    size_t il;

    randombytes_buf(w->seed, sizeof(w->seed));
    assert_int_equal(keys_id_public(w->seed, w->pub), 0);
    keys_id_device(w->pub, w->dev);
    snprintf(w->id, sizeof(w->id), "%s", id);
    assert_int_equal(mls_kp_identity(id, w->pub, ident, sizeof(ident), &il), 0);
    assert_int_equal(mls_kp_create(ident, il, w->seed, now - 60, now + 86400, &w->kp), 0);
}

/* GroupContext extensions: the server (server_pub) as the one external
 * sender, as PROTOCOL.md requires. */
static void ext_server(const uint8_t server_pub[32], struct mls_extension_list *ext)
{
    struct mls_external_senders es = {0};
    struct mls_external_sender x;
    struct tls_writer w;

    memset(&x, 0, sizeof(x));
    x.credential.credential_type = MLS_CREDENTIAL_BASIC;
    assert_int_equal(mls_bytes_set(&x.signature_key, server_pub, 32), 0);
    assert_int_equal(mls_bytes_set(&x.credential.identity, (const uint8_t *)"server@t.test", 13),
                     0);
    es.v = &x;
    es.n = 1;
    tls_writer_init(&w, 0);
    mls_external_senders_encode(&w, &es);
    mls_external_sender_free(&x);
    ext->v = calloc(1, sizeof(*ext->v));
    assert_non_null(ext->v);
    ext->n = 1;
    ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    assert_int_equal(
        tls_writer_take(&w, &ext->v[0].extension_data.data, &ext->v[0].extension_data.len), 0);
}

/* One entry of a sync answer. */
struct ent {
    uint64_t seq, message;
    const char *kind, *sender, *device;
    const uint8_t *data;
    size_t len;
};

/* Builds a sync answer {entries, more: false}, decodes it, ingests it. */
static int ingest(struct client_dev *d, const struct ent *e, size_t n, uint64_t *cursor,
                  unsigned *got, struct client_sync_stats *s)
{
    struct wire_enc enc;
    struct wire_msg m;
    const uint8_t *buf;
    uint8_t *copy;
    size_t len;
    bool more = true;
    int rc;

    wire_enc_init(&enc);
    wire_enc_ok(&enc, 1, 2);
    wire_enc_key(&enc, "entries");
    wire_enc_array(&enc, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        wire_enc_map(&enc, 8);
        wire_kv_uint(&enc, "seq", e[i].seq);
        wire_kv_str(&enc, "thread", THREAD);
        wire_kv_uint(&enc, "message", e[i].message);
        wire_kv_str(&enc, "kind", e[i].kind);
        wire_kv_str(&enc, "sender", e[i].sender);
        wire_kv_str(&enc, "device", e[i].device);
        wire_kv_uint(&enc, "time", now + e[i].seq);
        wire_kv_bin(&enc, "data", e[i].data, e[i].len);
    }
    wire_kv_bool(&enc, "more", false);
    assert_int_equal(wire_enc_finish(&enc, &buf, &len), 0);
    copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    wire_enc_reset(&enc);
    assert_int_equal(wire_decode(copy, len, &m), 0);
    *got = 0;
    rc = client_thread_ingest(d, &m.body, cursor, &more, got, s);
    assert_false(more);
    wire_msg_free(&m);
    free(copy);
    return rc;
}

struct hist {
    int n;
    char text[4][128];
    char sender[4][64];
    char error[4][128];
    uint64_t message[4];
};

static int collect(const struct client_msg *m, void *user)
{
    struct hist *h = user;
    if (h->n >= 4)
        return ERR_LIMIT;
    snprintf(h->text[h->n], sizeof(h->text[0]), "%.*s", (int)m->text_len, (const char *)m->text);
    snprintf(h->sender[h->n], sizeof(h->sender[0]), "%s", m->sender);
    snprintf(h->error[h->n], sizeof(h->error[0]), "%s", m->error ? m->error : "");
    h->message[h->n] = m->message;
    h->n++;
    return 0;
}

static void engine(void **state)
{
    (void)state;
    struct who alice, bob;
    struct mls_group *ga = NULL;
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co, rm;
    struct client_dev *d = NULL;
    struct client_sync_stats s;
    struct client_roster_dev *ro = NULL;
    struct hist h;
    uint8_t *kpm = NULL, *saved = NULL, *val, *app = NULL, *app2 = NULL;
    size_t kpl = 0, sl = 0, al = 0, al2 = 0, nro = 0;
    uint64_t cursor = 0;
    unsigned got = 0;
    char ref[65];
    const uint8_t *kps[1];
    size_t kpls[1];
    uint32_t bob_leaf = UINT32_MAX;
    uint8_t server_seed[32], server_pub[32];
    struct mls_extension_list ext = {0};

    now = (uint64_t)time(NULL);
    person(&alice, "alice@t.test");
    person(&bob, "bob@t.test");

    /* Bob's device state holds his KeyPackage (as the stock keeps them) */
    assert_int_equal(client_dev_open(NULL, dir, bob.id, bob.dev, "t.test", bob.seed, 1000, &d),
                     0);
    assert_int_equal(mls_kp_save(bob.kp, &saved, &sl), 0);
    val = malloc(sl + 1);
    assert_non_null(val);
    val[0] = 0;
    memcpy(val + 1, saved, sl);
    sodium_bin2hex(ref, sizeof(ref), mls_kp_ref(bob.kp), 32);
    assert_int_equal(client_state_put(d->st, "kp", ref, NULL, 0, now, val, sl + 1), 0);
    free(val);
    free(saved);

    /* Alice creates the group and adds Bob; the tree travels in the Welcome */
    randombytes_buf(server_seed, sizeof(server_seed));
    assert_int_equal(keys_id_public(server_seed, server_pub), 0);
    ext_server(server_pub, &ext);
    assert_int_equal(mls_group_create(gid, sizeof(gid), alice.kp, &ext, 0, &ga), 0);
    mls_extension_list_free(&ext);
    assert_int_equal(mls_kp_message(bob.kp, &kpm, &kpl), 0);
    kps[0] = kpm;
    kpls[0] = kpl;
    memset(&o, 0, sizeof(o));
    o.add_kps = kps;
    o.add_kp_lens = kpls;
    o.n_add = 1;
    o.tree_in_welcome = true;
    assert_int_equal(mls_group_commit_create(ga, &o, now, &co), 0);
    assert_int_equal(mls_group_commit_confirm(ga), 0);
    assert_int_equal(mls_group_encrypt(ga, (const uint8_t *)"hello bob", 9, NULL, 0, &app, &al),
                     0);
    assert_int_equal(mls_group_encrypt(ga, (const uint8_t *)"second", 6, NULL, 0, &app2, &al2),
                     0);

    memset(&s, 0, sizeof(s));
    {
        struct ent e[] = {
            {1, 0, "welcome", alice.id, alice.dev, co.welcome, co.welcome_len},
            {2, 1, "app", alice.id, alice.dev, app, al},
            /* the same ciphertext again: a replay */
            {3, 2, "app", alice.id, alice.dev, app, al},
            /* the server claims another sender than the MLS leaf */
            {4, 3, "app", "mallory@t.test", alice.dev, app2, al2},
        };
        assert_int_equal(ingest(d, e, 4, &cursor, &got, &s), 0);
    }
    assert_int_equal(got, 4);
    assert_int_equal(cursor, 4);
    assert_int_equal(s.welcomes, 1);
    assert_int_equal(s.apps, 1);
    assert_int_equal(s.failed, 2);
    /* the cursor is saved with the entries */
    {
        uint64_t c = 0;
        assert_int_equal(client_state_get_u64(d->st, "meta", "cursor", 0, &c), 0);
        assert_int_equal(c, 4);
    }
    memset(&h, 0, sizeof(h));
    assert_int_equal(client_thread_history(d, THREAD, 0, collect, &h), 0);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.text[0], "hello bob");
    assert_string_equal(h.sender[0], "alice@t.test");
    assert_string_equal(h.error[0], "");
    assert_int_equal(h.message[0], 1);
    assert_non_null(strstr(h.error[1], "cannot decrypt"));
    assert_string_equal(h.text[1], "");
    assert_int_equal(h.message[2], 3);
    assert_non_null(strstr(h.error[2], "sender mismatch"));
    {
        uint8_t *t = NULL;
        size_t tl = 0;
        assert_int_equal(client_thread_message(d, THREAD, 1, &t, &tl), 0);
        assert_int_equal(tl, 9);
        assert_memory_equal(t, "hello bob", 9);
        free(t);
        assert_int_equal(client_thread_message(d, THREAD, 2, &t, &tl), ERR_CRYPTO);
        assert_int_equal(client_thread_message(d, THREAD, 9, &t, &tl), ERR_NOT_FOUND);
    }
    /* Bob's roster: both leaves, bound to their keys, with fingerprints */
    assert_int_equal(client_thread_roster(d, THREAD, &ro, &nro), 0);
    assert_int_equal(nro, 2);
    for (size_t i = 0; i < nro; i++) {
        assert_true(ro[i].bound);
        assert_int_equal(strlen(ro[i].fingerprint), KEYS_ID_FINGERPRINT_LEN);
        if (strcmp(ro[i].identity, "bob@t.test") == 0)
            assert_string_equal(ro[i].device, bob.dev);
    }
    free(ro);

    /* the server proposes Dave (credential bound to his key): recorded with
     * his fingerprint; then "carol" whose device id is not her key's: Bob's
     * device will not commit this epoch's proposals */
    {
        struct who dave, carol;
        struct mls_follower *f = NULL;
        uint8_t *gi = NULL, *m1 = NULL, *m2 = NULL, *km = NULL, *v = NULL;
        size_t gil = 0, l1 = 0, l2 = 0, kml = 0, vl = 0;
        const char *bad = "carol@t.test/d_0000000000000000";
        char k[200];

        person(&dave, "dave@t.test");
        person(&carol, "carol@t.test");
        mls_kp_free(carol.kp);
        assert_int_equal(mls_kp_create((const uint8_t *)bad, strlen(bad), carol.seed, now - 60,
                                       now + 86400, &carol.kp),
                         0);
        assert_int_equal(mls_group_group_info(ga, true, &gi, &gil), 0);
        assert_int_equal(mls_follower_new(gi, gil, NULL, 0, &f), 0);
        assert_int_equal(mls_kp_message(dave.kp, &km, &kml), 0);
        assert_int_equal(mls_follower_external_add(f, km, kml, server_seed, 0, &m1, &l1), 0);
        free(km);
        assert_int_equal(mls_kp_message(carol.kp, &km, &kml), 0);
        assert_int_equal(mls_follower_external_add(f, km, kml, server_seed, 0, &m2, &l2), 0);
        free(km);
        {
            struct ent e[] = {{5, 4, "handshake", "server@t.test", "", m1, l1}};
            memset(&s, 0, sizeof(s));
            assert_int_equal(ingest(d, e, 1, &cursor, &got, &s), 0);
            assert_int_equal(s.failed, 0);
        }
        snprintf(k, sizeof(k), "%s/dave@t.test/%s", THREAD, dave.dev);
        assert_int_equal(client_state_get(d->st, "add", k, &v, &vl), 0);
        assert_int_equal(vl, KEYS_ID_FINGERPRINT_LEN);
        free(v);
        assert_int_equal(client_state_get(d->st, "refuse", THREAD, &v, &vl), ERR_NOT_FOUND);
        assert_int_equal(client_state_get(d->st, "pending", THREAD, &v, &vl), 0);
        free(v);
        {
            struct ent e[] = {{6, 5, "handshake", "server@t.test", "", m2, l2}};
            assert_int_equal(ingest(d, e, 1, &cursor, &got, &s), 0);
        }
        assert_int_equal(client_state_get(d->st, "refuse", THREAD, &v, &vl), 0);
        assert_non_null(strstr((const char *)v, "not the device of its key"));
        free(v);
        free(m1);
        free(m2);
        free(gi);
        mls_follower_free(f);
        mls_kp_free(dave.kp);
        mls_kp_free(carol.kp);
    }

    /* the same answer again: nothing is processed twice */
    {
        struct ent e[] = {{2, 1, "app", alice.id, alice.dev, app, al}};
        memset(&s, 0, sizeof(s));
        assert_int_equal(ingest(d, e, 1, &cursor, &got, &s), 0);
        assert_int_equal(got, 0);
        assert_int_equal(s.entries, 0);
    }

    /* Alice removes Bob: his device forgets the group's keys, keeps the history */
    {
        struct mls_roster_entry re[4];
        size_t rn = 0;
        assert_int_equal(mls_group_roster(ga, re, 4, &rn), 0);
        for (size_t i = 0; i < rn; i++)
            if (re[i].identity_len > 3 && memcmp(re[i].identity, "bob", 3) == 0)
                bob_leaf = re[i].leaf_index;
        assert_int_not_equal(bob_leaf, UINT32_MAX);
    }
    memset(&o, 0, sizeof(o));
    o.remove = &bob_leaf;
    o.n_remove = 1;
    assert_int_equal(mls_group_commit_create(ga, &o, now, &rm), 0);
    {
        struct ent e[] = {
            {7, 6, "handshake", alice.id, alice.dev, rm.commit, rm.commit_len},
            /* junk the server could send: refused by MLS, counted, skipped */
            {8, 7, "handshake", alice.id, alice.dev, (const uint8_t *)"\x00\x01\x00\x01junk", 8},
        };
        memset(&s, 0, sizeof(s));
        assert_int_equal(ingest(d, e, 2, &cursor, &got, &s), 0);
        assert_int_equal(got, 2);
        assert_int_equal(s.handshakes, 2);
    }
    assert_int_equal(client_thread_roster(d, THREAD, &ro, &nro), ERR_NOT_FOUND);
    {
        uint8_t *v = NULL;
        size_t vl = 0;
        assert_int_equal(client_state_get(d->st, "refuse", THREAD, &v, &vl), ERR_NOT_FOUND);
        assert_int_equal(client_state_get(d->st, "pending", THREAD, &v, &vl), ERR_NOT_FOUND);
    }
    memset(&h, 0, sizeof(h));
    assert_int_equal(client_thread_history(d, THREAD, 0, collect, &h), 0);
    assert_int_equal(h.n, 3);

    /* a malformed entry stops the answer */
    {
        struct wire_enc enc;
        struct wire_msg m;
        const uint8_t *buf;
        uint8_t *copy;
        size_t len;
        bool more;
        wire_enc_init(&enc);
        wire_enc_ok(&enc, 1, 1);
        wire_enc_key(&enc, "entries");
        wire_enc_array(&enc, 1);
        wire_enc_map(&enc, 1);
        wire_kv_str(&enc, "kind", "app"); /* no seq, no data */
        assert_int_equal(wire_enc_finish(&enc, &buf, &len), 0);
        copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, buf, len);
        wire_enc_reset(&enc);
        assert_int_equal(wire_decode(copy, len, &m), 0);
        assert_int_equal(client_thread_ingest(d, &m.body, &cursor, &more, &got, &s),
                         ERR_MALFORMED);
        wire_msg_free(&m);
        free(copy);
    }

    mls_group_commit_out_reset(&co);
    mls_group_commit_out_reset(&rm);
    free(app);
    free(app2);
    free(kpm);
    mls_group_free(ga);
    mls_kp_free(alice.kp);
    mls_kp_free(bob.kp);
    client_dev_free(d);
}

/* Stores kp in d's state as the stock does: flag byte, mls_kp_save(). */
static void store_kp(struct client_dev *d, const struct mls_kp *kp, uint8_t flag, uint64_t t,
                     char ref[65])
{
    uint8_t *saved = NULL, *val;
    size_t sl = 0;

    assert_int_equal(mls_kp_save(kp, &saved, &sl), 0);
    val = malloc(sl + 1);
    assert_non_null(val);
    val[0] = flag;
    memcpy(val + 1, saved, sl);
    sodium_bin2hex(ref, 65, mls_kp_ref(kp), 32);
    assert_int_equal(client_state_put(d->st, "kp", ref, NULL, 0, t, val, sl + 1), 0);
    free(val);
    free(saved);
}

/* The flag byte of stored KeyPackage ref, or -1 when it is gone. */
static int kp_flag(struct client_dev *d, const char *ref)
{
    uint8_t *v = NULL;
    size_t len = 0;
    int rc = client_state_get(d->st, "kp", ref, &v, &len);
    if (rc == ERR_NOT_FOUND)
        return -1;
    assert_int_equal(rc, 0);
    assert_true(len > 1);
    int f = v[0];
    free(v);
    return f;
}

/* Alice makes a new group adding kp; *w gets the Welcome (free()). */
static void welcome_for(const struct who *alice, const struct mls_kp *kp, uint8_t **w,
                        size_t *wl, struct mls_group **ga)
{
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co;
    struct mls_extension_list ext = {0};
    uint8_t server_seed[32], server_pub[32], *kpm = NULL, g[16];
    size_t kpl = 0;
    const uint8_t *kps[1];
    size_t kpls[1];

    randombytes_buf(server_seed, sizeof(server_seed));
    randombytes_buf(g, sizeof(g));
    assert_int_equal(keys_id_public(server_seed, server_pub), 0);
    ext_server(server_pub, &ext);
    assert_int_equal(mls_group_create(g, sizeof(g), alice->kp, &ext, 0, ga), 0);
    mls_extension_list_free(&ext);
    assert_int_equal(mls_kp_message(kp, &kpm, &kpl), 0);
    kps[0] = kpm;
    kpls[0] = kpl;
    memset(&o, 0, sizeof(o));
    o.add_kps = kps;
    o.add_kp_lens = kpls;
    o.n_add = 1;
    o.tree_in_welcome = true;
    assert_int_equal(mls_group_commit_create(*ga, &o, now, &co), 0);
    assert_int_equal(mls_group_commit_confirm(*ga), 0);
    *w = malloc(co.welcome_len);
    assert_non_null(*w);
    memcpy(*w, co.welcome, co.welcome_len);
    *wl = co.welcome_len;
    mls_group_commit_out_reset(&co);
    free(kpm);
}

/* RFC 9420 section 16.8 on the device: a KeyPackage's private keys are
 * deleted once a Welcome used them (a second Welcome for it fails cleanly);
 * ordinary ones past their lifetime are pruned; a used last-resort package
 * is retired, asks for a replacement and goes a grace period after one. */
static void kp_forward_secrecy(void **state)
{
    (void)state;
    struct who alice, bob;
    struct client_dev *d = NULL;
    struct mls_group *g1 = NULL, *g2 = NULL, *g3 = NULL;
    struct mls_kp *old = NULL, *lr = NULL, *lr2 = NULL;
    struct client_sync_stats s;
    uint8_t ident[MLS_KP_MAX_IDENTITY], *w1 = NULL, *w2 = NULL, *w3 = NULL, *app = NULL;
    size_t il, wl1 = 0, wl2 = 0, wl3 = 0, al = 0;
    char ref[65], ref_old[65], ref_lr[65], ref_lr2[65];
    uint64_t cursor = 0;
    unsigned got = 0, pruned = 0;
    bool rotate = true;

    now = (uint64_t)time(NULL);
    person(&alice, "alice@t.test");
    person(&bob, "bob@t.test");
    assert_int_equal(client_dev_open(NULL, dir, bob.id, bob.dev, "t.test", bob.seed, 1000, &d),
                     0);
    assert_int_equal(mls_kp_identity(bob.id, bob.pub, ident, sizeof(ident), &il), 0);
    assert_int_equal(mls_kp_create(ident, il, bob.seed, now - 60, now + 86400, &old), 0);
    assert_int_equal(mls_kp_create(ident, il, bob.seed, now - 60, now + 86400, &lr), 0);
    assert_int_equal(mls_kp_create(ident, il, bob.seed, now - 60, now + 86400, &lr2), 0);
    store_kp(d, bob.kp, 0, now, ref);
    store_kp(d, old, 0, now - 181 * 86400ull, ref_old); /* made past the 180-day lifetime */
    store_kp(d, lr, 1, now, ref_lr);

    /* only the expired ordinary package goes; the last resort is current */
    assert_int_equal(client_thread_kp_prune(d, now, &pruned, &rotate), 0);
    assert_int_equal(pruned, 1);
    assert_false(rotate);
    assert_int_equal(kp_flag(d, ref_old), -1);
    assert_int_equal(kp_flag(d, ref), 0);
    assert_int_equal(kp_flag(d, ref_lr), 1);

    /* a Welcome uses Bob's KeyPackage: its keys are gone after the join */
    welcome_for(&alice, bob.kp, &w1, &wl1, &g1);
    {
        struct ent e[] = {{1, 0, "welcome", alice.id, alice.dev, w1, wl1}};
        memset(&s, 0, sizeof(s));
        assert_int_equal(ingest(d, e, 1, &cursor, &got, &s), 0);
    }
    assert_int_equal(s.welcomes, 1);
    assert_int_equal(s.failed, 0);
    assert_int_equal(kp_flag(d, ref), -1);
    assert_int_equal(kp_flag(d, ref_lr), 1);

    /* a second Welcome for the same KeyPackage cannot be opened: recorded
     * as a failure, the group from the first stays and still decrypts */
    welcome_for(&alice, bob.kp, &w2, &wl2, &g2);
    assert_int_equal(mls_group_encrypt(g1, (const uint8_t *)"still here", 10, NULL, 0, &app,
                                       &al),
                     0);
    {
        struct ent e[] = {{2, 0, "welcome", alice.id, alice.dev, w2, wl2},
                          {3, 1, "app", alice.id, alice.dev, app, al}};
        memset(&s, 0, sizeof(s));
        assert_int_equal(ingest(d, e, 2, &cursor, &got, &s), 0);
    }
    assert_int_equal(got, 2);
    assert_int_equal(s.welcomes, 1);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.apps, 1);
    {
        uint8_t *v = NULL, *t = NULL;
        size_t vl = 0, tl = 0;
        assert_int_equal(client_state_get(d->st, "fail", "00000000000000000002", &v, &vl), 0);
        free(v);
        assert_int_equal(client_thread_message(d, THREAD, 1, &t, &tl), 0);
        assert_int_equal(tl, 10);
        assert_memory_equal(t, "still here", 10);
        free(t);
    }

    /* a Welcome with the last-resort package: it is retired, not deleted
     * (Welcomes made with it may still come), and a new one is wanted */
    welcome_for(&alice, lr, &w3, &wl3, &g3);
    {
        struct ent e[] = {{4, 0, "welcome", alice.id, alice.dev, w3, wl3}};
        memset(&s, 0, sizeof(s));
        assert_int_equal(ingest(d, e, 1, &cursor, &got, &s), 0);
    }
    assert_int_equal(s.failed, 0);
    assert_int_equal(kp_flag(d, ref_lr), 2);
    assert_int_equal(client_thread_kp_prune(d, now + 30 * 86400ull, &pruned, &rotate), 0);
    assert_int_equal(pruned, 0); /* no replacement yet: kept */
    assert_true(rotate);
    /* the replacement is stored (as kp_stock's upload does): within the
     * grace the retired one stays, after it its keys are deleted */
    store_kp(d, lr2, 1, now, ref_lr2);
    assert_int_equal(client_thread_kp_prune(d, now + 86400, &pruned, &rotate), 0);
    assert_int_equal(pruned, 0);
    assert_false(rotate);
    assert_int_equal(client_thread_kp_prune(d, now + 8 * 86400ull, &pruned, &rotate), 0);
    assert_int_equal(pruned, 1);
    assert_false(rotate);
    assert_int_equal(kp_flag(d, ref_lr), -1);
    assert_int_equal(kp_flag(d, ref_lr2), 1);
    /* the current last resort expires with its lifetime: replaced */
    assert_int_equal(client_thread_kp_prune(d, now + 181 * 86400ull, &pruned, &rotate), 0);
    assert_true(rotate);

    free(w1);
    free(w2);
    free(w3);
    free(app);
    mls_group_free(g1);
    mls_group_free(g2);
    mls_group_free(g3);
    mls_kp_free(old);
    mls_kp_free(lr);
    mls_kp_free(lr2);
    mls_kp_free(alice.kp);
    mls_kp_free(bob.kp);
    client_dev_free(d);
}

static int setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    snprintf(dir, sizeof(dir), "/tmp/sammen-cthread-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char p[128];
    (void)state;
    snprintf(p, sizeof(p), "%s/state.db", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/state.db-journal", dir);
    unlink(p);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(engine, setup, teardown),
        cmocka_unit_test_setup_teardown(kp_forward_secrecy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
