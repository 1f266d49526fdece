/*
 * Replicas behind the proxy: each new connection to a replicated service
 * goes to the ready replica with the fewest connections (held and relayed),
 * so that the scaler, which counts the same, sees the load where it is.
 * A connection remembers its instance; the launcher forgets a stopped
 * replica only once nothing is counted on it, and the ones that point at it
 * uncounted (connecting, between two requests of a front) let go when it
 * stops. A pattern service's connections go to the instance at the
 * address they were made to.
 */
#include <string.h>

#include "internal.h"
#include "log.h"
#include "pattern.h"

#define SPREAD_MAX 64 /* replicas.max is at most 64 */

/* The better of A (may be NULL) and B, both in state S: the fewer connections. */
static struct instance *spread_fewer(struct instance *a, unsigned *load_a, struct instance *b)
{
	struct instance_info info;

	launcher_info(b, &info);
	if (a != NULL && *load_a <= info.open + info.held)
		return a;
	*load_a = info.open + info.held;
	return b;
}

struct spread_find {
	const char *pattern;
	struct in_addr addr;
	struct instance *found;
};

static void spread_find_cb(struct instance *inst, void *arg)
{
	struct spread_find *f = arg;
	const char *of = launcher_pattern_of(inst);
	struct in_addr a;

	if (f->found == NULL && of != NULL && strcmp(of, f->pattern) == 0 &&
	    launcher_address(inst, &a) == 0 && a.s_addr == f->addr.s_addr)
		f->found = inst;
}

/* The instance of pattern service SVC at ADDR (made by a DNS query for its name). */
static struct instance *spread_pattern(const struct pxsvc *svc, struct in_addr addr)
{
	struct spread_find f = {svc->name, addr, NULL};

	launcher_foreach(svc->p->l, spread_find_cb, &f);
	return f.found;
}

struct instance *proxy_pick(const struct pxconn *c)
{
	struct instance *rs[SPREAD_MAX], *ready = NULL, *coming = NULL;
	unsigned ready_load = 0, coming_load = 0;
	struct pxsvc *svc = c->svc;
	size_t n;

	if (svc->pattern)
		return spread_pattern(svc, c->dst);
	if (svc->inst == NULL || !svc->replicated)
		return svc->inst;
	n = launcher_replicas(svc->p->l, svc->name, rs, SPREAD_MAX);
	for (size_t i = 0; i < n; i++) {
		switch (launcher_state(rs[i])) {
		case INST_READY:
			ready = spread_fewer(ready, &ready_load, rs[i]);
			break;
		case INST_BOOTING:
		case INST_PAUSED:
			coming = spread_fewer(coming, &coming_load, rs[i]);
			break;
		default:
			break;
		}
	}
	if (ready != NULL)
		return ready;
	return coming != NULL ? coming : svc->inst;
}

void proxy_conn_set_inst(struct pxconn *c, struct instance *inst)
{
	/* A quiet request in flight goes with the connection. */
	if (c->quiet_busy && c->inst != NULL)
		launcher_quiet(c->inst, -1);
	if (c->quiet_busy && inst != NULL)
		launcher_quiet(inst, 1);
	c->inst = inst;
	c->inst_name[0] = '\0';
	if (inst != NULL)
		snprintf(c->inst_name, sizeof(c->inst_name), "%s", launcher_service(inst)->name);
}

/*
 * INST stopped or failed: connections that point at it uncounted (a quiet
 * one is never counted on it) let go of it.
 */
void proxy_conns_forget(struct proxy *p, struct instance *inst)
{
	struct pxsvc *svc;
	struct pxconn *c;

	TAILQ_FOREACH(svc, &p->svcs, entry)
	TAILQ_FOREACH(c, &svc->conns, entry)
	if (c->inst == inst && ((!c->held && !c->open) || c->quiet))
		proxy_conn_set_inst(c, NULL);
}

/*
 * After launcher_reload: the instances of changed services were freed, and
 * new ones made under the same names. Each connection finds its instance
 * again by name, and its counts go with it to a new one.
 */
static void spread_refind(struct proxy *p, struct pxconn *c)
{
	struct instance *now = c->inst_name[0] ? launcher_find(p->l, c->inst_name) : NULL;

	if (now == c->inst)
		return;
	c->inst = now;
	if (now == NULL)
		c->inst_name[0] = '\0';
	else if ((c->held || c->open) && !c->quiet)
		launcher_connections(now, c->held, c->open);
	if (now != NULL && c->quiet_busy)
		launcher_quiet(now, 1);
}

void proxy_conns_refind(struct proxy *p)
{
	struct pxsvc_list *lists[] = {&p->svcs, &p->gone};
	struct pxsvc *svc;
	struct pxconn *c;

	for (size_t i = 0; i < 2; i++)
		TAILQ_FOREACH(svc, lists[i], entry)
	TAILQ_FOREACH(c, &svc->conns, entry)
	spread_refind(p, c);
}
