/*
 * The backends built into this binary (a new backend: a folder, one entry
 * here), what they may read of an instance, and what the launcher does for
 * all of them at each config: the sweep of a killed beckond's processes and
 * the host network of bridge mode (hostnet/).
 */
#include <stddef.h>
#include <stdio.h>

#include "backend.h"
#include "exec.h"
#include "hostnet.h"
#include "core.h"
#include "log.h"
#include "qemu.h"
#ifdef HAVE_LIBVIRT
#include "virt.h"
#define BACKEND_LIBVIRT (&backend_libvirt_ops)
#else
#define BACKEND_LIBVIRT NULL /* libvirt-dev was missing at build time */
#endif
#ifdef HAVE_XEN
#include "xen.h"
#define BACKEND_XEN (&backend_xen_ops)
#else
#define BACKEND_XEN NULL /* libxen-dev was missing at build time */
#endif

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

static const struct backend_ops *const backends[] = {
    [CONF_BACKEND_QEMU] = &backend_qemu_ops,
    [CONF_BACKEND_LIBVIRT] = BACKEND_LIBVIRT,
    [CONF_BACKEND_XEN] = BACKEND_XEN,
    [CONF_BACKEND_EXEC] = &backend_exec_ops,
};

const struct backend_ops *backend_lookup(enum conf_backend b)
{
	if ((size_t)b >= NBACKENDS)
		return NULL;
	return backends[b];
}

/* Whether SVC's guest sits on beckon's bridge in bridge mode. */
static bool backend_uses_bridge(const struct conf_service *svc)
{
	const struct backend_ops *ops = backend_lookup(svc->backend);

	return ops != NULL && ops->bridge != NULL && ops->bridge(svc);
}

/* The loop of the launcher being configured, for backends' own timers. */
static struct event_base *backend_event_base;

struct event_base *backend_base(void)
{
	return backend_event_base;
}

int backend_global_init(struct launcher *l, const struct conf *conf)
{
	size_t i;

	backend_event_base = l->base;
	if (hostnet_sync(conf, backend_uses_bridge) == -1)
		return -1;
	for (i = 0; i < NBACKENDS; i++)
		if (backends[i] != NULL && backends[i]->global_init != NULL &&
		    backends[i]->global_init(conf) == -1)
			return -1;
	return 0;
}

void backend_global_fini(void)
{
	for (size_t i = 0; i < NBACKENDS; i++)
		if (backends[i] != NULL && backends[i]->global_fini != NULL)
			backends[i]->global_fini();
	hostnet_fini();
}

void backend_global_drain(void)
{
	for (size_t i = 0; i < NBACKENDS; i++)
		if (backends[i] != NULL && backends[i]->global_drain != NULL)
			backends[i]->global_drain();
}

const char *backend_gateway(void)
{
	return hostnet_gateway();
}

int backend_prefix(void)
{
	return hostnet_prefix();
}

int backend_bridge_up(const struct instance *inst)
{
	return hostnet_guest_up(inst->svc->name, inst->tap, inst->svc->address);
}

int backend_neigh_up(const struct instance *inst)
{
	return hostnet_guest_up(inst->svc->name, "", inst->svc->address);
}

void launcher_backend_names(char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < NBACKENDS; i++)
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
