/* test_psk_secret.c: mls_ks_psk_secret on psk_secret.json (suite 3): each
 * entry's PSKs are external PSKs, encoded here as PreSharedKeyID
 * { psktype external(1), opaque psk_id<V>, opaque psk_nonce<V> }. */
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
#include "mls_ks.h"
#include "tls.h"
#include "vectors.h"

#define MAX_PSKS 16

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    const json_t *arr = json_object_get(e, "psks");
    struct mls_ks_psk psks[MAX_PSKS];
    struct vec_bytes ids[MAX_PSKS], nonces[MAX_PSKS], vals[MAX_PSKS], want = {0};
    uint8_t *enc[MAX_PSKS];
    size_t n = json_array_size(arr), i;
    json_t *p;
    uint8_t out[MLS_KS_NH];
    bool ok = n <= MAX_PSKS && vec_hex(e, "psk_secret", &want);

    memset(ids, 0, sizeof(ids));
    memset(nonces, 0, sizeof(nonces));
    memset(vals, 0, sizeof(vals));
    memset(enc, 0, sizeof(enc));
    json_array_foreach(arr, i, p) {
        if (!ok || i >= MAX_PSKS)
            break;
        struct tls_writer w;
        ok = vec_hex(p, "psk_id", &ids[i]) && vec_hex(p, "psk_nonce", &nonces[i]) &&
             vec_hex(p, "psk", &vals[i]);
        tls_writer_init(&w, 0);
        tls_put_u8(&w, 1); /* external */
        tls_put_opaque(&w, ids[i].p, ids[i].len);
        tls_put_opaque(&w, nonces[i].p, nonces[i].len);
        ok = tls_writer_take(&w, &enc[i], &psks[i].id_len) == 0 && ok;
        psks[i].id = enc[i];
        psks[i].psk = vals[i].p;
        psks[i].psk_len = vals[i].len;
    }
    ok = ok && mls_ks_psk_secret(psks, n, out) == 0 && vec_eq("psk_secret", &want, out, 32);
    /* Order matters: reversing two PSKs changes the secret. */
    if (ok && n >= 2) {
        struct mls_ks_psk t = psks[0];
        psks[0] = psks[1];
        psks[1] = t;
        ok = mls_ks_psk_secret(psks, n, out) == 0 && memcmp(out, want.p, 32) != 0;
    }
    for (i = 0; i < MAX_PSKS; i++) {
        vec_bytes_free(&ids[i]);
        vec_bytes_free(&nonces[i]);
        vec_bytes_free(&vals[i]);
        free(enc[i]);
    }
    vec_bytes_free(&want);
    return ok;
}

static void psk_secret_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/psk_secret.json", "psk_secret.json", VEC_SUITE_3, check_entry, NULL), 0);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(psk_secret_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
