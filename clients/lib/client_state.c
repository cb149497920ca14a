/*
 * client_state.c: the device's encrypted local state (client_state.h).
 * Start at client_state_open(): schema, key derivation; then seal()/open_row()
 * which bind each encrypted value to its row's slot.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "client_profile.h"
#include "client_state.h"
#include "err.h"

#define STATE_SCHEMA_VERSION 1
#define AD_LABEL "sammen-state-v1"
#define KDF_CONTEXT "smnstat1" /* crypto_kdf_CONTEXTBYTES == 8 */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

struct client_state_db {
    sqlite3 *db;
    uint8_t *key; /* sodium_malloc'd, 32 bytes */
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rows(kind TEXT NOT NULL, k TEXT NOT NULL,"
    " thread TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL DEFAULT 0,"
    " time INTEGER NOT NULL DEFAULT 0, blob BLOB NOT NULL, PRIMARY KEY(kind, k));"
    "CREATE INDEX IF NOT EXISTS rows_thread ON rows(kind, thread, seq);";

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

int client_state_open(const char *dir, const uint8_t seed[32], struct client_state_db **out)
{
    char path[4096];
    struct client_state_db *st = NULL;
    sqlite3_stmt *q = NULL;
    struct stat sb;
    int rc, fd;

    *out = NULL;
    if (client_profile_path(dir, CLIENT_STATE_FILE, path, sizeof(path)) != 0)
        return ERR_TOO_BIG;
    /* create the file 0600 before SQLite does (it would use the umask) */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ERR_IO;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return ERR_IO;
    }
    close(fd);
    if ((sb.st_mode & 077) != 0)
        return ERR_DENIED;
    st = calloc(1, sizeof(*st));
    if (!st)
        return ERR_NOMEM;
    st->key = sodium_malloc(crypto_kdf_KEYBYTES);
    if (!st->key) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (crypto_kdf_derive_from_key(st->key, crypto_kdf_KEYBYTES, 1, KDF_CONTEXT, seed) != 0) {
        rc = ERR_INTERNAL;
        goto out;
    }
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = ERR_IO;
        goto out;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* secure_delete: freed pages are zeroed, so deleted ciphertext (and the
     * old values of replaced rows) does not linger in the file */
    if ((rc = exec(st->db, "PRAGMA secure_delete=ON; PRAGMA journal_mode=DELETE;")) != 0 ||
        (rc = exec(st->db, schema)) != 0)
        goto out;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE name='schema'", -1, &q,
                           NULL) != SQLITE_OK) {
        rc = ERR_IO;
        goto out;
    }
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        rc = sqlite3_column_int(q, 0) == STATE_SCHEMA_VERSION ? 0 : ERR_UNSUPPORTED;
    } else if (rc == SQLITE_DONE) {
        rc = exec(st->db, "INSERT INTO meta(name, value) VALUES('schema', 1)");
    } else {
        rc = ERR_IO;
    }
out:
    sqlite3_finalize(q);
    if (rc != 0) {
        client_state_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void client_state_close(struct client_state_db *st)
{
    if (!st)
        return;
    if (st->db)
        sqlite3_close(st->db);
    if (st->key)
        sodium_free(st->key); /* sodium_free wipes */
    free(st);
}

int client_state_begin(struct client_state_db *st)
{
    return exec(st->db, "BEGIN IMMEDIATE");
}

int client_state_commit(struct client_state_db *st)
{
    return exec(st->db, "COMMIT");
}

void client_state_rollback(struct client_state_db *st)
{
    (void)exec(st->db, "ROLLBACK");
}

/* The associated data binding a value to its slot. *ad is malloc'd. */
static int make_ad(const char *kind, const char *k, const char *thread, uint64_t seq,
                   uint64_t time, uint8_t **ad, size_t *len)
{
    size_t lk = strlen(kind), lkey = strlen(k), lt = strlen(thread);
    size_t n = sizeof(AD_LABEL) + lk + 1 + lkey + 1 + lt + 1 + 16, off = 0;
    uint8_t *p = malloc(n);

    if (!p)
        return ERR_NOMEM;
    memcpy(p + off, AD_LABEL, sizeof(AD_LABEL)); /* with its NUL */
    off += sizeof(AD_LABEL);
    memcpy(p + off, kind, lk + 1);
    off += lk + 1;
    memcpy(p + off, k, lkey + 1);
    off += lkey + 1;
    memcpy(p + off, thread, lt + 1);
    off += lt + 1;
    for (int i = 7; i >= 0; i--)
        p[off++] = (uint8_t)(seq >> (8 * i));
    for (int i = 7; i >= 0; i--)
        p[off++] = (uint8_t)(time >> (8 * i));
    *ad = p;
    *len = off;
    return 0;
}

int client_state_put(struct client_state_db *st, const char *kind, const char *k,
                     const char *thread, uint64_t seq, uint64_t time, const uint8_t *value,
                     size_t len)
{
    sqlite3_stmt *q = NULL;
    uint8_t *ad = NULL, *blob = NULL;
    size_t adlen = 0;
    unsigned long long clen = 0;
    int rc;

    if (!thread)
        thread = "";
    if (len > CLIENT_STATE_MAX_VALUE || seq > INT64_MAX || time > INT64_MAX)
        return ERR_TOO_BIG;
    if ((rc = make_ad(kind, k, thread, seq, time, &ad, &adlen)) != 0)
        return rc;
    blob = malloc(NONCE_LEN + len + TAG_LEN);
    if (!blob) {
        rc = ERR_NOMEM;
        goto out;
    }
    randombytes_buf(blob, NONCE_LEN);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_LEN, &clen, value, len, ad,
                                                   adlen, NULL, blob, st->key) != 0) {
        rc = ERR_INTERNAL;
        goto out;
    }
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO rows(kind, k, thread, seq, time, blob) "
                           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(q, 2, k, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(q, 3, thread, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(q, 4, (sqlite3_int64)seq) != SQLITE_OK ||
        sqlite3_bind_int64(q, 5, (sqlite3_int64)time) != SQLITE_OK ||
        sqlite3_bind_blob64(q, 6, blob, NONCE_LEN + clen, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE) {
        rc = ERR_IO;
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    free(ad);
    free(blob);
    return rc;
}

/* Decrypts one stored blob for its slot. */
static int open_row(struct client_state_db *st, const char *kind, const char *k,
                    const char *thread, uint64_t seq, uint64_t time, const uint8_t *blob,
                    size_t blen, uint8_t **value, size_t *len)
{
    uint8_t *ad = NULL, *pt = NULL;
    size_t adlen = 0;
    unsigned long long plen = 0;
    int rc;

    *value = NULL;
    *len = 0;
    if (blen < NONCE_LEN + TAG_LEN)
        return ERR_CRYPTO;
    if ((rc = make_ad(kind, k, thread, seq, time, &ad, &adlen)) != 0)
        return rc;
    pt = malloc(blen - NONCE_LEN - TAG_LEN + 1); /* +1: never malloc(0) */
    if (!pt) {
        free(ad);
        return ERR_NOMEM;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &plen, NULL, blob + NONCE_LEN,
                                                   blen - NONCE_LEN, ad, adlen, blob,
                                                   st->key) != 0) {
        free(ad);
        free(pt);
        return ERR_CRYPTO;
    }
    free(ad);
    pt[plen] = 0; /* values read back are also NUL-terminated (text records) */
    *value = pt;
    *len = (size_t)plen;
    return 0;
}

int client_state_get(struct client_state_db *st, const char *kind, const char *k,
                     uint8_t **value, size_t *len)
{
    sqlite3_stmt *q = NULL;
    int rc;

    *value = NULL;
    *len = 0;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT thread, seq, time, blob FROM rows WHERE kind=?1 AND k=?2",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(q, 2, k, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = ERR_IO;
        goto out;
    }
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        rc = ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        rc = ERR_IO;
        goto out;
    }
    {
        const char *thread = (const char *)sqlite3_column_text(q, 0);
        const uint8_t *blob = sqlite3_column_blob(q, 3);
        int blen = sqlite3_column_bytes(q, 3);
        rc = open_row(st, kind, k, thread ? thread : "", (uint64_t)sqlite3_column_int64(q, 1),
                      (uint64_t)sqlite3_column_int64(q, 2), blob, blen > 0 ? (size_t)blen : 0,
                      value, len);
    }
out:
    sqlite3_finalize(q);
    return rc;
}

int client_state_del(struct client_state_db *st, const char *kind, const char *k)
{
    sqlite3_stmt *q = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(st->db, "DELETE FROM rows WHERE kind=?1 AND k=?2", -1, &q, NULL) !=
            SQLITE_OK ||
        sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(q, 2, k, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE)
        rc = ERR_IO;
    sqlite3_finalize(q);
    return rc;
}

int client_state_put_u64(struct client_state_db *st, const char *kind, const char *k, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    return client_state_put(st, kind, k, NULL, 0, 0, b, sizeof(b));
}

int client_state_get_u64(struct client_state_db *st, const char *kind, const char *k,
                         uint64_t def, uint64_t *v)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = client_state_get(st, kind, k, &b, &len);

    if (rc == ERR_NOT_FOUND) {
        *v = def;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (len != 8) {
        free(b);
        return ERR_MALFORMED;
    }
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v = (*v << 8) | b[i];
    free(b);
    return 0;
}

int client_state_each(struct client_state_db *st, const char *kind, const char *thread,
                      uint64_t after, client_state_fn *cb, void *user)
{
    sqlite3_stmt *q = NULL;
    int rc, step;

    if (after > INT64_MAX)
        return 0;
    if (sqlite3_prepare_v2(st->db,
                           thread ? "SELECT k, thread, seq, time, blob FROM rows WHERE kind=?1 "
                                    "AND (?2=0 OR seq>?2) AND thread=?3 ORDER BY thread, seq, k"
                                  : "SELECT k, thread, seq, time, blob FROM rows WHERE kind=?1 "
                                    "AND (?2=0 OR seq>?2) ORDER BY thread, seq, k",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(q, 2, (sqlite3_int64)after) != SQLITE_OK ||
        (thread && sqlite3_bind_text(q, 3, thread, -1, SQLITE_STATIC) != SQLITE_OK)) {
        rc = ERR_IO;
        goto out;
    }
    rc = 0;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        struct client_state_row row;
        uint8_t *v = NULL;
        size_t vlen = 0;
        const char *k = (const char *)sqlite3_column_text(q, 0);
        const char *t = (const char *)sqlite3_column_text(q, 1);
        const uint8_t *blob = sqlite3_column_blob(q, 4);
        int blen = sqlite3_column_bytes(q, 4);

        row.k = k ? k : "";
        row.thread = t ? t : "";
        row.seq = (uint64_t)sqlite3_column_int64(q, 2);
        row.time = (uint64_t)sqlite3_column_int64(q, 3);
        rc = open_row(st, kind, row.k, row.thread, row.seq, row.time, blob,
                      blen > 0 ? (size_t)blen : 0, &v, &vlen);
        if (rc != 0)
            goto out;
        row.value = v;
        row.len = vlen;
        rc = cb(&row, user);
        if (v) {
            sodium_memzero(v, vlen);
            free(v);
        }
        if (rc != 0)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = ERR_IO;
out:
    sqlite3_finalize(q);
    return rc;
}
