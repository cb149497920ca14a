/*
 * test_disk_full_threads.c: a thread message whose COMMIT fails (the disk
 * refuses writes: RLIMIT_FSIZE set on the running server with prlimit(2),
 * SIGXFSZ ignored, as in test_disk_full.c) against the real server with
 * real MLS. The sender gets `internal`, the other member is told nothing
 * (events wait for the COMMIT like answers), and once the disk takes writes
 * again the member receives the messages acknowledged before and after but
 * never the refused one, nor after a restart.
 */
#include "it.h"

#include <signal.h>
#include <stdlib.h>

#define DOMAIN "diskthreads.test"
#include "threads_it.h"

static void refused_message(void **state)
{
    struct st *s = *state;
    char code[64], thread[40], gid[MSG_GRANT_GID_LEN + 1], err[32];
    struct client_frame r;
    struct seen sn;

    enroll(s, &s->admin, s->ts.admin_code);
    {
        const char *kv[] = {"name", "hjemmepleje", NULL};
        it_ok(s->admin.c, "admin.department.add", kv, NULL, NULL, 0);
    }
    invite(s, "citizen", "karen", NULL, code, sizeof(code));
    enroll(s, &s->karen, code);
    invite(s, "staff", "mette", "hjemmepleje", code, sizeof(code));
    enroll(s, &s->mette, code);
    fetch_server_key(s, &s->karen);
    create_thread(s, &s->karen, "karen", thread, NULL);
    upload_kps(&s->mette, 1);
    grant(s, &s->karen, "department:hjemmepleje@" DOMAIN, "care", gid);
    /* the grant's external Add: karen commits it, mette joins */
    admit(&s->karen, &s->mette, thread);

    assert_int_equal(send_app(&s->karen, thread, "before", NULL, err, sizeof(err)), 0);
    sync_party(&s->mette, thread, &sn);
    assert_int_equal(sn.apps, 1);
    assert_string_equal(sn.last_app, "before");
    /* drain whatever events the above produced */
    while (client_sync_event(s->mette.c, 300, &r) == 0)
        client_frame_free(&r);

    rlim_t before;
    assert_int_equal(testserver_set_fsize(&s->ts, 4096, &before), 0);
    assert_int_not_equal(send_app(&s->karen, thread, "refused", NULL, err, sizeof(err)), 0);
    assert_string_equal(err, "internal");
    assert_int_equal(client_sync_closed(s->karen.c, IT_TIMEOUT), 0);
    client_conn_free(s->karen.c);
    /* nothing reaches mette for a message that is not on disk */
    assert_int_not_equal(client_sync_event(s->mette.c, 500, &r), 0);
    /* reads go on: the thread's members */
    {
        struct arg a[] = {{.key = "thread", .str = thread}};
        call_ok(s->mette.c, "thread.members", a, 1, &r);
        client_frame_free(&r);
    }

    assert_int_equal(testserver_set_fsize(&s->ts, before, NULL), 0);
    s->karen.c = it_login(s->ctx, s->ts.url, s->karen.id, s->karen.seed);
    assert_int_equal(send_app(&s->karen, thread, "after", NULL, err, sizeof(err)), 0);
    sync_party(&s->mette, thread, &sn);
    assert_int_equal(sn.apps, 1);
    assert_string_equal(sn.last_app, "after");

    /* after a restart nothing more comes: the refused one is not there */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
    client_conn_free(s->karen.c);
    client_conn_free(s->mette.c);
    s->karen.c = NULL;
    assert_int_equal(testserver_start(&s->ts), 0);
    s->mette.c = it_login(s->ctx, s->ts.url, s->mette.id, s->mette.seed);
    sync_party(&s->mette, thread, &sn);
    assert_int_equal(sn.apps, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_message),
    };
    /* inherited by the server setup() starts */
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR)
        return 1;
    return cmocka_run_group_tests(tests, setup, teardown);
}
