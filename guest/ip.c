/*
 * ip.c: IPv4 for one address.  We accept only unfragmented packets to us
 * with a good header checksum; options are skipped.  ICMP echo lives here
 * because it is the only ICMP we speak.
 */
#include "eth.h"
#include "ip.h"
#include "net.h"
#include "netif.h"
#include "tcp.h"

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO 8

static uint16_t ip_id;

uint16_t net_checksum(const void *p, size_t len, uint32_t sum)
{
	const uint8_t *b = p;
	uint64_t s = sum;

	/* Eight bytes a step: under the emulating KVM here every instruction counts. */
	for (; len >= 8; len -= 8, b += 8) {
		uint64_t v = __builtin_bswap64(load64(b));
		s += (v >> 32) + (v & 0xffffffff);
	}
	for (; len >= 2; len -= 2, b += 2)
		s += get_be16(b);
	if (len)
		s += (uint32_t)b[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

uint32_t ip_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
}

size_t ip_header(uint8_t *frame, const uint8_t *dst_mac, uint32_t dst, uint8_t proto, size_t plen)
{
	uint8_t *h = frame + ETH_HLEN;

	eth_header(frame, dst_mac, ETHERTYPE_IP);
	h[0] = 0x45;
	h[1] = 0;
	put_be16(h + 2, (uint16_t)(IP_HLEN + plen));
	put_be16(h + 4, ip_id++);
	put_be16(h + 6, 0x4000); /* DF: we never send more than the MTU */
	h[8] = 64;
	h[9] = proto;
	put_be16(h + 10, 0);
	put_be32(h + 12, net_cfg.ip);
	put_be32(h + 16, dst);
	put_be16(h + 10, net_checksum(h, IP_HLEN, 0));
	return ETH_HLEN + IP_HLEN + plen;
}

static void icmp_input(const uint8_t *frame, const uint8_t *ih, const uint8_t *p, size_t len)
{
	uint8_t *f, *r;

	if (len < 8 || p[0] != ICMP_ECHO || net_checksum(p, len, 0) != 0)
		return;
	if (len > NETIF_MTU - IP_HLEN || !(f = netif_tx_alloc()))
		return;
	r = f + ETH_HLEN + IP_HLEN;
	memcpy(r, p, len);
	r[0] = ICMP_ECHO_REPLY;
	put_be16(r + 2, 0);
	put_be16(r + 2, net_checksum(r, len, 0));
	/* Reply to the MAC it came from: no ARP round trip needed. */
	netif_tx_send(f, ip_header(f, frame + 6, get_be32(ih + 12), IPPROTO_ICMP, len));
}

/* Never answer packets claiming to come from nowhere, everywhere or ourselves. */
static bool ip_source_ok(uint32_t src)
{
	uint8_t top = (uint8_t)(src >> 24);

	return src != net_cfg.ip && top != 0 && top != 127 && top < 224 &&
	       (src | net_cfg.mask) != 0xffffffff;
}

void ip_input(uint8_t *frame, size_t len)
{
	uint8_t *h = frame + ETH_HLEN;
	size_t hl, tl;

	if (len < ETH_HLEN + IP_HLEN || (h[0] >> 4) != 4)
		return;
	hl = (size_t)(h[0] & 0xf) * 4;
	tl = get_be16(h + 2);
	if (hl < IP_HLEN || tl < hl || tl > len - ETH_HLEN)
		return;
	if (get_be32(h + 16) != net_cfg.ip || (get_be16(h + 6) & 0x3fff))
		return; /* not for us, or a fragment */
	if (!ip_source_ok(get_be32(h + 12)))
		return;
	if (net_checksum(h, hl, 0) != 0)
		return;
	switch (h[9]) {
	case IPPROTO_ICMP:
		icmp_input(frame, h, h + hl, tl - hl);
		break;
	case IPPROTO_TCP:
		tcp_input(frame, h, h + hl, tl - hl);
		break;
	default:
		break;
	}
}
