/*
 * libFuzzer target for response rate limiting (resolver/rrl.c): the input
 * is a table's settings, then a run of responses to clients (IPv4 /24s
 * and IPv6 /56s, every kind, a few names) and steps of the clock, which
 * starts just before the 32-bit millisecond wrap. Checks, against a model
 * kept here:
 * - while no entry was evicted, no key passes more than its bucket
 *   allows: passes * 1000 <= rate * 1000 + rate * (ms since its first);
 * - a key quiet for a second or more always passes (evicted or not);
 * - slips are every slip-th response over the limit, no more.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "rrl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODEL_MAX 512

struct model {
	uint8_t fam, a, b, kind;
	uint32_t name;
	uint64_t first, last;
	uint64_t passes, overs, slips;
};

static struct model models[MODEL_MAX];
static size_t nmodels;

static struct model *model_get(uint8_t fam, uint8_t a, uint8_t b, uint8_t kind, uint32_t name,
                               uint64_t now)
{
	size_t i;

	if (kind == RRL_NXDOMAIN || kind == RRL_ERROR)
		name = 0; /* limited for the whole zone */
	for (i = 0; i < nmodels; i++)
		if (models[i].fam == fam && models[i].a == a && models[i].b == b &&
		    models[i].kind == kind && models[i].name == name)
			return &models[i];
	if (nmodels == MODEL_MAX)
		return NULL;
	memset(&models[nmodels], 0, sizeof(models[0]));
	models[nmodels] = (struct model){fam, a, b, kind, name, now, 0, 0, 0, 0};
	return &models[nmodels++];
}

static void fuzz_addr(struct sockaddr_storage *ss, uint8_t fam, uint8_t a, uint8_t b, uint8_t host)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		uint8_t ip[4] = {10, a, b, host};

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, ip, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, a, b, host, 0, 0, 0, 0, 0, 0, 0, host};

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, ip, 16);
	}
}

static void fuzz_check(struct rrl *t, const struct rrl_params *p, const uint8_t *op, uint64_t now)
{
	struct sockaddr_storage ss;
	struct rrl_counts n;
	uint8_t fam = op[0] & 1 ? 6 : 4, kind = (uint8_t)(op[3] % RRL_KINDS);
	uint32_t name = op[3] >> 5; /* eight names */
	struct model *m = model_get(fam, op[1] & 7, op[2] & 3, kind, name, now);
	enum rrl_action a;

	fuzz_addr(&ss, fam, op[1] & 7, op[2] & 3, op[2] >> 2);
	a = rrl_check(t, (struct sockaddr *)&ss, (enum rrl_kind)kind, name, now);
	if (!m)
		return;
	if (m->last && now - m->last >= 1000 && a != RRL_PASS)
		abort(); /* quiet for a second: its bucket is full again */
	m->last = now;
	if (a == RRL_PASS) {
		m->passes++;
	} else {
		m->overs++;
		m->slips += a == RRL_SLIP;
		if (p->slip == 0 ? m->slips != 0 : m->slips > m->overs / p->slip + 1)
			abort();
	}
	rrl_counts(t, &n);
	if (n.evicted == 0 &&
	    m->passes * 1000 > (uint64_t)p->rate * 1000 + (uint64_t)p->rate * (now - m->first))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rrl_params p;
	struct rrl *t;
	uint64_t now = 0xfffff000u; /* 4 s before the 32-bit millisecond clock wraps */
	size_t i;

	if (size < 4)
		return 0;
	p.rate = 1 + data[0] % 64;
	p.slip = data[1] % 4;
	p.ipv4_prefix = 24;
	p.ipv6_prefix = 56;
	p.table_size = 64u << (data[2] % 4);
	if (!(t = rrl_new(&p, data[3])))
		abort();
	nmodels = 0;
	for (i = 4; i + 4 <= size; i += 4) {
		const uint8_t *op = data + i;

		if ((op[0] & 0x0e) == 0) /* one in eight: the clock moves */
			now += (uint64_t)op[1] * (op[2] & 0x0f) + op[3];
		else
			fuzz_check(t, &p, op, now);
	}
	if (rrl_capacity(t) != (64u << (data[2] % 4)))
		abort();
	rrl_free(t);
	return 0;
}
