/*
 * test_auth.c: init, enrollment and login against the real server:
 * the admin enrolls with init's code; login works on a fresh connection;
 * a replayed login (the same signed nonce, on another connection or again
 * on the same one) and forged logins (wrong key, wrong device, unknown
 * identity) are refused; codes cannot be reused; invitation and link codes
 * expire (server test clock); operations need a login and the right role.
 */
#include "it.h"

#include <stdlib.h>

struct st {
    struct testserver ts;
    struct client_ctx *ctx;
    uint8_t admin_seed[32];
    char admin_id[CLIENT_ID_MAX + 1];
    char admin_dev[19];
};

static int setup(void **state)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s || sodium_init() < 0)
        return -1;
    *state = s; /* the teardown frees what a failed setup made */
    if (testserver_init(&s->ts, "auth.test", true) != 0 || testserver_start(&s->ts) != 0)
        return -1;
    if (client_ctx_new(NULL, &s->ctx) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    struct st *s = *state;
    if (!s)
        return 0;
    client_ctx_free(s->ctx);
    testserver_cleanup(&s->ts);
    free(s);
    return 0;
}

static void enroll_admin(void **state)
{
    struct st *s = *state;
    char role[32];
    struct client_conn *c = it_enroll(s->ctx, s->ts.url, s->ts.admin_code, s->admin_seed,
                                      s->admin_id, sizeof(s->admin_id), s->admin_dev);
    uint8_t pk[32];
    char want_dev[19];

    assert_string_equal(s->admin_id, "admin@auth.test");
    assert_int_equal(keys_id_public(s->admin_seed, pk), 0);
    keys_id_device(pk, want_dev);
    assert_string_equal(s->admin_dev, want_dev);
    /* the enrolling connection is logged in */
    it_ok(c, "whoami", NULL, "role", role, sizeof(role));
    assert_string_equal(role, "admin");
    client_conn_free(c);

    /* the admin code is one-time */
    uint8_t seed2[32];
    struct client_frame r;
    c = it_open(s->ctx, s->ts.url);
    randombytes_buf(seed2, sizeof(seed2));
    assert_int_equal(client_auth_enroll(c, s->ts.admin_code, seed2, NULL, IT_TIMEOUT, &r),
                     ERR_CONFLICT);
    client_frame_free(&r);
    /* a code that was never issued */
    assert_int_not_equal(client_auth_enroll(c, "aaaaa-bbbbb-ccccc-ddddd", seed2, NULL,
                                            IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    client_conn_free(c);
}

static void login(void **state)
{
    struct st *s = *state;
    char id[CLIENT_ID_MAX + 1];
    struct client_conn *c = it_login(s->ctx, s->ts.url, s->admin_id, s->admin_seed);

    it_ok(c, "whoami", NULL, "id", id, sizeof(id));
    assert_string_equal(id, s->admin_id);
    client_conn_free(c);
    /* a bare name means this server's domain */
    c = it_login(s->ctx, s->ts.url, "admin", s->admin_seed);
    client_conn_free(c);
}

static void unauthenticated(void **state)
{
    struct st *s = *state;
    struct client_conn *c = it_open(s->ctx, s->ts.url);

    it_err(c, "whoami", NULL, "unauthenticated");
    it_err(c, "admin.departments", NULL, "unauthenticated");
    it_err(c, "no.such.op", NULL, "unknown_op");
    client_conn_free(c);
}

static void replayed_login(void **state)
{
    struct st *s = *state;
    uint8_t nonce[CLIENT_NONCE_LEN], nonce_b[CLIENT_NONCE_LEN], sig[64];
    char domain[CLIENT_DOMAIN_MAX + 1], dev[19];
    struct client_frame r;
    struct client_conn *a = it_open(s->ctx, s->ts.url);
    struct client_conn *b = it_open(s->ctx, s->ts.url);

    assert_int_equal(client_auth_challenge(a, IT_TIMEOUT, nonce, domain, NULL), 0);
    assert_string_equal(domain, "auth.test");
    assert_int_equal(client_auth_sign_login(s->admin_seed, domain, nonce, dev, sig), 0);

    /* B asks for its own challenge; A's signed nonce does not log B in */
    assert_int_equal(client_auth_challenge(b, IT_TIMEOUT, nonce_b, domain, NULL), 0);
    assert_memory_not_equal(nonce, nonce_b, CLIENT_NONCE_LEN);
    assert_int_not_equal(client_auth_send_login(b, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    it_err(b, "whoami", NULL, "unauthenticated");

    /* on a third connection without any challenge: refused too */
    struct client_conn *c = it_open(s->ctx, s->ts.url);
    assert_int_not_equal(client_auth_send_login(c, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    client_conn_free(c);

    /* on A it works once ... */
    assert_int_equal(client_auth_send_login(a, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    /* ... and the consumed nonce cannot be used again, here or elsewhere */
    struct client_conn *d = it_open(s->ctx, s->ts.url);
    assert_int_not_equal(client_auth_send_login(d, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    it_err(d, "whoami", NULL, "unauthenticated");
    client_conn_free(d);
    client_conn_free(a);
    client_conn_free(b);
}

static void forged_login(void **state)
{
    struct st *s = *state;
    uint8_t nonce[CLIENT_NONCE_LEN], sig[64], other[32];
    char domain[CLIENT_DOMAIN_MAX + 1], dev[19];
    struct client_frame r;
    struct client_conn *c = it_open(s->ctx, s->ts.url);

    randombytes_buf(other, sizeof(other));
    /* a key the server does not know, claiming the admin's device */
    assert_int_equal(client_auth_challenge(c, IT_TIMEOUT, nonce, domain, NULL), 0);
    assert_int_equal(client_auth_sign_login(other, domain, nonce, NULL, sig), 0);
    assert_int_not_equal(client_auth_send_login(c, s->admin_id, s->admin_dev, sig, IT_TIMEOUT,
                                                &r), 0);
    client_frame_free(&r);

    /* the admin's key, but signed for another device id */
    assert_int_equal(client_auth_challenge(c, IT_TIMEOUT, nonce, domain, NULL), 0);
    assert_int_equal(client_auth_sign_login(other, domain, nonce, dev, sig), 0);
    assert_int_not_equal(client_auth_send_login(c, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);

    /* signed for a different domain */
    assert_int_equal(client_auth_challenge(c, IT_TIMEOUT, nonce, domain, NULL), 0);
    assert_int_equal(client_auth_sign_login(s->admin_seed, "evil.test", nonce, dev, sig), 0);
    assert_int_not_equal(client_auth_send_login(c, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);

    /* an identity that does not exist */
    assert_int_equal(client_auth_challenge(c, IT_TIMEOUT, nonce, domain, NULL), 0);
    assert_int_equal(client_auth_sign_login(s->admin_seed, domain, nonce, dev, sig), 0);
    assert_int_not_equal(client_auth_send_login(c, "nobody@auth.test", dev, sig, IT_TIMEOUT,
                                                &r), 0);
    client_frame_free(&r);

    /* a corrupted signature */
    assert_int_equal(client_auth_challenge(c, IT_TIMEOUT, nonce, domain, NULL), 0);
    assert_int_equal(client_auth_sign_login(s->admin_seed, domain, nonce, dev, sig), 0);
    sig[10] ^= 1;
    assert_int_not_equal(client_auth_send_login(c, s->admin_id, dev, sig, IT_TIMEOUT, &r), 0);
    client_frame_free(&r);
    it_err(c, "whoami", NULL, "unauthenticated");
    client_conn_free(c);
}

static void roles_enforced(void **state)
{
    struct st *s = *state;
    char code[64], id[CLIENT_ID_MAX + 1], dev[19];
    uint8_t seed[32];
    struct client_conn *admin = it_login(s->ctx, s->ts.url, s->admin_id, s->admin_seed);
    const char *inv[] = {"role", "citizen", "name", "carl", NULL};

    it_ok(admin, "admin.invite", inv, "code", code, sizeof(code));
    struct client_conn *c = it_enroll(s->ctx, s->ts.url, code, seed, id, sizeof(id), dev);
    assert_string_equal(id, "carl@auth.test");
    const char *dep[] = {"name", "elderly-care", NULL};
    it_err(c, "admin.department.add", dep, "denied");
    it_err(c, "admin.invite", inv, "denied");
    it_err(c, "admin.departments", NULL, "denied");
    /* inviting an identity that exists is a conflict; a bad role invalid */
    it_err(admin, "admin.invite", inv, "conflict");
    const char *badrole[] = {"role", "emperor", "name", "zed", NULL};
    it_err(admin, "admin.invite", badrole, "invalid");
    client_conn_free(c);
    client_conn_free(admin);
}

static void invitation_expiry(void **state)
{
    struct st *s = *state;
    char code[64], link[64];
    uint8_t seed[32];
    struct client_frame r;
    struct client_conn *admin = it_login(s->ctx, s->ts.url, s->admin_id, s->admin_seed);
    const char *inv[] = {"role", "staff", "name", "late", NULL};

    it_ok(admin, "admin.invite", inv, "code", code, sizeof(code));
    it_ok(admin, "device.link_code", NULL, "code", link, sizeof(link));
    /* link codes live 10 minutes, invitations 7 days */
    it_shift_clock(admin, 11 * 60);
    struct client_conn *c = it_open(s->ctx, s->ts.url);
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(client_auth_enroll(c, link, seed, NULL, IT_TIMEOUT, &r), ERR_EXPIRED);
    client_frame_free(&r);
    it_shift_clock(admin, 7 * 86400);
    assert_int_equal(client_auth_enroll(c, code, seed, NULL, IT_TIMEOUT, &r), ERR_EXPIRED);
    assert_string_equal(r.msg.name, "expired");
    client_frame_free(&r);
    it_shift_clock(admin, -(7 * 86400 + 11 * 60));
    client_conn_free(c);
    client_conn_free(admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(enroll_admin),   cmocka_unit_test(login),
        cmocka_unit_test(unauthenticated), cmocka_unit_test(replayed_login),
        cmocka_unit_test(forged_login),   cmocka_unit_test(roles_enforced),
        cmocka_unit_test(invitation_expiry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
