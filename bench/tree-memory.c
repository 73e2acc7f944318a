/* See tree-memory.h. */
#include "tree-memory.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Every process /proc lists, with its parent. */
struct process_list {
        pid_t *pid, *ppid;
        size_t n, allocated;
};

static int read_ppid(pid_t pid, pid_t *ret) {
        char path[64], line[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        char *ok = fgets(line, sizeof line, f);
        fclose(f);
        /* The command name may hold spaces and parentheses: skip to the last ')'. */
        char *p = ok ? strrchr(line, ')') : NULL;
        int ppid;
        if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                return -EIO;
        *ret = (pid_t) ppid;
        return 0;
}

static int list_add(struct process_list *l, pid_t pid, pid_t ppid) {
        if (l->n == l->allocated) {
                size_t n = l->allocated ? l->allocated * 2 : 1024;
                pid_t *a = realloc(l->pid, n * sizeof *a);
                if (!a)
                        return -ENOMEM;
                l->pid = a;
                pid_t *b = realloc(l->ppid, n * sizeof *b);
                if (!b)
                        return -ENOMEM;
                l->ppid = b;
                l->allocated = n;
        }
        l->pid[l->n] = pid;
        l->ppid[l->n++] = ppid;
        return 0;
}

static int list_processes(struct process_list *l) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        if (!d)
                return -errno;
        while ((e = readdir(d))) {
                pid_t ppid;
                if (!isdigit((unsigned char) e->d_name[0]))
                        continue;
                pid_t pid = (pid_t) atoi(e->d_name);
                if (read_ppid(pid, &ppid) == 0 && list_add(l, pid, ppid) < 0)
                        break;
        }
        closedir(d);
        return 0;
}

/* Per process, where the machine-wide PageTables line mixes in everyone. */
static void add_page_tables(pid_t pid, struct tree_memory *m) {
        char path[64], line[256];
        unsigned long long kib;
        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmPTE: %llu kB", &kib) == 1)
                        m->page_tables_kib += kib;
        fclose(f);
}

static int add_rollup(pid_t pid, struct tree_memory *m) {
        char path[64], line[256];
        unsigned long long kib;
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                if (sscanf(line, "Rss: %llu kB", &kib) == 1)
                        m->rss_kib += kib;
                else if (sscanf(line, "Pss: %llu kB", &kib) == 1)
                        m->pss_kib += kib;
                else if (sscanf(line, "Private_Dirty: %llu kB", &kib) == 1)
                        m->private_dirty_kib += kib;
        }
        fclose(f);
        m->n_processes++;
        add_page_tables(pid, m);
        return 0;
}

static int compare_by_pid(const void *a, const void *b, void *userdata) {
        const struct process_list *l = userdata;
        pid_t x = l->pid[*(const size_t *) a], y = l->pid[*(const size_t *) b];
        return x < y ? -1 : x > y;
}

/* The index in @l of @pid, through @order (indices sorted by pid), or -1. */
static ssize_t find_process(const struct process_list *l, const size_t *order, pid_t pid) {
        size_t lo = 0, hi = l->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                pid_t p = l->pid[order[mid]];
                if (p == pid)
                        return (ssize_t) order[mid];
                if (p < pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

enum { UNKNOWN, IN_TREE, OUTSIDE };

/* Whether process @i descends from @root: walk up its parents until an
 * answer is known, then write it down for each process on the way. */
static char in_tree_of(const struct process_list *l, const size_t *order, char *state,
                       size_t i, pid_t root) {
        if (state[i] != UNKNOWN)
                return state[i];
        if (l->pid[i] == root)
                return state[i] = IN_TREE;
        ssize_t parent = l->ppid[i] <= 1 ? -1 : find_process(l, order, l->ppid[i]);
        /* A cycle cannot happen in a snapshot of /proc, but a pid reused
         * between two reads could fake one: mark before descending. */
        state[i] = OUTSIDE;
        if (parent >= 0)
                state[i] = in_tree_of(l, order, state, (size_t) parent, root);
        return state[i];
}

static void mark_tree(const struct process_list *l, pid_t root, char *state) {
        size_t *order = malloc((l->n ? l->n : 1) * sizeof *order);
        if (!order)
                return;
        for (size_t i = 0; i < l->n; i++)
                order[i] = i;
        qsort_r(order, l->n, sizeof *order, compare_by_pid, (void *) l);
        for (size_t i = 0; i < l->n; i++)
                (void) in_tree_of(l, order, state, i, root);
        free(order);
}

int tree_memory_read(pid_t root, struct tree_memory *ret) {
        struct process_list l = { .n = 0 };
        struct tree_memory m = { .n_processes = 0 };

        int r = list_processes(&l);
        char *in_tree = r < 0 ? NULL : calloc(l.n ? l.n : 1, 1);
        if (in_tree) {
                mark_tree(&l, root, in_tree);
                for (size_t i = 0; i < l.n; i++)
                        if (in_tree[i] == IN_TREE)
                                (void) add_rollup(l.pid[i], &m);
        }
        free(in_tree);
        free(l.pid);
        free(l.ppid);
        if (m.n_processes == 0)
                return -ESRCH;
        *ret = m;
        return 0;
}

int kernel_memory_read(uint64_t *ret_kib) {
        char line[256];
        unsigned long long kib, total = 0;
        FILE *f = fopen("/proc/meminfo", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "PageTables: %llu kB", &kib) == 1 ||
                    sscanf(line, "KernelStack: %llu kB", &kib) == 1)
                        total += kib;
        fclose(f);
        *ret_kib = total;
        return 0;
}
