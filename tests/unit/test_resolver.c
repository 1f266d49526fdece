/*
 * query_process without sockets: a config built by hand, queries built with
 * ldns or by hand (for the broken ones), answers read back with ldns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "conf.h"
#include "query.h"
#include "zone.h"

#define SERIAL 1700000000

static char *www_dns[] = {"www.svc.test", "svc.test"};
static char *api_dns[] = {"api.svc.test", "a.deep.svc.test"};
static char *out_dns[] = {"www.elsewhere.test"};

struct fixture {
	struct conf conf;
	struct conf_service svcs[3];
	struct zone *z;
	struct query q;
	uint8_t out[QUERY_TCP_MAX];
};

static void add_ns(struct conf *c, const char *name, const char *addr)
{
	struct conf_ns *ns = &c->ns[c->nns++];

	ns->name = (char *)name;
	ns->has_addr = addr != NULL;
	if (addr)
		inet_pton(AF_INET, addr, &ns->addr);
}

static void base_conf(struct fixture *f)
{
	struct conf *c = &f->conf;

	memset(f, 0, sizeof(*f));
	c->zone = "svc.test";
	c->ttl = 30;
	c->loaded_at = SERIAL;
	c->hold = CONF_HOLD_NONE;
	add_ns(c, "ns1.svc.test", "127.0.0.1");
	add_ns(c, "ns2.other.test", "127.0.0.9");
	f->svcs[0].name = "www";
	f->svcs[0].dns = www_dns;
	f->svcs[0].ndns = 2;
	inet_pton(AF_INET, "10.77.0.2", &f->svcs[0].address);
	f->svcs[1].name = "api";
	f->svcs[1].dns = api_dns;
	f->svcs[1].ndns = 2;
	inet_pton(AF_INET, "10.77.0.3", &f->svcs[1].address);
	f->svcs[2].name = "stray";
	f->svcs[2].dns = out_dns;
	f->svcs[2].ndns = 1;
	c->services = f->svcs;
	c->nservices = 3;
}

static int setup(void **state)
{
	struct fixture *f = malloc(sizeof(*f));

	base_conf(f);
	f->z = zone_new(&f->conf);
	if (!f->z)
		return -1;
	f->q.out = f->out;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	zone_free(f->z);
	free(f);
	return 0;
}

/* Run PKT through query_process; the answer's wire is in f->out. */
static enum query_state run(struct fixture *f, const uint8_t *pkt, size_t len, bool tcp)
{
	f->q.outcap = tcp ? QUERY_TCP_MAX : QUERY_EDNS_SIZE;
	return query_process(&f->q, f->z, pkt, len, tcp);
}

/* A query built with ldns; EDNS when edns_size > 0. */
static enum query_state ask(struct fixture *f, const char *name, ldns_rr_type t, uint16_t edns_size,
                            bool tcp)
{
	ldns_pkt *p = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	enum query_state st;

	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, t, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 0x1234);
	if (edns_size) {
		ldns_pkt_set_edns_udp_size(p, edns_size);
		ldns_pkt_set_edns_do(p, true);
	}
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	st = run(f, wire, len, tcp);
	free(wire);
	ldns_pkt_free(p);
	return st;
}

static ldns_pkt *answer(struct fixture *f)
{
	ldns_pkt *p = NULL;

	assert_true(f->q.outlen >= 12);
	assert_int_equal(ldns_wire2pkt(&p, f->out, f->q.outlen), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(p), 0x1234);
	assert_true(ldns_pkt_qr(p));
	return p;
}

static void assert_a(const ldns_rr *rr, const char *addr, uint32_t ttl)
{
	char *s;

	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
	assert_int_equal(ldns_rr_ttl(rr), ttl);
	s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
	assert_string_equal(s, addr);
	free(s);
}

static void assert_soa_authority(ldns_pkt *p)
{
	assert_int_equal(ldns_pkt_ancount(p), 0);
	assert_int_equal(ldns_pkt_nscount(p), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(p), 0)),
	                 LDNS_RR_TYPE_SOA);
}

static void test_service_a(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
	assert_non_null(f->q.svc);
	assert_string_equal(f->q.svc->name, "www");
	p = answer(f);
	assert_true(ldns_pkt_aa(p));
	assert_true(ldns_pkt_rd(p));
	assert_false(ldns_pkt_tc(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "10.77.0.2", 30);
	ldns_pkt_free(p);
}

/* A guest on another host: its A answer carries its address there (hold "none"). */
static void test_patch_a(void **state)
{
	struct fixture *f = *state;
	struct in_addr from, to;
	ldns_pkt *p;

	inet_pton(AF_INET, "10.77.0.2", &from);
	inet_pton(AF_INET, "10.88.1.2", &to);
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 1232, false), QUERY_WAKE);
	assert_true(wire_patch_a(&f->q, from, to));
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "10.88.1.2", 30);
	assert_int_equal(ldns_pkt_edns_udp_size(p), 1232); /* the OPT record intact */
	ldns_pkt_free(p);
	/* Not the address asked for, no A record, or an empty answer: nothing changes. */
	assert_false(wire_patch_a(&f->q, from, to));
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_AAAA, 0, false), QUERY_ANSWER);
	assert_false(wire_patch_a(&f->q, from, to));
	assert_int_equal(ask(f, "nosuch.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	assert_false(wire_patch_a(&f->q, from, to));
}

static void test_case_echoed(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;
	char *s;

	assert_int_equal(ask(f, "wWw.SvC.TEST.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
	p = answer(f);
	s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	assert_string_equal(s, "wWw.SvC.TEST.");
	free(s);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "10.77.0.2", 30);
	ldns_pkt_free(p);
}

static void test_nodata(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_AAAA, 0, false), QUERY_ANSWER);
	assert_non_null(f->q.svc); /* activity still counts */
	p = answer(f);
	assert_true(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_soa_authority(p);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0)),
	                 LDNS_RR_TYPE_AAAA);
	ldns_pkt_free(p);
}

/* api has address6: AAAA answers it and wakes; ANY carries both; www (none) stays NODATA. */
static void test_aaaa(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;
	char *s;

	zone_free(f->z);
	inet_pton(AF_INET6, "fd77::3", &f->svcs[1].address6);
	f->svcs[1].has_address6 = true;
	f->z = zone_new(&f->conf);
	assert_non_null(f->z);

	assert_int_equal(ask(f, "A.Deep.svc.test.", LDNS_RR_TYPE_AAAA, 1232, false), QUERY_WAKE);
	assert_string_equal(f->q.svc->name, "api");
	p = answer(f);
	assert_true(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 0)),
	                 LDNS_RR_TYPE_AAAA);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 30);
	s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	assert_string_equal(s, "fd77::3");
	free(s);
	s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(p), 0)));
	assert_string_equal(s, "A.Deep.svc.test.");
	free(s);
	ldns_pkt_free(p);

	assert_int_equal(ask(f, "api.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "10.77.0.3", 30);
	ldns_pkt_free(p);

	assert_int_equal(ask(f, "api.svc.test.", LDNS_RR_TYPE_ANY, 0, false), QUERY_WAKE);
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "10.77.0.3", 30);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 1)),
	                 LDNS_RR_TYPE_AAAA);
	ldns_pkt_free(p);

	/* Without address6: NODATA, and no wake (nothing to connect to over IPv6). */
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_AAAA, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_soa_authority(p);
	ldns_pkt_free(p);
	/* A type it has not: NODATA still. */
	assert_int_equal(ask(f, "api.svc.test.", LDNS_RR_TYPE_TXT, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_soa_authority(p);
	ldns_pkt_free(p);
}

static void test_nxdomain(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"nope.svc.test.", "x.www.svc.test.", "ns2.svc.test."};
	ldns_pkt *p;
	size_t i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(ask(f, names[i], LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
		assert_null(f->q.svc);
		p = answer(f);
		assert_true(ldns_pkt_aa(p));
		assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
		assert_soa_authority(p);
		ldns_pkt_free(p);
	}
}

static void test_empty_non_terminal(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "deep.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_soa_authority(p);
	ldns_pkt_free(p);
	assert_int_equal(ask(f, "a.deep.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
	assert_string_equal(f->q.svc->name, "api");
}

static void test_apex_soa(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;
	ldns_rr *soa;
	char *s;

	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_SOA, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_true(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_ancount(p), 1);
	soa = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
	s = ldns_rr2str(soa);
	assert_non_null(strstr(s, "ns1.svc.test. hostmaster.svc.test. 1700000000 "));
	assert_non_null(strstr(s, " 30\n"));
	free(s);
	ldns_pkt_free(p);
}

static void test_apex_ns_glue(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;
	char *s;

	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_NS, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 1), 0));
	assert_string_equal(s, "ns2.other.test.");
	free(s);
	/* Glue only for the NS name inside the zone. */
	assert_int_equal(ldns_pkt_arcount(p), 1);
	s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_additional(p), 0)));
	assert_string_equal(s, "ns1.svc.test.");
	free(s);
	assert_a(ldns_rr_list_rr(ldns_pkt_additional(p), 0), "127.0.0.1", 30);
	ldns_pkt_free(p);
}

static void test_ns_name_glue_address(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "NS1.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "127.0.0.1", 30);
	ldns_pkt_free(p);
}

static void test_apex_any(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	/* The apex is also a name of www: SOA, two NS, A; glue after. */
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_ANY, 0, false), QUERY_WAKE);
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 4);
	assert_int_equal(ldns_pkt_arcount(p), 1);
	ldns_pkt_free(p);
}

static void test_out_of_zone(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "example.com.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	assert_false(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	ldns_pkt_free(p);
	/* A service name outside the zone is not served. */
	assert_int_equal(ask(f, "www.elsewhere.test.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	ldns_pkt_free(p);
	/* A name that only ends like the zone is not in it. */
	assert_int_equal(ask(f, "xsvc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	ldns_pkt_free(p);
}

static void test_forward(void **state)
{
	struct fixture *f = *state;
	struct zone *z;

	f->conf.has_forward = true;
	conf_parse_hostport("127.0.0.1:53", &f->conf.forward);
	z = zone_new(&f->conf);
	assert_non_null(z);
	zone_free(f->z);
	f->z = z;
	assert_int_equal(ask(f, "example.com.", LDNS_RR_TYPE_A, 0, false), QUERY_FORWARD);
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
}

static void test_edns(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 4096, false), QUERY_WAKE);
	p = answer(f);
	assert_true(ldns_pkt_edns(p));
	assert_int_equal(ldns_pkt_edns_udp_size(p), 1232);
	assert_true(ldns_pkt_edns_do(p));
	assert_int_equal(ldns_pkt_edns_version(p), 0);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);
	/* No OPT in, none out. */
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
	p = answer(f);
	assert_false(ldns_pkt_edns(p));
	ldns_pkt_free(p);
}

/* Header + www.svc.test A + OPT with VERSION. */
static size_t query_bytes(uint8_t *b, uint8_t version, uint16_t flags)
{
	static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0,   1, 0,   0,   0,   0, 0,
	                            1,    3,    'w',  'w',  'w', 3, 's', 'v', 'c', 4, 't',
	                            'e',  's',  't',  0,    0,   1, 0,   1,   0,   0, 41,
	                            0x04, 0xd0, 0,    0,    0,   0, 0,   0};

	memcpy(b, q, sizeof(q));
	b[2] = (uint8_t)(flags >> 8);
	b[3] = (uint8_t)flags;
	b[sizeof(q) - 5] = version;
	return sizeof(q);
}

static void test_badvers(void **state)
{
	struct fixture *f = *state;
	uint8_t b[64];
	size_t len = query_bytes(b, 1, 0x0100);
	ldns_pkt *p;

	assert_int_equal(run(f, b, len, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_edns_extended_rcode(p), 1); /* BADVERS = 16 */
	assert_int_equal(ldns_pkt_get_rcode(p), 0);
	assert_int_equal(ldns_pkt_edns_version(p), 0);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
}

static void test_drop(void **state)
{
	struct fixture *f = *state;
	uint8_t b[64];
	size_t len = query_bytes(b, 0, 0x8100); /* QR set: a response */

	assert_int_equal(run(f, b, len, false), QUERY_DROP);
	assert_int_equal(run(f, b, 11, false), QUERY_DROP);
	assert_int_equal(run(f, b, 0, false), QUERY_DROP);
}

static void test_notimp(void **state)
{
	struct fixture *f = *state;
	uint8_t b[64];
	size_t len = query_bytes(b, 0, 0x1100); /* opcode 2, STATUS */
	ldns_pkt *p;

	assert_int_equal(run(f, b, len, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTIMPL);
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_STATUS);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
}

static void assert_formerr(struct fixture *f, const uint8_t *b, size_t len)
{
	assert_int_equal(run(f, b, len, false), QUERY_ANSWER);
	assert_int_equal(f->q.outlen, 12);
	assert_int_equal(f->out[0], b[0]);
	assert_int_equal(f->out[1], b[1]);
	assert_int_equal(f->out[2] & 0x80, 0x80);
	assert_int_equal(f->out[3] & 0x0f, LDNS_RCODE_FORMERR);
}

static void test_formerr(void **state)
{
	struct fixture *f = *state;
	uint8_t b[600];
	size_t len = query_bytes(b, 0, 0x0100), i;

	assert_formerr(f, b, 20); /* question cut short */
	b[5] = 2;                 /* QDCOUNT 2 */
	assert_formerr(f, b, len);
	b[5] = 0; /* QDCOUNT 0 */
	assert_formerr(f, b, len);
	/* A compression pointer to itself. */
	len = query_bytes(b, 0, 0x0100);
	b[12] = 0xc0, b[13] = 12;
	assert_formerr(f, b, len);
	/* A label of 64 bytes. */
	memset(b, 0, sizeof(b));
	b[0] = 0x12, b[1] = 0x34, b[5] = 1, b[12] = 64;
	for (i = 0; i < 64; i++)
		b[13 + i] = 'a';
	b[13 + 64] = 0, b[13 + 66] = 1, b[13 + 68] = 1;
	assert_formerr(f, b, 13 + 69);
	/* A name over 255 bytes: five labels of 63. */
	memset(b, 0, sizeof(b));
	b[0] = 0x12, b[1] = 0x34, b[5] = 1;
	for (i = 0; i < 5; i++) {
		b[12 + i * 64] = 63;
		memset(b + 13 + i * 64, 'a', 63);
	}
	b[12 + 320 + 2] = 1, b[12 + 320 + 4] = 1;
	assert_formerr(f, b, 12 + 325);
}

/*
 * A query with 256 additional records, TSIG-shaped (the input with which
 * fuzz_dns found ldns leaking, through the slow path): FORMERR. (Run
 * here, it did not leak before the fix either; fuzz_dns on the input did.)
 */
static void test_two_tsig(void **state)
{
	struct fixture *f = *state;
	static const uint8_t b[] = {
	    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x00, 0x03, 0x73, 0x76, 0x63, 0x04, 0x73, 0x65, 0x74, 0x74,
	    0x00, 0x00, 0xfa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0xd8, 0xf5, 0x00, 0x00, 0x00, 0x00, 0x03, 0x73, 0x76, 0x63, 0x04,
	    0x73, 0x65, 0x74, 0x74, 0x00, 0x00, 0xfa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd8, 0xf5,
	};

	assert_formerr(f, b, sizeof(b));
}

static void test_slow_path(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p = NULL, *a;
	uint8_t *wire = NULL;
	size_t len = 0;
	ldns_rr *rr = NULL;

	/* An answer-section record in a query: not the fast parser's shape. */
	assert_int_equal(ldns_pkt_query_new_frm_str(&p, "WWW.svc.test.", LDNS_RR_TYPE_A,
	                                            LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 0x1234);
	assert_int_equal(ldns_rr_new_frm_str(&rr, "x.example. 60 IN A 1.2.3.4", 0, NULL, NULL),
	                 LDNS_STATUS_OK);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	ldns_pkt_set_edns_udp_size(p, 1400);
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	assert_int_equal(wire_parse(&f->q, wire, len), 0);
	assert_int_equal(run(f, wire, len, false), QUERY_WAKE);
	a = answer(f);
	assert_int_equal(ldns_pkt_ancount(a), 1);
	assert_true(ldns_pkt_edns(a));
	assert_int_equal(ldns_pkt_edns_udp_size(a), 1232);
	ldns_pkt_free(a);
	free(wire);
	ldns_pkt_free(p);
}

static void test_class(void **state)
{
	struct fixture *f = *state;
	uint8_t b[64];
	size_t len = query_bytes(b, 0, 0x0100);
	ldns_pkt *p;

	b[28] = 3; /* CHAOS */
	assert_int_equal(run(f, b, len, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	ldns_pkt_free(p);
}

/* N NS names with three labels of LABEL bytes, each its own (no compression between them). */
static void long_ns(struct fixture *f, size_t n, size_t label_len)
{
	static char names[8][256];
	struct zone *z;
	size_t i;

	f->conf.nns = 0;
	for (i = 0; i < n; i++) {
		char label[64];

		memset(label, (int)('a' + i), label_len);
		label[label_len] = '\0';
		snprintf(names[i], sizeof(names[i]), "ns%zu.%s.%s.%s.svc.test", i, label, label,
		         label);
		add_ns(&f->conf, names[i], "127.0.0.1");
	}
	z = zone_new(&f->conf);
	assert_non_null(z);
	zone_free(f->z);
	f->z = z;
}

static void test_truncation(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	long_ns(f, 8, 60);
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_NS, 0, false), QUERY_ANSWER);
	assert_true(f->q.outlen <= 512);
	p = answer(f);
	assert_true(ldns_pkt_tc(p));
	assert_int_equal(ldns_pkt_ancount(p), 0);
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	ldns_pkt_free(p);
	/* EDNS 4096: no more than 1232 over UDP, still too small. */
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_NS, 4096, false), QUERY_ANSWER);
	assert_true(f->q.outlen <= 1232);
	p = answer(f);
	assert_true(ldns_pkt_tc(p));
	assert_true(ldns_pkt_edns(p));
	ldns_pkt_free(p);
	/* TCP: everything. */
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_NS, 0, true), QUERY_ANSWER);
	assert_true(f->q.outlen > 1232);
	p = answer(f);
	assert_false(ldns_pkt_tc(p));
	assert_int_equal(ldns_pkt_ancount(p), 8);
	assert_int_equal(ldns_pkt_arcount(p), 8);
	ldns_pkt_free(p);
}

/* What a client may receive: 512 without EDNS, its EDNS size (512 at least, 1232 at most) with. */
static size_t want_limit(uint16_t edns, bool tcp)
{
	if (tcp)
		return QUERY_TCP_MAX;
	if (edns == 0 || edns <= 512)
		return 512;
	return edns < 1232 ? edns : 1232;
}

/*
 * Every answer over UDP keeps to the query's limit, whatever the zone: up
 * to eight NS names of up to 200 bytes (answers of 2 KB and more), every
 * question kind, sizes from none to 4096. Either the whole answer (as TCP
 * gives it) goes out, or TC says it did not.
 */
static void test_size_limits(void **state)
{
	static const uint16_t sizes[] = {0,    512,  513,  600,  900,  1000,
	                                 1231, 1232, 1233, 4096, 65535};
	static const ldns_rr_type types[] = {LDNS_RR_TYPE_NS, LDNS_RR_TYPE_SOA, LDNS_RR_TYPE_ANY,
	                                     LDNS_RR_TYPE_A, LDNS_RR_TYPE_TXT};
	static const size_t labels[] = {5, 30, 60};
	struct fixture *f = *state;
	size_t n, l, s, t, full;
	ldns_pkt *p;

	for (n = 1; n <= 8; n++)
		for (l = 0; l < sizeof(labels) / sizeof(labels[0]); l++) {
			long_ns(f, n, labels[l]);
			for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
				ask(f, "svc.test.", types[t], 0, true);
				p = answer(f);
				full = ldns_pkt_ancount(p);
				ldns_pkt_free(p);
				for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
					ask(f, "svc.test.", types[t], sizes[s], false);
					assert_true(f->q.outlen <= want_limit(sizes[s], false));
					p = answer(f);
					if (!ldns_pkt_tc(p))
						assert_int_equal(ldns_pkt_ancount(p), full);
					else
						assert_int_equal(ldns_pkt_ancount(p), 0);
					assert_int_equal(ldns_pkt_edns(p), sizes[s] != 0);
					ldns_pkt_free(p);
				}
			}
		}
}

/* A slipped answer (RRL) or a forwarded reply too big: header and question, TC, rcode kept. */
static void test_query_tc(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "nothere.svc.test.", LDNS_RR_TYPE_A, 1232, false), QUERY_ANSWER);
	query_tc(&f->q, f->out);
	p = answer(f);
	assert_true(ldns_pkt_tc(p));
	assert_true(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	assert_int_equal(ldns_pkt_ancount(p) + ldns_pkt_nscount(p), 0);
	assert_true(ldns_pkt_edns(p));
	ldns_pkt_free(p);
	/* No answer to take from (a forward): NOERROR, no AA. */
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_WAKE);
	query_tc(&f->q, NULL);
	assert_int_equal(f->q.outlen, 12 + 14 + 4);
	p = answer(f);
	assert_true(ldns_pkt_tc(p));
	assert_false(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_false(ldns_pkt_edns(p));
	ldns_pkt_free(p);
}

static void test_glue_dropped_first(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	/* Six NS records of 186 bytes fit 1232 bytes, their glue does not. */
	long_ns(f, 6, 55);
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_NS, 1232, false), QUERY_ANSWER);
	p = answer(f);
	assert_false(ldns_pkt_tc(p));
	assert_int_equal(ldns_pkt_ancount(p), 6);
	assert_int_equal(ldns_pkt_arcount(p), 0); /* ldns counts the OPT apart */
	assert_true(ldns_pkt_edns(p));
	ldns_pkt_free(p);
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_NS, 1232, true), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_arcount(p), 6);
	ldns_pkt_free(p);
}

static void test_answer_again(void **state)
{
	struct fixture *f = *state;
	ldns_pkt *p;

	assert_int_equal(ask(f, "API.svc.test.", LDNS_RR_TYPE_A, 1232, false), QUERY_WAKE);
	memset(f->out, 0, 64);
	f->q.svc = NULL;
	assert_int_equal(query_answer(&f->q, f->z), QUERY_WAKE);
	assert_string_equal(f->q.svc->name, "api");
	p = answer(f);
	assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "10.77.0.3", 30);
	ldns_pkt_free(p);
	query_error(&f->q, LDNS_RCODE_SERVFAIL);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	ldns_pkt_free(p);
}

static void test_no_ns_no_services(void **state)
{
	struct fixture *f = *state;
	struct zone *z;
	ldns_pkt *p;

	f->conf.nns = 0;
	f->conf.nservices = 0;
	z = zone_new(&f->conf);
	assert_non_null(z);
	zone_free(f->z);
	f->z = z;
	assert_int_equal(ask(f, "svc.test.", LDNS_RR_TYPE_SOA, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);
	assert_int_equal(ask(f, "www.svc.test.", LDNS_RR_TYPE_A, 0, false), QUERY_ANSWER);
	p = answer(f);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(p);
}

/* Random and mutated bytes: no crash, answers within the buffer and limit. */
static void test_random(void **state)
{
	struct fixture *f = *state;
	uint8_t b[512], base[64];
	size_t blen = query_bytes(base, 0, 0x0100);
	unsigned seed = 1;
	int i, j;

	for (i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(b));
		enum query_state st;

		if (i % 2) {
			memcpy(b, base, blen);
			for (j = 0; j < 3; j++)
				b[rand_r(&seed) % blen] = (uint8_t)rand_r(&seed);
			len = blen;
		} else {
			for (j = 0; j < (int)len; j++)
				b[j] = (uint8_t)rand_r(&seed);
		}
		st = run(f, b, len, false);
		if (st != QUERY_DROP && st != QUERY_FORWARD)
			assert_true(f->q.outlen >= 12 && f->q.outlen <= QUERY_EDNS_SIZE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_service_a, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_case_echoed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nodata, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aaaa, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nxdomain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_non_terminal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_apex_soa, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_apex_ns_glue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ns_name_glue_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_apex_any, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_zone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_badvers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notimp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_formerr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_tsig, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_class, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_glue_dropped_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_size_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_query_tc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answer_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_ns_no_services, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_patch_a, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
