/* echod's main process: it starts the acceptor (acceptor.c: the small
 * process that accepts, forks one child per connection and reaps them) and
 * hears from it of every connection that opens and ends; it counts them for
 * STATUS, logs them, keeps the fd store, echoes datagrams, and talks to
 * systemd. It forks no child per connection itself. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "acceptor-process.h"
#include "children.h"
#include "echo.h"
#include "fdstore.h"
#include "notify.h"
#include "options.h"
#include "ratelimit.h"
#include "sockets.h"
#include "time-util.h"
#include "udp.h"

struct server {
        const struct options *options;
        pid_t pid;
        int signal_fd;
        /* Children's struct echo_report, read before an exit is handled; only
         * with debug logging, the one level that logs every connection. */
        int report_fds[2];
        /* Listeners (kept to hand to a new acceptor), datagram sockets, and
         * the connections the fd store kept, each held until a child serves
         * it. */
        struct socket_set sockets;
        struct notify notify;           /* to systemd; fd -1: none */
        const char *acceptor_path;      /* for messages */
        const char *runtime_dir;        /* $RUNTIME_DIRECTORY, where ExecStop= says what a
                                         * stop is; NULL: none */

        struct acceptor_process acceptor;
        usec_t acceptor_restart_usec;   /* when to start one again; USEC_INFINITY: none due */
        usec_t ping_sent_usec;          /* the last CONTROL_PING; 0: none unanswered */
        unsigned ping_seq;              /* the @count of the last CONTROL_PING */
        /* At a restart: the ping sent after CONTROL_STOP_ACCEPTING, whose
         * answer follows the news of every connection accepted before it;
         * 0: none awaited. */
        unsigned drain_ping;
        usec_t pong_usec;               /* the last CONTROL_PONG, or the acceptor's start */
        usec_t resume_after_usec;       /* after the acceptor could not serve one */
        size_t next_resume;             /* the first stored connection maybe not served yet */
        unsigned n_resuming;            /* sent to the acceptor, not opened yet */
        unsigned acceptor_backoff_ms;

        /* Every live connection, by the PID of the child that serves it: the
         * acceptor's, or, once it died, ours (adopted). */
        struct children children;
        uint64_t n_total;
        uint64_t n_refused;             /* closed at once by the per-source limit */
        struct udp_counters udp;

        usec_t status_sent_usec;
        usec_t watchdog_period_usec;    /* 0: no watchdog */
        usec_t watchdog_sent_usec;

        struct fd_store fd_store;

        /* Stopping, the children are asked to finish once PID 1 has confirmed
         * every connection sent to the store, or at this time. */
        usec_t confirm_deadline_usec;
        usec_t stop_deadline_usec;      /* everything left is killed then */
        unsigned n_killed;

        struct ratelimit accept_failed, fork_failed, limit_reached, child_killed;
        struct ratelimit source_limit, datagram_dropped, fd_store_full, fd_store_failed;
        struct ratelimit copy_lost;

        bool notify_blocked;    /* PID 1 has not read what we sent: wait for room */
        bool ready_sent;
        bool answered_since_watchdog;   /* the acceptor answered since the last WATCHDOG=1 */
        bool status_changed;
        /* We reap what the acceptor leaves when it dies (PR_SET_CHILD_SUBREAPER:
         * Linux has it since 3.4; an emulator, qemu-user, may not). */
        bool subreaper;
        bool stopping;
        /* A stop that is no restart (see stop-info.h): no connection is
         * handed over, every child finishes its own. */
        bool finish_all;
        bool children_signalled;
        bool stopping_sent;
};

/* Takes over @sockets (leaving it empty), @signal_fd and @notify; an fd
 * store of @fd_store_max fds (0: none); the acceptor program at
 * @acceptor_path. Returns 0 or -errno. */
int server_init(struct server *s, const struct options *o, struct socket_set *sockets,
                int signal_fd, struct notify *notify, unsigned fd_store_max,
                const char *acceptor_path);
void server_free(struct server *s);

/* Serves until SIGTERM or SIGINT and the drain that follows. Returns 0, or
 * -errno when the loop itself failed. */
int server_run(struct server *s);
