/* Signals as events: blocked from the start and read from a signalfd that the
 * main loop polls beside the listeners. No code runs in a signal handler. */
#pragma once

#include <signal.h>

/* The parent tells a child that its connection is now in systemd's fd store
 * (and so must be handed over, not closed, when the child is stopped). */
#define SIGNAL_STORED SIGUSR1

/* Blocks SIGCHLD, SIGTERM, SIGINT and SIGNAL_STORED, ignores SIGPIPE, and
 * returns a non-blocking signalfd for the four, or -errno. */
int signals_open(void);

/* Reads one pending signal from @signal_fd: its number, 0 when none is left,
 * or -errno. */
int signals_read(int signal_fd);

/* In a new child: everything unblocked except SIGTERM, SIGINT and
 * SIGNAL_STORED, which the child still reads from the inherited signalfd
 * (after fork(2) it reports the child's own signals). SIGPIPE stays
 * ignored: a write to a peer that is gone (its client, or a parent that
 * died) is an error to handle, not the child's end. */
void signals_reset_for_child(void);
