/* The child's work: echo one connection until the client is done. */
#pragma once

#include <stdint.h>

#include "time-util.h"

#define ECHO_BUFFER_SIZE (64 * 1024)

/* Echoes everything read from @fd back to it, and returns once the client
 * has closed its sending half and got every byte back (0), a SIGTERM or
 * SIGINT arrived on @signal_fd (-1: none) and what was read has been written
 * back (0), nothing moved for @idle_usec (0: never; -ETIMEDOUT), or the
 * connection failed (-errno, e.g. -ECONNRESET or -EPIPE). @fd is made
 * non-blocking. The count of bytes echoed goes to @ret_bytes in every case. */
int echo_pump(int fd, int signal_fd, usec_t idle_usec, uint64_t *ret_bytes);

#include <stdnoreturn.h>
#include <sys/socket.h>

/* One accepted connection and who is on the other end. */
struct connection {
        int fd;
        struct sockaddr_storage peer;
        socklen_t peer_len;
};

/* Echoes @c with echo_pump(), logs how it ended, closes it. Returns what
 * echo_pump() returned. Used in-process for Accept=yes and --inetd. */
int echo_connection(struct connection *c, int signal_fd, usec_t idle_usec);

struct socket_set;

/* The life of a child forked for @c, start to end: drop what belongs to the
 * parent (its @parent_sockets, its NOTIFY_SOCKET, its signal mask), echo,
 * _exit(). */
noreturn void echo_child(struct connection *c, struct socket_set *parent_sockets, int signal_fd,
                         usec_t idle_usec);
