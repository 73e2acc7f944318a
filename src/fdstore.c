/* Connections into systemd's fd store, and out again; see fdstore.h. */
#include "fdstore.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd-util.h"
#include "parent-only.h"

/* Young connections looked at per poll() that finds those already ended. */
#define FLUSH_BATCH 64

void fd_store_init(struct fd_store *st, unsigned max, pid_t pid) {
        *st = (struct fd_store) { .max = max, .pid = pid, .next_flush_usec = USEC_INFINITY,
                                  .barrier_fd = -1, .next_barrier = 1 };
}

void fd_store_free(struct fd_store *st) {
        st->barrier_fd = safe_close(st->barrier_fd);
        parent_only_free(st->removals, st->n_removals_max, sizeof *st->removals);
        parent_only_free(st->resumed, st->n_resumed_max, sizeof *st->resumed);
        st->removals = NULL;
        st->resumed = NULL;
        st->n_removals = st->n_removals_max = st->n_resumed = st->n_resumed_max = 0;
}

static void count_used(struct fd_store *st, unsigned n) {
        st->n_used += n;
        if (st->n_used > st->n_used_peak)
                st->n_used_peak = st->n_used;
}

static int compare_resumed(const void *a, const void *b) {
        return strcmp(((const struct fd_store_resumed_name *) a)->name,
                      ((const struct fd_store_resumed_name *) b)->name);
}

/* Room for every removal that can be owed at once: one per name in the
 * store, so at most as many as its size, plus the names resumed. */
static int allocate_removals(struct fd_store *st, size_t n_resumed) {
        size_t max = st->max + n_resumed;
        if (max == 0)
                return 0;
        st->removals = parent_only_calloc(max, sizeof *st->removals);
        if (!st->removals)
                return -ENOMEM;
        st->n_removals_max = max;
        return 0;
}

int fd_store_resume(struct fd_store *st, const char *const *names, size_t n) {
        int r = allocate_removals(st, n);
        if (r < 0 || n == 0)
                return r;
        struct fd_store_resumed_name *resumed = parent_only_calloc(n, sizeof *resumed);
        if (!resumed)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                snprintf(resumed[i].name, sizeof resumed[i].name, "%s", names[i]);
                uint64_t seq = fd_store_name_seq(names[i], (int) st->pid);
                if (seq > st->seq)
                        st->seq = seq;
        }
        /* One entry per name, counting the connections stored under it. */
        qsort(resumed, n, sizeof *resumed, compare_resumed);
        size_t n_names = 0;
        for (size_t i = 0; i < n; i++) {
                if (n_names == 0 || strcmp(resumed[n_names - 1].name, resumed[i].name) != 0)
                        resumed[n_names++] = resumed[i];
                resumed[n_names - 1].n_open++;
                resumed[n_names - 1].n_slots++;
        }
        st->resumed = resumed;
        st->n_resumed_max = n;
        st->n_resumed = n_names;
        count_used(st, (unsigned) n);
        return 0;
}

bool fd_store_keep_young(struct fd_store *st, usec_t now) {
        if (st->max == 0)
                return false;
        st->n_young++;
        if (st->next_flush_usec == USEC_INFINITY)
                st->next_flush_usec = now + FD_STORE_MIN_AGE_USEC;
        return true;
}

static void close_copy(struct fd_store *st, struct child *child) {
        if (child->copy_fd >= 0 && child->store_state == FD_STORE_YOUNG)
                st->n_young--;
        child->copy_fd = safe_close(child->copy_fd);
}

/* FDSTORE=1 for @child's connection under a new name. Returns 1 when sent,
 * 0 when the store has no room, or -errno. */
static int store_child(struct fd_store *st, struct notify *n, struct child *child) {
        char name[FD_STORE_NAME_MAX];

        if (st->n_used >= st->max)
                return 0;
        fd_store_name(name, sizeof name, (int) st->pid, st->seq + 1);
        int r = notify_fd_store(n, child->copy_fd, name);
        if (r < 0)
                return r;
        st->seq++;
        count_used(st, 1);
        st->n_young--;
        st->n_unconfirmed++;
        memcpy(child->fd_store_name, name, sizeof name);
        child->store_state = FD_STORE_SENT;
        child->store_barrier = st->next_barrier;
        return 1;
}

/* A child shuts its connection down before it exits, and it may not have
 * been reaped yet (a slow exit, or one still in the queue): such a
 * connection, hung up, has ended and must not go to PID 1. Drops those from
 * @batch, closing our copies, and returns how many are left. */
static size_t drop_ended(struct fd_store *st, struct child **batch, size_t n) {
        struct pollfd fds[FLUSH_BATCH];
        size_t n_left = 0;

        for (size_t i = 0; i < n; i++)
                fds[i] = (struct pollfd) { .fd = batch[i]->copy_fd };
        if (poll(fds, n, 0) <= 0)
                return n;
        for (size_t i = 0; i < n; i++) {
                if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL))
                        close_copy(st, batch[i]);
                else
                        batch[n_left++] = batch[i];
        }
        return n_left;
}

int fd_store_send_barrier(struct fd_store *st, struct notify *n, usec_t now) {
        if (st->barrier_fd >= 0 || st->n_unconfirmed == 0)
                return 0;
        int fd = notify_barrier(n);
        if (fd < 0)
                return fd;      /* tried again at the caller's next turn */
        st->barrier_fd = fd;
        st->barrier_seq = st->next_barrier++;
        st->barrier_sent_usec = now;
        return 0;
}

void fd_store_flush(struct fd_store *st, struct notify *n, struct children *c,
                    usec_t born_before, usec_t now, struct fd_store_shortfall *ret_shortfall) {
        struct child *batch[FLUSH_BATCH];
        size_t cursor = 0, k;

        *ret_shortfall = (struct fd_store_shortfall) { .n_full = 0 };
        do {
                k = children_young(c, born_before, &cursor, batch, FLUSH_BATCH);
                size_t n_due = drop_ended(st, batch, k);
                for (size_t i = 0; i < n_due; i++) {
                        /* Once PID 1's queue is full, the rest wait for the next flush. */
                        int r = ret_shortfall->error == -EAGAIN ? -EAGAIN
                                                                : store_child(st, n, batch[i]);
                        if (r == 0)
                                ret_shortfall->n_full++;
                        else if (r < 0) {
                                ret_shortfall->n_failed++;
                                ret_shortfall->error = r;
                        }
                }
        } while (k == FLUSH_BATCH);
        int r = fd_store_send_barrier(st, n, now);
        if (r < 0 && ret_shortfall->error == 0)
                ret_shortfall->error = r;
        bool young_left = st->n_young > 0;
        st->next_flush_usec = young_left ? now + FD_STORE_MIN_AGE_USEC : USEC_INFINITY;
}

void fd_store_confirm(struct fd_store *st, struct notify *n, struct children *c, usec_t now,
                      void (*confirmed)(pid_t pid, void *userdata), void *userdata) {
        struct child *child;
        size_t cursor = 0;

        st->barrier_fd = safe_close(st->barrier_fd);
        while ((child = children_next(c, &cursor))) {
                if (child->store_state != FD_STORE_SENT || child->store_barrier > st->barrier_seq)
                        continue;
                child->store_state = FD_STORE_CONFIRMED;
                st->n_unconfirmed--;
                confirmed(child->pid, userdata);
        }
        (void) fd_store_send_barrier(st, n, now);
}

usec_t fd_store_check_barrier(struct fd_store *st, struct notify *n, usec_t now) {
        if (st->barrier_fd < 0)
                return USEC_INFINITY;
        if (now < st->barrier_sent_usec + FD_STORE_BARRIER_TIMEOUT_USEC)
                return st->barrier_sent_usec + FD_STORE_BARRIER_TIMEOUT_USEC;
        /* The next barrier confirms everything sent so far. */
        st->barrier_fd = safe_close(st->barrier_fd);
        (void) fd_store_send_barrier(st, n, now);
        return st->barrier_fd >= 0 ? now + FD_STORE_BARRIER_TIMEOUT_USEC : USEC_INFINITY;
}

int fd_store_one(struct fd_store *st, struct notify *n, int fd) {
        char name[FD_STORE_NAME_MAX];

        if (st->max == 0 || st->n_used >= st->max)
                return 0;
        fd_store_name(name, sizeof name, (int) st->pid, st->seq + 1);
        int r = notify_fd_store(n, fd, name);
        if (r < 0)
                return r;
        st->seq++;
        count_used(st, 1);
        return 1;
}

static int queue_removal(struct fd_store *st, const char *name, unsigned n_slots) {
        if (st->n_removals == st->n_removals_max)
                return -ENOBUFS;        /* cannot happen; the slots stay counted: safe */
        struct fd_store_removal *removal = &st->removals[st->n_removals++];
        snprintf(removal->name, sizeof removal->name, "%s", name);
        removal->n_slots = n_slots;
        return 0;
}

/* A connection stored under @name has ended: the name is removed, unless
 * the previous instance stored others under it that are still open. */
static void release_name(struct fd_store *st, const char *name) {
        struct fd_store_resumed_name key = { .n_open = 0 }, *resumed = NULL;

        snprintf(key.name, sizeof key.name, "%s", name);
        if (st->n_resumed > 0)
                resumed = bsearch(&key, st->resumed, st->n_resumed, sizeof key, compare_resumed);
        if (!resumed) {
                (void) queue_removal(st, name, 1);
                return;
        }
        if (--resumed->n_open == 0)
                (void) queue_removal(st, name, resumed->n_slots);
}

void fd_store_restart(struct fd_store *st, struct children *c, int max_now) {
        struct child *child;
        size_t cursor = 0;

        if (max_now < 0 || st->max == 0)
                return;
        bool maybe_refused = st->n_used_peak > (unsigned) max_now;
        if ((unsigned) max_now < st->max)
                st->max = (unsigned) max_now;
        if (!maybe_refused)
                return;
        while ((child = children_next(c, &cursor))) {
                if (child->store_state == FD_STORE_YOUNG || child->token >= 0 ||
                    child->copy_fd < 0)
                        continue;
                if (queue_removal(st, child->fd_store_name, 1) < 0)
                        continue;       /* cannot happen; it stays as it is */
                if (child->store_state == FD_STORE_SENT)
                        st->n_unconfirmed--;
                child->store_state = FD_STORE_YOUNG;
                child->fd_store_name[0] = '\0';
                st->n_young++;
        }
}

void fd_store_child_ended(struct fd_store *st, struct child *child, bool left_open) {
        close_copy(st, child);
        if (child->store_state == FD_STORE_SENT)
                st->n_unconfirmed--;
        if (child->store_state == FD_STORE_YOUNG || left_open)
                return;
        release_name(st, child->fd_store_name);
}

void fd_store_drop(struct fd_store *st, const char *name) {
        release_name(st, name);
}

bool fd_store_settled(const struct fd_store *st) {
        return st->n_removals == 0 && st->n_unconfirmed == 0 &&
               (st->n_young == 0 || st->n_used >= st->max);
}

int fd_store_send_removals(struct fd_store *st, struct notify *n) {
        while (st->n_removals > 0) {
                const struct fd_store_removal *last = &st->removals[st->n_removals - 1];
                int r = notify_fd_store_remove(n, last->name);
                if (r < 0)
                        return r;
                st->n_used -= last->n_slots < st->n_used ? last->n_slots : st->n_used;
                st->n_removals--;
        }
        return 0;
}
