/* The records between echod and its acceptor, over a real SOCK_SEQPACKET
 * pair: in order, with their fds in place, in messages of at most
 * CONTROL_BATCH_MAX, never waiting, and whatever the kernel could not give
 * back (out of fds) accounted for where it was. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/control.h"
#include "unit.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
static bool under_valgrind(void) {
        return RUNNING_ON_VALGRIND;
}
#else
static bool under_valgrind(void) {
        return false;
}
#endif

static void make_pair(int *pair) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                                    pair), 0);
}

static ino_t inode_of(int fd) {
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        return st.st_ino;
}

static int new_socket(ino_t *ret_inode, int *ret_peer) {
        int pair[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        *ret_inode = inode_of(pair[0]);
        *ret_peer = pair[1];
        return pair[0];
}

START_TEST(records_and_their_fds_arrive_in_order) {
        struct control_queue q = { .n = 0 };
        struct control_record got[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX], pair[2], peers[2];
        ino_t inodes[2];

        make_pair(pair);
        int a = new_socket(&inodes[0], &peers[0]);
        int b = new_socket(&inodes[1], &peers[1]);
        ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                .kind = CONTROL_OPENED, .pid = 10 }, a), 0);
        ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                .kind = CONTROL_EXITED, .pid = 11, .status = 256 }, -1), 0);
        ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                .kind = CONTROL_OPENED, .pid = 12 }, b), 0);

        ck_assert_int_eq(control_queue_send(pair[0], &q), 0);

        ck_assert_uint_eq(q.n, 0);
        ck_assert_int_eq(fcntl(a, F_GETFD), -1);        /* ours closed once sent */
        ck_assert_int_eq(control_receive(pair[1], got, fds), 3);
        ck_assert_int_eq(got[0].pid, 10);
        ck_assert(got[0].has_fd && !got[1].has_fd && got[2].has_fd);
        ck_assert_int_eq(got[1].status, 256);
        ck_assert_uint_eq(inode_of(fds[0]), inodes[0]);
        ck_assert_uint_eq(inode_of(fds[1]), inodes[1]);
        ck_assert(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(control_receive(pair[1], got, fds), -EAGAIN);
        for (int i = 0; i < 2; i++) {
                close(fds[i]);
                close(peers[i]);
        }
        close(pair[0]);
        close(pair[1]);
}
END_TEST

START_TEST(a_queue_goes_out_in_messages_of_a_batch_at_most) {
        struct control_queue q = { .n = 0 };
        struct control_record got[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX], pair[2];

        make_pair(pair);
        for (size_t i = 0; i < CONTROL_QUEUE_MAX; i++)
                ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                        .kind = CONTROL_PONG, .pid = (int32_t) i }, -1), 0);
        ck_assert_int_eq(control_queue_add(&q, &(struct control_record) { .kind = CONTROL_PONG },
                                           -1), -ENOBUFS);

        ck_assert_int_eq(control_queue_send(pair[0], &q), 0);

        ck_assert_int_eq(control_receive(pair[1], got, fds), (int) CONTROL_BATCH_MAX);
        ck_assert_int_eq(got[CONTROL_BATCH_MAX - 1].pid, (int) CONTROL_BATCH_MAX - 1);
        ck_assert_int_eq(control_receive(pair[1], got, fds), (int) CONTROL_BATCH_MAX);
        ck_assert_int_eq(got[0].pid, (int) CONTROL_BATCH_MAX);
        close(pair[0]);
        close(pair[1]);
}
END_TEST

/* A peer that does not read: sending never waits, and what was not sent
 * stays queued, fds included, until it is. */
START_TEST(a_peer_behind_keeps_the_queue) {
        struct control_queue q = { .n = 0 };
        struct control_record got[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX], pair[2], peer;
        ino_t inode;
        int r = 0, n_sent = 0;

        make_pair(pair);
        while (r == 0 && n_sent < 100000) {
                ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                        .kind = CONTROL_PONG }, -1), 0);
                r = control_queue_send(pair[0], &q);
                n_sent += r == 0;
        }
        ck_assert_int_eq(r, -EAGAIN);
        ck_assert_uint_eq(q.n, 1);
        int fd = new_socket(&inode, &peer);
        ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                .kind = CONTROL_OPENED, .pid = 7 }, fd), 0);
        ck_assert_int_eq(control_queue_send(pair[0], &q), -EAGAIN);
        ck_assert_uint_eq(q.n, 2);
        ck_assert_int_ge(fcntl(fd, F_GETFD), 0);        /* still ours */

        for (int i = 0; i < n_sent; i++)
                ck_assert_int_eq(control_receive(pair[1], got, fds), 1);
        ck_assert_int_eq(control_queue_send(pair[0], &q), 0);
        ck_assert_int_eq(control_receive(pair[1], got, fds), 2);
        ck_assert_int_eq(got[1].pid, 7);
        ck_assert_uint_eq(inode_of(fds[0]), inode);
        close(fds[0]);
        close(peer);
        close(pair[0]);
        close(pair[1]);
}
END_TEST

/* Out of fds when a message comes: the kernel gives back the fds it can,
 * closes the rest, and says so; those come back as -EMFILE, in their
 * places, so that every record still goes with its own fd. */
START_TEST(fds_lost_to_emfile_keep_the_others_in_place) {
        enum { N = 64, ROOM = 10 };     /* CONTROL_BATCH_MAX */
        struct control_queue q = { .n = 0 };
        struct control_record got[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX], pair[2], peers[N], fillers[4096], n_fillers = 0;
        ino_t inodes[N];
        struct rlimit saved;

        if (under_valgrind()) {
                /* It keeps fd limits of its own, which the kernel does not
                 * apply to fds it passes with SCM_RIGHTS: nothing is lost. */
                fputs("skipped under valgrind: its fd limit is not the kernel's\n", stderr);
                return;
        }
        make_pair(pair);
        for (int i = 0; i < N; i++) {
                int fd = new_socket(&inodes[i], &peers[i]);
                ck_assert_int_eq(control_queue_add(&q, &(struct control_record) {
                        .kind = CONTROL_OPENED, .pid = i }, fd), 0);
        }
        ck_assert_int_eq(control_queue_send(pair[0], &q), 0);
        /* Room for ROOM more fds only: every free fd up to the highest in
         * use taken, and the limit ROOM above it. */
        int highest = peers[N - 1] > pair[1] ? peers[N - 1] : pair[1], fd;
        while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < highest)
                fillers[n_fillers++] = fd;
        close(fd);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        struct rlimit tight = { .rlim_cur = (rlim_t) highest + 1 + ROOM,
                                .rlim_max = saved.rlim_max };
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);

        int n = control_receive(pair[1], got, fds);

        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
        ck_assert_int_eq(n, N);
        for (int i = 0; i < N; i++) {
                ck_assert_int_eq(got[i].pid, i);
                if (i < ROOM) {
                        ck_assert_uint_eq(inode_of(fds[i]), inodes[i]);
                        close(fds[i]);
                } else {
                        ck_assert_int_eq(fds[i], -EMFILE);
                }
                close(peers[i]);
        }
        for (int i = 0; i < n_fillers; i++)
                close(fillers[i]);
        close(pair[0]);
        close(pair[1]);
}
END_TEST

/* A message that is not a whole number of records is refused, and the fds
 * it brought are closed. */
START_TEST(a_malformed_message_is_refused) {
        struct control_record got[CONTROL_BATCH_MAX];
        int fds[CONTROL_BATCH_MAX], pair[2];

        make_pair(pair);
        ck_assert_int_eq(send(pair[0], "short", 5, 0), 5);
        ck_assert_int_eq(control_receive(pair[1], got, fds), -EPROTO);
        close(pair[0]);
        ck_assert_int_eq(control_receive(pair[1], got, fds), 0);       /* end of stream */
        close(pair[1]);
}
END_TEST

int main(void) {
        Suite *s = suite_create("control");
        TCase *tc = tcase_create("control");
        tcase_add_test(tc, records_and_their_fds_arrive_in_order);
        tcase_add_test(tc, a_queue_goes_out_in_messages_of_a_batch_at_most);
        tcase_add_test(tc, a_peer_behind_keeps_the_queue);
        tcase_add_test(tc, fds_lost_to_emfile_keep_the_others_in_place);
        tcase_add_test(tc, a_malformed_message_is_refused);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
