/*
 * tcp_int.h: what the TCP files share (tcp.c input, application calls and
 * timers; tcp_out.c sending; tcp_listen.c the passive open; tcp_table.c the
 * connection table): the connection block, its states and flags.
 */
#ifndef GUEST_TCP_INT_H
#define GUEST_TCP_INT_H

#include "tcp.h"

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
	uint8_t slot;  /* index in the active list */
	uint8_t hnext; /* next in the hash chain, as index + 1; 0 ends it */
	uint8_t peer_mac[6];
	uint16_t peer_port;
	uint32_t peer_ip;
	uint32_t snd_una, snd_nxt, snd_wnd, rcv_nxt;
	uint32_t rtt_seq; /* the sequence being timed, if rtt_start */
	uint16_t mss, rx_len, tx_len;
	uint16_t app; /* the application's per-connection word (tcp_app) */
	uint32_t rto, srtt, rttvar;
	uint64_t rtt_start, rto_due, idle_due, born;
	uint8_t rx[TCP_RXBUF];
	uint8_t tx[TCP_TXBUF];
};

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
#define IDLE_US 30000000 /* keep-alive connections that say nothing */
#define FIN_WAIT_2_US 10000000
#define TIME_WAIT_US 2000000 /* short: a LAN, and clients close first normally */

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LE(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((a) - (b)) > 0)
#define SEQ_GE(a, b) ((int32_t)((a) - (b)) >= 0)

/* A segment to build: tcp_out.c. */
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

/* Send one segment; false if no transmit buffer was free. */
bool tcp_emit(const struct tcp_seg *s);
/* The window we advertise: the free receive buffer. */
uint16_t tcp_rwnd(const struct tcp_pcb *pcb);
/* Send a segment on pcb (it carries the ACK, so a pending ACK is done). */
bool tcp_send(struct tcp_pcb *pcb, uint8_t flags, uint32_t seq, const uint8_t *data, size_t len);
/* Answer a segment that has no connection with RST (RFC 9293 3.10.7.1). */
void tcp_reset_reply(const uint8_t *frame, uint32_t src, const uint8_t *th, size_t seglen);
/* Start the retransmission timer unless it runs. */
void tcp_arm_rto(struct tcp_pcb *pcb, uint64_t now);
/* Send what the window allows, the FIN when due, and any pending ACK. */
void tcp_output(struct tcp_pcb *pcb);
/* Send RST and forget the connection. */
void tcp_abort(struct tcp_pcb *pcb);
/* A segment for no connection: a SYN to our port opens one (tcp_listen.c). */
void tcp_listen_input(const uint8_t *frame, uint32_t src, const uint8_t *th, size_t hl,
                      size_t seglen);

/* The connection for this peer, or NULL. */
struct tcp_pcb *tcp_table_find(uint32_t ip, uint16_t port);
/*
 * A zeroed connection block for this peer, in the table: a free one, else
 * the oldest in TIME_WAIT, else the oldest half-open one; NULL if all are
 * live connections.
 */
struct tcp_pcb *tcp_table_alloc(uint32_t ip, uint16_t port);
/* Give the block back (state CLOSED). */
void tcp_table_free(struct tcp_pcb *pcb);
/* The live connections are tcp_table_at(0 .. tcp_table_count() - 1). */
unsigned tcp_table_count(void);
struct tcp_pcb *tcp_table_at(unsigned i);
/* Remember pcb's deadlines: tcp_table_next_due() is never later than any of them. */
void tcp_table_note_due(const struct tcp_pcb *pcb);
/* The earliest deadline noted (it may have been cancelled since), 0 if none. */
uint64_t tcp_table_next_due(void);
/* After a full scan: the exact earliest deadline. */
void tcp_table_set_next_due(uint64_t due);

#endif
