/* Parsing and printing of socket addresses; see address.h. */
#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Accepts decimal 1..65535 and nothing else: no sign, no spaces, no "0x". */
static int port_parse(const char *text, uint16_t *ret) {
        if (*text == '\0' || strspn(text, "0123456789") != strlen(text))
                return -EINVAL;
        if (strlen(text) > 5)
                return -ERANGE;
        unsigned long port = strtoul(text, NULL, 10);
        if (port < 1 || port > 65535)
                return -ERANGE;
        *ret = (uint16_t) port;
        return 0;
}

static int parse_unix(const char *path, struct address *ret) {
        size_t n = strlen(path);
        if (n >= sizeof ret->un.sun_path)
                return -ENAMETOOLONG;
        memset(ret, 0, sizeof *ret);
        ret->un.sun_family = AF_UNIX;
        memcpy(ret->un.sun_path, path, n + 1);
        ret->len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

static int parse_port_only(const char *text, struct address *ret) {
        uint16_t port;
        int r = port_parse(text, &port);
        if (r < 0)
                return r;
        memset(ret, 0, sizeof *ret);
        ret->in6.sin6_family = AF_INET6;
        ret->in6.sin6_addr = in6addr_any;
        ret->in6.sin6_port = htons(port);
        ret->len = sizeof ret->in6;
        ret->dual_stack = true;
        return 0;
}

/* HOST (@host_len bytes at @host, in @family's notation) and ":PORT" at
 * @port_text, into @ret. */
static int parse_host_port(int family, const char *host, size_t host_len, const char *port_text,
                           struct address *ret) {
        char text[INET6_ADDRSTRLEN];
        struct address a;
        uint16_t port;

        if (host_len == 0 || host_len >= sizeof text || port_text[0] != ':')
                return -EINVAL;
        memcpy(text, host, host_len);
        text[host_len] = '\0';
        memset(&a, 0, sizeof a);
        void *addr = family == AF_INET6 ? (void *) &a.in6.sin6_addr : (void *) &a.in.sin_addr;
        if (inet_pton(family, text, addr) != 1)
                return -EINVAL;
        int r = port_parse(port_text + 1, &port);
        if (r < 0)
                return r;
        if (family == AF_INET6) {
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.len = sizeof a.in6;
        } else {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(port);
                a.len = sizeof a.in;
        }
        *ret = a;
        return 0;
}

/* "[V6]:PORT": the brackets are required, as in systemd, so that the last
 * colon is never mistaken for part of the address. */
static int parse_ipv6(const char *text, struct address *ret) {
        const char *close = strchr(text, ']');
        if (!close)
                return -EINVAL;
        return parse_host_port(AF_INET6, text + 1, (size_t) (close - text - 1), close + 1, ret);
}

static int parse_ipv4(const char *text, struct address *ret) {
        const char *colon = strrchr(text, ':');
        return parse_host_port(AF_INET, text, (size_t) (colon - text), colon, ret);
}

int address_parse(const char *text, struct address *ret) {
        if (!text || *text == '\0')
                return -EINVAL;
        if (text[0] == '/')
                return parse_unix(text, ret);
        if (text[0] == '[')
                return parse_ipv6(text, ret);
        if (!strchr(text, ':'))
                return parse_port_only(text, ret);
        return parse_ipv4(text, ret);
}

const char *address_strerror(int r) {
        switch (r) {
        case -ERANGE:
                return "port must be 1..65535";
        case -ENAMETOOLONG:
                return "socket path too long";
        default:
                return "expected PORT, A.B.C.D:PORT, [IPV6]:PORT or /PATH";
        }
}

socklen_t address_unmap_ipv4(const struct sockaddr *sa, socklen_t len,
                             struct sockaddr_storage *ret) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

        if (sa->sa_family != AF_INET6 || len < (socklen_t) sizeof *in6 ||
            !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                memcpy(ret, sa, len < sizeof *ret ? len : sizeof *ret);
                return len;
        }
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = in6->sin6_port };
        memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], sizeof in.sin_addr);
        memset(ret, 0, sizeof *ret);
        memcpy(ret, &in, sizeof in);
        return sizeof in;
}

char *address_format_host(const struct sockaddr *sa, socklen_t len, char *buf) {
        const struct sockaddr_un *un = (const struct sockaddr_un *) sa;

        switch (sa->sa_family) {
        case AF_INET:
                inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf,
                          ADDRESS_TEXT_MAX);
                break;
        case AF_INET6:
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, buf,
                          ADDRESS_TEXT_MAX);
                break;
        case AF_UNIX:
                /* Accepted AF_UNIX peers are usually unnamed; abstract names start with NUL. */
                if (len <= offsetof(struct sockaddr_un, sun_path) || un->sun_path[0] == '\0')
                        snprintf(buf, ADDRESS_TEXT_MAX, "unix");
                else
                        snprintf(buf, ADDRESS_TEXT_MAX, "%.*s",
                                 (int) (len - offsetof(struct sockaddr_un, sun_path)),
                                 un->sun_path);
                break;
        default:
                snprintf(buf, ADDRESS_TEXT_MAX, "family-%d", sa->sa_family);
        }
        return buf;
}

unsigned address_port(const struct sockaddr *sa) {
        if (sa->sa_family == AF_INET)
                return ntohs(((const struct sockaddr_in *) sa)->sin_port);
        if (sa->sa_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *) sa)->sin6_port);
        return 0;
}

char *address_format(const struct sockaddr *sa, socklen_t len, char *buf) {
        char host[INET6_ADDRSTRLEN];

        switch (sa->sa_family) {
        case AF_INET:
                inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, host,
                          sizeof host);
                snprintf(buf, ADDRESS_TEXT_MAX, "%s:%u", host, address_port(sa));
                return buf;
        case AF_INET6:
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, host,
                          sizeof host);
                snprintf(buf, ADDRESS_TEXT_MAX, "[%s]:%u", host, address_port(sa));
                return buf;
        default:
                return address_format_host(sa, len, buf);
        }
}
