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

#include <event2/event.h>

#include "core.h"
#include "log.h"
#include "part.h"

static void slots_cb(evutil_socket_t fd, short what, void *arg);

static int slots_conf(struct launcher *l, const struct conf *conf)
{
	if (l->slots_ev == NULL) {
		wakeq_init(&l->bootq, SIZE_MAX);
		if ((l->slots_ev = event_new(l->base, -1, 0, slots_cb, l)) == NULL) {
			log_warn("boot slots: event");
			return -1;
		}
	}
	l->slots_max = conf->max_booting;
	event_active(l->slots_ev, 0, 0); /* a larger max starts the waiting now */
	return 0;
}

static void slots_free(struct launcher *l)
{
	if (l->slots_ev != NULL)
		event_free(l->slots_ev);
	l->slots_ev = NULL;
}

static bool slots_free_one(const struct launcher *l)
{
	return l->slots_max == 0 || l->slots_used < l->slots_max;
}

static void slots_hold(struct instance *inst)
{
	struct launcher *l = inst->l;

	inst->slot_held = true;
	if (++l->slots_used > l->slots_peak)
		l->slots_peak = l->slots_used;
}

static bool slots_take(struct instance *inst)
{
	struct launcher *l = inst->l;

	if (inst->slot_held)
		return true;
	/* Behind those already waiting, even when a slot is free this instant. */
	if (wakeq_head(&l->bootq) == NULL && slots_free_one(l)) {
		slots_hold(inst);
		return true;
	}
	if (!inst->slot.queued) {
		wakeq_push(&l->bootq, &inst->slot, inst,
		           inst->boot_start_us + (int64_t)inst->svc->boot_timeout_ms * 1000);
		log_info("%s: waiting for a boot slot (max_booting %u: %u booting, %zu waiting)",
		         inst->svc->name, l->slots_max, l->slots_used, l->bootq.st.len);
	}
	return false;
}

static bool slots_queued(const struct instance *inst)
{
	return inst->slot.queued;
}

/* Start the first in line while there are slots, from a fresh event. */
static void slots_cb(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	struct wakeq_item *it;
	struct instance *inst;

	(void)fd;
	(void)what;
	while (slots_free_one(l) && (it = wakeq_head(&l->bootq)) != NULL) {
		inst = it->owner;
		wakeq_admit(&l->bootq, it);
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

	wakeq_remove(&l->bootq, &inst->slot);
	if (!inst->slot_held)
		return;
	inst->slot_held = false;
	l->slots_used--;
	if (l->slots_ev != NULL && wakeq_head(&l->bootq) != NULL)
		event_active(l->slots_ev, 0, 0);
}

static void slots_state(struct instance *inst, enum inst_state old)
{
	if (old == INST_BOOTING && inst->state != INST_BOOTING)
		slots_drop(inst);
}

static void slots_stats(const struct launcher *l, struct launcher_stats *st)
{
	st->boot_slots = l->slots_max;
	st->booting_started = l->slots_used;
	st->booting_peak = l->slots_peak;
	st->boot_queue = l->bootq.st.len;
	st->boot_queued = l->bootq.st.queued;
}

static const char *slots_waiting(const struct instance *inst)
{
	return slots_queued(inst) ? "no boot slot (max_booting)" : NULL;
}

const struct launcher_part part_slots = {
    .name = "slots",
    .configured = slots_conf,
    .free = slots_free,
    .stats = slots_stats,
    .may_start = slots_take,
    .state = slots_state,
    .waiting = slots_waiting,
    .drop = slots_drop,
};
