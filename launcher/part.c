/*
 * The launcher's parts (a new part: a folder, one entry here), and the
 * core's calls into them: each runs the hook in every part that has it.
 */
#include <stddef.h>

#include "backend.h"
#include "core.h"
#include "part.h"

extern const struct launcher_part part_proc, part_hosts, part_pattern, part_revive, part_room,
    part_slots;

/* In the order their hooks run: the sweep first; a wake's queues last. */
static const struct launcher_part *const parts[] = {
    &part_proc, &part_hosts, &part_pattern, &part_revive, &part_room, &part_slots,
};

#define NPARTS (sizeof(parts) / sizeof(parts[0]))

int part_check(const struct conf *conf, FILE *errs)
{
	int rc = 0;

	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->check != NULL && parts[i]->check(conf, errs) == -1)
			rc = -1;
	return rc;
}

int part_prepare(struct launcher *l, const struct conf *conf)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->prepare != NULL && parts[i]->prepare(l, conf) == -1)
			return -1;
	return 0;
}

bool part_keeps(const struct instance *old, const struct conf *conf)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->keeps != NULL && !parts[i]->keeps(old, conf))
			return false;
	return true;
}

void part_made(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->made != NULL)
			parts[i]->made(inst);
}

int part_apply(struct launcher *l, const struct conf *conf)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->apply != NULL && parts[i]->apply(l, conf) == -1)
			return -1;
	return 0;
}

void part_commit(struct launcher *l, struct instance_list *kept)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->commit != NULL)
			parts[i]->commit(l, kept);
}

void part_abort(struct launcher *l)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->abort != NULL)
			parts[i]->abort(l);
}

int part_configured(struct launcher *l, const struct conf *conf)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->configured != NULL && parts[i]->configured(l, conf) == -1)
			return -1;
	return 0;
}

void part_free(struct launcher *l)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->free != NULL)
			parts[i]->free(l);
}

void part_stats(const struct launcher *l, struct launcher_stats *st)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->stats != NULL)
			parts[i]->stats(l, st);
}

int part_new(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->new != NULL && parts[i]->new (inst) == -1)
			return -1;
	return 0;
}

void part_destroy(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->destroy != NULL)
			parts[i]->destroy(inst);
}

void part_info(const struct instance *inst, struct instance_info *info)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->info != NULL)
			parts[i]->info(inst, info);
}

void part_woken(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->woken != NULL)
			parts[i]->woken(inst);
}

int part_admit(struct instance *inst, const struct sockaddr *client)
{
	int rc;

	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->admit != NULL && (rc = parts[i]->admit(inst, client)) != 0)
			return rc;
	return 0;
}

int launcher_inst_place(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->place != NULL && parts[i]->place(inst) == -1)
			return -1;
	return 0;
}

bool part_may_start(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->may_start != NULL && !parts[i]->may_start(inst))
			return false;
	return true;
}

int part_start(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->start != NULL)
			return parts[i]->start(inst);
	return inst->ops->start(inst);
}

int part_resume(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->resume != NULL)
			return parts[i]->resume(inst);
	return -1;
}

bool part_hold_ready(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->hold_ready != NULL && parts[i]->hold_ready(inst))
			return true;
	return false;
}

void part_ready(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->ready != NULL)
			parts[i]->ready(inst);
}

bool part_retry(struct instance *inst, const char *why)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->retry != NULL && parts[i]->retry(inst, why))
			return true;
	return false;
}

void part_end_run(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->end_run != NULL)
			parts[i]->end_run(inst);
}

enum inst_state part_end_state(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->end_state != NULL)
			return parts[i]->end_state(inst);
	return INST_STOPPED;
}

void part_state(struct instance *inst, enum inst_state old)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->state != NULL)
			parts[i]->state(inst, old);
}

const char *launcher_inst_waiting(const struct instance *inst)
{
	const char *what;

	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->waiting != NULL && (what = parts[i]->waiting(inst)) != NULL)
			return what;
	return NULL;
}

void part_drop(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->drop != NULL)
			parts[i]->drop(inst);
}

void launcher_inst_released(struct instance *inst)
{
	for (size_t i = 0; i < NPARTS; i++)
		if (parts[i]->released != NULL)
			parts[i]->released(inst);
}
