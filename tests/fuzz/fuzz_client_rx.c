/*
 * fuzz_client_rx.c: the client library's receive path (what a hostile
 * server can make the client do). Each input is a sequence of messages,
 * each prefixed by a 2-byte big-endian length, fed to an offline
 * connection that has three requests pending (ids 1, 2, 3). Responses must
 * reach their callbacks at most once, events queue up to their bound, and
 * everything is freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct client_ctx *ctx;

static void on_resp(struct client_conn *c, const struct client_frame *resp, int rc, void *user)
{
    int *calls = user;
    (void)c;
    (void)rc;
    if (resp && resp->msg.kind != WIRE_RESPONSE)
        __builtin_trap();
    (*calls)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct client_conn *c = NULL;
    struct client_frame ev;
    int calls[3] = {0, 0, 0};
    static const uint8_t dummy[1] = {0x80};

    if (!ctx && client_ctx_new(NULL, &ctx) != 0)
        abort();
    if (client_conn_new_offline(ctx, NULL, NULL, &c) != 0)
        return 0;
    for (uint32_t id = 1; id <= 3; id++)
        if (client_conn_send(c, id, dummy, sizeof(dummy), on_resp, &calls[id - 1]) != 0)
            abort();
    while (size >= 2) {
        size_t len = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        if (client_conn_receive(c, data, len) != 0)
            break;
        data += len;
        size -= len;
    }
    for (int i = 0; i < 3; i++)
        if (calls[i] > 1)
            __builtin_trap();
    while (client_conn_pop_event(c, &ev) == 0) {
        if (ev.msg.kind != WIRE_EVENT)
            __builtin_trap();
        client_frame_free(&ev);
    }
    /* what is still pending fails now, once */
    client_conn_free(c);
    for (int i = 0; i < 3; i++)
        if (calls[i] != 1)
            __builtin_trap();
    return 0;
}
