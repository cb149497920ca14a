/*
 * audit.h: the append-only, hash-chained audit log (table `audit`).
 *
 * Row hash = SHA-256(previous row's hash || canonical row bytes); the first
 * row's previous hash is 32 zero bytes. Canonical row bytes:
 *   | field   | encoding                                  |
 *   |---------|-------------------------------------------|
 *   | tag     | "sammen-audit-v1" (15 bytes)              |
 *   | seq     | u64 big-endian                            |
 *   | time    | u64 big-endian (unix seconds)             |
 *   | actor   | u32 BE length + UTF-8 bytes               |
 *   | action  | u32 BE length + bytes                     |
 *   | subject | u32 BE length + bytes                     |
 *   | detail  | u32 BE length + bytes                     |
 * Never put secrets, codes or signatures in an audit row.
 */
#ifndef SAMMEN_AUDIT_H
#define SAMMEN_AUDIT_H

#include <stdint.h>

#include "store.h"

/* Appends a row (inside the caller's transaction). actor: who (identity,
 * or "peer:ADDR" before login); action e.g. "enroll", "login_fail";
 * subject: what it applies to; detail: short reason. Over-long fields are
 * refused (ERR_TOO_BIG). Returns 0 or ERR_*. */
int audit_append(struct store *st, uint64_t now, const char *actor, const char *action,
                 const char *subject, const char *detail);

/* Recomputes the chain. Returns 0 with *bad_seq = 0 when intact; 0 with
 * *bad_seq = the first broken row's seq (and *rows = rows checked) when
 * not; ERR_* on a read failure. */
int audit_verify(struct store *st, int64_t *bad_seq, int64_t *rows);

/* The hash of one row given the previous hash (exposed for tests). */
void audit_row_hash(const struct store_audit *r, const uint8_t prev[32], uint8_t out[32]);

#endif
