/*
 * From query to answer: header checks, parsing (wire.c's fast parser, else
 * ldns), then the answer from the zone's tables.
 */
#include <string.h>

#include <ldns/ldns.h>

#include "query.h"

#define QUERY_BADVERS_HI 1 /* BADVERS (16) >> 4 */

void query_error(struct query *q, uint8_t rcode)
{
	struct zone_answer e;

	memset(&e, 0, sizeof(e));
	e.hdr[2] = 0x80;
	e.hdr[3] = rcode & 0x0f;
	wire_emit(q, &e);
}

void query_tc(struct query *q, const uint8_t *hdr)
{
	struct zone_answer e;

	memset(&e, 0, sizeof(e));
	e.hdr[2] = (uint8_t)(0x80 | (hdr ? hdr[2] & 0x04 : 0));
	e.hdr[3] = hdr ? hdr[3] & 0x0f : 0;
	wire_emit(q, &e);
	q->out[2] |= 0x02;
}

static void query_badvers(struct query *q)
{
	struct zone_answer e;

	memset(&e, 0, sizeof(e));
	e.hdr[2] = 0x80;
	e.ext_rcode = QUERY_BADVERS_HI;
	wire_emit(q, &e);
}

/* The slow path: anything the fast parser does not take. -1 when unparseable. */
static int query_parse_ldns(struct query *q, const uint8_t *pkt, size_t len)
{
	ldns_pkt *p = NULL;
	ldns_rr *qr;
	ldns_rdf *owner;
	int rc = -1;

	/*
	 * One additional record at most (a query's OPT): more are refused
	 * before ldns reads them, as ldns leaks a TSIG record that a second one
	 * replaces (found by fuzz_dns). beckon signs nothing and checks no TSIG.
	 */
	if (len < 12 || pkt[10] != 0 || pkt[11] > 1)
		return -1;
	if (ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK)
		return -1;
	if (ldns_rr_list_rr_count(ldns_pkt_question(p)) != 1)
		goto done;
	qr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	owner = ldns_rr_owner(qr);
	if (!owner || ldns_rdf_size(owner) < 1 || ldns_rdf_size(owner) > ZONE_NAME_MAX)
		goto done;
	memcpy(q->k.qname, ldns_rdf_data(owner), ldns_rdf_size(owner));
	q->k.qnamelen = (uint16_t)ldns_rdf_size(owner);
	q->k.qtype = ldns_rr_get_type(qr);
	q->k.qclass = ldns_rr_get_class(qr);
	q->k.edns = ldns_pkt_edns(p);
	q->k.edns_size = ldns_pkt_edns_udp_size(p);
	q->k.edns_version = ldns_pkt_edns_version(p);
	q->k.edns_do = ldns_pkt_edns_do(p);
	wire_lower(q);
	rc = 0;
done:
	ldns_pkt_free(p);
	return rc;
}

static void query_reset(struct query *q, const uint8_t *pkt, bool tcp)
{
	q->svc = NULL;
	q->outlen = 0;
	q->k.tcp = tcp;
	q->k.qnamelen = 0;
	q->k.edns = false;
	q->k.id = (uint16_t)(pkt[0] << 8 | pkt[1]);
	q->k.flags1 = pkt[2];
	q->k.flags2 = pkt[3];
}

enum query_state query_process(struct query *q, const struct zone *z, const uint8_t *pkt,
                               size_t len, bool tcp)
{
	if (len < 12 || (pkt[2] & 0x80)) /* no header, or a response */
		return QUERY_DROP;
	query_reset(q, pkt, tcp);
	if (((pkt[2] >> 3) & 0x0f) != LDNS_PACKET_QUERY) {
		wire_parse(q, pkt, len); /* echo the question when it reads */
		query_error(q, LDNS_RCODE_NOTIMPL);
		return QUERY_ANSWER;
	}
	if ((pkt[4] << 8 | pkt[5]) != 1) {
		query_error(q, LDNS_RCODE_FORMERR);
		return QUERY_ANSWER;
	}
	if (!wire_parse(q, pkt, len) && query_parse_ldns(q, pkt, len) < 0) {
		q->k.qnamelen = 0;
		q->k.edns = false;
		query_error(q, LDNS_RCODE_FORMERR);
		return QUERY_ANSWER;
	}
	return query_answer(q, z);
}

/* Question types that are no plain lookup. */
static int query_type_rcode(uint16_t qtype)
{
	switch (qtype) {
	case LDNS_RR_TYPE_OPT:
	case LDNS_RR_TYPE_TSIG:
	case LDNS_RR_TYPE_TKEY:
		return LDNS_RCODE_FORMERR;
	case LDNS_RR_TYPE_AXFR:
	case LDNS_RR_TYPE_IXFR:
		return LDNS_RCODE_REFUSED;
	default:
		return -1;
	}
}

/* A name not in the tables: under a pattern, else NXDOMAIN. */
static enum query_state query_pattern(struct query *q, const struct zone *z)
{
	const struct zone_pattern *p;
	enum zone_qkind kind = zone_qkind(q->k.qtype);
	size_t ll;

	if ((p = zone_pattern_match(z, q->lname, q->k.qnamelen, &ll)) == NULL) {
		wire_emit(q, &z->nxdomain);
		return QUERY_ANSWER;
	}
	wire_emit(q, &p->ans[ll - 1][kind]);
	memcpy(q->label, q->lname + 1, ll);
	q->label[ll] = '\0';
	q->svc = &z->svcs[p->svc];
	return kind == ZA_A ? QUERY_WAKE : QUERY_ANSWER;
}

enum query_state query_answer(struct query *q, const struct zone *z)
{
	const struct zone_name *n;
	enum zone_qkind kind;
	int rc;

	q->svc = NULL;
	q->zn = NULL;
	q->label[0] = '\0';
	if (q->k.edns && q->k.edns_version > 0) {
		query_badvers(q);
		return QUERY_ANSWER;
	}
	if (!zone_contains(z, q->lname, q->k.qnamelen)) {
		if (z->has_forward)
			return QUERY_FORWARD;
		query_error(q, LDNS_RCODE_REFUSED);
		return QUERY_ANSWER;
	}
	rc = q->k.qclass == LDNS_RR_CLASS_IN ? query_type_rcode(q->k.qtype) : LDNS_RCODE_REFUSED;
	if (rc >= 0) {
		query_error(q, (uint8_t)rc);
		return QUERY_ANSWER;
	}
	n = zone_lookup(z, q->lname, q->k.qnamelen, q->hash);
	if (!n)
		return query_pattern(q, z);
	kind = zone_qkind(q->k.qtype);
	q->zn = n;
	wire_emit(q, &n->ans[kind]);
	if (n->svc < 0)
		return QUERY_ANSWER;
	q->svc = &z->svcs[n->svc];
	/* An AAAA query wakes a service that has one: the client connects over IPv6 next. */
	return kind == ZA_A || kind == ZA_ANY || (kind == ZA_AAAA && q->svc->has_addr6)
	           ? QUERY_WAKE
	           : QUERY_ANSWER;
}
