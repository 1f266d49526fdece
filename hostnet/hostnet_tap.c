/* Host networking: the persistent taps and their counters (see hostnet.h). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "hostnet.h"
#include "hostnet_internal.h"
#include "log.h"

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
	/* beckond's VMMs run as beckond's user with no capability: as the tap's
	 * owner they may attach to it all the same (root needs no such leave). */
	if (geteuid() != 0 && ioctl(fd, TUNSETOWNER, (unsigned long)geteuid()) == -1) {
		log_warn("hostnet: tap %s: TUNSETOWNER", name);
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
	uint8_t mac[6], guest_mac[6];
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
	hostnet_mac(service, guest_mac);
	memcpy(mac, guest_mac, sizeof(mac));
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
	/* Without it only dearer (floods while the guest boots): not fatal. */
	hn_port_fdb(sk, name, rtnl_link_get_ifindex(link), guest_mac);
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
