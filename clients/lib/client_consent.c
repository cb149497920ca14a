/*
 * client_consent.c: signed grants and revocations on the device
 * (client_consent.h). The canonical bytes and signatures are msg_grant.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client_consent.h"
#include "err.h"
#include "keys_id.h"

int client_consent_sign_grant(const struct msg_grant *g, const uint8_t seed[32], uint8_t **tbs,
                              size_t *tbs_len, uint8_t sig[MSG_GRANT_SIG_LEN],
                              char gid[MSG_GRANT_GID_LEN + 1])
{
    int rc;

    *tbs = NULL;
    *tbs_len = 0;
    if ((rc = msg_grant_check(g)) != 0)
        return rc;
    if ((rc = msg_grant_encode(g, tbs, tbs_len)) != 0)
        return rc;
    if ((rc = msg_grant_sign(seed, *tbs, *tbs_len, sig)) != 0) {
        free(*tbs);
        *tbs = NULL;
        return rc;
    }
    msg_grant_id(*tbs, *tbs_len, sig, gid);
    return 0;
}

int client_consent_sign_revocation(const char *grant, const char *revoker, const char *device,
                                   uint64_t at, const uint8_t seed[32], uint8_t **tbs,
                                   size_t *tbs_len, uint8_t sig[MSG_GRANT_SIG_LEN])
{
    struct msg_revocation v;
    int rc;

    *tbs = NULL;
    *tbs_len = 0;
    msg_revocation_init(&v);
    if (strlen(grant) >= sizeof(v.grant) || strlen(revoker) >= sizeof(v.revoker) ||
        strlen(device) >= sizeof(v.revoker_device))
        return ERR_INVALID;
    strcpy(v.grant, grant);
    strcpy(v.revoker, revoker);
    strcpy(v.revoker_device, device);
    v.revoked_at = at;
    if ((rc = msg_revocation_check(&v)) != 0 || (rc = msg_revocation_encode(&v, tbs, tbs_len)) != 0)
        return rc;
    if ((rc = msg_revocation_sign(seed, *tbs, *tbs_len, sig)) != 0) {
        free(*tbs);
        *tbs = NULL;
    }
    return rc;
}

int client_consent_verify(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                          size_t sig_len, const uint8_t *granter_key, size_t key_len,
                          const char *grant_id, struct msg_grant *g)
{
    char dev[KEYS_ID_DEVICE_LEN + 1], gid[MSG_GRANT_GID_LEN + 1];
    int rc;

    if (sig_len != MSG_GRANT_SIG_LEN || key_len != 32)
        return ERR_CRYPTO;
    if ((rc = msg_grant_decode(tbs, tbs_len, g)) != 0)
        return rc;
    keys_id_device(granter_key, dev);
    if (strcmp(dev, g->granter_device) != 0)
        return ERR_CRYPTO;
    if (msg_grant_verify(granter_key, tbs, tbs_len, sig) != 0)
        return ERR_CRYPTO;
    msg_grant_id(tbs, tbs_len, sig, gid);
    if (!grant_id || strcmp(gid, grant_id) != 0)
        return ERR_CRYPTO;
    /* the form must match who signed (the server checks the roles; this is
     * what a client can see for itself) */
    if (g->form == MSG_GRANT_FORM_CITIZEN && strcmp(g->granter, g->citizen) != 0)
        return ERR_CRYPTO;
    return 0;
}

/* The listed key must be the signing device's (its id is derived from it). */
static int key_of(const uint8_t *key, size_t key_len, const char *device)
{
    char dev[KEYS_ID_DEVICE_LEN + 1];
    if (key_len != 32)
        return ERR_CRYPTO;
    keys_id_device(key, dev);
    return strcmp(dev, device) == 0 ? 0 : ERR_CRYPTO;
}

int client_consent_verify_proxy(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                                size_t sig_len, const uint8_t *registrar_key, size_t key_len,
                                const char *reg_id, struct msg_proxy_reg *p)
{
    char id[MSG_GRANT_GID_LEN + 1];
    int rc;

    if (sig_len != MSG_GRANT_SIG_LEN || key_len != 32)
        return ERR_CRYPTO;
    if ((rc = msg_proxy_reg_decode(tbs, tbs_len, p)) != 0)
        return rc;
    if (key_of(registrar_key, key_len, p->registrar_device) != 0 ||
        msg_proxy_reg_verify(registrar_key, tbs, tbs_len, sig) != 0)
        return ERR_CRYPTO;
    msg_proxy_reg_id(tbs, tbs_len, sig, id);
    if (!reg_id || strcmp(id, reg_id) != 0)
        return ERR_CRYPTO;
    return 0;
}

int client_consent_verify_proxy_end(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                                    size_t sig_len, const uint8_t *ender_key, size_t key_len,
                                    struct msg_proxy_end *e)
{
    int rc;

    if (sig_len != MSG_GRANT_SIG_LEN || key_len != 32)
        return ERR_CRYPTO;
    if ((rc = msg_proxy_end_decode(tbs, tbs_len, e)) != 0)
        return rc;
    if (key_of(ender_key, key_len, e->ender_device) != 0 ||
        msg_proxy_end_verify(ender_key, tbs, tbs_len, sig) != 0)
        return ERR_CRYPTO;
    return 0;
}

int client_consent_verify_breakglass(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                                     size_t sig_len, const uint8_t *staff_key, size_t key_len,
                                     const char *access_id, struct msg_breakglass *b)
{
    char id[MSG_GRANT_GID_LEN + 1];
    int rc;

    if (sig_len != MSG_GRANT_SIG_LEN || key_len != 32)
        return ERR_CRYPTO;
    if ((rc = msg_breakglass_decode(tbs, tbs_len, b)) != 0)
        return rc;
    if (key_of(staff_key, key_len, b->staff_device) != 0 ||
        msg_breakglass_verify(staff_key, tbs, tbs_len, sig) != 0)
        return ERR_CRYPTO;
    msg_breakglass_id(tbs, tbs_len, sig, id);
    if (!access_id || strcmp(id, access_id) != 0)
        return ERR_CRYPTO;
    return 0;
}

bool client_consent_covers(const struct msg_grant *g, const char *citizen, const char *thread,
                           const char *kind, uint64_t now)
{
    if (strcmp(g->citizen, citizen) != 0)
        return false;
    if (g->expires_at != 0 && now >= g->expires_at)
        return false;
    if (kind && strcmp(g->scope, kind) == 0)
        return true;
    return thread && strncmp(g->scope, "thread:", 7) == 0 && strcmp(g->scope + 7, thread) == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int client_consent_parse_time(const char *s, uint64_t now, uint64_t *out)
{
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    char unit;

    if (s[0] == '+') {
        unsigned long v;
        if (sscanf(s, "+%lu%c%n", &v, &unit, &n) != 2 || s[n] != '\0' || v > 100000)
            return ERR_INVALID;
        if (unit == 'd')
            *out = now + (uint64_t)v * 86400u;
        else if (unit == 'h')
            *out = now + (uint64_t)v * 3600u;
        else if (unit == 's')
            *out = now + (uint64_t)v;
        else
            return ERR_INVALID;
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return ERR_INVALID;
    s += n;
    if (*s == 'T' || *s == ' ') {
        int m2 = 0;
        if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &m2) != 2)
            return ERR_INVALID;
        s += 1 + m2;
        if (*s == ':') {
            if (sscanf(s + 1, "%2d%n", &se, &m2) != 1)
                return ERR_INVALID;
            s += 1 + m2;
        }
        if (*s == 'Z')
            s++;
    }
    if (*s != '\0' || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || se > 60 || h < 0 || mi < 0 || se < 0)
        return ERR_INVALID;
    *out = (uint64_t)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se);
    return 0;
}

int client_consent_qualify(const char *s, const char *domain, char *out, size_t cap)
{
    int n;

    if (strchr(s, '@'))
        n = snprintf(out, cap, "%s", s);
    else
        n = snprintf(out, cap, "%s@%s", s, domain);
    return n < 0 || (size_t)n >= cap ? ERR_TOO_BIG : 0;
}
