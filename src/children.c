/* A hash set of PIDs with linear probing; see children.h. Deletion shifts
 * later entries of the same run back, so no tombstones pile up. */
#include "children.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(const struct children *c, pid_t pid) {
        /* Knuth's multiplicative hash: consecutive PIDs spread over the table. */
        return ((size_t) (unsigned) pid * 2654435761u) & (c->n_slots - 1);
}

int children_init(struct children *c, size_t capacity) {
        size_t n_slots = 16;
        while (n_slots < capacity * 2)
                n_slots *= 2;
        c->slots = calloc(n_slots, sizeof *c->slots);
        if (!c->slots)
                return -ENOMEM;
        c->n_slots = n_slots;
        c->n = 0;
        return 0;
}

void children_free(struct children *c) {
        free(c->slots);
        *c = (struct children) { .slots = NULL };
}

static size_t find(const struct children *c, pid_t pid) {
        size_t i = slot_of(c, pid);
        while (c->slots[i] != 0 && c->slots[i] != pid)
                i = (i + 1) & (c->n_slots - 1);
        return i;
}

bool children_contains(const struct children *c, pid_t pid) {
        return pid > 0 && c->slots[find(c, pid)] == pid;
}

int children_add(struct children *c, pid_t pid) {
        if (pid <= 0)
                return -EINVAL;
        if (c->n + 1 > c->n_slots / 2)
                return -ENOSPC;
        size_t i = find(c, pid);
        if (c->slots[i] == pid)
                return -EEXIST;
        c->slots[i] = pid;
        c->n++;
        return 0;
}

int children_forget(struct children *c, pid_t pid) {
        if (!children_contains(c, pid))
                return -ENOENT;
        size_t hole = find(c, pid);
        c->slots[hole] = 0;
        c->n--;
        /* Move back every later entry of the run that may no longer be found
         * across the hole: those whose home slot is not between hole and them. */
        for (size_t i = (hole + 1) & (c->n_slots - 1); c->slots[i] != 0;
             i = (i + 1) & (c->n_slots - 1)) {
                size_t home = slot_of(c, c->slots[i]);
                bool reachable = hole <= i ? (home > hole && home <= i)
                                           : (home > hole || home <= i);
                if (reachable)
                        continue;
                c->slots[hole] = c->slots[i];
                c->slots[i] = 0;
                hole = i;
        }
        return 0;
}

void children_foreach(const struct children *c, void (*fn)(pid_t pid, void *userdata),
                      void *userdata) {
        for (size_t i = 0; i < c->n_slots; i++)
                if (c->slots[i] != 0)
                        fn(c->slots[i], userdata);
}
