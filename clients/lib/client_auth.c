/* client_auth.c: enrollment and login (see client_auth.h and PROTOCOL.md). */
#include "client_auth.h"

#include <string.h>

#include <sodium.h>

#include "client_sync.h"
#include "err.h"
#include "keys_id.h"

int client_auth_challenge(struct client_conn *c, int timeout_ms, uint8_t nonce[CLIENT_NONCE_LEN],
                          char domain[CLIENT_DOMAIN_MAX + 1], struct client_frame *reply)
{
    struct wire_enc e;
    struct client_frame r;
    const uint8_t *n;
    size_t nlen;
    uint32_t id = client_conn_next_id(c);
    int rc;

    wire_enc_init(&e);
    wire_enc_request(&e, id, "auth.challenge", 0);
    rc = client_sync_call(c, id, &e, timeout_ms, &r);
    wire_enc_reset(&e);
    if (rc != 0)
        goto out;
    if (wire_get_bin(&r.msg.body, "nonce", &n, &nlen) != 0 || nlen != CLIENT_NONCE_LEN ||
        wire_get_cstr(&r.msg.body, "domain", domain, CLIENT_DOMAIN_MAX + 1) != 0) {
        rc = ERR_MALFORMED;
        goto out;
    }
    memcpy(nonce, n, CLIENT_NONCE_LEN);
out:
    if (reply)
        *reply = r;
    else
        client_frame_free(&r);
    return rc;
}

int client_auth_sign_login(const uint8_t seed[32], const char *domain,
                           const uint8_t nonce[CLIENT_NONCE_LEN], char device_out[19],
                           uint8_t sig[64])
{
    uint8_t pk[32], msg[512];
    char dev[KEYS_ID_DEVICE_LEN + 1];
    size_t len;
    int rc;

    rc = keys_id_public(seed, pk);
    if (rc != 0)
        return rc;
    keys_id_device(pk, dev);
    rc = keys_id_login_msg(domain, nonce, CLIENT_NONCE_LEN, dev, msg, sizeof(msg), &len);
    if (rc != 0)
        return rc;
    rc = keys_id_sign(seed, msg, len, sig);
    if (rc == 0 && device_out)
        memcpy(device_out, dev, sizeof(dev));
    return rc;
}

int client_auth_send_login(struct client_conn *c, const char *identity, const char *device,
                           const uint8_t sig[64], int timeout_ms, struct client_frame *reply)
{
    struct wire_enc e;
    struct client_frame r;
    uint32_t id = client_conn_next_id(c);
    int rc;

    wire_enc_init(&e);
    wire_enc_request(&e, id, "auth.login", 3);
    wire_kv_str(&e, "id", identity);
    wire_kv_str(&e, "device", device);
    wire_kv_bin(&e, "sig", sig, 64);
    rc = client_sync_call(c, id, &e, timeout_ms, &r);
    wire_enc_reset(&e);
    if (reply)
        *reply = r;
    else
        client_frame_free(&r);
    return rc;
}

int client_auth_login(struct client_conn *c, const char *identity, const uint8_t seed[32],
                      int timeout_ms, struct client_frame *reply)
{
    uint8_t nonce[CLIENT_NONCE_LEN], sig[64];
    char domain[CLIENT_DOMAIN_MAX + 1], dev[KEYS_ID_DEVICE_LEN + 1];
    int64_t deadline = client_sync_now_ms() + timeout_ms;
    int rc;

    if (reply)
        memset(reply, 0, sizeof(*reply));
    rc = client_auth_challenge(c, timeout_ms, nonce, domain, reply);
    if (rc != 0)
        return rc;
    if (reply)
        client_frame_free(reply);
    rc = client_auth_sign_login(seed, domain, nonce, dev, sig);
    if (rc != 0)
        return rc;
    int64_t left = deadline - client_sync_now_ms();
    return client_auth_send_login(c, identity, dev, sig, left > 0 ? (int)left : 1, reply);
}

int client_auth_enroll(struct client_conn *c, const char *code, const uint8_t seed[32],
                       const char *label, int timeout_ms, struct client_frame *reply)
{
    struct wire_enc e;
    struct client_frame r;
    uint8_t pk[32], msg[256], sig[64];
    size_t len;
    uint32_t id;
    int rc;

    memset(&r, 0, sizeof(r));
    rc = keys_id_public(seed, pk);
    if (rc == 0)
        rc = keys_id_enroll_msg(code, msg, sizeof(msg), &len);
    if (rc == 0)
        rc = keys_id_sign(seed, msg, len, sig);
    if (rc != 0)
        goto out;
    id = client_conn_next_id(c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "enroll", label ? 4 : 3);
    wire_kv_str(&e, "code", code);
    wire_kv_bin(&e, "key", pk, sizeof(pk));
    wire_kv_bin(&e, "sig", sig, sizeof(sig));
    if (label)
        wire_kv_str(&e, "label", label);
    rc = client_sync_call(c, id, &e, timeout_ms, &r);
    wire_enc_reset(&e);
out:
    if (reply)
        *reply = r;
    else
        client_frame_free(&r);
    return rc;
}
