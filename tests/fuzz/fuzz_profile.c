/*
 * fuzz_profile.c: the client's profile.json decoder
 * (client_profile_parse). Whatever decodes must hold NUL-terminated
 * fields that fit their buffers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct client_profile p;

    if (client_profile_parse((const char *)data, size, &p) == 0) {
        if (strnlen(p.server, sizeof(p.server)) == sizeof(p.server) ||
            strnlen(p.id, sizeof(p.id)) == sizeof(p.id) ||
            strnlen(p.device, sizeof(p.device)) == sizeof(p.device) ||
            strnlen(p.domain, sizeof(p.domain)) == sizeof(p.domain) ||
            strnlen(p.role, sizeof(p.role)) == sizeof(p.role))
            __builtin_trap();
    }
    return 0;
}
