/* The RESULT line's common parts, and how errors are counted: every error
 * counts, the first of each run is told on stderr with its cause. */
#pragma once

#include "load.h"

struct errors {
        uint64_t n;
        const char *first_what;
        int first_error;
};

void errors_note(struct errors *e, const char *what, int r);

/* Appends " p50_us=... p90_us=... p99_us=... p999_us=... max_us=..." */
void report_latencies(struct samples *s);

/* Appends " errors=N" and ends the line; tells the first error on stderr. */
void report_errors(const struct errors *e);

/* A run that could not start: prints "RESULT ... failed=WHAT errors=1" so
 * the driver still gets its line, and returns -1. */
int report_failure(const struct load_options *o, const char *what, int r);
