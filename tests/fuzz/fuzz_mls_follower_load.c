/* fuzz_mls_follower_load.c: libFuzzer target for mls_follower_load (the
 * server's saved group state). Whatever loads must save again to the same
 * bytes. Seeds: tests/mls/test_follower_save.c with SAMMEN_WRITE_CORPUS. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "mls_follower.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (crypto_init() != 0)
            abort();
        init = 1;
    }
    struct mls_follower *f = NULL;
    if (mls_follower_load(data, size, &f) != 0)
        return 0;
    uint8_t *out = NULL;
    size_t len = 0;
    if (mls_follower_save(f, &out, &len) != 0 || len != size || memcmp(out, data, size) != 0)
        abort();
    free(out);
    mls_follower_free(f);
    return 0;
}
