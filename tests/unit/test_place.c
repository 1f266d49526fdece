/* Placement among several hosts (launcher/hosts/place.c): a pure decision, no host needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "place.h"

#define M(x) ((uint64_t)(x) << 20)

static struct place_host host(uint64_t mem_used, uint64_t mem_max, uint64_t n, uint64_t n_max)
{
	return (struct place_host){true, mem_used, mem_max, n, n_max};
}

static void test_most_room_wins(void **state)
{
	struct place_host h[3] = {host(M(512), M(1024), 2, 0), host(M(128), M(1024), 1, 0),
	                          host(M(0), M(256), 0, 0)};

	(void)state;
	/* After a 16M boot: 0.48, 0.86, 0.94 of memory left. */
	assert_int_equal(place_choose(h, 3, M(16), -1), 2);
	/* 200M leaves the small one 0.22: the second now. */
	assert_int_equal(place_choose(h, 3, M(200), -1), 1);
}

static void test_instance_slots_count(void **state)
{
	struct place_host h[2] = {host(0, 0, 2, 4), host(M(900), M(1024), 0, 0)};

	(void)state;
	/* The first has a quarter of its slots left after, the second 0.10 of memory. */
	assert_int_equal(place_choose(h, 2, M(16), -1), 0);
	h[0].count = 4; /* full */
	assert_int_equal(place_choose(h, 2, M(16), -1), 1);
	assert_int_equal(place_choose(h, 2, M(200), -1), -1);
}

static void test_spread_when_unlimited(void **state)
{
	struct place_host h[2] = {host(0, 0, 0, 0), host(0, 0, 0, 0)};
	int seq[5];

	(void)state;
	/* No limits: ties go to the fewer instances, then the first. */
	for (int i = 0; i < 5; i++) {
		seq[i] = place_choose(h, 2, M(16), -1);
		h[seq[i]].count++;
	}
	assert_int_equal(seq[0], 0);
	assert_int_equal(seq[1], 1);
	assert_int_equal(seq[2], 0);
	assert_int_equal(seq[3], 1);
	assert_int_equal(seq[4], 0);
}

static void test_stays_where_it_ran(void **state)
{
	struct place_host h[2] = {host(M(900), M(1024), 5, 0), host(0, M(1024), 0, 0)};

	(void)state;
	assert_int_equal(place_choose(h, 2, M(16), 0), 0); /* room enough there */
	h[0].usable = false;                               /* down */
	assert_int_equal(place_choose(h, 2, M(16), 0), 1);
	h[0].usable = true;
	assert_int_equal(place_choose(h, 2, M(200), 0), 1); /* no room there any more */
}

static void test_none_usable(void **state)
{
	struct place_host h[2] = {host(0, 0, 0, 0), host(0, 0, 0, 0)};

	(void)state;
	h[0].usable = h[1].usable = false;
	assert_int_equal(place_choose(h, 2, M(16), -1), -1);
	assert_int_equal(place_choose(h, 2, M(16), 1), -1);
	assert_int_equal(place_choose(h, 0, M(16), -1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_most_room_wins),
	    cmocka_unit_test(test_instance_slots_count),
	    cmocka_unit_test(test_spread_when_unlimited),
	    cmocka_unit_test(test_stays_where_it_ran),
	    cmocka_unit_test(test_none_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
