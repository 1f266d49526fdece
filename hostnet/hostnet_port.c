/*
 * Host networking: a static forwarding entry for each guest on its bridge
 * port (see hostnet_internal.h). Without it, every frame sent to a guest before the
 * guest has sent one of its own (the readiness probe's SYNs, while it
 * boots) is unknown unicast, which the bridge floods to every port: each
 * other guest's VMM wakes, and its guest takes an interrupt, for a frame it
 * drops. With hundreds of guests booting under TCG that is O(n^2) wakeups.
 */
#include <linux/neighbour.h>

#include <netlink/netlink.h>
#include <netlink/route/neighbour.h>

#include "hostnet_internal.h"
#include "log.h"

int hn_port_fdb(struct nl_sock *sk, const char *tap, int ifindex, const uint8_t guest_mac[6])
{
	struct rtnl_neigh *n;
	struct nl_addr *ll = NULL;
	int err = -NLE_NOMEM;

	if ((n = rtnl_neigh_alloc()) == NULL || (ll = nl_addr_build(AF_LLC, guest_mac, 6)) == NULL)
		goto out;
	rtnl_neigh_set_family(n, AF_BRIDGE);
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_lladdr(n, ll);
	rtnl_neigh_set_flags(n, NTF_MASTER);
	rtnl_neigh_set_state(n, NUD_NOARP); /* static: never aged, never moved by learning */
	err = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
out:
	if (err < 0)
		log_warnx("hostnet: tap %s: static bridge entry for its guest: %s", tap,
		          nl_geterror(err));
	if (ll != NULL)
		nl_addr_put(ll);
	if (n != NULL)
		rtnl_neigh_put(n);
	return err < 0 ? -1 : 0;
}
