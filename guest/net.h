/* net.h: the guest's addresses and settings, shared by every protocol layer. */
#ifndef GUEST_NET_H
#define GUEST_NET_H

#include "lib.h"

#define NAME_MAX_LEN 32

struct net_config {
	uint32_t ip, mask, gw; /* host byte order */
	uint16_t port;         /* the HTTP port */
	uint8_t mac[6];
	char name[NAME_MAX_LEN + 1];
	size_t name_len;
	uint64_t ready_us; /* entry to READY, for the HTTP body */
};

extern struct net_config net_cfg;

/* Fill net_cfg from the kernel command line; defaults suit QEMU user networking. */
void net_config_parse(const char *cmdline);

/*
 * The Internet checksum of len bytes at p, folded with sum (host order
 * partial sums).  It may read up to 7 bytes past p + len: callers sum inside
 * packet buffers.
 */
uint16_t net_checksum(const void *p, size_t len, uint32_t sum);

#endif
