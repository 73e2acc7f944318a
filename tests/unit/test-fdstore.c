/* systemd's fd store as echod uses it: names, size, and which connections go
 * in, when, in how many messages (read from a real NOTIFY_SOCKET). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
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

START_TEST(the_store_exists_only_with_a_notify_socket_and_a_size) {
        unsetenv("NOTIFY_SOCKET");
        setenv("FDSTORE", "1024", 1);
        ck_assert_uint_eq(notify_fd_store_max(), 0);
        setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
        ck_assert_uint_eq(notify_fd_store_max(), 1024);
        setenv("FDSTORE", "lots", 1);
        ck_assert_uint_eq(notify_fd_store_max(), 0);
        unsetenv("FDSTORE");
        ck_assert_uint_eq(notify_fd_store_max(), 0);
        unsetenv("NOTIFY_SOCKET");
}
END_TEST

/* A notify socket of our own, as systemd's would be. */
static int open_notify_socket(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int size = 4 << 20;
        char name[64];

        snprintf(name, sizeof name, "@echod-test-notify-%d", (int) getpid());
        memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);   /* abstract */
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_int_ge(fd, 0);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa,
                              (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(name))),
                         0);
        setenv("NOTIFY_SOCKET", name, 1);
        return fd;
}

/* Reads one message: its text into @text, its fds counted (and closed).
 * Returns the fd count, or -1 when no message is waiting. */
static int read_message(int fd, char *text, size_t size) {
        char control[CMSG_SPACE(sizeof(int) * FD_STORE_BATCH_MAX)];
        struct iovec iov = { .iov_base = text, .iov_len = size - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control };
        int n_fds = 0;

        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -1;
        text[n] = '\0';
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                int *fds = (int *) CMSG_DATA(c);
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++)
                        close(fds[i]);
                n_fds += (int) k;
        }
        return n_fds;
}

static void count_stored(pid_t pid, void *userdata) {
        (void) pid;
        ++*(unsigned *) userdata;
}

enum { N_CONNECTIONS = 260, N_TOO_YOUNG = 2 };

/* N_CONNECTIONS young connections, the last N_TOO_YOUNG born at 2000, the
 * rest at 1000; their other ends in @peers. */
static void add_young(struct children *c, struct fd_store *st, int *peers) {
        ck_assert_int_eq(children_init(c, N_CONNECTIONS), 0);
        for (int i = 0; i < N_CONNECTIONS; i++) {
                int pair[2];
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
                peers[i] = pair[1];
                usec_t born = i >= N_CONNECTIONS - N_TOO_YOUNG ? 2000 : 1000;
                ck_assert(fd_store_keep_young(st, born));
                ck_assert_int_eq(children_add(c, &(struct child) {
                        .pid = 1000 + i, .start_usec = born, .young_fd = pair[0] }), 0);
        }
}

/* Every connection old enough goes in, FD_STORE_BATCH_MAX to a message,
 * one name a message, never a name twice; the too young stay with us; one
 * its child already shut down (not reaped yet) has ended: not stored. */
START_TEST(due_connections_go_in_by_batches_of_253) {
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        char first[256], second[256], none[256];
        unsigned n_told = 0;

        int notify_fd = open_notify_socket();
        fd_store_init(&st, 4096, 4242);
        add_young(&c, &st, peers);
        ck_assert_uint_eq(st.next_flush_usec, 1000 + FD_STORE_MIN_AGE_USEC);
        int oldest_copy = children_find(&c, 1000)->young_fd;
        /* 1020 falls in the second batch: the table is scanned by slot, pid & 1023 */
        ck_assert_int_eq(shutdown(children_find(&c, 1020)->young_fd, SHUT_RDWR), 0);

        fd_store_flush(&st, &c, 1500, 1500, count_stored, &n_told, &shortfall);

        /* our copies of the stored ones are closed: only PID 1's are left */
        ck_assert_int_eq(fcntl(oldest_copy, F_GETFD), -1);
        ck_assert_int_eq(errno, EBADF);
        ck_assert_uint_eq(shortfall.n_full + shortfall.n_failed, 0);
        ck_assert_uint_eq(n_told, N_CONNECTIONS - N_TOO_YOUNG - 1);
        ck_assert_uint_eq(st.n, N_CONNECTIONS - N_TOO_YOUNG - 1);
        ck_assert_uint_eq(st.n_young, N_TOO_YOUNG);
        ck_assert_uint_eq(st.next_flush_usec, 1500 + FD_STORE_MIN_AGE_USEC);
        for (int i = 0; i < N_CONNECTIONS; i++) {
                struct child *child = children_find(&c, 1000 + i);
                bool young = i >= N_CONNECTIONS - N_TOO_YOUNG;
                ck_assert_int_eq(child->young_fd >= 0, young);
                ck_assert_int_eq(child->fd_store_name[0] == '\0', young || i == 20);
        }
        ck_assert_int_eq(read_message(notify_fd, first, sizeof first), FD_STORE_BATCH_MAX);
        ck_assert_int_eq(read_message(notify_fd, second, sizeof second),
                         N_CONNECTIONS - N_TOO_YOUNG - 1 - FD_STORE_BATCH_MAX);
        ck_assert_int_eq(read_message(notify_fd, none, sizeof none), -1);
        ck_assert_str_eq(first, "FDSTORE=1\nFDNAME=echod-conn-4242-1");
        ck_assert_str_eq(second, "FDSTORE=1\nFDNAME=echod-conn-4242-2");
        for (int i = 0; i < N_CONNECTIONS; i++) {
                struct child *child = children_find(&c, 1000 + i);
                if (child->young_fd >= 0)
                        fd_store_child_ended(&st, child, false);
                close(peers[i]);
        }
        ck_assert_uint_eq(st.n_young, 0);
        children_free(&c);
        close(notify_fd);
        unsetenv("NOTIFY_SOCKET");
}
END_TEST

/* A full store takes what it has room for; the rest are counted, and our
 * copies closed all the same (they are served, not kept). */
START_TEST(a_full_store_takes_what_fits) {
        struct fd_store st;
        struct fd_store_shortfall shortfall;
        struct children c;
        int peers[N_CONNECTIONS];
        char text[256];
        unsigned n_told = 0;

        int notify_fd = open_notify_socket();
        fd_store_init(&st, 100, 4242);
        fd_store_resumed(&st, "echod-conn-4242-7");   /* one kept from before, batch 7 */
        add_young(&c, &st, peers);

        fd_store_flush(&st, &c, USEC_INFINITY, 3000, count_stored, &n_told, &shortfall);

        ck_assert_uint_eq(n_told, 99);
        ck_assert_uint_eq(shortfall.n_full, N_CONNECTIONS - 99);
        ck_assert_uint_eq(st.n, 100);
        ck_assert_uint_eq(st.n_young, 0);
        ck_assert_uint_eq(st.next_flush_usec, USEC_INFINITY);
        ck_assert_int_eq(read_message(notify_fd, text, sizeof text), 99);
        ck_assert_str_eq(text, "FDSTORE=1\nFDNAME=echod-conn-4242-8");
        ck_assert_int_eq(read_message(notify_fd, text, sizeof text), -1);
        for (int i = 0; i < N_CONNECTIONS; i++)
                close(peers[i]);
        children_free(&c);
        close(notify_fd);
        unsetenv("NOTIFY_SOCKET");
}
END_TEST

/* A connection its child shut down leaves the store by itself; one handed
 * over (or whose child was killed) stays. */
START_TEST(the_count_follows_how_children_end) {
        struct fd_store st;
        struct child ended = { .pid = 1, .young_fd = -1, .fd_store_name = "echod-conn-1-1" };
        struct child handed = ended;

        fd_store_init(&st, 10, 1);
        fd_store_resumed(&st, ended.fd_store_name);
        fd_store_resumed(&st, handed.fd_store_name);
        fd_store_child_ended(&st, &handed, true);
        ck_assert_uint_eq(st.n, 2);
        fd_store_child_ended(&st, &ended, false);
        ck_assert_uint_eq(st.n, 1);
}
END_TEST

int main(void) {
        Suite *s = suite_create("fdstore");
        TCase *tc = tcase_create("names");
        tcase_add_test(tc, store_names_are_unique_and_recognised);
        tcase_add_test(tc, longest_name_fits);
        tcase_add_test(tc, a_reused_pid_continues_after_the_stored_names);
        tcase_add_test(tc, the_store_exists_only_with_a_notify_socket_and_a_size);
        suite_add_tcase(s, tc);
        tc = tcase_create("batches");
        tcase_add_test(tc, due_connections_go_in_by_batches_of_253);
        tcase_add_test(tc, a_full_store_takes_what_fits);
        tcase_add_test(tc, the_count_follows_how_children_end);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
