/*
 * The resolver's side of its limits: dns.tcp's numbers into the resolver,
 * and RRL (rrl.c) applied to UDP responses. TCP is not rate limited: its
 * handshake proves the client's address, so it cannot reflect.
 */
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "log.h"

static void ratelimit_params(const struct conf *conf, struct rrl_params *p)
{
	p->rate = conf->rrl_rate;
	p->slip = conf->rrl_slip;
	p->ipv4_prefix = conf->rrl_ipv4_prefix;
	p->ipv6_prefix = conf->rrl_ipv6_prefix;
	p->table_size = conf->rrl_table_size;
}

/* A new RRL table when its settings changed (the counts start again), none when off. */
static int ratelimit_rrl(struct resolver *r, const struct conf *conf)
{
	struct rrl_params p;
	struct rrl *t;
	uint64_t seed;

	ratelimit_params(conf, &p);
	if (r->rrl && p.rate && rrl_same(r->rrl, &p))
		return 0;
	if (p.rate == 0) {
		rrl_free(r->rrl);
		r->rrl = NULL;
		return 0;
	}
	arc4random_buf(&seed, sizeof(seed));
	if (!(t = rrl_new(&p, seed))) {
		log_warnx("dns: cannot make the rate limit table (%u entries)", p.table_size);
		return -1;
	}
	rrl_free(r->rrl);
	r->rrl = t;
	log_info("dns: rate limit %u responses/s per /%u (IPv4), /%u (IPv6), slip %u, "
	         "%u entries",
	         p.rate, p.ipv4_prefix, p.ipv6_prefix, p.slip, rrl_capacity(t));
	return 0;
}

int ratelimit_apply(struct resolver *r, const struct conf *conf)
{
	r->tcp_max = conf->tcp_max;
	r->tcp_per_client = conf->tcp_per_client;
	r->tcp_idle_tv.tv_sec = (time_t)(conf->tcp_idle_ms / 1000);
	r->tcp_idle_tv.tv_usec = (suseconds_t)(conf->tcp_idle_ms % 1000 * 1000);
	return ratelimit_rrl(r, conf);
}

/* Coarse is enough for one-second buckets, and costs no system call. */
static uint64_t ratelimit_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum rrl_action ratelimit_udp(struct resolver *r, struct query *q, enum query_state st,
                              const struct sockaddr *sa, struct resolver_stats *cnt)
{
	enum rrl_kind kind = st == QUERY_FORWARD ? RRL_FORWARD : rrl_classify(q->out);
	enum rrl_action act;

	if (!r->rrl)
		return RRL_PASS;
	act = rrl_check(r->rrl, sa, kind, q->hash, ratelimit_now());
	if (act == RRL_DROP) {
		cnt->rrl_dropped++;
	} else if (act == RRL_SLIP) {
		query_tc(q, st == QUERY_FORWARD ? NULL : q->out);
		cnt->rrl_slipped++;
	}
	return act;
}
