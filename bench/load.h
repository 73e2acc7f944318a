/* echo-load: what its modes share. Each mode is one file (load-crr.c,
 * load-rr.c, load-stream.c, load-hold.c) that runs bounded in time, checks
 * every byte it gets back and prints one RESULT line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#define NSEC_PER_USEC 1000ull
#define NSEC_PER_MSEC 1000000ull
#define NSEC_PER_SEC 1000000000ull

#define SOURCES_MAX 250

struct load_options {
        const char *mode;
        const char *server;             /* a label for the RESULT line */
        struct sockaddr_storage target;
        socklen_t target_len;
        unsigned concurrency;           /* crr: connections in flight */
        unsigned n_connections;         /* hold: connections to open and keep */
        unsigned n_sources;             /* source addresses 127.0.0.1.. to cycle through */
        uint64_t duration_nsec;         /* crr, rr, stream: how long to keep going */
        uint64_t timeout_nsec;          /* any one operation; also bounds the end */
        size_t message_size;            /* crr, rr: bytes per message */
        pid_t server_pid;               /* hold: the root of the server's process tree */
};

/* Monotonic time in nanoseconds. */
uint64_t now_nsec(void);

/* Parses a numeric loopback address with its port, "127.0.0.1:7" or
 * "[::1]:7", into @ret/@ret_len. Anything but loopback is refused (-EINVAL):
 * this program only ever loads servers on this machine. */
int target_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len);

/* A non-blocking (if @nonblocking) stream socket connecting to the target,
 * bound first to source address number @source (127.0.0.1 + @source for
 * IPv4; ignored for IPv6). Returns the fd (connect may still be in
 * progress: -EINPROGRESS is not reported) or -errno. */
int connect_start(const struct load_options *o, unsigned source, bool nonblocking);

/* The message a connection sends as its @seq-th: every byte depends on both,
 * so an echo of another connection's bytes, or of old bytes, is caught. */
void message_fill(uint8_t *buf, size_t size, uint64_t seq);
bool message_check(const uint8_t *buf, size_t size, uint64_t seq);

/* Latencies in nanoseconds, grown on demand up to a fixed bound. */
struct samples {
        uint64_t *nsec;
        size_t n, allocated;
};
void samples_add(struct samples *s, uint64_t nsec);
/* The @permille-th quantile (500 = median) in microseconds; sorts @s. */
double samples_quantile_usec(struct samples *s, unsigned permille);
void samples_free(struct samples *s);

/* Raises RLIMIT_NOFILE (soft, and hard when allowed) to at least @n. */
int nofile_raise(unsigned n);

/* Writes all @size bytes or fails; reads exactly @size bytes or fails
 * (-ECONNRESET on a premature end). For blocking sockets with timeouts. */
int write_all(int fd, const void *buf, size_t size);
int read_exactly(int fd, void *buf, size_t size);

/* Sets SO_RCVTIMEO and SO_SNDTIMEO, so blocking calls stay bounded. */
int socket_set_timeouts(int fd, uint64_t nsec);

int load_crr(const struct load_options *o);
int load_rr(const struct load_options *o);
int load_stream(const struct load_options *o);
int load_hold(const struct load_options *o);
