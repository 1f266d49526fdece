/*
 * The job queue the libvirt and Xen backends share (launcher/proc/jobq.c): real
 * threads and a real event loop; jobs that sleep stand in for blocking
 * library calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include <event2/event.h>

#include "jobq.h"

struct tjob {
	struct jobq_item item;
	int id;
	int sleep_ms;
	int64_t start_us, end_us;
};

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static int delivered[64], ndelivered, discarded, ticks;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void t_run(struct jobq_item *it)
{
	struct tjob *j = (struct tjob *)it;

	j->start_us = now_us();
	usleep((useconds_t)j->sleep_ms * 1000);
	j->end_us = now_us();
}

static struct tjob *jobs_seen[64];

static void t_deliver(struct jobq_item *it)
{
	struct tjob *j = (struct tjob *)it;

	delivered[ndelivered] = j->id;
	jobs_seen[ndelivered++] = j;
}

static void t_discard(struct jobq_item *it)
{
	discarded++;
	free(it);
}

static void t_tick(void)
{
	pthread_mutex_lock(&rec_lock);
	ticks++;
	pthread_mutex_unlock(&rec_lock);
}

static const struct jobq_hooks hooks = {"test", t_run, t_deliver, t_discard, t_tick};

static struct tjob *tjob(const char *key, int id, int sleep_ms)
{
	struct tjob *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	snprintf(j->item.key, sizeof(j->item.key), "%s", key);
	j->id = id;
	j->sleep_ms = sleep_ms;
	return j;
}

static void reset(void)
{
	for (int i = 0; i < ndelivered; i++)
		free(jobs_seen[i]);
	ndelivered = discarded = 0;
	ticks = 0;
}

/* One key: in order, never at once. Two keys: at once. */
static void test_keys_serialise(void **state)
{
	struct jobq *q = jobq_start(&hooks, 4);
	struct tjob *a1 = tjob("a", 1, 150), *a2 = tjob("a", 2, 10), *b = tjob("b", 3, 150);

	(void)state;
	assert_non_null(q);
	jobq_queue(q, &a1->item);
	jobq_queue(q, &a2->item);
	jobq_queue(q, &b->item);
	assert_true(jobq_drain(q, 20000));
	assert_int_equal(ndelivered, 3);
	assert_true(a2->start_us >= a1->end_us); /* a2 waited for a1 */
	assert_true(b->start_us < a1->end_us);   /* b ran beside a1 */
	assert_true(a2->end_us > a1->end_us);    /* a1 first, as queued */
	assert_true(ticks > 0);                  /* libxl's children were looked for meanwhile */
	reset();
}

/* Completions come on the loop, posted ones too; after closing, posts are discarded. */
static void test_loop_delivery_and_closing(void **state)
{
	struct jobq *q = jobq_start(&hooks, 2);
	struct event_base *base = event_base_new();
	struct timeval tv = {0, 20000};
	int64_t until = now_us() + 20000000;

	(void)state;
	assert_non_null(q);
	assert_non_null(base);
	assert_int_equal(jobq_attach(q, base), 0);
	jobq_queue(q, &tjob("x", 7, 5)->item);
	jobq_post(q, &tjob("event", 8, 0)->item);
	while (ndelivered < 2 && now_us() < until) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(ndelivered, 2);
	jobq_closing(q, true);
	jobq_post(q, &tjob("event", 9, 0)->item);
	assert_int_equal(discarded, 1);
	assert_true(jobq_drain(q, 1000));
	assert_int_equal(ndelivered, 2);
	jobq_detach(q);
	event_base_free(base);
	reset();
}

/* A job that outlives the drain's deadline: drain says so. */
static void test_drain_deadline(void **state)
{
	struct jobq *q = jobq_start(&hooks, 1);

	(void)state;
	jobq_queue(q, &tjob("slow", 1, 1500)->item);
	assert_false(jobq_drain(q, 100));
	assert_true(jobq_drain(q, 20000));
	assert_int_equal(ndelivered, 1);
	reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys_serialise),
	    cmocka_unit_test(test_loop_delivery_and_closing),
	    cmocka_unit_test(test_drain_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
