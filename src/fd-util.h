/* One owner per file descriptor: a _cleanup_close_ local closes what it still
 * holds when it leaves scope, and take_fd() hands ownership on explicitly. */
#pragma once

#include <errno.h>
#include <unistd.h>

/* Closes @fd if it is valid, keeping errno intact so that a caller can still
 * report the failure that made it give up. Returns -1 for "fd = safe_close(fd)". */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved_errno = errno;
                (void) close(fd);
                errno = saved_errno;
        }
        return -1;
}

static inline void close_fdp(int *fd) {
        safe_close(*fd);
}

#define _cleanup_close_ __attribute__((cleanup(close_fdp)))

/* Returns the fd held in @fd and leaves -1 behind, so the cleanup of the
 * local that held it no longer closes it. */
static inline int take_fd(int *fd) {
        int taken = *fd;
        *fd = -1;
        return taken;
}
