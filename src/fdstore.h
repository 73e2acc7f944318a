/* The parent's side of systemd's fd store: which connections go in, when,
 * and when PID 1 has certainly taken them, or let go of them.
 *
 * Every fd stored costs PID 1 time in proportion to the fds already there (it
 * compares the new one with each), so storing every connection would put PID
 * 1 on the path of every connection and let a client flood the host's service
 * manager. So a connection enters the store only once it has lived a while,
 * and a restart stores every young one at once. echod keeps a copy of each
 * connection (struct child's copy_fd) for as long as it is open.
 *
 * FDSTORE=1 has no answer, and PID 1 closes, with one line in its own log,
 * every fd sent past FileDescriptorStoreMax=. So echod never sends past the
 * store's size (learnt from systemd, see main.c), counting every slot PID 1
 * may hold for it. Each connection goes in under a name of its own, with
 * FDPOLL=0 (PID 1 drops nothing by itself: the store holds what we counted),
 * and when it ends, FDSTOREREMOVE=1 with its name frees exactly its slot.
 * PID 1 reads our messages in order, from one socket (notify.h), so a slot
 * counts as free once its removal is sent: PID 1 lets go of it before it
 * reads any later store. And a child hands its connection over at a stop
 * only once PID 1 has certainly taken it: a barrier (BARRIER=1, answered when
 * PID 1 has read every message sent before it) confirms the stores sent
 * before it; only then is the child told (SIGNAL_STORED).
 *
 * PID 1 enforces the size it has now: an administrator may lower
 * FileDescriptorStoreMax= and reload while echod runs, and PID 1 then closes
 * stores past the new size, barrier or not. echod learns the size again at
 * a restart (stop-info.h); if its count ever went past it, it cannot know
 * which of its stores were kept, so it removes them all and stores them
 * again from its copies, up to the size (fd_store_restart()). Connections
 * resumed from the store are in it for certain: PID 1 passed them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "children.h"
#include "notify.h"
#include "time-util.h"

/* The store is flushed this often while any connection is young, and each
 * flush takes the connections at least this old: a connection that ends
 * within 0.25 s never reaches PID 1, and one older than 0.5 s is stored. */
#define FD_STORE_MIN_AGE_USEC (250 * USEC_PER_MSEC)
/* A barrier PID 1 has not answered in this long is given up, and another
 * sent: the stores it covered are confirmed by the next one. */
#define FD_STORE_BARRIER_TIMEOUT_USEC (10 * USEC_PER_SEC)

/* A name the previous instance stored, with how many of its connections are
 * still open here. An older echod stored connections by batches, under one
 * name for many: such a name is removed once the last of them ends. */
struct fd_store_resumed_name {
        char name[FD_STORE_NAME_MAX];
        unsigned n_open;
        unsigned n_slots;
};

/* A removal owed to PID 1, not sent yet (its queue was full). */
struct fd_store_removal {
        char name[FD_STORE_NAME_MAX];
        unsigned n_slots;
};

struct fd_store {
        unsigned max;           /* FileDescriptorStoreMax=; 0: no fd store */
        unsigned n_used;        /* slots PID 1 may hold for us */
        unsigned n_used_peak;   /* the most at any time since the start */
        pid_t pid;              /* ours, for names */
        uint64_t seq;           /* of the last name given */
        unsigned n_young;       /* young connections (not sent) with our copy */
        unsigned n_unconfirmed; /* sent, not confirmed yet */
        usec_t next_flush_usec; /* USEC_INFINITY: none is young */

        int barrier_fd;         /* the read end of the barrier in flight; -1: none */
        uint64_t barrier_seq;   /* it confirms the stores with store_barrier <= this */
        uint64_t next_barrier;  /* the barrier that will confirm stores sent now */
        usec_t barrier_sent_usec;

        struct fd_store_removal *removals;
        size_t n_removals, n_removals_max;
        struct fd_store_resumed_name *resumed;  /* sorted by name */
        size_t n_resumed, n_resumed_max;
};

/* A store of @max fds (0: none), for the echod of @pid. */
void fd_store_init(struct fd_store *st, unsigned max, pid_t pid);
void fd_store_free(struct fd_store *st);

/* Call once, before the first fork, also with @n = 0: the connections the
 * previous instance left in the store, by @names[0..@n): they count, and new
 * names go on above any our PID gave before. Like the server's other
 * tables, what it allocates is parent-only memory (parent-only.h). Returns
 * 0 or -ENOMEM. */
int fd_store_resume(struct fd_store *st, const char *const *names, size_t n);

/* A new connection, born @now: true when the caller must keep its copy in
 * the child's copy_fd, young, for a later flush; false when there is no
 * store. */
bool fd_store_keep_young(struct fd_store *st, usec_t now);

/* What fd_store_flush() could not store yet: the store was full, or the
 * message failed (-errno in @error). Either way they stay young, for the
 * next flush. @error is also set (and nothing counted) when only the
 * barrier after the stores could not be sent. */
struct fd_store_shortfall {
        unsigned n_full;
        unsigned n_failed;
        int error;
};

/* Sends every young connection born at or before @born_before that fits,
 * one message each, then a barrier to confirm them. Connections whose child
 * already shut them down are dropped. Schedules the next flush from @now. */
void fd_store_flush(struct fd_store *st, struct notify *n, struct children *c,
                    usec_t born_before, usec_t now, struct fd_store_shortfall *ret_shortfall);

/* Sends a barrier when stores wait for one and none is in flight (the last
 * one may not have found room in PID 1's queue). Returns 0 or -errno
 * (-EAGAIN: no room again). */
int fd_store_send_barrier(struct fd_store *st, struct notify *n, usec_t now);

/* PID 1 answered the barrier (its fd polled): the stores it covers are
 * confirmed, and @confirmed called for each child. A barrier for the stores
 * sent since goes out. */
void fd_store_confirm(struct fd_store *st, struct notify *n, struct children *c, usec_t now,
                      void (*confirmed)(pid_t pid, void *userdata), void *userdata);

/* Gives up a barrier PID 1 has not answered for FD_STORE_BARRIER_TIMEOUT_USEC
 * and sends another. Returns when to call it next (USEC_INFINITY: nothing
 * in flight). */
usec_t fd_store_check_barrier(struct fd_store *st, struct notify *n, usec_t now);

/* Stores @fd, a connection no child serves, alone (its slot stays counted:
 * the next instance resumes it). Returns 1 when sent, 0 when there is no
 * store or no room, or -errno. */
int fd_store_one(struct fd_store *st, struct notify *n, int fd);

/* A restart is under way, and PID 1 enforces a store of @max_now fds now
 * (-1: not said; what we counted stands). If our count ever went past it,
 * the connections we stored ourselves may not all be there: each is
 * removed (the removals are owed; send them before any store) and is young
 * again, to be stored anew, up to @max_now. Resumed ones stay. Never raises
 * the size we count with. */
void fd_store_restart(struct fd_store *st, struct children *c, int max_now);

/* @child has exited; @left_open: without ending its connection, during a
 * stop (handed over, or killed): the connection stays in the store for the
 * next instance. Otherwise it leaves the store (a removal is owed). Our copy,
 * if any, is closed. */
void fd_store_child_ended(struct fd_store *st, struct child *child, bool left_open);

/* A stored connection that cannot be served here (it could not be taken
 * back): it leaves the store, which ends it for its client. */
void fd_store_drop(struct fd_store *st, const char *name);

/* Nothing left to do before a restart's children are told to stop: no
 * removal owed, no store unconfirmed, no young connection the store has
 * room for. */
bool fd_store_settled(const struct fd_store *st);

/* Sends the removals owed, each freeing its slots once sent. Returns 0 when
 * none is left, or -errno (-EAGAIN: PID 1's queue is full; try again when
 * the notify socket polls writable). */
int fd_store_send_removals(struct fd_store *st, struct notify *n);
