/*
 * client_state.h: a device's local state, encrypted at rest, in
 * PROFILE/state.db (SQLite, mode 0600).
 *
 * One table holds every record:
 *
 * | column | meaning                                                      |
 * |--------|--------------------------------------------------------------|
 * | kind   | record family: "group", "kp", "msg", "meta", "member", ...   |
 * | k      | the record's key within its kind (thread id, KeyPackageRef,  |
 * |        | thread/message number)                                       |
 * | thread | thread id or "" (what the server sees too)                    |
 * | seq    | per-thread message number or 0 (the server sees it)          |
 * | time   | unix seconds or 0 (the server sees it)                       |
 * | blob   | nonce(24) || XChaCha20-Poly1305(value), AD = the row's slot  |
 *
 * The key is derived from the device's Ed25519 seed with libsodium's KDF
 * (BLAKE2b) under the context "smnstat1", subkey 1, so it is distinct from
 * every other use of the seed. The AEAD's associated data is
 * "sammen-state-v1" 0 kind 0 k 0 thread 0 seq(8, big-endian) time(8), so a
 * row cannot be moved to another slot or have its metadata changed without
 * the decryption failing. Nothing but ids, message numbers and times is in
 * plaintext on disk.
 *
 * Ownership: struct client_state_db is opaque; client_state_close() frees it
 * (NULL is a no-op) and wipes the key. Values handed out by the getters are
 * malloc'd: the caller wipes (sodium_memzero) and free()s them.
 * Every function returns 0 or a negative ERR_*.
 */
#ifndef SAMMEN_CLIENT_STATE_H
#define SAMMEN_CLIENT_STATE_H

#include <stddef.h>
#include <stdint.h>

struct client_state_db;

#define CLIENT_STATE_FILE "state.db"
#define CLIENT_STATE_MAX_VALUE ((size_t)16 << 20)

/* Opens (creating when needed) DIR/state.db with the key derived from
 * seed. ERR_IO (cannot open), ERR_DENIED (the file is readable by others),
 * ERR_UNSUPPORTED (another schema version), ERR_NOMEM. */
int client_state_open(const char *dir, const uint8_t seed[32], struct client_state_db **out);
void client_state_close(struct client_state_db *st);

/* Transactions (nesting is not supported). */
int client_state_begin(struct client_state_db *st);
int client_state_commit(struct client_state_db *st);
void client_state_rollback(struct client_state_db *st);

/* Stores value[0..len) under (kind, k), replacing any earlier value.
 * thread may be NULL (""). ERR_TOO_BIG, ERR_IO, ERR_NOMEM. */
int client_state_put(struct client_state_db *st, const char *kind, const char *k,
                     const char *thread, uint64_t seq, uint64_t time, const uint8_t *value,
                     size_t len);
/* Reads and decrypts (kind, k): *value (caller wipes and frees; always a
 * buffer with a NUL byte after the len bytes) and *len. ERR_NOT_FOUND, ERR_CRYPTO (the row does not
 * decrypt under this key or was tampered with), ERR_IO, ERR_NOMEM. */
int client_state_get(struct client_state_db *st, const char *kind, const char *k,
                     uint8_t **value, size_t *len);
/* Deletes (kind, k); deleting what is not there is not an error. */
int client_state_del(struct client_state_db *st, const char *kind, const char *k);

/* Convenience for small unsigned numbers (cursors), stored encrypted. A
 * missing entry reads as def. */
int client_state_put_u64(struct client_state_db *st, const char *kind, const char *k, uint64_t v);
int client_state_get_u64(struct client_state_db *st, const char *kind, const char *k,
                         uint64_t def, uint64_t *v);

/* One decrypted row handed to a client_state_each() callback; valid only
 * during the call. */
struct client_state_row {
    const char *k;
    const char *thread;
    uint64_t seq;
    uint64_t time;
    const uint8_t *value;
    size_t len;
};

/* Calls cb for every row of kind (and of thread, when thread is non-NULL)
 * whose seq is greater than after (every row when after is 0), in
 * (thread, seq, k) order. A non-zero
 * return from cb stops the walk and is returned. A row that does not
 * decrypt stops the walk with ERR_CRYPTO. */
typedef int client_state_fn(const struct client_state_row *row, void *user);
int client_state_each(struct client_state_db *st, const char *kind, const char *thread,
                      uint64_t after, client_state_fn *cb, void *user);

#endif
