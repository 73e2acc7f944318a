/* What echod tells systemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1. The
 * status text and its throttle are pure functions; the rest sends. Outside
 * systemd (no NOTIFY_SOCKET) every send is a cheap no-op. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

#define STATUS_INTERVAL_USEC USEC_PER_SEC
#define STATUS_TEXT_MAX 256

/* The numbers STATUS= reports. */
struct status {
        unsigned n_active;
        uint64_t n_total;
        uint64_t n_refused;             /* closed at once by the per-source limit */
        bool datagrams;                 /* UDP is served: report its counts */
        uint64_t datagrams_echoed;
        uint64_t datagrams_dropped;
        bool stopping;
};

/* "3 active, 1042 total connections", then ", 2 refused" once any was,
 * ", 10 datagrams echoed, 1 dropped" when UDP is served, ", stopping". */
void status_format(char *buf, size_t size, const struct status *st);

/* A changed status goes out at most once per STATUS_INTERVAL_USEC: returns
 * when the next one may be sent, given the last was sent at @last_usec. */
usec_t status_next_usec(usec_t last_usec);

int notify_ready(const char *status);
int notify_status(const char *status);
int notify_stopping(const char *status);
int notify_watchdog(void);

/* How often to send WATCHDOG=1: half the interval systemd asked for, or 0
 * when it asked for none. */
usec_t notify_watchdog_period(void);

/* systemd's file descriptor store keeps a copy of every connection that has
 * lived a while (see fdstore.h), so that a restarted echod goes on echoing
 * it. Connections go in by batches, one name for each batch; the next
 * instance finds them among its passed fds by the name's prefix. */
#define FD_STORE_NAME_PREFIX "echod-conn-"
#define FD_STORE_NAME_MAX 48
/* The most fds one message can carry (the kernel's SCM_MAX_FD). */
#define FD_STORE_BATCH_MAX 253

/* How many fds the store takes: $FDSTORE (set by systemd 254 and later to
 * FileDescriptorStoreMax=, and by echo.service itself for older ones), or 0
 * when there is no store (no NOTIFY_SOCKET, no $FDSTORE). */
unsigned notify_fd_store_max(void);

/* "echod-conn-PID-SEQ", SEQ counting batches. Names outlive the echod that
 * made them: a connection stays in the store, under its first name, through
 * any number of restarts, and a later echod may get the same PID (PIDs
 * wrap). So SEQ must start above every SEQ of that PID still in the store,
 * which fd_store_name_seq() reads from the names passed at start: two
 * batches must never share a name. */
void fd_store_name(char *buf, size_t size, int pid, uint64_t seq);
bool fd_store_name_is_connection(const char *name);
/* SEQ of @name if it is "echod-conn-@pid-SEQ", else 0. Pure. */
uint64_t fd_store_name_seq(const char *name, int pid);

/* FDSTORE=1 for @n_fds (at most FD_STORE_BATCH_MAX) fds, all named @name.
 * Nothing removes them by name: a connection leaves the store when it is
 * shut down (PID 1 polls every stored fd and drops one that hangs up). */
int notify_fd_store(const int *fds, size_t n_fds, const char *name);
