/*
 * test_server_listen.c: a server that cannot listen refuses to start with a
 * clear message and exit status 1, and the server already on that address
 * goes on serving.
 *
 * Before the fix, a second server on a busy port destroyed a half-made
 * libwebsockets context and crashed on its way out (SIGSEGV), which a test
 * checking only "did not start" could not tell from a clean refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsraw.h"

static struct tsrv A, B;
static char b_err[256];

static int setup(void **state)
{
    (void)state;
    if (tsrv_init(&A, "first.test") != 0 || tsrv_init(&B, "second.test") != 0)
        return -1;
    snprintf(b_err, sizeof(b_err), "%s/stderr.log", B.root);
    B.stderr_path = b_err;
    return wsc_global_init();
}

static int teardown(void **state)
{
    (void)state;
    wsc_global_free();
    tsrv_cleanup(&A);
    tsrv_cleanup(&B);
    return 0;
}

/* s answers a ping on a new connection. */
static void serves(const struct tsrv *s, uint32_t id)
{
    struct wsc *c = wsc_open(s->port);
    assert_int_equal(c->state, WSC_OPEN);
    struct wsresp r;
    assert_int_equal(wsc_call0(c, id, "ping", &r), 0);
    assert_true(r.msg.ok);
    wsresp_free(&r);
    wsc_free(c);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    if (buf)
        (void)fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

static void port_in_use_refused(void **state)
{
    (void)state;
    assert_int_equal(tsrv_start(&A, NULL), 0);
    serves(&A, 1);

    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)A.port);
    const char *const args[] = {"--listen", listen, NULL};
    assert_int_not_equal(tsrv_start(&B, args), 0);
    /* it exited by itself, with the status of a run that failed (not a
     * signal, not a sanitizer's report) */
    assert_int_equal(tsrv_stop(&B, SIGKILL), 1);
    char *err = slurp(b_err);
    assert_non_null(err);
    char want[64];
    snprintf(want, sizeof(want), "cannot listen on %s", listen);
    if (!strstr(err, want))
        fprintf(stderr, "server B's stderr:\n%s\n", err);
    assert_non_null(strstr(err, want));
    free(err);

    /* the first server is untouched: same port, still answering */
    serves(&A, 2);
    assert_int_equal(tsrv_stop(&A, SIGTERM), 0);

    /* and once the port is free, the second one starts there */
    assert_int_equal(tsrv_start(&B, args), 0);
    assert_int_equal(B.port, A.port);
    serves(&B, 3);
    assert_int_equal(tsrv_stop(&B, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(port_in_use_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
