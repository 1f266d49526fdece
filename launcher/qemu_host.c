/*
 * What the QEMU backend keeps on the host beyond one run: the bridge, each
 * service's tap and permanent neighbour entry (made at its first boot, kept
 * across boots, removed when the service goes or beckond exits), the hostfwd
 * ports of user networking, and which QEMU runs for which service.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "backend.h"
#include "hostnet.h"
#include "log.h"
#include "qemu.h"

struct qhost_svc {
	TAILQ_ENTRY(qhost_svc) entry;
	char name[CONF_SERVICE_NAME_MAX + 1];
	char tap[IFNAMSIZ]; /* "" when none made */
	char bridge[IFNAMSIZ];
	struct in_addr neigh_ip;
	bool neigh;
	uint16_t host_ports[CONF_MAX_PORTS]; /* 0: none picked */
	pid_t pid;                           /* the running QEMU, 0 when none */
};

static struct {
	bool bridged; /* the bridge below was ensured */
	char bridge[IFNAMSIZ];
	char cleaned[IFNAMSIZ]; /* the bridge swept of stale things */
	char gateway[INET_ADDRSTRLEN];
	int prefix;
	TAILQ_HEAD(, qhost_svc) svcs;
	bool list_init;
} qh;

static void qh_list_init(void)
{
	if (!qh.list_init)
		TAILQ_INIT(&qh.svcs);
	qh.list_init = true;
}

static struct qhost_svc *svc_find(const char *name)
{
	struct qhost_svc *e;

	qh_list_init();
	TAILQ_FOREACH(e, &qh.svcs, entry)
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
	TAILQ_INSERT_TAIL(&qh.svcs, e, entry);
	return e;
}

static void svc_neigh_del(struct qhost_svc *e)
{
	if (e->neigh && hostnet_neigh_del(e->bridge, e->neigh_ip) == 0)
		log_debug("%s: neighbour entry %s removed", e->name, inet_ntoa(e->neigh_ip));
	e->neigh = false;
}

/* Remove E's tap and neighbour entry. */
static void svc_net_down(struct qhost_svc *e)
{
	svc_neigh_del(e);
	if (e->tap[0] && hostnet_tap_destroy(e->tap) == 0)
		log_debug("%s: tap %s removed", e->name, e->tap);
	e->tap[0] = '\0';
}

/* Drop E when it holds nothing any more. */
static void svc_maybe_free(struct qhost_svc *e)
{
	size_t i;

	if (e->tap[0] || e->neigh || e->pid != 0)
		return;
	for (i = 0; i < CONF_MAX_PORTS; i++)
		if (e->host_ports[i] != 0)
			return;
	TAILQ_REMOVE(&qh.svcs, e, entry);
	free(e);
}

bool qemu_host_pid_running(pid_t pid)
{
	struct qhost_svc *e;

	qh_list_init();
	TAILQ_FOREACH(e, &qh.svcs, entry)
	if (e->pid == pid)
		return true;
	return false;
}

/* ---- global init and fini --------------------------------------------------- */

static bool uses_qemu(const struct conf *conf)
{
	size_t i;

	for (i = 0; i < conf->nservices; i++)
		if (conf->services[i].backend == CONF_BACKEND_QEMU)
			return true;
	return false;
}

/* Take down what services no longer configured (or moved) hold. */
static void reconcile(const struct conf *conf, bool bridge)
{
	const struct conf_service *svc;
	struct qhost_svc *e, *next;
	size_t i;

	qh_list_init();
	for (e = TAILQ_FIRST(&qh.svcs); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		svc = conf_service_find(conf, e->name);
		if (svc == NULL || svc->backend != CONF_BACKEND_QEMU || !bridge ||
		    strcmp(e->bridge, conf->bridge) != 0)
			svc_net_down(e);
		else if (e->neigh && e->neigh_ip.s_addr != svc->address.s_addr)
			svc_neigh_del(e);
		if (svc == NULL || svc->backend != CONF_BACKEND_QEMU || bridge)
			for (i = 0; i < CONF_MAX_PORTS; i++)
				e->host_ports[i] = 0;
		svc_maybe_free(e);
	}
}

static void bridge_down(void)
{
	int rc;

	if (!qh.bridged)
		return;
	if ((rc = hostnet_bridge_remove(qh.bridge)) == 1)
		log_info("qemu: bridge %s removed", qh.bridge);
	qh.bridged = false;
}

static int bridge_init(const struct conf *conf)
{
	struct in_addr gw;
	int n, rc;

	if (qh.bridged && strcmp(qh.bridge, conf->bridge) != 0)
		bridge_down();
	if (strcmp(qh.cleaned, conf->bridge) != 0) {
		if ((n = hostnet_cleanup_stale(conf->bridge)) > 0)
			log_info("qemu: removed %d taps and neighbour entries an earlier run left",
			         n);
		snprintf(qh.cleaned, sizeof(qh.cleaned), "%s", conf->bridge);
	}
	if ((rc = hostnet_bridge_ensure(conf->bridge, conf->subnet, conf->prefix)) == -1) {
		log_warnx("qemu: cannot set up bridge %s", conf->bridge);
		return -1;
	}
	if (rc == 1)
		log_info("qemu: bridge %s created", conf->bridge);
	snprintf(qh.bridge, sizeof(qh.bridge), "%s", conf->bridge);
	qh.bridged = true;
	gw.s_addr = htonl(ntohl(conf->subnet.s_addr) + 1);
	inet_ntop(AF_INET, &gw, qh.gateway, sizeof(qh.gateway));
	qh.prefix = conf->prefix;
	return 0;
}

int backend_qemu_global_init(const struct conf *conf)
{
	bool bridge = conf->net_mode == CONF_NET_BRIDGE && uses_qemu(conf);

	qh_list_init();
	qemu_stale_kill(conf->state_dir);
	reconcile(conf, bridge);
	if (!bridge) {
		bridge_down();
		return 0;
	}
	return bridge_init(conf);
}

void backend_qemu_global_fini(void)
{
	struct qhost_svc *e;

	qh_list_init();
	while ((e = TAILQ_FIRST(&qh.svcs)) != NULL) {
		svc_net_down(e);
		TAILQ_REMOVE(&qh.svcs, e, entry);
		free(e);
	}
	bridge_down();
	qh.cleaned[0] = '\0';
}

/* ---- per service ------------------------------------------------------------ */

const char *qemu_host_gateway(void)
{
	return qh.gateway;
}

int qemu_host_prefix(void)
{
	return qh.prefix;
}

int qemu_host_bridge_up(const struct instance *inst)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	const char *tap = launcher_inst_tap(inst);
	struct qhost_svc *e;
	uint8_t mac[6];

	if (!qh.bridged) {
		log_warnx("%s: bridge networking is not set up", svc->name);
		return -1;
	}
	if ((e = svc_get(svc->name)) == NULL)
		return -1;
	/* Kept across boots; made again should someone have removed it. */
	if ((strcmp(e->tap, tap) != 0 || if_nametoindex(tap) == 0) &&
	    hostnet_tap_create(tap, qh.bridge, svc->name) == -1) {
		e->tap[0] = '\0';
		svc_neigh_del(e);
		svc_maybe_free(e);
		return -1;
	}
	snprintf(e->tap, sizeof(e->tap), "%s", tap);
	snprintf(e->bridge, sizeof(e->bridge), "%s", qh.bridge);
	if (e->neigh && e->neigh_ip.s_addr != svc->address.s_addr)
		svc_neigh_del(e);
	hostnet_mac(svc->name, mac);
	if (hostnet_neigh_add(qh.bridge, svc->address, mac) == -1)
		return -1; /* the tap stays: the service is still configured */
	e->neigh = true;
	e->neigh_ip = svc->address;
	return 0;
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

void qemu_host_set_pid(const struct instance *inst, pid_t pid)
{
	const char *name = launcher_inst_service(inst)->name;
	struct qhost_svc *e = pid ? svc_get(name) : svc_find(name);

	qemu_pidfile(launcher_inst_state_dir(inst), name, pid);
	if (e != NULL)
		e->pid = pid;
	if (e != NULL && pid == 0)
		svc_maybe_free(e);
}
