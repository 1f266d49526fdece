/*
 * Waiters: who waits for a wake to end. Results are delivered from an event
 * of their own, never inside launcher code, so a callback may call anything
 * in launcher.h (but launcher_free).
 */
#include <stdlib.h>

#include <event2/event.h>

#include "core.h"
#include "launcher.h"
#include "log.h"

/* Hand every waiter of INST its result, delivered from the done event. */
void launcher_inst_complete(struct instance *inst, bool ok)
{
	struct launcher_waiter *w;
	struct launcher *l = inst->l;

	if (TAILQ_EMPTY(&inst->waiters))
		return;
	while ((w = TAILQ_FIRST(&inst->waiters)) != NULL) {
		TAILQ_REMOVE(&inst->waiters, w, entry);
		w->ok = ok;
		w->list = &l->done;
		TAILQ_INSERT_TAIL(&l->done, w, entry);
	}
	event_active(l->done_ev, 0, 0);
}

static void waiter_call(struct launcher_waiter *w)
{
	launcher_wait_cb cb = w->cb;
	struct instance *inst = w->inst;
	void *arg = w->arg;
	bool ok = w->ok;

	free(w);
	cb(inst, ok, arg);
}

void launcher_flush_done(struct launcher *l)
{
	struct launcher_waiter *w;

	/* A callback may wake, cancel or reload: take the head afresh each time. */
	while ((w = TAILQ_FIRST(&l->done)) != NULL) {
		TAILQ_REMOVE(&l->done, w, entry);
		w->list = NULL;
		waiter_call(w);
	}
}

/* Before INST is freed: every wait on it ends now, while it is still valid. */
void launcher_inst_drain_waiters(struct instance *inst)
{
	struct launcher_waiter *w, *next;

	launcher_inst_complete(inst, false);
	for (w = TAILQ_FIRST(&inst->l->done); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->inst != inst)
			continue;
		TAILQ_REMOVE(&inst->l->done, w, entry);
		w->list = NULL;
		waiter_call(w);
		next = TAILQ_FIRST(&inst->l->done); /* the callback may have changed it */
	}
}

struct launcher_waiter *launcher_waiter_add(struct instance *inst, launcher_wait_cb cb, void *arg)
{
	struct launcher_waiter *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warn("%s: waiter", inst->svc->name);
		return NULL;
	}
	w->inst = inst;
	w->cb = cb;
	w->arg = arg;
	w->list = &inst->waiters;
	TAILQ_INSERT_TAIL(&inst->waiters, w, entry);
	return w;
}

void launcher_cancel(struct launcher_waiter *w)
{
	if (w == NULL)
		return;
	if (w->list != NULL)
		TAILQ_REMOVE(w->list, w, entry);
	free(w);
}
