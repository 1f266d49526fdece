/*
 * Waiting for room (wake_queue) and for a boot slot (max_booting).
 */
#ifndef BECKON_LAUNCHER_ROOM_H
#define BECKON_LAUNCHER_ROOM_H

#include <stdbool.h>
#include <stddef.h>

#include "launcher.h"

/*
 * Whether a wake that finds no room (max_instances, max_memory, nothing to
 * evict) waits for it in the wake queue (wake_queue > 0) rather than being
 * refused: the admission hook need not log such a refusal as final.
 */
bool launcher_wake_queue_on(const struct launcher *l);
/* How many wakes wait for room now: a warm boot must not take it from them. */
size_t launcher_wake_waiting(const struct launcher *l);

#endif
