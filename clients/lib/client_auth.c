/* client_auth.c: enrollment and login (see client_auth.h and PROTOCOL.md). */
#include "client_auth.h"

#include <stdlib.h>
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

/* ---- asynchronous login ---- */

struct login_flow {
    client_login_fn *cb;
    void *user;
    uint8_t seed[32];
    char identity[CLIENT_ID_MAX + 1];
};

static void flow_end(struct login_flow *f, struct client_conn *c, int rc,
                     const struct client_frame *reply)
{
    f->cb(c, rc, reply, f->user);
    sodium_memzero(f->seed, sizeof(f->seed));
    free(f);
}

static void on_login(struct client_conn *c, const struct client_frame *resp, int rc, void *user)
{
    flow_end(user, c, rc, resp);
}

static void on_challenge(struct client_conn *c, const struct client_frame *resp, int rc,
                         void *user)
{
    struct login_flow *f = user;
    struct wire_enc e;
    const uint8_t *nonce, *data;
    size_t nlen, len;
    char domain[CLIENT_DOMAIN_MAX + 1], dev[KEYS_ID_DEVICE_LEN + 1];
    uint8_t sig[64];
    uint32_t id;

    if (rc != 0) {
        flow_end(f, c, rc, resp);
        return;
    }
    if (wire_get_bin(&resp->msg.body, "nonce", &nonce, &nlen) != 0 ||
        nlen != CLIENT_NONCE_LEN ||
        wire_get_cstr(&resp->msg.body, "domain", domain, sizeof(domain)) != 0) {
        flow_end(f, c, ERR_MALFORMED, resp);
        return;
    }
    rc = client_auth_sign_login(f->seed, domain, nonce, dev, sig);
    if (rc != 0) {
        flow_end(f, c, rc, NULL);
        return;
    }
    id = client_conn_next_id(c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "auth.login", 3);
    wire_kv_str(&e, "id", f->identity);
    wire_kv_str(&e, "device", dev);
    wire_kv_bin(&e, "sig", sig, sizeof(sig));
    rc = wire_enc_finish(&e, &data, &len);
    if (rc == 0)
        rc = client_conn_send(c, id, data, len, on_login, f);
    wire_enc_reset(&e);
    if (rc != 0)
        flow_end(f, c, rc, NULL);
}

int client_auth_login_start(struct client_conn *c, const char *identity, const uint8_t seed[32],
                            client_login_fn *cb, void *user)
{
    struct login_flow *f;
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    uint32_t id;
    int rc;

    if (strlen(identity) > CLIENT_ID_MAX)
        return ERR_INVALID;
    f = calloc(1, sizeof(*f));
    if (!f)
        return ERR_NOMEM;
    f->cb = cb;
    f->user = user;
    memcpy(f->seed, seed, sizeof(f->seed));
    strcpy(f->identity, identity);
    id = client_conn_next_id(c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "auth.challenge", 0);
    rc = wire_enc_finish(&e, &data, &len);
    if (rc == 0)
        rc = client_conn_send(c, id, data, len, on_challenge, f);
    wire_enc_reset(&e);
    if (rc != 0) {
        sodium_memzero(f->seed, sizeof(f->seed));
        free(f);
    }
    return rc;
}
