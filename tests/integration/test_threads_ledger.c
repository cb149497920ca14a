/*
 * test_threads_ledger.c: the ledger's ways into a thread, against the real
 * server with real MLS: a department grant (assigned staff join), a
 * relative invited with a code bound to the grant, a proxy registered by
 * staff, consent requests approved and declined, break-glass (notices,
 * time limit by the server clock, then removal), agreements pinned and
 * acknowledged, delivery status and the offline limit (missed notices,
 * undeliverable counts), proxy ended.
 */
#include "it.h"

#include <signal.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#define DOMAIN "ledger.test"
#include "threads_it.h"

/* Other members catch up with a commit they did not make. */
static void catch_up(struct party *p, const char *thread)
{
    struct seen sn;
    sync_party(p, thread, &sn);
}

/* The basis thread.members reports for identity id. */
static void member_basis(struct party *p, const char *thread, const char *id, char *basis,
                         size_t cap)
{
    struct client_frame r;
    struct arg a[] = {{.key = "thread", .str = thread}};
    call_ok(p->c, "thread.members", a, 1, &r);
    struct wire_array m;
    assert_int_equal(wire_get_array(&r.msg.body, "members", &m), 0);
    basis[0] = 0;
    for (uint32_t i = 0; i < m.n; i++) {
        struct wire_map mm;
        char who[96];
        assert_int_equal(wire_array_map(&m, i, &mm), 0);
        assert_int_equal(wire_get_cstr(&mm, "id", who, sizeof(who)), 0);
        if (strcmp(who, id) == 0)
            assert_int_equal(wire_get_cstr(&mm, "grant", basis, cap), 0);
    }
    client_frame_free(&r);
}

static void ledger(void **state)
{
    struct st *s = *state;
    char code[64], thread[40], gid[MSG_GRANT_GID_LEN + 1], basis[32];
    struct client_frame r;
    struct seen sn;

    enroll(s, &s->admin, s->ts.admin_code);
    {
        const char *kv[] = {"name", "hjemmepleje", NULL};
        it_ok(s->admin.c, "admin.department.add", kv, NULL, NULL, 0);
    }
    invite(s, "citizen", "karen", NULL, code, sizeof(code));
    enroll(s, &s->karen, code);
    invite(s, "staff", "mette", "hjemmepleje", code, sizeof(code));
    enroll(s, &s->mette, code);
    invite(s, "staff", "per", NULL, code, sizeof(code));
    enroll(s, &s->per, code);
    fetch_server_key(s, &s->karen);
    create_thread(s, &s->karen, "karen", thread, NULL);

    /* a department grant: assigned staff join */
    upload_kps(&s->mette, 2);
    grant(s, &s->karen, "department:hjemmepleje@" DOMAIN, "care", gid);
    admit(&s->karen, &s->mette, thread);
    member_basis(&s->karen, thread, "mette@" DOMAIN, basis, sizeof(basis));
    assert_string_equal(basis, gid);
    /* kp.claim: nothing to claim for a member already in; refused for
     * someone not entitled */
    {
        struct arg a[] = {{.key = "thread", .str = thread}, {.key = "identity", .str = "mette"}};
        call_ok(s->karen.c, "kp.claim", a, 2, &r);
        struct wire_array k;
        assert_int_equal(wire_get_array(&r.msg.body, "key_packages", &k), 0);
        assert_int_equal(k.n, 0);
        client_frame_free(&r);
        struct arg b[] = {{.key = "thread", .str = thread}, {.key = "identity", .str = "per"}};
        call_err(s->karen.c, "kp.claim", b, 2, "denied");
        call_err(s->per.c, "kp.claim", a, 2, "denied"); /* not a member */
    }
    /* staff of a granted department may read the ledger; others not */
    {
        struct arg a[] = {{.key = "citizen", .str = "karen"}};
        call_ok(s->mette.c, "consent.list", a, 1, &r);
        struct wire_array g;
        assert_int_equal(wire_get_array(&r.msg.body, "grants", &g), 0);
        assert_int_equal(g.n, 1);
        client_frame_free(&r);
        call_err(s->per.c, "consent.list", a, 1, "denied");
    }

    /* a relative invited with a code bound to the grant */
    {
        uint8_t *tbs, sig[64];
        size_t len;
        grant_bytes(&s->karen, "karen@" DOMAIN, "ole@" DOMAIN, "care", MSG_GRANT_FORM_CITIZEN,
                    NULL, 0, &tbs, &len, sig);
        struct arg a[] = {{.key = "citizen", .str = "karen"},
                          {.key = "name", .str = "ole"},
                          {.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_ok(s->karen.c, "relative.invite", a, 4, &r);
        assert_int_equal(wire_get_cstr(&r.msg.body, "code", code, sizeof(code)), 0);
        assert_int_equal(wire_get_cstr(&r.msg.body, "grant", gid, sizeof(gid)), 0);
        client_frame_free(&r);
        /* the same invitation twice: the grant is already stored */
        call_err(s->karen.c, "relative.invite", a, 4, "conflict");
        free(tbs);
    }
    enroll(s, &s->ole, code);
    call_ok(s->ole.c, "whoami", NULL, 0, &r);
    {
        char role[16];
        assert_int_equal(wire_get_cstr(&r.msg.body, "role", role, sizeof(role)), 0);
        assert_string_equal(role, "relative");
    }
    client_frame_free(&r);
    upload_kps(&s->ole, 1);
    admit(&s->karen, &s->ole, thread);
    catch_up(&s->mette, thread);
    member_basis(&s->karen, thread, "ole@" DOMAIN, basis, sizeof(basis));
    assert_string_equal(basis, gid);
    /* a second grant, then the first revoked: ole stays, under the second */
    {
        char gid2[MSG_GRANT_GID_LEN + 1];
        grant(s, &s->karen, "ole@" DOMAIN, "care", gid2);
        revoke(&s->karen, gid);
        member_basis(&s->karen, thread, "ole@" DOMAIN, basis, sizeof(basis));
        assert_string_equal(basis, gid2);
        struct arg a[] = {{.key = "thread", .str = thread}};
        call_ok(s->karen.c, "thread.members", a, 1, &r);
        struct wire_array pr;
        assert_int_equal(wire_get_array(&r.msg.body, "pending_removal", &pr), 0);
        assert_int_equal(pr.n, 0);
        client_frame_free(&r);
        snprintf(gid, sizeof(gid), "%s", gid2);
    }

    /* a proxy registered by staff (not by the citizen), signed on the staff
     * member's device; the old unsigned form is refused */
    char lise_id[CLIENT_ID_MAX + 1], reg[MSG_GRANT_GID_LEN + 1];
    snprintf(lise_id, sizeof(lise_id), "lise@%s", DOMAIN);
    {
        struct arg a[] = {{.key = "citizen", .str = "karen"},
                          {.key = "name", .str = "lise"},
                          {.key = "basis", .str = "guardianship"}};
        call_err(s->mette.c, "proxy.register", a, 3, "invalid");
        uint8_t *tbs, sig[64], hash[32];
        size_t len;
        proxy_reg_bytes(&s->mette, s->mette.seed, s->karen.id, lise_id, "guardianship",
                        server_time(s->mette.c), &tbs, &len, sig);
        struct arg b[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->karen.c, "proxy.register", b, 2, "denied"); /* not staff */
        call_err(s->per.c, "proxy.register", b, 2, "denied");   /* not the signer */
        {
            /* names mette's device, signed by another key (per's) */
            uint8_t *t2, s2[64];
            size_t l2;
            proxy_reg_bytes(&s->mette, s->per.seed, s->karen.id, lise_id, "guardianship",
                            server_time(s->mette.c), &t2, &l2, s2);
            struct arg c[] = {{.key = "tbs", .bin = t2, .len = l2},
                              {.key = "sig", .bin = s2, .len = 64}};
            call_err(s->mette.c, "proxy.register", c, 2, "crypto");
            free(t2);
            /* the wrong citizen: per is staff, not a citizen */
            proxy_reg_bytes(&s->mette, s->mette.seed, s->per.id, lise_id, "guardianship",
                            server_time(s->mette.c), &t2, &l2, s2);
            c[0].bin = t2;
            c[0].len = l2;
            call_err(s->mette.c, "proxy.register", c, 2, "invalid");
            free(t2);
            /* signed long ago: outside the server's skew */
            proxy_reg_bytes(&s->mette, s->mette.seed, s->karen.id, lise_id, "guardianship",
                            server_time(s->mette.c) - 3600, &t2, &l2, s2);
            c[0].bin = t2;
            c[0].len = l2;
            call_err(s->mette.c, "proxy.register", c, 2, "invalid");
            free(t2);
            /* a tampered signature */
            proxy_reg_bytes(&s->mette, s->mette.seed, s->karen.id, lise_id, "guardianship",
                            server_time(s->mette.c), &t2, &l2, s2);
            s2[9] ^= 1;
            c[0].bin = t2;
            c[0].len = l2;
            call_err(s->mette.c, "proxy.register", c, 2, "crypto");
            free(t2);
        }
        call_ok(s->mette.c, "proxy.register", b, 2, &r);
        assert_int_equal(wire_get_cstr(&r.msg.body, "code", code, sizeof(code)), 0);
        assert_int_equal(wire_get_cstr(&r.msg.body, "registration", reg, sizeof(reg)), 0);
        char want[MSG_GRANT_GID_LEN + 1];
        msg_proxy_reg_id(tbs, len, sig, want);
        assert_string_equal(reg, want);
        const uint8_t *receipt;
        size_t rl;
        uint64_t stored;
        assert_int_equal(wire_get_bin(&r.msg.body, "receipt", &receipt, &rl), 0);
        assert_int_equal(rl, 64);
        assert_int_equal(wire_get_uint(&r.msg.body, "stored", &stored), 0);
        msg_grant_hash(tbs, len, sig, hash);
        assert_int_equal(msg_grant_receipt_verify(s->server_key, reg, hash, stored, receipt), 0);
        client_frame_free(&r);
        call_err(s->mette.c, "proxy.register", b, 2, "conflict"); /* already active */
        free(tbs);
    }
    enroll(s, &s->lise, code);
    upload_kps(&s->lise, 1);
    admit(&s->karen, &s->lise, thread);
    catch_up(&s->mette, thread);
    catch_up(&s->ole, thread);
    member_basis(&s->karen, thread, "lise@" DOMAIN, basis, sizeof(basis));
    assert_string_equal(basis, "proxy");

    /* consent requests: per asks, karen declines; mette asks, lise (proxy)
     * approves with a grant for exactly that request */
    {
        char req1[24], req2[24];
        struct arg a[] = {{.key = "citizen", .str = "karen"},
                          {.key = "scope", .str = "coordination"},
                          {.key = "note", .str = "care plan meeting"}};
        call_ok(s->per.c, "consent.request", a, 3, &r);
        assert_int_equal(wire_get_cstr(&r.msg.body, "request", req1, sizeof(req1)), 0);
        client_frame_free(&r);
        call_ok(s->mette.c, "consent.request", a, 3, &r);
        assert_int_equal(wire_get_cstr(&r.msg.body, "request", req2, sizeof(req2)), 0);
        client_frame_free(&r);
        call_ok(s->karen.c, "consent.requests", NULL, 0, &r);
        struct wire_array q;
        assert_int_equal(wire_get_array(&r.msg.body, "requests", &q), 0);
        assert_int_equal(q.n, 2);
        client_frame_free(&r);
        struct arg d[] = {{.key = "request", .str = req1}};
        call_err(s->per.c, "consent.decline", d, 1, "denied");
        call_ok(s->karen.c, "consent.decline", d, 1, &r);
        client_frame_free(&r);
        call_err(s->karen.c, "consent.decline", d, 1, "conflict");
        uint8_t *tbs, sig[64];
        size_t len;
        /* a grant for the wrong scope is refused, the right one accepted */
        grant_bytes(&s->lise, "karen@" DOMAIN, "mette@" DOMAIN, "care", MSG_GRANT_FORM_PROXY, NULL,
                    0, &tbs, &len, sig);
        struct arg bad[] = {{.key = "request", .str = req2},
                            {.key = "tbs", .bin = tbs, .len = len},
                            {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->lise.c, "consent.approve", bad, 3, "invalid");
        free(tbs);
        grant_bytes(&s->lise, "karen@" DOMAIN, "mette@" DOMAIN, "coordination",
                    MSG_GRANT_FORM_PROXY, NULL, 0, &tbs, &len, sig);
        struct arg ok[] = {{.key = "request", .str = req2},
                           {.key = "tbs", .bin = tbs, .len = len},
                           {.key = "sig", .bin = sig, .len = 64}};
        call_ok(s->lise.c, "consent.approve", ok, 3, &r);
        client_frame_free(&r);
        free(tbs);
        call_ok(s->mette.c, "consent.requests", NULL, 0, &r);
        assert_int_equal(wire_get_array(&r.msg.body, "requests", &q), 0);
        assert_int_equal(q.n, 1);
        struct wire_map m;
        char st[16];
        assert_int_equal(wire_array_map(&q, 0, &m), 0);
        assert_int_equal(wire_get_cstr(&m, "status", st, sizeof(st)), 0);
        assert_string_equal(st, "approved");
        client_frame_free(&r);
    }

    /* restart: the server rebuilds each thread's group view from the stored
     * GroupInfo and handshakes, and carries on */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
    assert_int_equal(testserver_start(&s->ts), 0);
    {
        struct party *all[] = {&s->admin, &s->karen, &s->mette, &s->ole, &s->lise, &s->per};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
            client_conn_free(all[i]->c);
            all[i]->c = it_login(s->ctx, s->ts.url, all[i]->id, all[i]->seed);
        }
    }

    /* an agreement pinned and acknowledged; delivery status */
    uint64_t m1 = sent_message(&s->karen, thread, "We meet on Tuesdays");
    uint64_t delivered, devices, undeliv;
    msg_status(&s->karen, thread, m1, &delivered, &devices, &undeliv);
    assert_int_equal(devices, 3);
    assert_int_equal(delivered, 0);
    catch_up(&s->mette, thread);
    sync_party(&s->ole, thread, &sn);
    assert_int_equal(sn.apps, 1);
    assert_string_equal(sn.last_app, "We meet on Tuesdays");
    msg_status(&s->karen, thread, m1, &delivered, &devices, &undeliv);
    assert_int_equal(delivered, 2);
    {
        char agr[24];
        struct arg a[] = {{.key = "thread", .str = thread}, {.key = "message", .is_uint = true, .u = m1}};
        call_ok(s->karen.c, "agreement.pin", a, 2, &r);
        assert_int_equal(wire_get_cstr(&r.msg.body, "agreement", agr, sizeof(agr)), 0);
        client_frame_free(&r);
        struct arg k[] = {{.key = "thread", .str = thread}, {.key = "agreement", .str = agr}};
        call_ok(s->mette.c, "agreement.ack", k, 2, &r);
        uint64_t acks;
        assert_int_equal(wire_get_uint(&r.msg.body, "acks", &acks), 0);
        assert_int_equal(acks, 1);
        client_frame_free(&r);
        call_err(s->mette.c, "agreement.ack", k, 2, "conflict");
        call_err(s->per.c, "agreement.ack", k, 2, "denied");
        struct arg sh[] = {{.key = "thread", .str = thread}};
        call_ok(s->ole.c, "agreement.show", sh, 1, &r);
        struct wire_array pend;
        assert_int_equal(wire_get_array(&r.msg.body, "pending", &pend), 0);
        assert_int_equal(pend.n, 3); /* karen, ole, lise */
        client_frame_free(&r);
    }

    /* break-glass: per (no grant) opens access; karen and lise are told */
    upload_kps(&s->per, 1);
    {
        struct arg a[] = {{.key = "citizen", .str = "karen"},
                          {.key = "thread", .str = thread},
                          {.key = "reason", .str = "fall at home, no answer on the phone"},
                          {.key = "hours", .is_uint = true, .u = 2}};
        call_err(s->per.c, "breakglass.open", a, 4, "invalid"); /* unsigned */
        uint8_t *tbs, sig[64];
        size_t len;
        breakglass_bytes(&s->per, s->karen.id, thread, "fall at home, no answer on the phone",
                         2, server_time(s->per.c), &tbs, &len, sig);
        struct arg b[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->ole.c, "breakglass.open", b, 2, "denied");
        {
            /* a tampered signature; a stale opened_at */
            uint8_t *t2, s2[64];
            size_t l2;
            breakglass_bytes(&s->per, s->karen.id, thread, "fall at home, no answer on the phone",
                             2, server_time(s->per.c), &t2, &l2, s2);
            s2[33] ^= 4;
            struct arg c[] = {{.key = "tbs", .bin = t2, .len = l2},
                              {.key = "sig", .bin = s2, .len = 64}};
            call_err(s->per.c, "breakglass.open", c, 2, "crypto");
            free(t2);
            breakglass_bytes(&s->per, s->karen.id, thread, "fall at home, no answer on the phone",
                             2, server_time(s->per.c) + 7200, &t2, &l2, s2);
            c[0].bin = t2;
            c[0].len = l2;
            call_err(s->per.c, "breakglass.open", c, 2, "invalid");
            free(t2);
        }
        call_ok(s->per.c, "breakglass.open", b, 2, &r);
        char access[MSG_GRANT_GID_LEN + 1], want[MSG_GRANT_GID_LEN + 1];
        assert_int_equal(wire_get_cstr(&r.msg.body, "access", access, sizeof(access)), 0);
        msg_breakglass_id(tbs, len, sig, want);
        assert_string_equal(access, want);
        client_frame_free(&r);
        free(tbs);
    }
    sync_party(&s->lise, thread, &sn);
    assert_int_equal(sn.notices, 1);
    assert_string_equal(sn.last_notice_type, "breakglass");
    admit(&s->karen, &s->per, thread);
    catch_up(&s->mette, thread);
    catch_up(&s->ole, thread);
    catch_up(&s->lise, thread);
    member_basis(&s->karen, thread, "per@" DOMAIN, basis, sizeof(basis));
    assert_string_equal(basis, "breakglass");

    /* two hours later (server clock) the access has ended: removal pending */
    it_shift_clock(s->karen.c, 2 * 3600 + 5);
    {
        char err[32];
        /* the sweep runs on the server's next loop iteration */
        struct client_frame p;
        call_ok(s->karen.c, "ping", NULL, 0, &p);
        client_frame_free(&p);
        assert_int_not_equal(send_app(&s->karen, thread, "x", NULL, err, sizeof(err)), 0);
        assert_string_equal(err, "state");
        sync_party(&s->karen, thread, &sn);
        struct mls_group_commit_out co = {0};
        assert_int_equal(mls_group_commit_pending(s->karen.g, now_s(), &co), 0);
        assert_string_equal(commit(&s->karen, thread, &co, err, sizeof(err)), "");
        catch_up(&s->mette, thread);
        catch_up(&s->lise, thread);
    }

    /* offline limit: ole stops syncing; 31 days later his copy is dropped,
     * he is told, and the sender sees it undeliverable */
    uint64_t m2 = sent_message(&s->karen, thread, "Are you coming?");
    catch_up(&s->mette, thread);
    catch_up(&s->lise, thread);
    it_shift_clock(s->karen.c, 31 * 86400);
    call_ok(s->karen.c, "ping", NULL, 0, &r);
    client_frame_free(&r);
    msg_status(&s->karen, thread, m2, &delivered, &devices, &undeliv);
    assert_int_equal(devices, 3);
    assert_int_equal(delivered, 2);
    assert_int_equal(undeliv, 1);
    {
        struct arg a[] = {{.key = "after", .is_uint = true, .u = s->ole.after}};
        call_ok(s->ole.c, "sync", a, 1, &r);
        struct wire_array missed;
        assert_int_equal(wire_get_array(&r.msg.body, "missed", &missed), 0);
        assert_int_equal(missed.n, 1);
        client_frame_free(&r);
    }

    /* proxy ended by staff: lise's device leaves */
    {
        struct arg u[] = {{.key = "citizen", .str = "karen"}, {.key = "proxy", .str = "lise"}};
        call_err(s->mette.c, "proxy.end", u, 2, "invalid"); /* unsigned */
        uint8_t *tbs, sig[64];
        size_t len;
        proxy_end_bytes(&s->mette, reg, s->karen.id, lise_id, server_time(s->mette.c), &tbs,
                        &len, sig);
        struct arg a[] = {{.key = "tbs", .bin = tbs, .len = len},
                          {.key = "sig", .bin = sig, .len = 64}};
        call_err(s->karen.c, "proxy.end", a, 2, "denied"); /* not staff */
        call_err(s->per.c, "proxy.end", a, 2, "denied");   /* not the signer */
        {
            uint8_t *t2, s2[64];
            size_t l2;
            proxy_end_bytes(&s->mette, "p_0000000000000000", s->karen.id, lise_id,
                            server_time(s->mette.c), &t2, &l2, s2);
            struct arg c[] = {{.key = "tbs", .bin = t2, .len = l2},
                              {.key = "sig", .bin = s2, .len = 64}};
            call_err(s->mette.c, "proxy.end", c, 2, "not_found"); /* not the active one */
            free(t2);
        }
        call_ok(s->mette.c, "proxy.end", a, 2, &r);
        client_frame_free(&r);
        call_err(s->mette.c, "proxy.end", a, 2, "not_found");
        free(tbs);
        /* the ledger lists the registration with its signed end, and the
         * break-glass access with its signed form */
        struct arg l[] = {{.key = "citizen", .str = "karen"}};
        call_ok(s->karen.c, "consent.list", l, 1, &r);
        struct wire_array pa, ba;
        struct wire_map m;
        const uint8_t *et, *es, *ek, *bt, *bs, *bk;
        size_t etl, esl, ekl, btl, bsl, bkl;
        uint64_t ended = 0;
        char got[MSG_GRANT_GID_LEN + 1];
        struct msg_proxy_end pe;
        assert_int_equal(wire_get_array(&r.msg.body, "proxies", &pa), 0);
        assert_int_equal(pa.n, 1);
        assert_int_equal(wire_array_map(&pa, 0, &m), 0);
        assert_int_equal(wire_get_cstr(&m, "registration", got, sizeof(got)), 0);
        assert_string_equal(got, reg);
        assert_int_equal(wire_get_uint(&m, "ended", &ended), 0);
        assert_true(ended > 0);
        assert_int_equal(wire_get_bin(&m, "end_tbs", &et, &etl), 0);
        assert_int_equal(wire_get_bin(&m, "end_sig", &es, &esl), 0);
        assert_int_equal(wire_get_bin(&m, "ender_key", &ek, &ekl), 0);
        assert_int_equal(ekl, 32);
        assert_int_equal(esl, 64);
        assert_int_equal(msg_proxy_end_decode(et, etl, &pe), 0);
        assert_string_equal(pe.registration, reg);
        assert_int_equal(msg_proxy_end_verify(ek, et, etl, es), 0);
        assert_int_equal(wire_get_array(&r.msg.body, "breakglass", &ba), 0);
        assert_int_equal(ba.n, 1);
        assert_int_equal(wire_array_map(&ba, 0, &m), 0);
        assert_int_equal(wire_get_bin(&m, "tbs", &bt, &btl), 0);
        assert_int_equal(wire_get_bin(&m, "sig", &bs, &bsl), 0);
        assert_int_equal(wire_get_bin(&m, "staff_key", &bk, &bkl), 0);
        assert_int_equal(bsl, 64);
        assert_int_equal(bkl, 32);
        assert_int_equal(msg_breakglass_verify(bk, bt, btl, bs), 0);
        client_frame_free(&r);
        struct arg t[] = {{.key = "thread", .str = thread}};
        call_ok(s->karen.c, "thread.members", t, 1, &r);
        struct wire_array pr;
        assert_int_equal(wire_get_array(&r.msg.body, "pending_removal", &pr), 0);
        assert_int_equal(pr.n, 1);
        client_frame_free(&r);
    }
    /* a device revoked by its owner shows in the citizen's log */
    {
        const char *kv[] = {"device", s->mette.dev, NULL};
        it_ok(s->mette.c, "device.revoke", kv, NULL, NULL, 0);
        struct arg a[] = {{.key = "thread", .str = thread}};
        call_ok(s->karen.c, "thread.log", a, 1, &r);
        struct wire_array e;
        assert_int_equal(wire_get_array(&r.msg.body, "entries", &e), 0);
        bool revoked = false, bg = false, expired = false;
        for (uint32_t i = 0; i < e.n; i++) {
            struct wire_map m;
            char action[32];
            assert_int_equal(wire_array_map(&e, i, &m), 0);
            assert_int_equal(wire_get_cstr(&m, "action", action, sizeof(action)), 0);
            revoked |= strcmp(action, "device_revoked") == 0;
            bg |= strcmp(action, "breakglass_opened") == 0;
            expired |= strcmp(action, "breakglass_expired") == 0;
        }
        assert_true(revoked && bg && expired);
        client_frame_free(&r);
    }

    /* a clean stop: under the sanitizers this also checks for leaks */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ledger, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
