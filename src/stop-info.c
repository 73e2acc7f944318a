/* Reading what ExecStop= says of a stop; see stop-info.h. */
#include "stop-info.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"

/* One "KEY=value" line, its newline cut. Unknown keys are for later
 * versions of the unit: skipped. */
static int parse_line(char *line, struct stop_info *info) {
        char *value = strchr(line, '=');

        if (!value)
                return -EBADMSG;
        *value++ = '\0';
        if (strcmp(line, "JOB") == 0)
                info->restart = strcmp(value, "restart") == 0;
        else if (strcmp(line, "FDSTORE") == 0 && *value != '\0') {
                int n = fd_store_parse_size(value);
                if (n < 0)
                        return -EBADMSG;
                info->fd_store_max = n;
        }
        return 0;
}

int stop_info_read(const char *dir, struct stop_info *ret) {
        char path[PATH_MAX];
        char *line = NULL;
        size_t size = 0;
        int r = 0;

        *ret = (struct stop_info) { .restart = false, .fd_store_max = -1 };
        if (!dir || !*dir)
                return -ENOENT;
        /* $RUNTIME_DIRECTORY lists one directory per RuntimeDirectory=. */
        size_t len = strcspn(dir, ":");
        if (snprintf(path, sizeof path, "%.*s/" STOP_INFO_FILE, (int) len, dir) >=
            (int) sizeof path)
                return -ENAMETOOLONG;
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        (void) unlink(path);
        struct stop_info info = *ret;
        while (r == 0 && getline(&line, &size, f) >= 0) {
                line[strcspn(line, "\n")] = '\0';
                if (*line)
                        r = parse_line(line, &info);
        }
        free(line);
        fclose(f);
        if (r == 0)
                *ret = info;
        return r;
}
