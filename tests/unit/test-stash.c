/* The stash: fds held in flight in a socket, out of the fd table, and given
 * back one at a time in the order they went in. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/stash.h"
#include "unit.h"

enum { N = 600 };       /* three messages: 253 + 253 + 94 */

static ino_t inode_of(int fd) {
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        return st.st_ino;
}

static bool is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

START_TEST(fds_come_back_in_order_and_stay_out_of_the_table_meanwhile) {
        struct stash st;
        int ours[N], peers[N];
        ino_t inodes[N];

        ck_assert_int_eq(stash_open(&st), 0);
        for (int i = 0; i < N; i++) {
                int pair[2];
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
                ours[i] = pair[0];
                peers[i] = pair[1];
                inodes[i] = inode_of(pair[0]);
        }

        ck_assert_int_eq(stash_put(&st, ours, N), N);

        for (int i = 0; i < N; i++)
                ck_assert(!is_open(ours[i]));           /* out of the table */
        for (int i = 0; i < N; i++) {
                int fd = stash_take(&st);
                ck_assert_int_ge(fd, 0);
                ck_assert_uint_eq(inode_of(fd), inodes[i]);     /* the same socket, in order */
                ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                close(fd);
                close(peers[i]);
        }
        ck_assert_int_eq(stash_take(&st), -ENOENT);
        stash_close(&st);
}
END_TEST

/* Closing the stash closes what is still in it: their peers see the end. */
START_TEST(closing_the_stash_closes_what_it_holds) {
        struct stash st;
        int pair[2];

        ck_assert_int_eq(stash_open(&st), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        ck_assert_int_eq(stash_put(&st, &pair[0], 1), 1);

        stash_close(&st);

        struct pollfd p = { .fd = pair[1], .events = POLLIN };
        ck_assert_int_eq(poll(&p, 1, 1000), 1);
        ck_assert(p.revents & (POLLHUP | POLLIN));
        char byte;
        ck_assert_int_eq(read(pair[1], &byte, 1), 0);   /* EOF */
        close(pair[1]);
}
END_TEST

/* valgrind's client request, where its header is installed (the test
 * suite's valgrind run has it; a package build need not). */
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

/* Out of fds when a message comes back: the kernel gives back the fds it
 * can, closes the rest and says so. Those come back as -EMFILE, in their
 * places, and every fd after them is still the one put there. */
START_TEST(fds_lost_to_emfile_keep_the_others_in_place) {
        enum { M = 300, ROOM = 10 };    /* two messages: 253 + 47 */
        struct stash st;
        struct rlimit saved;
        int ours[M], peers[M];
        ino_t inodes[M];

        if (under_valgrind()) {
                /* It keeps fd limits of its own, which the kernel does not
                 * apply to fds it passes with SCM_RIGHTS: nothing is lost. */
                fputs("skipped under valgrind: its fd limit is not the kernel's\n", stderr);
                return;
        }
        ck_assert_int_eq(stash_open(&st), 0);
        for (int i = 0; i < M; i++) {
                int pair[2];
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
                ours[i] = pair[0];
                peers[i] = pair[1];
                inodes[i] = inode_of(pair[0]);
        }
        ck_assert_int_eq(stash_put(&st, ours, M), M);
        /* Room for ROOM more fds only: every free fd up to the highest in use
         * taken, and the limit ROOM above it. */
        int highest = peers[M - 1] > st.fds[1] ? peers[M - 1] : st.fds[1];
        int fillers[M + 8], n_fillers = 0, fd;
        while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < highest)
                fillers[n_fillers++] = fd;
        close(fd);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        struct rlimit tight = { .rlim_cur = (rlim_t) highest + 1 + ROOM,
                                .rlim_max = saved.rlim_max };
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);

        int n_lost = 0;
        for (int i = 0; i < 253; i++) {
                int fd = stash_take(&st);
                if (fd == -EMFILE) {
                        n_lost++;
                        continue;
                }
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(n_lost, 0);            /* the lost ones are the last */
                ck_assert_uint_eq(inode_of(fd), inodes[i]);
                close(fd);
        }
        ck_assert_int_eq(n_lost, 253 - ROOM);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
        for (int i = 0; i < n_fillers; i++)
                close(fillers[i]);
        for (int i = 253; i < M; i++) {
                int fd = stash_take(&st);
                ck_assert_int_ge(fd, 0);
                ck_assert_uint_eq(inode_of(fd), inodes[i]);     /* still in its place */
                close(fd);
        }
        ck_assert_int_eq(stash_take(&st), -ENOENT);
        for (int i = 0; i < M; i++)
                close(peers[i]);
        stash_close(&st);
}
END_TEST

int main(void) {
        Suite *s = suite_create("stash");
        TCase *tc = tcase_create("stash");
        tcase_add_test(tc, fds_come_back_in_order_and_stay_out_of_the_table_meanwhile);
        tcase_add_test(tc, closing_the_stash_closes_what_it_holds);
        tcase_add_test(tc, fds_lost_to_emfile_keep_the_others_in_place);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
