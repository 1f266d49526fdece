/*
 * The ways back to ready other than a cold boot: suspend and restore, warm
 * shells and warm boots, snapshot templates; what backends report of them.
 */
#ifndef BECKON_LAUNCHER_REVIVE_H
#define BECKON_LAUNCHER_REVIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "launcher.h"

/*
 * Save a ready or paused INST to <state_dir>/<name>.state and end its run:
 * it is suspended once the VMM exits (stopped when the save failed), and a
 * wake restores it. -1 when not possible now or the backend cannot
 * (launcher_can_suspend).
 */
int launcher_suspend(struct instance *inst);
bool launcher_can_suspend(const struct instance *inst);

/*
 * Warm starts. launcher_shell: a stopped (or suspended) INST gets its VMM
 * started with the guest not running (or waiting for the saved state), so
 * that the next wake only runs it; 0 when started or one is there, -1 when
 * the backend has no shells or the last run is still going away.
 * launcher_prewarm: boot a stopped INST for nobody (no admission: the
 * caller did it) and pause it once ready, unless a wake comes first.
 */
int launcher_shell(struct instance *inst);
int launcher_prewarm(struct instance *inst);
/* Whether INST has a warm shell, up or starting (it holds a VMM while stopped). */
bool launcher_inst_has_shell(const struct instance *inst);

/* What a backend reports of them. */
/* The save that suspend started ended (OK: the file is complete). */
void launcher_inst_saved(struct instance *inst, bool ok);
/* The guest started running (QEMU's RESUME): a probe waiting on a lost SYN tries again. */
void launcher_inst_running(struct instance *inst);
/* The VMM of a warm shell is up and waits for shell_run. */
void launcher_inst_shell_ready(struct instance *inst);
/*
 * Whether INST's start under way (or the warm shell being made) restores
 * its service's template: one of many clones of one snapshot, which the
 * backend must give fresh entropy and clock as soon as it runs.
 */
bool launcher_inst_is_clone(const struct instance *inst);
/*
 * Whether INST's start under way (or the warm shell being made) is the
 * boot that makes its service's template once ready.
 */
bool launcher_inst_makes_template(const struct instance *inst);
/*
 * <state_dir>/templates/<name>.ram (TMP: .ram.tmp): where a backend keeps
 * the template's memory beside its state, written to the .tmp during the
 * save (template.c renames it with the rest). -1 when it does not fit.
 */
int launcher_template_ram_path(const struct instance *inst, bool tmp, char *buf, size_t len);
/* A clone was given its fresh entropy and clock: readiness may now be reported. */
void launcher_inst_reseeded(struct instance *inst);
/* The save template_save started ended (OK: the file is whole, the guest runs). */
void launcher_inst_templated(struct instance *inst, bool ok);
/* A resume that returned 1 (under way) ended. */
void launcher_inst_resumed(struct instance *inst, bool ok);

#endif
