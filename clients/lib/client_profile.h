/*
 * client_profile.h: a device's profile directory.
 *
 *   DIR/              mode 0700
 *   DIR/profile.json  mode 0600: {"version": 1, "server": URL, "id": name@domain,
 *                                 "device": d_..., "domain": ..., "role": ...}
 *   DIR/device.key    the device's Ed25519 key (keys/keyfile.h), encrypted
 *                     with SAMMEN_PASSPHRASE when that is set
 *
 * Both files are replaced atomically (temp file, fsync, rename).
 */
#ifndef SAMMEN_CLIENT_PROFILE_H
#define SAMMEN_CLIENT_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "client_auth.h"

#define CLIENT_PROFILE_VERSION 1

struct client_profile {
    char server[CLIENT_URL_MAX];
    char id[CLIENT_ID_MAX + 1];
    char device[19];
    char domain[CLIENT_DOMAIN_MAX + 1];
    char role[32];
};

/* Reads DIR/profile.json. Returns 0, ERR_NOT_FOUND (no profile),
 * ERR_MALFORMED (not a profile of this version), ERR_TOO_BIG (a field too
 * long), ERR_DENIED (profile readable by others), ERR_IO. */
int client_profile_load(const char *dir, struct client_profile *p);

/* Decodes the text of a profile.json (at most 16 KiB; JSON with a
 * `version` of CLIENT_PROFILE_VERSION, string fields that fit; unknown keys
 * ignored). Returns 0, ERR_MALFORMED, ERR_TOO_BIG; *p is zeroed on error. */
int client_profile_parse(const char *buf, size_t len, struct client_profile *p);

/* Creates DIR (0700) if needed and writes DIR/profile.json (0600).
 * Returns 0, ERR_IO, ERR_NOMEM. */
int client_profile_save(const char *dir, const struct client_profile *p);

/* Creates DIR (0700) if it does not exist; refuses (ERR_DENIED) an
 * existing DIR that group or others may write or that another user owns,
 * and makes an existing one 0700. Returns 0, ERR_DENIED, ERR_IO. */
int client_profile_mkdir(const char *dir);

/* Writes DIR/device.key / reads it, with passphrase (may be NULL). Return
 * the keyfile_write / keyfile_read codes. */
int client_profile_write_key(const char *dir, const uint8_t seed[32], const char *passphrase);
int client_profile_read_key(const char *dir, const char *passphrase, uint8_t seed[32]);

/* The file name DIR/name into buf. Returns 0 or ERR_TOO_BIG. */
int client_profile_path(const char *dir, const char *name, char *buf, size_t cap);

#endif
