/*
 * Who holds the DNS TCP connections: a count per client address, and the
 * choice of the connection that gives way to a new one.
 *
 * The one that gives way is the least recently used connection with no
 * answer pending of the address that holds the most. Plain "oldest idle"
 * lets a client that opens connections fast from a few addresses push out
 * a new client before its query arrives; with this choice it pushes out
 * its own, and a client with one connection goes only when every address
 * holds one (an attacker then needs dns.tcp.max addresses).
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "internal.h"

#define PEER_FNV_BASIS 2166136261u
#define PEER_FNV_PRIME 16777619u

/* The address of SA (no port) into a key; all zero but the family for other families. */
static void peer_key(const struct sockaddr *sa, struct tcp_peer_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(k->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
}

static size_t peer_bucket(const struct resolver *r, const struct tcp_peer_key *k)
{
	uint32_t h = PEER_FNV_BASIS ^ r->peer_seed;
	size_t i;

	for (i = 0; i < sizeof(k->addr); i++)
		h = (h ^ k->addr[i]) * PEER_FNV_PRIME;
	h = (h ^ (uint32_t)k->family) * PEER_FNV_PRIME;
	return h & (TCP_PEER_BUCKETS - 1);
}

static struct tcp_peer *peer_find(struct resolver *r, const struct tcp_peer_key *k)
{
	struct tcp_peer *p;

	LIST_FOREACH(p, &r->peers[peer_bucket(r, k)], link)
	if (memcmp(&p->k, k, sizeof(*k)) == 0)
		return p;
	return NULL;
}

unsigned tcp_peer_count(struct resolver *r, const struct sockaddr *sa)
{
	struct tcp_peer_key k;
	struct tcp_peer *p;

	peer_key(sa, &k);
	p = peer_find(r, &k);
	return p ? p->n : 0;
}

struct tcp_peer *tcp_peer_get(struct resolver *r, const struct sockaddr *sa)
{
	struct tcp_peer_key k;
	struct tcp_peer *p;

	peer_key(sa, &k);
	if ((p = peer_find(r, &k))) {
		p->n++;
		return p;
	}
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	p->k = k;
	p->n = 1;
	LIST_INSERT_HEAD(&r->peers[peer_bucket(r, &k)], p, link);
	return p;
}

void tcp_peer_put(struct tcp_peer *p)
{
	if (--p->n > 0)
		return;
	LIST_REMOVE(p, link);
	free(p);
}

struct tconn *tcp_peer_victim(struct resolver *r, const struct sockaddr *sa)
{
	struct tcp_peer_key k;
	struct tcp_peer *mine = NULL;
	struct tconn *c, *best = NULL;

	if (sa) {
		peer_key(sa, &k);
		if (!(mine = peer_find(r, &k)))
			return NULL; /* SA holds none */
	}
	/* Oldest first: only a strictly larger count replaces the one found. */
	TAILQ_FOREACH(c, &r->conns, link)
	{
		if (c->nwait || (mine && c->peer != mine))
			continue;
		if (!best || c->peer->n > best->peer->n)
			best = c;
	}
	return best;
}
