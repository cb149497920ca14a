/*
 * keys_id.h: names derived from public keys, and the byte strings devices
 * sign, exactly as protocol/PROTOCOL.md defines them. Shared by the server
 * (to verify) and the clients (to sign and to show).
 *
 * | value       | definition                                                       |
 * |-------------|------------------------------------------------------------------|
 * | device id   | "d_" + lowercase hex of the first 8 bytes of SHA-256(public key) |
 * | fingerprint | lowercase hex of SHA-256(public key), groups of 4, space between |
 * | login msg   | "sammen-login-v1" 0x00 domain 0x00 nonce device_id               |
 * | enroll msg  | "sammen-enroll-v1" 0x00 code                                     |
 */
#ifndef SAMMEN_KEYS_ID_H
#define SAMMEN_KEYS_ID_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_ID_DEVICE_LEN 18      /* "d_" + 16 hex digits */
#define KEYS_ID_FINGERPRINT_LEN 79 /* 64 hex digits + 15 spaces */

/* Writes the device id of Ed25519 public key pk into out (NUL-terminated). */
void keys_id_device(const uint8_t pk[32], char out[KEYS_ID_DEVICE_LEN + 1]);

/* Writes the fingerprint of pk into out (NUL-terminated). */
void keys_id_fingerprint(const uint8_t pk[32], char out[KEYS_ID_FINGERPRINT_LEN + 1]);

/* Builds the login message into buf (cap bytes); sets *len. domain and
 * device_id are NUL-terminated strings. Returns 0 or ERR_TOO_BIG. */
int keys_id_login_msg(const char *domain, const uint8_t *nonce, size_t nonce_len,
                      const char *device_id, uint8_t *buf, size_t cap, size_t *len);

/* Builds the enrollment proof-of-possession message for code (as sent on
 * the wire) into buf; sets *len. Returns 0 or ERR_TOO_BIG. */
int keys_id_enroll_msg(const char *code, uint8_t *buf, size_t cap, size_t *len);

/* Public key of a 32-byte Ed25519 seed. Returns 0 or ERR_INTERNAL. */
int keys_id_public(const uint8_t seed[32], uint8_t pk[32]);

/* Signs msg with the key of seed (Ed25519, detached, 64 bytes). The
 * expanded secret key lives on the stack only for the call and is wiped.
 * Returns 0 or ERR_INTERNAL. */
int keys_id_sign(const uint8_t seed[32], const uint8_t *msg, size_t len, uint8_t sig[64]);

/* Verifies a detached signature. Returns 0 or ERR_CRYPTO. */
int keys_id_verify(const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64]);

#endif
