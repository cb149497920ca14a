/*
 * clock.h: the server's one clock. Every expiry and timestamp reads
 * clock_now(). A test build can shift it: only when the server runs with
 * --test-clock (loopback only) does main honour SAMMEN_TEST_CLOCK_OFFSET and
 * the test.clock_shift operation call clock_shift().
 */
#ifndef SAMMEN_CLOCK_H
#define SAMMEN_CLOCK_H

#include <stdint.h>

/* Unix seconds, shifted by the test offset (0 unless shifted). */
uint64_t clock_now(void);
/* Adds seconds (may be negative) to the offset. */
void clock_shift(int64_t seconds);
/* The current offset in seconds. */
int64_t clock_offset(void);
/* Nanoseconds / microseconds of a clock that never jumps and is never
 * shifted (for durations: idle limits, the group commit's wait, the
 * statement profile). */
uint64_t mono_ns(void);
uint64_t mono_us(void);

#endif
