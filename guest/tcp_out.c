/*
 * tcp_out.c: building and sending segments.  tcp_output sends what the
 * peer's window allows from the send buffer (which holds everything from
 * snd_una on), lets the FIN ride on the last segment, and keeps the
 * retransmission timer running while anything is unacknowledged.
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

bool tcp_emit(const struct tcp_seg *s)
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

uint16_t tcp_rwnd(const struct tcp_pcb *pcb)
{
	return (uint16_t)(TCP_RXBUF - pcb->rx_len);
}

bool tcp_send(struct tcp_pcb *pcb, uint8_t flags, uint32_t seq, const uint8_t *data, size_t len)
{
	struct tcp_seg s = {pcb->peer_mac, pcb->peer_ip, net_cfg.port,  pcb->peer_port, seq,
	                    pcb->rcv_nxt,  flags,        tcp_rwnd(pcb), data,           len};

	pcb->flags &= (uint8_t)~F_ACKNOW; /* every segment we send carries the ACK */
	return tcp_emit(&s);
}

/* Reset a segment that has no connection (RFC 9293 3.10.7.1). */
void tcp_reset_reply(const uint8_t *frame, uint32_t src, const uint8_t *th, size_t seglen)
{
	struct tcp_seg s = {frame + 6, src, get_be16(th + 2), get_be16(th), 0, 0, TH_RST, 0,
	                    NULL,      0};

	if (th[13] & TH_ACK) {
		s.seq = get_be32(th + 8);
	} else {
		s.ack = get_be32(th + 4) + (uint32_t)seglen;
		s.flags |= TH_ACK;
	}
	tcp_emit(&s);
}

void tcp_arm_rto(struct tcp_pcb *pcb, uint64_t now)
{
	if (!pcb->rto_due)
		pcb->rto_due = now + pcb->rto;
}

/* Send what the window allows; the FIN rides on the last segment. */
void tcp_output(struct tcp_pcb *pcb)
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

void tcp_abort(struct tcp_pcb *pcb)
{
	tcp_send(pcb, TH_RST | TH_ACK, pcb->snd_nxt, NULL, 0);
	tcp_table_free(pcb);
}

/* RFC 6528-style ISN: a 4 us clock plus a keyed mix of the peer (not cryptographic). */
