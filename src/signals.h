/* Signals as events: blocked from the start and read from a signalfd that the
 * main loop polls beside the listeners. No code runs in a signal handler. */
#pragma once

#include <signal.h>

/* The parent tells a child that its connection is now in systemd's fd store
 * (and so must be handed over, not closed, when the child is stopped)... */
#define SIGNAL_STORED SIGUSR1
/* ...or that it is not, or no longer counts as such (a stop that is no
 * restart, or a store PID 1 may have refused): a stop finishes it. Where
 * both are pending, a signalfd gives the lower number first: STORED, then
 * UNSTORED, which is the safe order. */
#define SIGNAL_UNSTORED SIGUSR2
/* A resumed connection's child that has not been told it is its own yet
 * learns so that the acceptor that forked it died (PR_SET_PDEATHSIG): echod
 * may send that connection to the next acceptor, so it must not touch it.
 * echod and the acceptor read and ignore it (there is nothing to reload). */
#define SIGNAL_PARENT_GONE SIGHUP

/* Blocks SIGCHLD, SIGTERM, SIGINT and the three above in the calling
 * thread, which reads them, and sends any of them another thread gets (one
 * a preloaded library started) on to it; ignores SIGPIPE; and returns a
 * non-blocking signalfd for the six, or -errno. */
int signals_open(void);

/* Reads one pending signal from @signal_fd: its number, 0 when none is left,
 * or -errno. */
int signals_read(int signal_fd);

/* In a new child: everything unblocked except SIGTERM, SIGINT and the
 * three above, which the child still reads from the inherited signalfd
 * (after fork(2) it reports the child's own signals). SIGPIPE stays
 * ignored: a write to a peer that is gone (its client, or a parent that
 * died) is an error to handle, not the child's end. */
void signals_reset_for_child(void);
