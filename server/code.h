/*
 * code.h: one-time codes (enrollment invitations, device links).
 * 20 characters from CODE_ALPHABET (no 0/o/1/i/l), shown as four groups of
 * five joined by '-'. The server stores only SHA-256 of the 20 normalized
 * characters.
 */
#ifndef SAMMEN_CODE_H
#define SAMMEN_CODE_H

#include <stddef.h>
#include <stdint.h>

#define CODE_ALPHABET "abcdefghjkmnpqrstuvwxyz23456789"
#define CODE_CHARS 20
#define CODE_SHOWN (CODE_CHARS + 3) /* with the dashes, without NUL */

/* Makes a fresh random code: shown (NUL-terminated, CODE_SHOWN chars) and
 * its hash. */
void code_new(char shown[CODE_SHOWN + 1], uint8_t hash[32]);
/* Normalizes what a person typed (case-insensitive; '-' and spaces
 * ignored) and hashes it. Returns 0 or ERR_INVALID (wrong length or a
 * character outside the alphabet). */
int code_hash(const char *in, size_t len, uint8_t hash[32]);

#endif
