/*
 * cmd_threads.c: the issue-5 commands of `sammen` (threads, consent,
 * relatives, proxies, break-glass, agreements). Every one starts with
 * dev_session(): log in, open the device's encrypted state, keep the
 * KeyPackage stock, and sync (client_thread_sync), so the device has
 * processed everything waiting and committed the server's proposals before
 * it acts. The MLS and consent work is in clients/lib (client_thread.c,
 * client_consent.c); this file maps arguments to it and answers in JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cli.h"
#include "client_consent.h"
#include "client_sync.h"
#include "client_thread.h"
#include "err.h"
#include "msg_grant.h"

#define SEND_WAIT_MS 1000

/* What the session's sync did (for `sammen sync`). */
static struct client_sync_stats session_stats;

/* ---- session and calls ---- */

static int dev_fail(struct cli *cli, int rc, const char *what)
{
    const struct client_dev *d = cli->dev;
    if (d && d->err_code[0])
        return cli_fail(cli, d->err_code, "%s: %s (%s)", what, d->err_code, d->err_msg);
    if (d && d->err_msg[0])
        return cli_fail(cli, err_str(rc), "%s: %s", what, d->err_msg);
    return cli_fail(cli, err_str(rc), "%s: %s", what, err_str(rc));
}

static int open_dev(struct cli *cli, const uint8_t seed[32])
{
    int rc = client_dev_open(cli->conn, cli->profile_dir, cli->prof.id, cli->prof.device,
                             cli->prof.domain, seed, cli->timeout_ms, &cli->dev);
    if (rc == ERR_DENIED)
        return cli_fail(cli, "denied", "%s/state.db is readable by others; refusing it",
                        cli->profile_dir);
    if (rc != 0)
        return cli_fail(cli, err_str(rc), "cannot open %s/state.db: %s", cli->profile_dir,
                        err_str(rc));
    return 0;
}

/* Logs in, opens the device state, tops up KeyPackages, syncs. */
static int dev_session(struct cli *cli)
{
    uint8_t seed[32];
    int rc, st;

    if ((st = cli_session(cli)) != 0)
        return st;
    rc = client_profile_read_key(cli->profile_dir, cli->passphrase, seed);
    if (rc != 0) {
        sodium_memzero(seed, sizeof(seed));
        return cli_fail(cli, err_str(rc), "cannot unlock the device key: %s", err_str(rc));
    }
    st = open_dev(cli, seed);
    sodium_memzero(seed, sizeof(seed));
    if (st != 0)
        return st;
    if ((rc = client_thread_kp_stock(cli->dev, NULL)) != 0)
        return dev_fail(cli, rc, "keeping KeyPackages on the server");
    if ((rc = client_thread_sync(cli->dev, &session_stats)) != 0)
        return dev_fail(cli, rc, "sync");
    return 0;
}

void cli_enroll_keypackages(struct cli *cli, const uint8_t seed[32])
{
    int rc;

    if (open_dev(cli, seed) != 0)
        return;
    rc = client_thread_kp_stock(cli->dev, NULL);
    if (rc != 0 && strcmp(cli->dev->err_code, "unknown_op") != 0)
        fprintf(stderr, "sammen: warning: could not upload KeyPackages: %s %s\n",
                cli->dev->err_code, cli->dev->err_msg);
}

/* Sends the request in e (id) and returns its `ok` map as JSON in *out. */
static int dev_call_json(struct cli *cli, uint32_t id, struct wire_enc *e, const char *op,
                         json_t **out)
{
    struct client_frame r;
    int rc = client_dev_call(cli->dev, id, e, &r);

    wire_enc_reset(e);
    *out = NULL;
    if (rc != 0) {
        client_frame_free(&r);
        return dev_fail(cli, rc, op);
    }
    *out = cli_json_map(&r.msg.body);
    client_frame_free(&r);
    if (!*out)
        return cli_fail(cli, "internal", "%s: cannot convert the answer", op);
    return 0;
}

static uint32_t start(struct cli *cli, struct wire_enc *e, const char *op, uint32_t n)
{
    uint32_t id = client_conn_next_id(cli->conn);
    wire_enc_init(e);
    wire_enc_request(e, id, op, n);
    return id;
}

/* The two arguments of every signed request: the TBS and its signature. */
static void kv_signed(struct wire_enc *e, const uint8_t *tbs, size_t tl, const uint8_t sig[64])
{
    wire_kv_bin(e, "tbs", tbs, tl);
    wire_kv_bin(e, "sig", sig, 64);
}

/* Sends op {tbs, sig}; *out gets the answer as JSON (NULL on failure). */
static int send_signed(struct cli *cli, const char *op, const uint8_t *tbs, size_t tl,
                       const uint8_t sig[64], json_t **out)
{
    struct wire_enc e;
    uint32_t id = start(cli, &e, op, 2);

    kv_signed(&e, tbs, tl, sig);
    return dev_call_json(cli, id, &e, op, out);
}

/* Prints answer j if st (its check) is 0; else drops it and returns st. */
static int ok_or_drop(struct cli *cli, json_t *j, int st)
{
    if (st != 0) {
        json_decref(j);
        return st;
    }
    return cli_ok(cli, j);
}

/* op with string arguments kv = {key, value, ..., NULL} (NULL values left
 * out); prints the answer. */
static int simple(struct cli *cli, const char *op, const char *const *kv)
{
    struct wire_enc e;
    uint32_t n = 0, id;
    json_t *j;
    int st;

    for (size_t i = 0; kv && kv[i]; i += 2)
        n += kv[i + 1] != NULL;
    id = start(cli, &e, op, n);
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (kv[i + 1])
            wire_kv_str(&e, kv[i], kv[i + 1]);
    if ((st = dev_call_json(cli, id, &e, op, &j)) != 0)
        return st;
    return cli_ok(cli, j);
}

static int qualify(struct cli *cli, const char *opt, const char *v, char *out, size_t cap)
{
    if (client_consent_qualify(v, cli->prof.domain, out, cap) != 0)
        return cli_fail(cli, "usage", "--%s: too long", opt);
    return 0;
}

/* ---- grants ---- */

/* Fills and signs a grant from the common options. grantee is qualified.
 * On success *tbs (free) / sig / gid. */
static int make_grant(struct cli *cli, const char *citizen, const char *grantee,
                      const char *scope, const char *basis, const char *purpose,
                      const char *expires, uint8_t **tbs, size_t *tl, uint8_t sig[64],
                      char gid[MSG_GRANT_GID_LEN + 1])
{
    struct msg_grant *g = malloc(sizeof(*g));
    const char *oral = client_args_get(&cli->args, "oral");
    const char *reason = client_args_get(&cli->args, "reason");
    uint64_t now = (uint64_t)time(NULL);
    int rc, st = 0;

    if (!g)
        return cli_fail(cli, "internal", "out of memory");
    msg_grant_init(g);
    if (!msg_grant_scope_valid(scope)) {
        st = cli_fail(cli, "usage", "--scope must be care, coordination or thread:t_...");
        goto out;
    }
    if (oral && (!reason || !*reason)) {
        st = cli_fail(cli, "usage", "--oral needs --reason (who said what, and why)");
        goto out;
    }
    if (!oral && reason) {
        st = cli_fail(cli, "usage", "--reason goes with --oral");
        goto out;
    }
    if (strlen(citizen) >= sizeof(g->citizen) || strlen(grantee) >= sizeof(g->grantee) ||
        strlen(basis) >= sizeof(g->basis) || strlen(purpose) >= sizeof(g->purpose) ||
        (reason && strlen(reason) >= sizeof(g->reason))) {
        st = cli_fail(cli, "usage", "an argument is too long");
        goto out;
    }
    strcpy(g->citizen, citizen);
    strcpy(g->grantee, grantee);
    strcpy(g->scope, scope);
    strcpy(g->basis, basis);
    strcpy(g->purpose, purpose);
    g->issued_at = now;
    if (expires && client_consent_parse_time(expires, now, &g->expires_at) != 0) {
        st = cli_fail(cli, "usage", "--expires: want YYYY-MM-DD[THH:MM[:SS]Z] or +Nd / +Nh");
        goto out;
    }
    if (expires && g->expires_at <= now) {
        st = cli_fail(cli, "usage", "--expires is in the past");
        goto out;
    }
    g->form = oral ? MSG_GRANT_FORM_ORAL
              : strcmp(cli->prof.id, citizen) == 0 ? MSG_GRANT_FORM_CITIZEN
                                                   : MSG_GRANT_FORM_PROXY;
    strcpy(g->granter, cli->prof.id);
    snprintf(g->granter_device, sizeof(g->granter_device), "%s", cli->prof.device);
    if (oral)
        strcpy(g->reason, reason);
    rc = client_consent_sign_grant(g, cli->dev->seed, tbs, tl, sig, gid);
    if (rc != 0)
        st = cli_fail(cli, rc == ERR_INVALID ? "invalid" : err_str(rc),
                      "the grant breaks a rule (names, scope, basis, purpose): %s", err_str(rc));
out:
    free(g);
    return st;
}

/* Checks the server's receipt for our grant. */
static int check_receipt(struct cli *cli, json_t *ans, const uint8_t *tbs, size_t tl,
                         const uint8_t sig[64], const char *gid)
{
    const char *got = json_string_value(json_object_get(ans, "grant"));
    const char *rhex = json_string_value(json_object_get(ans, "receipt"));
    json_t *stored = json_object_get(ans, "stored");
    uint8_t receipt[64], hash[MSG_GRANT_HASH_LEN];
    size_t rl = 0;
    int rc;

    if (!got || strcmp(got, gid) != 0)
        return cli_fail(cli, "crypto", "the server named the grant %s, but it is %s",
                        got ? got : "(none)", gid);
    if (!rhex || !json_is_integer(stored))
        return 0; /* no receipt in this answer */
    if (sodium_hex2bin(receipt, sizeof(receipt), rhex, strlen(rhex), NULL, &rl, NULL) != 0 ||
        rl != 64)
        return cli_fail(cli, "malformed", "the receipt is not 64 bytes");
    if ((rc = client_dev_server_key(cli->dev)) != 0)
        return dev_fail(cli, rc, "server.info");
    msg_grant_hash(tbs, tl, sig, hash);
    if (msg_grant_receipt_verify(cli->dev->server_key, gid, hash,
                                 (uint64_t)json_integer_value(stored), receipt) != 0)
        return cli_fail(cli, "crypto", "the server's receipt for %s does not verify", gid);
    return 0;
}

int cmd_consent_grant(struct cli *cli)
{
    char citizen[CLIENT_ID_MAX + 1], to[MSG_GRANT_GRANTEE_MAX];
    char gid[MSG_GRANT_GID_LEN + 1];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    json_t *j = NULL;
    int st;

    if ((st = dev_session(cli)) != 0)
        return st;
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), citizen,
                      sizeof(citizen))) != 0 ||
        (st = qualify(cli, "to", client_args_get(&cli->args, "to"), to, sizeof(to))) != 0)
        return st;
    if ((st = make_grant(cli, citizen, to, client_args_get(&cli->args, "scope"),
                         client_args_get(&cli->args, "basis"),
                         client_args_get(&cli->args, "purpose"),
                         client_args_get(&cli->args, "expires"), &tbs, &tl, sig, gid)) != 0)
        return st;
    st = send_signed(cli, "consent.grant", tbs, tl, sig, &j);
    if (st == 0)
        st = check_receipt(cli, j, tbs, tl, sig, gid);
    free(tbs);
    return ok_or_drop(cli, j, st);
}

int cmd_consent_revoke(struct cli *cli)
{
    const char *gid = cli->args.pos[0];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    json_t *j;
    int rc, st;

    if (!msg_grant_id_valid(gid))
        return cli_fail(cli, "usage", "GRANT is g_ and 16 hex digits");
    if ((st = dev_session(cli)) != 0)
        return st;
    rc = client_consent_sign_revocation(gid, cli->prof.id, cli->prof.device,
                                        (uint64_t)time(NULL), cli->dev->seed, &tbs, &tl, sig);
    if (rc != 0)
        return cli_fail(cli, err_str(rc), "cannot sign the revocation: %s", err_str(rc));
    st = send_signed(cli, "consent.revoke", tbs, tl, sig, &j);
    free(tbs);
    if (st != 0)
        return st;
    /* the removal the server now proposes is committed by this device */
    if ((rc = client_thread_sync(cli->dev, NULL)) != 0) {
        json_decref(j);
        return dev_fail(cli, rc, "sync after the revocation");
    }
    return cli_ok(cli, j);
}

/* Verifies each listed grant and replaces the signed blobs by `verified`
 * (the granter's signature) and `receipt_verified` (the server's receipt,
 * with the server key pinned on this device; false when it cannot be
 * checked). */
static void annotate_grants(struct cli *cli, struct client_frame *r, json_t *grants)
{
    bool have_key = client_dev_server_key(cli->dev) == 0;

    struct wire_array arr;

    if (wire_get_array(&r->msg.body, "grants", &arr) != 0)
        return;
    for (uint32_t i = 0; i < arr.n && i < json_array_size(grants); i++) {
        struct wire_map m;
        const uint8_t *tbs = NULL, *sig = NULL, *key = NULL;
        size_t tl = 0, sl = 0, kl = 0;
        char gid[MSG_GRANT_GID_LEN + 1] = "";
        struct msg_grant *g = malloc(sizeof(*g));
        json_t *o = json_array_get(grants, i);
        bool ok = false;

        if (g && wire_array_map(&arr, i, &m) == 0 &&
            wire_get_cstr(&m, "grant", gid, sizeof(gid)) == 0 &&
            wire_get_bin(&m, "tbs", &tbs, &tl) == 0 && wire_get_bin(&m, "sig", &sig, &sl) == 0 &&
            wire_get_bin(&m, "granter_key", &key, &kl) == 0)
            ok = client_consent_verify(tbs, tl, sig, sl, key, kl, gid, g) == 0;
        free(g);
        json_object_set_new(o, "verified", json_boolean(ok));
        {
            const uint8_t *rc_ = NULL;
            size_t rl = 0;
            uint64_t stored = 0;
            uint8_t hash[MSG_GRANT_HASH_LEN];
            bool rok = false;
            if (ok && have_key && wire_get_bin(&m, "receipt", &rc_, &rl) == 0 && rl == 64 &&
                wire_get_uint(&m, "stored", &stored) == 0) {
                msg_grant_hash(tbs, tl, sig, hash);
                rok = msg_grant_receipt_verify(cli->dev->server_key, gid, hash, stored, rc_) ==
                      0;
            }
            json_object_set_new(o, "receipt_verified", json_boolean(rok));
        }
        json_object_del(o, "tbs");
        json_object_del(o, "sig");
        json_object_del(o, "receipt");
        json_object_del(o, "granter_key");
    }
}

/* The signed proxy registrations (and their ends) and break-glass accesses
 * of consent.list: each gets `verified` (signature, signing device's key,
 * id; for an end, the end's signature and the registration it names) and
 * loses its signed blobs, as grants do. */
static void annotate_signed(struct client_frame *r, json_t *j)
{
    struct wire_array arr;
    json_t *list = json_object_get(j, "proxies");

    if (json_is_array(list) && wire_get_array(&r->msg.body, "proxies", &arr) == 0) {
        for (uint32_t i = 0; i < arr.n && i < json_array_size(list); i++) {
            struct wire_map m;
            const uint8_t *tbs = NULL, *sig = NULL, *key = NULL;
            size_t tl = 0, sl = 0, kl = 0;
            char reg[MSG_GRANT_GID_LEN + 1] = "";
            struct msg_proxy_reg p;
            struct msg_proxy_end pe;
            json_t *o = json_array_get(list, i);
            bool ok = false, eok = false;

            if (wire_array_map(&arr, i, &m) == 0 &&
                wire_get_cstr(&m, "registration", reg, sizeof(reg)) == 0 &&
                wire_get_bin(&m, "tbs", &tbs, &tl) == 0 &&
                wire_get_bin(&m, "sig", &sig, &sl) == 0 &&
                wire_get_bin(&m, "registrar_key", &key, &kl) == 0)
                ok = client_consent_verify_proxy(tbs, tl, sig, sl, key, kl, reg, &p) == 0;
            json_object_set_new(o, "verified", json_boolean(ok));
            if (ok && wire_get_bin(&m, "end_tbs", &tbs, &tl) == 0 &&
                wire_get_bin(&m, "end_sig", &sig, &sl) == 0 &&
                wire_get_bin(&m, "ender_key", &key, &kl) == 0) {
                eok = client_consent_verify_proxy_end(tbs, tl, sig, sl, key, kl, &pe) == 0 &&
                      strcmp(pe.registration, reg) == 0;
                json_object_set_new(o, "end_verified", json_boolean(eok));
                if (eok)
                    json_object_set_new(o, "ender", json_string(pe.ender));
            }
            const char *blobs[] = {"tbs", "sig", "receipt", "registrar_key", "end_tbs",
                                   "end_sig", "ender_key"};
            for (size_t k = 0; k < sizeof(blobs) / sizeof(blobs[0]); k++)
                json_object_del(o, blobs[k]);
        }
    }
    list = json_object_get(j, "breakglass");
    if (json_is_array(list) && wire_get_array(&r->msg.body, "breakglass", &arr) == 0) {
        struct msg_breakglass *b = malloc(sizeof(*b));
        for (uint32_t i = 0; i < arr.n && i < json_array_size(list); i++) {
            struct wire_map m;
            const uint8_t *tbs = NULL, *sig = NULL, *key = NULL;
            size_t tl = 0, sl = 0, kl = 0;
            char access[MSG_GRANT_GID_LEN + 1] = "";
            json_t *o = json_array_get(list, i);
            bool ok = false;

            if (b && wire_array_map(&arr, i, &m) == 0 &&
                wire_get_cstr(&m, "access", access, sizeof(access)) == 0 &&
                wire_get_bin(&m, "tbs", &tbs, &tl) == 0 &&
                wire_get_bin(&m, "sig", &sig, &sl) == 0 &&
                wire_get_bin(&m, "staff_key", &key, &kl) == 0)
                ok = client_consent_verify_breakglass(tbs, tl, sig, sl, key, kl, access, b) == 0;
            json_object_set_new(o, "verified", json_boolean(ok));
            json_object_del(o, "tbs");
            json_object_del(o, "sig");
            json_object_del(o, "staff_key");
        }
        free(b);
    }
}

int cmd_consent_list(struct cli *cli)
{
    char citizen[CLIENT_ID_MAX + 1];
    const char *c = client_args_get(&cli->args, "citizen");
    struct wire_enc e;
    struct client_frame r;
    json_t *j;
    uint32_t id;
    int rc, st;

    if ((st = dev_session(cli)) != 0)
        return st;
    if (c && (st = qualify(cli, "citizen", c, citizen, sizeof(citizen))) != 0)
        return st;
    id = start(cli, &e, "consent.list", c ? 1 : 0);
    if (c)
        wire_kv_str(&e, "citizen", citizen);
    rc = client_dev_call(cli->dev, id, &e, &r);
    wire_enc_reset(&e);
    if (rc != 0) {
        client_frame_free(&r);
        return dev_fail(cli, rc, "consent.list");
    }
    j = cli_json_map(&r.msg.body);
    if (j && json_is_array(json_object_get(j, "grants")))
        annotate_grants(cli, &r, json_object_get(j, "grants"));
    if (j)
        annotate_signed(&r, j);
    client_frame_free(&r);
    if (!j)
        return cli_fail(cli, "internal", "consent.list: cannot convert the answer");
    return cli_ok(cli, j);
}

int cmd_consent_request(struct cli *cli)
{
    char citizen[CLIENT_ID_MAX + 1];
    int st;

    if ((st = dev_session(cli)) != 0)
        return st;
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), citizen,
                      sizeof(citizen))) != 0)
        return st;
    const char *kv[] = {"citizen", citizen, "scope", client_args_get(&cli->args, "scope"),
                        "note", client_args_get(&cli->args, "note"), NULL};
    return simple(cli, "consent.request", kv);
}

int cmd_consent_requests(struct cli *cli)
{
    int st;
    if ((st = dev_session(cli)) != 0)
        return st;
    return simple(cli, "consent.requests", NULL);
}

int cmd_consent_decline(struct cli *cli)
{
    int st;
    if ((st = dev_session(cli)) != 0)
        return st;
    const char *kv[] = {"request", cli->args.pos[0], NULL};
    return simple(cli, "consent.decline", kv);
}

int cmd_consent_approve(struct cli *cli)
{
    const char *rid = cli->args.pos[0];
    char citizen[CLIENT_ID_MAX + 1] = "", requester[CLIENT_ID_MAX + 1] = "",
         scope[MSG_GRANT_SHORT_MAX] = "", note[MSG_GRANT_TEXT_MAX] = "",
         purpose[MSG_GRANT_TEXT_MAX];
    char gid[MSG_GRANT_GID_LEN + 1];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    struct wire_enc e;
    struct client_frame r;
    struct wire_array arr;
    bool found = false;
    json_t *j = NULL;
    uint32_t id;
    int rc, st;

    if ((st = dev_session(cli)) != 0)
        return st;
    /* the request says who asked for which scope: the grant we sign is
     * exactly that */
    id = start(cli, &e, "consent.requests", 0);
    rc = client_dev_call(cli->dev, id, &e, &r);
    wire_enc_reset(&e);
    if (rc != 0) {
        client_frame_free(&r);
        return dev_fail(cli, rc, "consent.requests");
    }
    if (wire_get_array(&r.msg.body, "requests", &arr) != 0)
        arr.n = 0;
    for (uint32_t i = 0; i < arr.n && !found; i++) {
        struct wire_map m;
        char got[64];
        if (wire_array_map(&arr, i, &m) != 0 ||
            wire_get_cstr(&m, "request", got, sizeof(got)) != 0 || strcmp(got, rid) != 0)
            continue;
        found = wire_get_cstr(&m, "citizen", citizen, sizeof(citizen)) == 0 &&
                wire_get_cstr(&m, "requester", requester, sizeof(requester)) == 0 &&
                wire_get_cstr(&m, "scope", scope, sizeof(scope)) == 0;
        if (wire_get_cstr(&m, "note", note, sizeof(note)) != 0)
            note[0] = '\0';
    }
    client_frame_free(&r);
    if (!found)
        return cli_fail(cli, "not_found", "no open request %s addressed to you", rid);
    snprintf(purpose, sizeof(purpose), "%s",
             client_args_get(&cli->args, "purpose")
                 ? client_args_get(&cli->args, "purpose")
             : note[0] ? note
                       : "approved consent request");
    if ((st = make_grant(cli, citizen, requester, scope,
                         client_args_get(&cli->args, "basis")
                             ? client_args_get(&cli->args, "basis")
                             : "consent",
                         purpose, client_args_get(&cli->args, "expires"), &tbs, &tl, sig,
                         gid)) != 0)
        return st;
    id = start(cli, &e, "consent.approve", 3);
    wire_kv_str(&e, "request", rid);
    kv_signed(&e, tbs, tl, sig);
    st = dev_call_json(cli, id, &e, "consent.approve", &j);
    free(tbs);
    if (st != 0)
        return st;
    if (!json_string_value(json_object_get(j, "grant")) ||
        strcmp(json_string_value(json_object_get(j, "grant")), gid) != 0) {
        json_decref(j);
        return cli_fail(cli, "crypto", "the server recorded another grant than %s", gid);
    }
    return cli_ok(cli, j);
}

/* ---- relatives, proxies, break-glass ---- */

int cmd_invite_relative(struct cli *cli)
{
    char citizen[CLIENT_ID_MAX + 1], grantee[CLIENT_ID_MAX + 1], bare[80];
    const char *name = client_args_get(&cli->args, "name");
    const char *scope = client_args_get(&cli->args, "scope");
    const char *at = strchr(name, '@');
    char gid[MSG_GRANT_GID_LEN + 1];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    struct wire_enc e;
    json_t *j = NULL;
    uint32_t id;
    int st;

    if ((st = dev_session(cli)) != 0)
        return st;
    if (at && strcmp(at + 1, cli->prof.domain) != 0)
        return cli_fail(cli, "invalid", "--name %s: relatives are invited on this server (%s)",
                        name, cli->prof.domain);
    snprintf(bare, sizeof(bare), "%.*s", at ? (int)(at - name) : (int)strlen(name), name);
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), citizen,
                      sizeof(citizen))) != 0 ||
        (st = qualify(cli, "name", bare, grantee, sizeof(grantee))) != 0)
        return st;
    if ((st = make_grant(cli, citizen, grantee, scope ? scope : "care", "consent",
                         client_args_get(&cli->args, "purpose")
                             ? client_args_get(&cli->args, "purpose")
                             : "relative taking part in the citizen's care",
                         client_args_get(&cli->args, "expires"), &tbs, &tl, sig, gid)) != 0)
        return st;
    id = start(cli, &e, "relative.invite", 5);
    wire_kv_str(&e, "citizen", citizen);
    wire_kv_str(&e, "name", bare);
    wire_kv_bool(&e, "child", client_args_get(&cli->args, "child") != NULL);
    kv_signed(&e, tbs, tl, sig);
    st = dev_call_json(cli, id, &e, "relative.invite", &j);
    if (st == 0)
        st = check_receipt(cli, j, tbs, tl, sig, gid);
    free(tbs);
    return ok_or_drop(cli, j, st);
}

/* The server's clock (`ping`): signed registrations and break-glass
 * accesses carry a time the server checks against its own. */
static int server_now(struct cli *cli, uint64_t *now)
{
    struct wire_enc e;
    struct client_frame r;
    uint32_t id = start(cli, &e, "ping", 0);
    int rc = client_dev_call(cli->dev, id, &e, &r);

    wire_enc_reset(&e);
    if (rc != 0) {
        client_frame_free(&r);
        return dev_fail(cli, rc, "ping");
    }
    *now = (uint64_t)time(NULL);
    (void)wire_get_uint(&r.msg.body, "time", now);
    client_frame_free(&r);
    return 0;
}

/* Checks the server's receipt for the registration we signed. */
static int check_reg_receipt(struct cli *cli, json_t *ans, const uint8_t *tbs, size_t tl,
                             const uint8_t sig[64], const char *reg)
{
    const char *got = json_string_value(json_object_get(ans, "registration"));
    const char *rhex = json_string_value(json_object_get(ans, "receipt"));
    json_t *stored = json_object_get(ans, "stored");
    uint8_t receipt[64], hash[MSG_GRANT_HASH_LEN];
    size_t rl = 0;
    int rc;

    if (!got || strcmp(got, reg) != 0)
        return cli_fail(cli, "crypto", "the server named the registration %s, but it is %s",
                        got ? got : "(none)", reg);
    if (!rhex || !json_is_integer(stored) ||
        sodium_hex2bin(receipt, sizeof(receipt), rhex, strlen(rhex), NULL, &rl, NULL) != 0 ||
        rl != 64)
        return cli_fail(cli, "malformed", "the server sent no receipt for %s", reg);
    if ((rc = client_dev_server_key(cli->dev)) != 0)
        return dev_fail(cli, rc, "server.info");
    msg_grant_hash(tbs, tl, sig, hash);
    if (msg_grant_receipt_verify(cli->dev->server_key, reg, hash,
                                 (uint64_t)json_integer_value(stored), receipt) != 0)
        return cli_fail(cli, "crypto", "the server's receipt for %s does not verify", reg);
    return 0;
}

/* Signs a ProxyRegistrationTBS on this (staff) device and sends it; the
 * answer's registration id and receipt are checked. */
int cmd_proxy_register(struct cli *cli)
{
    struct msg_proxy_reg p;
    const char *basis = client_args_get(&cli->args, "basis");
    char reg[MSG_GRANT_GID_LEN + 1];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    json_t *j = NULL;
    int rc, st;

    if (!msg_proxy_reg_basis_valid(basis))
        return cli_fail(cli, "usage", "--basis is guardianship or power-of-attorney");
    if ((st = dev_session(cli)) != 0)
        return st;
    msg_proxy_reg_init(&p);
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), p.citizen,
                      sizeof(p.citizen))) != 0 ||
        (st = qualify(cli, "name", client_args_get(&cli->args, "name"), p.proxy,
                      sizeof(p.proxy))) != 0)
        return st;
    snprintf(p.basis, sizeof(p.basis), "%s", basis);
    snprintf(p.registrar, sizeof(p.registrar), "%s", cli->prof.id);
    snprintf(p.registrar_device, sizeof(p.registrar_device), "%s", cli->prof.device);
    if (strcmp(p.registrar, p.citizen) == 0 || strcmp(p.registrar, p.proxy) == 0)
        return cli_fail(cli, "denied",
                        "proxies are registered by staff, not by the citizen or the proxy");
    if ((st = server_now(cli, &p.registered_at)) != 0)
        return st;
    if ((rc = msg_proxy_reg_encode(&p, &tbs, &tl)) != 0)
        return cli_fail(cli, "invalid", "the registration breaks a rule (names): %s",
                        err_str(rc));
    if ((rc = msg_proxy_reg_sign(cli->dev->seed, tbs, tl, sig)) != 0) {
        free(tbs);
        return cli_fail(cli, err_str(rc), "cannot sign the registration: %s", err_str(rc));
    }
    msg_proxy_reg_id(tbs, tl, sig, reg);
    st = send_signed(cli, "proxy.register", tbs, tl, sig, &j);
    if (st == 0)
        st = check_reg_receipt(cli, j, tbs, tl, sig, reg);
    free(tbs);
    return ok_or_drop(cli, j, st);
}

/* Signs a ProxyEndTBS for registration --registration on this (staff)
 * device and sends it; the proxy's devices are then proposed for removal. */
int cmd_proxy_end(struct cli *cli)
{
    struct msg_proxy_end p;
    const char *reg = client_args_get(&cli->args, "registration");
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    json_t *j = NULL;
    int rc, st;

    if (!msg_proxy_reg_id_valid(reg))
        return cli_fail(cli, "usage", "--registration is p_ and 16 hex digits");
    if ((st = dev_session(cli)) != 0)
        return st;
    msg_proxy_end_init(&p);
    snprintf(p.registration, sizeof(p.registration), "%s", reg);
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), p.citizen,
                      sizeof(p.citizen))) != 0 ||
        (st = qualify(cli, "name", client_args_get(&cli->args, "name"), p.proxy,
                      sizeof(p.proxy))) != 0)
        return st;
    snprintf(p.ender, sizeof(p.ender), "%s", cli->prof.id);
    snprintf(p.ender_device, sizeof(p.ender_device), "%s", cli->prof.device);
    if (strcmp(p.ender, p.citizen) == 0 || strcmp(p.ender, p.proxy) == 0)
        return cli_fail(cli, "denied", "proxies are ended by staff, not by the citizen or the proxy");
    if ((st = server_now(cli, &p.ended_at)) != 0)
        return st;
    if ((rc = msg_proxy_end_encode(&p, &tbs, &tl)) != 0)
        return cli_fail(cli, "invalid", "the end breaks a rule (names): %s", err_str(rc));
    if ((rc = msg_proxy_end_sign(cli->dev->seed, tbs, tl, sig)) != 0) {
        free(tbs);
        return cli_fail(cli, err_str(rc), "cannot sign the end: %s", err_str(rc));
    }
    st = send_signed(cli, "proxy.end", tbs, tl, sig, &j);
    free(tbs);
    if (st != 0)
        return st;
    return cli_ok(cli, j);
}

/* Signs a BreakglassTBS on this (staff) device and sends it. */
int cmd_breakglass(struct cli *cli)
{
    struct msg_breakglass *b = NULL;
    const char *hours = client_args_get(&cli->args, "hours");
    const char *reason = client_args_get(&cli->args, "reason");
    const char *thread = client_args_get(&cli->args, "thread");
    char access[MSG_GRANT_GID_LEN + 1];
    uint8_t *tbs = NULL, sig[64];
    size_t tl = 0;
    unsigned long h = 4;
    json_t *j = NULL;
    int rc, st;

    if (hours) {
        char *end;
        h = strtoul(hours, &end, 10);
        if (*hours == '\0' || *end != '\0' || h < 1 || h > MSG_BREAKGLASS_HOURS_MAX)
            return cli_fail(cli, "usage", "--hours takes 1..72");
    }
    if (!msg_breakglass_thread_valid(thread))
        return cli_fail(cli, "usage", "--thread is t_ and 32 hex digits");
    if ((st = dev_session(cli)) != 0)
        return st;
    if (strlen(reason) < MSG_BREAKGLASS_REASON_MIN)
        return cli_fail(cli, "invalid", "a break-glass reason is at least %d characters",
                        MSG_BREAKGLASS_REASON_MIN);
    if (!(b = malloc(sizeof(*b))))
        return cli_fail(cli, "internal", "out of memory");
    msg_breakglass_init(b);
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), b->citizen,
                      sizeof(b->citizen))) != 0)
        goto out;
    if (strlen(reason) >= sizeof(b->reason)) {
        st = cli_fail(cli, "usage", "--reason: at most %zu bytes", sizeof(b->reason) - 1);
        goto out;
    }
    snprintf(b->thread, sizeof(b->thread), "%s", thread);
    snprintf(b->staff, sizeof(b->staff), "%s", cli->prof.id);
    snprintf(b->staff_device, sizeof(b->staff_device), "%s", cli->prof.device);
    snprintf(b->reason, sizeof(b->reason), "%s", reason);
    b->hours = (uint16_t)h;
    if ((st = server_now(cli, &b->opened_at)) != 0)
        goto out;
    if ((rc = msg_breakglass_encode(b, &tbs, &tl)) != 0) {
        st = cli_fail(cli, "invalid", "the access breaks a rule (reason text, names): %s",
                      err_str(rc));
        goto out;
    }
    if ((rc = msg_breakglass_sign(cli->dev->seed, tbs, tl, sig)) != 0) {
        st = cli_fail(cli, err_str(rc), "cannot sign the access: %s", err_str(rc));
        goto out;
    }
    msg_breakglass_id(tbs, tl, sig, access);
    if ((st = send_signed(cli, "breakglass.open", tbs, tl, sig, &j)) != 0)
        goto out;
    if (!json_string_value(json_object_get(j, "access")) ||
        strcmp(json_string_value(json_object_get(j, "access")), access) != 0) {
        st = cli_fail(cli, "crypto", "the server recorded another access than %s", access);
        goto out;
    }
    /* the server now proposes this device: a member commits it; our
     * Welcome arrives with a later sync */
    st = cli_ok(cli, j);
    j = NULL;
out:
    json_decref(j);
    free(tbs);
    free(b);
    return st;
}

/* ---- threads ---- */

int cmd_thread_create(struct cli *cli)
{
    char citizen[CLIENT_ID_MAX + 1], thread[CLIENT_THREAD_ID_LEN + 1];
    const char *kind = client_args_get(&cli->args, "kind");
    const char *title = client_args_get(&cli->args, "title");
    int rc, st;

    if (strcmp(kind, "care") != 0 && strcmp(kind, "coordination") != 0)
        return cli_fail(cli, "usage", "--kind is care or coordination");
    if (strlen(title) > 200)
        return cli_fail(cli, "usage", "--title: at most 200 bytes");
    if ((st = dev_session(cli)) != 0)
        return st;
    if ((st = qualify(cli, "citizen", client_args_get(&cli->args, "citizen"), citizen,
                      sizeof(citizen))) != 0)
        return st;
    if ((rc = client_thread_create(cli->dev, citizen, kind, title, thread)) != 0)
        return dev_fail(cli, rc, "thread.create");
    return cli_ok(cli, json_pack("{s:s, s:s, s:s, s:s}", "thread", thread, "citizen", citizen,
                                 "kind", kind, "title", title));
}

/* Counts history messages from others (message numbers above the walk's
 * `after`). */
struct unread_count {
    const char *self;
    const char *device;
    json_int_t n;
};

static int count_unread(const struct client_msg *m, void *user)
{
    struct unread_count *u = user;
    if (!m->error && !(strcmp(m->sender, u->self) == 0 && strcmp(m->device, u->device) == 0))
        u->n++;
    return 0;
}

int cmd_thread_list(struct cli *cli)
{
    struct wire_enc e;
    json_t *j, *threads, *t;
    uint32_t id;
    size_t i;
    int st;

    if ((st = dev_session(cli)) != 0)
        return st;
    id = start(cli, &e, "thread.list", 0);
    if ((st = dev_call_json(cli, id, &e, "thread.list", &j)) != 0)
        return st;
    /* the sync has already fetched (and acknowledged) everything, so the
     * server's count is of what is not yet on this device; `unread` here is
     * what this device holds that `thread read` has not shown yet */
    threads = json_object_get(j, "threads");
    json_array_foreach(threads, i, t) {
        const char *tid = json_string_value(json_object_get(t, "thread"));
        struct unread_count u = {cli->prof.id, cli->prof.device, 0};
        char k[CLIENT_THREAD_ID_LEN + 8];
        uint64_t seen = 0;
        if (!tid || strlen(tid) != CLIENT_THREAD_ID_LEN)
            continue;
        snprintf(k, sizeof(k), "read/%s", tid);
        if (client_state_get_u64(cli->dev->st, "meta", k, 0, &seen) != 0 ||
            client_thread_history(cli->dev, tid, seen, count_unread, &u) != 0)
            continue;
        json_object_set_new(t, "unread", json_integer(u.n + json_integer_value(
                                                                json_object_get(t, "unread"))));
    }
    return cli_ok(cli, j);
}

int cmd_thread_log(struct cli *cli)
{
    int st;
    if ((st = dev_session(cli)) != 0)
        return st;
    const char *kv[] = {"thread", cli->args.pos[0], NULL};
    return simple(cli, "thread.log", kv);
}

int cmd_sync(struct cli *cli)
{
    const struct client_sync_stats *s = &session_stats;
    int st;

    /* the session's sync is the whole work */
    if ((st = dev_session(cli)) != 0)
        return st;
    return cli_ok(cli, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "entries",
                                 (json_int_t)s->entries, "messages", (json_int_t)s->apps,
                                 "welcomes", (json_int_t)s->welcomes, "handshakes",
                                 (json_int_t)s->handshakes, "notices", (json_int_t)s->notices,
                                 "failed", (json_int_t)s->failed, "commits",
                                 (json_int_t)s->commits, "refused", (json_int_t)s->refused));
}

/* citizen and kind of thread from thread.list; 0 or ERR_NOT_FOUND. */
static int thread_info(struct cli *cli, const char *thread, char *citizen, size_t ccap,
                       char *kind, size_t kcap)
{
    struct wire_enc e;
    struct client_frame r;
    struct wire_array arr;
    uint32_t id = start(cli, &e, "thread.list", 0);
    int rc = client_dev_call(cli->dev, id, &e, &r);

    wire_enc_reset(&e);
    if (rc == 0) {
        rc = ERR_NOT_FOUND;
        if (wire_get_array(&r.msg.body, "threads", &arr) != 0)
            arr.n = 0;
        for (uint32_t i = 0; i < arr.n; i++) {
            struct wire_map m;
            char t[CLIENT_THREAD_ID_LEN + 1];
            if (wire_array_map(&arr, i, &m) == 0 &&
                wire_get_cstr(&m, "thread", t, sizeof(t)) == 0 && strcmp(t, thread) == 0 &&
                wire_get_cstr(&m, "citizen", citizen, ccap) == 0 &&
                wire_get_cstr(&m, "kind", kind, kcap) == 0) {
                rc = 0;
                break;
            }
        }
    }
    client_frame_free(&r);
    return rc;
}

static uint64_t server_time(struct cli *cli)
{
    struct wire_enc e;
    struct client_frame r;
    uint64_t t = (uint64_t)time(NULL);
    uint32_t id = start(cli, &e, "ping", 0);

    if (client_dev_call(cli->dev, id, &e, &r) == 0)
        (void)wire_get_uint(&r.msg.body, "time", &t);
    wire_enc_reset(&e);
    client_frame_free(&r);
    return t;
}

int cmd_thread_members(struct cli *cli)
{
    const char *thread = cli->args.pos[0];
    char citizen[CLIENT_ID_MAX + 1], kind[32];
    struct client_roster_dev *ro = NULL;
    size_t nro = 0;
    struct wire_enc e;
    json_t *j, *members, *roster;
    uint64_t now;
    uint32_t id;
    int rc, st;
    size_t i;
    json_t *m;

    if ((st = dev_session(cli)) != 0)
        return st;
    id = start(cli, &e, "thread.members", 1);
    wire_kv_str(&e, "thread", thread);
    if ((st = dev_call_json(cli, id, &e, "thread.members", &j)) != 0)
        return st;
    if (thread_info(cli, thread, citizen, sizeof(citizen), kind, sizeof(kind)) != 0)
        citizen[0] = kind[0] = '\0';
    now = server_time(cli);
    rc = client_thread_roster(cli->dev, thread, &ro, &nro);
    members = json_object_get(j, "members");
    /* each member: why they are here, checked on this device */
    json_array_foreach(members, i, m) {
        const char *mid = json_string_value(json_object_get(m, "id"));
        const char *basis = json_string_value(json_object_get(m, "grant"));
        char why[512] = "unknown";
        bool ok = false;
        json_t *fps = json_object();

        if (mid && basis && citizen[0])
            ok = client_thread_check_basis(cli->dev, citizen, thread, kind, mid, basis, now, why,
                                           sizeof(why)) == 0;
        json_object_set_new(m, "verified", json_boolean(ok));
        json_object_set_new(m, "why", json_string(why));
        for (size_t k = 0; rc == 0 && mid && k < nro; k++)
            if (strcmp(ro[k].identity, mid) == 0)
                json_object_set_new(fps, ro[k].device, json_string(ro[k].fingerprint));
        json_object_set_new(m, "fingerprints", fps);
    }
    /* leaves of our MLS tree that the server does not explain with a member
     * and basis: a server hiding a member would show here */
    {
        json_t *unexplained = json_array();
        for (size_t k = 0; rc == 0 && k < nro; k++) {
            bool found = false;
            json_array_foreach(members, i, m) {
                const char *mid = json_string_value(json_object_get(m, "id"));
                json_t *devs = json_object_get(m, "devices"), *dv;
                size_t x;
                if (!mid || strcmp(mid, ro[k].identity) != 0)
                    continue;
                json_array_foreach(devs, x, dv) {
                    const char *ds = json_string_value(dv);
                    found = found || (ds && strcmp(ds, ro[k].device) == 0);
                }
            }
            if (!found || !ro[k].bound) {
                char both[CLIENT_ID_MAX + 24];
                snprintf(both, sizeof(both), "%s/%s", ro[k].identity, ro[k].device);
                json_array_append_new(unexplained, json_string(both));
            }
        }
        json_object_set_new(j, "unexplained", unexplained);
    }
    /* the MLS roster as this device holds it */
    roster = json_array();
    for (size_t k = 0; rc == 0 && k < nro; k++)
        json_array_append_new(roster,
                              json_pack("{s:s, s:s, s:s, s:b}", "id", ro[k].identity, "device",
                                        ro[k].device, "fingerprint", ro[k].fingerprint, "bound",
                                        ro[k].bound));
    json_object_set_new(j, "roster", roster);
    free(ro);
    return cli_ok(cli, j);
}

int cmd_thread_send(struct cli *cli)
{
    const char *thread = cli->args.pos[0], *text = cli->args.pos[1];
    const char *w = client_args_get(&cli->args, "wait");
    uint64_t message, devices, delivered;
    int wait_ms = SEND_WAIT_MS, rc, st;

    if (w) {
        char *end;
        long s = strtol(w, &end, 10);
        if (*w == '\0' || *end != '\0' || s < 0 || s > 60)
            return cli_fail(cli, "usage", "--wait takes 0..60 seconds");
        wait_ms = (int)s * 1000;
    }
    if ((st = dev_session(cli)) != 0)
        return st;
    rc = client_thread_send(cli->dev, thread, (const uint8_t *)text, strlen(text), wait_ms,
                            &message, &devices, &delivered);
    if (rc != 0)
        return dev_fail(cli, rc, "thread.send");
    return cli_ok(cli, json_pack("{s:s, s:I, s:I, s:I}", "thread", thread, "message",
                                 (json_int_t)message, "delivered_to", (json_int_t)delivered,
                                 "devices", (json_int_t)devices));
}

/* A JSON string of s, or null when it is not valid UTF-8 (a member's text is
 * whatever its device sent). */
static json_t *str_or_null(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    return j ? j : json_null();
}

static int add_msg(const struct client_msg *m, void *user)
{
    json_t *arr = user;
    json_t *o = json_object();

    if (!o)
        return ERR_NOMEM;
    json_object_set_new(o, "message", json_integer((json_int_t)m->message));
    json_object_set_new(o, "sender", str_or_null(m->sender, strlen(m->sender)));
    json_object_set_new(o, "device", str_or_null(m->device, strlen(m->device)));
    json_object_set_new(o, "time", json_integer((json_int_t)m->time));
    if (m->error) {
        json_object_set_new(o, "error", str_or_null(m->error, strlen(m->error)));
    } else {
        json_t *t = json_stringn((const char *)m->text, m->text_len);
        if (!t)
            json_object_set_new(o, "error", json_string("the text is not valid UTF-8"));
        json_object_set_new(o, "text", t ? t : json_null());
    }
    return json_array_append_new(arr, o) == 0 ? 0 : ERR_NOMEM;
}

static int add_notice(const char *thread, uint64_t t, const uint8_t *data, size_t len,
                      void *user)
{
    json_t *arr = user, *o = NULL;
    msgpack_unpacked up;
    size_t off = 0;

    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP)
        o = cli_json_obj(&up.data);
    msgpack_unpacked_destroy(&up);
    if (!o)
        return 0;
    json_object_set_new(o, "thread", json_string(thread));
    json_object_set_new(o, "time", json_integer((json_int_t)t));
    return json_array_append_new(arr, o) == 0 ? 0 : ERR_NOMEM;
}

int cmd_thread_read(struct cli *cli)
{
    const char *thread = cli->args.pos[0];
    const char *since = client_args_get(&cli->args, "since");
    unsigned long long after = 0;
    json_t *msgs, *notices;
    int rc, st;

    if (since) {
        char *end;
        after = strtoull(since, &end, 10);
        if (*since == '\0' || *end != '\0')
            return cli_fail(cli, "usage", "--since takes a message number");
    }
    if ((st = dev_session(cli)) != 0)
        return st;
    msgs = json_array();
    notices = json_array();
    rc = client_thread_history(cli->dev, thread, (uint64_t)after, add_msg, msgs);
    if (rc == 0)
        rc = client_thread_notices(cli->dev, thread, add_notice, notices);
    if (rc != 0) {
        json_decref(msgs);
        json_decref(notices);
        return cli_fail(cli, err_str(rc), "reading the local history: %s", err_str(rc));
    }
    /* what was shown is read (thread list's `unread`) */
    if (json_array_size(msgs) > 0) {
        json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
        char k[CLIENT_THREAD_ID_LEN + 8];
        uint64_t seen = 0, top = (uint64_t)json_integer_value(json_object_get(last, "message"));
        snprintf(k, sizeof(k), "read/%s", thread);
        if (strlen(thread) == CLIENT_THREAD_ID_LEN &&
            client_state_get_u64(cli->dev->st, "meta", k, 0, &seen) == 0 && top > seen)
            (void)client_state_put_u64(cli->dev->st, "meta", k, top);
    }
    if (json_array_size(msgs) == 0 && json_array_size(notices) == 0) {
        struct client_roster_dev *ro = NULL;
        size_t n = 0;
        rc = client_thread_roster(cli->dev, thread, &ro, &n);
        free(ro);
        if (rc == ERR_NOT_FOUND) {
            json_decref(msgs);
            json_decref(notices);
            return cli_fail(cli, "not_found", "this device is not (and was not) in thread %s",
                            thread);
        }
    }
    if (!cli->json) {
        /* for people: one line per message, oldest first */
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            char when[32] = "";
            time_t t = (time_t)json_integer_value(json_object_get(m, "time"));
            struct tm tm;
            const char *text = json_string_value(json_object_get(m, "text"));
            if (gmtime_r(&t, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
            printf("#%lld %s %s: %s\n", (long long)json_integer_value(json_object_get(m, "message")),
                   when, json_string_value(json_object_get(m, "sender")),
                   text ? text : json_string_value(json_object_get(m, "error")));
        }
        json_array_foreach(notices, i, m) {
            const char *type = json_string_value(json_object_get(m, "type"));
            const char *actor = json_string_value(json_object_get(m, "actor"));
            const char *reason = json_string_value(json_object_get(m, "reason"));
            printf("notice: %s%s%s%s%s\n", type ? type : "?", actor ? " by " : "",
                   actor ? actor : "", reason ? ": " : "", reason ? reason : "");
        }
        fflush(stdout);
        json_decref(msgs);
        json_decref(notices);
        return CLI_OK;
    }
    return cli_ok(cli, json_pack("{s:s, s:o, s:o}", "thread", thread, "messages", msgs,
                                 "notices", notices));
}

/* ---- agreements ---- */

int cmd_agreement_pin(struct cli *cli)
{
    const char *thread = cli->args.pos[0], *text = cli->args.pos[1];
    uint64_t message, devices, delivered;
    struct wire_enc e;
    json_t *j;
    uint32_t id;
    int rc, st;

    if ((st = dev_session(cli)) != 0)
        return st;
    /* the agreement is an ordinary (encrypted) message; the server pins its
     * number, never its text */
    rc = client_thread_send(cli->dev, thread, (const uint8_t *)text, strlen(text), 0, &message,
                            &devices, &delivered);
    if (rc != 0)
        return dev_fail(cli, rc, "thread.send");
    id = start(cli, &e, "agreement.pin", 2);
    wire_kv_str(&e, "thread", thread);
    wire_kv_uint(&e, "message", message);
    if ((st = dev_call_json(cli, id, &e, "agreement.pin", &j)) != 0)
        return st;
    json_object_set_new(j, "message", json_integer((json_int_t)message));
    return cli_ok(cli, j);
}

int cmd_agreement_ack(struct cli *cli)
{
    int st;
    if ((st = dev_session(cli)) != 0)
        return st;
    const char *kv[] = {"thread", cli->args.pos[0], "agreement", cli->args.pos[1], NULL};
    return simple(cli, "agreement.ack", kv);
}

int cmd_agreement_show(struct cli *cli)
{
    const char *thread = cli->args.pos[0];
    struct wire_enc e;
    json_t *j, *msg;
    uint32_t id;
    int st;

    if ((st = dev_session(cli)) != 0)
        return st;
    id = start(cli, &e, "agreement.show", 1);
    wire_kv_str(&e, "thread", thread);
    if ((st = dev_call_json(cli, id, &e, "agreement.show", &j)) != 0)
        return st;
    /* the text is only on the devices: look it up in the local history */
    msg = json_object_get(j, "message");
    if (json_is_integer(msg)) {
        uint8_t *text = NULL;
        size_t len = 0;
        if (client_thread_message(cli->dev, thread, (uint64_t)json_integer_value(msg), &text,
                                  &len) == 0)
            json_object_set_new(j, "text", json_stringn((const char *)text, len));
        else
            json_object_set_new(j, "text", json_null());
        if (text) {
            sodium_memzero(text, len);
            free(text);
        }
    }
    return cli_ok(cli, j);
}

/* ---- tests ---- */

/* `test clock-shift SECONDS`: moves the clock of a server started with
 * --test-clock (test.clock_shift; unknown_op on any other server). For
 * integration tests of expiries; it needs no device state. */
int cmd_test_clock_shift(struct cli *cli)
{
    const char *v = cli->args.pos[0];
    struct wire_enc e;
    struct client_frame r;
    char *end;
    long long s = strtoll(v, &end, 10);
    uint32_t id;
    json_t *j;
    int rc, st;

    if (*v == '\0' || *end != '\0' || s < -31536000LL || s > 31536000LL)
        return cli_fail(cli, "usage", "SECONDS: an integer within a year either way");
    if ((st = cli_session(cli)) != 0)
        return st;
    id = start(cli, &e, "test.clock_shift", 1);
    wire_enc_key(&e, "seconds");
    wire_enc_int(&e, (int64_t)s);
    rc = client_sync_call(cli->conn, id, &e, cli->timeout_ms, &r);
    wire_enc_reset(&e);
    if (rc != 0) {
        st = cli_fail_reply(cli, &r, rc, "test.clock_shift");
        client_frame_free(&r);
        return st;
    }
    j = cli_json_map(&r.msg.body);
    client_frame_free(&r);
    if (!j)
        return cli_fail(cli, "internal", "test.clock_shift: cannot convert the answer");
    return cli_ok(cli, j);
}
