/* Linear probing helpers shared by the two open-addressing tables
 * (children.c, sources.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The smallest power of two at least twice @capacity (16 at least): keeping
 * half the slots empty keeps probe runs short. */
static inline size_t probe_table_size(size_t capacity) {
        size_t n_slots = 16;
        while (n_slots < capacity * 2)
                n_slots *= 2;
        return n_slots;
}

/* After deleting the entry at @hole, an entry at @i whose home slot is @home
 * can stay where it is only if probing from @home still reaches it without
 * crossing the hole: @home must lie cyclically in (hole, i]. */
static inline bool probe_stays_reachable(size_t hole, size_t i, size_t home) {
        return hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
}
