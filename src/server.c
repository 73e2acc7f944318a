/* The parent process; see server.h. Read server_run() first: every other
 * function here is one of its steps. */
#include "server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "notify.h"
#include "signals.h"

/* Connections taken per wake-up of a listener: enough to empty a burst in
 * few poll() calls, few enough that the signalfd is never kept waiting. */
#define ACCEPT_BATCH 32
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 1000u

int server_init(struct server *s, const struct options *o, struct socket_set *sockets,
                int signal_fd) {
        *s = (struct server) {
                .options = o,
                .signal_fd = signal_fd,
                .pending = { .fd = -1 },
                .status_changed = true,
                .watchdog_period_usec = notify_watchdog_period(),
        };
        int r = children_init(&s->children, o->max_connections);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sockets->n_listeners; i++)
                s->listeners[i] = sockets->listeners[i];
        s->n_listeners = sockets->n_listeners;
        sockets->n_listeners = 0;
        return 0;
}

void server_free(struct server *s) {
        for (size_t i = 0; i < s->n_listeners; i++)
                safe_close(s->listeners[i]);
        s->n_listeners = 0;
        s->pending.fd = safe_close(s->pending.fd);
        s->signal_fd = safe_close(s->signal_fd);
        children_free(&s->children);
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

static void send_status(struct server *s, usec_t now) {
        char text[STATUS_TEXT_MAX];
        status_format(text, sizeof text, n_active(s), s->n_total, s->stopping);
        (void) notify_status(text);
        s->status_changed = false;
        s->status_sent_usec = now;
}

/* Fork one child for @c. In the parent, the connection is the child's alone
 * from here: close our copy at once. On failure @c goes to the pending slot. */
static void spawn_child(struct server *s, struct connection *c) {
        pid_t pid = fork();
        if (pid == 0)
                echo_child(c, s->listeners, s->n_listeners, s->signal_fd,
                           s->options->idle_timeout_sec * USEC_PER_SEC);
        if (pid < 0) {
                int r = -errno;
                unsigned suppressed;
                s->pending = *c;
                pause_accepting(s);
                if (ratelimit_allow(&s->fork_failed, now_usec(), &suppressed))
                        log_fork_failed(r, s->backoff_ms, suppressed);
                return;
        }
        c->fd = safe_close(c->fd);
        (void) children_add(&s->children, pid);        /* cannot fail: sized for the cap */
        s->n_total++;
        s->status_changed = true;
        s->backoff_ms = 0;
        log_connection_opened((struct sockaddr *) &c->peer, c->peer_len, pid);
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

        c.fd = accept4(listen_fd, (struct sockaddr *) &c.peer, &c.peer_len, SOCK_CLOEXEC);
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

static void note_child_exit(struct server *s, pid_t pid, int status) {
        unsigned suppressed;
        if (children_forget(&s->children, pid) < 0)
                return;         /* not one of ours */
        s->status_changed = true;
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

static void signal_child(pid_t pid, void *userdata) {
        (void) kill(pid, *(int *) userdata);
}

static void signal_children(struct server *s, int signo) {
        children_foreach(&s->children, signal_child, &signo);
}

/* SIGTERM: close the listeners (systemd keeps its copies, so clients queue
 * for the next instance), ask every child to finish what it has read, and
 * give them shutdown_timeout seconds. */
static void begin_stop(struct server *s) {
        char text[STATUS_TEXT_MAX];

        if (s->stopping)
                return;
        s->stopping = true;
        for (size_t i = 0; i < s->n_listeners; i++)
                safe_close(s->listeners[i]);
        s->n_listeners = 0;
        s->pending.fd = safe_close(s->pending.fd);
        signal_children(s, SIGTERM);
        s->stop_deadline_usec = now_usec() + s->options->shutdown_timeout_sec * USEC_PER_SEC;
        status_format(text, sizeof text, n_active(s), s->n_total, true);
        (void) notify_stopping(text);
        log_stopping(n_active(s), s->options->shutdown_timeout_sec);
}

static int handle_signals(struct server *s) {
        for (;;) {
                int signo = signals_read(s->signal_fd);
                if (signo <= 0)
                        return signo;
                if (signo == SIGCHLD)
                        reap_children(s);
                else
                        begin_stop(s);
        }
}

/* Whatever is due by @now: a retried fork, the kill at the stop deadline, a
 * throttled STATUS, a watchdog ping. */
static void run_timers(struct server *s, usec_t now) {
        if (s->pending.fd >= 0 && now >= s->paused_until_usec)
                spawn_child(s, &s->pending);
        if (s->stopping && now >= s->stop_deadline_usec && n_active(s) > 0) {
                s->n_killed = n_active(s);
                signal_children(s, SIGKILL);
                s->stop_deadline_usec = USEC_INFINITY;  /* SIGCHLD reaps them */
        }
        if (s->status_changed && now >= status_next_usec(s->status_sent_usec))
                send_status(s, now);
        if (s->watchdog_period_usec > 0 &&
            now >= s->watchdog_sent_usec + s->watchdog_period_usec) {
                (void) notify_watchdog();
                s->watchdog_sent_usec = now;
        }
}

static usec_t earliest(usec_t a, usec_t b) {
        return a < b ? a : b;
}

static usec_t next_deadline(const struct server *s, usec_t now) {
        usec_t t = USEC_INFINITY;
        if (s->paused_until_usec > now && !s->stopping)
                t = earliest(t, s->paused_until_usec);
        if (s->stopping)
                t = earliest(t, s->stop_deadline_usec);
        if (s->status_changed)
                t = earliest(t, status_next_usec(s->status_sent_usec));
        if (s->watchdog_period_usec > 0)
                t = earliest(t, s->watchdog_sent_usec + s->watchdog_period_usec);
        return t;
}

/* One turn of the loop: wait for a signal, a client or a deadline. */
static int server_turn(struct server *s) {
        struct pollfd fds[1 + SOCKETS_MAX] = { { .fd = s->signal_fd, .events = POLLIN } };
        size_t n = 1;
        usec_t now = now_usec();

        if (accepting(s, now))
                for (size_t i = 0; i < s->n_listeners; i++)
                        fds[n++] = (struct pollfd) { .fd = s->listeners[i], .events = POLLIN };
        if (poll(fds, n, poll_timeout_ms(next_deadline(s, now), now)) < 0 && errno != EINTR)
                return -errno;

        if (fds[0].revents) {
                int r = handle_signals(s);
                if (r < 0)
                        return r;
        }
        for (size_t i = 1; i < n; i++)
                if (fds[i].revents)
                        accept_connections(s, fds[i].fd);
        run_timers(s, now_usec());
        return 0;
}

int server_run(struct server *s) {
        char text[STATUS_TEXT_MAX];

        status_format(text, sizeof text, 0, 0, false);
        (void) notify_ready(text);
        s->status_sent_usec = s->watchdog_sent_usec = now_usec();
        s->status_changed = false;

        while (!(s->stopping && n_active(s) == 0)) {
                int r = server_turn(s);
                if (r < 0)
                        return log_error_errno(r, "main loop failed");
        }
        send_status(s, now_usec());
        log_stopped(s->n_total, s->n_killed);
        return 0;
}
