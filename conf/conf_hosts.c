/*
 * The hosts list: libvirt hosts that libvirt services are placed on.
 *
 *   hosts = ( { name = "a"; uri = "qemu+tcp://10.0.0.2/system"; bridge = "br0";
 *               subnet = "10.88.1.0/24"; max_memory = "4G"; max_instances = 20; } );
 *
 * A service may name the hosts it may run on (its hosts key); with no
 * list, libvirt services run where libvirt.uri says, as before.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

void conf_host_clear(struct conf_host *h)
{
	free(h->name);
	free(h->uri);
	free(h->bridge);
	memset(h, 0, sizeof(*h));
}

static bool host_str_eq(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

bool conf_host_equal(const struct conf_host *a, const struct conf_host *b)
{
	return host_str_eq(a->name, b->name) && host_str_eq(a->uri, b->uri) &&
	       host_str_eq(a->bridge, b->bridge) && a->subnet.s_addr == b->subnet.s_addr &&
	       a->prefix == b->prefix && a->max_memory == b->max_memory &&
	       a->max_instances == b->max_instances;
}

bool conf_service_hosted(const struct conf *conf, const struct conf_service *svc)
{
	return conf->nhosts > 0 && svc->backend == CONF_BACKEND_LIBVIRT;
}

bool conf_service_on_host(const struct conf_service *svc, const struct conf_host *h)
{
	if (svc->hosts == NULL)
		return true;
	for (size_t i = 0; i < svc->nhosts; i++)
		if (strcmp(svc->hosts[i], h->name) == 0)
			return true;
	return false;
}

struct in_addr conf_host_address(const struct conf_host *h, const struct conf_service *svc)
{
	uint32_t mask = 0xffffffffu << (32 - h->prefix);
	struct in_addr a;

	a.s_addr = htonl(ntohl(h->subnet.s_addr) | (ntohl(svc->address.s_addr) & ~mask));
	return a;
}

/* name, uri, bridge: strings; NAME a service-like name, BRIDGE an interface name. */
static void host_str(struct conf_ctx *c, struct conf_host *h, const config_setting_t *s,
                     const char *key, const char *label)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return;
	if (strcmp(key, "name") == 0 && !conf_service_name_valid(v))
		conf_err(c, s, "%s: bad host name \"%s\" (want 1 to 32 of a-z, 0-9 and -)", label,
		         v);
	else if (strcmp(key, "bridge") == 0 && !conf_ifname_valid(v))
		conf_err(c, s, "%s: bad interface name \"%s\"", label, v);
	else if (v[0] == '\0')
		conf_err(c, s, "%s: must not be empty", label);
	else
		conf_set_str(c,
		             strcmp(key, "name") == 0  ? &h->name
		             : strcmp(key, "uri") == 0 ? &h->uri
		                                       : &h->bridge,
		             v);
}

static void host_key(struct conf_ctx *c, struct conf_host *h, const config_setting_t *s,
                     const char *label)
{
	const char *key = config_setting_name(s);
	char buf[CONF_LABEL_MAX];
	long long n;

	conf_label(buf, label, key);
	if (strcmp(key, "name") == 0 || strcmp(key, "uri") == 0 || strcmp(key, "bridge") == 0)
		host_str(c, h, s, key, buf);
	else if (strcmp(key, "subnet") == 0)
		conf_get_subnet(c, s, buf, &h->subnet, &h->prefix);
	else if (strcmp(key, "max_memory") == 0)
		conf_get_size(c, s, buf, &h->max_memory);
	else if (strcmp(key, "max_instances") == 0) {
		if (conf_get_int(c, s, buf, 0, 1000000, &n) == 0)
			h->max_instances = (uint64_t)n;
	} else
		conf_err(c, s, "unknown key \"%s\"", buf);
}

static void host_required(struct conf_ctx *c, const config_setting_t *g, const char *label)
{
	static const char *const req[] = {"name", "uri", "bridge", "subnet"};

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		if (config_setting_get_member(g, req[i]) == NULL)
			conf_err(c, g, "%s: missing \"%s\"", label, req[i]);
}

static void host_unique(struct conf_ctx *c, const struct conf *conf, const config_setting_t *g,
                        const char *label)
{
	const struct conf_host *h = &conf->hosts[conf->nhosts];

	for (size_t i = 0; i < conf->nhosts; i++) {
		const struct conf_host *o = &conf->hosts[i];

		if (h->name && o->name && strcmp(h->name, o->name) == 0)
			conf_err(c, g, "%s.name: \"%s\" is already used by hosts[%zu]", label,
			         h->name, i);
		if (h->uri && o->uri && strcmp(h->uri, o->uri) == 0)
			conf_err(c, g, "%s.uri: \"%s\" is already used by hosts[%zu]", label,
			         h->uri, i);
	}
}

void conf_load_hosts(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	char label[CONF_LABEL_MAX];
	int n;

	if (conf_get_list(c, s, "hosts", false, &n) == -1)
		return;
	if ((conf->hosts = calloc((size_t)n, sizeof(*conf->hosts))) == NULL) {
		c->oom = true;
		return;
	}
	c->hosts_src = s;
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = conf_list_elem(s, i);

		snprintf(label, sizeof(label), "hosts[%d]", i);
		if (conf_want_group(c, g, label) == -1)
			continue;
		for (int k = 0; k < config_setting_length(g); k++)
			host_key(c, &conf->hosts[conf->nhosts],
			         config_setting_get_elem(g, (unsigned)k), label);
		host_required(c, g, label);
		host_unique(c, conf, g, label);
		conf->hosts[conf->nhosts++].line = (int)config_setting_source_line(g);
	}
}

static const struct conf_host *host_find(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->nhosts; i++)
		if (conf->hosts[i].name != NULL && strcmp(conf->hosts[i].name, name) == 0)
			return &conf->hosts[i];
	return NULL;
}

/* The service's hosts key: known names, a libvirt service. */
static void check_service_hosts(struct conf_ctx *c, const struct conf *conf,
                                const struct conf_build *b)
{
	const config_setting_t *s = b->src[CONF_SK_HOSTS];

	if (s == NULL || b->bad[CONF_SK_HOSTS])
		return;
	if (conf->nhosts == 0) {
		conf_err(c, s, "%s.hosts: there is no hosts list to choose from", b->label);
		return;
	}
	if (!b->bad[CONF_SK_BACKEND] && b->svc.backend != CONF_BACKEND_LIBVIRT) {
		conf_err(c, s, "%s.hosts: only libvirt services run on other hosts, not \"%s\"",
		         b->label, conf_backend_name(b->svc.backend));
		return;
	}
	for (size_t i = 0; i < b->svc.nhosts; i++)
		if (host_find(conf, b->svc.hosts[i]) == NULL)
			conf_err(c, s, "%s.hosts: no host \"%s\" in the hosts list", b->label,
			         b->svc.hosts[i]);
}

/* A hosted service's libvirt.uri would be ignored: say so. */
static void check_service_uri(struct conf_ctx *c, const struct conf *conf,
                              const struct conf_build *b)
{
	const config_setting_t *s = b->src[CONF_SK_LIBVIRT_URI];

	if (s == NULL || conf->nhosts == 0 || b->bad[CONF_SK_BACKEND] ||
	    b->svc.backend != CONF_BACKEND_LIBVIRT)
		return;
	conf_err(c, s, "%s.libvirt.uri: with a hosts list, each host's uri is used", b->label);
}

void conf_check_hosts(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b,
                      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		check_service_hosts(c, conf, &b[i]);
		check_service_uri(c, conf, &b[i]);
	}
	if (conf->nhosts == 0)
		return;
	/* The SYN hold sees only this machine's traffic. */
	if (c->hold_set && conf->hold == CONF_HOLD_SYN)
		conf_err(c, c->hold_src,
		         "network.hold: \"syn\" cannot hold connections for guests on other hosts; "
		         "use \"proxy\" or \"none\" with a hosts list");
	if (conf->net_mode != CONF_NET_BRIDGE)
		conf_err(c, c->hosts_src, "hosts: needs network.mode \"bridge\"");
}
