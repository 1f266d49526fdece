/*
 * What the QEMU backend keeps on the host beyond one run in user
 * networking: each service's hostfwd ports, picked at its first boot and
 * kept while they can be bound (the proxy and its bypass point at them).
 * Bridge mode's taps and neighbour entries are hostnet/'s.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "backend.h"
#include "log.h"
#include "qemu.h"

struct qhost_svc {
	TAILQ_ENTRY(qhost_svc) entry;
	char name[CONF_INSTANCE_NAME_MAX + 1];
	uint16_t host_ports[CONF_MAX_PORTS]; /* 0: none picked */
};

static TAILQ_HEAD(, qhost_svc) qh_svcs = TAILQ_HEAD_INITIALIZER(qh_svcs);

static struct qhost_svc *svc_find(const char *name)
{
	struct qhost_svc *e;

	TAILQ_FOREACH(e, &qh_svcs, entry)
	if (strcmp(e->name, name) == 0)
		return e;
	return NULL;
}

static struct qhost_svc *svc_get(const char *name)
{
	struct qhost_svc *e = svc_find(name);

	if (e != NULL)
		return e;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warn("%s: qemu host state", name);
		return NULL;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	TAILQ_INSERT_TAIL(&qh_svcs, e, entry);
	return e;
}

/* Forget the ports of services gone, no longer QEMU's, or in bridge mode. */
int qemu_host_init(const struct conf *conf)
{
	const struct conf_service *svc;
	struct qhost_svc *e, *next;

	for (e = TAILQ_FIRST(&qh_svcs); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		svc = conf_service_find(conf, e->name);
		if (svc == NULL || svc->backend != CONF_BACKEND_QEMU ||
		    conf->net_mode == CONF_NET_BRIDGE) {
			TAILQ_REMOVE(&qh_svcs, e, entry);
			free(e);
		}
	}
	return 0;
}

void qemu_host_fini(void)
{
	struct qhost_svc *e;

	while ((e = TAILQ_FIRST(&qh_svcs)) != NULL) {
		TAILQ_REMOVE(&qh_svcs, e, entry);
		free(e);
	}
}

/* Whether 127.0.0.1:PORT can be bound now. */
static bool port_free(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd, one = 1;
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* A loopback port the kernel calls free now; 0 on failure. */
static uint16_t port_pick(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	uint16_t port = 0;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

int qemu_host_user_ports(const struct instance *inst, uint16_t *ports, size_t nports)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct qhost_svc *e;
	size_t i;

	if ((e = svc_get(svc->name)) == NULL)
		return -1;
	for (i = 0; i < nports && i < CONF_MAX_PORTS; i++) {
		if (e->host_ports[i] != 0 && port_free(e->host_ports[i])) {
			ports[i] = e->host_ports[i];
			continue;
		}
		if ((ports[i] = port_pick()) == 0) {
			log_warn("%s: no free loopback port for hostfwd", svc->name);
			return -1;
		}
		e->host_ports[i] = ports[i];
		log_info("%s: user networking: guest port %u at 127.0.0.1:%u", svc->name,
		         svc->ports[i], ports[i]);
	}
	return 0;
}

int backend_qemu_hostfwd(const struct instance *inst, uint16_t port, struct sockaddr_in *sa)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct qhost_svc *e = svc_find(svc->name);
	size_t i;

	if (e == NULL)
		return -1;
	for (i = 0; i < svc->nports; i++) {
		if (svc->ports[i] != port || e->host_ports[i] == 0)
			continue;
		memset(sa, 0, sizeof(*sa));
		sa->sin_family = AF_INET;
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa->sin_port = htons(e->host_ports[i]);
		return 0;
	}
	return -1;
}
