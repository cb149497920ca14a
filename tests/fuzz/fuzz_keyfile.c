/*
 * fuzz_keyfile.c: the key file decoder. Parses arbitrary bytes with
 * keyfile_parse() and, for images that parse, opens them with a fixed AEAD
 * key (argon2id itself is skipped: it is slow by design and not a decoder).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = {7};
    struct keyfile_info info;
    uint8_t seed[32];

    if (keyfile_parse(data, size, &info) != 0)
        return 0;
    if (keyfile_open_with_key(&info, key, seed) == 0) {
        /* a successful open must reproduce a consistent image */
        uint8_t img[KEYFILE_ENC_LEN];
        size_t len = 0;
        if (!(info.flags & KEYFILE_FLAG_ENCRYPTED) &&
            (keyfile_encode(info.kind, seed, NULL, 0, 0, img, &len) != 0 || len != size ||
             memcmp(img, data, size) != 0))
            __builtin_trap();
    }
    return 0;
}
