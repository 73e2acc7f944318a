/* The stash: fds held in flight in a socket, out of the fd table, and given
 * back one at a time in the order they went in. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
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

int main(void) {
        Suite *s = suite_create("stash");
        TCase *tc = tcase_create("stash");
        tcase_add_test(tc, fds_come_back_in_order_and_stay_out_of_the_table_meanwhile);
        tcase_add_test(tc, closing_the_stash_closes_what_it_holds);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
