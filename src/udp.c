/* Datagram echo; see udp.h. */
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/uio.h>


/* 65535 minus the 8-byte UDP header is the largest datagram IPv6 carries
 * without jumbograms, and more than IPv4's 65507: every datagram fits. */
#define DATAGRAM_MAX 65536

static bool ipv4_is_unsafe(in_addr_t addr_be) {
        uint32_t a = ntohl(addr_be);
        return a == INADDR_ANY || a == INADDR_BROADCAST || IN_MULTICAST(a);
}

bool datagram_source_is_unsafe(const struct sockaddr *sa, socklen_t len) {
        if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                return ntohs(in->sin_port) < 1024 || ipv4_is_unsafe(in->sin_addr.s_addr);
        }
        if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                const struct in6_addr *a = &in6->sin6_addr;
                if (ntohs(in6->sin6_port) < 1024)
                        return true;
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        in_addr_t v4;
                        memcpy(&v4, &a->s6_addr[12], sizeof v4);
                        return ipv4_is_unsafe(v4);
                }
                return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_MULTICAST(a);
        }
        return true;    /* no family we serve: never answer */
}

static void note_drop(struct udp_counters *counters, struct udp_drop *drop,
                      const struct sockaddr_storage *source, socklen_t len, const char *reason) {
        counters->dropped++;
        memcpy(&drop->source, source, len);     /* recvmsg() filled @len bytes, no more */
        drop->source_len = len;
        drop->reason = reason;
}

/* One datagram: read it, judge its source, send it back whole. Returns 1
 * when one was handled, 0 when none was waiting, -errno on socket error. */
static int echo_one(int fd, char *buf, struct udp_counters *counters, struct udp_drop *drop) {
        struct sockaddr_storage source = { 0 };        /* cppcheck cannot see recvmsg() fill it */
        struct iovec iov = { .iov_base = buf, .iov_len = DATAGRAM_MAX };
        struct msghdr msg = { .msg_name = &source, .msg_namelen = sizeof source,
                              .msg_iov = &iov, .msg_iovlen = 1 };

        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                /* ICMP errors from an earlier reply surface here; they are
                 * about that datagram, not this socket. */
                return errno == ECONNREFUSED || errno == EHOSTUNREACH ||
                       errno == ENETUNREACH ? 1 : -errno;
        }
        if (msg.msg_flags & MSG_TRUNC) {
                note_drop(counters, drop, &source, msg.msg_namelen, "truncated");
                return 1;
        }
        if (datagram_source_is_unsafe((struct sockaddr *) &source, msg.msg_namelen)) {
                note_drop(counters, drop, &source, msg.msg_namelen, "unsafe source");
                return 1;
        }
        if (sendto(fd, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &source,
                   msg.msg_namelen) != n) {
                note_drop(counters, drop, &source, msg.msg_namelen, "reply not sent");
                return 1;
        }
        counters->echoed++;
        return 1;
}

int udp_echo_ready(int fd, unsigned max, struct udp_counters *counters, struct udp_drop *drop) {
        static char buf[DATAGRAM_MAX];

        drop->reason = NULL;
        for (unsigned i = 0; i < max; i++) {
                int r = echo_one(fd, buf, counters, drop);
                if (r <= 0)
                        return r;
        }
        return 0;
}
