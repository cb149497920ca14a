/* fuzz_wire.c: libFuzzer target for the envelope decoder (wire_decode and
 * the getters a handler would call on what it returns). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_msg m;
    int rc = wire_decode(data, size, &m);
    if (rc == 0) {
        const char *s;
        size_t len;
        const uint8_t *b;
        uint64_t u;
        bool bv;
        char buf[65];
        struct wire_array a;
        struct wire_map sub;
        (void)wire_get_str(&m.body, "name", &s, &len);
        (void)wire_get_cstr(&m.body, "code", buf, sizeof(buf));
        (void)wire_get_bin(&m.body, "sig", &b, &len);
        (void)wire_get_uint(&m.body, "time", &u);
        (void)wire_get_bool(&m.body, "revoked", &bv);
        if (wire_get_array(&m.body, "devices", &a) == 0) {
            for (uint32_t i = 0; i < a.n; i++) {
                if (wire_array_map(&a, i, &sub) == 0)
                    (void)wire_get_str(&sub, "device", &s, &len);
                else
                    (void)wire_array_str(&a, i, &s, &len);
            }
        }
        /* re-encode the envelope head and decode it again */
        struct wire_enc e;
        const uint8_t *out;
        size_t olen;
        wire_enc_init(&e);
        if (m.kind == WIRE_REQUEST)
            wire_enc_request(&e, m.id, m.name, 0);
        else if (m.kind == WIRE_NOTE)
            wire_enc_note(&e, m.name, 0);
        else if (m.kind == WIRE_EVENT)
            wire_enc_event(&e, m.name, 0);
        else
            wire_enc_ok(&e, m.id, 0);
        if (wire_enc_finish(&e, &out, &olen) == 0) {
            struct wire_msg m2;
            if (wire_decode(out, olen, &m2) != 0)
                __builtin_trap();
            if (m2.kind != m.kind || m2.id != m.id)
                __builtin_trap();
            wire_msg_free(&m2);
        }
        wire_enc_reset(&e);
    }
    wire_msg_free(&m);
    return 0;
}
