/*
 * Holding connections while a guest boots. With network.hold "proxy": an L4
 * proxy that listens on each service's address and ports, buffers what a
 * client sends, wakes the instance and relays once it is ready. With "syn"
 * (bridge mode): an iptables chain queues (NFQUEUE) the SYNs to guests that
 * are not ready, and they are released once the guest is. With "none":
 * nothing. Everything runs on the caller's event_base.
 */
#ifndef BECKON_PROXY_H
#define BECKON_PROXY_H

#include <stdint.h>

struct event_base;
struct conf;
struct launcher;
struct proxy;

/*
 * Set up the hold CONF asks for: bind the proxy's listeners, or install the
 * firewall chain and bind the queue. Becomes the launcher's state observer.
 * NULL on failure (logged; nothing left behind).
 */
struct proxy *proxy_new(struct event_base *base, const struct conf *conf, struct launcher *l);

/*
 * Apply a new config, after launcher_reload: listeners that stay keep their
 * sockets and connections. -1 when the new config cannot be applied (the
 * old one is kept).
 */
int proxy_reload(struct proxy *p, const struct conf *conf);

/* Close everything, reset held clients, remove the firewall chain. NULL is fine. */
void proxy_free(struct proxy *p);

/* Counts for metrics and the control socket. */
struct proxy_stats {
	unsigned held;          /* connections and SYNs held now */
	unsigned open;          /* connections being relayed now */
	uint64_t accepted;      /* connections accepted by the proxy */
	uint64_t refused;       /* reset beyond a held-connection limit */
	uint64_t failed;        /* reset because the guest could not be woken */
	uint64_t timed_out;     /* reset at the hold timeout */
	uint64_t answered;      /* of those, answered (unavailable) instead of reset */
	uint64_t retried;       /* upstream connections made again */
	uint64_t bytes;         /* relayed, both ways */
	uint64_t syns_held;     /* SYNs queued while their guest was not ready */
	uint64_t syns_released; /* accepted to the guest */
	uint64_t syns_reset;    /* answered with a reset */
};
void proxy_stats(const struct proxy *p, struct proxy_stats *st);

#endif
