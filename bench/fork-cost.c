/* fork-cost: what one fork + _exit + waitpid costs this very binary, so the
 * same source built several ways (dynamic with libc alone, as echod-acceptor
 * is; dynamic with libsystemd and its dependency chain mapped, as echod is;
 * static-pie) shows what the mappings cost.
 * Prints "RESULT fork_exit_wait_us=... vmas=..." : the median of rounds;
 * vmas counts the mappings a child gets. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define fork_one() fork()
#ifdef WITH_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define ROUNDS 7

static double now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

/* In a child: the mappings fork gave it. */
static int count_vmas(void) {
        char line[512];
        int n = 0;
        FILE *f = fopen("/proc/self/maps", "re");
        while (f && fgets(line, sizeof line, f))
                n++;
        if (f)
                fclose(f);
        return n;
}

static int compare_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        int n = argc > 1 ? atoi(argv[1]) : 1000;
        double rounds[ROUNDS];
        int status;

#ifdef WITH_LIBSYSTEMD
        (void) sd_booted();     /* keeps the library, and its chain, mapped */
#endif
        for (int r = 0; r < ROUNDS; r++) {
                double start = now_usec();
                for (int i = 0; i < n; i++) {
                        pid_t pid = fork_one();
                        if (pid == 0)
                                _exit(0);
                        if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
                                perror("fork-cost");
                                return 1;
                        }
                }
                rounds[r] = (now_usec() - start) / n;
        }
        qsort(rounds, ROUNDS, sizeof rounds[0], compare_double);
        pid_t pid = fork_one();
        if (pid == 0)
                _exit(count_vmas() & 0xff);
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
                perror("fork-cost");
                return 1;
        }
        printf("RESULT fork_exit_wait_us=%.1f min_us=%.1f vmas=%d\n", rounds[ROUNDS / 2],
               rounds[0], WEXITSTATUS(status));
        return 0;
}
