/* Blocked signals read from a signalfd; see signals.h. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

int signals_open(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGNAL_STORED);
        sigaddset(&mask, SIGNAL_UNSTORED);
        sigaddset(&mask, SIGNAL_PARENT_GONE);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        /* A client that goes away must cost an EPIPE, not the daemon. */
        if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
                return -errno;
        int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int signals_read(int signal_fd) {
        struct signalfd_siginfo info;
        ssize_t n = read(signal_fd, &info, sizeof info);

        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        if (n != (ssize_t) sizeof info)
                return -EIO;
        return (int) info.ssi_signo;
}

void signals_reset_for_child(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGNAL_STORED);
        sigaddset(&mask, SIGNAL_UNSTORED);
        sigaddset(&mask, SIGNAL_PARENT_GONE);
        (void) sigprocmask(SIG_SETMASK, &mask, NULL);
}
