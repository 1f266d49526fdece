/*
 * The zone's name table: collected from the config, hashed for lookup by
 * lower-case wire name. The answers themselves are built in zone_build.c.
 */
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "log.h"
#include "zone.h"

int zone_wire(const char *text, uint8_t *out, size_t *len)
{
	ldns_rdf *d = ldns_dname_new_frm_str(text);

	if (!d)
		return -1;
	ldns_dname2canonical(d);
	if (ldns_rdf_size(d) > ZONE_NAME_MAX) {
		ldns_rdf_deep_free(d);
		return -1;
	}
	*len = ldns_rdf_size(d);
	memcpy(out, ldns_rdf_data(d), *len);
	ldns_rdf_deep_free(d);
	return 0;
}

uint32_t zone_hash(const uint8_t *name, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ name[i]) * 16777619u;
	return h;
}

bool zone_contains(const struct zone *z, const uint8_t *name, size_t len)
{
	size_t o = 0;

	while (o < len && len - o >= z->apexlen) {
		if (len - o == z->apexlen)
			return memcmp(name + o, z->apex, z->apexlen) == 0;
		if (name[o] == 0)
			break;
		o += (size_t)name[o] + 1;
	}
	return false;
}

const struct zone_name *zone_lookup(const struct zone *z, const uint8_t *name, size_t len,
                                    uint32_t hash)
{
	size_t i = hash & z->mask;
	uint32_t s;

	while ((s = z->slots[i]) != 0) {
		const struct zone_name *n = &z->names[s - 1];

		if (n->hash == hash && n->len == len && memcmp(n->name, name, len) == 0)
			return n;
		i = (i + 1) & z->mask;
	}
	return NULL;
}

enum zone_qkind zone_qkind(uint16_t qtype)
{
	switch (qtype) {
	case LDNS_RR_TYPE_A:
		return ZA_A;
	case LDNS_RR_TYPE_NS:
		return ZA_NS;
	case LDNS_RR_TYPE_SOA:
		return ZA_SOA;
	case LDNS_RR_TYPE_ANY:
		return ZA_ANY;
	case LDNS_RR_TYPE_AAAA:
		return ZA_AAAA;
	default:
		return ZA_OTHER;
	}
}

/* The entry for NAME, added when missing. NULL on ENOMEM. */
static struct zone_name *zone_add(struct zone *z, size_t *cap, const uint8_t *name, size_t len)
{
	struct zone_name *n;
	size_t i;

	for (i = 0; i < z->nnames; i++)
		if (z->names[i].len == len && memcmp(z->names[i].name, name, len) == 0)
			return &z->names[i];
	if (z->nnames == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct zone_name *nn = realloc(z->names, ncap * sizeof(*nn));

		if (!nn)
			return NULL;
		z->names = nn;
		*cap = ncap;
	}
	n = &z->names[z->nnames++];
	memset(n, 0, sizeof(*n));
	memcpy(n->name, name, len);
	n->len = (uint8_t)len;
	n->hash = zone_hash(name, len);
	n->svc = -1;
	return n;
}

/* Glue: NS names inside the zone that have an address. */
static int zone_add_ns(struct zone *z, size_t *cap, const struct conf *conf)
{
	uint8_t w[ZONE_NAME_MAX];
	size_t i, len;

	for (i = 0; i < conf->nns; i++) {
		struct zone_name *n;

		if (!conf->ns[i].has_addr)
			continue;
		if (zone_wire(conf->ns[i].name, w, &len) < 0) {
			log_warnx("dns: bad ns name %s", conf->ns[i].name);
			return -1;
		}
		if (!zone_contains(z, w, len))
			continue;
		if (!(n = zone_add(z, cap, w, len)))
			return -1;
		n->glue = true;
		n->addr = conf->ns[i].addr;
	}
	return 0;
}

/* Service (or front) S's names, as z->svcs[I]. */
static int zone_add_service(struct zone *z, size_t *cap, const struct conf *conf,
                            const struct conf_service *s, size_t i)
{
	uint8_t w[ZONE_NAME_MAX];
	size_t j, len;

	if (!(z->svcs[i].name = strdup(s->name)))
		return -1;
	z->svcs[i].addr = s->address;
	z->svcs[i].addr6 = s->address6;
	z->svcs[i].has_addr6 = s->has_address6;
	z->svcs[i].pattern = s->pattern;
	z->svcs[i].replicas = s->replicas_max > 1 ? s->replicas_max : 1;
	for (j = 0; j < s->ndns && !s->pattern; j++) {
		struct zone_name *n;

		if (zone_wire(s->dns[j], w, &len) < 0 || !zone_contains(z, w, len)) {
			log_warnx("dns: %s: name %s is not in zone %s, ignored", s->name, s->dns[j],
			          conf->zone);
			continue;
		}
		if (!(n = zone_add(z, cap, w, len)))
			return -1;
		if (n->svc >= 0) {
			log_warnx("dns: %s: name %s already belongs to %s", s->name, s->dns[j],
			          z->svcs[n->svc].name);
			continue;
		}
		n->svc = (int)i;
	}
	return 0;
}

/*
 * The services, then the fronts: a front has no instance (launcher_find
 * finds none), so its names are answered with its address and wake nothing;
 * the proxy wakes the service a request's path routes to.
 */
static int zone_add_services(struct zone *z, size_t *cap, const struct conf *conf)
{
	size_t n = conf->nservices + conf->nfronts, i;

	z->svcs = calloc(n ? n : 1, sizeof(*z->svcs));
	if (!z->svcs)
		return -1;
	for (i = 0; i < n; i++, z->nsvcs++)
		if (zone_add_service(z, cap, conf,
		                     i < conf->nservices ? &conf->services[i]
		                                         : &conf->fronts[i - conf->nservices],
		                     i) < 0)
			return -1;
	return 0;
}

/* A pattern's suffix exists (an empty non-terminal) when any name under it does. */
static int zone_add_suffixes(struct zone *z, size_t *cap, const struct conf *conf)
{
	uint8_t w[ZONE_NAME_MAX];
	size_t len;

	for (size_t i = 0; i < conf->nservices; i++) {
		const struct conf_service *s = &conf->services[i];

		if (!s->pattern || s->ndns != 1)
			continue;
		if (zone_wire(s->dns[0] + 2, w, &len) < 0 || !zone_contains(z, w, len)) {
			log_warnx("dns: %s: pattern %s is not in zone %s, ignored", s->name,
			          s->dns[0], conf->zone);
			continue;
		}
		if (!zone_add(z, cap, w, len))
			return -1;
	}
	return 0;
}

/* Empty non-terminals: every name between an entry and the apex exists. */
static int zone_add_ents(struct zone *z, size_t *cap)
{
	uint8_t w[ZONE_NAME_MAX];
	size_t i, len;

	for (i = 0; i < z->nnames; i++) {
		len = z->names[i].len;
		memcpy(w, z->names[i].name, len);
		while (len > z->apexlen) {
			size_t skip = (size_t)w[0] + 1;

			memmove(w, w + skip, len - skip);
			len -= skip;
			if (!zone_add(z, cap, w, len))
				return -1;
		}
	}
	return 0;
}

static int zone_hash_names(struct zone *z)
{
	size_t size = 16, i;

	while (size < z->nnames * 2)
		size *= 2;
	z->slots = calloc(size, sizeof(*z->slots));
	if (!z->slots)
		return -1;
	z->mask = size - 1;
	for (i = 0; i < z->nnames; i++) {
		size_t s = z->names[i].hash & z->mask;

		while (z->slots[s])
			s = (s + 1) & z->mask;
		z->slots[s] = (uint32_t)i + 1;
	}
	return 0;
}

static int zone_fill(struct zone *z, const struct conf *conf)
{
	size_t cap = 0, i;

	if (zone_wire(conf->zone, z->apex, &z->apexlen) < 0) {
		log_warnx("dns: bad zone name %s", conf->zone);
		return -1;
	}
	z->ttl = conf->ttl;
	z->serial = (uint32_t)conf->loaded_at;
	z->hold = conf->hold;
	z->has_forward = conf->has_forward;
	z->forward = conf->forward;
	if (!zone_add(z, &cap, z->apex, z->apexlen) || zone_add_ns(z, &cap, conf) < 0 ||
	    zone_add_services(z, &cap, conf) < 0 || zone_add_suffixes(z, &cap, conf) < 0 ||
	    zone_add_ents(z, &cap) < 0 || zone_hash_names(z) < 0 ||
	    zone_build_nxdomain(z, conf) < 0)
		return -1;
	for (i = 0; i < z->nnames; i++)
		if (zone_build_answers(z, &z->names[i], conf) < 0 ||
		    zone_build_multi(z, &z->names[i], conf) < 0)
			return -1;
	return zone_add_patterns(z, conf);
}

struct zone *zone_new(const struct conf *conf)
{
	struct zone *z = calloc(1, sizeof(*z));

	if (!z)
		goto fail;
	if (zone_fill(z, conf) < 0)
		goto fail;
	return z;
fail:
	log_warnx("dns: cannot build the tables for zone %s", conf->zone);
	zone_free(z);
	return NULL;
}

void zone_free(struct zone *z)
{
	size_t i, k;

	if (!z)
		return;
	for (i = 0; i < z->nnames; i++) {
		for (k = 0; k < ZA_N; k++)
			zone_answer_free(&z->names[i].ans[k]);
		for (k = 0; k < z->names[i].nmulti; k++)
			zone_answer_free(&z->names[i].multi[k]);
		free(z->names[i].multi);
	}
	zone_free_patterns(z);
	for (i = 0; i < z->nsvcs; i++)
		free(z->svcs[i].name);
	free(z->svcs);
	free(z->names);
	free(z->slots);
	free(z->soa_wire);
	free(z);
}
