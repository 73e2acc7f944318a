/* The STATUS= text systemd shows, and how often it may change. */
#include <check.h>
#include <string.h>

#include "src/notify.h"
#include "unit.h"

START_TEST(status_starts_with_active_and_total) {
        char text[STATUS_TEXT_MAX];

        status_format(text, sizeof text, &(struct status) { .n_active = 3, .n_total = 1042 });
        ck_assert_str_eq(text, "3 active, 1042 total connections");
        status_format(text, sizeof text, &(struct status) { 0 });
        ck_assert_str_eq(text, "0 active, 0 total connections");
}
END_TEST

START_TEST(status_says_stopping_after_the_counts) {
        char text[STATUS_TEXT_MAX];

        status_format(text, sizeof text, &(struct status) {
                .n_active = 65536, .n_total = UINT64_MAX, .stopping = true });
        ck_assert_str_eq(text, "65536 active, 18446744073709551615 total connections, stopping");
}
END_TEST

START_TEST(status_adds_refused_and_datagrams_after_a_comma) {
        char text[STATUS_TEXT_MAX];

        status_format(text, sizeof text, &(struct status) {
                .n_active = 1, .n_total = 9, .n_refused = 2, .datagrams = true,
                .datagrams_echoed = 10, .datagrams_dropped = 3, .stopping = true });
        ck_assert_str_eq(text, "1 active, 9 total connections, 2 refused, "
                               "10 datagrams echoed, 3 dropped, stopping");
        status_format(text, sizeof text, &(struct status) { .datagrams = true });
        ck_assert_str_eq(text, "0 active, 0 total connections, 0 datagrams echoed, 0 dropped");
}
END_TEST

START_TEST(status_goes_out_at_most_once_a_second) {
        ck_assert_uint_eq(status_next_usec(0), 0);      /* never sent: now */
        ck_assert_uint_eq(status_next_usec(5 * USEC_PER_SEC), 6 * USEC_PER_SEC);
}
END_TEST

START_TEST(poll_timeout_rounds_up_and_never_spins) {
        ck_assert_int_eq(poll_timeout_ms(USEC_INFINITY, 0), -1);
        ck_assert_int_eq(poll_timeout_ms(1000, 2000), 0);
        ck_assert_int_eq(poll_timeout_ms(2001, 2000), 1);       /* 1 µs: wait 1 ms, not 0 */
        ck_assert_int_eq(poll_timeout_ms(2000 + USEC_PER_SEC, 2000), 1000);
}
END_TEST

int main(void) {
        Suite *s = suite_create("notify");
        TCase *tc = tcase_create("status");
        tcase_add_test(tc, status_starts_with_active_and_total);
        tcase_add_test(tc, status_says_stopping_after_the_counts);
        tcase_add_test(tc, status_adds_refused_and_datagrams_after_a_comma);
        tcase_add_test(tc, status_goes_out_at_most_once_a_second);
        tcase_add_test(tc, poll_timeout_rounds_up_and_never_spins);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
