/*
 * Boot slots: at most max_booting boots and restores run at once; the rest
 * wait their turn, first come first served. Started all at once, 200 QEMUs
 * under TCG took every CPU for seconds, each boot slowed by all the others
 * and beckond's own answers behind them; in line, each boot gets its CPU
 * and the storm ends sooner. A boot that waits is already booting (its
 * state, its boot_timeout counted from the wake, its waiters and held
 * connections waiting as for any boot); only its backend's start waits.
 * The line is the wake queue's FIFO (common/wakeq.c), unbounded here: an
 * instance waits in it at most once. room.c's queue is another
 * matter (no room at all: the instance stays stopped, the admission hook
 * asked again); a wake goes through that one first, then this one.
 */
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "core.h"
#include "log.h"
#include "part.h"
#include "wakeq.h"

/* A launcher's boot slots (l->slots). */
struct slots {
	struct wakeq q; /* the boots waiting for one */
	struct event *ev;
	unsigned max; /* max_booting; 0: no limit */
	unsigned used, peak;
};

/* An instance's place in line, or its slot (inst->slot). */
struct inst_slot {
	struct wakeq_item item;
	bool held;
};

static void slots_cb(evutil_socket_t fd, short what, void *arg);

static int slots_conf(struct launcher *l, const struct conf *conf)
{
	struct slots *s = l->slots;

	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL ||
		    (s->ev = event_new(l->base, -1, 0, slots_cb, l)) == NULL) {
			log_warn("boot slots");
			free(s);
			return -1;
		}
		wakeq_init(&s->q, SIZE_MAX);
		l->slots = s;
	}
	s->max = conf->max_booting;
	event_active(s->ev, 0, 0); /* a larger max starts the waiting now */
	return 0;
}

static void slots_free(struct launcher *l)
{
	if (l->slots == NULL)
		return;
	event_free(l->slots->ev);
	free(l->slots);
	l->slots = NULL;
}

static int slots_new(struct instance *inst)
{
	return (inst->slot = calloc(1, sizeof(*inst->slot))) != NULL ? 0 : -1;
}

static void slots_destroy(struct instance *inst)
{
	free(inst->slot);
	inst->slot = NULL;
}

static bool slots_free_one(const struct launcher *l)
{
	return l->slots->max == 0 || l->slots->used < l->slots->max;
}

static void slots_hold(struct instance *inst)
{
	struct launcher *l = inst->l;

	inst->slot->held = true;
	if (++l->slots->used > l->slots->peak)
		l->slots->peak = l->slots->used;
}

static bool slots_take(struct instance *inst)
{
	struct launcher *l = inst->l;

	if (inst->slot->held)
		return true;
	/* Behind those already waiting, even when a slot is free this instant. */
	if (wakeq_head(&l->slots->q) == NULL && slots_free_one(l)) {
		slots_hold(inst);
		return true;
	}
	if (!inst->slot->item.queued) {
		wakeq_push(&l->slots->q, &inst->slot->item, inst,
		           inst->boot_start_us + (int64_t)inst->svc->boot_timeout_ms * 1000);
		log_info("%s: waiting for a boot slot (max_booting %u: %u booting, %zu waiting)",
		         inst->svc->name, l->slots->max, l->slots->used, l->slots->q.st.len);
	}
	return false;
}

static bool slots_queued(const struct instance *inst)
{
	return inst->slot != NULL && inst->slot->item.queued;
}

/* Start the first in line while there are slots, from a fresh event. */
static void slots_cb(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	struct wakeq_item *it;
	struct instance *inst;

	(void)fd;
	(void)what;
	while (slots_free_one(l) && (it = wakeq_head(&l->slots->q)) != NULL) {
		inst = it->owner;
		wakeq_admit(&l->slots->q, it);
		if (inst->state != INST_BOOTING)
			continue; /* not reached: a boot that ends leaves the line */
		slots_hold(inst);
		log_debug("%s: a boot slot after %.1f ms in line", inst->svc->name,
		          (double)(launcher_now_us() - inst->boot_start_us) / 1000.0);
		launcher_inst_start(inst); /* a failure ends the boot, and frees the slot */
	}
}

static void slots_drop(struct instance *inst)
{
	struct launcher *l = inst->l;

	if (inst->slot == NULL || l->slots == NULL)
		return; /* a stand-in made by hand (a unit test); the first config's */
	wakeq_remove(&l->slots->q, &inst->slot->item);
	if (!inst->slot->held)
		return;
	inst->slot->held = false;
	l->slots->used--;
	if (wakeq_head(&l->slots->q) != NULL)
		event_active(l->slots->ev, 0, 0);
}

static void slots_state(struct instance *inst, enum inst_state old)
{
	if (old == INST_BOOTING && inst->state != INST_BOOTING)
		slots_drop(inst);
}

static void slots_stats(const struct launcher *l, struct launcher_stats *st)
{
	if (l->slots == NULL)
		return;
	st->boot_slots = l->slots->max;
	st->booting_started = l->slots->used;
	st->booting_peak = l->slots->peak;
	st->boot_queue = l->slots->q.st.len;
	st->boot_queued = l->slots->q.st.queued;
}

static const char *slots_waiting(const struct instance *inst)
{
	return slots_queued(inst) ? "no boot slot (max_booting)" : NULL;
}

const struct launcher_part part_slots = {
    .name = "slots",
    .configured = slots_conf,
    .free = slots_free,
    .new = slots_new,
    .destroy = slots_destroy,
    .stats = slots_stats,
    .may_start = slots_take,
    .state = slots_state,
    .waiting = slots_waiting,
    .drop = slots_drop,
};
