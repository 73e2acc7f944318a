/* The child's work: echo one connection until the client is done. */
#pragma once

#include <stdint.h>

#include "time-util.h"

#define ECHO_BUFFER_SIZE (64 * 1024)
/* How long a SIGTERM'd pump still reads bytes in flight; see echo.c. */
#define ECHO_STOP_GRACE_USEC (200 * USEC_PER_MSEC)

/* Echoes everything read from @fd back to it, and returns once the client
 * has closed its sending half and got every byte back (0), a SIGTERM or
 * SIGINT arrived on @signal_fd (-1: none) and what was read within
 * ECHO_STOP_GRACE_USEC of it has been written back (0), nothing moved for @idle_usec (0: never; -ETIMEDOUT), or the
 * connection failed (-errno, e.g. -ECONNRESET or -EPIPE). @fd is made
 * non-blocking. The count of bytes echoed goes to @ret_bytes in every case. */
int echo_pump(int fd, int signal_fd, usec_t idle_usec, uint64_t *ret_bytes);

#include <stdnoreturn.h>
#include <sys/socket.h>
#include <sys/types.h>

/* One accepted connection and who is on the other end. */
struct connection {
        int fd;
        struct sockaddr_storage peer;
        socklen_t peer_len;
};

/* Echoes @c with echo_pump(), then closes it. Returns what echo_pump()
 * returned, and the bytes echoed in @ret_bytes. */
int echo_connection(struct connection *c, int signal_fd, usec_t idle_usec, uint64_t *ret_bytes);

/* What a child tells the parent as it ends, through the report pipe, so that
 * the parent logs the connection's end: a child that logged it itself would
 * be gone before journald could look up its unit in /proc, and the entry
 * would miss _SYSTEMD_UNIT (journalctl -u would not show it). Smaller than
 * PIPE_BUF, so every report arrives whole. */
struct echo_report {
        pid_t pid;
        int result;             /* echo_pump()'s */
        uint64_t bytes;
};

struct socket_set;

/* What a new child inherits from the parent, and what it does with it. */
struct echo_child_setup {
        struct socket_set *parent_sockets;      /* the parent's: closed first */
        int report_read_fd;                     /* the parent's end: closed; -1: none */
        int report_fd;                          /* where the echo_report goes; -1: none */
        int signal_fd;                          /* kept: SIGTERM arrives here */
        usec_t idle_usec;
};

/* The life of a child forked for @c, start to end: drop what belongs to the
 * parent (its sockets, its NOTIFY_SOCKET, its signal mask), echo, report,
 * _exit(). */
noreturn void echo_child(struct connection *c, const struct echo_child_setup *setup);
