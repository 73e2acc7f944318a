/* Names and size of systemd's fd store, as echod uses it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

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

int main(void) {
        Suite *s = suite_create("fdstore");
        TCase *tc = tcase_create("names");
        tcase_add_test(tc, store_names_are_unique_and_recognised);
        tcase_add_test(tc, longest_name_fits);
        tcase_add_test(tc, a_reused_pid_continues_after_the_stored_names);
        tcase_add_test(tc, the_store_exists_only_with_a_notify_socket_and_a_size);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
