/* kp.c: see kp.h. */
#include "kp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mls_keypackage.h"
#include "mls_struct.h"
#include "store.h"
#include "tstore.h"

int kp_validate(const uint8_t *msg, size_t len, const char *identity, const char *device,
                const uint8_t pk[32], uint64_t now, uint8_t ref[32])
{
    struct mls_message m = {0};
    char cred[STORE_ID_MAX + 40];
    int rc;
    if (len > KP_MAX_BYTES)
        return ERR_TOO_BIG;
    rc = mls_message_parse(msg, len, &m);
    if (rc)
        goto out;
    if (m.wire_format != MLS_WF_KEY_PACKAGE) {
        rc = ERR_INVALID;
        goto out;
    }
    rc = mls_keypackage_validate(&m.key_package, now);
    if (rc)
        goto out;
    const struct mls_leaf_node *ln = &m.key_package.leaf_node;
    int n = snprintf(cred, sizeof(cred), "%s/%s", identity, device);
    if (n < 0 || (size_t)n >= sizeof(cred) || ln->credential.credential_type != MLS_CREDENTIAL_BASIC ||
        ln->credential.identity.len != (size_t)n ||
        memcmp(ln->credential.identity.data, cred, (size_t)n) != 0 ||
        ln->signature_key.len != 32 || memcmp(ln->signature_key.data, pk, 32) != 0) {
        rc = ERR_DENIED;
        goto out;
    }
    rc = mls_keypackage_ref(&m.key_package, ref);
out:
    mls_message_free(&m);
    return rc;
}

int kp_store(const char *device, const uint8_t ref[32], const uint8_t *msg, size_t len,
             bool last_resort, uint64_t now)
{
    int rc;
    sqlite3_stmt *s;
    if (last_resort) {
        s = tq(Q_KP_LAST_RESORT_RETIRE);
        rc = tq_text(s, 1, device);
        if (!rc) rc = tq_u64(s, 2, now);
        if (!rc) rc = tq_run(s);
        if (rc)
            return rc;
    } else {
        uint64_t count;
        bool lr;
        rc = kp_count(device, &count, &lr);
        if (rc)
            return rc;
        if (count >= KP_STOCK_MAX)
            return ERR_LIMIT;
    }
    s = tq(Q_KP_ADD);
    rc = tq_blob(s, 1, ref, 32);
    if (!rc) rc = tq_text(s, 2, device);
    if (!rc) rc = tq_blob(s, 3, msg, len);
    if (!rc) rc = tq_u64(s, 4, last_resort ? 1 : 0);
    if (!rc) rc = tq_u64(s, 5, now);
    return rc ? rc : tq_run(s);
}

int kp_count(const char *device, uint64_t *count, bool *last_resort)
{
    sqlite3_stmt *s = tq(Q_KP_COUNT);
    int rc = tq_text(s, 1, device);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    *count = tq_col_u64(s, 0);
    *last_resort = tq_col_u64(s, 1) != 0;
    tq_done(s);
    return 0;
}

static int copy_blob(sqlite3_stmt *s, int col, uint8_t **msg, size_t *len)
{
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    const void *b = sqlite3_column_blob(s, col);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return ERR_NOMEM;
    if (n)
        memcpy(p, b, n);
    *msg = p;
    *len = n;
    return 0;
}

int kp_claim(const char *device, const char *thread, uint64_t now, uint8_t ref[32],
             uint8_t **msg, size_t *len)
{
    sqlite3_stmt *s = tq(Q_KP_PICK);
    int rc = tq_text(s, 1, device);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    if (sqlite3_column_bytes(s, 0) != 32) {
        tq_done(s);
        return ERR_INTERNAL;
    }
    memcpy(ref, sqlite3_column_blob(s, 0), 32);
    bool last_resort = tq_col_u64(s, 2) != 0;
    rc = copy_blob(s, 1, msg, len);
    tq_done(s);
    if (rc || last_resort)
        return rc;
    /* an ordinary KeyPackage is handed out exactly once */
    s = tq(Q_KP_CLAIM);
    rc = tq_blob(s, 1, ref, 32);
    if (!rc) rc = tq_u64(s, 2, now);
    if (!rc) rc = tq_text(s, 3, thread);
    if (!rc) rc = tq_run(s);
    if (!rc && tq_changes() != 1)
        rc = ERR_CONFLICT;
    if (rc) {
        free(*msg);
        *msg = NULL;
    }
    return rc;
}

int kp_get(const uint8_t ref[32], uint8_t **msg, size_t *len)
{
    sqlite3_stmt *s = tq(Q_KP_GET);
    int rc = tq_blob(s, 1, ref, 32);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    rc = copy_blob(s, 0, msg, len);
    tq_done(s);
    return rc;
}

int kp_drop(const uint8_t ref[32])
{
    sqlite3_stmt *s = tq(Q_KP_DEL);
    int rc = tq_blob(s, 1, ref, 32);
    return rc ? rc : tq_run(s);
}
