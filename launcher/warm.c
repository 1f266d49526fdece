/*
 * The ways back to ready other than a cold boot, and the warm pools:
 * - resume from paused, which a backend may finish later (QMP "cont");
 * - restore from suspended: the backend starts from the saved state file;
 * - a warm shell (warm = "shell"): the VMM is up with the guest not yet
 *   running, and a boot only runs it; made at start and after an idle stop;
 * - a warm pause (warm = "paused"): booted at start, paused once ready.
 * The launcher's state machine calls the hooks here at each step.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "internal.h"
#include "log.h"

static double ms_since(int64_t us)
{
	return (double)(launcher_now_us() - us) / 1000.0;
}

static void warm_forget_state(struct instance *inst, const char *why)
{
	char path[4096];

	if (launcher_idle_state_path(inst, path, sizeof(path)) == -1)
		return;
	if (unlink(path) == 0 && why != NULL)
		log_info("%s: saved state removed (%s)", inst->svc->name, why);
}

void launcher_idle_state(struct instance *inst, enum inst_state old)
{
	enum inst_state s = inst->state;

	inst->idle.since_us = launcher_now_us();
	if (s == INST_READY)
		inst->idle.tap_seen = false; /* a new baseline for the traffic counters */
	if (old == INST_SUSPENDED && s == INST_BOOTING) {
		inst->idle.restoring = true;
		inst->idle.wake_start_us = inst->idle.since_us;
	}
	if (old == INST_SUSPENDED && s == INST_STOPPED)
		warm_forget_state(inst, "stopped while suspended");
	if (s == INST_FAILED && inst->idle.restoring) {
		/* Restoring it again would fail again: the next wake boots afresh. */
		inst->idle.restoring = false;
		warm_forget_state(inst, "the restore failed");
	}
}

void launcher_idle_ready(struct instance *inst)
{
	double s = (double)(inst->ready_at_us - inst->boot_start_us) / 1e6;

	if (inst->idle.restoring) {
		inst->idle.restoring = false;
		launcher_hist_observe(&inst->l->wake_hist, s);
		log_info("%s: restored from suspend in %.1f ms", inst->svc->name, s * 1000);
		warm_forget_state(inst, NULL); /* used: the guest has moved on */
	} else {
		launcher_hist_observe(&inst->l->boot_hist, s);
	}
	if (inst->idle.warming) {
		/* Nobody asked for it meanwhile (a wake clears the flag). */
		inst->idle.warming = false;
		if (launcher_pause(inst) == 0)
			log_info("%s: warm: paused, ready to resume", inst->svc->name);
	}
}

enum inst_state launcher_idle_end_state(struct instance *inst)
{
	bool saved = inst->idle.suspending && inst->idle.saved;

	inst->idle.suspending = inst->idle.saved = false;
	inst->idle.resuming = false;
	inst->idle.shell = inst->idle.shell_ready = inst->idle.shell_restore = false;
	if (saved)
		log_info("%s: suspended", inst->svc->name);
	/* A restore shell that ended leaves the saved state as it was. */
	return saved || inst->state == INST_SUSPENDED ? INST_SUSPENDED : INST_STOPPED;
}

void launcher_idle_exited(struct instance *inst)
{
	if (inst->idle.rewarm && (inst->state == INST_STOPPED || inst->state == INST_SUSPENDED)) {
		inst->idle.rewarm = false;
		launcher_idle_warm(inst);
	}
	inst->idle.rewarm = false;
}

/* The saved state to restore, in PATH; false when there is none. */
static bool warm_saved(struct instance *inst, char *path, size_t len)
{
	return launcher_idle_state_path(inst, path, len) == 0 && access(path, R_OK) == 0;
}

/* Run the warm shell when it fits this boot (1: not, start as usual). */
static int warm_shell_run(struct instance *inst)
{
	bool restore = inst->idle.shell_restore, up = inst->idle.shell_ready;
	char path[4096];

	inst->idle.shell = inst->idle.shell_ready = inst->idle.shell_restore = false;
	if (inst->ops->shell_run == NULL || inst->priv == NULL)
		return 1;
	/* A restore shell must be up: the state file goes over its QMP. */
	if (restore == inst->idle.restoring &&
	    (!restore || (up && warm_saved(inst, path, sizeof(path))))) {
		log_debug("%s: running the warm shell", inst->svc->name);
		return inst->ops->shell_run(inst, restore ? path : NULL);
	}
	/* A restore shell with nothing to restore, or the other way round. */
	inst->ops->cleanup(inst, false);
	return 1;
}

int launcher_idle_start_backend(struct instance *inst)
{
	char path[4096];
	int rc;

	if (inst->idle.shell && (rc = warm_shell_run(inst)) != 1)
		return rc;
	if (inst->idle.restoring) {
		if (inst->ops->restore != NULL && warm_saved(inst, path, sizeof(path)))
			return inst->ops->restore(inst, path);
		inst->idle.restoring = false;
		log_info("%s: no saved state to restore: booting afresh", inst->svc->name);
	}
	return inst->ops->start(inst);
}

static void warm_resumed(struct instance *inst)
{
	double ms = ms_since(inst->idle.wake_start_us);

	launcher_inst_set_state(inst, INST_READY);
	launcher_hist_observe(&inst->l->wake_hist, ms / 1000.0);
	log_info("%s: resumed in %.2f ms", inst->svc->name, ms);
}

int launcher_idle_resume(struct instance *inst)
{
	int64_t start = launcher_now_us();
	int rc;

	if (inst->state != INST_PAUSED || inst->ops == NULL || inst->ops->resume == NULL)
		return -1;
	if (inst->idle.resuming)
		return 0;
	if ((rc = inst->ops->resume(inst)) == -1)
		return -1;
	inst->idle.wake_start_us = start;
	if (rc == 1) {
		inst->idle.resuming = true;
		return 0;
	}
	warm_resumed(inst);
	return 1;
}

void launcher_inst_resumed(struct instance *inst, bool ok)
{
	if (!inst->idle.resuming)
		return;
	inst->idle.resuming = false;
	if (inst->state != INST_PAUSED)
		return; /* stopped meanwhile */
	if (!ok) {
		log_warnx("%s: resume failed", inst->svc->name);
		launcher_inst_complete(inst, false);
		return;
	}
	warm_resumed(inst);
	launcher_inst_complete(inst, true);
}

void launcher_inst_running(struct instance *inst)
{
	/* A restored guest says nothing on its console: the only sign it runs. */
	if (inst->state == INST_BOOTING && inst->probe != NULL)
		probe_kick(inst->probe);
}

void launcher_inst_saved(struct instance *inst, bool ok)
{
	if (!inst->idle.suspending)
		return;
	inst->idle.saved = ok;
	if (ok)
		log_info("%s: state saved in %.1f ms", inst->svc->name,
		         ms_since(inst->idle.since_us));
	else
		log_warnx("%s: saving the state failed: stopping it instead", inst->svc->name);
}

static void warm_shell(struct instance *inst)
{
	bool restore = inst->state == INST_SUSPENDED;

	if (inst->idle.shell)
		return;
	if (inst->ops->shell == NULL || inst->ops->shell_run == NULL) {
		if (!inst->warned_backend)
			log_warnx("%s: the %s backend has no shells: warm = \"shell\" ignored",
			          inst->svc->name, inst->ops->name);
		inst->warned_backend = true;
		return;
	}
	if (launcher_child_pending(inst->l, inst->svc->name)) {
		log_debug("%s: warm shell: the last run is still going away", inst->svc->name);
		return;
	}
	if (inst->ops->shell(inst, restore) == -1) {
		log_warnx("%s: warm shell: could not start", inst->svc->name);
		return;
	}
	inst->idle.shell = true;
	inst->idle.shell_ready = false;
	inst->idle.shell_restore = restore;
	inst->idle.wake_start_us = launcher_now_us();
	log_debug("%s: warm shell starting", inst->svc->name);
}

void launcher_inst_shell_ready(struct instance *inst)
{
	if (!inst->idle.shell || (inst->state != INST_STOPPED && inst->state != INST_SUSPENDED))
		return;
	inst->idle.shell_ready = true;
	log_info("%s: warm %sshell ready in %.1f ms", inst->svc->name,
	         inst->idle.shell_restore ? "restore " : "", ms_since(inst->idle.wake_start_us));
}

void launcher_idle_warm(struct instance *inst)
{
	if (inst->doomed || inst->ops == NULL || inst->l->cap == NULL)
		return;
	/* A suspended guest can only have a restore shell. */
	if (inst->state != INST_STOPPED &&
	    (inst->state != INST_SUSPENDED || inst->svc->warm != CONF_WARM_SHELL))
		return;
	switch (inst->svc->warm) {
	case CONF_WARM_NONE:
		return;
	case CONF_WARM_SHELL:
		warm_shell(inst);
		return;
	case CONF_WARM_PAUSED:
		if (launcher_cap_admit(inst, NULL, true) == -1)
			return;
		inst->idle.warming = true;
		log_info("%s: warm: booting, to pause once ready", inst->svc->name);
		if (launcher_inst_boot(inst) == -1)
			inst->idle.warming = false;
		return;
	}
}
