/*
 * bench_out.c: a run's report (bench.h): one JSON document
 *   {"bench": "sammen-bench", "version": 1, "workload": ...,
 *    "params": {...}, "server": {...}, "figures": {...}, "units": {...}}
 * or, without --json, the same as a table on stdout.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

int bench_report_init(struct bench_report *r, const char *workload)
{
    memset(r, 0, sizeof(*r));
    r->doc = json_object();
    r->params = json_object();
    r->server = json_object();
    r->figures = json_object();
    r->units = json_object();
    if (!r->doc || !r->params || !r->server || !r->figures || !r->units) {
        bench_report_free(r);
        return ERR_NOMEM;
    }
    json_object_set_new(r->doc, "bench", json_string("sammen-bench"));
    json_object_set_new(r->doc, "version", json_integer(1));
    json_object_set_new(r->doc, "workload", json_string(workload));
    json_object_set(r->doc, "params", r->params);
    json_object_set(r->doc, "server", r->server);
    json_object_set(r->doc, "figures", r->figures);
    json_object_set(r->doc, "units", r->units);
    return 0;
}

void bench_report_free(struct bench_report *r)
{
    json_decref(r->doc);
    json_decref(r->params);
    json_decref(r->server);
    json_decref(r->figures);
    json_decref(r->units);
    memset(r, 0, sizeof(*r));
}

void bench_report_fig(struct bench_report *r, const char *name, double v, const char *unit)
{
    if (!isfinite(v))
        v = 0;
    json_object_set_new(r->figures, name, json_real(v));
    json_object_set_new(r->units, name, json_string(unit ? unit : ""));
}

void bench_report_figi(struct bench_report *r, const char *name, uint64_t v, const char *unit)
{
    json_object_set_new(r->figures, name, json_integer((json_int_t)v));
    json_object_set_new(r->units, name, json_string(unit ? unit : ""));
}

static void print_value(const json_t *v)
{
    if (json_is_integer(v))
        printf("%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        printf("%.6g", json_real_value(v));
    else if (json_is_string(v))
        printf("%s", json_string_value(v));
    else if (json_is_true(v))
        printf("yes");
    else if (json_is_false(v))
        printf("no");
    else
        printf("-");
}

static void print_section(const char *title, const json_t *obj, const json_t *units)
{
    const char *k;
    json_t *v;

    printf("%s\n", title);
    json_object_foreach((json_t *)obj, k, v) {
        const char *u = units ? json_string_value(json_object_get(units, k)) : NULL;
        printf("  %-34s ", k);
        print_value(v);
        if (u && *u)
            printf(" %s", u);
        printf("\n");
    }
}

void bench_report_print(const struct bench_report *r, bool json)
{
    if (json) {
        char *s = json_dumps(r->doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s) {
            printf("%s\n", s);
            free(s);
        }
        fflush(stdout);
        return;
    }
    printf("sammen-bench: %s\n", json_string_value(json_object_get(r->doc, "workload")));
    print_section("parameters", r->params, NULL);
    print_section("server", r->server, NULL);
    print_section("figures", r->figures, r->units);
    fflush(stdout);
}
