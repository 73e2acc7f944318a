/* Blocked signals read from a signalfd; see signals.h. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The thread that blocks our signals and reads them. */
static pid_t reader_thread;

/* The one thing done in a handler: a thread we did not start (a preloaded
 * library's) does not block our signals, and the kernel may deliver one of
 * them to it, whose default action would end the process (SIGTERM) or lose
 * it. Sent on to the thread that blocks it, it waits there for the
 * signalfd. tgkill(2) is async-signal-safe. */
static void send_to_reader(int signo) {
        int saved_errno = errno;
        (void) tgkill(getpid(), reader_thread, signo);
        errno = saved_errno;
}

static const int handled[] = { SIGCHLD, SIGTERM, SIGINT, SIGNAL_STORED, SIGNAL_UNSTORED,
                               SIGNAL_PARENT_GONE };

int signals_open(void) {
        struct sigaction forward = { .sa_handler = send_to_reader, .sa_flags = SA_RESTART };
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
                sigaddset(&mask, handled[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        reader_thread = gettid();
        forward.sa_mask = mask;
        for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
                if (sigaction(handled[i], &forward, NULL) < 0)
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

        /* A child is one thread, which blocks the rest: no forwarding. */
        (void) signal(SIGCHLD, SIG_DFL);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGNAL_STORED);
        sigaddset(&mask, SIGNAL_UNSTORED);
        sigaddset(&mask, SIGNAL_PARENT_GONE);
        (void) sigprocmask(SIG_SETMASK, &mask, NULL);
}
