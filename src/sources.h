/* Live connections per client address, for --max-connections-per-source. An
 * open-addressing hash map from address to count; IPv4 addresses are keyed
 * in their IPv4-mapped IPv6 form, so both spellings of a client count once. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct source_slot {
        struct in6_addr addr;
        unsigned count;         /* 0: empty */
};

struct sources {
        struct source_slot *slots;
        size_t n_slots;         /* a power of two, at least twice the capacity */
        size_t n;               /* distinct sources */
};

/* The key of @sa, or false for a peer without an IP address (AF_UNIX),
 * which no per-source limit applies to. Pure. */
bool source_key(const struct sockaddr *sa, struct in6_addr *ret);

int sources_init(struct sources *s, size_t capacity);
void sources_free(struct sources *s);

unsigned sources_count(const struct sources *s, const struct in6_addr *addr);
/* Returns 0, or -ENOSPC when more distinct sources than the capacity. */
int sources_add(struct sources *s, const struct in6_addr *addr);
void sources_remove(struct sources *s, const struct in6_addr *addr);
