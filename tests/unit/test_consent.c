/* test_consent.c: the consent ledger (server/consent.c) and entitlement
 * (server/entitle.c) over a real store, without the network. Known answers:
 * a grant of a non-citizen refused; a grant signed on another device or by
 * a forged signature refused; expired grants do not entitle; a department
 * grant covers assigned staff only while assigned; oral consent refused
 * while the citizen has a device and accepted without one; proxy grants
 * need a registered proxy; revocation by the citizen only, once; the expiry
 * sweep records each expiry once; receipts verify; grants are immutable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "consent.h"
#include "entitle.h"
#include "err.h"
#include "keys_id.h"
#include "msg_grant.h"
#include "server.h"
#include "store.h"
#include "tstore.h"

#define DOM "k.test"
#define T0 1800000000ull

struct who {
    char id[64];
    char dev[19];
    uint8_t seed[32], pk[32];
};

struct fx {
    char dir[64];
    struct who karen, mette, ole, per, anna;
};

static void person(struct fx *f, struct who *w, const char *name, const char *role, bool device)
{
    snprintf(w->id, sizeof(w->id), "%s@%s", name, DOM);
    assert_int_equal(store_identity_add(srv.store, w->id, name, DOM, role, T0), 0);
    randombytes_buf(w->seed, 32);
    assert_int_equal(keys_id_public(w->seed, w->pk), 0);
    keys_id_device(w->pk, w->dev);
    if (device)
        assert_int_equal(store_device_add(srv.store, w->dev, w->id, w->pk, "t", T0), 0);
    (void)f;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || sodium_init() < 0)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_consent.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/sammen.db", f->dir);
    memset(&srv, 0, sizeof(srv));
    if (store_open(path, true, &srv.store) != 0 || tstore_open(srv.store) != 0)
        return -1;
    snprintf(srv.domain, sizeof(srv.domain), DOM);
    snprintf(srv.server_cred, sizeof(srv.server_cred), "server@" DOM);
    srv.cfg.offline_days = 30;
    srv.key_seed = malloc(32);
    if (!srv.key_seed)
        return -1;
    randombytes_buf(srv.key_seed, 32);
    if (keys_id_public(srv.key_seed, srv.key_pk) != 0)
        return -1;
    if (store_begin(srv.store) != 0)
        return -1;
    person(f, &f->karen, "karen", "citizen", true);
    person(f, &f->mette, "mette", "staff", true);
    person(f, &f->ole, "ole", "relative", true);
    person(f, &f->per, "per", "staff", true);
    person(f, &f->anna, "anna", "citizen", false); /* no device: oral consent */
    assert_int_equal(store_unit_add(srv.store, STORE_DEPARTMENT, "hjemmepleje", DOM, T0), 0);
    assert_int_equal(store_member_add(srv.store, STORE_DEPARTMENT, f->mette.id, "hjemmepleje", T0),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    tstore_close();
    store_close(srv.store);
    srv.store = NULL;
    free(srv.key_seed);
    srv.key_seed = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Builds and signs a grant; granter w signs. */
static void make(const struct who *w, const char *citizen, const char *grantee, uint8_t form,
                 const char *reason, uint64_t issued, uint64_t expires, uint8_t **tbs,
                 size_t *len, uint8_t sig[64])
{
    struct msg_grant g;
    msg_grant_init(&g);
    snprintf(g.citizen, sizeof(g.citizen), "%s", citizen);
    snprintf(g.grantee, sizeof(g.grantee), "%s", grantee);
    snprintf(g.scope, sizeof(g.scope), "care");
    snprintf(g.basis, sizeof(g.basis), "consent");
    g.issued_at = issued;
    g.expires_at = expires;
    g.form = form;
    snprintf(g.granter, sizeof(g.granter), "%s", w->id);
    snprintf(g.granter_device, sizeof(g.granter_device), "%s", w->dev);
    snprintf(g.reason, sizeof(g.reason), "%s", reason ? reason : "");
    assert_int_equal(msg_grant_encode(&g, tbs, len), 0);
    assert_int_equal(msg_grant_sign(w->seed, *tbs, *len, sig), 0);
}

/* Tries a grant; returns the wire code ("" when stored). */
static const char *try_grant(const struct who *caller, const struct who *signer,
                             const char *citizen, const char *grantee, uint8_t form,
                             const char *reason, uint64_t expires, uint64_t now,
                             struct consent_stored *out)
{
    static char code[32];
    uint8_t *tbs, sig[64];
    size_t len;
    const char *c = "?";
    char why[400];
    make(signer, citizen, grantee, form, reason, now, expires, &tbs, &len, sig);
    int rc = consent_grant(tbs, len, sig, caller->id, caller->dev, NULL, now, out, &c, why,
                           sizeof(why));
    free(tbs);
    snprintf(code, sizeof(code), "%s", rc ? c : "");
    return code;
}

static bool entitled(const char *citizen, const char *who_dev, uint64_t now)
{
    struct entitled_set set = {0};
    assert_int_equal(entitle_thread("t_00000000000000000000000000000000", citizen, "care", now,
                                    &set),
                     0);
    bool in = entitle_find(&set, who_dev) != NULL;
    entitle_free(&set);
    return in;
}

static void grant_rules(void **state)
{
    struct fx *f = *state;
    struct consent_stored st;
    uint64_t now = T0 + 100;

    /* the citizen is always entitled; others not without a grant */
    assert_true(entitled(f->karen.id, f->karen.dev, now));
    assert_false(entitled(f->karen.id, f->ole.dev, now));

    /* a grant "of" a non-citizen (staff mette signing as citizen) */
    assert_string_equal(try_grant(&f->mette, &f->mette, f->mette.id, f->ole.id,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "invalid");
    /* signed by karen's key but sent from ole's device */
    assert_string_equal(try_grant(&f->ole, &f->karen, f->karen.id, f->ole.id,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "denied");
    /* a forged signature: ole's key claiming karen's device */
    {
        uint8_t *tbs, sig[64];
        size_t len;
        const char *c;
        char why[400];
        struct who forged = f->karen;
        memcpy(forged.seed, f->ole.seed, 32);
        make(&forged, f->karen.id, f->ole.id, MSG_GRANT_FORM_CITIZEN, NULL, now, 0, &tbs, &len,
             sig);
        assert_int_equal(consent_grant(tbs, len, sig, f->karen.id, f->karen.dev, NULL, now, &st,
                                       &c, why, sizeof(why)),
                         ERR_CRYPTO);
        assert_string_equal(c, "crypto");
        free(tbs);
    }
    /* issued more than a day from the server clock */
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, f->ole.id,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "");
    {
        uint8_t *tbs, sig[64];
        size_t len;
        const char *c;
        char why[400];
        make(&f->karen, f->karen.id, f->ole.id, MSG_GRANT_FORM_CITIZEN, NULL, now - 2 * 86400, 0,
             &tbs, &len, sig);
        assert_int_not_equal(consent_grant(tbs, len, sig, f->karen.id, f->karen.dev, NULL, now,
                                           &st, &c, why, sizeof(why)),
                             0);
        assert_string_equal(c, "invalid");
        free(tbs);
    }
    /* unknown grantee, unknown department */
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, "nobody@" DOM,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "not_found");
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, "department:nope@" DOM,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "not_found");
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, "ole@other.test",
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "not_found");
    /* oral: refused while karen has a device, refused from a non-staff
     * granter, accepted for anna (no device) from staff */
    assert_string_equal(try_grant(&f->mette, &f->mette, f->karen.id, f->ole.id,
                                  MSG_GRANT_FORM_ORAL, "said yes", 0, now, &st),
                        "denied");
    assert_string_equal(try_grant(&f->ole, &f->ole, f->anna.id, f->per.id, MSG_GRANT_FORM_ORAL,
                                  "said yes", 0, now, &st),
                        "denied");
    assert_string_equal(try_grant(&f->mette, &f->mette, f->anna.id, f->ole.id,
                                  MSG_GRANT_FORM_ORAL, "Anna said yes at the visit", 0, now, &st),
                        "");
    assert_true(entitled(f->anna.id, f->ole.dev, now));
    /* proxy: refused until ole is registered as anna's proxy */
    assert_string_equal(try_grant(&f->ole, &f->ole, f->anna.id, f->per.id, MSG_GRANT_FORM_PROXY,
                                  NULL, 0, now, &st),
                        "denied");
    {
        sqlite3_stmt *s = tq(Q_PROXY_ADD);
        assert_int_equal(tq_text(s, 1, f->anna.id), 0);
        assert_int_equal(tq_text(s, 2, f->ole.id), 0);
        assert_int_equal(tq_text(s, 3, "guardianship"), 0);
        assert_int_equal(tq_text(s, 4, f->mette.id), 0);
        assert_int_equal(tq_u64(s, 5, now), 0);
        assert_int_equal(tq_text(s, 6, ""), 0); /* as registered before schema 4 */
        assert_int_equal(tq_run(s), 0);
        assert_int_equal(tq_changes(), 1);
    }
    /* an unsigned (pre-schema-4) registration is replaced by a signed one;
     * an active signed one is not */
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *s = tq(Q_PROXY_ADD);
        assert_int_equal(tq_text(s, 1, f->anna.id), 0);
        assert_int_equal(tq_text(s, 2, f->ole.id), 0);
        assert_int_equal(tq_text(s, 3, "guardianship"), 0);
        assert_int_equal(tq_text(s, 4, f->mette.id), 0);
        assert_int_equal(tq_u64(s, 5, now), 0);
        assert_int_equal(tq_text(s, 6, k ? "p_1111111111111111" : "p_0123456789abcdef"), 0);
        assert_int_equal(tq_run(s), 0);
        assert_int_equal(tq_changes(), k ? 0 : 1);
    }
    {
        char reg[32];
        sqlite3_stmt *s = tq(Q_PROXY_ACTIVE);
        assert_int_equal(tq_text(s, 1, f->anna.id), 0);
        assert_int_equal(tq_text(s, 2, f->ole.id), 0);
        assert_int_equal(tq_row(s), 0);
        tq_col_text(s, 0, reg, sizeof(reg));
        tq_done(s);
        assert_string_equal(reg, "p_0123456789abcdef");
    }
    assert_true(consent_is_proxy(f->anna.id, f->ole.id));
    assert_true(entitled(f->anna.id, f->ole.dev, now)); /* basis proxy too */
    assert_string_equal(try_grant(&f->ole, &f->ole, f->anna.id, f->per.id, MSG_GRANT_FORM_PROXY,
                                  NULL, 0, now, &st),
                        "");
    assert_true(entitled(f->anna.id, f->per.dev, now));
}

static void expiry_and_departments(void **state)
{
    struct fx *f = *state;
    struct consent_stored st;
    uint64_t now = T0 + 100;

    /* an expiring grant entitles until it expires, by the server clock */
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, f->ole.id,
                                  MSG_GRANT_FORM_CITIZEN, NULL, now + 3600, now, &st),
                        "");
    assert_true(entitled(f->karen.id, f->ole.dev, now + 3599));
    assert_false(entitled(f->karen.id, f->ole.dev, now + 3600));
    /* already expired at arrival */
    {
        uint8_t *tbs, sig[64];
        size_t len;
        const char *c = "?";
        char why[400];
        make(&f->karen, f->karen.id, f->ole.id, MSG_GRANT_FORM_CITIZEN, NULL, now - 100, now - 10,
             &tbs, &len, sig);
        assert_int_not_equal(consent_grant(tbs, len, sig, f->karen.id, f->karen.dev, NULL, now,
                                           &st, &c, why, sizeof(why)),
                             0);
        assert_string_equal(c, "expired");
        free(tbs);
    }
    /* the sweep records the expiry once */
    bool did = false;
    assert_int_equal(consent_sweep(now + 3600, &did), 0);
    assert_true(did);
    assert_int_equal(consent_sweep(now + 3601, &did), 0);
    assert_false(did);

    /* a department grant covers mette while assigned, and per only once
     * assigned; unassigning ends it */
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, "department:hjemmepleje@" DOM,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "");
    assert_true(entitled(f->karen.id, f->mette.dev, now));
    assert_false(entitled(f->karen.id, f->per.dev, now));
    assert_int_equal(store_member_add(srv.store, STORE_DEPARTMENT, f->per.id, "hjemmepleje", now),
                     0);
    assert_true(entitled(f->karen.id, f->per.dev, now));
    assert_int_equal(store_member_remove(srv.store, STORE_DEPARTMENT, f->mette.id, "hjemmepleje"),
                     0);
    assert_false(entitled(f->karen.id, f->mette.dev, now));
    /* a revoked device is never entitled */
    assert_int_equal(store_device_revoke(srv.store, f->per.dev, now), 0);
    assert_false(entitled(f->karen.id, f->per.dev, now));
}

static void revocation_and_receipts(void **state)
{
    struct fx *f = *state;
    struct consent_stored st;
    uint64_t now = T0 + 100;
    assert_string_equal(try_grant(&f->karen, &f->karen, f->karen.id, f->ole.id,
                                  MSG_GRANT_FORM_CITIZEN, NULL, 0, now, &st),
                        "");
    /* the receipt verifies with the server key over the stored grant */
    {
        sqlite3_stmt *s;
        sqlite3 *db = store_db(srv.store);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT tbs, sig FROM grants WHERE id = ?1", -1,
                                            &s, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(s, 1, st.id, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        uint8_t hash[32];
        msg_grant_hash(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
                       sqlite3_column_blob(s, 1), hash);
        sqlite3_finalize(s);
        assert_int_equal(msg_grant_receipt_verify(srv.key_pk, st.id, hash, st.stored, st.receipt),
                         0);
        /* immutable */
        assert_int_not_equal(sqlite3_exec(db, "UPDATE grants SET scope = 'coordination'", NULL,
                                          NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(db, "DELETE FROM grants", NULL, NULL, NULL), SQLITE_OK);
    }
    assert_true(entitled(f->karen.id, f->ole.dev, now));

    struct msg_revocation v;
    uint8_t *tbs, sig[64];
    size_t len;
    const char *c = "?";
    char why[400], gid[MSG_GRANT_GID_LEN + 1];
    uint64_t when;
    msg_revocation_init(&v);
    snprintf(v.grant, sizeof(v.grant), "%s", st.id);
    snprintf(v.revoker, sizeof(v.revoker), "%s", f->ole.id);
    snprintf(v.revoker_device, sizeof(v.revoker_device), "%s", f->ole.dev);
    v.revoked_at = now;
    assert_int_equal(msg_revocation_encode(&v, &tbs, &len), 0);
    assert_int_equal(msg_revocation_sign(f->ole.seed, tbs, len, sig), 0);
    /* the grantee cannot revoke */
    assert_int_equal(consent_revoke(tbs, len, sig, f->ole.id, f->ole.dev, now, gid, &when, &c,
                                    why, sizeof(why)),
                     ERR_DENIED);
    assert_string_equal(c, "denied");
    free(tbs);
    snprintf(v.revoker, sizeof(v.revoker), "%s", f->karen.id);
    snprintf(v.revoker_device, sizeof(v.revoker_device), "%s", f->karen.dev);
    assert_int_equal(msg_revocation_encode(&v, &tbs, &len), 0);
    assert_int_equal(msg_revocation_sign(f->karen.seed, tbs, len, sig), 0);
    assert_int_equal(consent_revoke(tbs, len, sig, f->karen.id, f->karen.dev, now + 5, gid, &when,
                                    &c, why, sizeof(why)),
                     0);
    assert_string_equal(gid, st.id);
    assert_int_equal(when, now + 5);
    assert_false(entitled(f->karen.id, f->ole.dev, now + 6));
    assert_int_not_equal(consent_revoke(tbs, len, sig, f->karen.id, f->karen.dev, now + 7, gid,
                                        &when, &c, why, sizeof(why)),
                         0);
    assert_string_equal(c, "conflict");
    free(tbs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(grant_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_and_departments, setup, teardown),
        cmocka_unit_test_setup_teardown(revocation_and_receipts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
