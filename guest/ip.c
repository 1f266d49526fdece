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

/*
 * Sum n 8-byte words with add-with-carry, four to an iteration: under two
 * instructions per 8 bytes, which matters when every instruction is emulated
 * (the nested KVM here).  dec, lea and jnz leave the carry flag alone, so
 * the chain runs across iterations; the last carries are added at the end.
 */
static uint64_t net_sum64(const uint8_t *b, size_t n, uint64_t s)
{
	size_t q = n / 4;
	const uint8_t *end = b + n * 8;

	if (q)
		__asm__("clc\n"
		        "1:\tadcq (%[p]), %[s]\n\t"
		        "adcq 8(%[p]), %[s]\n\t"
		        "adcq 16(%[p]), %[s]\n\t"
		        "adcq 24(%[p]), %[s]\n\t"
		        "leaq 32(%[p]), %[p]\n\t"
		        "decq %[q]\n\t"
		        "jnz 1b\n\t"
		        "adcq $0, %[s]\n\t"
		        "adcq $0, %[s]"
		        : [s] "+r"(s), [p] "+r"(b), [q] "+r"(q)
		        : "m"(*(const uint8_t(*)[n * 8]) b)
		        : "cc");
	for (; b < end; b += 8)
		__asm__("addq %[v], %[s]\n\tadcq $0, %[s]"
		        : [s] "+r"(s)
		        : [v] "m"(*(const uint64_t *)b)
		        : "cc");
	return s;
}

/*
 * The sum is taken over little-endian words; the one's complement sum is
 * byte-order independent (RFC 1071), so the partial sum goes in swapped and
 * the result comes out swapped back.
 */
uint16_t net_checksum(const void *p, size_t len, uint32_t sum)
{
	const uint8_t *b = p;
	uint64_t s, tail = 0;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	s = net_sum64(b, len / 8, __builtin_bswap16((uint16_t)sum));
	/*
	 * The last 0..7 bytes, zero padded.  One 8-byte load may read past the
	 * end: every caller sums inside a 2 KiB packet buffer that has room.
	 */
	if (len & 7)
		tail = load64(b + (len & ~(size_t)7)) & ((1ULL << (8 * (len & 7))) - 1);
	s += tail;
	s += s < tail;
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~__builtin_bswap16((uint16_t)s);
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
