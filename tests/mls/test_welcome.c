/* test_welcome.c: opening a Welcome on welcome.json (suite 3): find our
 * GroupSecrets by KeyPackageRef, decrypt them, decrypt the GroupInfo,
 * verify its signature and confirmation tag; and every failure path
 * (wrong init key, wrong signer, tampered tag, tampered ciphertext, a
 * KeyPackage the Welcome is not for). */
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
#include "mls_struct.h"
#include "mls_welcome.h"
#include "vectors.h"

struct fixture {
    struct vec_bytes init_priv, kp_msg, signer_pub, welcome_msg;
    struct mls_message kp, welcome;
};

static bool load(const json_t *e, struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    return vec_hex(e, "init_priv", &f->init_priv) && vec_hex(e, "key_package", &f->kp_msg) &&
           vec_hex(e, "signer_pub", &f->signer_pub) && vec_hex(e, "welcome", &f->welcome_msg) &&
           f->init_priv.len == CRYPTO_KEM_PRIV_LEN &&
           mls_message_parse(f->kp_msg.p, f->kp_msg.len, &f->kp) == 0 &&
           f->kp.wire_format == MLS_WF_KEY_PACKAGE &&
           mls_message_parse(f->welcome_msg.p, f->welcome_msg.len, &f->welcome) == 0 &&
           f->welcome.wire_format == MLS_WF_WELCOME;
}

static void unload(struct fixture *f)
{
    mls_message_free(&f->kp);
    mls_message_free(&f->welcome);
    vec_bytes_free(&f->init_priv);
    vec_bytes_free(&f->kp_msg);
    vec_bytes_free(&f->signer_pub);
    vec_bytes_free(&f->welcome_msg);
}

/* The whole join; returns the first error. */
static int join(const struct fixture *f, const uint8_t *init_priv, const uint8_t *signer,
                size_t signer_len, struct mls_ks_epoch **ep)
{
    struct mls_group_secrets gs;
    struct mls_group_info gi;
    uint8_t psk_secret[MLS_KS_NH];
    int rc;

    *ep = NULL;
    rc = mls_welcome_open_secrets(&f->welcome.welcome, &f->kp.key_package, init_priv, &gs);
    if (rc != 0)
        return rc;
    rc = mls_welcome_psk_secret(&gs, NULL, 0, psk_secret);
    if (rc == 0)
        rc = mls_welcome_open_group_info(&f->welcome.welcome, &gs, psk_secret, &gi);
    if (rc == 0) {
        rc = mls_welcome_verify_group_info(&gi, signer, signer_len, &gs, psk_secret, ep);
        mls_group_info_free(&gi);
    }
    mls_group_secrets_free(&gs);
    return rc;
}

static bool check_entry(const json_t *e)
{
    struct fixture f;
    struct mls_ks_epoch *ep = NULL;
    bool ok = load(e, &f);

    ok = ok && join(&f, f.init_priv.p, f.signer_pub.p, f.signer_pub.len, &ep) == 0 && ep != NULL;
    mls_ks_epoch_free(ep);
    if (ok) {
        /* Wrong init key. */
        uint8_t bad[CRYPTO_KEM_PRIV_LEN];
        memcpy(bad, f.init_priv.p, sizeof(bad));
        bad[3] ^= 1;
        ok = join(&f, bad, f.signer_pub.p, f.signer_pub.len, &ep) == ERR_CRYPTO && ep == NULL;
        /* Wrong signer key; a signer key of the wrong size. */
        uint8_t other[CRYPTO_SIGN_PUB_LEN], sk[CRYPTO_SIGN_PRIV_LEN];
        crypto_sig_keygen(other, sk);
        ok = ok && join(&f, f.init_priv.p, other, sizeof(other), &ep) == ERR_CRYPTO;
        ok = ok && join(&f, f.init_priv.p, f.signer_pub.p, 31, &ep) == ERR_CRYPTO;
    }
    if (ok) {
        /* Tampered encrypted_group_info: GroupSecrets no longer decrypt
         * (it is their HPKE context) */
        struct mls_bytes *egi = &f.welcome.welcome.encrypted_group_info;
        egi->data[egi->len - 1] ^= 1;
        ok = join(&f, f.init_priv.p, f.signer_pub.p, f.signer_pub.len, &ep) == ERR_CRYPTO;
        egi->data[egi->len - 1] ^= 1;
    }
    if (ok) {
        /* A GroupInfo whose confirmation tag or signature is altered. */
        struct mls_group_secrets gs;
        struct mls_group_info gi;
        uint8_t psk_secret[MLS_KS_NH] = {0};
        ok = mls_welcome_open_secrets(&f.welcome.welcome, &f.kp.key_package, f.init_priv.p,
                                      &gs) == 0 &&
             mls_welcome_open_group_info(&f.welcome.welcome, &gs, psk_secret, &gi) == 0;
        if (ok) {
            gi.confirmation_tag.data[0] ^= 1;
            /* The tag is signed too, so the signature fails first. */
            ok = mls_welcome_verify_group_info(&gi, f.signer_pub.p, f.signer_pub.len, &gs,
                                               psk_secret, &ep) == ERR_CRYPTO;
            gi.confirmation_tag.data[0] ^= 1;
            /* A PSK the sender did not use: wrong epoch secrets, so the
             * GroupInfo does not even decrypt. */
            uint8_t wrong_psk[MLS_KS_NH] = {1};
            struct mls_group_info gi2;
            ok = ok && mls_welcome_open_group_info(&f.welcome.welcome, &gs, wrong_psk, &gi2) ==
                           ERR_CRYPTO;
            /* PSK count mismatch. */
            struct mls_bytes one = {0};
            ok = ok && mls_welcome_psk_secret(&gs, &one, 1, psk_secret) == ERR_INVALID;
            /* The epoch: its epoch_authenticator is stable across joins. */
            struct mls_ks_epoch *a = NULL, *b = NULL;
            uint8_t x[MLS_KS_NH], y[MLS_KS_NH];
            ok = ok &&
                 mls_welcome_verify_group_info(&gi, f.signer_pub.p, f.signer_pub.len, &gs,
                                               psk_secret, &a) == 0 &&
                 mls_welcome_verify_group_info(&gi, f.signer_pub.p, f.signer_pub.len, &gs,
                                               psk_secret, &b) == 0 &&
                 mls_ks_epoch_secret(a, MLS_KS_EPOCH_AUTHENTICATOR, x) == 0 &&
                 mls_ks_epoch_secret(b, MLS_KS_EPOCH_AUTHENTICATOR, y) == 0 &&
                 memcmp(x, y, sizeof(x)) == 0;
            mls_ks_epoch_free(a);
            mls_ks_epoch_free(b);
            mls_group_info_free(&gi);
        }
        mls_group_secrets_free(&gs);
    }
    if (ok) {
        /* A KeyPackage this Welcome is not for. */
        struct mls_bytes *ik = &f.kp.key_package.init_key;
        ik->data[0] ^= 1;
        ok = join(&f, f.init_priv.p, f.signer_pub.p, f.signer_pub.len, &ep) == ERR_NOT_FOUND;
        ik->data[0] ^= 1;
    }
    unload(&f);
    return ok;
}

static void welcome_vectors(void **state)
{
    (void)state;
    json_t *root = vec_load("mls-test-vectors/welcome.json");
    unsigned passed = 0, total = 0;
    size_t i;
    json_t *e;

    json_array_foreach(root, i, e) {
        if (vec_uint(e, "cipher_suite") != 3)
            continue;
        total++;
        if (check_entry(e))
            passed++;
        else
            fprintf(stderr, "welcome entry %zu failed\n", i);
    }
    json_decref(root);
    assert_true(total > 0);
    assert_int_equal(vec_report("welcome.json", passed, total), 0);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(welcome_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
