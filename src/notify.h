/* What echod tells systemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1. The
 * status text and its throttle are pure functions; the rest sends. Outside
 * systemd (no NOTIFY_SOCKET) every send is a cheap no-op. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

#define STATUS_INTERVAL_USEC USEC_PER_SEC
#define STATUS_TEXT_MAX 256

/* The numbers STATUS= reports. */
struct status {
        unsigned n_active;
        uint64_t n_total;
        uint64_t n_refused;             /* closed at once by the per-source limit */
        bool datagrams;                 /* UDP is served: report its counts */
        uint64_t datagrams_echoed;
        uint64_t datagrams_dropped;
        bool stopping;
};

/* "3 active, 1042 total connections", then ", 2 refused" once any was,
 * ", 10 datagrams echoed, 1 dropped" when UDP is served, ", stopping". */
void status_format(char *buf, size_t size, const struct status *st);

/* A changed status goes out at most once per STATUS_INTERVAL_USEC: returns
 * when the next one may be sent, given the last was sent at @last_usec. */
usec_t status_next_usec(usec_t last_usec);

int notify_ready(const char *status);
int notify_status(const char *status);
int notify_stopping(const char *status);
int notify_watchdog(void);

/* How often to send WATCHDOG=1: half the interval systemd asked for, or 0
 * when it asked for none. */
usec_t notify_watchdog_period(void);
