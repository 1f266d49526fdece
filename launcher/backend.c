/* The backends built into this binary. A new backend: one file, one entry. */
#include <stddef.h>
#include <stdio.h>

#include "backend.h"
#include "internal.h"
#include "qemu.h" /* qemu backend hook */

static const struct backend_ops *const backends[] = {
    [CONF_BACKEND_QEMU] = &backend_qemu_ops,
    [CONF_BACKEND_LIBVIRT] = NULL,
    [CONF_BACKEND_XEN] = NULL,
    [CONF_BACKEND_EXEC] = &backend_exec_ops,
};

const struct backend_ops *backend_lookup(enum conf_backend b)
{
	if ((size_t)b >= sizeof(backends) / sizeof(backends[0]))
		return NULL;
	return backends[b];
}

void launcher_backend_names(char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i] != NULL && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "",
			                         backends[i]->name);
}

/* What backends may read of an instance. */
const struct conf_service *launcher_inst_service(const struct instance *inst)
{
	return inst->svc;
}

struct event_base *launcher_inst_base(const struct instance *inst)
{
	return inst->l->base;
}

const char *launcher_inst_state_dir(const struct instance *inst)
{
	return inst->state_dir;
}

const char *launcher_inst_address(const struct instance *inst)
{
	return inst->address;
}

const char *launcher_inst_mac(const struct instance *inst)
{
	return inst->mac;
}

const char *launcher_inst_tap(const struct instance *inst)
{
	return inst->tap;
}

enum conf_hold launcher_inst_hold(const struct instance *inst)
{
	return inst->hold;
}

void *launcher_inst_priv(const struct instance *inst)
{
	return inst->priv;
}

void launcher_inst_set_priv(struct instance *inst, void *priv)
{
	inst->priv = priv;
}

void launcher_inst_set_pid(struct instance *inst, pid_t pid)
{
	inst->pid = pid;
}
