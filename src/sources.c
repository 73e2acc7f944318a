/* Connection counts per source address; see sources.h. Linear probing with
 * backward-shift deletion, like children.c, keyed by 16 bytes. */
#include "sources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parent-only.h"
#include "probe.h"

bool source_key(const struct sockaddr *sa, struct in6_addr *ret) {
        if (sa->sa_family == AF_INET6) {
                *ret = ((const struct sockaddr_in6 *) sa)->sin6_addr;
                return true;
        }
        if (sa->sa_family == AF_INET) {
                memset(ret, 0, sizeof *ret);
                ret->s6_addr[10] = ret->s6_addr[11] = 0xff;
                memcpy(&ret->s6_addr[12], &((const struct sockaddr_in *) sa)->sin_addr, 4);
                return true;
        }
        return false;
}

static size_t home_of(const struct sources *s, const struct in6_addr *addr) {
        /* FNV-1a over the 16 bytes. */
        uint64_t h = UINT64_C(1469598103934665603);
        for (size_t i = 0; i < sizeof addr->s6_addr; i++)
                h = (h ^ addr->s6_addr[i]) * UINT64_C(1099511628211);
        return (size_t) h & (s->n_slots - 1);
}

static size_t next(const struct sources *s, size_t i) {
        return (i + 1) & (s->n_slots - 1);
}

int sources_init(struct sources *s, size_t capacity) {
        size_t n_slots = probe_table_size(capacity);
        s->slots = parent_only_calloc(n_slots, sizeof *s->slots);
        if (!s->slots)
                return -ENOMEM;
        s->n_slots = n_slots;
        s->n = 0;
        return 0;
}

void sources_free(struct sources *s) {
        parent_only_free(s->slots, s->n_slots, sizeof *s->slots);
        *s = (struct sources) { .slots = NULL };
}

static size_t find(const struct sources *s, const struct in6_addr *addr) {
        size_t i = home_of(s, addr);
        while (s->slots[i].count != 0 && memcmp(&s->slots[i].addr, addr, sizeof *addr) != 0)
                i = next(s, i);
        return i;
}

unsigned sources_count(const struct sources *s, const struct in6_addr *addr) {
        return s->slots ? s->slots[find(s, addr)].count : 0;
}

int sources_add(struct sources *s, const struct in6_addr *addr) {
        size_t i = find(s, addr);
        if (s->slots[i].count == 0) {
                if (s->n + 1 > s->n_slots / 2)
                        return -ENOSPC;
                s->slots[i].addr = *addr;
                s->n++;
        }
        s->slots[i].count++;
        return 0;
}

void sources_remove(struct sources *s, const struct in6_addr *addr) {
        size_t hole = find(s, addr);
        if (s->slots[hole].count == 0 || --s->slots[hole].count > 0)
                return;
        s->n--;
        /* The last connection of this source: empty its slot, then move back
         * the later entries of the run that could not be found across it. */
        for (size_t i = next(s, hole); s->slots[i].count != 0; i = next(s, i)) {
                if (probe_stays_reachable(hole, i, home_of(s, &s->slots[i].addr)))
                        continue;
                s->slots[hole] = s->slots[i];
                s->slots[i].count = 0;
                hole = i;
        }
}
