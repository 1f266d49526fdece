/*
 * A launcher on a real event_base, for the unit tests that run real
 * processes through it (test_launcher, test_idle): a scratch directory,
 * services the test fills in, and a loop run until a state or for a time.
 */
#ifndef BECKON_TESTS_UNIT_FIXTURE_H
#define BECKON_TESTS_UNIT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "conf.h"
#include "engine.h"
#include "launcher.h"

#define FIX_MAXSVC 4

struct fix {
	struct event_base *base;
	struct launcher *l;    /* made by fix_start */
	struct engine *engine; /* the idle engine over it, made by fix_start */
	struct conf conf;
	struct conf_service svcs[FIX_MAXSVC];
	char dir[64]; /* a scratch directory, removed by fix_teardown */
	struct event *tick;
};

/* The monotonic clock in milliseconds. */
int64_t fix_now_ms(void);

/*
 * cmocka setup and teardown: a struct fix in *STATE, user networking, its
 * state_dir <dir>/state/sub (not made yet: the launcher makes it). The
 * teardown frees the launcher and every service's strings.
 */
int fix_setup(void **state);
int fix_teardown(void **state);

/* Free the strings of S and zero it. */
void fix_svc_clear(struct conf_service *s);

/* The launcher (and its idle engine) over the first N services. */
void fix_start(struct fix *f, size_t n);

enum inst_state fix_state_of(struct instance *inst);

/* Run the loop until INST is in state ST or MS pass; true when it is. */
bool fix_run_until_state(struct fix *f, struct instance *inst, enum inst_state st, int ms);

/* Run the loop for MS milliseconds. */
void fix_run_for(struct fix *f, int ms);

#endif
