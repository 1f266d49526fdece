/*
 * The names of pattern services (dns = ( "*.SUFFIX" )): any one label
 * under the suffix. Their answers are prebuilt like every other name's
 * (zone_build.c), once per label length with a filler label, since what
 * follows the question points into it; the A record carries 0.0.0.0, which
 * resolver/pending.c replaces with the instance's address. Whether a label
 * has an instance or an image is the launcher's to say, not the zone's.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "zone.h"

/* A byte no configured name holds: the filler label never matches one in compression. */
#define ZP_FILLER 0xff

/* The answers of pattern P for labels of LEN bytes. */
static int zp_build(struct zone *z, struct zone_pattern *p, size_t len, const struct conf *conf)
{
	struct zone_name *n = calloc(1, sizeof(*n));
	int rc = -1;

	if (n == NULL)
		return -1;
	n->name[0] = (uint8_t)len;
	memset(n->name + 1, ZP_FILLER, len);
	memcpy(n->name + 1 + len, p->suffix, p->len);
	n->len = (uint8_t)(1 + len + p->len);
	n->svc = p->svc;
	n->pattern = true;
	if (zone_build_answers(z, n, conf) == 0) {
		memcpy(p->ans[len - 1], n->ans, sizeof(n->ans));
		rc = 0;
	}
	free(n);
	return rc;
}

int zone_add_patterns(struct zone *z, const struct conf *conf)
{
	size_t n = 0;

	for (size_t i = 0; i < conf->nservices; i++)
		n += conf->services[i].pattern;
	if (n == 0)
		return 0;
	if ((z->patterns = calloc(n, sizeof(*z->patterns))) == NULL)
		return -1;
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct conf_service *s = &conf->services[i];
		struct zone_pattern *p = &z->patterns[z->npatterns];

		if (!s->pattern || s->ndns != 1)
			continue;
		if (zone_wire(s->dns[0] + 2, p->suffix, &p->len) < 0 ||
		    !zone_contains(z, p->suffix, p->len) ||
		    p->len + 1 + ZONE_LABEL_MAX > ZONE_NAME_MAX)
			continue; /* zone_add_suffixes said so */
		p->svc = (int)i;
		z->npatterns++;
		for (size_t len = 1; len <= ZONE_LABEL_MAX; len++)
			if (zp_build(z, p, len, conf) < 0)
				return -1;
	}
	return 0;
}

void zone_free_patterns(struct zone *z)
{
	for (size_t i = 0; i < z->npatterns; i++)
		for (size_t len = 0; len < ZONE_LABEL_MAX; len++)
			for (size_t k = 0; k < ZA_N; k++)
				zone_answer_free(&z->patterns[i].ans[len][k]);
	free(z->patterns);
	z->patterns = NULL;
	z->npatterns = 0;
}

/* Letters, digits and inner hyphens (the name is lower case already). */
static bool zp_label_ok(const uint8_t *l, size_t len)
{
	if (l[0] == '-' || l[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((l[i] >= 'a' && l[i] <= 'z') || (l[i] >= '0' && l[i] <= '9') || l[i] == '-'))
			return false;
	return true;
}

const struct zone_pattern *zone_pattern_match(const struct zone *z, const uint8_t *name, size_t len,
                                              size_t *label_len)
{
	size_t ll;

	if (z->npatterns == 0 || len < 2 || (ll = name[0]) == 0 || ll > ZONE_LABEL_MAX ||
	    ll + 1 >= len || !zp_label_ok(name + 1, ll))
		return NULL;
	for (size_t i = 0; i < z->npatterns; i++) {
		const struct zone_pattern *p = &z->patterns[i];

		if (p->len == len - 1 - ll && memcmp(p->suffix, name + 1 + ll, p->len) == 0) {
			*label_len = ll;
			return p;
		}
	}
	return NULL;
}
