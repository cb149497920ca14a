/*
 * bench_prof.c: the bench profile directory and bulk provisioning
 * (bench.h).
 *
 *   DIR/            0700
 *   DIR/bench.json  0600 {"version": 1, "server": URL or "", "domain": ...,
 *                         "admin": {"id", "device", "role", "seed": hex},
 *                         "devices": [{"id", "device", "role", "seed": hex}]}
 *   DIR/data/       the spawned server's data directory (--spawn)
 *   DIR/server.log  the spawned server's log
 *
 * Devices are provisioned the way an administrator would do it, only many
 * at once: admin.invite {role, name} on a logged-in admin session gives a
 * one-time code, and a new connection enrolls a fresh Ed25519 key with it
 * (enroll {code, key, sig}); the server checks everything as usual. Names
 * are POOL-TAG-NNNNNN with a random TAG per provisioning run, so a lost
 * profile never collides with identities already on the server.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "bench_net.h"
#include "client_auth.h"
#include "err.h"
#include "keys_id.h"

#define PROF_VERSION 1

/* ---- file ---- */

static int dev_from_json(const json_t *o, struct bench_dev *d)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *dev = json_string_value(json_object_get(o, "device"));
    const char *role = json_string_value(json_object_get(o, "role"));
    const char *seed = json_string_value(json_object_get(o, "seed"));
    size_t bin_len = 0;

    memset(d, 0, sizeof(*d));
    if (!id || !dev || !role || !seed || strlen(id) >= sizeof(d->id) ||
        strlen(dev) >= sizeof(d->device) || strlen(role) >= sizeof(d->role) ||
        strlen(seed) != 64)
        return ERR_MALFORMED;
    if (sodium_hex2bin(d->seed, sizeof(d->seed), seed, 64, NULL, &bin_len, NULL) != 0 ||
        bin_len != 32)
        return ERR_MALFORMED;
    strcpy(d->id, id);
    strcpy(d->device, dev);
    strcpy(d->role, role);
    return 0;
}

static json_t *dev_to_json(const struct bench_dev *d)
{
    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), d->seed, sizeof(d->seed));
    return json_pack("{s:s, s:s, s:s, s:s}", "id", d->id, "device", d->device, "role", d->role,
                     "seed", hex);
}

static int push_dev(struct bench_profile *p, const struct bench_dev *d)
{
    if (p->ndevs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        struct bench_dev *nd = realloc(p->devs, cap * sizeof(*nd));
        if (!nd)
            return ERR_NOMEM;
        p->devs = nd;
        p->cap = cap;
    }
    p->devs[p->ndevs++] = *d;
    return 0;
}

int bench_prof_load(const char *dir, struct bench_profile *p)
{
    char path[600];
    json_t *doc = NULL, *a;
    json_error_t jerr;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (strlen(dir) >= sizeof(p->dir))
        return ERR_TOO_BIG;
    strcpy(p->dir, dir);
    snprintf(path, sizeof(path), "%s/bench.json", dir);
    if (access(path, F_OK) != 0)
        return 0;
    doc = json_load_file(path, 0, &jerr);
    if (!doc || !json_is_object(doc) ||
        json_integer_value(json_object_get(doc, "version")) != PROF_VERSION) {
        rc = ERR_MALFORMED;
        goto out;
    }
    {
        const char *s = json_string_value(json_object_get(doc, "server"));
        const char *d = json_string_value(json_object_get(doc, "domain"));
        if (!s || !d || strlen(s) >= sizeof(p->server) || strlen(d) >= sizeof(p->domain)) {
            rc = ERR_MALFORMED;
            goto out;
        }
        strcpy(p->server, s);
        strcpy(p->domain, d);
    }
    if (json_object_get(doc, "admin")) {
        rc = dev_from_json(json_object_get(doc, "admin"), &p->admin);
        if (rc != 0)
            goto out;
        p->has_admin = true;
    }
    a = json_object_get(doc, "devices");
    if (!json_is_array(a)) {
        rc = ERR_MALFORMED;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        struct bench_dev d;
        rc = dev_from_json(json_array_get(a, i), &d);
        if (rc == 0)
            rc = push_dev(p, &d);
        if (rc != 0)
            goto out;
    }
out:
    json_decref(doc);
    if (rc != 0)
        bench_prof_free(p);
    return rc;
}

int bench_prof_save(const struct bench_profile *p)
{
    char path[600], tmp[620];
    json_t *doc, *a;
    char *s = NULL;
    int fd = -1, rc = ERR_IO;
    size_t len, off = 0;

    doc = json_pack("{s:i, s:s, s:s}", "version", PROF_VERSION, "server", p->server, "domain",
                    p->domain);
    a = json_array();
    if (!doc || !a) {
        json_decref(doc);
        json_decref(a);
        return ERR_NOMEM;
    }
    if (p->has_admin)
        json_object_set_new(doc, "admin", dev_to_json(&p->admin));
    for (size_t i = 0; i < p->ndevs; i++)
        json_array_append_new(a, dev_to_json(&p->devs[i]));
    json_object_set_new(doc, "devices", a);
    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!s)
        return ERR_NOMEM;
    if (mkdir(p->dir, 0700) != 0 && errno != EEXIST)
        goto out;
    snprintf(path, sizeof(path), "%s/bench.json", p->dir);
    snprintf(tmp, sizeof(tmp), "%s/bench.json.tmp", p->dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    len = strlen(s);
    while (off < len) {
        ssize_t w = write(fd, s + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    /* the keys must survive a crash: data on disk before the rename */
    if (fsync(fd) != 0)
        goto out;
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
    return rc;
}

void bench_prof_free(struct bench_profile *p)
{
    if (p->devs)
        sodium_memzero(p->devs, p->cap * sizeof(*p->devs));
    free(p->devs);
    sodium_memzero(&p->admin, sizeof(p->admin));
    p->devs = NULL;
    p->ndevs = p->cap = 0;
    p->has_admin = false;
}

size_t bench_prof_count(const struct bench_profile *p, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (size_t i = 0; i < p->ndevs; i++)
        if (strncmp(p->devs[i].id, prefix, pl) == 0 && p->devs[i].id[pl] == '-')
            n++;
    return n;
}

int bench_prof_select(const struct bench_profile *p, const char *prefix, size_t n,
                      const struct bench_dev **out)
{
    size_t k = 0, pl = strlen(prefix);
    for (size_t i = 0; i < p->ndevs && k < n; i++)
        if (strncmp(p->devs[i].id, prefix, pl) == 0 && p->devs[i].id[pl] == '-')
            out[k++] = &p->devs[i];
    return k == n ? 0 : ERR_BADSTATE;
}

/* ---- login (shared by the workloads) ---- */

struct login_flow {
    bench_login_fn *done;
    void *arg;
    const struct bench_dev *dev;
};

static void on_login_resp(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct login_flow *f = arg;
    (void)m;
    f->done(c, rc, f->arg);
    free(f);
}

static void on_challenge(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct login_flow *f = arg;
    const uint8_t *nonce;
    size_t nlen;
    char domain[CLIENT_DOMAIN_MAX + 1], dev[KEYS_ID_DEVICE_LEN + 1];
    uint8_t sig[64];
    struct wire_enc e;
    uint32_t id;

    if (rc == 0 && (wire_get_bin(&m->body, "nonce", &nonce, &nlen) != 0 ||
                    nlen != CLIENT_NONCE_LEN ||
                    wire_get_cstr(&m->body, "domain", domain, sizeof(domain)) != 0))
        rc = ERR_MALFORMED;
    if (rc == 0)
        rc = client_auth_sign_login(f->dev->seed, domain, nonce, dev, sig);
    if (rc == 0) {
        id = bconn_next_id(c);
        wire_enc_init(&e);
        wire_enc_request(&e, id, "auth.login", 3);
        wire_kv_str(&e, "id", f->dev->id);
        wire_kv_str(&e, "device", dev);
        wire_kv_bin(&e, "sig", sig, sizeof(sig));
        rc = bconn_request(c, id, &e, on_login_resp, f);
        wire_enc_reset(&e);
        if (rc == 0)
            return;
    }
    f->done(c, rc, f->arg);
    free(f);
}

int bench_login_start(struct bconn *c, const struct bench_dev *dev, bench_login_fn *done,
                      void *arg)
{
    struct login_flow *f = calloc(1, sizeof(*f));
    struct wire_enc e;
    uint32_t id;
    int rc;

    if (!f)
        return ERR_NOMEM;
    f->done = done;
    f->arg = arg;
    f->dev = dev;
    id = bconn_next_id(c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "auth.challenge", 0);
    rc = bconn_request(c, id, &e, on_challenge, f);
    wire_enc_reset(&e);
    if (rc != 0)
        free(f);
    return rc;
}

/* ---- provisioning ---- */

#define ADMIN_CONNS 4

struct prov;

struct job {
    struct prov *pv;
    bool busy;
    struct bconn *conn;
    char code[64];
    struct bench_dev dev;
};

struct admin_conn {
    struct prov *pv;
    struct bconn *conn;
    bool ready, dead;
};

struct prov {
    struct bnet *net;
    struct bench_profile *p;
    const struct bench_target *t;
    const char *prefix, *role;
    char tag[8];
    size_t want, have, next_name;
    int failures;
    int first_err;
    struct job *jobs;
    int njobs;
    struct admin_conn admin[ADMIN_CONNS];
    unsigned src_rr;
};

static const char *next_source(struct prov *pv)
{
    const struct bench_target *t = pv->t;
    if (t->nsources <= 0)
        return NULL;
    return t->sources[pv->src_rr++ % (unsigned)t->nsources];
}

static void note_err(struct prov *pv, const char *what, int rc, const struct wire_msg *m)
{
    pv->failures++;
    if (!pv->first_err)
        pv->first_err = rc;
    if (pv->failures <= 3)
        fprintf(stderr, "sammen-bench: %s failed: %s%s%.*s\n", what, err_str(rc),
                m && !m->ok ? ": " : "", m && !m->ok ? (int)m->err_msg_len : 0,
                m && !m->ok && m->err_msg ? m->err_msg : "");
}

static void job_fail(struct job *j, const char *what, int rc, const struct wire_msg *m)
{
    note_err(j->pv, what, rc, m);
    if (j->conn)
        bconn_close(j->conn);
    else
        j->busy = false;
}

static void enroll_resp(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct job *j = arg;
    struct prov *pv = j->pv;

    if (rc == 0 && (wire_get_cstr(&m->body, "id", j->dev.id, sizeof(j->dev.id)) != 0 ||
                    wire_get_cstr(&m->body, "device", j->dev.device, sizeof(j->dev.device)) != 0))
        rc = ERR_MALFORMED;
    if (rc != 0) {
        job_fail(j, "enroll", rc, m);
        return;
    }
    if (push_dev(pv->p, &j->dev) != 0) {
        job_fail(j, "enroll", ERR_NOMEM, NULL);
        return;
    }
    pv->have++;
    if (pv->have % 1000 == 0) {
        fprintf(stderr, "sammen-bench: provisioned %zu/%zu\n", pv->have, pv->want);
        (void)bench_prof_save(pv->p);
    }
    bconn_close(c);
}

/* enroll {code, key, label, sig}: the proof of possession signs the code */
static int send_enroll(struct bconn *c, const char *code, const uint8_t seed[32],
                       bconn_resp_fn *cb, void *arg)
{
    uint8_t pk[32], msg[256], sig[64];
    size_t len;
    struct wire_enc e;
    uint32_t id;
    int rc;

    rc = keys_id_public(seed, pk);
    if (rc == 0)
        rc = keys_id_enroll_msg(code, msg, sizeof(msg), &len);
    if (rc == 0)
        rc = keys_id_sign(seed, msg, len, sig);
    if (rc != 0)
        return rc;
    id = bconn_next_id(c);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "enroll", 4);
    wire_kv_str(&e, "code", code);
    wire_kv_bin(&e, "key", pk, sizeof(pk));
    wire_kv_bin(&e, "sig", sig, sizeof(sig));
    wire_kv_str(&e, "label", "bench");
    rc = bconn_request(c, id, &e, cb, arg);
    wire_enc_reset(&e);
    return rc;
}

static void job_open(struct bconn *c, void *user)
{
    struct job *j = user;
    int rc = send_enroll(c, j->code, j->dev.seed, enroll_resp, j);
    if (rc != 0)
        job_fail(j, "enroll", rc, NULL);
}

static void job_close(struct bconn *c, int reason, void *user)
{
    struct job *j = user;
    (void)c;
    (void)reason;
    j->conn = NULL;
    j->busy = false;
}

static void invite_resp(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct job *j = arg;
    struct prov *pv = j->pv;
    const struct bconn_cbs cbs = {job_open, NULL, job_close, NULL};
    (void)c;

    if (rc == 0 && wire_get_cstr(&m->body, "code", j->code, sizeof(j->code)) != 0)
        rc = ERR_MALFORMED;
    if (rc != 0) {
        job_fail(j, "admin.invite", rc, m);
        return;
    }
    rc = bconn_open(pv->net, pv->t->host, pv->t->port, "/", next_source(pv), &cbs, j, &j->conn);
    if (rc != 0)
        job_fail(j, "connect", rc, NULL);
}

/* Starts one device: a fresh key and name, admin.invite on a ready admin
 * connection with room. Returns false when no admin connection has room. */
static bool job_start(struct prov *pv, struct job *j)
{
    struct admin_conn *a = NULL;
    char name[64];
    struct wire_enc e;
    uint32_t id;
    int rc;

    for (int i = 0; i < ADMIN_CONNS; i++) {
        struct admin_conn *x = &pv->admin[(pv->next_name + (size_t)i) % ADMIN_CONNS];
        if (x->ready && x->conn && bconn_pending(x->conn) < BCONN_MAX_PENDING) {
            a = x;
            break;
        }
    }
    if (!a)
        return false;
    memset(&j->dev, 0, sizeof(j->dev));
    randombytes_buf(j->dev.seed, sizeof(j->dev.seed));
    snprintf(name, sizeof(name), "%s-%s-%06zu", pv->prefix, pv->tag, pv->next_name++);
    snprintf(j->dev.role, sizeof(j->dev.role), "%s", pv->role);
    j->busy = true;
    j->conn = NULL;
    id = bconn_next_id(a->conn);
    wire_enc_init(&e);
    wire_enc_request(&e, id, "admin.invite", 2);
    wire_kv_str(&e, "role", pv->role);
    wire_kv_str(&e, "name", name);
    rc = bconn_request(a->conn, id, &e, invite_resp, j);
    wire_enc_reset(&e);
    if (rc != 0)
        job_fail(j, "admin.invite", rc, NULL);
    return true;
}

static void admin_logged_in(struct bconn *c, int rc, void *arg)
{
    struct admin_conn *a = arg;
    if (rc != 0) {
        note_err(a->pv, "admin login", rc, NULL);
        bconn_close(c);
        return;
    }
    a->ready = true;
}

static void admin_open(struct bconn *c, void *user)
{
    struct admin_conn *a = user;
    int rc = bench_login_start(c, &a->pv->p->admin, admin_logged_in, a);
    if (rc != 0) {
        note_err(a->pv, "admin login", rc, NULL);
        bconn_close(c);
    }
}

static void admin_close(struct bconn *c, int reason, void *user)
{
    struct admin_conn *a = user;
    (void)c;
    (void)reason;
    a->conn = NULL;
    a->ready = false;
    a->dead = true;
}

/* The administrator's own enrollment (a profile's first run). */
struct admin_enroll {
    struct bench_profile *p;
    const char *code;
    int rc;
    bool done;
};

static void admin_enroll_resp(struct bconn *c, const struct wire_msg *m, int rc, void *arg)
{
    struct admin_enroll *ae = arg;
    char domain[128];

    if (rc == 0 &&
        (wire_get_cstr(&m->body, "id", ae->p->admin.id, sizeof(ae->p->admin.id)) != 0 ||
         wire_get_cstr(&m->body, "device", ae->p->admin.device, sizeof(ae->p->admin.device)) !=
             0 ||
         wire_get_cstr(&m->body, "domain", domain, sizeof(domain)) != 0))
        rc = ERR_MALFORMED;
    if (rc == 0) {
        strcpy(ae->p->domain, domain);
        strcpy(ae->p->admin.role, "admin");
        ae->p->has_admin = true;
    } else if (m && !m->ok) {
        fprintf(stderr, "sammen-bench: admin enroll: %s %.*s\n", m->name, (int)m->err_msg_len,
                m->err_msg ? m->err_msg : "");
    }
    ae->rc = rc;
    ae->done = true;
    bconn_close(c);
}

static void admin_enroll_open(struct bconn *c, void *user)
{
    struct admin_enroll *ae = user;
    int rc = send_enroll(c, ae->code, ae->p->admin.seed, admin_enroll_resp, ae);
    if (rc != 0) {
        ae->rc = rc;
        ae->done = true;
        bconn_close(c);
    }
}

static void admin_enroll_close(struct bconn *c, int reason, void *user)
{
    struct admin_enroll *ae = user;
    (void)c;
    if (!ae->done) {
        ae->rc = reason;
        ae->done = true;
    }
}

static int enroll_admin(struct bnet *net, struct bench_profile *p, const struct bench_target *t,
                        const char *code)
{
    struct admin_enroll ae = {p, code, 0, false};
    const struct bconn_cbs cbs = {admin_enroll_open, NULL, admin_enroll_close, NULL};
    struct bconn *c;
    uint64_t deadline = bnet_now_ns() + 30000000000ull;
    int rc;

    memset(&p->admin, 0, sizeof(p->admin));
    randombytes_buf(p->admin.seed, sizeof(p->admin.seed));
    rc = bconn_open(net, t->host, t->port, "/", NULL, &cbs, &ae, &c);
    if (rc != 0)
        return rc;
    while (!ae.done && bnet_now_ns() < deadline)
        (void)bnet_service(net, 50);
    /* let the close finish so no callback outlives ae */
    while (bnet_live(net) > 0 && bnet_now_ns() < deadline + 5000000000ull)
        (void)bnet_service(net, 20);
    if (!ae.done)
        return ERR_EXPIRED;
    return ae.rc;
}

int bench_prof_provision(struct bench_profile *p, const struct bench_target *t,
                         const char *admin_code, const char *prefix, const char *role,
                         size_t want, int conc)
{
    struct prov pv;
    struct bnet *net = NULL;
    const struct bconn_cbs acbs = {admin_open, NULL, admin_close, NULL};
    uint8_t tagb[2];
    size_t have = bench_prof_count(p, prefix);
    uint64_t last_progress;
    int rc;

    if (have >= want)
        return 0;
    memset(&pv, 0, sizeof(pv));
    rc = bnet_new(1u << 20, &net);
    if (rc != 0)
        return rc;
    if (!p->has_admin) {
        if (!admin_code || !*admin_code) {
            fprintf(stderr, "sammen-bench: the profile has no administrator: give "
                            "--admin-code (an admin invitation) or use --spawn\n");
            rc = ERR_INVALID;
            goto out;
        }
        rc = enroll_admin(net, p, t, admin_code);
        if (rc != 0) {
            fprintf(stderr, "sammen-bench: enrolling the administrator failed: %s\n",
                    err_str(rc));
            goto out;
        }
        rc = bench_prof_save(p);
        if (rc != 0)
            goto out;
    }
    pv.net = net;
    pv.p = p;
    pv.t = t;
    pv.prefix = prefix;
    pv.role = role;
    pv.want = want;
    pv.have = have;
    randombytes_buf(tagb, sizeof(tagb));
    sodium_bin2hex(pv.tag, sizeof(pv.tag), tagb, sizeof(tagb));
    pv.njobs = conc > 0 ? conc : 64;
    pv.jobs = calloc((size_t)pv.njobs, sizeof(*pv.jobs));
    if (!pv.jobs) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < pv.njobs; i++)
        pv.jobs[i].pv = &pv;
    for (int i = 0; i < ADMIN_CONNS; i++) {
        pv.admin[i].pv = &pv;
        rc = bconn_open(net, t->host, t->port, "/", NULL, &acbs, &pv.admin[i], &pv.admin[i].conn);
        if (rc != 0)
            goto out;
    }
    last_progress = bnet_now_ns();
    fprintf(stderr, "sammen-bench: provisioning %zu %s devices (%s)\n", want - have, prefix,
            role);
    while (pv.have < want) {
        size_t inflight = 0, before = pv.have;
        bool dead = true;
        for (int i = 0; i < pv.njobs; i++)
            inflight += pv.jobs[i].busy;
        for (int i = 0; i < pv.njobs && pv.have + inflight < want; i++) {
            if (pv.jobs[i].busy)
                continue;
            if (!job_start(&pv, &pv.jobs[i]))
                break;
            inflight++;
        }
        for (int i = 0; i < ADMIN_CONNS; i++)
            dead = dead && pv.admin[i].dead;
        if (dead || pv.failures > 20) {
            rc = pv.first_err ? pv.first_err : ERR_IO;
            goto out;
        }
        (void)bnet_service(net, 10);
        if (pv.have != before)
            last_progress = bnet_now_ns();
        else if (bnet_now_ns() - last_progress > 60000000000ull) {
            rc = ERR_EXPIRED;
            goto out;
        }
    }
    rc = 0;
out:
    for (int i = 0; i < ADMIN_CONNS; i++)
        if (pv.admin[i].conn)
            bconn_close(pv.admin[i].conn);
    if (net) {
        uint64_t until = bnet_now_ns() + 5000000000ull;
        while (bnet_live(net) > 0 && bnet_now_ns() < until)
            (void)bnet_service(net, 10);
        bnet_free(net);
    }
    free(pv.jobs);
    if (p->has_admin) {
        int src = bench_prof_save(p);
        if (rc == 0)
            rc = src;
    }
    return rc;
}
