/* crr: connect, request, response, close. C connections are in flight at any
 * time, each driven by one edge-triggered epoll state machine in this one
 * thread, so the load generator costs as few cycles as it can on a machine
 * it shares with the server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "load.h"
#include "load-report.h"

struct crr_slot {
        int fd;                 /* -1: idle */
        uint64_t seq;
        uint64_t start_nsec;
        uint64_t retry_nsec;    /* idle after a failure: start again then */
        size_t sent, got;
        uint8_t *message, *reply;
};

struct crr {
        const struct load_options *options;
        int epoll_fd;
        struct crr_slot *slots;
        uint64_t next_seq;
        uint64_t end_nsec;      /* no new connection from here on */
        uint64_t n_done;        /* completed before end_nsec */
        unsigned n_active;
        struct samples latencies;
        struct errors errors;
};

static void slot_start(struct crr *t, struct crr_slot *s, uint64_t now) {
        const struct load_options *o = t->options;

        s->seq = t->next_seq++;
        s->sent = s->got = 0;
        s->start_nsec = now;
        message_fill(s->message, o->message_size, s->seq);
        int fd = connect_start(o, (unsigned) s->seq, true);
        if (fd < 0) {
                errors_note(&t->errors, "connect", fd);
                s->retry_nsec = now + NSEC_PER_MSEC;    /* e.g. no port left: do not spin */
                return;
        }
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = s };
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                errors_note(&t->errors, "epoll_ctl", -errno);
                close(fd);
                s->retry_nsec = now + NSEC_PER_MSEC;
                return;
        }
        s->fd = fd;
}

/* The slot's connection is over, well or not: start the next, or go idle. */
static void slot_finish(struct crr *t, struct crr_slot *s, uint64_t now) {
        close(s->fd);
        s->fd = -1;
        s->retry_nsec = 0;
        if (now < t->end_nsec)
                slot_start(t, s, now);
        else
                t->n_active--;
}

/* A failed connection counts, and its slot waits a millisecond before the
 * next: a server that refuses everything must not be hammered in a loop. */
static void slot_fail(struct crr *t, struct crr_slot *s, const char *what, int r,
                      uint64_t now) {
        errors_note(&t->errors, what, r);
        close(s->fd);
        s->fd = -1;
        s->retry_nsec = now + NSEC_PER_MSEC;
}

/* Moves the connection on as far as the socket allows. With edge-triggered
 * events each call must go until EAGAIN. A send on a socket still
 * connecting says EAGAIN too, and a refused connect comes back as its
 * error, so no SO_ERROR round trip is needed. */
static void slot_advance(struct crr *t, struct crr_slot *s) {
        size_t size = t->options->message_size;

        while (s->sent < size) {
                ssize_t n = send(s->fd, s->message + s->sent, size - s->sent, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno != EAGAIN)
                                slot_fail(t, s, "send", -errno, now_nsec());
                        return;
                }
                s->sent += (size_t) n;
        }
        while (s->got < size) {
                ssize_t n = read(s->fd, s->reply + s->got, size - s->got);
                if (n <= 0) {
                        if (n == 0 || errno != EAGAIN)
                                slot_fail(t, s, "read", n == 0 ? -ECONNRESET : -errno,
                                          now_nsec());
                        return;
                }
                s->got += (size_t) n;
        }
        uint64_t now = now_nsec();
        if (!message_check(s->reply, size, s->seq)) {
                slot_fail(t, s, "verify", -EBADMSG, now);
                return;
        }
        if (now < t->end_nsec) {
                t->n_done++;
                samples_add(&t->latencies, now - s->start_nsec);
        }
        slot_finish(t, s, now);
}

/* Connections past their timeout fail; idle slots due for a retry start. */
static void check_slots(struct crr *t, uint64_t now) {
        for (unsigned i = 0; i < t->options->concurrency; i++) {
                struct crr_slot *s = &t->slots[i];
                if (s->fd >= 0 && now - s->start_nsec > t->options->timeout_nsec)
                        slot_fail(t, s, "timeout", -ETIMEDOUT, now);
                else if (s->fd < 0 && s->retry_nsec != 0 && now >= s->retry_nsec) {
                        s->retry_nsec = 0;
                        if (now < t->end_nsec)
                                slot_start(t, s, now);
                        else
                                t->n_active--;
                }
        }
}

static void run(struct crr *t, uint64_t start) {
        uint64_t hard_end = t->end_nsec + t->options->timeout_nsec;
        struct epoll_event events[64];

        for (unsigned i = 0; i < t->options->concurrency; i++)
                slot_start(t, &t->slots[i], start);
        t->n_active = t->options->concurrency;
        for (uint64_t now = start; t->n_active > 0 && now < hard_end; now = now_nsec()) {
                int n = epoll_wait(t->epoll_fd, events, 64, 10);
                for (int i = 0; i < n; i++)
                        slot_advance(t, events[i].data.ptr);
                check_slots(t, now_nsec());
        }
}

static void slots_free(struct crr *t) {
        for (unsigned i = 0; t->slots && i < t->options->concurrency; i++) {
                free(t->slots[i].message);
                free(t->slots[i].reply);
        }
        free(t->slots);
}

static int slots_new(struct crr *t) {
        t->slots = calloc(t->options->concurrency, sizeof *t->slots);
        if (!t->slots)
                return -ENOMEM;
        for (unsigned i = 0; i < t->options->concurrency; i++) {
                t->slots[i].fd = -1;
                t->slots[i].message = malloc(t->options->message_size);
                t->slots[i].reply = malloc(t->options->message_size);
                if (!t->slots[i].message || !t->slots[i].reply)
                        return -ENOMEM;
        }
        return 0;
}

int load_crr(const struct load_options *o) {
        struct crr t = { .options = o, .epoll_fd = epoll_create1(EPOLL_CLOEXEC) };

        int r = t.epoll_fd < 0 ? -errno : nofile_raise(o->concurrency + 64);
        if (r == 0)
                r = slots_new(&t);
        if (r < 0) {
                slots_free(&t);
                if (t.epoll_fd >= 0)
                        close(t.epoll_fd);
                return report_failure(o, "setup", r);
        }

        uint64_t start = now_nsec();
        t.end_nsec = start + o->duration_nsec;
        run(&t, start);
        for (unsigned i = 0; i < o->concurrency; i++)
                if (t.slots[i].fd >= 0) {
                        errors_note(&t.errors, "unfinished", -ETIMEDOUT);
                        close(t.slots[i].fd);
                }

        double seconds = (double) o->duration_nsec / NSEC_PER_SEC;
        printf("RESULT server=%s mode=crr c=%u duration_s=%.2f connections=%llu "
               "conn_per_s=%.1f",
               o->server, o->concurrency, seconds, (unsigned long long) t.n_done,
               (double) t.n_done / seconds);
        report_latencies(&t.latencies);
        report_errors(&t.errors);
        samples_free(&t.latencies);
        slots_free(&t);
        close(t.epoll_fd);
        return t.errors.n > 0;
}
