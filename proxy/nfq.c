/*
 * One NFQUEUE queue over nfnetlink, on libnl-3's core (nl_sock, nlmsg,
 * nla). libnl-nf wraps the same four messages, but the build links only
 * libnl-3 and libnl-route; the protocol is small enough to speak here:
 * CONFIG (bind, copy range, queue length), PACKET in, VERDICT out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
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

static struct nl_msg *nfq_msg(uint16_t num, uint8_t type, int flags)
{
	struct nfgenmsg hdr = {
	    .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0, .res_id = htons(num)};
	struct nl_msg *msg = nlmsg_alloc_simple((NFNL_SUBSYS_QUEUE << 8) | type, flags);

	if (msg != NULL && nlmsg_append(msg, &hdr, sizeof(hdr), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(msg);
		msg = NULL;
	}
	return msg;
}

/* Bind the queue: the whole of each packet up to COPY bytes, at most MAXLEN waiting. */
static int nfq_bind(struct nfq *q, unsigned copy, unsigned maxlen)
{
	struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
	struct nfqnl_msg_config_params params = {.copy_range = htonl(copy),
	                                         .copy_mode = NFQNL_COPY_PACKET};
	struct nl_msg *msg = nfq_msg(q->num, NFQNL_MSG_CONFIG, NLM_F_REQUEST);
	int rc;

	if (msg == NULL)
		return -NLE_NOMEM;
	if (nla_put(msg, NFQA_CFG_CMD, sizeof(cmd), &cmd) < 0 ||
	    nla_put(msg, NFQA_CFG_PARAMS, sizeof(params), &params) < 0 ||
	    nla_put_u32(msg, NFQA_CFG_QUEUE_MAXLEN, htonl(maxlen)) < 0) {
		nlmsg_free(msg);
		return -NLE_NOMEM;
	}
	rc = nl_send_sync(q->sk, msg); /* frees MSG, waits for the ack */
	return rc;
}

struct nfq *nfq_open(uint16_t num, unsigned copy, unsigned maxlen)
{
	struct nfq *q;
	int rc, one = 1;

	if ((q = calloc(1, sizeof(*q))) == NULL || (q->sk = nl_socket_alloc()) == NULL) {
		free(q);
		return NULL;
	}
	q->num = num;
	if ((rc = nl_connect(q->sk, NETLINK_NETFILTER)) < 0 ||
	    (rc = nfq_bind(q, copy, maxlen)) < 0) {
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
	struct nlattr *tb[NFQA_MAX + 1];
	struct nfqnl_msg_packet_hdr ph;
	struct nfq_pkt pkt;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_QUEUE ||
	    NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET ||
	    nlmsg_parse(nlh, sizeof(struct nfgenmsg), tb, NFQA_MAX, NULL) < 0 ||
	    tb[NFQA_PACKET_HDR] == NULL || nla_len(tb[NFQA_PACKET_HDR]) < (int)sizeof(ph))
		return;
	memcpy(&ph, nla_data(tb[NFQA_PACKET_HDR]), sizeof(ph));
	pkt.id = ph.packet_id;
	pkt.payload = tb[NFQA_PAYLOAD] ? nla_data(tb[NFQA_PAYLOAD]) : NULL;
	pkt.len = tb[NFQA_PAYLOAD] ? (size_t)nla_len(tb[NFQA_PAYLOAD]) : 0;
	fn(&pkt, arg);
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
	struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(verdict), .id = id};
	struct nl_msg *msg = nfq_msg(q->num, NFQNL_MSG_VERDICT, NLM_F_REQUEST);
	int rc = -1;

	if (msg != NULL && nla_put(msg, NFQA_VERDICT_HDR, sizeof(v), &v) == 0)
		rc = nl_send_auto(q->sk, msg) < 0 ? -1 : 0;
	if (rc == -1)
		log_warnx("proxy: NFQUEUE %u: verdict for packet %u not sent", q->num, ntohl(id));
	nlmsg_free(msg);
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
