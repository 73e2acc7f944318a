/* The live children, by PID: the parent needs them to count connections, to
 * know each one's client address for the per-source limit, and, on shutdown,
 * to signal each one. An open-addressing hash map, so adding and forgetting
 * stay O(1) with tens of thousands of connections. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct child {
        pid_t pid;              /* 0: empty slot */
        bool has_source;        /* false for AF_UNIX clients */
        struct in6_addr source;
};

struct children {
        struct child *slots;
        size_t n_slots;         /* a power of two, at least twice the capacity */
        size_t n;
};

/* Sizes the map for @capacity children. Returns 0 or -ENOMEM. */
int children_init(struct children *c, size_t capacity);
void children_free(struct children *c);

/* Returns 0, or -EINVAL / -EEXIST / -ENOSPC. @source may be NULL. */
int children_add(struct children *c, pid_t pid, const struct in6_addr *source);
/* Removes @pid, copying its record to @ret (may be NULL). Returns 0 or -ENOENT. */
int children_forget(struct children *c, pid_t pid, struct child *ret);
bool children_contains(const struct children *c, pid_t pid);

/* Calls @fn for every child; the map must not change meanwhile. */
void children_foreach(const struct children *c, void (*fn)(pid_t pid, void *userdata),
                      void *userdata);
