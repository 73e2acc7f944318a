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

int main(void) {
        Suite *s = suite_create("ratelimit");
        TCase *tc = tcase_create("ratelimit");
        tcase_add_test(tc, first_message_goes_out_then_one_a_second);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
