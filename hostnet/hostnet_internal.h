/*
 * What the hostnet_*.c files share (module-internal; the API is hostnet.h):
 * the marks on what beckon makes, and a few netlink calls.
 */
#ifndef BECKON_LAUNCHER_HOSTNET_INTERNAL_H
#define BECKON_LAUNCHER_HOSTNET_INTERNAL_H

#include <stdint.h>

struct nl_addr;
struct nl_sock;
struct rtnl_link;

/* The aliases that mark a bridge and taps as beckon's (see hostnet.h). */
#define BRIDGE_ALIAS "beckon"
#define TAP_ALIAS_PREFIX "beckon:"

/* A connected NETLINK_ROUTE socket; NULL (logged) when none can be had. */
struct nl_sock *hn_sock(void);

/* The link NAME, *LINK NULL when it does not exist. -1 on other errors. */
int hn_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **link);

/* What one RTM_NEWLINK changes besides setting the link up. */
struct hn_change {
	int master;           /* ifindex; 0: unchanged */
	const char *alias;    /* NULL: unchanged */
	struct nl_addr *addr; /* link-layer address; NULL: unchanged */
};

/* Set LINK up with the changes in C: 0, or a negative libnl error. */
int hn_link_change(struct nl_sock *sk, struct rtnl_link *link, const struct hn_change *c);

/* A static forwarding entry on the bridge: frames for GUEST_MAC go to port
 * TAP (IFINDEX) alone, before the guest has sent any. 0, or -1 logged. */
int hn_port_fdb(struct nl_sock *sk, const char *tap, int ifindex, const uint8_t guest_mac[6]);

#endif
