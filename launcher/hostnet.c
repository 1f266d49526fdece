/*
 * Host networking through libnl-route (see hostnet.h). Each call opens its
 * own netlink socket: no state lives in this module between calls, so what
 * beckon made is recognised by its marks (alias, name, MAC), which also
 * survive a kill -9 of beckond.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/neighbour.h>

#include "hostnet.h"
#include "log.h"

#define BRIDGE_ALIAS "beckon"
#define TAP_ALIAS_PREFIX "beckon:"
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

static struct nl_sock *hn_sock(void)
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

/* The link NAME, *LINK NULL when it does not exist. -1 on other errors. */
static int hn_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **link)
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

/* What one RTM_NEWLINK changes besides setting the link up. */
struct hn_change {
	int master;           /* ifindex; 0: unchanged */
	const char *alias;    /* NULL: unchanged */
	struct nl_addr *addr; /* link-layer address; NULL: unchanged */
};

static int hn_link_change(struct nl_sock *sk, struct rtnl_link *link, const struct hn_change *c)
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

static int hn_bridge_create(struct nl_sock *sk, const char *bridge)
{
	struct rtnl_link *link;
	int err;

	if ((link = rtnl_link_bridge_alloc()) == NULL)
		return -NLE_NOMEM;
	rtnl_link_set_name(link, bridge);
	err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(link);
	return err;
}

/* Add ADDR/PREFIX to IFINDEX; an address it already holds is fine. */
static int hn_addr_ensure(struct nl_sock *sk, int ifindex, struct in_addr addr, int prefix)
{
	struct rtnl_addr *ra = NULL;
	struct nl_addr *local = NULL;
	int err = -NLE_NOMEM;

	if ((ra = rtnl_addr_alloc()) == NULL)
		goto out;
	if ((local = nl_addr_build(AF_INET, &addr, sizeof(addr))) == NULL)
		goto out;
	nl_addr_set_prefixlen(local, prefix);
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, AF_INET);
	if ((err = rtnl_addr_set_local(ra, local)) < 0)
		goto out;
	rtnl_addr_set_prefixlen(ra, prefix);
	err = rtnl_addr_add(sk, ra, 0);
	if (err == -NLE_EXIST)
		err = 0;
out:
	nl_addr_put(local);
	if (ra != NULL)
		rtnl_addr_put(ra);
	return err;
}

static struct in_addr hn_first_host(struct in_addr subnet, int prefix)
{
	uint32_t mask = prefix == 0 ? 0 : htonl(~0u << (32 - prefix));
	struct in_addr a = {.s_addr = htonl(ntohl(subnet.s_addr & mask) + 1)};

	return a;
}

int hostnet_bridge_ensure(const char *bridge, struct in_addr subnet, int prefix)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;
	const char *what = "create bridge";
	int created = 0, err = 0, rc = -1;

	if (prefix < 0 || prefix > 30) {
		log_warnx("hostnet: bridge %s: prefix /%d leaves no host address", bridge, prefix);
		return -1;
	}
	if ((sk = hn_sock()) == NULL)
		return -1;
	if (hn_link_get(sk, bridge, &link) < 0)
		goto fail;
	if (link == NULL) {
		if ((err = hn_bridge_create(sk, bridge)) < 0)
			goto fail_nl;
		created = 1;
		if (hn_link_get(sk, bridge, &link) < 0 || link == NULL)
			goto fail;
	} else if (rtnl_link_get_type(link) == NULL ||
	           strcmp(rtnl_link_get_type(link), "bridge") != 0) {
		log_warnx("hostnet: %s exists and is not a bridge", bridge);
		goto fail;
	}
	what = "add the bridge address";
	err =
	    hn_addr_ensure(sk, rtnl_link_get_ifindex(link), hn_first_host(subnet, prefix), prefix);
	if (err < 0)
		goto fail_nl;
	/*
	 * The kernel ignores an alias in the creating message: it comes here.
	 * Setting the MAC, even to the one it has, pins it: else the bridge takes
	 * the lowest MAC of its ports whenever one comes or goes, and each change
	 * flushes every neighbour entry on it, the permanent ones included.
	 */
	what = "mark, pin and set up the bridge";
	if (created) {
		struct hn_change c = {.alias = BRIDGE_ALIAS, .addr = rtnl_link_get_addr(link)};
		err = hn_link_change(sk, link, &c);
	} else if (!(rtnl_link_get_flags(link) & IFF_UP)) {
		err = hn_link_change(sk, link, &(struct hn_change){0});
	}
	if (err < 0)
		goto fail_nl;
	rc = created;
	goto out;
fail_nl:
	log_warnx("hostnet: %s %s: %s", what, bridge, nl_geterror(err));
fail:
	if (created)
		hostnet_bridge_remove(bridge);
out:
	if (link != NULL)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return rc;
}

int hostnet_bridge_remove(const char *bridge)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;
	const char *alias, *kind;
	int err, rc = -1;

	if ((sk = hn_sock()) == NULL)
		return -1;
	if (hn_link_get(sk, bridge, &link) < 0)
		goto out;
	rc = 0;
	if (link == NULL)
		goto out;
	alias = rtnl_link_get_ifalias(link);
	kind = rtnl_link_get_type(link);
	if (alias == NULL || strcmp(alias, BRIDGE_ALIAS) != 0 || kind == NULL ||
	    strcmp(kind, "bridge") != 0)
		goto out;
	if ((err = rtnl_link_delete(sk, link)) < 0) {
		log_warnx("hostnet: delete bridge %s: %s", bridge, nl_geterror(err));
		rc = -1;
		goto out;
	}
	rc = 1;
out:
	if (link != NULL)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return rc;
}

void hostnet_tap_name(const char *service, char out[IFNAMSIZ])
{
	int n = snprintf(out, IFNAMSIZ, "bk%04x", fnv1a(service) & 0xffff);

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

/* A persistent tap NAME: it outlives this fd, QEMU attaches to it by name. */
static int hn_tun_persist(const char *name)
{
	struct ifreq ifr;
	int fd;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1) {
		log_warn("hostnet: tap %s: open /dev/net/tun", name);
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		log_warn("hostnet: tap %s: TUNSETIFF", name);
		goto fail;
	}
	if (ioctl(fd, TUNSETPERSIST, 1) == -1) {
		log_warn("hostnet: tap %s: TUNSETPERSIST", name);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

int hostnet_tap_create(const char *name, const char *bridge, const char *service)
{
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	struct hn_change c = {0};
	char alias[128];
	uint8_t mac[6];
	int err;

	if ((c.master = (int)if_nametoindex(bridge)) == 0) {
		log_warn("hostnet: tap %s: bridge %s", name, bridge);
		return -1;
	}
	if (hn_tun_persist(name) < 0)
		return -1;
	if ((sk = hn_sock()) == NULL)
		goto fail;
	if (hn_link_get(sk, name, &link) < 0)
		goto fail;
	if (link == NULL) {
		log_warnx("hostnet: tap %s vanished after its creation", name);
		goto fail;
	}
	snprintf(alias, sizeof(alias), TAP_ALIAS_PREFIX "%s", service);
	c.alias = alias;
	/* A high MAC (libvirt's trick): a bridge that follows its ports' lowest
	 * MAC does not take it, so adding a tap does not flush neighbours. */
	hostnet_mac(service, mac);
	mac[0] = 0xfe;
	if ((c.addr = nl_addr_build(AF_LLC, mac, sizeof(mac))) == NULL)
		goto fail;
	err = hn_link_change(sk, link, &c);
	nl_addr_put(c.addr);
	if (err < 0) {
		log_warnx("hostnet: tap %s: enslave to %s and set up: %s", name, bridge,
		          nl_geterror(err));
		goto fail;
	}
	rtnl_link_put(link);
	nl_socket_free(sk);
	return 0;
fail:
	if (link != NULL)
		rtnl_link_put(link);
	if (sk != NULL)
		nl_socket_free(sk);
	hostnet_tap_destroy(name);
	return -1;
}

int hostnet_tap_destroy(const char *name)
{
	struct nl_sock *sk;
	struct rtnl_link *link;
	int err;

	if ((sk = hn_sock()) == NULL)
		return -1;
	if ((link = rtnl_link_alloc()) == NULL) {
		nl_socket_free(sk);
		return -1;
	}
	rtnl_link_set_name(link, name);
	err = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	nl_socket_free(sk);
	if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV) {
		log_warnx("hostnet: delete tap %s: %s", name, nl_geterror(err));
		return -1;
	}
	return 0;
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

/* A neighbour object for IP on IFINDEX, with MAC when not NULL. */
static struct rtnl_neigh *hn_neigh(int ifindex, struct in_addr ip, const uint8_t *mac)
{
	struct rtnl_neigh *n;
	struct nl_addr *dst = NULL, *ll = NULL;

	if ((n = rtnl_neigh_alloc()) == NULL)
		return NULL;
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_family(n, AF_INET);
	if ((dst = nl_addr_build(AF_INET, &ip, sizeof(ip))) == NULL)
		goto fail;
	rtnl_neigh_set_dst(n, dst);
	nl_addr_put(dst);
	if (mac != NULL) {
		if ((ll = nl_addr_build(AF_LLC, mac, 6)) == NULL)
			goto fail;
		rtnl_neigh_set_lladdr(n, ll);
		nl_addr_put(ll);
		rtnl_neigh_set_state(n, NUD_PERMANENT);
	}
	return n;
fail:
	rtnl_neigh_put(n);
	return NULL;
}

/* Add (MAC not NULL) or delete the neighbour entry for IP on BRIDGE. */
static int hn_neigh_op(const char *bridge, struct in_addr ip, const uint8_t *mac)
{
	struct nl_sock *sk = NULL;
	struct rtnl_neigh *n = NULL;
	char ips[INET_ADDRSTRLEN];
	int ifindex, err = -NLE_NOMEM;

	inet_ntop(AF_INET, &ip, ips, sizeof(ips));
	if ((ifindex = (int)if_nametoindex(bridge)) == 0) {
		log_warn("hostnet: neighbour %s: bridge %s", ips, bridge);
		return -1;
	}
	if ((sk = hn_sock()) == NULL)
		return -1;
	if ((n = hn_neigh(ifindex, ip, mac)) == NULL)
		goto fail;
	if (mac != NULL)
		err = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	else if ((err = rtnl_neigh_delete(sk, n, 0)) == -NLE_OBJ_NOTFOUND)
		err = 0;
	if (err < 0)
		goto fail;
	rtnl_neigh_put(n);
	nl_socket_free(sk);
	return 0;
fail:
	log_warnx("hostnet: %s neighbour %s on %s: %s", mac ? "add" : "delete", ips, bridge,
	          nl_geterror(err));
	if (n != NULL)
		rtnl_neigh_put(n);
	nl_socket_free(sk);
	return -1;
}

int hostnet_neigh_add(const char *bridge, struct in_addr ip, const uint8_t mac[6])
{
	return hn_neigh_op(bridge, ip, mac);
}

int hostnet_neigh_del(const char *bridge, struct in_addr ip)
{
	return hn_neigh_op(bridge, ip, NULL);
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

int hostnet_tap_counters(const char *tap, uint64_t *rx_bytes, uint64_t *tx_bytes,
                         uint64_t *rx_packets, uint64_t *tx_packets)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;

	if ((sk = hn_sock()) == NULL)
		return -1;
	if (hn_link_get(sk, tap, &link) == 0 && link == NULL)
		log_warnx("hostnet: counters of %s: no such link", tap);
	if (link == NULL) {
		nl_socket_free(sk);
		return -1;
	}
	if (rx_bytes != NULL)
		*rx_bytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES);
	if (tx_bytes != NULL)
		*tx_bytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES);
	if (rx_packets != NULL)
		*rx_packets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
	if (tx_packets != NULL)
		*tx_packets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS);
	rtnl_link_put(link);
	nl_socket_free(sk);
	return 0;
}
