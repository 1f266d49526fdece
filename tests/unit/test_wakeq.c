/* The wake queue (common/wakeq.c): a pure FIFO with a bound, deadlines and counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "wakeq.h"

static void test_fifo_order(void **state)
{
	struct wakeq q;
	struct wakeq_item it[3] = {0};
	int owners[3];

	(void)state;
	wakeq_init(&q, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wakeq_push(&q, &it[i], &owners[i], 1000 + i), 0);
	assert_int_equal(q.st.len, 3);
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(wakeq_head(&q), &it[i]);
		assert_ptr_equal(wakeq_head(&q)->owner, &owners[i]);
		wakeq_admit(&q, &it[i]);
	}
	assert_null(wakeq_head(&q));
	assert_int_equal(q.st.len, 0);
	assert_int_equal(q.st.queued, 3);
	assert_int_equal(q.st.admitted, 3);
}

static void test_bound_refuses_the_excess(void **state)
{
	struct wakeq q;
	struct wakeq_item a = {0}, b = {0}, c = {0};

	(void)state;
	wakeq_init(&q, 2);
	assert_int_equal(wakeq_push(&q, &a, NULL, 10), 0);
	assert_int_equal(wakeq_push(&q, &b, NULL, 10), 0);
	assert_int_equal(wakeq_push(&q, &c, NULL, 10), -1);
	assert_false(c.queued);
	assert_int_equal(q.st.refused, 1);
	assert_int_equal(q.st.len, 2);
	/* Pushing what waits already is joining it: no new place, no refusal. */
	assert_int_equal(wakeq_push(&q, &a, NULL, 99), 0);
	assert_int_equal(a.deadline_us, 10);
	assert_int_equal(q.st.queued, 2);
	/* Room in the queue again once one leaves. */
	wakeq_admit(&q, &a);
	assert_int_equal(wakeq_push(&q, &c, NULL, 10), 0);
	assert_ptr_equal(wakeq_head(&q), &b);
}

static void test_off_refuses_everything(void **state)
{
	struct wakeq q;
	struct wakeq_item a = {0};

	(void)state;
	wakeq_init(&q, 0);
	assert_int_equal(wakeq_push(&q, &a, NULL, 10), -1);
	assert_int_equal(q.st.refused, 1);
	assert_int_equal(wakeq_next_deadline(&q), -1);
}

static void test_deadlines(void **state)
{
	struct wakeq q;
	struct wakeq_item a = {0}, b = {0}, c = {0};

	(void)state;
	wakeq_init(&q, 8);
	wakeq_push(&q, &a, NULL, 300);
	wakeq_push(&q, &b, NULL, 100); /* hold_timeout shortened by a reload */
	wakeq_push(&q, &c, NULL, 200);
	assert_int_equal(wakeq_next_deadline(&q), 100);
	assert_null(wakeq_expire(&q, 99));
	assert_ptr_equal(wakeq_expire(&q, 100), &b);
	assert_null(wakeq_expire(&q, 100));
	assert_int_equal(wakeq_next_deadline(&q), 200);
	assert_ptr_equal(wakeq_expire(&q, 1000), &a);
	assert_ptr_equal(wakeq_expire(&q, 1000), &c);
	assert_null(wakeq_expire(&q, 1000));
	assert_int_equal(q.st.timed_out, 3);
	assert_int_equal(q.st.len, 0);
	assert_false(a.queued || b.queued || c.queued);
}

static void test_remove_uncounted(void **state)
{
	struct wakeq q;
	struct wakeq_item a = {0}, b = {0};

	(void)state;
	wakeq_init(&q, 8);
	wakeq_push(&q, &a, NULL, 10);
	wakeq_push(&q, &b, NULL, 10);
	wakeq_remove(&q, &a);
	wakeq_remove(&q, &a); /* twice: nothing */
	assert_ptr_equal(wakeq_head(&q), &b);
	assert_int_equal(q.st.len, 1);
	assert_int_equal(q.st.admitted + q.st.timed_out + q.st.refused, 0);
	wakeq_admit(&q, &a); /* not queued: nothing counted */
	assert_int_equal(q.st.admitted, 0);
	/* A smaller bound keeps who waits, refuses newcomers. */
	wakeq_set_max(&q, 1);
	assert_int_equal(wakeq_push(&q, &a, NULL, 10), -1);
	assert_ptr_equal(wakeq_head(&q), &b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_order),
	    cmocka_unit_test(test_bound_refuses_the_excess),
	    cmocka_unit_test(test_off_refuses_everything),
	    cmocka_unit_test(test_deadlines),
	    cmocka_unit_test(test_remove_uncounted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
