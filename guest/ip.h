/* ip.h: IPv4 input and output, and ICMP echo. */
#ifndef GUEST_IP_H
#define GUEST_IP_H

#include "lib.h"

#define IP_HLEN 20
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6

/* Check and dispatch the IPv4 packet in this Ethernet frame. */
void ip_input(uint8_t *frame, size_t len);
/*
 * Fill the Ethernet and IPv4 headers of an outgoing frame whose payload
 * (plen bytes) follows at frame + ETH_HLEN + IP_HLEN.  Returns the frame length.
 */
size_t ip_header(uint8_t *frame, const uint8_t *dst_mac, uint32_t dst, uint8_t proto, size_t plen);
/* The checksum's pseudo-header sum for TCP. */
uint32_t ip_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len);

#endif
