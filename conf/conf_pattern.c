/*
 * Pattern services: one entry, dns = ( "*.SUFFIX" ), stands for a service
 * per label, each made when its name is first asked for (launcher/
 * pattern.c). Here: the address pool's syntax, matching a name to the
 * pattern, the service an instance runs, and the checks of the config.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* "A.B.C.D/P": every address of the network. */
static int pool_cidr(const char *s, struct in_addr *first, struct in_addr *last, const char **why)
{
	struct in_addr net;
	uint32_t mask, n;
	int prefix;

	if (conf_parse_cidr(s, &net, &prefix) == -1) {
		*why = "want \"A.B.C.D/PREFIX\" or \"A.B.C.D-A.B.C.E\"";
		return -1;
	}
	mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
	n = ntohl(net.s_addr);
	if ((n & ~mask) != 0) {
		*why = "host bits set: name the network";
		return -1;
	}
	first->s_addr = htonl(n);
	last->s_addr = htonl(n | ~mask);
	return 0;
}

/* "A.B.C.D-A.B.C.E": the addresses from the first to the last. */
static int pool_range(const char *s, const char *dash, struct in_addr *first, struct in_addr *last,
                      const char **why)
{
	char a[INET_ADDRSTRLEN];
	size_t n = (size_t)(dash - s);

	*why = "want \"A.B.C.D/PREFIX\" or \"A.B.C.D-A.B.C.E\"";
	if (n >= sizeof(a))
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, first) != 1 || inet_pton(AF_INET, dash + 1, last) != 1)
		return -1;
	if (ntohl(first->s_addr) > ntohl(last->s_addr)) {
		*why = "its first address is after its last";
		return -1;
	}
	return 0;
}

int conf_parse_pool(const char *s, struct in_addr *first, struct in_addr *last, const char **why)
{
	const char *dash = strchr(s, '-');
	int rc;

	rc = dash != NULL ? pool_range(s, dash, first, last, why) : pool_cidr(s, first, last, why);
	if (rc == 0 && ntohl(last->s_addr) - ntohl(first->s_addr) >= CONF_POOL_MAX) {
		*why = "more than 65536 addresses";
		return -1;
	}
	return rc;
}

const char *conf_pattern_suffix(const struct conf_service *svc)
{
	return svc->dns[0] + 2; /* past "*." */
}

int conf_pattern_label(const struct conf_service *svc, const char *name, char *label)
{
	const char *suffix, *dot = strchr(name, '.');
	size_t n;

	if (!svc->pattern || svc->ndns != 1 || dot == NULL)
		return -1;
	suffix = conf_pattern_suffix(svc);
	n = (size_t)(dot - name);
	if (n == 0 || n > CONF_DNS_LABEL_MAX || strcmp(dot + 1, suffix) != 0)
		return -1;
	/* Letters, digits, inner hyphens: what may go into a file name safely. */
	if (name[0] == '-' || name[n - 1] == '-' ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return -1;
	memcpy(label, name, n);
	label[n] = '\0';
	return 0;
}

/* S with every "{label}" replaced by LABEL; NULL on ENOMEM. */
static char *pattern_subst(const char *s, const char *label)
{
	size_t cap = strlen(s) + 1, len = 0, ll = strlen(label);
	const char *p;
	char *out, *grown;

	for (p = s; (p = strstr(p, "{label}")) != NULL; p += 7)
		cap += ll;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	for (p = s; *p;) {
		if (strncmp(p, "{label}", 7) == 0) {
			memcpy(out + len, label, ll);
			len += ll;
			p += 7;
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	if ((grown = realloc(out, len + 1)) != NULL)
		out = grown;
	return out;
}

struct conf_service *conf_pattern_instance(const struct conf_service *svc, const char *label,
                                           struct in_addr addr)
{
	struct conf_service *d = conf_service_dup(svc);
	char name[CONF_INSTANCE_NAME_MAX + 1], dns[CONF_DNS_NAME_MAX + 1], *image = NULL;

	if (d == NULL)
		return NULL;
	snprintf(name, sizeof(name), "%s.%s", label, svc->name);
	snprintf(dns, sizeof(dns), "%s.%s", label, conf_pattern_suffix(svc));
	if (svc->image != NULL && (image = pattern_subst(svc->image, label)) == NULL)
		goto fail;
	free(d->name);
	free(d->dns[0]);
	free(d->image);
	d->image = image;
	d->name = strdup(name);
	d->dns[0] = strdup(dns);
	d->label = strdup(label);
	d->address = addr;
	d->has_address6 = false; /* conf_check_address6: a pattern has none */
	d->pattern = false;
	if (d->name == NULL || d->dns[0] == NULL || d->label == NULL)
		goto fail;
	return d;
fail:
	conf_service_free(d);
	return NULL;
}

struct conf_service *conf_replica_instance(const struct conf_service *svc, unsigned n,
                                           struct in_addr addr)
{
	struct conf_service *d = conf_service_dup(svc);
	char name[CONF_INSTANCE_NAME_MAX + 1];

	if (d == NULL)
		return NULL;
	snprintf(name, sizeof(name), "%u.%s", n, svc->name);
	free(d->name);
	if ((d->name = strdup(name)) == NULL) {
		conf_service_free(d);
		return NULL;
	}
	d->address = addr;
	d->has_address6 = false; /* conf_check_address6: replicas have none */
	return d;
}

const struct conf_service *conf_service_of(const struct conf *conf, const char *instance)
{
	const struct conf_service *svc = conf_service_find(conf, instance);
	const char *dot = strchr(instance, '.');

	if (svc != NULL || dot == NULL)
		return svc;
	svc = conf_service_find(conf, dot + 1);
	return svc != NULL && (svc->pattern || svc->replicas_max > 1) ? svc : NULL;
}

/* ---- the checks of conf_check_services ---- */

static bool set(const struct conf_build *b, enum conf_skey k)
{
	return b->src[k] != NULL;
}

static const config_setting_t *src_or_group(const struct conf_build *b, enum conf_skey k)
{
	return b->src[k] != NULL ? b->src[k] : b->group;
}

/* An address of the bridge subnet that is no guest's: the network, the bridge, the broadcast. */
static bool pool_reserved(const struct conf *conf, uint32_t a)
{
	uint32_t n = ntohl(conf->subnet.s_addr), mask = 0xffffffffu << (32 - conf->prefix);

	return a == n || a == n + 1 || a == (n | ~mask);
}

/* In bridge mode a VM's pool is on the bridge subnet. */
static void check_pool_subnet(struct conf_ctx *c, const struct conf *conf,
                              const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;
	uint32_t f = ntohl(s->pool_first.s_addr), l = ntohl(s->pool_last.s_addr), usable = 0;
	uint32_t n = ntohl(conf->subnet.s_addr), mask = 0xffffffffu << (32 - conf->prefix);
	char net[INET_ADDRSTRLEN];
	bool bridged = conf->net_mode == CONF_NET_BRIDGE && c->mode_ok && c->subnet_ok &&
	               !b->bad[CONF_SK_BACKEND] && s->backend != CONF_BACKEND_EXEC;

	inet_ntop(AF_INET, &conf->subnet, net, sizeof(net));
	if (bridged && ((f & mask) != n || (l & mask) != n)) {
		conf_err(c, b->src[CONF_SK_ADDRESS_POOL],
		         "%s.address_pool: outside network.subnet %s/%d (guests on the bridge take "
		         "addresses of its subnet)",
		         b->label, net, conf->prefix);
		return;
	}
	for (uint32_t a = f; a >= f && a <= l; a++)
		usable += !bridged || !pool_reserved(conf, a);
	if (usable == 0)
		conf_err(
		    c, b->src[CONF_SK_ADDRESS_POOL],
		    "%s.address_pool: too small: it holds no address for a guest (the network, "
		    "bridge and broadcast addresses of %s/%d are not given out)",
		    b->label, net, conf->prefix);
}

/* No address of the pool is another service's address or in another pool. */
static void check_pool_unique(struct conf_ctx *c, const struct conf_build *b, size_t i)
{
	uint32_t f = ntohl(b[i].svc.pool_first.s_addr), l = ntohl(b[i].svc.pool_last.s_addr);

	for (size_t k = 0; k < i; k++) {
		const struct conf_service *o = &b[k].svc;

		if ((o->pattern || o->replicas_max > 1) && set(&b[k], CONF_SK_ADDRESS_POOL) &&
		    !b[k].bad[CONF_SK_ADDRESS_POOL] && ntohl(o->pool_first.s_addr) <= l &&
		    ntohl(o->pool_last.s_addr) >= f)
			conf_err(c, b[i].src[CONF_SK_ADDRESS_POOL],
			         "%s.address_pool: overlaps the address_pool of %s", b[i].label,
			         b[k].label);
	}
}

/* A static service's address inside a pattern service's pool. */
static void check_addr_in_pools(struct conf_ctx *c, const struct conf_build *b, size_t n)
{
	char addr[INET_ADDRSTRLEN];

	for (size_t i = 0; i < n; i++) {
		uint32_t a = ntohl(b[i].svc.address.s_addr);

		if (b[i].svc.pattern || !set(&b[i], CONF_SK_ADDRESS) || b[i].bad[CONF_SK_ADDRESS])
			continue;
		if (b[i].svc.replicas_max > 1 && set(&b[i], CONF_SK_ADDRESS_POOL) &&
		    a >= ntohl(b[i].svc.pool_first.s_addr) && a <= ntohl(b[i].svc.pool_last.s_addr))
			conf_err(c, b[i].src[CONF_SK_ADDRESS],
			         "%s.address: is in its own address_pool (the extra replicas' "
			         "addresses)",
			         b[i].label);
		for (size_t k = 0; k < n; k++) {
			const struct conf_service *p = &b[k].svc;

			if (k == i || !(p->pattern || p->replicas_max > 1) ||
			    !set(&b[k], CONF_SK_ADDRESS_POOL) || b[k].bad[CONF_SK_ADDRESS_POOL] ||
			    a < ntohl(p->pool_first.s_addr) || a > ntohl(p->pool_last.s_addr))
				continue;
			inet_ntop(AF_INET, &b[i].svc.address, addr, sizeof(addr));
			conf_err(c, b[i].src[CONF_SK_ADDRESS],
			         "%s.address: %s is in the address_pool of %s", b[i].label, addr,
			         b[k].label);
		}
	}
}

/* What a pattern service cannot do yet, or needs. */
static void check_pattern_needs(struct conf_ctx *c, const struct conf *conf,
                                const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;

	if (set(b, CONF_SK_ADDRESS))
		conf_err(c, b->src[CONF_SK_ADDRESS],
		         "%s.address: a pattern service takes \"address_pool\", not \"address\"",
		         b->label);
	if (!set(b, CONF_SK_ADDRESS_POOL))
		conf_err(c, b->group,
		         "%s: missing \"address_pool\" (where a pattern service's instances take "
		         "their addresses)",
		         b->label);
	if (conf->hold == CONF_HOLD_SYN ||
	    (conf->hold == CONF_HOLD_PROXY && conf->net_mode != CONF_NET_BRIDGE))
		conf_err(c, src_or_group(b, CONF_SK_DNS),
		         "%s.dns: a pattern service needs network.hold = \"none\", or \"proxy\" in "
		         "bridge mode (the SYN hold, and the proxy's listeners in user networking, "
		         "follow configured addresses only)",
		         b->label);
	/* QEMU's own check says it already. */
	if (!set(b, CONF_SK_IMAGE) && !b->bad[CONF_SK_IMAGE] &&
	    !(!b->bad[CONF_SK_BACKEND] && s->backend == CONF_BACKEND_QEMU))
		conf_err(c, b->group,
		         "%s: missing \"image\" (a pattern service serves a name only when its "
		         "image, {label} replaced, exists)",
		         b->label);
	if (conf->net_mode == CONF_NET_USER && !b->bad[CONF_SK_BACKEND] &&
	    s->backend != CONF_BACKEND_EXEC)
		conf_err(c, src_or_group(b, CONF_SK_DNS),
		         "%s.dns: in user networking a pattern service runs the exec backend (a VM "
		         "there is reached through the proxy, which does not follow pattern "
		         "instances)",
		         b->label);
	if (!b->bad[CONF_SK_WARM] && s->warm != CONF_WARM_NONE)
		conf_err(c, src_or_group(b, CONF_SK_WARM),
		         "%s.warm: a pattern service has no warm pool (its instances are made on "
		         "demand); use \"none\"",
		         b->label);
	if (!b->bad[CONF_SK_BACKEND] && s->backend == CONF_BACKEND_LIBVIRT && conf->nhosts > 0)
		conf_err(c, src_or_group(b, CONF_SK_DNS),
		         "%s.dns: a pattern service does not run on the hosts list", b->label);
}

/*
 * Replicas: their extra instances take addresses from the pool. Hold "none":
 * DNS gives every ready replica's address; "proxy": the proxy spreads the
 * service address's connections. The SYN hold follows configured addresses
 * only.
 */
static void check_replicas(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;
	const config_setting_t *at = src_or_group(b, CONF_SK_REPLICAS);

	if (!set(b, CONF_SK_REPLICAS) || b->bad[CONF_SK_REPLICAS])
		return;
	if (s->replicas_min > s->replicas_max)
		conf_err(c, at, "%s.replicas: min %u is more than max %u", b->label,
		         s->replicas_min, s->replicas_max);
	if (s->replicas_max <= 1)
		return;
	if (s->pattern)
		conf_err(c, at, "%s.replicas: a pattern service has one instance per name",
		         b->label);
	if (s->replicas_target == 0)
		conf_err(c, at, "%s.replicas: missing \"target\" (open connections per instance)",
		         b->label);
	if (!set(b, CONF_SK_ADDRESS_POOL))
		conf_err(
		    c, at,
		    "%s.replicas: max %u needs \"address_pool\" (where the extra instances take "
		    "their addresses)",
		    b->label, s->replicas_max);
	if (conf->hold == CONF_HOLD_SYN)
		conf_err(c, at,
		         "%s.replicas: more than one instance needs network.hold = \"none\" (DNS "
		         "gives every ready instance's address) or \"proxy\" (the proxy spreads "
		         "connections); the SYN hold follows configured addresses only",
		         b->label);
}

void conf_check_pattern(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b,
                        size_t i)
{
	const struct conf_build *me = &b[i];

	check_replicas(c, conf, me);
	/* A replicas group takes a pool, also at max 1 (max may be raised by a reload). */
	if (set(me, CONF_SK_REPLICAS) && !me->svc.pattern) {
		if (set(me, CONF_SK_ADDRESS_POOL) && !me->bad[CONF_SK_ADDRESS_POOL]) {
			check_pool_subnet(c, conf, me);
			check_pool_unique(c, b, i);
		}
		return;
	}
	if (!me->svc.pattern) {
		if (set(me, CONF_SK_ADDRESS_POOL))
			conf_err(c, me->src[CONF_SK_ADDRESS_POOL],
			         "%s.address_pool: goes with a pattern dns name (\"*.NAME\")",
			         me->label);
		return;
	}
	check_pattern_needs(c, conf, me);
	if (!set(me, CONF_SK_ADDRESS_POOL) || me->bad[CONF_SK_ADDRESS_POOL])
		return;
	check_pool_subnet(c, conf, me);
	check_pool_unique(c, b, i);
}

/* Once for all services: static addresses inside a pool. */
void conf_check_pools(struct conf_ctx *c, const struct conf_build *b, size_t n)
{
	check_addr_in_pools(c, b, n);
}
