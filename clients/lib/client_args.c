/* client_args.c: the table-driven parser (see client_args.h). */
#include "client_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

/* Finds option `name` (length len) in specs. Returns the spec or NULL;
 * *takes_value says whether it ends in '='. */
static const char *find_spec(const char *const *specs, const char *name, size_t len,
                             bool *takes_value)
{
    if (!specs)
        return NULL;
    for (; *specs; specs++) {
        size_t sl = strlen(*specs);
        bool tv = sl > 0 && (*specs)[sl - 1] == '=';
        size_t nl = tv ? sl - 1 : sl;
        if (nl == len && strncmp(*specs, name, len) == 0) {
            *takes_value = tv;
            return *specs;
        }
    }
    return NULL;
}

static int fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return ERR_INVALID;
}

/* Does the row's word list equal the first k of words? Returns k (number of
 * words in the row) when it is a prefix, else -1. */
static int match_words(const char *row, const char *const *words, int nwords)
{
    int k = 0;
    const char *p = row;

    while (*p) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (k >= nwords || strlen(words[k]) != len || strncmp(words[k], p, len) != 0)
            return -1;
        k++;
        p += len;
        while (*p == ' ')
            p++;
    }
    return k;
}

int client_args_parse(const struct client_cmd *table, size_t n, const char *const *globals,
                      int argc, char **argv, struct client_args *out, char *err, size_t errcap)
{
    const char *words[CLIENT_ARGS_MAX_POS + 4];
    int nwords = 0, best = -1, best_k = -1;
    struct {
        const char *tok; /* the token as given, for messages */
        const char *name;
        size_t len;
        const char *value;
    } raw[CLIENT_ARGS_MAX_OPT];
    int nraw = 0;
    bool only_words = false;

    memset(out, 0, sizeof(*out));
    if (errcap)
        err[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *t = argv[i];
        if (!only_words && (strcmp(t, "-h") == 0 || strcmp(t, "--help") == 0)) {
            out->help = true;
            continue;
        }
        if (!only_words && strcmp(t, "--") == 0) {
            only_words = true;
            continue;
        }
        if (!only_words && t[0] == '-' && t[1] != '\0') {
            const char *name, *eq, *value = NULL;
            size_t len;
            bool tv = false;
            if (t[1] != '-')
                return fail(err, errcap, "unknown option %s", t);
            name = t + 2;
            eq = strchr(name, '=');
            len = eq ? (size_t)(eq - name) : strlen(name);
            /* the arity of an option name is the same in every row */
            bool found = find_spec(globals, name, len, &tv) != NULL;
            for (size_t r = 0; !found && r < n; r++)
                found = find_spec(table[r].opts, name, len, &tv) != NULL;
            if (!found)
                return fail(err, errcap, "unknown option --%.*s", (int)len, name);
            if (tv) {
                if (eq) {
                    value = eq + 1;
                } else if (i + 1 < argc) {
                    value = argv[++i];
                } else {
                    return fail(err, errcap, "option --%.*s needs a value", (int)len, name);
                }
            } else {
                if (eq)
                    return fail(err, errcap, "option --%.*s takes no value", (int)len, name);
                value = "";
            }
            for (int k = 0; k < nraw; k++)
                if (raw[k].len == len && strncmp(raw[k].name, name, len) == 0)
                    return fail(err, errcap, "option --%.*s given twice", (int)len, name);
            if (nraw >= CLIENT_ARGS_MAX_OPT)
                return fail(err, errcap, "too many options");
            raw[nraw].tok = t;
            raw[nraw].name = name;
            raw[nraw].len = len;
            raw[nraw].value = value;
            nraw++;
            continue;
        }
        if (nwords >= (int)(sizeof(words) / sizeof(words[0])))
            return fail(err, errcap, "too many arguments");
        words[nwords++] = t;
    }

    if (nwords == 0) {
        if (out->help)
            return 0;
        return fail(err, errcap, "no command given");
    }
    for (size_t r = 0; r < n; r++) {
        int k = match_words(table[r].words, words, nwords);
        if (k > best_k) {
            best_k = k;
            best = (int)r;
        }
    }
    if (best < 0 || best_k <= 0)
        return fail(err, errcap, "unknown command '%s'", words[0]);
    out->cmd = &table[best];
    if (out->help)
        return 0;

    int npos = nwords - best_k;
    if (npos < out->cmd->min_pos)
        return fail(err, errcap, "%s: missing argument (usage: %s %s)", out->cmd->words,
                    out->cmd->words, out->cmd->usage);
    if (npos > out->cmd->max_pos)
        return fail(err, errcap, "%s: unexpected argument '%s'", out->cmd->words,
                    words[best_k + out->cmd->max_pos]);
    for (int k = 0; k < npos; k++)
        out->pos[k] = words[best_k + k];
    out->npos = npos;

    for (int k = 0; k < nraw; k++) {
        bool tv = false;
        const char *spec = find_spec(globals, raw[k].name, raw[k].len, &tv);
        if (!spec)
            spec = find_spec(out->cmd->opts, raw[k].name, raw[k].len, &tv);
        if (!spec)
            return fail(err, errcap, "%s: option --%.*s does not apply", out->cmd->words,
                        (int)raw[k].len, raw[k].name);
        out->opt[out->nopt].name = spec;
        out->opt[out->nopt].value = raw[k].value;
        out->nopt++;
    }
    if (out->cmd->required)
        for (const char *const *q = out->cmd->required; *q; q++)
            if (!client_args_get(out, *q))
                return fail(err, errcap, "%s: --%s is required", out->cmd->words, *q);
    return 0;
}

const char *client_args_get(const struct client_args *a, const char *name)
{
    size_t len = strlen(name);

    for (int k = 0; k < a->nopt; k++) {
        const char *s = a->opt[k].name;
        size_t sl = strlen(s);
        if (sl > 0 && s[sl - 1] == '=')
            sl--;
        if (sl == len && strncmp(s, name, len) == 0)
            return a->opt[k].value;
    }
    return NULL;
}
