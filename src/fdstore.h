/* The parent's side of systemd's fd store: which connections go in, and
 * when. Every fd stored costs PID 1 time in proportion to the fds already
 * there (it compares the new one with each), so storing every connection
 * would put PID 1 on the path of every connection and let a client flood
 * the host's service manager. So a connection enters the store only once it
 * has lived a while, by batches; until then the parent keeps a copy of it
 * (struct child's young_fd), and a stop stores every young one at once. A
 * connection leaves the store when its child shuts it down: PID 1 polls
 * what it stores and drops an fd that hangs up, so no message is needed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "children.h"
#include "time-util.h"

/* The store is flushed this often while any connection is young, and each
 * flush takes the connections at least this old: a connection that ends
 * within 0.25 s never reaches PID 1, and one older than 0.5 s is stored. */
#define FD_STORE_MIN_AGE_USEC (250 * USEC_PER_MSEC)

struct fd_store {
        unsigned max;           /* 0: no fd store */
        unsigned n;             /* connections in it, as far as we know */
        pid_t pid;              /* ours, for batch names */
        uint64_t seq;           /* of the last batch's name */
        unsigned n_young;       /* connections not stored yet, whose copy we hold */
        usec_t next_flush_usec; /* USEC_INFINITY: none is young */
};

/* A store of @max fds (0: none), for the echod of @pid. */
void fd_store_init(struct fd_store *st, unsigned max, pid_t pid);

/* A connection the previous instance left in the store under @name: it
 * counts, and batch names go on above its number if it names our PID. */
void fd_store_resumed(struct fd_store *st, const char *name);

/* A new connection, born @now: true when the caller must keep its copy in
 * the child's young_fd, for a later flush; false when there is no store. */
bool fd_store_keep_young(struct fd_store *st, usec_t now);

/* @child has exited; @left_open: without shutting its connection down
 * (handed over, or killed). Closes the parent's copy of a young connection. */
void fd_store_child_ended(struct fd_store *st, struct child *child, bool left_open);

/* Stores @fd, a connection no child serves, alone. Returns 1 when stored, 0
 * when there is no store or no room, or -errno. */
int fd_store_one(struct fd_store *st, int fd);

/* What fd_store_flush() could not store: the store was full, or the
 * message failed (-errno in @error). */
struct fd_store_shortfall {
        unsigned n_full;
        unsigned n_failed;
        int error;
};

/* Stores every young connection born at or before @born_before, at most
 * FD_STORE_BATCH_MAX to a message, and calls @stored for each child whose
 * connection went in. Every young copy it takes is closed, stored or not.
 * Schedules the next flush from @now. */
void fd_store_flush(struct fd_store *st, struct children *c, usec_t born_before, usec_t now,
                    void (*stored)(pid_t pid, void *userdata), void *userdata,
                    struct fd_store_shortfall *ret_shortfall);
