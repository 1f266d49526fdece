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

/* Two loads instead of a byte loop: cheap under the emulating KVM here. */
static bool eth_is(const uint8_t *a, const uint8_t *b)
{
	uint32_t a0, b0;
	uint16_t a1, b1;

	__builtin_memcpy(&a0, a, 4);
	__builtin_memcpy(&b0, b, 4);
	__builtin_memcpy(&a1, a + 4, 2);
	__builtin_memcpy(&b1, b + 4, 2);
	return a0 == b0 && a1 == b1;
}

void eth_input(uint8_t *frame, size_t len)
{
	if (len < ETH_HLEN)
		return;
	/* Ours or broadcast only (the NIC is not promiscuous, but be sure). */
	if (!eth_is(frame, net_cfg.mac) && !eth_is(frame, eth_bcast))
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
