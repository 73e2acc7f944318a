/* The command line, parsed into struct options. Pure: no sockets, never
 * prints, never exits; the caller decides what a failure means. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

#define OPTIONS_LISTEN_MAX 64

enum log_level {
        LOG_LEVEL_ERR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_NOTICE,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

struct listen_option {
        const char *text;       /* as the user wrote it, for messages */
        struct address address;
};

struct options {
        struct listen_option listen[OPTIONS_LISTEN_MAX];
        size_t n_listen;
        struct listen_option listen_datagram[OPTIONS_LISTEN_MAX];
        size_t n_listen_datagram;
        bool inetd;
        unsigned max_connections;
        unsigned max_connections_per_source;    /* 0: no limit */
        unsigned idle_timeout_sec;      /* 0: never */
        unsigned shutdown_timeout_sec;
        enum log_level log_level;
};

enum options_action {
        OPTIONS_RUN,
        OPTIONS_HELP,
        OPTIONS_VERSION,
};

/* The bounds and defaults the man page and --help promise. */
#define MAX_CONNECTIONS_DEFAULT 1024u
#define MAX_CONNECTIONS_LIMIT 65536u
#define IDLE_TIMEOUT_DEFAULT_SEC 300u
#define SHUTDOWN_TIMEOUT_DEFAULT_SEC 10u
#define TIMEOUT_LIMIT_SEC 86400u

/* Parses @argv into @ret. Returns an enum options_action, or -EINVAL with a
 * one-line explanation naming the option in @error (of @error_size bytes). */
int options_parse(int argc, char *argv[], struct options *ret, char *error, size_t error_size);

/* The text --help prints. */
const char *options_usage(void);

/* "err", "warning", ... for a level; parses the same words. */
const char *log_level_to_string(enum log_level level);
int log_level_from_string(const char *text);
