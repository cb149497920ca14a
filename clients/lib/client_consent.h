/*
 * client_consent.h: the client's side of the consent ledger (PROTOCOL.md
 * "Consent"): building and signing grants and revocations with the
 * device's key, checking signed grants the server hands back, and deciding
 * whether a grant covers a member of a thread. The encodings themselves are
 * protocol/msg_grant.h; nothing here talks to the network.
 */
#ifndef SAMMEN_CLIENT_CONSENT_H
#define SAMMEN_CLIENT_CONSENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg_grant.h"

/* Checks g, encodes it and signs it with the device seed. *tbs is malloc'd
 * (caller frees); gid gets the grant id. ERR_INVALID (a field breaks a
 * rule), ERR_NOMEM, ERR_INTERNAL. */
int client_consent_sign_grant(const struct msg_grant *g, const uint8_t seed[32], uint8_t **tbs,
                              size_t *tbs_len, uint8_t sig[MSG_GRANT_SIG_LEN],
                              char gid[MSG_GRANT_GID_LEN + 1]);

/* Builds and signs a RevocationTBS for grant by revoker/device at time at.
 * *tbs is malloc'd (caller frees). */
int client_consent_sign_revocation(const char *grant, const char *revoker, const char *device,
                                   uint64_t at, const uint8_t seed[32], uint8_t **tbs,
                                   size_t *tbs_len, uint8_t sig[MSG_GRANT_SIG_LEN]);

/* Verifies one grant as the server lists it: tbs decodes (into *g), sig is
 * the signature of the device key granter_key, that key's device id is the
 * grant's granter_device, and the grant id recomputed from tbs and sig is
 * grant_id. 0, ERR_MALFORMED/ERR_INVALID (tbs), ERR_CRYPTO (signature, key
 * or id mismatch). */
int client_consent_verify(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                          size_t sig_len, const uint8_t *granter_key, size_t key_len,
                          const char *grant_id, struct msg_grant *g);

/* Verifies a proxy registration as consent.list lists it: tbs decodes
 * (into *p), the listed registrar_key is the key of p->registrar_device,
 * sig is that key's signature, and the registration id recomputed from tbs
 * and sig is reg_id. Whether the registrar is staff is the server's word.
 * 0, ERR_MALFORMED/ERR_INVALID (tbs), ERR_CRYPTO. */
int client_consent_verify_proxy(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                                size_t sig_len, const uint8_t *registrar_key, size_t key_len,
                                const char *reg_id, struct msg_proxy_reg *p);

/* Verifies the signed end of a proxy registration: tbs decodes (into *e),
 * ender_key is the key of e->ender_device and sig verifies with it.
 * 0, ERR_MALFORMED/ERR_INVALID, ERR_CRYPTO. */
int client_consent_verify_proxy_end(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                                    size_t sig_len, const uint8_t *ender_key, size_t key_len,
                                    struct msg_proxy_end *e);

/* Verifies a break-glass access as consent.list lists it: tbs decodes
 * (into *b), staff_key is the key of b->staff_device, sig verifies, and
 * the access id recomputed from tbs and sig is access_id. 0,
 * ERR_MALFORMED/ERR_INVALID, ERR_CRYPTO. */
int client_consent_verify_breakglass(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                                     size_t sig_len, const uint8_t *staff_key, size_t key_len,
                                     const char *access_id, struct msg_breakglass *b);

/* True when grant g (already verified) is about citizen and its scope
 * covers a thread of kind `kind` with id `thread` ("care" / "coordination"
 * / "thread:<thread>"), and it has not expired at `now` (server time). */
bool client_consent_covers(const struct msg_grant *g, const char *citizen, const char *thread,
                           const char *kind, uint64_t now);

/* Parses an ISO-8601 UTC time: "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS][Z]"
 * or "+Nd"/"+Nh" (relative to now). 0 or ERR_INVALID. */
int client_consent_parse_time(const char *s, uint64_t now, uint64_t *out);

/* name -> name@domain; "department:X" -> "department:X@domain" (likewise
 * association:); already qualified strings are copied. 0 or ERR_TOO_BIG. */
int client_consent_qualify(const char *s, const char *domain, char *out, size_t cap);

#endif
