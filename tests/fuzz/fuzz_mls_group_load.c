/* fuzz_mls_group_load.c: libFuzzer target for the group state decoder
 * (mls_group_load). A state that loads must save back to the same bytes
 * (the format is canonical) and must then be usable: its epoch
 * authenticator, roster and GroupInfo are computed.
 *
 * Seeds: states of real groups (creator, joiners, after commits, with
 * pending proposals), made by seedgen_mls_group.c in this folder. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_group.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_group *g = NULL;
    uint8_t *out = NULL, ea[32];
    size_t len = 0, n = 0;

    if (crypto_init() != 0)
        return 0;
    if (mls_group_load(data, size, MLS_GROUP_F_PLAIN_MEMORY, &g) != 0)
        return 0;
    if (mls_group_save(g, &out, &len) != 0 || len != size || memcmp(out, data, size) != 0)
        abort();
    crypto_wipe(out, len);
    free(out);
    if (mls_group_epoch_authenticator(g, ea) != 0)
        abort();
    (void)mls_group_roster(g, NULL, 0, &n);
    if (mls_group_group_info(g, true, &out, &len) == 0)
        free(out);
    mls_group_free(g);
    return 0;
}
