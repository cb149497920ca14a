/*
 * uvwake.h: "wake the loop in N ms" on a libuv loop, without the lost wake.
 *
 * Both the server's loop and the bench's workers ask libuv to return from
 * uv_run(UV_RUN_ONCE) at a deadline as well as on I/O, with a one-shot
 * timer. libuv 1.44 (Debian 12) runs due timers at the *start* of
 * uv_run() and only then computes how long to poll from the next timer:
 * a wake that falls due between uv_timer_start() and uv_run() (the server
 * was in an fsync, the process was preempted) fires there, and the poll
 * then sleeps until I/O or the next other timer: the server's 1 s tick,
 * lws's 30 s housekeeping in the bench. So the wake callback also starts
 * an idle handle, which makes that poll return at once; uvwake_run_once()
 * stops it again. (libuv 1.46 and later run timers after the poll, where
 * a due timer gives a zero poll timeout; the idle handle is harmless there.)
 *
 * Used by server/ws.c and clients/bench/bench_net.c.
 */
#ifndef SAMMEN_UVWAKE_H
#define SAMMEN_UVWAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct uvwake {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_idle_t idle;
    bool timer_ok, idle_ok;
};

/* Sets up w's handles on loop. Returns 0, or -1 (nothing to close then). */
int uvwake_init(struct uvwake *w, uv_loop_t *loop);
/* Wakes the loop ms (at least 1) from now, measured from the current time
 * (not the loop's cached clock). An earlier wake already set stands. */
void uvwake_in_ms(struct uvwake *w, uint64_t ms);
/* Cancels a wake set and not yet due. */
void uvwake_cancel(struct uvwake *w);
/* uv_run(UV_RUN_ONCE): returns after I/O, or at the wake if one is set,
 * even when it fell due before this call. */
void uvwake_run_once(struct uvwake *w);
/* Closes w's handles (they finish closing on the loop's next turns). */
void uvwake_close(struct uvwake *w);

#endif
