/* no-close-range COMMAND...: runs COMMAND where close_range(2) fails with
 * ENOSYS, as on a kernel before 5.9 or under a seccomp filter that refuses
 * it; everything else is allowed. A seccomp filter, inherited by COMMAND and
 * everything it forks. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        /* The helper only ever runs native binaries: the syscall number is
         * this architecture's, so the filter need not check seccomp_data's
         * arch. */
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog program = { .len = sizeof filter / sizeof filter[0], .filter = filter };

        if (argc < 2) {
                fputs("usage: no-close-range COMMAND...\n", stderr);
                return 2;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0) {
                perror("no-close-range: seccomp");
                return 1;
        }
        execvp(argv[1], argv + 1);
        perror("no-close-range: exec");
        return 127;
}
