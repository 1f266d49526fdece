/*
 * An address pool: the addresses of a pattern service's instances, given
 * out one per instance and taken back when it is forgotten. Pure: no
 * clock, no I/O; unit-tested in tests/unit/test_pattern.c.
 */
#ifndef BECKON_LAUNCHER_POOL_H
#define BECKON_LAUNCHER_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

struct pool;

/*
 * A pool of FIRST..LAST (at most CONF_POOL_MAX addresses), without the
 * NSKIP addresses of SKIP (the bridge's network, own and broadcast
 * addresses). NULL on ENOMEM or a range too large.
 */
struct pool *pool_new(struct in_addr first, struct in_addr last, const struct in_addr *skip,
                      size_t nskip);
void pool_free(struct pool *p);

/*
 * Take a free address into *OUT: the next free one after the last taken
 * (so that an address just given back is the last to be reused: a
 * client's ARP cache or connection may still name it). -1 when none is free.
 */
int pool_take(struct pool *p, struct in_addr *out);
/* Take A in particular (an instance kept over a reload). -1 when not free or not ours. */
int pool_claim(struct pool *p, struct in_addr a);
/* Give A back; an address not taken, or not of the pool, is ignored. */
void pool_put(struct pool *p, struct in_addr a);
/* Free addresses left, and those there are in all (without the skipped ones). */
uint32_t pool_available(const struct pool *p);
uint32_t pool_size(const struct pool *p);

#endif
