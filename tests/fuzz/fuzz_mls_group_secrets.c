/* fuzz_mls_group_secrets.c: mls_group_secrets_parse -> encode -> compare (see
 * mls_fuzz_roundtrip.h). */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_group_secrets x;
    if (mls_group_secrets_parse(data, size, &x) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(group_secrets, &x, data, size);
    mls_group_secrets_free(&x);
    return 0;
}
