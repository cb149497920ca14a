/*
 * cli.h: shared state of the `sammen` command-line client.
 *
 * main.c holds the command table and the conventions every command
 * follows (exit status 0 / 1 / 2, messages on stderr, with --json one JSON
 * document on stdout). cmd.c holds the command handlers; each one either
 * calls cli_ok() with its JSON result or cli_fail*() with an error, and
 * returns the exit status they give.
 */
#ifndef SAMMEN_CLI_H
#define SAMMEN_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"
#include "client_args.h"
#include "client_profile.h"

#define CLI_TIMEOUT_MS 10000

enum cli_exit { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli {
    struct client_args args;
    bool json;
    const char *profile_dir;
    const char *server; /* --server, or NULL */
    const char *passphrase; /* SAMMEN_PASSPHRASE or NULL */
    int timeout_ms;
    struct client_profile prof;
    struct client_ctx *ctx;
    struct client_conn *conn;
    struct client_dev *dev; /* issue-5 commands: device state + sync engine */
};

/* Prints result (human form: one "key: value" line per field, arrays
 * joined) or, with --json, the JSON document; takes the reference. Returns
 * CLI_OK. */
int cli_ok(struct cli *cli, json_t *result);
/* Prints an error (code: a stable string such as "not_found" or "usage")
 * to stderr, and with --json as {"error": {"code", "message"}} on stdout
 * and stderr. Returns CLI_FAIL, or CLI_USAGE when code is "usage". */
int cli_fail(struct cli *cli, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a server's error response. */
int cli_fail_reply(struct cli *cli, const struct client_frame *reply, int rc, const char *what);

/* Loads the profile, unlocks the key, connects and logs in (cmd.c).
 * Returns 0 or the exit status of the failure it already reported. */
int cli_session(struct cli *cli);

/* A decoded msgpack map / object as JSON (bin values as lowercase hex).
 * Returns a new reference or NULL. */
json_t *cli_json_map(const struct wire_map *m);
json_t *cli_json_obj(const msgpack_object *o);

/* Command handlers (cmd.c). */
int cmd_enroll(struct cli *cli);
int cmd_whoami(struct cli *cli);
int cmd_devices(struct cli *cli);
int cmd_devices_revoke(struct cli *cli);
int cmd_link_device(struct cli *cli);
int cmd_admin_invite(struct cli *cli);
int cmd_admin_department_add(struct cli *cli);
int cmd_admin_association_add(struct cli *cli);
int cmd_admin_departments(struct cli *cli);
int cmd_admin_assign(struct cli *cli);
int cmd_admin_unassign(struct cli *cli);

/* Issue-5 command handlers (cmd_threads.c). Each logs in, opens the device
 * state (cli->dev), tops up the KeyPackage stock and syncs first. */
int cmd_invite_relative(struct cli *cli);
int cmd_proxy_register(struct cli *cli);
int cmd_proxy_end(struct cli *cli);
int cmd_consent_grant(struct cli *cli);
int cmd_consent_revoke(struct cli *cli);
int cmd_consent_list(struct cli *cli);
int cmd_consent_request(struct cli *cli);
int cmd_consent_requests(struct cli *cli);
int cmd_consent_approve(struct cli *cli);
int cmd_consent_decline(struct cli *cli);
int cmd_breakglass(struct cli *cli);
int cmd_thread_create(struct cli *cli);
int cmd_thread_list(struct cli *cli);
int cmd_thread_members(struct cli *cli);
int cmd_thread_send(struct cli *cli);
int cmd_thread_read(struct cli *cli);
int cmd_thread_log(struct cli *cli);
int cmd_agreement_pin(struct cli *cli);
int cmd_agreement_ack(struct cli *cli);
int cmd_agreement_show(struct cli *cli);
int cmd_sync(struct cli *cli);
int cmd_test_clock_shift(struct cli *cli);
/* After enroll: open the new device's state and upload its KeyPackages
 * (best effort: a server without issue 5 is not an error). */
void cli_enroll_keypackages(struct cli *cli, const uint8_t seed[32]);

#endif
