/* Host networking: permanent neighbour entries for the guests (see hostnet.h). */
#include <arpa/inet.h>

#include <netlink/netlink.h>
#include <netlink/route/neighbour.h>

#include "hostnet.h"
#include "hostnet_internal.h"
#include "log.h"

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
