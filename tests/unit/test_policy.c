/* The idle policy, capacity and rate limits: pure functions, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

#define S(x) ((int64_t)(x)*1000000)

static struct policy_view running(enum conf_on_idle on_idle, int64_t last_us)
{
	struct policy_view v = {.state = POLICY_RUNNING,
	                        .on_idle = on_idle,
	                        .idle_timeout_ms = 1000,
	                        .memory = 16 << 20,
	                        .last_activity_us = last_us,
	                        .since_us = 1};
	return v;
}

static void test_idle_after_timeout(void **state)
{
	struct policy_view v = running(CONF_IDLE_PAUSE, S(10));

	(void)state;
	assert_int_equal(policy_idle(&v, S(10) + 999999), POLICY_KEEP);
	assert_int_equal(policy_idle(&v, S(11)), POLICY_PAUSE);
}

static void test_idle_each_mode(void **state)
{
	static const struct {
		enum conf_on_idle mode;
		enum policy_action want;
	} cases[] = {{CONF_IDLE_PAUSE, POLICY_PAUSE},
	             {CONF_IDLE_SUSPEND, POLICY_SUSPEND},
	             {CONF_IDLE_SHUTDOWN, POLICY_SHUTDOWN},
	             {CONF_IDLE_DESTROY, POLICY_DESTROY}};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_view v = running(cases[i].mode, S(1));
		assert_int_equal(policy_idle(&v, S(5)), cases[i].want);
	}
}

static void test_open_connection_never_idle(void **state)
{
	struct policy_view v = running(CONF_IDLE_DESTROY, S(1));

	(void)state;
	v.open_connections = 1;
	assert_int_equal(policy_idle(&v, S(1000)), POLICY_KEEP);
}

static void test_traffic_keeps_alive(void **state)
{
	struct policy_view v = running(CONF_IDLE_PAUSE, S(1));

	(void)state;
	assert_int_equal(policy_idle(&v, S(3)), POLICY_PAUSE);
	v.last_activity_us = S(2) + 500000; /* traffic seen half a second ago */
	assert_int_equal(policy_idle(&v, S(3)), POLICY_KEEP);
}

static void test_no_activity_counts_from_state_change(void **state)
{
	struct policy_view v = running(CONF_IDLE_PAUSE, 0);

	(void)state;
	v.since_us = S(20);
	assert_int_equal(policy_idle(&v, S(20) + 500000), POLICY_KEEP);
	assert_int_equal(policy_idle(&v, S(21)), POLICY_PAUSE);
}

static void test_zero_timeout_never_idle(void **state)
{
	struct policy_view v = running(CONF_IDLE_DESTROY, S(1));

	(void)state;
	v.idle_timeout_ms = 0;
	assert_int_equal(policy_idle(&v, S(1000)), POLICY_KEEP);
}

static void test_only_running_goes_idle(void **state)
{
	enum policy_state states[] = {POLICY_DOWN, POLICY_BOOTING, POLICY_PAUSED, POLICY_SAVED};
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		struct policy_view v = running(CONF_IDLE_DESTROY, S(1));
		v.state = states[i];
		assert_int_equal(policy_idle(&v, S(100)), POLICY_KEEP);
	}
}

static void test_make_room_lru(void **state)
{
	struct policy_view v[3] = {running(CONF_IDLE_PAUSE, S(5)), running(CONF_IDLE_PAUSE, S(2)),
	                           running(CONF_IDLE_PAUSE, S(8))};
	size_t victims[3];

	(void)state;
	/* Two of two slots in use: the least recently used goes. */
	v[2].state = POLICY_DOWN;
	assert_int_equal(policy_make_room(v, 3, 16 << 20, 2, 0, 0, S(10), victims), 1);
	assert_int_equal(victims[0], 1);
	/* Room already: nothing goes. */
	assert_int_equal(policy_make_room(v, 3, 16 << 20, 3, 0, 0, S(10), victims), 0);
}

static void test_make_room_memory(void **state)
{
	struct policy_view v[3] = {running(CONF_IDLE_PAUSE, S(5)), running(CONF_IDLE_PAUSE, S(2)),
	                           running(CONF_IDLE_PAUSE, S(8))};
	size_t victims[3];

	(void)state;
	/* 48M in use, 64M allowed, 40M wanted: two must go, oldest first. */
	assert_int_equal(policy_make_room(v, 3, 40 << 20, 0, 64 << 20, 0, S(10), victims), 2);
	assert_int_equal(victims[0], 1);
	assert_int_equal(victims[1], 0);
	/* More than the whole budget: never. */
	assert_int_equal(policy_make_room(v, 3, 65 << 20, 0, 64 << 20, 0, S(10), victims), -1);
}

static void test_make_room_busy_refused(void **state)
{
	struct policy_view v[2] = {running(CONF_IDLE_PAUSE, S(9)), running(CONF_IDLE_PAUSE, S(9))};
	size_t victims[2];

	(void)state;
	v[0].open_connections = 2;
	v[1].state = POLICY_BOOTING;
	assert_int_equal(policy_make_room(v, 2, 16 << 20, 2, 0, 0, S(10), victims), -1);
	/* Active within min_idle: not a candidate either. */
	v[1] = running(CONF_IDLE_PAUSE, S(9) + 900000);
	assert_int_equal(policy_make_room(v, 2, 16 << 20, 2, 0, 500, S(10), victims), -1);
	assert_int_equal(policy_make_room(v, 2, 16 << 20, 2, 0, 50, S(10), victims), 1);
	assert_int_equal(victims[0], 1);
}

static void test_make_room_paused_counts(void **state)
{
	struct policy_view v[2] = {running(CONF_IDLE_PAUSE, S(1)), running(CONF_IDLE_PAUSE, S(3))};
	size_t victims[2];

	(void)state;
	v[0].state = POLICY_PAUSED;
	v[1].state = POLICY_SAVED; /* suspended: holds no memory */
	assert_int_equal(policy_make_room(v, 2, 16 << 20, 1, 0, 0, S(10), victims), 1);
	assert_int_equal(victims[0], 0);
	assert_int_equal(policy_evict_action(&v[0]), POLICY_DESTROY);
	v[0].on_idle = CONF_IDLE_SUSPEND;
	assert_int_equal(policy_evict_action(&v[0]), POLICY_SUSPEND);
}

static void test_bucket(void **state)
{
	struct policy_bucket b = {0};
	int i, taken = 0;

	(void)state;
	for (i = 0; i < 100; i++)
		taken += policy_bucket_take(&b, 10, 5, S(1));
	assert_int_equal(taken, 5); /* the burst, then nothing */
	assert_false(policy_bucket_take(&b, 10, 5, S(1) + 50000));
	assert_true(policy_bucket_take(&b, 10, 5, S(1) + 100000)); /* one token in 100 ms */
	assert_false(policy_bucket_take(&b, 10, 5, S(1) + 100000));
	/* Refill caps at the burst. */
	for (i = 0, taken = 0; i < 100; i++)
		taken += policy_bucket_take(&b, 10, 5, S(100));
	assert_int_equal(taken, 5);
}

static void test_clients_separate(void **state)
{
	static struct policy_clients c;
	uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
	int i, ta = 0, tb = 0;

	(void)state;
	for (i = 0; i < 10; i++)
		ta += policy_client_take(&c, a, 4, 1, 3, S(1));
	for (i = 0; i < 10; i++)
		tb += policy_client_take(&c, b, 4, 1, 3, S(1));
	assert_int_equal(ta, 3);
	assert_int_equal(tb, 3);
	assert_false(policy_client_take(&c, a, 4, 1, 3, S(1)));
}

/* idle_check: asked once idle, not again while asking or soon after a "not now". */
static void test_consent_ask_wait(void **state)
{
	struct policy_view v = running(CONF_IDLE_PAUSE, S(10));
	struct policy_consent_view c = {.interval_ms = 2000};

	(void)state;
	assert_int_equal(policy_consent(&v, &c, S(11)), POLICY_CONSENT_ASK);
	c.asking = true;
	assert_int_equal(policy_consent(&v, &c, S(11)), POLICY_CONSENT_WAIT);
	c.asking = false;
	c.not_now_us = S(11);
	assert_int_equal(policy_consent(&v, &c, S(12)), POLICY_CONSENT_WAIT);
	assert_int_equal(policy_consent(&v, &c, S(13)), POLICY_CONSENT_ASK);
}

/* A "not now" from before the last activity is forgotten: ask at once. */
static void test_consent_forgets_old_answer(void **state)
{
	struct policy_view v = running(CONF_IDLE_PAUSE, S(20));
	struct policy_consent_view c = {.interval_ms = 60000, .not_now_us = S(19)};

	(void)state;
	assert_int_equal(policy_consent(&v, &c, S(21)), POLICY_CONSENT_ASK);
}

/* idle_max, counted from the last activity: acts whatever the guest says. */
static void test_consent_idle_max(void **state)
{
	struct policy_view v = running(CONF_IDLE_PAUSE, S(10));
	struct policy_consent_view c = {
	    .interval_ms = 1000, .idle_max_ms = 5000, .not_now_us = S(14) + 500000, .asking = true};

	(void)state;
	assert_int_equal(policy_consent(&v, &c, S(14) + 999999), POLICY_CONSENT_WAIT);
	assert_int_equal(policy_consent(&v, &c, S(15)), POLICY_CONSENT_FORCE);
	c.idle_max_ms = 0;
	assert_int_equal(policy_consent(&v, &c, S(1000)), POLICY_CONSENT_WAIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle_after_timeout),
	    cmocka_unit_test(test_idle_each_mode),
	    cmocka_unit_test(test_open_connection_never_idle),
	    cmocka_unit_test(test_traffic_keeps_alive),
	    cmocka_unit_test(test_no_activity_counts_from_state_change),
	    cmocka_unit_test(test_zero_timeout_never_idle),
	    cmocka_unit_test(test_only_running_goes_idle),
	    cmocka_unit_test(test_make_room_lru),
	    cmocka_unit_test(test_make_room_memory),
	    cmocka_unit_test(test_make_room_busy_refused),
	    cmocka_unit_test(test_make_room_paused_counts),
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_clients_separate),
	    cmocka_unit_test(test_consent_ask_wait),
	    cmocka_unit_test(test_consent_forgets_old_answer),
	    cmocka_unit_test(test_consent_idle_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
