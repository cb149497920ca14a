/*
 * fuzz_client_sync.c: the client's sync engine on what a hostile server
 * can send: the input is the `ok` map of a `sync` answer (msgpack), handed
 * to client_thread_ingest() on a device holding one group (a thread it
 * created) and two KeyPackages in a fresh encrypted state. Entries of every
 * kind reach the MLS group (handshake, app), the Welcome path (join with
 * the stored KeyPackages), the notice decoder, and the history store. The
 * input must be refused or processed without crashing, leaking or
 * overrunning; the cursor never moves backwards.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "client_state.h"
#include "client_thread.h"
#include "err.h"
#include "keys_id.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define THREAD "t_00112233445566778899aabbccddeeff"

static char dir[64];
static uint8_t seed[32];

static void cleanup(void)
{
    char p[128];

    snprintf(p, sizeof(p), "%s/%s", dir, CLIENT_STATE_FILE);
    unlink(p);
    snprintf(p, sizeof(p), "%s/%s-journal", dir, CLIENT_STATE_FILE);
    unlink(p);
    rmdir(dir);
}

static void fresh_state(void)
{
    char p[128];

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/sammen-fuzz-sync-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
        for (int i = 0; i < 32; i++)
            seed[i] = (uint8_t)(i * 7 + 1);
    }
    snprintf(p, sizeof(p), "%s/%s", dir, CLIENT_STATE_FILE);
    unlink(p);
}

/* A group the device created, saved under THREAD, and two KeyPackages. */
static void seed_state(struct client_dev *d)
{
    uint8_t pub[32], ident[MLS_KP_MAX_IDENTITY], *b = NULL;
    size_t il, bl = 0;
    struct mls_kp *kp = NULL;
    struct mls_group *g = NULL;

    if (keys_id_public(seed, pub) != 0 ||
        mls_kp_identity("fuzz@f.test", pub, ident, sizeof(ident), &il) != 0 ||
        mls_kp_create(ident, il, seed, 0, UINT64_MAX / 2, &kp) != 0 ||
        mls_group_create((const uint8_t *)"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc"
                                          "\xdd\xee\xff",
                         16, kp, NULL, MLS_GROUP_F_PLAIN_MEMORY, &g) != 0 ||
        mls_group_save(g, &b, &bl) != 0 ||
        client_state_put(d->st, "group", THREAD, THREAD, 0, 0, b, bl) != 0)
        abort();
    free(b);
    b = NULL;
    if (mls_kp_save(kp, &b, &bl) != 0)
        abort();
    {
        uint8_t *v = malloc(bl + 1);
        if (!v)
            abort();
        v[0] = 0;
        memcpy(v + 1, b, bl);
        if (client_state_put(d->st, "kp", "k1", NULL, 0, 0, v, bl + 1) != 0)
            abort();
        v[0] = 1;
        if (client_state_put(d->st, "kp", "k2", NULL, 0, 0, v, bl + 1) != 0)
            abort();
        free(v);
    }
    free(b);
    mls_group_free(g);
    mls_kp_free(kp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct client_dev *d = NULL;
    struct client_sync_stats s;
    msgpack_unpacked up;
    size_t off = 0;
    uint64_t cursor = 0;
    unsigned got = 0;
    bool more = false;

    if (!init) {
        if (sodium_init() < 0)
            abort();
        init = true;
    }
    if (size > 65536 || wire_check(data, size) != 0)
        return 0;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&up);
        return 0;
    }
    fresh_state();
    if (client_dev_open(NULL, dir, "fuzz@f.test", "d_0000000000000000", "f.test", seed, 1000,
                        &d) != 0)
        abort();
    seed_state(d);
    memset(&s, 0, sizeof(s));
    {
        struct wire_map m = {up.data.via.map.ptr, up.data.via.map.size};
        (void)client_thread_ingest(d, &m, &cursor, &more, &got, &s);
    }
    if (got > s.entries)
        __builtin_trap();
    {
        uint64_t stored = 0;
        if (client_state_get_u64(d->st, "meta", "cursor", 0, &stored) != 0 || stored > cursor)
            __builtin_trap();
    }
    client_dev_free(d);
    msgpack_unpacked_destroy(&up);
    return 0;
}
