/* tcp.h: a passive-open TCP for one listening port. */
#ifndef GUEST_TCP_H
#define GUEST_TCP_H

#include "lib.h"

#define TCP_PCBS 128
#define TCP_RXBUF 4096 /* also the largest HTTP request head we take */
#define TCP_TXBUF 2048

struct tcp_pcb;

/* A TCP segment (len bytes at seg) arrived in this frame, whose IPv4 header is ih. */
void tcp_input(const uint8_t *frame, const uint8_t *ih, uint8_t *seg, size_t len);
/* Run due retransmission and idle timers; returns the next deadline or 0. */
uint64_t tcp_timer(uint64_t now);

/* For the application (http.c), called back through http_event(). */
/* The received bytes not yet consumed. */
const uint8_t *tcp_rx_data(struct tcp_pcb *pcb, size_t *len);
/* Drop the first n received bytes, opening the window. */
void tcp_rx_consume(struct tcp_pcb *pcb, size_t n);
/* Room left in the send buffer. */
size_t tcp_tx_room(const struct tcp_pcb *pcb);
/* Queue len bytes (at most tcp_tx_room) to send. */
void tcp_write(struct tcp_pcb *pcb, const void *data, size_t len);
/* Send FIN after what is queued; later data from the peer is acknowledged and dropped. */
void tcp_close(struct tcp_pcb *pcb);
/* A word the application may keep per connection; 0 when the connection opens. */
uint16_t *tcp_app(struct tcp_pcb *pcb);
/* True once the peer has sent its FIN. */
bool tcp_peer_closed(const struct tcp_pcb *pcb);
/* True once tcp_close() was called. */
bool tcp_closing(const struct tcp_pcb *pcb);

/* The secret part of the ISNs (the ISN for peer 0.0.0.0:0 at time 0): for /id. */
uint32_t tcp_isn_offset(void);

#endif
