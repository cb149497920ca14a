/* fuzz_msg_grant.c: libFuzzer target for the GrantTBS, RevocationTBS,
 * ProxyRegistrationTBS, ProxyEndTBS and BreakglassTBS decoders
 * (protocol/msg_grant.c). Whatever decodes must re-encode to the same bytes
 * (the encoding is canonical). The first input byte selects the decoder:
 * odd revocation; else (b & 7) == 2 proxy registration, 4 break-glass,
 * 6 proxy end, 0 grant. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "msg_grant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (sodium_init() < 0)
            abort();
        init = 1;
    }
    if (size < 1)
        return 0;
    uint8_t *out = NULL;
    size_t len = 0;
    if ((data[0] & 7) == 6) {
        struct msg_proxy_end *p = malloc(sizeof(*p));
        if (!p)
            return 0;
        if (msg_proxy_end_decode(data + 1, size - 1, p) == 0) {
            if (msg_proxy_end_encode(p, &out, &len) != 0 || len != size - 1 ||
                memcmp(out, data + 1, len) != 0 || !msg_proxy_reg_id_valid(p->registration))
                abort();
        }
        free(p);
    } else if ((data[0] & 7) == 4) {
        struct msg_breakglass *b = malloc(sizeof(*b));
        if (!b)
            return 0;
        if (msg_breakglass_decode(data + 1, size - 1, b) == 0) {
            if (msg_breakglass_encode(b, &out, &len) != 0 || len != size - 1 ||
                memcmp(out, data + 1, len) != 0 || b->hours < 1 || b->hours > 72)
                abort();
        }
        free(b);
    } else if ((data[0] & 3) == 2) {
        struct msg_proxy_reg *p = malloc(sizeof(*p));
        if (!p)
            return 0;
        if (msg_proxy_reg_decode(data + 1, size - 1, p) == 0) {
            if (msg_proxy_reg_encode(p, &out, &len) != 0 || len != size - 1 ||
                memcmp(out, data + 1, len) != 0)
                abort();
        }
        free(p);
    } else if (data[0] & 1) {
        struct msg_revocation v;
        if (msg_revocation_decode(data + 1, size - 1, &v) == 0) {
            if (msg_revocation_encode(&v, &out, &len) != 0 || len != size - 1 ||
                memcmp(out, data + 1, len) != 0)
                abort();
        }
    } else {
        struct msg_grant *g = malloc(sizeof(*g));
        if (!g)
            return 0;
        if (msg_grant_decode(data + 1, size - 1, g) == 0) {
            if (msg_grant_encode(g, &out, &len) != 0 || len != size - 1 ||
                memcmp(out, data + 1, len) != 0)
                abort();
            char gid[MSG_GRANT_GID_LEN + 1];
            uint8_t sig[64] = {0};
            msg_grant_id(out, len, sig, gid);
            if (!msg_grant_id_valid(gid))
                abort();
        }
        free(g);
    }
    free(out);
    return 0;
}
