/*
 * client_auth.h: enrollment and login exactly as PROTOCOL.md ("Login",
 * `enroll`), on the blocking layer. The steps of the login are exposed
 * one by one so tests can replay or forge them:
 *
 *   client_auth_challenge()  auth.challenge -> nonce, domain
 *   client_auth_sign_login() sign "sammen-login-v1" 0 domain 0 nonce device
 *   client_auth_send_login() auth.login {id, device, sig}
 *
 * client_auth_login() does all three. Every function that gets a server
 * response returns as client_sync_call(): 0 for `ok`, the mapped ERR_* for
 * `err`, with *reply (when given) holding the response for the caller to
 * read and client_frame_free().
 */
#ifndef SAMMEN_CLIENT_AUTH_H
#define SAMMEN_CLIENT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

#define CLIENT_NONCE_LEN 32
#define CLIENT_DOMAIN_MAX 253
#define CLIENT_ID_MAX (64 + 1 + CLIENT_DOMAIN_MAX) /* name@domain */

/* auth.challenge: fills nonce (32 bytes) and domain (NUL-terminated). */
int client_auth_challenge(struct client_conn *c, int timeout_ms, uint8_t nonce[CLIENT_NONCE_LEN],
                          char domain[CLIENT_DOMAIN_MAX + 1], struct client_frame *reply);

/* Signs the login message for the device of seed; device_out (may be NULL)
 * gets its device id. Returns 0 or ERR_TOO_BIG / ERR_INTERNAL. */
int client_auth_sign_login(const uint8_t seed[32], const char *domain,
                           const uint8_t nonce[CLIENT_NONCE_LEN], char device_out[19],
                           uint8_t sig[64]);

/* auth.login with the given identity, device id and signature. */
int client_auth_send_login(struct client_conn *c, const char *identity, const char *device,
                           const uint8_t sig[64], int timeout_ms, struct client_frame *reply);

/* The whole login for identity with the device key of seed. */
int client_auth_login(struct client_conn *c, const char *identity, const uint8_t seed[32],
                      int timeout_ms, struct client_frame *reply);

/* The outcome of client_auth_login_start(): rc as for client_sync_call()
 * (0: logged in); reply is the response that ended the flow (the login's,
 * or the challenge's on failure), NULL when the connection closed first;
 * valid only during the call. */
typedef void client_login_fn(struct client_conn *c, int rc, const struct client_frame *reply,
                             void *user);

/* Starts the same login without blocking, for programs running many
 * connections on one context: auth.challenge now; when its answer comes,
 * the signature and auth.login; then cb, exactly once (also when the
 * connection closes or is freed first). seed and identity are copied (the
 * copy of seed is wiped when the flow ends). Returns 0, or ERR_NOMEM /
 * the client_conn_send() error (cb is not called then). */
int client_auth_login_start(struct client_conn *c, const char *identity, const uint8_t seed[32],
                            client_login_fn *cb, void *user);

/* enroll {code, key, label, sig} with the device key of seed. label may be
 * NULL. On `ok` the connection is logged in as the new device and the
 * reply holds {id, device, role, domain}. */
int client_auth_enroll(struct client_conn *c, const char *code, const uint8_t seed[32],
                       const char *label, int timeout_ms, struct client_frame *reply);

#endif
