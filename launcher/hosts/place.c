/* The placement decision: see place.h. No I/O, no clock. */
#include "place.h"

static bool place_fits(const struct place_host *h, uint64_t memory)
{
	if (!h->usable)
		return false;
	if (h->count_max > 0 && h->count + 1 > h->count_max)
		return false;
	return h->mem_max == 0 || h->mem_used + memory <= h->mem_max;
}

/* The share of H left free after a boot of MEMORY bytes, 0 to 1. */
static double place_room(const struct place_host *h, uint64_t memory)
{
	double mem = 1.0, slots = 1.0;

	if (h->mem_max > 0)
		mem = (double)(h->mem_max - h->mem_used - memory) / (double)h->mem_max;
	if (h->count_max > 0)
		slots = (double)(h->count_max - h->count - 1) / (double)h->count_max;
	return mem < slots ? mem : slots;
}

int place_choose(const struct place_host *h, size_t n, uint64_t memory, int last)
{
	int best = -1;
	double best_room = -1.0, room;

	if (last >= 0 && (size_t)last < n && place_fits(&h[last], memory))
		return last;
	for (size_t i = 0; i < n; i++) {
		if (!place_fits(&h[i], memory))
			continue;
		room = place_room(&h[i], memory);
		if (best < 0 || room > best_room ||
		    (room == best_room && h[i].count < h[best].count)) {
			best = (int)i;
			best_room = room;
		}
	}
	return best;
}
