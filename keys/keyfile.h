/*
 * keyfile.h: Ed25519 key files for servers (DIR/server.key) and devices
 * (PROFILE/device.key), optionally encrypted with a passphrase.
 *
 * A key file holds the 32-byte Ed25519 seed and, in clear, the public key
 * (so the file can be checked: the seed must derive that public key). When a
 * passphrase is given the seed is encrypted with XChaCha20-Poly1305-IETF under
 * a key derived with argon2id; every header byte before the ciphertext is the
 * AEAD's associated data, so changing the kind, the public key, the salt or
 * the KDF limits makes decryption fail.
 *
 * File format, version 1 (integers big-endian):
 * | offset | size | field                                                  |
 * |--------|------|--------------------------------------------------------|
 * | 0      | 6    | magic "SAMKEY"                                         |
 * | 6      | 1    | version = 1                                            |
 * | 7      | 1    | kind: 1 server, 2 device                               |
 * | 8      | 1    | flags: bit 0 = encrypted; other bits must be zero      |
 * | 9      | 3    | reserved, zero                                         |
 * | 12     | 32   | Ed25519 public key                                     |
 * | clear (flags = 0), 76 bytes in all:                                    |
 * | 44     | 32   | Ed25519 seed                                           |
 * | encrypted (flags = 1), 148 bytes in all:                               |
 * | 44     | 16   | argon2id salt                                          |
 * | 60     | 8    | argon2id opslimit (1 .. KEYFILE_MAX_OPSLIMIT)          |
 * | 68     | 8    | argon2id memlimit in bytes (8 KiB .. KEYFILE_MAX_MEMLIMIT) |
 * | 76     | 24   | XChaCha20-Poly1305 nonce                               |
 * | 100    | 48   | ciphertext of the seed + 16-byte tag; AD = bytes 0..99 |
 *
 * Any other length, magic, version, flag or limit is refused as malformed
 * before any key derivation runs (a crafted file cannot ask for gigabytes).
 *
 * Errors: ERR_IO (cannot open/write), ERR_DENIED (file readable or writable
 * by group or others, or not a regular file), ERR_MALFORMED (truncated or
 * garbled), ERR_INVALID (wrong kind), ERR_CRYPTO (wrong or missing
 * passphrase), ERR_NOMEM.
 */
#ifndef SAMMEN_KEYFILE_H
#define SAMMEN_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

enum keyfile_kind { KEYFILE_SERVER = 1, KEYFILE_DEVICE = 2 };

#define KEYFILE_VERSION 1
#define KEYFILE_FLAG_ENCRYPTED 0x01
#define KEYFILE_CLEAR_LEN 76
#define KEYFILE_ENC_LEN 148
#define KEYFILE_AD_LEN 100
#define KEYFILE_MAX_OPSLIMIT 16ULL
#define KEYFILE_MAX_MEMLIMIT (1024ULL * 1024 * 1024)

/* The fields of a parsed key file. Pointers point into the buffer given to
 * keyfile_parse() and are valid while it is. */
struct keyfile_info {
    uint8_t version;
    enum keyfile_kind kind;
    uint8_t flags;
    uint8_t pk[32];
    /* clear files: the seed; encrypted files: ciphertext + tag (48 bytes) */
    const uint8_t *body;
    size_t body_len;
    /* encrypted files only */
    uint8_t salt[16];
    uint64_t opslimit;
    uint64_t memlimit;
    uint8_t nonce[24];
    const uint8_t *ad; /* the authenticated header: KEYFILE_AD_LEN bytes */
};

/* passphrase may be NULL (unencrypted). Written 0600 via temp file + fsync + rename (+ fsync
   of the directory). seed: the 32-byte Ed25519 seed. Returns 0 or a negative ERR_*. */
int keyfile_write(const char *path, enum keyfile_kind kind, const uint8_t seed[32], const char *passphrase);
/* Reads the key file at path, which must be of `kind` and readable only by its
 * owner, into seed (wiped on failure). passphrase is needed for an encrypted
 * file (ignored for a clear one). Returns 0 or a negative ERR_* (see above). */
int keyfile_read(const char *path, enum keyfile_kind kind, const char *passphrase, uint8_t seed[32]);

/* Decodes a key file image (no I/O, no key derivation). Checks the exact
 * length, magic, version, kind, flags, reserved bytes and KDF limits.
 * Returns 0, ERR_MALFORMED. */
int keyfile_parse(const uint8_t *buf, size_t len, struct keyfile_info *out);

/* Recovers the seed from a parsed file with an already derived 32-byte key
 * (ignored for clear files) and checks that it derives the stored public
 * key. Returns 0, ERR_CRYPTO (tag or public key mismatch). */
int keyfile_open_with_key(const struct keyfile_info *info, const uint8_t key[32], uint8_t seed[32]);

/* Derives the key from passphrase (argon2id with the file's salt and limits)
 * and opens the file. Returns 0, ERR_CRYPTO (no or wrong passphrase),
 * ERR_NOMEM (the KDF could not get its memory). */
int keyfile_unlock(const struct keyfile_info *info, const char *passphrase, uint8_t seed[32]);

/* Encodes a key file image into buf (KEYFILE_ENC_LEN bytes suffice); sets
 * *len. opslimit/memlimit are used when passphrase is not NULL. Returns 0,
 * ERR_INVALID (bad kind or limits), ERR_NOMEM (KDF). */
int keyfile_encode(enum keyfile_kind kind, const uint8_t seed[32], const char *passphrase,
                   uint64_t opslimit, uint64_t memlimit, uint8_t *buf, size_t *len);

#endif
