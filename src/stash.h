/* A place for fds outside the fd table: a socket of our own that holds
 * them in flight (SCM_RIGHTS), given back one at a time, in order. echod
 * keeps there the connections the fd store passed at start until a child is
 * forked for each: every fork copies the whole fd table, and with thousands
 * of connections open each fork cost several times more (measured: 360 us
 * instead of 100 with 4096 fds open), which made restarts with a full store
 * slow. */
#pragma once

#include <stddef.h>

/* The most fds one message can carry (the kernel's SCM_MAX_FD). */
#define STASH_BATCH_MAX 253

struct stash {
        int fds[2];                     /* [0] to take from, [1] to put into; -1: none */
        /* Given back by the last message, in order; -errno for one the kernel
         * could not give back (no free fd: it closed it). */
        int taken[STASH_BATCH_MAX];
        size_t n_taken, next_taken;
        size_t n;                       /* fds in the stash, taken ones not counted */
};

/* Returns 0 or -errno. */
int stash_open(struct stash *st);

/* Moves @fds[0..@n) into the stash, closing them here. Returns how many
 * went in (a prefix of @fds: the rest are left open, as they were), or
 * -errno when none could. */
int stash_put(struct stash *st, const int *fds, size_t n);

/* The next fd put, or -errno: -ENOENT when none is left, or, for an fd the
 * kernel closed because we had no free fd to receive it in, -EMFILE (the
 * fds after it still come back in their places). */
int stash_take(struct stash *st);

void stash_close(struct stash *st);
