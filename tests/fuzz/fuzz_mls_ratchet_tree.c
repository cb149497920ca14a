/* fuzz_mls_ratchet_tree.c: mls_ratchet_tree_parse -> encode -> compare (see
 * mls_fuzz_roundtrip.h). */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_ratchet_tree x;
    if (mls_ratchet_tree_parse(data, size, &x) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(ratchet_tree, &x, data, size);
    mls_ratchet_tree_free(&x);
    return 0;
}
