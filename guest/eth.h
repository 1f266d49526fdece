/* eth.h: Ethernet framing and ARP. */
#ifndef GUEST_ETH_H
#define GUEST_ETH_H

#include "lib.h"

#define ETH_HLEN 14
#define ETHERTYPE_IP 0x0800
#define ETHERTYPE_ARP 0x0806

/* Dispatch one received frame. */
void eth_input(uint8_t *frame, size_t len);
/* Fill the Ethernet header of an outgoing frame (dst may be NULL for broadcast). */
void eth_header(uint8_t *frame, const uint8_t *dst, uint16_t type);
/* The MAC for an IPv4 next hop, or NULL if not (yet) known. */
const uint8_t *arp_lookup(uint32_t ip);
/* Announce ourselves (gratuitous ARP) and ask for the gateway. */
void arp_start(void);
/* Retry the gateway query if it has not answered; returns the next deadline or 0. */
uint64_t arp_timer(uint64_t now);

#endif
