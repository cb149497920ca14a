/*
 * mls_fuzz_roundtrip.h: shared body of the fuzz_mls_*.c targets. Each target
 * parses arbitrary bytes with one mls_<type>_parse() entry point; whatever
 * parses must re-encode to exactly the input (the codec is strict and
 * canonical), and is then freed (leaks show up under ASan). A mismatch
 * traps, so libFuzzer reports it as a crash.
 */
#ifndef SAMMEN_MLS_FUZZ_ROUNDTRIP_H
#define SAMMEN_MLS_FUZZ_ROUNDTRIP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mls_struct.h"
#include "tls.h"

/* Re-encodes x with mls_<name>_encode and traps unless it equals data. */
#define MLS_FUZZ_CHECK_ROUNDTRIP(name, x, data, size)                          \
    do {                                                                       \
        struct tls_writer w_;                                                  \
        tls_writer_init(&w_, 0);                                               \
        mls_##name##_encode(&w_, (x));                                         \
        if (tls_writer_error(&w_) != 0 || w_.len != (size) ||                  \
            ((size) && memcmp(w_.buf, (data), (size)) != 0))                   \
            __builtin_trap();                                                  \
        tls_writer_reset(&w_);                                                 \
    } while (0)

#endif
