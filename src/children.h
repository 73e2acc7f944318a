/* The set of live children, by PID: the parent needs it to count them and, on
 * shutdown, to signal each one. An open-addressing hash set, so adding and
 * forgetting stay O(1) with tens of thousands of connections. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct children {
        pid_t *slots;           /* 0: empty */
        size_t n_slots;         /* a power of two, at least twice the capacity */
        size_t n;
};

/* Sizes the set for @capacity children. Returns 0 or -ENOMEM. */
int children_init(struct children *c, size_t capacity);
void children_free(struct children *c);

/* Both return 0, or -EEXIST / -ENOENT / -ENOSPC when the set disagrees. */
int children_add(struct children *c, pid_t pid);
int children_forget(struct children *c, pid_t pid);
bool children_contains(const struct children *c, pid_t pid);

/* Calls @fn for every child; the set must not change meanwhile. */
void children_foreach(const struct children *c, void (*fn)(pid_t pid, void *userdata),
                      void *userdata);
