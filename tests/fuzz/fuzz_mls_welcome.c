/* fuzz_mls_welcome.c: mls_welcome_parse -> encode -> compare (see
 * mls_fuzz_roundtrip.h). */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_welcome x;
    if (mls_welcome_parse(data, size, &x) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(welcome, &x, data, size);
    mls_welcome_free(&x);
    return 0;
}
