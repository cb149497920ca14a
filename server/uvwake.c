/*
 * uvwake.c: see uvwake.h.
 */
#include "uvwake.h"

static void idle_cb(uv_idle_t *h)
{
    (void)h; /* its being active is the point: uv_run() polls without waiting */
}

static void timer_cb(uv_timer_t *t)
{
    struct uvwake *w = t->data;
    /* fired before uv_run()'s poll (the wake fell due before the call) or
     * after it: either way the poll must not wait */
    (void)uv_idle_start(&w->idle, idle_cb);
}

int uvwake_init(struct uvwake *w, uv_loop_t *loop)
{
    w->loop = loop;
    w->timer_ok = w->idle_ok = false;
    if (uv_timer_init(loop, &w->timer) != 0)
        return -1;
    w->timer_ok = true;
    w->timer.data = w;
    if (uv_idle_init(loop, &w->idle) != 0) {
        uvwake_close(w);
        return -1;
    }
    w->idle_ok = true;
    return 0;
}

void uvwake_in_ms(struct uvwake *w, uint64_t ms)
{
    if (!w->timer_ok || uv_is_closing((uv_handle_t *)&w->timer))
        return;
    if (!ms)
        ms = 1;
    /* the loop's clock is the time of its last turn: bring it to now, or
     * the wake falls due early by however long we ran outside uv_run() */
    uv_update_time(w->loop);
    if (uv_is_active((uv_handle_t *)&w->timer) && uv_timer_get_due_in(&w->timer) <= ms)
        return;
    (void)uv_timer_start(&w->timer, timer_cb, ms, 0);
}

void uvwake_cancel(struct uvwake *w)
{
    if (w->timer_ok)
        (void)uv_timer_stop(&w->timer);
}

void uvwake_run_once(struct uvwake *w)
{
    (void)uv_run(w->loop, UV_RUN_ONCE);
    if (w->idle_ok)
        (void)uv_idle_stop(&w->idle);
}

void uvwake_close(struct uvwake *w)
{
    if (w->timer_ok && !uv_is_closing((uv_handle_t *)&w->timer)) {
        (void)uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, NULL);
    }
    if (w->idle_ok && !uv_is_closing((uv_handle_t *)&w->idle)) {
        (void)uv_idle_stop(&w->idle);
        uv_close((uv_handle_t *)&w->idle, NULL);
    }
}
