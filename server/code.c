/* code.c: one-time code generation and hashing (see code.h). */
#include "code.h"

#include <sodium.h>
#include <string.h>

#include "err.h"

void code_new(char shown[CODE_SHOWN + 1], uint8_t hash[32])
{
    const size_t n = sizeof(CODE_ALPHABET) - 1;
    char raw[CODE_CHARS];
    size_t o = 0;
    for (size_t i = 0; i < CODE_CHARS; i++) {
        raw[i] = CODE_ALPHABET[randombytes_uniform((uint32_t)n)];
        if (i && i % 5 == 0)
            shown[o++] = '-';
        shown[o++] = raw[i];
    }
    shown[o] = 0;
    crypto_hash_sha256(hash, (const uint8_t *)raw, CODE_CHARS);
    sodium_memzero(raw, sizeof(raw));
}

int code_hash(const char *in, size_t len, uint8_t hash[32])
{
    char raw[CODE_CHARS];
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '-' || ch == ' ')
            continue;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch == 0 || !strchr(CODE_ALPHABET, ch) || n == CODE_CHARS) {
            rc = ERR_INVALID;
            goto out;
        }
        raw[n++] = ch;
    }
    if (n != CODE_CHARS) {
        rc = ERR_INVALID;
        goto out;
    }
    crypto_hash_sha256(hash, (const uint8_t *)raw, CODE_CHARS);
out:
    sodium_memzero(raw, sizeof(raw));
    return rc;
}
