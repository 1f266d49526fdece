/* The dns = { ... } and network = { ... } groups. */
#include <arpa/inet.h>
#include <string.h>

#include "conf_int.h"

static void dns_listen(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	char buf[CONF_LABEL_MAX];
	int n;

	if (conf_get_list(c, s, "dns.listen", true, &n) == -1)
		return;
	if (n > CONF_MAX_LISTEN) {
		conf_err(c, s, "dns.listen: %d addresses, at most %d are allowed", n,
		         CONF_MAX_LISTEN);
		return;
	}
	conf->ndns_listen = 0;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = conf_list_elem(s, i);
		struct conf_addr *a = &conf->dns_listen[conf->ndns_listen];
		const char *label = "dns.listen";

		if (!config_setting_is_scalar(s))
			label = (snprintf(buf, sizeof(buf), "dns.listen[%d]", i), buf);
		if (conf_get_hostport(c, e, label, a) == -1)
			continue;
		for (size_t j = 0; j < conf->ndns_listen; j++)
			if (conf->dns_listen[j].len == a->len &&
			    memcmp(&conf->dns_listen[j].ss, &a->ss, a->len) == 0) {
				conf_err(c, e, "%s: \"%s\" is listed twice", label, a->text);
				goto next;
			}
		conf->ndns_listen++;
	next:;
	}
}

static void dns_ns_one(struct conf_ctx *c, struct conf *conf, const config_setting_t *g,
                       const char *label)
{
	char buf[CONF_LABEL_MAX], name[CONF_DNS_NAME_MAX + 1];
	struct conf_ns *ns = &conf->ns[conf->nns];
	bool named = false;

	if (conf_want_group(c, g, label) == -1)
		return;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(s);

		conf_label(buf, label, key);
		if (strcmp(key, "name") == 0) {
			named = true;
			if (conf_get_dns_name(c, s, buf, name) == 0)
				conf_set_str(c, &ns->name, name);
		} else if (strcmp(key, "address") == 0) {
			ns->has_addr = conf_get_ipv4(c, s, buf, &ns->addr) == 0;
		} else {
			conf_err(c, s, "unknown key \"%s\"", buf);
		}
	}
	if (!named)
		conf_err(c, g, "%s: missing \"name\"", label);
	/* Keep the slot even when broken, so that conf_free frees its name. */
	c->ns_src[conf->nns++] = g;
}

static void dns_ns(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	char buf[CONF_LABEL_MAX];
	int n;

	if (config_setting_is_group(s)) {
		dns_ns_one(c, conf, s, "dns.ns");
		return;
	}
	if (conf_get_list(c, s, "dns.ns", false, &n) == -1)
		return;
	if (n > CONF_MAX_NS) {
		conf_err(c, s, "dns.ns: %d name servers, at most %d are allowed", n, CONF_MAX_NS);
		return;
	}
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "dns.ns[%d]", i);
		dns_ns_one(c, conf, config_setting_get_elem(s, (unsigned)i), buf);
	}
}

static void dns_forward(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	const char *v;

	conf->has_forward = false;
	if (conf_get_string(c, s, "dns.forward", &v) == -1 || v[0] == '\0')
		return;
	conf->has_forward = conf_get_hostport(c, s, "dns.forward", &conf->forward) == 0;
}

static void dns_zone(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	char zone[CONF_DNS_NAME_MAX + 1];

	if (conf_get_dns_name(c, s, "dns.zone", zone) == -1)
		return;
	conf_set_str(c, &conf->zone, zone);
	c->zone_ok = conf->zone != NULL;
}

static void dns_ttl(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	long long ttl;

	if (conf_get_int(c, s, "dns.ttl", 0, INT32_MAX, &ttl) == 0)
		conf->ttl = (uint32_t)ttl;
}

void conf_load_dns(struct conf_ctx *c, struct conf *conf, const config_setting_t *g)
{
	static const struct {
		const char *key;
		void (*load)(struct conf_ctx *, struct conf *, const config_setting_t *);
	} keys[] = {{"listen", dns_listen},    {"zone", dns_zone},       {"ns", dns_ns},
	            {"ttl", dns_ttl},          {"forward", dns_forward}, {"tcp", conf_load_dns_tcp},
	            {"rrl", conf_load_dns_rrl}};
	char buf[CONF_LABEL_MAX];
	size_t k;

	c->dns_seen = true;
	if (conf_want_group(c, g, "dns") == -1)
		return;
	c->dns_group = g;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(s);

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(key, keys[k].key) == 0)
				break;
		if (k < sizeof(keys) / sizeof(keys[0]))
			keys[k].load(c, conf, s);
		else
			conf_err(c, s, "unknown key \"%s\"", conf_label(buf, "dns", key));
	}
}

/* Required dns keys, and glue for name servers inside the zone. */
void conf_check_dns(struct conf_ctx *c, const struct conf *conf)
{
	const config_setting_t *g = c->dns_group;

	if (g == NULL) {
		if (!c->dns_seen)
			conf_err(c, NULL, "missing \"dns\" (dns.zone and dns.ns are required)");
		return;
	}
	if (config_setting_get_member(g, "zone") == NULL)
		conf_err(c, g, "dns: missing \"zone\"");
	if (config_setting_get_member(g, "ns") == NULL)
		conf_err(c, g, "dns: missing \"ns\" (at least one name server)");
	for (size_t i = 0; c->zone_ok && i < conf->nns; i++) {
		const struct conf_ns *ns = &conf->ns[i];

		if (ns->name != NULL && !ns->has_addr &&
		    config_setting_get_member(c->ns_src[i], "address") == NULL &&
		    conf_dns_in_zone(ns->name, conf->zone))
			conf_err(
			    c, c->ns_src[i],
			    "dns.ns: \"%s\" is inside zone \"%s\" and needs an \"address\" (glue)",
			    ns->name, conf->zone);
	}
}

bool conf_ifname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.-", s[i]) != NULL))
			return false;
	return true;
}

static void net_bridge(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	const char *v;

	if (conf_get_string(c, s, "network.bridge", &v) == -1)
		return;
	if (!conf_ifname_valid(v)) {
		conf_err(c, s,
		         "network.bridge: bad interface name \"%s\" (want 1 to 15 of letters, "
		         "digits, '_', '.', '-')",
		         v);
		return;
	}
	conf_set_str(c, &conf->bridge, v);
}

int conf_get_subnet(struct conf_ctx *c, const config_setting_t *s, const char *label,
                    struct in_addr *net, int *prefix)
{
	struct in_addr a;
	uint32_t mask;
	const char *v;
	int p;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (conf_parse_cidr(v, &a, &p) == -1 || p < 1 || p > 30) {
		conf_err(c, s,
		         "%s: bad subnet \"%s\" (want e.g. \"10.77.0.0/24\", a prefix of 1 to 30)",
		         label, v);
		return -1;
	}
	mask = htonl(0xffffffffu << (32 - p));
	if ((a.s_addr & ~mask) != 0) {
		char buf[INET_ADDRSTRLEN];

		a.s_addr &= mask;
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		conf_err(c, s, "%s: \"%s\" has host bits set (did you mean \"%s/%d\"?)", label, v,
		         buf, p);
		return -1;
	}
	*net = a;
	*prefix = p;
	return 0;
}

static void net_subnet(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	c->subnet_ok = conf_get_subnet(c, s, "network.subnet", &conf->subnet, &conf->prefix) == 0;
}

/* The hold limits: network.max_held_per_service, max_held, hold_buffer, hold_timeout. */
static bool net_hold_limit(struct conf_ctx *c, struct conf *conf, const config_setting_t *s,
                           const char *key)
{
	char label[CONF_LABEL_MAX];
	long long n;
	uint64_t v;

	conf_label(label, "network", key);
	if (strcmp(key, "max_held_per_service") == 0 || strcmp(key, "max_held") == 0) {
		if (conf_get_int(c, s, label, 1, 1000000, &n) == -1)
			return true;
		if (strcmp(key, "max_held") == 0) {
			conf->max_held = (unsigned)n;
		} else {
			conf->max_held_per_service = (unsigned)n;
			c->max_held_src = s;
		}
	} else if (strcmp(key, "hold_buffer") == 0) {
		if (conf_get_size(c, s, label, &v) == -1)
			return true;
		if (v < 1024 || v > (64u << 20))
			conf_err(c, s, "%s: %llu bytes is out of range (\"1K\" to \"64M\")", label,
			         (unsigned long long)v);
		else
			conf->hold_buffer = v;
	} else if (strcmp(key, "hold_timeout") == 0) {
		if (conf_get_duration(c, s, label, &v) == -1)
			return true;
		if (v < 10 || v > 3600000)
			conf_err(c, s, "%s: %llu ms is out of range (\"10ms\" to \"1h\")", label,
			         (unsigned long long)v);
		else
			conf->hold_timeout_ms = v;
	} else {
		return false;
	}
	return true;
}

void conf_check_hold(struct conf_ctx *c, const struct conf *conf)
{
	if (c->max_held_src != NULL && conf->max_held_per_service > conf->max_held)
		conf_err(c, c->max_held_src,
		         "network.max_held_per_service: %u is more than network.max_held (%u)",
		         conf->max_held_per_service, conf->max_held);
}

void conf_load_network(struct conf_ctx *c, struct conf *conf, const config_setting_t *g)
{
	char buf[CONF_LABEL_MAX];
	int v;

	if (conf_want_group(c, g, "network") == -1)
		return;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(s);

		if (strcmp(key, "mode") == 0) {
			c->mode_ok =
			    conf_get_enum(c, s, "network.mode", conf_net_mode_names, &v) == 0;
			if (c->mode_ok)
				conf->net_mode = (enum conf_net_mode)v;
		} else if (strcmp(key, "hold") == 0) {
			c->hold_set = true;
			c->hold_src = s;
			if (conf_get_enum(c, s, "network.hold", conf_hold_names, &v) == 0)
				conf->hold = (enum conf_hold)v;
		} else if (strcmp(key, "bridge") == 0) {
			net_bridge(c, conf, s);
		} else if (strcmp(key, "subnet") == 0) {
			net_subnet(c, conf, s);
		} else if (strcmp(key, "bypass") == 0) {
			conf_get_bool(c, s, "network.bypass", &conf->bypass);
		} else if (!net_hold_limit(c, conf, s, key)) {
			conf_err(c, s, "unknown key \"%s\"", conf_label(buf, "network", key));
		}
	}
}
