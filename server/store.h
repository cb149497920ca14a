/*
 * store.h: the server's SQLite database (DIR/sammen.db).
 *
 * WAL mode, synchronous=FULL, foreign keys on; a schema_version table and
 * ordered migrations (store.c `migrations[]`); every statement prepared once
 * at open and finalized at close.
 *
 * Transactions (group commit): store_begin() opens the one write
 * transaction of the current event-loop iteration if none is open; each
 * request runs inside a savepoint (store_savepoint / store_release /
 * store_rollback_to) so a failed request changes nothing; the main loop
 * calls store_commit() once per iteration, and only then are the responses
 * to those writes sent.
 *
 * All functions return 0 or a negative ERR_*: ERR_NOT_FOUND (no row),
 * ERR_CONFLICT (unique key taken), ERR_IO (SQLite failed; logged).
 * Strings passed in are copied by SQLite; strings returned are copied into
 * caller buffers.
 */
#ifndef SAMMEN_STORE_H
#define SAMMEN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct sqlite3;

#define STORE_SCHEMA_VERSION 10
#define STORE_ID_MAX 320 /* name@domain, NUL included */
#define STORE_NAME_MAX 65

/* Opens (creating if create) the database at path, applies pending
 * migrations, prepares every statement. The caller frees with store_close.
 * Returns 0, ERR_IO, ERR_NOT_FOUND (!create and no database). */
int store_open(const char *path, bool create, struct store **out);
/* The same, migrating only up to schema version (1..STORE_SCHEMA_VERSION):
 * for upgrade tests, which build a database of an older version. */
int store_open_upto(const char *path, bool create, int version, struct store **out);
/* Rolls back an open transaction, finalizes statements, closes. NULL ok. */
void store_close(struct store *st);
/* Moves WAL checkpoints out of COMMIT into a thread of their own with its
 * own connection to path (the server's run; tests and tools keep SQLite's
 * automatic checkpoint). Copying the WAL back into the database file and
 * syncing it then no longer stalls the event loop; durability is the
 * WAL's, as before. A COMMIT that leaves at least `pages` pages in the WAL
 * wakes the thread (cfg wal_checkpoint_pages: a page that every COMMIT
 * rewrites is copied once per checkpoint, so a longer WAL copies less).
 * store_close() stops it. 0 or ERR_INVALID / ERR_IO / ERR_NOMEM. */
int store_checkpoint_in_background(struct store *st, const char *path, int pages);
/* Background checkpoints completed so far (0 without the checkpointer). */
uint64_t store_checkpoints(struct store *st);
/* The handle, for tests and audit verification. */
struct sqlite3 *store_db(struct store *st);
/* The schema version the file is at. */
int store_schema_version(struct store *st, int *version);

/* Transactions (see above). */
int store_begin(struct store *st);
bool store_in_txn(const struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
int store_savepoint(struct store *st);
int store_release(struct store *st);
void store_rollback_to(struct store *st);
/* How many rollbacks (whole or to the savepoint) there have been: caches
 * of rows (tstore_roster_gen) change generation with it, since a rollback
 * reverts rows silently. */
uint64_t store_rollbacks(const struct store *st);
/* Rows inserted, updated or deleted on the store's connection since it
 * opened (sqlite3_total_changes64): a request that changed nothing has
 * nothing to undo. */
uint64_t store_changes(const struct store *st);

/* meta: small key/value settings (domain, created). */
int store_meta_get(struct store *st, const char *key, char *buf, size_t cap);
int store_meta_set(struct store *st, const char *key, const char *value);

/* identities */
int store_identity_add(struct store *st, const char *id, const char *name, const char *domain,
                       const char *role, uint64_t now);
/* role: buffer of at least 16 bytes (may be NULL). */
int store_identity_get(struct store *st, const char *id, char *role, size_t cap);

/* devices */
struct store_device {
    char id[32];
    char identity[STORE_ID_MAX];
    uint8_t pk[32];
    char label[STORE_NAME_MAX];
    uint64_t created;
    uint64_t last_seen; /* 0: never */
    uint64_t revoked;   /* 0: not revoked, else when */
};
int store_device_add(struct store *st, const char *id, const char *identity,
                     const uint8_t pk[32], const char *label, uint64_t now);
int store_device_get(struct store *st, const char *id, struct store_device *out);
int store_device_touch(struct store *st, const char *id, uint64_t now);
int store_device_revoke(struct store *st, const char *id, uint64_t now);
/* Calls fn for each device of identity, oldest first; fn returning
 * non-zero stops the walk and is returned. */
int store_device_each(struct store *st, const char *identity,
                      int (*fn)(void *ctx, const struct store_device *d), void *ctx);

/* one-time codes (stored by SHA-256 hash only) */
struct store_code {
    uint8_t hash[32];
    char kind[16];                    /* "invite" or "link" */
    char identity[STORE_ID_MAX];      /* bound identity (invite: to create; link: existing) */
    char role[16];                    /* invite */
    char department[STORE_NAME_MAX];  /* invite, optional */
    char association[STORE_NAME_MAX]; /* invite, optional */
    char created_by[STORE_ID_MAX];
    uint64_t created, expires, used;  /* used: 0 = unused */
};
int store_code_add(struct store *st, const struct store_code *c);
int store_code_get(struct store *st, const uint8_t hash[32], struct store_code *out);
/* Marks an unused code used; ERR_CONFLICT if it already was. */
int store_code_use(struct store *st, const uint8_t hash[32], uint64_t now);

/* departments and associations ("units"): kind "department"/"association" */
enum store_unit { STORE_DEPARTMENT = 0, STORE_ASSOCIATION = 1 };
int store_unit_add(struct store *st, enum store_unit kind, const char *name, const char *domain,
                   uint64_t now);
int store_unit_exists(struct store *st, enum store_unit kind, const char *name);
int store_unit_each(struct store *st, enum store_unit kind,
                    int (*fn)(void *ctx, const char *name), void *ctx);
/* staff assignments (department) and memberships (association) */
int store_member_add(struct store *st, enum store_unit kind, const char *identity,
                     const char *name, uint64_t now);
int store_member_remove(struct store *st, enum store_unit kind, const char *identity,
                        const char *name);
int store_member_each(struct store *st, enum store_unit kind, const char *identity,
                      int (*fn)(void *ctx, const char *name), void *ctx);

/* audit rows (chain logic in audit.c) */
struct store_audit {
    int64_t seq;
    uint64_t time;
    char actor[STORE_ID_MAX];
    char action[32];
    char subject[STORE_ID_MAX];
    char detail[256];
    uint8_t prev[32];
    uint8_t hash[32];
};
/* The last row's seq and hash; ERR_NOT_FOUND when the table is empty. */
int store_audit_last(struct store *st, int64_t *seq, uint8_t hash[32]);
int store_audit_insert(struct store *st, const struct store_audit *row);
/* Calls fn for every row in seq order. */
int store_audit_each(struct store *st, int (*fn)(void *ctx, const struct store_audit *r),
                     void *ctx);

#endif
