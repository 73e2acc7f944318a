/* without-syscall NAME[:EPERM] COMMAND...: runs COMMAND where the system
 * call NAME (close_range or execveat) fails with ENOSYS, as on an older
 * kernel or under an emulator that lacks it (qemu-user before 8.0 has no
 * execveat), or with EPERM, as under a seccomp filter that refuses it (the
 * usual action of container runtimes' and systemd's); everything else is
 * allowed. A seccomp filter, inherited by COMMAND and everything it forks. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
        const char *name;
        long nr;
} known[] = {
        { "close_range", SYS_close_range },
        { "execveat", SYS_execveat },
};

static long syscall_number(const char *name) {
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                if (strcmp(name, known[i].name) == 0)
                        return known[i].nr;
        return -1;
}

int main(int argc, char *argv[]) {
        char *name = argc >= 3 ? argv[1] : NULL;
        char *how = name ? strchr(name, ':') : NULL;
        int error = ENOSYS;

        if (how) {
                *how++ = '\0';
                error = strcmp(how, "EPERM") == 0 ? EPERM : -1;
        }
        long nr = name ? syscall_number(name) : -1;
        if (nr < 0 || error < 0) {
                fputs("usage: without-syscall close_range|execveat[:EPERM] COMMAND...\n", stderr);
                return 2;
        }
        /* The helper only ever runs native binaries: the syscall number is
         * this architecture's, so the filter need not check seccomp_data's
         * arch. */
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) nr, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned) error & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog program = { .len = sizeof filter / sizeof filter[0], .filter = filter };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0) {
                perror("without-syscall: seccomp");
                return 1;
        }
        execvp(argv[2], argv + 2);
        perror("without-syscall: exec");
        return 127;
}
