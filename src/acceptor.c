/* echod-acceptor: the process that forks. It accepts connections on the
 * listening sockets echod hands it, forks one child per connection, which
 * echoes it (echo.c) and exits, and reaps its children; echod hears of each
 * (control.h) and keeps the counts, the log and the fd store. It is linked
 * against libc alone: a fork costs what the forking process maps, and this
 * one maps little, by construction. Only echod starts it.
 *
 * Read acceptor_run() first: every other function is one of its steps.
 * The loop: wait for an event; a connection → fork a child for it; SIGCHLD
 * → reap every exited child; a message from echod → act on it; echod gone
 * or a stop asked for → stop accepting, ask the children to finish, exit
 * once none is left. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "control.h"
#include "echo.h"
#include "fd-util.h"
#include "parent-only.h"
#include "signals.h"
#include "sources.h"

/* As in echod before the split: connections taken per wake-up of a
 * listener, and the back-off after accept() or fork() failed. */
#define ACCEPT_BATCH 32
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 1000u

/* The acceptor's command line, which a child overwrites with its own name. */
static char *title;
static size_t title_size;

/* In a new child: "echod-conn" in ps (its comm) and in systemctl status
 * (its command line, as proc(5) allows: the argv strings are the child's to
 * change), rather than the acceptor's name. */
static void name_child(void) {
        static const char name[] = "echod-conn";

        (void) prctl(PR_SET_NAME, name);
        if (title_size >= sizeof name) {
                memcpy(title, name, sizeof name);
                memset(title + sizeof name, 0, title_size - sizeof name);
        }
}

/* A connection accepted (or handed over to resume) when fork() then failed:
 * it waits here, and accepting pauses, until a retry can fork for it. */
struct pending {
        struct connection connection;   /* fd -1: none */
        uint32_t token;                 /* CONTROL_NO_TOKEN: accepted here */
};

struct acceptor {
        pid_t pid;                      /* our own, for the children */
        int control_fd, signal_fd, lifeline_fd, report_fd;
        int listeners[CONTROL_LISTENERS_MAX];
        size_t n_listeners;
        struct control_hello settings;
        bool ready;                     /* HELLO came */

        struct children children;       /* ours, by PID */
        struct sources sources;         /* per client address: ours and inherited */
        unsigned n_inherited;           /* live connections echod said are not ours */

        struct pending pending;
        usec_t paused_until_usec;
        unsigned backoff_ms;

        struct control_queue out;       /* records for echod, not sent yet */
        bool out_blocked;               /* echod has not read what we sent before */
        bool reap_owed;                 /* children left unreaped for want of room in out */

        bool stopping;
        bool echod_gone;
        usec_t stop_deadline_usec;
};

static unsigned n_active(const struct acceptor *a) {
        return (unsigned) a->children.n + a->n_inherited;
}

/* Sends what is queued for echod; once it is gone, nothing is. */
static void flush_out(struct acceptor *a) {
        if (a->echod_gone) {
                control_queue_clear(&a->out);
                return;
        }
        int r = control_queue_send(a->control_fd, &a->out);
        a->out_blocked = r == -EAGAIN;
        if (r < 0 && r != -EAGAIN)
                control_queue_clear(&a->out);   /* echod is gone: its lifeline says so too */
}

/* Room for one more record to echod, sending what is queued if need be.
 * Without room, whatever would make a record waits: a connection in the
 * backlog, an exited child unreaped. The last CONTROL_BATCH_MAX slots are
 * kept for the answers to a message from echod. */
static bool has_room(struct acceptor *a) {
        if (a->out.n >= CONTROL_QUEUE_MAX - CONTROL_BATCH_MAX)
                flush_out(a);
        return a->out.n < CONTROL_QUEUE_MAX - CONTROL_BATCH_MAX;
}

static void emit(struct acceptor *a, struct control_record record, int fd) {
        if (control_queue_add(&a->out, &record, fd) < 0)
                safe_close(fd);         /* callers checked has_room(): cannot happen */
}

static void emit_event(struct acceptor *a, enum control_kind kind, int status, unsigned count) {
        emit(a, (struct control_record) { .kind = kind, .status = status, .count = count }, -1);
}

/* The cap is what the loop polls: at max_connections, after a failure, with
 * a connection waiting for a fork, or with no room for what accepting tells
 * echod, the listeners leave the poll set and the backlog holds new
 * clients. */
static bool accepting(struct acceptor *a, usec_t now) {
        return a->ready && !a->stopping && a->n_listeners > 0 && a->pending.connection.fd < 0 &&
               now >= a->paused_until_usec && n_active(a) < a->settings.max_connections &&
               has_room(a);
}

static void pause_accepting(struct acceptor *a) {
        a->backoff_ms = a->backoff_ms == 0 ? BACKOFF_MIN_MS : a->backoff_ms * 2;
        if (a->backoff_ms > BACKOFF_MAX_MS)
                a->backoff_ms = BACKOFF_MAX_MS;
        a->paused_until_usec = now_usec() + a->backoff_ms * USEC_PER_MSEC;
}

/* The key under which --max-connections-per-source counts @peer: false when
 * there is no such limit, or no address to count (AF_UNIX). */
static bool limited_source(const struct acceptor *a, const struct sockaddr_storage *peer,
                           struct in6_addr *ret) {
        return a->sources.slots && source_key((const struct sockaddr *) peer, ret);
}

/* Fork one child for @c; @token: CONTROL_NO_TOKEN for a connection accepted
 * here, else the connection the fd store kept that echod asked us to serve.
 * On failure @c goes to the pending slot. */
static void spawn_child(struct acceptor *a, struct connection *c, uint32_t token) {
        const struct echo_child_setup setup = {
                .report_fd = a->report_fd,
                .signal_fd = a->signal_fd,
                .lifeline_fd = a->lifeline_fd,
                .idle_usec = a->settings.idle_usec,
                .stop_timeout_usec = a->settings.shutdown_usec,
                .fd_store = a->settings.fd_store,
                .stored = token != CONTROL_NO_TOKEN,
                .acceptor_pid = a->pid,
        };
        struct in6_addr source;

        pid_t pid = fork();
        if (pid == 0) {
                name_child();
                echo_child(c, &setup);
        }
        if (pid < 0) {
                int r = -errno;
                a->pending = (struct pending) { .connection = *c, .token = token };
                pause_accepting(a);
                emit_event(a, CONTROL_FORK_FAILED, r, a->backoff_ms);
                return;
        }
        a->backoff_ms = 0;
        /* Neither can fail: both are sized for everything echod counts. */
        (void) children_add(&a->children, &(struct child) { .pid = pid, .peer = c->peer,
                                                            .peer_len = c->peer_len });
        if (limited_source(a, &c->peer, &source))
                (void) sources_add(&a->sources, &source);
        /* With a store, echod keeps a copy of a new connection (see
         * fdstore.h); a resumed one it has already. */
        bool copy = a->settings.fd_store && token == CONTROL_NO_TOKEN;
        emit(a, (struct control_record) { .kind = CONTROL_OPENED, .pid = pid, .token = token,
                                          .peer = c->peer, .peer_len = c->peer_len },
             copy ? take_fd(&c->fd) : -1);
        c->fd = safe_close(c->fd);
}

/* --max-connections-per-source: a client address already holding its share
 * gets this connection closed at once; nobody else notices. */
static bool source_over_limit(struct acceptor *a, const struct connection *c) {
        unsigned limit = a->settings.max_connections_per_source;
        struct in6_addr source;

        if (!limited_source(a, &c->peer, &source) || sources_count(&a->sources, &source) < limit)
                return false;
        emit(a, (struct control_record) { .kind = CONTROL_REFUSED, .count = limit,
                                          .peer = c->peer, .peer_len = c->peer_len }, -1);
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
static bool accept_one(struct acceptor *a, int listen_fd) {
        struct connection c = { .peer_len = sizeof c.peer };

        /* Non-blocking from birth: the child's pump needs it, and this saves
         * it two fcntl() calls. */
        c.fd = accept4(listen_fd, (struct sockaddr *) &c.peer, &c.peer_len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c.fd < 0) {
                int error = errno;
                if (accept_error_is_transient(error))
                        return error != EAGAIN;
                /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in
                 * the backlog; try again once something was freed. */
                pause_accepting(a);
                emit_event(a, CONTROL_ACCEPT_FAILED, -error, a->backoff_ms);
                return false;
        }
        if (source_over_limit(a, &c))
                safe_close(c.fd);
        else
                spawn_child(a, &c, CONTROL_NO_TOKEN);
        return true;
}

static void accept_connections(struct acceptor *a, int listen_fd) {
        for (int i = 0; i < ACCEPT_BATCH && accepting(a, now_usec()); i++)
                if (!accept_one(a, listen_fd))
                        break;
        if (n_active(a) >= a->settings.max_connections && has_room(a))
                emit_event(a, CONTROL_LIMIT_REACHED, 0, a->settings.max_connections);
}

/* Pending SIGCHLDs merge into one, so a single wake-up may stand for many
 * exits: reap until the kernel says nobody else is waiting, or until echod
 * has no room for more news (the rest then wait as zombies). */
static void reap_children(struct acceptor *a) {
        struct child child;
        struct in6_addr source;

        a->reap_owed = false;
        for (;;) {
                if (!has_room(a)) {
                        a->reap_owed = true;
                        return;
                }
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;         /* 0: the rest still run; -1: none left */
                if (children_forget(&a->children, pid, &child) < 0)
                        continue;
                if (limited_source(a, &child.peer, &source))
                        sources_remove(&a->sources, &source);
                emit(a, (struct control_record) { .kind = CONTROL_EXITED, .pid = pid,
                                                  .status = status }, -1);
        }
}

static void signal_child(pid_t pid, void *userdata) {
        (void) kill(pid, *(int *) userdata);
}

static void signal_children(struct acceptor *a, int signo) {
        children_foreach(&a->children, signal_child, &signo);
}

static void close_listeners(struct acceptor *a) {
        for (size_t i = 0; i < a->n_listeners; i++)
                safe_close(a->listeners[i]);
        a->n_listeners = 0;
}

/* A stop: no more accepting; a connection still waiting for a fork goes
 * back to echod, which keeps it in the store for the next instance; every
 * child is asked to finish, and killed if it has not after the shutdown
 * timeout. */
static void begin_stop(struct acceptor *a) {
        if (a->stopping)
                return;
        a->stopping = true;
        close_listeners(a);
        struct connection *c = &a->pending.connection;
        if (c->fd >= 0) {
                bool resumed = a->pending.token != CONTROL_NO_TOKEN;
                emit(a, (struct control_record) { .kind = CONTROL_UNSERVED,
                                                  .token = a->pending.token },
                     resumed ? -1 : take_fd(&c->fd));
                c->fd = safe_close(c->fd);
        }
        signal_children(a, SIGTERM);
        a->stop_deadline_usec = now_usec() + a->settings.shutdown_usec;
}

/* HELLO: the tables, sized for every connection echod may count. */
static int start(struct acceptor *a, const struct control_hello *hello) {
        if (a->ready)
                return 0;
        a->settings = *hello;
        int r = children_init(&a->children, hello->capacity);
        if (r >= 0 && hello->max_connections_per_source > 0)
                r = sources_init(&a->sources, hello->capacity);
        if (r < 0)
                return r;
        a->ready = true;
        return 0;
}

static void inherit(struct acceptor *a, const struct control_record *record, int delta) {
        struct in6_addr source;

        a->n_inherited += (unsigned) delta;
        if (!limited_source(a, &record->peer, &source))
                return;
        if (delta > 0)
                (void) sources_add(&a->sources, &source);
        else
                sources_remove(&a->sources, &source);
}

/* A connection the fd store kept, to serve as @token. Without its fd (the
 * kernel could not give it to us), or while fork() fails, echod is asked to
 * send it again later. */
static void resume(struct acceptor *a, uint32_t token, int fd) {
        struct connection c = { .fd = fd, .peer_len = sizeof c.peer };

        if (fd < 0 || a->pending.connection.fd >= 0 || a->stopping) {
                safe_close(fd);
                emit(a, (struct control_record) { .kind = CONTROL_UNSERVED, .token = token },
                     -1);
                return;
        }
        (void) getpeername(fd, (struct sockaddr *) &c.peer, &c.peer_len);
        spawn_child(a, &c, token);
}

static void add_listener(struct acceptor *a, int fd) {
        if (fd < 0 || a->n_listeners == CONTROL_LISTENERS_MAX || a->stopping)
                safe_close(fd);
        else
                a->listeners[a->n_listeners++] = fd;
}

static void keep_fd(int *where, int fd) {
        safe_close(*where);
        *where = fd;
}

/* One record from echod, with its fd (-1: none; ours now). Returns 0, or
 * -errno when the acceptor cannot go on. */
static int handle_record(struct acceptor *a, const struct control_record *record, int fd) {
        /* A socket echod sent that the kernel could not give us (no free
         * fd): without it we cannot serve as echod expects; exiting, we are
         * started again. */
        bool needs_fd = record->kind == CONTROL_LISTENER || record->kind == CONTROL_LIFELINE ||
                        record->kind == CONTROL_REPORTS;
        if (needs_fd && fd < 0)
                return fd == -EMFILE ? -EMFILE : -EBADF;
        switch (record->kind) {
        case CONTROL_HELLO:
                return start(a, &record->hello);
        case CONTROL_LISTENER:
                add_listener(a, fd);
                return 0;
        case CONTROL_LIFELINE:
                keep_fd(&a->lifeline_fd, fd);
                return 0;
        case CONTROL_REPORTS:
                keep_fd(&a->report_fd, fd);
                return 0;
        case CONTROL_RESUME:
                resume(a, record->token, fd);
                return 0;
        case CONTROL_INHERIT:
                inherit(a, record, +1);
                return 0;
        case CONTROL_RELEASE:
                inherit(a, record, -1);
                return 0;
        case CONTROL_STORED:
        case CONTROL_UNSTORED:
                /* Ours, reaped or not: its PID cannot have been reused. */
                if (children_find(&a->children, record->pid))
                        (void) kill(record->pid, record->kind == CONTROL_STORED
                                                         ? SIGNAL_STORED : SIGNAL_UNSTORED);
                return 0;
        case CONTROL_STOP_ACCEPTING:
                close_listeners(a);
                return 0;
        case CONTROL_STOP:
                /* Before the stop's SIGTERM, so that no child hands over. */
                if (record->count == CONTROL_STOP_FINISH_ALL && !a->stopping)
                        signal_children(a, SIGNAL_UNSTORED);
                begin_stop(a);
                return 0;
        case CONTROL_PING:
                emit_event(a, CONTROL_PONG, 0, record->count);
                return 0;
        default:
                safe_close(fd);
                return 0;
        }
}

/* echod is gone (its end of the socket closed, or its lifeline hung up):
 * nobody is left to count, store or serve; the children stop too (each
 * sees the lifeline), and we wait for them. */
static void echod_gone(struct acceptor *a) {
        a->echod_gone = true;
        control_queue_clear(&a->out);
        begin_stop(a);
}

/* Reads what echod sent, as long as there is room for what it may make us
 * tell it. Returns 0, or -errno when the acceptor cannot go on. */
static int read_control(struct acceptor *a) {
        struct control_record records[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX];

        while (!a->echod_gone && has_room(a)) {
                int n = control_receive(a->control_fd, records, fds);
                if (n == -EAGAIN || n == -EINTR)
                        return 0;
                if (n <= 0) {
                        echod_gone(a);
                        return 0;
                }
                size_t next_fd = 0;
                for (int i = 0; i < n; i++) {
                        int fd = records[i].has_fd ? fds[next_fd++] : -1;
                        int r = handle_record(a, &records[i], fd);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static void handle_signals(struct acceptor *a) {
        int signo;

        /* SIGTERM and SIGINT are for the children (which read them from the
         * same signalfd, theirs after the fork): echod stops the acceptor
         * with CONTROL_STOP, or by going away. */
        while ((signo = signals_read(a->signal_fd)) > 0)
                if (signo == SIGCHLD)
                        reap_children(a);
}

/* Whatever is due by @now: a retried fork, the kill at the stop deadline. */
static void run_timers(struct acceptor *a, usec_t now) {
        struct pending *p = &a->pending;

        if (p->connection.fd >= 0 && !a->stopping && now >= a->paused_until_usec &&
            has_room(a)) {
                struct pending retry = *p;
                p->connection.fd = -1;
                spawn_child(a, &retry.connection, retry.token);
        }
        if (a->stopping && now >= a->stop_deadline_usec && a->children.n > 0) {
                signal_children(a, SIGKILL);
                a->stop_deadline_usec = USEC_INFINITY;  /* SIGCHLD reaps them */
        }
        if (a->reap_owed)
                reap_children(a);
}

static usec_t next_deadline(const struct acceptor *a, usec_t now) {
        usec_t t = USEC_INFINITY;
        if (a->paused_until_usec > now && !a->stopping)
                t = a->paused_until_usec;
        if (a->stopping && a->stop_deadline_usec < t)
                t = a->stop_deadline_usec;
        return t;
}

/* The loop's fds besides the listeners. */
enum { POLL_SIGNALS, POLL_CONTROL, POLL_LIFELINE, POLL_LISTENERS };

/* One turn of the loop: wait for a signal, echod, a client or a deadline. */
static int acceptor_turn(struct acceptor *a) {
        struct pollfd fds[POLL_LISTENERS + CONTROL_LISTENERS_MAX] = {
                [POLL_SIGNALS] = { .fd = a->signal_fd, .events = POLLIN },
                [POLL_CONTROL] = { .fd = a->echod_gone ? -1 : a->control_fd,
                                   .events = (short) (POLLIN | (a->out_blocked ? POLLOUT : 0)) },
                [POLL_LIFELINE] = { .fd = a->lifeline_fd, .events = POLLIN },
        };
        size_t n = POLL_LISTENERS;
        usec_t now = now_usec();

        if (accepting(a, now))
                for (size_t i = 0; i < a->n_listeners; i++)
                        fds[n++] = (struct pollfd) { .fd = a->listeners[i], .events = POLLIN };
        if (poll(fds, n, poll_timeout_ms(next_deadline(a, now), now)) < 0 && errno != EINTR)
                return -errno;

        if (fds[POLL_SIGNALS].revents)
                handle_signals(a);
        if (fds[POLL_CONTROL].revents & POLLOUT)
                a->out_blocked = false;
        if (fds[POLL_CONTROL].revents & (POLLIN | POLLHUP | POLLERR)) {
                int r = read_control(a);
                if (r < 0)
                        return r;
        }
        if (fds[POLL_LIFELINE].revents) {
                a->lifeline_fd = safe_close(a->lifeline_fd);
                echod_gone(a);
        }
        for (size_t i = POLL_LISTENERS; i < n && !a->stopping; i++)
                if (fds[i].revents)
                        accept_connections(a, fds[i].fd);
        run_timers(a, now_usec());
        flush_out(a);
        return 0;
}

static int acceptor_run(struct acceptor *a) {
        while (!(a->stopping && a->children.n == 0)) {
                int r = acceptor_turn(a);
                if (r < 0)
                        return r;
        }
        flush_out(a);   /* the last EXITED records: echod waits for them */
        return 0;
}

/* fd 3 must be the control socket echod made: one of a SOCK_SEQPACKET pair. */
static bool started_by_echod(void) {
        int type;
        socklen_t len = sizeof type;
        return getsockopt(CONTROL_FD, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
               type == SOCK_SEQPACKET;
}

int main(int argc, char *argv[]) {
        /* Our state in memory no child gets (MADV_DONTFORK): we write it
         * after every fork, and each page of it a child shared would be
         * copied at our next write. A child needs none of it: what it uses
         * is on the stack when it is forked. */
        struct acceptor *a = parent_only_calloc(1, sizeof *a);
        if (!a) {
                fputs("echod-acceptor: out of memory\n", stderr);
                return 1;
        }
        *a = (struct acceptor) { .pid = getpid(), .control_fd = CONTROL_FD, .lifeline_fd = -1,
                                 .report_fd = -1, .pending.connection.fd = -1 };

        if (!started_by_echod()) {
                fputs("echod-acceptor: started by echod only (its fd 3 is not echod's "
                      "control socket)\n", stderr);
                return 2;
        }
        /* Started from an fd, kernels before 6.14 named us after its number:
         * say who we are. */
        (void) prctl(PR_SET_NAME, "echod-acceptor");
        if (argc > 0 && argv[0]) {
                title = argv[0];
                title_size = strlen(argv[0]) + 1;
        }
        a->signal_fd = signals_open();
        if (a->signal_fd < 0) {
                fprintf(stderr, "echod-acceptor: cannot set up signal handling: %s\n",
                        strerror(-a->signal_fd));
                return 1;
        }
        int r = acceptor_run(a);
        if (r < 0) {
                fprintf(stderr, "echod-acceptor: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
