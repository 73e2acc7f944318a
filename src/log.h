/* Logging: structured journal entries when stderr is the journal, plain
 * "echod: ..." lines otherwise. One log_*() function per event kind keeps
 * every MESSAGE_ID and field name in log.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "options.h"

/* Chooses the target (journal if JOURNAL_STREAM names our stderr) and level. */
void log_init(enum log_level max_level);

/* In --inetd mode stderr may be the client's socket (inetd, and systemd's
 * StandardInput=socket, hand the connection over as fds 0, 1 and 2): a log
 * line there would become part of the echo. Then log to the journal only. */
void log_avoid_fd(int fd);

bool log_enabled(enum log_level level);

/* Generic messages; the _errno variants append strerror(-r). Both error
 * forms return @r, so that "return log_error(-EINVAL, ...)" reads as one step. */
int log_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_error_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_warning_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Events, each with its MESSAGE_ID. */
void log_listening(int fd, const char *name, const struct sockaddr *local, socklen_t len,
                   bool datagram);
void log_connection_opened(const struct sockaddr *peer, socklen_t len, pid_t child_pid);
void log_connection_closed(const struct sockaddr *peer, socklen_t len, uint64_t bytes,
                           uint64_t duration_usec, int r, pid_t child_pid);
void log_child_killed(pid_t child_pid, int signo, unsigned suppressed);
void log_accept_failed(int r, unsigned backoff_ms, unsigned suppressed);
void log_fork_failed(int r, unsigned backoff_ms, unsigned suppressed);
void log_limit_reached(unsigned max_connections, unsigned suppressed);
void log_source_limit_reached(const struct sockaddr *peer, socklen_t len, unsigned limit,
                              unsigned suppressed);
void log_datagram_dropped(const struct sockaddr *source, socklen_t len, const char *reason,
                          unsigned suppressed);
void log_fd_store_full(unsigned fd_store_max, unsigned n_not_kept, unsigned suppressed);
void log_fd_store_failed(int r, unsigned n_not_kept, unsigned suppressed);
/* The fd attached to a connection's news never reached echod (EMFILE). */
void log_copy_lost(unsigned suppressed);
void log_acceptor_died(int status, unsigned n_active, unsigned restart_ms);
void log_acceptor_hung(pid_t pid, uint64_t silent_ms);
/* @how: what becomes of the connections, or NULL (no fd store). */
void log_stopping(unsigned n_active, unsigned timeout_sec, const char *how);
void log_stopped(uint64_t n_total, unsigned n_killed);
