/*
 * The hold: one pxsvc per service, kept across reloads while its address and
 * ports stay; the launcher observer; limits and counts.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "internal.h"
#include "log.h"

static void pxsvc_free(struct pxsvc *svc)
{
	listen_close(svc);
	unavail_clear(svc);
	for (size_t i = 0; i < svc->nroutes; i++) {
		free(svc->prefixes[i]);
		free(svc->targets[i]);
	}
	free(svc->prefixes);
	free(svc->targets);
	free(svc->name);
	free(svc);
}

/* A front's routes, copied from CS: the prefixes for http_route and their services. */
static int pxsvc_routes(struct pxsvc *svc, const struct conf_service *cs)
{
	if (cs->nroutes == 0)
		return 0;
	svc->prefixes = calloc(cs->nroutes, sizeof(*svc->prefixes));
	svc->targets = calloc(cs->nroutes, sizeof(*svc->targets));
	if (svc->prefixes == NULL || svc->targets == NULL)
		return -1;
	for (size_t i = 0; i < cs->nroutes; i++, svc->nroutes++) {
		svc->prefixes[i] = strdup(cs->routes[i].prefix);
		svc->targets[i] = strdup(cs->routes[i].service);
		if (svc->prefixes[i] == NULL || svc->targets[i] == NULL) {
			svc->nroutes++; /* freed with the rest */
			return -1;
		}
	}
	return 0;
}

static struct pxsvc *pxsvc_new(struct proxy *p, const struct conf_service *cs)
{
	struct pxsvc *svc;

	if ((svc = calloc(1, sizeof(*svc))) == NULL || (svc->name = strdup(cs->name)) == NULL ||
	    pxsvc_routes(svc, cs) == -1 || unavail_set(svc, cs) == -1) {
		log_warn("proxy: %s", cs->name);
		if (svc != NULL)
			pxsvc_free(svc);
		return NULL;
	}
	svc->p = p;
	svc->address = cs->address;
	svc->address6 = cs->address6;
	svc->has_address6 = cs->has_address6;
	memcpy(svc->ports, cs->ports, sizeof(svc->ports));
	svc->nports = cs->nports;
	svc->replicated = cs->replicas_max > 1;
	svc->pattern = cs->pattern;
	svc->pool_first = cs->pool_first;
	svc->pool_last = cs->pool_last;
	TAILQ_INIT(&svc->conns);
	TAILQ_INIT(&svc->syns);
	return svc;
}

static bool routes_same(const struct pxsvc *old, const struct conf_service *cs)
{
	if (old->nroutes != cs->nroutes)
		return false;
	for (size_t i = 0; i < cs->nroutes; i++)
		if (strcmp(old->prefixes[i], cs->routes[i].prefix) != 0 ||
		    strcmp(old->targets[i], cs->routes[i].service) != 0)
			return false;
	return true;
}

/* True when OLD can go on serving CS under P's hold. */
static bool pxsvc_same(const struct pxsvc *old, const struct conf_service *cs)
{
	return strcmp(old->name, cs->name) == 0 && old->address.s_addr == cs->address.s_addr &&
	       old->replicated == (cs->replicas_max > 1) && old->pattern == cs->pattern &&
	       old->pool_first.s_addr == cs->pool_first.s_addr &&
	       old->pool_last.s_addr == cs->pool_last.s_addr &&
	       old->has_address6 == cs->has_address6 &&
	       memcmp(&old->address6, &cs->address6, sizeof(old->address6)) == 0 &&
	       old->nports == cs->nports &&
	       memcmp(old->ports, cs->ports, cs->nports * sizeof(cs->ports[0])) == 0 &&
	       routes_same(old, cs);
}

/* SVC leaves the config: held clients are reset, relayed ones run on. */
static void pxsvc_retire(struct proxy *p, struct pxsvc *svc)
{
	struct pxconn *c, *next;

	listen_close(svc);
	synhold_svc_gone(svc);
	for (c = TAILQ_FIRST(&svc->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state == PXC_HELD)
			pxconn_reset(c);
	}
	svc->inst = NULL;
	svc->gone = true;
	if (svc->refs == 0) {
		pxsvc_free(svc);
		return;
	}
	TAILQ_INSERT_TAIL(&p->gone, svc, entry);
}

void pxsvc_unref(struct pxsvc *svc)
{
	if (--svc->refs > 0 || !svc->gone)
		return;
	TAILQ_REMOVE(&svc->p->gone, svc, entry);
	pxsvc_free(svc);
}

static struct pxsvc *find_in(struct pxsvc_list *list, const char *name)
{
	struct pxsvc *svc;

	TAILQ_FOREACH(svc, list, entry)
	if (strcmp(svc->name, name) == 0)
		return svc;
	return NULL;
}

struct pxsvc *proxy_svc_by_name(struct proxy *p, const char *name)
{
	return find_in(&p->svcs, name);
}

struct pxsvc *proxy_svc_by_addr(struct proxy *p, struct in_addr addr)
{
	struct pxsvc *svc;

	TAILQ_FOREACH(svc, &p->svcs, entry)
	if (svc->address.s_addr == addr.s_addr && !svc->pattern)
		return svc;
	TAILQ_FOREACH(svc, &p->svcs, entry)
	if (svc->pattern && ntohl(addr.s_addr) >= ntohl(svc->pool_first.s_addr) &&
	    ntohl(addr.s_addr) <= ntohl(svc->pool_last.s_addr))
		return svc;
	return NULL;
}

struct pxsvc *proxy_svc_by_addr6(struct proxy *p, const struct in6_addr *addr)
{
	struct pxsvc *svc;

	TAILQ_FOREACH(svc, &p->svcs, entry)
	if (svc->has_address6 && memcmp(&svc->address6, addr, sizeof(*addr)) == 0)
		return svc;
	return NULL;
}

bool proxy_held_full(const struct proxy *p, const struct pxsvc *svc)
{
	return svc->held >= p->max_held_per_service || p->st.held >= p->max_held;
}

void proxy_count_held(struct pxsvc *svc, struct instance *inst, int delta)
{
	svc->held += (unsigned)delta;
	svc->p->st.held += (unsigned)delta;
	if (inst != NULL)
		launcher_connections(inst, delta, 0);
}

void proxy_count_open(struct pxsvc *svc, struct instance *inst, int delta)
{
	svc->p->st.open += (unsigned)delta;
	if (inst != NULL)
		launcher_connections(inst, 0, delta);
}

/* Whether SVC's connections must pass through beckon now. */
static bool needs_rule(const struct proxy *p, const struct pxsvc *svc)
{
	struct instance *inst = svc->inst;
	struct instance_info info;
	struct sockaddr_in sa;

	/*
	 * A front's connections always pass through the proxy: it reads their
	 * requests; a replicated service's too: it spreads them; and those of a
	 * service whose requests are read for the paths of its idle_ignore.
	 */
	if (svc->nroutes > 0 || svc->replicated || quiet_http(svc))
		return p->hold == CONF_HOLD_PROXY;
	/*
	 * A pattern's instances come and go with their names: its whole pool
	 * passes through the proxy, a rule in place before a name is first
	 * answered.
	 */
	if (svc->pattern)
		return p->hold == CONF_HOLD_PROXY && p->mode == CONF_NET_BRIDGE;
	if (inst == NULL)
		return false;
	launcher_info(inst, &info);
	if (info.state != INST_READY)
		return true;
	for (size_t i = 0; p->hold == CONF_HOLD_PROXY && i < svc->nports; i++)
		if (launcher_upstream(inst, svc->ports[i], &sa) == -1 ||
		    sa.sin_addr.s_addr != svc->address.s_addr ||
		    ntohs(sa.sin_port) != svc->ports[i])
			return true;
	return false;
}

/*
 * The IPv6 half of the rules (p->fw6), for services with address6: with
 * hold "syn" while their rule is on (the process has IPv6 itself); with
 * "proxy" always, the guest being IPv4 only.
 */
static void proxy_rules6(struct proxy *p, struct fw_target *t, bool sync)
{
	struct pxsvc *svc;
	size_t n = 0;

	TAILQ_FOREACH(svc, &p->svcs, entry)
	{
		if (!svc->has_address6 || (!svc->rule && p->hold != CONF_HOLD_PROXY))
			continue;
		t[n].addr6 = &svc->address6;
		t[n].ports = svc->ports;
		t[n++].nports = svc->nports;
	}
	fw_set(p->fw6, t, n, sync);
}

void proxy_rules(struct proxy *p, bool sync)
{
	struct fw_target *t;
	struct pxsvc *svc;
	size_t n = 0, all;

	if (p->fw == NULL)
		return;
	if (p->bypass) {
		bypass_rules(p, sync);
		return;
	}
	TAILQ_FOREACH(svc, &p->svcs, entry)
	n++;
	all = n;
	if ((t = calloc(n ? n : 1, sizeof(*t))) == NULL) {
		log_warn("proxy: rules");
		return;
	}
	n = 0;
	TAILQ_FOREACH(svc, &p->svcs, entry)
	{
		if (!(svc->rule = needs_rule(p, svc)))
			continue;
		t[n].addr = svc->pattern ? svc->pool_first : svc->address;
		t[n].last = svc->pattern ? svc->pool_last : (struct in_addr){0};
		t[n].ports = svc->ports;
		t[n++].nports = svc->nports;
	}
	fw_set(p->fw, t, n, sync);
	if (p->fw6 != NULL) {
		memset(t, 0, all * sizeof(*t));
		proxy_rules6(p, t, sync);
	}
	free(t);
}

static void proxy_observer(struct instance *inst, enum inst_state old, enum inst_state new,
                           void *arg)
{
	struct proxy *p = arg;
	struct pxsvc *svc;

	(void)old;
	if (new == INST_STOPPED || new == INST_FAILED)
		proxy_conns_forget(p, inst);
	if (p->fw == NULL)
		return;
	/* Verdicts for held SYNs first, then the rule goes: no SYN is left behind. */
	TAILQ_FOREACH(svc, &p->svcs, entry)
	if (svc->inst == inst && new == INST_READY && p->q != NULL)
		synhold_ready(svc);
	proxy_rules(p, false);
}

/* User mode: the proxy listens on the service addresses (bridge mode: redirect.c). */
static bool own_listeners(const struct conf *conf)
{
	return conf->hold == CONF_HOLD_PROXY && conf->net_mode == CONF_NET_USER;
}

/* CS's pxsvc into NEXT: kept from P's when unchanged, else new. */
static int build_svc(struct proxy *p, const struct conf *conf, const struct conf_service *cs,
                     struct pxsvc_list *next)
{
	struct pxsvc *svc, *old;

	old = find_in(&p->svcs, cs->name);
	if (old != NULL && p->hold == conf->hold && p->mode == conf->net_mode &&
	    pxsvc_same(old, cs)) {
		unavail_set(old, cs); /* the old answers stay if the new cannot be made */
		TAILQ_REMOVE(&p->svcs, old, entry);
		TAILQ_INSERT_TAIL(next, old, entry);
		return 0;
	}
	if ((svc = pxsvc_new(p, cs)) == NULL)
		return -1;
	svc->fresh = true;
	TAILQ_INSERT_TAIL(next, svc, entry);
	if (own_listeners(conf) && listen_open(svc, &p->svcs) == -1)
		return -1;
	return 0;
}

/* The services and fronts of CONF. */
static int build_svcs(struct proxy *p, const struct conf *conf, struct pxsvc_list *next)
{
	for (size_t i = 0; i < conf->nservices; i++)
		if (build_svc(p, conf, &conf->services[i], next) == -1)
			return -1;
	for (size_t i = 0; i < conf->nfronts; i++)
		if (build_svc(p, conf, &conf->fronts[i], next) == -1)
			return -1;
	return 0;
}

/* Undo build_svcs: the kept ones go back, the new ones are freed. */
static void unbuild_svcs(struct proxy *p, struct pxsvc_list *next)
{
	struct pxsvc *svc;

	while ((svc = TAILQ_FIRST(next)) != NULL) {
		TAILQ_REMOVE(next, svc, entry);
		if (svc->fresh)
			pxsvc_free(svc);
		else
			TAILQ_INSERT_TAIL(&p->svcs, svc, entry);
	}
}

static void set_limits(struct proxy *p, const struct conf *conf)
{
	p->max_held = conf->max_held;
	p->max_held_per_service = conf->max_held_per_service < conf->max_held
	                              ? conf->max_held_per_service
	                              : conf->max_held;
	p->hold_buffer = conf->hold_buffer;
	p->hold_timeout_ms = conf->hold_timeout_ms;
}

static void hold_stop(struct proxy *p)
{
	if (p->q != NULL)
		synhold_stop(p);
	else if (p->bypass)
		bypass_stop(p);
	else
		redirect_stop(p);
}

/* The hold machinery of P's old mode goes, the new one's comes. */
static int switch_hold(struct proxy *p, const struct conf *conf)
{
	bool bridge = conf->net_mode == CONF_NET_BRIDGE;
	enum conf_hold want = conf->hold;

	if (want == CONF_HOLD_SYN && !bridge) {
		log_warnx("proxy: hold \"syn\" needs bridge mode; holding nothing");
		want = CONF_HOLD_NONE;
	}
	if (p->fw != NULL &&
	    (want != p->hold || conf->net_mode != p->mode || (p->bypass && !conf->bypass)))
		hold_stop(p);
	p->hold = want;
	p->mode = conf->net_mode;
	if (p->fw == NULL && want == CONF_HOLD_SYN)
		return synhold_start(p, conf->bridge);
	if (p->fw == NULL && want == CONF_HOLD_PROXY && bridge)
		return redirect_start(p, conf->bridge);
	if (p->fw == NULL && want == CONF_HOLD_PROXY && conf->bypass)
		return bypass_start(p, conf->state_dir);
	return 0;
}

/* STRICT: a hold that cannot be set up is an error, not a warning. */
static int proxy_apply(struct proxy *p, const struct conf *conf, bool strict)
{
	struct pxsvc_list next = TAILQ_HEAD_INITIALIZER(next);
	struct pxsvc *svc;

	/*
	 * launcher_reload has run: the instances of changed services are freed
	 * (their held clients were reset then). Forget them unseen.
	 */
	TAILQ_FOREACH(svc, &p->svcs, entry)
	if (svc->inst != launcher_find(p->l, svc->name))
		svc->inst = NULL;
	if (build_svcs(p, conf, &next) == -1) {
		unbuild_svcs(p, &next);
		return -1;
	}
	/* Listeners on an address and port that stay move to their new service. */
	TAILQ_FOREACH(svc, &next, entry)
	{
		if (svc->fresh && own_listeners(conf))
			listen_adopt(svc, &p->svcs);
		svc->fresh = false;
	}
	while ((svc = TAILQ_FIRST(&p->svcs)) != NULL) {
		TAILQ_REMOVE(&p->svcs, svc, entry);
		pxsvc_retire(p, svc);
	}
	TAILQ_CONCAT(&p->svcs, &next, entry);
	TAILQ_FOREACH(svc, &p->svcs, entry)
	svc->inst = launcher_find(p->l, svc->name);
	proxy_conns_refind(p);
	set_limits(p, conf);
	if (switch_hold(p, conf) == -1) {
		if (strict)
			return -1;
		log_warnx("proxy: the SYN hold could not be set up; holding nothing");
	}
	/* Bypass: the rules of services gone or changed go now, their instances are. */
	proxy_rules(p, p->bypass);
	return 0;
}

int proxy_reload(struct proxy *p, const struct conf *conf)
{
	return proxy_apply(p, conf, false);
}

/* Many held and relayed connections want file descriptors. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

struct proxy *proxy_new(struct event_base *base, const struct conf *conf, struct launcher *l)
{
	struct proxy *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warn("proxy");
		return NULL;
	}
	p->base = base;
	p->l = l;
	p->raw = -1;
	p->raw6 = -1;
	p->hold = conf->hold;
	p->mode = conf->net_mode;
	TAILQ_INIT(&p->svcs);
	TAILQ_INIT(&p->gone);
	raise_nofile();
	if (proxy_apply(p, conf, true) == -1) {
		proxy_free(p);
		return NULL;
	}
	launcher_set_observer(l, proxy_observer, p);
	log_info("proxy: hold \"%s\"", conf_hold_name(p->hold));
	return p;
}

static void free_list(struct pxsvc_list *list)
{
	struct pxsvc *svc;
	struct pxconn *c;

	while ((svc = TAILQ_FIRST(list)) != NULL) {
		svc->refs++; /* freed below, not by the last connection */
		while ((c = TAILQ_FIRST(&svc->conns)) != NULL) {
			if (c->state == PXC_HELD)
				pxconn_reset(c);
			else
				pxconn_free(c);
		}
		synhold_svc_gone(svc);
		TAILQ_REMOVE(list, svc, entry);
		pxsvc_free(svc);
	}
}

void proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	launcher_set_observer(p->l, NULL, NULL);
	free_list(&p->svcs);
	free_list(&p->gone);
	if (p->fw != NULL)
		hold_stop(p);
	free(p);
}

void proxy_stats(const struct proxy *p, struct proxy_stats *st)
{
	*st = p->st;
}
