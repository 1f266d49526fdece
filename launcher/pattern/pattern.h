/*
 * Pattern services and replicas: instances made on demand, with addresses
 * from a pool, forgotten once stopped.
 */
#ifndef BECKON_LAUNCHER_PATTERN_H
#define BECKON_LAUNCHER_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "launcher.h"

/*
 * Pattern services (dns = ( "*.SUFFIX" )): an instance per label, named
 * "LABEL.SERVICE". launcher_pattern_get gives the instance of pattern
 * service SERVICE for LABEL: the one there is; else, when its image (with
 * {label} replaced) is a readable file and CREATE, a new one with an
 * address from the pool (stopped: wake it). NULL when there is none, *WHY
 * saying why: NOIMAGE (answer NXDOMAIN), ABSENT (not made: CREATE false),
 * FULL (no free address), ERROR (no such pattern service, out of memory, a
 * clash). An instance made here that is left stopped or failed, with
 * nobody waiting, is forgotten from the event loop soon after.
 */
enum launcher_pattern_miss {
	LAUNCHER_PATTERN_NOIMAGE,
	LAUNCHER_PATTERN_ABSENT,
	LAUNCHER_PATTERN_FULL,
	LAUNCHER_PATTERN_ERROR
};
struct instance *launcher_pattern_get(struct launcher *l, const char *service, const char *label,
                                      bool create, enum launcher_pattern_miss *why);
/* The pattern service INST was made from, NULL for a configured service's instance. */
const char *launcher_pattern_of(const struct instance *inst);

/*
 * Replicas (replicas.max > 1): the service's own instance is replica 1,
 * the extra ones "N.SERVICE" (N = 2..max), with addresses from the pool,
 * made by launcher_replica_add (stopped: wake it) and forgotten like a
 * pattern's once stopped. launcher_replicas: SERVICE's replicas into OUT
 * (at most MAX), its own instance first; how many.
 * launcher_replica_of: the service an extra replica runs, else NULL.
 * launcher_replica_index: 1 for a replicated service's own instance, N
 * for extra replica N, 0 for any other instance.
 */
size_t launcher_replicas(struct launcher *l, const char *service, struct instance **out,
                         size_t max);
struct instance *launcher_replica_add(struct launcher *l, const char *service);
const char *launcher_replica_of(const struct instance *inst);
unsigned launcher_replica_index(const struct instance *inst);

#endif
