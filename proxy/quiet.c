/*
 * Traffic that does not count as activity (a service's idle_ignore): a
 * connection from a listed client network, or an HTTP request for a listed
 * path, is served as any other but keeps nothing up: its wake leaves the
 * idle clock alone, its bytes are not activity, and it is not among the
 * open and held connections the idle policy sees. A service with paths
 * listed has its requests read (front.c) even without routes, and stays
 * in the proxy's path when ready (no bypass, no REDIRECT removed).
 */
#include <netinet/in.h>

#include "internal.h"

static const struct conf_service *quiet_conf(const struct pxsvc *svc)
{
	return svc->inst != NULL ? launcher_service(svc->inst) : NULL;
}

bool quiet_client(const struct pxsvc *svc, const struct sockaddr_storage *peer)
{
	const struct conf_service *cs = quiet_conf(svc);

	if (cs == NULL || cs->nignore_nets == 0 || peer->ss_family != AF_INET)
		return false;
	return conf_ignored_addr(cs, ((const struct sockaddr_in *)peer)->sin_addr);
}

bool quiet_path(const struct pxsvc *svc, const char *path, size_t len)
{
	const struct conf_service *cs = quiet_conf(svc);

	return cs != NULL && conf_ignored_path(cs, path, len);
}

bool quiet_http(const struct pxsvc *svc)
{
	const struct conf_service *cs = quiet_conf(svc);

	return svc->nroutes == 0 && svc->p->hold == CONF_HOLD_PROXY && cs != NULL &&
	       cs->nignore_paths > 0;
}

int quiet_answer(const struct pxsvc *svc)
{
	const struct conf_service *cs = quiet_conf(svc);

	if (cs == NULL || cs->ignore_answer == 0 || launcher_state(svc->inst) == INST_READY)
		return 0;
	return cs->ignore_answer;
}

void quiet_count_held(struct pxconn *c, int delta)
{
	struct pxsvc *svc = c->svc;

	if (!c->quiet) {
		proxy_count_held(svc, c->inst, delta);
		return;
	}
	/* Held against the limits, but not shown to the idle policy. */
	svc->held += (unsigned)delta;
	svc->p->st.held += (unsigned)delta;
}

void quiet_busy(struct pxconn *c, bool busy)
{
	if (c->quiet_busy == busy)
		return;
	c->quiet_busy = busy;
	if (c->inst != NULL)
		launcher_quiet(c->inst, busy ? 1 : -1);
}

void quiet_count_open(struct pxconn *c, int delta)
{
	if (!c->quiet)
		proxy_count_open(c->svc, c->inst, delta);
	else
		c->svc->p->st.open += (unsigned)delta;
}
