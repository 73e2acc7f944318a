/* echod: options → sockets → server_run() → exit status; nothing else.
 * Exit status: 0 done, 1 runtime failure, 2 bad usage (found before any
 * socket is created). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "acceptor-process.h"
#include "echo.h"
#include "log.h"
#include "options.h"
#include "server.h"
#include "signals.h"
#include "sockets.h"

#define EXIT_USAGE 2

/* Accept=yes or --inetd: one connection, echoed here. Whatever the client
 * did, the service did its job: exit 0. */
static int serve_one_connection(struct socket_set *sockets, int signal_fd,
                                const struct options *o) {
        struct connection c = { .fd = sockets->connection, .peer_len = sizeof c.peer };
        const struct echo_settings settings = {
                .signal_fd = signal_fd,
                .lifeline_fd = -1,
                .idle_usec = o->idle_timeout_sec * USEC_PER_SEC,
                .stop_timeout_usec = o->shutdown_timeout_sec * USEC_PER_SEC,
                .store = ECHO_STORE_NONE,
        };
        usec_t start = now_usec();
        uint64_t bytes;

        sockets->connection = -1;
        (void) getpeername(c.fd, (struct sockaddr *) &c.peer, &c.peer_len);
        int r = echo_connection(&c, &settings, &bytes);
        log_connection_closed((struct sockaddr *) &c.peer, c.peer_len, bytes, now_usec() - start,
                              r, getpid());
        return EXIT_SUCCESS;
}

/* The fd store's size: $FDSTORE, which systemd 254 and later pass, and
 * echo.service writes for systemd 252 from what systemd itself enforces. 0,
 * no store, without it: a connection is kept for a restart only where the
 * store certainly has room for it. No more than the fd limit: systemd
 * passes every stored connection back as an fd, and one past the limit
 * fails the next start (status 202/FDS); a huge size would only cost memory. */
static unsigned fd_store_size(const struct notify *n) {
        struct rlimit limit;

        if (n->fd < 0)
                return 0;
        int r = notify_fd_store_max_from_env();
        if (r == -EINVAL)
                log_warning_errno(r, "$FDSTORE is not a number: no fd store");
        if (r == -ENOENT)
                log_info("no fd store ($FDSTORE is not set): connections will not survive a "
                         "restart");
        if (r <= 0)
                return 0;
        if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && (rlim_t) r > limit.rlim_cur) {
                log_notice("the fd store's size ($FDSTORE=%d) is above the fd limit: storing "
                           "at most %llu connections", r, (unsigned long long) limit.rlim_cur);
                return (unsigned) limit.rlim_cur;
        }
        return (unsigned) r;
}

static int serve(const struct options *o) {
        struct socket_set sockets;
        struct notify notify;

        int signal_fd = signals_open();
        if (signal_fd < 0) {
                log_error_errno(signal_fd, "cannot set up signal handling");
                return EXIT_FAILURE;
        }
        if (sockets_acquire(o, &sockets) < 0)
                return EXIT_FAILURE;
        if (sockets.connection >= 0)
                return serve_one_connection(&sockets, signal_fd, o);
        int r = notify_open(&notify);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "cannot open the notification socket, ignoring");

        static struct server server;
        unsigned fd_store_max = fd_store_size(&notify);
        if (server_init(&server, o, &sockets, signal_fd, &notify, fd_store_max,
                        acceptor_program_path()) < 0) {
                server_free(&server);
                return EXIT_FAILURE;
        }
        /* systemd's words to echod, read by now: not for the acceptor and the
         * connections' processes, which inherit the environment. */
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("FDSTORE");
        r = server_run(&server);
        server_free(&server);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        static struct options options;
        char error[256];

        int action = options_parse(argc, argv, &options, error, sizeof error);
        if (action < 0) {
                fprintf(stderr, "echod: %s\n", error);
                return EXIT_USAGE;
        }
        if (action == OPTIONS_HELP) {
                fputs(options_usage(), stdout);
                return EXIT_SUCCESS;
        }
        if (action == OPTIONS_VERSION) {
                printf("echod %s\n", ECHOD_VERSION);
                return EXIT_SUCCESS;
        }
        log_init(options.log_level);
        return serve(&options);
}
