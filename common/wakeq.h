/*
 * The wake queue: wakes that found no room (max_instances, max_memory,
 * nothing idle to evict) wait here for it, first come first served, each
 * until its deadline. Bounded; counted for metrics. Pure: no clock, no
 * I/O, no instances (the items are embedded in them); unit-tested in
 * tests/unit/test_wakeq.c. launcher/room/ drives it.
 */
#ifndef BECKON_COMMON_WAKEQ_H
#define BECKON_COMMON_WAKEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct wakeq_item {
	TAILQ_ENTRY(wakeq_item) entry;
	void *owner;         /* what waits (an instance) */
	int64_t deadline_us; /* it gives up then */
	bool queued;
};

struct wakeq_stats {
	size_t len;        /* waiting now */
	uint64_t queued;   /* pushed */
	uint64_t admitted; /* left with room found */
	uint64_t timed_out;
	uint64_t refused; /* the queue was full */
};

TAILQ_HEAD(wakeq_list, wakeq_item);
struct wakeq {
	struct wakeq_list items; /* in arrival order */
	size_t max;              /* 0: the queue is off, every push is refused */
	struct wakeq_stats st;
};

void wakeq_init(struct wakeq *q, size_t max);
/* A new bound (a reload): items already waiting stay. */
void wakeq_set_max(struct wakeq *q, size_t max);
/* IT (for OWNER) waits until DEADLINE_US, behind the rest. -1 when full (counted). */
int wakeq_push(struct wakeq *q, struct wakeq_item *it, void *owner, int64_t deadline_us);
/* The first in line, NULL when none. */
struct wakeq_item *wakeq_head(const struct wakeq *q);
/* IT found room and leaves (counted as admitted). */
void wakeq_admit(struct wakeq *q, struct wakeq_item *it);
/* The first item whose deadline is NOW_US or earlier, taken out (counted as timed out). */
struct wakeq_item *wakeq_expire(struct wakeq *q, int64_t now_us);
/* The earliest deadline, -1 when the queue is empty. */
int64_t wakeq_next_deadline(const struct wakeq *q);
/* IT leaves uncounted (its owner goes away, or woke another way); no-op when not queued. */
void wakeq_remove(struct wakeq *q, struct wakeq_item *it);

#endif
