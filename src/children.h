/* Live connections by the PID of the child serving each: the acceptor
 * counts its children and knows each one's client for the per-source limit,
 * and signals them on shutdown; echod counts and logs the connections and
 * keeps their fd store state. An open-addressing hash map, so adding and
 * forgetting stay O(1) with tens of thousands of connections. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "notify.h"
#include "time-util.h"

/* Where a connection is with systemd's fd store (see fdstore.h). */
enum fd_store_state {
        FD_STORE_YOUNG,         /* not sent (too young, no room, or sending failed) */
        FD_STORE_SENT,          /* sent, not confirmed yet */
        FD_STORE_CONFIRMED,     /* PID 1 holds it: its child hands it over at a stop */
};

struct child {
        pid_t pid;              /* 0: empty slot */
        struct sockaddr_storage peer;
        socklen_t peer_len;
        usec_t start_usec;
        /* From the child's report, when it sent one (debug logging only). */
        bool reported;
        int result;
        uint64_t bytes;
        /* With an fd store, echod's copy of the connection, for as long as
         * it is open: to store it (again: see fd_store_restart()), or to
         * send it to another child; -1: none (no store, or not known). */
        int copy_fd;
        /* A connection resumed from the store: the previous instance's, as
         * @token of the passed fds; -1: accepted here. */
        int32_t token;
        /* The child was told its connection is in the store (it hands it
         * over at a restart), and not told otherwise since. */
        bool told_stored;
        /* Its parent was the acceptor, which died: it is echod's child now. */
        bool adopted;
        enum fd_store_state store_state;
        uint64_t store_barrier;                 /* the barrier that confirms it */
        char fd_store_name[FD_STORE_NAME_MAX];  /* "": never sent to the store */
};

struct children {
        struct child *slots;
        size_t n_slots;         /* a power of two, at least twice the capacity */
        size_t n;
};

/* Sizes the map for @capacity children. Returns 0 or -ENOMEM. */
int children_init(struct children *c, size_t capacity);
void children_free(struct children *c);

/* Adds a copy of @child. Returns 0, or -EINVAL / -EEXIST / -ENOSPC. */
int children_add(struct children *c, const struct child *child);
/* The record of @pid, to read or update, or NULL. */
struct child *children_find(const struct children *c, pid_t pid);
/* Removes @pid, copying its record to @ret (may be NULL). Returns 0 or -ENOENT. */
int children_forget(struct children *c, pid_t pid, struct child *ret);

/* The children whose connection is young (not sent to the store) and started at or
 * before @born_before, at most @max of them, into @ret; the scan goes on
 * from *@cursor (0 to begin) and leaves it where it stopped. Returns how
 * many were found: fewer than @max means the scan is complete. Pure. */
size_t children_young(const struct children *c, usec_t born_before, size_t *cursor,
                      struct child **ret, size_t max);

/* The next child from *@cursor (0 to begin) on, or NULL when there is none;
 * the map must not change meanwhile. */
struct child *children_next(const struct children *c, size_t *cursor);

/* Calls @fn for every child; the map must not change meanwhile. */
void children_foreach(const struct children *c, void (*fn)(pid_t pid, void *userdata),
                      void *userdata);
