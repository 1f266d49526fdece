/* The wake queue (wakeq.h): a bounded FIFO with deadlines and counts. */
#include "wakeq.h"

void wakeq_init(struct wakeq *q, size_t max)
{
	TAILQ_INIT(&q->items);
	q->max = max;
	q->st = (struct wakeq_stats){0};
}

void wakeq_set_max(struct wakeq *q, size_t max)
{
	q->max = max;
}

int wakeq_push(struct wakeq *q, struct wakeq_item *it, void *owner, int64_t deadline_us)
{
	if (it->queued)
		return 0;
	if (q->st.len >= q->max) {
		q->st.refused++;
		return -1;
	}
	it->owner = owner;
	it->deadline_us = deadline_us;
	it->queued = true;
	TAILQ_INSERT_TAIL(&q->items, it, entry);
	q->st.len++;
	q->st.queued++;
	return 0;
}

struct wakeq_item *wakeq_head(const struct wakeq *q)
{
	return TAILQ_FIRST(&q->items);
}

void wakeq_remove(struct wakeq *q, struct wakeq_item *it)
{
	if (!it->queued)
		return;
	TAILQ_REMOVE(&q->items, it, entry);
	it->queued = false;
	q->st.len--;
}

void wakeq_admit(struct wakeq *q, struct wakeq_item *it)
{
	if (!it->queued)
		return;
	wakeq_remove(q, it);
	q->st.admitted++;
}

/* Deadlines need not rise along the line: hold_timeout may change on a reload. */
struct wakeq_item *wakeq_expire(struct wakeq *q, int64_t now_us)
{
	struct wakeq_item *it;

	TAILQ_FOREACH(it, &q->items, entry)
	if (it->deadline_us <= now_us) {
		wakeq_remove(q, it);
		q->st.timed_out++;
		return it;
	}
	return NULL;
}

int64_t wakeq_next_deadline(const struct wakeq *q)
{
	const struct wakeq_item *it;
	int64_t min = -1;

	TAILQ_FOREACH(it, &q->items, entry)
	if (min == -1 || it->deadline_us < min)
		min = it->deadline_us;
	return min;
}
