/* test_client_state.c: the device's encrypted local state (client_state.c)
 * and the client's consent helpers (client_consent.c): values round-trip,
 * nothing readable on disk, rows bound to their slot, a wrong key or a
 * tampered row refused; grants signed here verify, forged ones do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "client_consent.h"
#include "client_state.h"
#include "err.h"
#include "keys_id.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    snprintf(dir, sizeof(dir), "/tmp/sammen-state-XXXXXX");
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

/* True when needle occurs in the file. */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t n = strlen(needle), len;
    char *buf;
    bool found = false;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
    for (size_t i = 0; i + n <= len && !found; i++)
        found = memcmp(buf + i, needle, n) == 0;
    free(buf);
    return found;
}

static int count_row(const struct client_state_row *row, void *user)
{
    int *n = user;
    char want[32];
    snprintf(want, sizeof(want), "secret message %d", *n + 2);
    assert_int_equal(row->len, strlen(want));
    assert_memory_equal(row->value, want, row->len);
    assert_int_equal(row->seq, (uint64_t)(*n + 2));
    assert_string_equal(row->thread, "t_1");
    (*n)++;
    return 0;
}

static void state_roundtrip(void **state)
{
    (void)state;
    uint8_t seed[32], other[32], *v = NULL;
    size_t len = 0;
    uint64_t u = 0;
    struct client_state_db *st = NULL;
    char path[128], k[16], text[32];
    struct stat sb;
    int n = 0;

    randombytes_buf(seed, sizeof(seed));
    randombytes_buf(other, sizeof(other));
    assert_int_equal(client_state_open(dir, seed, &st), 0);
    snprintf(path, sizeof(path), "%s/state.db", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    assert_int_equal(client_state_get(st, "msg", "none", &v, &len), ERR_NOT_FOUND);
    assert_int_equal(client_state_get_u64(st, "meta", "cursor", 7, &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(client_state_put_u64(st, "meta", "cursor", 12345), 0);
    assert_int_equal(client_state_get_u64(st, "meta", "cursor", 0, &u), 0);
    assert_int_equal(u, 12345);
    for (int i = 1; i <= 5; i++) {
        snprintf(k, sizeof(k), "t_1/%d", i);
        snprintf(text, sizeof(text), "secret message %d", i);
        assert_int_equal(client_state_put(st, "msg", k, "t_1", (uint64_t)i, 1000,
                                          (const uint8_t *)text, strlen(text)),
                         0);
    }
    assert_int_equal(client_state_put(st, "msg", "t_2/1", "t_2", 1, 1000,
                                      (const uint8_t *)"other thread", 12),
                     0);
    assert_int_equal(client_state_get(st, "msg", "t_1/3", &v, &len), 0);
    assert_int_equal(len, 16);
    assert_memory_equal(v, "secret message 3", 16);
    free(v);
    /* history after message 1 of thread t_1, in order */
    assert_int_equal(client_state_each(st, "msg", "t_1", 1, count_row, &n), 0);
    assert_int_equal(n, 4);
    /* an empty value */
    assert_int_equal(client_state_put(st, "pending", "t_1", "t_1", 0, 0, (const uint8_t *)"", 0),
                     0);
    assert_int_equal(client_state_get(st, "pending", "t_1", &v, &len), 0);
    assert_int_equal(len, 0);
    free(v);
    assert_int_equal(client_state_del(st, "pending", "t_1"), 0);
    assert_int_equal(client_state_get(st, "pending", "t_1", &v, &len), ERR_NOT_FOUND);
    client_state_close(st);

    /* nothing readable on disk */
    assert_false(file_has(path, "secret message"));
    assert_false(file_has(path, "other thread"));

    /* another key opens the file but reads nothing */
    assert_int_equal(client_state_open(dir, other, &st), 0);
    assert_int_equal(client_state_get(st, "msg", "t_1/3", &v, &len), ERR_CRYPTO);
    client_state_close(st);

    /* a row moved to another slot, or with its metadata changed, fails */
    {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "UPDATE rows SET k='t_1/9' WHERE kind='msg' AND k='t_1/4';"
                                      "UPDATE rows SET time=2000 WHERE kind='msg' AND k='t_1/5';"
                                      "UPDATE rows SET blob=blob||x'00' WHERE k='t_2/1';",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(client_state_open(dir, seed, &st), 0);
    assert_int_equal(client_state_get(st, "msg", "t_1/9", &v, &len), ERR_CRYPTO);
    assert_int_equal(client_state_get(st, "msg", "t_1/5", &v, &len), ERR_CRYPTO);
    assert_int_equal(client_state_get(st, "msg", "t_2/1", &v, &len), ERR_CRYPTO);
    assert_int_equal(client_state_get(st, "msg", "t_1/2", &v, &len), 0);
    free(v);
    n = 0;
    assert_int_equal(client_state_each(st, "msg", "t_1", 3, count_row, &n), ERR_CRYPTO);
    client_state_close(st);

    /* a state file others may read is refused */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(client_state_open(dir, seed, &st), ERR_DENIED);
    assert_int_equal(chmod(path, 0600), 0);
}

static void consent_sign_verify(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sig[64], *tbs = NULL, *rtbs = NULL, other_pk[32], oseed[32];
    size_t tl = 0, rl = 0;
    char gid[MSG_GRANT_GID_LEN + 1];
    struct msg_grant g, back;
    struct msg_revocation rv;

    randombytes_buf(seed, sizeof(seed));
    randombytes_buf(oseed, sizeof(oseed));
    assert_int_equal(keys_id_public(seed, pk), 0);
    assert_int_equal(keys_id_public(oseed, other_pk), 0);
    msg_grant_init(&g);
    strcpy(g.citizen, "ella@kommune.test");
    strcpy(g.grantee, "anna@kommune.test");
    strcpy(g.scope, "care");
    strcpy(g.basis, "consent");
    strcpy(g.purpose, "daughter helps with care");
    g.issued_at = 1700000000;
    g.expires_at = 1700086400;
    g.form = MSG_GRANT_FORM_CITIZEN;
    strcpy(g.granter, "ella@kommune.test");
    keys_id_device(pk, g.granter_device);
    assert_int_equal(client_consent_sign_grant(&g, seed, &tbs, &tl, sig, gid), 0);
    assert_true(msg_grant_id_valid(gid));
    assert_int_equal(client_consent_verify(tbs, tl, sig, 64, pk, 32, gid, &back), 0);
    assert_string_equal(back.grantee, "anna@kommune.test");
    assert_true(client_consent_covers(&back, "ella@kommune.test", "t_00", "care", 1700000001));
    assert_false(client_consent_covers(&back, "ella@kommune.test", "t_00", "coordination",
                                       1700000001));
    assert_false(client_consent_covers(&back, "ella@kommune.test", "t_00", "care", 1700086400));
    assert_false(client_consent_covers(&back, "bo@kommune.test", "t_00", "care", 1700000001));
    /* another key, a changed byte, another id: refused */
    assert_int_equal(client_consent_verify(tbs, tl, sig, 64, other_pk, 32, gid, &back),
                     ERR_CRYPTO);
    sig[3] ^= 1;
    assert_int_equal(client_consent_verify(tbs, tl, sig, 64, pk, 32, gid, &back), ERR_CRYPTO);
    sig[3] ^= 1;
    assert_int_equal(client_consent_verify(tbs, tl, sig, 64, pk, 32, "g_0000000000000000", &back),
                     ERR_CRYPTO);
    /* a citizen-form grant by someone else is refused before signing */
    strcpy(g.granter, "bo@kommune.test");
    free(tbs);
    tbs = NULL;
    assert_int_equal(client_consent_sign_grant(&g, seed, &tbs, &tl, sig, gid), ERR_INVALID);
    assert_null(tbs);
    /* thread scope */
    strcpy(g.granter, "ella@kommune.test");
    strcpy(g.scope, "thread:t_0123456789abcdef0123456789abcdef");
    assert_int_equal(client_consent_sign_grant(&g, seed, &tbs, &tl, sig, gid), 0);
    assert_int_equal(client_consent_verify(tbs, tl, sig, 64, pk, 32, gid, &back), 0);
    assert_true(client_consent_covers(&back, "ella@kommune.test",
                                      "t_0123456789abcdef0123456789abcdef", "care", 1700000001));
    assert_false(client_consent_covers(&back, "ella@kommune.test",
                                       "t_1123456789abcdef0123456789abcdef", "care", 1700000001));
    free(tbs);
    /* an oral grant without a reason is refused before signing */
    g.form = MSG_GRANT_FORM_ORAL;
    assert_int_equal(client_consent_sign_grant(&g, seed, &tbs, &tl, sig, gid), ERR_INVALID);
    assert_null(tbs);

    /* revocation */
    assert_int_equal(client_consent_sign_revocation(gid, "ella@kommune.test", g.granter_device,
                                                    1700000100, seed, &rtbs, &rl, sig),
                     0);
    assert_int_equal(msg_revocation_verify(pk, rtbs, rl, sig), 0);
    assert_int_equal(msg_revocation_decode(rtbs, rl, &rv), 0);
    assert_string_equal(rv.grant, gid);
    free(rtbs);
    assert_int_equal(client_consent_sign_revocation("nope", "ella@kommune.test",
                                                    g.granter_device, 1, seed, &rtbs, &rl, sig),
                     ERR_INVALID);
}

static void consent_time_and_names(void **state)
{
    (void)state;
    uint64_t t;
    char out[128];

    assert_int_equal(client_consent_parse_time("1970-01-02", 0, &t), 0);
    assert_int_equal(t, 86400);
    assert_int_equal(client_consent_parse_time("2026-11-24T02:38:29Z", 0, &t), 0);
    assert_int_equal(t, 1795487909);
    assert_int_equal(client_consent_parse_time("2000-03-01T00:00", 0, &t), 0);
    assert_int_equal(t, 951868800);
    assert_int_equal(client_consent_parse_time("+2d", 100, &t), 0);
    assert_int_equal(t, 100 + 2 * 86400);
    assert_int_equal(client_consent_parse_time("+3h", 0, &t), 0);
    assert_int_equal(t, 3 * 3600);
    assert_int_equal(client_consent_parse_time("2026-13-01", 0, &t), ERR_INVALID);
    assert_int_equal(client_consent_parse_time("tomorrow", 0, &t), ERR_INVALID);
    assert_int_equal(client_consent_parse_time("2026-01-01x", 0, &t), ERR_INVALID);
    assert_int_equal(client_consent_parse_time("+5y", 0, &t), ERR_INVALID);

    assert_int_equal(client_consent_qualify("anna", "k.test", out, sizeof(out)), 0);
    assert_string_equal(out, "anna@k.test");
    assert_int_equal(client_consent_qualify("department:home-care", "k.test", out, sizeof(out)),
                     0);
    assert_string_equal(out, "department:home-care@k.test");
    assert_int_equal(client_consent_qualify("bo@x.test", "k.test", out, sizeof(out)), 0);
    assert_string_equal(out, "bo@x.test");
    assert_int_equal(client_consent_qualify("anna", "k.test", out, 5), ERR_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(state_roundtrip, setup, teardown),
        cmocka_unit_test(consent_sign_verify),
        cmocka_unit_test(consent_time_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
