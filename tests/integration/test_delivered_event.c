/*
 * test_delivered_event.c: the sender's `delivered` events (PROTOCOL.md
 * "Events") against the real server with real MLS.
 *
 * What the sender sees when it works: for each of its application
 * messages a recipient acknowledged, an event {thread, message,
 * delivered_to, devices} with the number of recipient devices that have it
 * and the number it was sent to; messages stored while the server keeps
 * the thread's pending list in memory (the second and later ones: the
 * server appends them to the list, deliver.c thr_note_insert) are counted
 * exactly as the first. A recipient's ack past the sender's messages does
 * not count its own (ole's message is not "delivered" by ole's ack).
 */
#include <signal.h>

#define DOMAIN "delivered.test"
#include "threads_it.h"

struct dlv {
    uint64_t delivered_to, devices;
    bool seen;
};

/* Reads p's events until every message in want[0..n) had a `delivered`
 * event of thread (or 64 events / a 2 s silence); the last of each wins. */
static void wait_delivered(struct party *p, const char *thread, const uint64_t *want, size_t n,
                           struct dlv *out)
{
    memset(out, 0, n * sizeof(*out));
    for (int i = 0; i < 64; i++) {
        size_t have = 0;
        for (size_t j = 0; j < n; j++)
            have += out[j].seen;
        if (have == n)
            return;
        struct client_frame f;
        if (client_sync_event(p->c, 2000, &f) != 0)
            return;
        char t[64];
        uint64_t msg;
        if (strcmp(f.msg.name, "delivered") == 0 &&
            wire_get_cstr(&f.msg.body, "thread", t, sizeof(t)) == 0 && strcmp(t, thread) == 0 &&
            wire_get_uint(&f.msg.body, "message", &msg) == 0) {
            for (size_t j = 0; j < n; j++) {
                if (want[j] != msg)
                    continue;
                assert_int_equal(wire_get_uint(&f.msg.body, "delivered_to", &out[j].delivered_to),
                                 0);
                assert_int_equal(wire_get_uint(&f.msg.body, "devices", &out[j].devices), 0);
                out[j].seen = true;
            }
        }
        client_frame_free(&f);
    }
}

static void ack(struct party *p, uint64_t seq)
{
    struct client_frame r;
    struct arg a[] = {{.key = "seq", .is_uint = true, .u = seq}};
    call_ok(p->c, "ack", a, 1, &r);
    client_frame_free(&r);
    p->after = seq;
}

static void delivered_events(void **state)
{
    struct st *s = *state;
    char thread[40], gid[MSG_GRANT_GID_LEN + 1];
    struct seen sn;
    struct dlv d[2];

    enroll_karen_ole(s);
    upload_kps(&s->ole, 2);
    create_thread(s, &s->karen, "karen", thread, NULL);
    grant_thread(s, &s->karen, "ole@" DOMAIN, thread, gid);
    admit(&s->karen, &s->ole, thread);
    sync_party(&s->karen, thread, &sn);

    /* the first message: ole's ack reaches karen as delivered_to 1 of 1 */
    uint64_t m1 = sent_message(&s->karen, thread, "hej Ole");
    ack(&s->ole, last_entry(&s->ole));
    wait_delivered(&s->karen, thread, &m1, 1, d);
    assert_true(d[0].seen);
    assert_int_equal(d[0].delivered_to, 1);
    assert_int_equal(d[0].devices, 1);

    /* two more, stored while the thread's pending list is in memory, and
     * one ack for both: each counted 1 of 1 */
    uint64_t m[2];
    m[0] = sent_message(&s->karen, thread, "to");
    m[1] = sent_message(&s->karen, thread, "tre");
    assert_int_equal(m[1], m[0] + 1);
    ack(&s->ole, last_entry(&s->ole));
    wait_delivered(&s->karen, thread, m, 2, d);
    for (int i = 0; i < 2; i++) {
        assert_true(d[i].seen);
        assert_int_equal(d[i].delivered_to, 1);
        assert_int_equal(d[i].devices, 1);
    }

    /* ole writes; ole's own ack past it does not deliver it, karen's does */
    uint64_t mo = sent_message(&s->ole, thread, "tak");
    ack(&s->ole, last_entry(&s->ole));
    {
        uint64_t delivered = 9, devices = 9, undeliverable = 9;
        msg_status(&s->ole, thread, mo, &delivered, &devices, &undeliverable);
        assert_int_equal(delivered, 0);
        assert_int_equal(devices, 1);
    }
    ack(&s->karen, last_entry(&s->karen));
    wait_delivered(&s->ole, thread, &mo, 1, d);
    assert_true(d[0].seen);
    assert_int_equal(d[0].delivered_to, 1);
    assert_int_equal(d[0].devices, 1);

    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(delivered_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
