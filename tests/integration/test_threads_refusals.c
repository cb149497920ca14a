/*
 * test_threads_refusals.c: issue 5 against the real server with real MLS
 * (protocol/mls_group.h on the client side). A citizen creates a care
 * thread; the server refuses what consent does not allow and lets in what
 * it does:
 *   - an Add without consent (denied), an Add of a device that is not the
 *     grantee's (denied), a member adding someone the citizen gave no grant
 *     (denied);
 *   - consent.grant: the server proposes an external Add, the citizen
 *     commits it, the grantee joins from the Welcome it syncs and reads an
 *     application message; delivery counts and acks;
 *   - a second commit in the same epoch (conflict); an Add without its
 *     Welcome (invalid); a member relaying another member's commit (denied);
 *   - revocation: removal pending, thread.send refused (state), a commit
 *     omitting the pending removal (invalid), then the Remove committed;
 *   - a claimed KeyPackage re-uploaded (conflict), and a Welcome reusing a
 *     KeyPackage claimed for another thread (invalid);
 *   - grant rules: signed by a non-citizen for themselves, bad signature,
 *     oral while the citizen has a device; a revoked device logging in.
 */
#include <signal.h>

#define DOMAIN "threads.test"
/* one thread's group state in memory: switching threads reloads from the
 * store (the cache's eviction path) */
#define THREADS_IT_ARGS "--thread-cache", "1"
#include "threads_it.h"

/* ---- the test ------------------------------------------------------------------------- */

static void consent_and_threads(void **state)
{
    struct st *s = *state;
    char code[64], err[32], thread[40], thread2[40], gid[MSG_GRANT_GID_LEN + 1];
    struct client_frame r;
    struct seen sn;
    uint64_t devices;

    /* people: admin, citizen karen, relative-to-be ole (a volunteer here),
     * staff per (no grant) */
    enroll(s, &s->admin, s->ts.admin_code);
    {
        const char *kv[] = {"name", "hjemmepleje", NULL};
        it_ok(s->admin.c, "admin.department.add", kv, NULL, NULL, 0);
    }
    invite(s, "citizen", "karen", NULL, code, sizeof(code));
    enroll(s, &s->karen, code);
    invite(s, "volunteer", "ole", NULL, code, sizeof(code));
    enroll(s, &s->ole, code);
    invite(s, "staff", "per", "hjemmepleje", code, sizeof(code));
    enroll(s, &s->per, code);

    /* server.info */
    call_ok(s->karen.c, "server.info", NULL, 0, &r);
    {
        const uint8_t *k;
        size_t kl;
        char dom[64];
        assert_int_equal(wire_get_bin(&r.msg.body, "key", &k, &kl), 0);
        assert_int_equal(kl, 32);
        memcpy(s->server_key, k, 32);
        assert_int_equal(wire_get_cstr(&r.msg.body, "domain", dom, sizeof(dom)), 0);
        assert_string_equal(dom, DOMAIN);
    }
    client_frame_free(&r);

    upload_kps(&s->ole, 2);
    upload_kps(&s->per, 1);
    call_ok(s->ole.c, "kp.count", NULL, 0, &r);
    {
        uint64_t n;
        assert_int_equal(wire_get_uint(&r.msg.body, "count", &n), 0);
        assert_int_equal(n, 2);
    }
    client_frame_free(&r);

    /* a non-entitled creator, then the citizen */
    create_thread(s, &s->per, "karen", thread, "denied");
    create_thread(s, &s->karen, "karen", thread, NULL);
    assert_true(strncmp(thread, "t_", 2) == 0);

    /* Refusal: an Add without consent */
    assert_string_equal(commit_add(&s->karen, thread, s->ole.kps[0], err, sizeof(err)), "denied");

    /* Refusal: grant rules */
    {
        uint8_t *tbs, sig[64];
        size_t len;
        /* a grant "of karen" signed by ole for himself (form citizen needs
         * granter == citizen; as proxy he is not registered) */
        grant_bytes(&s->ole, "karen@" DOMAIN, "per@" DOMAIN, "care", MSG_GRANT_FORM_PROXY, NULL,
                    0, &tbs, &len, sig);
        struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->ole.c, "consent.grant", a, 2, "denied");
        free(tbs);
        /* a grant of a non-citizen */
        grant_bytes(&s->ole, "ole@" DOMAIN, "per@" DOMAIN, "care", MSG_GRANT_FORM_CITIZEN, NULL,
                    0, &tbs, &len, sig);
        struct arg b[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->ole.c, "consent.grant", b, 2, "invalid");
        free(tbs);
        /* a bad signature */
        grant_bytes(&s->karen, "karen@" DOMAIN, "ole@" DOMAIN, "care", MSG_GRANT_FORM_CITIZEN,
                    NULL, 0, &tbs, &len, sig);
        sig[0] ^= 1;
        struct arg c[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->karen.c, "consent.grant", c, 2, "crypto");
        free(tbs);
        /* oral consent while karen has a device */
        grant_bytes(&s->per, "karen@" DOMAIN, "ole@" DOMAIN, "care", MSG_GRANT_FORM_ORAL,
                    "said yes at the visit", 0, &tbs, &len, sig);
        struct arg d[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->per.c, "consent.grant", d, 2, "denied");
        free(tbs);
        /* signed by another device than the caller's */
        grant_bytes(&s->karen, "karen@" DOMAIN, "ole@" DOMAIN, "care", MSG_GRANT_FORM_CITIZEN,
                    NULL, 0, &tbs, &len, sig);
        struct arg e[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->ole.c, "consent.grant", e, 2, "denied");
        free(tbs);
    }

    /* Refusal: an Add of a device that is not the grantee's: a KeyPackage
     * claiming ole's identity with per's device key */
    {
        uint8_t ident[MLS_KP_MAX_IDENTITY];
        size_t il;
        struct mls_kp *fake = NULL;
        int n = snprintf((char *)ident, sizeof(ident), "ole@%s/%s", DOMAIN, s->per.dev);
        il = (size_t)n;
        assert_int_equal(mls_kp_create(ident, il, s->per.seed, now_s() - 60, now_s() + 86400,
                                       &fake),
                         0);
        /* first give ole consent so that only the device is wrong */
        grant(s, &s->karen, "ole@" DOMAIN, "care", gid);
        assert_string_equal(commit_add(&s->karen, thread, fake, err, sizeof(err)), "denied");
        mls_kp_free(fake);
    }

    /* The grant made the server propose an external Add of ole's device:
     * karen syncs, sees it, commits it; ole joins from the Welcome. */
    sync_party(&s->karen, thread, &sn);
    assert_true(sn.handshakes >= 1);
    assert_true(sn.external_pending);
    {
        struct mls_group_commit_out co = {0};
        /* the Welcome's GroupInfo carries the tree (PROTOCOL.md) */
        struct mls_group_commit_opts o = {.include_pending = true, .force_path = true,
                                          .tree_in_welcome = true};
        /* Refusal: adding a device without sending its Welcome */
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        uint8_t *w = co.welcome;
        co.welcome = NULL;
        assert_string_equal(commit(&s->karen, thread, &co, err, sizeof(err)), "invalid");
        free(w);
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        assert_non_null(co.welcome);
        assert_string_equal(commit(&s->karen, thread, &co, err, sizeof(err)), "");
    }
    sync_party(&s->ole, thread, &sn);
    assert_int_equal(sn.welcomes, 1);
    assert_non_null(s->ole.g);
    assert_int_equal(mls_group_epoch(s->ole.g), mls_group_epoch(s->karen.g));

    /* members: karen (citizen) and ole (the grant) */
    {
        struct arg a[] = {{.key = "thread", .str = thread}};
        call_ok(s->ole.c, "thread.members", a, 1, &r);
        struct wire_array m;
        assert_int_equal(wire_get_array(&r.msg.body, "members", &m), 0);
        assert_int_equal(m.n, 2);
        bool saw_grant = false;
        for (uint32_t i = 0; i < m.n; i++) {
            struct wire_map mm;
            char id[64], g[32];
            assert_int_equal(wire_array_map(&m, i, &mm), 0);
            assert_int_equal(wire_get_cstr(&mm, "id", id, sizeof(id)), 0);
            assert_int_equal(wire_get_cstr(&mm, "grant", g, sizeof(g)), 0);
            if (strcmp(id, "ole@" DOMAIN) == 0) {
                assert_string_equal(g, gid);
                saw_grant = true;
            }
        }
        assert_true(saw_grant);
        client_frame_free(&r);
    }

    /* an application message, delivered to ole's device only */
    assert_int_equal(send_app(&s->karen, thread, "Hej Ole", &devices, err, sizeof(err)), 0);
    assert_int_equal(devices, 1);
    /* ole is online: the entry is pushed to him after the commit */
    assert_true(wait_event(&s->ole, "entry", "kind", "app"));
    sync_party(&s->ole, thread, &sn);
    assert_int_equal(sn.apps, 1);
    assert_string_equal(sn.last_app, "Hej Ole");
    /* his ack reaches karen as a `delivered` event */
    assert_true(wait_event(&s->karen, "delivered", "thread", thread));

    /* Refusal: a member (ole) adding someone karen gave no grant (per) */
    assert_string_equal(commit_add(&s->ole, thread, s->per.kps[0], err, sizeof(err)), "denied");

    /* Refusal: a second commit in the same epoch */
    {
        struct mls_group_commit_out a = {0}, b = {0};
        struct mls_group_commit_opts o = {.force_path = true};
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &a), 0);
        assert_int_equal(mls_group_commit_create(s->ole.g, &o, now_s(), &b), 0);
        assert_string_equal(commit(&s->karen, thread, &a, err, sizeof(err)), "");
        assert_string_equal(commit(&s->ole, thread, &b, err, sizeof(err)), "conflict");
        sync_party(&s->ole, thread, &sn);
        assert_int_equal(mls_group_epoch(s->ole.g), mls_group_epoch(s->karen.g));
    }

    /* Refusal: a member relaying another member's commit as its own */
    {
        struct mls_group_commit_out a = {0};
        struct mls_group_commit_opts o = {.force_path = true};
        struct client_frame rr;
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &a), 0);
        struct arg relay[] = {{.key = "thread", .str = thread},
                              {.key = "commit", .bin = a.commit, .len = a.commit_len}};
        call_err(s->ole.c, "thread.commit", relay, 2, "denied");
        call_ok(s->karen.c, "thread.commit", relay, 2, &rr);
        client_frame_free(&rr);
        assert_int_equal(mls_group_commit_confirm(s->karen.g), 0);
        mls_group_commit_out_reset(&a);
        sync_party(&s->ole, thread, &sn);
        assert_int_equal(mls_group_epoch(s->ole.g), mls_group_epoch(s->karen.g));
    }

    /* Refusal: a claimed KeyPackage uploaded again */
    {
        struct wire_enc e;
        uint32_t id = client_conn_next_id(s->ole.c);
        uint8_t *m = NULL;
        size_t ml;
        /* kps[0] or kps[1]: one of them was claimed for the Add */
        assert_int_equal(mls_kp_message(s->ole.kps[0], &m, &ml), 0);
        wire_enc_init(&e);
        wire_enc_request(&e, id, "kp.upload", 1);
        wire_enc_key(&e, "key_packages");
        wire_enc_array(&e, 1);
        wire_enc_bin(&e, m, ml);
        int rc = client_sync_call(s->ole.c, id, &e, IT_TIMEOUT, &r);
        wire_enc_reset(&e);
        free(m);
        assert_int_not_equal(rc, 0);
        assert_string_equal(r.msg.name, "conflict");
        client_frame_free(&r);
    }

    /* Revocation: removal pending; send refused; a commit omitting the
     * removal refused; the Remove committed; then sending works again */
    revoke(&s->karen, gid);
    assert_int_not_equal(send_app(&s->karen, thread, "still there?", NULL, err, sizeof(err)), 0);
    assert_string_equal(err, "state");
    sync_party(&s->karen, thread, &sn);
    assert_true(sn.external_pending);
    {
        struct mls_group_commit_out co = {0};
        struct mls_group_commit_opts o = {.force_path = true};
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        assert_string_equal(commit(&s->karen, thread, &co, err, sizeof(err)), "invalid");
        /* and ole may no longer commit at all */
        assert_int_equal(mls_group_commit_create(s->ole.g, &o, now_s(), &co), 0);
        assert_string_equal(commit(&s->ole, thread, &co, err, sizeof(err)), "denied");
        assert_int_equal(mls_group_commit_pending(s->karen.g, now_s(), &co), 0);
        assert_string_equal(commit(&s->karen, thread, &co, err, sizeof(err)), "");
    }
    assert_int_equal(send_app(&s->karen, thread, "after", &devices, err, sizeof(err)), 0);
    assert_int_equal(devices, 0);
    {
        struct arg a[] = {{.key = "thread", .str = thread}};
        call_err(s->ole.c, "thread.members", a, 1, "denied");
    }

    /* the access log tells karen what happened */
    {
        struct arg a[] = {{.key = "thread", .str = thread}};
        call_ok(s->karen.c, "thread.log", a, 1, &r);
        struct wire_array e;
        assert_int_equal(wire_get_array(&r.msg.body, "entries", &e), 0);
        bool granted = false, added = false, removed = false, revoked = false;
        for (uint32_t i = 0; i < e.n; i++) {
            struct wire_map m;
            char action[32];
            assert_int_equal(wire_array_map(&e, i, &m), 0);
            assert_int_equal(wire_get_cstr(&m, "action", action, sizeof(action)), 0);
            granted |= strcmp(action, "consent_granted") == 0;
            revoked |= strcmp(action, "consent_revoked") == 0;
            added |= strcmp(action, "member_added") == 0;
            removed |= strcmp(action, "member_removed") == 0;
        }
        assert_true(granted && revoked && added && removed);
        client_frame_free(&r);
        call_err(s->ole.c, "thread.log", a, 1, "denied");
    }

    /* Refusal: a Welcome reusing a KeyPackage claimed for another thread.
     * Grant ole the thread scope of a second thread; the server claims
     * ole's remaining KeyPackage for it; karen then adds ole to the first
     * thread by value with that same KeyPackage. */
    create_thread(s, &s->karen, "karen", thread2, NULL);
    {
        struct mls_group *g1 = s->karen.g; /* thread2's group */
        char gid2[MSG_GRANT_GID_LEN + 1];
        grant_thread(s, &s->karen, "ole@" DOMAIN, thread2, gid2);
        call_ok(s->ole.c, "kp.count", NULL, 0, &r);
        uint64_t n;
        assert_int_equal(wire_get_uint(&r.msg.body, "count", &n), 0);
        assert_int_equal(n, 0); /* both of ole's KeyPackages are claimed now */
        client_frame_free(&r);
        (void)g1;

        /* A late Add: the grant is revoked before karen commits the Add
         * the server proposed for it. Committing every pending proposal
         * still works; ole's device enters the tree without a Welcome, is
         * listed under the grant it was proposed for and as pending
         * removal at once, and karen's next commit removes it. */
        revoke(&s->karen, gid2);
        sync_party(&s->karen, thread2, &sn);
        assert_true(sn.external_pending);
        struct mls_group_commit_out co = {0};
        struct mls_group_commit_opts o = {.include_pending = true, .force_path = true,
                                          .tree_in_welcome = true};
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        assert_string_equal(commit(&s->karen, thread2, &co, err, sizeof(err)), "");
        struct arg a[] = {{.key = "thread", .str = thread2}};
        call_ok(s->karen.c, "thread.members", a, 1, &r);
        struct wire_array pr, mem;
        assert_int_equal(wire_get_array(&r.msg.body, "pending_removal", &pr), 0);
        assert_int_equal(pr.n, 1);
        assert_int_equal(wire_get_array(&r.msg.body, "members", &mem), 0);
        bool listed = false;
        for (uint32_t i = 0; i < mem.n; i++) {
            struct wire_map mm;
            char who[64], g[32];
            assert_int_equal(wire_array_map(&mem, i, &mm), 0);
            assert_int_equal(wire_get_cstr(&mm, "id", who, sizeof(who)), 0);
            assert_int_equal(wire_get_cstr(&mm, "grant", g, sizeof(g)), 0);
            if (strcmp(who, "ole@" DOMAIN) == 0) {
                assert_string_equal(g, gid2);
                listed = true;
            }
        }
        assert_true(listed);
        client_frame_free(&r);
        struct mls_group *ole_g1 = s->ole.g;
        s->ole.g = NULL; /* ole must not receive thread2's Welcome */
        sync_party(&s->ole, thread2, &sn);
        assert_int_equal(sn.welcomes, 0);
        s->ole.g = ole_g1;
        sync_party(&s->karen, thread2, &sn);
        assert_true(sn.external_pending);
        assert_int_equal(mls_group_commit_pending(s->karen.g, now_s(), &co), 0);
        assert_string_equal(commit(&s->karen, thread2, &co, err, sizeof(err)), "");
        call_ok(s->karen.c, "thread.members", a, 1, &r);
        assert_int_equal(wire_get_array(&r.msg.body, "members", &mem), 0);
        assert_int_equal(mem.n, 1);
        client_frame_free(&r);
    }

    /* A revoked device cannot log in */
    {
        const char *kv[] = {"device", s->ole.dev, NULL};
        it_ok(s->ole.c, "device.revoke", kv, NULL, NULL, 0);
        struct client_conn *c = it_open(s->ctx, s->ts.url);
        int rc = client_auth_login(c, s->ole.id, s->ole.seed, IT_TIMEOUT, &r);
        assert_int_not_equal(rc, 0);
        assert_string_equal(r.msg.name, "denied");
        client_frame_free(&r);
        client_conn_free(c);
    }
    /* a clean stop: under the sanitizers this also checks for leaks */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(consent_and_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
