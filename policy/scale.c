/*
 * The replica scaler: every few ticks, for each service with replicas
 * (replicas.max > 1), count its replicas and their open connections (the
 * proxy's and, for those that reach the guests directly, conntrack's), ask
 * policy_replicas, and boot one more (launcher_replica_add, through
 * admission: capacity and rate limits apply) or stop the extra replica with
 * the fewest connections (under hold "proxy", the proxy's counts alone). A
 * stopped extra replica is forgotten by the launcher, its address back in
 * the pool.
 */
#include <string.h>

#include "conf.h"
#include "engine_int.h"
#include "log.h"
#include "pattern.h"

#define SCALE_MAX 64 /* replicas.max is at most 64 */

/* What RS's replicas hold: up, booting, open connections into V; each one's in OPEN. */
static void scale_count(const struct engine *e, struct instance **rs, size_t n,
                        struct policy_replicas_view *v, unsigned *open)
{
	struct instance_info info;
	struct engine_inst *ei;

	for (size_t i = 0; i < n; i++) {
		launcher_info(rs[i], &info);
		ei = engine_inst(rs[i]);
		open[i] = info.open + info.held + (ei != NULL && !e->proxied ? ei->conntrack : 0);
		if (info.state != INST_BOOTING && info.state != INST_READY &&
		    info.state != INST_PAUSED)
			continue;
		v->up++;
		v->booting += info.state == INST_BOOTING;
		v->open += open[i];
	}
}

static void scale_up(struct engine *e, const struct conf_service *svc, struct instance **rs,
                     const struct policy_replicas_view *v)
{
	struct instance *inst = rs[0];

	/* Its own instance first, when it is down; else one more. */
	if (launcher_state(inst) == INST_READY || launcher_state(inst) == INST_BOOTING ||
	    launcher_state(inst) == INST_PAUSED)
		inst = launcher_replica_add(e->l, svc->name);
	if (inst == NULL) {
		log_warnx("%s: no replica could be made (pool, names)", svc->name);
		return;
	}
	log_info("%s: %u open connections on %u replicas (target %u each): booting %s", svc->name,
	         v->open, v->up, v->target, launcher_service(inst)->name);
	if (launcher_wake_from(inst, NULL, NULL, NULL, NULL) == -1)
		log_info("%s: replica refused", launcher_service(inst)->name);
}

/* Stop the extra replica that is up with the fewest open connections (the last on a tie). */
static void scale_down(const struct conf_service *svc, struct instance **rs, size_t n,
                       const unsigned *open, const struct policy_replicas_view *v)
{
	struct instance *pick = NULL;
	unsigned least = 0;

	for (size_t i = 1; i < n; i++) {
		enum inst_state s = launcher_state(rs[i]);

		if (s != INST_READY && s != INST_PAUSED && s != INST_BOOTING)
			continue;
		if (pick == NULL || open[i] <= least) {
			pick = rs[i];
			least = open[i];
		}
	}
	if (pick == NULL)
		return;
	log_info("%s: %u open connections fit %u replicas: stopping %s", svc->name, v->open,
	         v->up - 1, launcher_service(pick)->name);
	launcher_stop(pick);
}

static void scale_one(struct engine *e, struct instance *primary, int64_t now)
{
	const struct conf_service *svc = launcher_service(primary);
	struct engine_inst *pe = engine_inst(primary);
	struct instance *rs[SCALE_MAX];
	unsigned open[SCALE_MAX];
	struct policy_replicas_view v = {.min = svc->replicas_min,
	                                 .max = svc->replicas_max,
	                                 .target = svc->replicas_target,
	                                 .idle_timeout_ms = svc->idle_timeout_ms};
	size_t n = launcher_replicas(e->l, svc->name, rs, SCALE_MAX);

	if (pe == NULL || n == 0)
		return;
	scale_count(e, rs, n, &v, open);
	if (!policy_replicas_low(&v))
		pe->low_since_us = 0;
	else if (pe->low_since_us == 0)
		pe->low_since_us = now;
	v.low_since_us = pe->low_since_us;
	switch (policy_replicas(&v, now)) {
	case POLICY_SCALE_UP:
		scale_up(e, svc, rs, &v);
		break;
	case POLICY_SCALE_DOWN:
		scale_down(svc, rs, n, open, &v);
		pe->low_since_us = now; /* the next one waits its own idle_timeout */
		break;
	case POLICY_SCALE_KEEP:
		break;
	}
}

struct scale_pass {
	struct engine *e;
	int64_t now;
	bool *ct_read;
};

static void scale_cb(struct instance *inst, void *arg)
{
	struct scale_pass *sp = arg;

	if (launcher_replica_index(inst) != 1)
		return;
	if (!*sp->ct_read) {
		activity_conntrack(sp->e->act, sp->e->l);
		*sp->ct_read = true;
	}
	scale_one(sp->e, inst, sp->now);
}

void scale_tick(struct engine *e, int64_t now, bool *ct_read)
{
	struct scale_pass sp = {e, now, ct_read};

	launcher_foreach(e->l, scale_cb, &sp);
}
