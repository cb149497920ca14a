/* clock.c: clock_now() and its test offset (see clock.h). */
#include "clock.h"

#include <time.h>

static int64_t offset;

uint64_t clock_now(void)
{
    int64_t t = (int64_t)time(NULL) + offset;
    return t < 0 ? 0 : (uint64_t)t;
}

void clock_shift(int64_t seconds)
{
    offset += seconds;
}

int64_t clock_offset(void)
{
    return offset;
}

uint64_t mono_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mono_us(void)
{
    return mono_ns() / 1000u;
}
