/* What a stop is: echod learns it from echo.service's ExecStop=, which runs
 * before systemd's SIGTERM and writes, as root, what echod cannot ask PID 1
 * itself (it runs as a dynamic user, whom the system bus does not serve):
 * the job that stops the unit, and the fd store's size PID 1 enforces now
 * (an administrator may have changed FileDescriptorStoreMax= and reloaded
 * since echod started). See echod-unit-info.
 *
 * Only a restart keeps connections: at a plain stop systemd empties the
 * store once the service is gone, so a connection handed over would be
 * reset, its unechoed bytes lost. A SIGTERM nobody explained (no file: kill,
 * systemctl kill, another unit) is taken for a plain stop, the safe guess. */
#pragma once

#include <stdbool.h>

/* The file ExecStop= writes in $RUNTIME_DIRECTORY: lines JOB=type (restart,
 * stop, ...; empty when no job stops the unit) and FDSTORE=size. */
#define STOP_INFO_FILE "stop"

struct stop_info {
        bool restart;           /* a restart job stops the unit */
        int fd_store_max;       /* FileDescriptorStoreMax= now; -1: not said */
};

/* Reads @dir/STOP_INFO_FILE (@dir may be NULL: no runtime directory) and
 * removes it, so that it explains this stop only. Fills @ret in every case,
 * as a plain stop where the file says nothing. Returns 0, -ENOENT when
 * there is no file, or -errno (-EBADMSG: a line it does not understand). */
int stop_info_read(const char *dir, struct stop_info *ret);
