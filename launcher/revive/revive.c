/*
 * The ways back to ready other than a cold boot, and the warm starts:
 * - resume from paused, which a backend may finish later (QMP "cont");
 * - suspend to a file, and restore from it: the backend starts from the
 *   saved state;
 * - a warm shell (launcher_shell): the VMM is up with the guest not yet
 *   running, and a boot only runs it;
 * - a warm boot (launcher_prewarm): booted for nobody, paused once ready.
 * and the snapshot templates cold starts restore (template.c). Whether and
 * when to make them is the idle engine's call (policy/); the state machine
 * (instance.c) calls this part's hooks (part_revive, at the end) at each step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "part.h"
#include "revive.h"
#include "revive_int.h"

static double ms_since(int64_t us)
{
	return (double)(launcher_now_us() - us) / 1000.0;
}

static int revive_state_path(const struct instance *inst, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.state", inst->state_dir, inst->svc->name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void revive_forget(struct instance *inst, const char *why)
{
	char path[4096];

	if (revive_state_path(inst, path, sizeof(path)) == -1)
		return;
	if (unlink(path) == 0 && why != NULL)
		log_info("%s: %s", inst->svc->name, why);
}

/* A new instance (a config): its arguments may differ from the saved state's run's. */
static void revive_forget_stale(struct instance *inst)
{
	revive_forget(inst, "removed the saved state an earlier run left");
}

static void revive_state(struct instance *inst, enum inst_state old)
{
	enum inst_state s = inst->state;

	if (old == INST_SUSPENDED && s == INST_BOOTING) {
		inst->rv->restoring = true;
		inst->rv->wake_start_us = inst->since_us;
	}
	if (old == INST_SUSPENDED && s == INST_STOPPED)
		revive_forget(inst, "saved state removed (stopped while suspended)");
	if (s == INST_FAILED && inst->rv->restoring) {
		/* Restoring it again would fail again: the next wake boots afresh. */
		inst->rv->restoring = false;
		revive_forget(inst, "saved state removed (the restore failed)");
	}
	if (s == INST_FAILED && inst->rv->from_template)
		template_drop(inst, "the restore failed; the next start boots and makes a new one");
	if (s != INST_BOOTING)
		inst->rv->from_template = false;
}

static void revive_ready(struct instance *inst)
{
	double s = (double)(inst->ready_at_us - inst->boot_start_us) / 1e6;

	launcher_hist_observe(&inst->l->hist[inst->how], s);
	if (inst->rv->restoring) {
		inst->rv->restoring = false;
		log_info("%s: restored from suspend in %.1f ms", inst->svc->name, s * 1000);
		revive_forget(inst, NULL); /* used: the guest has moved on */
	} else if (inst->how == LAUNCHER_HOW_TEMPLATE) {
		log_info("%s: restored from its template in %.1f ms", inst->svc->name, s * 1000);
	} else if (inst->how == LAUNCHER_HOW_POOL) {
		log_info("%s: restored from its template into pool VMM %d in %.1f ms",
		         inst->svc->name, inst->rv->pool_vmm, s * 1000);
	}
	if (inst->rv->warming) {
		/* Nobody asked for it meanwhile (a wake clears the flag). */
		inst->rv->warming = false;
		if (launcher_pause(inst) == 0)
			log_info("%s: warm: paused, ready to resume", inst->svc->name);
	}
}

static enum inst_state revive_end_state(struct instance *inst)
{
	bool saved = inst->rv->suspending && inst->rv->saved;

	inst->rv->suspending = inst->rv->saved = false;
	inst->rv->resuming = false;
	inst->rv->shell = inst->rv->shell_ready = inst->rv->shell_restore = false;
	inst->rv->shell_template = false;
	if (saved)
		log_info("%s: suspended", inst->svc->name);
	/* A restore shell that ended leaves the saved state as it was. */
	return saved || inst->state == INST_SUSPENDED ? INST_SUSPENDED : INST_STOPPED;
}

/* The saved state to restore, in PATH; false when there is none. */
static bool revive_saved(struct instance *inst, char *path, size_t len)
{
	return revive_state_path(inst, path, len) == 0 && access(path, R_OK) == 0;
}

/* A shell waiting for the template restores it (a cold start): the run is a clone. */
static int revive_shell_template(struct instance *inst, bool up)
{
	char path[4096];

	if (!inst->rv->restoring && up && template_path_state(inst, path, sizeof(path)) == 0 &&
	    access(path, R_OK) == 0) {
		log_debug("%s: running the warm shell: the template", inst->svc->name);
		inst->how = LAUNCHER_HOW_TEMPLATE;
		inst->rv->from_template = true;
		inst->rv->reseeded = inst->rv->ready_held = false;
		return inst->ops->shell_run(inst, path);
	}
	inst->ops->cleanup(inst, false);
	return 1;
}

/* Run the warm shell when it fits this boot (1: not, start as usual). */
static int revive_shell_run(struct instance *inst)
{
	bool restore = inst->rv->shell_restore, up = inst->rv->shell_ready;
	bool tmpl = inst->rv->shell_template;
	char path[4096];

	inst->rv->shell = inst->rv->shell_ready = inst->rv->shell_restore = false;
	inst->rv->shell_template = false;
	if (inst->ops->shell_run == NULL || inst->priv == NULL)
		return 1;
	if (tmpl)
		return revive_shell_template(inst, up);
	/* A restore shell must be up: the state file goes over its QMP. */
	if (restore == inst->rv->restoring &&
	    (!restore || (up && revive_saved(inst, path, sizeof(path))))) {
		log_debug("%s: running the warm shell", inst->svc->name);
		return inst->ops->shell_run(inst, restore ? path : NULL);
	}
	/* A restore shell with nothing to restore, or the other way round. */
	inst->ops->cleanup(inst, false);
	return 1;
}

/* The template PATH into a VMM of the pool, when one fits: 0, else -1 (restore as without). */
static int revive_pool(struct instance *inst, const char *path)
{
	bool no_pool = inst->rv->no_pool;
	int n;

	inst->rv->no_pool = false;
	if (no_pool || inst->ops->pool_restore == NULL ||
	    (n = inst->ops->pool_restore(inst, path)) < 0)
		return -1;
	inst->how = LAUNCHER_HOW_POOL;
	inst->rv->pool_vmm = n;
	log_info("%s: restoring from its template into pool VMM %d", inst->svc->name, n);
	return 0;
}

/* A cold start: from the service's template when there is one, else a boot. */
static int revive_cold_start(struct instance *inst)
{
	char path[4096];

	if (template_take(inst, path, sizeof(path))) {
		inst->how = LAUNCHER_HOW_TEMPLATE;
		inst->rv->from_template = true;
		inst->rv->reseeded = inst->rv->ready_held = false;
		if (revive_pool(inst, path) == 0)
			return 0;
		log_info("%s: restoring from its template", inst->svc->name);
		if (inst->ops->restore(inst, path) == 0)
			return 0;
		inst->rv->from_template = false;
		template_drop(inst, "it could not be restored");
		template_take(inst, path, sizeof(path)); /* this boot makes a new one */
	}
	inst->how = LAUNCHER_HOW_BOOT;
	return inst->ops->start(inst);
}

static int revive_start_backend(struct instance *inst)
{
	char path[4096];
	int rc;

	inst->rv->from_template = false;
	inst->how = inst->rv->restoring ? LAUNCHER_HOW_RESTORE : LAUNCHER_HOW_SHELL;
	if (inst->rv->shell && (rc = revive_shell_run(inst)) != 1)
		return rc;
	if (inst->rv->restoring) {
		if (inst->ops->restore != NULL && revive_saved(inst, path, sizeof(path)))
			return inst->ops->restore(inst, path);
		inst->rv->restoring = false;
		log_info("%s: no saved state to restore: booting afresh", inst->svc->name);
	}
	return revive_cold_start(inst);
}

static void revive_resumed(struct instance *inst)
{
	double ms = ms_since(inst->rv->wake_start_us);

	launcher_inst_set_state(inst, INST_READY);
	launcher_hist_observe(&inst->l->hist[LAUNCHER_HOW_RESUME], ms / 1000.0);
	log_info("%s: resumed in %.2f ms", inst->svc->name, ms);
}

static int revive_resume(struct instance *inst)
{
	int64_t start = launcher_now_us();
	int rc;

	if (inst->state != INST_PAUSED || inst->ops == NULL || inst->ops->resume == NULL)
		return -1;
	if (inst->rv->resuming)
		return 0;
	if ((rc = inst->ops->resume(inst)) == -1)
		return -1;
	inst->rv->wake_start_us = start;
	if (rc == 1) {
		inst->rv->resuming = true;
		return 0;
	}
	revive_resumed(inst);
	return 1;
}

void launcher_inst_resumed(struct instance *inst, bool ok)
{
	if (!inst->rv->resuming)
		return;
	inst->rv->resuming = false;
	if (inst->state != INST_PAUSED)
		return; /* stopped meanwhile */
	if (!ok) {
		log_warnx("%s: resume failed", inst->svc->name);
		launcher_inst_complete(inst, false);
		return;
	}
	revive_resumed(inst);
	launcher_inst_complete(inst, true);
}

void launcher_inst_running(struct instance *inst)
{
	/* A restored guest says nothing on its console: the only sign it runs. */
	if (inst->state == INST_BOOTING && inst->probe != NULL)
		probe_kick(inst->probe);
}

bool launcher_can_suspend(const struct instance *inst)
{
	return inst->ops != NULL && inst->ops->suspend != NULL;
}

int launcher_suspend(struct instance *inst)
{
	char path[4096];

	if ((inst->state != INST_READY && inst->state != INST_PAUSED) ||
	    !launcher_can_suspend(inst) || revive_state_path(inst, path, sizeof(path)) == -1)
		return -1;
	unlink(path);
	inst->rv->suspending = true;
	inst->rv->saved = false;
	if (inst->ops->suspend(inst, path) == -1) {
		inst->rv->suspending = false;
		return -1;
	}
	launcher_inst_set_state(inst, INST_STOPPING);
	inst->rewake = false;
	launcher_inst_complete(inst, false);
	return 0;
}

void launcher_inst_saved(struct instance *inst, bool ok)
{
	if (!inst->rv->suspending)
		return;
	inst->rv->saved = ok;
	if (ok)
		log_info("%s: state saved in %.1f ms", inst->svc->name, ms_since(inst->since_us));
	else
		log_warnx("%s: saving the state failed: stopping it instead", inst->svc->name);
}

int launcher_shell(struct instance *inst)
{
	bool restore = inst->state == INST_SUSPENDED;
	char path[4096];

	if (inst->doomed || inst->ops == NULL ||
	    (inst->state != INST_STOPPED && inst->state != INST_SUSPENDED))
		return -1;
	if (inst->rv->shell)
		return 0;
	if (inst->ops->shell == NULL || inst->ops->shell_run == NULL) {
		if (!inst->warned_backend)
			log_warnx("%s: the %s backend has no shells: warm = \"shell\" ignored",
			          inst->svc->name, inst->ops->name);
		inst->warned_backend = true;
		return -1;
	}
	if (launcher_child_pending(inst->l, inst->svc->name)) {
		log_debug("%s: warm shell: the last run is still going away", inst->svc->name);
		return -1;
	}
	/* A stopped service with a template: a shell that waits to restore it. */
	inst->rv->shell_template = !restore && template_take(inst, path, sizeof(path));
	restore = restore || inst->rv->shell_template;
	if (launcher_inst_place(inst) == -1 || inst->ops->shell(inst, restore) == -1) {
		log_warnx("%s: warm shell: could not start", inst->svc->name);
		inst->rv->shell_template = false;
		return -1;
	}
	inst->rv->shell = true;
	inst->rv->shell_ready = false;
	inst->rv->shell_restore = restore;
	inst->rv->wake_start_us = launcher_now_us();
	log_debug("%s: warm shell starting", inst->svc->name);
	return 0;
}

void launcher_inst_shell_ready(struct instance *inst)
{
	if (!inst->rv->shell || (inst->state != INST_STOPPED && inst->state != INST_SUSPENDED))
		return;
	inst->rv->shell_ready = true;
	log_info("%s: warm %sshell ready in %.1f ms", inst->svc->name,
	         inst->rv->shell_template  ? "template "
	         : inst->rv->shell_restore ? "restore "
	                                   : "",
	         ms_since(inst->rv->wake_start_us));
}

int launcher_prewarm(struct instance *inst)
{
	if (inst->doomed || inst->ops == NULL || inst->state != INST_STOPPED)
		return -1;
	inst->rv->warming = true;
	log_info("%s: warm: booting, to pause once ready", inst->svc->name);
	if (launcher_inst_boot(inst) == -1) {
		inst->rv->warming = false;
		return -1;
	}
	return 0;
}

/* At readiness: a first boot saves the template, a clone waits for its reseed. */
static bool revive_hold_ready(struct instance *inst)
{
	if (inst->rv->templating)
		return true; /* the save under way calls launcher_inst_ready */
	return template_save_begin(inst) == 0 || template_hold_ready(inst);
}

static int revive_new(struct instance *inst)
{
	return (inst->rv = calloc(1, sizeof(*inst->rv))) != NULL ? 0 : -1;
}

static void revive_destroy(struct instance *inst)
{
	if (inst->rv != NULL)
		free(inst->rv->tpl_key);
	free(inst->rv);
	inst->rv = NULL;
}

/* A real request: a warm boot stays up once ready. */
static void revive_woken(struct instance *inst)
{
	inst->rv->warming = false;
}

static void revive_info(const struct instance *inst, struct instance_info *info)
{
	info->shell = inst->rv->shell && inst->rv->shell_ready;
}

bool launcher_inst_has_shell(const struct instance *inst)
{
	return inst->rv->shell;
}

/*
 * A restore of the service's template failed (QEMU refused the state, the
 * guest died or never became ready): drop the template and boot afresh in
 * the same wake; a restore into a pool VMM is tried once more in a VMM of
 * its own first. false: not such a restore.
 */
static bool revive_retry(struct instance *inst, const char *why)
{
	if (!launcher_how_clone(inst->how))
		return false;
	if (inst->how == LAUNCHER_HOW_POOL) {
		/* The pool VMM may be at fault, not the template: a VMM of its own tries it. */
		log_warnx("%s: the restore into pool VMM %d failed: %s; restoring into a VMM of "
		          "its own",
		          inst->svc->name, inst->rv->pool_vmm, why);
		inst->rv->no_pool = true;
	} else {
		log_warnx("%s: the restore from its template failed: %s", inst->svc->name, why);
		template_drop(inst, "the restore failed; booting afresh");
	}
	return true;
}

const struct launcher_part part_revive = {
    .name = "revive",
    .new = revive_new,
    .destroy = revive_destroy,
    .info = revive_info,
    .woken = revive_woken,
    .made = revive_forget_stale,
    .start = revive_start_backend,
    .resume = revive_resume,
    .hold_ready = revive_hold_ready,
    .ready = revive_ready,
    .retry = revive_retry,
    .end_run = template_end_run,
    .end_state = revive_end_state,
    .state = revive_state,
};
