/*
 * One NFQUEUE queue over nfnetlink with libnl-nf: the queue is bound with
 * nfnl_queue_create (copy range and length), queued packets are parsed
 * with nfnlmsg_queue_msg_parse, verdicts built with
 * nfnl_queue_msg_build_verdict. Reading is a non-blocking recv loop of our
 * own over the socket, so that one wake takes every packet waiting.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <netlink/msg.h>
#include <netlink/netfilter/nfnl.h>
#include <netlink/netfilter/queue.h>
#include <netlink/netfilter/queue_msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "internal.h"
#include "log.h"

#define NFQ_RCVBUF (4 << 20)

struct nfq {
	struct nl_sock *sk;
	uint16_t num;
	uint8_t buf[65536] __attribute__((aligned(8)));
};

/* Bind the queue: the whole of each packet up to COPY bytes, at most MAXLEN waiting. */
static int nfq_bind(struct nfq *q, unsigned copy, unsigned maxlen)
{
	struct nfnl_queue *queue = nfnl_queue_alloc();
	int rc;

	if (queue == NULL)
		return -NLE_NOMEM;
	nfnl_queue_set_group(queue, q->num);
	nfnl_queue_set_copy_mode(queue, NFNL_QUEUE_COPY_PACKET);
	nfnl_queue_set_copy_range(queue, copy);
	nfnl_queue_set_maxlen(queue, maxlen);
	rc = nfnl_queue_create(q->sk, queue); /* waits for the kernel's ack */
	nfnl_queue_put(queue);
	return rc;
}

struct nfq *nfq_open(uint16_t num, unsigned copy, unsigned maxlen)
{
	struct nfq *q;
	int rc, one = 1;

	if ((q = calloc(1, sizeof(*q))) == NULL || (q->sk = nfnl_queue_socket_alloc()) == NULL) {
		free(q);
		return NULL;
	}
	q->num = num;
	if ((rc = nfnl_connect(q->sk)) < 0 || (rc = nfq_bind(q, copy, maxlen)) < 0) {
		log_debug("proxy: NFQUEUE %u: %s", num, nl_geterror(rc));
		nfq_close(q);
		return NULL;
	}
	nl_socket_set_buffer_size(q->sk, NFQ_RCVBUF, 0);
	/* An overrun loses packets (the kernel drops them: a SYN is sent again), not the socket. */
	setsockopt(nl_socket_get_fd(q->sk), SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	nl_socket_disable_auto_ack(q->sk);
	nl_socket_set_nonblocking(q->sk);
	return q;
}

int nfq_fd(const struct nfq *q)
{
	return nl_socket_get_fd(q->sk);
}

/* One message from the kernel: a queued packet, handed to FN. */
static void nfq_one(struct nlmsghdr *nlh, void (*fn)(const struct nfq_pkt *, void *), void *arg)
{
	struct nfnl_queue_msg *m = NULL;
	struct nfq_pkt pkt;
	int len = 0;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_QUEUE ||
	    NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET ||
	    nfnlmsg_queue_msg_parse(nlh, &m) < 0)
		return;
	if (nfnl_queue_msg_test_packetid(m)) {
		pkt.id = nfnl_queue_msg_get_packetid(m);
		pkt.payload = nfnl_queue_msg_get_payload(m, &len);
		pkt.len = pkt.payload != NULL && len > 0 ? (size_t)len : 0;
		fn(&pkt, arg);
	}
	nfnl_queue_msg_put(m);
}

int nfq_read(struct nfq *q, void (*fn)(const struct nfq_pkt *, void *), void *arg)
{
	struct nlmsghdr *nlh;
	ssize_t n;
	int len;

	for (;;) {
		n = recv(nl_socket_get_fd(q->sk), q->buf, sizeof(q->buf), MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == ENOBUFS))
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		len = (int)n;
		for (nlh = (struct nlmsghdr *)q->buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len))
			nfq_one(nlh, fn, arg);
	}
}

int nfq_verdict(struct nfq *q, uint32_t id, unsigned verdict)
{
	struct nfnl_queue_msg *m = nfnl_queue_msg_alloc();
	struct nl_msg *msg = NULL;
	int rc = -1;

	if (m != NULL) {
		nfnl_queue_msg_set_group(m, q->num);
		nfnl_queue_msg_set_family(m, AF_INET);
		nfnl_queue_msg_set_packetid(m, id);
		nfnl_queue_msg_set_verdict(m, verdict);
		msg = nfnl_queue_msg_build_verdict(m);
	}
	/* Not nfnl_queue_msg_send_verdict: no ack is asked for, none waited for. */
	if (msg != NULL)
		rc = nl_send_auto(q->sk, msg) < 0 ? -1 : 0;
	if (rc == -1)
		log_warnx("proxy: NFQUEUE %u: verdict for packet %u not sent", q->num, id);
	nlmsg_free(msg);
	if (m != NULL)
		nfnl_queue_msg_put(m);
	return rc;
}

void nfq_close(struct nfq *q)
{
	if (q == NULL)
		return;
	/* Closing the socket unbinds the queue; what it still holds is dropped. */
	nl_socket_free(q->sk);
	free(q);
}
