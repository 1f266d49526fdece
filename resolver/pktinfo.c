/*
 * Answers from the address that was asked. A socket bound to a wildcard
 * address (0.0.0.0, ::) would otherwise answer from whatever address the
 * route picks, and clients drop answers from an unexpected source. So on
 * wildcard sockets the destination of each query is read (IP_PKTINFO,
 * IPV6_RECVPKTINFO) and set as the source of its answer.
 */
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"

bool pktinfo_wildcard(const struct conf_addr *a)
{
	const struct sockaddr_in *s4 = (const void *)&a->ss;
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return s4->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	return false;
}

int pktinfo_enable(int fd, int family)
{
	int one = 1;

	if (family == AF_INET)
		return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
}

void pktinfo_read(const struct msghdr *m, struct udp_local *out)
{
	struct cmsghdr *c;

	out->family = 0;
	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			out->family = AF_INET;
			out->a4 = pi.ipi_addr;
			out->ifindex = pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			out->family = AF_INET6;
			out->a6 = pi.ipi6_addr;
			out->ifindex = (int)pi.ipi6_ifindex;
		}
	}
}

/* Control data for sendmsg into BUF (PKTINFO_CTL_LEN bytes); its length, 0 when none. */
size_t pktinfo_write(const struct udp_local *l, void *buf)
{
	struct msghdr m = {.msg_control = buf, .msg_controllen = PKTINFO_CTL_LEN};
	struct cmsghdr *c;

	if (!l->family)
		return 0;
	memset(buf, 0, PKTINFO_CTL_LEN);
	c = CMSG_FIRSTHDR(&m);
	if (l->family == AF_INET) {
		struct in_pktinfo pi = {.ipi_spec_dst = l->a4};

		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	struct in6_pktinfo pi6 = {.ipi6_addr = l->a6, .ipi6_ifindex = (unsigned)l->ifindex};

	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi6));
	memcpy(CMSG_DATA(c), &pi6, sizeof(pi6));
	return CMSG_SPACE(sizeof(pi6));
}

/* One datagram to a client, from its query's destination when known. */
ssize_t pktinfo_sendto(int fd, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen, const struct udp_local *l)
{
	union {
		struct cmsghdr align;
		uint8_t buf[PKTINFO_CTL_LEN];
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr m = {
	    .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1};

	m.msg_controllen = pktinfo_write(l, ctl.buf);
	if (m.msg_controllen)
		m.msg_control = ctl.buf;
	return sendmsg(fd, &m, 0);
}
