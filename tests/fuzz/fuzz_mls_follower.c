/*
 * fuzz_mls_follower.c: the delivery service's group follower fed hostile
 * handshakes.
 *
 * Input (all lengths big-endian uint16):
 *   len, GroupInfo MLSMessage | len, ratchet tree (0: from the GroupInfo) |
 *   then any number of: len, MLSMessage
 * The follower is created from the first two; each message is handled (at a
 * fixed `now`). After every accepted message the state must be consistent:
 * the tree re-encodes and re-decodes to the tree hash in the GroupContext,
 * and roster/pending listings work. An external Remove is attempted with a
 * key that is not the group's external sender (must be refused).
 * Seeds (corpus/mls_follower/): for entries of passive-client-handling-
 * commit.json (commit_*), interop-passive/external_proposals.json
 * (extprop_*), interop-passive/external_join.json (extjoin_*: external
 * commits) and passive-client-welcome.json (welcome_*), the GroupInfo
 * opened from the entry's Welcome (re-encoded as an MLSMessage), the
 * out-of-band tree if any, then every epoch's proposals and commit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_follower.h"
#include "mls_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW UINT64_C(1700000000)

static bool take(const uint8_t **p, size_t *left, const uint8_t **out, size_t *len)
{
    if (*left < 2)
        return false;
    size_t n = (size_t)(*p)[0] << 8 | (*p)[1];
    if (*left - 2 < n)
        return false;
    *out = *p + 2;
    *len = n;
    *p += 2 + n;
    *left -= 2 + n;
    return true;
}

static void check_state(const struct mls_follower *f)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    struct mls_tree *t = NULL;
    uint8_t a[MLS_TREE_HASH_LEN], b[MLS_TREE_HASH_LEN];
    if (mls_follower_tree(f, &enc, &len) != 0)
        return;
    mls_follower_tree_hash(f, a);
    if (mls_tree_decode(enc, len, &t) != 0 || mls_tree_node_hash(t, mls_tree_root(t), b) != 0 ||
        memcmp(a, b, sizeof(a)) != 0)
        abort();
    mls_tree_free(t);
    free(enc);
    struct mls_roster_entry r[4];
    size_t n = 0;
    int rc = mls_follower_roster(f, r, 4, &n);
    if (rc != 0 && rc != ERR_TOO_BIG)
        abort();
    struct mls_follower_pending p[4];
    rc = mls_follower_pending(f, p, 4, &n);
    if (rc != 0 && rc != ERR_TOO_BIG)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *gi, *tree, *msg;
    size_t gi_len, tree_len, msg_len;
    struct mls_follower *f = NULL;
    if (crypto_init() != 0)
        abort();
    if (!take(&data, &size, &gi, &gi_len) || !take(&data, &size, &tree, &tree_len))
        return 0;
    if (mls_follower_new(gi, gi_len, tree_len ? tree : NULL, tree_len, &f) != 0)
        return 0;
    check_state(f);
    while (take(&data, &size, &msg, &msg_len)) {
        uint8_t before[MLS_TREE_HASH_LEN], after[MLS_TREE_HASH_LEN];
        uint64_t epoch = mls_follower_epoch(f);
        mls_follower_tree_hash(f, before);
        int ev = 0;
        int rc = mls_follower_handle(f, msg, msg_len, NOW, &ev);
        mls_follower_tree_hash(f, after);
        if (rc != 0 || ev == MLS_FOLLOWER_PROPOSAL) {
            /* Refused messages and proposals change neither epoch nor tree. */
            if (mls_follower_epoch(f) != epoch || memcmp(before, after, sizeof(before)) != 0)
                abort();
        } else if (mls_follower_epoch(f) != epoch + 1) {
            abort();
        }
        if (rc == 0)
            check_state(f);
    }
    static const uint8_t not_the_server[32] = {1};
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = mls_follower_external_remove(f, 0, not_the_server, 0, &out, &out_len);
    if (rc == 0)
        abort(); /* the seeds' external senders never have this key */
    free(out);
    mls_follower_free(f);
    return 0;
}
