/* The live-children set: exact counts through any order of adds and exits. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "src/children.h"
#include "unit.h"

static int add(struct children *c, pid_t pid) {
        return children_add(c, &(struct child) { .pid = pid });
}

static void count(pid_t pid, void *userdata) {
        (void) pid;
        ++*(size_t *) userdata;
}

START_TEST(added_children_are_found_and_counted) {
        struct children c;

        ck_assert_int_eq(children_init(&c, 4), 0);
        ck_assert_int_eq(add(&c, 100), 0);
        ck_assert_int_eq(add(&c, 101), 0);
        ck_assert_int_eq(add(&c, 100), -EEXIST);
        ck_assert_ptr_nonnull(children_find(&c, 100));
        ck_assert_ptr_null(children_find(&c, 102));
        ck_assert_uint_eq(c.n, 2);
        ck_assert_int_eq(children_forget(&c, 102, NULL), -ENOENT);
        ck_assert_int_eq(children_forget(&c, 100, NULL), 0);
        ck_assert_uint_eq(c.n, 1);
        children_free(&c);
}
END_TEST

/* Many PIDs sharing probe runs, forgotten in a scrambled order: every one
 * left must stay findable (the backward shift must not lose any). */
START_TEST(forgetting_in_any_order_keeps_the_rest_findable) {
        enum { N = 5000 };
        static pid_t pids[N];
        struct children c;
        size_t seen = 0;

        ck_assert_int_eq(children_init(&c, N), 0);
        for (int i = 0; i < N; i++) {
                pids[i] = 1000 + i * 7;
                ck_assert_int_eq(add(&c, pids[i]), 0);
        }
        srand(7);
        for (int i = N - 1; i > 0; i--) {
                int j = rand() % (i + 1);
                pid_t t = pids[i];
                pids[i] = pids[j];
                pids[j] = t;
        }
        for (int i = 0; i < N / 2; i++)
                ck_assert_int_eq(children_forget(&c, pids[i], NULL), 0);
        for (int i = N / 2; i < N; i++)
                ck_assert_msg(children_find(&c, pids[i]) != NULL, "lost pid %d", pids[i]);
        children_foreach(&c, count, &seen);
        ck_assert_uint_eq(seen, N - N / 2);
        ck_assert_uint_eq(c.n, N - N / 2);
        children_free(&c);
}
END_TEST

START_TEST(the_set_refuses_more_than_it_was_sized_for) {
        struct children c;
        int r = 0;

        ck_assert_int_eq(children_init(&c, 1), 0);
        for (pid_t pid = 1; pid < 1000 && r == 0; pid++)
                r = add(&c, pid);
        ck_assert_int_eq(r, -ENOSPC);
        ck_assert_uint_ge(c.n, 1);
        children_free(&c);
}
END_TEST

START_TEST(a_forgotten_child_returns_its_record) {
        struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = 4242 };
        struct child child = { .pid = 42, .peer_len = sizeof peer, .start_usec = 7 }, gone;
        struct children c;

        memcpy(&child.peer, &peer, sizeof peer);
        ck_assert_int_eq(children_init(&c, 4), 0);
        ck_assert_int_eq(children_add(&c, &child), 0);
        children_find(&c, 42)->bytes = 1000;    /* as the child's report updates it */
        ck_assert_int_eq(children_forget(&c, 42, &gone), 0);
        ck_assert_int_eq(gone.pid, 42);
        ck_assert_uint_eq(gone.bytes, 1000);
        ck_assert_uint_eq(gone.start_usec, 7);
        ck_assert_mem_eq(&gone.peer, &peer, sizeof peer);
        ck_assert_ptr_null(children_find(&c, 42));
        children_free(&c);
}
END_TEST

/* Which connections are due for the fd store: young ones (the parent still
 * holds a copy) born early enough, in as many calls as the batch size needs. */
START_TEST(young_connections_are_collected_by_age_in_batches) {
        struct children c;
        struct child *batch[4];
        size_t cursor = 0, total = 0;

        ck_assert_int_eq(children_init(&c, 16), 0);
        for (pid_t pid = 200; pid < 210; pid++)         /* born at 1000..1009 */
                ck_assert_int_eq(children_add(&c, &(struct child) {
                        .pid = pid, .start_usec = 1000 + (usec_t) (pid - 200),
                        .copy_fd = pid == 203 ? -1 : 10 + pid - 200 }), 0);   /* 203: stored */

        /* born at or before 1007: 200..207 but 203, seven, by batches of 4 */
        size_t n = children_young(&c, 1007, &cursor, batch, 4);
        ck_assert_uint_eq(n, 4);
        for (;;) {
                for (size_t i = 0; i < n; i++) {
                        ck_assert_int_ge(batch[i]->copy_fd, 0);
                        ck_assert_uint_le(batch[i]->start_usec, 1007);
                        ck_assert_int_ne(batch[i]->pid, 203);
                }
                total += n;
                if (n < 4)
                        break;
                n = children_young(&c, 1007, &cursor, batch, 4);
        }
        ck_assert_uint_eq(total, 7);
        cursor = 0;
        ck_assert_uint_eq(children_young(&c, 999, &cursor, batch, 4), 0);  /* none that old */
        children_free(&c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("children");
        TCase *tc = tcase_create("set");
        tcase_add_test(tc, added_children_are_found_and_counted);
        tcase_add_test(tc, forgetting_in_any_order_keeps_the_rest_findable);
        tcase_add_test(tc, the_set_refuses_more_than_it_was_sized_for);
        tcase_add_test(tc, a_forgotten_child_returns_its_record);
        tcase_add_test(tc, young_connections_are_collected_by_age_in_batches);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
