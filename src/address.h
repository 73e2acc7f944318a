/* Socket addresses as systemd's ListenStream= spells them: "7", "1.2.3.4:7",
 * "[::1]:7", "/run/echo.sock". Pure: no sockets, no output. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

struct address {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_un un;
                struct sockaddr_storage storage;
        };
        socklen_t len;
        /* A bare PORT means "every address, IPv4 and IPv6", as in systemd:
         * the socket is [::]:PORT with IPV6_V6ONLY turned off. */
        bool dual_stack;
};

/* Longest text address_format() writes, NUL included: a socket path. */
#define ADDRESS_TEXT_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) + 1)

/* Parses @text into @ret. Returns 0, or -EINVAL when @text is none of the
 * accepted forms, -ERANGE for a port outside 1..65535, -ENAMETOOLONG for a
 * socket path that does not fit sockaddr_un. */
int address_parse(const char *text, struct address *ret);

/* What a negative address_parse() result means, for an error message. */
const char *address_strerror(int r);

/* Writes @sa as "1.2.3.4:7", "[::1]:7" or the socket path ("unix" when the
 * peer is unnamed) into @buf of ADDRESS_TEXT_MAX bytes. Returns @buf. */
char *address_format(const struct sockaddr *sa, socklen_t len, char *buf);

/* A client of a dual-stack socket arrives as [::ffff:A.B.C.D]:PORT. Writes
 * the plain IPv4 form of such an address to @ret, any other address as it
 * is, and returns its length: logs then name the client as it knows itself. */
socklen_t address_unmap_ipv4(const struct sockaddr *sa, socklen_t len,
                             struct sockaddr_storage *ret);

/* The host part alone ("1.2.3.4", "::1", the path) and the port (0 for
 * AF_UNIX), as the journal's REMOTE_ADDR= and REMOTE_PORT= fields want them. */
char *address_format_host(const struct sockaddr *sa, socklen_t len, char *buf);
unsigned address_port(const struct sockaddr *sa);
