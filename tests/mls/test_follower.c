/*
 * test_follower.c: the delivery service's group follower on a hand-built
 * group. The test plays the members (Alice, Bob, Carol) and the server (the
 * group's external sender): it builds LeafNodes, KeyPackages, a tree and a
 * signed GroupInfo with the tree and codec APIs and the crypto signing
 * helpers, then feeds proposals and commits to the follower.
 *
 * Checked: valid Add/Remove commits (by value and by reference, with and
 * without an UpdatePath) advance the epoch, roster, tree hash (against a
 * model tree the test keeps itself, and against a re-decoded copy) and
 * confirmed transcript hash (recomputed here); and each of these is refused
 * with nothing changed: a forged signature, a wrong epoch, a wrong group, a
 * commit or proposal by a removed member, a reference to a proposal never
 * seen, a Remove of the committer, a missing path, a bad path, duplicate
 * Adds, an Update by value, a replayed proposal, a tampered GroupInfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "mls_follower.h"
#include "mls_keypackage.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "mls_treemath.h"
#include "mls_welcome.h"
#include "vectors.h"

static const uint8_t GID[] = "sammen-test-group";
#define GID_LEN (sizeof(GID) - 1)
#define NOW UINT64_C(1767225600)

struct who {
    const char *name;
    uint8_t priv[CRYPTO_SIGN_PRIV_LEN];
    uint8_t pub[CRYPTO_SIGN_PUB_LEN];
};

static void who_init(struct who *w, const char *name)
{
    w->name = name;
    crypto_sig_keygen(w->pub, w->priv);
}

static void set_random(struct mls_bytes *b, size_t n)
{
    uint8_t tmp[64];
    assert_true(n <= sizeof(tmp));
    crypto_random(tmp, n);
    assert_int_equal(mls_bytes_set(b, tmp, n), 0);
}

static void u16_set(struct mls_u16_list *l, uint16_t v)
{
    l->v = malloc(sizeof(uint16_t));
    assert_non_null(l->v);
    l->v[0] = v;
    l->n = 1;
}

static void sign_into(const uint8_t priv[32], const char *label, struct tls_writer *w,
                      struct mls_bytes *sig)
{
    uint8_t s[CRYPTO_SIG_LEN];
    assert_int_equal(tls_writer_error(w), 0);
    assert_int_equal(crypto_sign_with_label(priv, label, w->buf, w->len, s), 0);
    tls_writer_reset(w);
    assert_int_equal(mls_bytes_set(sig, s, sizeof(s)), 0);
}

/* A LeafNode for w (fresh encryption key), signed; parent_hash for the
 * commit source. */
static void make_leaf(struct mls_leaf_node *ln, const struct who *w, uint8_t source,
                      uint32_t leaf, const uint8_t *ph, size_t ph_len)
{
    uint8_t x[32], pub[32];
    memset(ln, 0, sizeof(*ln));
    crypto_random(x, sizeof(x));
    crypto_x25519_public(x, pub);
    assert_int_equal(mls_bytes_set(&ln->encryption_key, pub, sizeof(pub)), 0);
    assert_int_equal(mls_bytes_set(&ln->signature_key, w->pub, sizeof(w->pub)), 0);
    ln->credential.credential_type = MLS_CREDENTIAL_BASIC;
    assert_int_equal(
        mls_bytes_set(&ln->credential.identity, (const uint8_t *)w->name, strlen(w->name)), 0);
    u16_set(&ln->capabilities.versions, MLS_VERSION_MLS10);
    u16_set(&ln->capabilities.cipher_suites, 3);
    u16_set(&ln->capabilities.credentials, MLS_CREDENTIAL_BASIC);
    ln->leaf_node_source = source;
    if (source == MLS_LEAF_SOURCE_KEY_PACKAGE)
        ln->lifetime.not_after = UINT64_MAX;
    if (source == MLS_LEAF_SOURCE_COMMIT)
        assert_int_equal(mls_bytes_set(&ln->parent_hash, ph, ph_len), 0);
    struct tls_writer tw;
    tls_writer_init(&tw, 0);
    mls_leaf_node_encode_tbs(&tw, ln, GID, GID_LEN, leaf);
    sign_into(w->priv, "LeafNodeTBS", &tw, &ln->signature);
}

static void make_kp(struct mls_key_package *kp, const struct who *w)
{
    uint8_t x[32], pub[32];
    memset(kp, 0, sizeof(*kp));
    kp->version = MLS_VERSION_MLS10;
    kp->cipher_suite = 3;
    crypto_random(x, sizeof(x));
    crypto_x25519_public(x, pub);
    assert_int_equal(mls_bytes_set(&kp->init_key, pub, sizeof(pub)), 0);
    make_leaf(&kp->leaf_node, w, MLS_LEAF_SOURCE_KEY_PACKAGE, 0, NULL, 0);
    struct tls_writer tw;
    tls_writer_init(&tw, 0);
    mls_key_package_encode_tbs(&tw, kp);
    sign_into(w->priv, "KeyPackageTBS", &tw, &kp->signature);
    assert_int_equal(mls_keypackage_validate(kp, NOW), 0);
}

/* A deep copy of a KeyPackage (encode, decode). */
static void kp_dup(struct mls_key_package *dst, const struct mls_key_package *src)
{
    struct tls_writer tw;
    tls_writer_init(&tw, 0);
    mls_key_package_encode(&tw, src);
    assert_int_equal(tls_writer_error(&tw), 0);
    assert_int_equal(mls_key_package_parse(tw.buf, tw.len, dst), 0);
    tls_writer_reset(&tw);
}

/* The test's world: members, the server, the model tree. */
struct world {
    struct who alice, bob, carol, server;
    struct mls_tree *model;
    struct mls_follower *f;
};

static uint8_t *encode_msg(struct mls_message *m, size_t *len)
{
    struct tls_writer tw;
    uint8_t *out = NULL;
    tls_writer_init(&tw, 0);
    mls_message_encode(&tw, m);
    assert_int_equal(tls_writer_take(&tw, &out, len), 0);
    mls_message_free(m);
    return out;
}

/* The GroupInfo for the model tree at epoch 5, signed by signer (leaf 0),
 * with the server as external sender 0. */
static uint8_t *make_group_info(struct world *W, const struct who *signer, size_t *len)
{
    struct mls_message m = {0};
    m.version = MLS_VERSION_MLS10;
    m.wire_format = MLS_WF_GROUP_INFO;
    struct mls_group_info *gi = &m.group_info;
    struct mls_group_context *gc = &gi->group_context;
    gc->version = MLS_VERSION_MLS10;
    gc->cipher_suite = 3;
    assert_int_equal(mls_bytes_set(&gc->group_id, GID, GID_LEN), 0);
    gc->epoch = 5;
    uint8_t th[32];
    assert_int_equal(mls_tree_node_hash(W->model, mls_tree_root(W->model), th), 0);
    assert_int_equal(mls_bytes_set(&gc->tree_hash, th, sizeof(th)), 0);
    set_random(&gc->confirmed_transcript_hash, 32);

    struct mls_external_senders es = {0};
    es.v = calloc(1, sizeof(*es.v));
    assert_non_null(es.v);
    es.n = 1;
    assert_int_equal(mls_bytes_set(&es.v[0].signature_key, W->server.pub, 32), 0);
    es.v[0].credential.credential_type = MLS_CREDENTIAL_BASIC;
    assert_int_equal(mls_bytes_set(&es.v[0].credential.identity, (const uint8_t *)"server", 6),
                     0);
    struct tls_writer tw;
    tls_writer_init(&tw, 0);
    mls_external_senders_encode(&tw, &es);
    mls_external_senders_free(&es);
    gc->extensions.v = calloc(1, sizeof(struct mls_extension));
    assert_non_null(gc->extensions.v);
    gc->extensions.n = 1;
    gc->extensions.v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    assert_int_equal(tw.err, 0);
    assert_int_equal(mls_bytes_set(&gc->extensions.v[0].extension_data, tw.buf, tw.len), 0);
    tls_writer_reset(&tw);

    uint8_t *tree = NULL;
    size_t tree_len = 0;
    assert_int_equal(mls_tree_encode(W->model, &tree, &tree_len), 0);
    gi->extensions.v = calloc(1, sizeof(struct mls_extension));
    assert_non_null(gi->extensions.v);
    gi->extensions.n = 1;
    gi->extensions.v[0].extension_type = MLS_EXT_RATCHET_TREE;
    assert_int_equal(mls_bytes_set(&gi->extensions.v[0].extension_data, tree, tree_len), 0);
    free(tree);
    set_random(&gi->confirmation_tag, 32);
    gi->signer = 0;
    tls_writer_init(&tw, 0);
    mls_group_info_encode_tbs(&tw, gi);
    sign_into(signer->priv, "GroupInfoTBS", &tw, &gi->signature);
    return encode_msg(&m, len);
}

static void setup_world(struct world *W)
{
    memset(W, 0, sizeof(*W));
    who_init(&W->alice, "alice");
    who_init(&W->bob, "bob");
    who_init(&W->carol, "carol");
    who_init(&W->server, "server");
    struct mls_leaf_node a, b;
    make_leaf(&a, &W->alice, MLS_LEAF_SOURCE_KEY_PACKAGE, 0, NULL, 0);
    make_leaf(&b, &W->bob, MLS_LEAF_SOURCE_KEY_PACKAGE, 1, NULL, 0);
    assert_int_equal(mls_tree_new_one(&a, &W->model), 0);
    uint32_t idx = 99;
    assert_int_equal(mls_tree_add(W->model, &b, &idx), 0);
    assert_int_equal(idx, 1);
    mls_leaf_node_free(&a);
    mls_leaf_node_free(&b);
    size_t gi_len = 0;
    uint8_t *gi = make_group_info(W, &W->alice, &gi_len);
    assert_int_equal(mls_follower_new(gi, gi_len, NULL, 0, &W->f), 0);
    free(gi);
}

static void teardown_world(struct world *W)
{
    mls_follower_free(W->f);
    mls_tree_free(W->model);
}

/* Starts a PublicMessage from member `leaf` (or external sender). */
static void start_msg(struct mls_message *m, uint64_t epoch, uint8_t sender_type, uint32_t who,
                      uint8_t content_type)
{
    memset(m, 0, sizeof(*m));
    m->version = MLS_VERSION_MLS10;
    m->wire_format = MLS_WF_PUBLIC_MESSAGE;
    struct mls_framed_content *fc = &m->public_message.content;
    assert_int_equal(mls_bytes_set(&fc->group_id, GID, GID_LEN), 0);
    fc->epoch = epoch;
    fc->sender.sender_type = sender_type;
    if (sender_type == MLS_SENDER_MEMBER)
        fc->sender.leaf_index = who;
    else
        fc->sender.sender_index = who;
    fc->content_type = content_type;
}

/* Signs (with the follower's current GroupContext for members), adds the
 * tags a member would (the follower cannot check them) and encodes. */
static uint8_t *seal(struct world *W, struct mls_message *m, const uint8_t priv[32],
                     size_t *len)
{
    struct mls_public_message *pm = &m->public_message;
    uint8_t *gc = NULL;
    size_t gc_len = 0;
    bool member = pm->content.sender.sender_type == MLS_SENDER_MEMBER;
    if (member || pm->content.sender.sender_type == MLS_SENDER_NEW_MEMBER_COMMIT)
        assert_int_equal(mls_follower_group_context(W->f, &gc, &gc_len), 0);
    struct tls_writer tw;
    tls_writer_init(&tw, 0);
    mls_framed_content_encode_tbs(&tw, MLS_WF_PUBLIC_MESSAGE, &pm->content, gc, gc_len);
    free(gc);
    sign_into(priv, "FramedContentTBS", &tw, &pm->auth.signature);
    if (pm->content.content_type == MLS_CONTENT_COMMIT)
        set_random(&pm->auth.confirmation_tag, 32);
    if (member)
        set_random(&pm->membership_tag, 32);
    return encode_msg(m, len);
}

static int feed(struct world *W, uint8_t *msg, size_t len, int *event)
{
    int ev = 0;
    int rc = mls_follower_handle(W->f, msg, len, NOW, &ev);
    if (event)
        *event = ev;
    free(msg);
    return rc;
}

/* seal() then feed(): the message is sealed before its length is used. */
static int seal_feed(struct world *W, struct mls_message *m, const uint8_t priv[32], int *event)
{
    size_t len = 0;
    uint8_t *msg = seal(W, m, priv, &len);
    return feed(W, msg, len, event);
}

/* A commit by `leaf` with the given proposals (moved in; n may be 0). */
static void commit_msg(struct mls_message *m, uint64_t epoch, uint32_t leaf,
                       struct mls_proposal_or_ref *props, size_t n)
{
    start_msg(m, epoch, MLS_SENDER_MEMBER, leaf, MLS_CONTENT_COMMIT);
    struct mls_commit *c = &m->public_message.content.commit;
    if (n) {
        c->proposals = calloc(n, sizeof(*props));
        assert_non_null(c->proposals);
        memcpy(c->proposals, props, n * sizeof(*props));
        memset(props, 0, n * sizeof(*props));
    }
    c->n_proposals = n;
}

static void por_ref(struct mls_proposal_or_ref *p, const uint8_t ref[32])
{
    memset(p, 0, sizeof(*p));
    p->type = MLS_POR_REFERENCE;
    assert_int_equal(mls_bytes_set(&p->reference, ref, 32), 0);
}

static void por_remove(struct mls_proposal_or_ref *p, uint32_t leaf)
{
    memset(p, 0, sizeof(*p));
    p->type = MLS_POR_PROPOSAL;
    p->proposal.proposal_type = MLS_PROPOSAL_REMOVE;
    p->proposal.remove = leaf;
}

/* An UpdatePath for committer on `after` (the model tree with the commit's
 * proposals applied): fresh keys, one dummy ciphertext per resolution node
 * of each copath child (minus new members: none here, or `extra` to get
 * the count wrong), and a LeafNode signed over the right parent hash. */
static void make_path(struct mls_update_path *path, const struct mls_tree *after,
                      const struct who *w, uint32_t committer, int extra)
{
    uint32_t fdp[32], res[64];
    size_t n_fdp = 0;
    memset(path, 0, sizeof(*path));
    assert_int_equal(mls_tree_filtered_direct_path(after, committer, fdp, 32, &n_fdp), 0);
    path->n_nodes = n_fdp;
    path->nodes = calloc(n_fdp ? n_fdp : 1, sizeof(*path->nodes));
    assert_non_null(path->nodes);
    for (size_t i = 0; i < n_fdp; i++) {
        uint8_t x[32], pub[32];
        crypto_random(x, sizeof(x));
        crypto_x25519_public(x, pub);
        assert_int_equal(mls_bytes_set(&path->nodes[i].encryption_key, pub, 32), 0);
        uint32_t l = 0, r = 0;
        assert_int_equal(mls_treemath_left(fdp[i], &l), 0);
        assert_int_equal(mls_treemath_right(fdp[i], &r), 0);
        uint32_t cop = mls_treemath_in_subtree(l, 2 * committer) ? r : l;
        size_t n_res = 0;
        assert_int_equal(mls_tree_resolution(after, cop, res, 64, &n_res), 0);
        n_res = (size_t)((int)n_res + extra);
        struct mls_update_path_node *un = &path->nodes[i];
        un->encrypted_path_secret = calloc(n_res ? n_res : 1, sizeof(*un->encrypted_path_secret));
        assert_non_null(un->encrypted_path_secret);
        un->n_encrypted_path_secret = n_res;
        for (size_t k = 0; k < n_res; k++) {
            set_random(&un->encrypted_path_secret[k].kem_output, 32);
            set_random(&un->encrypted_path_secret[k].ciphertext, 48);
        }
    }
    uint8_t ph[32];
    size_t ph_len = 0;
    assert_int_equal(mls_tree_path_parent_hash(after, committer, path, ph, &ph_len), 0);
    make_leaf(&path->leaf_node, w, MLS_LEAF_SOURCE_COMMIT, committer, ph, ph_len);
}

static void roster_is(struct world *W, const char *const *names, size_t n)
{
    struct mls_roster_entry r[8];
    size_t got = 0;
    assert_int_equal(mls_follower_roster(W->f, r, 8, &got), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].identity_len, strlen(names[i]));
        assert_memory_equal(r[i].identity, names[i], r[i].identity_len);
        assert_int_equal(r[i].signature_key_len, 32);
    }
}

/* The follower's tree hash equals the model's and a re-decoded copy's. */
static void tree_matches_model(struct world *W)
{
    uint8_t fh[32], mh[32], dh[32];
    mls_follower_tree_hash(W->f, fh);
    assert_int_equal(mls_tree_node_hash(W->model, mls_tree_root(W->model), mh), 0);
    assert_memory_equal(fh, mh, 32);
    uint8_t *enc = NULL;
    size_t len = 0;
    struct mls_tree *t = NULL;
    assert_int_equal(mls_follower_tree(W->f, &enc, &len), 0);
    assert_int_equal(mls_tree_decode(enc, len, &t), 0);
    assert_int_equal(mls_tree_node_hash(t, mls_tree_root(t), dh), 0);
    assert_memory_equal(fh, dh, 32);
    assert_int_equal(mls_tree_validate(t, GID, GID_LEN), 0);
    mls_tree_free(t);
    free(enc);
}

/* Confirmed transcript hash after a commit, recomputed from the commit's
 * own fields: Hash(interim_before || ConfirmedTranscriptHashInput). */
static void expect_confirmed(const uint8_t interim_before[32], const uint8_t *msg, size_t len,
                             uint8_t out[32])
{
    struct mls_message m = {0};
    assert_int_equal(mls_message_parse(msg, len, &m), 0);
    struct tls_writer tw;
    tls_writer_init(&tw, 0);
    mls_confirmed_transcript_hash_input_encode(&tw, MLS_WF_PUBLIC_MESSAGE,
                                               &m.public_message.content,
                                               &m.public_message.auth.signature);
    assert_int_equal(tw.err, 0);
    crypto_sha256_2(interim_before, 32, tw.buf, tw.len, out);
    tls_writer_reset(&tw);
    mls_message_free(&m);
}

static void group_info_checks(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    assert_int_equal(mls_follower_epoch(W.f), 5);
    static const char *const ab[] = {"alice", "bob"};
    roster_is(&W, ab, 2);
    tree_matches_model(&W);

    size_t len = 0;
    uint8_t *gi = make_group_info(&W, &W.alice, &len);
    struct mls_follower *f = NULL;
    /* Signed by Bob but naming Alice (leaf 0) as signer. */
    uint8_t *forged = make_group_info(&W, &W.bob, &len);
    assert_int_equal(mls_follower_new(forged, len, NULL, 0, &f), ERR_CRYPTO);
    assert_null(f);
    free(forged);
    /* A tree that does not match the GroupContext's tree_hash. */
    struct mls_tree *other = NULL;
    assert_int_equal(mls_tree_clone(W.model, &other), 0);
    assert_int_equal(mls_tree_remove(other, 1), 0);
    uint8_t *tb = NULL;
    size_t tb_len = 0;
    assert_int_equal(mls_tree_encode(other, &tb, &tb_len), 0);
    assert_int_equal(mls_follower_new(gi, len, tb, tb_len, &f), ERR_INVALID);
    /* Not a GroupInfo at all / truncated. */
    assert_int_not_equal(mls_follower_new(tb, tb_len, NULL, 0, &f), 0);
    assert_int_not_equal(mls_follower_new(gi, len - 1, NULL, 0, &f), 0);
    assert_null(f);
    free(tb);
    mls_tree_free(other);
    free(gi);
    teardown_world(&W);
}

static void add_and_remove(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    uint8_t interim[32], confirmed[32], want[32];
    size_t len;
    int ev = 0;

    /* Bob proposes adding Carol. */
    struct mls_message m;
    start_msg(&m, 5, MLS_SENDER_MEMBER, 1, MLS_CONTENT_PROPOSAL);
    m.public_message.content.proposal.proposal_type = MLS_PROPOSAL_ADD;
    struct mls_key_package carol_kp;
    make_kp(&carol_kp, &W.carol);
    kp_dup(&m.public_message.content.proposal.add, &carol_kp);
    uint8_t *add = seal(&W, &m, W.bob.priv, &len);
    size_t add_len = len;
    uint8_t *add_copy = malloc(add_len);
    assert_non_null(add_copy);
    memcpy(add_copy, add, add_len);

    /* Forged: the same proposal with one signature bit flipped. */
    uint8_t *bad = malloc(add_len);
    assert_non_null(bad);
    memcpy(bad, add, add_len);
    bad[add_len - 40] ^= 1; /* inside the signature (the tag follows it) */
    assert_int_equal(feed(&W, bad, add_len, NULL), ERR_CRYPTO);

    assert_int_equal(feed(&W, add, add_len, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_PROPOSAL);
    assert_int_equal(feed(&W, add_copy, add_len, NULL), ERR_CONFLICT);
    struct mls_follower_pending pend[4];
    size_t np = 0;
    assert_int_equal(mls_follower_pending(W.f, pend, 4, &np), 0);
    assert_int_equal(np, 1);
    assert_int_equal(pend[0].proposal_type, MLS_PROPOSAL_ADD);
    assert_int_equal(pend[0].sender, 1);
    uint8_t add_ref[32];
    memcpy(add_ref, pend[0].ref, 32);

    /* Wrong epoch, wrong group, unknown reference, forged commit. */
    struct mls_proposal_or_ref por;
    por_ref(&por, add_ref);
    commit_msg(&m, 4, 0, &por, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_BADSTATE);
    por_ref(&por, add_ref);
    commit_msg(&m, 5, 0, &por, 1);
    m.public_message.content.group_id.data[0] ^= 1;
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    uint8_t unknown[32];
    crypto_random(unknown, 32);
    por_ref(&por, unknown);
    commit_msg(&m, 5, 0, &por, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_NOT_FOUND);
    por_ref(&por, add_ref);
    commit_msg(&m, 5, 0, &por, 1);
    assert_int_equal(seal_feed(&W, &m, W.bob.priv, NULL), ERR_CRYPTO);
    /* Two Adds of the same KeyPackage (by value). */
    struct mls_proposal_or_ref two[2];
    memset(two, 0, sizeof(two));
    struct mls_key_package dave_kp;
    struct who dave;
    who_init(&dave, "dave");
    make_kp(&dave_kp, &dave);
    for (int i = 0; i < 2; i++) {
        two[i].type = MLS_POR_PROPOSAL;
        two[i].proposal.proposal_type = MLS_PROPOSAL_ADD;
        kp_dup(&two[i].proposal.add, &dave_kp);
    }
    mls_key_package_free(&dave_kp);
    commit_msg(&m, 5, 0, two, 2);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    assert_int_equal(mls_follower_epoch(W.f), 5);

    /* Alice commits Bob's Add by reference (no path needed). */
    mls_follower_interim_transcript_hash(W.f, interim);
    por_ref(&por, add_ref);
    commit_msg(&m, 5, 0, &por, 1);
    uint8_t *c1 = seal(&W, &m, W.alice.priv, &len);
    expect_confirmed(interim, c1, len, want);
    assert_int_equal(feed(&W, c1, len, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_COMMIT);
    assert_int_equal(mls_follower_epoch(W.f), 6);
    mls_follower_confirmed_transcript_hash(W.f, confirmed);
    assert_memory_equal(confirmed, want, 32);
    assert_int_equal(mls_follower_pending(W.f, pend, 4, &np), 0);
    assert_int_equal(np, 0);
    uint32_t idx = 0;
    assert_int_equal(mls_tree_add(W.model, &carol_kp.leaf_node, &idx), 0);
    assert_int_equal(idx, 2);
    static const char *const abc[] = {"alice", "bob", "carol"};
    roster_is(&W, abc, 3);
    tree_matches_model(&W);

    /* Removing Bob needs a path. */
    por_remove(&por, 1);
    commit_msg(&m, 6, 0, &por, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    /* Alice may not remove herself. */
    por_remove(&por, 0);
    commit_msg(&m, 6, 0, &por, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    /* An empty commit needs a path too. */
    commit_msg(&m, 6, 0, NULL, 0);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);

    struct mls_tree *after = NULL;
    assert_int_equal(mls_tree_clone(W.model, &after), 0);
    assert_int_equal(mls_tree_remove(after, 1), 0);
    /* A path with one encrypted secret too many. */
    por_remove(&por, 1);
    commit_msg(&m, 6, 0, &por, 1);
    m.public_message.content.commit.has_path = true;
    make_path(&m.public_message.content.commit.path, after, &W.alice, 0, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    /* A path whose leaf was signed over the wrong parent hash: sign the
     * leaf for the tree before the Remove. */
    por_remove(&por, 1);
    commit_msg(&m, 6, 0, &por, 1);
    m.public_message.content.commit.has_path = true;
    {
        struct mls_update_path *pp = &m.public_message.content.commit.path;
        make_path(pp, after, &W.alice, 0, 0);
        struct mls_leaf_node wrong;
        make_leaf(&wrong, &W.alice, MLS_LEAF_SOURCE_COMMIT, 0, unknown, 32);
        mls_leaf_node_free(&pp->leaf_node);
        pp->leaf_node = wrong;
    }
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    assert_int_equal(mls_follower_epoch(W.f), 6);

    /* The real thing. */
    por_remove(&por, 1);
    commit_msg(&m, 6, 0, &por, 1);
    m.public_message.content.commit.has_path = true;
    make_path(&m.public_message.content.commit.path, after, &W.alice, 0, 0);
    assert_int_equal(mls_tree_apply_path(after, 0, &m.public_message.content.commit.path, GID,
                                         GID_LEN),
                     0);
    mls_follower_interim_transcript_hash(W.f, interim);
    uint8_t *c2 = seal(&W, &m, W.alice.priv, &len);
    expect_confirmed(interim, c2, len, want);
    assert_int_equal(feed(&W, c2, len, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_COMMIT);
    assert_int_equal(mls_follower_epoch(W.f), 7);
    mls_follower_confirmed_transcript_hash(W.f, confirmed);
    assert_memory_equal(confirmed, want, 32);
    mls_tree_free(W.model);
    W.model = after;
    static const char *const ac[] = {"alice", "carol"};
    roster_is(&W, ac, 2);
    tree_matches_model(&W);

    /* Bob is gone: neither his commits nor his proposals are accepted. */
    commit_msg(&m, 7, 1, NULL, 0);
    assert_int_equal(seal_feed(&W, &m, W.bob.priv, NULL), ERR_DENIED);
    start_msg(&m, 7, MLS_SENDER_MEMBER, 1, MLS_CONTENT_PROPOSAL);
    m.public_message.content.proposal.proposal_type = MLS_PROPOSAL_REMOVE;
    m.public_message.content.proposal.remove = 0;
    assert_int_equal(seal_feed(&W, &m, W.bob.priv, NULL), ERR_DENIED);

    /* An Update may not be committed by value. */
    memset(&por, 0, sizeof(por));
    por.type = MLS_POR_PROPOSAL;
    por.proposal.proposal_type = MLS_PROPOSAL_UPDATE;
    make_leaf(&por.proposal.update, &W.carol, MLS_LEAF_SOURCE_UPDATE, 2, NULL, 0);
    commit_msg(&m, 7, 0, &por, 1);
    m.public_message.content.commit.has_path = true;
    make_path(&m.public_message.content.commit.path, W.model, &W.alice, 0, 0);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);

    /* Carol's Update by reference, committed by Alice with a path. */
    start_msg(&m, 7, MLS_SENDER_MEMBER, 2, MLS_CONTENT_PROPOSAL);
    m.public_message.content.proposal.proposal_type = MLS_PROPOSAL_UPDATE;
    make_leaf(&m.public_message.content.proposal.update, &W.carol, MLS_LEAF_SOURCE_UPDATE, 2,
              NULL, 0);
    struct mls_leaf_node carol_new = {0};
    assert_int_equal(mls_leaf_node_copy(&carol_new, &m.public_message.content.proposal.update),
                     0);
    assert_int_equal(seal_feed(&W, &m, W.carol.priv, &ev), 0);
    assert_int_equal(mls_follower_pending(W.f, pend, 4, &np), 0);
    assert_int_equal(np, 1);
    assert_int_equal(pend[0].proposal_type, MLS_PROPOSAL_UPDATE);
    assert_int_equal(mls_tree_update(W.model, 2, &carol_new), 0);
    mls_leaf_node_free(&carol_new);
    por_ref(&por, pend[0].ref);
    commit_msg(&m, 7, 0, &por, 1);
    m.public_message.content.commit.has_path = true;
    make_path(&m.public_message.content.commit.path, W.model, &W.alice, 0, 0);
    assert_int_equal(mls_tree_apply_path(W.model, 0, &m.public_message.content.commit.path, GID,
                                         GID_LEN),
                     0);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, &ev), 0);
    assert_int_equal(mls_follower_epoch(W.f), 8);
    tree_matches_model(&W);

    mls_key_package_free(&carol_kp);
    teardown_world(&W);
}

static void external_remove(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    uint8_t *msg = NULL;
    size_t len = 0;
    int ev = 0;

    /* Only the listed external sender's key may sign, only for members. */
    assert_int_equal(mls_follower_external_remove(W.f, 1, W.bob.priv, 0, &msg, &len), ERR_DENIED);
    assert_int_equal(mls_follower_external_remove(W.f, 1, W.server.priv, 1, &msg, &len),
                     ERR_NOT_FOUND);
    assert_int_equal(mls_follower_external_remove(W.f, 5, W.server.priv, 0, &msg, &len),
                     ERR_INVALID);
    assert_null(msg);

    assert_int_equal(mls_follower_external_remove(W.f, 1, W.server.priv, 0, &msg, &len), 0);
    /* It is a PublicMessage from external sender 0, epoch 5, Remove(1). */
    struct mls_message m = {0};
    assert_int_equal(mls_message_parse(msg, len, &m), 0);
    assert_int_equal(m.wire_format, MLS_WF_PUBLIC_MESSAGE);
    assert_int_equal(m.public_message.content.sender.sender_type, MLS_SENDER_EXTERNAL);
    assert_int_equal(m.public_message.content.epoch, 5);
    assert_int_equal(m.public_message.content.proposal.proposal_type, MLS_PROPOSAL_REMOVE);
    assert_int_equal(m.public_message.content.proposal.remove, 1);
    assert_int_equal(m.public_message.membership_tag.len, 0);
    mls_message_free(&m);

    /* Tampered: the removed leaf changed to 0 after signing. */
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, msg, len);
    assert_int_equal(mls_message_parse(bad, len, &m), 0);
    m.public_message.content.proposal.remove = 0;
    size_t bad_len = 0;
    free(bad);
    bad = encode_msg(&m, &bad_len);
    assert_int_equal(feed(&W, bad, bad_len, NULL), ERR_CRYPTO);

    assert_int_equal(feed(&W, msg, len, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_PROPOSAL);
    struct mls_follower_pending pend[2];
    size_t np = 0;
    assert_int_equal(mls_follower_pending(W.f, pend, 2, &np), 0);
    assert_int_equal(np, 1);
    assert_int_equal(pend[0].sender_type, MLS_SENDER_EXTERNAL);

    /* Alice commits it by reference, with a path. */
    struct mls_proposal_or_ref por;
    por_ref(&por, pend[0].ref);
    commit_msg(&m, 5, 0, &por, 1);
    assert_int_equal(mls_tree_remove(W.model, 1), 0);
    m.public_message.content.commit.has_path = true;
    make_path(&m.public_message.content.commit.path, W.model, &W.alice, 0, 0);
    assert_int_equal(mls_tree_apply_path(W.model, 0, &m.public_message.content.commit.path, GID,
                                         GID_LEN),
                     0);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_COMMIT);
    static const char *const a[] = {"alice"};
    roster_is(&W, a, 1);
    tree_matches_model(&W);
    /* The old proposal is of a past epoch now. */
    assert_int_equal(mls_follower_external_remove(W.f, 1, W.server.priv, 0, &msg, &len),
                     ERR_INVALID);
    teardown_world(&W);
}

/* ---- replay of the passive-client vectors -----------------------------------
 * The follower is seeded the way the server would be: from the GroupInfo
 * (here obtained by opening the entry's Welcome as the joining client, since
 * the vectors carry the GroupInfo only inside it) and the ratchet tree (out
 * of band or from the GroupInfo extension). Then every proposal and commit of
 * every epoch is fed to it. A commit's signature covers the GroupContext, so
 * accepting epoch n+1's messages proves the follower's tree hash and
 * confirmed transcript hash for epoch n were right. PrivateMessage
 * handshakes cannot be followed: the follower must refuse the first one
 * (ERR_UNSUPPORTED) and the entry counts as "followed until private". */

struct replay_counts {
    unsigned joined, total, full, until_private, no_psk, messages;
};

static bool find_psk(const json_t *e, const struct mls_bytes *id, struct mls_bytes *out)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(e, "external_psks"), i, p)
    {
        struct vec_bytes pid = {0}, val = {0};
        bool ok = vec_hex(p, "psk_id", &pid) && vec_hex(p, "psk", &val) && pid.len == id->len &&
                  memcmp(pid.p, id->data, id->len) == 0;
        if (ok)
            assert_int_equal(mls_bytes_set(out, val.p, val.len), 0);
        vec_bytes_free(&pid);
        vec_bytes_free(&val);
        if (ok)
            return true;
    }
    return false;
}

/* Joins as the entry's client and builds the follower from the GroupInfo.
 * Returns 0, 1 when a PSK value is not available (resumption), or fails. */
static int replay_join(const json_t *e, struct mls_follower **f, uint64_t *now)
{
    struct mls_message kp = {0}, w = {0};
    struct mls_group_secrets gs = {0};
    struct mls_group_info gi = {0};
    struct mls_bytes *vals = NULL;
    struct vec_bytes init = {0}, tree = {0}, b = {0};
    int rc = -1;

    assert_true(vec_hex(e, "key_package", &b));
    assert_int_equal(mls_message_parse(b.p, b.len, &kp), 0);
    vec_bytes_free(&b);
    assert_true(vec_hex(e, "welcome", &b));
    assert_int_equal(mls_message_parse(b.p, b.len, &w), 0);
    vec_bytes_free(&b);
    assert_true(vec_hex(e, "init_priv", &init));
    *now = kp.key_package.leaf_node.lifetime.not_before + 1;
    assert_int_equal(mls_welcome_open_secrets(&w.welcome, &kp.key_package, init.p, &gs), 0);
    vals = calloc(gs.n_psks + 1, sizeof(*vals));
    assert_non_null(vals);
    for (size_t i = 0; i < gs.n_psks; i++) {
        if (gs.psks[i].psktype != MLS_PSK_EXTERNAL || !find_psk(e, &gs.psks[i].psk_id, &vals[i])) {
            rc = 1;
            goto out;
        }
    }
    uint8_t psk_secret[MLS_KS_NH];
    assert_int_equal(mls_welcome_psk_secret(&gs, vals, gs.n_psks, psk_secret), 0);
    assert_int_equal(mls_welcome_open_group_info(&w.welcome, &gs, psk_secret, &gi), 0);

    /* What the server would receive: the GroupInfo as an MLSMessage. */
    struct mls_message gm = {0};
    gm.version = MLS_VERSION_MLS10;
    gm.wire_format = MLS_WF_GROUP_INFO;
    gm.group_info = gi;
    memset(&gi, 0, sizeof(gi));
    size_t gl = 0;
    uint8_t *g = encode_msg(&gm, &gl);
    bool oob = json_is_string(json_object_get(e, "ratchet_tree"));
    if (oob)
        assert_true(vec_hex(e, "ratchet_tree", &tree));
    rc = mls_follower_new(g, gl, oob ? tree.p : NULL, oob ? tree.len : 0, f);
    if (rc != 0)
        fprintf(stderr, "follower from GroupInfo: %s\n", err_str(rc));
    free(g);
out:
    for (size_t i = 0; i < gs.n_psks; i++)
        mls_bytes_free(&vals[i]);
    free(vals);
    mls_group_info_free(&gi);
    mls_group_secrets_free(&gs);
    mls_message_free(&kp);
    mls_message_free(&w);
    vec_bytes_free(&init);
    vec_bytes_free(&tree);
    return rc;
}

/* Feeds one message: 0 accepted, 1 a PrivateMessage refused as expected. */
static int replay_one(struct mls_follower *f, const json_t *hex, uint64_t now, int want_event,
                      struct replay_counts *c)
{
    struct vec_bytes b = {0};
    assert_true(vec_hex_value(hex, &b));
    int ev = 0;
    int rc = mls_follower_handle(f, b.p, b.len, now, &ev);
    bool private = b.len >= 4 && b.p[3] == MLS_WF_PRIVATE_MESSAGE;
    vec_bytes_free(&b);
    if (private) {
        assert_int_equal(rc, ERR_UNSUPPORTED);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "message refused: %s\n", err_str(rc));
        return -1;
    }
    c->messages++;
    return ev == want_event ? 0 : -1;
}

static void replay_file(const char *file, struct replay_counts *c)
{
    json_t *root = vec_load(file);
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e)
    {
        if (vec_uint(e, "cipher_suite") != 3)
            continue;
        c->total++;
        struct mls_follower *f = NULL;
        uint64_t now = 0;
        int rc = replay_join(e, &f, &now);
        if (rc == 1) {
            c->no_psk++;
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "%s entry %zu: join failed\n", file, i);
            continue;
        }
        c->joined++;
        size_t k;
        json_t *ep;
        int state = 0;
        uint64_t epoch = mls_follower_epoch(f);
        json_array_foreach(json_object_get(e, "epochs"), k, ep)
        {
            size_t j;
            json_t *p;
            json_array_foreach(json_object_get(ep, "proposals"), j, p)
            {
                if (state == 0)
                    state = replay_one(f, p, now, MLS_FOLLOWER_PROPOSAL, c);
            }
            if (state == 0)
                state = replay_one(f, json_object_get(ep, "commit"), now, MLS_FOLLOWER_COMMIT, c);
            if (state == 0 && mls_follower_epoch(f) != ++epoch)
                state = -1;
            if (state != 0)
                break;
        }
        if (state == 0)
            c->full++;
        else if (state == 1)
            c->until_private++;
        else
            fprintf(stderr, "%s entry %zu: epoch %zu refused\n", file, i, k);
        mls_follower_free(f);
    }
    json_decref(root);
}

static void psk_proposal(struct mls_proposal *p, const uint8_t nonce[32], uint8_t usage)
{
    memset(p, 0, sizeof(*p));
    p->proposal_type = MLS_PROPOSAL_PSK;
    if (usage) {
        p->psk.psktype = MLS_PSK_RESUMPTION;
        p->psk.usage = usage;
        assert_int_equal(mls_bytes_set(&p->psk.psk_group_id, GID, GID_LEN), 0);
        p->psk.psk_epoch = 1;
    } else {
        p->psk.psktype = MLS_PSK_EXTERNAL;
        assert_int_equal(mls_bytes_set(&p->psk.psk_id, (const uint8_t *)"psk", 3), 0);
    }
    assert_int_equal(mls_bytes_set(&p->psk.psk_nonce, nonce, 32), 0);
}

/* Limits and PSK rules: at most MLS_FOLLOWER_MAX_PENDING proposals per
 * epoch and per commit; PSK proposals must be unique, external or
 * application resumption. */
static void limits_and_psks(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    struct mls_message m;
    uint8_t nonce[32] = {0};
    for (uint32_t i = 0; i <= MLS_FOLLOWER_MAX_PENDING; i++) {
        memcpy(nonce, &i, sizeof(i));
        start_msg(&m, 5, MLS_SENDER_MEMBER, 0, MLS_CONTENT_PROPOSAL);
        psk_proposal(&m.public_message.content.proposal, nonce, 0);
        int rc = seal_feed(&W, &m, W.alice.priv, NULL);
        assert_int_equal(rc, i < MLS_FOLLOWER_MAX_PENDING ? 0 : ERR_LIMIT);
    }
    /* A resumption PSK for a reinit is not a proposal anyone may send. */
    start_msg(&m, 5, MLS_SENDER_MEMBER, 1, MLS_CONTENT_PROPOSAL);
    psk_proposal(&m.public_message.content.proposal, nonce, MLS_RESUMPTION_REINIT);
    assert_int_equal(seal_feed(&W, &m, W.bob.priv, NULL), ERR_INVALID);

    /* Commits: too many proposals; the same PSK twice; a short nonce. */
    size_t n = MLS_FOLLOWER_MAX_PENDING + 1;
    struct mls_proposal_or_ref *many = calloc(n, sizeof(*many));
    assert_non_null(many);
    for (size_t i = 0; i < n; i++) {
        many[i].type = MLS_POR_PROPOSAL;
        memcpy(nonce, &i, sizeof(i));
        psk_proposal(&many[i].proposal, nonce, 0);
    }
    commit_msg(&m, 5, 0, many, n);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_LIMIT);
    free(many);
    struct mls_proposal_or_ref two[2];
    memset(two, 0, sizeof(two));
    for (int i = 0; i < 2; i++) {
        two[i].type = MLS_POR_PROPOSAL;
        psk_proposal(&two[i].proposal, nonce, 0);
    }
    commit_msg(&m, 5, 0, two, 2);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    memset(two, 0, sizeof(two));
    two[0].type = MLS_POR_PROPOSAL;
    psk_proposal(&two[0].proposal, nonce, 0);
    two[0].proposal.psk.psk_nonce.len = 16;
    commit_msg(&m, 5, 0, two, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), ERR_INVALID);
    /* One PSK by value: no path needed. */
    memset(two, 0, sizeof(two));
    two[0].type = MLS_POR_PROPOSAL;
    psk_proposal(&two[0].proposal, nonce, 0);
    commit_msg(&m, 5, 0, two, 1);
    assert_int_equal(seal_feed(&W, &m, W.alice.priv, NULL), 0);
    assert_int_equal(mls_follower_epoch(W.f), 6);
    size_t np = 99;
    assert_int_equal(mls_follower_pending(W.f, NULL, 0, &np), 0);
    assert_int_equal(np, 0);
    teardown_world(&W);
}

static int refuse_all(void *ctx, const struct mls_tree *tree, uint32_t committer)
{
    (void)tree;
    *(uint32_t *)ctx = committer;
    return ERR_DENIED;
}

/* An external commit (§12.4.3.2) by Dave, and the server's external Add. */
static void external_join_and_add(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    struct who dave;
    who_init(&dave, "dave");
    struct mls_message m;
    int ev = 0;

    /* The model: Dave lands in the leftmost blank leaf (2, the tree
     * doubles); the path is computed from there. */
    struct mls_tree *after = NULL;
    assert_int_equal(mls_tree_clone(W.model, &after), 0);
    struct mls_leaf_node placeholder;
    make_leaf(&placeholder, &dave, MLS_LEAF_SOURCE_KEY_PACKAGE, 0, NULL, 0);
    uint32_t at = 0;
    assert_int_equal(mls_tree_add(after, &placeholder, &at), 0);
    assert_int_equal(at, 2);
    mls_leaf_node_free(&placeholder);

    /* kind 0: valid; 1: no ExternalInit; 2: plus an Add; 3: signed by Bob;
     * 4: a proposal by reference; 5: plus a Remove of Bob's leaf (only the
     * joiner's own old leaf may go, §12.4.3.2, as members check). */
    for (int kind = 5; kind >= 0; kind--) {
        struct mls_proposal_or_ref por[2];
        memset(por, 0, sizeof(por));
        size_t n = 0;
        if (kind != 1) {
            por[n].type = MLS_POR_PROPOSAL;
            por[n].proposal.proposal_type = MLS_PROPOSAL_EXTERNAL_INIT;
            set_random(&por[n].proposal.external_init, 32);
            n++;
        }
        if (kind == 2) {
            por[n].type = MLS_POR_PROPOSAL;
            por[n].proposal.proposal_type = MLS_PROPOSAL_ADD;
            struct who eve;
            who_init(&eve, "eve");
            make_kp(&por[n].proposal.add, &eve);
            n++;
        }
        if (kind == 4) {
            uint8_t r[32] = {0};
            por_ref(&por[n++], r);
        }
        if (kind == 5)
            por_remove(&por[n++], 1);
        start_msg(&m, 5, MLS_SENDER_NEW_MEMBER_COMMIT, 0, MLS_CONTENT_COMMIT);
        struct mls_commit *c = &m.public_message.content.commit;
        c->proposals = calloc(n ? n : 1, sizeof(*por));
        assert_non_null(c->proposals);
        memcpy(c->proposals, por, n * sizeof(*por));
        c->n_proposals = n;
        c->has_path = true;
        if (kind == 5) {
            /* A path that would be right had Bob's leaf been Dave's to
             * take: only the Remove rule refuses it. */
            struct mls_tree *resync = NULL;
            struct mls_leaf_node ph;
            uint32_t leaf = 0;
            assert_int_equal(mls_tree_clone(W.model, &resync), 0);
            assert_int_equal(mls_tree_remove(resync, 1), 0);
            make_leaf(&ph, &dave, MLS_LEAF_SOURCE_KEY_PACKAGE, 0, NULL, 0);
            assert_int_equal(mls_tree_add(resync, &ph, &leaf), 0);
            assert_int_equal(leaf, 1);
            mls_leaf_node_free(&ph);
            make_path(&c->path, resync, &dave, 1, 0);
            mls_tree_free(resync);
        } else {
            make_path(&c->path, after, &dave, 2, 0);
        }
        if (kind == 0) {
            /* A policy hook that refuses: nothing changes. */
            uint32_t seen = 99;
            struct mls_message copy = {0};
            size_t len = 0;
            uint8_t *enc = seal(&W, &m, dave.priv, &len);
            assert_int_equal(mls_message_parse(enc, len, &copy), 0);
            mls_follower_set_commit_check(W.f, refuse_all, &seen);
            assert_int_equal(feed(&W, enc, len, NULL), ERR_DENIED);
            assert_int_equal(seen, 2);
            assert_int_equal(mls_follower_epoch(W.f), 5);
            mls_follower_set_commit_check(W.f, NULL, NULL);
            assert_int_equal(mls_tree_apply_path(after, 2, &copy.public_message.content.commit.path,
                                                 GID, GID_LEN),
                             0);
            enc = encode_msg(&copy, &len);
            assert_int_equal(feed(&W, enc, len, &ev), 0);
            assert_int_equal(ev, MLS_FOLLOWER_COMMIT);
        } else {
            int want = kind == 3 ? ERR_CRYPTO : ERR_INVALID;
            assert_int_equal(seal_feed(&W, &m, kind == 3 ? W.bob.priv : dave.priv, NULL), want);
        }
    }
    assert_int_equal(mls_follower_epoch(W.f), 6);
    mls_tree_free(W.model);
    W.model = after;
    static const char *const abd[] = {"alice", "bob", "dave"};
    roster_is(&W, abd, 3);
    tree_matches_model(&W);

    /* The server proposes adding Carol as external sender 0. */
    struct mls_key_package kp;
    make_kp(&kp, &W.carol);
    struct mls_message km = {0};
    km.version = MLS_VERSION_MLS10;
    km.wire_format = MLS_WF_KEY_PACKAGE;
    km.key_package = kp;
    size_t kl = 0;
    uint8_t *kb = encode_msg(&km, &kl);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(mls_follower_external_add(W.f, kb, kl, dave.priv, 0, &out, &out_len),
                     ERR_DENIED);
    assert_int_equal(mls_follower_external_add(W.f, kb, kl, W.server.priv, 0, &out, &out_len), 0);
    free(kb);
    assert_int_equal(feed(&W, out, out_len, &ev), 0);
    assert_int_equal(ev, MLS_FOLLOWER_PROPOSAL);
    struct mls_follower_pending pend[2];
    size_t np = 0;
    assert_int_equal(mls_follower_pending(W.f, pend, 2, &np), 0);
    assert_int_equal(np, 1);
    assert_int_equal(pend[0].proposal_type, MLS_PROPOSAL_ADD);
    assert_int_equal(pend[0].sender_type, MLS_SENDER_EXTERNAL);
    teardown_world(&W);
}

/* A ReInit (§12.1.5) is committed alone and never to an older protocol
 * version; the follower applies the rules members do (mls_rules). */
static void reinit_rules(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    struct mls_message m;
    int ev = 0;
    for (int kind = 2; kind >= 0; kind--) {
        /* kind 0: valid; 1: to version 0 (older than mls10); 2: not alone. */
        struct mls_proposal_or_ref por[2];
        memset(por, 0, sizeof(por));
        por[0].type = MLS_POR_PROPOSAL;
        por[0].proposal.proposal_type = MLS_PROPOSAL_REINIT;
        struct mls_reinit *ri = &por[0].proposal.reinit;
        assert_int_equal(mls_bytes_set(&ri->group_id, (const uint8_t *)"next", 4), 0);
        ri->version = kind == 1 ? 0 : MLS_VERSION_MLS10;
        ri->cipher_suite = 3;
        size_t n = 1;
        if (kind == 2) {
            uint8_t nonce[32] = {0};
            por[1].type = MLS_POR_PROPOSAL;
            psk_proposal(&por[1].proposal, nonce, 0);
            n = 2;
        }
        commit_msg(&m, 5, 0, por, n);
        assert_int_equal(seal_feed(&W, &m, W.alice.priv, &ev), kind == 0 ? 0 : ERR_INVALID);
        assert_int_equal(mls_follower_epoch(W.f), kind == 0 ? 6 : 5);
    }
    assert_int_equal(ev, MLS_FOLLOWER_COMMIT);
    teardown_world(&W);
}

/* A GroupContextExtensions proposal must be supported by every member
 * when it arrives, as members check it (mls_rules_proposal): an extension
 * type no leaf lists is refused, a default one is kept. */
static void gce_proposal_rules(void **state)
{
    (void)state;
    struct world W;
    setup_world(&W);
    struct mls_message m;
    int ev = 0;
    for (int kind = 1; kind >= 0; kind--) {
        start_msg(&m, 5, MLS_SENDER_MEMBER, 1, MLS_CONTENT_PROPOSAL);
        struct mls_proposal *p = &m.public_message.content.proposal;
        p->proposal_type = MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS;
        p->gce.v = calloc(1, sizeof(*p->gce.v));
        assert_non_null(p->gce.v);
        p->gce.n = 1;
        /* kind 0: application_id (default, §7.2); 1: 0x0a0a, listed by nobody. */
        p->gce.v[0].extension_type = kind == 0 ? 1 : 0x0a0a;
        assert_int_equal(mls_bytes_set(&p->gce.v[0].extension_data, (const uint8_t *)"x", 1), 0);
        assert_int_equal(seal_feed(&W, &m, W.bob.priv, &ev), kind == 0 ? 0 : ERR_INVALID);
    }
    assert_int_equal(ev, MLS_FOLLOWER_PROPOSAL);
    size_t np = 0;
    assert_int_equal(mls_follower_pending(W.f, NULL, 0, &np), ERR_TOO_BIG);
    assert_int_equal(np, 1);
    teardown_world(&W);
}

static void passive_client_replay(void **state)
{
    (void)state;
    static const char *files[] = {
        "mls-test-vectors/passive-client-welcome.json",
        "mls-test-vectors/passive-client-handling-commit.json",
        "mls-test-vectors/interop-passive/welcome_join.json",
        "mls-test-vectors/interop-passive/application.json",
        "mls-test-vectors/interop-passive/commit.json",
        "mls-test-vectors/interop-passive/external_proposals.json",
        "mls-test-vectors/interop-passive/branch.json",
        "mls-test-vectors/interop-passive/reinit.json",
        "mls-test-vectors/interop-passive/external_join.json",
    };
    bool all = true;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct replay_counts c = {0};
        replay_file(files[i], &c);
        /* Passed: joined and followed to the end, or up to the first
         * PrivateMessage handshake, which was refused as it must be. */
        unsigned passed = c.full + c.until_private;
        printf("%s: %u/%u entries followed (%u to the end, %u up to a PrivateMessage "
               "handshake, %u need a resumption PSK), %u messages accepted\n",
               files[i], passed, c.total - c.no_psk, c.full, c.until_private, c.no_psk,
               c.messages);
        all = all && passed == c.total - c.no_psk && c.joined == passed;
    }
    assert_true(all);
}

int main(void)
{
    if (crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_info_checks),
        cmocka_unit_test(add_and_remove),
        cmocka_unit_test(external_remove),
        cmocka_unit_test(external_join_and_add),
        cmocka_unit_test(limits_and_psks),
        cmocka_unit_test(reinit_rules),
        cmocka_unit_test(gce_proposal_rules),
        cmocka_unit_test(passive_client_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
