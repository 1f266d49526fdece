/*
 * Pattern services, the pure parts: a name against a pattern
 * (conf_pattern_label), the pool syntax (conf_parse_pool), the service an
 * instance runs (conf_pattern_instance), the address pool
 * (launcher/pattern/pool.c), and the zone's answers for a pattern's names
 * (resolver/zone_pattern.c through query_process), read back with ldns;
 * and the replica scaler's decision (policy/replicas.c).
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
#include "policy.h"
#include "pool.h"
#include "query.h"
#include "zone.h"

static char *pages_dns[] = {"*.pages.svc.test"};
static char *www_dns[] = {"www.pages.svc.test"};

static struct conf_service pages(void)
{
	struct conf_service s;

	memset(&s, 0, sizeof(s));
	s.name = "pages";
	s.dns = pages_dns;
	s.ndns = 1;
	s.pattern = true;
	s.image = "/srv/pages/{label}.elf";
	s.cmdline = "name={label}";
	return s;
}

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void test_label_match(void **state)
{
	struct conf_service s = pages();
	char label[CONF_DNS_LABEL_MAX + 1];

	(void)state;
	assert_int_equal(conf_pattern_label(&s, "blog.pages.svc.test", label), 0);
	assert_string_equal(label, "blog");
	assert_int_equal(conf_pattern_label(&s, "a-1.pages.svc.test", label), 0);
	assert_string_equal(label, "a-1");
	/* Not one label under the suffix, or not a label that may go into a path. */
	assert_int_equal(conf_pattern_label(&s, "pages.svc.test", label), -1);
	assert_int_equal(conf_pattern_label(&s, "a.b.pages.svc.test", label), -1);
	assert_int_equal(conf_pattern_label(&s, "blog.other.svc.test", label), -1);
	assert_int_equal(conf_pattern_label(&s, "blog.xpages.svc.test", label), -1);
	assert_int_equal(conf_pattern_label(&s, "-x.pages.svc.test", label), -1);
	assert_int_equal(conf_pattern_label(&s, "x_y.pages.svc.test", label), -1);
	assert_int_equal(conf_pattern_label(&s, ".pages.svc.test", label), -1);
	s.pattern = false;
	assert_int_equal(conf_pattern_label(&s, "blog.pages.svc.test", label), -1);
}

static void test_pool_syntax(void **state)
{
	struct in_addr f, l;
	const char *why;

	(void)state;
	assert_int_equal(conf_parse_pool("10.77.1.0/24", &f, &l, &why), 0);
	assert_int_equal(f.s_addr, ip("10.77.1.0").s_addr);
	assert_int_equal(l.s_addr, ip("10.77.1.255").s_addr);
	assert_int_equal(conf_parse_pool("10.77.0.100-10.77.0.199", &f, &l, &why), 0);
	assert_int_equal(f.s_addr, ip("10.77.0.100").s_addr);
	assert_int_equal(l.s_addr, ip("10.77.0.199").s_addr);
	assert_int_equal(conf_parse_pool("10.77.0.5/32", &f, &l, &why), 0);
	assert_int_equal(f.s_addr, l.s_addr);
	assert_int_equal(conf_parse_pool("10.77.0.9-10.77.0.1", &f, &l, &why), -1);
	assert_int_equal(conf_parse_pool("10.77.1.1/24", &f, &l, &why), -1); /* host bits */
	assert_int_equal(conf_parse_pool("10.0.0.0/8", &f, &l, &why), -1);   /* too large */
	assert_int_equal(conf_parse_pool("pages", &f, &l, &why), -1);
	assert_int_equal(conf_parse_pool("10.77.0.1-", &f, &l, &why), -1);
}

static void test_instance_service(void **state)
{
	struct conf_service s = pages(), *d;

	(void)state;
	d = conf_pattern_instance(&s, "blog", ip("10.77.1.7"));
	assert_non_null(d);
	assert_string_equal(d->name, "blog.pages");
	assert_int_equal(d->ndns, 1);
	assert_string_equal(d->dns[0], "blog.pages.svc.test");
	assert_string_equal(d->image, "/srv/pages/blog.elf");
	assert_string_equal(d->cmdline, "name={label}"); /* vars.c expands it at each boot */
	assert_string_equal(d->label, "blog");
	assert_false(d->pattern);
	assert_int_equal(d->address.s_addr, ip("10.77.1.7").s_addr);
	conf_service_free(d);
}

static void test_pool_take_put(void **state)
{
	struct in_addr skip[3] = {ip("10.77.0.0"), ip("10.77.0.1"), ip("10.77.0.7")}, a, b, c;
	struct pool *p = pool_new(ip("10.77.0.0"), ip("10.77.0.7"), skip, 3);

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_size(p), 5);
	assert_int_equal(pool_take(p, &a), 0);
	assert_int_equal(a.s_addr, ip("10.77.0.2").s_addr);
	assert_int_equal(pool_take(p, &b), 0);
	assert_int_equal(b.s_addr, ip("10.77.0.3").s_addr);
	/* An address given back is the last to be reused. */
	pool_put(p, a);
	assert_int_equal(pool_take(p, &c), 0);
	assert_int_equal(c.s_addr, ip("10.77.0.4").s_addr);
	assert_int_equal(pool_take(p, &c), 0);
	assert_int_equal(pool_take(p, &c), 0);
	assert_int_equal(c.s_addr, ip("10.77.0.6").s_addr);
	assert_int_equal(pool_take(p, &c), 0);
	assert_int_equal(c.s_addr, ip("10.77.0.2").s_addr);
	assert_int_equal(pool_available(p), 0);
	assert_int_equal(pool_take(p, &c), -1);
	/* Skipped, outside, or never taken: ignored. */
	pool_put(p, ip("10.77.0.1"));
	pool_put(p, ip("10.77.9.9"));
	assert_int_equal(pool_available(p), 0);
	pool_put(p, b);
	pool_put(p, b);
	assert_int_equal(pool_available(p), 1);
	assert_int_equal(pool_claim(p, b), 0);
	assert_int_equal(pool_claim(p, b), -1);
	assert_int_equal(pool_claim(p, ip("10.77.0.1")), -1);
	pool_free(p);
	assert_null(pool_new(ip("10.0.0.0"), ip("10.255.255.255"), NULL, 0));
}

/* ---- the zone: query_process for a pattern's names ---- */

struct zfix {
	struct conf conf;
	struct conf_service svcs[2];
	struct conf_ns ns;
	struct zone *z;
	struct query q;
	uint8_t out[QUERY_TCP_MAX];
};

static int zsetup(void **state)
{
	struct zfix *f = calloc(1, sizeof(*f));

	f->conf.zone = "svc.test";
	f->conf.ttl = 30;
	f->conf.hold = CONF_HOLD_NONE;
	f->ns.name = "ns1.svc.test";
	f->ns.has_addr = true;
	f->ns.addr = ip("127.0.0.1");
	f->conf.ns[0] = f->ns;
	f->conf.nns = 1;
	f->svcs[0] = pages();
	f->svcs[1].name = "www";
	f->svcs[1].dns = www_dns;
	f->svcs[1].ndns = 1;
	f->svcs[1].address = ip("10.77.0.9");
	f->conf.services = f->svcs;
	f->conf.nservices = 2;
	if ((f->z = zone_new(&f->conf)) == NULL)
		return -1;
	f->q.out = f->out;
	*state = f;
	return 0;
}

static int zteardown(void **state)
{
	struct zfix *f = *state;

	zone_free(f->z);
	free(f);
	return 0;
}

static enum query_state zask(struct zfix *f, const char *name, ldns_rr_type t, ldns_pkt **ans)
{
	ldns_pkt *p = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	enum query_state st;

	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, t, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	f->q.outcap = QUERY_EDNS_SIZE;
	st = query_process(&f->q, f->z, wire, len, false);
	free(wire);
	ldns_pkt_free(p);
	assert_int_equal(ldns_wire2pkt(ans, f->out, f->q.outlen), LDNS_STATUS_OK);
	return st;
}

/* An A answer for a pattern's name: the name as asked, 0.0.0.0 to be patched; SOA intact. */
static void test_zone_pattern_a(void **state)
{
	struct zfix *f = *state;
	const char *labels[] = {"a", "blog", "a-very-long-label-of-many-letters-0123456789"};
	ldns_pkt *p;
	char *s;

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		char name[128];

		snprintf(name, sizeof(name), "%s.PAGES.svc.test", labels[i]);
		assert_int_equal(zask(f, name, LDNS_RR_TYPE_A, &p), QUERY_WAKE);
		assert_non_null(f->q.svc);
		assert_true(f->q.svc->pattern);
		assert_string_equal(f->q.svc->name, "pages");
		assert_string_equal(f->q.label, labels[i]);
		assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
		assert_int_equal(ldns_pkt_ancount(p), 1);
		s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(p), 0)));
		snprintf(name, sizeof(name), "%s.PAGES.svc.test.", labels[i]);
		assert_string_equal(s, name);
		free(s);
		s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
		assert_string_equal(s, "0.0.0.0");
		free(s);
		assert_true(wire_patch_a(&f->q, ip("0.0.0.0"), ip("10.77.1.2")));
		ldns_pkt_free(p);
		assert_int_equal(ldns_wire2pkt(&p, f->out, f->q.outlen), LDNS_STATUS_OK);
		s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
		assert_string_equal(s, "10.77.1.2");
		free(s);
		ldns_pkt_free(p);
	}
}

/* Other types: NODATA with the SOA (NXDOMAIN without an image is pending.c's call). */
static void test_zone_pattern_other(void **state)
{
	struct zfix *f = *state;
	ldns_pkt *p;
	char *s;

	assert_int_equal(zask(f, "blog.pages.svc.test", LDNS_RR_TYPE_AAAA, &p), QUERY_ANSWER);
	assert_non_null(f->q.svc);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	assert_int_equal(ldns_pkt_nscount(p), 1);
	s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_authority(p), 0)));
	assert_string_equal(s, "svc.test.");
	free(s);
	ldns_pkt_free(p);
	/* ANY carries no A: there is no address before the launcher gives one. */
	assert_int_equal(zask(f, "blog.pages.svc.test", LDNS_RR_TYPE_ANY, &p), QUERY_ANSWER);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
}

/* What is not one good label under the suffix; a configured name wins. */
static void test_zone_pattern_misses(void **state)
{
	struct zfix *f = *state;
	const char *nx[] = {"a.b.pages.svc.test", "x_y.pages.svc.test", "-a.pages.svc.test",
	                    "blog.other.svc.test"};
	ldns_pkt *p;
	char *s;

	for (size_t i = 0; i < sizeof(nx) / sizeof(nx[0]); i++) {
		assert_int_equal(zask(f, nx[i], LDNS_RR_TYPE_A, &p), QUERY_ANSWER);
		assert_null(f->q.svc);
		assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
		ldns_pkt_free(p);
	}
	/* The suffix itself exists, with no data. */
	assert_int_equal(zask(f, "pages.svc.test", LDNS_RR_TYPE_A, &p), QUERY_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
	assert_int_equal(zask(f, "www.pages.svc.test", LDNS_RR_TYPE_A, &p), QUERY_WAKE);
	assert_string_equal(f->q.svc->name, "www");
	s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	assert_string_equal(s, "10.77.0.9");
	free(s);
	ldns_pkt_free(p);
}

/* ---- replicas: when to boot another, when to stop one ---- */

static struct policy_replicas_view rv(unsigned up, unsigned booting, unsigned open)
{
	return (struct policy_replicas_view){.min = 0,
	                                     .max = 3,
	                                     .target = 50,
	                                     .up = up,
	                                     .booting = booting,
	                                     .open = open,
	                                     .idle_timeout_ms = 10000};
}

static void test_replicas_up(void **state)
{
	struct policy_replicas_view v = rv(1, 0, 50);
	const int64_t now = 100000000;

	(void)state;
	/* At the target: enough. One past it: another. */
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	v.open = 51;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_UP);
	/* One boot at a time. */
	v = rv(2, 1, 200);
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	v.booting = 0;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_UP);
	/* Never past max, whatever the load. */
	v = rv(3, 0, 1000);
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	/* Nothing up: DNS wakes the first, not the scaler (unless min says so). */
	v = rv(0, 0, 0);
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	v.min = 2;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_UP);
	v.up = 1;
	v.booting = 1;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_UP); /* min counts booting ones */
}

static void test_replicas_down(void **state)
{
	struct policy_replicas_view v = rv(3, 0, 101);
	const int64_t now = 100000000;

	(void)state;
	/* 101 connections need 3 of 50: not low. 100 fit 2. */
	assert_false(policy_replicas_low(&v));
	v.open = 100;
	assert_true(policy_replicas_low(&v));
	/* Low, but not for idle_timeout yet; then one goes. */
	v.low_since_us = now - 9999000;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	v.low_since_us = now - 10000000;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_DOWN);
	/* Never below max(min, 1): the last one follows the idle policy. */
	v = rv(1, 0, 0);
	assert_false(policy_replicas_low(&v));
	v.low_since_us = 1;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	v = rv(2, 0, 0);
	v.min = 2;
	v.low_since_us = 1;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_KEEP);
	v.up = 3;
	assert_int_equal(policy_replicas(&v, now), POLICY_SCALE_DOWN);
}

/* A replicated service's A answers of several records, each patched in place. */
static void test_zone_replicas(void **state)
{
	struct zfix *f = calloc(1, sizeof(*f));
	char *s;
	ldns_pkt *p;

	(void)state;
	f->conf.zone = "svc.test";
	f->conf.ttl = 30;
	f->conf.hold = CONF_HOLD_NONE;
	f->svcs[0].name = "www";
	f->svcs[0].dns = www_dns;
	f->svcs[0].ndns = 1;
	f->svcs[0].address = ip("10.77.0.9");
	f->svcs[0].replicas_max = 3;
	f->conf.services = f->svcs;
	f->conf.nservices = 1;
	assert_non_null(f->z = zone_new(&f->conf));
	f->q.out = f->out;
	assert_int_equal(zask(f, "www.pages.svc.test", LDNS_RR_TYPE_A, &p), QUERY_WAKE);
	ldns_pkt_free(p);
	assert_non_null(f->q.zn);
	assert_int_equal(f->q.zn->nmulti, 2);
	wire_emit(&f->q, &f->q.zn->multi[1]); /* three records */
	assert_true(wire_patch_a_at(&f->q, 0, ip("0.0.0.1"), ip("10.77.1.3")));
	assert_true(wire_patch_a_at(&f->q, 1, ip("0.0.0.2"), ip("10.77.0.9")));
	assert_true(wire_patch_a_at(&f->q, 2, ip("0.0.0.3"), ip("10.77.1.2")));
	assert_false(wire_patch_a_at(&f->q, 3, ip("0.0.0.4"), ip("10.77.1.4")));
	assert_int_equal(ldns_wire2pkt(&p, f->out, f->q.outlen), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_ancount(p), 3);
	s = ldns_rr_list2str(ldns_pkt_answer(p));
	assert_non_null(strstr(s, "10.77.1.3\n"));
	assert_non_null(strstr(s, "10.77.0.9\n"));
	assert_non_null(strstr(s, "10.77.1.2\n"));
	assert_null(strstr(s, "0.0.0."));
	free(s);
	ldns_pkt_free(p);
	zone_free(f->z);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_match),
	    cmocka_unit_test(test_pool_syntax),
	    cmocka_unit_test(test_instance_service),
	    cmocka_unit_test(test_pool_take_put),
	    cmocka_unit_test_setup_teardown(test_zone_pattern_a, zsetup, zteardown),
	    cmocka_unit_test_setup_teardown(test_zone_pattern_other, zsetup, zteardown),
	    cmocka_unit_test_setup_teardown(test_zone_pattern_misses, zsetup, zteardown),
	    cmocka_unit_test(test_replicas_up),
	    cmocka_unit_test(test_replicas_down),
	    cmocka_unit_test(test_zone_replicas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
