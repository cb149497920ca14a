/*
 * test_server_tls.c: sammen-server with --tls-cert/--tls-key serves wss://
 * (a self-signed certificate made with the openssl tool); a plain ws://
 * client cannot talk to it; bad TLS files make the server refuse to start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsraw.h"

static struct tsrv S;
static char cert[256], key[256];
static bool have_openssl;

static int setup(void **state)
{
    (void)state;
    if (tsrv_init(&S, "tls.test") != 0)
        return -1;
    snprintf(cert, sizeof(cert), "%s/cert.pem", S.root);
    snprintf(key, sizeof(key), "%s/key.pem", S.root);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 1 "
             "-subj /CN=127.0.0.1 >/dev/null 2>&1",
             key, cert);
    /* the openssl tool is only needed to make the test certificate */
    have_openssl = system(cmd) == 0;
    if (!have_openssl)
        fprintf(stderr, "openssl tool not available: TLS tests skipped\n");
    return wsc_global_init();
}

static int teardown(void **state)
{
    (void)state;
    wsc_global_free();
    tsrv_cleanup(&S);
    return 0;
}

static void wss_serves(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    const char *const args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    assert_int_equal(tsrv_start(&S, args), 0);
    wsc_use_tls = true;
    struct wsc *c = wsc_open(S.port);
    assert_int_equal(c->state, WSC_OPEN);
    struct wsresp r;
    assert_int_equal(wsc_call0(c, 1, "ping", &r), 0);
    assert_true(r.msg.ok);
    wsresp_free(&r);
    wsc_free(c);
    wsc_use_tls = false;
    c = wsc_open(S.port);
    bool talked = false;
    if (c->state == WSC_OPEN && wsc_call0(c, 2, "ping", &r) == 0) {
        talked = r.msg.ok;
        wsresp_free(&r);
    }
    assert_false(talked);
    wsc_free(c);
    assert_int_equal(tsrv_stop(&S, SIGTERM), 0);
}

static void bad_tls_files_refused(void **state)
{
    (void)state;
    const char *const args[] = {"--tls-cert", "/nonexistent.pem", "--tls-key", key, NULL};
    assert_int_not_equal(tsrv_start(&S, args), 0);
    /* exit status 1 by itself: refused, not crashed (it was SIGSEGV once) */
    assert_int_equal(tsrv_stop(&S, SIGKILL), 1);
    const char *const half[] = {"--tls-cert", cert, NULL};
    assert_int_not_equal(tsrv_start(&S, half), 0);
    assert_int_equal(tsrv_stop(&S, SIGTERM), 2); /* usage error */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wss_serves),
        cmocka_unit_test(bad_tls_files_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
