/* Fuzz target for options_parse(): the input, split at NUL bytes, is the
 * argument list. No crash, and a failure always leaves exactly one line of
 * explanation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARGS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct options opts;
        char copy[4096], error[256];
        char *argv[ARGS_MAX + 2] = { (char *) "echod" };
        int argc = 1;

        if (size >= sizeof copy)
                return 0;
        memcpy(copy, data, size);
        copy[size] = '\0';
        for (char *p = copy; p < copy + size && argc <= ARGS_MAX; p += strlen(p) + 1)
                argv[argc++] = p;
        argv[argc] = NULL;

        error[0] = '\0';
        int r = options_parse(argc, argv, &opts, error, sizeof error);
        if (r < 0 && (error[0] == '\0' || strchr(error, '\n')))
                abort();
        if (r >= 0 && (opts.max_connections < 1 || opts.n_listen > OPTIONS_LISTEN_MAX))
                abort();
        return 0;
}
