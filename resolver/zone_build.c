/*
 * Prebuilt answers: for each name and question kind, ldns builds the whole
 * response once (question in lower case, no EDNS); what follows the
 * question is kept, and query.c puts the question as asked back in front.
 * Its length does not change, so ldns's compression pointers stay valid.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "log.h"
#include "zone.h"

#define ZB_REFRESH 3600
#define ZB_RETRY 600
#define ZB_EXPIRE 1209600

static ldns_rr *zb_rr(const uint8_t *owner, size_t len, ldns_rr_type type, uint32_t ttl)
{
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *o = ldns_dname_new_frm_data((uint16_t)len, owner);

	if (!rr || !o) {
		ldns_rr_free(rr);
		ldns_rdf_deep_free(o);
		return NULL;
	}
	ldns_rr_set_owner(rr, o);
	ldns_rr_set_type(rr, type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ttl);
	return rr;
}

/* Push RDF onto RR; frees RR and returns NULL when RDF is NULL. */
static ldns_rr *zb_push(ldns_rr *rr, ldns_rdf *rdf)
{
	if (!rr || !rdf || !ldns_rr_push_rdf(rr, rdf)) {
		ldns_rr_free(rr);
		ldns_rdf_deep_free(rdf);
		return NULL;
	}
	return rr;
}

static ldns_rr *zb_a(const uint8_t *owner, size_t len, struct in_addr addr, uint32_t ttl)
{
	return zb_push(zb_rr(owner, len, LDNS_RR_TYPE_A, ttl),
	               ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &addr));
}

static ldns_rr *zb_aaaa(const uint8_t *owner, size_t len, const struct in6_addr *addr, uint32_t ttl)
{
	return zb_push(zb_rr(owner, len, LDNS_RR_TYPE_AAAA, ttl),
	               ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, addr));
}

static ldns_rdf *zb_dname(const char *text)
{
	ldns_rdf *d = ldns_dname_new_frm_str(text);

	if (d)
		ldns_dname2canonical(d);
	return d;
}

static ldns_rr *zb_soa(const struct zone *z, const struct conf *conf)
{
	ldns_rr *rr = zb_rr(z->apex, z->apexlen, LDNS_RR_TYPE_SOA, z->ttl);
	const uint32_t times[] = {ZB_REFRESH, ZB_RETRY, ZB_EXPIRE, z->ttl};
	char rname[300];
	size_t i;

	snprintf(rname, sizeof(rname), "hostmaster.%s", conf->zone);
	if (conf->nns > 0)
		rr = zb_push(rr, zb_dname(conf->ns[0].name));
	else
		rr = zb_push(rr, ldns_dname_new_frm_data((uint16_t)z->apexlen, z->apex));
	rr = zb_push(rr, zb_dname(rname));
	rr = zb_push(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, z->serial));
	for (i = 0; i < 4; i++)
		rr = zb_push(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, times[i]));
	return rr;
}

static bool zb_push_rr(ldns_pkt *p, ldns_pkt_section s, ldns_rr *rr)
{
	if (!rr)
		return false;
	if (!ldns_pkt_push_rr(p, s, rr)) {
		ldns_rr_free(rr);
		return false;
	}
	return true;
}

/* NS records at the apex, and the glue for those inside the zone. */
static bool zb_ns(ldns_pkt *p, const struct zone *z, const struct conf *conf, bool glue)
{
	size_t i;

	for (i = 0; i < conf->nns; i++) {
		ldns_rr *rr = zb_rr(z->apex, z->apexlen, LDNS_RR_TYPE_NS, z->ttl);

		if (!zb_push_rr(p, LDNS_SECTION_ANSWER, zb_push(rr, zb_dname(conf->ns[i].name))))
			return false;
	}
	for (i = 0; glue && i < conf->nns; i++) {
		const uint8_t *w;
		ldns_rdf *d;
		bool ok = true;

		if (!conf->ns[i].has_addr)
			continue;
		if (!(d = zb_dname(conf->ns[i].name)))
			return false;
		w = ldns_rdf_data(d);
		if (zone_contains(z, w, ldns_rdf_size(d)))
			ok = zb_push_rr(p, LDNS_SECTION_ADDITIONAL,
			                zb_a(w, ldns_rdf_size(d), conf->ns[i].addr, z->ttl));
		ldns_rdf_deep_free(d);
		if (!ok)
			return false;
	}
	return true;
}

static bool zb_addr(const struct zone *z, const struct zone_name *n, struct in_addr *a)
{
	if (n->svc >= 0)
		*a = z->svcs[n->svc].addr;
	else if (n->glue)
		*a = n->addr;
	else
		return false;
	return true;
}

/* The records of one answer; an empty answer gets the SOA in authority. */
static bool zb_records(ldns_pkt *p, const struct zone *z, const struct zone_name *n,
                       enum zone_qkind k, const struct conf *conf, bool glue)
{
	bool apex = n->len == z->apexlen && memcmp(n->name, z->apex, n->len) == 0;
	struct in_addr a;

	if (apex && (k == ZA_SOA || k == ZA_ANY) &&
	    !zb_push_rr(p, LDNS_SECTION_ANSWER, zb_soa(z, conf)))
		return false;
	if (apex && (k == ZA_NS || k == ZA_ANY) && !zb_ns(p, z, conf, glue))
		return false;
	if (k == ZA_A && n->acount > 1) {
		/* Placeholders 0.0.0.1 .. 0.0.0.N, patched with the replicas' addresses. */
		for (uint8_t i = 1; i <= n->acount; i++) {
			a.s_addr = htonl(i);
			if (!zb_push_rr(p, LDNS_SECTION_ANSWER, zb_a(n->name, n->len, a, z->ttl)))
				return false;
		}
	} else if ((k == ZA_A || (k == ZA_ANY && !n->pattern)) && zb_addr(z, n, &a) &&
	           !zb_push_rr(p, LDNS_SECTION_ANSWER, zb_a(n->name, n->len, a, z->ttl)))
		return false;
	/* A service without address6 has no AAAA: NODATA, the SOA below. */
	if ((k == ZA_AAAA || k == ZA_ANY) && n->svc >= 0 && z->svcs[n->svc].has_addr6 &&
	    !zb_push_rr(p, LDNS_SECTION_ANSWER,
	                zb_aaaa(n->name, n->len, &z->svcs[n->svc].addr6, z->ttl)))
		return false;
	if (ldns_pkt_ancount(p) == 0 && !zb_push_rr(p, LDNS_SECTION_AUTHORITY, zb_soa(z, conf)))
		return false;
	return true;
}

static const uint16_t zb_qtypes[ZA_N] = {LDNS_RR_TYPE_A,   LDNS_RR_TYPE_NS,   LDNS_RR_TYPE_SOA,
                                         LDNS_RR_TYPE_ANY, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_TXT};

/* The wire form of one response. NULL on failure. */
static uint8_t *zb_wire(const struct zone *z, const struct zone_name *n, enum zone_qkind k,
                        const struct conf *conf, bool glue, size_t *len)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *q = zb_rr(n->name, n->len, zb_qtypes[k], 0);
	uint8_t *wire = NULL;

	if (!p || !q)
		goto done;
	ldns_rr_set_question(q, true);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_aa(p, true);
	ldns_pkt_set_opcode(p, LDNS_PACKET_QUERY);
	ldns_pkt_set_rcode(p, LDNS_RCODE_NOERROR);
	if (!ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q))
		goto done;
	q = NULL;
	if (!zb_records(p, z, n, k, conf, glue) || ldns_pkt2wire(&wire, p, len) != LDNS_STATUS_OK)
		wire = NULL;
done:
	ldns_rr_free(q);
	ldns_pkt_free(p);
	return wire;
}

static int zb_answer(struct zone_answer *a, const struct zone *z, const struct zone_name *n,
                     enum zone_qkind k, const struct conf *conf)
{
	size_t qend = 12 + (size_t)n->len + 4, len, len2;
	uint8_t *full = zb_wire(z, n, k, conf, true, &len);
	uint8_t *noad = zb_wire(z, n, k, conf, false, &len2);
	uint8_t *rest = NULL;
	int rc = -1;

	if (!full || !noad || len < qend || len > 65535 || memcmp(full + 12, n->name, n->len) != 0)
		goto done;
	if (!(rest = malloc(len - qend + 1)))
		goto done;
	memcpy(a->hdr, full, 12);
	memcpy(rest, full + qend, len - qend);
	a->rest = rest;
	a->restlen = (uint16_t)(len - qend);
	/* Dropping glue is only safe when the rest is a byte-for-byte prefix. */
	if (len2 >= qend && len2 <= len && memcmp(full + 12, noad + 12, len2 - 12) == 0)
		a->rest_noad = (uint16_t)(len2 - qend);
	else
		a->rest_noad = a->restlen;
	rc = 0;
done:
	free(full);
	free(noad);
	return rc;
}

int zone_build_answers(struct zone *z, struct zone_name *n, const struct conf *conf)
{
	int k;

	for (k = 0; k < ZA_N; k++)
		if (zb_answer(&n->ans[k], z, n, (enum zone_qkind)k, conf) < 0)
			return -1;
	return 0;
}

int zone_build_multi(struct zone *z, struct zone_name *n, const struct conf *conf)
{
	unsigned r = n->svc >= 0 ? z->svcs[n->svc].replicas : 0;
	int rc = 0;

	if (r < 2)
		return 0;
	if ((n->multi = calloc(r - 1, sizeof(*n->multi))) == NULL)
		return -1;
	for (unsigned k = 2; k <= r && rc == 0; k++) {
		n->acount = (uint8_t)k;
		rc = zb_answer(&n->multi[k - 2], z, n, ZA_A, conf);
		n->nmulti = (uint8_t)(k - 1);
	}
	n->acount = 0;
	return rc;
}

/* NXDOMAIN: header, then the SOA uncompressed, as it follows any question. */
int zone_build_nxdomain(struct zone *z, const struct conf *conf)
{
	ldns_rr *soa = zb_soa(z, conf);
	size_t len = 0;
	int rc = -1;

	if (!soa || ldns_rr2wire(&z->soa_wire, soa, LDNS_SECTION_AUTHORITY, &len) != LDNS_STATUS_OK)
		goto done;
	memset(z->nxdomain.hdr, 0, 12);
	z->nxdomain.hdr[2] = 0x84; /* QR, AA */
	z->nxdomain.hdr[3] = LDNS_RCODE_NXDOMAIN;
	z->nxdomain.hdr[5] = 1; /* QDCOUNT */
	z->nxdomain.hdr[9] = 1; /* NSCOUNT */
	z->nxdomain.rest = z->soa_wire;
	z->nxdomain.restlen = (uint16_t)len;
	z->nxdomain.rest_noad = (uint16_t)len;
	rc = 0;
done:
	ldns_rr_free(soa);
	return rc;
}

void zone_answer_free(struct zone_answer *a)
{
	free((void *)a->rest);
	a->rest = NULL;
}
