/* echod's main process; see server.h. Read server_run() first: every other
 * function here is one of its steps. The loop: wait for an event; the
 * acceptor says a connection opened or ended → count it, log it, keep its
 * copy for the fd store; a datagram → send it back; SIGCHLD → the acceptor
 * died (start another; its children are ours now) or one of those ended;
 * SIGTERM → store what is young, stop the acceptor and drain. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "proc.h"
#include "signals.h"
#include "stop-info.h"

/* Stored connections handed to the acceptor at a time: READY=1 need not
 * wait for thousands of forks after a restart, and new clients and signals
 * are served meanwhile. */
#define RESUME_BATCH 64
/* ...and how long to wait before sending one the acceptor could not serve
 * (fork() failed) again. */
#define RESUME_RETRY_USEC (100 * USEC_PER_MSEC)
/* Datagrams echoed per wake-up of one UDP socket, so that one busy socket
 * cannot starve the loop. */
#define DATAGRAM_BATCH 64
/* The acceptor is asked whether it is alive this often, and one that has
 * not answered for ACCEPTOR_HANG_USEC is killed and started again (its
 * children go on). */
#define ACCEPTOR_PING_USEC USEC_PER_SEC
#define ACCEPTOR_HANG_USEC (5 * USEC_PER_SEC)
/* A wake-up this late after its deadline means echod itself was not
 * running (see notice_lost_time()). */
#define LOST_TIME_USEC USEC_PER_SEC
/* Between two starts of an acceptor that keeps dying: doubling from 100 ms. */
#define ACCEPTOR_BACKOFF_MIN_MS 100u
#define ACCEPTOR_BACKOFF_MAX_MS 1000u
/* The acceptor kills its children at the shutdown timeout; echod kills
 * what is left this much later. */
#define STOP_BACKSTOP_USEC (2 * USEC_PER_SEC)

static unsigned n_active(const struct server *s) {
        return (unsigned) s->children.n;
}

/* A message PID 1 had no room for goes out again once the notify socket
 * polls writable. */
static int notified(struct server *s, int r) {
        if (r == -EAGAIN)
                s->notify_blocked = true;
        return r;
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

static void send_status(struct server *s, usec_t now) {
        char text[STATUS_TEXT_MAX];
        format_status(s, text);
        if (notified(s, notify_status(&s->notify, text)) == -EAGAIN)
                return;
        s->status_changed = false;
        s->status_sent_usec = now;
}

/* --- the acceptor's news: connections that open and end --- */

/* Queues @record for the acceptor, with @fd (ours, closed once sent). A
 * record with an fd is queued only where there is room for it (see
 * acceptor_process_has_room()); when none runs, the next one hears all it
 * needs when it starts. */
static void tell_acceptor(struct server *s, struct control_record record, int fd) {
        if (s->acceptor.pid == 0 || acceptor_process_queue(&s->acceptor, &record, fd) < 0)
                safe_close(fd);
}

static void tell_child_stored(pid_t pid, void *userdata);

/* A connection opened: the acceptor forked child @r->pid for it. With a
 * store, @fd is echod's copy of it. A resumed connection (@r->token) is in
 * the store already, under its name, and our copy is the one the store
 * passed; its child waits for our word that it is its own. */
static void connection_opened(struct server *s, const struct control_record *r, int fd) {
        struct child child = { .pid = r->pid, .peer = r->peer, .peer_len = r->peer_len,
                               .start_usec = now_usec(), .copy_fd = -1, .token = -1,
                               .store_state = FD_STORE_YOUNG };
        bool resumed = r->token < s->sockets.n_stored;
        struct child early;

        /* Its report may have come first (it ended at once): keep it. */
        if (children_forget(&s->children, r->pid, &early) == 0) {
                child.reported = early.reported;
                child.result = early.result;
                child.bytes = early.bytes;
        }

        if (resumed) {
                struct stored_connection *stored = &s->sockets.stored[r->token];
                memcpy(child.fd_store_name, stored->name, sizeof child.fd_store_name);
                child.store_state = FD_STORE_CONFIRMED;
                child.token = (int32_t) r->token;
                child.copy_fd = take_fd(&stored->fd);
                stored->resuming = false;
                s->n_resuming--;
        } else if (fd == -EMFILE) {
                unsigned suppressed;
                if (ratelimit_allow(&s->copy_lost, child.start_usec, &suppressed))
                        log_copy_lost(suppressed);
        } else if (fd >= 0 && fd_store_keep_young(&s->fd_store, child.start_usec)) {
                child.copy_fd = take_fd(&fd);
                if (s->stopping && !s->finish_all)      /* just before a restart: store now */
                        s->fd_store.next_flush_usec = child.start_usec;
        }
        safe_close(fd);
        if (children_add(&s->children, &child) < 0)
                log_warning_errno(-ENOSPC, "child %d: more connections than counted", r->pid);
        else if (resumed)
                tell_child_stored(child.pid, s);
        s->n_total++;
        s->status_changed = true;
        log_connection_opened((struct sockaddr *) &child.peer, child.peer_len, child.pid);
}

/* A child writes its report before it exits, so by the time the acceptor
 * says it exited its report is in the pipe. A report may also come before
 * the acceptor's word that the child opened (a connection that ended at
 * once): it is kept, in a record of its own, until that word comes. */
static void read_reports(struct server *s) {
        struct echo_report report;

        if (s->report_fds[0] < 0)
                return;
        while (read(s->report_fds[0], &report, sizeof report) == (ssize_t) sizeof report) {
                struct child *child = children_find(&s->children, report.pid);
                if (!child) {
                        struct child early = { .pid = report.pid, .copy_fd = -1 };
                        if (children_add(&s->children, &early) < 0)
                                continue;
                        child = children_find(&s->children, report.pid);
                }
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

/* A resumed connection's child gave it back untouched (its acceptor died
 * before we heard of it, see echo.c): it goes to the next acceptor. At a
 * stop, it stays in the store as it is. */
static bool given_back(struct server *s, struct child *child, int status) {
        if (child->token < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != CHILD_EXIT_GIVEN_BACK)
                return false;
        if (!s->stopping && child->copy_fd >= 0) {
                struct stored_connection *stored = &s->sockets.stored[child->token];
                stored->fd = take_fd(&child->copy_fd);
                if ((size_t) child->token < s->next_resume)
                        s->next_resume = (size_t) child->token;
        }
        return true;
}

/* Connection child @pid exited with wait status @status. */
static void connection_ended(struct server *s, pid_t pid, int status) {
        struct child child;
        unsigned suppressed;

        const struct child *found = children_find(&s->children, pid);
        if (!found)
                return;         /* not one of ours */
        if (!found->reported)
                read_reports(s);
        (void) children_forget(&s->children, pid, &child);
        if (child.adopted)      /* the acceptor counted it for its limits */
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_RELEASE,
                                                           .peer = child.peer,
                                                           .peer_len = child.peer_len }, -1);
        if (given_back(s, &child, status)) {
                fd_store_child_ended(&s->fd_store, &child, true);
                s->status_changed = true;
                return;
        }
        fd_store_child_ended(&s->fd_store, &child, left_open(s, status));
        s->status_changed = true;
        if (child.reported)
                log_connection_closed((struct sockaddr *) &child.peer, child.peer_len,
                                      child.bytes, now_usec() - child.start_usec, child.result,
                                      pid);
        if (s->stopping && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                s->n_killed++;
        if (WIFSIGNALED(status) && !s->stopping &&
            ratelimit_allow(&s->child_killed, now_usec(), &suppressed))
                log_child_killed(pid, WTERMSIG(status), suppressed);
}

/* A connection the acceptor accepted and never served (a stop came before a
 * fork could): it goes into the store for the next instance. A resumed one
 * it could not serve (@r->token) is sent again later. */
static void connection_unserved(struct server *s, const struct control_record *r, int fd) {
        if (r->token < s->sockets.n_stored) {
                s->sockets.stored[r->token].resuming = false;
                s->n_resuming--;
                if (r->token < s->next_resume)
                        s->next_resume = r->token;
                s->resume_after_usec = now_usec() + RESUME_RETRY_USEC;
        } else if (fd >= 0 && s->stopping && !s->finish_all) {
                (void) notified(s, fd_store_one(&s->fd_store, &s->notify, fd));
        }
        safe_close(fd);
}

static void log_event(struct server *s, const struct control_record *r) {
        unsigned suppressed;
        usec_t now = now_usec();

        switch (r->kind) {
        case CONTROL_REFUSED:
                s->n_refused++;
                s->status_changed = true;
                if (ratelimit_allow(&s->source_limit, now, &suppressed))
                        log_source_limit_reached((const struct sockaddr *) &r->peer, r->peer_len,
                                                 r->count, suppressed);
                break;
        case CONTROL_ACCEPT_FAILED:
                if (ratelimit_allow(&s->accept_failed, now, &suppressed))
                        log_accept_failed(r->status, r->count, suppressed);
                break;
        case CONTROL_FORK_FAILED:
                if (ratelimit_allow(&s->fork_failed, now, &suppressed))
                        log_fork_failed(r->status, r->count, suppressed);
                break;
        case CONTROL_LIMIT_REACHED:
                if (ratelimit_allow(&s->limit_reached, now, &suppressed))
                        log_limit_reached(r->count, suppressed);
                break;
        default:
                break;
        }
}

static void handle_record(struct server *s, const struct control_record *r, int fd) {
        switch (r->kind) {
        case CONTROL_OPENED:
                connection_opened(s, r, fd);
                return;
        case CONTROL_EXITED:
                connection_ended(s, r->pid, r->status);
                return;
        case CONTROL_UNSERVED:
                connection_unserved(s, r, fd);
                return;
        case CONTROL_PONG:
                s->pong_usec = now_usec();
                s->answered_since_watchdog = true;
                if (r->count == s->ping_seq)
                        s->ping_sent_usec = 0;
                if (s->drain_ping != 0 && r->count == s->drain_ping) {
                        s->drain_ping = 0;      /* every connection opened is known now */
                        s->fd_store.next_flush_usec = s->pong_usec;
                }
                return;
        default:
                log_event(s, r);
                safe_close(fd);
                return;
        }
}

static void read_acceptor(struct server *s) {
        struct control_record records[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX];

        for (;;) {
                int n = control_receive(s->acceptor.control_fd, records, fds);
                if (n < 0 && n != -EPROTO)
                        return;         /* -EAGAIN; or it is gone, which SIGCHLD says */
                if (n == 0)
                        return;
                size_t next_fd = 0;
                for (int i = 0; i < n; i++)
                        handle_record(s, &records[i], records[i].has_fd ? fds[next_fd++] : -1);
        }
}

/* --- the acceptor's life --- */

static int dup_for_acceptor(int fd) {
        return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* What a new acceptor needs: its settings, the lifeline, where reports go,
 * the listeners, and the connections it did not fork but must count. */
static void greet_acceptor(struct server *s) {
        const struct options *o = s->options;
        struct control_record hello = { .kind = CONTROL_HELLO, .hello = {
                .max_connections = o->max_connections,
                .max_connections_per_source = o->max_connections_per_source,
                .capacity = o->max_connections + (uint32_t) s->sockets.n_stored +
                            (uint32_t) s->children.n,
                .idle_usec = o->idle_timeout_sec * USEC_PER_SEC,
                .shutdown_usec = o->shutdown_timeout_sec * USEC_PER_SEC,
                .fd_store = s->fd_store.max > 0,
                .reports = s->report_fds[1] >= 0,
        } };
        struct child *child;
        size_t cursor = 0;

        tell_acceptor(s, hello, -1);
        tell_acceptor(s, (struct control_record) { .kind = CONTROL_LIFELINE },
                      dup_for_acceptor(s->acceptor.lifeline[0]));
        if (s->report_fds[1] >= 0)
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_REPORTS },
                              dup_for_acceptor(s->report_fds[1]));
        for (size_t i = 0; i < s->sockets.n_listeners; i++)
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_LISTENER },
                              dup_for_acceptor(s->sockets.listeners[i]));
        while ((child = children_next(&s->children, &cursor)))
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_INHERIT,
                                                           .peer = child->peer,
                                                           .peer_len = child->peer_len }, -1);
}

static int start_acceptor(struct server *s) {
        s->acceptor_restart_usec = USEC_INFINITY;
        pid_t pid = acceptor_process_start(&s->acceptor);
        if (pid < 0)
                return pid;
        s->pong_usec = s->acceptor.started_usec = now_usec();
        s->ping_sent_usec = 0;
        greet_acceptor(s);
        return 0;
}

/* Without a subreaper, the acceptor's children went to PID 1 when it died:
 * they go on, we lose count of them. Their connections stay in the store
 * as they are (the next instance finds out which have ended). */
static void lose_children(struct server *s) {
        struct child child;
        size_t cursor = 0;
        const struct child *next;

        while ((next = children_next(&s->children, &cursor))) {
                pid_t pid = next->pid;
                (void) children_forget(&s->children, pid, &child);
                fd_store_child_ended(&s->fd_store, &child, true);
                cursor = 0;     /* the map changed */
        }
        s->status_changed = true;
}

/* The acceptor died, by itself or by our hand: its children are ours now
 * (we are the children's subreaper). A connection whose child it reaped
 * and never told us about has ended. A resumed connection it had not told
 * us it forked for goes to the next one: any child it forked for it gives
 * it back untouched (echo.c). */
static void adopt_children(struct server *s) {
        struct child *child;
        size_t cursor = 0;
        pid_t gone[CONTROL_BATCH_MAX];
        size_t n_gone;

        if (!s->subreaper) {
                lose_children(s);
                return;
        }
        do {
                n_gone = 0;
                while (n_gone < CONTROL_BATCH_MAX && (child = children_next(&s->children, &cursor))) {
                        siginfo_t info = { .si_pid = 0 };
                        if (waitid(P_PID, (id_t) child->pid, &info,
                                   WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) {
                                gone[n_gone++] = child->pid;
                                continue;
                        }
                        child->adopted = true;
                        /* Our word may have died with the acceptor, and a
                         * resumed child waits for it; the others ignore a
                         * repeat. */
                        if (child->told_stored)
                                (void) kill(child->pid, SIGNAL_STORED);
                }
                /* Its status is lost: a stop keeps such a connection in the
                 * store (the next instance finds out); otherwise it ended. */
                for (size_t i = 0; i < n_gone; i++)
                        connection_ended(s, gone[i], s->stopping ? (int) SIGKILL : 0);
        } while (n_gone == CONTROL_BATCH_MAX);
}

/* A child of ours we have no record of: the acceptor forked it and died
 * before it could tell us (see adopt_unknown_children()). */
static void adopt_unknown(pid_t pid, void *userdata) {
        struct server *s = userdata;
        struct child child = { .pid = pid, .start_usec = now_usec(), .copy_fd = -1, .token = -1,
                               .adopted = true, .store_state = FD_STORE_YOUNG };

        if (pid == s->acceptor.pid || children_find(&s->children, pid))
                return;
        if (children_add(&s->children, &child) == 0) {
                s->n_total++;
                s->status_changed = true;
        }
}

/* The acceptor may die between a fork and telling us of the child: that
 * child is ours now, serving a connection we know nothing of but that it
 * exists. It counts towards --max-connections (not per source: its client
 * is unknown), is stopped with the rest, and is never stored (we have no
 * copy). A resumed connection's child we do not know gives its connection
 * back (echo.c). */
static void adopt_unknown_children(struct server *s) {
        if (!s->subreaper)
                return;
        int r = proc_children(s->pid, adopt_unknown, s);
        if (r < 0)
                log_warning_errno(r, "cannot look for children the acceptor left in /proc");
}

static void acceptor_exited(struct server *s, int status) {
        usec_t now = now_usec();
        bool quick = now - s->acceptor.started_usec < 10 * USEC_PER_SEC;

        acceptor_process_gone(&s->acceptor);
        s->drain_ping = 0;
        adopt_children(s);
        adopt_unknown_children(s);
        for (size_t i = 0; i < s->sockets.n_stored; i++)
                s->sockets.stored[i].resuming = false;  /* sent again to the next one */
        s->n_resuming = 0;
        s->next_resume = 0;
        if (s->stopping)
                return;
        s->acceptor_backoff_ms = !quick || s->acceptor_backoff_ms == 0
                                         ? ACCEPTOR_BACKOFF_MIN_MS
                                         : s->acceptor_backoff_ms * 2;
        if (s->acceptor_backoff_ms > ACCEPTOR_BACKOFF_MAX_MS)
                s->acceptor_backoff_ms = ACCEPTOR_BACKOFF_MAX_MS;
        s->acceptor_restart_usec = now + s->acceptor_backoff_ms * USEC_PER_MSEC;
        log_acceptor_died(status, n_active(s), s->acceptor_backoff_ms);
}

/* Pending SIGCHLDs merge into one, so a single wake-up may stand for many
 * exits: reap until the kernel says nobody else is waiting. Our children
 * are the acceptor, and the connections' children it left when it died. */
static void reap_children(struct server *s) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;         /* 0: the rest still run; -1: none left */
                if (pid == s->acceptor.pid) {
                        read_acceptor(s);       /* its last news first */
                        acceptor_exited(s, status);
                } else {
                        connection_ended(s, pid, status);
                }
        }
}

/* How often the acceptor is asked: at least twice per watchdog period, so
 * that every WATCHDOG=1 can follow an answer. */
static usec_t ping_interval(const struct server *s) {
        if (s->watchdog_period_usec > 0 && s->watchdog_period_usec / 2 < ACCEPTOR_PING_USEC)
                return s->watchdog_period_usec / 2;
        return ACCEPTOR_PING_USEC;
}

/* Kills an acceptor that has not answered a ping for ACCEPTOR_HANG_USEC
 * (stopped, or stuck): its children go on, a new one takes over. */
static void check_acceptor_alive(struct server *s, usec_t now) {
        if (s->acceptor.pid == 0 || s->stopping)
                return;
        usec_t asked = s->ping_sent_usec != 0 && now > s->ping_sent_usec
                               ? now - s->ping_sent_usec : 0;
        if (asked >= ACCEPTOR_HANG_USEC) {
                log_acceptor_hung(s->acceptor.pid, asked / USEC_PER_MSEC);
                (void) kill(s->acceptor.pid, SIGKILL);  /* SIGCHLD: acceptor_exited() */
                s->pong_usec = now;
                s->ping_sent_usec = 0;
                return;
        }
        usec_t silent = now > s->pong_usec ? now - s->pong_usec : 0;
        if (s->ping_sent_usec == 0 && silent >= ping_interval(s)) {
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_PING,
                                                           .count = ++s->ping_seq }, -1);
                s->ping_sent_usec = now;
        }
}

/* Whether connections are being served: each WATCHDOG=1 follows an answer
 * from the acceptor since the last one (or a stop, which is bounded, is
 * under way). A hung acceptor is replaced well before systemd's watchdog
 * fires; one that cannot be replaced lets it fire. */
static bool serving(const struct server *s) {
        return s->stopping || (s->acceptor.pid != 0 && s->answered_since_watchdog);
}

/* --- the fd store --- */

/* The connections the previous instance left in the store: one child each,
 * RESUME_BATCH at a time, each held by echod until its child runs. */
static void resume_stored(struct server *s, usec_t now) {
        struct socket_set *set = &s->sockets;

        if (now < s->resume_after_usec)
                return;
        for (; s->next_resume < set->n_stored && s->n_resuming < RESUME_BATCH &&
               s->acceptor.pid != 0 && !s->stopping; s->next_resume++) {
                struct stored_connection *stored = &set->stored[s->next_resume];
                if (stored->fd < 0 || stored->resuming)
                        continue;
                int copy = dup_for_acceptor(stored->fd);
                if (copy < 0 || !acceptor_process_has_room(&s->acceptor, 1)) {
                        safe_close(copy);
                        return;
                }
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_RESUME,
                                                           .token = (uint32_t) s->next_resume },
                              copy);
                stored->resuming = true;
                s->n_resuming++;
        }
}

/* PID 1 has confirmed it holds the connection: its child hands it over at a
 * stop from now on. Its parent tells it: the acceptor, or we, once the
 * child is ours (a PID is safe to signal only for its parent). */
static void tell_child_stored(pid_t pid, void *userdata) {
        struct server *s = userdata;
        struct child *child = children_find(&s->children, pid);

        /* At a stop that is no restart, every child was told otherwise
         * already (the acceptor's CONTROL_STOP, signal_adopted()). */
        if (!child || s->finish_all)
                return;
        child->told_stored = true;
        if (child->adopted)
                (void) kill(pid, SIGNAL_STORED);
        else
                tell_acceptor(s, (struct control_record) { .kind = CONTROL_STORED, .pid = pid },
                              -1);
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

/* PID 1 has room in its queue again: what it had none for goes at once,
 * young connections due for the store included, rather than at the next
 * flush (its queue holds as few as 10 messages, net.unix.max_dgram_qlen). */
static void notify_unblocked(struct server *s, usec_t now) {
        s->notify_blocked = false;
        if (s->fd_store.next_flush_usec > now && s->fd_store.n_young > 0)
                s->fd_store.next_flush_usec = now;
}

/* --- stopping --- */

/* Before a restart's stop: a child told its connection is stored, whose
 * connection is not certainly there now (fd_store_restart() took it back,
 * and it found no room again), is told otherwise: it finishes it. */
static void unstore_unconfirmed(struct server *s) {
        struct child *child;
        size_t cursor = 0;

        while ((child = children_next(&s->children, &cursor))) {
                if (!child->told_stored || child->store_state == FD_STORE_CONFIRMED)
                        continue;
                child->told_stored = false;
                if (child->adopted)
                        (void) kill(child->pid, SIGNAL_UNSTORED);
                else
                        tell_acceptor(s, (struct control_record) { .kind = CONTROL_UNSTORED,
                                                                   .pid = child->pid }, -1);
        }
}

static void signal_adopted(struct server *s, int signo) {
        struct child *child;
        size_t cursor = 0;

        while ((child = children_next(&s->children, &cursor)))
                if (child->adopted)
                        (void) kill(child->pid, signo);
}

/* Stopping for a restart: once PID 1 has confirmed every connection sent to
 * the store (or at the confirmation deadline), every child is asked to
 * finish: those told their connection is stored hand it over, the others
 * write back what they read and close it. At any other stop, at once, and
 * each is told first that its connection does not count as stored. */
static void signal_children_when_confirmed(struct server *s, usec_t now) {
        if (!s->stopping || s->children_signalled)
                return;
        bool drained = s->drain_ping == 0 || s->acceptor.pid == 0;
        if (!s->finish_all && (!drained || !fd_store_settled(&s->fd_store)) &&
            now < s->confirm_deadline_usec)
                return;
        if (!s->finish_all) {
                if (!fd_store_settled(&s->fd_store))
                        log_notice("PID 1 has not confirmed the fd store within %.1f s of the "
                                   "stop: %u connections sent and %u waiting are not kept, "
                                   "they end here", s->options->shutdown_timeout_sec / 2.0,
                                   s->fd_store.n_unconfirmed, s->fd_store.n_young);
                unstore_unconfirmed(s);
        }
        tell_acceptor(s, (struct control_record) {
                .kind = CONTROL_STOP,
                .count = s->finish_all ? CONTROL_STOP_FINISH_ALL : 0 }, -1);
        if (s->finish_all)
                signal_adopted(s, SIGNAL_UNSTORED);
        signal_adopted(s, SIGTERM);
        s->children_signalled = true;
}

static void send_stopping(struct server *s) {
        char text[STATUS_TEXT_MAX];
        format_status(s, text);
        s->stopping_sent = notified(s, notify_stopping(&s->notify, text)) != -EAGAIN;
}

/* With a store: what ExecStop= says this stop is. Only a restart keeps
 * connections; see stop-info.h. Returns what the log says of it. */
static const char *plan_stop(struct server *s) {
        struct stop_info info;

        if (s->fd_store.max == 0)
                return NULL;
        int r = stop_info_read(s->runtime_dir, &info);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "cannot read what the stop is (%s/" STOP_INFO_FILE "); "
                                  "taking it for no restart", s->runtime_dir);
        s->finish_all = !info.restart;
        if (s->finish_all)
                return "no restart follows: every connection is finished here";
        /* Removals first: PID 1 must have let go before the stores come. */
        fd_store_restart(&s->fd_store, &s->children, info.fd_store_max);
        (void) notified(s, fd_store_send_removals(&s->fd_store, &s->notify));
        return "a restart: connections in the fd store go on in the next instance";
}

/* SIGTERM: stop accepting and close the datagram sockets (systemd keeps its
 * copies, so clients queue for the next instance). At a restart, put every
 * connection not in the fd store yet there, then, once PID 1 confirmed
 * them, ask every child to finish what it has read (handing a stored
 * connection over); at any other stop, ask every child to finish its
 * connection at once. Give them shutdown_timeout seconds in all. */
static void begin_stop(struct server *s) {
        usec_t now = now_usec();
        usec_t timeout = s->options->shutdown_timeout_sec * USEC_PER_SEC;

        if (s->stopping)
                return;
        s->stopping = true;
        const char *how = plan_stop(s);
        s->acceptor_restart_usec = USEC_INFINITY;
        tell_acceptor(s, (struct control_record) { .kind = CONTROL_STOP_ACCEPTING }, -1);
        sockets_close_listening(&s->sockets);
        if (!s->finish_all) {
                store_young(s, now);
                /* Connections accepted before the acceptor stopped, whose news
                 * is still on its way, are stored once it has come. */
                if (s->acceptor.pid != 0) {
                        s->drain_ping = ++s->ping_seq;
                        tell_acceptor(s, (struct control_record) { .kind = CONTROL_PING,
                                                                   .count = s->drain_ping },
                                      -1);
                }
        }
        s->stop_deadline_usec = now + timeout + STOP_BACKSTOP_USEC;
        /* PID 1 confirms in milliseconds when it is idle; busy, its notify
         * queue (as few as 10 messages) may take seconds to drain. Half the
         * shutdown timeout leaves the other half for the children. */
        s->confirm_deadline_usec = now + timeout / 2;
        signal_children_when_confirmed(s, now);
        send_stopping(s);
        log_stopping(n_active(s), s->options->shutdown_timeout_sec, how);
}

/* The shutdown timeout is long past, and something still runs (a stopped
 * acceptor, a child it left): kill it all. */
static void kill_what_is_left(struct server *s) {
        if (s->acceptor.pid != 0)
                (void) kill(s->acceptor.pid, SIGKILL);
        signal_adopted(s, SIGKILL);
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

/* --- datagrams --- */

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

/* --- the loop --- */

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

/* Whatever is due by @now: messages owed to PID 1, an acceptor to start
 * again or to ping, stored connections to resume, young connections for
 * the fd store, the children's stop and its deadline, a throttled STATUS, a
 * watchdog ping. */
static void run_timers(struct server *s, usec_t now) {
        send_owed(s);
        if (now >= s->acceptor_restart_usec) {
                int r = start_acceptor(s);
                if (r < 0) {
                        log_warning_errno(r, "cannot start the acceptor %s, trying again",
                                          s->acceptor_path);
                        s->acceptor_restart_usec = now + ACCEPTOR_BACKOFF_MAX_MS * USEC_PER_MSEC;
                }
        }
        check_acceptor_alive(s, now);
        resume_stored(s, now);
        if (!s->children_signalled && !s->finish_all && now >= s->fd_store.next_flush_usec)
                store_young(s, now);
        (void) fd_store_check_barrier(&s->fd_store, &s->notify, now);
        signal_children_when_confirmed(s, now);
        if (s->stopping && now >= s->stop_deadline_usec) {
                kill_what_is_left(s);
                s->stop_deadline_usec = now + STOP_BACKSTOP_USEC;
        }
        if (s->status_changed && now >= status_next_usec(s->status_sent_usec))
                send_status(s, now);
        if (s->watchdog_period_usec > 0 &&
            now >= s->watchdog_sent_usec + s->watchdog_period_usec && serving(s) &&
            notified(s, notify_watchdog(&s->notify)) != -EAGAIN) {
                s->watchdog_sent_usec = now;
                s->answered_since_watchdog = false;
        }
}

static usec_t earliest(usec_t a, usec_t b) {
        return a < b ? a : b;
}

static usec_t next_deadline(const struct server *s, usec_t now) {
        usec_t t = s->acceptor_restart_usec;
        if (s->acceptor.pid != 0 && !s->stopping)
                t = earliest(t, s->ping_sent_usec != 0 ? s->ping_sent_usec + ACCEPTOR_HANG_USEC
                                                       : s->pong_usec + ping_interval(s));
        if (s->next_resume < s->sockets.n_stored && s->resume_after_usec > now)
                t = earliest(t, s->resume_after_usec);
        if (s->stopping)
                t = earliest(t, s->children_signalled ? s->stop_deadline_usec
                                                      : s->confirm_deadline_usec);
        if (!s->children_signalled)
                t = earliest(t, s->fd_store.next_flush_usec);
        if (s->fd_store.barrier_fd >= 0)
                t = earliest(t, s->fd_store.barrier_sent_usec + FD_STORE_BARRIER_TIMEOUT_USEC);
        if (s->status_changed)
                t = earliest(t, status_next_usec(s->status_sent_usec));
        if (s->watchdog_period_usec > 0 && serving(s))
                t = earliest(t, s->watchdog_sent_usec + s->watchdog_period_usec);
        return t > now ? t : now;
}

/* A turn that woke long after its deadline: echod did not run meanwhile
 * (SIGSTOP, systemctl freeze, a paused VM), and its acceptor most likely
 * not either. Time that passed while we could not ask is not the
 * acceptor's silence: the wait for its answer starts again. */
static void notice_lost_time(struct server *s, usec_t deadline) {
        usec_t now = now_usec();

        if (deadline == USEC_INFINITY || now < deadline + LOST_TIME_USEC)
                return;
        s->pong_usec = now;
        if (s->ping_sent_usec != 0)
                s->ping_sent_usec = now;
}

/* The loop's fds besides the datagram sockets: the signalfd, the acceptor,
 * PID 1's answer to a barrier, and the notify socket while PID 1 has no room
 * for our messages. */
enum { POLL_SIGNALS, POLL_ACCEPTOR, POLL_BARRIER, POLL_NOTIFY, POLL_DATAGRAMS };

/* One turn of the loop: wait for a signal, the acceptor, a datagram, PID 1
 * or a deadline. */
static int server_turn(struct server *s) {
        struct pollfd fds[POLL_DATAGRAMS + SOCKETS_MAX] = {
                [POLL_SIGNALS] = { .fd = s->signal_fd, .events = POLLIN },
                [POLL_ACCEPTOR] = { .fd = s->acceptor.control_fd,
                                    .events = (short) (POLLIN |
                                                       (s->acceptor.out_blocked ? POLLOUT : 0)) },
                [POLL_BARRIER] = { .fd = s->fd_store.barrier_fd, .events = POLLIN },
                [POLL_NOTIFY] = { .fd = s->notify_blocked ? s->notify.fd : -1, .events = POLLOUT },
        };
        size_t n = POLL_DATAGRAMS;
        usec_t now = now_usec();

        /* Whatever was queued for the acceptor goes before we sleep. */
        (void) acceptor_process_flush(&s->acceptor);
        fds[POLL_ACCEPTOR].events = (short) (POLLIN | (s->acceptor.out_blocked ? POLLOUT : 0));
        for (size_t i = 0; i < s->sockets.n_datagrams; i++)
                fds[n++] = (struct pollfd) { .fd = s->sockets.datagrams[i], .events = POLLIN };
        usec_t deadline = next_deadline(s, now);
        if (poll(fds, n, poll_timeout_ms(deadline, now)) < 0 && errno != EINTR)
                return -errno;
        notice_lost_time(s, deadline);

        if (fds[POLL_ACCEPTOR].revents & POLLIN)
                read_acceptor(s);
        if (fds[POLL_SIGNALS].revents) {
                int r = handle_signals(s);
                if (r < 0)
                        return r;
        }
        if (fds[POLL_NOTIFY].revents)
                notify_unblocked(s, now_usec());
        if (fds[POLL_BARRIER].revents)
                fd_store_confirm(&s->fd_store, &s->notify, &s->children, now_usec(),
                                 tell_child_stored, s);
        /* A SIGTERM just handled closed every socket: poll results are stale. */
        for (size_t i = POLL_DATAGRAMS; i < n && !s->stopping; i++)
                if (fds[i].revents)
                        echo_datagrams(s, fds[i].fd);
        run_timers(s, now_usec());
        return 0;
}

static bool done(const struct server *s) {
        return s->stopping && s->acceptor.pid == 0 && n_active(s) == 0;
}

int server_run(struct server *s) {
        if (s->sockets.n_stored > 0)
                log_info("resuming %zu connection%s kept in the fd store", s->sockets.n_stored,
                         s->sockets.n_stored == 1 ? "" : "s");
        int r = start_acceptor(s);
        if (r < 0)
                return log_error_errno(r, "cannot start the acceptor %s", s->acceptor_path);
        send_owed(s);           /* READY=1 */
        s->status_sent_usec = s->watchdog_sent_usec = now_usec();
        s->status_changed = false;

        while (!done(s)) {
                r = server_turn(s);
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
                int signal_fd, struct notify *notify, unsigned fd_store_max,
                const char *acceptor_path) {
        *s = (struct server) {
                .options = o,
                .signal_fd = signal_fd,
                .notify = *notify,
                .report_fds = { -1, -1 },
                .status_changed = true,
                .pid = getpid(),
                .runtime_dir = getenv("RUNTIME_DIRECTORY"),
                .acceptor_path = acceptor_path,
                .watchdog_period_usec = notify_watchdog_period(),
                .acceptor_restart_usec = USEC_INFINITY,
                .acceptor.control_fd = -1,
                .acceptor.program_fd = -1,
                .acceptor.lifeline = { -1, -1 },
        };
        *notify = NOTIFY_NONE;
        fd_store_init(&s->fd_store, fd_store_max, s->pid);
        s->sockets = *sockets;
        *sockets = SOCKET_SET_EMPTY;
        int r = acceptor_process_open(&s->acceptor, acceptor_path);
        if (r < 0)
                return log_error_errno(r, "cannot open the acceptor program %s", acceptor_path);
        /* The children the acceptor leaves when it dies come to us, not to
         * PID 1: we know their connections, and stop them when we stop. */
        s->subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
        if (!s->subreaper)
                log_warning_errno(-errno, "cannot become the reaper of the acceptor's children: "
                                  "should the acceptor die, its connections go on without "
                                  "echod's count");
        /* Connections resumed from the fd store come on top of the cap. */
        r = children_init(&s->children, o->max_connections + s->sockets.n_stored);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        if (log_enabled(LOG_LEVEL_DEBUG) && pipe2(s->report_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return log_error_errno(-errno, "cannot make the report pipe");
        r = resume_names(s);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        if (s->fd_store.max > 0 && o->max_connections > s->fd_store.max)
                log_notice("--max-connections=%u is above the fd store's size (%u): connections "
                           "beyond %u will not survive a restart", o->max_connections,
                           s->fd_store.max, s->fd_store.max);
        return 0;
}

void server_free(struct server *s) {
        sockets_close(&s->sockets);
        s->signal_fd = safe_close(s->signal_fd);
        s->report_fds[0] = safe_close(s->report_fds[0]);
        s->report_fds[1] = safe_close(s->report_fds[1]);
        acceptor_process_close(&s->acceptor);
        children_free(&s->children);
        fd_store_free(&s->fd_store);
        notify_close(&s->notify);
}
