/* The echo pump: a poll-driven read/write loop over one connection. Bytes are
 * read into a buffer and written back from it; reading pauses while the
 * buffer is full, which is what makes a client that sends but never reads
 * stop, rather than grow us. */
#include "echo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#include "fd-util.h"
#include "signals.h"

struct pump {
        int fd;
        int signal_fd;          /* -1: none */
        int lifeline_fd;        /* -1: none, or no longer watched (it hung up) */
        char *buf;              /* ECHO_BUFFER_SIZE bytes */
        size_t start, end;      /* buf[start..end) was read and is still owed */
        bool reading;           /* false once the client sent FIN or we stopped reading */
        uint64_t bytes;
        usec_t idle_usec;       /* 0: no idle timeout */
        usec_t last_progress_usec;
        /* Set by a SIGTERM or SIGINT: when to stop reading. 0: none came. */
        usec_t stop_reading_usec;
        /* Stopped, the echo is given up at this time (0: never), with or
         * without a parent left to enforce its shutdown timeout. */
        usec_t stop_timeout_usec;
        usec_t give_up_usec;
        bool stored;            /* in systemd's fd store: hand over when stopped */
        /* With an fd store: bytes are only peeked at, and taken off the
         * socket once they have been sent back, so that what is not echoed
         * yet is always in the kernel, never only in this process. */
        bool keep_in_kernel;
};

static bool pump_stopped(const struct pump *p) {
        return p->stop_reading_usec != 0;
}

/* Nothing left to do: nothing more to read and nothing owed. Handing over
 * with keep_in_kernel, what is owed is still in the socket, for the next
 * instance: nothing is left to do at once. */
static bool pump_done(const struct pump *p) {
        if (p->keep_in_kernel && p->stored && pump_stopped(p))
                return true;
        return !p->reading && p->start == p->end;
}

/* Whether to read now: the buffer has room, and, with keep_in_kernel, is
 * empty (its bytes are the head of the socket's queue, peeked at again
 * otherwise). */
static bool pump_can_read(const struct pump *p) {
        if (!p->reading)
                return false;
        return p->keep_in_kernel ? p->start == p->end : p->end < ECHO_BUFFER_SIZE;
}

static int pump_read(struct pump *p) {
        ssize_t n = recv(p->fd, p->buf + p->end, ECHO_BUFFER_SIZE - p->end,
                         p->keep_in_kernel ? MSG_PEEK : 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        /* A FIN ends the client's sending, not our reply: what was read is
         * still owed, so keep writing until the buffer is empty. */
        if (n == 0)
                p->reading = false;
        p->end += (size_t) n;
        return 0;
}

/* With keep_in_kernel: takes the @n bytes at buf[@at], just sent back, off
 * the socket, where they were only peeked at (reading them over the same,
 * identical, bytes). */
static int pump_consume(struct pump *p, size_t at, size_t n) {
        while (n > 0) {
                ssize_t k = recv(p->fd, p->buf + at, n, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                at += (size_t) k;
                n -= (size_t) k;
        }
        return 0;
}

/* Writes as much of the owed bytes as the socket takes now; a partial write
 * just leaves the rest for the next POLLOUT. */
static int pump_write(struct pump *p) {
        while (p->start < p->end) {
                ssize_t n = send(p->fd, p->buf + p->start, p->end - p->start,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
                if (p->keep_in_kernel) {
                        int r = pump_consume(p, p->start, (size_t) n);
                        if (r < 0)
                                return r;
                }
                p->start += (size_t) n;
                p->bytes += (uint64_t) n;
        }
        p->start = p->end = 0;
        return 0;
}

/* A stop (SIGTERM, SIGINT, or the main process gone) means: stop taking new
 * bytes, but return those already taken. Handing over, the bytes not read
 * yet stay in the socket for the next instance: stop now. Otherwise "taken"
 * includes what is in flight: a client that connected just before a restart
 * has sent its bytes, or is about to, and must get them back; so reading
 * goes on for ECHO_STOP_GRACE_USEC, then stops. */
static void pump_stop(struct pump *p) {
        if (!pump_stopped(p)) {
                p->stop_reading_usec = now_usec() + ECHO_STOP_GRACE_USEC;
                if (p->stop_timeout_usec > 0)
                        p->give_up_usec = now_usec() + p->stop_timeout_usec;
        }
        if (p->stored)
                p->stop_reading_usec = now_usec();
}

/* What the signalfd and the lifeline say. SIGNAL_STORED or SIGNAL_UNSTORED
 * comes before the SIGTERM of a stop, but they may be read in one batch,
 * lowest number first: the store's word is taken before the stop. */
static void pump_handle_events(struct pump *p, bool lifeline_hung_up) {
        int signo;
        bool stop = lifeline_hung_up;

        while (p->signal_fd >= 0 && (signo = signals_read(p->signal_fd)) > 0) {
                if (signo == SIGNAL_STORED)
                        p->stored = true;
                else if (signo == SIGNAL_UNSTORED)
                        p->stored = false;
                else if (signo == SIGTERM || signo == SIGINT)
                        stop = true;
                /* SIGNAL_PARENT_GONE, late: the connection is ours already. */
        }
        if (lifeline_hung_up)
                p->lifeline_fd = -1;    /* a pipe without writers polls POLLHUP forever */
        if (stop || pump_stopped(p))
                pump_stop(p);
}

/* Whether the stop's time is up: what is still owed is given up. */
static bool pump_gave_up(const struct pump *p, usec_t now) {
        return p->give_up_usec > 0 && now >= p->give_up_usec;
}

/* The next deadline: the idle timeout, the end of the stop grace, or the
 * end of the stop. */
static int pump_timeout_ms(const struct pump *p, usec_t now) {
        usec_t deadline = p->idle_usec > 0 ? p->last_progress_usec + p->idle_usec
                                           : USEC_INFINITY;
        if (p->reading && p->stop_reading_usec > 0 && p->stop_reading_usec < deadline)
                deadline = p->stop_reading_usec;
        if (p->give_up_usec > 0 && p->give_up_usec < deadline)
                deadline = p->give_up_usec;
        return poll_timeout_ms(deadline, now);
}

/* One turn: wait for the socket, a signal or the lifeline, then move what
 * can be moved. */
static int pump_step(struct pump *p) {
        usec_t now = now_usec();
        if (p->stop_reading_usec > 0 && now >= p->stop_reading_usec)
                p->reading = false;
        if (pump_done(p))
                return 0;
        if (pump_gave_up(p, now))
                return -ECANCELED;

        bool can_read = pump_can_read(p);
        short events = (short) ((can_read ? POLLIN : 0) |
                                (p->start < p->end ? POLLOUT : 0));
        struct pollfd fds[3] = {
                { .fd = p->fd, .events = events },
                { .fd = p->signal_fd, .events = POLLIN },
                { .fd = p->lifeline_fd, .events = POLLIN },
        };
        int r = poll(fds, 3, pump_timeout_ms(p, now));
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (r == 0)
                return p->idle_usec > 0 && now_usec() - p->last_progress_usec >= p->idle_usec
                               ? -ETIMEDOUT : 0;

        size_t before_in = p->end;
        uint64_t before_out = p->bytes;
        bool was_reading = p->reading;
        /* Handing over with keep_in_kernel, what is not echoed is in the
         * socket: stop before sending anything more, so that a next instance
         * started meanwhile (after a crash, systemd does not always wait for
         * the old children) never echoes the same bytes as we do. */
        bool signalled = fds[1].revents || fds[2].revents;
        if (signalled && p->keep_in_kernel) {
                pump_handle_events(p, fds[2].revents != 0);
                signalled = false;
                if (pump_done(p))
                        return 0;
        }
        /* POLLHUP/POLLERR: let read or send report what happened. */
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR) && can_read) {
                r = pump_read(p);
                if (r < 0)
                        return r;
        }
        /* After the read, so that bytes already here when the SIGTERM came
         * are read in any case. */
        if (signalled)
                pump_handle_events(p, fds[2].revents != 0);
        /* Write straight after reading: the socket is almost always writable,
         * and this saves a poll() per round trip. */
        r = pump_write(p);
        if (r < 0)
                return r;
        /* Only bytes moving (or the client's FIN) count against the idle
         * timeout: a client that stops reading must not keep us forever. */
        if (p->end != before_in || p->bytes != before_out || p->reading != was_reading)
                p->last_progress_usec = now_usec();
        return 0;
}

/* After a stop, the client may still be sending: it has not seen our FIN
 * yet. Closing a socket with unread input resets the connection, and a reset
 * throws away what the client has received and not read yet: the last of
 * its echo. So, our side shut down, read and drop its bytes (sent after the
 * stop: those our FIN says we will not echo) until it is done: it shuts its
 * side down, or, all of ours acknowledged (SIOCOUTQ says 0), it has sent
 * nothing for ECHO_LINGER_QUIET_USEC, as a client that saw our FIN does; or
 * nothing moved at all for ECHO_LINGER_USEC; or the stop's time is up. */
static void linger_until_client_done(struct pump *p) {
        usec_t last_progress = now_usec(), last_input = last_progress;
        int unacked_before = INT32_MAX;

        for (;;) {
                int unacked;
                usec_t now = now_usec();
                if (ioctl(p->fd, SIOCOUTQ, &unacked) < 0)
                        return;
                if (unacked < unacked_before) {
                        unacked_before = unacked;
                        last_progress = now;
                }
                ssize_t n = read(p->fd, p->buf, ECHO_BUFFER_SIZE);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        return;
                if (n > 0) {
                        last_progress = last_input = now;
                        continue;
                }
                if ((unacked == 0 && now - last_input >= ECHO_LINGER_QUIET_USEC) ||
                    now - last_progress >= ECHO_LINGER_USEC || pump_gave_up(p, now))
                        return;
                (void) poll(&(struct pollfd) { .fd = p->fd, .events = POLLIN }, 1, 10);
        }
}

int echo_pump(int fd, const struct echo_settings *settings, uint64_t *ret_bytes) {
        /* Static, not on the stack, and apart from the pump's state, so that
         * a child touches (and its parent's memory map copies) only the pages
         * its bytes pass through: most connections use one of the sixteen. */
        /* cppcheck-suppress unassignedVariable ; read() fills it through p.buf */
        static char buffer[ECHO_BUFFER_SIZE];
        struct pump p = { .fd = fd, .signal_fd = settings->signal_fd,
                          .lifeline_fd = settings->lifeline_fd, .buf = buffer, .reading = true,
                          .idle_usec = settings->idle_usec, .last_progress_usec = now_usec(),
                          .stop_timeout_usec = settings->stop_timeout_usec,
                          .stored = settings->store == ECHO_STORE_STORED,
                          .keep_in_kernel = settings->store != ECHO_STORE_NONE };
        int r = 0;

        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
                r = -errno;
        /* A client usually sends right after it connects: try to read and
         * echo before the first poll(). */
        if (r >= 0)
                r = pump_read(&p);
        if (r >= 0)
                r = pump_write(&p);

        while (r >= 0 && !pump_done(&p))
                r = pump_step(&p);

        *ret_bytes = p.bytes;
        /* Handed over, the connection goes on in the next instance: no FIN. */
        if (r >= 0 && pump_stopped(&p) && p.stored)
                return ECHO_HANDED_OVER;
        /* The client's FIN came and got its echo (or the connection failed,
         * or idled out): end it both ways, so that it ends for the client
         * and leaves the fd store now, whoever else holds a copy. */
        if (r < 0 || !pump_stopped(&p)) {
                if (shutdown(fd, SHUT_RDWR) < 0 && errno != ENOTCONN && r >= 0)
                        return -errno;
                return r;
        }
        if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
                return -errno;
        linger_until_client_done(&p);
        return ECHO_STOPPED;
}

int echo_connection(struct connection *c, const struct echo_settings *settings,
                    uint64_t *ret_bytes) {
        int r = echo_pump(c->fd, settings, ret_bytes);
        c->fd = safe_close(c->fd);
        return r;
}

static void report_end(int report_fd, int result, uint64_t bytes) {
        struct echo_report report = { .pid = getpid(), .result = result, .bytes = bytes };
        /* Non-blocking: should the pipe ever be full, echod logs less rather
         * than keep us waiting. An echod that died (a crash) closed it:
         * EPIPE, and no SIGPIPE, which the child ignores. */
        ssize_t n = write(report_fd, &report, sizeof report);
        (void) n;
}

/* Where close_range(2) fails: close(2) on each fd from @first to @last that
 * /proc/self/fd lists, read with getdents64(2) into a buffer on the stack
 * (nothing allocated in a child). Closing as we go is safe: procfs lists
 * the fd table by fd number. Returns false without /proc. */
static bool close_listed_fds(unsigned first, unsigned last) {
        union {
                struct dirent64 entry;
                char bytes[4096];
        } buf;
        ssize_t n;

        int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return false;
        while ((n = getdents64(dir, buf.bytes, sizeof buf.bytes)) > 0) {
                for (ssize_t at = 0; at < n;) {
                        const struct dirent64 *e = (const struct dirent64 *) (buf.bytes + at);
                        char *end;
                        unsigned long fd = strtoul(e->d_name, &end, 10);
                        at += e->d_reclen;
                        if (*end == '\0' && end != e->d_name && fd >= first && fd <= last &&
                            fd != (unsigned long) dir)
                                (void) close((int) fd);
                }
        }
        (void) close(dir);
        return true;
}

/* close_range(2), or, where it fails (a kernel before 5.9, a seccomp filter
 * that refuses it), each open fd in the range, as /proc lists them; without
 * /proc, close(2) on every fd up to the fd limit. */
static void close_fds(unsigned first, unsigned last) {
        struct rlimit limit;

        if (close_range(first, last, 0) == 0 || close_listed_fds(first, last))
                return;
        if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
                limit.rlim_cur = 1024;
        for (unsigned fd = first; fd <= last && fd < limit.rlim_cur; fd++)
                (void) close((int) fd);
}

/* Closes every fd from 3 up but those in @keep (ascending; -1 entries are
 * skipped). The acceptor's fds are the listeners, its control socket and
 * connections it is passing on: a copy kept here would hold another
 * client's connection open after its own child ended. */
static void close_inherited_fds(const int *keep, size_t n_keep) {
        unsigned first = 3;

        for (size_t i = 0; i < n_keep; i++) {
                if (keep[i] < (int) first)
                        continue;
                if ((unsigned) keep[i] > first)
                        close_fds(first, (unsigned) keep[i] - 1);
                first = (unsigned) keep[i] + 1;
        }
        close_fds(first, ~0U);
}

static void sort_fds(int *fds, size_t n) {
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
                        int t = fds[j];
                        fds[j] = fds[j - 1];
                        fds[j - 1] = t;
                }
}

/* What a resumed connection's child waits for before it touches it. */
enum resumed_word {
        RESUMED_WAIT,
        RESUMED_SERVE_STORED,   /* SIGNAL_STORED: echod knows we serve it */
        RESUMED_SERVE_UNSTORED, /* SIGNAL_UNSTORED: a stop that is no restart: finish it */
        RESUMED_HAND_OVER,      /* a stop, or echod gone: it stays in the store as it is */
        RESUMED_GIVE_BACK,      /* our acceptor died first: echod sends it to the next one */
};

static enum resumed_word resumed_word_from(int signal_fd, bool lifeline_hung_up) {
        bool stored = false, unstored = false, stop = lifeline_hung_up, parent_gone = false;
        int signo;

        while ((signo = signals_read(signal_fd)) > 0) {
                stored |= signo == SIGNAL_STORED;
                unstored |= signo == SIGNAL_UNSTORED;
                parent_gone |= signo == SIGNAL_PARENT_GONE;
                if (signo == SIGTERM || signo == SIGINT) {
                        stop = true;
                        (void) raise(signo);    /* still blocked: pending, for the pump */
                }
        }
        if (unstored)
                return RESUMED_SERVE_UNSTORED;
        if (stop)
                return RESUMED_HAND_OVER;
        if (stored)
                return RESUMED_SERVE_STORED;
        return parent_gone ? RESUMED_GIVE_BACK : RESUMED_WAIT;
}

/* A connection the fd store kept, resumed: the acceptor forked us for it,
 * and may die before it tells echod so; echod would then send the same
 * connection to the next acceptor, and two children would echo it. So we
 * touch it only once echod says it is ours (SIGNAL_STORED, once it has
 * heard of us), and give it back untouched if our acceptor dies first
 * (PR_SET_PDEATHSIG). */
static enum resumed_word await_resumed_word(const struct echo_child_setup *setup) {
        enum resumed_word word = RESUMED_WAIT;

        if (prctl(PR_SET_PDEATHSIG, SIGNAL_PARENT_GONE) < 0 || getppid() != setup->acceptor_pid)
                (void) raise(SIGNAL_PARENT_GONE);       /* it died before we asked */
        while (word == RESUMED_WAIT) {
                struct pollfd fds[2] = {
                        { .fd = setup->signal_fd, .events = POLLIN },
                        { .fd = setup->lifeline_fd, .events = POLLIN },
                };
                if (poll(fds, 2, -1) < 0 && errno != EINTR)
                        return RESUMED_HAND_OVER;
                word = resumed_word_from(setup->signal_fd, fds[1].revents != 0);
        }
        (void) prctl(PR_SET_PDEATHSIG, 0);
        return word;
}

noreturn void echo_child(struct connection *c, const struct echo_child_setup *setup) {
        int keep[] = { c->fd, setup->signal_fd, setup->report_fd, setup->lifeline_fd };
        uint64_t bytes;

        sort_fds(keep, sizeof keep / sizeof keep[0]);
        close_inherited_fds(keep, sizeof keep / sizeof keep[0]);
        signals_reset_for_child();
        bool stored = setup->stored;
        if (stored) {
                enum resumed_word word = await_resumed_word(setup);
                if (word == RESUMED_HAND_OVER || word == RESUMED_GIVE_BACK)
                        _exit(word == RESUMED_HAND_OVER ? CHILD_EXIT_HANDED_OVER
                                                        : CHILD_EXIT_GIVEN_BACK);
                stored = word == RESUMED_SERVE_STORED;
        }

        struct echo_settings settings = {
                .signal_fd = setup->signal_fd,
                .lifeline_fd = setup->lifeline_fd,
                .idle_usec = setup->idle_usec,
                .stop_timeout_usec = setup->stop_timeout_usec,
                .store = stored            ? ECHO_STORE_STORED
                         : setup->fd_store ? ECHO_STORE_LATER
                                           : ECHO_STORE_NONE,
        };
        int r = echo_connection(c, &settings, &bytes);
        if (setup->report_fd >= 0)
                report_end(setup->report_fd, r, bytes);
        _exit(r < 0                   ? CHILD_EXIT_FAILED
              : r == ECHO_HANDED_OVER ? CHILD_EXIT_HANDED_OVER
                                      : CHILD_EXIT_DONE);
}
