/*
 * vectors.h: helpers for known-answer tests on the official vectors.
 *
 * Vector files are read from SAMMEN_SHARED_DIR (../shared beside the
 * checkout, or the SAMMEN_SHARED_DIR environment variable); never copied.
 */
#ifndef SAMMEN_TEST_VECTORS_H
#define SAMMEN_TEST_VECTORS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Loads e.g. "mls-test-vectors/tree-math.json". Aborts the test program
 * with a message if the file is missing or is not JSON. Caller json_decref()s. */
json_t *vec_load(const char *relpath);

/* A byte string decoded from hex. */
struct vec_bytes {
    uint8_t *p;
    size_t len;
};

/* Decodes the hex string field `key` of `obj` into *out (caller frees with
 * vec_bytes_free). Returns false when absent, not a string or not hex. */
bool vec_hex(const json_t *obj, const char *key, struct vec_bytes *out);
/* Same for a JSON string value. */
bool vec_hex_value(const json_t *str, struct vec_bytes *out);
void vec_bytes_free(struct vec_bytes *b);
/* True when b equals the len bytes at p. On a mismatch prints both in hex,
 * labelled with what. */
bool vec_eq(const char *what, const struct vec_bytes *b, const uint8_t *p, size_t len);

/* Integer field; aborts if missing. */
uint64_t vec_uint(const json_t *obj, const char *key);

/* Prints "<file>: <passed>/<total> entries passed" (the per-file count the
 * issues ask for) and returns 0 when all passed, 1 otherwise. */
int vec_report(const char *file, unsigned passed, unsigned total);

/* Every cipher suite's entries, for vec_run. */
#define VEC_ANY_SUITE 0
/* MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, the one we implement. */
#define VEC_SUITE_3 3

/* One entry's check for vec_run: true when entry `index` passed. ctx is
 * vec_run's, for counts a test wants to print. */
typedef bool (*vec_check_fn)(size_t index, const json_t *entry, void *ctx);

/* The known-answer loop: loads relpath (vec_load), calls check on each
 * entry of its top-level array (only those whose "cipher_suite" is suite,
 * unless suite is VEC_ANY_SUITE), prints "<label> entry <i> failed" for
 * each failure and the count line of vec_report under label (relpath when
 * label is NULL). Returns vec_report's value: 0 when every checked entry
 * passed and there was at least one, 1 otherwise. */
int vec_run(const char *relpath, const char *label, uint64_t suite, vec_check_fn check,
            void *ctx);

#endif
