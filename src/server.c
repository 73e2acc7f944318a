/* The parent process; see server.h. Read server_run() first: every other
 * function here is one of its steps. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "lean.h"
#include "log.h"
#include "notify.h"
#include "signals.h"

/* Connections taken per wake-up of a listener: enough to empty a burst in
 * few poll() calls, few enough that the signalfd is never kept waiting. */
#define ACCEPT_BATCH 32
/* Stored connections resumed per turn of the loop: READY=1 need not wait
 * for thousands of forks after a restart, and new clients and signals are
 * served meanwhile. */
#define RESUME_BATCH 64
/* Datagrams echoed per wake-up of one UDP socket, for the same reason. */
#define DATAGRAM_BATCH 64
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 1000u

/* The names of the connections the previous instance left in the store. */
static int resume_names(struct server *s) {
        size_t n = s->sockets.n_stored;
        if (n == 0)
                return fd_store_resume(&s->fd_store, NULL, 0);
        const char **names = calloc(n, sizeof *names);
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                names[i] = s->sockets.stored[i].name;
        int r = fd_store_resume(&s->fd_store, names, n);
        free(names);
        return r;
}

int server_init(struct server *s, const struct options *o, struct socket_set *sockets,
                int signal_fd, struct notify *notify, unsigned fd_store_max) {
        *s = (struct server) {
                .options = o,
                .signal_fd = signal_fd,
                .notify = *notify,
                .report_fds = { -1, -1 },
                .pending = { .fd = -1 },
                .status_changed = true,
                .pid = getpid(),
                .watchdog_period_usec = notify_watchdog_period(),
        };
        *notify = NOTIFY_NONE;
        fd_store_init(&s->fd_store, fd_store_max, s->pid);
        s->sockets = *sockets;
        *sockets = SOCKET_SET_EMPTY;
        /* Connections resumed from the fd store come on top of the cap, in
         * both tables: every one of them may be from a client of its own. */
        size_t capacity = o->max_connections + s->sockets.n_stored;
        int r = children_init(&s->children, capacity);
        if (r < 0)
                return r;
        if (o->max_connections_per_source > 0) {
                r = sources_init(&s->sources, capacity);
                if (r < 0)
                        return r;
        }
        if (log_enabled(LOG_LEVEL_DEBUG) && pipe2(s->report_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        r = resume_names(s);
        if (r < 0)
                return r;
        if (s->fd_store.max > 0 && o->max_connections > s->fd_store.max)
                log_notice("--max-connections=%u is above the fd store's size (%u): connections "
                           "beyond %u will not survive a restart", o->max_connections,
                           s->fd_store.max, s->fd_store.max);
        return 0;
}

void server_free(struct server *s) {
        sockets_close(&s->sockets);
        s->pending.fd = safe_close(s->pending.fd);
        s->signal_fd = safe_close(s->signal_fd);
        s->report_fds[0] = safe_close(s->report_fds[0]);
        s->report_fds[1] = safe_close(s->report_fds[1]);
        children_free(&s->children);
        sources_free(&s->sources);
        fd_store_free(&s->fd_store);
        notify_close(&s->notify);
}

static unsigned n_active(const struct server *s) {
        return (unsigned) s->children.n;
}

/* The cap is what the loop polls: at max_connections, after a failure, or
 * with a connection still waiting for a fork, the listeners leave the poll
 * set and the kernel's backlog holds new clients. */
static bool accepting(const struct server *s, usec_t now) {
        return !s->stopping && s->pending.fd < 0 && now >= s->paused_until_usec &&
               n_active(s) < s->options->max_connections;
}

static void pause_accepting(struct server *s) {
        s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_MIN_MS : s->backoff_ms * 2;
        if (s->backoff_ms > BACKOFF_MAX_MS)
                s->backoff_ms = BACKOFF_MAX_MS;
        s->paused_until_usec = now_usec() + s->backoff_ms * USEC_PER_MSEC;
}

static void format_status(const struct server *s, char *text) {
        struct status st = {
                .n_active = n_active(s),
                .n_total = s->n_total,
                .n_refused = s->n_refused,
                .datagrams = s->sockets.n_datagrams > 0 || s->udp.echoed + s->udp.dropped > 0,
                .datagrams_echoed = s->udp.echoed,
                .datagrams_dropped = s->udp.dropped,
                .stopping = s->stopping,
        };
        status_format(text, STATUS_TEXT_MAX, &st);
}

/* A message PID 1 had no room for goes out again once the notify socket
 * polls writable. */
static int notified(struct server *s, int r) {
        if (r == -EAGAIN)
                s->notify_blocked = true;
        return r;
}

static void send_status(struct server *s, usec_t now) {
        char text[STATUS_TEXT_MAX];
        format_status(s, text);
        if (notified(s, notify_status(&s->notify, text)) == -EAGAIN)
                return;
        s->status_changed = false;
        s->status_sent_usec = now;
}

/* The key under which --max-connections-per-source counts @peer: false when
 * there is no such limit, or no address to count (AF_UNIX). */
static bool limited_source(const struct server *s, const struct sockaddr_storage *peer,
                           struct in6_addr *ret) {
        return s->sources.slots && source_key((const struct sockaddr *) peer, ret);
}

/* Takes over @c's fd: the parent keeps a copy of a new connection while it
 * is young (with an fd store), and closes any other at once, as the child's
 * alone. */
static void remember_child(struct server *s, pid_t pid, struct connection *c) {
        struct child child = { .pid = pid, .peer = c->peer, .peer_len = c->peer_len,
                               .start_usec = now_usec(), .young_fd = -1,
                               .store_state = FD_STORE_YOUNG };
        struct in6_addr source;

        memcpy(child.fd_store_name, c->fd_store_name, sizeof child.fd_store_name);
        if (child.fd_store_name[0] != '\0')
                child.store_state = FD_STORE_CONFIRMED;         /* resumed */
        if (child.fd_store_name[0] == '\0' && fd_store_keep_young(&s->fd_store, child.start_usec))
                child.young_fd = take_fd(&c->fd);
        else
                c->fd = safe_close(c->fd);
        /* Neither can fail: both are sized for the cap plus the connections
         * resumed, and the loop stops accepting at the cap. */
        (void) children_add(&s->children, &child);
        if (limited_source(s, &c->peer, &source))
                (void) sources_add(&s->sources, &source);
}

/* Fork one child for @c. On failure @c goes to the pending slot. */
static void spawn_child(struct server *s, struct connection *c) {
        /* Everything the child needs, on the stack before the fork: @s (and
         * @c when it is s->pending) live in parent-only memory, which the
         * child does not have (see main.c). */
        struct connection conn = *c;
        const struct echo_child_setup setup = {
                .report_fd = s->report_fds[1],
                .signal_fd = s->signal_fd,
                .idle_usec = s->options->idle_timeout_sec * USEC_PER_SEC,
                .stop_timeout_usec = s->options->shutdown_timeout_sec * USEC_PER_SEC,
                .parent_pid = s->pid,
                .fd_store = s->fd_store.max > 0,
                .stored = c->fd_store_name[0] != '\0',
        };
        /* Not fork(): a real fork, minus what fork() adds for threads and
         * atfork handlers, which echod has neither of (fork() resets the
         * stdio, loader and atfork locks in the child, writing pages every
         * child copies, and would run libsystemd's atfork handler, which the
         * child does not map); see lean_fork() for what it drops further. */
        pid_t pid = lean_fork();
        if (pid == 0)
                echo_child(&conn, &setup);
        if (pid < 0) {
                int r = -errno;
                unsigned suppressed;
                s->pending = *c;
                pause_accepting(s);
                if (ratelimit_allow(&s->fork_failed, now_usec(), &suppressed))
                        log_fork_failed(r, s->backoff_ms, suppressed);
                return;
        }
        remember_child(s, pid, c);
        s->n_total++;
        s->status_changed = true;
        s->backoff_ms = 0;
        log_connection_opened((struct sockaddr *) &c->peer, c->peer_len, pid);
}

/* The connections the previous instance left in the fd store: one child
 * each, as for a new connection, RESUME_BATCH a turn, unless fork() fails
 * (then they wait). */
static bool resuming(const struct server *s) {
        return s->sockets.next_stored < s->sockets.n_stored && s->pending.fd < 0 &&
               !s->stopping;
}

static void resume_stored(struct server *s) {
        struct socket_set *set = &s->sockets;

        for (int i = 0; i < RESUME_BATCH && resuming(s); i++) {
                const char *name;
                struct connection c = { .fd = sockets_take_stored(set, &name),
                                        .peer_len = sizeof c.peer };
                if (c.fd < 0) {
                        log_warning_errno(c.fd, "cannot take back stored connection %s, "
                                          "dropping it from the fd store", name);
                        fd_store_drop(&s->fd_store, name);
                        continue;
                }
                (void) getpeername(c.fd, (struct sockaddr *) &c.peer, &c.peer_len);
                snprintf(c.fd_store_name, sizeof c.fd_store_name, "%s", name);
                spawn_child(s, &c);
        }
}

/* --max-connections-per-source: a client address already holding its share
 * gets this connection closed at once; nobody else notices. */
static bool source_over_limit(struct server *s, const struct connection *c) {
        unsigned limit = s->options->max_connections_per_source;
        struct in6_addr source;
        unsigned suppressed;

        if (!limited_source(s, &c->peer, &source) || sources_count(&s->sources, &source) < limit)
                return false;
        s->n_refused++;
        s->status_changed = true;
        if (ratelimit_allow(&s->source_limit, now_usec(), &suppressed))
                log_source_limit_reached((const struct sockaddr *) &c->peer, c->peer_len, limit,
                                         suppressed);
        return true;
}

/* Errors that concern one connection that already went away, or nothing at
 * all: accept(2) lists the network errors Linux passes on, to be retried. */
static bool accept_error_is_transient(int error) {
        switch (error) {
        case EAGAIN: case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN:
        case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
        case EOPNOTSUPP: case ENETUNREACH:
                return true;
        default:
                return false;
        }
}

/* Accepts and forks for one connection. Returns true to go on with the
 * batch, false when the listener is empty or accepting had to pause. */
static bool accept_one(struct server *s, int listen_fd) {
        struct connection c = { .peer_len = sizeof c.peer };

        /* Non-blocking from birth: the child's pump needs it, and this saves
         * it two fcntl() calls. */
        c.fd = accept4(listen_fd, (struct sockaddr *) &c.peer, &c.peer_len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c.fd < 0) {
                int error = errno;
                unsigned suppressed;
                if (accept_error_is_transient(error))
                        return error != EAGAIN;
                /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in
                 * the backlog; try again once something was freed. */
                pause_accepting(s);
                if (ratelimit_allow(&s->accept_failed, now_usec(), &suppressed))
                        log_accept_failed(-error, s->backoff_ms, suppressed);
                return false;
        }
        if (source_over_limit(s, &c))
                safe_close(c.fd);
        else
                spawn_child(s, &c);
        return true;
}

static void accept_connections(struct server *s, int listen_fd) {
        for (int i = 0; i < ACCEPT_BATCH && accepting(s, now_usec()); i++)
                if (!accept_one(s, listen_fd))
                        break;
        if (n_active(s) >= s->options->max_connections) {
                unsigned suppressed;
                if (ratelimit_allow(&s->limit_reached, now_usec(), &suppressed))
                        log_limit_reached(s->options->max_connections, suppressed);
        }
}

/* A child writes its report before it exits, so by the time it can be
 * reaped its report is in the pipe. */
static void read_reports(struct server *s) {
        struct echo_report report;

        if (s->report_fds[0] < 0)
                return;
        while (read(s->report_fds[0], &report, sizeof report) == (ssize_t) sizeof report) {
                struct child *child = children_find(&s->children, report.pid);
                if (!child)
                        continue;
                child->reported = true;
                child->result = report.result;
                child->bytes = report.bytes;
        }
}

/* Whether a child that exited with @status left its connection to the next
 * instance: handed over, or killed at the shutdown timeout, during a stop.
 * One killed at any other time (the OOM killer, a crash, kill -9) ended its
 * connection: it leaves the store, so that its client sees the end. */
static bool left_open(const struct server *s, int status) {
        return s->stopping && (WIFSIGNALED(status) ||
                               (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_HANDED_OVER));
}

static void note_child_exit(struct server *s, pid_t pid, int status) {
        struct child child;
        struct in6_addr source;
        unsigned suppressed;

        const struct child *found = children_find(&s->children, pid);
        if (!found)
                return;         /* not one of ours */
        /* Its report is in the pipe by now (unless it was killed): read it. */
        if (!found->reported)
                read_reports(s);
        (void) children_forget(&s->children, pid, &child);
        if (limited_source(s, &child.peer, &source))
                sources_remove(&s->sources, &source);
        fd_store_child_ended(&s->fd_store, &child, left_open(s, status));
        s->status_changed = true;
        if (child.reported)
                log_connection_closed((struct sockaddr *) &child.peer, child.peer_len,
                                      child.bytes, now_usec() - child.start_usec, child.result,
                                      pid);
        if (WIFSIGNALED(status) && !s->stopping &&
            ratelimit_allow(&s->child_killed, now_usec(), &suppressed))
                log_child_killed(pid, WTERMSIG(status), suppressed);
}

/* Pending SIGCHLDs merge into one, so a single wake-up may stand for many
 * exits: reap until the kernel says nobody else is waiting. */
static void reap_children(struct server *s) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;         /* 0: the rest still run; -1: none left */
                note_child_exit(s, pid, status);
        }
}

static void echo_datagrams(struct server *s, int fd) {
        struct udp_drop drop;
        unsigned suppressed;
        uint64_t echoed = s->udp.echoed, dropped = s->udp.dropped;

        int r = udp_echo_ready(fd, DATAGRAM_BATCH, &s->udp, &drop);
        if (r < 0)
                log_warning_errno(r, "datagram socket fd %d", fd);
        if (s->udp.echoed != echoed || s->udp.dropped != dropped)
                s->status_changed = true;
        /* One example per batch; the rest of the batch counts as held back,
         * so that the log accounts for every drop STATUS counts. */
        unsigned n_dropped = (unsigned) (s->udp.dropped - dropped);
        if (n_dropped > 0 &&
            ratelimit_allow_many(&s->datagram_dropped, now_usec(), n_dropped, &suppressed))
                log_datagram_dropped((struct sockaddr *) &drop.source, drop.source_len,
                                     drop.reason, suppressed);
}

static void signal_child(pid_t pid, void *userdata) {
        (void) kill(pid, *(int *) userdata);
}

static void signal_children(struct server *s, int signo) {
        children_foreach(&s->children, signal_child, &signo);
}

/* PID 1 has confirmed it holds the connection: its child hands it over at a
 * stop from now on. (The child is still ours, reaped or not: its PID cannot
 * have been reused.) */
static void tell_child_stored(pid_t pid, void *userdata) {
        (void) userdata;
        (void) kill(pid, SIGNAL_STORED);
}

/* The young connections due go into the fd store: those at least
 * FD_STORE_MIN_AGE_USEC old, or, stopping, all of them. Those the store has
 * no room for, or PID 1 no time for, stay young and are tried again at the
 * next flush; at a stop, they end as without a store. */
static void store_young(struct server *s, usec_t now) {
        struct fd_store_shortfall shortfall;
        unsigned suppressed;
        usec_t born_before = s->stopping ? USEC_INFINITY : now - FD_STORE_MIN_AGE_USEC;

        fd_store_flush(&s->fd_store, &s->notify, &s->children, born_before, now, &shortfall);
        if (shortfall.n_full > 0 && ratelimit_allow(&s->fd_store_full, now, &suppressed))
                log_fd_store_full(s->fd_store.max, shortfall.n_full, suppressed);
        (void) notified(s, shortfall.error);
        if (shortfall.n_failed > 0 && shortfall.error != -EAGAIN &&
            ratelimit_allow(&s->fd_store_failed, now, &suppressed))
                log_fd_store_failed(shortfall.error, shortfall.n_failed, suppressed);
}

/* A connection still waiting for a fork when the stop comes: no child will
 * echo it here, so it goes into the store for the next instance. */
static void store_pending(struct server *s) {
        if (s->pending.fd < 0)
                return;
        if (s->pending.fd_store_name[0] == '\0')
                (void) notified(s, fd_store_one(&s->fd_store, &s->notify, s->pending.fd));
        s->pending.fd = safe_close(s->pending.fd);
}

/* Stopping: once PID 1 has confirmed every connection sent to the store (or
 * at the confirmation deadline), every child is asked to finish: those told
 * their connection is stored hand it over, the others write back what they
 * read and close it. */
static void signal_children_when_confirmed(struct server *s, usec_t now) {
        if (!s->stopping || s->children_signalled)
                return;
        if (s->fd_store.n_unconfirmed > 0 && now < s->confirm_deadline_usec)
                return;
        signal_children(s, SIGTERM);
        s->children_signalled = true;
}

/* At most this long, and half the shutdown timeout, a stop waits for PID 1
 * to confirm the connections it just sent to the store. */
#define STOP_CONFIRM_MAX_USEC (2 * USEC_PER_SEC)

static void send_stopping(struct server *s) {
        char text[STATUS_TEXT_MAX];
        format_status(s, text);
        s->stopping_sent = notified(s, notify_stopping(&s->notify, text)) != -EAGAIN;
}

/* SIGTERM: close the listeners and datagram sockets (systemd keeps its
 * copies, so clients queue for the next instance), put every connection not
 * in the fd store yet there, then, once PID 1 confirmed them, ask every
 * child to finish what it has read (handing a stored connection over), and
 * give them shutdown_timeout seconds in all. */
static void begin_stop(struct server *s) {
        usec_t now = now_usec();
        usec_t timeout = s->options->shutdown_timeout_sec * USEC_PER_SEC;

        if (s->stopping)
                return;
        s->stopping = true;
        sockets_close(&s->sockets);
        store_young(s, now);
        store_pending(s);
        s->stop_deadline_usec = now + timeout;
        s->confirm_deadline_usec = now + (timeout / 2 < STOP_CONFIRM_MAX_USEC
                                                  ? timeout / 2 : STOP_CONFIRM_MAX_USEC);
        signal_children_when_confirmed(s, now);
        send_stopping(s);
        log_stopping(n_active(s), s->options->shutdown_timeout_sec);
}

static int handle_signals(struct server *s) {
        for (;;) {
                int signo = signals_read(s->signal_fd);
                if (signo <= 0)
                        return signo;
                if (signo == SIGCHLD)
                        reap_children(s);
                else if (signo == SIGTERM || signo == SIGINT)
                        begin_stop(s);
                /* SIGNAL_STORED is for children; a stray one is ignored. */
        }
}

/* What is owed to PID 1 and may have found its queue full: READY=1 and
 * STOPPING=1, the fd store's removals (sent before any store, so that
 * their slots are free when a store comes), and the barrier that confirms
 * the stores sent. */
static void send_owed(struct server *s) {
        if (!s->ready_sent) {
                char text[STATUS_TEXT_MAX];
                format_status(s, text);
                s->ready_sent = notified(s, notify_ready(&s->notify, text)) != -EAGAIN;
        }
        if (s->stopping && !s->stopping_sent)
                send_stopping(s);
        (void) notified(s, fd_store_send_removals(&s->fd_store, &s->notify));
        (void) notified(s, fd_store_send_barrier(&s->fd_store, &s->notify, now_usec()));
}

/* Whatever is due by @now: messages owed to PID 1, a retried fork, young
 * connections for the fd store, the children's stop, the kill at the stop
 * deadline, a throttled STATUS, a watchdog ping. */
static void run_timers(struct server *s, usec_t now) {
        send_owed(s);
        if (s->pending.fd >= 0 && now >= s->paused_until_usec)
                spawn_child(s, &s->pending);
        if (now >= s->paused_until_usec)
                resume_stored(s);
        if (!s->children_signalled && now >= s->fd_store.next_flush_usec)
                store_young(s, now);
        (void) fd_store_check_barrier(&s->fd_store, &s->notify, now);
        signal_children_when_confirmed(s, now);
        if (s->stopping && now >= s->stop_deadline_usec && n_active(s) > 0) {
                s->n_killed = n_active(s);
                signal_children(s, SIGKILL);
                s->stop_deadline_usec = USEC_INFINITY;  /* SIGCHLD reaps them */
        }
        if (s->status_changed && now >= status_next_usec(s->status_sent_usec))
                send_status(s, now);
        if (s->watchdog_period_usec > 0 &&
            now >= s->watchdog_sent_usec + s->watchdog_period_usec &&
            notified(s, notify_watchdog(&s->notify)) != -EAGAIN)
                s->watchdog_sent_usec = now;
}

static usec_t earliest(usec_t a, usec_t b) {
        return a < b ? a : b;
}

static usec_t next_deadline(const struct server *s, usec_t now) {
        usec_t t = USEC_INFINITY;
        if (s->paused_until_usec > now && !s->stopping)
                t = earliest(t, s->paused_until_usec);
        else if (resuming(s))
                t = now;
        if (s->stopping)
                t = earliest(t, s->children_signalled ? s->stop_deadline_usec
                                                      : s->confirm_deadline_usec);
        if (!s->children_signalled)
                t = earliest(t, s->fd_store.next_flush_usec);
        if (s->fd_store.barrier_fd >= 0)
                t = earliest(t, s->fd_store.barrier_sent_usec + FD_STORE_BARRIER_TIMEOUT_USEC);
        if (s->status_changed)
                t = earliest(t, status_next_usec(s->status_sent_usec));
        if (s->watchdog_period_usec > 0)
                t = earliest(t, s->watchdog_sent_usec + s->watchdog_period_usec);
        return t;
}

/* PID 1 has room in its queue again: what it had none for goes at once,
 * young connections due for the store included, rather than at the next
 * flush (its queue holds as few as 10 messages, net.unix.max_dgram_qlen). */
static void notify_unblocked(struct server *s, usec_t now) {
        s->notify_blocked = false;
        if (s->fd_store.next_flush_usec > now && s->fd_store.n_young > s->fd_store.n_unconfirmed)
                s->fd_store.next_flush_usec = now;
}

/* The loop's fds besides the sockets: the signalfd, PID 1's answer to a
 * barrier, and the notify socket while PID 1 has no room for our messages. */
enum { POLL_SIGNALS, POLL_BARRIER, POLL_NOTIFY, POLL_SOCKETS };

/* One turn of the loop: wait for a signal, a client, a datagram, PID 1 or a
 * deadline. */
static int server_turn(struct server *s) {
        struct pollfd fds[POLL_SOCKETS + 2 * SOCKETS_MAX] = {
                [POLL_SIGNALS] = { .fd = s->signal_fd, .events = POLLIN },
                [POLL_BARRIER] = { .fd = s->fd_store.barrier_fd, .events = POLLIN },
                [POLL_NOTIFY] = { .fd = s->notify_blocked ? s->notify.fd : -1, .events = POLLOUT },
        };
        const struct socket_set *set = &s->sockets;
        size_t n = POLL_SOCKETS, n_datagrams = set->n_datagrams;
        usec_t now = now_usec();

        for (size_t i = 0; i < n_datagrams; i++)
                fds[n++] = (struct pollfd) { .fd = set->datagrams[i], .events = POLLIN };
        if (accepting(s, now))
                for (size_t i = 0; i < set->n_listeners; i++)
                        fds[n++] = (struct pollfd) { .fd = set->listeners[i], .events = POLLIN };
        if (poll(fds, n, poll_timeout_ms(next_deadline(s, now), now)) < 0 && errno != EINTR)
                return -errno;

        if (fds[POLL_SIGNALS].revents) {
                int r = handle_signals(s);
                if (r < 0)
                        return r;
        }
        if (fds[POLL_NOTIFY].revents)
                notify_unblocked(s, now_usec());
        if (fds[POLL_BARRIER].revents)
                fd_store_confirm(&s->fd_store, &s->notify, &s->children, now_usec(),
                                 tell_child_stored, NULL);
        /* A SIGTERM just handled closed every socket: poll results are stale. */
        for (size_t i = POLL_SOCKETS; i < n && !s->stopping; i++) {
                if (!fds[i].revents)
                        continue;
                if (i < POLL_SOCKETS + n_datagrams)
                        echo_datagrams(s, fds[i].fd);
                else
                        accept_connections(s, fds[i].fd);
        }
        run_timers(s, now_usec());
        return 0;
}

int server_run(struct server *s) {
        if (s->sockets.n_stored > 0)
                log_info("resuming %zu connection%s kept in the fd store", s->sockets.n_stored,
                         s->sockets.n_stored == 1 ? "" : "s");
        send_owed(s);           /* READY=1 */
        s->status_sent_usec = s->watchdog_sent_usec = now_usec();
        s->status_changed = false;

        while (!(s->stopping && n_active(s) == 0)) {
                int r = server_turn(s);
                if (r < 0)
                        return log_error_errno(r, "main loop failed");
        }
        /* Connections that ended during the stop leave the store now, if
         * PID 1 has room; those it has not stay for the next instance, which
         * finds them ended. */
        send_owed(s);
        send_status(s, now_usec());
        log_stopped(s->n_total, s->n_killed);
        return 0;
}
