/* The reflection guard: which datagram sources never get an echo. */
#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include "src/udp.h"
#include "unit.h"

static bool unsafe4(const char *addr, unsigned port) {
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        ck_assert_int_eq(inet_pton(AF_INET, addr, &in.sin_addr), 1);
        return datagram_source_is_unsafe((struct sockaddr *) &in, sizeof in);
}

static bool unsafe6(const char *addr, unsigned port) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6,
                                    .sin6_port = htons((uint16_t) port) };
        ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
        return datagram_source_is_unsafe((struct sockaddr *) &in6, sizeof in6);
}

START_TEST(ordinary_clients_get_their_echo) {
        ck_assert(!unsafe4("127.0.0.1", 40000));
        ck_assert(!unsafe4("192.0.2.7", 1024));
        ck_assert(!unsafe6("::1", 65535));
        ck_assert(!unsafe6("2001:db8::1", 50000));
        ck_assert(!unsafe6("::ffff:192.0.2.7", 50000));
}
END_TEST

/* Port 7 answering port 7 (or 19, chargen; 53; 123...) is the classic loop. */
START_TEST(privileged_or_zero_source_port_is_refused) {
        ck_assert(unsafe4("192.0.2.7", 0));
        ck_assert(unsafe4("192.0.2.7", 7));
        ck_assert(unsafe4("192.0.2.7", 19));
        ck_assert(unsafe4("192.0.2.7", 1023));
        ck_assert(unsafe6("2001:db8::1", 0));
        ck_assert(unsafe6("2001:db8::1", 123));
}
END_TEST

START_TEST(broadcast_multicast_and_unspecified_are_refused) {
        ck_assert(unsafe4("255.255.255.255", 40000));
        ck_assert(unsafe4("224.0.0.1", 40000));
        ck_assert(unsafe4("239.255.255.250", 40000));
        ck_assert(unsafe4("0.0.0.0", 40000));
        ck_assert(unsafe6("ff02::1", 40000));
        ck_assert(unsafe6("::", 40000));
}
END_TEST

START_TEST(ipv4_mapped_forms_are_judged_as_ipv4) {
        ck_assert(unsafe6("::ffff:255.255.255.255", 40000));
        ck_assert(unsafe6("::ffff:224.0.0.251", 40000));
        ck_assert(unsafe6("::ffff:0.0.0.0", 40000));
}
END_TEST

START_TEST(unknown_family_is_refused) {
        struct sockaddr sa = { .sa_family = AF_UNIX };
        ck_assert(datagram_source_is_unsafe(&sa, sizeof sa));
}
END_TEST

int main(void) {
        Suite *s = suite_create("udp");
        TCase *tc = tcase_create("guard");
        tcase_add_test(tc, ordinary_clients_get_their_echo);
        tcase_add_test(tc, privileged_or_zero_source_port_is_refused);
        tcase_add_test(tc, broadcast_multicast_and_unspecified_are_refused);
        tcase_add_test(tc, ipv4_mapped_forms_are_judged_as_ipv4);
        tcase_add_test(tc, unknown_family_is_refused);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
