/* err.c: names of the shared error codes (see err.h). */
#include "err.h"

const char *err_str(int code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_NOMEM: return "nomem";
    case ERR_MALFORMED: return "malformed";
    case ERR_TOO_BIG: return "too_big";
    case ERR_CRYPTO: return "crypto";
    case ERR_INVALID: return "invalid";
    case ERR_UNSUPPORTED: return "unsupported";
    case ERR_BADSTATE: return "state";
    case ERR_NOT_FOUND: return "not_found";
    case ERR_DENIED: return "denied";
    case ERR_IO: return "io";
    case ERR_EXPIRED: return "expired";
    case ERR_CONFLICT: return "conflict";
    case ERR_LIMIT: return "limit";
    case ERR_INTERNAL: return "internal";
    default: return "unknown";
    }
}
