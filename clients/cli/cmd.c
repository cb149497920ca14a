/*
 * cmd.c: the handlers of the `sammen` commands (see the table in main.c).
 * Every command but enroll runs on a logged-in session: session() loads
 * the profile, unlocks the device key, connects and logs in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "client_auth.h"
#include "client_sync.h"
#include "err.h"
#include "keys_id.h"

/* ---- JSON from msgpack ---- */

static json_t *from_obj(const msgpack_object *o, int depth)
{
    static const char hexdig[] = "0123456789abcdef";

    if (depth > WIRE_MAX_DEPTH)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer(o->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX
                                                             : (json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        char *h = malloc(2 * (size_t)o->via.bin.size + 1);
        json_t *j;
        if (!h)
            return NULL;
        for (uint32_t i = 0; i < o->via.bin.size; i++) {
            h[2 * i] = hexdig[(uint8_t)o->via.bin.ptr[i] >> 4];
            h[2 * i + 1] = hexdig[(uint8_t)o->via.bin.ptr[i] & 15];
        }
        h[2 * (size_t)o->via.bin.size] = '\0';
        j = json_string(h);
        free(h);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = from_obj(&o->via.array.ptr[i], depth + 1);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        for (uint32_t i = 0; obj && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *v;
            char key[WIRE_MAX_NAME * 4];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof(key)) {
                continue;
            }
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            v = from_obj(&kv->val, depth + 1);
            if (!v || json_object_set_new(obj, key, v) != 0) {
                json_decref(obj);
                obj = NULL;
            }
        }
        return obj;
    }
    default:
        return json_null();
    }
}

/* Converts a decoded msgpack map to a JSON object (bin values become
 * lowercase hex strings). Returns a new reference or NULL. */
static json_t *json_from_map(const struct wire_map *m)
{
    msgpack_object o;

    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_MAP;
    o.via.map.size = m->n;
    o.via.map.ptr = (msgpack_object_kv *)(uintptr_t)m->kv;
    return from_obj(&o, 0);
}

/* Exported for cmd_threads.c: a msgpack map / object as JSON. */
json_t *cli_json_map(const struct wire_map *m)
{
    return json_from_map(m);
}

json_t *cli_json_obj(const msgpack_object *o)
{
    return from_obj(o, 0);
}

/* ---- helpers ---- */

/* name -> name@domain; name@domain stays. Returns 0 or nonzero when it does
 * not fit. */
static int full_identity(const struct cli *cli, const char *s, char *out, size_t cap)
{
    int n = strchr(s, '@') ? snprintf(out, cap, "%s", s)
                           : snprintf(out, cap, "%s@%s", s, cli->prof.domain);
    return n < 0 || (size_t)n >= cap;
}

static int connect_to(struct cli *cli, const char *url)
{
    struct client_ctx_opts opts;
    const char *ca = getenv("SAMMEN_CA_FILE");
    int rc;

    /* wss: SAMMEN_CA_FILE names a PEM bundle to trust instead of the
     * system's (a private CA, or a test certificate) */
    memset(&opts, 0, sizeof(opts));
    opts.ca_file = ca && *ca ? ca : NULL;
    rc = client_ctx_new(&opts, &cli->ctx);
    if (rc != 0)
        return cli_fail(cli, err_str(rc), "cannot create the network context");
    rc = client_sync_open(cli->ctx, url, cli->timeout_ms, &cli->conn);
    if (rc == ERR_INVALID)
        return cli_fail(cli, "usage", "bad server URL '%s' (want ws://HOST:PORT or wss://...)",
                        url);
    if (rc != 0)
        return cli_fail(cli, rc == ERR_EXPIRED ? "timeout" : "io",
                        "cannot connect to %s: %s", url,
                        rc == ERR_EXPIRED                      ? "timed out"
                        : client_ctx_last_error(cli->ctx)[0] ? client_ctx_last_error(cli->ctx)
                                                               : "connection failed");
    return 0;
}

/* Loads the profile, unlocks the key, connects and logs in. */
static int session(struct cli *cli)
{
    uint8_t seed[32];
    struct client_frame reply;
    int rc, st;

    rc = client_profile_load(cli->profile_dir, &cli->prof);
    if (rc == ERR_NOT_FOUND || (rc == 0 && cli->prof.id[0] == '\0'))
        return cli_fail(cli, "not_found", "no enrolled profile in %s (run: sammen --server URL "
                        "--profile %s enroll CODE)", cli->profile_dir, cli->profile_dir);
    if (rc == ERR_DENIED)
        return cli_fail(cli, "denied", "%s/profile.json is readable by others; refusing it",
                        cli->profile_dir);
    if (rc != 0)
        return cli_fail(cli, err_str(rc), "cannot read the profile in %s: %s", cli->profile_dir,
                        err_str(rc));
    rc = client_profile_read_key(cli->profile_dir, cli->passphrase, seed);
    if (rc != 0) {
        sodium_memzero(seed, sizeof(seed));
        return cli_fail(cli, err_str(rc), "cannot unlock %s/device.key: %s", cli->profile_dir,
                        rc == ERR_CRYPTO   ? "wrong or missing SAMMEN_PASSPHRASE"
                        : rc == ERR_DENIED ? "the file must be readable by its owner only"
                                           : err_str(rc));
    }
    st = connect_to(cli, cli->server ? cli->server : cli->prof.server);
    if (st != 0) {
        sodium_memzero(seed, sizeof(seed));
        return st;
    }
    rc = client_auth_login(cli->conn, cli->prof.id, seed, cli->timeout_ms, &reply);
    sodium_memzero(seed, sizeof(seed));
    if (rc != 0) {
        st = cli_fail_reply(cli, &reply, rc, "login");
        client_frame_free(&reply);
        return st;
    }
    client_frame_free(&reply);
    return 0;
}

int cli_session(struct cli *cli)
{
    return session(cli);
}

/* Calls op with string arguments kv = {key, value, ..., NULL} (NULL values
 * are left out) on the session and prints the `ok` map. */
static int call_print(struct cli *cli, const char *op, const char *const *kv)
{
    struct wire_enc e;
    struct client_frame reply;
    uint32_t n = 0, id;
    json_t *j;
    int rc, st;

    if ((st = session(cli)) != 0)
        return st;
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (kv[i + 1])
            n++;
    id = client_conn_next_id(cli->conn);
    wire_enc_init(&e);
    wire_enc_request(&e, id, op, n);
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (kv[i + 1])
            wire_kv_str(&e, kv[i], kv[i + 1]);
    rc = client_sync_call(cli->conn, id, &e, cli->timeout_ms, &reply);
    wire_enc_reset(&e);
    if (rc != 0) {
        st = cli_fail_reply(cli, &reply, rc, op);
        client_frame_free(&reply);
        return st;
    }
    j = json_from_map(&reply.msg.body);
    client_frame_free(&reply);
    if (!j)
        return cli_fail(cli, "internal", "%s: cannot convert the answer", op);
    return cli_ok(cli, j);
}

/* ---- commands ---- */

int cmd_enroll(struct cli *cli)
{
    const char *code = cli->args.pos[0];
    const char *label = client_args_get(&cli->args, "label");
    char host[64];
    uint8_t seed[32];
    struct client_frame reply;
    const char *url;
    int rc, st;

    rc = client_profile_load(cli->profile_dir, &cli->prof);
    if (rc == 0 && cli->prof.id[0])
        return cli_fail(cli, "conflict", "the profile in %s is already enrolled as %s",
                        cli->profile_dir, cli->prof.id);
    if (rc != 0 && rc != ERR_NOT_FOUND)
        return cli_fail(cli, err_str(rc), "cannot read the profile in %s: %s", cli->profile_dir,
                        err_str(rc));
    url = cli->server ? cli->server : cli->prof.server[0] ? cli->prof.server : NULL;
    if (!url)
        return cli_fail(cli, "usage", "enroll needs --server URL");
    if (strlen(url) >= sizeof(cli->prof.server))
        return cli_fail(cli, "usage", "the server URL is too long");
    if (!label) {
        if (gethostname(host, sizeof(host)) != 0)
            strcpy(host, "device");
        host[sizeof(host) - 1] = '\0';
        label = host;
    }
    /* The key is written before the server hears of it: an enrolled device
     * whose key was lost could never log in. */
    randombytes_buf(seed, sizeof(seed));
    rc = client_profile_write_key(cli->profile_dir, seed, cli->passphrase);
    if (rc != 0) {
        sodium_memzero(seed, sizeof(seed));
        return cli_fail(cli, err_str(rc), "cannot write %s/device.key: %s", cli->profile_dir,
                        rc == ERR_DENIED ? "the profile directory is writable by others"
                                         : err_str(rc));
    }
    if ((st = connect_to(cli, url)) != 0) {
        sodium_memzero(seed, sizeof(seed));
        return st;
    }
    rc = client_auth_enroll(cli->conn, code, seed, label, cli->timeout_ms, &reply);
    if (rc != 0) {
        sodium_memzero(seed, sizeof(seed));
        st = cli_fail_reply(cli, &reply, rc, "enroll");
        client_frame_free(&reply);
        return st;
    }
    snprintf(cli->prof.server, sizeof(cli->prof.server), "%s", url);
    if (wire_get_cstr(&reply.msg.body, "id", cli->prof.id, sizeof(cli->prof.id)) != 0 ||
        wire_get_cstr(&reply.msg.body, "device", cli->prof.device, sizeof(cli->prof.device)) !=
            0 ||
        wire_get_cstr(&reply.msg.body, "role", cli->prof.role, sizeof(cli->prof.role)) != 0) {
        client_frame_free(&reply);
        return cli_fail(cli, "malformed", "enroll: the server's answer lacks id/device/role");
    }
    if (wire_get_cstr(&reply.msg.body, "domain", cli->prof.domain, sizeof(cli->prof.domain)) !=
        0) {
        /* derive it from the identity */
        const char *at = strchr(cli->prof.id, '@');
        snprintf(cli->prof.domain, sizeof(cli->prof.domain), "%s", at ? at + 1 : "");
    }
    client_frame_free(&reply);
    rc = client_profile_save(cli->profile_dir, &cli->prof);
    if (rc != 0) {
        sodium_memzero(seed, sizeof(seed));
        return cli_fail(cli, err_str(rc), "enrolled as %s, but cannot write %s/profile.json: %s",
                        cli->prof.id, cli->profile_dir, err_str(rc));
    }
    /* issue 5: KeyPackages on the server at once, so the device can be
     * added to threads before its first command */
    cli_enroll_keypackages(cli, seed);
    sodium_memzero(seed, sizeof(seed));
    return cli_ok(cli, json_pack("{s:s, s:s, s:s}", "id", cli->prof.id, "device",
                                 cli->prof.device, "role", cli->prof.role));
}

int cmd_whoami(struct cli *cli)
{
    return call_print(cli, "whoami", NULL);
}

int cmd_devices(struct cli *cli)
{
    return call_print(cli, "device.list", NULL);
}

int cmd_devices_revoke(struct cli *cli)
{
    const char *kv[] = {"device", cli->args.pos[0], NULL};
    return call_print(cli, "device.revoke", kv);
}

int cmd_link_device(struct cli *cli)
{
    return call_print(cli, "device.link_code", NULL);
}

int cmd_admin_invite(struct cli *cli)
{
    const char *role = client_args_get(&cli->args, "role");
    const char *name = client_args_get(&cli->args, "name");
    static const char *const roles[] = {"staff", "citizen", "volunteer", "admin"};
    bool ok = false;

    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        ok = ok || strcmp(role, roles[i]) == 0;
    if (!ok)
        return cli_fail(cli, "usage", "--role must be staff, citizen, volunteer or admin");
    /* name or name@domain: the server resolves a bare name to its domain
     * and refuses another domain (not_found) */
    const char *kv[] = {"role", role, "name", name,
                        "department", client_args_get(&cli->args, "department"),
                        "association", client_args_get(&cli->args, "association"), NULL};
    return call_print(cli, "admin.invite", kv);
}

int cmd_admin_department_add(struct cli *cli)
{
    const char *kv[] = {"name", cli->args.pos[0], NULL};
    return call_print(cli, "admin.department.add", kv);
}

int cmd_admin_association_add(struct cli *cli)
{
    const char *kv[] = {"name", cli->args.pos[0], NULL};
    return call_print(cli, "admin.association.add", kv);
}

int cmd_admin_departments(struct cli *cli)
{
    return call_print(cli, "admin.departments", NULL);
}

static int assign(struct cli *cli, const char *op)
{
    char staff[CLIENT_ID_MAX + 1];
    int st;

    /* the profile gives the domain for a bare name; session() loads it
     * again, which is harmless */
    if (client_profile_load(cli->profile_dir, &cli->prof) == 0 &&
        full_identity(cli, client_args_get(&cli->args, "staff"), staff, sizeof(staff)) == 0) {
        const char *kv[] = {"staff", staff, "department",
                            client_args_get(&cli->args, "department"), NULL};
        return call_print(cli, op, kv);
    }
    st = session(cli); /* reports the missing profile */
    if (st != 0)
        return st;
    return cli_fail(cli, "usage", "--staff: identity too long");
}

int cmd_admin_assign(struct cli *cli)
{
    return assign(cli, "admin.assign");
}

int cmd_admin_unassign(struct cli *cli)
{
    return assign(cli, "admin.unassign");
}
