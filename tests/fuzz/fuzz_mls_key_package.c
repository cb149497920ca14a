/* fuzz_mls_key_package.c: mls_key_package_parse -> encode -> compare (see
 * mls_fuzz_roundtrip.h). */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_key_package x;
    if (mls_key_package_parse(data, size, &x) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(key_package, &x, data, size);
    mls_key_package_free(&x);
    return 0;
}
