/* test_hpke.c: hpke.h on RFC 9180 A.2 (all four modes): DeriveKeyPair,
 * shared secret, key schedule values, every encryption and export; plus
 * rejection of bad mode/PSK/auth-key combinations and forged ciphertexts. */
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
#include "hpke.h"
#include "vectors.h"

#define VFILE "hpke-test-vectors/rfc9180-x25519-sha256-chacha20poly1305.json"

static bool get(const json_t *o, const char *key, struct vec_bytes *b)
{
    if (!vec_hex(o, key, b)) {
        fprintf(stderr, "missing %s\n", key);
        return false;
    }
    return true;
}

static bool check_keypair(const json_t *e, const char *ikm_key, const char *sk_key,
                          const char *pk_key)
{
    struct vec_bytes ikm = {0}, sk = {0}, pk = {0};
    uint8_t s[HPKE_NSK], p[HPKE_NPK];
    bool ok = get(e, ikm_key, &ikm) && get(e, sk_key, &sk) && get(e, pk_key, &pk) &&
              hpke_derive_keypair(ikm.p, ikm.len, s, p) == 0 && vec_eq(sk_key, &sk, s, HPKE_NSK) &&
              vec_eq(pk_key, &pk, p, HPKE_NPK);
    vec_bytes_free(&ikm);
    vec_bytes_free(&sk);
    vec_bytes_free(&pk);
    return ok;
}

static bool check_ctx(const json_t *e, const struct hpke_ctx *ctx)
{
    struct vec_bytes key = {0}, nonce = {0}, exp = {0};
    bool ok = get(e, "key", &key) && get(e, "base_nonce", &nonce) &&
              get(e, "exporter_secret", &exp) && vec_eq("key", &key, ctx->key, HPKE_NK) &&
              vec_eq("base_nonce", &nonce, ctx->base_nonce, HPKE_NN) &&
              vec_eq("exporter_secret", &exp, ctx->exporter_secret, HPKE_NH);
    vec_bytes_free(&key);
    vec_bytes_free(&nonce);
    vec_bytes_free(&exp);
    return ok;
}

static bool check_encryptions(const json_t *e, struct hpke_ctx *s, struct hpke_ctx *r)
{
    const json_t *arr = json_object_get(e, "encryptions");
    size_t i;
    json_t *x;
    bool ok = json_array_size(arr) > 0;

    json_array_foreach(arr, i, x) {
        struct vec_bytes pt = {0}, aad = {0}, ct = {0};
        uint64_t seq = vec_uint(x, "seq");
        uint8_t *mine = NULL, *back = NULL;
        bool one = get(x, "pt", &pt) && get(x, "aad", &aad) && get(x, "ct", &ct) &&
                   ct.len == pt.len + HPKE_NT;
        if (one) {
            mine = malloc(ct.len);
            back = malloc(pt.len + 1);
            one = mine && back;
        }
        /* The vectors skip sequence numbers (0, 1, 2, 4, 255, 256): seal
         * throwaway messages on the sender to get there, and move the
         * receiver's counter the same way a lost message would not: by
         * setting it, which only a test may do. */
        while (one && s->seq < seq) {
            uint8_t junk[HPKE_NT];
            one = hpke_seal(s, NULL, 0, NULL, 0, junk) == 0;
        }
        r->seq = seq;
        one = one && s->seq == seq && hpke_seal(s, aad.p, aad.len, pt.p, pt.len, mine) == 0 &&
              vec_eq("ct", &ct, mine, ct.len);
        one = one && hpke_open(r, aad.p, aad.len, ct.p, ct.len, back) == 0 &&
              vec_eq("pt", &pt, back, pt.len);
        /* Replaying at the next sequence number fails and does not advance. */
        one = one && hpke_open(r, aad.p, aad.len, ct.p, ct.len, back) == ERR_CRYPTO &&
              r->seq == seq + 1;
        free(mine);
        free(back);
        vec_bytes_free(&pt);
        vec_bytes_free(&aad);
        vec_bytes_free(&ct);
        ok = ok && one;
    }
    return ok;
}

static bool check_exports(const json_t *e, const struct hpke_ctx *s, const struct hpke_ctx *r)
{
    const json_t *arr = json_object_get(e, "exports");
    size_t i;
    json_t *x;
    bool ok = json_array_size(arr) > 0;

    json_array_foreach(arr, i, x) {
        struct vec_bytes ec = {0}, want = {0};
        size_t len = (size_t)vec_uint(x, "L");
        uint8_t *a = malloc(len), *b = malloc(len);
        bool one = a && b && get(x, "exporter_context", &ec) && get(x, "exported_value", &want) &&
                   hpke_export(s, ec.p, ec.len, a, len) == 0 &&
                   hpke_export(r, ec.p, ec.len, b, len) == 0 && vec_eq("export", &want, a, len) &&
                   vec_eq("export (receiver)", &want, b, len);
        free(a);
        free(b);
        vec_bytes_free(&ec);
        vec_bytes_free(&want);
        ok = ok && one;
    }
    return ok;
}

static bool check_one(const json_t *e)
{
    uint8_t mode = (uint8_t)vec_uint(e, "mode");
    bool auth = mode == HPKE_MODE_AUTH || mode == HPKE_MODE_AUTH_PSK;
    bool psk = mode == HPKE_MODE_PSK || mode == HPKE_MODE_AUTH_PSK;
    struct vec_bytes info = {0}, skE = {0}, skR = {0}, pkR = {0}, skS = {0}, pkS = {0},
                     vpsk = {0}, vpsk_id = {0}, enc = {0}, shared = {0};
    struct hpke_ctx sctx, rctx;
    uint8_t myenc[HPKE_NENC], ss[HPKE_NSECRET];
    bool ok = vec_uint(e, "kem_id") == 0x20 && vec_uint(e, "kdf_id") == 1 &&
              vec_uint(e, "aead_id") == 3;

    memset(&sctx, 0, sizeof(sctx));
    memset(&rctx, 0, sizeof(rctx));
    ok = ok && check_keypair(e, "ikmE", "skEm", "pkEm") && check_keypair(e, "ikmR", "skRm", "pkRm");
    if (auth)
        ok = ok && check_keypair(e, "ikmS", "skSm", "pkSm");
    ok = ok && get(e, "info", &info) && get(e, "skEm", &skE) && get(e, "skRm", &skR) &&
         get(e, "pkRm", &pkR) && get(e, "enc", &enc) && get(e, "shared_secret", &shared);
    if (auth)
        ok = ok && get(e, "skSm", &skS) && get(e, "pkSm", &pkS);
    if (psk)
        ok = ok && get(e, "psk", &vpsk) && get(e, "psk_id", &vpsk_id);
    if (!ok)
        goto out;

    /* KEM: shared secret both ways. */
    ok = hpke_encap(pkR.p, auth ? skS.p : NULL, skE.p, myenc, ss) == 0 &&
         vec_eq("enc", &enc, myenc, HPKE_NENC) && vec_eq("shared_secret", &shared, ss, sizeof(ss));
    ok = ok && hpke_decap(enc.p, skR.p, auth ? pkS.p : NULL, ss) == 0 &&
         vec_eq("shared_secret (decap)", &shared, ss, sizeof(ss));
    /* Contexts. */
    ok = ok && hpke_setup_sender(mode, pkR.p, info.p, info.len, vpsk.p, vpsk.len, vpsk_id.p,
                                 vpsk_id.len, auth ? skS.p : NULL, skE.p, myenc, &sctx) == 0 &&
         vec_eq("enc (setup)", &enc, myenc, HPKE_NENC) && check_ctx(e, &sctx);
    ok = ok && hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, vpsk.p, vpsk.len,
                                   vpsk_id.p, vpsk_id.len, auth ? pkS.p : NULL, &rctx) == 0 &&
         check_ctx(e, &rctx);
    ok = ok && check_encryptions(e, &sctx, &rctx) && check_exports(e, &sctx, &rctx);

    /* Wrong inputs for this mode are refused. */
    if (ok) {
        struct hpke_ctx bad;
        static const uint8_t p1[32] = {1}, id1[4] = {'i', 'd', '0', '1'};
        int rc;
        if (psk) {
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, NULL, 0, NULL, 0,
                                     auth ? pkS.p : NULL, &bad);
            ok = ok && rc == ERR_INVALID;
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, vpsk.p, vpsk.len, NULL,
                                     0, auth ? pkS.p : NULL, &bad);
            ok = ok && rc == ERR_INVALID;
            /* A different PSK gives a different key: the first ct fails. */
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, p1, sizeof(p1),
                                     vpsk_id.p, vpsk_id.len, auth ? pkS.p : NULL, &bad);
            ok = ok && rc == 0 && crypto_memeq(bad.key, sctx.key, HPKE_NK) == ERR_CRYPTO;
        } else {
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, p1, sizeof(p1), id1,
                                     sizeof(id1), auth ? pkS.p : NULL, &bad);
            ok = ok && rc == ERR_INVALID;
        }
        if (auth) {
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, vpsk.p, vpsk.len,
                                     vpsk_id.p, vpsk_id.len, NULL, &bad);
            ok = ok && rc == ERR_INVALID;
            /* Another sender key: a different shared secret. */
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, vpsk.p, vpsk.len,
                                     vpsk_id.p, vpsk_id.len, pkR.p, &bad);
            ok = ok && rc == 0 && crypto_memeq(bad.key, sctx.key, HPKE_NK) == ERR_CRYPTO;
        } else {
            rc = hpke_setup_receiver(mode, enc.p, skR.p, info.p, info.len, vpsk.p, vpsk.len,
                                     vpsk_id.p, vpsk_id.len, pkR.p, &bad);
            ok = ok && rc == ERR_INVALID;
        }
        hpke_ctx_wipe(&bad);
    }
out:
    hpke_ctx_wipe(&sctx);
    hpke_ctx_wipe(&rctx);
    vec_bytes_free(&info);
    vec_bytes_free(&skE);
    vec_bytes_free(&skR);
    vec_bytes_free(&pkR);
    vec_bytes_free(&skS);
    vec_bytes_free(&pkS);
    vec_bytes_free(&vpsk);
    vec_bytes_free(&vpsk_id);
    vec_bytes_free(&enc);
    vec_bytes_free(&shared);
    return ok;
}

/* Checks one entry and marks its mode as seen (ctx: bool seen[4]). */
static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    bool *seen = ctx;
    uint64_t mode = vec_uint(e, "mode");
    if (mode < 4)
        seen[mode] = true;
    if (check_one(e))
        return true;
    fprintf(stderr, "HPKE entry %zu (mode %llu) failed\n", index, (unsigned long long)mode);
    return false;
}

static void hpke_vectors(void **state)
{
    (void)state;
    bool seen[4] = {false};
    assert_int_equal(vec_run(VFILE, "rfc9180-x25519-sha256-chacha20poly1305.json", VEC_ANY_SUITE,
                             check_entry, seen),
                     0);
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
}

static void single_shot(void **state)
{
    (void)state;
    uint8_t sk[32], pk[32], sk2[32], pk2[32], enc[32];
    static const uint8_t info[] = "info", aad[] = "aad", msg[] = "hello, group";
    uint8_t ct[sizeof(msg) + HPKE_NT], pt[sizeof(msg)];

    assert_int_equal(hpke_generate_keypair(sk, pk), 0);
    assert_int_equal(hpke_generate_keypair(sk2, pk2), 0);
    assert_int_equal(hpke_seal_base(pk, info, sizeof(info), aad, sizeof(aad), msg, sizeof(msg),
                                    enc, ct),
                     0);
    assert_int_equal(hpke_open_base(enc, sk, info, sizeof(info), aad, sizeof(aad), ct,
                                    sizeof(ct), pt),
                     0);
    assert_memory_equal(pt, msg, sizeof(msg));
    /* Wrong key, wrong aad, wrong info all fail. */
    assert_int_equal(hpke_open_base(enc, sk2, info, sizeof(info), aad, sizeof(aad), ct,
                                    sizeof(ct), pt),
                     ERR_CRYPTO);
    assert_int_equal(hpke_open_base(enc, sk, info, sizeof(info), NULL, 0, ct, sizeof(ct), pt),
                     ERR_CRYPTO);
    assert_int_equal(hpke_open_base(enc, sk, NULL, 0, aad, sizeof(aad), ct, sizeof(ct), pt),
                     ERR_CRYPTO);
    /* An all-zero (low-order) public key or enc is refused. */
    uint8_t zero[32] = {0};
    assert_int_equal(hpke_seal_base(zero, NULL, 0, NULL, 0, msg, sizeof(msg), enc, ct),
                     ERR_CRYPTO);
    assert_int_equal(hpke_open_base(zero, sk, NULL, 0, NULL, 0, ct, sizeof(ct), pt), ERR_CRYPTO);
    /* Short ikm is refused. */
    assert_int_equal(hpke_derive_keypair(zero, 16, sk, pk), ERR_INVALID);
    /* Unknown mode. */
    struct hpke_ctx c;
    assert_int_equal(hpke_setup_sender(4, pk2, NULL, 0, NULL, 0, NULL, 0, NULL, NULL, enc, &c),
                     ERR_INVALID);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hpke_vectors),
        cmocka_unit_test(single_shot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
