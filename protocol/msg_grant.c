/*
 * msg_grant.c: GrantTBS / RevocationTBS codec, signatures, grant ids and
 * server receipts (see msg_grant.h for the formats).
 *
 * This file includes <sodium.h> directly (as keys/keys_id.c does): the
 * signatures here are plain Ed25519 over a label-prefixed byte string, not
 * MLS SignWithLabel, and sammen_wire does not link the MLS crypto library.
 */
#include "msg_grant.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "tls.h"

static const char hexdig[] = "0123456789abcdef";

static const char GRANT_LABEL[] = "sammen-grant-v1";
static const char REVOKE_LABEL[] = "sammen-revoke-v1";
static const char RECEIPT_LABEL[] = "sammen-receipt-v1";
static const char PROXY_LABEL[] = "sammen-proxy-v1";
static const char PROXY_END_LABEL[] = "sammen-proxy-end-v1";
static const char BREAKGLASS_LABEL[] = "sammen-breakglass-v1";

/* ---- string rules ------------------------------------------------------ */

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without NUL. */
static bool text_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

static bool name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (i == 0 && !alnum)
            return false;
        if (!alnum && ch != '.' && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

/* Same rule as the server's cfg_domain_valid (lower-case DNS name). */
static bool domain_valid(const char *d, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = d[i];
        if (ch == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
        if (ch == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && d[n - 1] != '-';
}

static bool hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool msg_grant_identity_valid(const char *id)
{
    const char *at = strchr(id, '@');
    if (!at)
        return false;
    return name_valid(id, (size_t)(at - id)) && domain_valid(at + 1, strlen(at + 1));
}

bool msg_grant_device_valid(const char *id)
{
    return strlen(id) == 18 && id[0] == 'd' && id[1] == '_' && hex_lower(id + 2, 16);
}

bool msg_grant_id_valid(const char *s)
{
    return strlen(s) == MSG_GRANT_GID_LEN && s[0] == 'g' && s[1] == '_' && hex_lower(s + 2, 16);
}

bool msg_grant_scope_valid(const char *scope)
{
    if (strcmp(scope, "care") == 0 || strcmp(scope, "coordination") == 0)
        return true;
    return strlen(scope) == 41 && strncmp(scope, "thread:t_", 9) == 0 && hex_lower(scope + 9, 32);
}

int msg_grant_grantee_parse(const char *grantee, enum msg_grantee_kind *kind, char *name,
                            size_t name_cap, char *domain, size_t domain_cap)
{
    enum msg_grantee_kind k = MSG_GRANTEE_PERSON;
    const char *p = grantee;
    if (strncmp(p, "department:", 11) == 0) {
        k = MSG_GRANTEE_DEPARTMENT;
        p += 11;
    } else if (strncmp(p, "association:", 12) == 0) {
        k = MSG_GRANTEE_ASSOCIATION;
        p += 12;
    }
    if (!msg_grant_identity_valid(p))
        return ERR_INVALID;
    const char *at = strchr(p, '@');
    size_t nl = (size_t)(at - p), dl = strlen(at + 1);
    if ((name && nl >= name_cap) || (domain && dl >= domain_cap))
        return ERR_INVALID;
    if (name) {
        memcpy(name, p, nl);
        name[nl] = '\0';
    }
    if (domain) {
        memcpy(domain, at + 1, dl);
        domain[dl] = '\0';
    }
    if (kind)
        *kind = k;
    return 0;
}

const char *msg_grant_form_name(uint8_t form)
{
    switch (form) {
    case MSG_GRANT_FORM_CITIZEN:
        return "citizen";
    case MSG_GRANT_FORM_PROXY:
        return "proxy";
    case MSG_GRANT_FORM_ORAL:
        return "oral";
    default:
        return NULL;
    }
}

/* A NUL-terminated field that fits cap and is valid text. */
static bool field_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    return n < cap && text_valid((const uint8_t *)s, n);
}

int msg_grant_check(const struct msg_grant *g)
{
    if (g->version != MSG_GRANT_VERSION)
        return ERR_INVALID;
    if (!field_ok(g->citizen, sizeof(g->citizen)) || !msg_grant_identity_valid(g->citizen))
        return ERR_INVALID;
    if (!field_ok(g->grantee, sizeof(g->grantee)) ||
        msg_grant_grantee_parse(g->grantee, NULL, NULL, 0, NULL, 0) != 0)
        return ERR_INVALID;
    if (strcmp(g->grantee, g->citizen) == 0)
        return ERR_INVALID; /* a citizen needs no grant to their own threads */
    if (!field_ok(g->scope, sizeof(g->scope)) || !msg_grant_scope_valid(g->scope))
        return ERR_INVALID;
    if (!field_ok(g->basis, sizeof(g->basis)) || g->basis[0] == '\0')
        return ERR_INVALID;
    if (!field_ok(g->purpose, sizeof(g->purpose)))
        return ERR_INVALID;
    if (g->expires_at != 0 && g->expires_at <= g->issued_at)
        return ERR_INVALID;
    if (!msg_grant_form_name(g->form))
        return ERR_INVALID;
    if (!field_ok(g->granter, sizeof(g->granter)) || !msg_grant_identity_valid(g->granter))
        return ERR_INVALID;
    if (!field_ok(g->granter_device, sizeof(g->granter_device)) ||
        !msg_grant_device_valid(g->granter_device))
        return ERR_INVALID;
    if (!field_ok(g->reason, sizeof(g->reason)))
        return ERR_INVALID;
    /* Oral consent must say who said what and why; signed forms carry none. */
    if ((g->form == MSG_GRANT_FORM_ORAL) != (g->reason[0] != '\0'))
        return ERR_INVALID;
    if (g->form == MSG_GRANT_FORM_CITIZEN && strcmp(g->granter, g->citizen) != 0)
        return ERR_INVALID;
    if (g->form != MSG_GRANT_FORM_CITIZEN && strcmp(g->granter, g->citizen) == 0)
        return ERR_INVALID;
    return 0;
}

void msg_grant_init(struct msg_grant *g)
{
    memset(g, 0, sizeof(*g));
    g->version = MSG_GRANT_VERSION;
    randombytes_buf(g->nonce, sizeof(g->nonce));
}

static void put_str(struct tls_writer *w, const char *s)
{
    tls_put_opaque(w, (const uint8_t *)s, strlen(s));
}

int msg_grant_encode(const struct msg_grant *g, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = msg_grant_check(g);
    if (rc)
        return rc;
    struct tls_writer w;
    tls_writer_init(&w, MSG_GRANT_TBS_MAX);
    tls_put_u16(&w, g->version);
    tls_put_fixed(&w, g->nonce, sizeof(g->nonce));
    put_str(&w, g->citizen);
    put_str(&w, g->grantee);
    put_str(&w, g->scope);
    put_str(&w, g->basis);
    put_str(&w, g->purpose);
    tls_put_u64(&w, g->issued_at);
    tls_put_u64(&w, g->expires_at);
    tls_put_u8(&w, g->form);
    put_str(&w, g->granter);
    put_str(&w, g->granter_device);
    put_str(&w, g->reason);
    rc = tls_writer_take(&w, out, len);
    return rc == ERR_TOO_BIG ? ERR_INVALID : rc;
}

/* Reads opaque<V> into dst (cap incl. NUL): ERR_TOO_BIG if it does not fit,
 * ERR_INVALID if it is not text. */
static int get_str(struct tls_reader *r, char *dst, size_t cap)
{
    const uint8_t *p;
    size_t n;
    int rc = tls_read_opaque(r, &p, &n);
    if (rc)
        return rc;
    if (n >= cap)
        return ERR_TOO_BIG;
    if (!text_valid(p, n))
        return ERR_INVALID;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* The head every TBS decoder shares: the size limit, version 1 and (nonce
 * non-NULL) the 16-byte nonce; r is left after them. */
static int read_head(struct tls_reader *r, const uint8_t *buf, size_t len, uint16_t *version,
                     uint8_t nonce[MSG_GRANT_NONCE_LEN])
{
    const uint8_t *n;
    int rc;
    if (len > MSG_GRANT_TBS_MAX)
        return ERR_TOO_BIG;
    tls_reader_init(r, buf, len);
    if ((rc = tls_read_u16(r, version)))
        return rc;
    if (*version != MSG_GRANT_VERSION)
        return ERR_UNSUPPORTED;
    if (!nonce)
        return 0;
    if ((rc = tls_read_fixed(r, MSG_GRANT_NONCE_LEN, &n)))
        return rc;
    memcpy(nonce, n, MSG_GRANT_NONCE_LEN);
    return 0;
}

int msg_grant_decode(const uint8_t *buf, size_t len, struct msg_grant *g)
{
    struct tls_reader r;
    int rc;

    memset(g, 0, sizeof(*g));
    if ((rc = read_head(&r, buf, len, &g->version, g->nonce)))
        goto out;
    if ((rc = get_str(&r, g->citizen, sizeof(g->citizen))) ||
        (rc = get_str(&r, g->grantee, sizeof(g->grantee))) ||
        (rc = get_str(&r, g->scope, sizeof(g->scope))) ||
        (rc = get_str(&r, g->basis, sizeof(g->basis))) ||
        (rc = get_str(&r, g->purpose, sizeof(g->purpose))) ||
        (rc = tls_read_u64(&r, &g->issued_at)) || (rc = tls_read_u64(&r, &g->expires_at)) ||
        (rc = tls_read_u8(&r, &g->form)) ||
        (rc = get_str(&r, g->granter, sizeof(g->granter))) ||
        (rc = get_str(&r, g->granter_device, sizeof(g->granter_device))) ||
        (rc = get_str(&r, g->reason, sizeof(g->reason))))
        goto out;
    if (!tls_reader_done(&r)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    rc = msg_grant_check(g);
out:
    if (rc)
        memset(g, 0, sizeof(*g));
    return rc;
}

/* ---- signatures -------------------------------------------------------- */

/* label 0x00 body, into a fresh buffer (free()). */
static int labelled(const char *label, const uint8_t *body, size_t len, uint8_t **out,
                    size_t *outlen)
{
    size_t ll = strlen(label);
    if (len > MSG_GRANT_TBS_MAX)
        return ERR_TOO_BIG;
    uint8_t *m = malloc(ll + 1 + len + 1);
    if (!m)
        return ERR_NOMEM;
    memcpy(m, label, ll);
    m[ll] = 0;
    if (len)
        memcpy(m + ll + 1, body, len);
    *out = m;
    *outlen = ll + 1 + len;
    return 0;
}

static int sign_labelled(const char *label, const uint8_t seed[32], const uint8_t *body,
                         size_t len, uint8_t sig[MSG_GRANT_SIG_LEN])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t *m = NULL;
    size_t mlen;
    int rc = labelled(label, body, len, &m, &mlen);
    if (rc)
        goto out;
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
        crypto_sign_detached(sig, NULL, m, mlen, sk) != 0) {
        rc = ERR_INTERNAL;
        goto out;
    }
out:
    sodium_memzero(sk, sizeof(sk));
    free(m);
    return rc;
}

static int verify_labelled(const char *label, const uint8_t pk[32], const uint8_t *body,
                           size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN])
{
    uint8_t *m = NULL;
    size_t mlen;
    int rc = labelled(label, body, len, &m, &mlen);
    if (rc)
        return rc == ERR_TOO_BIG ? ERR_CRYPTO : rc;
    if (crypto_sign_verify_detached(sig, m, mlen, pk) != 0)
        rc = ERR_CRYPTO;
    free(m);
    return rc;
}

int msg_grant_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                   uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return sign_labelled(GRANT_LABEL, seed, tbs, len, sig);
}

int msg_grant_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                     const uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return verify_labelled(GRANT_LABEL, pk, tbs, len, sig);
}

void msg_grant_hash(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                    uint8_t hash[MSG_GRANT_HASH_LEN])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, tbs, len);
    crypto_hash_sha256_update(&st, sig, MSG_GRANT_SIG_LEN);
    crypto_hash_sha256_final(&st, hash);
}

/* prefix "_" + lowercase hex of the first 8 bytes of SHA-256(tbs || sig) */
static void hash_id(char prefix, const uint8_t *tbs, size_t len,
                    const uint8_t sig[MSG_GRANT_SIG_LEN], char id[MSG_GRANT_GID_LEN + 1])
{
    uint8_t h[MSG_GRANT_HASH_LEN];
    msg_grant_hash(tbs, len, sig, h);
    id[0] = prefix;
    id[1] = '_';
    for (size_t i = 0; i < 8; i++) {
        id[2 + 2 * i] = hexdig[h[i] >> 4];
        id[3 + 2 * i] = hexdig[h[i] & 15];
    }
    id[MSG_GRANT_GID_LEN] = '\0';
}

void msg_grant_id(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                  char id[MSG_GRANT_GID_LEN + 1])
{
    hash_id('g', tbs, len, sig, id);
}

/* grant id || hash || uint64 stored_at (the receipt body after the label). */
static int receipt_body(const char *gid, const uint8_t hash[MSG_GRANT_HASH_LEN],
                        uint64_t stored_at, uint8_t body[MSG_GRANT_GID_LEN + 32 + 8])
{
    if (!msg_grant_id_valid(gid) && !msg_proxy_reg_id_valid(gid))
        return ERR_INVALID;
    memcpy(body, gid, MSG_GRANT_GID_LEN);
    memcpy(body + MSG_GRANT_GID_LEN, hash, MSG_GRANT_HASH_LEN);
    for (size_t i = 0; i < 8; i++)
        body[MSG_GRANT_GID_LEN + 32 + i] = (uint8_t)(stored_at >> (56 - 8 * i));
    return 0;
}

int msg_grant_receipt_sign(const uint8_t server_seed[32], const char *gid,
                           const uint8_t hash[MSG_GRANT_HASH_LEN], uint64_t stored_at,
                           uint8_t sig[MSG_GRANT_SIG_LEN])
{
    uint8_t body[MSG_GRANT_GID_LEN + 32 + 8];
    int rc = receipt_body(gid, hash, stored_at, body);
    if (rc)
        return rc;
    return sign_labelled(RECEIPT_LABEL, server_seed, body, sizeof(body), sig);
}

int msg_grant_receipt_verify(const uint8_t server_pk[32], const char *gid,
                             const uint8_t hash[MSG_GRANT_HASH_LEN], uint64_t stored_at,
                             const uint8_t receipt[MSG_GRANT_SIG_LEN])
{
    uint8_t body[MSG_GRANT_GID_LEN + 32 + 8];
    int rc = receipt_body(gid, hash, stored_at, body);
    if (rc)
        return rc;
    return verify_labelled(RECEIPT_LABEL, server_pk, body, sizeof(body), receipt);
}

/* ---- revocations ------------------------------------------------------- */

void msg_revocation_init(struct msg_revocation *v)
{
    memset(v, 0, sizeof(*v));
    v->version = MSG_GRANT_VERSION;
}

int msg_revocation_check(const struct msg_revocation *v)
{
    if (v->version != MSG_GRANT_VERSION)
        return ERR_INVALID;
    if (!field_ok(v->grant, sizeof(v->grant)) || !msg_grant_id_valid(v->grant))
        return ERR_INVALID;
    if (!field_ok(v->revoker, sizeof(v->revoker)) || !msg_grant_identity_valid(v->revoker))
        return ERR_INVALID;
    if (!field_ok(v->revoker_device, sizeof(v->revoker_device)) ||
        !msg_grant_device_valid(v->revoker_device))
        return ERR_INVALID;
    return 0;
}

int msg_revocation_encode(const struct msg_revocation *v, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = msg_revocation_check(v);
    if (rc)
        return rc;
    struct tls_writer w;
    tls_writer_init(&w, MSG_GRANT_TBS_MAX);
    tls_put_u16(&w, v->version);
    put_str(&w, v->grant);
    put_str(&w, v->revoker);
    put_str(&w, v->revoker_device);
    tls_put_u64(&w, v->revoked_at);
    rc = tls_writer_take(&w, out, len);
    return rc == ERR_TOO_BIG ? ERR_INVALID : rc;
}

int msg_revocation_decode(const uint8_t *buf, size_t len, struct msg_revocation *v)
{
    struct tls_reader r;
    int rc;

    memset(v, 0, sizeof(*v));
    if ((rc = read_head(&r, buf, len, &v->version, NULL)))
        goto out;
    if ((rc = get_str(&r, v->grant, sizeof(v->grant))) ||
        (rc = get_str(&r, v->revoker, sizeof(v->revoker))) ||
        (rc = get_str(&r, v->revoker_device, sizeof(v->revoker_device))) ||
        (rc = tls_read_u64(&r, &v->revoked_at)))
        goto out;
    if (!tls_reader_done(&r)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    rc = msg_revocation_check(v);
out:
    if (rc)
        memset(v, 0, sizeof(*v));
    return rc;
}

int msg_revocation_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                        uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return sign_labelled(REVOKE_LABEL, seed, tbs, len, sig);
}

int msg_revocation_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                          const uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return verify_labelled(REVOKE_LABEL, pk, tbs, len, sig);
}

/* ---- proxy registrations ----------------------------------------------- */

bool msg_proxy_reg_basis_valid(const char *basis)
{
    return strcmp(basis, "guardianship") == 0 || strcmp(basis, "power-of-attorney") == 0;
}

void msg_proxy_reg_init(struct msg_proxy_reg *p)
{
    memset(p, 0, sizeof(*p));
    p->version = MSG_GRANT_VERSION;
    randombytes_buf(p->nonce, sizeof(p->nonce));
}

int msg_proxy_reg_check(const struct msg_proxy_reg *p)
{
    if (p->version != MSG_GRANT_VERSION)
        return ERR_INVALID;
    if (!field_ok(p->citizen, sizeof(p->citizen)) || !msg_grant_identity_valid(p->citizen))
        return ERR_INVALID;
    if (!field_ok(p->proxy, sizeof(p->proxy)) || !msg_grant_identity_valid(p->proxy))
        return ERR_INVALID;
    if (!field_ok(p->basis, sizeof(p->basis)) || !msg_proxy_reg_basis_valid(p->basis))
        return ERR_INVALID;
    if (!field_ok(p->registrar, sizeof(p->registrar)) ||
        !msg_grant_identity_valid(p->registrar))
        return ERR_INVALID;
    if (!field_ok(p->registrar_device, sizeof(p->registrar_device)) ||
        !msg_grant_device_valid(p->registrar_device))
        return ERR_INVALID;
    /* A citizen is not their own proxy, and nobody registers themselves. */
    if (strcmp(p->proxy, p->citizen) == 0 || strcmp(p->registrar, p->citizen) == 0 ||
        strcmp(p->registrar, p->proxy) == 0)
        return ERR_INVALID;
    return 0;
}

int msg_proxy_reg_encode(const struct msg_proxy_reg *p, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = msg_proxy_reg_check(p);
    if (rc)
        return rc;
    struct tls_writer w;
    tls_writer_init(&w, MSG_GRANT_TBS_MAX);
    tls_put_u16(&w, p->version);
    tls_put_fixed(&w, p->nonce, sizeof(p->nonce));
    put_str(&w, p->citizen);
    put_str(&w, p->proxy);
    put_str(&w, p->basis);
    tls_put_u64(&w, p->registered_at);
    put_str(&w, p->registrar);
    put_str(&w, p->registrar_device);
    rc = tls_writer_take(&w, out, len);
    return rc == ERR_TOO_BIG ? ERR_INVALID : rc;
}

int msg_proxy_reg_decode(const uint8_t *buf, size_t len, struct msg_proxy_reg *p)
{
    struct tls_reader r;
    int rc;

    memset(p, 0, sizeof(*p));
    if ((rc = read_head(&r, buf, len, &p->version, p->nonce)))
        goto out;
    if ((rc = get_str(&r, p->citizen, sizeof(p->citizen))) ||
        (rc = get_str(&r, p->proxy, sizeof(p->proxy))) ||
        (rc = get_str(&r, p->basis, sizeof(p->basis))) ||
        (rc = tls_read_u64(&r, &p->registered_at)) ||
        (rc = get_str(&r, p->registrar, sizeof(p->registrar))) ||
        (rc = get_str(&r, p->registrar_device, sizeof(p->registrar_device))))
        goto out;
    if (!tls_reader_done(&r)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    rc = msg_proxy_reg_check(p);
out:
    if (rc)
        memset(p, 0, sizeof(*p));
    return rc;
}

int msg_proxy_reg_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                       uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return sign_labelled(PROXY_LABEL, seed, tbs, len, sig);
}

int msg_proxy_reg_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                         const uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return verify_labelled(PROXY_LABEL, pk, tbs, len, sig);
}


void msg_proxy_reg_id(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                      char id[MSG_GRANT_GID_LEN + 1])
{
    hash_id('p', tbs, len, sig, id);
}

bool msg_proxy_reg_id_valid(const char *s)
{
    return strlen(s) == MSG_GRANT_GID_LEN && s[0] == 'p' && s[1] == '_' && hex_lower(s + 2, 16);
}

/* ---- proxy ends -------------------------------------------------------- */

void msg_proxy_end_init(struct msg_proxy_end *p)
{
    memset(p, 0, sizeof(*p));
    p->version = MSG_GRANT_VERSION;
    randombytes_buf(p->nonce, sizeof(p->nonce));
}

int msg_proxy_end_check(const struct msg_proxy_end *p)
{
    if (p->version != MSG_GRANT_VERSION)
        return ERR_INVALID;
    if (!field_ok(p->registration, sizeof(p->registration)) ||
        !msg_proxy_reg_id_valid(p->registration))
        return ERR_INVALID;
    if (!field_ok(p->citizen, sizeof(p->citizen)) || !msg_grant_identity_valid(p->citizen))
        return ERR_INVALID;
    if (!field_ok(p->proxy, sizeof(p->proxy)) || !msg_grant_identity_valid(p->proxy))
        return ERR_INVALID;
    if (!field_ok(p->ender, sizeof(p->ender)) || !msg_grant_identity_valid(p->ender))
        return ERR_INVALID;
    if (!field_ok(p->ender_device, sizeof(p->ender_device)) ||
        !msg_grant_device_valid(p->ender_device))
        return ERR_INVALID;
    /* as for registrations: staff act on someone else's relationship */
    if (strcmp(p->proxy, p->citizen) == 0 || strcmp(p->ender, p->citizen) == 0 ||
        strcmp(p->ender, p->proxy) == 0)
        return ERR_INVALID;
    return 0;
}

int msg_proxy_end_encode(const struct msg_proxy_end *p, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = msg_proxy_end_check(p);
    if (rc)
        return rc;
    struct tls_writer w;
    tls_writer_init(&w, MSG_GRANT_TBS_MAX);
    tls_put_u16(&w, p->version);
    tls_put_fixed(&w, p->nonce, sizeof(p->nonce));
    put_str(&w, p->registration);
    put_str(&w, p->citizen);
    put_str(&w, p->proxy);
    tls_put_u64(&w, p->ended_at);
    put_str(&w, p->ender);
    put_str(&w, p->ender_device);
    rc = tls_writer_take(&w, out, len);
    return rc == ERR_TOO_BIG ? ERR_INVALID : rc;
}

int msg_proxy_end_decode(const uint8_t *buf, size_t len, struct msg_proxy_end *p)
{
    struct tls_reader r;
    int rc;

    memset(p, 0, sizeof(*p));
    if ((rc = read_head(&r, buf, len, &p->version, p->nonce)))
        goto out;
    if ((rc = get_str(&r, p->registration, sizeof(p->registration))) ||
        (rc = get_str(&r, p->citizen, sizeof(p->citizen))) ||
        (rc = get_str(&r, p->proxy, sizeof(p->proxy))) ||
        (rc = tls_read_u64(&r, &p->ended_at)) ||
        (rc = get_str(&r, p->ender, sizeof(p->ender))) ||
        (rc = get_str(&r, p->ender_device, sizeof(p->ender_device))))
        goto out;
    if (!tls_reader_done(&r)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    rc = msg_proxy_end_check(p);
out:
    if (rc)
        memset(p, 0, sizeof(*p));
    return rc;
}

int msg_proxy_end_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                       uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return sign_labelled(PROXY_END_LABEL, seed, tbs, len, sig);
}

int msg_proxy_end_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                         const uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return verify_labelled(PROXY_END_LABEL, pk, tbs, len, sig);
}

/* ---- break-glass accesses ---------------------------------------------- */

bool msg_breakglass_thread_valid(const char *s)
{
    return strlen(s) == 34 && s[0] == 't' && s[1] == '_' && hex_lower(s + 2, 32);
}

void msg_breakglass_init(struct msg_breakglass *b)
{
    memset(b, 0, sizeof(*b));
    b->version = MSG_GRANT_VERSION;
    randombytes_buf(b->nonce, sizeof(b->nonce));
}

int msg_breakglass_check(const struct msg_breakglass *b)
{
    if (b->version != MSG_GRANT_VERSION)
        return ERR_INVALID;
    if (!field_ok(b->citizen, sizeof(b->citizen)) || !msg_grant_identity_valid(b->citizen))
        return ERR_INVALID;
    if (!field_ok(b->thread, sizeof(b->thread)) || !msg_breakglass_thread_valid(b->thread))
        return ERR_INVALID;
    if (!field_ok(b->staff, sizeof(b->staff)) || !msg_grant_identity_valid(b->staff))
        return ERR_INVALID;
    if (!field_ok(b->staff_device, sizeof(b->staff_device)) ||
        !msg_grant_device_valid(b->staff_device))
        return ERR_INVALID;
    if (!field_ok(b->reason, sizeof(b->reason)) ||
        strlen(b->reason) < MSG_BREAKGLASS_REASON_MIN)
        return ERR_INVALID;
    if (b->hours < 1 || b->hours > MSG_BREAKGLASS_HOURS_MAX)
        return ERR_INVALID;
    if (strcmp(b->staff, b->citizen) == 0)
        return ERR_INVALID; /* a citizen needs no break-glass into their own thread */
    return 0;
}

int msg_breakglass_encode(const struct msg_breakglass *b, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = msg_breakglass_check(b);
    if (rc)
        return rc;
    struct tls_writer w;
    tls_writer_init(&w, MSG_GRANT_TBS_MAX);
    tls_put_u16(&w, b->version);
    tls_put_fixed(&w, b->nonce, sizeof(b->nonce));
    put_str(&w, b->citizen);
    put_str(&w, b->thread);
    put_str(&w, b->staff);
    put_str(&w, b->staff_device);
    put_str(&w, b->reason);
    tls_put_u64(&w, b->opened_at);
    tls_put_u16(&w, b->hours);
    rc = tls_writer_take(&w, out, len);
    return rc == ERR_TOO_BIG ? ERR_INVALID : rc;
}

int msg_breakglass_decode(const uint8_t *buf, size_t len, struct msg_breakglass *b)
{
    struct tls_reader r;
    int rc;

    memset(b, 0, sizeof(*b));
    if ((rc = read_head(&r, buf, len, &b->version, b->nonce)))
        goto out;
    if ((rc = get_str(&r, b->citizen, sizeof(b->citizen))) ||
        (rc = get_str(&r, b->thread, sizeof(b->thread))) ||
        (rc = get_str(&r, b->staff, sizeof(b->staff))) ||
        (rc = get_str(&r, b->staff_device, sizeof(b->staff_device))) ||
        (rc = get_str(&r, b->reason, sizeof(b->reason))) ||
        (rc = tls_read_u64(&r, &b->opened_at)) || (rc = tls_read_u16(&r, &b->hours)))
        goto out;
    if (!tls_reader_done(&r)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    rc = msg_breakglass_check(b);
out:
    if (rc)
        memset(b, 0, sizeof(*b));
    return rc;
}

int msg_breakglass_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                        uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return sign_labelled(BREAKGLASS_LABEL, seed, tbs, len, sig);
}

int msg_breakglass_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                          const uint8_t sig[MSG_GRANT_SIG_LEN])
{
    return verify_labelled(BREAKGLASS_LABEL, pk, tbs, len, sig);
}

void msg_breakglass_id(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                       char id[MSG_GRANT_GID_LEN + 1])
{
    hash_id('b', tbs, len, sig, id);
}
