/* test_secret_tree.c: the secret tree on secret-tree.json (suite 3): sender
 * data key/nonce, and the handshake and application key/nonce of each
 * listed generation of each leaf, derived both as a receiver (jumping to
 * the generation) and as a sender (stepping); plus the out-of-order window:
 * skipped keys kept, each key handed out once, limits refused. */
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
#include "vectors.h"

static bool check_sender_data(const json_t *sd)
{
    struct vec_bytes sec = {0}, ct = {0}, key = {0}, nonce = {0};
    uint8_t k[CRYPTO_AEAD_KEY_LEN], n[CRYPTO_AEAD_NONCE_LEN];
    bool ok = vec_hex(sd, "sender_data_secret", &sec) && vec_hex(sd, "ciphertext", &ct) &&
              vec_hex(sd, "key", &key) && vec_hex(sd, "nonce", &nonce) && sec.len == MLS_KS_NH &&
              mls_ks_sender_data_key(sec.p, ct.p, ct.len, k, n) == 0 &&
              vec_eq("sender_data key", &key, k, sizeof(k)) &&
              vec_eq("sender_data nonce", &nonce, n, sizeof(n));
    vec_bytes_free(&sec);
    vec_bytes_free(&ct);
    vec_bytes_free(&key);
    vec_bytes_free(&nonce);
    return ok;
}

static bool check_key(const json_t *g, const char *kname, const char *nname,
                      const struct mls_ks_key *k)
{
    struct vec_bytes key = {0}, nonce = {0};
    bool ok = vec_hex(g, kname, &key) && vec_hex(g, nname, &nonce) &&
              vec_eq(kname, &key, k->key, sizeof(k->key)) &&
              vec_eq(nname, &nonce, k->nonce, sizeof(k->nonce));
    vec_bytes_free(&key);
    vec_bytes_free(&nonce);
    return ok;
}

/* Sender side: step the ratchet up to generation gen. */
static int step_to(struct mls_ks_tree *t, uint32_t leaf, enum mls_ks_ratchet which, uint32_t gen,
                   struct mls_ks_key *k)
{
    int rc;
    do {
        rc = mls_ks_tree_next_key(t, leaf, which, k);
    } while (rc == 0 && k->generation < gen);
    return rc == 0 && k->generation == gen ? 0 : ERR_INTERNAL;
}

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    const json_t *leaves = json_object_get(e, "leaves");
    uint32_t n_leaves = (uint32_t)json_array_size(leaves);
    struct vec_bytes enc = {0};
    struct mls_ks_tree *rx = NULL, *tx = NULL;
    bool ok = check_sender_data(json_object_get(e, "sender_data")) &&
              vec_hex(e, "encryption_secret", &enc) && enc.len == MLS_KS_NH &&
              mls_ks_tree_new(enc.p, n_leaves, &rx) == 0 &&
              mls_ks_tree_new(enc.p, n_leaves, &tx) == 0;
    size_t leaf, j;
    json_t *gens, *g;

    json_array_foreach(leaves, leaf, gens) {
        json_array_foreach(gens, j, g) {
            uint32_t gen = (uint32_t)vec_uint(g, "generation");
            struct mls_ks_key k;
            if (!ok)
                break;
            ok = mls_ks_tree_key(rx, (uint32_t)leaf, MLS_KS_HANDSHAKE, gen, &k) == 0 &&
                 k.generation == gen && check_key(g, "handshake_key", "handshake_nonce", &k);
            ok = ok && mls_ks_tree_key(rx, (uint32_t)leaf, MLS_KS_APPLICATION, gen, &k) == 0 &&
                 check_key(g, "application_key", "application_nonce", &k);
            ok = ok && step_to(tx, (uint32_t)leaf, MLS_KS_HANDSHAKE, gen, &k) == 0 &&
                 check_key(g, "handshake_key", "handshake_nonce", &k);
            ok = ok && step_to(tx, (uint32_t)leaf, MLS_KS_APPLICATION, gen, &k) == 0 &&
                 check_key(g, "application_key", "application_nonce", &k);
            /* Each key is handed out once. */
            ok = ok && mls_ks_tree_key(rx, (uint32_t)leaf, MLS_KS_HANDSHAKE, gen, &k) == ERR_BADSTATE;
            mls_ks_key_wipe(&k);
        }
    }
    mls_ks_tree_free(rx);
    mls_ks_tree_free(tx);
    vec_bytes_free(&enc);
    return ok;
}

static void secret_tree_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/secret-tree.json", "secret-tree.json", VEC_SUITE_3, check_entry, NULL), 0);
}

static void out_of_order_window(void **state)
{
    (void)state;
    uint8_t secret[MLS_KS_NH];
    struct mls_ks_tree *tx = NULL, *rx = NULL;
    struct mls_ks_key sent[12], k;

    crypto_random(secret, sizeof(secret));
    assert_int_equal(mls_ks_tree_new(secret, 3, &rx), ERR_INVALID);
    assert_null(rx);
    assert_int_equal(mls_ks_tree_new(secret, 0, &rx), ERR_INVALID);
    assert_int_equal(mls_ks_tree_new(secret, 4, &tx), 0);
    assert_int_equal(mls_ks_tree_new(secret, 4, &rx), 0);
    for (uint32_t g = 0; g < 12; g++) {
        assert_int_equal(mls_ks_tree_next_key(tx, 2, MLS_KS_APPLICATION, &sent[g]), 0);
        assert_int_equal(sent[g].generation, g);
    }
    /* Receive 5 first, then 2, 0, 5 again (refused), 11, 7. */
    static const uint32_t order[] = {5, 2, 0, 11, 7, 1, 3, 4, 6, 8, 9, 10};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        uint32_t g = order[i];
        assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, g, &k), 0);
        assert_memory_equal(k.key, sent[g].key, sizeof(k.key));
        assert_memory_equal(k.nonce, sent[g].nonce, sizeof(k.nonce));
        assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, g, &k), ERR_BADSTATE);
    }
    /* Handshake and application ratchets are independent; so are leaves. */
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_HANDSHAKE, 0, &k), 0);
    assert_memory_not_equal(k.key, sent[0].key, sizeof(k.key));
    assert_int_equal(mls_ks_tree_key(rx, 3, MLS_KS_APPLICATION, 0, &k), 0);
    assert_memory_not_equal(k.key, sent[0].key, sizeof(k.key));
    /* Leaf out of range, bad ratchet. */
    assert_int_equal(mls_ks_tree_key(rx, 4, MLS_KS_APPLICATION, 0, &k), ERR_INVALID);
    assert_int_equal(mls_ks_tree_next_key(rx, 0, (enum mls_ks_ratchet)7, &k), ERR_INVALID);

    /* Forward jump limit: from generation 12, 12 + MAX_FORWARD is fine, one
     * more is not. */
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, 12 + MLS_KS_MAX_FORWARD + 1, &k),
                     ERR_LIMIT);
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, 12 + MLS_KS_MAX_FORWARD, &k), 0);
    /* Generation 12 was skipped and is still kept (it is inside the window). */
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, 12, &k), 0);
    /* Step further; generation 13 falls out of the window and is dropped. */
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, 14 + MLS_KS_WINDOW, &k), 0);
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, 13, &k), ERR_BADSTATE);
    assert_int_equal(mls_ks_tree_key(rx, 2, MLS_KS_APPLICATION, 14, &k), 0);
    mls_ks_key_wipe(&k);
    for (size_t i = 0; i < 12; i++)
        mls_ks_key_wipe(&sent[i]);
    mls_ks_tree_free(tx);
    mls_ks_tree_free(rx);
    mls_ks_tree_free(NULL);
}

/* Fill the skipped-key pool past its maximum on many ratchets: the oldest
 * keys go first, and nothing leaks (run under ASan). */
static void skipped_pool_bound(void **state)
{
    (void)state;
    uint8_t secret[MLS_KS_NH] = {7};
    struct mls_ks_tree *rx = NULL;
    struct mls_ks_key k;

    assert_int_equal(mls_ks_tree_new(secret, 8, &rx), 0);
    /* 8 leaves x 2 ratchets x 999 skipped = 15984 > MLS_KS_MAX_SKIPPED. */
    for (uint32_t leaf = 0; leaf < 8; leaf++) {
        assert_int_equal(mls_ks_tree_key(rx, leaf, MLS_KS_HANDSHAKE, 999, &k), 0);
        assert_int_equal(mls_ks_tree_key(rx, leaf, MLS_KS_APPLICATION, 999, &k), 0);
    }
    /* The earliest skipped keys were dropped; the latest are there. */
    assert_int_equal(mls_ks_tree_key(rx, 0, MLS_KS_HANDSHAKE, 0, &k), ERR_BADSTATE);
    assert_int_equal(mls_ks_tree_key(rx, 7, MLS_KS_APPLICATION, 998, &k), 0);
    mls_ks_key_wipe(&k);
    mls_ks_tree_free(rx);
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secret_tree_vectors),
        cmocka_unit_test(out_of_order_window),
        cmocka_unit_test(skipped_pool_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
