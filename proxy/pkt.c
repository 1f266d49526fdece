/* The few bytes of IPv4 and TCP the SYN hold reads and writes. */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>

#include "internal.h"

int pkt_parse(const uint8_t *buf, size_t len, struct tcp4 *t)
{
	struct iphdr ip;
	struct tcphdr tcp;
	size_t ihl;

	if (len < sizeof(ip))
		return -1;
	memcpy(&ip, buf, sizeof(ip));
	ihl = (size_t)ip.ihl * 4;
	if (ip.version != 4 || ihl < sizeof(ip) || ip.protocol != IPPROTO_TCP ||
	    (ntohs(ip.frag_off) & 0x1fff) != 0 || len < ihl + sizeof(tcp))
		return -1;
	memcpy(&tcp, buf + ihl, sizeof(tcp));
	t->v6 = false;
	t->saddr.s_addr = ip.saddr;
	t->daddr.s_addr = ip.daddr;
	t->sport = ntohs(tcp.source);
	t->dport = ntohs(tcp.dest);
	t->seq = ntohl(tcp.seq);
	t->flags = buf[ihl + 13];
	return 0;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len == 1)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

uint16_t pkt_csum(const uint8_t *pseudo, size_t plen, const uint8_t *seg, size_t len)
{
	return fold(sum16(seg, len, sum16(pseudo, plen, 0)));
}

uint16_t pkt_tcp_csum(struct in_addr src, struct in_addr dst, const uint8_t *seg, size_t len)
{
	uint8_t pseudo[12];

	memcpy(pseudo, &src.s_addr, 4);
	memcpy(pseudo + 4, &dst.s_addr, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = (uint8_t)(len >> 8);
	pseudo[11] = (uint8_t)len;
	return pkt_csum(pseudo, sizeof(pseudo), seg, len);
}

size_t pkt_rst(const struct tcp4 *t, uint8_t *out, size_t outlen)
{
	struct iphdr ip;
	struct tcphdr tcp;

	if (outlen < sizeof(ip) + sizeof(tcp))
		return 0;
	memset(&ip, 0, sizeof(ip));
	ip.version = 4;
	ip.ihl = sizeof(ip) / 4;
	ip.tot_len = htons(sizeof(ip) + sizeof(tcp));
	ip.ttl = 64;
	ip.protocol = IPPROTO_TCP;
	ip.saddr = t->daddr.s_addr; /* as if from the guest */
	ip.daddr = t->saddr.s_addr;
	memset(&tcp, 0, sizeof(tcp));
	tcp.source = htons(t->dport);
	tcp.dest = htons(t->sport);
	tcp.ack_seq = htonl(t->seq + 1);
	tcp.doff = sizeof(tcp) / 4;
	tcp.rst = 1;
	tcp.ack = 1;
	memcpy(out + sizeof(ip), &tcp, sizeof(tcp));
	tcp.check = pkt_tcp_csum(t->daddr, t->saddr, out + sizeof(ip), sizeof(tcp));
	memcpy(out, &ip, sizeof(ip));
	ip.check = fold(sum16(out, sizeof(ip), 0)); /* the kernel fills it in too */
	memcpy(out, &ip, sizeof(ip));
	memcpy(out + sizeof(ip), &tcp, sizeof(tcp));
	return sizeof(ip) + sizeof(tcp);
}
