/* Connection counts per client address, for --max-connections-per-source. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>

#include "src/sources.h"
#include "unit.h"

static struct in6_addr key4(const char *addr) {
        struct sockaddr_in in = { .sin_family = AF_INET };
        struct in6_addr key;
        ck_assert_int_eq(inet_pton(AF_INET, addr, &in.sin_addr), 1);
        ck_assert(source_key((struct sockaddr *) &in, &key));
        return key;
}

START_TEST(ipv4_and_its_mapped_form_are_one_source) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
        struct in6_addr mapped, plain = key4("192.0.2.7");

        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr), 1);
        ck_assert(source_key((struct sockaddr *) &in6, &mapped));
        ck_assert_mem_eq(&mapped, &plain, sizeof plain);
}
END_TEST

START_TEST(unix_peers_have_no_source) {
        struct sockaddr sa = { .sa_family = AF_UNIX };
        struct in6_addr key;
        ck_assert(!source_key(&sa, &key));
}
END_TEST

START_TEST(counts_go_up_and_down_per_source) {
        struct sources s;
        struct in6_addr a = key4("192.0.2.1"), b = key4("192.0.2.2");

        ck_assert_int_eq(sources_init(&s, 8), 0);
        ck_assert_int_eq(sources_add(&s, &a), 0);
        ck_assert_int_eq(sources_add(&s, &a), 0);
        ck_assert_int_eq(sources_add(&s, &b), 0);
        ck_assert_uint_eq(sources_count(&s, &a), 2);
        ck_assert_uint_eq(sources_count(&s, &b), 1);
        sources_remove(&s, &a);
        ck_assert_uint_eq(sources_count(&s, &a), 1);
        sources_remove(&s, &a);
        sources_remove(&s, &a);         /* one too many: ignored */
        ck_assert_uint_eq(sources_count(&s, &a), 0);
        ck_assert_uint_eq(sources_count(&s, &b), 1);
        ck_assert_uint_eq(s.n, 1);
        sources_free(&s);
}
END_TEST

/* Many sources added and half removed: the others keep their counts. */
START_TEST(removing_sources_keeps_the_others_findable) {
        enum { N = 3000 };
        struct sources s;
        char text[32];

        ck_assert_int_eq(sources_init(&s, N), 0);
        for (int i = 0; i < N; i++) {
                snprintf(text, sizeof text, "10.%d.%d.1", i / 256, i % 256);
                struct in6_addr k = key4(text);
                for (int j = 0; j <= i % 3; j++)
                        ck_assert_int_eq(sources_add(&s, &k), 0);
        }
        for (int i = 0; i < N; i += 2) {
                snprintf(text, sizeof text, "10.%d.%d.1", i / 256, i % 256);
                struct in6_addr k = key4(text);
                for (int j = 0; j <= i % 3; j++)
                        sources_remove(&s, &k);
        }
        for (int i = 0; i < N; i++) {
                snprintf(text, sizeof text, "10.%d.%d.1", i / 256, i % 256);
                struct in6_addr k = key4(text);
                ck_assert_uint_eq(sources_count(&s, &k), i % 2 ? (unsigned) (i % 3 + 1) : 0);
        }
        sources_free(&s);
}
END_TEST

START_TEST(more_sources_than_sized_for_is_refused) {
        struct sources s;
        char text[32];
        int r = 0;

        ck_assert_int_eq(sources_init(&s, 2), 0);
        for (int i = 0; i < 100 && r == 0; i++) {
                snprintf(text, sizeof text, "10.0.0.%d", i);
                struct in6_addr k = key4(text);
                r = sources_add(&s, &k);
        }
        ck_assert_int_eq(r, -ENOSPC);
        sources_free(&s);
}
END_TEST

int main(void) {
        Suite *s = suite_create("sources");
        TCase *tc = tcase_create("counts");
        tcase_add_test(tc, ipv4_and_its_mapped_form_are_one_source);
        tcase_add_test(tc, unix_peers_have_no_source);
        tcase_add_test(tc, counts_go_up_and_down_per_source);
        tcase_add_test(tc, removing_sources_keeps_the_others_findable);
        tcase_add_test(tc, more_sources_than_sized_for_is_refused);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
