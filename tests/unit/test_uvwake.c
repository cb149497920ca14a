/* test_uvwake.c: the loop wake-up shared by the server and the bench
 * (server/uvwake.c). A wake makes uv_run(UV_RUN_ONCE) return at its time
 * even when it fell due before uv_run() was called (libuv 1.44 runs due
 * timers before it polls and then sleeps until the next other timer: the
 * server's 1 s tick, lws's 30 s housekeeping in the bench; that lost wake
 * stalled test_bench_threads for 30 s and failed CI). Once the wake has
 * been, the loop sleeps again (no busy loop); the earliest of two wakes
 * stands; a cancelled wake does not wake.
 *
 * Each case runs a loop kept alive by a repeating "other" timer of
 * OTHER_MS, standing for the tick/housekeeping timer: a wake that works
 * ends the wait long before it, a lost one only at it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "uvwake.h"

#define OTHER_MS 3000

static uv_loop_t loop;
static uv_timer_t other;
static struct uvwake wake;
static int other_fired;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void other_cb(uv_timer_t *t)
{
    (void)t;
    other_fired++;
}

static int setup(void **state)
{
    (void)state;
    other_fired = 0;
    if (uv_loop_init(&loop) != 0 || uv_timer_init(&loop, &other) != 0 ||
        uv_timer_start(&other, other_cb, OTHER_MS, OTHER_MS) != 0)
        return -1;
    return uvwake_init(&wake, &loop);
}

static int teardown(void **state)
{
    (void)state;
    uvwake_close(&wake);
    uv_close((uv_handle_t *)&other, NULL);
    while (uv_loop_close(&loop) == UV_EBUSY)
        (void)uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}

/* How long one uvwake_run_once() took, in ms. */
static uint64_t run_once_ms(void)
{
    uint64_t t0 = now_ms();
    uvwake_run_once(&wake);
    return now_ms() - t0;
}

/* the case that failed: the wake fell due while we were busy outside
 * uv_run() (an fsync, preemption) */
static void wake_due_before_run(void **state)
{
    (void)state;
    uvwake_in_ms(&wake, 1);
    sleep_ms(20);
    assert_true(run_once_ms() < OTHER_MS / 2);
    assert_int_equal(other_fired, 0);
}

static void wake_in_time(void **state)
{
    uint64_t t;
    (void)state;
    uvwake_in_ms(&wake, 100);
    t = run_once_ms();
    assert_true(t >= 90 && t < OTHER_MS / 2);
    assert_int_equal(other_fired, 0);
}

/* after the wake the loop sleeps until something else happens: the idle
 * handle that ended the poll is stopped again */
static void sleeps_again_after_wake(void **state)
{
    (void)state;
    uvwake_in_ms(&wake, 1);
    sleep_ms(5);
    assert_true(run_once_ms() < OTHER_MS / 2);
    assert_true(run_once_ms() > OTHER_MS / 3);
    assert_int_equal(other_fired, 1);
}

static void earliest_stands(void **state)
{
    (void)state;
    uvwake_in_ms(&wake, 50);
    uvwake_in_ms(&wake, 10 * OTHER_MS); /* later: the 50 ms one stands */
    assert_true(run_once_ms() < OTHER_MS / 2);
    uvwake_in_ms(&wake, 10 * OTHER_MS);
    uvwake_in_ms(&wake, 50); /* earlier: replaces it */
    assert_true(run_once_ms() < OTHER_MS / 2);
    assert_int_equal(other_fired, 0);
}

static void cancelled_wake_does_not_wake(void **state)
{
    (void)state;
    uvwake_in_ms(&wake, 10);
    uvwake_cancel(&wake);
    sleep_ms(20);
    assert_true(run_once_ms() > OTHER_MS / 3);
    assert_int_equal(other_fired, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(wake_due_before_run, setup, teardown),
        cmocka_unit_test_setup_teardown(wake_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(sleeps_again_after_wake, setup, teardown),
        cmocka_unit_test_setup_teardown(earliest_stands, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_wake_does_not_wake, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
