/* echo-sketch: the design echod started from, kept as a yardstick. The
 * parent accepts and forks; the child echoes through a 1 KiB buffer with a
 * blocking read/write loop and exits. Only its bug is fixed: the sketch
 * closed the listening socket in the parent after the first fork (so one
 * client was ever served), where the child is the one that must drop it.
 *
 * Built twice. echo-sketch ignores SIGCHLD, so the kernel reaps.
 * echo-sketch-reap (-DSKETCH_REAP) is the original as it was: a SIGCHLD
 * handler reaps with waitpid(), its loop fixed as its listener bug is (the
 * original reaped one child per signal, and pending SIGCHLDs merge). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef SKETCH_REAP
static void reap(int signo) {
        int saved_errno = errno;

        (void) signo;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        errno = saved_errno;
}
#endif

static void echo(int fd) {
        char buf[1024];
        ssize_t n;

        while ((n = read(fd, buf, sizeof buf)) > 0)
                for (ssize_t done = 0; done < n;) {
                        ssize_t w = write(fd, buf + done, (size_t) (n - done));
                        if (w < 0)
                                return;
                        done += w;
                }
}

int main(int argc, char *argv[]) {
        static const int on = 1;
        struct sockaddr_in sin = { .sin_family = AF_INET };
        char host[INET_ADDRSTRLEN] = "127.0.0.1";

        if (argc != 2) {
                fprintf(stderr, "Usage: echo-sketch [A.B.C.D:]PORT\n");
                return 2;
        }
        const char *colon = strrchr(argv[1], ':');
        if (colon && (size_t) (colon - argv[1]) < sizeof host) {
                memcpy(host, argv[1], (size_t) (colon - argv[1]));
                host[colon - argv[1]] = '\0';
        }
        sin.sin_port = htons((uint16_t) atoi(colon ? colon + 1 : argv[1]));
        int listener = socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0 || inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
            bind(listener, (struct sockaddr *) &sin, sizeof sin) < 0 ||
            listen(listener, SOMAXCONN) < 0) {
                perror("echo-sketch");
                return 1;
        }
#ifdef SKETCH_REAP
        signal(SIGCHLD, reap);  /* glibc's signal(): SA_RESTART, so accept() goes on */
#else
        signal(SIGCHLD, SIG_IGN);
#endif
        for (;;) {
                int fd = accept(listener, NULL, NULL);
                if (fd < 0)
                        continue;       /* EINTR, a client gone already, EMFILE: try again */
                pid_t pid = fork();
                if (pid == 0) {
                        close(listener);        /* the fix: the child's copy, not the parent's */
                        echo(fd);
                        _exit(0);
                }
                close(fd);
        }
}
