/*
 * The idle engine: a timer looks at every running instance, gathers what
 * shows it is in use (queries and connections reported by the resolver and
 * the proxy, its tap's traffic, established connections in conntrack),
 * asks policy_idle, and carries out what it says. The cheap signs are read
 * at every tick; conntrack only when an instance would otherwise go idle.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "internal.h"
#include "log.h"

#define IDLE_TICK_MS 100

static enum policy_state idle_pstate(enum inst_state s)
{
	switch (s) {
	case INST_BOOTING:
		return POLICY_BOOTING;
	case INST_READY:
		return POLICY_RUNNING;
	case INST_PAUSED:
		return POLICY_PAUSED;
	case INST_SUSPENDED:
		return POLICY_SAVED;
	default:
		return POLICY_DOWN;
	}
}

void launcher_idle_view(const struct instance *inst, struct policy_view *v)
{
	memset(v, 0, sizeof(*v));
	v->state = idle_pstate(inst->state);
	v->on_idle = inst->svc->on_idle;
	v->idle_timeout_ms = inst->svc->idle_timeout_ms;
	v->memory = inst->svc->memory;
	v->last_activity_us = inst->activity_us;
	v->since_us = inst->idle.since_us;
	v->open_connections = inst->open + inst->held + inst->idle.conntrack;
}

/* Stop INST for the policy; a warm service gets its shell or pause back. */
static int idle_stop(struct instance *inst, bool graceful, bool rewarm)
{
	if (launcher_inst_stop(inst, graceful) == -1)
		return -1;
	inst->idle.rewarm = rewarm && inst->svc->warm != CONF_WARM_NONE;
	return 0;
}

static int idle_suspend(struct instance *inst)
{
	char path[4096];

	if (inst->state != INST_READY && inst->state != INST_PAUSED)
		return -1;
	if (inst->ops->suspend == NULL) {
		log_info("%s: the %s backend cannot suspend: shutting down instead",
		         inst->svc->name, inst->ops->name);
		return launcher_inst_stop(inst, true);
	}
	if (launcher_idle_state_path(inst, path, sizeof(path)) == -1)
		return -1;
	unlink(path);
	inst->idle.suspending = true;
	inst->idle.saved = false;
	if (inst->ops->suspend(inst, path) == -1) {
		inst->idle.suspending = false;
		return -1;
	}
	launcher_inst_set_state(inst, INST_STOPPING);
	inst->rewake = false;
	launcher_inst_complete(inst, false);
	return 0;
}

static int idle_suspend_for(struct instance *inst, bool idle)
{
	if (idle_suspend(inst) == -1)
		return -1;
	/* warm = "shell": a restore shell waits for the saved state. */
	inst->idle.rewarm = idle && inst->svc->warm == CONF_WARM_SHELL;
	return 0;
}

int launcher_idle_act(struct instance *inst, enum policy_action action, const char *why)
{
	bool idle = strcmp(why, "idle") == 0;
	int rc = -1;

	if (action == POLICY_KEEP)
		return 0;
	log_info("%s: %s: %s", inst->svc->name, why, policy_action_name(action));
	switch (action) {
	case POLICY_PAUSE:
		rc = launcher_pause(inst);
		break;
	case POLICY_SUSPEND:
		rc = idle_suspend_for(inst, idle);
		break;
	case POLICY_SHUTDOWN:
		rc = idle_stop(inst, true, idle);
		break;
	case POLICY_DESTROY:
		rc = idle_stop(inst, false, idle);
		break;
	case POLICY_KEEP:
		break;
	}
	if (rc == -1)
		log_warnx("%s: %s failed", inst->svc->name, policy_action_name(action));
	return rc;
}

/*
 * One instance at a tick. Open connections the proxy holds or relays count
 * as activity while they last, so the idle time runs from their end.
 */
static void idle_check(struct launcher *l, struct instance *inst, int64_t now, bool *ct_read)
{
	struct policy_view v;
	enum policy_action a;

	if (inst->state != INST_READY)
		return;
	if (inst->open + inst->held > 0 || launcher_act_tap(inst))
		launcher_activity(inst);
	launcher_idle_view(inst, &v);
	if ((a = policy_idle(&v, now)) == POLICY_KEEP)
		return;
	/* Idle by every cheap sign: a quiet open connection shows only in conntrack. */
	if (!*ct_read) {
		launcher_act_conntrack(l->act, l);
		*ct_read = true;
	}
	if (inst->idle.conntrack > 0) {
		launcher_activity(inst);
		return;
	}
	/* The read may have moved its last use later (a bypassing connection's close). */
	launcher_idle_view(inst, &v);
	if ((a = policy_idle(&v, now)) == POLICY_KEEP)
		return;
	launcher_idle_act(inst, a, "idle");
}

static void idle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	struct instance *inst, *next;
	int64_t now = launcher_now_us();
	bool ct_read = false;

	(void)fd;
	(void)what;
	/* Counts from an earlier tick are stale; one read this tick fills all. */
	TAILQ_FOREACH(inst, &l->instances, entry)
	inst->idle.conntrack = 0;
	/* An action may stop an instance, never free it. */
	for (inst = TAILQ_FIRST(&l->instances); inst != NULL; inst = next) {
		next = TAILQ_NEXT(inst, entry);
		idle_check(l, inst, now, &ct_read);
	}
}

int launcher_idle_init(struct launcher *l, const struct conf *conf)
{
	struct timeval tv = {0, IDLE_TICK_MS * 1000};

	if ((l->cap = launcher_cap_new()) == NULL)
		goto fail;
	launcher_cap_conf(l->cap, conf);
	l->act = launcher_act_new(conf);
	if ((l->idle_ev = event_new(l->base, -1, EV_PERSIST, idle_tick, l)) == NULL ||
	    event_add(l->idle_ev, &tv) == -1)
		goto fail;
	return 0;
fail:
	log_warnx("launcher: cannot set up the idle policy");
	return -1;
}

static void idle_forget_stale(struct instance *inst)
{
	char path[4096];

	if (launcher_idle_state_path(inst, path, sizeof(path)) == 0 && unlink(path) == 0)
		log_info("%s: removed the saved state an earlier run left", inst->svc->name);
}

void launcher_idle_reload(struct launcher *l, const struct conf *conf)
{
	struct instance *inst;

	launcher_cap_conf(l->cap, conf);
	if (!launcher_act_fits(l->act, conf)) { /* the mode, hold or bypass changed */
		launcher_act_free(l->act);
		l->act = launcher_act_new(conf);
	}
	/* New instances: no saved state of an earlier run or config (its QEMU
	 * arguments may differ); warm them as their config asks. */
	TAILQ_FOREACH(inst, &l->instances, entry)
	{
		if (inst->boots != 0 || inst->state != INST_STOPPED || inst->idle.shell ||
		    inst->idle.warming)
			continue;
		idle_forget_stale(inst);
		launcher_idle_warm(inst);
	}
}

void launcher_idle_fini(struct launcher *l)
{
	if (l->idle_ev != NULL)
		event_free(l->idle_ev);
	l->idle_ev = NULL;
	launcher_cap_free(l->cap);
	l->cap = NULL;
	launcher_act_free(l->act);
	l->act = NULL;
}

int launcher_idle_state_path(const struct instance *inst, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.state", inst->state_dir, inst->svc->name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}
