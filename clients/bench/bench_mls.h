/*
 * bench_mls.h: MLS helpers of the thread workloads (care, catchup,
 * fanout); see bench_mls.c for the marker format.
 */
#ifndef SAMMEN_BENCH_MLS_H
#define SAMMEN_BENCH_MLS_H

#include <stddef.h>
#include <stdint.h>

#include "msg_grant.h"

struct mls_extension_list;

#define BENCH_MARKER_LEN 8

/* The GroupContext extensions of a new thread: external_senders with one
 * ExternalSender (server_key, BasicCredential "server@" domain). ext is the
 * caller's (mls_extension_list_free). Returns 0, ERR_NOMEM, ERR_TOO_BIG. */
int bench_mls_server_ext(const char *domain, const uint8_t server_key[32],
                         struct mls_extension_list *ext);

/* A citizen-form grant (GrantTBS) of citizen for grantee with scope,
 * signed with the citizen's device seed. *tbs is the caller's (free()).
 * Returns 0 or the msg_grant_* error. */
int bench_mls_grant(const uint8_t seed[32], const char *citizen, const char *citizen_device,
                    const char *grantee, const char *scope, uint64_t now, uint8_t **tbs,
                    size_t *len, uint8_t sig[64]);

/* The authenticated_data marker of a bench message. */
void bench_mls_marker(uint16_t sender, uint32_t counter, uint8_t out[BENCH_MARKER_LEN]);

/* Reads the marker from an MLSMessage(PrivateMessage) without decrypting
 * it. Bounded: every length is checked against the bytes left. Returns 0,
 * ERR_MALFORMED (truncated), ERR_INVALID (not a PrivateMessage),
 * ERR_NOT_FOUND (no bench marker). */
int bench_mls_read_marker(const uint8_t *msg, size_t len, uint16_t *sender, uint32_t *counter);

/* A device's stock of unused KeyPackages in the bench profile
 * (PROFILE/kps/DEVICE): records of u32 length (big-endian, 1..65536) and
 * that many bytes of mls_kp_save() output. Calls fn(record, len, arg) for
 * each record until fn returns non-zero (that value is returned). Returns
 * 0, or ERR_MALFORMED for a truncated or oversized record (the records
 * before it were passed to fn). */
#define BENCH_KPFILE_MAX_RECORD 65536u
int bench_mls_kpfile_parse(const uint8_t *buf, size_t len,
                           int (*fn)(const uint8_t *rec, size_t n, void *arg), void *arg);

#endif
