/*
 * The authoritative DNS server for the zone: UDP and TCP listeners, query
 * handling, forwarding. ldns types never leave resolver/.
 */
#ifndef BECKON_RESOLVER_H
#define BECKON_RESOLVER_H

#include <stdint.h>

struct event_base;
struct conf;
struct launcher;
struct resolver;

/* Bind every dns.listen address and start serving. NULL on failure (logged). */
struct resolver *resolver_new(struct event_base *base, const struct conf *conf,
                              struct launcher *launcher);

/*
 * Apply a new config. Listen addresses that stay keep their sockets. The
 * resolver keeps no pointer into CONF after the call. -1 when the new config
 * cannot be applied (the old one is kept).
 */
int resolver_reload(struct resolver *r, const struct conf *conf);

/* Close every socket, drop pending answers, free. NULL is fine. */
void resolver_free(struct resolver *r);

/* Answers sent, by rcode (0..15), for metrics. */
struct resolver_stats {
	uint64_t rcode[16];
	uint64_t dropped;     /* packets too broken to answer */
	uint64_t rrl_dropped; /* UDP responses over the rate limit, not sent */
	uint64_t rrl_slipped; /* ... sent truncated instead */
	uint64_t tcp_evicted; /* idle TCP connections closed to make room */
	uint64_t tcp_refused; /* new TCP connections closed: no room, none idle */
	unsigned tcp_conns;   /* TCP connections open now */
};
/* The loop's and the DNS thread's counts together. */
void resolver_stats(struct resolver *r, struct resolver_stats *st);

#endif
