/* fuzz_mls_group_process.c: libFuzzer target feeding arbitrary MLSMessages
 * to a member's group (mls_group_process), and the joining path
 * (mls_group_join). The input carries its own state, so seeds stay valid:
 *
 * | bytes | field                                                     |
 * |-------|-----------------------------------------------------------|
 * | 1     | mode: even = process, odd = join                          |
 * | 2     | length n of the state (big endian)                        |
 * | n     | process: a mls_group_save() state; join: a mls_kp_save()  |
 * | rest  | the MLSMessage (process) or Welcome (join)                |
 *
 * Seeds (seedgen_mls_group.c): application messages, proposals, commits
 * with and without paths, Welcomes, each with the state that accepts it.
 * On success of a commit the new state must still save and load. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_group.h"
#include "mls_kp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The group's new state round-trips. */
static void check_state(const struct mls_group *g)
{
    uint8_t *s = NULL;
    size_t n = 0;
    struct mls_group *g2 = NULL;
    if (mls_group_save(g, &s, &n) != 0)
        return;
    if (mls_group_load(s, n, MLS_GROUP_F_PLAIN_MEMORY, &g2) != 0)
        abort();
    mls_group_free(g2);
    crypto_wipe(s, n);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    if (size < 3 || crypto_init() != 0)
        return 0;
    n = (size_t)data[1] << 8 | data[2];
    if (size - 3 < n)
        return 0;
    const uint8_t *st = data + 3, *msg = data + 3 + n;
    size_t msg_len = size - 3 - n;
    if ((data[0] & 1) == 0) {
        struct mls_group *g = NULL;
        struct mls_group_event ev;
        if (mls_group_load(st, n, MLS_GROUP_F_PLAIN_MEMORY, &g) != 0)
            return 0;
        if (mls_group_process(g, msg, msg_len, 1700000000, &ev) == 0) {
            mls_group_event_reset(&ev);
            check_state(g);
        }
        mls_group_free(g);
    } else {
        struct mls_kp *kp = NULL;
        struct mls_group *g = NULL;
        if (mls_kp_load(st, n, &kp) != 0)
            return 0;
        if (mls_group_join(msg, msg_len, &kp, 1, NULL, 0, NULL, 0, NULL, 1700000000,
                           MLS_GROUP_F_PLAIN_MEMORY, &g) == 0) {
            check_state(g);
            mls_group_free(g);
        }
        mls_kp_free(kp);
    }
    return 0;
}
