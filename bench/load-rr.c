/* rr: one connection with TCP_NODELAY, one message out and its echo back at
 * a time, as fast as the server turns them round. The connection's set-up
 * and a first round trip are not counted: this measures the echo, not the
 * fork. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "load.h"
#include "load-report.h"

static int round_trip(int fd, uint8_t *message, uint8_t *reply, size_t size, uint64_t seq) {
        message_fill(message, size, seq);
        int r = write_all(fd, message, size);
        if (r < 0)
                return r;
        r = read_exactly(fd, reply, size);
        if (r < 0)
                return r;
        return message_check(reply, size, seq) ? 0 : -EBADMSG;
}

static int connect_nodelay(const struct load_options *o) {
        static const int on = 1;
        int fd = connect_start(o, 0, false);
        if (fd < 0)
                return fd;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0 ||
            socket_set_timeouts(fd, o->timeout_nsec) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int load_rr(const struct load_options *o) {
        struct samples latencies = { .n = 0 };
        struct errors errors = { .n = 0 };
        uint64_t n_done = 0;

        int fd = connect_nodelay(o);
        if (fd < 0)
                return report_failure(o, "connect", fd);
        uint8_t *message = malloc(o->message_size), *reply = malloc(o->message_size);
        if (!message || !reply) {
                free(message);
                free(reply);
                close(fd);
                return report_failure(o, "setup", -ENOMEM);
        }
        int r = round_trip(fd, message, reply, o->message_size, 0);     /* warm-up */

        uint64_t start = now_nsec(), end = start + o->duration_nsec, now = start;
        for (uint64_t seq = 1; r == 0 && now < end; seq++) {
                r = round_trip(fd, message, reply, o->message_size, seq);
                uint64_t then = now;
                now = now_nsec();
                if (r == 0) {
                        samples_add(&latencies, now - then);
                        n_done++;
                }
        }
        if (r < 0)
                errors_note(&errors, "round trip", r);
        close(fd);

        double seconds = (double) (now - start) / NSEC_PER_SEC;
        printf("RESULT server=%s mode=rr size=%zu duration_s=%.2f round_trips=%llu "
               "rt_per_s=%.1f",
               o->server, o->message_size, seconds, (unsigned long long) n_done,
               seconds > 0 ? (double) n_done / seconds : 0.0);
        report_latencies(&latencies);
        report_errors(&errors);
        samples_free(&latencies);
        free(message);
        free(reply);
        return errors.n > 0;
}
