/* audit.c: the hash chain over the audit table (see audit.h for the row
 * encoding). Rows are written by store.c; tampering is refused by triggers
 * and, if done around them, found by audit_verify(). */
#include "audit.h"

#include <sodium.h>
#include <string.h>

#include "err.h"
#include "log.h"

static void put_u64(crypto_hash_sha256_state *h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    crypto_hash_sha256_update(h, b, 8);
}

static void put_str(crypto_hash_sha256_state *h, const char *s)
{
    size_t n = strlen(s);
    uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_hash_sha256_update(h, b, 4);
    crypto_hash_sha256_update(h, (const uint8_t *)s, n);
}

void audit_row_hash(const struct store_audit *r, const uint8_t prev[32], uint8_t out[32])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, prev, 32);
    crypto_hash_sha256_update(&h, (const uint8_t *)"sammen-audit-v1", 15);
    put_u64(&h, (uint64_t)r->seq);
    put_u64(&h, r->time);
    put_str(&h, r->actor);
    put_str(&h, r->action);
    put_str(&h, r->subject);
    put_str(&h, r->detail);
    crypto_hash_sha256_final(&h, out);
}

static int copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return ERR_TOO_BIG;
    memcpy(dst, src, n + 1);
    return 0;
}

int audit_append(struct store *st, uint64_t now, const char *actor, const char *action,
                 const char *subject, const char *detail)
{
    struct store_audit r;
    memset(&r, 0, sizeof(r));
    int rc = store_audit_last(st, &r.seq, r.prev);
    if (rc == ERR_NOT_FOUND) {
        r.seq = 0;
        memset(r.prev, 0, 32);
        rc = 0;
    }
    if (rc)
        return rc;
    r.seq++;
    r.time = now;
    if ((rc = copy(r.actor, sizeof(r.actor), actor)) ||
        (rc = copy(r.action, sizeof(r.action), action)) ||
        (rc = copy(r.subject, sizeof(r.subject), subject)) ||
        (rc = copy(r.detail, sizeof(r.detail), detail)))
        return rc;
    audit_row_hash(&r, r.prev, r.hash);
    rc = store_audit_insert(st, &r);
    if (rc == 0)
        log_info("audit: #%lld %s %s %s", (long long)r.seq, actor, action, subject);
    return rc;
}

struct verify_ctx {
    uint8_t prev[32];
    int64_t expect_seq;
    int64_t bad;
    int64_t rows;
};

static int verify_row(void *vctx, const struct store_audit *r)
{
    struct verify_ctx *v = vctx;
    uint8_t h[32];
    v->rows++;
    audit_row_hash(r, v->prev, h);
    if (r->seq != v->expect_seq || sodium_memcmp(r->prev, v->prev, 32) != 0 ||
        sodium_memcmp(h, r->hash, 32) != 0) {
        v->bad = r->seq > 0 ? r->seq : -1;
        return 1; /* stop at the first broken row */
    }
    memcpy(v->prev, r->hash, 32);
    v->expect_seq++;
    return 0;
}

int audit_verify(struct store *st, int64_t *bad_seq, int64_t *rows)
{
    struct verify_ctx v;
    memset(&v, 0, sizeof(v));
    v.expect_seq = 1;
    int rc = store_audit_each(st, verify_row, &v);
    if (rc < 0)
        return rc;
    *bad_seq = v.bad;
    *rows = v.rows;
    return 0;
}
