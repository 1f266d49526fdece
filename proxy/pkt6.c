/*
 * The few bytes of IPv6 and TCP the SYN hold reads and writes, for services
 * with address6. Only a TCP header right after the fixed header is read: a
 * SYN with extension headers is none of ours (it is let through).
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>

#include "internal.h"

#define PKT6_HDR 40

int pkt6_parse(const uint8_t *buf, size_t len, struct tcp4 *t)
{
	struct tcphdr tcp;

	if (len < PKT6_HDR + sizeof(tcp) || (buf[0] >> 4) != 6 || buf[6] != IPPROTO_TCP)
		return -1;
	memcpy(&tcp, buf + PKT6_HDR, sizeof(tcp));
	memset(t, 0, sizeof(*t));
	t->v6 = true;
	memcpy(&t->saddr6, buf + 8, 16);
	memcpy(&t->daddr6, buf + 24, 16);
	t->sport = ntohs(tcp.source);
	t->dport = ntohs(tcp.dest);
	t->seq = ntohl(tcp.seq);
	t->flags = buf[PKT6_HDR + 13];
	return 0;
}

uint16_t pkt6_tcp_csum(const struct in6_addr *src, const struct in6_addr *dst, const uint8_t *seg,
                       size_t len)
{
	uint8_t pseudo[40] = {0};

	memcpy(pseudo, src, 16);
	memcpy(pseudo + 16, dst, 16);
	pseudo[34] = (uint8_t)(len >> 8);
	pseudo[35] = (uint8_t)len;
	pseudo[39] = IPPROTO_TCP;
	return pkt_csum(pseudo, sizeof(pseudo), seg, len);
}

size_t pkt6_rst(const struct tcp4 *t, uint8_t *out, size_t outlen)
{
	struct ip6_hdr ip;
	struct tcphdr tcp;

	if (outlen < PKT6_HDR + sizeof(tcp))
		return 0;
	memset(&ip, 0, sizeof(ip));
	ip.ip6_flow = htonl(6u << 28);
	ip.ip6_plen = htons(sizeof(tcp));
	ip.ip6_nxt = IPPROTO_TCP;
	ip.ip6_hlim = 64;
	ip.ip6_src = t->daddr6; /* as if from the guest */
	ip.ip6_dst = t->saddr6;
	memset(&tcp, 0, sizeof(tcp));
	tcp.source = htons(t->dport);
	tcp.dest = htons(t->sport);
	tcp.ack_seq = htonl(t->seq + 1);
	tcp.doff = sizeof(tcp) / 4;
	tcp.rst = 1;
	tcp.ack = 1;
	tcp.check = pkt6_tcp_csum(&t->daddr6, &t->saddr6, (const uint8_t *)&tcp, sizeof(tcp));
	memcpy(out, &ip, sizeof(ip));
	memcpy(out + sizeof(ip), &tcp, sizeof(tcp));
	return sizeof(ip) + sizeof(tcp);
}
