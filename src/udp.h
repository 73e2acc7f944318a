/* Datagram echo, served in the parent's loop (no fork per datagram). An open
 * UDP echo port is a known amplification and loop vector (CVE-1999-0103,
 * CVE-2024-2169): datagram_source_is_unsafe() decides whom we never answer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* True for sources an echo must never go to: port 0 or below 1024 (another
 * service's port: chargen, another echo, DNS, NTP...), and broadcast,
 * multicast or unspecified addresses, IPv4-mapped IPv6 forms included. Pure. */
bool datagram_source_is_unsafe(const struct sockaddr *sa, socklen_t len);

struct udp_counters {
        uint64_t echoed;
        uint64_t dropped;       /* refused by the guard, truncated, or not sent */
};

/* What udp_echo_ready() saw last: the source of the last dropped datagram,
 * so that the caller can log one example. */
struct udp_drop {
        struct sockaddr_storage source;
        socklen_t source_len;
        const char *reason;     /* NULL: nothing dropped */
};

/* Echoes the datagrams waiting on non-blocking @fd, at most @max of them so
 * one busy socket cannot starve the loop. Never blocks: a reply the socket
 * cannot take now is dropped, as UDP allows. Returns 0 or -errno for a
 * socket error other than "nothing left". */
int udp_echo_ready(int fd, unsigned max, struct udp_counters *counters, struct udp_drop *drop);
