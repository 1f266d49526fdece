/*
 * The warm pools: a service with warm = "shell" keeps its VMM started with
 * the guest not yet running (a restore shell once suspended); one with
 * warm = "paused" is booted at start and paused once ready. Made at start,
 * after a reload for new services, and again after a run ended on purpose
 * (idle, beckonctl stop, suspend; not an eviction or a crash); each through
 * the launcher's public calls.
 */
#include "conf.h"
#include "engine_int.h"
#include "log.h"
#include "pattern.h"
#include "revive.h"

void warm_make(struct engine *e, struct instance *inst)
{
	const struct conf_service *svc = launcher_service(inst);
	enum inst_state s = launcher_state(inst);
	enum launcher_refusal why;

	/*
	 * The pool warms a replicated service's own instance only: the extra
	 * replicas are made on demand and forgotten once stopped.
	 */
	if (launcher_replica_index(inst) > 1)
		return;
	/* A suspended guest can only have a restore shell. */
	if (s != INST_STOPPED && (s != INST_SUSPENDED || svc->warm != CONF_WARM_SHELL))
		return;
	switch (svc->warm) {
	case CONF_WARM_NONE:
		return;
	case CONF_WARM_SHELL:
		launcher_shell(inst);
		return;
	case CONF_WARM_PAUSED:
		if (admit_boot(e, inst, NULL, true, &why) == 0)
			launcher_prewarm(inst);
		return;
	}
}

static void warm_new_one(struct instance *inst, void *arg)
{
	struct instance_info info;

	launcher_info(inst, &info);
	if (info.boots == 0 && info.state == INST_STOPPED)
		warm_make(arg, inst);
}

void warm_new(struct engine *e)
{
	launcher_foreach(e->l, warm_new_one, e);
}

static void warm_again(struct instance *inst, void *arg)
{
	struct engine_inst *ei = launcher_ext(inst);
	enum inst_state s = launcher_state(inst);

	if (ei == NULL || !ei->rewarm || s == INST_STOPPING)
		return;
	ei->rewarm = false;
	if (s == INST_STOPPED || s == INST_SUSPENDED)
		warm_make(arg, inst);
}

void warm_pass(struct engine *e)
{
	launcher_foreach(e->l, warm_again, e);
}
