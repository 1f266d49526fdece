/*
 * The state machine of one instance. Every transition is in the table
 * below and goes through launcher_inst_set_state, which tells the hooks;
 * the rest of this file is what drives them: wake, boot, ready, exit,
 * stop, pause. What else a step needs (placement, a boot slot, the ways
 * back other than a cold boot) the launcher's parts do (part.h).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "conf.h"
#include "hostnet.h"
#include "core.h"
#include "launcher.h"
#include "log.h"

static int inst_boot(struct instance *inst);

#define TO(s) (1u << (s))
/* Every transition there is, and what makes it. */
static const unsigned transitions[INST_NSTATES] = {
    /* a wake boots it; a wake restores it (warm shell or not) */
    [INST_STOPPED] = TO(INST_BOOTING),
    /* the probe; a failure or the boot timeout; a stop (or a stop before start) */
    [INST_BOOTING] = TO(INST_READY) | TO(INST_FAILED) | TO(INST_STOPPING) | TO(INST_STOPPED),
    /* a pause; a stop or a suspend; the guest exits by itself */
    [INST_READY] = TO(INST_PAUSED) | TO(INST_STOPPING) | TO(INST_STOPPED),
    /* a resume (or a pause that failed); a stop or suspend; the guest exits */
    [INST_PAUSED] = TO(INST_READY) | TO(INST_STOPPING) | TO(INST_STOPPED),
    /* a wake restores it; a stop forgets the saved state */
    [INST_SUSPENDED] = TO(INST_BOOTING) | TO(INST_STOPPED),
    /* the run ended: suspended when its state was saved */
    [INST_STOPPING] = TO(INST_STOPPED) | TO(INST_SUSPENDED),
    /* a wake boots it again; a stop */
    [INST_FAILED] = TO(INST_BOOTING) | TO(INST_STOPPED),
};

void launcher_inst_set_state(struct instance *inst, enum inst_state s)
{
	enum inst_state old = inst->state;

	if (old == s)
		return;
	if (!(transitions[old] & TO(s)))
		log_warnx("%s: %s -> %s is no transition of the state machine (a bug)",
		          inst->svc->name, launcher_state_name(old), launcher_state_name(s));
	inst->state = s;
	inst->since_us = launcher_now_us();
	part_state(inst, old);
	launcher_hooks_state(inst, old);
}

struct instance *launcher_inst_new(struct launcher *l, const struct conf_service *svc,
                                   const struct conf *conf)
{
	return launcher_inst_make(l, svc, conf->state_dir, conf->net_mode, conf->hold,
	                          conf_service_hosted(conf, svc));
}

struct instance *launcher_inst_make(struct launcher *l, const struct conf_service *svc,
                                    const char *state_dir, enum conf_net_mode net_mode,
                                    enum conf_hold hold, bool hosted)
{
	struct instance *inst;
	uint8_t mac[6];

	if ((inst = calloc(1, sizeof(*inst))) == NULL)
		goto fail;
	inst->l = l;
	TAILQ_INIT(&inst->waiters);
	if ((inst->svc = conf_service_dup(svc)) == NULL)
		goto fail;
	if ((inst->state_dir = strdup(state_dir)) == NULL || part_new(inst) == -1)
		goto fail;
	inst->net_mode = net_mode;
	inst->hold = hold;
	inet_ntop(AF_INET, &svc->address, inst->address, sizeof(inst->address));
	inst->addr = svc->address;
	if (svc->has_address6)
		inet_ntop(AF_INET6, &svc->address6, inst->address6, sizeof(inst->address6));
	inst->hosted = hosted;
	/* The names host networking gives this service's guest. */
	hostnet_mac(svc->name, mac);
	hostnet_mac_format(mac, inst->mac);
	if (inst->net_mode == CONF_NET_BRIDGE)
		hostnet_tap_name(svc->name, inst->tap);
	inst->ops = backend_lookup(svc->backend);
	if (inst->ops == NULL)
		log_warnx("%s: the %s backend is not built into this beckond: its wakes will be "
		          "refused",
		          svc->name, conf_backend_name(svc->backend));
	inst->state = INST_STOPPED;
	inst->since_us = launcher_now_us();
	return inst;
fail:
	log_warn("%s: instance", svc->name);
	if (inst != NULL) {
		part_destroy(inst);
		conf_service_free(inst->svc);
		free(inst->state_dir);
		free(inst);
	}
	return NULL;
}

static void inst_end_run(struct instance *inst, bool graceful)
{
	probe_free(inst->probe);
	inst->probe = NULL;
	if (inst->boot_timer != NULL)
		evtimer_del(inst->boot_timer);
	if (inst->ops != NULL)
		inst->ops->cleanup(inst, graceful);
	console_close(inst->console);
	inst->console = NULL;
	inst->pid = 0;
	inst->start_deferred = false;
	part_end_run(inst);
}

void launcher_inst_destroy(struct instance *inst)
{
	inst->doomed = true;
	part_drop(inst);
	inst_end_run(inst, true);
	launcher_inst_drain_waiters(inst);
	if (inst->boot_timer != NULL)
		event_free(inst->boot_timer);
	free(inst->ext);
	part_destroy(inst);
	conf_service_free(inst->svc);
	free(inst->state_dir);
	free(inst);
}

static int inst_start(struct instance *inst);
static void boot_timer_arm(struct instance *inst);

/* The boot starts over in the same wake: this run ends, its boot timer too. */
static void inst_restart(struct instance *inst)
{
	inst_end_run(inst, false);
	inst->how = LAUNCHER_HOW_BOOT;
	boot_timer_arm(inst);
	if (launcher_child_pending(inst->l, inst->svc->name)) {
		inst->start_deferred = true; /* started once the last process is gone */
		return;
	}
	inst_start(inst); /* a failure fails the boot, as a boot's would */
}

/*
 * A boot failed that a part wants tried once more in the same wake (a
 * restore of a template that failed boots afresh, so that no client sees
 * a bad template): start again. false: not such a boot.
 */
static bool retry_cold(struct instance *inst, const char *why)
{
	if (inst->state != INST_BOOTING || !part_retry(inst, why))
		return false;
	inst_restart(inst);
	return true;
}

static void fail_boot(struct instance *inst, const char *why)
{
	char said[1024] = "", path[4096] = "";

	if (launcher_inst_waiting(inst) == NULL && retry_cold(inst, why))
		return;
	if (inst->console != NULL)
		console_describe(inst->console, said, sizeof(said));
	console_path(inst, path, sizeof(path));
	inst->l->boots_failed++;
	inst->boots_failed++;
	launcher_inst_set_state(inst, INST_FAILED);
	if (*said)
		log_info("%s: boot failed: %s; console %s: %s", inst->svc->name, why, path, said);
	else
		log_info("%s: boot failed: %s; console %s (empty)", inst->svc->name, why, path);
	inst_end_run(inst, false);
	launcher_inst_complete(inst, false);
}

static void boot_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct instance *inst = arg;
	const char *waiting;
	char why[96];

	(void)fd;
	(void)what;
	if (inst->state != INST_BOOTING)
		return;
	if ((waiting = launcher_inst_waiting(inst)) != NULL)
		snprintf(why, sizeof(why), "%s within %" PRIu64 " ms", waiting,
		         inst->svc->boot_timeout_ms);
	else
		snprintf(why, sizeof(why), "not ready within %" PRIu64 " ms",
		         inst->svc->boot_timeout_ms);
	fail_boot(inst, why);
}

/*
 * Start the backend and the probe, once INST has a boot slot (else it
 * waits in line: 0); on failure the boot fails.
 */
static int inst_start(struct instance *inst)
{
	inst->start_deferred = false;
	if (!part_may_start(inst))
		return 0;
	return launcher_inst_start(inst);
}

int launcher_inst_start(struct instance *inst)
{
	if ((inst->console = console_open(inst)) == NULL) {
		fail_boot(inst, "out of memory");
		return -1;
	}
	if (part_start(inst) == -1) {
		fail_boot(inst, "could not start");
		return -1;
	}
	if ((inst->probe = probe_start(inst)) == NULL) {
		fail_boot(inst, "no readiness probe");
		return -1;
	}
	return 0;
}

/* boot_timeout from now (none when 0). */
static void boot_timer_arm(struct instance *inst)
{
	uint64_t ms = inst->svc->boot_timeout_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	if (ms > 0)
		evtimer_add(inst->boot_timer, &tv);
}

static int inst_boot(struct instance *inst)
{
	if (inst->ops == NULL) {
		if (!inst->warned_backend)
			log_warnx("%s: backend %s not built in this version", inst->svc->name,
			          conf_backend_name(inst->svc->backend));
		inst->warned_backend = true;
		return -1;
	}
	if (launcher_inst_place(inst) == -1)
		return -1;
	if (inst->boot_timer == NULL &&
	    (inst->boot_timer = evtimer_new(inst->l->base, boot_timeout_cb, inst)) == NULL) {
		log_warn("%s: boot timer", inst->svc->name);
		return -1;
	}
	launcher_inst_set_state(inst, INST_BOOTING);
	inst->boots++;
	inst->reboots = 0;
	inst->boot_start_us = launcher_now_us();
	log_info("%s: booting", inst->svc->name);
	boot_timer_arm(inst);
	if (launcher_child_pending(inst->l, inst->svc->name)) {
		/* The last run's process is still going away: it may hold the port. */
		log_debug("%s: waiting for the previous process to exit", inst->svc->name);
		inst->start_deferred = true;
		return 0;
	}
	return inst_start(inst);
}

int launcher_inst_boot(struct instance *inst)
{
	return inst_boot(inst);
}

void launcher_inst_predecessor_gone(struct launcher *l, const char *name)
{
	struct instance *inst = launcher_find(l, name);

	if (inst != NULL && inst->start_deferred && inst->state == INST_BOOTING &&
	    !launcher_child_pending(l, name))
		inst_start(inst);
	else if (inst != NULL)
		launcher_inst_released(inst); /* it may have waited for this process to go */
}

void launcher_inst_ready(struct instance *inst)
{
	if (inst->state != INST_BOOTING)
		return;
	probe_free(inst->probe);
	inst->probe = NULL;
	/* A part may hold it back (a template is saved, a clone reseeded first). */
	if (part_hold_ready(inst))
		return;
	evtimer_del(inst->boot_timer);
	launcher_inst_set_state(inst, INST_READY);
	inst->ready_at_us = launcher_now_us();
	inst->l->boots_ok++;
	inst->boots_ok++;
	log_info("%s: ready in %.1f ms", inst->svc->name,
	         (double)(inst->ready_at_us - inst->boot_start_us) / 1000.0);
	launcher_inst_complete(inst, true);
	part_ready(inst); /* the boot or wake histogram; a warm boot pauses */
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited (status %d)", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "exited (killed by signal %d, %s)", WTERMSIG(status),
		         sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(buf, len, "exited (wait status %#x)", status);
}

void launcher_inst_exited(struct instance *inst, int status)
{
	char how[64];

	describe_status(status, how, sizeof(how));
	inst->pid = 0;
	switch (inst->state) {
	case INST_BOOTING:
		fail_boot(inst, how);
		return;
	case INST_READY:
	case INST_PAUSED:
		/* Nobody asked: a clean exit may be the guest's choice, anything else is not. */
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			log_info("%s: %s", inst->svc->name, how);
		else
			log_warnx("%s: %s", inst->svc->name, how);
		break;
	case INST_STOPPING:
		log_info("%s: stopped", inst->svc->name);
		break;
	default:
		log_debug("%s: %s while %s", inst->svc->name, how,
		          launcher_state_name(inst->state));
		break;
	}
	inst_end_run(inst, false);
	launcher_inst_set_state(inst, part_end_state(inst));
	/* Woken while stopping: boot again now. */
	if (inst->rewake && inst_boot(inst) == -1)
		launcher_inst_complete(inst, false);
	inst->rewake = false;
}

void launcher_inst_failed(struct instance *inst, const char *why)
{
	if (inst->state == INST_BOOTING)
		fail_boot(inst, why);
}

/*
 * What a hypervisor does with a guest that resets itself: while booting,
 * start it again (a triple fault early in a boot can be a one-off, under
 * emulation more so), up to LAUNCHER_REBOOTS times in one wake; while
 * serving, stop the instance at once, so that a wake meanwhile boots it
 * afresh rather than answering with the dying guest's address.
 */
bool launcher_inst_rebooted(struct instance *inst)
{
	char why[96];

	switch (inst->state) {
	case INST_BOOTING:
		if (inst->reboots >= LAUNCHER_REBOOTS) {
			snprintf(why, sizeof(why), "the guest rebooted %u times while booting",
			         inst->reboots + 1);
			fail_boot(inst, why);
			return true;
		}
		inst->reboots++;
		log_warnx("%s: the guest rebooted while booting: booting it again (%u of %d)",
		          inst->svc->name, inst->reboots, LAUNCHER_REBOOTS);
		if (!retry_cold(inst, "the guest rebooted"))
			inst_restart(inst);
		return true;
	case INST_READY:
	case INST_PAUSED:
		launcher_kill(inst);
		return true;
	default:
		return false;
	}
}

int launcher_wake(struct instance *inst, launcher_wait_cb cb, void *arg,
                  struct launcher_waiter **handle)
{
	return launcher_wake_from(inst, NULL, cb, arg, handle);
}

int launcher_wake_from(struct instance *inst, const struct sockaddr *client, launcher_wait_cb cb,
                       void *arg, struct launcher_waiter **handle)
{
	struct launcher_waiter *w = NULL;
	int rc;

	if (handle != NULL)
		*handle = NULL;
	if (inst->doomed)
		return -1;
	launcher_activity(inst);
	part_woken(inst); /* a real request: a warm boot stays up once ready */
	switch (inst->state) {
	case INST_READY:
		return 1;
	case INST_PAUSED:
		if ((rc = part_resume(inst)) != 0)
			return rc;
		break; /* resuming: wait for it */
	case INST_STOPPING:
		if (!inst->rewake && launcher_hooks_admit(inst, client) == -1)
			return -1;
		inst->rewake = true;
		break;
	case INST_BOOTING:
		break;
	default:
		/* 1: it waits (for room, in the wake queue: launcher/room/). */
		if ((rc = part_admit(inst, client)) == -1 || (rc == 0 && inst_boot(inst) == -1))
			return -1;
		break;
	}
	if (cb != NULL && (w = launcher_waiter_add(inst, cb, arg)) == NULL)
		return -1;
	if (handle != NULL)
		*handle = w;
	return 0;
}

int launcher_wake_quiet(struct instance *inst, const struct sockaddr *client, launcher_wait_cb cb,
                        void *arg, struct launcher_waiter **handle)
{
	int64_t us = inst->activity_us;
	time_t wall = inst->activity_wall;
	int rc = launcher_wake_from(inst, client, cb, arg, handle);

	/* Served, but not a sign of use: the idle clock runs on. */
	inst->activity_us = us;
	inst->activity_wall = wall;
	return rc;
}

int launcher_stop(struct instance *inst)
{
	return launcher_inst_stop(inst, true);
}

int launcher_kill(struct instance *inst)
{
	return launcher_inst_stop(inst, false);
}

int launcher_inst_stop(struct instance *inst, bool graceful)
{
	switch (inst->state) {
	case INST_BOOTING:
		if (inst->start_deferred || launcher_inst_waiting(inst) != NULL) {
			inst_end_run(inst, false);
			launcher_inst_set_state(inst, INST_STOPPED);
			log_info("%s: stopped", inst->svc->name);
			launcher_inst_complete(inst, false);
			return 0;
		}
		/* FALLTHROUGH */
	case INST_READY:
	case INST_PAUSED:
		log_info("%s: stopping", inst->svc->name);
		probe_free(inst->probe);
		inst->probe = NULL;
		evtimer_del(inst->boot_timer);
		launcher_inst_set_state(inst, INST_STOPPING);
		inst->rewake = false;
		launcher_inst_complete(inst, false);
		inst->ops->stop(inst, graceful);
		return 0;
	case INST_SUSPENDED:
	case INST_FAILED:
		log_info("%s: stopped (was %s)", inst->svc->name, launcher_state_name(inst->state));
		launcher_inst_set_state(inst, INST_STOPPED);
		return 0;
	default:
		if (launcher_inst_waiting(inst) != NULL) { /* stopped by hand while waiting */
			part_drop(inst);
			launcher_inst_complete(inst, false);
		}
		return 0;
	}
}

int launcher_pause(struct instance *inst)
{
	if (inst->state != INST_READY || inst->ops->pause == NULL)
		return -1;
	/* PAUSED first: the observer (the proxy's bypass) sends new connections
	 * elsewhere before the instance stops answering them. */
	launcher_inst_set_state(inst, INST_PAUSED);
	if (inst->ops->pause(inst) == -1) {
		launcher_inst_set_state(inst, INST_READY);
		return -1;
	}
	log_info("%s: paused", inst->svc->name);
	return 0;
}

int launcher_resume(struct instance *inst)
{
	/* Done or under way (QMP "cont" answers later). */
	return part_resume(inst) == -1 ? -1 : 0;
}

void launcher_activity(struct instance *inst)
{
	inst->activity_us = launcher_now_us();
	inst->activity_wall = time(NULL);
}

void launcher_served(struct instance *inst, int64_t us)
{
	if (inst->state != INST_READY) {
		/* Its client has the address and will connect: nothing may hold it off. */
		launcher_wake_from(inst, NULL, NULL, NULL, NULL);
		return;
	}
	launcher_activity_at(inst, us);
	part_woken(inst);
}

void launcher_activity_at(struct instance *inst, int64_t us)
{
	if (us <= inst->activity_us)
		return;
	inst->activity_wall = time(NULL) - (time_t)((launcher_now_us() - us) / 1000000);
	inst->activity_us = us;
}
