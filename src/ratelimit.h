/* At most one message a second per kind, counting what was held back, so a
 * flood of identical failures costs one line a second and says how many. */
#pragma once

#include <stdbool.h>

#include "time-util.h"

#define RATELIMIT_INTERVAL_USEC USEC_PER_SEC

struct ratelimit {
        usec_t last_usec;       /* when the last message went out; 0: never */
        unsigned suppressed;    /* held back since then */
};

/* Returns true when a message may go out @now, and then the number held back
 * since the last one in @ret_suppressed; otherwise counts this one as held back. */
static inline bool ratelimit_allow(struct ratelimit *rl, usec_t now, unsigned *ret_suppressed) {
        if (rl->last_usec != 0 && now - rl->last_usec < RATELIMIT_INTERVAL_USEC) {
                rl->suppressed++;
                return false;
        }
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        rl->last_usec = now;
        return true;
}

/* As ratelimit_allow(), for @n messages at once: at most the first goes out,
 * and the other @n - 1 count as held back (reported with it if it does). */
static inline bool ratelimit_allow_many(struct ratelimit *rl, usec_t now, unsigned n,
                                        unsigned *ret_suppressed) {
        if (!ratelimit_allow(rl, now, ret_suppressed)) {
                rl->suppressed += n - 1;
                return false;
        }
        *ret_suppressed += n - 1;
        return true;
}
