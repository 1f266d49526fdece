/* An address pool: a bitmap over a range, handed out next-fit (pool.h). */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "conf.h"
#include "pool.h"

struct pool {
	uint32_t first; /* host order */
	uint32_t n;     /* addresses in the range */
	uint32_t next;  /* where the next search starts, an index */
	uint32_t size, avail;
	uint8_t *used; /* a bit per address: taken or skipped */
	uint8_t *skip; /* a bit per address: skipped (never given out) */
};

static bool bit_of(const uint8_t *map, uint32_t i)
{
	return map[i / 8] & (1u << (i % 8));
}

static bool bit(const struct pool *p, uint32_t i)
{
	return bit_of(p->used, i);
}

static void bit_set(struct pool *p, uint32_t i, bool on)
{
	if (on)
		p->used[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		p->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

/* A's index in P, or -1 when outside it. */
static int64_t pool_index(const struct pool *p, struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return h >= p->first && h - p->first < p->n ? (int64_t)(h - p->first) : -1;
}

struct pool *pool_new(struct in_addr first, struct in_addr last, const struct in_addr *skip,
                      size_t nskip)
{
	uint32_t f = ntohl(first.s_addr), l = ntohl(last.s_addr);
	struct pool *p;
	int64_t i;

	if (l < f || l - f >= CONF_POOL_MAX || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->first = f;
	p->n = l - f + 1;
	p->used = calloc((p->n + 7) / 8, 1);
	p->skip = calloc((p->n + 7) / 8, 1);
	if (p->used == NULL || p->skip == NULL) {
		pool_free(p);
		return NULL;
	}
	for (size_t k = 0; k < nskip; k++)
		if ((i = pool_index(p, skip[k])) >= 0) {
			bit_set(p, (uint32_t)i, true);
			p->skip[i / 8] |= (uint8_t)(1u << (i % 8));
		}
	for (uint32_t k = 0; k < p->n; k++)
		p->size += !bit(p, k);
	p->avail = p->size;
	return p;
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	free(p->used);
	free(p->skip);
	free(p);
}

int pool_take(struct pool *p, struct in_addr *out)
{
	if (p->avail == 0)
		return -1;
	for (uint32_t k = 0; k < p->n; k++) {
		uint32_t i = (p->next + k) % p->n;

		if (bit(p, i))
			continue;
		bit_set(p, i, true);
		p->avail--;
		p->next = (i + 1) % p->n;
		out->s_addr = htonl(p->first + i);
		return 0;
	}
	return -1;
}

int pool_claim(struct pool *p, struct in_addr a)
{
	int64_t i = pool_index(p, a);

	if (i < 0 || bit(p, (uint32_t)i))
		return -1;
	bit_set(p, (uint32_t)i, true);
	p->avail--;
	return 0;
}

void pool_put(struct pool *p, struct in_addr a)
{
	int64_t i = pool_index(p, a);

	if (i < 0 || !bit(p, (uint32_t)i) || bit_of(p->skip, (uint32_t)i))
		return;
	bit_set(p, (uint32_t)i, false);
	p->avail++;
}

uint32_t pool_available(const struct pool *p)
{
	return p->avail;
}

uint32_t pool_size(const struct pool *p)
{
	return p->size;
}
