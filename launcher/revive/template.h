/* Inside launcher/revive/: what revive.c asks of template.c. */
#ifndef BECKON_LAUNCHER_TEMPLATE_H
#define BECKON_LAUNCHER_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"

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
