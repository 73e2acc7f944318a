/* hold: open N connections, a window of them at a time, echo one message on
 * each and keep it open; with all N held, sum the memory of the server's
 * whole process tree; then echo a second message on every connection to
 * check that each is still served. The memory per held connection is the
 * difference from the idle server, divided by N. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "load.h"
#include "load-report.h"
#include "tree-memory.h"

/* Connections being set up at once: enough to keep a forking server busy,
 * few enough that no backlog overflows and no SYN waits for a retransmit. */
#define SETUP_WINDOW 64u
/* Let children that just echoed finish whatever they do next (free, log,
 * poll) before their pages are counted. */
#define SETTLE_NSEC (300 * NSEC_PER_MSEC)

struct held {
        int fd;                 /* -1: failed */
        bool busy;              /* an echo is in progress */
        uint64_t seq;
        uint64_t start_nsec;
        size_t sent, got;
        uint8_t *message, *reply;
};

struct hold {
        const struct load_options *options;
        int epoll_fd;
        struct held *conns;
        unsigned n_started, n_busy, n_held;
        struct errors errors;
};

static void conn_fail(struct hold *t, struct held *c, const char *what, int r) {
        errors_note(&t->errors, what, r);
        close(c->fd);
        c->fd = -1;
        c->busy = false;
        t->n_busy--;
}

/* Sends and reads as far as the socket allows (edge-triggered: to EAGAIN). */
static void conn_advance(struct hold *t, struct held *c) {
        size_t size = t->options->message_size;

        if (!c->busy)
                return;
        while (c->sent < size) {
                ssize_t n = send(c->fd, c->message + c->sent, size - c->sent, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno != EAGAIN)
                                conn_fail(t, c, "send", -errno);
                        return;
                }
                c->sent += (size_t) n;
        }
        while (c->got < size) {
                ssize_t n = read(c->fd, c->reply + c->got, size - c->got);
                if (n <= 0) {
                        if (n == 0 || errno != EAGAIN)
                                conn_fail(t, c, "read", n == 0 ? -ECONNRESET : -errno);
                        return;
                }
                c->got += (size_t) n;
        }
        if (!message_check(c->reply, size, c->seq)) {
                conn_fail(t, c, "verify", -EBADMSG);
                return;
        }
        c->busy = false;
        t->n_busy--;
}

static void echo_begin(struct hold *t, struct held *c, uint64_t seq) {
        c->seq = seq;
        c->sent = c->got = 0;
        c->busy = true;
        c->start_nsec = now_nsec();
        message_fill(c->message, t->options->message_size, seq);
        t->n_busy++;
}

static void conn_open(struct hold *t, struct held *c, unsigned i) {
        echo_begin(t, c, 2ull * i);
        c->fd = connect_start(t->options, i, true);
        if (c->fd < 0) {
                int r = c->fd;
                c->fd = -1;
                c->busy = false;
                t->n_busy--;
                errors_note(&t->errors, "connect", r);
                return;
        }
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c };
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                conn_fail(t, c, "epoll_ctl", -errno);
}

static void fail_overdue(struct hold *t, uint64_t now) {
        for (unsigned i = 0; i < t->n_started; i++) {
                struct held *c = &t->conns[i];
                if (c->busy && now - c->start_nsec > t->options->timeout_nsec)
                        conn_fail(t, c, "timeout", -ETIMEDOUT);
        }
}

/* Runs the event loop until no echo is in progress and @opening has no more
 * connections to start, or @deadline. Returns false at the deadline. */
static bool pump_events(struct hold *t, bool opening, uint64_t deadline) {
        struct epoll_event events[256];
        uint64_t last_check = now_nsec();

        for (;;) {
                while (opening && t->n_busy < SETUP_WINDOW &&
                       t->n_started < t->options->n_connections) {
                        conn_open(t, &t->conns[t->n_started], t->n_started);
                        t->n_started++;
                }
                if (t->n_busy == 0 && (!opening || t->n_started == t->options->n_connections))
                        return true;
                uint64_t now = now_nsec();
                if (now >= deadline)
                        return false;
                int n = epoll_wait(t->epoll_fd, events, 256, 10);
                for (int i = 0; i < n; i++)
                        conn_advance(t, events[i].data.ptr);
                if (now - last_check > 100 * NSEC_PER_MSEC) {
                        fail_overdue(t, now);
                        last_check = now;
                }
        }
}

/* The second echo, on every connection at once. Returns how many answered. */
static unsigned echo_again(struct hold *t, uint64_t deadline) {
        unsigned n_echoing = 0;

        for (unsigned i = 0; i < t->n_started; i++)
                if (t->conns[i].fd >= 0) {
                        echo_begin(t, &t->conns[i], 2ull * i + 1);
                        conn_advance(t, &t->conns[i]);
                }
        if (!pump_events(t, false, deadline))
                errors_note(&t->errors, "second echo", -ETIMEDOUT);
        for (unsigned i = 0; i < t->n_started; i++) {
                if (t->conns[i].busy)
                        conn_fail(t, &t->conns[i], "second echo", -ETIMEDOUT);
                if (t->conns[i].fd >= 0)
                        n_echoing++;
        }
        return n_echoing;
}

static void report(const struct hold *t, const struct tree_memory *idle,
                   const struct tree_memory *held, int64_t kernel_kib, double setup_seconds,
                   unsigned n_echoing) {
        double n = t->n_held > 0 ? t->n_held : 1;
        printf("RESULT server=%s mode=hold n=%u held=%u procs=%u setup_s=%.2f "
               "idle_pss_kib=%llu pss_kib=%llu pss_kib_per_conn=%.2f "
               "private_dirty_kib_per_conn=%.2f rss_kib_per_conn=%.2f "
               "kernel_kib_per_conn=%.2f page_tables_kib_per_conn=%.2f echoing=%u",
               t->options->server, t->options->n_connections, t->n_held, held->n_processes,
               setup_seconds, (unsigned long long) idle->pss_kib,
               (unsigned long long) held->pss_kib,
               ((double) held->pss_kib - (double) idle->pss_kib) / n,
               ((double) held->private_dirty_kib - (double) idle->private_dirty_kib) / n,
               ((double) held->rss_kib - (double) idle->rss_kib) / n, (double) kernel_kib / n,
               ((double) held->page_tables_kib - (double) idle->page_tables_kib) / n, n_echoing);
        report_errors(&t->errors);
}

static void close_all(struct hold *t) {
        for (unsigned i = 0; i < t->n_started; i++)
                if (t->conns[i].fd >= 0)
                        close(t->conns[i].fd);
}

int load_hold(const struct load_options *o) {
        struct hold t = { .options = o };
        struct tree_memory idle, held = { .n_processes = 0 };
        uint64_t kernel_idle = 0, kernel_held = 0;
        const struct timespec settle = { .tv_nsec = (long) SETTLE_NSEC };

        int r = nofile_raise(o->n_connections + 64);
        if (r < 0)
                return report_failure(o, "raising RLIMIT_NOFILE", r);
        if (o->server_pid <= 0)
                return report_failure(o, "--pid", -EINVAL);
        t.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        t.conns = calloc(o->n_connections, sizeof *t.conns);
        if (t.epoll_fd < 0 || !t.conns)
                return report_failure(o, "setup", -ENOMEM);
        for (unsigned i = 0; i < o->n_connections; i++) {
                t.conns[i].message = malloc(o->message_size);
                t.conns[i].reply = malloc(o->message_size);
                if (!t.conns[i].message || !t.conns[i].reply)
                        return report_failure(o, "setup", -ENOMEM);
        }
        r = tree_memory_read(o->server_pid, &idle);
        if (r < 0 || kernel_memory_read(&kernel_idle) < 0)
                return report_failure(o, "reading the idle server's memory", r);

        /* Every connection is bounded by the timeout; the whole set-up too. */
        uint64_t start = now_nsec();
        if (!pump_events(&t, true, start + 6 * o->timeout_nsec))
                errors_note(&t.errors, "setup", -ETIMEDOUT);
        for (unsigned i = 0; i < t.n_started; i++) {
                if (t.conns[i].busy)
                        conn_fail(&t, &t.conns[i], "setup", -ETIMEDOUT);
                t.n_held += t.conns[i].fd >= 0;
        }
        double setup_seconds = (double) (now_nsec() - start) / NSEC_PER_SEC;

        nanosleep(&settle, NULL);
        r = tree_memory_read(o->server_pid, &held);
        if (r < 0 || kernel_memory_read(&kernel_held) < 0)
                errors_note(&t.errors, "reading the server's memory", r);
        unsigned n_echoing = echo_again(&t, now_nsec() + 3 * o->timeout_nsec);

        report(&t, &idle, &held, (int64_t) kernel_held - (int64_t) kernel_idle, setup_seconds,
               n_echoing);
        close_all(&t);
        close(t.epoll_fd);
        return t.errors.n > 0;
}
