/*
 * What the DNS server gives one client: dns.tcp (connections at once, per
 * client address, how long an idle one lives) and dns.rrl (response rate
 * limiting over UDP, as NSD's and Knot's RRL).
 */
#include <string.h>

#include "conf_int.h"

#define CONF_TCP_MAX_LIMIT 65536
#define CONF_RRL_RATE_LIMIT 1000000
#define CONF_RRL_SLIP_LIMIT 100
#define CONF_RRL_TABLE_LIMIT (1 << 24)

/*
 * RRL is on by default, as in NSD (200 a second): an authoritative server
 * on the internet answers spoofed queries too, and a resolver asks for one
 * name a few times a TTL, far below 200 a second from one /24.
 */
void conf_dns_limits_defaults(struct conf *conf)
{
	conf->tcp_max = 256;
	conf->tcp_per_client = 16;
	conf->tcp_idle_ms = 10000;
	conf->rrl_rate = 200;
	conf->rrl_slip = 2;
	conf->rrl_ipv4_prefix = 24;
	conf->rrl_ipv6_prefix = 56;
	conf->rrl_table_size = 65536;
}

/* An integer key of GROUP into *DST; false when KEY is not NAME. */
static bool dl_int(struct conf_ctx *c, const config_setting_t *s, const char *group,
                   const char *name, long long lo, long long hi, unsigned *dst)
{
	char label[CONF_LABEL_MAX];
	long long n;

	if (strcmp(config_setting_name(s), name) != 0)
		return false;
	if (conf_get_int(c, s, conf_label(label, group, name), lo, hi, &n) == 0)
		*dst = (unsigned)n;
	return true;
}

static void dl_tcp_idle(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	uint64_t ms;

	if (conf_get_duration(c, s, "dns.tcp.idle_timeout", &ms) == -1)
		return;
	if (ms < 100 || ms > 3600000)
		conf_err(c, s,
		         "dns.tcp.idle_timeout: %llu ms is out of range (\"100ms\" to \"1h\")",
		         (unsigned long long)ms);
	else
		conf->tcp_idle_ms = ms;
}

void conf_load_dns_tcp(struct conf_ctx *c, struct conf *conf, const config_setting_t *g)
{
	const config_setting_t *per = NULL;
	char buf[CONF_LABEL_MAX];

	if (conf_want_group(c, g, "dns.tcp") == -1)
		return;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(s);

		if (dl_int(c, s, "dns.tcp", "max", 1, CONF_TCP_MAX_LIMIT, &conf->tcp_max))
			continue;
		if (dl_int(c, s, "dns.tcp", "per_client", 1, CONF_TCP_MAX_LIMIT,
		           &conf->tcp_per_client))
			per = s;
		else if (strcmp(key, "idle_timeout") == 0)
			dl_tcp_idle(c, conf, s);
		else
			conf_err(c, s, "unknown key \"%s\"", conf_label(buf, "dns.tcp", key));
	}
	/* Unset, per_client follows a small max down; set, it must fit in it. */
	if (per == NULL && conf->tcp_per_client > conf->tcp_max)
		conf->tcp_per_client = conf->tcp_max;
	else if (per != NULL && conf->tcp_per_client > conf->tcp_max)
		conf_err(c, per, "dns.tcp.per_client: %u is more than dns.tcp.max (%u)",
		         conf->tcp_per_client, conf->tcp_max);
}

void conf_load_dns_rrl(struct conf_ctx *c, struct conf *conf, const config_setting_t *g)
{
	char buf[CONF_LABEL_MAX];
	const char *grp = "dns.rrl";

	if (conf_want_group(c, g, grp) == -1)
		return;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);

		if (!dl_int(c, s, grp, "rate", 0, CONF_RRL_RATE_LIMIT, &conf->rrl_rate) &&
		    !dl_int(c, s, grp, "slip", 0, CONF_RRL_SLIP_LIMIT, &conf->rrl_slip) &&
		    !dl_int(c, s, grp, "ipv4_prefix", 8, 32, &conf->rrl_ipv4_prefix) &&
		    !dl_int(c, s, grp, "ipv6_prefix", 16, 128, &conf->rrl_ipv6_prefix) &&
		    !dl_int(c, s, grp, "table_size", 64, CONF_RRL_TABLE_LIMIT,
		            &conf->rrl_table_size))
			conf_err(c, s, "unknown key \"%s\"",
			         conf_label(buf, grp, config_setting_name(s)));
	}
}
