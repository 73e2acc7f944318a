/* Where the sockets come from: systemd (sd_listen_fds_with_names), --listen,
 * or --inetd. Every passed fd is classified by what it is, not by its port
 * or position. This module reports its failures: it knows which fd or which
 * address the user must hear about. */
#pragma once

#include <stddef.h>

#include <stdbool.h>

#include "notify.h"
#include "options.h"

#define SOCKETS_MAX 64

enum socket_kind {
        SOCKET_LISTENER,        /* listening stream socket: accept + fork per connection */
        SOCKET_CONNECTION,      /* connected stream socket: echo it here, then exit, or
                                 * resume it if the fd store kept it for us */
        SOCKET_DATAGRAM,        /* UDP socket: echoed in the parent's loop */
        SOCKET_UNSUPPORTED,     /* a socket of another type */
        SOCKET_NOT_SOCKET,
};

/* A connection a previous instance put in systemd's fd store. echod holds
 * it until a child serves it: echod forks no child per connection, so a big
 * fd table costs it nothing. */
struct stored_connection {
        int fd;                         /* -1: served, or could not be */
        bool resuming;                  /* sent to the acceptor, not served yet */
        char name[FD_STORE_NAME_MAX];
};

struct socket_set {
        int listeners[SOCKETS_MAX];
        size_t n_listeners;
        int datagrams[SOCKETS_MAX];     /* UDP sockets, echoed in the parent */
        size_t n_datagrams;
        int connection;         /* -1: none */
        /* Connections handed over by the previous instance, resumed in order. */
        struct stored_connection *stored;
        size_t n_stored;
};

/* A set with nothing in it. */
#define SOCKET_SET_EMPTY ((struct socket_set) { .connection = -1 })

/* What @fd is. Returns an enum socket_kind, or -errno when it cannot be told. */
int socket_classify(int fd);

/* Fills @ret from systemd's fds, --listen or --inetd, as @o says. Returns 0,
 * or -errno after logging why. On failure nothing is left open. */
int sockets_acquire(const struct options *o, struct socket_set *ret);

/* Closes the listeners and datagram sockets (systemd keeps its copies). */
void sockets_close_listening(struct socket_set *set);
void sockets_close(struct socket_set *set);
