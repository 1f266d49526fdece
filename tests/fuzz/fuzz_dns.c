/*
 * libFuzzer target for the DNS query path: every input is processed as a
 * UDP and as a TCP query against a small zone. Checks: answers are
 * well-formed DNS (ldns reads them back), within the client's limit, carry
 * the query's ID; and the fast parser (wire.c) agrees with ldns on every
 * packet it accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <ldns/ldns.h>

#include "conf.h"
#include "query.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *www_dns[] = {"www.svc.test", "svc.test", "a.b.c.svc.test"};

static struct zone *fuzz_zone(void)
{
	static struct conf_service svc;
	static struct conf conf;

	conf.zone = "svc.test";
	conf.ttl = 30;
	conf.loaded_at = 1700000000;
	conf.hold = CONF_HOLD_NONE;
	conf.nns = 2;
	conf.ns[0].name = "ns1.svc.test";
	conf.ns[0].has_addr = true;
	inet_pton(AF_INET, "127.0.0.1", &conf.ns[0].addr);
	conf.ns[1].name = "ns.example.org";
	svc.name = "www";
	svc.dns = www_dns;
	svc.ndns = 3;
	inet_pton(AF_INET, "10.77.0.2", &svc.address);
	conf.services = &svc;
	conf.nservices = 1;
	return zone_new(&conf);
}

/* The fast parser's reading must be ldns's reading. */
static void fuzz_differential(const uint8_t *data, size_t size)
{
	static struct query q;
	ldns_pkt *p = NULL;
	ldns_rr *qr;

	if (size < 12 || !wire_parse(&q, data, size))
		return;
	if (ldns_wire2pkt(&p, data, size) != LDNS_STATUS_OK)
		abort();
	qr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	if (!qr || ldns_rdf_size(ldns_rr_owner(qr)) != q.k.qnamelen ||
	    memcmp(ldns_rdf_data(ldns_rr_owner(qr)), q.k.qname, q.k.qnamelen) != 0 ||
	    ldns_rr_get_type(qr) != q.k.qtype || ldns_rr_get_class(qr) != q.k.qclass ||
	    ldns_pkt_edns(p) != q.k.edns ||
	    (q.k.edns && ldns_pkt_edns_udp_size(p) != q.k.edns_size))
		abort();
	ldns_pkt_free(p);
}

static void fuzz_one(const struct zone *z, const uint8_t *data, size_t size, bool tcp)
{
	static uint8_t out[QUERY_TCP_MAX];
	static struct query q;
	enum query_state st;
	ldns_pkt *p = NULL;

	q.out = out;
	q.outcap = tcp ? QUERY_TCP_MAX : QUERY_EDNS_SIZE;
	st = query_process(&q, z, data, size, tcp);
	if (st == QUERY_DROP || st == QUERY_FORWARD)
		return;
	if (q.outlen < 12 || q.outlen > q.outcap || q.outlen > query_limit(&q.k))
		abort();
	if (out[0] != data[0] || out[1] != data[1] || !(out[2] & 0x80))
		abort();
	if (ldns_wire2pkt(&p, out, q.outlen) != LDNS_STATUS_OK)
		abort();
	ldns_pkt_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zone *z;

	if (!z && !(z = fuzz_zone()))
		abort();
	fuzz_differential(data, size);
	fuzz_one(z, data, size, false);
	fuzz_one(z, data, size, true);
	return 0;
}
