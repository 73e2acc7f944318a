/* sd_notify() messages; see notify.h. */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

void status_format(char *buf, size_t size, const struct status *st) {
        char refused[48] = "", datagrams[96] = "";

        if (st->n_refused > 0)
                snprintf(refused, sizeof refused, ", %" PRIu64 " refused", st->n_refused);
        if (st->datagrams)
                snprintf(datagrams, sizeof datagrams,
                         ", %" PRIu64 " datagrams echoed, %" PRIu64 " dropped",
                         st->datagrams_echoed, st->datagrams_dropped);
        snprintf(buf, size, "%u active, %" PRIu64 " total connections%s%s%s", st->n_active,
                 st->n_total, refused, datagrams, st->stopping ? ", stopping" : "");
}

usec_t status_next_usec(usec_t last_usec) {
        return last_usec == 0 ? 0 : last_usec + STATUS_INTERVAL_USEC;
}

/* 0 = do not unset the environment: children unset NOTIFY_SOCKET themselves. */
int notify_ready(const char *status) {
        return sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

int notify_status(const char *status) {
        return sd_notifyf(0, "STATUS=%s", status);
}

int notify_stopping(const char *status) {
        return sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

int notify_watchdog(void) {
        return sd_notify(0, "WATCHDOG=1");
}

usec_t notify_watchdog_period(void) {
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0)
                return 0;
        return usec / 2;
}

unsigned notify_fd_store_max(void) {
        const char *max = getenv("FDSTORE");
        if (!getenv("NOTIFY_SOCKET") || !max || strspn(max, "0123456789") != strlen(max))
                return 0;
        unsigned long n = strtoul(max, NULL, 10);
        return n > UINT32_MAX ? UINT32_MAX : (unsigned) n;
}

void fd_store_name(char *buf, size_t size, int pid, uint64_t seq) {
        snprintf(buf, size, FD_STORE_NAME_PREFIX "%d-%" PRIu64, pid, seq);
}

bool fd_store_name_is_connection(const char *name) {
        return name && strncmp(name, FD_STORE_NAME_PREFIX, strlen(FD_STORE_NAME_PREFIX)) == 0;
}

uint64_t fd_store_name_seq(const char *name, int pid) {
        char prefix[FD_STORE_NAME_MAX];
        char *end;

        snprintf(prefix, sizeof prefix, FD_STORE_NAME_PREFIX "%d-", pid);
        if (!name || strncmp(name, prefix, strlen(prefix)) != 0)
                return 0;
        const char *digits = name + strlen(prefix);
        if (*digits < '0' || *digits > '9')
                return 0;
        errno = 0;
        unsigned long long seq = strtoull(digits, &end, 10);
        return errno == 0 && *end == '\0' ? (uint64_t) seq : 0;
}

int notify_fd_store(const int *fds, size_t n_fds, const char *name) {
        char message[sizeof "FDSTORE=1\nFDNAME=" + FD_STORE_NAME_MAX];
        snprintf(message, sizeof message, "FDSTORE=1\nFDNAME=%s", name);
        return sd_pid_notify_with_fds(0, 0, message, fds, (unsigned) n_fds);
}
