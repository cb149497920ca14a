/*
 * consent.h: the consent ledger (PROTOCOL.md "Consent"). Grants arrive
 * signed (protocol/msg_grant.h); the server checks them against its
 * registry, stores them immutably with a receipt it signs, and records
 * revocation and expiry as separate facts. Every change reconciles the
 * citizen's threads (thread.c).
 */
#ifndef SAMMEN_CONSENT_H
#define SAMMEN_CONSENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg_grant.h"

struct consent_stored {
    char id[MSG_GRANT_GID_LEN + 1];
    uint8_t receipt[MSG_GRANT_SIG_LEN];
    uint64_t stored;
    struct msg_grant g;
};

/* Checks and stores a grant sent by caller (identity, device). invitee: the
 * identity being created by relative.invite (it may be the grantee although
 * it does not exist yet), else NULL. On refusal returns non-zero with *code
 * (a wire error string) and why set. Reconciles the citizen's threads. */
int consent_grant(const uint8_t *tbs, size_t len, const uint8_t *sig, const char *caller,
                  const char *caller_device, const char *invitee, uint64_t now,
                  struct consent_stored *out, const char **code, char *why, size_t whycap);

/* Checks and records a revocation (caller: the citizen or an active proxy
 * of the grant's citizen, signing on their own device). *revoked: server
 * time of the revocation. */
int consent_revoke(const uint8_t *tbs, size_t len, const uint8_t *sig, const char *caller,
                   const char *caller_device, uint64_t now, char *gid_out, uint64_t *revoked,
                   const char **code, char *why, size_t whycap);

/* True when proxy is an active proxy of citizen. */
bool consent_is_proxy(const char *citizen, const char *proxy);

/* Timer work: records expiries of grants (access log, reconcile).
 * *did says whether anything was written. */
int consent_sweep(uint64_t now, bool *did);

#endif
