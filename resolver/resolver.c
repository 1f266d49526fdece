/*
 * The resolver: its listeners (UDP and TCP on each dns.listen address),
 * reloads, statistics, and the dispatch shared by UDP and TCP. UDP is read
 * on the DNS thread (fast.c), TCP and every wake on the event loop.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "internal.h"
#include "launcher.h"
#include "log.h"

bool resolver_addr_equal(const struct conf_addr *a, const struct conf_addr *b)
{
	const struct sockaddr_in *a4 = (const void *)&a->ss, *b4 = (const void *)&b->ss;
	const struct sockaddr_in6 *a6 = (const void *)&a->ss, *b6 = (const void *)&b->ss;

	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	if (a->ss.ss_family == AF_INET6)
		return a6->sin6_port == b6->sin6_port &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0 &&
		       a6->sin6_scope_id == b6->sin6_scope_id;
	return false;
}

void resolver_count(struct resolver *r, const uint8_t *answer)
{
	r->stats.rcode[answer[3] & 0x0f]++;
}

void resolver_client_keep(struct client *dst, const struct client_ref *src)
{
	dst->listener = src->listener;
	dst->conn = src->conn;
	dst->sslen = 0;
	dst->local.family = 0;
	if (src->local)
		dst->local = *src->local;
	if (src->sa && src->salen <= sizeof(dst->ss)) {
		memcpy(&dst->ss, src->sa, src->salen);
		dst->sslen = src->salen;
	}
}

void resolver_send(struct resolver *r, const struct client *c, const uint8_t *buf, size_t len)
{
	struct listener *l;

	resolver_count(r, buf);
	if (c->conn) {
		tcp_send(c->conn, buf, len);
		return;
	}
	for (l = r->listeners; l; l = l->next)
		if (l->id == c->listener)
			break;
	if (!l || pktinfo_sendto(l->ufd, buf, len, (const struct sockaddr *)&c->ss, c->sslen,
	                         &c->local) < 0)
		r->stats.dropped++;
}

/* 1 when q->out is to be sent now, 0 when nothing is (dropped, or later). */
int resolver_dispatch(struct resolver *r, struct query *q, enum query_state st, const uint8_t *pkt,
                      size_t len, const struct client_ref *c)
{
	switch (st) {
	case QUERY_DROP:
		r->stats.dropped++;
		return 0;
	case QUERY_WAKE:
		return pending_wake(r, q, c);
	case QUERY_FORWARD:
		if (fwd_query(r, q, pkt, len, c) == 0)
			return 0;
		query_error(q, 2 /* SERVFAIL */);
		return 1;
	case QUERY_ANSWER:
		if (q->svc)
			pending_activity(r, q);
		return 1;
	}
	return 0;
}

static void listener_free(struct listener *l)
{
	if (!l)
		return;
	udp_close(l);
	tcp_close_listener(l);
	free(l);
}

int resolver_socket(const struct conf_addr *a, int type)
{
	int fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	/* "[::]" must not take the IPv4 port too: "0.0.0.0" may be listed as well. */
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct listener *listener_new(struct resolver *r, const struct conf_addr *a)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->r = r;
	l->addr = *a;
	l->id = ++r->next_id;
	l->ufd = -1;
	if (udp_open(l) < 0 || tcp_open(l) < 0) {
		listener_free(l);
		return NULL;
	}
	log_debug("dns: listening on %s (udp, tcp)", a->text);
	return l;
}

static struct listener *listener_take(struct listener **list, const struct conf_addr *a)
{
	struct listener **pp, *l;

	for (pp = list; (l = *pp); pp = &l->next)
		if (resolver_addr_equal(&l->addr, a)) {
			*pp = l->next;
			l->next = NULL;
			return l;
		}
	return NULL;
}

static void listeners_free(struct listener *l)
{
	struct listener *next;

	for (; l; l = next) {
		next = l->next;
		listener_free(l);
	}
}

/*
 * The listeners for CONF: kept from *OLD where the address stays (taken off
 * *OLD), bound anew otherwise. On failure everything taken goes back.
 */
static int listeners_make(struct resolver *r, struct listener **old, const struct conf *conf,
                          struct listener **out)
{
	struct listener *list = NULL, **tail = &list, *l, *kept = NULL;
	size_t i;

	for (i = 0; i < conf->ndns_listen; i++) {
		l = listener_take(old, &conf->dns_listen[i]);
		if (l) {
			l->next = kept; /* remember, to give back on failure */
			kept = l;
			continue;
		}
		if (!(l = listener_new(r, &conf->dns_listen[i])))
			goto fail;
		*tail = l;
		tail = &l->next;
	}
	*tail = kept;
	*out = list;
	return 0;
fail:
	listeners_free(list);
	while ((l = kept)) {
		kept = l->next;
		l->next = *old;
		*old = l;
	}
	return -1;
}

static int resolver_buffers(struct resolver *r)
{
	r->udp = udp_batch_new();
	r->tin = malloc(QUERY_TCP_MAX);
	r->tout = malloc(QUERY_TCP_MAX);
	r->lout = malloc(QUERY_TCP_MAX);
	if (!r->udp || !r->tin || !r->tout || !r->lout)
		return -1;
	r->tq.out = r->tout;
	r->tq.outcap = QUERY_TCP_MAX;
	r->lq.out = r->lout;
	r->lq.outcap = QUERY_TCP_MAX;
	if (!(r->hout = malloc(QUERY_EDNS_SIZE)))
		return -1;
	r->hq.out = r->hout;
	r->hq.outcap = QUERY_EDNS_SIZE;
	return pending_init(r) < 0 || fwd_init(r) < 0 ? -1 : 0;
}

static void resolver_on_state(struct instance *inst, enum inst_state old, enum inst_state new,
                              void *arg)
{
	struct resolver *r = arg;

	if (old == INST_READY || new == INST_READY)
		view_observe(r->view, inst);
}

static void resolver_on_reload(struct launcher *l, const struct conf *conf, void *arg)
{
	struct resolver *r = arg;

	(void)conf;
	view_fill(r->view, l);
}

/*
 * Instances are made again or removed, unseen by the state hook: until the
 * reload is over (resolver_on_reload, or on failure resolver_reload with
 * the old config), every name goes to the loop.
 */
static void resolver_on_reloading(struct launcher *l, void *arg)
{
	struct resolver *r = arg;

	(void)l;
	view_fill(r->view, NULL);
}

/* The view for Z, filled from the launcher; NULL on ENOMEM. */
static struct view *resolver_view(struct resolver *r, const struct zone *z)
{
	struct view *v = view_new(z);

	if (!v)
		return NULL;
	if (fast_notes_room(r, view_size(v) + 1) < 0) {
		view_free(v);
		return NULL;
	}
	/* Nothing changes state until the swap: this runs on the loop. */
	view_fill(v, r->launcher);
	return v;
}

static int resolver_hooks(struct resolver *r)
{
	struct launcher_hooks h = {.state = resolver_on_state,
	                           .reloaded = resolver_on_reload,
	                           .reloading = resolver_on_reloading};

	return r->launcher ? launcher_add_hooks(r->launcher, &h, r) : 0;
}

struct resolver *resolver_new(struct event_base *base, const struct conf *conf,
                              struct launcher *launcher)
{
	struct resolver *r = calloc(1, sizeof(*r));
	struct listener *none = NULL;

	if (!r)
		goto fail;
	r->base = base;
	r->launcher = launcher;
	TAILQ_INIT(&r->conns);
	r->peer_seed = arc4random();
	if (resolver_buffers(r) < 0 || !(r->zone = zone_new(conf)) || ratelimit_apply(r, conf) < 0)
		goto fail;
	if (fast_new(r) < 0 || !(r->view = resolver_view(r, r->zone)) || resolver_hooks(r) < 0)
		goto fail;
	if (listeners_make(r, &none, conf, &r->listeners) < 0)
		goto fail;
	if (conf->has_forward && fwd_open(r, &conf->forward) < 0)
		goto fail;
	if (fast_start(r) < 0)
		goto fail;
	log_info("dns: zone %s, %zu names, %zu listen addresses%s", conf->zone, r->zone->nnames,
	         conf->ndns_listen, conf->has_forward ? ", forwarding the rest" : "");
	return r;
fail:
	log_warnx("dns: cannot start the resolver");
	resolver_free(r);
	return NULL;
}

/*
 * Under the thread's lock: the listeners for CONF, zone Z and view V in
 * place of the old (in *OLDZ, *OLDV), and the rate limits. -1 when the
 * listeners cannot be had (nothing changed).
 */
static int resolver_swap(struct resolver *r, const struct conf *conf, struct zone *z,
                         struct view *v, struct zone **oldz, struct view **oldv)
{
	struct listener *list;
	int rc = -1;

	fast_lock(r);
	if (listeners_make(r, &r->listeners, conf, &list) < 0)
		goto out;
	listeners_free(r->listeners); /* what is left of the old: addresses removed */
	r->listeners = list;
	*oldz = r->zone;
	r->zone = z;
	*oldv = r->view;
	r->view = v;
	/* Only a table that cannot be had fails here: the old one stays, and says so. */
	if (ratelimit_apply(r, conf) < 0)
		log_warnx("dns: the old rate limit stays");
	rc = 0;
out:
	fast_unlock(r);
	return rc;
}

int resolver_reload(struct resolver *r, const struct conf *conf)
{
	struct zone *z = zone_new(conf), *oldz;
	struct view *v = z ? resolver_view(r, z) : NULL, *oldv;

	if (!v || resolver_swap(r, conf, z, v, &oldz, &oldv) < 0) {
		view_free(v);
		zone_free(z);
		return -1;
	}
	if (!fwd_same(r, z)) {
		fwd_close(r);
		if (z->has_forward && fwd_open(r, &z->forward) < 0)
			log_warnx("dns: forwarding to %s is off", z->forward.text);
	}
	pending_reload(r);
	view_flush(oldv, r->launcher); /* what the thread noted before the swap */
	view_free(oldv);
	zone_free(oldz);
	log_info("dns: reloaded zone %s, %zu names", conf->zone, z->nnames);
	return 0;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	fast_stop(r); /* the thread first: it reads the rest */
	if (r->launcher)
		launcher_remove_hooks(r->launcher, r);
	tcp_free_all(r);
	pending_free_all(r);
	fwd_free(r);
	listeners_free(r->listeners);
	fast_free(r);
	zone_free(r->zone);
	view_free(r->view);
	rrl_free(r->rrl);
	free(r->udp);
	free(r->tin);
	free(r->tout);
	free(r->lout);
	free(r->hout);
	free(r);
}

void resolver_stats(struct resolver *r, struct resolver_stats *st)
{
	const struct resolver_stats *t;

	*st = r->stats;
	st->tcp_conns = r->nconns;
	fast_lock(r);
	t = fast_stats(r);
	for (size_t i = 0; i < 16; i++)
		st->rcode[i] += t->rcode[i];
	st->dropped += t->dropped;
	st->rrl_dropped += t->rrl_dropped;
	st->rrl_slipped += t->rrl_slipped;
	fast_unlock(r);
}
