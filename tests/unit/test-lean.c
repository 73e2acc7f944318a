/* Which libraries the child is born without, and that a real fork leaves
 * them out. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "src/lean.h"
#include "unit.h"

START_TEST(libsystemd_and_what_only_it_links_are_parent_only) {
        static const char *const parent_only[] = {
                "/usr/lib/x86_64-linux-gnu/libsystemd.so.0.35.0", "/lib/libsystemd.so.0",
                "libcap.so.2", "/usr/lib/x86_64-linux-gnu/libgcrypt.so.20.4.1",
                "libgpg-error.so.0", "liblzma.so.5", "libzstd.so.1", "liblz4.so.1",
        };
        for (size_t i = 0; i < sizeof parent_only / sizeof parent_only[0]; i++)
                ck_assert_msg(lean_object_is_parent_only(parent_only[i]), "%s", parent_only[i]);
}
END_TEST

/* The child runs libc through the loader; sanitizer runtimes intercept its
 * calls; a name that merely starts alike is another library. */
START_TEST(what_the_child_runs_stays) {
        static const char *const kept[] = {
                "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
                "linux-vdso.so.1", "", "libasan.so.8", "libubsan.so.1",
                "/usr/lib/libcapstone.so.4", "/usr/lib/libsystemd-shared-252.so",
                "/opt/libsystemd.so.0/libc.so.6",
        };
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
                ck_assert_msg(!lean_object_is_parent_only(kept[i]), "%s", kept[i]);
}
END_TEST

/* Returns the number of parent-only objects in /proc/self/maps. */
static int count_parent_only_mappings(void) {
        char line[4096];
        int n = 0;
        FILE *f = fopen("/proc/self/maps", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof line, f)) {
                char *path = strchr(line, '/');
                if (!path)
                        continue;
                path[strcspn(path, "\n")] = '\0';
                if (lean_object_is_parent_only(path))
                        n++;
        }
        fclose(f);
        return n;
}

/* lean_fork(), as the daemon forks: fork() would run libsystemd's atfork
 * handler (it resets a cached PID) in a child that no longer maps it. */
START_TEST(a_forked_child_maps_none_of_them) {
        int status;

        (void) sd_booted();     /* libsystemd stays mapped, whatever the linker's --as-needed */
        ck_assert_int_gt(count_parent_only_mappings(), 0);
        ck_assert_int_gt(lean_trim_libraries(), 0);

        pid_t pid = lean_fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(count_parent_only_mappings() == 0 ? 0 : 1);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_gt(count_parent_only_mappings(), 0);      /* the parent keeps them */
}
END_TEST

/* A real fork: the child has its own copy of memory, its own PID, and the
 * parent reaps it with the status it gave. */
START_TEST(lean_fork_makes_a_child_with_its_own_memory) {
        static volatile int written_by_child = 0;
        int status;

        pid_t parent = getpid();
        pid_t pid = lean_fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                written_by_child = 1;
                _exit(getpid() != parent && getppid() == parent ? 42 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 42);
        ck_assert_int_eq(written_by_child, 0);
}
END_TEST

/* Once unregistered, the kernel knows no rseq area for this thread: asking
 * to unregister it again is EINVAL. Without glibc's (valgrind, old kernels)
 * there is nothing to do. */
START_TEST(rseq_is_unregistered) {
        struct rseq *area = (struct rseq *) ((char *) __builtin_thread_pointer() + __rseq_offset);
        size_t len = __rseq_size > sizeof *area ? __rseq_size : sizeof *area;

        ck_assert_int_eq(lean_unregister_rseq(), 0);
        if (__rseq_size == 0)
                return;
        ck_assert_int_eq(syscall(SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG), -1);
        ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* Whether this process maps a "[heap]", read with no malloc(): a child
 * without the heap must not allocate. */
static bool maps_heap(void) {
        static char maps[64 * 1024];
        size_t n = 0;
        ssize_t k;

        int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return true;
        while (n < sizeof maps - 1 && (k = read(fd, maps + n, sizeof maps - 1 - n)) > 0)
                n += (size_t) k;
        close(fd);
        maps[n] = '\0';
        return strstr(maps, "[heap]") != NULL;
}

/* Last in this program: after it no child may allocate. */
START_TEST(a_forked_child_maps_no_heap) {
        int status;

        void *p = malloc(100);          /* a heap to leave out, if malloc() uses brk here */
        ck_assert_ptr_nonnull(p);
        int r = lean_trim_heap();
        ck_assert_int_ge(r, 0);
        if (r == 0) {
                free(p);
                return;                 /* no "[heap]": sanitizers, valgrind */
        }
        ck_assert(maps_heap());
        pid_t pid = lean_fork();
        if (pid == 0)           /* before any ck_assert(): Check allocates in each */
                _exit(maps_heap() ? 1 : 0);
        ck_assert_int_ge(pid, 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        free(p);
}
END_TEST

int main(void) {
        Suite *s = suite_create("lean");
        TCase *tc = tcase_create("lean");
        tcase_add_test(tc, libsystemd_and_what_only_it_links_are_parent_only);
        tcase_add_test(tc, what_the_child_runs_stays);
        tcase_add_test(tc, a_forked_child_maps_none_of_them);
        tcase_add_test(tc, lean_fork_makes_a_child_with_its_own_memory);
        tcase_add_test(tc, rseq_is_unregistered);
        tcase_add_test(tc, a_forked_child_maps_no_heap);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
