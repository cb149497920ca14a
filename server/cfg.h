/*
 * cfg.h: server configuration. One table of directives (cfg.c) serves both
 * the config file (`name value` lines, '#' comments) and the command line
 * (`--name value`, '-' for '_'; booleans take no value on the command line).
 * server/sammen.conf.example explains each directive.
 *
 * Order: defaults, then the file given by --config, then the command line.
 * cfg_validate() checks everything together; main refuses to run on error.
 */
#ifndef SAMMEN_CFG_H
#define SAMMEN_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_STR_MAX 1024
#define CFG_FILE_MAX (1 << 20)

struct cfg {
    char data[CFG_STR_MAX];      /* data directory */
    char listen[CFG_STR_MAX];    /* HOST:PORT or [V6]:PORT */
    char domain[CFG_STR_MAX];    /* server domain (init; checked on start) */
    char tls_cert[CFG_STR_MAX];
    char tls_key[CFG_STR_MAX];
    char log_level[CFG_STR_MAX];
    bool insecure_listen;
    bool test_clock;
    uint64_t max_frame;
    uint64_t max_connections;
    uint64_t max_outq;
    uint64_t login_per_minute;
    uint64_t offline_days;
    uint64_t kp_claims_per_minute;
    uint64_t thread_cache;
    uint64_t unauth_timeout;
    uint64_t commit_delay_us;
    uint64_t settle_ms;
    uint64_t wal_checkpoint_pages;
    /* derived by cfg_validate() */
    char host[256];
    uint16_t port;
    bool loopback;
};

/* Command-line words that are not directives. */
struct cfg_cli {
    const char *config;     /* --config FILE */
    const char *command;    /* "run" (default), "init", "audit-verify" */
    bool json;              /* --json (init) */
    const char *admin_name; /* --admin-name N (init) */
    bool help;
};

/* Fills the defaults. */
void cfg_defaults(struct cfg *cfg);
/* Sets directive `name` (underscore spelling) from text. Returns 0,
 * ERR_NOT_FOUND (no such directive), ERR_INVALID (bad value; err says why). */
int cfg_set(struct cfg *cfg, const char *name, const char *value, char *err, size_t errlen);
/* Parses config text (len bytes, need not be NUL-terminated); name is used
 * in messages. Returns 0 or ERR_INVALID (err names the line). */
int cfg_load_text(struct cfg *cfg, const char *text, size_t len, const char *name, char *err,
                  size_t errlen);
/* Reads a config file (≤ CFG_FILE_MAX bytes). Returns 0, ERR_IO, ERR_NOMEM,
 * ERR_INVALID (err names the line). */
int cfg_load_file(struct cfg *cfg, const char *path, char *err, size_t errlen);
/* Parses argv (options anywhere): loads --config first, then applies the
 * command-line directives over it. cli's pointers point into argv.
 * Returns 0 or ERR_INVALID (err says why). */
int cfg_parse_args(struct cfg *cfg, struct cfg_cli *cli, int argc, char **argv, char *err,
                   size_t errlen);
/* Checks the whole configuration and derives host/port/loopback (the
 * domain, when set, must be valid). Returns 0 or ERR_INVALID. */
int cfg_validate(struct cfg *cfg, char *err, size_t errlen);
/* True for 127.0.0.0/8, ::1 and "localhost". */
bool cfg_host_is_loopback(const char *host);
/* Domain syntax: 1..253 of [a-z0-9.-], labels 1..63, no leading/trailing
 * '-' or '.'. */
bool cfg_domain_valid(const char *d);
/* Prints the directive list (for --help). */
void cfg_usage(void);

#endif
