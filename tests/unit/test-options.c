/* options_parse(): defaults, every option, and every bad form refused with
 * one message naming the option. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "src/options.h"
#include "unit.h"

static struct options opts;
static char error[256];

/* Parses a NULL-terminated argument list (argv[0] included). */
static int parse(const char *first, ...) {
        char *argv[32];
        int argc = 0;
        va_list ap;

        va_start(ap, first);
        for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
                argv[argc++] = (char *) a;
        va_end(ap);
        argv[argc] = NULL;
        error[0] = '\0';
        return options_parse(argc, argv, &opts, error, sizeof error);
}

START_TEST(defaults_match_the_documentation) {
        ck_assert_int_eq(parse("echod", NULL), OPTIONS_RUN);
        ck_assert_uint_eq(opts.max_connections, 1024);
        ck_assert_uint_eq(opts.idle_timeout_sec, 300);
        ck_assert_uint_eq(opts.shutdown_timeout_sec, 10);
        ck_assert_int_eq(opts.log_level, LOG_LEVEL_INFO);
        ck_assert_uint_eq(opts.n_listen, 0);
        ck_assert_uint_eq(opts.n_listen_datagram, 0);
        ck_assert_uint_eq(opts.max_connections_per_source, 0);
        ck_assert(!opts.inetd);
}
END_TEST

START_TEST(every_option_long_and_short) {
        ck_assert_int_eq(parse("echod", "-l", "7", "--listen=127.0.0.1:7007", "-c", "2",
                               "--idle-timeout", "0", "--shutdown-timeout=3",
                               "--log-level", "debug", NULL),
                         OPTIONS_RUN);
        ck_assert_uint_eq(opts.n_listen, 2);
        ck_assert_str_eq(opts.listen[0].text, "7");
        ck_assert_str_eq(opts.listen[1].text, "127.0.0.1:7007");
        ck_assert_uint_eq(opts.max_connections, 2);
        ck_assert_uint_eq(opts.idle_timeout_sec, 0);
        ck_assert_uint_eq(opts.shutdown_timeout_sec, 3);
        ck_assert_int_eq(opts.log_level, LOG_LEVEL_DEBUG);

        ck_assert_int_eq(parse("echod", "-u", "7", "--listen-datagram=[::1]:7007", "-s", "3",
                               NULL),
                         OPTIONS_RUN);
        ck_assert_uint_eq(opts.n_listen_datagram, 2);
        ck_assert_str_eq(opts.listen_datagram[1].text, "[::1]:7007");
        ck_assert_uint_eq(opts.max_connections_per_source, 3);

        ck_assert_int_eq(parse("echod", "-i", "-t", "5", "--max-connections=65536", NULL),
                         OPTIONS_RUN);
        ck_assert(opts.inetd);
        ck_assert_uint_eq(opts.idle_timeout_sec, 5);
        ck_assert_uint_eq(opts.max_connections, 65536);
}
END_TEST

START_TEST(help_and_version_are_actions) {
        ck_assert_int_eq(parse("echod", "--help", NULL), OPTIONS_HELP);
        ck_assert_int_eq(parse("echod", "-h", NULL), OPTIONS_HELP);
        ck_assert_int_eq(parse("echod", "-V", NULL), OPTIONS_VERSION);
        ck_assert_int_eq(parse("echod", "--version", NULL), OPTIONS_VERSION);
        ck_assert_ptr_nonnull(strstr(options_usage(), "--max-connections"));
}
END_TEST

/* Each bad command line, and the exact message it must produce. */
static const struct {
        const char *args[4];
        const char *message;
} bad[] = {
        { { "--max-connections", "0" }, "--max-connections: '0' is out of range 1..65536" },
        { { "-c", "65537" }, "--max-connections: '65537' is out of range 1..65536" },
        { { "-c", "-1" }, "--max-connections: '-1' is not a number" },
        { { "-c", "1e3" }, "--max-connections: '1e3' is not a number" },
        { { "-c", "" }, "--max-connections: '' is not a number" },
        { { "-c", "99999999999999999999" },
          "--max-connections: '99999999999999999999' is out of range 1..65536" },
        { { "--idle-timeout", "x" }, "--idle-timeout: 'x' is not a number" },
        { { "-t", "86401" }, "--idle-timeout: '86401' is out of range 0..86400" },
        { { "--shutdown-timeout=1.5" }, "--shutdown-timeout: '1.5' is not a number" },
        { { "--log-level", "loud" },
          "--log-level: 'loud' is not one of err, warning, notice, info, debug" },
        { { "--listen", "1.2.3.4" },
          "--listen: '1.2.3.4': expected PORT, A.B.C.D:PORT, [IPV6]:PORT or /PATH" },
        { { "-l", "0" }, "--listen: '0': port must be 1..65535" },
        { { "--listen" }, "--listen: missing value" },
        { { "-c" }, "-c: missing value" },
        { { "--frobnicate" }, "--frobnicate: unknown option" },
        { { "-x" }, "-x: unknown option" },
        { { "--help=yes" }, "--help: takes no value" },
        { { "stray" }, "'stray': unexpected argument" },
        { { "-c", "1\n2\033[2J" }, "--max-connections: '1?2?[2J' is not a number" },
        { { "--inetd", "--listen", "7" },
          "--inetd: cannot be combined with --listen or --listen-datagram" },
        { { "-i", "-u", "7" }, "--inetd: cannot be combined with --listen or --listen-datagram" },
        { { "--listen-datagram", "/run/echo" },
          "--listen-datagram: '/run/echo': expected PORT, A.B.C.D:PORT or [IPV6]:PORT" },
        { { "-u", "[::1]:70000" }, "--listen-datagram: '[::1]:70000': port must be 1..65535" },
        { { "-s", "x" }, "--max-connections-per-source: 'x' is not a number" },
        { { "--max-connections-per-source=65537" },
          "--max-connections-per-source: '65537' is out of range 0..65536" },
};

START_TEST(bad_command_line_is_one_message_naming_the_option) {
        char *argv[6] = { (char *) "echod" };
        int argc = 1;

        for (int i = 0; i < 4 && bad[_i].args[i]; i++)
                argv[argc++] = (char *) bad[_i].args[i];
        argv[argc] = NULL;
        ck_assert_int_eq(options_parse(argc, argv, &opts, error, sizeof error), -EINVAL);
        ck_assert_str_eq(error, bad[_i].message);
        ck_assert_ptr_null(strchr(error, '\n'));
}
END_TEST

START_TEST(too_many_listen_addresses_is_refused) {
        char *argv[2 * OPTIONS_LISTEN_MAX + 4] = { (char *) "echod" };
        int argc = 1;

        for (int i = 0; i <= OPTIONS_LISTEN_MAX; i++) {
                argv[argc++] = (char *) "-l";
                argv[argc++] = (char *) "7";
        }
        argv[argc] = NULL;
        ck_assert_int_eq(options_parse(argc, argv, &opts, error, sizeof error), -EINVAL);
        ck_assert_str_eq(error, "--listen: more than 64 addresses");
}
END_TEST

START_TEST(log_levels_round_trip) {
        for (int level = LOG_LEVEL_ERR; level <= LOG_LEVEL_DEBUG; level++)
                ck_assert_int_eq(log_level_from_string(log_level_to_string(level)), level);
        ck_assert_int_eq(log_level_from_string("Info"), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("options");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, defaults_match_the_documentation);
        tcase_add_test(tc, every_option_long_and_short);
        tcase_add_test(tc, help_and_version_are_actions);
        tcase_add_loop_test(tc, bad_command_line_is_one_message_naming_the_option, 0,
                            sizeof bad / sizeof bad[0]);
        tcase_add_test(tc, too_many_listen_addresses_is_refused);
        tcase_add_test(tc, log_levels_round_trip);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
