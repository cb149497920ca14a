/* fuzz_mls_kp_load.c: libFuzzer target for the private KeyPackage store
 * decoder (mls_kp_load): anything that loads saves back byte for byte.
 * Seeds from seedgen_mls_group.c. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "mls_kp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_kp *kp = NULL;
    uint8_t *out = NULL;
    size_t len = 0;
    if (crypto_init() != 0 || mls_kp_load(data, size, &kp) != 0)
        return 0;
    if (mls_kp_save(kp, &out, &len) != 0 || len != size || memcmp(out, data, size) != 0)
        abort();
    crypto_wipe(out, len);
    free(out);
    mls_kp_free(kp);
    return 0;
}
