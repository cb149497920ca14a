/*
 * fuzz_bench_parse.c: the decoders of sammen-bench (clients/bench), which
 * is a program, not a library, so its two small parser files are compiled
 * in here. The first input byte picks the decoder, the rest is its input:
 *   0  bench_mls_read_marker   (a pushed PrivateMessage's header)
 *   1  bench_mls_kpfile_parse  (the KeyPackage stock file; each record is
 *                               also given to mls_kp_load)
 *   2  bench_proc_parse_stat   (/proc/PID/stat text)
 *   3  bench_proc_parse_status (/proc/PID/status text, key "VmRSS")
 *   4  bench_entry_parse       (a pushed `entry` event, the fast path of
 *                               every delivery): whatever it accepts,
 *                               wire_decode() must accept too, as an
 *                               `entry` event with the same seq, thread,
 *                               kind and data (else abort)
 * (the first byte modulo 5). Each must stay within its input and never
 * crash, whatever the bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../clients/bench/bench_mls.c"
#include "../../clients/bench/bench_parse.c"
#include "../../clients/bench/bench_proc.c"
#include "mls_kp.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const void *a, size_t al, const void *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* bench_entry_parse() accepted p[0..n) as e: the general decoder must agree. */
static void check_entry(const uint8_t *p, size_t n, const struct bench_entry *e)
{
    struct wire_msg m;
    uint64_t seq;
    const char *s;
    const uint8_t *b;
    size_t l;

    if ((e->thread_len && ((const uint8_t *)e->thread < p || (const uint8_t *)e->thread + e->thread_len > p + n)) ||
        (e->kind_len && ((const uint8_t *)e->kind < p || (const uint8_t *)e->kind + e->kind_len > p + n)) ||
        (e->data_len && (e->data < p || e->data + e->data_len > p + n)))
        abort(); /* a view outside the input */
    if (wire_decode(p, n, &m) != 0 || m.kind != WIRE_EVENT || strcmp(m.name, "entry") != 0)
        abort();
    if (wire_get_uint(&m.body, "seq", &seq) != 0 || seq != e->seq)
        abort();
    if (wire_get_str(&m.body, "thread", &s, &l) != 0 || !same(s, l, e->thread, e->thread_len))
        abort();
    if (wire_get_str(&m.body, "kind", &s, &l) != 0 || !same(s, l, e->kind, e->kind_len))
        abort();
    if (wire_get_bin(&m.body, "data", &b, &l) != 0 || !same(b, l, e->data, e->data_len))
        abort();
    wire_msg_free(&m);
}

static int record(const uint8_t *rec, size_t n, void *arg)
{
    struct mls_kp *kp = NULL;
    size_t *count = arg;
    if (mls_kp_load(rec, n, &kp) == 0)
        mls_kp_free(kp);
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: {
        uint16_t sender;
        uint32_t counter;
        if (bench_mls_read_marker(p, n, &sender, &counter) == 0) {
            /* a marker read back is the one that was written */
            uint8_t mk[BENCH_MARKER_LEN];
            bench_mls_marker(sender, counter, mk);
            if (mk[0] != 'S' || mk[1] != 'B')
                abort();
        }
        break;
    }
    case 1: {
        size_t count = 0;
        (void)bench_mls_kpfile_parse(p, n, record, &count);
        if (count > n / 5 + 1)
            abort(); /* every record takes at least 5 bytes */
        break;
    }
    case 2: {
        uint64_t u, s;
        (void)bench_proc_parse_stat((const char *)p, n, &u, &s);
        break;
    }
    case 3: {
        uint64_t kib;
        (void)bench_proc_parse_status((const char *)p, n, "VmRSS", &kib);
        break;
    }
    default: {
        struct bench_entry e;
        int rc = bench_entry_parse(p, n, &e);
        if (rc == 0)
            check_entry(p, n, &e);
        else if (rc != ERR_NOT_FOUND)
            abort();
        break;
    }
    }
    return 0;
}
