/*
 * Response rate limiting, as NSD's and Knot's RRL: the responses sent to
 * one client prefix (/24 in IPv4, /56 in IPv6 by default) of one kind (and,
 * for answers, for one name) are limited to RATE a second, with one
 * second's worth as a burst. Over the limit, every SLIPth response goes out
 * truncated (TC=1: a real client asks again over TCP, which cannot be
 * spoofed) and the rest are dropped, so a spoofed flood gains the victim
 * little.
 *
 * Pure logic: the caller gives the time. The table is fixed at creation
 * (table_size entries, 24 bytes each, in 4-way sets); a new key takes an
 * empty slot of its set or the one with the most tokens (the least limited). Keys are hashed with a
 * secret seed, so a client cannot choose whom it collides with.
 */
#ifndef BECKON_RESOLVER_RRL_H
#define BECKON_RESOLVER_RRL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* What a response is, for its own limit. */
enum rrl_kind {
	RRL_ANSWER,   /* NOERROR with records (per name) */
	RRL_NODATA,   /* NOERROR, no records (per name) */
	RRL_NXDOMAIN, /* one limit for the whole zone, as random names would dodge one per name */
	RRL_ERROR,    /* FORMERR, REFUSED, NOTIMP, SERVFAIL... (one limit) */
	RRL_FORWARD,  /* relayed to dns.forward (per name) */
	RRL_KINDS
};

enum rrl_action { RRL_PASS, RRL_SLIP, RRL_DROP };

struct rrl_params {
	unsigned rate; /* responses a second; more than 0 */
	unsigned slip; /* 0: drop all over the limit; 1: truncate all; N: every Nth */
	unsigned ipv4_prefix, ipv6_prefix;
	unsigned table_size; /* entries; rounded up to a power of two, at least 64 */
};

struct rrl_counts {
	uint64_t evicted; /* entries taken over by another key */
};

struct rrl;

/* A table for P, its hash keyed with SEED. NULL on ENOMEM. */
struct rrl *rrl_new(const struct rrl_params *p, uint64_t seed);
void rrl_free(struct rrl *t);

/* True when T was made with the same parameters as P. */
bool rrl_same(const struct rrl *t, const struct rrl_params *p);

/*
 * The fate of one response of KIND to the client at SA (AF_INET or
 * AF_INET6; any other family passes), NAME the hash of the question's name
 * (ignored for kinds limited zone-wide), NOW_MS a monotonic clock.
 */
enum rrl_action rrl_check(struct rrl *t, const struct sockaddr *sa, enum rrl_kind kind,
                          uint32_t name, uint64_t now_ms);

/* The kind of a response from its 12-byte header. */
enum rrl_kind rrl_classify(const uint8_t *hdr);

/* The number of entries (memory: that times 24 bytes). */
unsigned rrl_capacity(const struct rrl *t);

void rrl_counts(const struct rrl *t, struct rrl_counts *out);

#endif
