/* Reading processes from /proc; see proc.h. */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parent PID in /proc/@pid/stat: "pid (comm) state ppid ...", where
 * comm may hold spaces and parentheses, so the fields are counted from the
 * last ')'. Returns it, or -1. */
static pid_t parent_of(pid_t pid) {
        char path[64], line[512];
        char state;
        int ppid;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        char *got = fgets(line, sizeof line, f);
        fclose(f);
        const char *end = got ? strrchr(line, ')') : NULL;
        if (!end || sscanf(end + 1, " %c %d", &state, &ppid) != 2)
                return -1;
        return (pid_t) ppid;
}

int proc_children(pid_t parent, void (*fn)(pid_t pid, void *userdata), void *userdata) {
        DIR *d = opendir("/proc");
        struct dirent *e;

        if (!d)
                return -errno;
        while ((e = readdir(d))) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end != '\0' || pid <= 0)
                        continue;
                if (parent_of((pid_t) pid) == parent)
                        fn((pid_t) pid, userdata);
        }
        closedir(d);
        return 0;
}
