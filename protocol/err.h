/*
 * err.h: the one error enum shared by every Sammen module.
 *
 * Functions return int: 0 on success or a negative ERR_* value; results go
 * out through pointer arguments. err_str() names a code for logs and for the
 * "code" field of wire errors (stable strings: scripts depend on them).
 */
#ifndef SAMMEN_ERR_H
#define SAMMEN_ERR_H

enum err {
    ERR_OK = 0,
    ERR_NOMEM = -1,       /* allocation failed */
    ERR_MALFORMED = -2,   /* peer sent bytes that do not decode */
    ERR_TOO_BIG = -3,     /* a declared size or count exceeds a limit */
    ERR_CRYPTO = -4,      /* signature, MAC or AEAD check failed */
    ERR_INVALID = -5,     /* decodes, but violates a semantic rule */
    ERR_UNSUPPORTED = -6, /* valid, but not something we implement */
    ERR_BADSTATE = -7,    /* wrong epoch, wrong order, not logged in, ... */
    ERR_NOT_FOUND = -8,   /* no such identity, device, thread, code, ... */
    ERR_DENIED = -9,      /* authenticated, but not allowed */
    ERR_IO = -10,         /* disk or socket error */
    ERR_EXPIRED = -11,    /* code, challenge or grant past its time */
    ERR_CONFLICT = -12,   /* already exists / already used / lost a race */
    ERR_LIMIT = -13,      /* rate limit or quota reached */
    ERR_INTERNAL = -14,   /* a bug or an unexpected library failure */
};

/* Stable lower-case name of an error code ("malformed", "denied", ...).
 * Never NULL; unknown codes give "unknown". */
const char *err_str(int code);

#endif
