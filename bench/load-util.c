/* echo-load's shared helpers; see load.h. */
#include "load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A bound on memory, not on the run: a 3 s rr run records ~300 000 samples. */
#define SAMPLES_MAX (64u * 1024 * 1024)

uint64_t now_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

static int port_parse(const char *text, in_port_t *ret) {
        char *end;
        errno = 0;
        unsigned long port = strtoul(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || port == 0 || port > 65535)
                return -EINVAL;
        *ret = htons((in_port_t) port);
        return 0;
}

static int target_parse_ipv6(const char *text, struct sockaddr_in6 *ret) {
        char host[INET6_ADDRSTRLEN];
        const char *close = strchr(text, ']');

        if (!close || close[1] != ':' || (size_t) (close - text - 1) >= sizeof host)
                return -EINVAL;
        memcpy(host, text + 1, (size_t) (close - text - 1));
        host[close - text - 1] = '\0';
        *ret = (struct sockaddr_in6) { .sin6_family = AF_INET6 };
        if (inet_pton(AF_INET6, host, &ret->sin6_addr) != 1 ||
            !IN6_IS_ADDR_LOOPBACK(&ret->sin6_addr))
                return -EINVAL;
        return port_parse(close + 2, &ret->sin6_port);
}

static int target_parse_ipv4(const char *text, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN];
        const char *colon = strrchr(text, ':');

        if (!colon || (size_t) (colon - text) >= sizeof host)
                return -EINVAL;
        memcpy(host, text, (size_t) (colon - text));
        host[colon - text] = '\0';
        *ret = (struct sockaddr_in) { .sin_family = AF_INET };
        if (inet_pton(AF_INET, host, &ret->sin_addr) != 1 ||
            (ntohl(ret->sin_addr.s_addr) >> 24) != 127)
                return -EINVAL;
        return port_parse(colon + 1, &ret->sin_port);
}

int target_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len) {
        struct sockaddr_storage ss;
        int r;

        if (text[0] == '[') {
                r = target_parse_ipv6(text, (struct sockaddr_in6 *) &ss);
                *ret_len = sizeof(struct sockaddr_in6);
        } else {
                r = target_parse_ipv4(text, (struct sockaddr_in *) &ss);
                *ret_len = sizeof(struct sockaddr_in);
        }
        if (r < 0)
                return r;
        *ret = ss;
        return 0;
}

/* Binding the source address before connect() would also pick a port then,
 * from the whole range, without knowing the destination: with
 * IP_BIND_ADDRESS_NO_PORT the port is chosen at connect() time, per
 * destination, so each source address brings a full range of ports. */
static int bind_source(int fd, unsigned source) {
        static const int on = 1;
        struct sockaddr_in sin = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK + source),
        };
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on) < 0 ||
            bind(fd, (struct sockaddr *) &sin, sizeof sin) < 0)
                return -errno;
        return 0;
}

int connect_start(const struct load_options *o, unsigned source, bool nonblocking) {
        int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
        int fd = socket(o->target.ss_family, type, 0);
        if (fd < 0)
                return -errno;
        int r = 0;
        if (o->target.ss_family == AF_INET && o->n_sources > 1)
                r = bind_source(fd, source % o->n_sources);
        if (r == 0 && connect(fd, (const struct sockaddr *) &o->target, o->target_len) < 0 &&
            errno != EINPROGRESS)
                r = -errno;
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

static uint8_t message_byte(uint64_t seq, size_t i) {
        uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
        return (uint8_t) ((x >> 29) ^ (x >> 47) ^ i);
}

void message_fill(uint8_t *buf, size_t size, uint64_t seq) {
        for (size_t i = 0; i < size; i++)
                buf[i] = message_byte(seq, i);
}

bool message_check(const uint8_t *buf, size_t size, uint64_t seq) {
        for (size_t i = 0; i < size; i++)
                if (buf[i] != message_byte(seq, i))
                        return false;
        return true;
}

void samples_add(struct samples *s, uint64_t nsec) {
        if (s->n == s->allocated) {
                size_t n = s->allocated ? s->allocated * 2 : 4096;
                if (n > SAMPLES_MAX)
                        return;         /* enough to tell the quantiles */
                uint64_t *p = realloc(s->nsec, n * sizeof *p);
                if (!p)
                        return;
                s->nsec = p;
                s->allocated = n;
        }
        s->nsec[s->n++] = nsec;
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

double samples_quantile_usec(struct samples *s, unsigned permille) {
        if (s->n == 0)
                return 0;
        qsort(s->nsec, s->n, sizeof *s->nsec, compare_u64);
        size_t i = (size_t) ((double) (s->n - 1) * permille / 1000.0 + 0.5);
        return (double) s->nsec[i] / NSEC_PER_USEC;
}

void samples_free(struct samples *s) {
        free(s->nsec);
        *s = (struct samples) { .nsec = NULL };
}

int nofile_raise(unsigned n) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur >= n)
                return 0;
        rl.rlim_cur = n;
        if (rl.rlim_max < n)
                rl.rlim_max = n;        /* root only: CAP_SYS_RESOURCE */
        return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

int write_all(int fd, const void *buf, size_t size) {
        const uint8_t *p = buf;
        while (size > 0) {
                ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
                if (n < 0)
                        return errno == EAGAIN ? -ETIMEDOUT : -errno;
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

int read_exactly(int fd, void *buf, size_t size) {
        uint8_t *p = buf;
        while (size > 0) {
                ssize_t n = read(fd, p, size);
                if (n < 0)
                        return errno == EAGAIN ? -ETIMEDOUT : -errno;
                if (n == 0)
                        return -ECONNRESET;
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

int socket_set_timeouts(int fd, uint64_t nsec) {
        struct timeval tv = {
                .tv_sec = (time_t) (nsec / NSEC_PER_SEC),
                .tv_usec = (suseconds_t) (nsec % NSEC_PER_SEC / NSEC_PER_USEC),
        };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                return -errno;
        return 0;
}
