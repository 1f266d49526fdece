/*
 * The launcher's parts: what the lifecycle core does not need in order to
 * boot, wait and stop, each in a folder of its own (launcher/revive,
 * room, hosts, pattern, proc). The core knows them only through this table,
 * as it knows backends only through backend_ops: it calls no part by name,
 * and a part calls the core through core.h. part.c lists them, in the
 * order the hooks run. Every member may be NULL.
 */
#ifndef BECKON_LAUNCHER_PART_H
#define BECKON_LAUNCHER_PART_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "conf.h"
#include "launcher.h"

struct instance_list;

struct launcher_part {
	const char *name;

	/* A config, at start and at each reload, in this order. */
	/* Whether CONF can be applied (errors to ERRS as FILE:LINE: message, else logged). */
	int (*check)(const struct conf *conf, FILE *errs);
	/* Before any instance changes; -1 fails the reload (abort undoes what it did). */
	int (*prepare)(struct launcher *l, const struct conf *conf);
	/* Whether the instance OLD can carry on under CONF as far as this part goes. */
	bool (*keeps)(const struct instance *old, const struct conf *conf);
	/* INST is new, made from the config. */
	void (*made)(struct instance *inst);
	/* The new instances are made; -1 fails the reload. */
	int (*apply)(struct launcher *l, const struct conf *conf);
	/* The reload is done; KEPT holds pattern instances set aside, to put back or free. */
	void (*commit)(struct launcher *l, struct instance_list *kept);
	/* The reload failed after prepare. */
	void (*abort)(struct launcher *l);
	/* After a reload that succeeded; -1 fails it (the instances are already the new ones). */
	int (*configured)(struct launcher *l, const struct conf *conf);
	/* The launcher goes: its instances and children are gone. */
	void (*free)(struct launcher *l);
	void (*stats)(const struct launcher *l, struct launcher_stats *st);

	/* One instance: made (its part state; -1 on ENOMEM) and freed (also after a failed new). */
	int (*new)(struct instance *inst);
	void (*destroy)(struct instance *inst);
	/* What the part adds to launcher_info. */
	void (*info)(const struct instance *inst, struct instance_info *info);

	/* One instance, in the order of a wake. */
	/* A request wakes INST (whatever its state). */
	void (*woken)(struct instance *inst);
	/* A wake that needs a boot: 0 boot now, 1 it waits (the part boots it later), -1 refused.
	 */
	int (*admit)(struct instance *inst, const struct sockaddr *client);
	/* Before a boot or a shell: where it runs. -1: nowhere. */
	int (*place)(struct instance *inst);
	/* A booting INST about to start: false when it waits (the part calls launcher_inst_start).
	 */
	bool (*may_start)(struct instance *inst);
	/* Start the backend (the first part that has this; else the backend's start). */
	int (*start)(struct instance *inst);
	/* A paused INST is woken: 1 ready, 0 later, -1 not (the first part that has this). */
	int (*resume)(struct instance *inst);
	/* INST's probe says ready: true when the part holds it back and calls launcher_inst_ready.
	 */
	bool (*hold_ready)(struct instance *inst);
	/* INST is ready and its waiters are told. */
	void (*ready)(struct instance *inst);
	/* A boot fails with WHY: true when the part has it tried once more (then the core
	 * restarts). */
	bool (*retry)(struct instance *inst, const char *why);
	/* The run ended (the backend cleaned up). */
	void (*end_run)(struct instance *inst);
	/* The state a run that ended goes to (the first part; else stopped). */
	enum inst_state (*end_state)(struct instance *inst);
	/* Every state change of INST, from OLD, before the hooks of launcher_add_hooks. */
	void (*state)(struct instance *inst, enum inst_state old);
	/* What INST waits for in this part (a queue), NULL when nothing. */
	const char *(*waiting)(const struct instance *inst);
	/* INST leaves the part's queues without a word (freed, or stopped by hand). */
	void (*drop)(struct instance *inst);
	/* Nothing of INST's may be going on any more (its last process went, its wait ended). */
	void (*released)(struct instance *inst);
};

#endif
