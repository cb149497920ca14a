/* fuzz_cfg.c: libFuzzer target for the server's config parser
 * (cfg_load_text) and the validation that follows it. */
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg c;
    char err[256];
    cfg_defaults(&c);
    if (cfg_load_text(&c, (const char *)data, size, "fuzz", err, sizeof(err)) == 0)
        (void)cfg_validate(&c, err, sizeof(err));
    return 0;
}
