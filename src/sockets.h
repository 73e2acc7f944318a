/* Where the sockets come from: systemd (sd_listen_fds_with_names), --listen,
 * or --inetd. Every passed fd is classified by what it is, not by its port
 * or position. This module reports its failures: it knows which fd or which
 * address the user must hear about. */
#pragma once

#include <stddef.h>

#include "options.h"

#define SOCKETS_MAX 64

enum socket_kind {
        SOCKET_LISTENER,        /* listening stream socket: accept + fork per connection */
        SOCKET_CONNECTION,      /* connected stream socket: echo it here, then exit */
        SOCKET_DATAGRAM,        /* UDP socket: echoed in the parent's loop */
        SOCKET_UNSUPPORTED,     /* a socket of another type */
        SOCKET_NOT_SOCKET,
};

struct socket_set {
        int listeners[SOCKETS_MAX];
        size_t n_listeners;
        int datagrams[SOCKETS_MAX];     /* UDP sockets, echoed in the parent */
        size_t n_datagrams;
        int connection;         /* -1: none */
};

/* What @fd is. Returns an enum socket_kind, or -errno when it cannot be told. */
int socket_classify(int fd);

/* Fills @ret from systemd's fds, --listen or --inetd, as @o says. Returns 0,
 * or -errno after logging why. On failure nothing is left open. */
int sockets_acquire(const struct options *o, struct socket_set *ret);

void sockets_close(struct socket_set *set);
