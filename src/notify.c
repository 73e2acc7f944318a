/* sd_notify() messages; see notify.h. */
#include "notify.h"

#include <inttypes.h>
#include <stdio.h>
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
