/* The child's work: echo one connection until the client is done. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "notify.h"
#include "time-util.h"

#define ECHO_BUFFER_SIZE ((size_t) 64 * 1024)
/* How long a SIGTERM'd pump still reads bytes in flight; see echo.c. */
#define ECHO_STOP_GRACE_USEC (200 * USEC_PER_MSEC)
/* How long a stopped pump waits, with nothing moving, for the client to
 * acknowledge the last of its echo before closing; see echo.c. */
#define ECHO_LINGER_USEC (2 * USEC_PER_SEC)
/* How long a stopped pump, its echo acknowledged, waits for a client still
 * sending to see its FIN and stop (see echo.c). */
#define ECHO_LINGER_QUIET_USEC (300 * USEC_PER_MSEC)

/* echo_pump()'s results when a SIGTERM or SIGINT ended it: the connection
 * was closed, or left open for the next instance (handed over). */
#define ECHO_STOPPED 1
#define ECHO_HANDED_OVER 2

/* What systemd's fd store means for a connection's pump. With a store, the
 * pump only peeks at the bytes it reads and takes them off the socket once
 * it has sent them back: the bytes not echoed yet are always in the kernel,
 * so that a child killed at any moment (systemd kills what is left of the
 * service right after its main process died) loses none of them, and the
 * next instance echoes them. */
enum echo_store {
        ECHO_STORE_NONE,        /* no fd store */
        ECHO_STORE_LATER,       /* a store; a SIGNAL_STORED says the connection is in it,
                                 * a SIGNAL_UNSTORED that it no longer counts as such */
        ECHO_STORE_STORED,      /* in the store already */
};

/* How a pump runs, and what stops it. */
struct echo_settings {
        int signal_fd;          /* SIGTERM, SIGINT and the store's signals arrive here;
                                 * -1: none */
        int lifeline_fd;        /* hangs up when echod's main process is gone: a stop too;
                                 * -1: none */
        usec_t idle_usec;       /* 0: no idle timeout */
        usec_t stop_timeout_usec;       /* after a stop, give up then; 0: never */
        enum echo_store store;
};

/* Echoes everything read from @fd back to it, and returns once:
 * - the client closed its sending half and got every byte back: 0;
 * - a stop came (SIGTERM or SIGINT on the signalfd, or the lifeline hung
 *   up) and what was read has been written back. If the connection is in
 *   systemd's fd store (ECHO_STORE_STORED, or a SIGNAL_STORED came, and no
 *   SIGNAL_UNSTORED after it), the next instance goes on with it: reading
 *   stops at once, what is not echoed yet stays in the socket, and the
 *   connection is left open, ECHO_HANDED_OVER. Otherwise reading goes on for ECHO_STOP_GRACE_USEC,
 *   for bytes in flight, and the connection is shut down, ECHO_STOPPED;
 * - nothing moved for idle_usec: -ETIMEDOUT;
 * - stop_timeout_usec after a stop, what is still owed is given up:
 *   -ECANCELED. A parent enforces its shutdown timeout with SIGKILL; this
 *   bounds a child with no parent left;
 * - the connection failed: -errno, e.g. -ECONNRESET or -EPIPE.
 * Unless handed over, the connection is shut down both ways at the end,
 * since others (echod, PID 1) may hold copies of it and the client must
 * see the end now. @fd is made non-blocking. The bytes echoed go to
 * @ret_bytes in every case. */
int echo_pump(int fd, const struct echo_settings *settings, uint64_t *ret_bytes);

#include <stdnoreturn.h>
#include <sys/socket.h>
#include <sys/types.h>

/* One accepted connection and who is on the other end. */
struct connection {
        int fd;
        struct sockaddr_storage peer;
        socklen_t peer_len;
        char fd_store_name[FD_STORE_NAME_MAX];  /* its name in the fd store; "": not there */
};

/* Echoes @c with echo_pump(), then closes it. Returns what echo_pump()
 * returned, and the bytes echoed in @ret_bytes. */
int echo_connection(struct connection *c, const struct echo_settings *settings,
                    uint64_t *ret_bytes);

/* A child's exit status: a handed-over connection stays in the fd store for
 * the next instance; any other has left it. */
enum {
        CHILD_EXIT_DONE = 0,
        CHILD_EXIT_FAILED = 1,
        CHILD_EXIT_HANDED_OVER = 3,
        /* A resumed connection given back untouched: the acceptor that
         * forked the child died before echod learnt of it (see echo.c). */
        CHILD_EXIT_GIVEN_BACK = 4,
};

/* What a child tells echod's main process as it ends, through the report
 * pipe, so that echod logs the connection's end: a child that logged it
 * itself would be gone before journald could look up its unit in /proc, and
 * the entry would miss _SYSTEMD_UNIT (journalctl -u would not show it); nor
 * does a child map libsystemd. Smaller than PIPE_BUF, so every report
 * arrives whole. */
struct echo_report {
        pid_t pid;
        int result;             /* echo_pump()'s */
        uint64_t bytes;
};

/* What a new child keeps of what it inherits from the acceptor, and what it
 * does with it. */
struct echo_child_setup {
        int report_fd;                          /* where the echo_report goes; -1: none */
        int signal_fd;                          /* kept: SIGTERM arrives here */
        int lifeline_fd;                        /* kept: hangs up when echod is gone */
        usec_t idle_usec;
        usec_t stop_timeout_usec;               /* --shutdown-timeout */
        bool fd_store;                          /* the service has an fd store */
        bool stored;                            /* the connection is in it already: resumed,
                                                 * served once echod says so */
        pid_t acceptor_pid;                     /* the child's parent */
};

/* The life of a child forked for @c, start to end: close every inherited fd
 * it does not need, restore the signal mask, echo, report, _exit(). */
noreturn void echo_child(struct connection *c, const struct echo_child_setup *setup);
