/* echod's side of the acceptor: starting the echod-acceptor program, and the
 * socket to it (control.h). The program is opened once, when echod starts,
 * and every acceptor echod starts is run from that open file: a package
 * upgrade that replaces the program on disk cannot mix versions under one
 * echod (where that cannot be, it is run by its path: execveat() missing or
 * refused, a script, qemu-user). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "control.h"
#include "time-util.h"

struct acceptor_process {
        int program_fd;                 /* the executable, opened at start */
        const char *path;               /* where it was opened */
        /* A pipe echod never writes to: the acceptor and its children hold
         * the read end, which hangs up when echod's main process is gone. */
        int lifeline[2];
        pid_t pid;                      /* 0: none running */
        int control_fd;                 /* our end of the socket; -1: none */
        struct control_queue out;
        /* Records without an fd that found the queue full, to follow it: a
         * stop tells thousands of children at once they are stored. */
        struct control_record *backlog;
        size_t n_backlog, max_backlog;
        bool out_blocked;               /* it has not read what we sent before */
        usec_t started_usec;
};

/* Where the acceptor program is: $ECHOD_ACCEPTOR; else beside echod's own
 * executable (a build tree); else where the package installs it. */
const char *acceptor_program_path(void);

/* Opens the program and the lifeline. Returns 0 or -errno. */
int acceptor_process_open(struct acceptor_process *ap, const char *path);
void acceptor_process_close(struct acceptor_process *ap);

/* Starts an acceptor, with the control socket as its fd 3. Returns its PID
 * once the program runs, or -errno: the exec's own (ENOEXEC, EACCES: it
 * cannot run), or that of a step before it. */
pid_t acceptor_process_start(struct acceptor_process *ap);

/* The acceptor exited (reaped): forgets it, and what was queued for it. */
void acceptor_process_gone(struct acceptor_process *ap);

/* Queues @record, with @fd (-1: none; ours to close after sending). A record
 * without an fd always finds a place; one with an fd may not: -ENOBUFS (@fd
 * is then still the caller's), or -ENOMEM. Returns 0 or -errno. */
int acceptor_process_queue(struct acceptor_process *ap, const struct control_record *record,
                           int fd);

/* Whether @n more records with an fd fit in the queue, once what it holds
 * is sent. */
bool acceptor_process_has_room(struct acceptor_process *ap, size_t n);

/* Sends what is queued. Returns 0, or -errno (-EAGAIN: poll the control
 * socket for POLLOUT, then send again). */
int acceptor_process_flush(struct acceptor_process *ap);
