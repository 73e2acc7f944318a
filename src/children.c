/* A hash map of live children keyed by PID, with linear probing; see
 * children.h. Deletion shifts later entries of the same run back, so no
 * tombstones pile up. */
#include "children.h"

#include <errno.h>
#include <stdlib.h>

#include "parent-only.h"
#include "probe.h"

static size_t slot_of(const struct children *c, pid_t pid) {
        /* The PID itself: the kernel hands out PIDs in sequence, so live
         * children fill neighbouring slots, rarely collide, and touch few
         * pages of the table. */
        return (size_t) (unsigned) pid & (c->n_slots - 1);
}

static size_t next(const struct children *c, size_t i) {
        return (i + 1) & (c->n_slots - 1);
}

int children_init(struct children *c, size_t capacity) {
        size_t n_slots = probe_table_size(capacity);
        c->slots = parent_only_calloc(n_slots, sizeof *c->slots);
        if (!c->slots)
                return -ENOMEM;
        c->n_slots = n_slots;
        c->n = 0;
        return 0;
}

void children_free(struct children *c) {
        parent_only_free(c->slots, c->n_slots, sizeof *c->slots);
        *c = (struct children) { .slots = NULL };
}

static size_t find(const struct children *c, pid_t pid) {
        size_t i = slot_of(c, pid);
        while (c->slots[i].pid != 0 && c->slots[i].pid != pid)
                i = next(c, i);
        return i;
}

struct child *children_find(const struct children *c, pid_t pid) {
        if (pid <= 0)
                return NULL;
        size_t i = find(c, pid);
        return c->slots[i].pid == pid ? &c->slots[i] : NULL;
}

int children_add(struct children *c, const struct child *child) {
        if (child->pid <= 0)
                return -EINVAL;
        if (c->n + 1 > c->n_slots / 2)
                return -ENOSPC;
        size_t i = find(c, child->pid);
        if (c->slots[i].pid == child->pid)
                return -EEXIST;
        c->slots[i] = *child;
        c->n++;
        return 0;
}

int children_forget(struct children *c, pid_t pid, struct child *ret) {
        if (!children_find(c, pid))
                return -ENOENT;
        size_t hole = find(c, pid);
        if (ret)
                *ret = c->slots[hole];
        c->slots[hole].pid = 0;
        c->n--;
        for (size_t i = next(c, hole); c->slots[i].pid != 0; i = next(c, i)) {
                if (probe_stays_reachable(hole, i, slot_of(c, c->slots[i].pid)))
                        continue;
                c->slots[hole] = c->slots[i];
                c->slots[i].pid = 0;
                hole = i;
        }
        return 0;
}

size_t children_young(const struct children *c, usec_t born_before, size_t *cursor,
                      struct child **ret, size_t max) {
        size_t n = 0;
        for (; *cursor < c->n_slots && n < max; (*cursor)++) {
                struct child *child = &c->slots[*cursor];
                if (child->pid != 0 && child->copy_fd >= 0 &&
                    child->store_state == FD_STORE_YOUNG && child->start_usec <= born_before)
                        ret[n++] = child;
        }
        return n;
}

struct child *children_next(const struct children *c, size_t *cursor) {
        for (; *cursor < c->n_slots; (*cursor)++)
                if (c->slots[*cursor].pid != 0)
                        return &c->slots[(*cursor)++];
        return NULL;
}

void children_foreach(const struct children *c, void (*fn)(pid_t pid, void *userdata),
                      void *userdata) {
        for (size_t i = 0; i < c->n_slots; i++)
                if (c->slots[i].pid != 0)
                        fn(c->slots[i].pid, userdata);
}
