/*
 * bench_mls.c: the MLS pieces of the thread workloads (bench_mls.h):
 * the thread's GroupContext extension naming the server as external
 * sender, signed consent grants, and the bench's marker in an application
 * message's authenticated_data.
 *
 * Marker: bench devices do not decrypt application messages (the server's
 * cost is the same), so what a receiver needs — which member sent it and
 * its per-sender counter — travels in PrivateMessage.authenticated_data,
 * which is authenticated (signed and AEAD-bound) but readable without the
 * keys:
 *   | bytes | field                        |
 *   |-------|------------------------------|
 *   | 2     | "SB"                         |
 *   | 2     | sender: member index (u16)   |
 *   | 4     | counter: per sender (u32)    |
 * The receiver reads it from the message header (RFC 9420 §6.3.2):
 *   MLSMessage { u16 version = 1; u16 wire_format = 2 (private);
 *                opaque group_id<V>; u64 epoch; u8 content_type;
 *                opaque authenticated_data<V>; ... }
 */
#include "bench_mls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_struct.h"
#include "tls.h"

int bench_mls_server_ext(const char *domain, const uint8_t server_key[32],
                         struct mls_extension_list *ext)
{
    struct mls_external_senders es;
    struct tls_writer tw;
    char cred[200];
    int rc;

    memset(&es, 0, sizeof(es));
    memset(ext, 0, sizeof(*ext));
    if ((size_t)snprintf(cred, sizeof(cred), "server@%s", domain) >= sizeof(cred))
        return ERR_TOO_BIG;
    es.v = calloc(1, sizeof(*es.v));
    if (!es.v)
        return ERR_NOMEM;
    es.n = 1;
    es.v[0].credential.credential_type = MLS_CREDENTIAL_BASIC;
    rc = mls_bytes_set(&es.v[0].signature_key, server_key, 32);
    if (rc == 0)
        rc = mls_bytes_set(&es.v[0].credential.identity, (const uint8_t *)cred, strlen(cred));
    if (rc != 0) {
        mls_external_senders_free(&es);
        return rc;
    }
    tls_writer_init(&tw, 0);
    mls_external_senders_encode(&tw, &es);
    mls_external_senders_free(&es);
    rc = tls_writer_error(&tw);
    if (rc == 0) {
        ext->v = calloc(1, sizeof(*ext->v));
        if (!ext->v)
            rc = ERR_NOMEM;
    }
    if (rc == 0) {
        ext->n = 1;
        ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
        rc = mls_bytes_set(&ext->v[0].extension_data, tw.buf, tw.len);
    }
    tls_writer_reset(&tw);
    if (rc != 0)
        mls_extension_list_free(ext);
    return rc;
}

int bench_mls_grant(const uint8_t seed[32], const char *citizen, const char *citizen_device,
                    const char *grantee, const char *scope, uint64_t now, uint8_t **tbs,
                    size_t *len, uint8_t sig[64])
{
    struct msg_grant *g = malloc(sizeof(*g)); /* ~3 KiB: not on the stack */
    int rc;

    *tbs = NULL;
    if (!g)
        return ERR_NOMEM;
    msg_grant_init(g);
    snprintf(g->citizen, sizeof(g->citizen), "%s", citizen);
    snprintf(g->grantee, sizeof(g->grantee), "%s", grantee);
    snprintf(g->scope, sizeof(g->scope), "%s", scope);
    snprintf(g->basis, sizeof(g->basis), "consent");
    snprintf(g->purpose, sizeof(g->purpose), "sammen-bench load test");
    g->issued_at = now;
    g->expires_at = 0;
    g->form = MSG_GRANT_FORM_CITIZEN;
    snprintf(g->granter, sizeof(g->granter), "%s", citizen);
    snprintf(g->granter_device, sizeof(g->granter_device), "%s", citizen_device);
    rc = msg_grant_encode(g, tbs, len);
    if (rc == 0)
        rc = msg_grant_sign(seed, *tbs, *len, sig);
    if (rc != 0) {
        free(*tbs);
        *tbs = NULL;
    }
    free(g);
    return rc;
}

void bench_mls_marker(uint16_t sender, uint32_t counter, uint8_t out[BENCH_MARKER_LEN])
{
    out[0] = 'S';
    out[1] = 'B';
    out[2] = (uint8_t)(sender >> 8);
    out[3] = (uint8_t)sender;
    out[4] = (uint8_t)(counter >> 24);
    out[5] = (uint8_t)(counter >> 16);
    out[6] = (uint8_t)(counter >> 8);
    out[7] = (uint8_t)counter;
}

int bench_mls_read_marker(const uint8_t *msg, size_t len, uint16_t *sender, uint32_t *counter)
{
    struct tls_reader r;
    uint16_t version, wf;
    uint64_t epoch;
    uint8_t ct;
    const uint8_t *gid, *ad;
    size_t gl, al;
    int rc;

    tls_reader_init(&r, msg, len);
    rc = tls_read_u16(&r, &version);
    if (rc == 0)
        rc = tls_read_u16(&r, &wf);
    if (rc != 0)
        return ERR_MALFORMED;
    if (version != 1 || wf != 2)
        return ERR_INVALID; /* not an MLS 1.0 PrivateMessage */
    rc = tls_read_opaque(&r, &gid, &gl);
    if (rc == 0)
        rc = tls_read_u64(&r, &epoch);
    if (rc == 0)
        rc = tls_read_u8(&r, &ct);
    if (rc == 0)
        rc = tls_read_opaque(&r, &ad, &al);
    if (rc != 0)
        return ERR_MALFORMED;
    if (al != BENCH_MARKER_LEN || ad[0] != 'S' || ad[1] != 'B')
        return ERR_NOT_FOUND; /* not a bench message */
    *sender = (uint16_t)((unsigned)ad[2] << 8 | ad[3]);
    *counter = (uint32_t)ad[4] << 24 | (uint32_t)ad[5] << 16 | (uint32_t)ad[6] << 8 | ad[7];
    return 0;
}

int bench_mls_kpfile_parse(const uint8_t *buf, size_t len,
                           int (*fn)(const uint8_t *rec, size_t n, void *arg), void *arg)
{
    size_t off = 0;

    while (off < len) {
        size_t n;
        int rc;
        if (len - off < 4)
            return ERR_MALFORMED;
        n = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 | (size_t)buf[off + 2] << 8 |
            buf[off + 3];
        off += 4;
        if (n == 0 || n > BENCH_KPFILE_MAX_RECORD || n > len - off)
            return ERR_MALFORMED;
        rc = fn(buf + off, n, arg);
        if (rc != 0)
            return rc;
        off += n;
    }
    return 0;
}
