/* The parent: wait for an event; a connection → fork a child to echo it; a
 * datagram → send it back; SIGCHLD → reap every exited child; SIGTERM →
 * stop accepting and drain. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "children.h"
#include "echo.h"
#include "fdstore.h"
#include "notify.h"
#include "options.h"
#include "ratelimit.h"
#include "sockets.h"
#include "sources.h"
#include "time-util.h"
#include "udp.h"

struct server {
        const struct options *options;
        pid_t pid;
        struct socket_set sockets;      /* listeners and datagram sockets */
        int signal_fd;
        struct notify notify;           /* to systemd; fd -1: none */
        /* PID 1 has not read what we sent: poll for room, then send again. */
        bool notify_blocked;
        bool ready_sent;
        /* Children's struct echo_report, read before each reap; only with
         * debug logging, the one level that logs every connection. */
        int report_fds[2];

        struct children children;       /* live children: the active count */
        uint64_t n_total;
        struct sources sources;         /* live connections per client address */
        uint64_t n_refused;             /* closed at once by the per-source limit */
        struct udp_counters udp;

        /* A connection accepted when fork() then failed: it waits here, and
         * accepting pauses, until a retry can fork for it. */
        struct connection pending;
        usec_t paused_until_usec;       /* back-off after accept or fork failed */
        unsigned backoff_ms;

        bool status_changed;
        usec_t status_sent_usec;
        usec_t watchdog_period_usec;    /* 0: no watchdog */
        usec_t watchdog_sent_usec;

        struct fd_store fd_store;

        bool stopping;
        /* Stopping, the children are signalled once PID 1 has confirmed every
         * connection sent to the store, or at this time. */
        usec_t confirm_deadline_usec;
        bool children_signalled;
        bool stopping_sent;
        usec_t stop_deadline_usec;
        unsigned n_killed;

        struct ratelimit accept_failed, fork_failed, limit_reached, child_killed;
        struct ratelimit source_limit, datagram_dropped, fd_store_full, fd_store_failed;
};

/* Takes over @sockets (leaving it empty), @signal_fd and @notify; an fd
 * store of @fd_store_max fds (0: none). Returns 0 or -ENOMEM. */
int server_init(struct server *s, const struct options *o, struct socket_set *sockets,
                int signal_fd, struct notify *notify, unsigned fd_store_max);
void server_free(struct server *s);

/* Serves until SIGTERM or SIGINT and the drain that follows. Returns 0, or
 * -errno when the loop itself failed. */
int server_run(struct server *s);
