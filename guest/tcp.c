/*
 * tcp.c: passive-open TCP (RFC 9293) for the HTTP port, sized for a small
 * server: a fixed table of connections (tcp_table.c), each with a receive
 * buffer whose free space is the window we advertise and a send buffer
 * holding what the peer has not acknowledged yet (tcp_out.c sends from it).
 * Here: segment arrival, the application's calls, and the timers.
 * Retransmission is go-back-N from snd_una on an RTO from RFC 6298
 * estimates.  RST and SYN checks follow RFC 5961.
 * Not done: out-of-order queueing (we drop and dup-ACK), congestion control,
 * window scaling, SACK, timestamps, urgent data, active open.
 */
#include "eth.h"
#include "http.h"
#include "ip.h"
#include "net.h"
#include "netif.h"
#include "tcp.h"
#include "tcp_int.h"
#include "timer.h"
#include "cpu.h"

/* ---- the application's side ---- */

const uint8_t *tcp_rx_data(struct tcp_pcb *pcb, size_t *len)
{
	*len = pcb->rx_len;
	return pcb->rx;
}

void tcp_rx_consume(struct tcp_pcb *pcb, size_t n)
{
	uint16_t before = tcp_rwnd(pcb);

	if (n > pcb->rx_len)
		n = pcb->rx_len;
	memmove(pcb->rx, pcb->rx + n, pcb->rx_len - n);
	pcb->rx_len = (uint16_t)(pcb->rx_len - n);
	/* Tell a peer that was stopped by a small window that it may go on. */
	if (before < pcb->mss && tcp_rwnd(pcb) >= pcb->mss)
		pcb->flags |= F_ACKNOW;
}

size_t tcp_tx_room(const struct tcp_pcb *pcb)
{
	return (pcb->flags & F_FIN_Q) ? 0 : TCP_TXBUF - pcb->tx_len;
}

void tcp_write(struct tcp_pcb *pcb, const void *data, size_t len)
{
	len = MIN(len, tcp_tx_room(pcb));
	memcpy(pcb->tx + pcb->tx_len, data, len);
	pcb->tx_len = (uint16_t)(pcb->tx_len + len);
}

void tcp_close(struct tcp_pcb *pcb)
{
	if (pcb->flags & F_FIN_Q)
		return;
	pcb->flags |= F_FIN_Q;
	pcb->rx_len = 0; /* from now on received data is acknowledged and dropped */
	if (pcb->state == ESTABLISHED)
		pcb->state = FIN_WAIT_1;
	else if (pcb->state == CLOSE_WAIT)
		pcb->state = LAST_ACK;
}

uint16_t *tcp_app(struct tcp_pcb *pcb)
{
	return &pcb->app;
}

bool tcp_peer_closed(const struct tcp_pcb *pcb)
{
	return pcb->flags & F_PEER_FIN;
}

bool tcp_closing(const struct tcp_pcb *pcb)
{
	return pcb->flags & F_FIN_Q;
}

/* ---- receiving ---- */

struct tcp_in {
	uint32_t seq, ack;
	uint16_t wnd;
	uint8_t flags;
	const uint8_t *data;
	size_t dlen;
};

/* RFC 9293 3.10.7.4: is any of the segment inside our receive window? */
static bool tcp_acceptable(const struct tcp_pcb *pcb, const struct tcp_in *in)
{
	uint32_t seglen = (uint32_t)in->dlen + !!(in->flags & TH_SYN) + !!(in->flags & TH_FIN);
	uint32_t wnd = (pcb->flags & F_FIN_Q) ? TCP_RXBUF : tcp_rwnd(pcb);
	uint32_t end = pcb->rcv_nxt + wnd;

	if (seglen == 0 && wnd == 0)
		return in->seq == pcb->rcv_nxt;
	if (seglen == 0)
		return SEQ_GE(in->seq, pcb->rcv_nxt) && SEQ_LT(in->seq, end);
	if (wnd == 0)
		return false;
	return (SEQ_GE(in->seq, pcb->rcv_nxt) && SEQ_LT(in->seq, end)) ||
	       (SEQ_GE(in->seq + seglen - 1, pcb->rcv_nxt) && SEQ_LT(in->seq + seglen - 1, end));
}

/* RFC 6298 estimator, in microseconds. */
static void tcp_rtt_sample(struct tcp_pcb *pcb, uint64_t now)
{
	uint32_t r = (uint32_t)MIN(now - pcb->rtt_start, (uint64_t)RTO_MAX);
	uint32_t rto;

	if (!pcb->srtt) {
		pcb->srtt = r ? r : 1;
		pcb->rttvar = r / 2;
	} else {
		uint32_t d = pcb->srtt > r ? pcb->srtt - r : r - pcb->srtt;
		pcb->rttvar = (3 * pcb->rttvar + d) / 4;
		pcb->srtt = (7 * pcb->srtt + r) / 8;
	}
	rto = pcb->srtt + MAX(4 * pcb->rttvar, 1000u);
	pcb->rto = MIN(MAX(rto, (uint32_t)RTO_MIN), (uint32_t)RTO_MAX);
	pcb->rtt_start = 0;
}

/* Our FIN was acknowledged: move on. Returns false if the pcb is gone. */
static bool tcp_fin_acked(struct tcp_pcb *pcb, uint64_t now)
{
	switch (pcb->state) {
	case FIN_WAIT_1:
		pcb->state = FIN_WAIT_2;
		pcb->idle_due = now + FIN_WAIT_2_US;
		return true;
	case CLOSING:
		pcb->state = TIME_WAIT;
		pcb->idle_due = now + TIME_WAIT_US;
		return true;
	case LAST_ACK:
		tcp_table_free(pcb);
		return false;
	default:
		return true;
	}
}

/* Process the ACK field. Returns false if the segment is done with (or the pcb gone). */
static bool tcp_ack_input(struct tcp_pcb *pcb, const struct tcp_in *in, uint64_t now, bool *room)
{
	uint32_t acked, data;

	if (pcb->state == SYN_RCVD) {
		if (in->ack != pcb->snd_nxt) {
			struct tcp_seg s = {pcb->peer_mac, pcb->peer_ip,
			                    net_cfg.port,  pcb->peer_port,
			                    in->ack,       0,
			                    TH_RST,        0,
			                    NULL,          0};
			tcp_emit(&s);
			return false;
		}
		pcb->state = ESTABLISHED;
		pcb->snd_una = in->ack;
		pcb->snd_wnd = in->wnd;
		pcb->rto_due = 0;
		pcb->retries = 0;
		pcb->idle_due = now + IDLE_US;
		return true;
	}
	if (SEQ_GT(in->ack, pcb->snd_nxt)) {
		pcb->flags |= F_ACKNOW; /* acknowledges what we never sent */
		return false;
	}
	if (SEQ_LT(in->ack, pcb->snd_una))
		return true; /* an old duplicate ACK: ignore it, keep the data */
	if (SEQ_GT(in->ack, pcb->snd_una)) {
		acked = in->ack - pcb->snd_una;
		data = MIN(acked, (uint32_t)pcb->tx_len);
		memmove(pcb->tx, pcb->tx + data, pcb->tx_len - data);
		pcb->tx_len = (uint16_t)(pcb->tx_len - data);
		if (pcb->rtt_start && SEQ_GT(in->ack, pcb->rtt_seq))
			tcp_rtt_sample(pcb, now);
		pcb->snd_una = in->ack;
		pcb->retries = 0;
		pcb->rto_due = pcb->snd_una != pcb->snd_nxt ? now + pcb->rto : 0;
		*room = true;
		if (pcb->state == ESTABLISHED)
			pcb->idle_due = now + IDLE_US;
		if ((pcb->flags & F_FIN_SENT) && pcb->snd_una == pcb->snd_nxt &&
		    !tcp_fin_acked(pcb, now))
			return false;
	}
	pcb->snd_wnd = in->wnd;
	return true;
}

/* Take in-order data; returns true if the segment's FIN is next in sequence. */
static bool tcp_data_input(struct tcp_pcb *pcb, struct tcp_in *in, bool *got)
{
	uint32_t skip, n;

	if (SEQ_LT(in->seq, pcb->rcv_nxt)) { /* partly old: trim the front */
		skip = pcb->rcv_nxt - in->seq;
		if (skip > in->dlen)
			return false;
		in->data += skip;
		in->dlen -= skip;
		in->seq = pcb->rcv_nxt;
	}
	if (in->seq != pcb->rcv_nxt) {
		pcb->flags |= F_ACKNOW; /* a gap: dup-ACK so the peer resends */
		return false;
	}
	if (!in->dlen)
		return true;
	pcb->flags |= F_ACKNOW;
	if (pcb->state != ESTABLISHED && pcb->state != FIN_WAIT_1 && pcb->state != FIN_WAIT_2)
		return false; /* data after the peer's FIN: nonsense, just ACK */
	if (pcb->flags & F_FIN_Q) {
		n = (uint32_t)in->dlen; /* we closed: swallow it (lingering close) */
	} else {
		n = MIN((uint32_t)in->dlen, (uint32_t)tcp_rwnd(pcb));
		memcpy(pcb->rx + pcb->rx_len, in->data, n);
		pcb->rx_len = (uint16_t)(pcb->rx_len + n);
		*got = true;
	}
	pcb->rcv_nxt += n;
	return n == in->dlen;
}

static void tcp_fin_input(struct tcp_pcb *pcb, uint64_t now)
{
	pcb->rcv_nxt++;
	pcb->flags |= F_ACKNOW | F_PEER_FIN;
	switch (pcb->state) {
	case ESTABLISHED:
		pcb->state = CLOSE_WAIT;
		break;
	case FIN_WAIT_1:
		pcb->state = CLOSING;
		break;
	case FIN_WAIT_2:
		pcb->state = TIME_WAIT;
		pcb->idle_due = now + TIME_WAIT_US;
		break;
	default:
		pcb->rcv_nxt--; /* a repeat: only the ACK */
		break;
	}
}

static void tcp_segment(struct tcp_pcb *pcb, struct tcp_in *in)
{
	uint64_t now = timer_now_us();
	bool got = false, room = false, fin;

	if (pcb->state == SYN_RCVD && (in->flags & TH_SYN) && !(in->flags & TH_ACK) &&
	    in->seq == pcb->rcv_nxt - 1) {
		pcb->flags |= F_ACKNOW; /* our SYN-ACK was lost: send it again */
		goto out;
	}
	if (!tcp_acceptable(pcb, in)) {
		if (!(in->flags & TH_RST))
			pcb->flags |= F_ACKNOW;
		goto out;
	}
	if (in->flags & TH_RST) {
		if (in->seq == pcb->rcv_nxt) {
			tcp_table_free(pcb);
			return;
		}
		pcb->flags |= F_ACKNOW; /* RFC 5961 challenge ACK */
		goto out;
	}
	if (in->flags & TH_SYN) {
		pcb->flags |= F_ACKNOW; /* RFC 5961 4.2 */
		goto out;
	}
	if (!(in->flags & TH_ACK) || !tcp_ack_input(pcb, in, now, &room)) {
		if (pcb->state == CLOSED)
			return;
		goto out;
	}
	fin = tcp_data_input(pcb, in, &got) && (in->flags & TH_FIN);
	if (fin)
		tcp_fin_input(pcb, now);
	if (pcb->state == TIME_WAIT && (in->flags & TH_FIN))
		pcb->idle_due = now + TIME_WAIT_US;
	if (got && pcb->state == ESTABLISHED)
		pcb->idle_due = now + IDLE_US;
	if (got || fin || (room && pcb->rx_len))
		http_event(pcb);
out:
	tcp_output(pcb);
	tcp_table_note_due(pcb);
}

void tcp_input(const uint8_t *frame, const uint8_t *ih, uint8_t *seg, size_t len)
{
	uint32_t src = get_be32(ih + 12);
	struct tcp_pcb *pcb;
	struct tcp_in in;
	size_t hl;

	if (len < TCP_HLEN)
		return;
	hl = (size_t)(seg[12] >> 4) * 4;
	if (hl < TCP_HLEN || hl > len)
		return;
	if (net_checksum(seg, len, ip_pseudo_sum(src, net_cfg.ip, IPPROTO_TCP, len)) != 0)
		return;
	pcb = get_be16(seg + 2) == net_cfg.port ? tcp_table_find(src, get_be16(seg)) : NULL;
	if (pcb && pcb->state == TIME_WAIT && (seg[13] & (TH_SYN | TH_ACK)) == TH_SYN &&
	    SEQ_GT(get_be32(seg + 4), pcb->rcv_nxt)) {
		tcp_table_free(pcb); /* a new connection reusing the pair (RFC 6191) */
		pcb = NULL;
	}
	if (!pcb) {
		tcp_listen_input(frame, src, seg, hl,
		                 len - hl + !!(seg[13] & TH_SYN) + !!(seg[13] & TH_FIN));
		return;
	}
	/* Answer the hop the peer's frames come from now, not the one its SYN
	 * came from: a host bridge whose MAC follows its ports changes it. */
	if (!(frame[6] & 1))
		memcpy(pcb->peer_mac, frame + 6, 6);
	in.seq = get_be32(seg + 4);
	in.ack = get_be32(seg + 8);
	in.flags = seg[13];
	in.wnd = get_be16(seg + 14);
	in.data = seg + hl;
	in.dlen = len - hl;
	tcp_segment(pcb, &in);
}

/* ---- timers ---- */

static void tcp_retransmit(struct tcp_pcb *pcb, uint64_t now)
{
	unsigned limit = pcb->state == SYN_RCVD ? RETRIES_SYN : RETRIES_MAX;

	pcb->rto_due = 0;
	if (++pcb->retries > limit) {
		if (pcb->state == SYN_RCVD)
			tcp_table_free(pcb);
		else
			tcp_abort(pcb);
		return;
	}
	pcb->rto = MIN(pcb->rto * 2, (uint32_t)RTO_MAX);
	pcb->rtt_start = 0; /* Karn: no samples from retransmissions */
	pcb->snd_nxt = pcb->snd_una;
	pcb->flags &= (uint8_t)~F_FIN_SENT;
	if (pcb->state == SYN_RCVD) {
		pcb->snd_nxt = pcb->snd_una + 1;
		pcb->flags |= F_ACKNOW;
		pcb->rto_due = now + pcb->rto;
	}
	if (!pcb->snd_wnd)
		pcb->flags |= F_PROBE;
	tcp_output(pcb);
}

static void tcp_idle(struct tcp_pcb *pcb, uint64_t now)
{
	pcb->idle_due = 0;
	switch (pcb->state) {
	case ESTABLISHED:
		/* A keep-alive connection that stayed silent: close it politely. */
		tcp_close(pcb);
		pcb->idle_due = now + FIN_WAIT_2_US;
		tcp_output(pcb);
		break;
	case TIME_WAIT:
	case FIN_WAIT_2:
		tcp_table_free(pcb);
		break;
	default:
		tcp_abort(pcb); /* a peer that stopped answering */
		break;
	}
}

static uint64_t tcp_earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return MIN(a, b);
}

uint64_t tcp_timer(uint64_t now)
{
	uint64_t next = 0;
	struct tcp_pcb *pcb;
	unsigned i;

	/* The scan is ~5 emulated instructions a connection: skip it until something is due. */
	next = tcp_table_next_due();
	if (!next || now < next)
		return next;
	next = 0;
	for (i = tcp_table_count(); i-- > 0;) { /* backwards: freeing moves the last entry here */
		pcb = tcp_table_at(i);
		if (pcb->rto_due && now >= pcb->rto_due)
			tcp_retransmit(pcb, now);
		if (pcb->state != CLOSED && pcb->idle_due && now >= pcb->idle_due)
			tcp_idle(pcb, now);
		if (pcb->state != CLOSED)
			next = tcp_earliest(next, tcp_earliest(pcb->rto_due, pcb->idle_due));
	}
	tcp_table_set_next_due(next);
	return next;
}
