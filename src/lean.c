/* Leaving the parent-only libraries out of every fork; see lean.h. */
#include "lean.h"

#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

/* libsystemd 252 and what it links on Debian 12 (ldd). A library missing
 * here costs speed, not safety; a library the child uses must never be
 * here: the child runs echod's own code and libc, nothing else. */
static const char *const parent_only_objects[] = {
        "libsystemd.so", "libcap.so", "libgcrypt.so", "libgpg-error.so",
        "liblzma.so", "libzstd.so", "liblz4.so",
};

bool lean_object_is_parent_only(const char *path) {
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;

        for (size_t i = 0; i < sizeof parent_only_objects / sizeof parent_only_objects[0]; i++)
                if (strncmp(name, parent_only_objects[i], strlen(parent_only_objects[i])) == 0)
                        return true;
        return false;
}

/* The loader reports where objects are as integers (dl_phdr_info). */
static void *address_of(uintptr_t a) {
        return (void *) a;      /* NOLINT(performance-no-int-to-ptr) */
}

/* Whether the program was linked -z now. A symbol bound lazily, on its first
 * call in a child, is looked up through every loaded object's symbol
 * tables, the trimmed ones too: without this the child would crash there. */
static bool binds_now(const struct dl_phdr_info *info) {
        for (unsigned i = 0; i < info->dlpi_phnum; i++) {
                if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
                        continue;
                const ElfW(Dyn) *d = address_of(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
                for (; d->d_tag != DT_NULL; d++)
                        if ((d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_BIND_NOW)) ||
                            (d->d_tag == DT_FLAGS_1 && (d->d_un.d_val & DF_1_NOW)))
                                return true;
        }
        return false;
}

struct trim {
        uintptr_t page_size;
        int n_trimmed;
        int error;              /* negative errno, 0 */
        bool seen_program;      /* the first object reported is the program itself */
};

/* The object's whole span, from its first loaded segment to the end of its
 * last one: text, data, RELRO and the bss past the file's end alike. */
static int trim_object(struct dl_phdr_info *info, size_t size, void *userdata) {
        struct trim *t = userdata;
        uintptr_t start = UINTPTR_MAX, end = 0;

        (void) size;
        if (!t->seen_program) {
                t->seen_program = true;
                if (!binds_now(info)) {
                        t->error = -ENOEXEC;
                        return 1;
                }
                return 0;
        }
        if (!info->dlpi_name || !lean_object_is_parent_only(info->dlpi_name))
                return 0;
        for (unsigned i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD)
                        continue;
                uintptr_t from = info->dlpi_addr + ph->p_vaddr;
                if (from < start)
                        start = from;
                if (from + ph->p_memsz > end)
                        end = from + ph->p_memsz;
        }
        if (start >= end)
                return 0;
        start &= ~(t->page_size - 1);
        end = (end + t->page_size - 1) & ~(t->page_size - 1);
        /* ENOMEM: a gap between segments is unmapped; the rest is marked. */
        if (madvise(address_of(start), end - start, MADV_DONTFORK) < 0 && errno != ENOMEM) {
                t->error = -errno;
                return 1;
        }
        t->n_trimmed++;
        return 0;
}

int lean_trim_libraries(void) {
        struct trim t = { .page_size = (uintptr_t) sysconf(_SC_PAGESIZE) };

        (void) dl_iterate_phdr(trim_object, &t);
        return t.error < 0 ? t.error : t.n_trimmed;
}

pid_t lean_fork(void) {
#ifdef SYS_clone3
        struct clone_args args = { .exit_signal = SIGCHLD };
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0 || errno != ENOSYS)
                return (pid_t) pid;
#endif
        return _Fork();
}

int lean_unregister_rseq(void) {
        if (__rseq_size == 0)
                return 0;
        struct rseq *area = (struct rseq *) ((char *) __builtin_thread_pointer() + __rseq_offset);
        /* The kernel wants the length registered: glibc registers the
         * whole struct rseq (32 bytes), though __rseq_size says 20, the
         * part with fields the kernel fills. */
        size_t len = __rseq_size > sizeof *area ? __rseq_size : sizeof *area;
        if (syscall(SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) < 0)
                return -errno;
        return 0;
}

int lean_trim_heap(void) {
        char line[512];
        uintptr_t start, end;
        int r = 0;

        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return -errno;
        while (r == 0 && fgets(line, sizeof line, f)) {
                if (!strstr(line, " [heap]\n") || sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start,
                                                          &end) != 2)
                        continue;
                r = madvise(address_of(start), end - start, MADV_DONTFORK) < 0 ? -errno : 1;
        }
        fclose(f);
        return r;
}
