/* At most one message a second, and the count of those held back. */
#include <check.h>

#include "src/ratelimit.h"
#include "unit.h"

START_TEST(first_message_goes_out_then_one_a_second) {
        struct ratelimit rl = { 0 };
        unsigned suppressed = 99;
        usec_t t = 10 * USEC_PER_SEC;

        ck_assert(ratelimit_allow(&rl, t, &suppressed));
        ck_assert_uint_eq(suppressed, 0);
        for (int i = 1; i <= 500; i++)
                ck_assert(!ratelimit_allow(&rl, t + (usec_t) i * 1000, &suppressed));
        ck_assert(ratelimit_allow(&rl, t + USEC_PER_SEC, &suppressed));
        ck_assert_uint_eq(suppressed, 500);
        ck_assert(ratelimit_allow(&rl, t + 3 * USEC_PER_SEC, &suppressed));
        ck_assert_uint_eq(suppressed, 0);
}
END_TEST

/* A batch of 64 datagram drops is one message; the log must still account
 * for all of them: lines plus the suppressed counts they report. */
START_TEST(a_batch_counts_every_message_it_stands_for) {
        struct ratelimit rl = { 0 };
        unsigned suppressed, lines = 0, reported = 0;
        usec_t t = 10 * USEC_PER_SEC;

        for (int batch = 0; batch < 10; batch++) {
                if (ratelimit_allow_many(&rl, t + (usec_t) batch * 300 * 1000, 64, &suppressed)) {
                        lines++;
                        reported += suppressed;
                }
        }
        ck_assert(ratelimit_allow(&rl, t + 10 * USEC_PER_SEC, &suppressed));
        lines++;
        reported += suppressed;
        ck_assert_uint_eq(lines + reported, 10 * 64 + 1);
        ck_assert_uint_eq(lines, 4);    /* at 0, 1.2, 2.4 s, and the last one */
}
END_TEST

int main(void) {
        Suite *s = suite_create("ratelimit");
        TCase *tc = tcase_create("ratelimit");
        tcase_add_test(tc, first_message_goes_out_then_one_a_second);
        tcase_add_test(tc, a_batch_counts_every_message_it_stands_for);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
