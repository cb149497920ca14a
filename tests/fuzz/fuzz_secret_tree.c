/* fuzz_secret_tree.c: libFuzzer target for the secret tree's ratchets and
 * out-of-order window (mls_ks_tree_*). The input is a script:
 *
 * | bytes | meaning                                                     |
 * |-------|-------------------------------------------------------------|
 * | 1     | n_leaves = 1 << (b % 4)                                     |
 * | 4 * k | ops: [flags][leaf][gen hi][gen lo], at most MAX_OPS         |
 *
 * flags bit 0 picks the ratchet; bit 1 makes it a sender step
 * (mls_ks_tree_next_key) instead of a receiver request for generation
 * gen % (MLS_KS_MAX_FORWARD + 1). Invariants checked (abort on failure):
 * a key handed out equals the one a fresh tree derives for that leaf,
 * ratchet and generation; no receiver key is handed out twice. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_ks.h"

#define MAX_OPS 48
#define MAX_GEN (MLS_KS_MAX_FORWARD + 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[MLS_KS_NH] = {0x5a, 0x17, 0x99};

/* The key of (leaf, which, gen) from a fresh tree. */
static void oracle(uint32_t n_leaves, uint32_t leaf, enum mls_ks_ratchet which, uint32_t gen,
                   struct mls_ks_key *k)
{
    struct mls_ks_tree *t = NULL;
    if (mls_ks_tree_new(SECRET, n_leaves, &t) != 0 ||
        mls_ks_tree_key(t, leaf, which, gen, k) != 0)
        abort();
    mls_ks_tree_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_ks_tree *rx = NULL, *tx = NULL;
    static uint8_t seen[8][2][MAX_GEN];
    uint32_t n_leaves;
    size_t ops = 0;

    if (size < 1 || crypto_init() != 0)
        return 0;
    n_leaves = 1u << (data[0] % 4);
    memset(seen, 0, sizeof(seen));
    if (mls_ks_tree_new(SECRET, n_leaves, &rx) != 0 || mls_ks_tree_new(SECRET, n_leaves, &tx) != 0)
        abort();
    for (size_t off = 1; off + 4 <= size && ops < MAX_OPS; off += 4, ops++) {
        enum mls_ks_ratchet which = (data[off] & 1) ? MLS_KS_APPLICATION : MLS_KS_HANDSHAKE;
        uint32_t leaf = data[off + 1];
        uint32_t gen = (((uint32_t)data[off + 2] << 8) | data[off + 3]) % MAX_GEN;
        struct mls_ks_key k, want;

        memset(&want, 0, sizeof(want));
        int rc;

        if (data[off] & 2) {
            rc = mls_ks_tree_next_key(tx, leaf, which, &k);
            if (leaf >= n_leaves) {
                if (rc != ERR_INVALID)
                    abort();
                continue;
            }
            if (rc != 0)
                abort();
            if (k.generation < MAX_GEN) {
                oracle(n_leaves, leaf, which, k.generation, &want);
                if (memcmp(&k, &want, sizeof(k)) != 0)
                    abort();
            }
        } else {
            rc = mls_ks_tree_key(rx, leaf, which, gen, &k);
            if (leaf >= n_leaves) {
                if (rc != ERR_INVALID)
                    abort();
                continue;
            }
            if (rc == 0) {
                if (seen[leaf][which][gen] || k.generation != gen)
                    abort();
                seen[leaf][which][gen] = 1;
                oracle(n_leaves, leaf, which, gen, &want);
                if (memcmp(&k, &want, sizeof(k)) != 0)
                    abort();
            } else if (rc != ERR_STATE && rc != ERR_LIMIT) {
                /* ERR_STATE: used or out of the window; ERR_LIMIT: too far
                 * ahead. Anything else is a bug. */
                abort();
            }
        }
        mls_ks_key_wipe(&k);
        mls_ks_key_wipe(&want);
    }
    mls_ks_tree_free(rx);
    mls_ks_tree_free(tx);
    return 0;
}
