/*
 * mls_ks_int.h: details shared by mls_ks.c and mls_ks_tree.c only.
 */
#ifndef SAMMEN_MLS_KS_INT_H
#define SAMMEN_MLS_KS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "mls_ks.h"

/* Lives in one sodium_malloc'd block. */
struct mls_ks_epoch {
    uint8_t s[MLS_KS_SECRET_COUNT][MLS_KS_NH];
    bool encryption_taken; /* a secret tree took encryption_secret */
    bool plain;            /* moved to plain malloc'd memory (still wiped) */
};

#endif
