/*
 * address6, once a service is whole: one address, one service; and not
 * where the instances' addresses come from elsewhere (a pattern's pool, the
 * replicas'), since one IPv6 address cannot stand for several guests.
 */
#include <arpa/inet.h>
#include <string.h>

#include "conf_int.h"

static bool has6(const struct conf_build *b)
{
	return b->src[CONF_SK_ADDRESS6] != NULL && !b->bad[CONF_SK_ADDRESS6] && b->svc.has_address6;
}

/* Where to report: the service's own address6, else the service (it came from the defaults). */
static const config_setting_t *where6(const struct conf_build *b)
{
	for (const config_setting_t *s = b->src[CONF_SK_ADDRESS6]; s != NULL;
	     s = config_setting_parent(s))
		if (s == b->group)
			return b->src[CONF_SK_ADDRESS6];
	return b->group;
}

static void check_alone(struct conf_ctx *c, const struct conf_build *b)
{
	if (b->svc.pattern)
		conf_err(c, where6(b),
		         "%s.address6: a pattern service's instances have no IPv6 address "
		         "(their addresses come from address_pool)",
		         b->label);
	else if (b->svc.replicas_max > 1 && !b->bad[CONF_SK_REPLICAS])
		conf_err(c, where6(b),
		         "%s.address6: goes with one instance, not replicas.max %u (the "
		         "replicas have IPv4 addresses only)",
		         b->label, b->svc.replicas_max);
}

/* "service \"www\"", or "services[0]" when its name is bad. */
static const char *ref(char *buf, size_t len, const struct conf_build *b)
{
	if (b->src[CONF_SK_NAME] != NULL && !b->bad[CONF_SK_NAME])
		snprintf(buf, len, "service \"%s\"", b->svc.name);
	else
		snprintf(buf, len, "%s", b->label);
	return buf;
}

void conf_check_address6(struct conf_ctx *c, const struct conf_build *b, size_t i)
{
	char addr[INET6_ADDRSTRLEN], other[64];

	if (!has6(&b[i]))
		return;
	check_alone(c, &b[i]);
	for (size_t k = 0; k < i; k++) {
		if (!has6(&b[k]) ||
		    memcmp(&b[i].svc.address6, &b[k].svc.address6, sizeof(b[i].svc.address6)) != 0)
			continue;
		inet_ntop(AF_INET6, &b[i].svc.address6, addr, sizeof(addr));
		conf_err(c, where6(&b[i]), "%s.address6: %s is already used by %s", b[i].label,
		         addr, ref(other, sizeof(other), &b[k]));
		return;
	}
}
