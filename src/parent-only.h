/* Memory only the parent uses, left out of every fork (MADV_DONTFORK): its
 * pages are neither copied into a child's page tables at fork nor torn down
 * at its exit, and the parent's later writes to them cost no copy-on-write.
 * The benchmark measured the children table, spread over scattered pages,
 * more than doubling the cost of a fork without this. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

/* Zeroed, whole pages. Returns NULL with errno set on failure. */
static inline void *parent_only_calloc(size_t n, size_t size) {
        if (size != 0 && n > (size_t) -1 / size) {
                errno = ENOMEM;
                return NULL;
        }
        void *p = mmap(NULL, n * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                       0);
        if (p == MAP_FAILED)
                return NULL;
        if (madvise(p, n * size, MADV_DONTFORK) < 0) {
                int saved_errno = errno;
                (void) munmap(p, n * size);
                errno = saved_errno;
                return NULL;
        }
        return p;
}

static inline void parent_only_free(void *p, size_t n, size_t size) {
        if (p)
                (void) munmap(p, n * size);
}
