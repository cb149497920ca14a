/* fuzz_mls_leaf_node.c: mls_leaf_node_parse -> encode -> compare (see
 * mls_fuzz_roundtrip.h). */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_leaf_node x;
    if (mls_leaf_node_parse(data, size, &x) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(leaf_node, &x, data, size);
    mls_leaf_node_free(&x);
    return 0;
}
