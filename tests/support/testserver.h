/*
 * testserver.h: run the real `sammen-server` for integration tests.
 *
 *   struct testserver ts;
 *   testserver_init(&ts, "example.org", true);   // temp dir, `init --json`
 *   testserver_start(&ts);                       // --listen 127.0.0.1:0
 *   ... connect to ts.url, enroll with ts.admin_code ...
 *   testserver_stop(&ts, SIGTERM);               // or SIGKILL
 *   testserver_start(&ts);                       // same data dir
 *   testserver_cleanup(&ts);                     // stop, remove the dir
 *
 * The binary is $SAMMEN_BIN_DIR/sammen-server (SAMMEN_BIN_DIR from the
 * environment, else the build tree's bin/). Its stdout and stderr go to
 * ts.log (appended across restarts). The server dies with the test process
 * (PR_SET_PDEATHSIG), so a crashed test leaves none behind. Every wait is
 * bounded; a failure prints why on stderr and returns -1.
 */
#ifndef SAMMEN_TESTSERVER_H
#define SAMMEN_TESTSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

struct testserver {
    char dir[128];      /* temporary root, removed by cleanup */
    char data[192];     /* the server's --data */
    char log[192];      /* stdout + stderr of every run */
    char bin[512];      /* the sammen-server binary */
    char domain[128];
    char admin_code[64]; /* from `init --json` */
    char url[64];       /* ws://127.0.0.1:PORT once started */
    int port;
    bool test_clock;    /* start with --test-clock */
    pid_t pid;          /* 0 when not running */
};

/* Makes a directory sammen-it-XXXXXX in $TMPDIR (else /tmp) into dir (cap
 * bytes; the name has no quote, so it can go in a shell command between
 * single quotes). Returns 0 or -1 (dir then empty). */
int testserver_mkdtemp(char *dir, size_t cap);
/* Makes a temp dir (testserver_mkdtemp) and runs
 * `sammen-server --data D --domain domain init --json`, keeping the admin
 * code. Returns 0 or -1. */
int testserver_init(struct testserver *ts, const char *domain, bool test_clock);
/* Starts the server on 127.0.0.1:0 and waits (10 s at most) for its
 * "listening on 127.0.0.1:PORT" line. extra_args (NULL-terminated, may be
 * NULL) are added to the command line. Returns 0 or -1. */
int testserver_start(struct testserver *ts);
int testserver_start_args(struct testserver *ts, const char *const *extra_args);
/* Sends sig and waits (10 s, then SIGKILL) for the process. Returns its
 * exit status (0..255), 128+signal if killed by one, or -1. */
int testserver_stop(struct testserver *ts, int sig);
/* Sets the running server's soft file-size limit to cur bytes, keeping the
 * hard one (which no limit can pass), and stores the soft limit it had in
 * *old_cur (may be NULL): restore that to lift the limit. With SIGXFSZ
 * ignored (inherited from the test), writes past it fail with EFBIG, so
 * SQLite's COMMIT fails as on a full disk. Returns 0 or -1. */
int testserver_set_fsize(const struct testserver *ts, rlim_t cur, rlim_t *old_cur);
/* The log so far (malloc()ed, NUL-terminated; caller frees), or NULL. */
char *testserver_log(const struct testserver *ts);
/* Kills a running server, prints the last 40 lines of its log on stderr
 * (ctest shows them only if the test fails) and removes the temp dir
 * (kept when SAMMEN_KEEP_TEST_DIR is set). Safe on a zeroed struct. */
void testserver_cleanup(struct testserver *ts);

#endif
