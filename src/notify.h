/* What echod tells systemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1. The
 * status text and its throttle are pure functions; the rest sends. Outside
 * systemd (no NOTIFY_SOCKET) every send is a cheap no-op. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

#define STATUS_INTERVAL_USEC USEC_PER_SEC
#define STATUS_TEXT_MAX 128

/* "3 active, 1042 total connections", with ", stopping" while draining. */
void status_format(char *buf, size_t size, unsigned n_active, uint64_t n_total, bool stopping);

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
