/* See load-report.h. */
#include "load-report.h"

#include <stdio.h>
#include <string.h>

void errors_note(struct errors *e, const char *what, int r) {
        if (e->n++ == 0) {
                e->first_what = what;
                e->first_error = r;
        }
}

void report_latencies(struct samples *s) {
        printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
               samples_quantile_usec(s, 500), samples_quantile_usec(s, 900),
               samples_quantile_usec(s, 990), samples_quantile_usec(s, 999),
               samples_quantile_usec(s, 1000));
}

void report_errors(const struct errors *e) {
        printf(" errors=%llu\n", (unsigned long long) e->n);
        fflush(stdout);
        if (e->n > 0)
                fprintf(stderr, "echo-load: %llu error(s), the first: %s: %s\n",
                        (unsigned long long) e->n, e->first_what, strerror(-e->first_error));
}

int report_failure(const struct load_options *o, const char *what, int r) {
        printf("RESULT server=%s mode=%s failed=%s errors=1\n", o->server, o->mode, what);
        fflush(stdout);
        fprintf(stderr, "echo-load: %s: %s\n", what, strerror(-r));
        return -1;
}
