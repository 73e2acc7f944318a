/* Command-line parsing; see options.h. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
        ARG_SHUTDOWN_TIMEOUT = 0x100,
        ARG_LOG_LEVEL,
};

static const struct option long_options[] = {
        { "listen",           required_argument, NULL, 'l' },
        { "listen-datagram",  required_argument, NULL, 'u' },
        { "inetd",            no_argument,       NULL, 'i' },
        { "max-connections",  required_argument, NULL, 'c' },
        { "max-connections-per-source", required_argument, NULL, 's' },
        { "idle-timeout",     required_argument, NULL, 't' },
        { "shutdown-timeout", required_argument, NULL, ARG_SHUTDOWN_TIMEOUT },
        { "log-level",        required_argument, NULL, ARG_LOG_LEVEL },
        { "help",             no_argument,       NULL, 'h' },
        { "version",          no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
};

static const char *const level_names[] = {
        [LOG_LEVEL_ERR] = "err",
        [LOG_LEVEL_WARNING] = "warning",
        [LOG_LEVEL_NOTICE] = "notice",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

const char *log_level_to_string(enum log_level level) {
        return level_names[level];
}

int log_level_from_string(const char *text) {
        for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
                if (strcmp(text, level_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *options_usage(void) {
        return "Usage: echod [OPTION]...\n"
               "Echo service (RFC 862) over TCP: every byte a client sends is sent back.\n"
               "Sockets come from systemd (socket activation), --listen or --inetd.\n"
               "\n"
               "  -l, --listen=ADDRESS         listen on PORT, A.B.C.D:PORT, [IPV6]:PORT or\n"
               "                               /PATH when systemd passes no socket (repeatable)\n"
               "  -u, --listen-datagram=ADDRESS  echo UDP datagrams on PORT, A.B.C.D:PORT or\n"
               "                               [IPV6]:PORT (repeatable)\n"
               "  -i, --inetd                  echo the connection on standard input, then exit\n"
               "  -c, --max-connections=N      serve at most N connections at once, 1..65536\n"
               "                               (default 1024); more wait in the backlog\n"
               "  -s, --max-connections-per-source=N  close at once a client address's\n"
               "                               connection beyond N live ones (default 0: off)\n"
               "  -t, --idle-timeout=SECONDS   close a connection idle this long, 0 = never\n"
               "                               (default 300)\n"
               "      --shutdown-timeout=SECONDS  on SIGTERM, wait this long for connections\n"
               "                               to finish before killing them (default 10)\n"
               "      --log-level=LEVEL        err, warning, notice, info or debug (default info)\n"
               "  -h, --help                   show this help and exit\n"
               "  -V, --version                show the version and exit\n";
}

static int fail(char *error, size_t error_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Formats the message into @error. The user's own text is quoted in it, and
 * may hold a newline or an escape sequence: every control character becomes
 * '?', so the message stays one harmless line (found by fuzz-options). */
static int fail(char *error, size_t error_size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, error_size, fmt, ap);
        va_end(ap);
        for (char *p = error; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        return -EINVAL;
}

/* Decimal digits only, within [min, max]: "1e3", "-1", " 5" and "" are refused. */
static int parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *ret) {
        if (*text == '\0' || strspn(text, "0123456789") != strlen(text))
                return -EINVAL;
        errno = 0;
        unsigned long value = strtoul(text, NULL, 10);
        if (errno == ERANGE || value < min || value > max)
                return -ERANGE;
        *ret = (unsigned) value;
        return 0;
}

static int parse_number_option(const char *name, const char *text, unsigned min, unsigned max,
                               unsigned *ret, char *error, size_t error_size) {
        int r = parse_unsigned(text, min, max, ret);
        if (r == -EINVAL)
                return fail(error, error_size, "%s: '%s' is not a number", name, text);
        if (r == -ERANGE)
                return fail(error, error_size, "%s: '%s' is out of range %u..%u", name, text,
                            min, max);
        return 0;
}

static int add_address(const char *name, const char *text, bool datagram,
                       struct listen_option *list, size_t *n, char *error, size_t error_size) {
        if (*n >= OPTIONS_LISTEN_MAX)
                return fail(error, error_size, "%s: more than %d addresses", name,
                            OPTIONS_LISTEN_MAX);
        struct listen_option *l = &list[*n];
        int r = address_parse(text, &l->address);
        if (r < 0)
                return fail(error, error_size, "%s: '%s': %s", name, text, address_strerror(r));
        if (datagram && l->address.sa.sa_family == AF_UNIX)
                return fail(error, error_size, "%s: '%s': expected PORT, A.B.C.D:PORT or "
                            "[IPV6]:PORT", name, text);
        l->text = text;
        (*n)++;
        return 0;
}

/* getopt_long() reports what went wrong only on stderr; with opterr = 0 we
 * rebuild the message from optopt and the argument it stopped at. */
static int getopt_error(int c, const char *arg, char *error, size_t error_size) {
        if (c == ':')
                return fail(error, error_size, "%s: missing value", arg);
        if (optopt == 0)        /* an unknown long option */
                return fail(error, error_size, "%s: unknown option", arg);
        if (strncmp(arg, "--", 2) == 0) /* "--help=x": a known long option given a value */
                return fail(error, error_size, "%.*s: takes no value",
                            (int) strcspn(arg, "="), arg);
        return fail(error, error_size, "-%c: unknown option", optopt);
}

static int parse_one(int c, char *const argv[], struct options *o, char *error, size_t error_size) {
        switch (c) {
        case 'l':
                return add_address("--listen", optarg, false, o->listen, &o->n_listen, error,
                                   error_size);
        case 'u':
                return add_address("--listen-datagram", optarg, true, o->listen_datagram,
                                   &o->n_listen_datagram, error, error_size);
        case 'i':
                o->inetd = true;
                return 0;
        case 'c':
                return parse_number_option("--max-connections", optarg, 1,
                                           MAX_CONNECTIONS_LIMIT, &o->max_connections, error,
                                           error_size);
        case 's':
                return parse_number_option("--max-connections-per-source", optarg, 0,
                                           MAX_CONNECTIONS_LIMIT,
                                           &o->max_connections_per_source, error, error_size);
        case 't':
                return parse_number_option("--idle-timeout", optarg, 0, TIMEOUT_LIMIT_SEC,
                                           &o->idle_timeout_sec, error, error_size);
        case ARG_SHUTDOWN_TIMEOUT:
                return parse_number_option("--shutdown-timeout", optarg, 0, TIMEOUT_LIMIT_SEC,
                                           &o->shutdown_timeout_sec, error, error_size);
        case ARG_LOG_LEVEL: {
                int level = log_level_from_string(optarg);
                if (level < 0)
                        return fail(error, error_size,
                                    "--log-level: '%s' is not one of err, warning, notice, "
                                    "info, debug", optarg);
                o->log_level = (enum log_level) level;
                return 0;
        }
        default:
                return getopt_error(c, argv[optind - 1], error, error_size);
        }
}

int options_parse(int argc, char *argv[], struct options *ret, char *error, size_t error_size) {
        struct options o = {
                .max_connections = MAX_CONNECTIONS_DEFAULT,
                .idle_timeout_sec = IDLE_TIMEOUT_DEFAULT_SEC,
                .shutdown_timeout_sec = SHUTDOWN_TIMEOUT_DEFAULT_SEC,
                .log_level = LOG_LEVEL_INFO,
        };
        enum options_action action = OPTIONS_RUN;
        int c;

        opterr = 0;
        optind = 0;     /* 0, not 1: makes glibc reset its state, so tests can parse again */
        while ((c = getopt_long(argc, argv, ":l:u:ic:s:t:hV", long_options, NULL)) >= 0) {
                if (c == 'h' || c == 'V') {
                        if (action == OPTIONS_RUN)
                                action = c == 'h' ? OPTIONS_HELP : OPTIONS_VERSION;
                        continue;
                }
                int r = parse_one(c, argv, &o, error, error_size);
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return fail(error, error_size, "'%s': unexpected argument", argv[optind]);
        if (o.inetd && (o.n_listen > 0 || o.n_listen_datagram > 0))
                return fail(error, error_size, "--inetd: cannot be combined with --listen or "
                            "--listen-datagram");

        *ret = o;
        return action;
}
