/* A library an administrator might preload into echod: its constructor
 * calls setenv() (which moves the environment to the heap), and it
 * interposes shutdown(2), which each connection's child calls as it ends,
 * to use libc there as any code may: strerror(), malloc(), snprintf(),
 * setenv(), stdio. Each child that got through appends its PID to the file
 * $ECHOD_TEST_CHILD_MARKS. With $ECHOD_TEST_CHILD_BUG=1 it also reads
 * freed memory (through memcpy(), which a sanitizer checks even here): a
 * report the sanitizer must print from the child. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void preloaded(void) {
        (void) setenv("ECHOD_TEST_PRELOADED", "1", 1);
}

static void use_libc(const char *marks) {
        char *text = malloc(128);
        if (!text)
                return;
        snprintf(text, 128, "%d %s", (int) getpid(), strerror(EPIPE));
        (void) setenv("ECHOD_TEST_LAST_CHILD", text, 1);
        FILE *f = fopen(marks, "ae");
        if (f) {
                fprintf(f, "%s\n", getenv("ECHOD_TEST_LAST_CHILD"));
                fclose(f);
        }
        free(text);
}

/* A use after free, on purpose: read through memcpy(), which the sanitizer
 * intercepts. The pointer is kept in a volatile, so that no compiler sees
 * (and warns about) the use after free() it cannot prove. */
static void read_freed_memory(void) {
        /* Called through a pointer: the compiler must not inline the copy. */
        void *(*volatile copy_memory)(void *, const void *, size_t) = memcpy;
        char copy[16];
        char *p = malloc(sizeof copy);
        if (!p)
                return;
        memset(p, 'x', sizeof copy);
        char *volatile freed = p;
        free(p);
        copy_memory(copy, freed, sizeof copy);
        (void) !write(-1, copy, sizeof copy);
}

int shutdown(int fd, int how) {
        static int (*real)(int, int);
        const char *marks = getenv("ECHOD_TEST_CHILD_MARKS");
        const char *bug = getenv("ECHOD_TEST_CHILD_BUG");

        if (!real)      /* dlsym(3) shows this form of the conversion */
                *(void **) &real = dlsym(RTLD_NEXT, "shutdown");
        if (marks)
                use_libc(marks);
        if (bug && strcmp(bug, "1") == 0)
                read_freed_memory();
        return real(fd, how);
}
