/*
 * arp.c: answers requests for our address, learns senders that talk to us,
 * announces us once at start and resolves the gateway.  Replies to TCP and
 * ICMP go to the MAC the request came from, so the cache is small.
 */
#include "eth.h"
#include "net.h"
#include "netif.h"

#define ARP_LEN 28
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define ARP_CACHE 16
#define ARP_RETRY_US 1000000
#define ARP_TRIES 5

void arp_input(const uint8_t *frame, size_t len);

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
};

static struct arp_entry arp_cache[ARP_CACHE];
static unsigned arp_next; /* round-robin victim */
static unsigned arp_gw_tries;
static uint64_t arp_gw_due;

const uint8_t *arp_lookup(uint32_t ip)
{
	unsigned i;

	for (i = 0; i < ARP_CACHE; i++)
		if (arp_cache[i].ip == ip && ip)
			return arp_cache[i].mac;
	return NULL;
}

static void arp_learn(uint32_t ip, const uint8_t *mac, bool create)
{
	struct arp_entry *e;
	unsigned i;

	for (i = 0; i < ARP_CACHE; i++) {
		if (arp_cache[i].ip == ip) {
			memcpy(arp_cache[i].mac, mac, 6);
			return;
		}
	}
	if (!create)
		return;
	e = &arp_cache[arp_next++ % ARP_CACHE];
	e->ip = ip;
	memcpy(e->mac, mac, 6);
}

static void arp_send(uint16_t op, const uint8_t *dst_mac, uint32_t tip)
{
	uint8_t *f = netif_tx_alloc();
	uint8_t *a;

	if (!f)
		return;
	eth_header(f, dst_mac, ETHERTYPE_ARP);
	a = f + ETH_HLEN;
	put_be16(a, 1);          /* Ethernet */
	put_be16(a + 2, 0x0800); /* IPv4 */
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, op);
	memcpy(a + 8, net_cfg.mac, 6);
	put_be32(a + 14, net_cfg.ip);
	if (dst_mac && op == ARP_REPLY)
		memcpy(a + 18, dst_mac, 6);
	else
		memset(a + 18, 0, 6);
	put_be32(a + 24, tip);
	memset(a + ARP_LEN, 0, 60 - ETH_HLEN - ARP_LEN);
	netif_tx_send(f, 60); /* pad to the Ethernet minimum */
}

void arp_input(const uint8_t *frame, size_t len)
{
	const uint8_t *a = frame + ETH_HLEN;
	uint32_t sip, tip;
	uint16_t op;

	if (len < ETH_HLEN + ARP_LEN || get_be16(a) != 1 || get_be16(a + 2) != 0x0800 ||
	    a[4] != 6 || a[5] != 4)
		return;
	op = get_be16(a + 6);
	sip = get_be32(a + 14);
	tip = get_be32(a + 24);
	if (sip == 0 || sip == net_cfg.ip || (a[8] & 1))
		return; /* probes, conflicts and multicast senders teach us nothing */
	/* RFC 826: update if known; add only if the packet is for us. */
	arp_learn(sip, a + 8, tip == net_cfg.ip);
	if (op == ARP_REQUEST && tip == net_cfg.ip)
		arp_send(ARP_REPLY, a + 8, sip);
}

void arp_start(void)
{
	arp_send(ARP_REQUEST, NULL, net_cfg.ip); /* gratuitous: sender = target = us */
	if (net_cfg.gw) {
		arp_send(ARP_REQUEST, NULL, net_cfg.gw);
		arp_gw_tries = 1;
	}
}

uint64_t arp_timer(uint64_t now)
{
	if (!net_cfg.gw || arp_lookup(net_cfg.gw) || arp_gw_tries >= ARP_TRIES)
		return 0;
	if (!arp_gw_due)
		arp_gw_due = now + ARP_RETRY_US;
	if (now < arp_gw_due)
		return arp_gw_due;
	arp_send(ARP_REQUEST, NULL, net_cfg.gw);
	arp_gw_tries++;
	arp_gw_due = now + ARP_RETRY_US;
	return arp_gw_due;
}
