/*
 * strhash.h: the one string hash of the server's in-memory tables (thread
 * ids, device ids): FNV-1a over the bytes up to the NUL, the high half
 * folded into the low one, since every table masks the low bits.
 */
#ifndef SAMMEN_STRHASH_H
#define SAMMEN_STRHASH_H

#include <stddef.h>
#include <stdint.h>

static inline size_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32));
}

#endif
