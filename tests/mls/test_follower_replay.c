/*
 * test_follower_replay.c: the server's group follower (mls_follower.h)
 * replays interop-passive/external_proposals.json next to a client
 * (mls_group.h), and its external Removes are committed by the client.
 *
 * For every suite-3 entry whose commits are all PublicMessages (the
 * follower cannot read PrivateMessage handshakes; entries without epochs
 * count too):
 *   1. join as the passive client (mls_kp_from_parts + mls_group_join),
 *      check the initial epoch authenticator;
 *   2. seed a follower from the client's public state: a GroupInfo signed by
 *      the client with the ratchet tree (mls_group_group_info); and a second
 *      one from the Welcome's GroupInfo (signed by the committer);
 *   3. feed each epoch's proposals and commit to all three; after each commit
 *      the client's epoch authenticator must be the vector's, and the
 *      followers must agree with the client on epoch, GroupContext (bytes: tree hash
 *      and transcript hash) and roster;
 *   4. the client commits a GroupContextExtensions proposal that appends our
 *      server key to external_senders; the follower follows; then the
 *      follower signs an external Remove of another member
 *      (mls_follower_external_remove), which the client accepts (the event
 *      says an external proposal is pending) and commits with
 *      mls_group_commit_pending; the follower applies that commit and both
 *      rosters lose the member. A Remove with a key not in external_senders
 *      is refused by the follower.
 * Prints the per-file count.
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

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "mls_follower.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"
#include "mls_tree.h"
#include "mls_welcome.h"
#include "tls.h"
#include "vectors.h"

#define FILE_NAME "interop-passive/external_proposals.json"
#define MAX_ROSTER 64
#define NOW 1700000000u /* the interop-passive lifetimes are 0 .. 2^64-1 */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  entry %zu: check failed: %s: ", idx, #cond);                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

struct counts {
    unsigned entries, commits, proposals, ext_removes;
};

/* True when every commit of the entry is an MLSMessage(PublicMessage). */
static bool commits_public(const json_t *e)
{
    const json_t *epochs = json_object_get(e, "epochs"), *ep;
    size_t i;

    json_array_foreach(epochs, i, ep) {
        struct vec_bytes c = {0};
        bool pub;
        if (!vec_hex(ep, "commit", &c))
            return false;
        pub = c.len > 4 && c.p[2] == 0 && c.p[3] == MLS_WF_PUBLIC_MESSAGE;
        vec_bytes_free(&c);
        if (!pub)
            return false;
    }
    return true;
}

/* Follower and client agree on epoch, GroupContext bytes and roster. */
static bool agree(const struct mls_follower *f, const struct mls_group *g, size_t idx)
{
    struct mls_roster_entry a[MAX_ROSTER], b[MAX_ROSTER];
    size_t na = 0, nb = 0, la = 0, lb = 0;
    uint8_t *ga = NULL, *gb = NULL;
    bool ok = false;

    CHECK(mls_follower_epoch(f) == mls_group_epoch(g), "epochs %" PRIu64 " vs %" PRIu64,
          mls_follower_epoch(f), mls_group_epoch(g));
    CHECK(mls_follower_group_context(f, &ga, &la) == 0, "follower group context");
    CHECK(mls_group_group_context(g, &gb, &lb) == 0, "client group context");
    CHECK(la == lb && memcmp(ga, gb, la) == 0, "GroupContexts differ");
    CHECK(mls_follower_roster(f, a, MAX_ROSTER, &na) == 0, "follower roster");
    CHECK(mls_group_roster(g, b, MAX_ROSTER, &nb) == 0, "client roster");
    CHECK(na == nb, "roster sizes %zu vs %zu", na, nb);
    for (size_t i = 0; i < na; i++) {
        CHECK(a[i].leaf_index == b[i].leaf_index && a[i].identity_len == b[i].identity_len &&
                  memcmp(a[i].identity, b[i].identity, a[i].identity_len) == 0 &&
                  a[i].signature_key_len == b[i].signature_key_len &&
                  memcmp(a[i].signature_key, b[i].signature_key, a[i].signature_key_len) == 0,
              "roster entry %zu differs", i);
    }
    ok = true;
out:
    free(ga);
    free(gb);
    return ok;
}

static bool epoch_auth_is(const struct mls_group *g, const json_t *obj, const char *key, size_t idx)
{
    struct vec_bytes want = {0};
    uint8_t ea[CRYPTO_HASH_LEN];
    bool ok = false;

    CHECK(vec_hex(obj, key, &want), "no %s", key);
    CHECK(mls_group_epoch_authenticator(g, ea) == 0, "epoch authenticator");
    ok = vec_eq(key, &want, ea, sizeof(ea));
out:
    vec_bytes_free(&want);
    return ok;
}

/* The client's GroupContext extensions with our server key appended to
 * external_senders (or a new external_senders extension). *sender_index
 * gets our position in it. */
static int extensions_with_server(const struct mls_group *g, const uint8_t server_pub[32],
                                  struct mls_extension_list *out, uint32_t *sender_index)
{
    struct mls_group_context gc = {0};
    struct mls_external_senders es = {0};
    struct mls_external_sender *nv;
    struct tls_writer tw;
    uint8_t *buf = NULL;
    size_t len = 0, pos;
    int rc;

    memset(out, 0, sizeof(*out));
    tls_writer_init(&tw, 0);
    rc = mls_group_group_context(g, &buf, &len);
    if (rc != 0)
        goto out;
    rc = mls_group_context_parse(buf, len, &gc);
    if (rc != 0)
        goto out;
    rc = mls_ext_external_senders(&gc.extensions, &es);
    if (rc != 0 && rc != ERR_NOT_FOUND)
        goto out;
    nv = realloc(es.v, (es.n + 1) * sizeof(*es.v));
    rc = ERR_NOMEM;
    if (nv == NULL)
        goto out;
    es.v = nv;
    memset(&es.v[es.n], 0, sizeof(es.v[es.n]));
    *sender_index = (uint32_t)es.n;
    es.n++;
    es.v[es.n - 1].credential.credential_type = MLS_CREDENTIAL_BASIC;
    if ((rc = mls_bytes_set(&es.v[es.n - 1].signature_key, server_pub, 32)) != 0 ||
        (rc = mls_bytes_set(&es.v[es.n - 1].credential.identity, (const uint8_t *)"server", 6)) != 0)
        goto out;
    mls_external_senders_encode(&tw, &es);
    if ((rc = tls_writer_error(&tw)) != 0)
        goto out;
    rc = mls_extension_list_copy(out, &gc.extensions);
    if (rc != 0)
        goto out;
    pos = out->n;
    for (size_t i = 0; i < out->n; i++)
        if (out->v[i].extension_type == MLS_EXT_EXTERNAL_SENDERS)
            pos = i;
    if (pos == out->n) {
        struct mls_extension *ne = realloc(out->v, (out->n + 1) * sizeof(*out->v));
        rc = ERR_NOMEM;
        if (ne == NULL)
            goto out;
        out->v = ne;
        memset(&out->v[pos], 0, sizeof(out->v[pos]));
        out->v[pos].extension_type = MLS_EXT_EXTERNAL_SENDERS;
        out->n++;
    }
    rc = mls_bytes_set(&out->v[pos].extension_data, tw.buf, tw.len);
out:
    tls_writer_reset(&tw);
    mls_external_senders_free(&es);
    mls_group_context_free(&gc);
    free(buf);
    return rc;
}

/* Step 4: the follower's external Remove, committed by the client. */
static bool external_remove(struct mls_follower *f, struct mls_group *g, size_t idx,
                            struct counts *cnt)
{
    uint8_t server_priv[32], server_pub[32], other_priv[32], other_pub[32];
    struct mls_extension_list ext = {0};
    struct mls_group_commit_opts o;
    struct mls_group_commit_out co;
    struct mls_group_event ev;
    struct mls_roster_entry r[MAX_ROSTER];
    uint8_t *msg = NULL;
    size_t len = 0, n = 0, n_ext = 0;
    uint32_t sender = 0, victim = UINT32_MAX;
    int fev = 0;
    bool ok = false;

    memset(&co, 0, sizeof(co));
    memset(&ev, 0, sizeof(ev));
    crypto_sig_keygen(server_pub, server_priv);
    crypto_sig_keygen(other_pub, other_priv);
    CHECK(mls_group_roster(g, r, MAX_ROSTER, &n) == 0, "roster");
    for (size_t i = 0; i < n; i++)
        if (r[i].leaf_index != mls_group_own_leaf(g))
            victim = r[i].leaf_index;
    if (victim == UINT32_MAX) {
        ok = true; /* alone in the group: nobody to remove */
        goto out;
    }

    /* The client adds our server key to external_senders (GCE commit). */
    CHECK(extensions_with_server(g, server_pub, &ext, &sender) == 0, "building extensions");
    memset(&o, 0, sizeof(o));
    o.gce = &ext;
    CHECK(mls_group_commit_create(g, &o, NOW, &co) == 0, "GCE commit");
    CHECK(mls_group_commit_confirm(g) == 0, "confirm GCE commit");
    CHECK(mls_follower_handle(f, co.commit, co.commit_len, NOW, &fev) == 0 &&
              fev == MLS_FOLLOWER_COMMIT,
          "follower refused the GCE commit");
    mls_group_commit_out_reset(&co);
    CHECK(agree(f, g, idx), "after the GCE commit");

    /* A key that is not an external sender is refused. */
    CHECK(mls_follower_external_remove(f, victim, other_priv, sender, &msg, &len) == ERR_DENIED,
          "Remove signed with an unlisted key");
    free(msg);
    msg = NULL;

    CHECK(mls_follower_external_remove(f, victim, server_priv, sender, &msg, &len) == 0,
          "external Remove");
    CHECK(mls_follower_handle(f, msg, len, NOW, &fev) == 0 && fev == MLS_FOLLOWER_PROPOSAL,
          "follower refused its own Remove");
    CHECK(mls_group_process(g, msg, len, NOW, &ev) == 0, "client refused the external Remove");
    CHECK(ev.type == MLS_GROUP_EV_PROPOSAL && ev.external_pending &&
              ev.proposal_type == MLS_PROPOSAL_REMOVE,
          "event type %d external_pending %d", ev.type, ev.external_pending);
    CHECK(mls_group_pending_proposals(g, &n_ext) == 1 && n_ext == 1, "pending proposals");
    CHECK(mls_group_commit_pending(g, NOW, &co) == 0, "commit_pending");
    CHECK(mls_group_commit_confirm(g) == 0, "confirm");
    CHECK(mls_follower_handle(f, co.commit, co.commit_len, NOW, &fev) == 0 &&
              fev == MLS_FOLLOWER_COMMIT,
          "follower refused the commit of its Remove");
    CHECK(agree(f, g, idx), "after the external Remove");
    CHECK(mls_group_roster(g, r, MAX_ROSTER, &n) == 0, "roster");
    for (size_t i = 0; i < n; i++)
        CHECK(r[i].leaf_index != victim, "leaf %" PRIu32 " still a member", victim);
    cnt->ext_removes++;
    ok = true;
out:
    mls_group_event_reset(&ev);
    mls_group_commit_out_reset(&co);
    mls_extension_list_free(&ext);
    free(msg);
    crypto_wipe(server_priv, sizeof(server_priv));
    crypto_wipe(other_priv, sizeof(other_priv));
    return ok;
}

/* A follower seeded from the GroupInfo inside the Welcome (signed by the
 * committer: what the delivery service gets with a commit), opened with
 * the passive client's init key (mls_welcome.h). */
static int follower_from_welcome(const struct vec_bytes *kpb, const struct vec_bytes *init,
                                 const struct vec_bytes *welcome, const struct vec_bytes *tree,
                                 const struct mls_group_psk *psks, size_t n_psks,
                                 struct mls_follower **f)
{
    struct mls_message kp = {0}, w = {0}, gm = {0};
    struct mls_group_secrets gs = {0};
    struct mls_bytes vals[8];
    uint8_t psk_secret[MLS_KS_NH];
    struct tls_writer tw;
    int rc;

    memset(vals, 0, sizeof(vals));
    tls_writer_init(&tw, 0);
    if ((rc = mls_message_parse(kpb->p, kpb->len, &kp)) != 0 ||
        (rc = mls_message_parse(welcome->p, welcome->len, &w)) != 0)
        goto out;
    rc = ERR_INVALID;
    if (kp.wire_format != MLS_WF_KEY_PACKAGE || w.wire_format != MLS_WF_WELCOME)
        goto out;
    if ((rc = mls_welcome_open_secrets(&w.welcome, &kp.key_package, init->p, &gs)) != 0)
        goto out;
    rc = ERR_NOT_FOUND;
    if (gs.n_psks > 8)
        goto out;
    for (size_t i = 0; i < gs.n_psks; i++) {
        size_t k;
        for (k = 0; k < n_psks; k++)
            if (gs.psks[i].psktype == MLS_PSK_EXTERNAL && gs.psks[i].psk_id.len == psks[k].id_len &&
                memcmp(gs.psks[i].psk_id.data, psks[k].id, psks[k].id_len) == 0)
                break;
        if (k == n_psks)
            goto out;
        vals[i].data = (uint8_t *)(uintptr_t)psks[k].secret; /* borrowed, not freed */
        vals[i].len = psks[k].secret_len;
    }
    if ((rc = mls_welcome_psk_secret(&gs, vals, gs.n_psks, psk_secret)) != 0)
        goto out;
    gm.version = MLS_VERSION_MLS10;
    gm.wire_format = MLS_WF_GROUP_INFO;
    if ((rc = mls_welcome_open_group_info(&w.welcome, &gs, psk_secret, &gm.group_info)) != 0)
        goto out;
    mls_message_encode(&tw, &gm);
    if ((rc = tls_writer_error(&tw)) != 0)
        goto out;
    rc = mls_follower_new(tw.buf, tw.len, tree->p, tree->len, f);
out:
    crypto_wipe(psk_secret, sizeof(psk_secret));
    tls_writer_reset(&tw);
    mls_message_free(&gm);
    mls_group_secrets_free(&gs);
    mls_message_free(&kp);
    mls_message_free(&w);
    return rc;
}

static bool replay(const json_t *e, size_t idx, struct counts *cnt)
{
    struct vec_bytes kpb = {0}, init = {0}, enc = {0}, sig = {0}, welcome = {0}, tree = {0};
    struct vec_bytes psk_ids[8], psk_vals[8];
    struct mls_group_psk psks[8];
    const json_t *epochs = json_object_get(e, "epochs"), *ep, *jpsks = json_object_get(e, "external_psks");
    struct mls_kp *kp = NULL;
    struct mls_group *g = NULL;
    struct mls_follower *f = NULL, *fw = NULL;
    uint8_t *gi = NULL;
    size_t gi_len = 0, n_psks = 0, i;
    bool ok = false;

    memset(psk_ids, 0, sizeof(psk_ids));
    memset(psk_vals, 0, sizeof(psk_vals));
    CHECK(vec_hex(e, "key_package", &kpb) && vec_hex(e, "init_priv", &init) &&
              vec_hex(e, "encryption_priv", &enc) && vec_hex(e, "signature_priv", &sig) &&
              vec_hex(e, "welcome", &welcome) && init.len == 32 && enc.len == 32 && sig.len == 32,
          "entry fields");
    if (json_is_string(json_object_get(e, "ratchet_tree")))
        CHECK(vec_hex(e, "ratchet_tree", &tree), "ratchet_tree");
    CHECK(json_array_size(jpsks) <= 8, "too many PSKs");
    for (i = 0; i < json_array_size(jpsks); i++, n_psks++) {
        const json_t *p = json_array_get(jpsks, i);
        CHECK(vec_hex(p, "psk_id", &psk_ids[i]) && vec_hex(p, "psk", &psk_vals[i]), "psk");
        psks[i].id = psk_ids[i].p;
        psks[i].id_len = psk_ids[i].len;
        psks[i].secret = psk_vals[i].p;
        psks[i].secret_len = psk_vals[i].len;
    }

    /* 1. join */
    CHECK(mls_kp_from_parts(kpb.p, kpb.len, init.p, enc.p, sig.p, &kp) == 0, "key package");
    CHECK(mls_group_join(welcome.p, welcome.len, &kp, 1, tree.p, tree.len, psks, n_psks, NULL, NOW,
                         0, &g) == 0,
          "join");
    CHECK(epoch_auth_is(g, e, "initial_epoch_authenticator", idx), "initial epoch authenticator");
    for (i = 0; i < n_psks; i++)
        CHECK(mls_group_add_external_psk(g, &psks[i]) == 0, "registering a PSK");

    /* 2. the followers: f from the client's public state (its signed
     * GroupInfo with the tree), fw from the Welcome's GroupInfo */
    CHECK(mls_group_group_info(g, true, &gi, &gi_len) == 0, "GroupInfo");
    CHECK(mls_follower_new(gi, gi_len, NULL, 0, &f) == 0, "follower from the client's GroupInfo");
    CHECK(agree(f, g, idx), "after the join");
    CHECK(follower_from_welcome(&kpb, &init, &welcome, &tree, psks, n_psks, &fw) == 0,
          "follower from the Welcome's GroupInfo");
    CHECK(agree(fw, g, idx), "after the join (Welcome's GroupInfo)");

    /* 3. the epochs */
    json_array_foreach(epochs, i, ep) {
        const json_t *props = json_object_get(ep, "proposals"), *pj;
        struct vec_bytes commit = {0};
        struct mls_group_event ev;
        size_t k;
        int fev = 0, rc;

        json_array_foreach(props, k, pj) {
            struct vec_bytes p = {0};
            CHECK(vec_hex_value(pj, &p), "proposal hex");
            memset(&ev, 0, sizeof(ev));
            rc = mls_group_process(g, p.p, p.len, NOW, &ev);
            mls_group_event_reset(&ev);
            fev = 0;
            if (rc == 0)
                rc = mls_follower_handle(f, p.p, p.len, NOW, &fev);
            if (rc == 0 && fev == MLS_FOLLOWER_PROPOSAL)
                rc = mls_follower_handle(fw, p.p, p.len, NOW, &fev);
            vec_bytes_free(&p);
            CHECK(rc == 0 && fev == MLS_FOLLOWER_PROPOSAL, "epoch %zu proposal %zu: %d", i, k, rc);
            cnt->proposals++;
        }
        CHECK(vec_hex(ep, "commit", &commit), "commit hex");
        memset(&ev, 0, sizeof(ev));
        rc = mls_group_process(g, commit.p, commit.len, NOW, &ev);
        mls_group_event_reset(&ev);
        fev = 0;
        if (rc == 0)
            rc = mls_follower_handle(f, commit.p, commit.len, NOW, &fev);
        if (rc == 0 && fev == MLS_FOLLOWER_COMMIT)
            rc = mls_follower_handle(fw, commit.p, commit.len, NOW, &fev);
        vec_bytes_free(&commit);
        CHECK(rc == 0 && fev == MLS_FOLLOWER_COMMIT, "epoch %zu commit: %d", i, rc);
        CHECK(epoch_auth_is(g, ep, "epoch_authenticator", idx), "epoch %zu authenticator", i);
        CHECK(agree(f, g, idx) && agree(fw, g, idx), "after epoch %zu", i);
        cnt->commits++;
    }

    /* 4. the follower as external sender */
    CHECK(external_remove(f, g, idx, cnt), "external Remove");
    ok = true;
out:
    mls_follower_free(f);
    mls_follower_free(fw);
    mls_group_free(g);
    mls_kp_free(kp);
    free(gi);
    for (i = 0; i < 8; i++) {
        vec_bytes_free(&psk_ids[i]);
        vec_bytes_free(&psk_vals[i]);
    }
    vec_bytes_free(&kpb);
    vec_bytes_free(&init);
    vec_bytes_free(&enc);
    vec_bytes_free(&sig);
    vec_bytes_free(&welcome);
    vec_bytes_free(&tree);
    return ok;
}

static void test_follower_replay(void **state)
{
    json_t *all = vec_load("mls-test-vectors/" FILE_NAME), *e;
    struct counts cnt = {0};
    unsigned passed = 0, total = 0, skipped = 0;
    size_t idx;

    (void)state;
    json_array_foreach(all, idx, e) {
        if (vec_uint(e, "cipher_suite") != 3)
            continue;
        if (!commits_public(e)) {
            skipped++;
            continue;
        }
        total++;
        if (replay(e, idx, &cnt))
            passed++;
    }
    json_decref(all);
    printf("%s: follower replay of %u entries with public commits (%u with a PrivateMessage commit "
           "not replayable by the follower): %u commits, %u proposals, %u external Removes "
           "committed\n",
           FILE_NAME, total, skipped, cnt.commits, cnt.proposals, cnt.ext_removes);
    assert_true(total > 0);
    assert_true(cnt.commits > 0 && cnt.ext_removes > 0);
    assert_int_equal(vec_report(FILE_NAME " (follower replay)", passed, total), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower_replay),
    };

    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
