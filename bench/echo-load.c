/* echo-load: a load generator for echo servers on loopback. Options → one
 * bounded run of one mode → one RESULT line on stdout. Exit status: 0 the
 * run finished with no error, 1 it finished with errors or failed, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

#define EXIT_USAGE 2

static const char usage[] =
        "Usage: echo-load --mode=MODE --connect=ADDRESS [OPTION]...\n"
        "Loads the echo server at ADDRESS (numeric loopback: 127.x.y.z:PORT or [::1]:PORT)\n"
        "and prints one line: RESULT server=NAME mode=MODE key=value...\n"
        "\n"
        "  -m, --mode=MODE          crr: connect, send, read, close, C at a time\n"
        "                           rr: one TCP_NODELAY connection, ping-pong\n"
        "                           stream: one connection, writer and reader threads\n"
        "                           hold: open N connections, echo once, keep them,\n"
        "                           measure the server's memory, echo again\n"
        "  -a, --connect=ADDRESS    the server\n"
        "  -s, --server=NAME        label for the RESULT line (default: unnamed)\n"
        "  -c, --concurrency=C      crr: connections in flight (default 4)\n"
        "  -n, --connections=N      hold: connections to keep (default 100)\n"
        "  -p, --pid=PID            hold: the server's root process (required)\n"
        "  -d, --duration=SECONDS   crr, rr, stream: run time (default 3)\n"
        "  -t, --timeout=SECONDS    bound on any one operation (default 10)\n"
        "  -z, --size=BYTES         crr, rr: message size (default 64)\n"
        "  -S, --sources=K          use source addresses 127.0.0.1 .. 127.0.0.K (default 1)\n"
        "  -h, --help\n";

static int parse_unsigned(const char *text, unsigned long max, unsigned long *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || v == 0 || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_seconds(const char *text, uint64_t *ret) {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !(v > 0 && v <= 3600))
                return -EINVAL;
        *ret = (uint64_t) (v * NSEC_PER_SEC);
        return 0;
}

/* One option into @o. Returns 0, 1 for --help, or -EINVAL. */
static int apply_option(struct load_options *o, int c, const char *arg) {
        unsigned long v = 0;
        switch (c) {
        case 'm': o->mode = arg; return 0;
        case 's': o->server = arg; return 0;
        case 'a': return target_parse(arg, &o->target, &o->target_len);
        case 'd': return parse_seconds(arg, &o->duration_nsec);
        case 't': return parse_seconds(arg, &o->timeout_nsec);
        case 'h': return 1;
        default: break;
        }
        unsigned long max = c == 'S' ? SOURCES_MAX : c == 'p' ? 4194304 : 1000000;
        if (c == 'z')
                max = 1 << 20;
        if (parse_unsigned(arg, max, &v) < 0)
                return -EINVAL;
        switch (c) {
        case 'c': o->concurrency = (unsigned) v; return 0;
        case 'n': o->n_connections = (unsigned) v; return 0;
        case 'p': o->server_pid = (pid_t) v; return 0;
        case 'z': o->message_size = v; return 0;
        case 'S': o->n_sources = (unsigned) v; return 0;
        default: return -EINVAL;
        }
}

static int options_parse(int argc, char *argv[], struct load_options *o) {
        static const struct option long_options[] = {
                { "mode", required_argument, NULL, 'm' },
                { "connect", required_argument, NULL, 'a' },
                { "server", required_argument, NULL, 's' },
                { "concurrency", required_argument, NULL, 'c' },
                { "connections", required_argument, NULL, 'n' },
                { "pid", required_argument, NULL, 'p' },
                { "duration", required_argument, NULL, 'd' },
                { "timeout", required_argument, NULL, 't' },
                { "size", required_argument, NULL, 'z' },
                { "sources", required_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        *o = (struct load_options) {
                .server = "unnamed",
                .concurrency = 4,
                .n_connections = 100,
                .n_sources = 1,
                .duration_nsec = 3 * NSEC_PER_SEC,
                .timeout_nsec = 10 * NSEC_PER_SEC,
                .message_size = 64,
        };
        while ((c = getopt_long(argc, argv, "m:a:s:c:n:p:d:t:z:S:h", long_options, NULL)) >= 0) {
                if (c == '?')
                        return -EINVAL;
                int r = apply_option(o, c, optarg);
                if (r != 0) {
                        if (r < 0)
                                fprintf(stderr, "echo-load: bad value for -%c: %s\n", c, optarg);
                        return r;
                }
        }
        if (optind != argc || !o->mode || o->target_len == 0) {
                fprintf(stderr, "echo-load: --mode and --connect are required\n");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct {
                const char *name;
                int (*run)(const struct load_options *o);
        } modes[] = {
                { "crr", load_crr },
                { "rr", load_rr },
                { "stream", load_stream },
                { "hold", load_hold },
        };
        struct load_options o;

        int r = options_parse(argc, argv, &o);
        if (r != 0) {
                fputs(usage, r > 0 ? stdout : stderr);
                return r > 0 ? EXIT_SUCCESS : EXIT_USAGE;
        }
        /* A server that resets must cost an error count, not this process. */
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
                if (strcmp(o.mode, modes[i].name) == 0) {
                        r = modes[i].run(&o);
                        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
                }
        fprintf(stderr, "echo-load: unknown mode '%s'\n", o.mode);
        return EXIT_USAGE;
}
