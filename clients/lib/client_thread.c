/*
 * client_thread.c: KeyPackage stock, the sync engine and thread operations
 * (client_thread.h). Start at client_thread_sync(): fetch() pulls the inbox
 * and hands each entry to one of on_welcome() / on_handshake() / on_app() /
 * on_notice(); commit_pending() then commits the server's proposals.
 *
 * State records (client_state.h), all encrypted:
 * | kind      | k                      | value                                  |
 * |-----------|------------------------|----------------------------------------|
 * | meta      | "cursor", "server_key" | u64 / 32 bytes                         |
 * | group     | thread id              | mls_group_save()                       |
 * | kp        | hex(KeyPackageRef)     | u8 KP_*, mls_kp_save(); time: made,    |
 * |           |                        | or retired for KP_RETIRED              |
 * | msg       | thread "/" %020 number | MsgRecord (below); seq = number        |
 * | notice    | %020 inbox seq         | the notice's msgpack map               |
 * | pending   | thread id              | "" (external proposals to commit)      |
 * | refuse    | thread id              | why this device will not commit them   |
 * | add       | thread "/" identity    | fingerprint of a device the server     |
 * |           |                        | proposed (credential checked)          |
 * | fail      | %020 inbox seq         | why an entry could not be used         |
 *
 * MsgRecord: u8 version(1), opaque sender<V>, opaque device<V>,
 * opaque text<V>, opaque error<V> (empty when decrypted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client_consent.h"
#include "client_sync.h"
#include "client_thread.h"
#include "crypto.h"
#include "err.h"
#include "keys_id.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "mls_struct.h"
#include "msg_grant.h"
#include "tls.h"
#include "wire.h"

#define SYNC_LIMIT 200
#define SYNC_MAX_ROUNDS 1000 /* 200k entries per operation at most */
#define COMMIT_TRIES 4
#define SEND_TRIES 4
#define MAX_KPS 64
#define KP_LIFETIME (180u * 86400u)
/* A retired last-resort KeyPackage keeps its private keys this long after
 * its replacement was uploaded, for Welcomes from commits made with it
 * before (RFC 9420 section 16.8: then it is deleted, for forward secrecy). */
#define KP_RETIRED_GRACE (7u * 86400u)

/* The first byte of a "kp" record. */
enum {
    KP_ORDINARY = 0, /* handed out once: deleted once a Welcome used it */
    KP_LAST_RESORT = 1, /* the current last-resort package (reusable) */
    KP_RETIRED = 2,  /* a last-resort package used or replaced */
};

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static void set_err(struct client_dev *d, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static void set_err(struct client_dev *d, const char *code, const char *fmt, ...)
{
    va_list ap;
    snprintf(d->err_code, sizeof(d->err_code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(d->err_msg, sizeof(d->err_msg), fmt, ap);
    va_end(ap);
}

/* ---- device --------------------------------------------------------------- */

int client_dev_open(struct client_conn *conn, const char *dir, const char *id,
                    const char *device, const char *domain, const uint8_t seed[32],
                    int timeout_ms, struct client_dev **out)
{
    struct client_dev *d;
    int rc;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return ERR_NOMEM;
    d->seed = sodium_malloc(32);
    if (!d->seed) {
        free(d);
        return ERR_NOMEM;
    }
    memcpy(d->seed, seed, 32);
    if (keys_id_public(seed, d->pub) != 0) {
        rc = ERR_INTERNAL;
        goto out;
    }
    if (strlen(id) >= sizeof(d->id) || strlen(device) >= sizeof(d->device) ||
        strlen(domain) >= sizeof(d->domain)) {
        rc = ERR_TOO_BIG;
        goto out;
    }
    strcpy(d->id, id);
    strcpy(d->device, device);
    strcpy(d->domain, domain);
    d->conn = conn;
    d->timeout_ms = timeout_ms;
    /* the first sync acknowledges the stored cursor even when nothing new
     * came: an ack of the last session may not have reached the server */
    d->ack_due = true;
    rc = client_state_open(dir, seed, &d->st);
out:
    if (rc != 0) {
        client_dev_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void client_dev_free(struct client_dev *d)
{
    if (!d)
        return;
    client_frame_free(&d->ledger);
    client_state_close(d->st);
    sodium_free(d->seed);
    free(d);
}

int client_dev_call(struct client_dev *d, uint32_t id, struct wire_enc *e,
                    struct client_frame *reply)
{
    int rc = client_sync_call(d->conn, id, e, d->timeout_ms, reply);

    d->err_code[0] = '\0';
    d->err_msg[0] = '\0';
    if (rc != 0) {
        if (reply->buf && !reply->msg.ok && reply->msg.kind == WIRE_RESPONSE) {
            size_t n = reply->msg.err_msg_len < sizeof(d->err_msg) - 1 ? reply->msg.err_msg_len
                                                                       : sizeof(d->err_msg) - 1;
            snprintf(d->err_code, sizeof(d->err_code), "%s", reply->msg.name);
            if (reply->msg.err_msg)
                memcpy(d->err_msg, reply->msg.err_msg, n);
            d->err_msg[n] = '\0';
        } else {
            set_err(d, rc == ERR_EXPIRED ? "timeout" : rc == ERR_IO ? "io" : err_str(rc),
                    "%s", rc == ERR_EXPIRED ? "no answer from the server in time"
                          : rc == ERR_IO    ? "the connection to the server was closed"
                                            : err_str(rc));
        }
    }
    return rc;
}

/* Starts a request: returns its id. */
static uint32_t req(struct client_dev *d, struct wire_enc *e, const char *op, uint32_t n)
{
    uint32_t id = client_conn_next_id(d->conn);
    wire_enc_init(e);
    wire_enc_request(e, id, op, n);
    return id;
}

/* Calls and frees the encoder. */
static int call(struct client_dev *d, uint32_t id, struct wire_enc *e, struct client_frame *r)
{
    int rc = client_dev_call(d, id, e, r);
    wire_enc_reset(e);
    return rc;
}

int client_dev_server_key(struct client_dev *d)
{
    struct wire_enc e;
    struct client_frame r;
    const uint8_t *key;
    uint8_t *pinned = NULL;
    size_t klen, plen = 0;
    uint32_t id;
    int rc;

    if (d->have_server_key)
        return 0;
    id = req(d, &e, "server.info", 0);
    if ((rc = call(d, id, &e, &r)) != 0)
        goto out;
    if (wire_get_bin(&r.msg.body, "key", &key, &klen) != 0 || klen != 32) {
        set_err(d, "malformed", "server.info: no 32-byte key");
        rc = ERR_MALFORMED;
        goto out;
    }
    rc = client_state_get(d->st, "meta", "server_key", &pinned, &plen);
    if (rc == ERR_NOT_FOUND) {
        rc = client_state_put(d->st, "meta", "server_key", NULL, 0, 0, key, 32);
    } else if (rc == 0) {
        if (plen != 32 || sodium_memcmp(pinned, key, 32) != 0) {
            set_err(d, "crypto", "the server's key changed since this device first saw it");
            rc = ERR_CRYPTO;
        }
    }
    if (rc == 0) {
        memcpy(d->server_key, key, 32);
        d->have_server_key = true;
    }
out:
    free(pinned);
    client_frame_free(&r);
    return rc;
}

/* ---- KeyPackages ------------------------------------------------------------ */

static int own_identity(const struct client_dev *d, uint8_t *buf, size_t cap, size_t *len)
{
    return mls_kp_identity(d->id, d->pub, buf, cap, len);
}

/* Creates a KeyPackage and stores its private parts; *msg is the
 * MLSMessage to upload (free()), ref_hex the state key. */
static int kp_make(struct client_dev *d, bool last_resort, uint8_t **msg, size_t *msg_len,
                   char ref_hex[65])
{
    uint8_t ident[MLS_KP_MAX_IDENTITY], *saved = NULL, *val = NULL;
    size_t ilen, slen = 0;
    struct mls_kp *kp = NULL;
    uint64_t now = now_s();
    int rc;

    *msg = NULL;
    if ((rc = own_identity(d, ident, sizeof(ident), &ilen)) != 0 ||
        (rc = mls_kp_create(ident, ilen, d->seed, now - 86400, now + KP_LIFETIME, &kp)) != 0 ||
        (rc = mls_kp_save(kp, &saved, &slen)) != 0)
        goto out;
    val = malloc(slen + 1);
    if (!val) {
        rc = ERR_NOMEM;
        goto out;
    }
    val[0] = last_resort ? KP_LAST_RESORT : KP_ORDINARY;
    memcpy(val + 1, saved, slen);
    sodium_bin2hex(ref_hex, 65, mls_kp_ref(kp), 32);
    if ((rc = client_state_put(d->st, "kp", ref_hex, NULL, 0, now, val, slen + 1)) != 0)
        goto out;
    rc = mls_kp_message(kp, msg, msg_len);
out:
    if (saved) {
        sodium_memzero(saved, slen);
        free(saved);
    }
    if (val) {
        sodium_memzero(val, slen + 1);
        free(val);
    }
    mls_kp_free(kp);
    return rc;
}

/* Rewrites the flag byte and time of stored KeyPackage ref. */
static int kp_set_flag(struct client_dev *d, const char *ref, uint8_t flag, uint64_t time)
{
    uint8_t *v = NULL;
    size_t len = 0;
    int rc = client_state_get(d->st, "kp", ref, &v, &len);

    if (rc == 0 && len < 2)
        rc = ERR_MALFORMED;
    if (rc == 0) {
        v[0] = flag;
        rc = client_state_put(d->st, "kp", ref, NULL, 0, time, v, len);
    }
    if (v) {
        sodium_memzero(v, len);
        free(v);
    }
    return rc;
}

/* A scan of the "kp" records (refs only: rows are changed after it). */
struct kp_scan {
    size_t n;
    char refs[MAX_KPS][65];
    uint8_t flags[MAX_KPS];
    uint64_t times[MAX_KPS];
};

static int scan_row(const struct client_state_row *row, void *user)
{
    struct kp_scan *sc = user;

    if (sc->n >= MAX_KPS || row->len < 1)
        return 0;
    snprintf(sc->refs[sc->n], sizeof(sc->refs[0]), "%s", row->k);
    sc->flags[sc->n] = row->value[0];
    sc->times[sc->n] = row->time;
    sc->n++;
    return 0;
}

/* After a new last-resort package (keep) was uploaded: every other
 * last-resort record becomes KP_RETIRED as of now. */
static int kp_retire_others(struct client_dev *d, const char *keep, uint64_t now)
{
    struct kp_scan *sc = calloc(1, sizeof(*sc));
    int rc;

    if (!sc)
        return ERR_NOMEM;
    rc = client_state_each(d->st, "kp", NULL, 0, scan_row, sc);
    for (size_t i = 0; rc == 0 && i < sc->n; i++)
        if (sc->flags[i] != KP_ORDINARY && strcmp(sc->refs[i], keep) != 0)
            rc = kp_set_flag(d, sc->refs[i], KP_RETIRED, now);
    free(sc);
    return rc;
}

int client_thread_kp_prune(struct client_dev *d, uint64_t now, unsigned *pruned,
                           bool *rotate)
{
    struct kp_scan *sc = calloc(1, sizeof(*sc));
    bool current = false, current_expired = false;
    unsigned n = 0;
    int rc;

    if (pruned)
        *pruned = 0;
    *rotate = false;
    if (!sc)
        return ERR_NOMEM;
    rc = client_state_each(d->st, "kp", NULL, 0, scan_row, sc);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->flags[i] == KP_LAST_RESORT) {
            current = true;
            if (sc->times[i] + KP_LIFETIME <= now)
                current_expired = true;
        }
    }
    for (size_t i = 0; i < sc->n; i++) {
        bool del = false;
        if (sc->flags[i] == KP_ORDINARY)
            del = sc->times[i] + KP_LIFETIME <= now; /* past its not_after */
        else if (sc->flags[i] == KP_RETIRED)
            /* only once a replacement is on the server */
            del = current && sc->times[i] + KP_RETIRED_GRACE <= now;
        else if (sc->flags[i] != KP_LAST_RESORT)
            del = true; /* no such record: unusable */
        if (del) {
            if ((rc = client_state_del(d->st, "kp", sc->refs[i])) != 0)
                goto out;
            n++;
        }
    }
    /* a used last-resort package (now retired), an expired or a missing one
     * is replaced */
    *rotate = !current || current_expired;
    if (pruned)
        *pruned = n;
out:
    free(sc);
    return rc;
}

/* Makes n KeyPackages and uploads them in one kp.upload. */
static int kp_upload(struct client_dev *d, unsigned n, bool last_resort)
{
    uint8_t *msgs[CLIENT_KP_TARGET + 1] = {0};
    size_t lens[CLIENT_KP_TARGET + 1] = {0};
    char refs[CLIENT_KP_TARGET + 1][65];
    struct wire_enc e;
    struct client_frame r;
    unsigned made = 0;
    uint32_t id;
    int rc = 0;

    if (n > CLIENT_KP_TARGET + 1)
        n = CLIENT_KP_TARGET + 1;
    for (unsigned i = 0; i < n; i++)
        refs[i][0] = '\0';
    for (; made < n; made++)
        if ((rc = kp_make(d, last_resort, &msgs[made], &lens[made], refs[made])) != 0)
            break;
    if (rc == 0) {
        id = req(d, &e, "kp.upload", last_resort ? 2 : 1);
        wire_enc_key(&e, "key_packages");
        wire_enc_array(&e, n);
        for (unsigned i = 0; i < n; i++)
            wire_enc_bin(&e, msgs[i], lens[i]);
        if (last_resort)
            wire_kv_bool(&e, "last_resort", true);
        rc = call(d, id, &e, &r);
        client_frame_free(&r);
    }
    /* the server refused them (or we never sent them): forget their private
     * parts. Without an answer (timeout, connection lost) the server may have
     * stored them, so they are kept for a Welcome that may name them. */
    bool forget = rc != 0 && rc != ERR_EXPIRED && rc != ERR_IO;
    for (unsigned i = 0; i < made; i++) {
        free(msgs[i]);
        if (forget)
            (void)client_state_del(d->st, "kp", refs[i]);
    }
    if (rc != 0 && made < n && refs[made][0])
        (void)client_state_del(d->st, "kp", refs[made]);
    /* the server retired the previous last-resort package */
    if (rc == 0 && last_resort && made == 1)
        rc = kp_retire_others(d, refs[0], now_s());
    return rc;
}

int client_thread_kp_stock(struct client_dev *d, unsigned *uploaded)
{
    struct wire_enc e;
    struct client_frame r;
    uint64_t count = 0;
    bool last = false;
    uint32_t id;
    int rc;

    bool rotate = false;

    if (uploaded)
        *uploaded = 0;
    if ((rc = client_thread_kp_prune(d, now_s(), NULL, &rotate)) != 0)
        return rc;
    id = req(d, &e, "kp.count", 0);
    if ((rc = call(d, id, &e, &r)) != 0) {
        client_frame_free(&r);
        return rc;
    }
    if (wire_get_uint(&r.msg.body, "count", &count) != 0)
        count = 0;
    if (wire_get_bool(&r.msg.body, "last_resort", &last) != 0)
        last = false;
    client_frame_free(&r);
    if (count < CLIENT_KP_LOW) {
        unsigned n = (unsigned)(CLIENT_KP_TARGET - count);
        if ((rc = kp_upload(d, n, false)) != 0)
            return rc;
        if (uploaded)
            *uploaded += n;
    }
    if (!last || rotate) {
        if ((rc = kp_upload(d, 1, true)) != 0)
            return rc;
        if (uploaded)
            *uploaded += 1;
    }
    return 0;
}

/* ---- groups in the state ------------------------------------------------------ */

static int group_load(struct client_dev *d, const char *thread, struct mls_group **g)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = client_state_get(d->st, "group", thread, &b, &len);

    *g = NULL;
    if (rc != 0)
        return rc;
    rc = mls_group_load(b, len, 0, g);
    sodium_memzero(b, len);
    free(b);
    return rc;
}

static int group_save(struct client_dev *d, const char *thread, const struct mls_group *g)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = mls_group_save(g, &b, &len);

    if (rc != 0)
        return rc;
    rc = client_state_put(d->st, "group", thread, thread, 0, 0, b, len);
    sodium_memzero(b, len);
    free(b);
    return rc;
}

/* ---- history ---------------------------------------------------------------- */

static int msg_store(struct client_dev *d, const char *thread, uint64_t message, uint64_t t,
                     const char *sender, const char *device, const uint8_t *text, size_t len,
                     const char *error)
{
    struct tls_writer w;
    uint8_t *buf = NULL;
    size_t blen = 0;
    char k[CLIENT_THREAD_ID_LEN + 32];
    int rc;

    tls_writer_init(&w, CLIENT_STATE_MAX_VALUE);
    tls_put_u8(&w, 1);
    tls_put_opaque(&w, (const uint8_t *)sender, strlen(sender));
    tls_put_opaque(&w, (const uint8_t *)device, strlen(device));
    tls_put_opaque(&w, text, len);
    tls_put_opaque(&w, (const uint8_t *)(error ? error : ""), error ? strlen(error) : 0);
    if ((rc = tls_writer_take(&w, &buf, &blen)) != 0)
        return rc;
    snprintf(k, sizeof(k), "%s/%020llu", thread, (unsigned long long)message);
    rc = client_state_put(d->st, "msg", k, thread, message, t, buf, blen);
    sodium_memzero(buf, blen);
    free(buf);
    return rc;
}

/* Decodes a MsgRecord; strings are copied NUL-terminated into the caller's
 * buffers; *text points into buf. */
struct msg_rec {
    char sender[CLIENT_ID_MAX + 1];
    char device[19];
    char error[1024];
    const uint8_t *text;
    size_t text_len;
};

static int copy_str(struct tls_reader *r, char *dst, size_t cap)
{
    const uint8_t *p;
    size_t n;
    if (tls_read_opaque(r, &p, &n) != 0)
        return ERR_MALFORMED;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

static int msg_decode(const uint8_t *buf, size_t len, struct msg_rec *m)
{
    struct tls_reader r;
    uint8_t v;

    tls_reader_init(&r, buf, len);
    if (tls_read_u8(&r, &v) != 0 || v != 1 || copy_str(&r, m->sender, sizeof(m->sender)) != 0 ||
        copy_str(&r, m->device, sizeof(m->device)) != 0 ||
        tls_read_opaque(&r, &m->text, &m->text_len) != 0 ||
        copy_str(&r, m->error, sizeof(m->error)) != 0 || !tls_reader_done(&r))
        return ERR_MALFORMED;
    return 0;
}

struct hist_walk {
    client_msg_fn *cb;
    void *user;
};

static int hist_row(const struct client_state_row *row, void *user)
{
    struct hist_walk *w = user;
    struct msg_rec m;
    struct client_msg cm;

    if (msg_decode(row->value, row->len, &m) != 0)
        return ERR_MALFORMED;
    cm.thread = row->thread;
    cm.message = row->seq;
    cm.time = row->time;
    cm.sender = m.sender;
    cm.device = m.device;
    cm.text = m.text;
    cm.text_len = m.text_len;
    cm.error = m.error[0] ? m.error : NULL;
    return w->cb(&cm, w->user);
}

int client_thread_history(struct client_dev *d, const char *thread, uint64_t since,
                          client_msg_fn *cb, void *user)
{
    struct hist_walk w = {cb, user};
    return client_state_each(d->st, "msg", thread, since, hist_row, &w);
}

int client_thread_message(struct client_dev *d, const char *thread, uint64_t message,
                          uint8_t **text, size_t *len)
{
    char k[CLIENT_THREAD_ID_LEN + 32];
    uint8_t *b = NULL;
    size_t blen = 0;
    struct msg_rec m;
    int rc;

    *text = NULL;
    *len = 0;
    snprintf(k, sizeof(k), "%s/%020llu", thread, (unsigned long long)message);
    if ((rc = client_state_get(d->st, "msg", k, &b, &blen)) != 0)
        return rc;
    rc = msg_decode(b, blen, &m);
    if (rc == 0 && m.error[0])
        rc = ERR_CRYPTO;
    if (rc == 0) {
        *text = malloc(m.text_len + 1);
        if (!*text) {
            rc = ERR_NOMEM;
        } else {
            memcpy(*text, m.text, m.text_len);
            (*text)[m.text_len] = '\0';
            *len = m.text_len;
        }
    }
    sodium_memzero(b, blen);
    free(b);
    return rc;
}

struct notice_walk {
    client_notice_fn *cb;
    void *user;
    const char *thread;
};

static int notice_row(const struct client_state_row *row, void *user)
{
    struct notice_walk *w = user;
    if (w->thread && strcmp(w->thread, row->thread) != 0)
        return 0;
    return w->cb(row->thread, row->time, row->value, row->len, w->user);
}

int client_thread_notices(struct client_dev *d, const char *thread, client_notice_fn *cb,
                          void *user)
{
    struct notice_walk w = {cb, user, thread};
    return client_state_each(d->st, "notice", NULL, 0, notice_row, &w);
}

/* ---- the sync engine -------------------------------------------------------- */

struct entry {
    uint64_t seq, message, time;
    char thread[CLIENT_THREAD_ID_LEN + 1];
    char kind[16];
    char sender[CLIENT_ID_MAX + 1];
    char device[19];
    const uint8_t *data;
    size_t len;
};

static int entry_parse(const struct wire_map *m, struct entry *e)
{
    memset(e, 0, sizeof(*e));
    if (wire_get_uint(m, "seq", &e->seq) != 0 ||
        wire_get_cstr(m, "kind", e->kind, sizeof(e->kind)) != 0)
        return ERR_MALFORMED;
    if (wire_get_cstr(m, "thread", e->thread, sizeof(e->thread)) != 0)
        e->thread[0] = '\0';
    if (wire_get_uint(m, "message", &e->message) != 0)
        e->message = 0;
    if (wire_get_uint(m, "time", &e->time) != 0)
        e->time = 0;
    if (wire_get_cstr(m, "sender", e->sender, sizeof(e->sender)) != 0)
        e->sender[0] = '\0';
    if (wire_get_cstr(m, "device", e->device, sizeof(e->device)) != 0)
        e->device[0] = '\0';
    if (wire_get_bin(m, "data", &e->data, &e->len) != 0)
        return ERR_MALFORMED;
    return 0;
}

/* Splits "name@domain/d_xxx" into its two parts. */
static void split_identity(const uint8_t *ident, size_t len, char *id, size_t idcap, char *dev,
                           size_t devcap)
{
    size_t slash = len;
    for (size_t i = 0; i < len; i++)
        if (ident[i] == '/')
            slash = i;
    snprintf(id, idcap, "%.*s", (int)slash, (const char *)ident);
    if (slash < len)
        snprintf(dev, devcap, "%.*s", (int)(len - slash - 1), (const char *)ident + slash + 1);
    else
        dev[0] = '\0';
}

/* The member identity of leaf `leaf`: "" when not found. */
static void leaf_identity(const struct mls_group *g, uint32_t leaf, char *id, size_t idcap,
                          char *dev, size_t devcap)
{
    struct mls_roster_entry *ro = NULL;
    size_t n = 0;

    id[0] = dev[0] = '\0';
    if (mls_group_roster(g, NULL, 0, &n) != 0 && n == 0)
        return;
    ro = calloc(n ? n : 1, sizeof(*ro));
    if (!ro)
        return;
    if (mls_group_roster(g, ro, n, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (ro[i].leaf_index == leaf)
                split_identity(ro[i].identity, ro[i].identity_len, id, idcap, dev, devcap);
    }
    free(ro);
}

static int mark_pending(struct client_dev *d, const char *thread, bool on)
{
    if (on)
        return client_state_put(d->st, "pending", thread, thread, 0, 0, (const uint8_t *)"", 0);
    return client_state_del(d->st, "pending", thread);
}

/* client_state_each callback for on_welcome: loads one stored KeyPackage. */
/* Records why an inbox entry could not be used (kind "fail", keyed by the
 * inbox seq) and, with SAMMEN_DEBUG set, says so on stderr. */
static void note_failure(struct client_dev *d, const struct entry *e, const char *what, int rc)
{
    char k[32], text[256];
    int n;

    snprintf(k, sizeof(k), "%020llu", (unsigned long long)e->seq);
    n = snprintf(text, sizeof(text), "%s %s #%llu: %s: %s", e->kind, e->thread,
                 (unsigned long long)e->message, what, err_str(rc));
    if (n < 0)
        return;
    (void)client_state_put(d->st, "fail", k, e->thread, 0, e->time, (const uint8_t *)text,
                           strlen(text));
    if (getenv("SAMMEN_DEBUG"))
        fprintf(stderr, "sammen: %s\n", text);
}

struct kp_collect {
    struct mls_kp **kps;
    char (*refs)[65];
    bool *last;
    size_t *n;
};

static int collect(const struct client_state_row *row, void *user)
{
    struct kp_collect *c = user;
    struct mls_kp *kp = NULL;

    if (*c->n >= MAX_KPS || row->len < 2)
        return 0;
    if (mls_kp_load(row->value + 1, row->len - 1, &kp) != 0)
        return 0; /* unreadable: skip it */
    c->kps[*c->n] = kp;
    snprintf(c->refs[*c->n], 65, "%s", row->k);
    c->last[*c->n] = row->value[0] == KP_LAST_RESORT;
    (*c->n)++;
    return 0;
}

static int on_welcome(struct client_dev *d, const struct entry *e)
{
    struct mls_kp *kps[MAX_KPS];
    char refs[MAX_KPS][65];
    bool last[MAX_KPS];
    size_t n = 0;
    struct mls_group *g = NULL;
    int rc;

    /* collect our unused KeyPackages */
    struct kp_collect c = {kps, refs, last, &n};
    rc = client_state_each(d->st, "kp", NULL, 0, collect, &c);
    if (rc != 0)
        goto out;
    rc = mls_group_join(e->data, e->len, kps, n, NULL, 0, NULL, 0, NULL, now_s(), 0, &g);
    if (getenv("SAMMEN_DEBUG"))
        fprintf(stderr, "sammen: join with %zu KeyPackages: %s\n", n, err_str(rc));
    if (rc != 0) {
        set_err(d, "crypto", "welcome for %s: %s", e->thread, err_str(rc));
        goto out;
    }
    if ((rc = group_save(d, e->thread, g)) != 0)
        goto out;
    /* RFC 9420 section 16.8: the KeyPackage's private keys go once the
     * Welcome is processed (same state transaction as the group). A
     * last-resort package is retired: replaced by the next kp_stock, kept
     * KP_RETIRED_GRACE after that for Welcomes already under way. */
    for (size_t i = 0; i < n; i++) {
        if (!mls_kp_used(kps[i]))
            continue;
        if (last[i])
            rc = kp_set_flag(d, refs[i], KP_RETIRED, now_s());
        else
            rc = client_state_del(d->st, "kp", refs[i]);
        if (rc != 0)
            goto out;
    }
    /* proposals that arrived with the join are committed by the next pass */
    if (mls_group_pending_proposals(g, NULL) > 0)
        rc = mark_pending(d, e->thread, true);
out:
    for (size_t i = 0; i < n; i++)
        mls_kp_free(kps[i]);
    mls_group_free(g);
    return rc;
}

/* An external Add the server proposed, checked before this device commits
 * it: the new leaf must carry a basic credential "name@domain/d_..." of this
 * server's domain whose device id is that of its signature key. A good one
 * is recorded (kind "add": identity/device -> fingerprint); a bad one marks
 * the thread "refuse" (this device will not commit this epoch's proposals)
 * and says why. */
static int check_external_add(struct client_dev *d, const struct entry *e)
{
    struct mls_message m;
    const struct mls_leaf_node *leaf;
    char who[CLIENT_ID_MAX + 24], fp[KEYS_ID_FINGERPRINT_LEN + 1], why[512], k[400];
    const char *at, *slash;
    int rc;

    memset(&m, 0, sizeof(m));
    if (mls_message_parse(e->data, e->len, &m) != 0 || m.wire_format != MLS_WF_PUBLIC_MESSAGE ||
        m.public_message.content.content_type != MLS_CONTENT_PROPOSAL ||
        m.public_message.content.proposal.proposal_type != MLS_PROPOSAL_ADD) {
        mls_message_free(&m);
        return 0; /* not an Add: nothing to check */
    }
    leaf = &m.public_message.content.proposal.add.leaf_node;
    why[0] = '\0';
    if (leaf->credential.credential_type != MLS_CREDENTIAL_BASIC ||
        leaf->credential.identity.len == 0 || leaf->credential.identity.len >= sizeof(who)) {
        snprintf(why, sizeof(why), "the proposed leaf has no basic credential");
    } else {
        memcpy(who, leaf->credential.identity.data, leaf->credential.identity.len);
        who[leaf->credential.identity.len] = '\0';
        at = strchr(who, '@');
        slash = strchr(who, '/');
        if (strlen(who) != leaf->credential.identity.len || !at || !slash || slash < at ||
            (size_t)(slash - at - 1) != strlen(d->domain) ||
            strncmp(at + 1, d->domain, strlen(d->domain)) != 0)
            snprintf(why, sizeof(why), "the proposed identity is not of %s", d->domain);
        else if (leaf->signature_key.len != 32 ||
                 mls_kp_identity_check(leaf->credential.identity.data,
                                       leaf->credential.identity.len, leaf->signature_key.data,
                                       leaf->signature_key.len) != 0)
            snprintf(why, sizeof(why), "the proposed device %s is not the device of its key",
                     who);
    }
    if (why[0]) {
        rc = client_state_put(d->st, "refuse", e->thread, e->thread, 0, e->time,
                              (const uint8_t *)why, strlen(why));
        note_failure(d, e, why, ERR_DENIED);
    } else {
        keys_id_fingerprint(leaf->signature_key.data, fp);
        snprintf(k, sizeof(k), "%s/%s", e->thread, who);
        rc = client_state_put(d->st, "add", k, e->thread, 0, e->time, (const uint8_t *)fp,
                              strlen(fp));
    }
    mls_message_free(&m);
    return rc;
}

static int clear_adds(struct client_dev *d, const char *thread);

static int on_handshake(struct client_dev *d, const struct entry *e, struct client_sync_stats *s)
{
    struct mls_group *g = NULL;
    struct mls_group_event ev;
    int rc;

    memset(&ev, 0, sizeof(ev));
    if ((rc = group_load(d, e->thread, &g)) != 0) {
        if (rc == ERR_NOT_FOUND)
            return 0; /* not (or no longer) a member */
        note_failure(d, e, "cannot load the group state", rc);
        return rc;
    }
    rc = mls_group_process(g, e->data, e->len, now_s(), &ev);
    if (getenv("SAMMEN_DEBUG") && rc == 0)
        fprintf(stderr, "sammen: handshake: event %d, epoch %llu, external_pending %d, %zu proposals\n",
                ev.type, (unsigned long long)ev.epoch, ev.external_pending,
                mls_group_pending_proposals(g, NULL));
    if (rc != 0) {
        s->failed++;
        note_failure(d, e, "handshake refused by MLS", rc);
        goto out;
    }
    if (ev.type == MLS_GROUP_EV_COMMIT && ev.removed) {
        /* we were removed: forget the keys, keep the history */
        rc = client_state_del(d->st, "group", e->thread);
        if (rc == 0)
            rc = mark_pending(d, e->thread, false);
        if (rc == 0)
            rc = client_state_del(d->st, "refuse", e->thread);
        goto out;
    }
    if (ev.type == MLS_GROUP_EV_PROPOSAL && ev.sender_type == MLS_SENDER_EXTERNAL &&
        ev.proposal_type == MLS_PROPOSAL_ADD && (rc = check_external_add(d, e)) != 0)
        goto out;
    if ((rc = group_save(d, e->thread, g)) != 0)
        goto out;
    if (ev.type == MLS_GROUP_EV_COMMIT) {
        /* the epoch moved: the proposals (and any refusal of them) are gone */
        rc = client_state_del(d->st, "refuse", e->thread);
        if (rc == 0 || rc == ERR_NOT_FOUND)
            rc = clear_adds(d, e->thread);
        if (rc == 0)
            rc = mark_pending(d, e->thread, mls_group_pending_proposals(g, NULL) > 0);
    }
    else if (ev.external_pending || mls_group_pending_proposals(g, NULL) > 0)
        rc = mark_pending(d, e->thread, true);
out:
    mls_group_event_reset(&ev);
    mls_group_free(g);
    return rc;
}

static int on_app(struct client_dev *d, const struct entry *e, struct client_sync_stats *s)
{
    struct mls_group *g = NULL;
    struct mls_group_event ev;
    char id[CLIENT_ID_MAX + 1], dev[19], why[1024];
    int rc;

    memset(&ev, 0, sizeof(ev));
    rc = group_load(d, e->thread, &g);
    if (rc == ERR_NOT_FOUND) {
        s->failed++;
        return msg_store(d, e->thread, e->message, e->time, e->sender, e->device, NULL, 0,
                         "no group state for this thread on this device");
    }
    if (rc != 0)
        return rc;
    rc = mls_group_process(g, e->data, e->len, now_s(), &ev);
    if (rc != 0 || ev.type != MLS_GROUP_EV_APPLICATION) {
        s->failed++;
        snprintf(why, sizeof(why), "cannot decrypt: %s",
                 rc ? err_str(rc) : "not an application message");
        note_failure(d, e, "application message not readable", rc ? rc : ERR_INVALID);
        rc = msg_store(d, e->thread, e->message, e->time, e->sender, e->device, NULL, 0, why);
        goto out;
    }
    /* the sender is the one MLS authenticated, not what the server claims */
    leaf_identity(g, ev.sender, id, sizeof(id), dev, sizeof(dev));
    if (strcmp(id, e->sender) != 0 || strcmp(dev, e->device) != 0) {
        s->failed++;
        snprintf(why, sizeof(why), "sender mismatch: the server said %s/%s, MLS says %s/%s",
                 e->sender, e->device, id, dev);
        rc = msg_store(d, e->thread, e->message, e->time, id, dev, NULL, 0, why);
        goto out;
    }
    /* the secret tree moved: save the group before the plaintext */
    if ((rc = group_save(d, e->thread, g)) != 0)
        goto out;
    s->apps++;
    rc = msg_store(d, e->thread, e->message, e->time, id, dev, ev.data, ev.len, NULL);
out:
    mls_group_event_reset(&ev);
    mls_group_free(g);
    return rc;
}

/* The notice's `type` into type (cap bytes); "" when it has none. */
static void notice_type(const uint8_t *data, size_t len, char *type, size_t cap)
{
    msgpack_unpacked up;
    size_t off = 0;

    type[0] = '\0';
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        struct wire_map m = {up.data.via.map.ptr, up.data.via.map.size};
        if (wire_get_cstr(&m, "type", type, cap) != 0)
            type[0] = '\0';
    }
    msgpack_unpacked_destroy(&up);
}

static int on_notice(struct client_dev *d, const struct entry *e)
{
    char k[32], type[32];
    int rc;

    snprintf(k, sizeof(k), "%020llu", (unsigned long long)e->seq);
    /* bounded: wire_check walks the bytes before msgpack-c allocates */
    if (e->len > 65536 || wire_check(e->data, e->len) != 0)
        return 0; /* not a readable notice: skip it */
    notice_type(e->data, e->len, type, sizeof(type));
    if (strcmp(type, "removed") == 0 && e->thread[0]) {
        /* we left the group: forget its keys (the history stays) */
        if ((rc = client_state_del(d->st, "group", e->thread)) != 0 ||
            (rc = mark_pending(d, e->thread, false)) != 0)
            return rc;
    }
    return client_state_put(d->st, "notice", k, e->thread, 0, e->time, e->data, e->len);
}

static int entry_handle(struct client_dev *d, const struct entry *e, struct client_sync_stats *s)
{
    int rc;

    if (e->thread[0] && (strlen(e->thread) != CLIENT_THREAD_ID_LEN ||
                         strncmp(e->thread, "t_", 2) != 0))
        return 0; /* not a thread id we can key state by: skip */
    if (!e->thread[0] && strcmp(e->kind, "notice") != 0)
        return 0; /* group messages always name their thread */
    if ((rc = client_state_begin(d->st)) != 0)
        return rc;
    if (strcmp(e->kind, "welcome") == 0) {
        s->welcomes++;
        rc = on_welcome(d, e);
        if (rc != 0 && rc != ERR_NOMEM && rc != ERR_IO) {
            note_failure(d, e, "cannot join from the Welcome", rc);
            s->failed++;
            rc = 0; /* a Welcome we cannot open is skipped */
        }
    } else if (strcmp(e->kind, "handshake") == 0) {
        s->handshakes++;
        rc = on_handshake(d, e, s);
        if (rc != 0 && rc != ERR_NOMEM && rc != ERR_IO)
            rc = 0; /* refused by MLS: counted in failed, group unchanged */
    } else if (strcmp(e->kind, "app") == 0) {
        rc = on_app(d, e, s);
    } else if (strcmp(e->kind, "notice") == 0) {
        s->notices++;
        rc = on_notice(d, e);
    }
    if (rc == 0)
        rc = client_state_put_u64(d->st, "meta", "cursor", e->seq);
    if (rc == 0)
        rc = client_state_commit(d->st);
    if (rc != 0)
        client_state_rollback(d->st);
    return rc;
}

int client_thread_ingest(struct client_dev *d, const struct wire_map *ok, uint64_t *cursor,
                         bool *more, unsigned *got, struct client_sync_stats *s)
{
    struct wire_array arr;
    int rc = 0;

    if (wire_get_array(ok, "entries", &arr) != 0)
        arr.n = 0;
    if (wire_get_bool(ok, "more", more) != 0)
        *more = false;
    for (uint32_t i = 0; i < arr.n && rc == 0; i++) {
        struct wire_map m;
        struct entry en;
        if (wire_array_map(&arr, i, &m) != 0 || entry_parse(&m, &en) != 0) {
            set_err(d, "malformed", "sync: a malformed inbox entry");
            return ERR_MALFORMED;
        }
        if (en.seq <= *cursor)
            continue; /* already seen */
        s->entries++;
        if (getenv("SAMMEN_DEBUG"))
            fprintf(stderr, "sammen: entry #%llu %s %s message %llu from %s/%s\n",
                    (unsigned long long)en.seq, en.kind, en.thread,
                    (unsigned long long)en.message, en.sender, en.device);
        if ((rc = entry_handle(d, &en, s)) == 0) {
            *cursor = en.seq;
            (*got)++;
        }
    }
    if (arr.n == 0)
        *more = false;
    return rc;
}

/* Pulls the whole inbox after the stored cursor. *got: entries processed. */
static int fetch(struct client_dev *d, struct client_sync_stats *s, unsigned *got)
{
    uint64_t cursor;
    int rc;

    *got = 0;
    if ((rc = client_state_get_u64(d->st, "meta", "cursor", 0, &cursor)) != 0)
        return rc;
    for (int round = 0; round < SYNC_MAX_ROUNDS; round++) {
        struct wire_enc e;
        struct client_frame r;
        bool more = false;
        uint32_t id = req(d, &e, "sync", 2);

        wire_kv_uint(&e, "after", cursor);
        wire_kv_uint(&e, "limit", SYNC_LIMIT);
        if ((rc = call(d, id, &e, &r)) != 0) {
            client_frame_free(&r);
            return rc;
        }
        rc = client_thread_ingest(d, &r.msg.body, &cursor, &more, got, s);
        client_frame_free(&r);
        if (rc != 0)
            return rc;
        if (!more)
            break;
    }
    return 0;
}

int client_dev_ack(struct client_dev *d, uint64_t seq)
{
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    int rc;

    wire_enc_init(&e);
    wire_enc_note(&e, "ack", 1);
    wire_kv_uint(&e, "seq", seq);
    rc = wire_enc_finish(&e, &data, &len);
    if (rc == 0)
        rc = client_conn_notify(d->conn, data, len);
    wire_enc_reset(&e);
    if (rc != 0)
        set_err(d, rc == ERR_BADSTATE ? "io" : err_str(rc), "cannot send the ack: %s",
                rc == ERR_BADSTATE ? "the connection to the server is closed" : err_str(rc));
    return rc;
}

unsigned client_dev_ack_failures(struct client_dev *d)
{
    struct client_note_error last;
    size_t n;

    if (!d->conn)
        return d->ack_failures;
    n = client_conn_note_errors(d->conn, &last);
    if (n > d->note_errs_seen) {
        d->ack_failures += (unsigned)(n - d->note_errs_seen);
        d->note_errs_seen = n;
        d->ack_due = true;
        snprintf(d->ack_err_code, sizeof(d->ack_err_code), "%s", last.code);
        snprintf(d->ack_err_msg, sizeof(d->ack_err_msg), "%s", last.msg);
        if (getenv("SAMMEN_DEBUG"))
            fprintf(stderr, "sammen: the server refused an ack: %s: %s\n", last.code,
                    last.msg);
    }
    return d->ack_failures;
}

/* Acknowledges the device's cursor (client_dev_ack). */
static int ack(struct client_dev *d)
{
    uint64_t cursor;
    int rc;

    if ((rc = client_state_get_u64(d->st, "meta", "cursor", 0, &cursor)) != 0 || cursor == 0)
        return rc;
    if ((rc = client_dev_ack(d, cursor)) == 0)
        d->ack_due = false;
    return rc;
}

/* ---- the basis of each added member, checked before committing ---------- */

struct add_list {
    char (*who)[400]; /* row key "thread/name@domain/d_..." of each recorded Add */
    size_t n, cap;
};

static int add_row(const struct client_state_row *row, void *user)
{
    struct add_list *l = user;
    const char *slash = strchr(row->k, '/');
    if (!slash || strlen(row->k) >= sizeof(*l->who))
        return 0; /* not one of ours */
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 8;
        void *p = realloc(l->who, nc * sizeof(*l->who));
        if (!p)
            return ERR_NOMEM;
        l->who = p;
        l->cap = nc;
    }
    snprintf(l->who[l->n++], sizeof(*l->who), "%s", row->k);
    return 0;
}

/* Forgets the Adds recorded for thread: called when its epoch moves (the
 * proposals they belonged to are committed or gone). */
static int clear_adds(struct client_dev *d, const char *thread)
{
    struct add_list l = {0};
    int rc = client_state_each(d->st, "add", thread, 0, add_row, &l);
    for (size_t i = 0; i < l.n && rc == 0; i++)
        rc = client_state_del(d->st, "add", l.who[i]);
    free(l.who);
    return rc == ERR_NOT_FOUND ? 0 : rc;
}

/* The thread's citizen and kind as thread.list reports them (the server's
 * word; the same values the server's entitlement uses). */
static int thread_facts(struct client_dev *d, const char *thread, char *citizen, size_t ccap,
                        char *kind, size_t kcap, uint64_t *server_time)
{
    struct wire_enc e;
    struct client_frame r;
    struct wire_array arr;
    uint32_t id;
    int rc;

    memset(&r, 0, sizeof(r));
    id = req(d, &e, "ping", 0);
    if ((rc = call(d, id, &e, &r)) != 0)
        return rc;
    *server_time = now_s();
    (void)wire_get_uint(&r.msg.body, "time", server_time);
    client_frame_free(&r);
    id = req(d, &e, "thread.list", 0);
    if ((rc = call(d, id, &e, &r)) != 0)
        return rc;
    rc = ERR_NOT_FOUND;
    if (wire_get_array(&r.msg.body, "threads", &arr) != 0)
        arr.n = 0;
    for (uint32_t i = 0; i < arr.n; i++) {
        struct wire_map m;
        char t[CLIENT_THREAD_ID_LEN + 1];
        if (wire_array_map(&arr, i, &m) == 0 && wire_get_cstr(&m, "thread", t, sizeof(t)) == 0 &&
            strcmp(t, thread) == 0 && wire_get_cstr(&m, "citizen", citizen, ccap) == 0 &&
            wire_get_cstr(&m, "kind", kind, kcap) == 0) {
            rc = 0;
            break;
        }
    }
    client_frame_free(&r);
    return rc;
}

/* Every Add this device recorded for thread whose device is not yet in g's
 * roster must have a basis this device verifies (client_thread_check_basis:
 * the citizen; a grant whose signature, id, scope, expiry, revocation and
 * grantee check out; a signed, unended proxy registration; a signed,
 * unexpired break-glass access; department / association membership stays
 * the server's word). The basis claimed for each device is thread.members'
 * "pending" list. 0 when all verify (or there is nothing to check);
 * ERR_DENIED with why filled when one does not; other ERR_* when the server
 * could not be asked. */
static int verify_adds(struct client_dev *d, const char *thread, const struct mls_group *g,
                       char *why, size_t cap)
{
    struct add_list l = {0};
    struct mls_roster_entry *ro = NULL;
    struct client_frame r;
    struct wire_enc e;
    struct wire_array arr;
    char citizen[CLIENT_ID_MAX + 1], kind[32];
    uint64_t server_time = 0;
    size_t nro = 0, todo = 0;
    uint32_t id;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = client_state_each(d->st, "add", thread, 0, add_row, &l)) != 0)
        goto out;
    if (l.n == 0)
        goto out;
    (void)mls_group_roster(g, NULL, 0, &nro);
    ro = calloc(nro ? nro : 1, sizeof(*ro));
    if (!ro) {
        rc = ERR_NOMEM;
        goto out;
    }
    if ((rc = mls_group_roster(g, ro, nro, &nro)) != 0)
        goto out;
    /* keep only the adds not yet in the roster (committed ones are done) */
    for (size_t i = 0; i < l.n; i++) {
        bool in = false;
        memmove(l.who[i], strchr(l.who[i], '/') + 1, strlen(strchr(l.who[i], '/') + 1) + 1);
        for (size_t k = 0; k < nro && !in; k++)
            in = ro[k].identity_len == strlen(l.who[i]) &&
                 memcmp(ro[k].identity, l.who[i], ro[k].identity_len) == 0;
        if (!in)
            memmove(l.who[todo++], l.who[i], sizeof(*l.who));
    }
    if (todo == 0)
        goto out;
    if ((rc = thread_facts(d, thread, citizen, sizeof(citizen), kind, sizeof(kind),
                           &server_time)) != 0) {
        snprintf(why, cap, "cannot learn the citizen of %s: %s", thread, err_str(rc));
        goto out;
    }
    id = req(d, &e, "thread.members", 1);
    wire_kv_str(&e, "thread", thread);
    if ((rc = call(d, id, &e, &r)) != 0) {
        snprintf(why, cap, "cannot list the members of %s: %s", thread, err_str(rc));
        goto out;
    }
    if (wire_get_array(&r.msg.body, "pending", &arr) != 0)
        arr.n = 0;
    for (size_t i = 0; i < todo && rc == 0; i++) {
        char ident[CLIENT_ID_MAX + 1], dev[32], basis[64];
        bool found = false;
        split_identity((const uint8_t *)l.who[i], strlen(l.who[i]), ident, sizeof(ident), dev,
                       sizeof(dev));
        for (uint32_t k = 0; k < arr.n && !found; k++) {
            struct wire_map m;
            char pid[CLIENT_ID_MAX + 1], pdev[32];
            found = wire_array_map(&arr, k, &m) == 0 &&
                    wire_get_cstr(&m, "device", pdev, sizeof(pdev)) == 0 &&
                    wire_get_cstr(&m, "id", pid, sizeof(pid)) == 0 &&
                    wire_get_cstr(&m, "grant", basis, sizeof(basis)) == 0 &&
                    strcmp(pdev, dev) == 0 && strcmp(pid, ident) == 0;
        }
        if (!found) {
            snprintf(why, cap, "the server names no basis for adding %s", l.who[i]);
            rc = ERR_DENIED;
            break;
        }
        char detail[400];
        rc = client_thread_check_basis(d, citizen, thread, kind, ident, basis, server_time,
                                       detail, sizeof(detail));
        if (rc == ERR_DENIED)
            snprintf(why, cap, "adding %s: %s", l.who[i], detail);
        else if (rc != 0)
            snprintf(why, cap, "adding %s: %s (%s)", l.who[i], detail, err_str(rc));
    }
out:
    client_frame_free(&r);
    free(ro);
    free(l.who);
    return rc;
}

/* Commits what is pending in one thread. ERR_CONFLICT: another commit won
 * (the caller syncs and retries). */
static int commit_one(struct client_dev *d, const char *thread, struct client_sync_stats *s)
{
    struct mls_group *g = NULL;
    struct mls_group_commit_out co;
    struct wire_enc e;
    struct client_frame r;
    uint32_t id;
    int rc;

    memset(&co, 0, sizeof(co));
    memset(&r, 0, sizeof(r));
    {
        /* a proposal this device refused: it does not commit this epoch
         * (another member may; the server then moves the epoch on) */
        uint8_t *why = NULL;
        size_t wl = 0;
        rc = client_state_get(d->st, "refuse", thread, &why, &wl);
        if (rc == 0) {
            set_err(d, "denied", "not committing the server's proposals in %s: %.*s", thread,
                    (int)wl, why ? (const char *)why : "");
            if (getenv("SAMMEN_DEBUG"))
                fprintf(stderr, "sammen: %s\n", d->err_msg);
            free(why);
            s->refused++;
            return 0;
        }
        if (rc != ERR_NOT_FOUND)
            return rc;
    }
    rc = group_load(d, thread, &g);
    if (rc == ERR_NOT_FOUND)
        return mark_pending(d, thread, false);
    if (rc != 0)
        return rc;
    {
        /* "Clients check too": every device the server proposed to add needs
         * a basis this device verifies, else it does not commit this epoch */
        char why[600];
        why[0] = '\0';
        rc = verify_adds(d, thread, g, why, sizeof(why));
        if (rc == ERR_DENIED) {
            rc = client_state_put(d->st, "refuse", thread, thread, 0, now_s(),
                                  (const uint8_t *)why, strlen(why));
            set_err(d, "denied", "not committing the server's proposals in %s: %s", thread, why);
            if (getenv("SAMMEN_DEBUG"))
                fprintf(stderr, "sammen: %s\n", d->err_msg);
            if (rc == 0)
                s->refused++;
            goto out;
        }
        if (rc != 0) {
            if (why[0])
                set_err(d, "internal", "%s", why);
            goto out;
        }
    }
    /* as mls_group_commit_pending(), but the Welcome's GroupInfo carries the
     * ratchet tree (PROTOCOL.md: joiners get no tree out of band) */
    if (mls_group_pending_proposals(g, NULL) == 0) {
        rc = ERR_NOT_FOUND;
    } else {
        struct mls_group_commit_opts o;
        memset(&o, 0, sizeof(o));
        o.include_pending = true;
        o.force_path = true;
        o.tree_in_welcome = true;
        rc = mls_group_commit_create(g, &o, now_s(), &co);
    }
    if (getenv("SAMMEN_DEBUG"))
        fprintf(stderr, "sammen: commit pending proposals of %s: %s\n", thread,
                rc ? err_str(rc) : "created");
    if (rc == ERR_NOT_FOUND) {
        rc = mark_pending(d, thread, false);
        goto out;
    }
    if (rc != 0) {
        set_err(d, "invalid", "cannot commit the pending proposals of %s: %s", thread,
                err_str(rc));
        goto out;
    }
    /* the new epoch's GroupInfo goes along for thread.state */
    id = req(d, &e, "thread.commit", 2u + (co.welcome != NULL) + (co.group_info != NULL));
    wire_kv_str(&e, "thread", thread);
    wire_kv_bin(&e, "commit", co.commit, co.commit_len);
    if (co.welcome)
        wire_kv_bin(&e, "welcome", co.welcome, co.welcome_len);
    if (co.group_info)
        wire_kv_bin(&e, "group_info", co.group_info, co.group_info_len);
    rc = call(d, id, &e, &r);
    if (rc != 0) {
        mls_group_commit_discard(g);
        goto out;
    }
    if ((rc = mls_group_commit_confirm(g)) != 0)
        goto out;
    if ((rc = client_state_begin(d->st)) != 0)
        goto out;
    rc = group_save(d, thread, g);
    if (rc == 0)
        rc = mark_pending(d, thread, false);
    if (rc == 0)
        rc = client_state_del(d->st, "refuse", thread);
    if (rc == 0 || rc == ERR_NOT_FOUND)
        rc = clear_adds(d, thread);
    if (rc == 0)
        rc = client_state_commit(d->st);
    else
        client_state_rollback(d->st);
    if (rc == 0)
        s->commits++;
out:
    client_frame_free(&r);
    mls_group_commit_out_reset(&co);
    mls_group_free(g);
    return rc;
}

struct id_list {
    char (*v)[CLIENT_THREAD_ID_LEN + 1];
    size_t n, cap;
};

static int list_row(const struct client_state_row *row, void *user)
{
    struct id_list *l = user;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 8;
        void *p = realloc(l->v, nc * sizeof(*l->v));
        if (!p)
            return ERR_NOMEM;
        l->v = p;
        l->cap = nc;
    }
    snprintf(l->v[l->n++], CLIENT_THREAD_ID_LEN + 1, "%s", row->k);
    return 0;
}

int client_thread_sync(struct client_dev *d, struct client_sync_stats *stats)
{
    struct client_sync_stats local;
    unsigned got = 0, total = 0;
    int rc = 0;

    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    (void)client_dev_ack_failures(d); /* a refused earlier ack: ack again below */
    /* the consent ledger is read afresh once per sync (client_thread_check_basis
     * caches it; a revocation since the last sync must count) */
    client_frame_free(&d->ledger);
    d->ledger_citizen[0] = '\0';
    for (int attempt = 0; attempt < COMMIT_TRIES; attempt++) {
        struct id_list l = {0};
        bool conflict = false;

        if ((rc = fetch(d, stats, &got)) != 0)
            return rc;
        total += got;
        if ((rc = client_state_each(d->st, "pending", NULL, 0, list_row, &l)) != 0) {
            free(l.v);
            return rc;
        }
        for (size_t i = 0; i < l.n; i++) {
            int c = commit_one(d, l.v[i], stats);
            if (c == ERR_CONFLICT)
                conflict = true;
            else if (c != 0 && rc == 0)
                rc = c; /* reported; the other threads still get their commit */
        }
        free(l.v);
        if (!conflict)
            break;
        rc = 0;
    }
    (void)client_dev_ack_failures(d);
    if (total > 0 || d->ack_due) {
        int a = ack(d);
        if (rc == 0)
            rc = a;
    }
    return rc;
}

/* ---- thread operations ---------------------------------------------------------- */

static int external_senders(const struct client_dev *d, struct mls_extension_list *ext)
{
    struct mls_external_senders es = {0};
    struct mls_external_sender s;
    struct tls_writer w;
    char cred[CLIENT_DOMAIN_MAX + 8];
    int rc;

    memset(&s, 0, sizeof(s));
    snprintf(cred, sizeof(cred), "server@%s", d->domain);
    s.credential.credential_type = MLS_CREDENTIAL_BASIC;
    if ((rc = mls_bytes_set(&s.signature_key, d->server_key, 32)) != 0 ||
        (rc = mls_bytes_set(&s.credential.identity, (const uint8_t *)cred, strlen(cred))) != 0) {
        mls_external_sender_free(&s);
        return rc;
    }
    es.v = &s;
    es.n = 1;
    tls_writer_init(&w, 0);
    mls_external_senders_encode(&w, &es);
    mls_external_sender_free(&s);
    ext->v = calloc(1, sizeof(*ext->v));
    if (!ext->v) {
        tls_writer_reset(&w);
        return ERR_NOMEM;
    }
    ext->n = 1;
    ext->v[0].extension_type = MLS_EXT_EXTERNAL_SENDERS;
    return tls_writer_take(&w, &ext->v[0].extension_data.data, &ext->v[0].extension_data.len);
}

int client_thread_create(struct client_dev *d, const char *citizen, const char *kind,
                         const char *title, char thread[CLIENT_THREAD_ID_LEN + 1])
{
    uint8_t gid[16], ident[MLS_KP_MAX_IDENTITY], *gi = NULL;
    size_t ilen, gilen = 0;
    struct mls_extension_list ext = {0};
    struct mls_kp *kp = NULL;
    struct mls_group *g = NULL;
    struct wire_enc e;
    struct client_frame r;
    uint64_t now = now_s();
    uint32_t id;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = client_thread_sync(d, NULL)) != 0 || (rc = client_dev_server_key(d)) != 0)
        return rc;
    randombytes_buf(gid, sizeof(gid));
    memcpy(thread, "t_", 2);
    sodium_bin2hex(thread + 2, 33, gid, sizeof(gid));
    if ((rc = own_identity(d, ident, sizeof(ident), &ilen)) != 0 ||
        (rc = mls_kp_create(ident, ilen, d->seed, now - 86400, now + KP_LIFETIME, &kp)) != 0 ||
        (rc = external_senders(d, &ext)) != 0 ||
        (rc = mls_group_create(gid, sizeof(gid), kp, &ext, 0, &g)) != 0 ||
        (rc = mls_group_group_info(g, true, &gi, &gilen)) != 0) {
        set_err(d, "internal", "cannot create the MLS group: %s", err_str(rc));
        goto out;
    }
    id = req(d, &e, "thread.create", 4);
    wire_kv_str(&e, "citizen", citizen);
    wire_kv_str(&e, "kind", kind);
    wire_kv_str(&e, "title", title);
    wire_kv_bin(&e, "group_info", gi, gilen);
    if ((rc = call(d, id, &e, &r)) != 0)
        goto out;
    {
        char got[CLIENT_THREAD_ID_LEN + 1];
        if (wire_get_cstr(&r.msg.body, "thread", got, sizeof(got)) != 0 ||
            strcmp(got, thread) != 0) {
            set_err(d, "malformed", "thread.create: the server named another thread");
            rc = ERR_MALFORMED;
            goto out;
        }
    }
    if ((rc = group_save(d, thread, g)) != 0)
        goto out;
    /* the server now proposes the other entitled devices: commit them */
    rc = client_thread_sync(d, NULL);
out:
    client_frame_free(&r);
    free(gi);
    mls_extension_list_free(&ext);
    mls_group_free(g);
    mls_kp_free(kp);
    return rc;
}

/* Waits for `delivered` events of (thread, message); updates *delivered. */
static void wait_delivered(struct client_dev *d, const char *thread, uint64_t message,
                           uint64_t devices, int wait_ms, uint64_t *delivered)
{
    int64_t until = client_sync_now_ms() + wait_ms;

    while (*delivered < devices) {
        struct client_frame ev;
        int64_t left = until - client_sync_now_ms();
        char t[CLIENT_THREAD_ID_LEN + 1];
        uint64_t m, n;

        if (left <= 0)
            break;
        if (client_sync_event(d->conn, (int)left, &ev) != 0)
            break;
        if (getenv("SAMMEN_DEBUG"))
            fprintf(stderr, "sammen: event %s\n", ev.msg.name);
        if (strcmp(ev.msg.name, "delivered") == 0 &&
            wire_get_cstr(&ev.msg.body, "thread", t, sizeof(t)) == 0 && strcmp(t, thread) == 0 &&
            wire_get_uint(&ev.msg.body, "message", &m) == 0 && m == message &&
            wire_get_uint(&ev.msg.body, "delivered_to", &n) == 0 && n > *delivered)
            *delivered = n;
        client_frame_free(&ev);
    }
}

int client_thread_send(struct client_dev *d, const char *thread, const uint8_t *text,
                       size_t len, int wait_ms, uint64_t *message, uint64_t *devices,
                       uint64_t *delivered_to)
{
    struct client_frame r;
    int rc = 0;

    *message = *devices = *delivered_to = 0;
    memset(&r, 0, sizeof(r));
    for (int attempt = 0; attempt < SEND_TRIES; attempt++) {
        struct mls_group *g = NULL;
        uint8_t *ct = NULL;
        size_t ctlen = 0;
        struct wire_enc e;
        uint32_t id;

        if ((rc = client_thread_sync(d, NULL)) != 0)
            return rc;
        rc = group_load(d, thread, &g);
        if (rc == ERR_NOT_FOUND) {
            set_err(d, "not_found", "this device is not a member of %s", thread);
            return rc;
        }
        if (rc != 0)
            return rc;
        rc = mls_group_encrypt(g, text, len, NULL, 0, &ct, &ctlen);
        /* the sending generation moved: save before anything leaves */
        if (rc == 0)
            rc = group_save(d, thread, g);
        mls_group_free(g);
        if (rc != 0) {
            free(ct);
            set_err(d, "internal", "cannot encrypt: %s", err_str(rc));
            return rc;
        }
        id = req(d, &e, "thread.send", 2);
        wire_kv_str(&e, "thread", thread);
        wire_kv_bin(&e, "msg", ct, ctlen);
        rc = call(d, id, &e, &r);
        free(ct);
        if (rc == ERR_CONFLICT || rc == ERR_BADSTATE) {
            /* a commit won the race, or a removal was proposed after our
             * sync: sync (committing it) and re-encrypt */
            client_frame_free(&r);
            continue;
        }
        break;
    }
    if (rc != 0) {
        client_frame_free(&r);
        return rc;
    }
    /* the server's time of the message, as every other member sees it (not
     * this device's clock) */
    uint64_t sent_at = 0;
    if (wire_get_uint(&r.msg.body, "message", message) != 0 ||
        wire_get_uint(&r.msg.body, "devices", devices) != 0 ||
        wire_get_uint(&r.msg.body, "time", &sent_at) != 0) {
        client_frame_free(&r);
        set_err(d, "malformed", "thread.send: no message/devices/time in the answer");
        return ERR_MALFORMED;
    }
    client_frame_free(&r);
    rc = msg_store(d, thread, *message, sent_at, d->id, d->device, text, len, NULL);
    if (rc != 0)
        return rc;
    if (*devices > 0 && wait_ms > 0)
        wait_delivered(d, thread, *message, *devices, wait_ms, delivered_to);
    /* the final count from the server */
    {
        struct wire_enc e;
        uint32_t id = req(d, &e, "thread.status", 2);
        uint64_t n;
        wire_kv_str(&e, "thread", thread);
        wire_kv_uint(&e, "message", *message);
        if (call(d, id, &e, &r) == 0 && wire_get_uint(&r.msg.body, "delivered_to", &n) == 0 &&
            n > *delivered_to)
            *delivered_to = n;
        client_frame_free(&r);
        d->err_code[0] = '\0';
    }
    return 0;
}

/* ---- roster and consent checks ------------------------------------------------- */

int client_thread_roster(struct client_dev *d, const char *thread,
                         struct client_roster_dev **out, size_t *n)
{
    struct mls_group *g = NULL;
    struct mls_roster_entry *ro = NULL;
    struct client_roster_dev *rd = NULL;
    size_t cnt = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = group_load(d, thread, &g)) != 0)
        return rc;
    (void)mls_group_roster(g, NULL, 0, &cnt);
    ro = calloc(cnt ? cnt : 1, sizeof(*ro));
    rd = calloc(cnt ? cnt : 1, sizeof(*rd));
    if (!ro || !rd) {
        rc = ERR_NOMEM;
        goto out;
    }
    if ((rc = mls_group_roster(g, ro, cnt, &cnt)) != 0)
        goto out;
    for (size_t i = 0; i < cnt; i++) {
        split_identity(ro[i].identity, ro[i].identity_len, rd[i].identity,
                       sizeof(rd[i].identity), rd[i].device, sizeof(rd[i].device));
        rd[i].bound = ro[i].signature_key_len == 32 &&
                      mls_kp_identity_check(ro[i].identity, ro[i].identity_len,
                                            ro[i].signature_key, ro[i].signature_key_len) == 0;
        if (ro[i].signature_key_len == 32)
            keys_id_fingerprint(ro[i].signature_key, rd[i].fingerprint);
    }
    *out = rd;
    *n = cnt;
    rd = NULL;
out:
    free(ro);
    free(rd);
    mls_group_free(g);
    return rc;
}

/* Basis "proxy": a registration of member for citizen in the ledger whose
 * signature checks with the listed registrar key (the decoder refuses a
 * registrar who is the citizen or the proxy), and no end: the server
 * listing it as ended, or a verified end naming it, takes it away. Whether
 * the registrar is staff is the server's word; a server can also withhold
 * an end (see PROTOCOL.md), but it cannot invent a registration. */
static int proxy_basis(const struct client_frame *r, const char *citizen, const char *member,
                       char *why, size_t cap)
{
    struct wire_array arr;
    struct msg_proxy_reg *p = malloc(sizeof(*p));
    struct msg_proxy_end *pe = malloc(sizeof(*pe));
    int rc = ERR_DENIED;

    if (!p || !pe) {
        rc = ERR_NOMEM;
        snprintf(why, cap, "out of memory");
        goto out;
    }
    snprintf(why, cap, "no signed proxy registration of %s for %s in the ledger", member,
             citizen);
    if (wire_get_array(&r->msg.body, "proxies", &arr) != 0)
        arr.n = 0;
    for (uint32_t i = 0; i < arr.n && rc != 0; i++) {
        struct wire_map m;
        const uint8_t *tbs, *sig, *key, *etbs, *esig, *ekey;
        size_t tl, sl, kl, etl, esl, ekl;
        char reg[MSG_GRANT_GID_LEN + 1];
        uint64_t ended = 0;

        if (wire_array_map(&arr, i, &m) != 0 ||
            wire_get_cstr(&m, "registration", reg, sizeof(reg)) != 0)
            continue;
        if (wire_get_bin(&m, "tbs", &tbs, &tl) != 0 || wire_get_bin(&m, "sig", &sig, &sl) != 0 ||
            wire_get_bin(&m, "registrar_key", &key, &kl) != 0 ||
            client_consent_verify_proxy(tbs, tl, sig, sl, key, kl, reg, p) != 0) {
            /* remember why, in case nothing else fits */
            snprintf(why, cap, "registration %s: the signature does not verify", reg);
            continue;
        }
        if (strcmp(p->citizen, citizen) != 0 || strcmp(p->proxy, member) != 0)
            continue;
        (void)wire_get_uint(&m, "ended", &ended);
        if (wire_get_bin(&m, "end_tbs", &etbs, &etl) == 0 && etl > 0 &&
            wire_get_bin(&m, "end_sig", &esig, &esl) == 0 &&
            wire_get_bin(&m, "ender_key", &ekey, &ekl) == 0 &&
            client_consent_verify_proxy_end(etbs, etl, esig, esl, ekey, ekl, pe) == 0 &&
            strcmp(pe->registration, reg) == 0) {
            snprintf(why, cap, "registration %s was ended by %s", reg, pe->ender);
            continue;
        }
        if (ended) {
            snprintf(why, cap, "registration %s is ended (the server says so)", reg);
            continue;
        }
        snprintf(why, cap, "signed %s registration %s by %s (staff: the server's word)",
                 p->basis, reg, p->registrar);
        rc = 0;
    }
out:
    free(p);
    free(pe);
    return rc;
}

/* Basis "breakglass": an access signed by member's own device for this
 * thread of citizen, not expired at the server's time. */
static int breakglass_basis(const struct client_frame *r, const char *citizen,
                            const char *thread, const char *member, uint64_t server_time,
                            char *why, size_t cap)
{
    struct wire_array arr;
    struct msg_breakglass *b = malloc(sizeof(*b));
    int rc = ERR_DENIED;

    if (!b) {
        snprintf(why, cap, "out of memory");
        return ERR_NOMEM;
    }
    snprintf(why, cap, "no signed break-glass access of %s to %s in the ledger", member,
             thread);
    if (wire_get_array(&r->msg.body, "breakglass", &arr) != 0)
        arr.n = 0;
    for (uint32_t i = 0; i < arr.n && rc != 0; i++) {
        struct wire_map m;
        const uint8_t *tbs, *sig, *key;
        size_t tl, sl, kl;
        char access[MSG_GRANT_GID_LEN + 1];

        if (wire_array_map(&arr, i, &m) != 0 ||
            wire_get_cstr(&m, "access", access, sizeof(access)) != 0)
            continue;
        if (wire_get_bin(&m, "tbs", &tbs, &tl) != 0 || wire_get_bin(&m, "sig", &sig, &sl) != 0 ||
            wire_get_bin(&m, "staff_key", &key, &kl) != 0 ||
            client_consent_verify_breakglass(tbs, tl, sig, sl, key, kl, access, b) != 0) {
            snprintf(why, cap, "break-glass %s: the signature does not verify", access);
            continue;
        }
        if (strcmp(b->citizen, citizen) != 0 || strcmp(b->thread, thread) != 0 ||
            strcmp(b->staff, member) != 0)
            continue;
        if (server_time >= b->opened_at + (uint64_t)b->hours * 3600) {
            snprintf(why, cap, "break-glass %s has expired", access);
            continue;
        }
        snprintf(why, cap, "signed break-glass %s by %s for %u h: %s", access, b->staff,
                 (unsigned)b->hours, b->reason);
        rc = 0;
    }
    free(b);
    return rc;
}

int client_thread_check_basis(struct client_dev *d, const char *citizen, const char *thread,
                              const char *kind, const char *member, const char *basis,
                              uint64_t server_time, char *why, size_t cap)
{
    struct wire_enc e;
    struct client_frame r;
    struct wire_array arr;
    uint32_t id;
    int rc;

    if (strcmp(basis, "citizen") == 0) {
        if (strcmp(member, citizen) == 0) {
            snprintf(why, cap, "the citizen");
            return 0;
        }
        snprintf(why, cap, "basis 'citizen' for someone who is not the citizen");
        return ERR_DENIED;
    }
    if (strcmp(basis, "proxy") != 0 && strcmp(basis, "breakglass") != 0 &&
        !msg_grant_id_valid(basis)) {
        snprintf(why, cap, "unknown basis '%s'", basis);
        return ERR_DENIED;
    }
    /* one consent.list per citizen and device session: kept in d */
    if (!d->ledger.buf || strcmp(d->ledger_citizen, citizen) != 0) {
        client_frame_free(&d->ledger);
        d->ledger_citizen[0] = '\0';
        id = req(d, &e, "consent.list", 1);
        wire_kv_str(&e, "citizen", citizen);
        if ((rc = call(d, id, &e, &d->ledger)) != 0) {
            client_frame_free(&d->ledger);
            snprintf(why, cap, "cannot list the consents: %s", d->err_code);
            return rc;
        }
        snprintf(d->ledger_citizen, sizeof(d->ledger_citizen), "%s", citizen);
    }
    r = d->ledger; /* borrowed view; freed with d */
    if (strcmp(basis, "proxy") == 0)
        return proxy_basis(&r, citizen, member, why, cap);
    if (strcmp(basis, "breakglass") == 0)
        return breakglass_basis(&r, citizen, thread, member, server_time, why, cap);
    rc = ERR_DENIED;
    snprintf(why, cap, "grant %s not found in the citizen's ledger", basis);
    if (wire_get_array(&r.msg.body, "grants", &arr) != 0)
        arr.n = 0;
    for (uint32_t i = 0; i < arr.n; i++) {
        struct wire_map m;
        const uint8_t *tbs, *sig, *key;
        size_t tl, sl, kl;
        uint64_t revoked = 0;
        char gid[MSG_GRANT_GID_LEN + 1];
        struct msg_grant *g;

        if (wire_array_map(&arr, i, &m) != 0 ||
            wire_get_cstr(&m, "grant", gid, sizeof(gid)) != 0 || strcmp(gid, basis) != 0)
            continue;
        if (wire_get_bin(&m, "tbs", &tbs, &tl) != 0 || wire_get_bin(&m, "sig", &sig, &sl) != 0 ||
            wire_get_bin(&m, "granter_key", &key, &kl) != 0) {
            snprintf(why, cap, "grant %s: the server sent no signed form", basis);
            break;
        }
        (void)wire_get_uint(&m, "revoked", &revoked);
        g = malloc(sizeof(*g));
        if (!g) {
            rc = ERR_NOMEM;
            break;
        }
        if (client_consent_verify(tbs, tl, sig, sl, key, kl, basis, g) != 0) {
            snprintf(why, cap, "grant %s: the signature does not verify", basis);
        } else if (revoked) {
            snprintf(why, cap, "grant %s is revoked", basis);
        } else if (!client_consent_covers(g, citizen, thread, kind, server_time)) {
            snprintf(why, cap, "grant %s does not cover this thread (scope %s%s)", basis,
                     g->scope, g->expires_at && server_time >= g->expires_at ? ", expired" : "");
        } else {
            enum msg_grantee_kind gk;
            if (msg_grant_grantee_parse(g->grantee, &gk, NULL, 0, NULL, 0) != 0) {
                snprintf(why, cap, "grant %s: bad grantee", basis);
            } else if (gk == MSG_GRANTEE_PERSON) {
                if (strcmp(g->grantee, member) == 0) {
                    snprintf(why, cap, "signed %s grant by %s (%s) for %s", msg_grant_form_name(g->form),
                             g->granter, g->basis, g->scope);
                    rc = 0;
                } else {
                    snprintf(why, cap, "grant %s names %s, not %s", basis, g->grantee, member);
                }
            } else {
                /* membership of a department/association is the server's
                 * ledger; the signed grant itself is verified */
                snprintf(why, cap, "signed %s grant by %s to %s (%s); membership: the server's word",
                         msg_grant_form_name(g->form), g->granter, g->grantee, g->scope);
                rc = 0;
            }
        }
        free(g);
        break;
    }
    return rc;
}
