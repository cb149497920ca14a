/*
 * main.c: sammen-server's entry point: parse the command line and config,
 * validate, and run one command (run, init, audit-verify; see server.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __GLIBC__ /* defined by the libc headers above */
#include <malloc.h>
#endif

#include "cfg.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
    char err[512];
    if (sodium_init() < 0) {
        fprintf(stderr, "sammen-server: libsodium failed to initialise\n");
        return 1;
    }
    umask(077); /* the database, its WAL and the key are for our eyes only */
#ifdef __GLIBC__
    /* SQLite's per-statement allocations sit at the top of the heap; with
     * glibc's default trim threshold every message grew and shrank the heap
     * with brk() (about 20 system calls and fresh page faults per message
     * fanned out to 9 devices; 2.4x slower). Keep some top-of-heap slack. */
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
    (void)mallopt(M_TOP_PAD, 16 << 20);
#endif
    cfg_defaults(&srv.cfg);
    struct cfg_cli cli;
    if (cfg_parse_args(&srv.cfg, &cli, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "sammen-server: %s (see --help)\n", err);
        return 2;
    }
    if (cli.help) {
        cfg_usage();
        return 0;
    }
    if (cfg_validate(&srv.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "sammen-server: %s\n", err);
        return 2;
    }
    enum log_level lvl = LOG_INFO;
    (void)log_parse_level(srv.cfg.log_level, &lvl); /* validated above */
    log_set_level(lvl);
    if (!strcmp(cli.command, "init")) {
        if (lvl < LOG_WARN)
            log_set_level(LOG_WARN); /* init's output is for people and scripts */
        return server_cmd_init(&srv.cfg, cli.admin_name, cli.json);
    }
    if (!strcmp(cli.command, "audit-verify"))
        return server_cmd_audit_verify(&srv.cfg);
    return server_cmd_run();
}
