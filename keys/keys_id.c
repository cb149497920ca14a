/* keys_id.c: device ids, fingerprints and signed messages (see keys_id.h). */
#include "keys_id.h"

#include <string.h>

#include <sodium.h>

#include "err.h"

static const char hexdig[] = "0123456789abcdef";

void keys_id_device(const uint8_t pk[32], char out[KEYS_ID_DEVICE_LEN + 1])
{
    uint8_t h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, pk, 32);
    out[0] = 'd';
    out[1] = '_';
    for (size_t i = 0; i < 8; i++) {
        out[2 + 2 * i] = hexdig[h[i] >> 4];
        out[3 + 2 * i] = hexdig[h[i] & 15];
    }
    out[KEYS_ID_DEVICE_LEN] = '\0';
}

void keys_id_fingerprint(const uint8_t pk[32], char out[KEYS_ID_FINGERPRINT_LEN + 1])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    size_t o = 0;

    crypto_hash_sha256(h, pk, 32);
    for (size_t i = 0; i < sizeof(h); i++) {
        /* a space before every group of 4 hex digits but the first */
        if (i > 0 && i % 2 == 0)
            out[o++] = ' ';
        out[o++] = hexdig[h[i] >> 4];
        out[o++] = hexdig[h[i] & 15];
    }
    out[o] = '\0';
}

/* Appends n bytes at *off, or reports overflow. */
static int put(uint8_t *buf, size_t cap, size_t *off, const void *p, size_t n)
{
    if (n > cap - *off)
        return ERR_TOO_BIG;
    memcpy(buf + *off, p, n);
    *off += n;
    return 0;
}

int keys_id_login_msg(const char *domain, const uint8_t *nonce, size_t nonce_len,
                      const char *device_id, uint8_t *buf, size_t cap, size_t *len)
{
    static const char label[] = "sammen-login-v1";
    static const uint8_t zero = 0;
    size_t off = 0;

    *len = 0;
    if (put(buf, cap, &off, label, sizeof(label) - 1) || put(buf, cap, &off, &zero, 1) ||
        put(buf, cap, &off, domain, strlen(domain)) || put(buf, cap, &off, &zero, 1) ||
        put(buf, cap, &off, nonce, nonce_len) ||
        put(buf, cap, &off, device_id, strlen(device_id)))
        return ERR_TOO_BIG;
    *len = off;
    return 0;
}

int keys_id_enroll_msg(const char *code, uint8_t *buf, size_t cap, size_t *len)
{
    static const char label[] = "sammen-enroll-v1";
    static const uint8_t zero = 0;
    size_t off = 0;

    *len = 0;
    if (put(buf, cap, &off, label, sizeof(label) - 1) || put(buf, cap, &off, &zero, 1) ||
        put(buf, cap, &off, code, strlen(code)))
        return ERR_TOO_BIG;
    *len = off;
    return 0;
}

int keys_id_public(const uint8_t seed[32], uint8_t pk[32])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    int rc = crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : ERR_INTERNAL;

    sodium_memzero(sk, sizeof(sk));
    return rc;
}

int keys_id_sign(const uint8_t seed[32], const uint8_t *msg, size_t len, uint8_t sig[64])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    int rc = ERR_INTERNAL;

    if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
        goto out;
    if (crypto_sign_detached(sig, NULL, msg, len, sk) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(sk, sizeof(sk));
    return rc;
}

int keys_id_verify(const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : ERR_CRYPTO;
}
