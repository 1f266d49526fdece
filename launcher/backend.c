/* The backends built into this binary. A new backend: one file, one entry. */
#include <stddef.h>

#include "backend.h"

static const struct backend_ops *const backends[] = {
    [CONF_BACKEND_QEMU] = NULL,
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
