/*
 * What a pool of VMMs started ahead (pool = { size = N; }) needs of the
 * launcher, for any backend: a stand-in instance for each such VMM, which
 * belongs to no service and is in no registry, so that proc_spawn, the
 * child registry and the sweep treat it as any child; and the adoption of
 * its process by the instance a cold start restores into it. The pool
 * itself (which VMMs, when to refill) is the backend's (qemu_pool.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "proc.h"

static struct launcher *vmmpool_l;
static char *vmmpool_state_dir;
static unsigned vmmpool_counts[2]; /* idle, starting: for the metrics */

void vmmpool_set_launcher(struct launcher *l, const char *state_dir)
{
	char *d = state_dir != NULL ? strdup(state_dir) : NULL;

	if (state_dir != NULL && d == NULL)
		return; /* the last one stays */
	free(vmmpool_state_dir);
	vmmpool_state_dir = d;
	vmmpool_l = l;
}

struct instance *backend_standin_new(const struct conf_service *svc, const char *name,
                                     const struct backend_ops *ops)
{
	struct conf_service *copy = NULL;
	struct instance *inst = NULL;
	char *n = NULL;

	if (vmmpool_l == NULL || vmmpool_state_dir == NULL ||
	    (copy = conf_service_dup(svc)) == NULL || (n = strdup(name)) == NULL)
		goto fail;
	free(copy->name);
	copy->name = n;
	n = NULL;
	/* User networking: no tap, nothing on the bridge; its NIC comes at take time. */
	if ((inst = launcher_inst_make(vmmpool_l, copy, vmmpool_state_dir, CONF_NET_USER,
	                               CONF_HOLD_NONE, false)) == NULL)
		goto fail;
	inst->ops = ops;
	conf_service_free(copy);
	return inst;
fail:
	free(n);
	if (copy != NULL)
		conf_service_free(copy);
	return NULL;
}

void backend_standin_free(struct instance *standin)
{
	/* It never ran as an instance: no probe, console, timer or waiter. */
	if (standin == NULL)
		return;
	part_destroy(standin);
	conf_service_free(standin->svc);
	free(standin->state_dir);
	free(standin);
}

/* <state_dir>/<name>.<backend>.pid of INST. */
static void vmmpool_pidpath(const struct instance *inst, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.%s.pid", inst->state_dir, inst->svc->name, inst->ops->name);
}

void backend_standin_adopt(struct instance *standin, struct instance *inst, struct proc *p)
{
	char from[4096], to[4096];

	vmmpool_pidpath(standin, from, sizeof(from));
	vmmpool_pidpath(inst, to, sizeof(to));
	if (rename(from, to) == -1)
		log_warn("%s: pid file %s", inst->svc->name, to);
	if (p->child != NULL)
		launcher_child_adopt(p->child, inst);
	p->inst = inst;
	inst->pid = p->pid;
	standin->pid = 0;
}

bool backend_boots_under_way(void)
{
	struct instance *inst;

	if (vmmpool_l == NULL)
		return false;
	TAILQ_FOREACH(inst, &vmmpool_l->instances, entry)
	if (inst->state == INST_BOOTING)
		return true;
	return false;
}

void backend_pool_counts(unsigned idle, unsigned starting)
{
	vmmpool_counts[0] = idle;
	vmmpool_counts[1] = starting;
}

void vmmpool_stats(unsigned *idle, unsigned *starting)
{
	*idle = vmmpool_counts[0];
	*starting = vmmpool_counts[1];
}
