/*
 * test_thread_cache.c: the server's follower cache (server/thread.c) against
 * the real server with real MLS. A refused thread.commit changes the cached
 * follower before it is refused (the follower applies the commit, then the
 * server finds the Welcome missing or the GroupInfo wrong) and its
 * transaction is rolled back to the request's savepoint: the cache must
 * then hold exactly what the store holds, so that
 *   - thread.state answers the same epoch and tree as before the refusal,
 *   - the correct commit of the same epoch is accepted afterwards,
 *   - the added member joins and reads an application message.
 * Run twice: with the default cache (the refused thread stays cached
 * between requests) and with --thread-cache 1 while three threads are in
 * use (every switch evicts and reloads from the store).
 */
#include <signal.h>

#define DOMAIN "cache.test"
#include "threads_it.h"

#define NTHREADS 3

struct state_view {
    uint64_t epoch;
    uint8_t *tree;
    size_t tree_len;
};

static void thread_state(struct party *p, const char *thread, struct state_view *v)
{
    struct client_frame r;
    struct arg a[] = {{.key = "thread", .str = thread}};
    const uint8_t *t;
    call_ok(p->c, "thread.state", a, 1, &r);
    assert_int_equal(wire_get_uint(&r.msg.body, "epoch", &v->epoch), 0);
    assert_int_equal(wire_get_bin(&r.msg.body, "tree", &t, &v->tree_len), 0);
    v->tree = malloc(v->tree_len ? v->tree_len : 1);
    assert_non_null(v->tree);
    memcpy(v->tree, t, v->tree_len);
    client_frame_free(&r);
}

static void assert_same_state(const struct state_view *a, const struct state_view *b)
{
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->tree_len, b->tree_len);
    assert_memory_equal(a->tree, b->tree, a->tree_len);
}

static void state_free(struct state_view *v)
{
    free(v->tree);
    v->tree = NULL;
}

/* Touches every thread (thread.state), so that with a cache of one the
 * thread used next is loaded from the store again. */
static void touch_all(struct party *p, char thread[NTHREADS][40])
{
    for (size_t i = 0; i < NTHREADS; i++) {
        struct state_view v;
        thread_state(p, thread[i], &v);
        state_free(&v);
    }
}

static void refused_commit_restores(void **state)
{
    struct st *s = *state;
    char err[32], thread[NTHREADS][40], gid[MSG_GRANT_GID_LEN + 1];
    struct mls_group *kg[NTHREADS];
    struct seen sn;

    enroll_karen_ole(s);
    upload_kps(&s->ole, 2);

    for (size_t i = 0; i < NTHREADS; i++) {
        create_thread(s, &s->karen, "karen", thread[i], NULL);
        kg[i] = s->karen.g;
        s->karen.g = NULL;
    }
    /* the middle thread: ole gets its scope; the server proposes an Add */
    const size_t t = 1;
    grant_thread(s, &s->karen, "ole@" DOMAIN, thread[t], gid);
    touch_all(&s->karen, thread);
    s->karen.g = kg[t];
    sync_party(&s->karen, thread[t], &sn);
    assert_true(sn.external_pending);

    struct state_view before, after;
    thread_state(&s->karen, thread[t], &before);
    struct mls_group_commit_opts o = {.include_pending = true, .force_path = true,
                                      .tree_in_welcome = true};

    /* 1: the Welcome left out. The follower applies the commit; then the
     * server refuses it and rolls back. */
    {
        struct mls_group_commit_out co = {0};
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        free(co.welcome);
        co.welcome = NULL;
        assert_string_equal(commit(&s->karen, thread[t], &co, err, sizeof(err)), "invalid");
    }
    thread_state(&s->karen, thread[t], &after);
    assert_same_state(&before, &after);
    state_free(&after);

    /* 2: a GroupInfo that is not the new epoch's (another thread's) */
    {
        struct mls_group_commit_out co = {0};
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        free(co.group_info);
        co.group_info = NULL;
        assert_int_equal(mls_group_group_info(kg[0], false, &co.group_info, &co.group_info_len),
                         0);
        assert_string_equal(commit(&s->karen, thread[t], &co, err, sizeof(err)), "invalid");
    }
    touch_all(&s->karen, thread);
    thread_state(&s->karen, thread[t], &after);
    assert_same_state(&before, &after);
    state_free(&after);

    /* the right commit of the same epoch is accepted; ole joins and reads */
    {
        struct mls_group_commit_out co = {0};
        assert_int_equal(mls_group_commit_create(s->karen.g, &o, now_s(), &co), 0);
        assert_non_null(co.welcome);
        assert_string_equal(commit(&s->karen, thread[t], &co, err, sizeof(err)), "");
    }
    thread_state(&s->karen, thread[t], &after);
    assert_int_equal(after.epoch, before.epoch + 1);
    state_free(&after);
    sync_party(&s->ole, thread[t], &sn);
    assert_int_equal(sn.welcomes, 1);
    assert_non_null(s->ole.g);
    assert_int_equal(mls_group_epoch(s->ole.g), mls_group_epoch(s->karen.g));
    uint64_t devices = 0;
    assert_int_equal(send_app(&s->karen, thread[t], "hej Ole", &devices, err, sizeof(err)), 0);
    assert_int_equal(devices, 1);
    sync_party(&s->ole, thread[t], &sn);
    assert_int_equal(sn.apps, 1);
    assert_string_equal(sn.last_app, "hej Ole");

    /* the other threads were not disturbed: each still takes a commit */
    for (size_t i = 0; i < NTHREADS; i++) {
        if (i == t)
            continue;
        s->karen.g = kg[i];
        struct mls_group_commit_out co = {0};
        struct mls_group_commit_opts ou = {.force_path = true};
        assert_int_equal(mls_group_commit_create(s->karen.g, &ou, now_s(), &co), 0);
        assert_string_equal(commit(&s->karen, thread[i], &co, err, sizeof(err)), "");
    }
    s->karen.g = NULL;
    for (size_t i = 0; i < NTHREADS; i++)
        mls_group_free(kg[i]);
    state_free(&before);
    /* a clean stop: under the sanitizers this also checks for leaks */
    assert_int_equal(testserver_stop(&s->ts, SIGTERM), 0);
}

/* The same with a cache of one follower: every switch of thread reloads. */
static int setup_small(void **state)
{
    struct st *s = calloc(1, sizeof(*s));
    static const char *const args[] = {"--thread-cache", "1", NULL};
    if (!s || sodium_init() < 0)
        return -1;
    *state = s; /* the teardown frees what a failed setup made */
    if (testserver_init(&s->ts, DOMAIN, true) != 0 || testserver_start_args(&s->ts, args) != 0)
        return -1;
    if (client_ctx_new(NULL, &s->ctx) != 0)
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refused_commit_restores, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_commit_restores, setup_small, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
