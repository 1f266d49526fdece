/*
 * Host networking through libnl-route (see hostnet.h). Each call opens its
 * own netlink socket: no state lives in this module between calls, so what
 * beckon made is recognised by its marks (alias, name, MAC), which also
 * survive a kill -9 of beckond. This file: the marks, the sweep of what an
 * earlier run left, and the netlink calls the other hostnet_*.c share;
 * hostnet_bridge.c has the bridge, hostnet_tap.c the taps, hostnet_neigh.c
 * the neighbour entries.
 */
#include <stdio.h>
#include <string.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>

#include "hostnet.h"
#include "hostnet_internal.h"
#include "log.h"

static const uint8_t mac_prefix[3] = {0x02, 0x62, 0x6b};

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

struct nl_sock *hn_sock(void)
{
	struct nl_sock *sk;
	int err;

	if ((sk = nl_socket_alloc()) == NULL) {
		log_warnx("hostnet: cannot allocate a netlink socket");
		return NULL;
	}
	if ((err = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		log_warnx("hostnet: netlink connect: %s", nl_geterror(err));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

int hn_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **link)
{
	int err;

	*link = NULL;
	err = rtnl_link_get_kernel(sk, 0, name, link);
	if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV)
		return 0;
	if (err < 0) {
		log_warnx("hostnet: look up link %s: %s", name, nl_geterror(err));
		return -1;
	}
	return 0;
}

int hn_link_change(struct nl_sock *sk, struct rtnl_link *link, const struct hn_change *c)
{
	struct rtnl_link *change;
	int err;

	if ((change = rtnl_link_alloc()) == NULL)
		return -NLE_NOMEM;
	if (c->master > 0)
		rtnl_link_set_master(change, c->master);
	if (c->alias != NULL)
		rtnl_link_set_ifalias(change, c->alias);
	if (c->addr != NULL)
		rtnl_link_set_addr(change, c->addr);
	rtnl_link_set_flags(change, IFF_UP);
	err = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	return err;
}

/* Up to this many characters of a service's name show in its tap's name in full. */
#define TAP_NAME_CHARS 9

void hostnet_tap_name(const char *service, char out[IFNAMSIZ])
{
	/* A longer name keeps 5 characters and 32 bits of hash, not 16: names
	 * that share a long prefix (customer-0001, customer-0002...) would
	 * otherwise meet once in 65,536 pairs. */
	int n = strlen(service) <= TAP_NAME_CHARS
	            ? snprintf(out, IFNAMSIZ, "bk%04x", fnv1a(service) & 0xffff)
	            : snprintf(out, IFNAMSIZ, "bk%08x", fnv1a(service));

	/* Interface names may not hold '/', ':' or white space. */
	for (const char *s = service; *s && n < IFNAMSIZ - 1; s++, n++) {
		char c = *s;
		int okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		out[n] = okc ? c : '_';
	}
	out[n] = '\0';
}

int hostnet_is_tap_name(const char *name)
{
	if (strncmp(name, "bk", 2) != 0 || strlen(name) < 6 || strlen(name) >= IFNAMSIZ)
		return 0;
	for (int i = 2; i < 6; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

void hostnet_mac(const char *service, uint8_t mac[6])
{
	uint32_t h = fnv1a(service);

	memcpy(mac, mac_prefix, sizeof(mac_prefix));
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

void hostnet_mac_format(const uint8_t mac[6], char out[HOSTNET_MAC_STRLEN])
{
	snprintf(out, HOSTNET_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
	         mac[3], mac[4], mac[5]);
}

struct hn_sweep {
	struct nl_sock *sk;
	int bridge;  /* ifindex, 0 when the bridge does not exist */
	int removed; /* count */
};

static void hn_sweep_link(struct nl_object *obj, void *arg)
{
	struct rtnl_link *link = (struct rtnl_link *)obj;
	struct hn_sweep *sw = arg;
	const char *name = rtnl_link_get_name(link), *kind = rtnl_link_get_type(link);
	int master = rtnl_link_get_master(link), err;

	if (name == NULL || !hostnet_is_tap_name(name) || kind == NULL || strcmp(kind, "tun") != 0)
		return;
	if (master != 0 && master != sw->bridge)
		return;
	/* A tap has carrier while a process holds it: another beckond's QEMU, say. */
	if (rtnl_link_get_carrier(link)) {
		log_info("hostnet: tap %s is held by a running process: left", name);
		return;
	}
	if ((err = rtnl_link_delete(sw->sk, link)) < 0) {
		log_warnx("hostnet: delete stale tap %s: %s", name, nl_geterror(err));
		return;
	}
	log_info("hostnet: removed stale tap %s", name);
	sw->removed++;
}

static void hn_sweep_neigh(struct nl_object *obj, void *arg)
{
	struct rtnl_neigh *n = (struct rtnl_neigh *)obj;
	struct hn_sweep *sw = arg;
	struct nl_addr *ll = rtnl_neigh_get_lladdr(n);
	char dst[64];
	int err;

	if (rtnl_neigh_get_ifindex(n) != sw->bridge || rtnl_neigh_get_family(n) != AF_INET ||
	    !(rtnl_neigh_get_state(n) & NUD_PERMANENT) || ll == NULL || nl_addr_get_len(ll) != 6 ||
	    memcmp(nl_addr_get_binary_addr(ll), mac_prefix, 3) != 0)
		return;
	nl_addr2str(rtnl_neigh_get_dst(n), dst, sizeof(dst));
	if ((err = rtnl_neigh_delete(sw->sk, n, 0)) < 0) {
		log_warnx("hostnet: delete stale neighbour %s: %s", dst, nl_geterror(err));
		return;
	}
	log_info("hostnet: removed stale neighbour %s", dst);
	sw->removed++;
}

int hostnet_cleanup_stale(const char *bridge)
{
	struct hn_sweep sw = {.bridge = (int)if_nametoindex(bridge)};
	struct nl_cache *links = NULL, *neighs = NULL;
	int err, rc = -1;

	if ((sw.sk = hn_sock()) == NULL)
		return -1;
	if ((err = rtnl_link_alloc_cache(sw.sk, AF_UNSPEC, &links)) < 0) {
		log_warnx("hostnet: list links: %s", nl_geterror(err));
		goto out;
	}
	nl_cache_foreach(links, hn_sweep_link, &sw);
	if (sw.bridge != 0) {
		if ((err = rtnl_neigh_alloc_cache(sw.sk, &neighs)) < 0) {
			log_warnx("hostnet: list neighbours: %s", nl_geterror(err));
			goto out;
		}
		nl_cache_foreach(neighs, hn_sweep_neigh, &sw);
	}
	rc = sw.removed;
out:
	if (links != NULL)
		nl_cache_free(links);
	if (neighs != NULL)
		nl_cache_free(neighs);
	nl_socket_free(sw.sk);
	return rc;
}
