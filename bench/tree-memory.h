/* The memory of a process and all its descendants, as /proc tells it: the
 * sum of each one's smaps_rollup, and the kernel's own per-process costs
 * from /proc/meminfo. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct tree_memory {
        unsigned n_processes;
        uint64_t rss_kib;
        uint64_t pss_kib;               /* shared pages split among their users */
        uint64_t private_dirty_kib;
        uint64_t page_tables_kib;       /* VmPTE: PTE, PMD and PUD pages (not the PGD) */
};

/* Sums smaps_rollup (and VmPTE from status) over @root and its descendants. A process that exits
 * while we read is left out. Returns 0, or -errno when @root is gone. */
int tree_memory_read(pid_t root, struct tree_memory *ret);

/* PageTables + KernelStack from /proc/meminfo, machine-wide, in KiB: the
 * memory a process costs that no smaps line shows. */
int kernel_memory_read(uint64_t *ret_kib);
