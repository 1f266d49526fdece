/*
 * The idle engine: a timer looks at every running instance, gathers what
 * shows it is in use (queries and connections reported by the resolver and
 * the proxy; in conntrack, its connections and flows with clients),
 * asks policy_idle, and carries out what it says through the launcher's
 * public calls. The cheap signs are read at every tick; conntrack only
 * when an instance would otherwise go idle.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "engine_int.h"
#include "log.h"
#include "pattern.h"
#include "revive.h"

#define IDLE_TICK_MS 100

struct engine_inst *engine_inst(struct instance *inst)
{
	struct engine_inst *ei = launcher_ext(inst);

	if (ei == NULL && (ei = calloc(1, sizeof(*ei))) != NULL)
		launcher_set_ext(inst, ei);
	return ei;
}

static enum policy_state engine_pstate(enum inst_state s)
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

void engine_view(struct instance *inst, struct policy_view *v)
{
	const struct conf_service *svc = launcher_service(inst);
	struct engine_inst *ei = engine_inst(inst);
	struct instance_info info;

	launcher_info(inst, &info);
	memset(v, 0, sizeof(*v));
	v->state = engine_pstate(info.state);
	v->on_idle = svc->on_idle;
	v->idle_timeout_ms = svc->idle_timeout_ms;
	v->memory = svc->memory;
	v->last_activity_us = launcher_activity_us(inst);
	v->since_us = launcher_state_since_us(inst);
	v->open_connections = info.open + info.held + (ei != NULL ? ei->conntrack : 0);
}

static int engine_suspend(struct instance *inst)
{
	enum inst_state s = launcher_state(inst);

	if (s != INST_READY && s != INST_PAUSED)
		return -1;
	if (!launcher_can_suspend(inst)) {
		log_info("%s: the %s backend cannot suspend: shutting down instead",
		         launcher_service(inst)->name,
		         conf_backend_name(launcher_service(inst)->backend));
		return launcher_stop(inst);
	}
	return launcher_suspend(inst);
}

int engine_act(struct instance *inst, enum policy_action action, const char *why)
{
	const char *name = launcher_service(inst)->name;
	struct engine_inst *ei = engine_inst(inst);
	int rc = -1;

	if (action == POLICY_KEEP)
		return 0;
	/* Evicted to make room: no warm copy takes the room back. */
	if (ei != NULL)
		ei->evicting = strcmp(why, "idle") != 0;
	log_info("%s: %s: %s", name, why, policy_action_name(action));
	switch (action) {
	case POLICY_PAUSE:
		rc = launcher_pause(inst);
		break;
	case POLICY_SUSPEND:
		rc = engine_suspend(inst);
		break;
	case POLICY_SHUTDOWN:
		rc = launcher_stop(inst);
		break;
	case POLICY_DESTROY:
		rc = launcher_kill(inst);
		break;
	case POLICY_KEEP:
		break;
	}
	if (ei != NULL)
		ei->evicting = false;
	if (rc == -1)
		log_warnx("%s: %s failed", name, policy_action_name(action));
	return rc;
}

/*
 * Replicas the idle policy leaves alone: the first replicas.min stay up,
 * and while the service's own instance is up the scaler stops the extra
 * ones, one at a time (scale.c); with it down, they idle out as any other.
 */
static bool engine_replica_kept(struct engine *e, struct instance *inst)
{
	unsigned idx = launcher_replica_index(inst);
	struct instance *first;
	enum inst_state s;

	if (idx == 0)
		return false;
	if (idx <= launcher_service(inst)->replicas_min)
		return true;
	if (idx == 1 || (first = launcher_find(e->l, launcher_replica_of(inst))) == NULL)
		return false;
	s = launcher_state(first);
	return s == INST_READY || s == INST_BOOTING || s == INST_PAUSED;
}

/*
 * Read conntrack for this tick. A read that fails (a busy host's table
 * changing under every try) holds idle actions back until it has failed
 * for ENGINE_CT_GRACE_US: a connection that shows only there must not be
 * taken for none; one that fails for good must not keep guests up forever.
 */
#define ENGINE_CT_GRACE_US (10 * 1000000LL)
static void engine_read_ct(struct engine *e, int64_t now)
{
	e->ct_failed = activity_conntrack(e->act, e->l) == -1;
	if (!e->ct_failed)
		e->ct_failed_since_us = 0;
	else if (e->ct_failed_since_us == 0)
		e->ct_failed_since_us = now;
}

/*
 * One instance at a tick. Open connections the proxy holds or relays count
 * as activity while they last, so the idle time runs from their end.
 */
static void engine_check(struct engine *e, struct instance *inst, int64_t now, bool *ct_read)
{
	struct engine_inst *ei = engine_inst(inst);
	struct instance_info info;
	struct policy_view v;
	enum policy_action a;

	launcher_info(inst, &info);
	/* Telling the guest of its suspend (check.c): that goes on from the answer. */
	if (info.state != INST_READY || ei == NULL || ei->noticing)
		return;
	if (info.open + info.held > 0)
		launcher_activity(inst);
	/* A health check being answered: no activity, but not the moment to pause. */
	if (info.quiet > 0)
		return;
	if (engine_replica_kept(e, inst))
		return;
	engine_view(inst, &v);
	if ((a = policy_idle(&v, now)) == POLICY_KEEP || check_waiting(inst, now))
		return;
	/* Idle by every cheap sign: a quiet open connection shows only in conntrack. */
	if (!*ct_read) {
		engine_read_ct(e, now);
		*ct_read = true;
	}
	if (ei->conntrack > 0) {
		launcher_activity(inst);
		return;
	}
	/* No guess from a table that could not be read, for ENGINE_CT_GRACE_US. */
	if (e->ct_failed && now - e->ct_failed_since_us < ENGINE_CT_GRACE_US)
		return;
	/* The read may have moved its last use later (a bypassing connection's close). */
	engine_view(inst, &v);
	if ((a = policy_idle(&v, now)) == POLICY_KEEP)
		return;
	/* The guest may have a say (idle_check); its "yes" acts from the answer. */
	if (!check_consent(e, inst, a, now) || check_notice(e, inst, a))
		return;
	engine_act(inst, a, "idle");
}

struct engine_tick {
	struct engine *e;
	int64_t now;
	bool ct_read;
};

static void engine_clear_ct(struct instance *inst, void *arg)
{
	struct engine_inst *ei = engine_inst(inst);

	(void)arg;
	if (ei != NULL)
		ei->conntrack = 0;
}

static void engine_check_cb(struct instance *inst, void *arg)
{
	struct engine_tick *t = arg;

	engine_check(t->e, inst, t->now, &t->ct_read);
}

static void engine_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine_tick t = {.e = arg, .now = launcher_now_us()};

	(void)fd;
	(void)what;
	/* Counts from an earlier tick are stale; one read this tick fills all. */
	launcher_foreach(t.e->l, engine_clear_ct, NULL);
	if (++t.e->ticks % SCALE_TICKS == 0)
		scale_tick(t.e, t.now, &t.ct_read);
	/* An action may stop an instance, never free it. */
	launcher_foreach(t.e->l, engine_check_cb, &t);
}

/* ---- the launcher's hooks -------------------------------------------------------- */

static void engine_state_hook(struct instance *inst, enum inst_state old, enum inst_state new,
                              void *arg)
{
	struct engine *e = arg;
	struct engine_inst *ei = engine_inst(inst);

	(void)old;
	if (ei == NULL)
		return;
	/*
	 * A run ended on purpose (idle, beckonctl stop, a suspend): warm again
	 * once down. Not after an eviction, nor a crash (ready to stopped at
	 * once): a guest that keeps crashing is not booted over and over.
	 */
	if (new == INST_STOPPING)
		ei->rewarm = !ei->evicting && launcher_service(inst)->warm != CONF_WARM_NONE;
	/* Never from inside the launcher: warm it from the loop. */
	if (ei->rewarm && (new == INST_STOPPED || new == INST_SUSPENDED))
		event_active(e->warm_ev, 0, 0);
}

static int engine_admit_hook(struct instance *inst, const struct sockaddr *client,
                             enum launcher_refusal *why, void *arg)
{
	return admit_boot(arg, inst, client, false, why);
}

static void engine_reloaded_hook(struct launcher *l, const struct conf *conf, void *arg)
{
	struct engine *e = arg;

	(void)l;
	admit_conf(e->admit, conf);
	e->proxied = conf->hold == CONF_HOLD_PROXY;
	if (!activity_fits(e->act, conf)) { /* the mode, hold or bypass changed */
		activity_free(e->act);
		e->act = activity_new(conf);
	}
	warm_new(e);
}

static const struct launcher_hooks engine_hooks = {
    .state = engine_state_hook,
    .admit = engine_admit_hook,
    .reloaded = engine_reloaded_hook,
};

static void engine_warm_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	warm_pass(arg);
}

struct engine *engine_new(struct event_base *base, struct launcher *l, const struct conf *conf)
{
	struct timeval tv = {0, IDLE_TICK_MS * 1000};
	struct engine *e;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		goto fail;
	e->base = base;
	e->l = l;
	if ((e->admit = admit_new()) == NULL)
		goto fail;
	admit_conf(e->admit, conf);
	e->proxied = conf->hold == CONF_HOLD_PROXY;
	e->act = activity_new(conf);
	if (check_init(e) == -1)
		goto fail;
	if ((e->tick = event_new(base, -1, EV_PERSIST, engine_tick_cb, e)) == NULL ||
	    event_add(e->tick, &tv) == -1 ||
	    (e->warm_ev = event_new(base, -1, 0, engine_warm_cb, e)) == NULL ||
	    launcher_add_hooks(l, &engine_hooks, e) == -1)
		goto fail;
	warm_new(e);
	return e;
fail:
	log_warnx("cannot set up the idle policy");
	engine_free(e);
	return NULL;
}

void engine_free(struct engine *e)
{
	if (e == NULL)
		return;
	launcher_remove_hooks(e->l, e);
	if (e->tick != NULL)
		event_free(e->tick);
	if (e->warm_ev != NULL)
		event_free(e->warm_ev);
	check_free_all(e);
	admit_free(e->admit);
	activity_free(e->act);
	free(e);
}
