/* systemd's fd store as echod uses it: names, size, which connections go in
 * and when, when PID 1 has certainly taken them, and when their slots are
 * free again; every message read from a real NOTIFY_SOCKET. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "src/fdstore.h"
#include "src/notify.h"
#include "unit.h"

START_TEST(store_names_are_unique_and_recognised) {
        char a[FD_STORE_NAME_MAX], b[FD_STORE_NAME_MAX];

        fd_store_name(a, sizeof a, 4242, 1);
        fd_store_name(b, sizeof b, 4242, 2);
        ck_assert_str_eq(a, "echod-conn-4242-1");
        ck_assert_str_ne(a, b);
        ck_assert(fd_store_name_is_connection(a));
        ck_assert(!fd_store_name_is_connection("echo.socket"));
        ck_assert(!fd_store_name_is_connection("connection"));     /* Accept=yes */
        ck_assert(!fd_store_name_is_connection(NULL));
        ck_assert_ptr_null(strchr(a, ':'));     /* systemd ignores names with ':' */
}
END_TEST

START_TEST(longest_name_fits) {
        char name[FD_STORE_NAME_MAX];

        fd_store_name(name, sizeof name, 2147483647, UINT64_MAX);
        ck_assert_str_eq(name, "echod-conn-2147483647-18446744073709551615");
}
END_TEST

START_TEST(a_reused_pid_continues_after_the_stored_names) {
        ck_assert_uint_eq(fd_store_name_seq("echod-conn-107-1", 107), 1);
        ck_assert_uint_eq(fd_store_name_seq("echod-conn-107-42", 107), 42);
        ck_assert_uint_eq(fd_store_name_seq("echod-conn-1071-5", 107), 0);   /* another PID */
        ck_assert_uint_eq(fd_store_name_seq("echod-conn-10-5", 107), 0);
        ck_assert_uint_eq(fd_store_name_seq("echod-conn-107-", 107), 0);
        ck_assert_uint_eq(fd_store_name_seq("echod-conn-107-3x", 107), 0);
        ck_assert_uint_eq(fd_store_name_seq("echo.socket", 107), 0);
        ck_assert_uint_eq(fd_store_name_seq(NULL, 107), 0);
}
END_TEST

START_TEST(the_size_systemd_passes_is_read_whole_or_not_at_all) {
        unsetenv("FDSTORE");
        ck_assert_int_eq(notify_fd_store_max_from_env(), -ENOENT);
        setenv("FDSTORE", "1024", 1);
        ck_assert_int_eq(notify_fd_store_max_from_env(), 1024);
        setenv("FDSTORE", "0", 1);
        ck_assert_int_eq(notify_fd_store_max_from_env(), 0);
        static const char *const bad[] = { "", "lots", "12x", "-1", " 12", "99999999999" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                setenv("FDSTORE", bad[i], 1);
                ck_assert_int_eq(notify_fd_store_max_from_env(), -EINVAL);
        }
        unsetenv("FDSTORE");
}
END_TEST

/* PID 1's end of the notify socket, and ours, connected to it. */
struct manager {
        int fd;
        struct notify notify;
};

static void manager_open(struct manager *m, int rcvbuf) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char name[64];

        snprintf(name, sizeof name, "@echod-test-notify-%d", (int) getpid());
        memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);   /* abstract */
        m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_int_ge(m->fd, 0);
        (void) setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        ck_assert_int_eq(bind(m->fd, (struct sockaddr *) &sa,
                              (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(name))),
                         0);
        setenv("NOTIFY_SOCKET", name, 1);
        ck_assert_int_eq(notify_open(&m->notify), 0);
        ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));    /* for no child to inherit */
}

static void manager_close(struct manager *m) {
        notify_close(&m->notify);
        close(m->fd);
}

/* Reads one message into @text. Its fd, if it carries one, goes to
 * *@ret_fd (-1 if none). Returns the number of fds, or -1 when no message is
 * waiting. */
static int read_message(struct manager *m, char *text, size_t size, int *ret_fd) {
        char control[CMSG_SPACE(sizeof(int) * 4)];
        struct iovec iov = { .iov_base = text, .iov_len = size - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control };
        int n_fds = 0;

        *ret_fd = -1;
        ssize_t n = recvmsg(m->fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -1;
        text[n] = '\0';
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                int *fds = (int *) CMSG_DATA(c);
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        if (*ret_fd < 0)
                                *ret_fd = fds[i];
                        else
                                close(fds[i]);
                }
                n_fds += (int) k;
        }
        return n_fds;
}

/* Reads one message, which must be @expected with @n_fds fds; closes them. */
static void expect_message(struct manager *m, const char *expected, int n_fds) {
        char text[256];
        int fd;

        ck_assert_int_eq(read_message(m, text, sizeof text, &fd), n_fds);
        ck_assert_str_eq(text, expected);
        if (fd >= 0)
                close(fd);
}

/* Reads @n FDSTORE=1 messages of one fd each, closing the fds. */
static void skip_stores(struct manager *m, unsigned n) {
        char text[256];
        int fd;

        for (unsigned i = 0; i < n; i++) {
                ck_assert_int_eq(read_message(m, text, sizeof text, &fd), 1);
                ck_assert_ptr_nonnull(strstr(text, "FDSTORE=1\n"));
                close(fd);
        }
}

static void expect_no_message(struct manager *m) {
        char text[256];
        int fd;
        ck_assert_int_eq(read_message(m, text, sizeof text, &fd), -1);
}

static bool barrier_answered(const struct fd_store *st) {
        struct pollfd p = { .fd = st->barrier_fd, .events = POLLIN };
        return st->barrier_fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static void count_confirmed(pid_t pid, void *userdata) {
        (void) pid;
        ++*(unsigned *) userdata;
}

/* Few enough for the kernel's default queue of datagrams (net.unix.max_dgram_qlen
 * is 10 where systemd has not raised it), barrier included. */
enum { N_CONNECTIONS = 8, N_TOO_YOUNG = 2, ENDED = 5 };

/* N_CONNECTIONS young connections, children 1000.., the last N_TOO_YOUNG
 * born at 2000, the rest at 1000; their other ends in @peers. */
static void add_young(struct children *c, struct fd_store *st, int *peers) {
        ck_assert_int_eq(children_init(c, N_CONNECTIONS), 0);
        for (int i = 0; i < N_CONNECTIONS; i++) {
                int pair[2];
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
                peers[i] = pair[1];
                usec_t born = i >= N_CONNECTIONS - N_TOO_YOUNG ? 2000 : 1000;
                ck_assert(fd_store_keep_young(st, born));
                ck_assert_int_eq(children_add(c, &(struct child) {
                        .pid = 1000 + i, .start_usec = born, .copy_fd = pair[0],
                        .token = -1 }), 0);
        }
}

static void end_all(struct children *c, struct fd_store *st, int *peers) {
        for (int i = 0; i < N_CONNECTIONS; i++) {
                struct child *child = children_find(c, 1000 + i);
                if (child)
                        fd_store_child_ended(st, child, false);
                close(peers[i]);
        }
        ck_assert_uint_eq(st->n_young, 0);
        ck_assert_uint_eq(st->n_unconfirmed, 0);
        children_free(c);
        fd_store_free(st);
}

/* Every connection old enough goes in, alone, under a name of its own (so
 * that its end removes exactly it), not polled by PID 1; then a barrier.
 * The too young stay with us; one its child already shut down (not reaped
 * yet) has ended: not stored. Until PID 1 answers the barrier, nothing is
 * confirmed and our copies stay open. */
START_TEST(each_due_connection_goes_in_alone_then_a_barrier) {
        struct manager m;
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        char expected[128];

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 4096, 4242);
        ck_assert_int_eq(fd_store_resume(&st, NULL, 0), 0);
        add_young(&c, &st, peers);
        ck_assert_uint_eq(st.next_flush_usec, 1000 + FD_STORE_MIN_AGE_USEC);
        ck_assert_int_eq(shutdown(children_find(&c, 1000 + ENDED)->copy_fd, SHUT_RDWR), 0);

        fd_store_flush(&st, &m.notify, &c, 1500, 1500, &shortfall);

        ck_assert_uint_eq(shortfall.n_full + shortfall.n_failed, 0);
        unsigned n_sent = N_CONNECTIONS - N_TOO_YOUNG - 1;
        ck_assert_uint_eq(st.n_used, n_sent);
        ck_assert_uint_eq(st.n_unconfirmed, n_sent);
        ck_assert_uint_eq(st.n_young, N_TOO_YOUNG);     /* left to store, copies open */
        ck_assert_uint_eq(st.next_flush_usec, 1500 + FD_STORE_MIN_AGE_USEC);
        unsigned seq = 0;
        for (int i = 0; i < N_CONNECTIONS; i++) {
                struct child *child = children_find(&c, 1000 + i);
                if (i >= N_CONNECTIONS - N_TOO_YOUNG || i == ENDED) {
                        ck_assert_int_eq(child->store_state, FD_STORE_YOUNG);
                        continue;
                }
                ck_assert_int_eq(child->store_state, FD_STORE_SENT);
                ck_assert_int_ge(child->copy_fd, 0);
                snprintf(expected, sizeof expected,
                         "FDSTORE=1\nFDPOLL=0\nFDNAME=echod-conn-4242-%u", ++seq);
                ck_assert_str_eq(child->fd_store_name, expected + strlen(expected) -
                                                       strlen(child->fd_store_name));
                expect_message(&m, expected, 1);
        }
        ck_assert_int_eq(children_find(&c, 1000 + ENDED)->copy_fd, -1);
        ck_assert_int_ge(st.barrier_fd, 0);
        ck_assert(!barrier_answered(&st));
        expect_message(&m, "BARRIER=1", 1);     /* PID 1 closes it: answered */
        ck_assert(barrier_answered(&st));
        expect_no_message(&m);

        end_all(&c, &st, peers);
        manager_close(&m);
}
END_TEST

/* The barrier's answer confirms the stores sent before it, not those sent
 * while it was in flight: those wait for the next barrier, sent at once. */
START_TEST(a_barrier_confirms_only_what_was_sent_before_it) {
        struct manager m;
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        unsigned n_confirmed = 0;
        char text[128];
        int barrier;

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 4096, 4242);
        ck_assert_int_eq(fd_store_resume(&st, NULL, 0), 0);
        add_young(&c, &st, peers);
        fd_store_flush(&st, &m.notify, &c, 1500, 1500, &shortfall);
        unsigned n_first = N_CONNECTIONS - N_TOO_YOUNG;
        skip_stores(&m, n_first);
        ck_assert_int_eq(read_message(&m, text, sizeof text, &barrier), 1);
        ck_assert_str_eq(text, "BARRIER=1");
        /* the two younger ones go in while the first barrier is in flight */
        fd_store_flush(&st, &m.notify, &c, 2500, 2500, &shortfall);
        ck_assert_uint_eq(st.n_unconfirmed, N_CONNECTIONS);
        close(barrier);                 /* PID 1 has read the first batch */
        ck_assert(barrier_answered(&st));

        fd_store_confirm(&st, &m.notify, &c, 2600, count_confirmed, &n_confirmed);

        ck_assert_uint_eq(n_confirmed, n_first);
        ck_assert_uint_eq(st.n_unconfirmed, N_TOO_YOUNG);
        for (int i = 0; i < N_CONNECTIONS; i++) {
                struct child *child = children_find(&c, 1000 + i);
                bool first = i < (int) n_first;
                ck_assert_int_eq(child->store_state, first ? FD_STORE_CONFIRMED : FD_STORE_SENT);
                ck_assert_int_ge(child->copy_fd, 0);    /* our copy stays, confirmed or not */
        }
        skip_stores(&m, N_TOO_YOUNG);
        expect_message(&m, "BARRIER=1", 1);     /* the next barrier, answered */
        fd_store_confirm(&st, &m.notify, &c, 2700, count_confirmed, &n_confirmed);
        ck_assert_uint_eq(n_confirmed, N_CONNECTIONS);
        ck_assert_int_eq(st.barrier_fd, -1);    /* nothing left to confirm */

        end_all(&c, &st, peers);
        manager_close(&m);
}
END_TEST

/* A connection born while the others wait for PID 1's confirmation gets a
 * flush of its own in time. */
START_TEST(a_new_connection_is_flushed_while_others_wait_for_confirmation) {
        struct fd_store st;

        fd_store_init(&st, 10, 1);
        ck_assert_int_eq(fd_store_resume(&st, NULL, 0), 0);
        ck_assert(fd_store_keep_young(&st, 1000));
        st.next_flush_usec = USEC_INFINITY;     /* as after a flush that sent it */
        st.n_unconfirmed = 1;
        ck_assert(fd_store_keep_young(&st, 5000));
        ck_assert_uint_eq(st.next_flush_usec, 5000 + FD_STORE_MIN_AGE_USEC);
        ck_assert(fd_store_keep_young(&st, 5100));
        ck_assert_uint_eq(st.next_flush_usec, 5000 + FD_STORE_MIN_AGE_USEC);
        fd_store_free(&st);
}
END_TEST

/* Never more than FileDescriptorStoreMax= fds, counting those the previous
 * instance left: the rest stay young (our copies open), to be tried again. */
START_TEST(never_more_than_the_store_holds) {
        struct manager m;
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        static const char *const resumed[] = { "echod-conn-4242-7" };
        char text[128];
        int fd;

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 5, 4242);
        ck_assert_int_eq(fd_store_resume(&st, resumed, 1), 0);
        add_young(&c, &st, peers);

        fd_store_flush(&st, &m.notify, &c, USEC_INFINITY, 3000, &shortfall);

        ck_assert_uint_eq(st.n_used, 5);
        ck_assert_uint_eq(shortfall.n_full, N_CONNECTIONS - 4);
        ck_assert_uint_eq(st.n_young, N_CONNECTIONS - 4);       /* left to store */
        ck_assert_uint_eq(st.next_flush_usec, 3000 + FD_STORE_MIN_AGE_USEC);
        /* names go on above the resumed one's */
        ck_assert_int_eq(read_message(&m, text, sizeof text, &fd), 1);
        close(fd);
        ck_assert_str_eq(text, "FDSTORE=1\nFDPOLL=0\nFDNAME=echod-conn-4242-8");
        skip_stores(&m, 3);
        expect_message(&m, "BARRIER=1", 1);
        expect_no_message(&m);

        end_all(&c, &st, peers);
        manager_close(&m);
}
END_TEST

/* A stored connection that ends frees its slot only once FDSTOREREMOVE=1 is
 * sent for its name: PID 1 lets go of it before reading any later store.
 * While PID 1's queue is full, the removal waits, and so does the slot. */
START_TEST(a_slot_is_free_once_its_removal_is_sent) {
        struct manager m;
        struct fd_store st;
        struct child ended = { .pid = 1, .copy_fd = -1, .store_state = FD_STORE_CONFIRMED,
                               .fd_store_name = "echod-conn-1-1" };
        static const char *const resumed[] = { "echod-conn-1-1" };

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 10, 1);
        ck_assert_int_eq(fd_store_resume(&st, resumed, 1), 0);
        ck_assert_uint_eq(st.n_used, 1);

        fd_store_child_ended(&st, &ended, false);
        ck_assert_uint_eq(st.n_used, 1);                /* not sent yet */
        /* PID 1's queue, full: the kernel refuses more datagrams */
        int r;
        while ((r = notify_watchdog(&m.notify)) == 0)
                ;
        ck_assert_int_eq(r, -EAGAIN);
        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), -EAGAIN);
        ck_assert_uint_eq(st.n_used, 1);
        char text[64];
        int fd;
        while (read_message(&m, text, sizeof text, &fd) >= 0)
                ;                                       /* PID 1 catches up */

        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), 0);
        ck_assert_uint_eq(st.n_used, 0);
        expect_message(&m, "FDSTOREREMOVE=1\nFDNAME=echod-conn-1-1", 0);
        fd_store_free(&st);
        manager_close(&m);
}
END_TEST

/* PID 1 with no room in its queue: the stores wait, our copies stay open,
 * and the next flush sends them. */
START_TEST(stores_pid1_had_no_room_for_are_sent_again) {
        struct manager m;
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        char text[128];
        int fd;

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 4096, 4242);
        ck_assert_int_eq(fd_store_resume(&st, NULL, 0), 0);
        add_young(&c, &st, peers);
        while (notify_watchdog(&m.notify) == 0)
                ;

        fd_store_flush(&st, &m.notify, &c, USEC_INFINITY, 3000, &shortfall);

        ck_assert_int_eq(shortfall.error, -EAGAIN);
        ck_assert_uint_eq(shortfall.n_failed, N_CONNECTIONS);
        ck_assert_uint_eq(st.n_used, 0);
        ck_assert_uint_eq(st.n_young, N_CONNECTIONS);
        ck_assert_uint_eq(st.next_flush_usec, 3000 + FD_STORE_MIN_AGE_USEC);
        while (read_message(&m, text, sizeof text, &fd) >= 0)
                ;

        fd_store_flush(&st, &m.notify, &c, USEC_INFINITY, 3250, &shortfall);

        ck_assert_uint_eq(shortfall.n_failed, 0);
        ck_assert_uint_eq(st.n_used, N_CONNECTIONS);
        skip_stores(&m, N_CONNECTIONS);
        expect_message(&m, "BARRIER=1", 1);
        end_all(&c, &st, peers);
        manager_close(&m);
}
END_TEST

/* Room in PID 1's queue for the stores but not for the barrier after them:
 * the barrier goes once there is room, and confirms them. */
START_TEST(a_barrier_pid1_had_no_room_for_is_sent_again) {
        struct manager m;
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        char text[128];
        int fd;

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 4096, 4242);
        ck_assert_int_eq(fd_store_resume(&st, NULL, 0), 0);
        add_young(&c, &st, peers);
        while (notify_watchdog(&m.notify) == 0)
                ;
        for (int i = 0; i < N_CONNECTIONS; i++)       /* room for the stores alone */
                ck_assert_int_eq(read_message(&m, text, sizeof text, &fd), 0);

        fd_store_flush(&st, &m.notify, &c, USEC_INFINITY, 3000, &shortfall);

        ck_assert_uint_eq(shortfall.n_failed, 0);
        ck_assert_int_eq(shortfall.error, -EAGAIN);
        ck_assert_uint_eq(st.n_unconfirmed, N_CONNECTIONS);
        ck_assert_int_eq(st.barrier_fd, -1);
        ck_assert_int_eq(fd_store_send_barrier(&st, &m.notify, 3100), -EAGAIN);
        while (read_message(&m, text, sizeof text, &fd) == 0)
                ;                                       /* the watchdogs left */
        ck_assert_str_eq(text, "FDSTORE=1\nFDPOLL=0\nFDNAME=echod-conn-4242-1");
        close(fd);
        skip_stores(&m, N_CONNECTIONS - 1);

        ck_assert_int_eq(fd_store_send_barrier(&st, &m.notify, 3200), 0);
        ck_assert_int_ge(st.barrier_fd, 0);
        expect_message(&m, "BARRIER=1", 1);
        unsigned n_confirmed = 0;
        fd_store_confirm(&st, &m.notify, &c, 3300, count_confirmed, &n_confirmed);
        ck_assert_uint_eq(n_confirmed, N_CONNECTIONS);
        end_all(&c, &st, peers);
        manager_close(&m);
}
END_TEST

/* How a child ended decides: a connection handed over at a stop stays in
 * the store; one its child ended (or a signal killed outside a stop, which
 * the caller says) leaves it, confirmed or only sent. */
START_TEST(the_store_follows_how_children_end) {
        struct manager m;
        struct fd_store st;
        struct child handed = { .pid = 1, .copy_fd = -1, .store_state = FD_STORE_CONFIRMED,
                                .fd_store_name = "echod-conn-1-1" };
        struct child ended = { .pid = 2, .copy_fd = -1, .store_state = FD_STORE_CONFIRMED,
                               .fd_store_name = "echod-conn-1-2" };
        struct child sent = { .pid = 3, .store_state = FD_STORE_SENT,
                              .fd_store_name = "echod-conn-1-3" };
        struct child young = { .pid = 4, .store_state = FD_STORE_YOUNG };
        static const char *const resumed[] = { "echod-conn-1-1", "echod-conn-1-2" };
        int pair[2];

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 10, 1);
        ck_assert_int_eq(fd_store_resume(&st, resumed, 2), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        sent.copy_fd = pair[0];
        young.copy_fd = dup(pair[0]);
        st.n_used++;
        st.n_young = 1;                 /* @young; @sent is counted as unconfirmed */
        st.n_unconfirmed = 1;

        fd_store_child_ended(&st, &handed, true);
        fd_store_child_ended(&st, &ended, false);
        fd_store_child_ended(&st, &sent, false);
        fd_store_child_ended(&st, &young, false);

        ck_assert_uint_eq(st.n_young, 0);
        ck_assert_uint_eq(st.n_unconfirmed, 0);
        ck_assert_int_eq(sent.copy_fd, -1);
        ck_assert_int_eq(young.copy_fd, -1);
        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), 0);
        ck_assert_uint_eq(st.n_used, 1);                /* the one handed over */
        expect_message(&m, "FDSTOREREMOVE=1\nFDNAME=echod-conn-1-3", 0);
        expect_message(&m, "FDSTOREREMOVE=1\nFDNAME=echod-conn-1-2", 0);
        expect_no_message(&m);
        close(pair[1]);
        fd_store_free(&st);
        manager_close(&m);
}
END_TEST

/* An older echod stored by batches, one name for many connections, and
 * FDSTOREREMOVE=1 removes every fd of a name: such a name is removed only
 * with the last of its connections, freeing all their slots. */
START_TEST(a_batch_name_leaves_with_its_last_connection) {
        struct manager m;
        struct fd_store st;
        static const char *const resumed[] = { "echod-conn-9-4", "echod-conn-9-5",
                                               "echod-conn-9-4", "echod-conn-9-4" };
        struct child a = { .pid = 1, .copy_fd = -1, .store_state = FD_STORE_CONFIRMED,
                           .fd_store_name = "echod-conn-9-4" };
        struct child b = a, c = a;
        struct child other = { .pid = 4, .copy_fd = -1, .store_state = FD_STORE_CONFIRMED,
                               .fd_store_name = "echod-conn-9-5" };

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 10, 9);
        ck_assert_int_eq(fd_store_resume(&st, resumed, 4), 0);
        ck_assert_uint_eq(st.n_used, 4);
        ck_assert_uint_eq(st.seq, 5);

        fd_store_child_ended(&st, &a, false);
        fd_store_child_ended(&st, &b, false);
        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), 0);
        expect_no_message(&m);                  /* one of the batch is still open */
        fd_store_child_ended(&st, &other, false);
        fd_store_child_ended(&st, &c, false);
        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), 0);
        ck_assert_uint_eq(st.n_used, 0);
        expect_message(&m, "FDSTOREREMOVE=1\nFDNAME=echod-conn-9-4", 0);
        expect_message(&m, "FDSTOREREMOVE=1\nFDNAME=echod-conn-9-5", 0);
        fd_store_free(&st);
        manager_close(&m);
}
END_TEST

/* A restart, where PID 1 enforces a smaller store than we counted with (an
 * administrator lowered FileDescriptorStoreMax= and reloaded): if our count
 * ever went past the new size, PID 1 may have closed some of the stores the
 * barrier confirmed, so each connection we stored is removed and stored
 * again from our copy, up to the new size; a resumed one (PID 1 passed it:
 * certainly there) stays. Where our count never went past it, nothing
 * changes but the size. */
START_TEST(a_smaller_store_at_a_restart_is_filled_again_from_our_copies) {
        struct manager m;
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        unsigned n_confirmed = 0;
        char text[128];
        int fd;

        manager_open(&m, 1 << 20);
        fd_store_init(&st, 10, 4242);
        ck_assert_int_eq(fd_store_resume(&st, NULL, 0), 0);
        add_young(&c, &st, peers);
        fd_store_flush(&st, &m.notify, &c, USEC_INFINITY, 3000, &shortfall);
        skip_stores(&m, N_CONNECTIONS);
        expect_message(&m, "BARRIER=1", 1);
        fd_store_confirm(&st, &m.notify, &c, 3100, count_confirmed, &n_confirmed);
        ck_assert_uint_eq(n_confirmed, N_CONNECTIONS);
        children_find(&c, 1000)->token = 0;     /* as if resumed */

        fd_store_restart(&st, &c, N_CONNECTIONS);       /* never past it: as it was */
        ck_assert_uint_eq(st.max, N_CONNECTIONS);
        ck_assert_uint_eq(st.n_young, 0);
        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), 0);
        expect_no_message(&m);

        fd_store_restart(&st, &c, 5);
        ck_assert_uint_eq(st.max, 5);
        ck_assert_uint_eq(st.n_young, N_CONNECTIONS - 1);
        ck_assert_uint_eq(st.n_unconfirmed, 0);
        ck_assert_int_eq(children_find(&c, 1000)->store_state, FD_STORE_CONFIRMED);
        for (int i = 1; i < N_CONNECTIONS; i++) {
                const struct child *child = children_find(&c, 1000 + i);
                ck_assert_int_eq(child->store_state, FD_STORE_YOUNG);
                ck_assert_int_ge(child->copy_fd, 0);
        }
        ck_assert_int_eq(fd_store_send_removals(&st, &m.notify), 0);
        ck_assert_uint_eq(st.n_used, 1);
        for (int i = 1; i < N_CONNECTIONS; i++) {
                ck_assert_int_eq(read_message(&m, text, sizeof text, &fd), 0);
                static const char removal[] = "FDSTOREREMOVE=1\nFDNAME=echod-conn-4242-";
                ck_assert(strncmp(text, removal, strlen(removal)) == 0);
        }
        fd_store_flush(&st, &m.notify, &c, USEC_INFINITY, 3200, &shortfall);
        ck_assert_uint_eq(st.n_used, 5);
        ck_assert_uint_eq(shortfall.n_full, N_CONNECTIONS - 5);
        ck_assert_int_eq(read_message(&m, text, sizeof text, &fd), 1);
        close(fd);
        ck_assert_str_eq(text, "FDSTORE=1\nFDPOLL=0\nFDNAME=echod-conn-4242-9");  /* new names */
        skip_stores(&m, 3);
        expect_message(&m, "BARRIER=1", 1);
        expect_no_message(&m);

        end_all(&c, &st, peers);
        manager_close(&m);
}
END_TEST

int main(void) {
        Suite *s = suite_create("fdstore");
        TCase *tc = tcase_create("names");
        tcase_add_test(tc, store_names_are_unique_and_recognised);
        tcase_add_test(tc, longest_name_fits);
        tcase_add_test(tc, a_reused_pid_continues_after_the_stored_names);
        tcase_add_test(tc, the_size_systemd_passes_is_read_whole_or_not_at_all);
        suite_add_tcase(s, tc);
        tc = tcase_create("store");
        tcase_add_test(tc, each_due_connection_goes_in_alone_then_a_barrier);
        tcase_add_test(tc, a_barrier_confirms_only_what_was_sent_before_it);
        tcase_add_test(tc, a_new_connection_is_flushed_while_others_wait_for_confirmation);
        tcase_add_test(tc, never_more_than_the_store_holds);
        tcase_add_test(tc, a_slot_is_free_once_its_removal_is_sent);
        tcase_add_test(tc, stores_pid1_had_no_room_for_are_sent_again);
        tcase_add_test(tc, a_barrier_pid1_had_no_room_for_is_sent_again);
        tcase_add_test(tc, the_store_follows_how_children_end);
        tcase_add_test(tc, a_batch_name_leaves_with_its_last_connection);
        tcase_add_test(tc, a_smaller_store_at_a_restart_is_filled_again_from_our_copies);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
