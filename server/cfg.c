/*
 * cfg.c: the directive table and its parsers (see cfg.h). To add a
 * directive: a field in struct cfg, a row in `directives`, a paragraph in
 * sammen.conf.example.
 */
#include "cfg.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

enum cfg_type { CFG_STR, CFG_UINT, CFG_BOOL };

struct directive {
    const char *name;
    enum cfg_type type;
    const char *def; /* default, as text */
    uint64_t min, max; /* CFG_UINT limits */
    size_t off;
    const char *help;
};

#define F(field) offsetof(struct cfg, field)

static const struct directive directives[] = {
    {"data", CFG_STR, "./var", 0, 0, F(data), "data directory (database, server key)"},
    {"listen", CFG_STR, "127.0.0.1:8480", 0, 0, F(listen), "HOST:PORT to listen on (port 0: any free port)"},
    {"domain", CFG_STR, "", 0, 0, F(domain), "server domain (stored by init)"},
    {"tls_cert", CFG_STR, "", 0, 0, F(tls_cert), "PEM certificate: serve wss"},
    {"tls_key", CFG_STR, "", 0, 0, F(tls_key), "PEM private key for tls_cert"},
    {"insecure_listen", CFG_BOOL, "no", 0, 0, F(insecure_listen), "allow plain ws on a non-loopback address"},
    {"max_frame", CFG_UINT, "1048576", 256, 16u << 20, F(max_frame), "largest inbound frame, bytes"},
    {"max_connections", CFG_UINT, "1024", 1, 100000, F(max_connections), "simultaneous connections"},
    {"max_outq", CFG_UINT, "4194304", 4096, 1u << 30, F(max_outq), "per-connection outbound queue, bytes"},
    {"login_per_minute", CFG_UINT, "60", 1, 100000, F(login_per_minute), "login attempts per identity and per address per minute"},
    {"offline_days", CFG_UINT, "30", 1, 3650, F(offline_days), "days a message waits for an offline device before it is dropped and reported missed"},
    {"kp_claims_per_minute", CFG_UINT, "60", 1, 100000, F(kp_claims_per_minute), "kp.claim calls per device per minute"},
    {"thread_cache", CFG_UINT, "4096", 1, 1000000, F(thread_cache), "threads whose group state is kept in memory (least recently used beyond are reloaded from the store)"},
    {"commit_delay_us", CFG_UINT, "2000", 0, 100000, F(commit_delay_us), "while busy, how long an open transaction may wait for more writes before it is committed (group commit; 0: commit after every loop iteration)"},
    {"settle_ms", CFG_UINT, "100", 0, 10000, F(settle_ms), "how often acknowledgements are settled: `delivered` events to senders and the ciphertext dropped once every recipient has it (0: in every transaction)"},
    {"wal_checkpoint_pages", CFG_UINT, "16000", 100, 1000000, F(wal_checkpoint_pages), "WAL pages (4 KiB each) after which a background thread copies the WAL back into the database file"},
    {"unauth_timeout", CFG_UINT, "30", 1, 86400, F(unauth_timeout), "seconds a connection that has not logged in may stay silent before it is closed"},
    {"log_level", CFG_STR, "info", 0, 0, F(log_level), "debug, info, warn or error"},
    {"test_clock", CFG_BOOL, "no", 0, 0, F(test_clock), "tests only (loopback): shiftable clock"},
};

#define NDIR (sizeof(directives) / sizeof(directives[0]))

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return ERR_INVALID;
}

static const struct directive *find(const char *name)
{
    for (size_t i = 0; i < NDIR; i++)
        if (strcmp(directives[i].name, name) == 0)
            return &directives[i];
    return NULL;
}

/* Unsigned decimal with an optional K/M/G suffix (powers of 1024). */
static int parse_uint(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return ERR_INVALID;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return ERR_INVALID;
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024 * 1024 * 1024, end++;
    if (*end)
        return ERR_INVALID;
    if (v > UINT64_MAX / mul)
        return ERR_INVALID;
    *out = (uint64_t)v * mul;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "1"))
        *out = true;
    else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "0"))
        *out = false;
    else
        return ERR_INVALID;
    return 0;
}

static int apply(struct cfg *cfg, const struct directive *d, const char *value, char *err,
                 size_t errlen)
{
    char *base = (char *)cfg;
    switch (d->type) {
    case CFG_STR: {
        size_t n = strlen(value);
        if (n >= CFG_STR_MAX)
            return fail(err, errlen, "%s: value too long", d->name);
        memcpy(base + d->off, value, n + 1);
        return 0;
    }
    case CFG_UINT: {
        uint64_t v;
        if (parse_uint(value, &v) != 0)
            return fail(err, errlen, "%s: not a number: '%s'", d->name, value);
        if (v < d->min || v > d->max)
            return fail(err, errlen, "%s: %llu is outside %llu..%llu", d->name,
                        (unsigned long long)v, (unsigned long long)d->min,
                        (unsigned long long)d->max);
        memcpy(base + d->off, &v, sizeof(v));
        return 0;
    }
    case CFG_BOOL: {
        bool b;
        if (parse_bool(value, &b) != 0)
            return fail(err, errlen, "%s: expected yes or no, got '%s'", d->name, value);
        memcpy(base + d->off, &b, sizeof(b));
        return 0;
    }
    }
    return fail(err, errlen, "%s: bad directive type", d->name);
}

void cfg_defaults(struct cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NDIR; i++) {
        int rc = apply(cfg, &directives[i], directives[i].def, NULL, 0);
        assert(rc == 0); /* the table's defaults are valid */
        (void)rc;
    }
}

int cfg_set(struct cfg *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const struct directive *d = find(name);
    if (!d) {
        fail(err, errlen, "unknown directive '%s'", name);
        return ERR_NOT_FOUND;
    }
    return apply(cfg, d, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

int cfg_load_text(struct cfg *cfg, const char *text, size_t len, const char *name, char *err,
                  size_t errlen)
{
    char line[CFG_STR_MAX + 128];
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (n >= sizeof(line))
            return fail(err, errlen, "%s:%u: line too long", name, lineno);
        memcpy(line, text + pos, n);
        line[n] = 0;
        pos += n + (nl ? 1 : 0);
        if (strlen(line) != n)
            return fail(err, errlen, "%s:%u: NUL byte in line", name, lineno);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *dname = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (*s)
            *s++ = 0;
        char *value = trim(s);
        const struct directive *d = find(dname);
        if (!d)
            return fail(err, errlen, "%s:%u: unknown directive '%s'", name, lineno, dname);
        if (!*value)
            return fail(err, errlen, "%s:%u: %s needs a value", name, lineno, dname);
        char e2[256];
        if (apply(cfg, d, value, e2, sizeof(e2)) != 0)
            return fail(err, errlen, "%s:%u: %s", name, lineno, e2);
    }
    return 0;
}

int cfg_load_file(struct cfg *cfg, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        return ERR_IO;
    }
    /* a config file is small: refuse anything over 1 MiB */
    buf = malloc(CFG_FILE_MAX + 1);
    if (!buf) {
        rc = ERR_NOMEM;
        goto out;
    }
    size_t len = fread(buf, 1, CFG_FILE_MAX + 1, f);
    if (ferror(f)) {
        fail(err, errlen, "%s: read error", path);
        rc = ERR_IO;
        goto out;
    }
    if (len > CFG_FILE_MAX) {
        rc = fail(err, errlen, "%s: larger than %d bytes", path, CFG_FILE_MAX);
        goto out;
    }
    rc = cfg_load_text(cfg, buf, len, path, err, errlen);
out:
    free(buf);
    fclose(f);
    return rc;
}

/* "--max-frame" → "max_frame" into buf; NULL if not an option or too long. */
static const char *opt_name(const char *arg, char *buf, size_t cap)
{
    if (strncmp(arg, "--", 2) != 0 || !arg[2])
        return NULL;
    size_t n = strlen(arg + 2);
    if (n >= cap)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        buf[i] = arg[2 + i] == '-' ? '_' : arg[2 + i];
    return buf;
}

int cfg_parse_args(struct cfg *cfg, struct cfg_cli *cli, int argc, char **argv, char *err,
                   size_t errlen)
{
    memset(cli, 0, sizeof(*cli));
    cli->command = "run";
    bool have_cmd = false;
    /* Pass 1: --config and the command words. */
    for (int i = 1; i < argc; i++) {
        char nb[64];
        const char *name = opt_name(argv[i], nb, sizeof(nb));
        if (!name) {
            if (argv[i][0] == '-')
                return fail(err, errlen, "unknown option '%s'", argv[i]);
            if (have_cmd)
                return fail(err, errlen, "unexpected argument '%s'", argv[i]);
            if (strcmp(argv[i], "init") && strcmp(argv[i], "audit-verify") &&
                strcmp(argv[i], "run"))
                return fail(err, errlen, "unknown command '%s'", argv[i]);
            cli->command = argv[i];
            have_cmd = true;
            continue;
        }
        if (!strcmp(name, "help")) {
            cli->help = true;
            continue;
        }
        if (!strcmp(name, "json")) {
            cli->json = true;
            continue;
        }
        const struct directive *d = find(name);
        bool takes_value = !strcmp(name, "config") || !strcmp(name, "admin_name") ||
                           (d && d->type != CFG_BOOL);
        if (!d && !takes_value)
            return fail(err, errlen, "unknown option '%s'", argv[i]);
        if (!takes_value)
            continue;
        if (i + 1 >= argc)
            return fail(err, errlen, "%s needs a value", argv[i]);
        if (!strcmp(name, "config"))
            cli->config = argv[i + 1];
        else if (!strcmp(name, "admin_name"))
            cli->admin_name = argv[i + 1];
        i++;
    }
    if (cli->config) {
        int rc = cfg_load_file(cfg, cli->config, err, errlen);
        if (rc)
            return ERR_INVALID;
    }
    /* Pass 2: directives override the file. */
    for (int i = 1; i < argc; i++) {
        char nb[64];
        const char *name = opt_name(argv[i], nb, sizeof(nb));
        if (!name)
            continue;
        if (!strcmp(name, "config") || !strcmp(name, "admin_name")) {
            i++;
            continue;
        }
        const struct directive *d = find(name);
        if (!d)
            continue; /* --json, --help */
        int rc = d->type == CFG_BOOL ? apply(cfg, d, "yes", err, errlen)
                                     : apply(cfg, d, argv[++i], err, errlen);
        if (rc)
            return ERR_INVALID;
    }
    return 0;
}

bool cfg_host_is_loopback(const char *host)
{
    if (!strcmp(host, "localhost") || !strcmp(host, "::1"))
        return true;
    unsigned a, b, c, d;
    char tail;
    if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4)
        return a == 127 && b < 256 && c < 256 && d < 256;
    return false;
}

bool cfg_domain_valid(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = d[i];
        if (ch == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
        if (ch == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && d[n - 1] != '-';
}

/* Splits HOST:PORT / [V6]:PORT into cfg->host and cfg->port. */
static int split_listen(struct cfg *cfg, char *err, size_t errlen)
{
    const char *l = cfg->listen;
    const char *colon;
    size_t hlen;
    if (l[0] == '[') {
        const char *close = strchr(l, ']');
        if (!close || close[1] != ':')
            return fail(err, errlen, "listen: expected [ADDRESS]:PORT, got '%s'", l);
        hlen = (size_t)(close - l - 1);
        if (hlen == 0 || hlen >= sizeof(cfg->host))
            return fail(err, errlen, "listen: bad address in '%s'", l);
        memcpy(cfg->host, l + 1, hlen);
        cfg->host[hlen] = 0;
        colon = close + 1;
    } else {
        colon = strrchr(l, ':');
        if (!colon || colon == l)
            return fail(err, errlen, "listen: expected HOST:PORT, got '%s'", l);
        hlen = (size_t)(colon - l);
        if (hlen >= sizeof(cfg->host) || memchr(l, ':', hlen))
            return fail(err, errlen, "listen: bad host in '%s' (IPv6 needs [ ])", l);
        memcpy(cfg->host, l, hlen);
        cfg->host[hlen] = 0;
    }
    uint64_t port;
    if (parse_uint(colon + 1, &port) != 0 || port > 65535 || strpbrk(colon + 1, "kKmMgG"))
        return fail(err, errlen, "listen: bad port in '%s'", l);
    cfg->port = (uint16_t)port;
    for (const char *p = cfg->host; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == ':'))
            return fail(err, errlen, "listen: bad host '%s'", cfg->host);
    return 0;
}

int cfg_validate(struct cfg *cfg, char *err, size_t errlen)
{
    if (!cfg->data[0])
        return fail(err, errlen, "data: a data directory is required");
    int rc = split_listen(cfg, err, errlen);
    if (rc)
        return rc;
    cfg->loopback = cfg_host_is_loopback(cfg->host);
    if (cfg->domain[0] && !cfg_domain_valid(cfg->domain))
        return fail(err, errlen, "domain: '%s' is not a valid lower-case domain name", cfg->domain);
    if (!!cfg->tls_cert[0] != !!cfg->tls_key[0])
        return fail(err, errlen, "tls_cert and tls_key go together");
    if (!cfg->tls_cert[0] && !cfg->loopback && !cfg->insecure_listen)
        return fail(err, errlen,
                    "listen: plain ws on non-loopback address '%s' needs tls_cert/tls_key "
                    "(or insecure_listen)",
                    cfg->host);
    if (cfg->test_clock && !cfg->loopback)
        return fail(err, errlen, "test_clock is allowed only on a loopback address");
    enum log_level lvl;
    if (log_parse_level(cfg->log_level, &lvl) != 0)
        return fail(err, errlen, "log_level: expected debug, info, warn or error, got '%s'",
                    cfg->log_level);
    if (cfg->max_outq < cfg->max_frame / 4)
        return fail(err, errlen, "max_outq (%llu) must be at least max_frame/4 (%llu)",
                    (unsigned long long)cfg->max_outq, (unsigned long long)(cfg->max_frame / 4));
    return 0;
}

void cfg_usage(void)
{
    printf("usage: sammen-server [--config FILE] [options] [run]\n"
           "       sammen-server --data DIR --domain NAME init [--json] [--admin-name N]\n"
           "       sammen-server --data DIR audit-verify\n\noptions (also config-file "
           "directives, with '_' for '-'):\n");
    for (size_t i = 0; i < NDIR; i++) {
        char opt[64];
        size_t j = 0;
        for (; directives[i].name[j] && j < sizeof(opt) - 1; j++)
            opt[j] = directives[i].name[j] == '_' ? '-' : directives[i].name[j];
        opt[j] = 0;
        printf("  --%-18s %s (default: %s)\n", opt, directives[i].help,
               directives[i].def[0] ? directives[i].def : "none");
    }
}
