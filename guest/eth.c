/* eth.c: Ethernet demultiplexing. */
#include "eth.h"
#include "ip.h"
#include "net.h"

void arp_input(const uint8_t *frame, size_t len);

static const uint8_t eth_bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

void eth_header(uint8_t *frame, const uint8_t *dst, uint16_t type)
{
	memcpy(frame, dst ? dst : eth_bcast, 6);
	memcpy(frame + 6, net_cfg.mac, 6);
	put_be16(frame + 12, type);
}

void eth_input(uint8_t *frame, size_t len)
{
	if (len < ETH_HLEN)
		return;
	/* Ours or broadcast only (the NIC is not promiscuous, but be sure). */
	if (memcmp(frame, net_cfg.mac, 6) && memcmp(frame, eth_bcast, 6))
		return;
	switch (get_be16(frame + 12)) {
	case ETHERTYPE_IP:
		ip_input(frame, len);
		break;
	case ETHERTYPE_ARP:
		arp_input(frame, len);
		break;
	default:
		break;
	}
}
