/*
 * Bridge mode for a whole config: the bridge, and each service's tap and
 * permanent neighbour entry, made at its first boot and kept across boots
 * (deleting a link costs the kernel 15-45 ms), removed when the service
 * goes or beckond exits. Every backend whose guests sit on the bridge uses
 * it, whatever runs the guest.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "conf.h"
#include "hostnet.h"
#include "log.h"

struct hsvc {
	TAILQ_ENTRY(hsvc) entry;
	char name[CONF_INSTANCE_NAME_MAX + 1];
	char tap[IFNAMSIZ]; /* "" when none made */
	char bridge[IFNAMSIZ];
	struct in_addr neigh_ip;
	bool neigh;
};

static struct {
	bool bridged; /* the bridge below was ensured */
	char bridge[IFNAMSIZ];
	char cleaned[IFNAMSIZ]; /* the bridge swept of stale things */
	char gateway[INET_ADDRSTRLEN];
	int prefix;
	TAILQ_HEAD(, hsvc) svcs;
	bool list_init;
} hs;

static void hsvc_list_init(void)
{
	if (!hs.list_init)
		TAILQ_INIT(&hs.svcs);
	hs.list_init = true;
}

static struct hsvc *hsvc_get(const char *name)
{
	struct hsvc *e;

	hsvc_list_init();
	TAILQ_FOREACH(e, &hs.svcs, entry)
	if (strcmp(e->name, name) == 0)
		return e;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warn("%s: host networking", name);
		return NULL;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	TAILQ_INSERT_TAIL(&hs.svcs, e, entry);
	return e;
}

static void hsvc_neigh_del(struct hsvc *e)
{
	if (e->neigh && hostnet_neigh_del(e->bridge, e->neigh_ip) == 0)
		log_debug("%s: neighbour entry %s removed", e->name, inet_ntoa(e->neigh_ip));
	e->neigh = false;
}

/* Remove E's tap and neighbour entry, and E. */
static void hsvc_down(struct hsvc *e)
{
	hsvc_neigh_del(e);
	if (e->tap[0] && hostnet_tap_destroy(e->tap) == 0)
		log_debug("%s: tap %s removed", e->name, e->tap);
	TAILQ_REMOVE(&hs.svcs, e, entry);
	free(e);
}

/* Take down what services no longer configured (or moved) hold. */
static void hsvc_reconcile(const struct conf *conf, bool (*uses)(const struct conf_service *))
{
	const struct conf_service *svc;
	struct hsvc *e, *next;

	hsvc_list_init();
	for (e = TAILQ_FIRST(&hs.svcs); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		svc = conf_service_of(conf, e->name); /* "LABEL.SERVICE": a pattern's instance */
		if (svc == NULL || !uses(svc) || conf->net_mode != CONF_NET_BRIDGE ||
		    strcmp(e->bridge, conf->bridge) != 0)
			hsvc_down(e);
		else if (e->neigh && e->neigh_ip.s_addr != svc->address.s_addr)
			hsvc_neigh_del(e);
	}
}

static void hostnet_bridge_down(void)
{
	if (!hs.bridged)
		return;
	if (hostnet_bridge_remove(hs.bridge) == 1)
		log_info("hostnet: bridge %s removed", hs.bridge);
	hs.bridged = false;
}

static int hostnet_bridge_up(const struct conf *conf)
{
	struct in_addr gw;
	int n, rc;

	if (hs.bridged && strcmp(hs.bridge, conf->bridge) != 0)
		hostnet_bridge_down();
	if (strcmp(hs.cleaned, conf->bridge) != 0) {
		if ((n = hostnet_cleanup_stale(conf->bridge)) > 0)
			log_info("hostnet: removed %d taps and neighbour entries an earlier run "
			         "left",
			         n);
		snprintf(hs.cleaned, sizeof(hs.cleaned), "%s", conf->bridge);
	}
	if ((rc = hostnet_bridge_ensure(conf->bridge, conf->subnet, conf->prefix)) == -1) {
		log_warnx("hostnet: cannot set up bridge %s", conf->bridge);
		return -1;
	}
	if (rc == 1)
		log_info("hostnet: bridge %s created", conf->bridge);
	snprintf(hs.bridge, sizeof(hs.bridge), "%s", conf->bridge);
	hs.bridged = true;
	gw.s_addr = htonl(ntohl(conf->subnet.s_addr) + 1);
	inet_ntop(AF_INET, &gw, hs.gateway, sizeof(hs.gateway));
	hs.prefix = conf->prefix;
	return 0;
}

int hostnet_sync(const struct conf *conf, bool (*uses)(const struct conf_service *))
{
	bool want = false;

	for (size_t i = 0; conf->net_mode == CONF_NET_BRIDGE && i < conf->nservices; i++)
		want = want || uses(&conf->services[i]);
	hsvc_reconcile(conf, uses);
	if (!want) {
		hostnet_bridge_down();
		return 0;
	}
	return hostnet_bridge_up(conf);
}

void hostnet_fini(void)
{
	struct hsvc *e;

	hsvc_list_init();
	while ((e = TAILQ_FIRST(&hs.svcs)) != NULL)
		hsvc_down(e);
	hostnet_bridge_down();
	hs.cleaned[0] = '\0';
}

const char *hostnet_gateway(void)
{
	return hs.gateway;
}

int hostnet_prefix(void)
{
	return hs.prefix;
}

int hostnet_guest_up(const char *service, const char *tap, struct in_addr addr)
{
	struct hsvc *e;
	uint8_t mac[6];

	if (!hs.bridged) {
		log_warnx("%s: bridge networking is not set up", service);
		return -1;
	}
	if ((e = hsvc_get(service)) == NULL)
		return -1;
	/* Kept across boots; made again should someone have removed it. */
	if (tap[0] != '\0' && (strcmp(e->tap, tap) != 0 || if_nametoindex(tap) == 0) &&
	    hostnet_tap_create(tap, hs.bridge, service) == -1) {
		e->tap[0] = '\0';
		hsvc_down(e);
		return -1;
	}
	snprintf(e->tap, sizeof(e->tap), "%s", tap);
	snprintf(e->bridge, sizeof(e->bridge), "%s", hs.bridge);
	if (e->neigh && e->neigh_ip.s_addr != addr.s_addr)
		hsvc_neigh_del(e);
	hostnet_mac(service, mac);
	if (hostnet_neigh_add(hs.bridge, addr, mac) == -1)
		return -1; /* the tap stays: the service is still configured */
	e->neigh = true;
	e->neigh_ip = addr;
	return 0;
}

void hostnet_guest_down(const char *service)
{
	struct hsvc *e;

	hsvc_list_init();
	TAILQ_FOREACH(e, &hs.svcs, entry)
	if (strcmp(e->name, service) == 0) {
		hsvc_down(e);
		return;
	}
}
