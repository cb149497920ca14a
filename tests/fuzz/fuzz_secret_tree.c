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
 * a key handed out equals the one a separate sender tree derives for that
 * leaf, ratchet and generation; no receiver key is handed out twice. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_ks.h"

#define MAX_OPS 24
#define MAX_GEN (MLS_KS_MAX_FORWARD + 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[MLS_KS_NH] = {0x5a, 0x17, 0x99};

/* The key of (leaf, which, gen), as a sender stepping a separate tree from
 * generation 0 derives it. Keys depend only on SECRET and the tree size, so
 * they are computed once per size and kept across inputs. */
struct oracle {
    struct mls_ks_tree *t;
    uint32_t count[8][2];
    struct mls_ks_key keys[8][2][MAX_GEN];
};

static struct oracle oracles[4];

static void oracle(uint32_t size_log, uint32_t leaf, enum mls_ks_ratchet which, uint32_t gen,
                   struct mls_ks_key *k)
{
    struct oracle *o = &oracles[size_log];
    if (o->t == NULL && mls_ks_tree_new(SECRET, 1u << size_log, &o->t) != 0)
        abort();
    while (o->count[leaf][which] <= gen) {
        struct mls_ks_key *dst = &o->keys[leaf][which][o->count[leaf][which]];
        if (mls_ks_tree_next_key(o->t, leaf, which, dst) != 0 ||
            dst->generation != o->count[leaf][which])
            abort();
        o->count[leaf][which]++;
    }
    *k = o->keys[leaf][which][gen];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_ks_tree *rx = NULL, *tx = NULL;
    static uint8_t seen[8][2][MAX_GEN];
    uint32_t n_leaves, size_log;
    size_t ops = 0;

    if (size < 1 || crypto_init() != 0)
        return 0;
    size_log = data[0] % 4u;
    n_leaves = 1u << size_log;
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
                oracle(size_log, leaf, which, k.generation, &want);
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
                oracle(size_log, leaf, which, gen, &want);
                if (memcmp(&k, &want, sizeof(k)) != 0)
                    abort();
            } else if (rc != ERR_BADSTATE && rc != ERR_LIMIT) {
                /* ERR_BADSTATE: used or out of the window; ERR_LIMIT: too far
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
