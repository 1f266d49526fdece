/* Inside launcher/revive/: an instance's state here, and what revive.c asks of template.c. */
#ifndef BECKON_LAUNCHER_REVIVE_INT_H
#define BECKON_LAUNCHER_REVIVE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* The ways back to ready other than a cold boot (revive.c; inst->rv). */
struct inst_revive {
	bool warming;          /* a warm boot: pause once ready, unless woken */
	bool shell;            /* a warm shell waits (state stopped or suspended) */
	bool shell_ready;      /* ... and its VMM is up */
	bool shell_restore;    /* ... waiting for a saved state (suspended) or the template */
	bool shell_template;   /* ... the service's template (stopped) */
	bool suspending;       /* its state is being saved */
	bool saved;            /* the save succeeded: suspended once it exits */
	bool restoring;        /* this boot restores a saved state */
	bool resuming;         /* an asynchronous resume is under way */
	int64_t wake_start_us; /* a wake from paused or suspended began */
	bool from_template;    /* this boot restores the service's template */
	bool templating;       /* ready, held back while the template is saved */
	bool reseeded;         /* a clone was given fresh entropy (launcher_inst_reseeded) */
	bool ready_held;       /* ... and its readiness waits for that */
	char *tpl_key;         /* a cold boot that makes the template: its key */
	int64_t tpl_start_us;  /* the template's save began */
	int pool_vmm;          /* a restore into a pool VMM: its number */
	bool no_pool;          /* ... failed: this boot restores into a VMM of its own */
};

/* template.c: snapshot templates (template = "auto"). */
/* Whether INST's service makes and restores templates (and its backend can). */
bool template_wanted(const struct instance *inst);
/*
 * At a cold boot: true with the template's state in PATH when there is one
 * for this guest; else false, a stale one dropped, and (when wanted) the
 * key kept so that this boot makes the template once ready.
 */
bool template_take(struct instance *inst, char *path, size_t len);
/* At readiness: 0 when a save of the template began (readiness waits), -1 when none. */
int template_save_begin(struct instance *inst);
/* <state_dir>/templates/<name>.state. -1 when it does not fit. */
int template_path_state(const struct instance *inst, char *buf, size_t len);
/* At readiness: true when a clone's readiness must wait for its reseed. */
bool template_hold_ready(struct instance *inst);
/* Remove the template's files (WHY logged when there was one; NULL: silent). */
void template_drop(struct instance *inst, const char *why);
/* The run ended: a save under way is abandoned. */
void template_end_run(struct instance *inst);

#endif
