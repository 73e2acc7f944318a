/* The live-children set: exact counts through any order of adds and exits. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "src/children.h"
#include "unit.h"

static void count(pid_t pid, void *userdata) {
        (void) pid;
        ++*(size_t *) userdata;
}

START_TEST(added_children_are_found_and_counted) {
        struct children c;

        ck_assert_int_eq(children_init(&c, 4), 0);
        ck_assert_int_eq(children_add(&c, 100, NULL), 0);
        ck_assert_int_eq(children_add(&c, 101, NULL), 0);
        ck_assert_int_eq(children_add(&c, 100, NULL), -EEXIST);
        ck_assert(children_contains(&c, 100));
        ck_assert(!children_contains(&c, 102));
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
                ck_assert_int_eq(children_add(&c, pids[i], NULL), 0);
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
                ck_assert_msg(children_contains(&c, pids[i]), "lost pid %d", pids[i]);
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
                r = children_add(&c, pid, NULL);
        ck_assert_int_eq(r, -ENOSPC);
        ck_assert_uint_ge(c.n, 1);
        children_free(&c);
}
END_TEST

START_TEST(a_forgotten_child_returns_its_source) {
        struct in6_addr source = IN6ADDR_LOOPBACK_INIT;
        struct children c;
        struct child gone;

        ck_assert_int_eq(children_init(&c, 4), 0);
        ck_assert_int_eq(children_add(&c, 42, &source), 0);
        ck_assert_int_eq(children_forget(&c, 42, &gone), 0);
        ck_assert_int_eq(gone.pid, 42);
        ck_assert(gone.has_source);
        ck_assert_mem_eq(&gone.source, &source, sizeof source);
        children_free(&c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("children");
        TCase *tc = tcase_create("set");
        tcase_add_test(tc, added_children_are_found_and_counted);
        tcase_add_test(tc, forgetting_in_any_order_keeps_the_rest_findable);
        tcase_add_test(tc, the_set_refuses_more_than_it_was_sized_for);
        tcase_add_test(tc, a_forgotten_child_returns_its_source);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
