/* What echod tells systemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1, and the
 * fd store's FDSTORE=1, FDSTOREREMOVE=1 and BARRIER=1. The status text and
 * its throttle are pure functions; the rest sends.
 *
 * The messages go through one socket of our own, opened once, as sd_notify(3)
 * describes the protocol: a datagram to $NOTIFY_SOCKET. Not sd_notify()
 * itself, which opens a socket for every message and waits when PID 1's queue
 * is full: a busy PID 1 would stall accepting, reaping and UDP. Ours never
 * waits (-EAGAIN: the caller tries again once the socket polls writable), and
 * one socket keeps our messages in the order sent, which the fd store relies
 * on (see fdstore.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

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

/* The socket to the service manager, connected (so that it polls writable
 * only once PID 1's queue has room) and non-blocking. */
struct notify {
        int fd;                         /* -1: no service manager to tell */
        struct sockaddr_un address;     /* to connect again, should PID 1's socket change */
        socklen_t address_len;
};

#define NOTIFY_NONE ((struct notify) { .fd = -1 })

/* Opens the socket $NOTIFY_SOCKET names ("/path" or "@abstract") into @ret
 * and unsets the variable: only the main process speaks to systemd
 * (NotifyAccess=main), and no child inherits it. Returns 0, -ENOENT when
 * there is no such variable (@ret is then NOTIFY_NONE), or -errno. */
int notify_open(struct notify *ret);
void notify_close(struct notify *n);

/* Sends @text ("KEY=value" lines), with @attached_fd unless it is -1.
 * Returns 0, also when there is no service manager (nothing to tell), or
 * -errno: -EAGAIN when PID 1 has not read what we sent before. */
int notify_send(struct notify *n, const char *text, int attached_fd);

int notify_ready(struct notify *n, const char *status);
int notify_status(struct notify *n, const char *status);
int notify_stopping(struct notify *n, const char *status);
int notify_watchdog(struct notify *n);

/* How often to send WATCHDOG=1: half the interval systemd asked for, or 0
 * when it asked for none. */
usec_t notify_watchdog_period(void);

/* systemd's file descriptor store keeps a copy of every connection that has
 * lived a while (see fdstore.h), so that a restarted echod goes on echoing
 * it. Each connection goes in under a name of its own; the next instance
 * finds them among its passed fds by the name's prefix. */
#define FD_STORE_NAME_PREFIX "echod-conn-"
#define FD_STORE_NAME_MAX 48

/* The store's size as systemd 254 and later pass it in $FDSTORE (they set it
 * from FileDescriptorStoreMax=): >= 0, or -ENOENT when the variable is not
 * set (systemd 252, or no store), -EINVAL when it is not a number. */
int notify_fd_store_max_from_env(void);
/* A store size as systemd writes it: decimal digits, whole, at most
 * INT32_MAX. Returns it, or -EINVAL. */
int fd_store_parse_size(const char *text);

/* "echod-conn-PID-SEQ", SEQ counting the names an echod gave. Names outlive
 * the echod that made them: a connection stays in the store, under its first
 * name, through any number of restarts, and a later echod may get the same
 * PID (PIDs wrap). So SEQ must start above every SEQ of that PID still in the
 * store, which fd_store_name_seq() reads from the names passed at start: two
 * connections must never share a name. */
void fd_store_name(char *buf, size_t size, int pid, uint64_t seq);
bool fd_store_name_is_connection(const char *name);
/* SEQ of @name if it is "echod-conn-@pid-SEQ", else 0. Pure. */
uint64_t fd_store_name_seq(const char *name, int pid);

/* FDSTORE=1 for @conn_fd under @name, with FDPOLL=0: PID 1 keeps it until we
 * remove it by name (or the service stops), so that the store holds exactly
 * what we counted in. */
int notify_fd_store(struct notify *n, int conn_fd, const char *name);
/* FDSTOREREMOVE=1: PID 1 closes every fd stored under @name. */
int notify_fd_store_remove(struct notify *n, const char *name);
/* BARRIER=1: returns the read end of a pipe whose write end went to PID 1,
 * which closes it once it has read every message we sent before: the read
 * end then polls POLLHUP. -errno if it could not be sent. */
int notify_barrier(struct notify *n);
