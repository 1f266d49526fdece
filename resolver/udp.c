/*
 * UDP, on the DNS thread (fast.c): a batch of queries per wakeup with
 * recvmmsg, answers back with one sendmmsg. Buffers for a whole batch are
 * allocated once per resolver.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "internal.h"
#include "log.h"

#define UDP_RCVBUF (4 * 1024 * 1024)
#define UDP_ROUNDS 8

struct udp_batch {
	struct mmsghdr in[RESOLVER_UDP_BATCH];
	struct iovec iniov[RESOLVER_UDP_BATCH];
	struct sockaddr_storage from[RESOLVER_UDP_BATCH];
	struct mmsghdr out[RESOLVER_UDP_BATCH];
	struct iovec outiov[RESOLVER_UDP_BATCH];
	struct udp_local local;
	struct query q;
	union { /* aligned for cmsg */
		struct cmsghdr align;
		uint8_t buf[PKTINFO_CTL_LEN];
	} ictl[RESOLVER_UDP_BATCH], octl[RESOLVER_UDP_BATCH];
	uint8_t ibuf[RESOLVER_UDP_BATCH][RESOLVER_UDP_IN];
	uint8_t obuf[RESOLVER_UDP_BATCH][QUERY_EDNS_SIZE];
};

struct udp_batch *udp_batch_new(void)
{
	struct udp_batch *b = calloc(1, sizeof(*b));
	int i;

	if (!b)
		return NULL;
	for (i = 0; i < RESOLVER_UDP_BATCH; i++) {
		b->iniov[i].iov_base = b->ibuf[i];
		b->iniov[i].iov_len = RESOLVER_UDP_IN;
		b->in[i].msg_hdr.msg_iov = &b->iniov[i];
		b->in[i].msg_hdr.msg_iovlen = 1;
		b->in[i].msg_hdr.msg_name = &b->from[i];
		b->out[i].msg_hdr.msg_iov = &b->outiov[i];
		b->out[i].msg_hdr.msg_iovlen = 1;
	}
	return b;
}

/* Process datagram I of the batch; true when an answer was queued at slot *NOUT. */
static bool udp_one(struct listener *l, struct udp_batch *b, int i, int *nout)
{
	struct resolver *r = l->r;
	struct query *q = &b->q;
	struct client_ref c = {l->id, (struct sockaddr *)&b->from[i], b->in[i].msg_hdr.msg_namelen,
	                       NULL, NULL};
	struct msghdr *om = &b->out[*nout].msg_hdr;
	struct resolver_stats *cnt = fast_stats(r);
	enum query_state st;

	if (l->wildcard) {
		pktinfo_read(&b->in[i].msg_hdr, &b->local);
		c.local = &b->local;
	}

	q->out = b->obuf[*nout];
	q->outcap = QUERY_EDNS_SIZE;
	st = query_process(q, r->zone, b->ibuf[i], b->in[i].msg_len, false);
	if (st == QUERY_DROP) {
		cnt->dropped++;
		return false;
	}
	/* Over the rate limit: no wake, no forward, at most a truncated answer. */
	switch (ratelimit_udp(r, q, st, c.sa, cnt)) {
	case RRL_DROP:
		return false;
	case RRL_PASS:
		if (fast_now(r, q, st))
			break;
		if (fast_hand(r, &c, b->ibuf[i], b->in[i].msg_len) == 0)
			return false; /* the loop answers it */
		query_error(q, 2 /* SERVFAIL: the loop is that far behind */);
		break;
	case RRL_SLIP:
		break;
	}
	cnt->rcode[q->out[3] & 0x0f]++;
	om->msg_name = &b->from[i];
	om->msg_namelen = b->in[i].msg_hdr.msg_namelen;
	om->msg_control = NULL;
	om->msg_controllen = 0;
	if (l->wildcard && (om->msg_controllen = pktinfo_write(&b->local, b->octl[*nout].buf)))
		om->msg_control = b->octl[*nout].buf;
	b->outiov[*nout].iov_base = q->out;
	b->outiov[*nout].iov_len = q->outlen;
	(*nout)++;
	return true;
}

static void udp_flush(struct listener *l, struct udp_batch *b, int nout)
{
	int done = 0, n;

	while (done < nout) {
		n = sendmmsg(l->ufd, b->out + done, (unsigned)(nout - done), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A full socket buffer or an unreachable client: skip one, go on. */
			fast_stats(l->r)->dropped++;
			n = 1;
		}
		done += n;
	}
}

/*
 * Read, answer, and read again while there is more: under load a second
 * recvmmsg usually finds new queries, which saves a trip through
 * epoll_wait. Bounded, so other listeners get their turn.
 */
void udp_read(struct listener *l)
{
	struct udp_batch *b = l->r->udp;
	int fd = l->ufd, n, i, nout, round;

	for (round = 0; round < UDP_ROUNDS; round++) {
		for (i = 0; i < RESOLVER_UDP_BATCH; i++) {
			b->in[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
			b->in[i].msg_hdr.msg_control = l->wildcard ? b->ictl[i].buf : NULL;
			b->in[i].msg_hdr.msg_controllen = l->wildcard ? PKTINFO_CTL_LEN : 0;
		}
		n = recvmmsg(fd, b->in, RESOLVER_UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (i = 0, nout = 0; i < n; i++)
			udp_one(l, b, i, &nout);
		if (nout)
			udp_flush(l, b, nout);
	}
}

static int udp_socket(const struct conf_addr *a, bool wildcard)
{
	int fd = resolver_socket(a, SOCK_DGRAM), rcvbuf = UDP_RCVBUF;

	if (fd < 0)
		return -1;
	/* A bigger buffer rides out bursts; the kernel caps it at rmem_max. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (wildcard && pktinfo_enable(fd, a->ss.ss_family) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int udp_open(struct listener *l)
{
	l->wildcard = pktinfo_wildcard(&l->addr);
	l->ufd = udp_socket(&l->addr, l->wildcard);
	if (l->ufd < 0) {
		log_warn("dns: cannot listen on udp %s", l->addr.text);
		return -1;
	}
	if (fast_watch(l->r, l) < 0) {
		log_warn("dns: cannot watch udp %s", l->addr.text);
		close(l->ufd);
		l->ufd = -1;
		return -1;
	}
	return 0;
}

void udp_close(struct listener *l)
{
	if (l->ufd < 0)
		return;
	fast_unwatch(l->r, l);
	close(l->ufd);
	l->ufd = -1;
}
