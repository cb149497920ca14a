/*
 * client_args.h: a table-driven command-line parser for client programs
 * (the `sammen` CLI; later the load generator).
 *
 * A program describes each command as one row: its words ("admin
 * department add"), its positional arguments, the options it accepts and
 * the ones it requires. Parsing takes options anywhere (before or after the
 * command words, as `--name value` or `--name=value`; `--` ends options),
 * picks the row whose words are the longest prefix of the non-option words,
 * and checks the rest against that row. Adding a command is adding a row.
 *
 * Option specs are strings: "json" is a flag, "server=" takes a value.
 */
#ifndef SAMMEN_CLIENT_ARGS_H
#define SAMMEN_CLIENT_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define CLIENT_ARGS_MAX_POS 8
#define CLIENT_ARGS_MAX_OPT 16

struct client_cmd {
    const char *words;              /* "devices revoke" */
    const char *usage;              /* the rest of the usage line: "DEVICE" */
    int min_pos, max_pos;           /* positional arguments after the words */
    const char *const *opts;        /* accepted options, NULL-terminated; may be NULL */
    const char *const *required;    /* option names that must be given; may be NULL */
    const char *help;               /* one line */
    int tag;                        /* free for the program (e.g. a handler index) */
};

struct client_args {
    const struct client_cmd *cmd;
    const char *pos[CLIENT_ARGS_MAX_POS];
    int npos;
    struct {
        const char *name; /* without "--" and "=" (points into the spec) */
        const char *value; /* "" for flags; points into argv */
    } opt[CLIENT_ARGS_MAX_OPT];
    int nopt;
    bool help; /* --help or -h was given */
};

/* Parses argv[1..argc) against table[0..n) and the global options (NULL-
 * terminated, may be NULL). On a usage error returns ERR_INVALID with a
 * message in err (errcap bytes). Without a matching command (and no words
 * at all) out->cmd is NULL, which with out->help means "general help".
 * Returns 0 or ERR_INVALID. Pointers in out point into argv and the table. */
int client_args_parse(const struct client_cmd *table, size_t n, const char *const *globals,
                      int argc, char **argv, struct client_args *out, char *err, size_t errcap);

/* The value of option name ("" for a given flag), or NULL when not given. */
const char *client_args_get(const struct client_args *a, const char *name);

#endif
