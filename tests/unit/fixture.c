/* The launcher fixture shared by unit tests: see fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fixture.h"

int64_t fix_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

int fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct timeval tv = {0, 5000};

	snprintf(f->dir, sizeof(f->dir), "/tmp/beckon-ut.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	/* The loop wakes every 5 ms so that the run_ functions see the clock. */
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(f->tick, &tv);
	f->conf.state_dir = malloc(128);
	snprintf(f->conf.state_dir, 128, "%s/state/sub", f->dir);
	f->conf.net_mode = CONF_NET_USER;
	f->conf.services = f->svcs;
	*state = f;
	return 0;
}

void fix_svc_clear(struct conf_service *s)
{
	free(s->name);
	free(s->cmdline);
	free(s->ready_arg);
	free(s->exec_command);
	memset(s, 0, sizeof(*s));
}

int fix_teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];
	size_t i;

	engine_free(f->engine);
	launcher_free(f->l);
	for (i = 0; i < FIX_MAXSVC; i++)
		fix_svc_clear(&f->svcs[i]);
	free(f->conf.state_dir);
	event_free(f->tick);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

void fix_start(struct fix *f, size_t n)
{
	f->conf.nservices = n;
	f->l = launcher_new(f->base, &f->conf);
	assert_non_null(f->l);
	f->engine = engine_new(f->base, f->l, &f->conf);
	assert_non_null(f->engine);
}

enum inst_state fix_state_of(struct instance *inst)
{
	struct instance_info info;

	launcher_info(inst, &info);
	return info.state;
}

bool fix_run_until_state(struct fix *f, struct instance *inst, enum inst_state st, int ms)
{
	int64_t end = fix_now_ms() + ms;

	while (fix_state_of(inst) != st) {
		if (fix_now_ms() >= end)
			return false;
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	return true;
}

void fix_run_for(struct fix *f, int ms)
{
	int64_t end = fix_now_ms() + ms;

	while (fix_now_ms() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
}
