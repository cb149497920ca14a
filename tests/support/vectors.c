/* vectors.c: loading and decoding test vector files (see vectors.h). */
#include "vectors.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *vec_load(const char *relpath)
{
    const char *dir = getenv("SAMMEN_SHARED_DIR");
    if (!dir || !*dir)
        dir = SAMMEN_SHARED_DIR;
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, relpath);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        fprintf(stderr, "vector path too long\n");
        exit(2);
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        fprintf(stderr, "cannot load %s: %s (line %d)\n", path, jerr.text, jerr.line);
        exit(2);
    }
    return root;
}

bool vec_hex_value(const json_t *str, struct vec_bytes *out)
{
    out->p = NULL;
    out->len = 0;
    if (!json_is_string(str))
        return false;
    const char *hex = json_string_value(str);
    size_t hlen = strlen(hex);
    if (hlen % 2)
        return false;
    out->p = malloc(hlen / 2 + 1); /* +1: never malloc(0) */
    if (!out->p)
        return false;
    size_t bin_len = 0;
    if (sodium_hex2bin(out->p, hlen / 2 + 1, hex, hlen, NULL, &bin_len, NULL) != 0 ||
        bin_len != hlen / 2) {
        free(out->p);
        out->p = NULL;
        return false;
    }
    out->len = bin_len;
    return true;
}

bool vec_hex(const json_t *obj, const char *key, struct vec_bytes *out)
{
    return vec_hex_value(json_object_get(obj, key), out);
}

void vec_bytes_free(struct vec_bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

static void print_hex(const char *label, const uint8_t *p, size_t len)
{
    fprintf(stderr, "  %s (%zu): ", label, len);
    for (size_t i = 0; i < len; i++)
        fprintf(stderr, "%02x", p[i]);
    fprintf(stderr, "\n");
}

bool vec_eq(const char *what, const struct vec_bytes *b, const uint8_t *p, size_t len)
{
    if (b->len == len && (len == 0 || memcmp(b->p, p, len) == 0))
        return true;
    fprintf(stderr, "mismatch: %s\n", what);
    print_hex("expected", b->p, b->len);
    print_hex("got     ", p, len);
    return false;
}

uint64_t vec_uint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        fprintf(stderr, "vector field %s missing or not an unsigned integer\n", key);
        exit(2);
    }
    return (uint64_t)json_integer_value(v);
}

int vec_report(const char *file, unsigned passed, unsigned total)
{
    printf("%s: %u/%u entries passed\n", file, passed, total);
    return passed == total && total > 0 ? 0 : 1;
}

int vec_run(const char *relpath, const char *label, uint64_t suite, vec_check_fn check, void *ctx)
{
    json_t *root = vec_load(relpath);
    unsigned passed = 0, total = 0;
    size_t i;
    json_t *e;

    if (!label)
        label = relpath;
    if (!json_is_array(root)) {
        fprintf(stderr, "%s: not a JSON array\n", relpath);
        exit(2);
    }
    json_array_foreach(root, i, e) {
        if (suite != VEC_ANY_SUITE && vec_uint(e, "cipher_suite") != suite)
            continue;
        total++;
        if (check(i, e, ctx))
            passed++;
        else
            fprintf(stderr, "%s entry %zu failed\n", label, i);
    }
    json_decref(root);
    return vec_report(label, passed, total);
}
