/* Starting the acceptor, and talking to it; see acceptor-process.h. */
#include "acceptor-process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fd-util.h"

const char *acceptor_program_path(void) {
        static char beside_us[PATH_MAX];
        const char *e = getenv("ECHOD_ACCEPTOR");

        if (e && *e)
                return e;
        /* A build tree's echod runs its own acceptor even when a package
         * is installed too: the two speak the same build's records. */
        ssize_t n = readlink("/proc/self/exe", beside_us, sizeof beside_us - 1);
        if (n <= 0)
                return ECHOD_ACCEPTOR_PATH;
        beside_us[n] = '\0';
        char *slash = strrchr(beside_us, '/');
        size_t room = slash ? sizeof beside_us - (size_t) (slash - beside_us) : 0;
        if (!slash || snprintf(slash, room, "/echod-acceptor") >= (int) room ||
            access(beside_us, X_OK) < 0)
                return ECHOD_ACCEPTOR_PATH;
        return beside_us;
}

int acceptor_process_open(struct acceptor_process *ap, const char *path) {
        *ap = (struct acceptor_process) { .program_fd = -1, .path = path,
                                          .lifeline = { -1, -1 }, .control_fd = -1 };
        ap->program_fd = open(path, O_PATH | O_CLOEXEC);
        if (ap->program_fd < 0)
                return -errno;
        if (pipe2(ap->lifeline, O_CLOEXEC) < 0) {
                int r = -errno;
                ap->program_fd = safe_close(ap->program_fd);
                return r;
        }
        return 0;
}

void acceptor_process_close(struct acceptor_process *ap) {
        acceptor_process_gone(ap);
        ap->program_fd = safe_close(ap->program_fd);
        ap->lifeline[0] = safe_close(ap->lifeline[0]);
        ap->lifeline[1] = safe_close(ap->lifeline[1]);
}

/* @fd, moved above @above (close-on-exec) if it is not there already.
 * Returns the fd, or -errno; @fd is closed on failure. */
static int move_above(int fd, int above) {
        if (fd > above)
                return fd;
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, above + 1);
        int r = moved < 0 ? -errno : moved;
        safe_close(fd);
        return r;
}

/* Whether an exec from the open file failed where one by the path may not:
 * execveat() missing (ENOSYS: qemu-user before 8.0), refused by a seccomp
 * filter (EPERM, EACCES), or the program an interpreter must open by name (a
 * script; any program under qemu-user through binfmt_misc), which cannot
 * reopen a close-on-exec fd (ENOENT). systemd's fexecve_or_execve() does
 * the same. */
static bool exec_by_path_may_work(int error) {
        return error == ENOSYS || error == ENOENT || error == EPERM || error == EACCES;
}

/* In the child: the control socket becomes fd 3, the only fd of echod's the
 * program inherits (everything else is close-on-exec). The program runs from
 * the file opened at start, or else from its path (see above). Should the
 * exec fail, its errno goes to @status_fd, above fd 3 so that the dup2()
 * cannot take its place, and close-on-exec so that a successful exec closes
 * it. */
static _Noreturn void exec_acceptor(int program_fd, const char *path, int control_fd,
                                    int status_fd) {
        static char *const argv[] = { (char *) "echod-acceptor", NULL };
        extern char **environ;

        if (control_fd == CONTROL_FD ? fcntl(CONTROL_FD, F_SETFD, 0) == 0
                                     : dup2(control_fd, CONTROL_FD) == CONTROL_FD) {
                (void) execveat(program_fd, "", argv, environ, AT_EMPTY_PATH);
                if (exec_by_path_may_work(errno))
                        (void) execve(path, argv, environ);
        }
        int error = errno;
        ssize_t n = write(status_fd, &error, sizeof error);
        (void) n;
        _exit(127);
}

/* The exec's outcome, from the status pipe: end of file once the program
 * runs, or the errno of the exec that failed (the child is reaped). */
static int wait_for_exec(pid_t pid, int status_fd) {
        int error;
        ssize_t n;

        do
                n = read(status_fd, &error, sizeof error);
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return 0;
        (void) waitpid(pid, NULL, 0);
        return n == (ssize_t) sizeof error && error > 0 ? -error : -EIO;
}

pid_t acceptor_process_start(struct acceptor_process *ap) {
        int pair[2], status[2] = { -1, -1 };

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;
        int r = pipe2(status, O_CLOEXEC) < 0 ? -errno : 0;
        if (r == 0 && (status[1] = move_above(status[1], CONTROL_FD)) < 0)
                r = status[1];
        pid_t pid = r < 0 ? -1 : fork();
        if (pid == 0)
                exec_acceptor(ap->program_fd, ap->path, pair[1], status[1]);
        if (r == 0 && pid < 0)
                r = -errno;
        safe_close(pair[1]);
        safe_close(status[1]);
        if (r == 0)
                r = wait_for_exec(pid, status[0]);
        safe_close(status[0]);
        if (r < 0) {
                safe_close(pair[0]);
                return r;
        }
        ap->pid = pid;
        ap->control_fd = pair[0];
        ap->out_blocked = false;
        return pid;
}

void acceptor_process_gone(struct acceptor_process *ap) {
        ap->pid = 0;
        ap->control_fd = safe_close(ap->control_fd);
        control_queue_clear(&ap->out);
        free(ap->backlog);
        ap->backlog = NULL;
        ap->n_backlog = ap->max_backlog = 0;
        ap->out_blocked = false;
}

static int add_to_backlog(struct acceptor_process *ap, const struct control_record *record) {
        if (ap->n_backlog == ap->max_backlog) {
                size_t max = ap->max_backlog ? 2 * ap->max_backlog : CONTROL_QUEUE_MAX;
                struct control_record *b = reallocarray(ap->backlog, max, sizeof *b);
                if (!b)
                        return -ENOMEM;
                ap->backlog = b;
                ap->max_backlog = max;
        }
        ap->backlog[ap->n_backlog++] = *record;
        return 0;
}

int acceptor_process_queue(struct acceptor_process *ap, const struct control_record *record,
                           int fd) {
        /* In order: nothing goes ahead of the backlog. */
        if (ap->n_backlog == 0 && control_queue_add(&ap->out, record, fd) == 0)
                return 0;
        if (fd >= 0)
                return -ENOBUFS;
        return add_to_backlog(ap, record);
}

bool acceptor_process_has_room(struct acceptor_process *ap, size_t n) {
        if (ap->out.n + n > CONTROL_QUEUE_MAX || ap->n_backlog > 0)
                (void) acceptor_process_flush(ap);
        return ap->n_backlog == 0 && ap->out.n + n <= CONTROL_QUEUE_MAX;
}

/* Moves what fits of the backlog into the queue. */
static void refill(struct acceptor_process *ap) {
        size_t n = 0;
        while (n < ap->n_backlog && control_queue_add(&ap->out, &ap->backlog[n], -1) == 0)
                n++;
        memmove(ap->backlog, ap->backlog + n, sizeof ap->backlog[0] * (ap->n_backlog - n));
        ap->n_backlog -= n;
}

int acceptor_process_flush(struct acceptor_process *ap) {
        if (ap->control_fd < 0) {
                control_queue_clear(&ap->out);
                ap->n_backlog = 0;
                return 0;
        }
        for (;;) {
                int r = control_queue_send(ap->control_fd, &ap->out);
                ap->out_blocked = r == -EAGAIN;
                if (r < 0 || ap->n_backlog == 0)
                        return r;
                refill(ap);
        }
}
