/*
 * tcp_listen.c: the passive open.  A SYN to our port takes a connection
 * block (tcp_table.c may recycle TIME_WAIT or half-open ones when full) and
 * is answered with SYN-ACK; anything else for no connection gets RST.
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
#include "reseed.h"

/* The secret is reseed.c's: a guest restored from a template gets a new one. */
static uint32_t tcp_isn(uint32_t ip, uint16_t port, uint64_t now)
{
	uint64_t h;

	h = ((uint64_t)ip << 16 | port) ^ reseed_secret();
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)(now / 4) + (uint32_t)h;
}

uint32_t tcp_isn_offset(void)
{
	return tcp_isn(0, 0, 0);
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
void tcp_listen_input(const uint8_t *frame, uint32_t src, const uint8_t *th, size_t hl,
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
	now = timer_now_us();
	if (!(pcb = tcp_table_alloc(src, get_be16(th))))
		return; /* full of live connections: the peer will retry the SYN */
	pcb->state = SYN_RCVD;
	memcpy(pcb->peer_mac, frame + 6, 6);
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
	tcp_table_note_due(pcb);
}
