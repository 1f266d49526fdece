/*
 * tcp.c: passive-open TCP (RFC 9293) for the HTTP port, sized for a small
 * server: a fixed table of connections, each with a receive buffer whose free
 * space is the window we advertise and a send buffer holding what the peer
 * has not acknowledged yet.  Retransmission is go-back-N from snd_una on an
 * RTO from RFC 6298 estimates.  RST and SYN checks follow RFC 5961.
 * Not done: out-of-order queueing (we drop and dup-ACK), congestion control,
 * window scaling, SACK, timestamps, urgent data, active open.
 */
#include "eth.h"
#include "http.h"
#include "ip.h"
#include "net.h"
#include "netif.h"
#include "tcp.h"
#include "timer.h"
#include "cpu.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TCP_HLEN 20
#define TCP_MSS 1460
#define TCP_MSS_DEFAULT 536

#define RTO_INIT 300000
#define RTO_MIN 200000
#define RTO_MAX 8000000
#define RETRIES_SYN 4
#define RETRIES_MAX 8
#define IDLE_US 30000000      /* keep-alive connections that say nothing */
#define FIN_WAIT_2_US 10000000
#define TIME_WAIT_US 2000000  /* short: a LAN, and clients close first normally */

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LE(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((a) - (b)) > 0)
#define SEQ_GE(a, b) ((int32_t)((a) - (b)) >= 0)

enum tcp_state {
	CLOSED, /* a free slot */
	SYN_RCVD,
	ESTABLISHED,
	CLOSE_WAIT,
	FIN_WAIT_1,
	FIN_WAIT_2,
	CLOSING,
	LAST_ACK,
	TIME_WAIT,
};

#define F_ACKNOW 0x01   /* send an ACK even with no data */
#define F_FIN_Q 0x02    /* the application closed: FIN follows the data */
#define F_FIN_SENT 0x04 /* snd_nxt includes our FIN */
#define F_PEER_FIN 0x08 /* the peer's FIN arrived */
#define F_PROBE 0x10    /* the retransmit timer fired on a zero window */

struct tcp_pcb {
	uint8_t state, flags, retries;
	uint8_t peer_mac[6];
	uint16_t peer_port;
	uint32_t peer_ip;
	uint32_t snd_una, snd_nxt, snd_wnd, rcv_nxt;
	uint32_t rtt_seq; /* the sequence being timed, if rtt_start */
	uint16_t mss, rx_len, tx_len;
	uint32_t rto, srtt, rttvar;
	uint64_t rtt_start, rto_due, idle_due, born;
	uint8_t rx[TCP_RXBUF];
	uint8_t tx[TCP_TXBUF];
};

static struct tcp_pcb tcp_pcbs[TCP_PCBS];
static uint64_t tcp_secret;

/* ---- sending ---- */

struct tcp_seg {
	const uint8_t *mac;
	uint32_t ip;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *data;
	size_t len;
};

static bool tcp_emit(const struct tcp_seg *s)
{
	uint8_t *f = netif_tx_alloc();
	uint8_t *t;
	size_t hl = (s->flags & TH_SYN) ? TCP_HLEN + 4 : TCP_HLEN;

	if (!f)
		return false; /* all buffers in flight: retransmission recovers */
	t = f + ETH_HLEN + IP_HLEN;
	put_be16(t, s->sport);
	put_be16(t + 2, s->dport);
	put_be32(t + 4, s->seq);
	put_be32(t + 8, s->ack);
	t[12] = (uint8_t)(hl / 4) << 4;
	t[13] = s->flags;
	put_be16(t + 14, s->wnd);
	put_be32(t + 16, 0); /* checksum, urgent pointer */
	if (hl > TCP_HLEN) {
		t[20] = 2; /* MSS option */
		t[21] = 4;
		put_be16(t + 22, TCP_MSS);
	}
	if (s->len)
		memcpy(t + hl, s->data, s->len);
	put_be16(t + 16, net_checksum(t, hl + s->len,
				      ip_pseudo_sum(net_cfg.ip, s->ip, IPPROTO_TCP, hl + s->len)));
	netif_tx_send(f, ip_header(f, s->mac, s->ip, IPPROTO_TCP, hl + s->len));
	return true;
}

static uint16_t tcp_rwnd(const struct tcp_pcb *pcb)
{
	return (uint16_t)(TCP_RXBUF - pcb->rx_len);
}

static bool tcp_send(struct tcp_pcb *pcb, uint8_t flags, uint32_t seq, const uint8_t *data,
		     size_t len)
{
	struct tcp_seg s = {pcb->peer_mac, pcb->peer_ip, net_cfg.port, pcb->peer_port, seq,
			    pcb->rcv_nxt, flags, tcp_rwnd(pcb), data, len};

	pcb->flags &= (uint8_t)~F_ACKNOW; /* every segment we send carries the ACK */
	return tcp_emit(&s);
}

/* Reset a segment that has no connection (RFC 9293 3.10.7.1). */
static void tcp_reset_reply(const uint8_t *frame, uint32_t src, const uint8_t *th, size_t seglen)
{
	struct tcp_seg s = {frame + 6, src, get_be16(th + 2), get_be16(th), 0, 0, TH_RST, 0, NULL, 0};

	if (th[13] & TH_ACK) {
		s.seq = get_be32(th + 8);
	} else {
		s.ack = get_be32(th + 4) + (uint32_t)seglen;
		s.flags |= TH_ACK;
	}
	tcp_emit(&s);
}

static void tcp_arm_rto(struct tcp_pcb *pcb, uint64_t now)
{
	if (!pcb->rto_due)
		pcb->rto_due = now + pcb->rto;
}

/* Send what the window allows; the FIN rides on the last segment. */
static void tcp_output(struct tcp_pcb *pcb)
{
	uint64_t now = timer_now_us();
	uint32_t off = pcb->snd_nxt - pcb->snd_una;
	uint32_t wnd = pcb->snd_wnd ? pcb->snd_wnd : ((pcb->flags & F_PROBE) ? 1 : 0);
	uint32_t usable, n;
	uint8_t fl;

	if (pcb->state == SYN_RCVD) {
		if (pcb->flags & F_ACKNOW)
			tcp_send(pcb, TH_SYN | TH_ACK, pcb->snd_una, NULL, 0);
		return;
	}
	pcb->flags &= (uint8_t)~F_PROBE;
	if (pcb->flags & F_FIN_SENT)
		off--; /* the FIN is not in tx[] */
	usable = off < wnd ? wnd - off : 0;
	while (off < pcb->tx_len && usable) {
		n = MIN(MIN(pcb->tx_len - off, (uint32_t)pcb->mss), usable);
		fl = TH_ACK | TH_PSH;
		if (off + n == pcb->tx_len && (pcb->flags & F_FIN_Q))
			fl |= TH_FIN;
		if (!tcp_send(pcb, fl, pcb->snd_una + off, pcb->tx + off, n))
			break;
		if (!pcb->rtt_start) {
			pcb->rtt_start = now;
			pcb->rtt_seq = pcb->snd_una + off;
		}
		off += n;
		usable -= n;
		pcb->snd_nxt = pcb->snd_una + off;
		if (fl & TH_FIN) {
			pcb->snd_nxt++;
			pcb->flags |= F_FIN_SENT;
		}
		tcp_arm_rto(pcb, now);
	}
	if ((pcb->flags & F_FIN_Q) && !(pcb->flags & F_FIN_SENT) && off == pcb->tx_len) {
		if (tcp_send(pcb, TH_FIN | TH_ACK, pcb->snd_una + off, NULL, 0)) {
			pcb->snd_nxt = pcb->snd_una + off + 1;
			pcb->flags |= F_FIN_SENT;
			tcp_arm_rto(pcb, now);
		}
	}
	/*
	 * Anything not yet acknowledged keeps the timer running: it retransmits,
	 * probes a zero window, and retries a send that found no free buffer.
	 */
	if (pcb->tx_len || ((pcb->flags & F_FIN_Q) && pcb->snd_una != pcb->snd_nxt) ||
	    ((pcb->flags & F_FIN_Q) && !(pcb->flags & F_FIN_SENT)))
		tcp_arm_rto(pcb, now);
	if (pcb->flags & F_ACKNOW)
		tcp_send(pcb, TH_ACK, pcb->snd_nxt, NULL, 0);
}

/* ---- connection table ---- */

static void tcp_free(struct tcp_pcb *pcb)
{
	pcb->state = CLOSED;
}

static void tcp_abort(struct tcp_pcb *pcb)
{
	tcp_send(pcb, TH_RST | TH_ACK, pcb->snd_nxt, NULL, 0);
	tcp_free(pcb);
}

static struct tcp_pcb *tcp_find(uint32_t ip, uint16_t port)
{
	unsigned i;

	for (i = 0; i < TCP_PCBS; i++)
		if (tcp_pcbs[i].state != CLOSED && tcp_pcbs[i].peer_port == port &&
		    tcp_pcbs[i].peer_ip == ip)
			return &tcp_pcbs[i];
	return NULL;
}

/* A free slot, else the oldest in TIME_WAIT, else the oldest half-open one. */
static struct tcp_pcb *tcp_alloc(void)
{
	struct tcp_pcb *tw = NULL, *syn = NULL, *p;
	unsigned i;

	for (i = 0; i < TCP_PCBS; i++) {
		p = &tcp_pcbs[i];
		if (p->state == CLOSED)
			return p;
		if (p->state == TIME_WAIT && (!tw || p->born < tw->born))
			tw = p;
		if (p->state == SYN_RCVD && (!syn || p->born < syn->born))
			syn = p;
	}
	return tw ? tw : syn;
}

/* RFC 6528-style ISN: a 4 us clock plus a keyed mix of the peer (not cryptographic). */
static uint32_t tcp_isn(uint32_t ip, uint16_t port, uint64_t now)
{
	uint64_t h = ((uint64_t)ip << 16 | port) ^ tcp_secret;

	if (!tcp_secret)
		tcp_secret = rdtsc() | 1;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)(now / 4) + (uint32_t)h;
}

static uint16_t tcp_parse_mss(const uint8_t *th, size_t hl)
{
	size_t i = TCP_HLEN;
	uint16_t mss = TCP_MSS_DEFAULT;

	while (i < hl) {
		if (th[i] == 0)
			break;
		if (th[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hl || th[i + 1] < 2 || i + th[i + 1] > hl)
			break;
		if (th[i] == 2 && th[i + 1] == 4)
			mss = get_be16(th + i + 2);
		i += th[i + 1];
	}
	return (uint16_t)MAX(MIN(mss, TCP_MSS), 64);
}

/* A segment for no connection: a SYN to our port opens one, anything else gets RST. */
static void tcp_listen_input(const uint8_t *frame, uint32_t src, const uint8_t *th, size_t hl,
			     size_t seglen)
{
	uint8_t fl = th[13];
	struct tcp_pcb *pcb;
	uint64_t now;

	if (fl & TH_RST)
		return;
	if (get_be16(th + 2) != net_cfg.port || (fl & TH_ACK) || !(fl & TH_SYN)) {
		tcp_reset_reply(frame, src, th, seglen);
		return;
	}
	if (!(pcb = tcp_alloc()))
		return; /* full of live connections: the peer will retry the SYN */
	now = timer_now_us();
	memset(pcb, 0, offsetof(struct tcp_pcb, rx));
	pcb->state = SYN_RCVD;
	memcpy(pcb->peer_mac, frame + 6, 6);
	pcb->peer_ip = src;
	pcb->peer_port = get_be16(th);
	pcb->rcv_nxt = get_be32(th + 4) + 1; /* data on a SYN is not taken */
	pcb->snd_una = tcp_isn(src, pcb->peer_port, now);
	pcb->snd_nxt = pcb->snd_una + 1;
	pcb->snd_wnd = get_be16(th + 14);
	pcb->mss = tcp_parse_mss(th, hl);
	pcb->rto = RTO_INIT;
	pcb->born = now;
	pcb->rto_due = now + pcb->rto;
	pcb->flags = F_ACKNOW;
	tcp_output(pcb);
}

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
		tcp_free(pcb);
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
			struct tcp_seg s = {pcb->peer_mac, pcb->peer_ip, net_cfg.port, pcb->peer_port,
					    in->ack, 0, TH_RST, 0, NULL, 0};
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
			tcp_free(pcb);
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
	pcb = get_be16(seg + 2) == net_cfg.port ? tcp_find(src, get_be16(seg)) : NULL;
	if (pcb && pcb->state == TIME_WAIT && (seg[13] & (TH_SYN | TH_ACK)) == TH_SYN &&
	    SEQ_GT(get_be32(seg + 4), pcb->rcv_nxt)) {
		tcp_free(pcb); /* a new connection reusing the pair (RFC 6191) */
		pcb = NULL;
	}
	if (!pcb) {
		tcp_listen_input(frame, src, seg, hl, len - hl + !!(seg[13] & TH_SYN) +
							  !!(seg[13] & TH_FIN));
		return;
	}
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
			tcp_free(pcb);
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
		tcp_free(pcb);
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

	for (i = 0; i < TCP_PCBS; i++) {
		pcb = &tcp_pcbs[i];
		if (pcb->state == CLOSED)
			continue;
		if (pcb->rto_due && now >= pcb->rto_due)
			tcp_retransmit(pcb, now);
		if (pcb->state != CLOSED && pcb->idle_due && now >= pcb->idle_due)
			tcp_idle(pcb, now);
		if (pcb->state != CLOSED)
			next = tcp_earliest(next, tcp_earliest(pcb->rto_due, pcb->idle_due));
	}
	return next;
}
