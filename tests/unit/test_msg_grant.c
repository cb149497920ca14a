/* test_msg_grant.c: known answers for protocol/msg_grant.c: GrantTBS and
 * RevocationTBS round trips and exact bytes, every field rule refused,
 * truncation / trailing bytes / oversize refused, signatures bound to their
 * label and key, grant ids, receipts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "msg_grant.h"

static void base_grant(struct msg_grant *g)
{
    msg_grant_init(g);
    memset(g->nonce, 0xab, sizeof(g->nonce));
    strcpy(g->citizen, "karen@kommune.test");
    strcpy(g->grantee, "department:hjemmepleje@kommune.test");
    strcpy(g->scope, "care");
    strcpy(g->basis, "consent");
    strcpy(g->purpose, "Pleje og omsorg \xc3\xa6\xc3\xb8\xc3\xa5");
    g->issued_at = 1700000000;
    g->expires_at = 0;
    g->form = MSG_GRANT_FORM_CITIZEN;
    strcpy(g->granter, "karen@kommune.test");
    strcpy(g->granter_device, "d_0123456789abcdef");
}

static void grant_roundtrip(void **state)
{
    (void)state;
    struct msg_grant g, d;
    uint8_t *buf = NULL;
    size_t len;
    base_grant(&g);
    assert_int_equal(msg_grant_encode(&g, &buf, &len), 0);
    /* version, nonce, then citizen with a 1-byte varint header */
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], 1);
    assert_int_equal(buf[2], 0xab);
    assert_int_equal(buf[18], strlen("karen@kommune.test"));
    assert_memory_equal(buf + 19, "karen@kommune.test", 18);
    assert_int_equal(msg_grant_decode(buf, len, &d), 0);
    assert_memory_equal(&g, &d, sizeof(g));
    /* re-encoding gives the same bytes (canonical) */
    uint8_t *buf2 = NULL;
    size_t len2;
    assert_int_equal(msg_grant_encode(&d, &buf2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    /* every strict prefix is refused, and so is a trailing byte */
    for (size_t i = 0; i < len; i++)
        assert_int_not_equal(msg_grant_decode(buf, i, &d), 0);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(msg_grant_decode(longer, len + 1, &d), ERR_MALFORMED);
    /* wrong version */
    longer[1] = 2;
    assert_int_equal(msg_grant_decode(longer, len, &d), ERR_UNSUPPORTED);
    free(longer);
    free(buf);
    free(buf2);
}

static int enc_rc(const struct msg_grant *g)
{
    uint8_t *buf = NULL;
    size_t len;
    int rc = msg_grant_encode(g, &buf, &len);
    free(buf);
    return rc;
}

static void grant_rules(void **state)
{
    (void)state;
    struct msg_grant g;
#define BAD(stmt)                                                                          \
    do {                                                                                   \
        base_grant(&g);                                                                    \
        stmt;                                                                              \
        assert_int_equal(msg_grant_check(&g), ERR_INVALID);                                \
        assert_int_equal(enc_rc(&g), ERR_INVALID);                                         \
    } while (0)
    base_grant(&g);
    assert_int_equal(msg_grant_check(&g), 0);
    BAD(strcpy(g.citizen, "karen"));
    BAD(strcpy(g.citizen, "Karen@kommune.test"));
    BAD(strcpy(g.citizen, "karen@"));
    BAD(strcpy(g.grantee, "karen@kommune.test")); /* grantee == citizen */
    BAD(strcpy(g.grantee, "team:x@kommune.test"));
    BAD(strcpy(g.grantee, "department:@kommune.test"));
    BAD(strcpy(g.scope, "everything"));
    BAD(strcpy(g.scope, "thread:t_0123"));
    BAD(strcpy(g.scope, "thread:t_0123456789ABCDEF0123456789abcdef"));
    BAD(g.basis[0] = '\0');
    BAD(strcpy(g.purpose, "bad \xc3(utf8"));
    BAD(strcpy(g.purpose, "overlong \xc0\xaf"));
    BAD(strcpy(g.purpose, "surrogate \xed\xa0\x80"));
    BAD(g.expires_at = g.issued_at);
    BAD(g.form = 0);
    BAD(g.form = 4);
    BAD(strcpy(g.granter, "mette@kommune.test")); /* form citizen, granter != citizen */
    BAD(strcpy(g.granter_device, "d_0123"));
    BAD(strcpy(g.reason, "she said so")); /* reason on a signed form */
    BAD(g.version = 2);
    /* oral: needs staff granter and a reason */
    base_grant(&g);
    g.form = MSG_GRANT_FORM_ORAL;
    strcpy(g.granter, "mette@kommune.test");
    assert_int_equal(msg_grant_check(&g), ERR_INVALID);
    strcpy(g.reason, "Karen said yes at the home visit, 3 March; no device");
    assert_int_equal(msg_grant_check(&g), 0);
    strcpy(g.granter, "karen@kommune.test"); /* oral granted by the citizen */
    assert_int_equal(msg_grant_check(&g), ERR_INVALID);
    /* good variants */
    base_grant(&g);
    strcpy(g.scope, "thread:t_0123456789abcdef0123456789abcdef");
    strcpy(g.grantee, "association:demens@forening.test");
    g.expires_at = g.issued_at + 1;
    assert_int_equal(msg_grant_check(&g), 0);
#undef BAD
}

static void grant_decode_limits(void **state)
{
    (void)state;
    struct msg_grant g;
    /* too large as a whole */
    uint8_t *big = calloc(1, MSG_GRANT_TBS_MAX + 1);
    assert_non_null(big);
    assert_int_equal(msg_grant_decode(big, MSG_GRANT_TBS_MAX + 1, &g), ERR_TOO_BIG);
    free(big);
    /* a field longer than its array: citizen of 400 bytes */
    uint8_t buf[2 + 16 + 2 + 400];
    memset(buf, 'a', sizeof(buf));
    buf[0] = 0;
    buf[1] = 1;
    buf[18] = 0x40 | (400 >> 8);
    buf[19] = 400 & 0xff;
    assert_int_equal(msg_grant_decode(buf, sizeof(buf), &g), ERR_TOO_BIG);
    /* a declared length beyond the input */
    buf[19] = 0xff;
    buf[18] = 0x7f;
    assert_int_equal(msg_grant_decode(buf, 40, &g), ERR_MALFORMED);
    /* a non-minimal varint */
    uint8_t nm[] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x01, 'a'};
    assert_int_equal(msg_grant_decode(nm, sizeof(nm), &g), ERR_MALFORMED);
    /* an embedded NUL in a string field */
    struct msg_grant ok;
    uint8_t *enc = NULL;
    size_t len;
    base_grant(&ok);
    assert_int_equal(msg_grant_encode(&ok, &enc, &len), 0);
    enc[19] = 0; /* first byte of citizen */
    assert_int_equal(msg_grant_decode(enc, len, &g), ERR_INVALID);
    free(enc);
}

static void grant_signatures(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], seed2[32], pk2[32];
    randombytes_buf(seed, sizeof(seed));
    randombytes_buf(seed2, sizeof(seed2));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    assert_int_equal(crypto_sign_seed_keypair(pk2, sk, seed2), 0);
    struct msg_grant g;
    uint8_t *tbs = NULL, sig[64];
    size_t len;
    base_grant(&g);
    assert_int_equal(msg_grant_encode(&g, &tbs, &len), 0);
    assert_int_equal(msg_grant_sign(seed, tbs, len, sig), 0);
    assert_int_equal(msg_grant_verify(pk, tbs, len, sig), 0);
    assert_int_equal(msg_grant_verify(pk2, tbs, len, sig), ERR_CRYPTO);
    /* the exact signed bytes: "sammen-grant-v1" 0x00 tbs */
    uint8_t *m = malloc(16 + len);
    assert_non_null(m);
    memcpy(m, "sammen-grant-v1", 15);
    m[15] = 0;
    memcpy(m + 16, tbs, len);
    assert_int_equal(crypto_sign_verify_detached(sig, m, 16 + len, pk), 0);
    free(m);
    /* a grant signature is not a revocation signature */
    assert_int_equal(msg_revocation_verify(pk, tbs, len, sig), ERR_CRYPTO);
    tbs[len - 1] ^= 1;
    assert_int_equal(msg_grant_verify(pk, tbs, len, sig), ERR_CRYPTO);
    tbs[len - 1] ^= 1;

    /* id = "g_" + hex(SHA-256(tbs || sig)[0..8]) */
    char gid[MSG_GRANT_GID_LEN + 1];
    uint8_t h[32], h2[32];
    msg_grant_id(tbs, len, sig, gid);
    assert_true(msg_grant_id_valid(gid));
    msg_grant_hash(tbs, len, sig, h);
    uint8_t *cat = malloc(len + 64);
    assert_non_null(cat);
    memcpy(cat, tbs, len);
    memcpy(cat + len, sig, 64);
    crypto_hash_sha256(h2, cat, len + 64);
    free(cat);
    assert_memory_equal(h, h2, 32);
    char hex[17];
    sodium_bin2hex(hex, sizeof(hex), h, 8);
    assert_string_equal(gid + 2, hex);

    /* receipt */
    uint8_t rc[64];
    assert_int_equal(msg_grant_receipt_sign(seed2, gid, h, 1700000100, rc), 0);
    assert_int_equal(msg_grant_receipt_verify(pk2, gid, h, 1700000100, rc), 0);
    assert_int_equal(msg_grant_receipt_verify(pk2, gid, h, 1700000101, rc), ERR_CRYPTO);
    assert_int_equal(msg_grant_receipt_verify(pk, gid, h, 1700000100, rc), ERR_CRYPTO);
    assert_int_equal(msg_grant_receipt_sign(seed2, "g_xyz", h, 1, rc), ERR_INVALID);
    free(tbs);
}

static void revocation(void **state)
{
    (void)state;
    struct msg_revocation v, d;
    uint8_t *buf = NULL, seed[32], pk[32], sk[64], sig[64];
    size_t len;
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    msg_revocation_init(&v);
    strcpy(v.grant, "g_00112233445566ff");
    strcpy(v.revoker, "karen@kommune.test");
    strcpy(v.revoker_device, "d_0123456789abcdef");
    v.revoked_at = 1700000200;
    assert_int_equal(msg_revocation_encode(&v, &buf, &len), 0);
    assert_int_equal(len, 2 + 1 + 18 + 1 + 18 + 1 + 18 + 8);
    assert_int_equal(msg_revocation_decode(buf, len, &d), 0);
    assert_memory_equal(&v, &d, sizeof(v));
    for (size_t i = 0; i < len; i++)
        assert_int_not_equal(msg_revocation_decode(buf, i, &d), 0);
    assert_int_equal(msg_revocation_sign(seed, buf, len, sig), 0);
    assert_int_equal(msg_revocation_verify(pk, buf, len, sig), 0);
    assert_int_equal(msg_grant_verify(pk, buf, len, sig), ERR_CRYPTO);
    free(buf);
    strcpy(v.grant, "g_00112233445566FF");
    assert_int_equal(msg_revocation_encode(&v, &buf, &len), ERR_INVALID);
    assert_null(buf);
}

static void grantee_parse(void **state)
{
    (void)state;
    enum msg_grantee_kind k;
    char name[65], dom[256];
    assert_int_equal(msg_grant_grantee_parse("department:hjemmepleje@k.test", &k, name,
                                             sizeof(name), dom, sizeof(dom)),
                     0);
    assert_int_equal(k, MSG_GRANTEE_DEPARTMENT);
    assert_string_equal(name, "hjemmepleje");
    assert_string_equal(dom, "k.test");
    assert_int_equal(msg_grant_grantee_parse("ole@k.test", &k, name, sizeof(name), NULL, 0), 0);
    assert_int_equal(k, MSG_GRANTEE_PERSON);
    assert_string_equal(name, "ole");
    assert_int_equal(msg_grant_grantee_parse("association:x@k.test", &k, NULL, 0, NULL, 0), 0);
    assert_int_equal(k, MSG_GRANTEE_ASSOCIATION);
    assert_int_equal(msg_grant_grantee_parse("ole", &k, NULL, 0, NULL, 0), ERR_INVALID);
    assert_int_equal(msg_grant_grantee_parse("ole@-k.test", &k, NULL, 0, NULL, 0), ERR_INVALID);
    assert_string_equal(msg_grant_form_name(2), "proxy");
    assert_null(msg_grant_form_name(9));
}

static void base_proxy(struct msg_proxy_reg *p)
{
    msg_proxy_reg_init(p);
    memset(p->nonce, 0x5a, sizeof(p->nonce));
    strcpy(p->citizen, "karen@kommune.test");
    strcpy(p->proxy, "ole@kommune.test");
    strcpy(p->basis, "guardianship");
    p->registered_at = 1700000000;
    strcpy(p->registrar, "mette@kommune.test");
    strcpy(p->registrar_device, "d_0123456789abcdef");
}

static int proxy_enc_rc(const struct msg_proxy_reg *p)
{
    uint8_t *buf = NULL;
    size_t len;
    int rc = msg_proxy_reg_encode(p, &buf, &len);
    free(buf);
    return rc;
}

static void proxy_registration(void **state)
{
    (void)state;
    struct msg_proxy_reg p, d;
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len, len2;
    uint8_t seed[32], pk[32], sk[64], sig[64];
    memset(seed, 7, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);

    base_proxy(&p);
    assert_int_equal(msg_proxy_reg_encode(&p, &buf, &len), 0);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], 1);
    assert_int_equal(buf[2], 0x5a);
    assert_int_equal(buf[18], strlen("karen@kommune.test"));
    assert_memory_equal(buf + 19, "karen@kommune.test", 18);
    assert_int_equal(msg_proxy_reg_decode(buf, len, &d), 0);
    assert_memory_equal(&p, &d, sizeof(p));
    assert_int_equal(msg_proxy_reg_encode(&d, &buf2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    for (size_t i = 0; i < len; i++)
        assert_int_not_equal(msg_proxy_reg_decode(buf, i, &d), 0);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(msg_proxy_reg_decode(longer, len + 1, &d), ERR_MALFORMED);
    longer[1] = 2;
    assert_int_equal(msg_proxy_reg_decode(longer, len, &d), ERR_UNSUPPORTED);
    free(longer);
    assert_int_equal(msg_proxy_reg_decode(buf, MSG_GRANT_TBS_MAX + 1, &d), ERR_TOO_BIG);

    /* signatures are bound to the label, the key and every byte */
    assert_int_equal(msg_proxy_reg_sign(seed, buf, len, sig), 0);
    assert_int_equal(msg_proxy_reg_verify(pk, buf, len, sig), 0);
    assert_int_equal(msg_grant_verify(pk, buf, len, sig), ERR_CRYPTO);
    assert_int_equal(msg_revocation_verify(pk, buf, len, sig), ERR_CRYPTO);
    buf[len - 1] ^= 1;
    assert_int_equal(msg_proxy_reg_verify(pk, buf, len, sig), ERR_CRYPTO);
    buf[len - 1] ^= 1;
    uint8_t pk2[32];
    memcpy(pk2, pk, 32);
    pk2[0] ^= 1;
    assert_int_not_equal(msg_proxy_reg_verify(pk2, buf, len, sig), 0);
    free(buf);
    free(buf2);

    /* field rules */
    base_proxy(&p);
    strcpy(p.basis, "friendship");
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    strcpy(p.proxy, p.citizen);
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    strcpy(p.registrar, p.proxy);
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    strcpy(p.registrar, p.citizen);
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    strcpy(p.registrar_device, "d_0123456789ABCDEF");
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    strcpy(p.citizen, "karen");
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    p.version = 2;
    assert_int_equal(proxy_enc_rc(&p), ERR_INVALID);
    base_proxy(&p);
    strcpy(p.basis, "power-of-attorney");
    assert_int_equal(proxy_enc_rc(&p), 0);
}

/* ---- proxy ends and break-glass accesses ----------------------------------- */

/* Known answers, computed independently (a few lines of Python following
 * the tables in msg_grant.h); the fuzz corpus seeds proxy_end / breakglass
 * are the same bytes after their selector byte. */
/* string literals: the trailing NUL is not part of the bytes */
static const uint8_t END_KAT[] =
    "\x00\x01\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a"
    "\x5a\x5a\x12\x70\x5f\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x61"
    "\x62\x63\x64\x65\x66\x12\x6b\x61\x72\x65\x6e\x40\x6b\x6f\x6d\x6d"
    "\x75\x6e\x65\x2e\x74\x65\x73\x74\x10\x6f\x6c\x65\x40\x6b\x6f\x6d"
    "\x6d\x75\x6e\x65\x2e\x74\x65\x73\x74\x00\x00\x00\x00\x65\x53\xf1"
    "\x64\x12\x6d\x65\x74\x74\x65\x40\x6b\x6f\x6d\x6d\x75\x6e\x65\x2e"
    "\x74\x65\x73\x74\x12\x64\x5f\x30\x31\x32\x33\x34\x35\x36\x37\x38"
    "\x39\x61\x62\x63\x64\x65\x66";
static const uint8_t BG_KAT[] =
    "\x00\x01\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a"
    "\x5a\x5a\x12\x6b\x61\x72\x65\x6e\x40\x6b\x6f\x6d\x6d\x75\x6e\x65"
    "\x2e\x74\x65\x73\x74\x22\x74\x5f\x30\x31\x32\x33\x34\x35\x36\x37"
    "\x38\x39\x61\x62\x63\x64\x65\x66\x30\x31\x32\x33\x34\x35\x36\x37"
    "\x38\x39\x61\x62\x63\x64\x65\x66\x10\x70\x65\x72\x40\x6b\x6f\x6d"
    "\x6d\x75\x6e\x65\x2e\x74\x65\x73\x74\x12\x64\x5f\x66\x65\x64\x63"
    "\x62\x61\x39\x38\x37\x36\x35\x34\x33\x32\x31\x30\x17\x66\x61\x6c"
    "\x6c\x20\x61\x74\x20\x68\x6f\x6d\x65\x2c\x20\x6e\x6f\x20\x61\x6e"
    "\x73\x77\x65\x72\x00\x00\x00\x00\x65\x53\xf1\xc8\x00\x04";

static void base_end(struct msg_proxy_end *p)
{
    msg_proxy_end_init(p);
    memset(p->nonce, 0x5a, sizeof(p->nonce));
    strcpy(p->registration, "p_0123456789abcdef");
    strcpy(p->citizen, "karen@kommune.test");
    strcpy(p->proxy, "ole@kommune.test");
    p->ended_at = 1700000100;
    strcpy(p->ender, "mette@kommune.test");
    strcpy(p->ender_device, "d_0123456789abcdef");
}

static void base_bg(struct msg_breakglass *b)
{
    msg_breakglass_init(b);
    memset(b->nonce, 0x5a, sizeof(b->nonce));
    strcpy(b->citizen, "karen@kommune.test");
    strcpy(b->thread, "t_0123456789abcdef0123456789abcdef");
    strcpy(b->staff, "per@kommune.test");
    strcpy(b->staff_device, "d_fedcba9876543210");
    strcpy(b->reason, "fall at home, no answer");
    b->opened_at = 1700000200;
    b->hours = 4;
}

static int end_enc_rc(const struct msg_proxy_end *p)
{
    uint8_t *buf = NULL;
    size_t len;
    int rc = msg_proxy_end_encode(p, &buf, &len);
    free(buf);
    return rc;
}

static int bg_enc_rc(const struct msg_breakglass *b)
{
    uint8_t *buf = NULL;
    size_t len;
    int rc = msg_breakglass_encode(b, &buf, &len);
    free(buf);
    return rc;
}

static void proxy_end(void **state)
{
    (void)state;
    struct msg_proxy_end p, d;
    uint8_t *buf = NULL, *copy;
    size_t len;
    uint8_t seed[32], pk[32], sk[64], sig[64];
    memset(seed, 9, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);

    base_end(&p);
    assert_int_equal(msg_proxy_end_encode(&p, &buf, &len), 0);
    assert_int_equal(len, (sizeof(END_KAT) - 1));
    assert_memory_equal(buf, END_KAT, len);
    assert_int_equal(msg_proxy_end_decode(END_KAT, (sizeof(END_KAT) - 1), &d), 0);
    assert_memory_equal(&p, &d, sizeof(p));
    for (size_t i = 0; i < len; i++)
        assert_int_not_equal(msg_proxy_end_decode(buf, i, &d), 0);
    copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_int_equal(msg_proxy_end_decode(copy, len + 1, &d), ERR_MALFORMED);
    copy[1] = 2;
    assert_int_equal(msg_proxy_end_decode(copy, len, &d), ERR_UNSUPPORTED);
    copy[1] = 1;
    copy[19] = 'g'; /* a grant id is not a registration id */
    assert_int_equal(msg_proxy_end_decode(copy, len, &d), ERR_INVALID);
    free(copy);
    assert_int_equal(msg_proxy_end_decode(buf, MSG_GRANT_TBS_MAX + 1, &d), ERR_TOO_BIG);

    /* bound to the label, the key and every byte */
    assert_int_equal(msg_proxy_end_sign(seed, buf, len, sig), 0);
    assert_int_equal(msg_proxy_end_verify(pk, buf, len, sig), 0);
    assert_int_equal(msg_proxy_reg_verify(pk, buf, len, sig), ERR_CRYPTO);
    assert_int_equal(msg_breakglass_verify(pk, buf, len, sig), ERR_CRYPTO);
    buf[len - 1] ^= 1;
    assert_int_equal(msg_proxy_end_verify(pk, buf, len, sig), ERR_CRYPTO);
    buf[len - 1] ^= 1;
    sig[0] ^= 1;
    assert_int_equal(msg_proxy_end_verify(pk, buf, len, sig), ERR_CRYPTO);
    free(buf);

    base_end(&p);
    strcpy(p.ender, p.proxy);
    assert_int_equal(end_enc_rc(&p), ERR_INVALID);
    base_end(&p);
    strcpy(p.ender, p.citizen);
    assert_int_equal(end_enc_rc(&p), ERR_INVALID);
    base_end(&p);
    strcpy(p.proxy, p.citizen);
    assert_int_equal(end_enc_rc(&p), ERR_INVALID);
    base_end(&p);
    strcpy(p.registration, "p_0123456789ABCDEF");
    assert_int_equal(end_enc_rc(&p), ERR_INVALID);
    base_end(&p);
    strcpy(p.ender_device, "d_01234567");
    assert_int_equal(end_enc_rc(&p), ERR_INVALID);
    base_end(&p);
    assert_int_equal(end_enc_rc(&p), 0);
}

static void breakglass(void **state)
{
    (void)state;
    struct msg_breakglass b, d;
    uint8_t *buf = NULL, *copy;
    size_t len;
    uint8_t seed[32], pk[32], sk[64], sig[64];
    char id[MSG_GRANT_GID_LEN + 1], id2[MSG_GRANT_GID_LEN + 1];
    memset(seed, 11, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);

    base_bg(&b);
    assert_int_equal(msg_breakglass_encode(&b, &buf, &len), 0);
    assert_int_equal(len, (sizeof(BG_KAT) - 1));
    assert_memory_equal(buf, BG_KAT, len);
    assert_int_equal(msg_breakglass_decode(BG_KAT, (sizeof(BG_KAT) - 1), &d), 0);
    assert_memory_equal(&b, &d, sizeof(b));
    for (size_t i = 0; i < len; i++)
        assert_int_not_equal(msg_breakglass_decode(buf, i, &d), 0);
    copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_int_equal(msg_breakglass_decode(copy, len + 1, &d), ERR_MALFORMED);
    copy[len - 1] = 73; /* hours 73 */
    assert_int_equal(msg_breakglass_decode(copy, len, &d), ERR_INVALID);
    copy[len - 1] = 0; /* hours 0 */
    assert_int_equal(msg_breakglass_decode(copy, len, &d), ERR_INVALID);
    free(copy);

    assert_int_equal(msg_breakglass_sign(seed, buf, len, sig), 0);
    assert_int_equal(msg_breakglass_verify(pk, buf, len, sig), 0);
    assert_int_equal(msg_grant_verify(pk, buf, len, sig), ERR_CRYPTO);
    assert_int_equal(msg_proxy_end_verify(pk, buf, len, sig), ERR_CRYPTO);
    msg_breakglass_id(buf, len, sig, id);
    assert_int_equal(strlen(id), MSG_GRANT_GID_LEN);
    assert_int_equal(id[0], 'b');
    msg_proxy_reg_id(buf, len, sig, id2);
    assert_true(msg_proxy_reg_id_valid(id2));
    assert_false(msg_proxy_reg_id_valid(id));
    assert_string_equal(id + 1, id2 + 1); /* the same hash, another prefix */
    buf[30] ^= 1;
    assert_int_equal(msg_breakglass_verify(pk, buf, len, sig), ERR_CRYPTO);
    free(buf);

    base_bg(&b);
    strcpy(b.reason, "too short");
    assert_int_equal(bg_enc_rc(&b), ERR_INVALID);
    base_bg(&b);
    strcpy(b.reason, "ten bytes!");
    assert_int_equal(bg_enc_rc(&b), 0);
    base_bg(&b);
    strcpy(b.staff, b.citizen);
    assert_int_equal(bg_enc_rc(&b), ERR_INVALID);
    base_bg(&b);
    strcpy(b.thread, "t_0123");
    assert_int_equal(bg_enc_rc(&b), ERR_INVALID);
    base_bg(&b);
    b.hours = 72;
    assert_int_equal(bg_enc_rc(&b), 0);
    b.hours = 73;
    assert_int_equal(bg_enc_rc(&b), ERR_INVALID);
    base_bg(&b);
    strcpy(b.reason, "bad \xff utf-8 here");
    assert_int_equal(bg_enc_rc(&b), ERR_INVALID);

    /* receipts cover grant and registration ids, nothing else */
    uint8_t h[32] = {0}, rs[64];
    assert_int_equal(msg_grant_receipt_sign(seed, "p_0123456789abcdef", h, 5, rs), 0);
    assert_int_equal(msg_grant_receipt_verify(pk, "p_0123456789abcdef", h, 5, rs), 0);
    assert_int_equal(msg_grant_receipt_verify(pk, "g_0123456789abcdef", h, 5, rs), ERR_CRYPTO);
    assert_int_equal(msg_grant_receipt_sign(seed, "b_0123456789abcdef", h, 5, rs), ERR_INVALID);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grant_roundtrip),    cmocka_unit_test(grant_rules),
        cmocka_unit_test(grant_decode_limits), cmocka_unit_test(grant_signatures),
        cmocka_unit_test(revocation),          cmocka_unit_test(grantee_parse),
        cmocka_unit_test(proxy_registration), cmocka_unit_test(proxy_end),
        cmocka_unit_test(breakglass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
