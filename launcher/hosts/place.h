/*
 * Where a boot goes among several hosts: a pure decision (place.c), tested
 * without a host or a clock; hosts.c feeds it.
 */
#ifndef BECKON_LAUNCHER_PLACE_H
#define BECKON_LAUNCHER_PLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One host as the decision sees it. */
struct place_host {
	bool usable;                /* up (or not yet known) and the service may run there */
	uint64_t mem_used, mem_max; /* bytes held by its instances; max 0: no limit */
	uint64_t count, count_max;  /* instances holding memory there; max 0: no limit */
};

/*
 * The host for a boot that needs MEMORY bytes: LAST (where the service ran
 * last, -1 when nowhere) while it is usable and has room, else the usable
 * host with the most room left after the boot (the smaller of its free
 * shares of memory and instance slots; a limit not set counts as all
 * free), ties to the fewer instances, then to the first. -1 when none fits.
 */
int place_choose(const struct place_host *h, size_t n, uint64_t memory, int last);

#endif
