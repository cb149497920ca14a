/*
 * server.c: the one global (`srv`), group commit (server_commit), and the
 * three commands: init, audit-verify, run (the event loop and shutdown).
 */
#include "server.h"

#include <errno.h>
#include "lws_inc.h"
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>

#include "audit.h"
#include "clock.h"
#include "code.h"
#include "conn.h"
#include "consent.h"
#include "deliver.h"
#include "err.h"
#include "hot.h"
#include "keyfile.h"
#include "log.h"
#include "thread.h"
#include "tstore.h"
#include "ws.h"

#define INVITE_LIFETIME (7 * 86400)
#define DRAIN_SECONDS 3

struct server srv;

/* Group commit: while the server is busy (the last transaction carried at
 * least BUSY_WRITES write requests), an open transaction waits up to
 * cfg.commit_delay_us from its first write for more writes before it is
 * committed, so that one COMMIT (one WAL write of each page it dirtied, one
 * fsync) and one send per connection carry more messages. Answers are held
 * until the COMMIT as always; an idle server commits at once. */
#define BUSY_WRITES 8

bool server_commit_due(void)
{
    if (srv.stop || srv.stopping || !srv.cfg.commit_delay_us || !store_in_txn(srv.store) ||
        srv.last_txn_writes < BUSY_WRITES)
        return true;
    uint64_t age = mono_us() - srv.txn_began_us;
    if (age >= srv.cfg.commit_delay_us)
        return true;
    ws_wake_in(srv.cfg.commit_delay_us - age);
    return false;
}

void server_commit(void)
{
    if (store_in_txn(srv.store)) {
        srv.last_txn_writes = srv.txn_writes;
        srv.txn_writes = 0;
        int rc = srv.txn_doomed ? ERR_INTERNAL : deliver_before_commit();
        srv.txn_doomed = false;
        if (rc)
            store_rollback(srv.store);
        else
            rc = store_commit(srv.store);
        struct outmsg *m = srv.held_head;
        srv.held_head = srv.held_tail = NULL;
        size_t n = 0; /* counted while released: the held list can be long and cold */
        if (rc) {
            log_error("commit failed (%s): answering this iteration's writes with internal",
                      err_str(rc));
            thread_cache_clear(); /* followers may hold rolled-back epochs */
        }
        while (m) {
            struct outmsg *next = m->next;
            struct conn *c = m->conn;
            if (rc == 0 || (!m->is_ok && !m->is_event)) {
                conn_enqueue(c, m);
            } else if (m->is_event) {
                outmsg_free(m); /* it tells of a write that did not happen */
            } else {
                /* The write did not happen: say so and close, since the
                 * session state (e.g. a login by enrollment) may be wrong. */
                uint32_t id = m->id;
                outmsg_free(m);
                conn_send_err(c, id, "internal", "the server could not commit the change", true);
            }
            m = next;
            n++;
        }
        log_debug("commit: %s, %zu held messages released", rc ? "FAILED" : "ok", n);
    }
    conn_flush_all();
    /* Safe point: no callback is running and nothing refers to dead
     * connections any more. */
    while (srv.dead) {
        struct conn *c = srv.dead;
        srv.dead = c->next;
        conn_free(c);
    }
}

void server_sweep(void)
{
    /* Once a second at most: grant expiry and the offline limit. Both read
     * first and open the iteration's transaction only when there is work;
     * server_commit() then commits it with everything else. */
    uint64_t now = clock_now();
    if (now == srv.last_sweep)
        return;
    srv.last_sweep = now;
    conn_idle_sweep();
    bool did = false;
    int rc = consent_sweep(now, &did);
    if (!rc)
        rc = deliver_sweep(now, &did);
    if (rc) {
        log_error("sweep failed: %s", err_str(rc));
        deliver_discard();
        thread_cache_clear();
        store_rollback(srv.store);
        return;
    }
    thread_cache_keep();
    deliver_flush();
}

int server_path(const char *dir, const char *file, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", dir, file);
    return n < 0 || (size_t)n >= cap ? ERR_TOO_BIG : 0;
}

/* Creates dir 0700, or accepts an existing empty directory. */
static int make_data_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST) {
        fprintf(stderr, "sammen-server: cannot create %s: %s\n", dir, strerror(errno));
        return ERR_IO;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "sammen-server: %s exists and is not a directory we can read\n", dir);
        return ERR_IO;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        /* server.lock may be left by a `run` on a directory not yet initialised */
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strcmp(e->d_name, "server.lock")) {
            fprintf(stderr, "sammen-server: %s already exists and is not empty; refusing to init\n",
                    dir);
            rc = ERR_CONFLICT;
            break;
        }
    }
    closedir(d);
    if (!rc && chmod(dir, 0700) != 0) {
        fprintf(stderr, "sammen-server: chmod %s: %s\n", dir, strerror(errno));
        rc = ERR_IO;
    }
    return rc;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

int server_cmd_init(const struct cfg *cfg, const char *admin_name, bool json)
{
    int status = 1, rc;
    struct store *st = NULL;
    uint8_t seed[32];
    char shown[CODE_SHOWN + 1] = "";
    if (!cfg->domain[0]) {
        fprintf(stderr, "sammen-server: init needs --domain NAME\n");
        return 2;
    }
    if (!admin_name)
        admin_name = "admin";
    if (strlen(admin_name) > 64) {
        fprintf(stderr, "sammen-server: --admin-name is too long\n");
        return 2;
    }
    for (const char *p = admin_name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  (p != admin_name && (*p == '.' || *p == '_' || *p == '-'));
        if (!ok || !admin_name[0]) {
            fprintf(stderr, "sammen-server: --admin-name: 1..64 of a-z 0-9 . _ -\n");
            return 2;
        }
    }
    if (!admin_name[0]) {
        fprintf(stderr, "sammen-server: --admin-name is empty\n");
        return 2;
    }
    if (make_data_dir(cfg->data) != 0)
        return 1;

    char path[CFG_STR_MAX + 32];
    if (server_path(cfg->data, "server.key", path, sizeof(path)) != 0) {
        fprintf(stderr, "sammen-server: data path too long\n");
        return 1;
    }
    randombytes_buf(seed, sizeof(seed));
    rc = keyfile_write(path, KEYFILE_SERVER, seed, NULL);
    if (rc) {
        fprintf(stderr, "sammen-server: cannot write %s: %s\n", path, err_str(rc));
        goto out;
    }
    uint8_t pk[32], sk[64];
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
    char pkhex[65];
    sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));

    if (server_path(cfg->data, "sammen.db", path, sizeof(path)) != 0)
        goto out;
    rc = store_open(path, true, &st);
    if (rc) {
        fprintf(stderr, "sammen-server: cannot create the database %s: %s\n", path, err_str(rc));
        goto out;
    }
    uint64_t now = clock_now();
    struct store_code sc;
    memset(&sc, 0, sizeof(sc));
    code_new(shown, sc.hash);
    snprintf(sc.kind, sizeof(sc.kind), "invite");
    int n = snprintf(sc.identity, sizeof(sc.identity), "%s@%s", admin_name, cfg->domain);
    if (n < 0 || (size_t)n >= sizeof(sc.identity))
        goto out;
    snprintf(sc.role, sizeof(sc.role), "admin");
    snprintf(sc.created_by, sizeof(sc.created_by), "init");
    sc.created = now;
    sc.expires = now + INVITE_LIFETIME;
    char created[32];
    snprintf(created, sizeof(created), "%llu", (unsigned long long)now);
    rc = store_begin(st);
    if (!rc) rc = store_meta_set(st, "domain", cfg->domain);
    if (!rc) rc = store_meta_set(st, "created", created);
    if (!rc) rc = store_meta_set(st, "server_pk", pkhex);
    if (!rc) rc = store_code_add(st, &sc);
    if (!rc) rc = audit_append(st, now, "init", "init", cfg->domain, "server created");
    if (!rc) rc = audit_append(st, now, "init", "invite", sc.identity, "role admin");
    if (!rc) rc = store_commit(st);
    if (rc) {
        fprintf(stderr, "sammen-server: cannot initialise the database: %s\n", err_str(rc));
        goto out;
    }
    if (json) {
        printf("{\"code\": ");
        json_str(shown);
        printf(", \"id\": ");
        json_str(sc.identity);
        printf(", \"domain\": ");
        json_str(cfg->domain);
        printf(", \"expires\": %llu}\n", (unsigned long long)sc.expires);
    } else {
        printf("sammen-server: initialised %s for domain %s\n", cfg->data, cfg->domain);
        printf("One-time administrator enrollment code for %s (valid 7 days):\n\n    %s\n\n",
               sc.identity, shown);
        printf("Start the server, then enroll the administrator's device with:\n"
               "    sammen --server %s://%s --profile DIR enroll %s\n",
               cfg->tls_cert[0] ? "wss" : "ws", cfg->listen, shown);
    }
    if (fflush(stdout) != 0)
        goto out;
    status = 0;
out:
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(shown, sizeof(shown));
    store_close(st);
    return status;
}

int server_cmd_audit_verify(const struct cfg *cfg)
{
    char path[CFG_STR_MAX + 32];
    struct store *st = NULL;
    if (server_path(cfg->data, "sammen.db", path, sizeof(path)) != 0)
        return 1;
    int rc = store_open(path, false, &st);
    if (rc) {
        fprintf(stderr, "sammen-server: cannot open %s: %s\n", path, err_str(rc));
        return 1;
    }
    int64_t bad = 0, rows = 0;
    rc = audit_verify(st, &bad, &rows);
    store_close(st);
    if (rc) {
        fprintf(stderr, "sammen-server: cannot read the audit table: %s\n", err_str(rc));
        return 1;
    }
    if (bad) {
        printf("audit: chain BROKEN at row %lld\n", (long long)bad);
        return 1;
    }
    printf("audit: %lld rows, chain intact\n", (long long)rows);
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    srv.stop = 1;
    if (srv.ctx)
        lws_cancel_service(srv.ctx);
}

int server_cmd_run(void)
{
    int status = 1;
    char path[CFG_STR_MAX + 32];
    uint8_t seed[32];
    if (server_path(srv.cfg.data, "sammen.db", path, sizeof(path)) != 0)
        log_fatal("data path too long");
    /* One server per data directory: the lock is held until we exit. */
    char lockpath[CFG_STR_MAX + 32];
    if (server_path(srv.cfg.data, "server.lock", lockpath, sizeof(lockpath)) != 0)
        log_fatal("data path too long");
    int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0)
        log_fatal("%s is not initialised or not writable (%s): run `sammen-server --data %s "
                  "--domain NAME init` first",
                  srv.cfg.data, strerror(errno), srv.cfg.data);
    if (flock(lockfd, LOCK_EX | LOCK_NB) != 0)
        log_fatal("another sammen-server is running on %s", srv.cfg.data);
    int rc = store_open(path, false, &srv.store);
    if (rc == ERR_NOT_FOUND)
        log_fatal("%s is not initialised: run `sammen-server --data %s --domain NAME init` first",
                  srv.cfg.data, srv.cfg.data);
    if (rc)
        log_fatal("cannot open the database %s: %s", path, err_str(rc));
    rc = store_checkpoint_in_background(srv.store, path, (int)srv.cfg.wal_checkpoint_pages);
    if (rc)
        log_fatal("cannot start the database checkpointer: %s", err_str(rc));
    rc = store_meta_get(srv.store, "domain", srv.domain, sizeof(srv.domain));
    if (rc)
        log_fatal("the database has no domain (%s); was init interrupted?", err_str(rc));
    if (srv.cfg.domain[0] && strcmp(srv.cfg.domain, srv.domain) != 0)
        log_fatal("--domain %s does not match the domain stored at init (%s)", srv.cfg.domain,
                  srv.domain);
    if (server_path(srv.cfg.data, "server.key", path, sizeof(path)) != 0)
        log_fatal("data path too long");
    rc = keyfile_read(path, KEYFILE_SERVER, NULL, seed);
    if (rc) {
        sodium_memzero(seed, sizeof(seed));
        log_fatal("cannot read the server key %s: %s", path, err_str(rc));
    }
    /* kept for the run: it signs consent receipts and external proposals */
    srv.key_seed = sodium_malloc(32);
    if (!srv.key_seed)
        log_fatal("out of memory for the server key");
    memcpy(srv.key_seed, seed, 32);
    sodium_memzero(seed, sizeof(seed));
    {
        uint8_t sk[64];
        crypto_sign_seed_keypair(srv.key_pk, sk, srv.key_seed);
        sodium_memzero(sk, sizeof(sk));
    }
    sodium_mprotect_readonly(srv.key_seed);
    snprintf(srv.server_cred, sizeof(srv.server_cred), "server@%s", srv.domain);
    rc = tstore_open(srv.store);
    if (rc)
        log_fatal("cannot prepare the thread statements: %s", err_str(rc));

    if (srv.cfg.test_clock) {
        const char *off = getenv("SAMMEN_TEST_CLOCK_OFFSET");
        if (off && *off) {
            char *end;
            long long v = strtoll(off, &end, 10);
            if (*end)
                log_fatal("SAMMEN_TEST_CLOCK_OFFSET: not a number");
            clock_shift(v);
        }
        log_warn("test clock enabled (offset %lld s): never use this in production",
                 (long long)clock_offset());
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        log_fatal("sigaction failed");
    signal(SIGPIPE, SIG_IGN);

    uint16_t port;
    if (ws_start(&port) != 0)
        goto out;
    const char *h = srv.cfg.host;
    bool v6 = strchr(h, ':') != NULL;
    printf("sammen-server: listening on %s%s%s:%u (%s, domain %s)\n", v6 ? "[" : "", h,
           v6 ? "]" : "", port, srv.cfg.tls_cert[0] ? "wss" : "ws", srv.domain);
    fflush(stdout);
    log_info("listening on %s:%u, domain %s", h, port, srv.domain);

    while (!srv.stop) {
        if (ws_service() < 0)
            break;
        server_sweep();
        if (!store_in_txn(srv.store) && deliver_settle_due()) {
            if (store_begin(srv.store) == 0)
                srv.txn_began_us = mono_us();
            else
                log_error("cannot open a transaction to settle acknowledgements");
        }
        if (server_commit_due())
            server_commit();
    }

    /* Drain: refuse new connections, commit and send what was answered,
     * tell every session we are going, then close. */
    log_info("shutting down");
    srv.stopping = true;
    server_commit();
    for (struct conn *c = srv.conns; c; c = c->next)
        conn_end_session(c, "shutdown");
    uint64_t deadline = (uint64_t)time(NULL) + DRAIN_SECONDS;
    while (srv.conns && (uint64_t)time(NULL) < deadline) {
        if (ws_service() < 0)
            break;
        server_commit();
    }
    ws_stop();
    server_commit();
    status = 0;
out:
    server_commit();
    thread_cache_clear();
    hot_clear();
    deliver_shutdown();
    tstore_close();
    store_close(srv.store);
    srv.store = NULL;
    sodium_free(srv.key_seed);
    srv.key_seed = NULL;
    log_info("stopped");
    close(lockfd); /* releases the lock */
    return status;
}
