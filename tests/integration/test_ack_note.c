/*
 * test_ack_note.c: `ack` as a notification (a request without an id,
 * PROTOCOL.md "Envelope") against the real server with real MLS.
 *
 * What a device sees when it works: it sends {v, op: "ack", args: {seq}}
 * with no id; nothing comes back (the answer to its next request is the
 * next frame it gets), and the ack took effect: the sender's
 * thread.status counts the message as delivered to it.
 * When it is misused: another op sent without an id, an ack without seq,
 * an unknown op, or a notification before login each get an error
 * response with id 0 (bad_request, bad_request, unknown_op,
 * unauthenticated) and the connection stays usable; a notification whose
 * args are not a map cannot be trusted and closes the connection.
 */
#include <signal.h>

#define DOMAIN "note.test"
#include "threads_it.h"

/* An id-0 answer, as the client library reports it
 * (client_conn_note_errors: such an answer never completes a request). */
struct caught {
    struct client_conn *c;
    size_t before;
    bool got;
    char code[72];
};

/* Fills k->got / k->code from the connection's id-0 errors since
 * send_note(). */
static void look(struct caught *k)
{
    struct client_note_error last;
    size_t n = client_conn_note_errors(k->c, &last);
    k->got = n > k->before;
    if (k->got)
        snprintf(k->code, sizeof(k->code), "%s", last.code);
}

/* Sends the notification op {key: val} (no args when key is NULL) without
 * an id, watching for an id-0 answer in *k. */
static void send_note(struct client_conn *c, const char *op, const char *key, uint64_t val,
                      struct caught *k)
{
    struct wire_enc e;
    const uint8_t *data;
    size_t len;
    memset(k, 0, sizeof(*k));
    k->c = c;
    k->before = client_conn_note_errors(c, NULL);
    wire_enc_init(&e);
    wire_enc_note(&e, op, key ? 1 : 0);
    if (key)
        wire_kv_uint(&e, key, val);
    assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
    assert_int_equal(client_conn_notify(c, data, len), 0);
    wire_enc_reset(&e);
}

/* Serves the connection until *k got its answer (or 5 s). */
static void wait_caught(struct st *s, struct caught *k)
{
    int64_t until = client_sync_now_ms() + IT_TIMEOUT;
    look(k);
    while (!k->got && client_sync_now_ms() < until) {
        (void)client_ctx_service(s->ctx, 20);
        look(k);
    }
}

/* A request that must still be answered: the connection is usable. */
static void still_usable(struct party *p)
{
    struct client_frame r;
    call_ok(p->c, "whoami", NULL, 0, &r);
    client_frame_free(&r);
}

/* How many devices have message msg, as karen's thread.status says. */
static uint64_t delivered_to(struct party *p, const char *thread, uint64_t msg)
{
    uint64_t delivered, devices, undeliverable;
    msg_status(p, thread, msg, &delivered, &devices, &undeliverable);
    return delivered;
}

static void ack_as_notification(void **state)
{
    struct st *s = *state;
    char err[32], thread[40], gid[MSG_GRANT_GID_LEN + 1];
    struct client_frame r;
    struct caught k;

    enroll_karen_ole(s);
    upload_kps(&s->ole, 2);

    /* karen's thread; ole admitted (the server's external Add, committed
     * with a Welcome) and caught up with the request form of ack */
    create_thread(s, &s->karen, "karen", thread, NULL);
    grant_thread(s, &s->karen, "ole@" DOMAIN, thread, gid);
    admit(&s->karen, &s->ole, thread);

    /* a message; ole has it but has not acknowledged it */
    uint64_t m1 = sent_message(&s->karen, thread, "hej Ole");
    assert_int_equal(delivered_to(&s->karen, thread, m1), 0);
    uint64_t seq = last_entry(&s->ole);
    assert_true(seq > s->ole.after);

    /* the notification: no answer (whoami's answer comes, and nothing with
     * id 0 before it), and the ack counts */
    send_note(s->ole.c, "ack", "seq", seq, &k);
    still_usable(&s->ole);
    look(&k);
    assert_false(k.got);
    assert_int_equal(delivered_to(&s->karen, thread, m1), 1);
    s->ole.after = seq;

    /* a second message acknowledged the same way, then a write request:
     * its answer (held until the COMMIT) still comes with nothing before */
    uint64_t m2 = sent_message(&s->karen, thread, "vi ses");
    seq = last_entry(&s->ole);
    send_note(s->ole.c, "ack", "seq", seq, &k);
    {
        struct arg a[] = {{.key = "seq", .is_uint = true, .u = seq}};
        call_ok(s->ole.c, "ack", a, 1, &r);
        client_frame_free(&r);
    }
    look(&k);
    assert_false(k.got);
    assert_int_equal(delivered_to(&s->karen, thread, m2), 1);

    /* misuse: each answered with id 0, the connection stays */
    send_note(s->ole.c, "thread.list", NULL, 0, &k);
    wait_caught(s, &k);
    assert_true(k.got);
    assert_string_equal(k.code, "bad_request");
    still_usable(&s->ole);

    send_note(s->ole.c, "ack", NULL, 0, &k); /* no seq */
    wait_caught(s, &k);
    assert_true(k.got);
    assert_string_equal(k.code, "bad_request");
    still_usable(&s->ole);

    send_note(s->ole.c, "no.such.op", NULL, 0, &k);
    wait_caught(s, &k);
    assert_true(k.got);
    assert_string_equal(k.code, "unknown_op");
    still_usable(&s->ole);

    /* before login */
    {
        struct client_conn *anon = it_open(s->ctx, s->ts.url);
        send_note(anon, "ack", "seq", 1, &k);
        wait_caught(s, &k);
        assert_true(k.got);
        assert_string_equal(k.code, "unauthenticated");
        call_ok(anon, "ping", NULL, 0, &r);
        client_frame_free(&r);
        client_conn_free(anon);
    }

    /* the thread carries on: karen's next message still reaches ole */
    {
        uint64_t devices = 0;
        assert_int_equal(send_app(&s->karen, thread, "farvel", &devices, err, sizeof(err)), 0);
        assert_int_equal(devices, 1);
    }

    /* args that are not a map: malformed, and the connection closes */
    {
        static const uint8_t bad[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa3, 'a', 'c', 'k',
                                      0xa4, 'a', 'r', 'g', 's', 0x01};
        assert_int_equal(client_conn_send_raw(s->ole.c, bad, sizeof(bad)), 0);
        assert_int_equal(client_sync_closed(s->ole.c, IT_TIMEOUT), 0);
    }
    /* a clean stop: under the sanitizers this also checks for leaks */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ack_as_notification, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
