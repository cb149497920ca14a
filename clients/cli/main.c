/*
 * main.c: `sammen`, the command-line client. Start at the command table
 * below: each row is a command (its words, arguments, options, handler);
 * main() parses argv against it (options anywhere after the command) and
 * runs the handler. Output conventions are in cli_ok() / cli_fail().
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cli.h"
#include "client_sync.h"
#include "client_thread.h"
#include "err.h"

static const char *const globals[] = {"server=", "profile=", "json", "timeout=", NULL};
static const char *const opt_enroll[] = {"label=", NULL};
static const char *const opt_invite[] = {"role=", "name=", "department=", "association=", NULL};
static const char *const req_invite[] = {"role", "name", NULL};
static const char *const opt_assign[] = {"staff=", "department=", NULL};
static const char *const req_assign[] = {"staff", "department", NULL};

static const char *const opt_relative[] = {"citizen=", "name=", "child", "scope=", "oral",
                                           "reason=", "purpose=", "expires=", NULL};
static const char *const req_relative[] = {"citizen", "name", NULL};
static const char *const opt_proxy[] = {"citizen=", "name=", "basis=", NULL};
static const char *const req_proxy[] = {"citizen", "name", "basis", NULL};
static const char *const opt_proxy_end[] = {"citizen=", "name=", "registration=", NULL};
static const char *const req_proxy_end[] = {"citizen", "name", "registration", NULL};
static const char *const opt_grant[] = {"citizen=", "to=", "scope=", "basis=", "purpose=",
                                        "expires=", "oral", "reason=", NULL};
static const char *const req_grant[] = {"citizen", "to", "scope", "basis", "purpose", NULL};
static const char *const opt_citizen[] = {"citizen=", NULL};
static const char *const opt_request[] = {"citizen=", "scope=", "note=", NULL};
static const char *const req_request[] = {"citizen", "scope", NULL};
static const char *const opt_approve[] = {"basis=", "purpose=", "expires=", NULL};
static const char *const opt_breakglass[] = {"citizen=", "thread=", "reason=", "hours=", NULL};
static const char *const req_breakglass[] = {"citizen", "thread", "reason", NULL};
static const char *const opt_create[] = {"citizen=", "kind=", "title=", NULL};
static const char *const req_create[] = {"citizen", "kind", "title", NULL};
static const char *const opt_send[] = {"wait=", NULL};
static const char *const opt_read[] = {"since=", NULL};

static int (*const handlers[])(struct cli *) = {
    cmd_enroll,       cmd_whoami,          cmd_devices,
    cmd_devices_revoke, cmd_link_device,   cmd_admin_invite,
    cmd_admin_department_add, cmd_admin_association_add, cmd_admin_departments,
    cmd_admin_assign, cmd_admin_unassign,
    /* issue 5 (cmd_threads.c), tags 11.. */
    cmd_invite_relative, cmd_proxy_register, cmd_consent_grant, cmd_consent_revoke,
    cmd_consent_list, cmd_consent_request, cmd_consent_requests, cmd_consent_approve,
    cmd_consent_decline, cmd_breakglass, cmd_thread_create, cmd_thread_list,
    cmd_thread_members, cmd_thread_send, cmd_thread_read, cmd_thread_log,
    cmd_agreement_pin, cmd_agreement_ack, cmd_agreement_show, cmd_sync,
    cmd_test_clock_shift, cmd_proxy_end,
};

/* One row per command; tag indexes handlers[]. Issue 5's commands (thread,
 * consent, invite relative, proxy, breakglass, agreement, ...) are rows. */
static const struct client_cmd commands[] = {
    {"enroll", "CODE [--label L]", 1, 1, opt_enroll, NULL,
     "enroll this profile's device with an invitation or link code", 0},
    {"whoami", "", 0, 0, NULL, NULL, "show this device's identity, role and departments", 1},
    {"devices", "", 0, 0, NULL, NULL, "list this identity's devices", 2},
    {"devices revoke", "DEVICE", 1, 1, NULL, NULL, "revoke one of this identity's devices", 3},
    {"link-device", "", 0, 0, NULL, NULL, "make a short-lived code to enroll another device", 4},
    {"admin invite",
     "--role staff|citizen|volunteer|admin --name N [--department D] [--association A]", 0, 0,
     opt_invite, req_invite, "invite a person (prints a one-time enrollment code)", 5},
    {"admin department add", "D", 1, 1, NULL, NULL, "add a department", 6},
    {"admin association add", "A", 1, 1, NULL, NULL, "add a volunteer association", 7},
    {"admin departments", "", 0, 0, NULL, NULL, "list departments and associations", 8},
    {"admin assign", "--staff ID --department D", 0, 0, opt_assign, req_assign,
     "assign a staff member to a department", 9},
    {"admin unassign", "--staff ID --department D", 0, 0, opt_assign, req_assign,
     "remove a staff member from a department", 10},
    {"invite relative",
     "--citizen C --name N [--child] [--scope S] [--oral --reason R] [--purpose P] "
     "[--expires T]",
     0, 0, opt_relative, req_relative,
     "invite a relative with a signed grant (prints their enrollment code)", 11},
    {"proxy register", "--citizen C --name N --basis guardianship|power-of-attorney", 0, 0,
     opt_proxy, req_proxy, "register a proxy for a citizen (staff)", 12},
    {"consent grant",
     "--citizen C --to G --scope S --basis B --purpose P [--expires ISO-8601] "
     "[--oral --reason R]",
     0, 0, opt_grant, req_grant, "sign and record a consent grant", 13},
    {"consent revoke", "GRANT", 1, 1, NULL, NULL, "revoke a grant (signed)", 14},
    {"consent list", "[--citizen C]", 0, 0, opt_citizen, NULL,
     "list a citizen's grants, each verified on this device", 15},
    {"consent request", "--citizen C --scope S [--note N]", 0, 0, opt_request, req_request,
     "ask a citizen for consent", 16},
    {"consent requests", "", 0, 0, NULL, NULL, "list consent requests", 17},
    {"consent approve", "REQUEST [--basis B] [--purpose P] [--expires T]", 1, 1, opt_approve,
     NULL, "approve a request with a signed grant", 18},
    {"consent decline", "REQUEST", 1, 1, NULL, NULL, "decline a consent request", 19},
    {"breakglass", "--citizen C --thread T --reason R [--hours H]", 0, 0, opt_breakglass,
     req_breakglass, "open time-limited access without consent (staff; loudly logged)", 20},
    {"thread create", "--citizen C --kind care|coordination --title T", 0, 0, opt_create,
     req_create, "create an end-to-end encrypted thread about a citizen", 21},
    {"thread list", "", 0, 0, NULL, NULL, "list your threads", 22},
    {"thread members", "T", 1, 1, NULL, NULL,
     "list a thread's members, why each is there, and device fingerprints", 23},
    {"thread send", "T TEXT [--wait S]", 2, 2, opt_send, NULL, "send an encrypted message",
     24},
    {"thread read", "T [--since MESSAGE]", 1, 1, opt_read, NULL,
     "show the thread's history on this device", 25},
    {"thread log", "T", 1, 1, NULL, NULL, "show a thread's access log", 26},
    {"agreement pin", "T TEXT", 2, 2, NULL, NULL, "pin an agreement in a thread", 27},
    {"agreement ack", "T AGREEMENT", 2, 2, NULL, NULL, "acknowledge the pinned agreement", 28},
    {"agreement show", "T", 1, 1, NULL, NULL, "show the agreement and who acknowledged it",
     29},
    {"sync", "", 0, 0, NULL, NULL, "fetch and process everything waiting for this device", 30},
    {"test clock-shift", "SECONDS", 1, 1, NULL, NULL,
     "tests only: move the clock of a server started with --test-clock", 31},
    {"proxy end", "--citizen C --name N --registration P", 0, 0, opt_proxy_end, req_proxy_end,
     "end a proxy's registration P (signed; staff)", 32},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: sammen [--server URL] [--profile DIR] [--json] [--timeout S] COMMAND ...\n"
               "Options may stand anywhere; identities are name@domain (a bare name means this\n"
               "server's domain). SAMMEN_PASSPHRASE encrypts the device key.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s %s\n      %s\n", commands[i].words, commands[i].usage,
                commands[i].help);
}

/* Keys whose integer values are Unix times, shown as dates to people. */
static bool is_time_key(const char *key)
{
    static const char *const keys[] = {"created", "last_seen", "expires", "time", NULL};
    for (const char *const *k = keys; *k; k++)
        if (strcmp(key, *k) == 0)
            return true;
    return false;
}

/* Prints one value for people: strings bare, times as UTC dates, null as
 * "-", arrays of strings joined with ", ". */
static void print_human(const char *key, const json_t *v)
{
    if (json_is_string(v)) {
        fputs(json_string_value(v), stdout);
    } else if (json_is_integer(v) && is_time_key(key)) {
        time_t t = (time_t)json_integer_value(v);
        struct tm tm;
        char buf[32];
        if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm) > 0)
            fputs(buf, stdout);
        else
            printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_null(v)) {
        fputs("-", stdout);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (i)
                fputs(", ", stdout);
            print_human(key, item);
        }
    } else {
        char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fputs(d ? d : "?", stdout);
        free(d);
    }
}

int cli_ok(struct cli *cli, json_t *result)
{
    const char *key;
    json_t *v;

    if (!result)
        return cli_fail(cli, "nomem", "out of memory");
    if (cli->json) {
        json_dumpf(result, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        fputc('\n', stdout);
    } else {
        json_object_foreach(result, key, v) {
            if (json_is_array(v) && json_array_size(v) > 0 &&
                json_is_object(json_array_get(v, 0))) {
                /* a list of records (devices): one block each */
                size_t i;
                json_t *item;
                printf("%s:\n", key);
                json_array_foreach(v, i, item) {
                    const char *k;
                    json_t *f;
                    bool first = true;
                    json_object_foreach(item, k, f) {
                        printf("%s%s: ", first ? "  - " : "    ", k);
                        print_human(k, f);
                        fputc('\n', stdout);
                        first = false;
                    }
                }
                continue;
            }
            printf("%s: ", key);
            print_human(key, v);
            fputc('\n', stdout);
        }
    }
    fflush(stdout);
    json_decref(result);
    return CLI_OK;
}

int cli_fail(struct cli *cli, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cli && cli->json) {
        json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
        if (doc) {
            json_dumpf(doc, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_dumpf(doc, stderr, JSON_COMPACT);
            fputc('\n', stderr);
            json_decref(doc);
        }
    } else {
        fprintf(stderr, "sammen: %s\n", msg);
    }
    fflush(stdout);
    return strcmp(code, "usage") == 0 ? CLI_USAGE : CLI_FAIL;
}

int cli_fail_reply(struct cli *cli, const struct client_frame *reply, int rc, const char *what)
{
    if (reply && reply->buf && !reply->msg.ok && reply->msg.kind == WIRE_RESPONSE)
        return cli_fail(cli, reply->msg.name, "%s: %s (%.*s)", what, reply->msg.name,
                        (int)(reply->msg.err_msg_len > 512 ? 512 : reply->msg.err_msg_len),
                        reply->msg.err_msg ? reply->msg.err_msg : "");
    if (rc == ERR_EXPIRED)
        return cli_fail(cli, "timeout", "%s: no answer from the server in time", what);
    if (rc == ERR_IO)
        return cli_fail(cli, "io", "%s: the connection to the server failed or was closed",
                        what);
    return cli_fail(cli, err_str(rc), "%s: %s", what, err_str(rc));
}

int main(int argc, char **argv)
{
    struct cli cli;
    char err[512], home_profile[PATH_MAX];
    const char *v;
    int rc;

    memset(&cli, 0, sizeof(cli));
    if (sodium_init() < 0)
        return cli_fail(NULL, "internal", "libsodium failed to initialise");
    /* --json is looked for first so that even a usage error is JSON */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli.json = true;
    rc = client_args_parse(commands, NCOMMANDS, globals, argc, argv, &cli.args, err, sizeof(err));
    if (rc != 0) {
        if (!cli.json)
            usage(stderr);
        return cli_fail(&cli, "usage", "%s", err);
    }
    if (cli.args.help) {
        if (cli.args.cmd)
            printf("usage: sammen %s %s\n  %s\n", cli.args.cmd->words, cli.args.cmd->usage,
                   cli.args.cmd->help);
        else
            usage(stdout);
        return CLI_OK;
    }
    cli.server = client_args_get(&cli.args, "server");
    cli.profile_dir = client_args_get(&cli.args, "profile");
    if (!cli.profile_dir) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return cli_fail(&cli, "usage", "no --profile given and HOME is not set");
        if ((size_t)snprintf(home_profile, sizeof(home_profile), "%s/.sammen", home) >=
            sizeof(home_profile))
            return cli_fail(&cli, "usage", "HOME is too long");
        cli.profile_dir = home_profile;
    }
    cli.timeout_ms = CLI_TIMEOUT_MS;
    if ((v = client_args_get(&cli.args, "timeout")) != NULL) {
        char *end;
        long s = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || s < 1 || s > 3600)
            return cli_fail(&cli, "usage", "--timeout takes 1..3600 seconds");
        cli.timeout_ms = (int)s * 1000;
    }
    v = getenv("SAMMEN_PASSPHRASE");
    cli.passphrase = v && *v ? v : NULL;

    rc = handlers[cli.args.cmd->tag](&cli);

    if (cli.conn) {
        /* the close sends the sync's ack notification first */
        client_conn_close(cli.conn);
        (void)client_sync_closed(cli.conn, 1000);
    }
    /* an ack the server refused (it answers later, with id 0): the data
     * is safe on this device, and the next run acknowledges again */
    if (cli.dev && client_dev_ack_failures(cli.dev) > 0)
        fprintf(stderr, "sammen: warning: the server refused an acknowledgement: %s: %s\n",
                cli.dev->ack_err_code, cli.dev->ack_err_msg);
    client_dev_free(cli.dev);
    client_conn_free(cli.conn);
    client_ctx_free(cli.ctx);
    return rc;
}
