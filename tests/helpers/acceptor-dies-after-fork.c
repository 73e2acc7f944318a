/* Preloaded (LD_PRELOAD) into echod by a test: the acceptor dies (SIGKILL)
 * right after the fork(2) whose parent it is, the first time only (the
 * file $ECHOD_TEST_DIE_MARKER, created then, says so), before it can tell
 * echod of the child: the instant in which a connection has a child echod
 * does not know of. fork() is interposed the documented way, by symbol
 * lookup order; every other process is left alone. */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

pid_t fork(void) {
        pid_t (*real_fork)(void);
        /* dlsym(3) returns functions as void *: copied, as POSIX allows. */
        void *symbol = dlsym(RTLD_NEXT, "fork");
        if (!symbol)
                abort();
        memcpy(&real_fork, &symbol, sizeof real_fork);
        pid_t pid = real_fork();
        if (pid <= 0)
                return pid;
        char name[16] = "";
        const char *marker = getenv("ECHOD_TEST_DIE_MARKER");
        if (!marker || prctl(PR_GET_NAME, name) < 0 || strcmp(name, "echod-acceptor") != 0)
                return pid;
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
                close(fd);
                raise(SIGKILL);
        }
        return pid;
}
