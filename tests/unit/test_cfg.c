/* test_cfg.c: the server's directive table: defaults, file and command
 * line (and their order), limits, listen/loopback/TLS rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "err.h"

static void defaults_valid(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    cfg_defaults(&c);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8480);
    assert_true(c.loopback);
    assert_int_equal(c.max_frame, 1048576);
    assert_string_equal(c.data, "./var");
}

static void set_and_limits(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    cfg_defaults(&c);
    assert_int_equal(cfg_set(&c, "max_frame", "64K", err, sizeof(err)), 0);
    assert_int_equal(c.max_frame, 65536);
    assert_int_equal(cfg_set(&c, "max_frame", "1", err, sizeof(err)), ERR_INVALID);
    assert_non_null(strstr(err, "max_frame"));
    assert_int_equal(cfg_set(&c, "max_frame", "99999999999", err, sizeof(err)), ERR_INVALID);
    assert_int_equal(cfg_set(&c, "max_frame", "12x", err, sizeof(err)), ERR_INVALID);
    assert_int_equal(cfg_set(&c, "max_frame", "-5", err, sizeof(err)), ERR_INVALID);
    assert_int_equal(cfg_set(&c, "nope", "1", err, sizeof(err)), ERR_NOT_FOUND);
    assert_int_equal(cfg_set(&c, "insecure_listen", "maybe", err, sizeof(err)), ERR_INVALID);
    assert_int_equal(cfg_set(&c, "insecure_listen", "yes", err, sizeof(err)), 0);
    assert_true(c.insecure_listen);
}

static void listen_rules(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    static const struct {
        const char *listen;
        int rc;
        uint16_t port;
        bool loopback;
    } cases[] = {
        {"127.0.0.1:0", 0, 0, true},
        {"localhost:9000", 0, 9000, true},
        {"[::1]:8480", 0, 8480, true},
        {"0.0.0.0:8480", ERR_INVALID, 0, false}, /* plain ws off loopback */
        {"127.0.0.1", ERR_INVALID, 0, false},
        {"127.0.0.1:70000", ERR_INVALID, 0, false},
        {":8480", ERR_INVALID, 0, false},
        {"::1:8480", ERR_INVALID, 0, false},
        {"127.0.0.1:80k", ERR_INVALID, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_defaults(&c);
        assert_int_equal(cfg_set(&c, "listen", cases[i].listen, err, sizeof(err)), 0);
        int rc = cfg_validate(&c, err, sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("%s: got %d (%s)", cases[i].listen, rc, err);
        if (rc == 0) {
            assert_int_equal(c.port, cases[i].port);
            assert_int_equal(c.loopback, cases[i].loopback);
        }
    }
    /* non-loopback is allowed with TLS or when forced */
    cfg_defaults(&c);
    cfg_set(&c, "listen", "0.0.0.0:8480", err, sizeof(err));
    cfg_set(&c, "insecure_listen", "yes", err, sizeof(err));
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
    cfg_defaults(&c);
    cfg_set(&c, "listen", "0.0.0.0:8480", err, sizeof(err));
    cfg_set(&c, "tls_cert", "/x.pem", err, sizeof(err));
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), ERR_INVALID); /* key missing */
    cfg_set(&c, "tls_key", "/k.pem", err, sizeof(err));
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
    /* the test clock is loopback-only */
    cfg_set(&c, "test_clock", "yes", err, sizeof(err));
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), ERR_INVALID);
}

static void domains(void **state)
{
    (void)state;
    assert_true(cfg_domain_valid("example.org"));
    assert_true(cfg_domain_valid("localhost"));
    assert_true(cfg_domain_valid("a-b.c1.dk"));
    assert_false(cfg_domain_valid(""));
    assert_false(cfg_domain_valid("Example.org"));
    assert_false(cfg_domain_valid("-a.org"));
    assert_false(cfg_domain_valid("a-.org"));
    assert_false(cfg_domain_valid("a..org"));
    assert_false(cfg_domain_valid("a.org."));
    assert_false(cfg_domain_valid("a_b.org"));
    struct cfg c;
    char err[256];
    cfg_defaults(&c);
    cfg_set(&c, "domain", "Bad Domain", err, sizeof(err));
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), ERR_INVALID);
}

static void file_then_args(void **state)
{
    (void)state;
    char path[] = "/tmp/sammen-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "# comment\n\nmax_connections 7   # trailing comment\nlisten 127.0.0.1:9001\n"
               "log_level warn\ninsecure_listen no\n");
    fclose(f);
    struct cfg c;
    struct cfg_cli cli;
    char err[256];
    cfg_defaults(&c);
    char *argv[] = {"sammen-server", "--listen", "127.0.0.1:9002", "init", "--config", path,
                    "--json", "--admin-name", "root", "--max-outq", "1M", NULL};
    assert_int_equal(cfg_parse_args(&c, &cli, 11, argv, err, sizeof(err)), 0);
    assert_string_equal(cli.command, "init");
    assert_true(cli.json);
    assert_string_equal(cli.admin_name, "root");
    assert_int_equal(c.max_connections, 7);         /* from the file */
    assert_string_equal(c.listen, "127.0.0.1:9002"); /* command line wins */
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(c.max_outq, 1048576);

    /* errors name the line */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "max_frame 100\n");
    fclose(f);
    cfg_defaults(&c);
    assert_int_equal(cfg_load_file(&c, path, err, sizeof(err)), ERR_INVALID);
    assert_non_null(strstr(err, ":1:"));
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "\nbogus 1\n");
    fclose(f);
    assert_int_equal(cfg_load_file(&c, path, err, sizeof(err)), ERR_INVALID);
    assert_non_null(strstr(err, ":2:"));
    unlink(path);
    assert_int_equal(cfg_load_file(&c, path, err, sizeof(err)), ERR_IO);

    char *bad1[] = {"sammen-server", "--bogus", NULL};
    assert_int_equal(cfg_parse_args(&c, &cli, 2, bad1, err, sizeof(err)), ERR_INVALID);
    char *bad2[] = {"sammen-server", "--listen", NULL};
    assert_int_equal(cfg_parse_args(&c, &cli, 2, bad2, err, sizeof(err)), ERR_INVALID);
    char *bad3[] = {"sammen-server", "frobnicate", NULL};
    assert_int_equal(cfg_parse_args(&c, &cli, 2, bad3, err, sizeof(err)), ERR_INVALID);
    char *bad4[] = {"sammen-server", "--max-frame", "12", NULL};
    assert_int_equal(cfg_parse_args(&c, &cli, 3, bad4, err, sizeof(err)), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_valid), cmocka_unit_test(set_and_limits),
        cmocka_unit_test(listen_rules),   cmocka_unit_test(domains),
        cmocka_unit_test(file_then_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
