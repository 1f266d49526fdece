/* Host networking: the bridge and its address (see hostnet.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>

#include "hostnet.h"
#include "hostnet_internal.h"
#include "log.h"

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

/* NET_ADDR_SET of linux/netdevice.h, whose other names clash with net/if.h's. */
#define HN_ADDR_SET 3

/*
 * Whether BRIDGE's MAC follows its ports (never set): sysfs holds the only
 * record of it. HN_ADDR_SET is a MAC someone chose; unreadable counts as
 * set, and nothing is changed.
 */
static bool hn_bridge_mac_floats(const char *bridge)
{
	char path[64 + IFNAMSIZ];
	int type = HN_ADDR_SET;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/addr_assign_type", bridge);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	if (fscanf(f, "%d", &type) != 1)
		type = HN_ADDR_SET;
	fclose(f);
	return type != HN_ADDR_SET;
}

/*
 * Pin an existing bridge's MAC at the one it has (see below) when it
 * follows its ports; else bring it up if it is down.
 */
static int hn_bridge_existing(struct nl_sock *sk, struct rtnl_link *link, const char *bridge)
{
	struct hn_change c = {0};
	char mac[32];

	if (hn_bridge_mac_floats(bridge)) {
		c.addr = rtnl_link_get_addr(link);
		log_info("hostnet: bridge %s: its MAC %s pinned (it followed its ports)", bridge,
		         nl_addr2str(c.addr, mac, sizeof(mac)));
	} else if (rtnl_link_get_flags(link) & IFF_UP) {
		return 0;
	}
	return hn_link_change(sk, link, &c);
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
	 * the lowest MAC of its ports whenever one comes or goes, each change
	 * flushes every neighbour entry on it, the permanent ones included, and
	 * guests that learnt their gateway's MAC before it send to a stale one.
	 */
	what = "mark, pin and set up the bridge";
	if (created) {
		struct hn_change c = {.alias = BRIDGE_ALIAS, .addr = rtnl_link_get_addr(link)};
		err = hn_link_change(sk, link, &c);
	} else {
		err = hn_bridge_existing(sk, link, bridge);
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
