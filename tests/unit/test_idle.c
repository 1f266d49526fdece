/*
 * The idle engine, admission and warm pauses in the launcher, with a real
 * event_base and real processes (sleep, ready after a delay): idle actions
 * per on_idle, open connections keep an instance up, LRU eviction under
 * max_instances, refusals under boot rate limits, warm = "paused".
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf.h"
#include "fixture.h"
#include "launcher.h"
#include "log.h"

/* A sleep process, ready 20 ms after it starts, idle after 200 ms. */
static void svc_set(struct conf_service *s, const char *name, enum conf_on_idle on_idle)
{
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	s->cmdline = strdup("");
	inet_pton(AF_INET, "127.0.0.1", &s->address);
	s->backend = CONF_BACKEND_EXEC;
	s->memory = 16 << 20;
	s->vcpus = 1;
	s->boot_timeout_ms = 2000;
	s->ready = CONF_READY_DELAY;
	s->ready_delay_ms = 20;
	s->idle_timeout_ms = 200;
	s->on_idle = on_idle;
	s->exec_command = strdup("sleep 1000");
}

/* The launcher fixture, with hold "none". */
static int setup(void **state)
{
	int rc = fix_setup(state);

	((struct fix *)*state)->conf.hold = CONF_HOLD_NONE;
	return rc;
}

static struct instance *woken(struct fix *f, const char *name)
{
	struct instance *inst = launcher_find(f->l, name);

	assert_non_null(inst);
	assert_true(launcher_wake(inst, NULL, NULL, NULL) >= 0);
	assert_true(fix_run_until_state(f, inst, INST_READY, 3000));
	return inst;
}

static void test_each_mode(void **state)
{
	struct fix *f = *state;
	struct instance *p, *s, *d;

	svc_set(&f->svcs[0], "p", CONF_IDLE_PAUSE);
	svc_set(&f->svcs[1], "s", CONF_IDLE_SHUTDOWN);
	svc_set(&f->svcs[2], "d", CONF_IDLE_DESTROY);
	fix_start(f, 3);
	p = woken(f, "p");
	s = woken(f, "s");
	d = woken(f, "d");
	assert_true(fix_run_until_state(f, p, INST_PAUSED, 2000));
	assert_true(fix_run_until_state(f, s, INST_STOPPED, 4000));
	assert_true(fix_run_until_state(f, d, INST_STOPPED, 2000));
	/* A wake of a paused instance resumes it at once. */
	assert_int_equal(launcher_wake(p, NULL, NULL, NULL), 1);
	assert_int_equal(fix_state_of(p), INST_READY);
}

static void test_open_connection_keeps_up(void **state)
{
	struct fix *f = *state;
	struct instance *inst;

	svc_set(&f->svcs[0], "c", CONF_IDLE_DESTROY);
	fix_start(f, 1);
	inst = woken(f, "c");
	launcher_connections(inst, 0, 1);
	fix_run_for(f, 600);
	assert_int_equal(fix_state_of(inst), INST_READY);
	launcher_connections(inst, 0, -1);
	/* The idle time runs from the connection's end. */
	fix_run_for(f, 100);
	assert_int_equal(fix_state_of(inst), INST_READY);
	assert_true(fix_run_until_state(f, inst, INST_STOPPED, 1000));
}

static void test_activity_keeps_up(void **state)
{
	struct fix *f = *state;
	struct instance *inst;
	int i;

	svc_set(&f->svcs[0], "a", CONF_IDLE_PAUSE);
	fix_start(f, 1);
	inst = woken(f, "a");
	for (i = 0; i < 6; i++) {
		fix_run_for(f, 100);
		launcher_activity(inst);
	}
	assert_int_equal(fix_state_of(inst), INST_READY);
	assert_true(fix_run_until_state(f, inst, INST_PAUSED, 1000));
}

static void test_evict_lru(void **state)
{
	struct fix *f = *state;
	struct instance *a, *b, *c;
	struct launcher_stats st;

	svc_set(&f->svcs[0], "a", CONF_IDLE_PAUSE);
	svc_set(&f->svcs[1], "b", CONF_IDLE_PAUSE);
	svc_set(&f->svcs[2], "c", CONF_IDLE_PAUSE);
	f->svcs[0].idle_timeout_ms = f->svcs[1].idle_timeout_ms = f->svcs[2].idle_timeout_ms = 0;
	f->conf.max_instances = 2;
	fix_start(f, 3);
	a = woken(f, "a");
	fix_run_for(f, 50);
	b = woken(f, "b");
	/* Both active within the last second: nothing may be evicted yet. */
	c = launcher_find(f->l, "c");
	assert_int_equal(launcher_wake(c, NULL, NULL, NULL), -1);
	launcher_stats(f->l, &st);
	assert_int_equal(st.refused[LAUNCHER_REFUSED_CAPACITY], 1);
	fix_run_for(f, 1100);
	launcher_activity(b);
	assert_int_equal(launcher_wake(c, NULL, NULL, NULL), 0);
	/* a, the least recently used, goes (destroyed: pausing would keep its memory). */
	assert_true(fix_run_until_state(f, a, INST_STOPPED, 2000));
	assert_int_equal(fix_state_of(b), INST_READY);
	assert_true(fix_run_until_state(f, c, INST_READY, 2000));
}

static void test_busy_not_evicted(void **state)
{
	struct fix *f = *state;
	struct instance *a, *b;

	svc_set(&f->svcs[0], "a", CONF_IDLE_PAUSE);
	svc_set(&f->svcs[1], "b", CONF_IDLE_PAUSE);
	f->svcs[0].idle_timeout_ms = 0;
	f->conf.max_instances = 1;
	fix_start(f, 2);
	a = woken(f, "a");
	launcher_connections(a, 0, 1);
	fix_run_for(f, 1100);
	b = launcher_find(f->l, "b");
	assert_int_equal(launcher_wake(b, NULL, NULL, NULL), -1);
	assert_int_equal(fix_state_of(a), INST_READY);
	launcher_connections(a, 0, -1);
	fix_run_for(f, 1100);
	assert_int_equal(launcher_wake(b, NULL, NULL, NULL), 0);
	assert_true(fix_run_until_state(f, b, INST_READY, 2000));
}

static void test_rate_limits(void **state)
{
	struct fix *f = *state;
	struct sockaddr_in c1 = {.sin_family = AF_INET}, c2 = {.sin_family = AF_INET};
	struct launcher_stats st;
	struct instance *a, *b, *c;

	svc_set(&f->svcs[0], "a", CONF_IDLE_PAUSE);
	svc_set(&f->svcs[1], "b", CONF_IDLE_PAUSE);
	svc_set(&f->svcs[2], "c", CONF_IDLE_PAUSE);
	f->conf.client_boot_rate = 1;
	f->conf.client_boot_burst = 1;
	f->conf.boot_rate = 1;
	f->conf.boot_burst = 2;
	inet_pton(AF_INET, "192.0.2.1", &c1.sin_addr);
	inet_pton(AF_INET, "192.0.2.2", &c2.sin_addr);
	fix_start(f, 3);
	a = launcher_find(f->l, "a");
	b = launcher_find(f->l, "b");
	c = launcher_find(f->l, "c");
	assert_int_equal(launcher_wake_from(a, (struct sockaddr *)&c1, NULL, NULL, NULL), 0);
	/* The same client again: over its own limit. */
	assert_int_equal(launcher_wake_from(b, (struct sockaddr *)&c1, NULL, NULL, NULL), -1);
	/* Another client: its own bucket, the global one has a token left. */
	assert_int_equal(launcher_wake_from(b, (struct sockaddr *)&c2, NULL, NULL, NULL), 0);
	/* The global burst is spent. */
	assert_int_equal(launcher_wake(c, NULL, NULL, NULL), -1);
	/* A wake that joins a boot is no boot. */
	assert_int_equal(launcher_wake_from(a, (struct sockaddr *)&c1, NULL, NULL, NULL), 0);
	launcher_stats(f->l, &st);
	assert_int_equal(st.refused[LAUNCHER_REFUSED_CLIENT], 1);
	assert_int_equal(st.refused[LAUNCHER_REFUSED_RATE], 1);
	assert_int_equal(st.refused[LAUNCHER_REFUSED_CAPACITY], 0);
	fix_run_for(f, 1050);
	assert_int_equal(launcher_wake(c, NULL, NULL, NULL), 0);
}

static void test_warm_paused(void **state)
{
	struct fix *f = *state;
	struct instance *inst;
	struct instance_info info;

	svc_set(&f->svcs[0], "w", CONF_IDLE_PAUSE);
	f->svcs[0].warm = CONF_WARM_PAUSED;
	fix_start(f, 1);
	inst = launcher_find(f->l, "w");
	assert_true(fix_run_until_state(f, inst, INST_PAUSED, 2000));
	launcher_info(inst, &info);
	assert_int_equal(info.boots, 1);
	assert_int_equal(launcher_wake(inst, NULL, NULL, NULL), 1);
	launcher_info(inst, &info);
	assert_int_equal(info.state, INST_READY);
	assert_int_equal(info.boots, 1);
}

static void test_warm_boot_woken_stays_up(void **state)
{
	struct fix *f = *state;
	struct instance *inst;

	svc_set(&f->svcs[0], "w", CONF_IDLE_PAUSE);
	f->svcs[0].warm = CONF_WARM_PAUSED;
	f->svcs[0].idle_timeout_ms = 0;
	fix_start(f, 1);
	inst = launcher_find(f->l, "w");
	/* A request during the warm boot: it stays up once ready. */
	assert_int_equal(launcher_wake(inst, NULL, NULL, NULL), 0);
	assert_true(fix_run_until_state(f, inst, INST_READY, 2000));
	fix_run_for(f, 200);
	assert_int_equal(fix_state_of(inst), INST_READY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_mode, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_open_connection_keeps_up, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_activity_keeps_up, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_evict_lru, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_busy_not_evicted, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limits, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_warm_paused, setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_warm_boot_woken_stays_up, setup, fix_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
