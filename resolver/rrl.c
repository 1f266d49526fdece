/*
 * Response rate limiting: a token bucket per (client prefix, kind, name) in
 * a fixed table. Tokens are counted in thousandths of a response so that a
 * bucket refills smoothly every millisecond at any rate.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "rrl.h"

#define RRL_WAYS 4
#define RRL_MIN_TABLE 64
#define RRL_COST 1000 /* tokens per response */

struct rrl_entry {
	uint64_t key;    /* 0: free */
	uint32_t stamp;  /* ms, when tokens were last counted */
	uint32_t tokens; /* up to rate * RRL_COST: one second's burst */
	uint32_t over;   /* responses over the limit, for the slip */
};

struct rrl {
	struct rrl_params p;
	uint64_t seed;
	uint32_t cap; /* rate * RRL_COST */
	size_t mask;  /* sets - 1 */
	struct rrl_counts counts;
	struct rrl_entry *e;
};

/* MurmurHash3's finalizer: every input bit reaches every output bit. */
static uint64_t rrl_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static unsigned rrl_round(unsigned n)
{
	unsigned r = RRL_MIN_TABLE;

	while (r < n && r < (1u << 31))
		r <<= 1;
	return r;
}

struct rrl *rrl_new(const struct rrl_params *p, uint64_t seed)
{
	struct rrl *t = calloc(1, sizeof(*t));
	unsigned n = rrl_round(p->table_size);

	if (!t)
		return NULL;
	t->p = *p;
	t->seed = seed;
	t->cap = p->rate * RRL_COST;
	t->mask = n / RRL_WAYS - 1;
	t->e = calloc(n, sizeof(*t->e));
	if (!t->e || p->rate == 0 || p->rate > UINT32_MAX / RRL_COST) {
		rrl_free(t);
		return NULL;
	}
	return t;
}

void rrl_free(struct rrl *t)
{
	if (!t)
		return;
	free(t->e);
	free(t);
}

bool rrl_same(const struct rrl *t, const struct rrl_params *p)
{
	return t->p.rate == p->rate && t->p.slip == p->slip && t->p.ipv4_prefix == p->ipv4_prefix &&
	       t->p.ipv6_prefix == p->ipv6_prefix && t->p.table_size == p->table_size;
}

unsigned rrl_capacity(const struct rrl *t)
{
	return (unsigned)(t->mask + 1) * RRL_WAYS;
}

void rrl_counts(const struct rrl *t, struct rrl_counts *out)
{
	*out = t->counts;
}

/* The first BITS bits of ADDR (LEN bytes) into OUT, the rest zero. */
static void rrl_prefix(uint8_t *out, const uint8_t *addr, size_t len, unsigned bits)
{
	size_t i;

	memset(out, 0, 16);
	for (i = 0; i < len && bits >= 8; i++, bits -= 8)
		out[i] = addr[i];
	if (i < len && bits)
		out[i] = addr[i] & (uint8_t)(0xff << (8 - bits));
}

/* The table key of a response; 0 when SA is no IP address. */
static uint64_t rrl_key(const struct rrl *t, const struct sockaddr *sa, enum rrl_kind kind,
                        uint32_t name)
{
	const struct sockaddr_in *s4 = (const void *)sa;
	const struct sockaddr_in6 *s6 = (const void *)sa;
	uint8_t pfx[16];
	uint64_t w[2], h;

	if (sa->sa_family == AF_INET)
		rrl_prefix(pfx, (const uint8_t *)&s4->sin_addr, 4, t->p.ipv4_prefix);
	else if (sa->sa_family == AF_INET6)
		rrl_prefix(pfx, s6->sin6_addr.s6_addr, 16, t->p.ipv6_prefix);
	else
		return 0;
	if (kind == RRL_NXDOMAIN || kind == RRL_ERROR)
		name = 0;
	memcpy(w, pfx, sizeof(w));
	h = rrl_mix(t->seed ^ ((uint64_t)sa->sa_family << 40 | (uint64_t)kind << 32 | name));
	h = rrl_mix(h ^ w[0]);
	h = rrl_mix(h ^ w[1]);
	return h ? h : 1;
}

/* E's tokens at NOW, refilled at the rate since it was last counted. */
static uint32_t rrl_tokens(const struct rrl *t, const struct rrl_entry *e, uint32_t now)
{
	uint32_t dt = now - e->stamp;
	uint64_t tok = e->tokens + (dt >= 1000 ? t->cap : (uint64_t)dt * t->p.rate);

	return tok > t->cap ? t->cap : (uint32_t)tok;
}

/*
 * The entry for KEY: found, or a free one, or the one of its set with the
 * most tokens now. A full bucket tells nothing a new one would not, and a
 * client being limited has few: a flood of new keys (spoofed sources)
 * pushes out the quiet ones, not the entry that limits the flooder.
 */
static struct rrl_entry *rrl_find(struct rrl *t, uint64_t key, uint32_t now)
{
	struct rrl_entry *set = &t->e[(size_t)(key >> 32 ^ key) & t->mask], *old = NULL;
	uint32_t best = 0, tok;
	int i;

	for (i = 0; i < RRL_WAYS; i++)
		if (set[i].key == key)
			return &set[i];
	for (i = 0; i < RRL_WAYS; i++) {
		if (set[i].key == 0) {
			old = &set[i];
			break;
		}
		tok = rrl_tokens(t, &set[i], now);
		if (!old || tok > best) {
			old = &set[i];
			best = tok;
		}
	}
	if (old->key)
		t->counts.evicted++;
	old->key = key;
	old->stamp = now;
	old->tokens = t->cap;
	old->over = 0;
	return old;
}

enum rrl_action rrl_check(struct rrl *t, const struct sockaddr *sa, enum rrl_kind kind,
                          uint32_t name, uint64_t now_ms)
{
	uint64_t key = rrl_key(t, sa, kind, name);
	uint32_t now = (uint32_t)now_ms;
	struct rrl_entry *e;

	if (!key)
		return RRL_PASS;
	e = rrl_find(t, key, now);
	e->tokens = rrl_tokens(t, e, now);
	e->stamp = now;
	if (e->tokens >= RRL_COST) {
		e->tokens -= RRL_COST;
		return RRL_PASS;
	}
	e->over++;
	return t->p.slip && e->over % t->p.slip == 0 ? RRL_SLIP : RRL_DROP;
}

enum rrl_kind rrl_classify(const uint8_t *hdr)
{
	switch (hdr[3] & 0x0f) {
	case 0:
		/* A truncated answer has no records, yet it is an answer (to be had over TCP). */
		return hdr[6] || hdr[7] || (hdr[2] & 0x02) ? RRL_ANSWER : RRL_NODATA;
	case 3:
		return RRL_NXDOMAIN;
	default:
		return RRL_ERROR;
	}
}
