/*
 * Response rate limiting (resolver/rrl.c) without a clock or a socket: the
 * time is a number the test moves, the clients are addresses it makes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "rrl.h"

#define NAME 0x1234567u

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
	return ss;
}

static struct rrl *make(unsigned rate, unsigned slip, unsigned table)
{
	struct rrl_params p = {rate, slip, 24, 56, table};
	struct rrl *t = rrl_new(&p, 42);

	assert_non_null(t);
	return t;
}

static enum rrl_action one(struct rrl *t, const struct sockaddr_storage *ss, enum rrl_kind k,
                           uint32_t name, uint64_t now)
{
	return rrl_check(t, (const struct sockaddr *)ss, k, name, now);
}

/* N responses at NOW; how many passed, slipped and were dropped. */
static void burst(struct rrl *t, const struct sockaddr_storage *ss, enum rrl_kind k, int n,
                  uint64_t now, int out[3])
{
	out[0] = out[1] = out[2] = 0;
	for (int i = 0; i < n; i++)
		out[one(t, ss, k, NAME, now)]++;
}

/* One second's worth passes at once; then every second one slips, the rest drop. */
static void test_burst_and_slip(void **state)
{
	struct sockaddr_storage a = v4("192.0.2.7");
	struct rrl *t = make(20, 2, 1024);
	int c[3];

	(void)state;
	burst(t, &a, RRL_ANSWER, 20, 1000, c);
	assert_int_equal(c[RRL_PASS], 20);
	burst(t, &a, RRL_ANSWER, 100, 1000, c);
	assert_int_equal(c[RRL_PASS], 0);
	assert_int_equal(c[RRL_SLIP], 50);
	assert_int_equal(c[RRL_DROP], 50);
	rrl_free(t);
}

/* The bucket refills at the rate: half a second later, half the rate passes. */
static void test_refill(void **state)
{
	struct sockaddr_storage a = v4("192.0.2.7");
	struct rrl *t = make(20, 2, 1024);
	int c[3];

	(void)state;
	burst(t, &a, RRL_ANSWER, 40, 5000, c);
	burst(t, &a, RRL_ANSWER, 40, 5500, c);
	assert_int_equal(c[RRL_PASS], 10);
	/* A long quiet time gives one burst, not more. */
	burst(t, &a, RRL_ANSWER, 100, 60000, c);
	assert_int_equal(c[RRL_PASS], 20);
	rrl_free(t);
}

/* A steady flood of 1000 a second for 10 s passes the rate times 10, plus the first burst. */
static void test_flood(void **state)
{
	struct sockaddr_storage a = v4("198.51.100.1");
	struct rrl *t = make(50, 3, 1024);
	int pass = 0, slip = 0, drop = 0;
	uint64_t ms;

	(void)state;
	for (ms = 100000; ms < 110000; ms++) {
		enum rrl_action x = one(t, &a, RRL_ANSWER, NAME, ms);

		pass += x == RRL_PASS;
		slip += x == RRL_SLIP;
		drop += x == RRL_DROP;
	}
	assert_in_range(pass, 50 * 10, 50 * 10 + 50 + 1);
	assert_in_range(slip, (10000 - pass) / 3 - 1, (10000 - pass) / 3 + 1);
	assert_int_equal(pass + slip + drop, 10000);
	rrl_free(t);
}

static void test_slip_0_and_1(void **state)
{
	struct sockaddr_storage a = v4("192.0.2.7");
	struct rrl *none = make(5, 0, 64), *all = make(5, 1, 64);
	int c[3];

	(void)state;
	burst(none, &a, RRL_ERROR, 50, 1000, c);
	assert_int_equal(c[RRL_PASS], 5);
	assert_int_equal(c[RRL_SLIP], 0);
	assert_int_equal(c[RRL_DROP], 45);
	burst(all, &a, RRL_ERROR, 50, 1000, c);
	assert_int_equal(c[RRL_SLIP], 45);
	assert_int_equal(c[RRL_DROP], 0);
	rrl_free(none);
	rrl_free(all);
}

/* A /24 shares one limit; the next /24 has its own; IPv6 by /56. */
static void test_prefixes(void **state)
{
	struct sockaddr_storage a1 = v4("192.0.2.7"), a2 = v4("192.0.2.200"), b = v4("192.0.3.7"),
	                        c1 = v6("2001:db8:0:1200::1"), c2 = v6("2001:db8:0:12ff:1::9"),
	                        d = v6("2001:db8:0:1300::1");
	struct rrl *t = make(10, 2, 1024);
	int c[3];

	(void)state;
	burst(t, &a1, RRL_ANSWER, 10, 1000, c);
	burst(t, &a2, RRL_ANSWER, 10, 1000, c);
	assert_int_equal(c[RRL_PASS], 0);
	burst(t, &b, RRL_ANSWER, 10, 1000, c);
	assert_int_equal(c[RRL_PASS], 10);
	burst(t, &c1, RRL_ANSWER, 10, 1000, c);
	assert_int_equal(c[RRL_PASS], 10);
	burst(t, &c2, RRL_ANSWER, 10, 1000, c);
	assert_int_equal(c[RRL_PASS], 0);
	burst(t, &d, RRL_ANSWER, 10, 1000, c);
	assert_int_equal(c[RRL_PASS], 10);
	rrl_free(t);
}

/* Kinds are apart; answers per name; NXDOMAIN and errors for the whole zone. */
static void test_kinds_and_names(void **state)
{
	struct sockaddr_storage a = v4("192.0.2.7");
	struct rrl *t = make(3, 2, 1024);
	int k, pass;

	(void)state;
	for (k = 0; k < RRL_KINDS; k++) {
		pass = 0;
		for (int i = 0; i < 10; i++)
			pass += one(t, &a, (enum rrl_kind)k, NAME, 1000) == RRL_PASS;
		assert_int_equal(pass, 3);
	}
	/* Another name: a fresh limit for answers, none for NXDOMAIN. */
	assert_int_equal(one(t, &a, RRL_ANSWER, NAME + 1, 1000), RRL_PASS);
	assert_int_equal(one(t, &a, RRL_NODATA, NAME + 1, 1000), RRL_PASS);
	assert_int_equal(one(t, &a, RRL_FORWARD, NAME + 1, 1000), RRL_PASS);
	assert_int_not_equal(one(t, &a, RRL_NXDOMAIN, NAME + 1, 1000), RRL_PASS);
	assert_int_not_equal(one(t, &a, RRL_ERROR, NAME + 1, 1000), RRL_PASS);
	rrl_free(t);
}

/*
 * The table stays its size: a million spoofed prefixes evict one another,
 * while a client limited all along keeps its entry (the least recently
 * used one of a set goes) and stays limited.
 */
static void test_bounded(void **state)
{
	struct sockaddr_storage hot = v4("203.0.113.1"), cold;
	struct sockaddr_in *s = (struct sockaddr_in *)&cold;
	struct rrl_counts n;
	struct rrl *t = make(10, 2, 1000);
	int c[3], pass = 0;

	(void)state;
	assert_int_equal(rrl_capacity(t), 1024);
	cold = v4("10.0.0.0");
	burst(t, &hot, RRL_ANSWER, 10, 1000, c);
	for (uint32_t i = 0; i < 1000000; i++) {
		s->sin_addr.s_addr = htonl(0x0a000000u + (i << 8));
		one(t, &cold, RRL_ANSWER, NAME, 1000);
		pass += one(t, &hot, RRL_ANSWER, NAME, 1000) == RRL_PASS;
	}
	assert_int_equal(pass, 0);
	rrl_counts(t, &n);
	assert_true(n.evicted >= 1000000 - 1024);
	rrl_free(t);
}

/* Not an IP client (a UNIX socket): nothing to key on, nothing limited. */
static void test_other_family(void **state)
{
	struct sockaddr_storage u;
	struct rrl *t = make(1, 0, 64);

	(void)state;
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	for (int i = 0; i < 10; i++)
		assert_int_equal(one(t, &u, RRL_ANSWER, NAME, 1000), RRL_PASS);
	rrl_free(t);
}

static void test_classify(void **state)
{
	uint8_t h[12] = {0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0};

	(void)state;
	assert_int_equal(rrl_classify(h), RRL_ANSWER);
	h[7] = 0;
	assert_int_equal(rrl_classify(h), RRL_NODATA);
	h[2] |= 0x02; /* truncated: an answer to be had over TCP */
	assert_int_equal(rrl_classify(h), RRL_ANSWER);
	h[3] = 3;
	assert_int_equal(rrl_classify(h), RRL_NXDOMAIN);
	for (uint8_t rc = 1; rc < 16; rc++) {
		h[3] = rc;
		if (rc != 3)
			assert_int_equal(rrl_classify(h), RRL_ERROR);
	}
}

static void test_same_and_bad(void **state)
{
	struct rrl_params p = {10, 2, 24, 56, 4096}, q = p, off = {0, 2, 24, 56, 4096};
	struct rrl *t = rrl_new(&p, 1);

	(void)state;
	assert_true(rrl_same(t, &q));
	q.slip = 3;
	assert_false(rrl_same(t, &q));
	assert_null(rrl_new(&off, 1)); /* rate 0 is "off": no table */
	rrl_free(t);
	rrl_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_and_slip), cmocka_unit_test(test_refill),
	    cmocka_unit_test(test_flood),          cmocka_unit_test(test_slip_0_and_1),
	    cmocka_unit_test(test_prefixes),       cmocka_unit_test(test_kinds_and_names),
	    cmocka_unit_test(test_bounded),        cmocka_unit_test(test_other_family),
	    cmocka_unit_test(test_classify),       cmocka_unit_test(test_same_and_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
