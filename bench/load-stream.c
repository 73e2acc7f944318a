/* stream: one connection, a writer thread sending for the run's duration
 * and then closing its half, a reader checking every byte that comes back
 * until the server closes too. Each byte is a function of its offset in the
 * stream, so a lost, repeated or reordered chunk is caught. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "load-report.h"

/* The stream is this many bytes repeating: a prime, so no power-of-two
 * block size lines up with it. */
#define PATTERN_PERIOD 65521u
#define WRITE_SIZE (64u * 1024)
#define READ_SIZE (256u * 1024)

struct stream {
        const struct load_options *options;
        int fd;
        uint8_t *pattern;               /* PATTERN_PERIOD + READ_SIZE bytes */
        uint64_t end_nsec;
        uint64_t n_written;
        int write_error;
};

static uint8_t *pattern_new(void) {
        uint8_t *p = malloc(PATTERN_PERIOD + READ_SIZE);
        for (size_t i = 0; p && i < PATTERN_PERIOD + READ_SIZE; i++)
                p[i] = (uint8_t) ((i % PATTERN_PERIOD) * 7 + (i % PATTERN_PERIOD) / 251);
        return p;
}

static void *writer(void *userdata) {
        struct stream *t = userdata;

        while (now_nsec() < t->end_nsec) {
                ssize_t n = send(t->fd, t->pattern + t->n_written % PATTERN_PERIOD, WRITE_SIZE,
                                 MSG_NOSIGNAL);
                if (n < 0) {
                        t->write_error = errno == EAGAIN ? -ETIMEDOUT : -errno;
                        break;
                }
                t->n_written += (uint64_t) n;
        }
        if (shutdown(t->fd, SHUT_WR) < 0 && t->write_error == 0)
                t->write_error = -errno;
        return NULL;
}

/* Reads until the server's FIN, checking each chunk against the pattern.
 * Returns the bytes read, and the first error in @errors. */
static uint64_t read_back(struct stream *t, struct errors *errors) {
        uint64_t hard_end = t->end_nsec + t->options->timeout_nsec, n_read = 0;
        uint8_t *buf = malloc(READ_SIZE);

        while (buf) {
                ssize_t n = read(t->fd, buf, READ_SIZE);
                if (n <= 0) {
                        if (n < 0)
                                errors_note(errors, "read", errno == EAGAIN ? -ETIMEDOUT : -errno);
                        break;
                }
                if (memcmp(buf, t->pattern + n_read % PATTERN_PERIOD, (size_t) n) != 0) {
                        errors_note(errors, "verify", -EBADMSG);
                        break;
                }
                n_read += (uint64_t) n;
                if (now_nsec() > hard_end) {
                        errors_note(errors, "read", -ETIMEDOUT);
                        break;
                }
        }
        free(buf);
        return n_read;
}

int load_stream(const struct load_options *o) {
        struct stream t = { .options = o, .pattern = pattern_new() };
        struct errors errors = { .n = 0 };
        pthread_t thread;

        if (!t.pattern)
                return report_failure(o, "setup", -ENOMEM);
        t.fd = connect_start(o, 0, false);
        int r = t.fd < 0 ? t.fd : socket_set_timeouts(t.fd, o->timeout_nsec);
        if (r < 0) {
                if (t.fd >= 0)
                        close(t.fd);
                free(t.pattern);
                return report_failure(o, "connect", r);
        }

        uint64_t start = now_nsec();
        t.end_nsec = start + o->duration_nsec;
        r = pthread_create(&thread, NULL, writer, &t);
        if (r != 0) {
                close(t.fd);
                free(t.pattern);
                return report_failure(o, "pthread_create", -r);
        }
        uint64_t n_read = read_back(&t, &errors);
        uint64_t elapsed = now_nsec() - start;
        /* A reader that gave up leaves the writer blocked in send() at most
         * until its SO_SNDTIMEO; shutting the socket down wakes it sooner. */
        if (errors.n > 0)
                shutdown(t.fd, SHUT_RDWR);
        pthread_join(thread, NULL);
        if (t.write_error < 0)
                errors_note(&errors, "write", t.write_error);
        if (errors.n == 0 && n_read != t.n_written)
                errors_note(&errors, "short echo", -EPIPE);
        close(t.fd);

        double seconds = (double) elapsed / NSEC_PER_SEC;
        printf("RESULT server=%s mode=stream duration_s=%.2f bytes_sent=%llu bytes_echoed=%llu "
               "mb_per_s=%.1f",
               o->server, seconds, (unsigned long long) t.n_written,
               (unsigned long long) n_read, (double) n_read / seconds / 1e6);
        report_errors(&errors);
        free(t.pattern);
        return errors.n > 0;
}
