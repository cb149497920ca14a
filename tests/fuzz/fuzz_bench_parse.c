/*
 * fuzz_bench_parse.c: the decoders of sammen-bench (clients/bench), which
 * is a program, not a library, so its two small parser files are compiled
 * in here. The first input byte picks the decoder, the rest is its input:
 *   0  bench_mls_read_marker   (a pushed PrivateMessage's header)
 *   1  bench_mls_kpfile_parse  (the KeyPackage stock file; each record is
 *                               also given to mls_kp_load)
 *   2  bench_proc_parse_stat   (/proc/PID/stat text)
 *   3  bench_proc_parse_status (/proc/PID/status text, key "VmRSS")
 * Each must stay within its input and never crash, whatever the bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../clients/bench/bench_mls.c"
#include "../../clients/bench/bench_proc.c"
#include "mls_kp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    switch (data[0] & 3) {
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
    default: {
        uint64_t kib;
        (void)bench_proc_parse_status((const char *)p, n, "VmRSS", &kib);
        break;
    }
    }
    return 0;
}
