/* netif.h: the virtio-net device: receive into fixed buffers, send from fixed buffers. */
#ifndef GUEST_NETIF_H
#define GUEST_NETIF_H

#include "lib.h"

#define NETIF_MTU 1500
#define NETIF_FRAME_MAX 1514 /* Ethernet header + MTU, no FCS */

/* Find and start the NIC; fills mac. -1 if there is none. */
int netif_init(const char *cmdline, uint8_t mac[6]);
/* Post the receive buffers bring-up left out (call once after READY). */
void netif_rx_fill(void);
/* Hand every received frame to eth_input, then give the buffers back. */
void netif_poll(void);
/* A buffer for one outgoing frame of up to NETIF_FRAME_MAX bytes, or NULL if all are in flight. */
uint8_t *netif_tx_alloc(void);
/* Queue the frame (from netif_tx_alloc) of len bytes. */
void netif_tx_send(uint8_t *frame, size_t len);
/* Notify the device of queued frames and refilled buffers (one VM exit per batch). */
void netif_flush(void);
/*
 * Let the NIC interrupt us again (netif_poll turns that off while it works);
 * true if frames arrived meanwhile, which the caller must poll before halting.
 */
bool netif_rx_arm(void);
/* True if the NIC raised its interrupt since the last call. */
bool netif_take_irq(void);
/* True if the NIC has no interrupt (no firmware routed its PCI pin): the caller polls. */
bool netif_polled(void);

#endif
