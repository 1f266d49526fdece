/*
 * Waking services. With hold "syn" or "proxy" the answer goes out at once
 * and the boot starts; with hold "none" it waits in a fixed pool of pending
 * answers until the launcher calls back (ready: the answer, built again
 * from the tables of that moment; failed: SERVFAIL).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "launcher.h"
#include "log.h"
#include "pattern.h"

#define PENDING_NONE UINT32_MAX
#define RCODE_SERVFAIL 2

struct pending {
	struct resolver *r;
	bool used;
	uint32_t next_free;
	struct query_key k;
	struct client c;
	struct launcher_waiter *w;
};

int pending_init(struct resolver *r)
{
	uint32_t i;

	r->pending = calloc(RESOLVER_PENDING_MAX, sizeof(*r->pending));
	if (!r->pending)
		return -1;
	for (i = 0; i < RESOLVER_PENDING_MAX; i++) {
		r->pending[i].r = r;
		r->pending[i].next_free = i + 1 < RESOLVER_PENDING_MAX ? i + 1 : PENDING_NONE;
	}
	r->pending_free = 0;
	return 0;
}

static struct pending *pending_get(struct resolver *r)
{
	struct pending *p;

	if (r->pending_free == PENDING_NONE)
		return NULL;
	p = &r->pending[r->pending_free];
	r->pending_free = p->next_free;
	p->used = true;
	p->w = NULL;
	r->npending++;
	return p;
}

static void pending_put(struct resolver *r, struct pending *p)
{
	struct tconn *c = p->c.conn;

	p->used = false;
	p->next_free = r->pending_free;
	r->pending_free = (uint32_t)(p - r->pending);
	r->npending--;
	if (c)
		tcp_done_wait(c);
}

/*
 * The instance that serves Q's name: its service's, or under a pattern the
 * label's (made when CREATE and its image exists). NULL when there is none
 * (no launcher in the unit tests), *WHY saying why for a pattern.
 */
static struct instance *pending_inst(struct resolver *r, const struct query *q, bool create,
                                     enum launcher_pattern_miss *why)
{
	*why = LAUNCHER_PATTERN_ERROR;
	if (r->launcher == NULL || q->svc == NULL)
		return NULL;
	if (q->svc->pattern)
		return launcher_pattern_get(r->launcher, q->svc->name, q->label, create, why);
	return launcher_find(r->launcher, q->svc->name);
}

/*
 * The A answer names INST's address: a pattern instance's own (the
 * template says 0.0.0.0); with hold "none", a guest on another host (a
 * hosts list) is answered with its address there.
 */
static void pending_guest_addr(struct resolver *r, struct query *q, struct instance *inst)
{
	struct in_addr a;

	if (q->svc == NULL || inst == NULL || launcher_address(inst, &a) == -1)
		return;
	if (!q->svc->pattern &&
	    (r->zone->hold != CONF_HOLD_NONE || a.s_addr == q->svc->addr.s_addr))
		return;
	wire_patch_a(q, q->svc->addr, a);
}

/* Answer P from the tables of now: the A record when OK (INST's), else SERVFAIL. */
static void pending_answer(struct resolver *r, struct pending *p, bool ok, struct instance *inst)
{
	struct query *q = &r->lq;
	struct client c = p->c;
	enum query_state st;

	q->k = p->k;
	wire_lower(q);
	st = ok ? query_answer(q, r->zone) : QUERY_DROP;
	if (st != QUERY_ANSWER && st != QUERY_WAKE)
		query_error(q, RCODE_SERVFAIL);
	else
		pending_guest_addr(r, q, inst);
	pending_put(r, p);
	resolver_send(r, &c, q->out, q->outlen);
}

static void pending_done(struct instance *inst, bool ok, void *arg)
{
	struct pending *p = arg;

	if (!p->used)
		return;
	p->w = NULL;
	pending_answer(p->r, p, ok, inst);
}

void pending_activity(struct resolver *r, struct query *q)
{
	enum launcher_pattern_miss why;
	struct instance *inst = pending_inst(r, q, false, &why);

	if (inst)
		launcher_activity(inst);
	else if (q->svc && q->svc->pattern && r->launcher && why == LAUNCHER_PATTERN_NOIMAGE)
		wire_emit(q, &r->zone->nxdomain); /* a label with no image is no name */
}

/* A name under a pattern with no instance to wake: NXDOMAIN without an image, else SERVFAIL. */
static int pending_no_inst(struct resolver *r, struct query *q, enum launcher_pattern_miss why)
{
	if (q->svc && q->svc->pattern && r->launcher) {
		if (why == LAUNCHER_PATTERN_NOIMAGE)
			wire_emit(q, &r->zone->nxdomain);
		else
			query_error(q, RCODE_SERVFAIL);
	}
	return 1;
}

#define PENDING_REPLICAS 64 /* replicas.max is at most 64 */

/*
 * A service with replicas, one ready at least, hold "none": the answer is
 * every ready replica's address, a different one first each time (round
 * robin). 1 when answered so, 0 when none is ready (wake it as any other)
 * or the proxy spreads the service address's connections (hold "proxy").
 */
static int pending_replicas(struct resolver *r, struct query *q)
{
	struct instance *rs[PENDING_REPLICAS];
	struct in_addr ready[PENDING_REPLICAS], a, from;
	size_t n, k = 0;
	unsigned first;

	if (q->svc->replicas < 2 || q->k.qtype != 1 || r->launcher == NULL ||
	    r->zone->hold != CONF_HOLD_NONE)
		return 0;
	n = launcher_replicas(r->launcher, q->svc->name, rs, PENDING_REPLICAS);
	for (size_t i = 0; i < n; i++)
		if (launcher_state(rs[i]) == INST_READY && launcher_address(rs[i], &a) == 0)
			ready[k++] = a;
	if (k == 0)
		return 0;
	if (n > 0)
		launcher_activity(rs[0]);
	if (k > 1 && (q->zn == NULL || q->zn->nmulti < k - 1))
		k = 1; /* no answer of that size was built */
	if (k > 1)
		wire_emit(q, &q->zn->multi[k - 2]);
	first = r->rr_next++;
	for (size_t i = 0; i < k; i++) {
		from.s_addr = k > 1 ? htonl((uint32_t)i + 1) : q->svc->addr.s_addr;
		wire_patch_a_at(q, (unsigned)i, from, ready[(first + i) % k]);
	}
	return 1;
}

/* 1 when q->out is to be sent now (the answer or SERVFAIL), 0 when it waits. */
int pending_wake(struct resolver *r, struct query *q, const struct client_ref *c)
{
	enum launcher_pattern_miss why;
	struct instance *inst = pending_inst(r, q, true, &why);
	struct pending *p;
	int rc;

	if (!inst) /* no launcher (tests), no instance yet, or a pattern's label without one */
		return pending_no_inst(r, q, why);
	if (pending_replicas(r, q))
		return 1;
	launcher_activity(inst);
	/* A boot refused (rate limits, no room) is SERVFAIL in every hold mode. */
	if (r->zone->hold != CONF_HOLD_NONE) {
		if (launcher_wake_from(inst, c->sa, NULL, NULL, NULL) < 0)
			query_error(q, RCODE_SERVFAIL);
		else
			pending_guest_addr(r, q, inst);
		return 1;
	}
	if (!(p = pending_get(r))) {
		if (launcher_wake_from(inst, c->sa, NULL, NULL, NULL) != 1)
			query_error(q, RCODE_SERVFAIL);
		else
			pending_guest_addr(r, q, inst);
		return 1;
	}
	p->k = q->k;
	resolver_client_keep(&p->c, c);
	rc = launcher_wake_from(inst, c->sa, pending_done, p, &p->w);
	if (rc == 0) {
		if (p->c.conn)
			p->c.conn->nwait++;
		return 0;
	}
	p->c.conn = NULL;
	pending_put(r, p);
	if (rc < 0)
		query_error(q, RCODE_SERVFAIL);
	else
		pending_guest_addr(r, q, inst); /* ready already */
	return 1;
}

/* Forget P without answering: its client is gone. */
static void pending_cancel(struct resolver *r, struct pending *p)
{
	if (p->w)
		launcher_cancel(p->w);
	p->w = NULL;
	pending_put(r, p);
}

void pending_drop_conn(struct resolver *r, struct tconn *c)
{
	uint32_t i;

	for (i = 0; i < RESOLVER_PENDING_MAX && r->npending; i++)
		if (r->pending[i].used && r->pending[i].c.conn == c) {
			pending_cancel(r, &r->pending[i]);
		}
}

/* After a reload: answers for names that are no longer a service fail now. */
void pending_reload(struct resolver *r)
{
	struct query *q = &r->lq;
	uint32_t i;

	for (i = 0; i < RESOLVER_PENDING_MAX && r->npending; i++) {
		struct pending *p = &r->pending[i];

		if (!p->used)
			continue;
		q->k = p->k;
		wire_lower(q);
		query_answer(q, r->zone); /* a name of the tables or under a pattern */
		if (q->svc != NULL)
			continue;
		if (p->w)
			launcher_cancel(p->w);
		p->w = NULL;
		pending_answer(r, p, false, NULL);
	}
}

void pending_free_all(struct resolver *r)
{
	uint32_t i;

	if (!r->pending)
		return;
	for (i = 0; i < RESOLVER_PENDING_MAX && r->npending; i++)
		if (r->pending[i].used) {
			r->pending[i].c.conn = NULL;
			pending_cancel(r, &r->pending[i]);
		}
	free(r->pending);
	r->pending = NULL;
}
