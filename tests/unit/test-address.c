/* address_parse() and address_format(): every form systemd's ListenStream=
 * accepts that echod supports, and every bad form refused with its reason. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/address.h"
#include "unit.h"

static char *format(const struct address *a, char *buf) {
        return address_format(&a->sa, a->len, buf);
}

START_TEST(bare_port_is_dual_stack_any_address) {
        struct address a;
        char text[ADDRESS_TEXT_MAX];

        ck_assert_int_eq(address_parse("7", &a), 0);
        ck_assert_int_eq(a.sa.sa_family, AF_INET6);
        ck_assert(a.dual_stack);
        ck_assert_str_eq(format(&a, text), "[::]:7");
}
END_TEST

START_TEST(ipv4_address_and_port) {
        struct address a;
        char text[ADDRESS_TEXT_MAX];

        ck_assert_int_eq(address_parse("127.0.0.1:7007", &a), 0);
        ck_assert_int_eq(a.sa.sa_family, AF_INET);
        ck_assert(!a.dual_stack);
        ck_assert_int_eq(a.len, sizeof(struct sockaddr_in));
        ck_assert_str_eq(format(&a, text), "127.0.0.1:7007");
}
END_TEST

START_TEST(ipv6_address_in_brackets) {
        struct address a;
        char text[ADDRESS_TEXT_MAX];

        ck_assert_int_eq(address_parse("[::1]:65535", &a), 0);
        ck_assert_int_eq(a.sa.sa_family, AF_INET6);
        ck_assert(!a.dual_stack);
        ck_assert_str_eq(format(&a, text), "[::1]:65535");
        ck_assert_int_eq(address_port(&a.sa), 65535);
}
END_TEST

START_TEST(socket_path) {
        struct address a;
        char text[ADDRESS_TEXT_MAX];

        ck_assert_int_eq(address_parse("/run/echod/echo.sock", &a), 0);
        ck_assert_int_eq(a.sa.sa_family, AF_UNIX);
        ck_assert_str_eq(format(&a, text), "/run/echod/echo.sock");
        ck_assert_int_eq(address_port(&a.sa), 0);
}
END_TEST

START_TEST(socket_path_that_does_not_fit_is_refused) {
        struct address a;
        char path[200];

        memset(path, 'x', sizeof path - 1);
        path[0] = '/';
        path[sizeof path - 1] = '\0';
        ck_assert_int_eq(address_parse(path, &a), -ENAMETOOLONG);
        ck_assert_str_eq(address_strerror(-ENAMETOOLONG), "socket path too long");
}
END_TEST

static const char *const malformed[] = {
        "", "x", "7x", "-7", "+7", " 7", "0x10", "1.2.3.4", "1.2.3.4:", ":7", "1.2.3:7",
        "256.1.1.1:7", "host.example:7", "::1:7", "[::1]", "[::1]7", "[]:7", "[1.2.3.4]:7",
        "[::1]:x", "[::g]:7", "relative/path", "1.2.3.4:7:8",
};

START_TEST(malformed_address_is_refused) {
        struct address a;
        ck_assert_msg(address_parse(malformed[_i], &a) == -EINVAL, "'%s' was accepted",
                      malformed[_i]);
}
END_TEST

static const char *const out_of_range[] = {
        "0", "65536", "99999999999", "1.2.3.4:0", "1.2.3.4:65536", "[::1]:0", "[::1]:123456",
};

START_TEST(port_out_of_range_is_refused) {
        struct address a;
        ck_assert_msg(address_parse(out_of_range[_i], &a) == -ERANGE, "'%s' was not -ERANGE",
                      out_of_range[_i]);
        ck_assert_str_eq(address_strerror(-ERANGE), "port must be 1..65535");
}
END_TEST

START_TEST(peer_host_and_port_for_the_journal) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(40000) };
        char text[ADDRESS_TEXT_MAX];

        ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr), 1);
        ck_assert_str_eq(address_format_host((struct sockaddr *) &in6, sizeof in6, text),
                         "2001:db8::5");
        ck_assert_int_eq(address_port((struct sockaddr *) &in6), 40000);
}
END_TEST

START_TEST(ipv4_client_of_a_dual_stack_socket_is_logged_as_ipv4) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(4000) };
        struct sockaddr_storage out;
        char text[ADDRESS_TEXT_MAX];

        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6.sin6_addr), 1);
        socklen_t len = address_unmap_ipv4((struct sockaddr *) &in6, sizeof in6, &out);
        ck_assert_int_eq(len, sizeof(struct sockaddr_in));
        ck_assert_str_eq(address_format((struct sockaddr *) &out, len, text), "192.0.2.9:4000");

        ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::9", &in6.sin6_addr), 1);
        len = address_unmap_ipv4((struct sockaddr *) &in6, sizeof in6, &out);
        ck_assert_int_eq(len, sizeof in6);
        ck_assert_str_eq(address_format((struct sockaddr *) &out, len, text), "[2001:db8::9]:4000");
}
END_TEST

START_TEST(unnamed_unix_peer_is_called_unix) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        char text[ADDRESS_TEXT_MAX];

        ck_assert_str_eq(address_format((struct sockaddr *) &un, sizeof(sa_family_t), text),
                         "unix");
}
END_TEST

int main(void) {
        Suite *s = suite_create("address");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, bare_port_is_dual_stack_any_address);
        tcase_add_test(tc, ipv4_address_and_port);
        tcase_add_test(tc, ipv6_address_in_brackets);
        tcase_add_test(tc, socket_path);
        tcase_add_test(tc, socket_path_that_does_not_fit_is_refused);
        tcase_add_loop_test(tc, malformed_address_is_refused, 0,
                            sizeof malformed / sizeof malformed[0]);
        tcase_add_loop_test(tc, port_out_of_range_is_refused, 0,
                            sizeof out_of_range / sizeof out_of_range[0]);
        tcase_add_test(tc, peer_host_and_port_for_the_journal);
        tcase_add_test(tc, ipv4_client_of_a_dual_stack_socket_is_logged_as_ipv4);
        tcase_add_test(tc, unnamed_unix_peer_is_called_unix);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
