/* echo_pump() over a real socketpair: every byte back, in order, whatever
 * the kernel does to our writes, and an end for every kind of client. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/echo.h"
#include "src/signals.h"
#include "unit.h"

#define IDLE_5S (5 * USEC_PER_SEC)

/* echo_pump() with these settings and no lifeline. */
static int pump(int fd, int signal_fd, usec_t idle_usec, usec_t stop_timeout_usec,
                enum echo_store store, uint64_t *ret_bytes) {
        const struct echo_settings settings = {
                .signal_fd = signal_fd, .lifeline_fd = -1, .idle_usec = idle_usec,
                .stop_timeout_usec = stop_timeout_usec, .store = store };
        return echo_pump(fd, &settings, ret_bytes);
}

static void make_pair(int s[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

static size_t read_all(int fd, char *buf, size_t size) {
        size_t got = 0;
        for (;;) {
                ssize_t n = read(fd, buf + got, size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                ck_assert_int_ge(n, 0);
                if (n == 0 || (got += (size_t) n) == size)
                        return got;
        }
}

/* A client on its own thread: sends @len bytes of @data while reading the
 * echo, closes its sending half, and reads until end of stream. */
struct client {
        int fd;
        const char *data;
        size_t len;
        char *echoed;
        size_t n_echoed;
};

static void *client_run(void *userdata) {
        struct client *c = userdata;
        size_t sent = 0;
        sigset_t all;

        sigfillset(&all);       /* test signals are for the pump's thread */
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        while (sent < c->len || c->n_echoed < c->len) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN | (sent < c->len ? POLLOUT : 0) };
                if (poll(&p, 1, 5000) <= 0)
                        break;
                if (p.revents & POLLOUT) {
                        ssize_t n = send(c->fd, c->data + sent, c->len - sent, MSG_DONTWAIT);
                        if (n > 0 && (sent += (size_t) n) == c->len)
                                shutdown(c->fd, SHUT_WR);
                }
                if (p.revents & POLLIN) {
                        ssize_t n = recv(c->fd, c->echoed + c->n_echoed, c->len - c->n_echoed,
                                         MSG_DONTWAIT);
                        if (n > 0)
                                c->n_echoed += (size_t) n;
                        else if (n == 0)
                                break;
                }
        }
        return NULL;
}

static char *random_bytes(size_t len) {
        char *data = malloc(len);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (char) (rand() & 0xff);
        return data;
}

START_TEST(half_close_still_gets_every_byte_back) {
        static const char msg[] = "ping\0pong";         /* NUL is data too */
        char buf[sizeof msg + 1];
        uint64_t bytes;
        int s[2];

        make_pair(s);
        ck_assert_int_eq(write(s[0], msg, sizeof msg), sizeof msg);
        ck_assert_int_eq(shutdown(s[0], SHUT_WR), 0);

        ck_assert_int_eq(pump(s[1], -1, IDLE_5S, 0, ECHO_STORE_NONE, &bytes), 0);

        ck_assert_int_eq(read_all(s[0], buf, sizeof buf), sizeof msg);
        ck_assert_mem_eq(buf, msg, sizeof msg);
        ck_assert_uint_eq(bytes, sizeof msg);
        close(s[0]);
        close(s[1]);
}
END_TEST

/* With a send buffer of a few KiB, nearly every send() is partial. */
START_TEST(partial_writes_lose_nothing) {
        const size_t len = 4 << 20;
        int s[2], tiny = 2048;
        uint64_t bytes;
        pthread_t thread;

        make_pair(s);
        ck_assert_int_eq(setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
        struct client c = { .fd = s[0], .data = random_bytes(len), .len = len,
                            .echoed = malloc(len) };
        ck_assert_int_eq(pthread_create(&thread, NULL, client_run, &c), 0);

        ck_assert_int_eq(pump(s[1], -1, IDLE_5S, 0, ECHO_STORE_NONE, &bytes), 0);

        pthread_join(thread, NULL);
        ck_assert_uint_eq(c.n_echoed, len);
        ck_assert_mem_eq(c.echoed, c.data, len);
        ck_assert_uint_eq(bytes, len);
        free(c.echoed);
        free((char *) c.data);
        close(s[0]);
        close(s[1]);
}
END_TEST

static void on_alarm(int signo) {
        (void) signo;   /* only here to interrupt system calls */
}

START_TEST(interrupted_system_calls_are_resumed) {
        const size_t len = 1 << 20;
        struct sigaction sa = { .sa_handler = on_alarm };   /* no SA_RESTART: EINTR */
        struct itimerval every_100us = { { 0, 100 }, { 0, 100 } };
        struct itimerval off = { { 0, 0 }, { 0, 0 } };
        int s[2], tiny = 2048;
        uint64_t bytes;
        pthread_t thread;

        make_pair(s);
        ck_assert_int_eq(setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
        ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
        struct client c = { .fd = s[0], .data = random_bytes(len), .len = len,
                            .echoed = malloc(len) };
        ck_assert_int_eq(pthread_create(&thread, NULL, client_run, &c), 0);
        ck_assert_int_eq(setitimer(ITIMER_REAL, &every_100us, NULL), 0);

        int r = pump(s[1], -1, IDLE_5S, 0, ECHO_STORE_NONE, &bytes);

        setitimer(ITIMER_REAL, &off, NULL);
        pthread_join(thread, NULL);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(c.n_echoed, len);
        ck_assert_mem_eq(c.echoed, c.data, len);
        free(c.echoed);
        free((char *) c.data);
        close(s[0]);
        close(s[1]);
}
END_TEST

START_TEST(silent_client_times_out) {
        int s[2];
        uint64_t bytes;

        make_pair(s);
        ck_assert_int_eq(pump(s[1], -1, 200 * USEC_PER_MSEC, 0, ECHO_STORE_NONE, &bytes),
                -ETIMEDOUT);
        ck_assert_uint_eq(bytes, 0);
        close(s[0]);
        close(s[1]);
}
END_TEST

/* A client that sends but never reads fills both buffers; then nothing moves
 * and the idle timeout ends it, however much it still wants to send. */
START_TEST(client_that_never_reads_times_out) {
        char chunk[65536] = { 0 };
        int s[2];
        uint64_t bytes;

        make_pair(s);
        ck_assert_int_eq(fcntl(s[0], F_SETFL, O_NONBLOCK), 0);
        while (send(s[0], chunk, sizeof chunk, MSG_DONTWAIT) > 0)
                ;
        ck_assert_int_eq(pump(s[1], -1, 300 * USEC_PER_MSEC, 0, ECHO_STORE_NONE, &bytes),
                -ETIMEDOUT);
        close(s[0]);
        close(s[1]);
}
END_TEST

/* A client gone with our reply unsent: the pump ends with an error instead of
 * retrying the failing write or read forever (the test's timeout catches a spin). */
START_TEST(client_gone_ends_the_pump) {
        char chunk[4096] = { 1 };
        int s[2];
        uint64_t bytes;

        make_pair(s);
        ck_assert_int_eq(write(s[0], chunk, sizeof chunk), sizeof chunk);
        close(s[0]);

        int r = pump(s[1], -1, IDLE_5S, 0, ECHO_STORE_NONE, &bytes);

        ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "pump returned %d", r);
        close(s[1]);
}
END_TEST

/* The stopper waits until the pump holds bytes it cannot write yet, sends
 * SIGTERM, then reads everything that comes back. */
struct stopper {
        int fd;
        char *echoed;
        size_t n_echoed, size;
};

static void *stopper_run(void *userdata) {
        struct stopper *st = userdata;

        usleep(200 * 1000);
        kill(getpid(), SIGTERM);
        st->n_echoed = read_all(st->fd, st->echoed, st->size);
        return NULL;
}

/* SIGTERM: what was already read is written back, then the connection ends. */
START_TEST(sigterm_returns_what_was_read_then_ends) {
        const size_t len = 65536;
        char *data = random_bytes(len);
        int s[2], tiny = 2048;
        sigset_t term;
        uint64_t bytes;
        pthread_t thread;

        make_pair(s);
        ck_assert_int_eq(setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &term, NULL), 0);
        int signal_fd = signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC);
        ck_assert_int_ge(signal_fd, 0);
        ck_assert_int_eq(write(s[0], data, len), len);
        struct stopper st = { .fd = s[0], .echoed = malloc(len + 1), .size = len + 1 };
        ck_assert_int_eq(pthread_create(&thread, NULL, stopper_run, &st), 0);

        ck_assert_int_eq(pump(s[1], signal_fd, IDLE_5S, 0, ECHO_STORE_NONE, &bytes), ECHO_STOPPED);

        pthread_join(thread, NULL);
        ck_assert_uint_eq(st.n_echoed, len);    /* then end of stream, not more */
        ck_assert_mem_eq(st.echoed, data, len);
        free(st.echoed);
        free(data);
        close(signal_fd);
        close(s[0]);
        close(s[1]);
}
END_TEST

static int blocked_signalfd(int signo) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, signo);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
        int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

/* Stopped with a client that reads nothing: the pump gives up what it still
 * owes once the stop timeout has passed, as its parent would kill it then;
 * a child whose parent died has nobody else to end it. Well before the idle
 * timeout. */
START_TEST(a_stopped_pump_gives_up_at_the_stop_timeout) {
        const size_t len = 65536;
        char *data = random_bytes(len);
        int s[2], tiny = 2048;
        uint64_t bytes;

        make_pair(s);
        ck_assert_int_eq(setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
        ck_assert_int_eq(setsockopt(s[0], SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny), 0);
        int signal_fd = blocked_signalfd(SIGTERM);
        ck_assert_int_eq(write(s[0], data, len), len);
        ck_assert_int_eq(kill(getpid(), SIGTERM), 0);
        usec_t started = now_usec();

        int r = pump(s[1], signal_fd, IDLE_5S, 300 * USEC_PER_MSEC, ECHO_STORE_NONE, &bytes);

        usec_t took = now_usec() - started;
        ck_assert_int_eq(r, -ECANCELED);
        ck_assert_uint_lt(bytes, len);
        ck_assert_uint_ge(took, 300 * USEC_PER_MSEC);
        ck_assert_uint_lt(took, 3 * USEC_PER_SEC);
        free(data);
        close(signal_fd);
        close(s[0]);
        close(s[1]);
}
END_TEST

static void *send_late(void *userdata) {
        int fd = *(int *) userdata;
        usleep(50 * 1000);
        ck_assert_int_eq(write(fd, "late", 4), 4);
        return NULL;
}

/* A client that connected just before a restart sends a moment after the
 * SIGTERM: within the grace, its bytes still come back. */
START_TEST(bytes_in_flight_at_sigterm_still_come_back) {
        char buf[16];
        uint64_t bytes;
        pthread_t thread;
        int s[2];

        make_pair(s);
        int signal_fd = blocked_signalfd(SIGTERM);
        ck_assert_int_eq(kill(getpid(), SIGTERM), 0);
        ck_assert_int_eq(pthread_create(&thread, NULL, send_late, &s[0]), 0);

        ck_assert_int_eq(pump(s[1], signal_fd, IDLE_5S, 0, ECHO_STORE_NONE, &bytes), ECHO_STOPPED);

        pthread_join(thread, NULL);
        ck_assert_int_eq(read_all(s[0], buf, sizeof buf), 4);
        ck_assert_mem_eq(buf, "late", 4);
        close(signal_fd);
        close(s[0]);
        close(s[1]);
}
END_TEST

/* echod's main process gone (its lifeline hung up) is a stop: a stored
 * connection is handed over at once, left open with what is not echoed yet
 * still queued; a connection not stored is finished and closed. */
START_TEST(a_lifeline_that_hangs_up_stops_the_pump) {
        char buf[16];
        uint64_t bytes;
        int s[2], lifeline[2];

        for (int stored = 0; stored <= 1; stored++) {
                make_pair(s);
                ck_assert_int_eq(pipe2(lifeline, O_CLOEXEC), 0);
                ck_assert_int_eq(write(s[0], "data", 4), 4);
                close(lifeline[1]);             /* echod is gone */
                const struct echo_settings settings = {
                        .signal_fd = -1, .lifeline_fd = lifeline[0], .idle_usec = IDLE_5S,
                        .store = stored ? ECHO_STORE_STORED : ECHO_STORE_LATER };

                int r = echo_pump(s[1], &settings, &bytes);

                if (stored) {
                        ck_assert_int_eq(r, ECHO_HANDED_OVER);
                        ck_assert_int_eq(read(s[0], buf, sizeof buf), 4);      /* its echo */
                        ck_assert_int_eq(write(s[0], "late", 4), 4);   /* no FIN came: */
                        ck_assert_int_eq(recv(s[1], buf, sizeof buf, MSG_DONTWAIT), 4);
                } else {
                        ck_assert_int_eq(r, ECHO_STOPPED);
                        ck_assert_int_eq(read_all(s[0], buf, sizeof buf), 4);   /* then EOF */
                        ck_assert_mem_eq(buf, "data", 4);
                }
                close(lifeline[0]);
                close(s[0]);
                close(s[1]);
        }
}
END_TEST

/* Handing over (the connection is in systemd's fd store), a SIGTERM stops
 * reading at once and leaves the connection open: no FIN reaches the
 * client, and bytes not read yet stay in the socket for the next instance. */
START_TEST(hand_over_leaves_the_connection_open_and_unread_bytes_queued) {
        char buf[16];
        uint64_t bytes;
        int s[2];

        make_pair(s);
        int signal_fd = blocked_signalfd(SIGTERM);
        ck_assert_int_eq(write(s[0], "early", 5), 5);
        ck_assert_int_eq(kill(getpid(), SIGTERM), 0);

        ck_assert_int_eq(pump(s[1], signal_fd, IDLE_5S, 0, ECHO_STORE_STORED, &bytes),
                ECHO_HANDED_OVER);

        ck_assert_int_eq(recv(s[0], buf, sizeof buf, MSG_DONTWAIT), 5);
        ck_assert_mem_eq(buf, "early", 5);
        ck_assert_int_eq(recv(s[0], buf, sizeof buf, MSG_DONTWAIT), -1);  /* no FIN */
        ck_assert_int_eq(errno, EAGAIN);
        ck_assert_int_eq(write(s[0], "late", 4), 4);
        ck_assert_int_eq(recv(s[1], buf, sizeof buf, MSG_DONTWAIT), 4);  /* for the next one */
        close(signal_fd);
        close(s[0]);
        close(s[1]);
}
END_TEST

/* The parent stores a young connection later, and says so with
 * SIGNAL_STORED: from then on a SIGTERM hands it over at once, whichever of
 * the two signals comes first; bytes sent after it wait for the next
 * instance. */
START_TEST(a_connection_stored_later_is_handed_over) {
        static const int orders[2][2] = { { SIGNAL_STORED, SIGTERM }, { SIGTERM, SIGNAL_STORED } };

        for (size_t i = 0; i < 2; i++) {
                char buf[16];
                uint64_t bytes;
                int s[2];
                sigset_t set;
                pthread_t thread;

                make_pair(s);
                sigemptyset(&set);
                sigaddset(&set, SIGTERM);
                sigaddset(&set, SIGNAL_STORED);
                ck_assert_int_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
                int signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
                ck_assert_int_ge(signal_fd, 0);
                ck_assert_int_eq(write(s[0], "early", 5), 5);
                ck_assert_int_eq(kill(getpid(), orders[i][0]), 0);
                ck_assert_int_eq(kill(getpid(), orders[i][1]), 0);
                ck_assert_int_eq(pthread_create(&thread, NULL, send_late, &s[0]), 0);

                ck_assert_int_eq(pump(s[1], signal_fd, IDLE_5S, 0, ECHO_STORE_LATER, &bytes),
                                 ECHO_HANDED_OVER);

                pthread_join(thread, NULL);
                ck_assert_int_eq(recv(s[0], buf, sizeof buf, MSG_DONTWAIT), 5);
                ck_assert_int_eq(recv(s[0], buf, sizeof buf, MSG_DONTWAIT), -1);  /* no FIN */
                ck_assert_int_eq(errno, EAGAIN);
                ck_assert_int_eq(recv(s[1], buf, sizeof buf, MSG_DONTWAIT), 4);  /* "late" */
                close(signal_fd);
                close(s[0]);
                close(s[1]);
        }
}
END_TEST

/* Another copy of the connection (the parent's while it is young, PID 1's
 * once stored) must not keep it open for the client once the pump is done
 * with it, however it ended: by the client's FIN, or idle. */
START_TEST(the_end_reaches_the_client_while_a_copy_is_held) {
        static const usec_t idle[2] = { IDLE_5S, 200 * USEC_PER_MSEC };

        for (size_t i = 0; i < 2; i++) {
                char buf[16];
                uint64_t bytes;
                int s[2];

                make_pair(s);
                int copy = dup(s[1]);
                ck_assert_int_ge(copy, 0);
                if (i == 0) {
                        ck_assert_int_eq(write(s[0], "bye", 3), 3);
                        ck_assert_int_eq(shutdown(s[0], SHUT_WR), 0);
                }

                int r = pump(s[1], -1, idle[i], 0, ECHO_STORE_NONE, &bytes);
                close(s[1]);

                ck_assert_int_eq(r, i == 0 ? 0 : -ETIMEDOUT);
                ck_assert_int_eq(read_all(s[0], buf, sizeof buf), i == 0 ? 3 : 0); /* then EOF */
                struct pollfd p = { .fd = copy, .events = 0 };
                ck_assert_int_eq(poll(&p, 1, 0), 1);            /* PID 1 drops it */
                ck_assert(p.revents & POLLHUP);
                close(copy);
                close(s[0]);
        }
}
END_TEST

/* Reads what is there now, without waiting, into @buf; returns how much. */
static size_t read_available(int fd, char *buf, size_t size) {
        size_t got = 0;
        ssize_t n;
        while (got < size && (n = recv(fd, buf + got, size - got, MSG_DONTWAIT)) > 0)
                got += (size_t) n;
        return got;
}

/* With an fd store, a pump killed at any moment (systemd kills what is left
 * of the service right after its main process died) loses no byte: those
 * not echoed yet are still in the socket, for the next instance. Here the
 * client sends without reading, so the pump is stuck with bytes it cannot
 * write back when it is killed; a copy of the server's end (PID 1's, in
 * life) still has every byte not echoed, in order. */
START_TEST(with_a_store_a_killed_pump_loses_nothing) {
        const size_t len = 1 << 20;
        char *data = random_bytes(len);
        char *echoed = malloc(len), *left = malloc(len);
        size_t sent = 0;
        int s[2];

        make_pair(s);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                uint64_t bytes;
                close(s[0]);
                (void) pump(s[1], -1, IDLE_5S, 0, ECHO_STORE_LATER, &bytes);
                _exit(0);
        }
        for (int i = 0; i < 100 && sent < len; i++) {  /* until both ways are full */
                ssize_t n = send(s[0], data + sent, len - sent, MSG_DONTWAIT);
                if (n > 0)
                        sent += (size_t) n;
                else
                        usleep(10 * 1000);
        }
        ck_assert_uint_lt(sent, len);
        usleep(100 * 1000);

        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);

        size_t n_echoed = read_available(s[0], echoed, len);
        size_t n_left = read_available(s[1], left, len);
        ck_assert_uint_gt(n_echoed, 0);
        ck_assert_uint_eq(n_echoed + n_left, sent);
        ck_assert_mem_eq(echoed, data, n_echoed);
        ck_assert_mem_eq(left, data + n_echoed, n_left);
        free(data);
        free(echoed);
        free(left);
        close(s[0]);
        close(s[1]);
}
END_TEST

int main(void) {
        Suite *s = suite_create("echo");
        TCase *tc = tcase_create("pump");
        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, half_close_still_gets_every_byte_back);
        tcase_add_test(tc, partial_writes_lose_nothing);
        tcase_add_test(tc, interrupted_system_calls_are_resumed);
        tcase_add_test(tc, silent_client_times_out);
        tcase_add_test(tc, client_that_never_reads_times_out);
        tcase_add_test(tc, client_gone_ends_the_pump);
        tcase_add_test(tc, sigterm_returns_what_was_read_then_ends);
        tcase_add_test(tc, bytes_in_flight_at_sigterm_still_come_back);
        tcase_add_test(tc, a_stopped_pump_gives_up_at_the_stop_timeout);
        tcase_add_test(tc, a_lifeline_that_hangs_up_stops_the_pump);
        tcase_add_test(tc, hand_over_leaves_the_connection_open_and_unread_bytes_queued);
        tcase_add_test(tc, a_connection_stored_later_is_handed_over);
        tcase_add_test(tc, the_end_reaches_the_client_while_a_copy_is_held);
        tcase_add_test(tc, with_a_store_a_killed_pump_loses_nothing);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
