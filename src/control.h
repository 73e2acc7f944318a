/* What echod and its acceptor tell each other, over one SOCK_SEQPACKET
 * socket pair: echod (the main process, which speaks to systemd and the
 * journal and keeps the fd store) starts the acceptor (a program linked
 * against libc alone, which accepts, forks one child per connection and
 * reaps them) and hears from it of every connection that opens and ends.
 *
 * A message is an array of records, each with a kind; a record that carries
 * an fd (a connection) has it attached to the message (SCM_RIGHTS), in the
 * order of the records. Both programs come from the same build, and echod
 * starts the acceptor from the file it opened at its own start, so the
 * layout is shared, not negotiated. Never blocks: a sender whose peer is
 * behind keeps its records and sends them when the socket polls writable. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "time-util.h"

enum control_kind {
        /* echod to the acceptor */
        CONTROL_HELLO,          /* the settings, first of all (struct control_hello) */
        CONTROL_LISTENER,       /* + fd: a listening socket to accept on */
        CONTROL_LIFELINE,       /* + fd: the read end of a pipe only echod writes to: it
                                 * hangs up when echod's main process is gone */
        CONTROL_REPORTS,        /* + fd: where children write their struct echo_report */
        CONTROL_RESUME,         /* + fd: a connection the fd store kept; serve it, as @token */
        CONTROL_INHERIT,        /* a live connection from @peer that is not the acceptor's:
                                 * it counts towards the limits, until CONTROL_RELEASE */
        CONTROL_RELEASE,        /* that connection from @peer has ended */
        CONTROL_STORED,         /* child @pid's connection is in the store: tell it */
        CONTROL_UNSTORED,       /* it no longer counts as stored: tell it (before a stop) */
        CONTROL_STOP_ACCEPTING, /* close the listeners: clients wait for the next instance */
        CONTROL_STOP,           /* ask every child to finish; exit once none is left.
                                 * @count CONTROL_STOP_FINISH_ALL: no restart follows,
                                 * so none hands its connection over */
        CONTROL_PING,           /* answer with CONTROL_PONG, with the same @count. Records are
                                 * read and sent in order: the answer follows every record
                                 * the acceptor sent before it read the question */

        /* the acceptor to echod */
        CONTROL_OPENED,         /* child @pid serves a connection from @peer; + fd with a
                                 * store (for echod's copy); @token for a resumed one */
        CONTROL_EXITED,         /* child @pid exited with wait status @status */
        CONTROL_REFUSED,        /* a connection from @peer closed by the per-source limit
                                 * (@count: the limit) */
        CONTROL_ACCEPT_FAILED,  /* accept(2) failed with -@status; pausing @count ms */
        CONTROL_FORK_FAILED,    /* fork(2) failed with -@status; retrying in @count ms */
        CONTROL_LIMIT_REACHED,  /* at --max-connections (@count) */
        CONTROL_UNSERVED,       /* + fd: accepted, never served here (a stop came first);
                                 * or, without fd, resumed connection @token was not
                                 * served (no fd came, or fork() failed): send it again */
        CONTROL_PONG,
};

/* The acceptor's settings, from echod's options. */
struct control_hello {
        usec_t idle_usec;
        usec_t shutdown_usec;
        uint32_t max_connections;
        uint32_t max_connections_per_source;    /* 0: no limit */
        uint32_t capacity;      /* children it may have at once: the cap, plus resumed and
                                 * inherited connections */
        bool fd_store;          /* there is a store: echod wants a copy of each connection */
        bool reports;           /* children report their end (debug logging) */
};

struct control_record {
        struct sockaddr_storage peer;
        struct control_hello hello;
        uint32_t kind;          /* enum control_kind */
        int32_t pid;
        int32_t status;
        uint32_t count;
        uint32_t token;
        socklen_t peer_len;
        bool has_fd;
};

/* The most records, and fds, in one message: fds are limited by SCM_MAX_FD. */
#define CONTROL_BATCH_MAX ((size_t) 64)
/* The most listening sockets an acceptor serves. */
#define CONTROL_LISTENERS_MAX 64
/* CONTROL_OPENED's @token for a connection the acceptor accepted itself. */
#define CONTROL_NO_TOKEN UINT32_MAX
/* CONTROL_STOP's @count for a stop that is no restart. */
#define CONTROL_STOP_FINISH_ALL 1u
/* The control socket is the acceptor's fd 3. */
#define CONTROL_FD 3

/* Records waiting to be sent, with their fds (owned until sent): room for
 * two messages, so that a full message received can always be answered. */
#define CONTROL_QUEUE_MAX (2 * CONTROL_BATCH_MAX)

struct control_queue {
        struct control_record records[CONTROL_QUEUE_MAX];
        int fds[CONTROL_QUEUE_MAX];
        size_t n, n_fds;
};

/* Adds @record, and @fd (-1: none; taken over) to @q. Returns 0, or
 * -ENOBUFS when @q is full (@fd is then still the caller's): send first. */
int control_queue_add(struct control_queue *q, const struct control_record *record, int fd);

/* Sends what @q holds, CONTROL_BATCH_MAX records to a message, closing the
 * fds sent (the peer has its own copies now). Returns 0 once @q is empty,
 * or -errno (-EAGAIN: the peer is behind; what is left stays in @q). */
int control_queue_send(int socket_fd, struct control_queue *q);

/* Closes the fds of @q and empties it. */
void control_queue_clear(struct control_queue *q);

/* Receives one message into @records (at most CONTROL_BATCH_MAX) and its fds
 * into @fds, in the order of the records that have one. Returns the number
 * of records, 0 at end of stream, or -errno (-EAGAIN: nothing waiting;
 * -EPROTO: a malformed message, its fds closed). Each fd is -EMFILE where
 * the kernel could not give it back (no free fd: it closed it). */
int control_receive(int socket_fd, struct control_record *records, int *fds);
