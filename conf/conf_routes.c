/*
 * Routes by URL path. A services entry with a routes key is a front:
 *
 *   { name = "site"; dns = ( "site.svc.test" ); address = "10.77.0.9"; ports = ( 80 );
 *     routes = ( { prefix = "/blog/"; service = "blog"; },
 *                { prefix = "/";      service = "www";  } ); }
 *
 * It runs nothing itself, so it takes name, dns, address, ports and routes
 * only; the proxy (network.hold "proxy": only the proxy sees a request's
 * path) sends each request to the service of the longest matching prefix.
 * Checked here: each route's form, unique prefixes, services that exist
 * and are not fronts, the hold, and no key of a VM on a front.
 */
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* Routes a front may have: each request looks at every prefix. */
#define CONF_MAX_ROUTES 256
#define CONF_PREFIX_MAX 1024

void conf_routes_clear(struct conf_service *svc)
{
	for (size_t i = 0; i < svc->nroutes; i++) {
		free(svc->routes[i].prefix);
		free(svc->routes[i].service);
	}
	free(svc->routes);
	svc->routes = NULL;
	svc->nroutes = 0;
}

bool conf_routes_dup(struct conf_service *svc)
{
	const struct conf_route *src = svc->routes;
	struct conf_route *dst;
	bool ok = true;

	if (src == NULL)
		return true;
	if ((dst = calloc(svc->nroutes, sizeof(*dst))) == NULL) {
		svc->routes = NULL;
		svc->nroutes = 0;
		return false;
	}
	for (size_t i = 0; i < svc->nroutes; i++) {
		dst[i].prefix = strdup(src[i].prefix);
		dst[i].service = strdup(src[i].service);
		ok = ok && dst[i].prefix != NULL && dst[i].service != NULL;
	}
	svc->routes = dst;
	return ok;
}

bool conf_routes_equal(const struct conf_service *a, const struct conf_service *b)
{
	if (a->nroutes != b->nroutes || (a->routes == NULL) != (b->routes == NULL))
		return false;
	for (size_t i = 0; i < a->nroutes; i++)
		if (strcmp(a->routes[i].prefix, b->routes[i].prefix) != 0 ||
		    strcmp(a->routes[i].service, b->routes[i].service) != 0)
			return false;
	return true;
}

/* A path to match a request's against: "/", then visible characters, no query. */
static bool prefix_valid(const char *s)
{
	if (s[0] != '/' || strlen(s) > CONF_PREFIX_MAX)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '?' || *s == '#')
			return false;
	return true;
}

static int route_key(struct conf_ctx *c, const config_setting_t *s, const char *label,
                     struct conf_route *r)
{
	const char *key = config_setting_name(s), *v;
	char buf[CONF_LABEL_MAX];

	conf_label(buf, label, key);
	if (strcmp(key, "prefix") != 0 && strcmp(key, "service") != 0) {
		conf_err(c, s, "unknown key \"%s\"", buf);
		return -1;
	}
	if (conf_get_string(c, s, buf, &v) == -1)
		return -1;
	if (strcmp(key, "prefix") == 0 && !prefix_valid(v)) {
		conf_err(c, s, "%s: want a path that begins with \"/\" (no spaces, \"?\" or \"#\")",
		         buf);
		return -1;
	}
	if (strcmp(key, "service") == 0 && !conf_service_name_valid(v)) {
		conf_err(c, s, "%s: bad service name \"%s\"", buf, v);
		return -1;
	}
	conf_set_str(c, strcmp(key, "prefix") == 0 ? &r->prefix : &r->service, v);
	return 0;
}

/* One { prefix = ...; service = ...; }, its prefix not one of the routes before it. */
static int route_one(struct conf_ctx *c, const config_setting_t *g, const char *label,
                     struct conf_route *routes, size_t i)
{
	int rc = 0;

	if (conf_want_group(c, g, label) == -1)
		return -1;
	for (int k = 0; k < config_setting_length(g); k++)
		if (route_key(c, config_setting_get_elem(g, (unsigned)k), label, &routes[i]) == -1)
			rc = -1;
	if (rc == 0 && (routes[i].prefix == NULL || routes[i].service == NULL)) {
		conf_err(c, g, "%s: missing \"%s\"", label,
		         routes[i].prefix == NULL ? "prefix" : "service");
		return -1;
	}
	for (size_t j = 0; rc == 0 && j < i; j++)
		if (routes[j].prefix != NULL && strcmp(routes[j].prefix, routes[i].prefix) == 0) {
			conf_err(c, config_setting_get_member(g, "prefix"),
			         "%s.prefix: \"%s\" is already routed by routes[%zu]", label,
			         routes[i].prefix, j);
			rc = -1;
		}
	return rc;
}

int conf_get_routes(struct conf_ctx *c, const config_setting_t *s, const char *label,
                    struct conf_service *svc)
{
	char buf[CONF_LABEL_MAX];
	int n, rc = 0;

	conf_routes_clear(svc);
	if (conf_get_list(c, s, label, false, &n) == -1)
		return -1;
	if (n > CONF_MAX_ROUTES) {
		conf_err(c, s, "%s: %d routes, at most %d are allowed", label, n, CONF_MAX_ROUTES);
		return -1;
	}
	if ((svc->routes = calloc((size_t)n, sizeof(*svc->routes))) == NULL) {
		c->oom = true;
		return -1;
	}
	svc->nroutes = (size_t)n;
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s[%d]", label, i);
		if (route_one(c, conf_list_elem(s, i), buf, svc->routes, (size_t)i) == -1)
			rc = -1;
	}
	/* The good routes stay, so that their services are checked too. */
	return rc;
}

/* Whether the entry B itself (not the defaults) set key K. */
static bool own_key(const struct conf_build *b, enum conf_skey k)
{
	for (const config_setting_t *s = b->src[k]; s != NULL; s = config_setting_parent(s))
		if (s == b->group)
			return true;
	return false;
}

/* A front runs nothing: keys that say how to run a VM are mistakes there. */
static void check_front_keys(struct conf_ctx *c, const struct conf_build *b)
{
	char key[CONF_LABEL_MAX];

	for (int k = 0; k < CONF_SK_N; k++) {
		const config_setting_t *s = b->src[k], *parent;

		if (k == CONF_SK_NAME || k == CONF_SK_DNS || k == CONF_SK_ADDRESS ||
		    k == CONF_SK_PORTS || k == CONF_SK_ROUTES || !own_key(b, (enum conf_skey)k))
			continue;
		/* "image", or "qemu.machine" for a key of a backend's group. */
		parent = config_setting_parent(s);
		conf_label(key, parent == b->group ? "" : config_setting_name(parent),
		           config_setting_name(s));
		conf_err(c, s,
		         "%s.%s: a front (an entry with routes) runs nothing; it takes only name, "
		         "dns, address, ports and routes",
		         b->label, key);
	}
	if (b->src[CONF_SK_PORTS] == NULL)
		conf_err(c, b->group, "%s: missing \"ports\" (where the front listens)", b->label);
}

/* The entry of B (N of them) named NAME, NULL when none. */
static const struct conf_build *entry_named(const struct conf_build *b, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (b[i].src[CONF_SK_NAME] != NULL && !b[i].bad[CONF_SK_NAME] &&
		    strcmp(b[i].svc.name, name) == 0)
			return &b[i];
	return NULL;
}

static void check_targets(struct conf_ctx *c, const struct conf_build *b, size_t n,
                          const struct conf_build *f)
{
	const config_setting_t *list = f->src[CONF_SK_ROUTES];

	for (size_t i = 0; i < f->svc.nroutes; i++) {
		const config_setting_t *s =
		    config_setting_get_member(conf_list_elem(list, (int)i), "service");
		const char *name = f->svc.routes[i].service;
		const struct conf_build *t = name != NULL ? entry_named(b, n, name) : NULL;

		if (name == NULL || s == NULL)
			continue; /* reported already */
		if (t == NULL)
			conf_err(c, s, "%s.routes[%zu].service: no service \"%s\"", f->label, i,
			         name);
		else if (t->src[CONF_SK_ROUTES] != NULL)
			conf_err(
			    c, s,
			    "%s.routes[%zu].service: \"%s\" is a front; a route names a service",
			    f->label, i, name);
		else if (t->src[CONF_SK_PORTS] == NULL && !t->bad[CONF_SK_PORTS])
			conf_err(c, s,
			         "%s.routes[%zu].service: \"%s\" has no ports to send requests to",
			         f->label, i, name);
	}
}

void conf_check_fronts(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b,
                       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i].src[CONF_SK_ROUTES] == NULL)
			continue;
		check_front_keys(c, &b[i]);
		/* Only the proxy reads a request: the SYN hold and "none" pass packets on. */
		if (conf->hold != CONF_HOLD_PROXY)
			conf_err(c, b[i].src[CONF_SK_ROUTES],
			         "%s.routes: needs network.hold \"proxy\" (the proxy reads each "
			         "request's path), not \"%s\"",
			         b[i].label, conf_hold_name(conf->hold));
		check_targets(c, b, n, &b[i]);
	}
}
