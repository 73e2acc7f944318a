/* sd_notify() messages; see notify.h. */
#include "notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

void status_format(char *buf, size_t size, unsigned n_active, uint64_t n_total, bool stopping) {
        snprintf(buf, size, "%u active, %" PRIu64 " total connections%s", n_active, n_total,
                 stopping ? ", stopping" : "");
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
