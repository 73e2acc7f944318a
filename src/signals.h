/* Signals as events: blocked from the start and read from a signalfd that the
 * main loop polls beside the listeners. No code runs in a signal handler. */
#pragma once

/* Blocks SIGCHLD, SIGTERM and SIGINT, ignores SIGPIPE, and returns a
 * non-blocking signalfd for the three, or -errno. */
int signals_open(void);

/* Reads one pending signal from @signal_fd: its number, 0 when none is left,
 * or -errno. */
int signals_read(int signal_fd);

/* In a new child: SIGPIPE back to its default, everything unblocked except
 * SIGTERM and SIGINT, which the child still reads from the inherited
 * signalfd (after fork(2) it reports the child's own signals). */
void signals_reset_for_child(void);
