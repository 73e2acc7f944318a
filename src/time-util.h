/* Monotonic time in microseconds: every deadline in echod is one of these. */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

static inline usec_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/* The poll(2) timeout, in milliseconds rounded up, that wakes us at @deadline:
 * -1 for none, 0 when it has passed. Rounding up keeps us from waking a
 * fraction of a millisecond early and spinning until the deadline. */
static inline int poll_timeout_ms(usec_t deadline, usec_t now) {
        if (deadline == USEC_INFINITY)
                return -1;
        if (deadline <= now)
                return 0;
        usec_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return ms > INT32_MAX ? INT32_MAX : (int) ms;
}
