/*
 * test_client_ack.c: the client library acknowledges with notifications
 * (client_dev_ack, PROTOCOL.md "Envelope"), against the real server with
 * real MLS: karen's and ole's devices run the library's sync engine
 * (client_thread.c), as the CLI does.
 *
 * What a device sees when it works: client_thread_sync() queues one `ack`
 * without an id and nothing answers it (every request the connection sent
 * got exactly one response, the ack none); the ack counts all the same:
 * karen gets the `delivered` event and thread.status counts the message.
 * An ack past the last entry is no error (the server acknowledges only up
 * to the last entry it handed out, so a later message still waits for one).
 * When an ack is refused (an ack without seq on ole's session; an ack on a
 * connection that is not logged in) the error comes back with id 0: it is
 * counted in client_dev_ack_failures() with its code, a request waiting
 * meanwhile still gets its own answer, the connection stays usable, and
 * the next sync acknowledges its cursor again.
 */
#include <sys/stat.h>

#define DOMAIN "clack.test"
#include "threads_it.h"

#include "client_state.h"
#include "client_thread.h"

/* A library device on party p's connection, its state in ts.dir/name. */
static struct client_dev *dev_open(struct st *s, struct party *p, const char *name)
{
    char dir[300];
    struct client_dev *d = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", s->ts.dir, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(client_dev_open(p->c, dir, p->id, p->dev, DOMAIN, p->seed, IT_TIMEOUT, &d),
                     0);
    return d;
}

static void sync_ok(struct client_dev *d, struct client_sync_stats *st)
{
    int rc = client_thread_sync(d, st);
    if (rc != 0)
        fprintf(stderr, "sync: %s (%s %s)\n", err_str(rc), d->err_code, d->err_msg);
    assert_int_equal(rc, 0);
}

static uint64_t delivered_to(struct party *p, const char *thread, uint64_t msg)
{
    uint64_t delivered, devices, undeliverable;
    msg_status(p, thread, msg, &delivered, &devices, &undeliverable);
    assert_int_equal(devices, 1);
    return delivered;
}

static uint64_t send_text(struct client_dev *d, const char *thread, const char *text)
{
    uint64_t message = 0, devices = 0, delivered = 0;
    int rc = client_thread_send(d, thread, (const uint8_t *)text, strlen(text), 0, &message,
                                &devices, &delivered);
    if (rc != 0)
        fprintf(stderr, "send: %s (%s %s)\n", err_str(rc), d->err_code, d->err_msg);
    assert_int_equal(rc, 0);
    assert_int_equal(devices, 1);
    return message;
}

/* Waits for karen's `delivered` event of message msg; its delivered_to. */
static uint64_t delivered_event(struct party *p, const char *thread, uint64_t msg)
{
    for (int i = 0; i < 64; i++) {
        struct client_frame f;
        char t[CLIENT_THREAD_ID_LEN + 1];
        uint64_t m = 0, n = 0;
        bool hit;
        if (client_sync_event(p->c, IT_TIMEOUT, &f) != 0)
            return 0;
        hit = strcmp(f.msg.name, "delivered") == 0 &&
              wire_get_cstr(&f.msg.body, "thread", t, sizeof(t)) == 0 &&
              strcmp(t, thread) == 0 && wire_get_uint(&f.msg.body, "message", &m) == 0 &&
              m == msg && wire_get_uint(&f.msg.body, "delivered_to", &n) == 0;
        client_frame_free(&f);
        if (hit)
            return n;
    }
    return 0;
}

static void whoami(struct client_conn *c)
{
    struct client_frame r;
    call_ok(c, "whoami", NULL, 0, &r);
    client_frame_free(&r);
}

struct answer {
    bool got;
    int rc;
};

static void on_answer(struct client_conn *c, const struct client_frame *resp, int rc, void *user)
{
    struct answer *a = user;
    (void)c;
    a->got = true;
    a->rc = resp ? rc : ERR_IO;
}

static void library_acks(void **state)
{
    struct st *s = *state;
    char thread[CLIENT_THREAD_ID_LEN + 1], gid[MSG_GRANT_GID_LEN + 1];
    struct client_dev *kd, *od;
    struct client_sync_stats st;
    struct client_conn_counts before, after;
    uint64_t cursor;

    enroll_karen_ole(s);
    kd = dev_open(s, &s->karen, "karen");
    od = dev_open(s, &s->ole, "ole");
    assert_int_equal(client_thread_kp_stock(od, NULL), 0);

    /* karen's thread; ole granted, added by karen's sync, joins by his */
    assert_int_equal(client_thread_create(kd, "karen", "care", "Karens pleje", thread), 0);
    grant_thread(s, &s->karen, "ole@" DOMAIN, thread, gid);
    sync_ok(kd, &st);
    assert_int_equal(st.commits, 1);
    sync_ok(od, &st);
    assert_int_equal(st.welcomes, 1);

    /* a message: ole's sync acknowledges it with one notification and no
     * answer; every request of the sync (and whoami after it) got one */
    uint64_t m1 = send_text(kd, thread, "hej Ole");
    assert_int_equal(delivered_to(&s->karen, thread, m1), 0);
    client_conn_counts(s->ole.c, &before);
    sync_ok(od, &st);
    assert_int_equal(st.apps, 1);
    whoami(s->ole.c); /* answered after the server read the ack */
    client_conn_counts(s->ole.c, &after);
    assert_int_equal(after.notes - before.notes, 1);
    assert_true(after.requests - before.requests >= 2); /* sync, whoami */
    assert_int_equal(after.responses - before.responses, after.requests - before.requests);
    assert_int_equal(after.note_errors, 0);
    assert_int_equal(client_conn_pending(s->ole.c), 0);
    assert_int_equal(client_dev_ack_failures(od), 0);
    /* the ack counts: karen's event and thread.status */
    assert_int_equal(delivered_event(&s->karen, thread, m1), 1);
    assert_int_equal(delivered_to(&s->karen, thread, m1), 1);
    {
        uint8_t *text = NULL;
        size_t len = 0;
        assert_int_equal(client_thread_message(od, thread, m1, &text, &len), 0);
        assert_int_equal(len, strlen("hej Ole"));
        assert_memory_equal(text, "hej Ole", len);
        free(text);
    }

    /* a sync with nothing new sends no ack */
    client_conn_counts(s->ole.c, &before);
    sync_ok(od, &st);
    assert_int_equal(st.entries, 0);
    client_conn_counts(s->ole.c, &after);
    assert_int_equal(after.notes, before.notes);

    /* an ack past the last entry is no error, and does not cover the next
     * message: the server acknowledged only up to the last entry */
    assert_int_equal(client_state_get_u64(od->st, "meta", "cursor", 0, &cursor), 0);
    assert_true(cursor > 0);
    assert_int_equal(client_dev_ack(od, cursor + 1000), 0);
    whoami(s->ole.c);
    assert_int_equal(client_dev_ack_failures(od), 0);
    uint64_t m2 = send_text(kd, thread, "vi ses");
    assert_int_equal(delivered_to(&s->karen, thread, m2), 0);
    sync_ok(od, &st);
    assert_int_equal(st.apps, 1);
    whoami(s->ole.c);
    assert_int_equal(delivered_to(&s->karen, thread, m2), 1);

    /* a refused ack on ole's session (no seq): reported with id 0, then
     * the next sync acknowledges again although nothing new came */
    {
        struct wire_enc e;
        const uint8_t *data;
        size_t len;
        wire_enc_init(&e);
        wire_enc_note(&e, "ack", 0);
        assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
        assert_int_equal(client_conn_notify(s->ole.c, data, len), 0);
        wire_enc_reset(&e);
    }
    client_conn_counts(s->ole.c, &before);
    sync_ok(od, &st); /* the refusal arrives before the sync's answer */
    assert_int_equal(st.entries, 0);
    assert_int_equal(client_dev_ack_failures(od), 1);
    assert_string_equal(od->ack_err_code, "bad_request");
    assert_true(strstr(od->ack_err_msg, "seq") != NULL);
    client_conn_counts(s->ole.c, &after);
    assert_int_equal(after.note_errors, 1);
    assert_int_equal(after.notes - before.notes, 1); /* acknowledged again */
    whoami(s->ole.c);
    assert_int_equal(client_dev_ack_failures(od), 1); /* the repeat was accepted */
    assert_false(od->ack_due);
    /* the session carries on */
    uint64_t m3 = send_text(kd, thread, "farvel");
    sync_ok(od, &st);
    assert_int_equal(st.apps, 1);
    whoami(s->ole.c);
    assert_int_equal(delivered_to(&s->karen, thread, m3), 1);

    /* an ack on a connection that is not logged in: unauthenticated, with
     * id 0; a request sent right after it gets its own answer */
    {
        struct client_conn *anon = it_open(s->ctx, s->ts.url);
        struct client_dev *xd = NULL;
        struct answer a = {0};
        struct wire_enc e;
        const uint8_t *data;
        size_t len;
        char dir[300];
        uint32_t id = client_conn_next_id(anon);

        snprintf(dir, sizeof(dir), "%s/anon", s->ts.dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(client_dev_open(anon, dir, s->ole.id, s->ole.dev, DOMAIN, s->ole.seed,
                                         IT_TIMEOUT, &xd),
                         0);
        assert_int_equal(client_dev_ack(xd, 1), 0);
        wire_enc_init(&e);
        wire_enc_request(&e, id, "ping", 0);
        assert_int_equal(wire_enc_finish(&e, &data, &len), 0);
        assert_int_equal(client_conn_send(anon, id, data, len, on_answer, &a), 0);
        wire_enc_reset(&e);
        int64_t until = client_sync_now_ms() + IT_TIMEOUT;
        while (!a.got && client_sync_now_ms() < until)
            assert_int_equal(client_ctx_service(s->ctx, 20), 0);
        assert_true(a.got);
        assert_int_equal(a.rc, 0); /* ping's own answer, not the refusal */
        assert_int_equal(client_dev_ack_failures(xd), 1);
        assert_string_equal(xd->ack_err_code, "unauthenticated");
        assert_int_equal(client_conn_state(anon), CLIENT_OPEN);
        {
            struct client_frame r;
            call_ok(anon, "ping", NULL, 0, &r);
            client_frame_free(&r);
        }
        client_dev_free(xd);
        client_conn_free(anon);
    }

    client_dev_free(kd);
    client_dev_free(od);
}

/* Closing right after a sync: the queued ack notification is written
 * before the close, so it counts although nobody waited for it. */
static void ack_sent_before_close(void **state)
{
    struct st *s = *state;
    char thread[CLIENT_THREAD_ID_LEN + 1], gid[MSG_GRANT_GID_LEN + 1];
    struct client_dev *kd, *od;
    struct client_sync_stats st;

    enroll_karen_ole(s);
    kd = dev_open(s, &s->karen, "karen");
    od = dev_open(s, &s->ole, "ole");
    assert_int_equal(client_thread_kp_stock(od, NULL), 0);
    assert_int_equal(client_thread_create(kd, "karen", "care", "Karens pleje", thread), 0);
    grant_thread(s, &s->karen, "ole@" DOMAIN, thread, gid);
    sync_ok(kd, &st);
    sync_ok(od, &st);
    assert_int_equal(st.welcomes, 1);
    uint64_t m1 = send_text(kd, thread, "hej Ole");

    sync_ok(od, &st);
    assert_int_equal(st.apps, 1);
    client_conn_close(s->ole.c);
    assert_int_equal(client_sync_closed(s->ole.c, IT_TIMEOUT), 0);
    assert_int_equal(delivered_event(&s->karen, thread, m1), 1);
    assert_int_equal(delivered_to(&s->karen, thread, m1), 1);
    client_dev_free(od);
    client_dev_free(kd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(library_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(ack_sent_before_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
