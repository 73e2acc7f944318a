/* Young connections into systemd's fd store, by batches; see fdstore.h. */
#include "fdstore.h"

#include <poll.h>
#include <string.h>

#include "fd-util.h"
#include "notify.h"

void fd_store_init(struct fd_store *st, unsigned max, pid_t pid) {
        *st = (struct fd_store) { .max = max, .pid = pid, .next_flush_usec = USEC_INFINITY };
}

void fd_store_resumed(struct fd_store *st, const char *name) {
        uint64_t seq = fd_store_name_seq(name, (int) st->pid);
        if (seq > st->seq)
                st->seq = seq;
        st->n++;
}

bool fd_store_keep_young(struct fd_store *st, usec_t now) {
        if (st->max == 0)
                return false;
        if (st->n_young++ == 0)
                st->next_flush_usec = now + FD_STORE_MIN_AGE_USEC;
        return true;
}

static void forget_young(struct fd_store *st, struct child *child) {
        child->young_fd = safe_close(child->young_fd);
        st->n_young--;
}

void fd_store_child_ended(struct fd_store *st, struct child *child, bool left_open) {
        if (child->young_fd >= 0)
                forget_young(st, child);
        /* Shut down by its child, the connection leaves the store by itself. */
        else if (child->fd_store_name[0] != '\0' && !left_open && st->n > 0)
                st->n--;
}

/* FDSTORE=1 for @fds[0..@n) under the next batch name, left in @name.
 * Returns 1 when they are stored, 0 or -errno when not. */
static int store_fds(struct fd_store *st, const int *fds, size_t n, char *name) {
        fd_store_name(name, FD_STORE_NAME_MAX, (int) st->pid, st->seq + 1);
        int r = notify_fd_store(fds, n, name);
        if (r <= 0)
                return r;
        st->seq++;
        st->n += (unsigned) n;
        return 1;
}

int fd_store_one(struct fd_store *st, int fd) {
        char name[FD_STORE_NAME_MAX];

        if (st->max == 0 || st->n >= st->max)
                return 0;
        return store_fds(st, &fd, 1, name);
}

/* The young copies of @batch[0..@n), as one message; see store_fds(). */
static int send_batch(struct fd_store *st, struct child **batch, size_t n, char *name) {
        int fds[FD_STORE_BATCH_MAX];

        for (size_t i = 0; i < n; i++)
                fds[i] = batch[i]->young_fd;
        return store_fds(st, fds, n, name);
}

/* A child shuts its connection down before it exits, and it may not have
 * been reaped yet (a slow exit, or one still in the queue): such a
 * connection, hung up, has ended and must not go to PID 1. Drops those from
 * @batch, closing our copies, and returns how many are left. */
static size_t drop_ended(struct fd_store *st, struct child **batch, size_t n) {
        struct pollfd fds[FD_STORE_BATCH_MAX];
        size_t n_left = 0;

        for (size_t i = 0; i < n; i++)
                fds[i] = (struct pollfd) { .fd = batch[i]->young_fd };
        if (poll(fds, n, 0) <= 0)
                return n;
        for (size_t i = 0; i < n; i++) {
                if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL))
                        forget_young(st, batch[i]);
                else
                        batch[n_left++] = batch[i];
        }
        return n_left;
}

/* One message for @batch[0..@n), as far as the store has room. */
static void store_batch(struct fd_store *st, struct child **batch, size_t n,
                        void (*stored)(pid_t pid, void *userdata), void *userdata,
                        struct fd_store_shortfall *shortfall) {
        char name[FD_STORE_NAME_MAX];
        n = drop_ended(st, batch, n);
        size_t room = st->max > st->n ? st->max - st->n : 0;
        size_t n_in = n < room ? n : room;

        shortfall->n_full += (unsigned) (n - n_in);
        if (n_in > 0) {
                int r = send_batch(st, batch, n_in, name);
                if (r <= 0) {
                        shortfall->n_failed += (unsigned) n_in;
                        shortfall->error = r < 0 ? r : shortfall->error;
                        n_in = 0;
                }
        }
        for (size_t i = 0; i < n; i++) {
                if (i < n_in) {
                        memcpy(batch[i]->fd_store_name, name, sizeof name);
                        stored(batch[i]->pid, userdata);
                }
                forget_young(st, batch[i]);
        }
}

void fd_store_flush(struct fd_store *st, struct children *c, usec_t born_before, usec_t now,
                    void (*stored)(pid_t pid, void *userdata), void *userdata,
                    struct fd_store_shortfall *ret_shortfall) {
        struct child *batch[FD_STORE_BATCH_MAX];
        size_t cursor = 0, n;

        *ret_shortfall = (struct fd_store_shortfall) { .n_full = 0 };
        do {
                n = children_young(c, born_before, &cursor, batch, FD_STORE_BATCH_MAX);
                if (n > 0)
                        store_batch(st, batch, n, stored, userdata, ret_shortfall);
        } while (n == FD_STORE_BATCH_MAX);
        st->next_flush_usec = st->n_young > 0 ? now + FD_STORE_MIN_AGE_USEC : USEC_INFINITY;
}
