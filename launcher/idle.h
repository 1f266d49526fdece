/*
 * The idle engine, admission (capacity and boot rate limits), warm pools and
 * the traffic sources they read (launcher-internal). policy/ decides; the
 * files here feed it on a timer and carry out what it returns:
 * - idle.c: the timer, the views, the idle actions, warm shells and pauses;
 * - capacity.c: admission before a boot (rate limits, make-room eviction);
 * - activity.c: guest traffic (tap counters) and open connections
 *   (conntrack), for the guests whose connections bypass beckon.
 */
#ifndef BECKON_LAUNCHER_IDLE_H
#define BECKON_LAUNCHER_IDLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "launcher.h"
#include "policy.h"

struct conf;
struct launcher;
struct instance;

/* What the idle engine keeps of each instance (struct instance.idle). */
struct inst_idle {
	int64_t since_us;        /* when it entered its state */
	uint64_t tap_rx, tap_tx; /* the tap's counters at the last look */
	bool tap_seen;           /* they are valid */
	unsigned conntrack;      /* established connections at the last look */
	int64_t ct_closed_us;    /* ... and when the latest closed one closed (0: none seen) */
	bool warming;            /* a warm boot: pause once ready, unless woken */
	bool shell;              /* a warm shell waits (state stopped) */
	bool shell_ready;        /* ... and its VMM is up */
	bool shell_restore;      /* ... waiting for a saved state (suspended) */
	bool suspending;         /* its state is being saved */
	bool saved;              /* the save succeeded: suspended once it exits */
	bool restoring;          /* this boot restores a saved state */
	bool resuming;           /* an asynchronous resume is under way */
	bool rewarm;             /* stopped by the idle policy: make it warm again */
	int64_t wake_start_us;   /* a wake from paused or suspended began */
};

/* idle.c */
int launcher_idle_init(struct launcher *l, const struct conf *conf);
/* After launcher_reload committed CONF: new limits, warm the new instances. */
void launcher_idle_reload(struct launcher *l, const struct conf *conf);
void launcher_idle_fini(struct launcher *l);
/* Hooks from the state machine. */
void launcher_idle_state(struct instance *inst, enum inst_state old); /* every change */
void launcher_idle_ready(struct instance *inst);                      /* a boot became ready */
void launcher_idle_exited(struct instance *inst);                     /* the run ended, state set */
/* The state a run that ended goes to: suspended after a save, else stopped. */
enum inst_state launcher_idle_end_state(struct instance *inst);
/* Start the backend for a boot: restore, run a shell, or start afresh. */
int launcher_idle_start_backend(struct instance *inst);
/* A wake of a paused instance: resume, maybe asynchronously. 1 ready, 0 later, -1 not. */
int launcher_idle_resume(struct instance *inst);
/* Carry out ACTION on INST now (pause, suspend, shutdown, destroy). 0 when started. */
int launcher_idle_act(struct instance *inst, enum policy_action action, const char *why);
/* The policy's view of INST at NOW. */
void launcher_idle_view(const struct instance *inst, struct policy_view *v);
/* Make a warm shell or a warm paused guest for INST when its config asks. */
void launcher_idle_warm(struct instance *inst);
/* The path of INST's saved state (suspend): <state_dir>/<name>.state. */
int launcher_idle_state_path(const struct instance *inst, char *buf, size_t len);

/* capacity.c */
struct launcher_cap;
struct launcher_cap *launcher_cap_new(void);
void launcher_cap_free(struct launcher_cap *c);
void launcher_cap_conf(struct launcher_cap *c, const struct conf *conf);
/*
 * Admit a boot of INST for CLIENT (NULL: beckon's own, no client limit):
 * room is made by evicting idle instances, least recently used first. 0
 * when it may boot now, -1 when refused (logged, rate-limited, counted).
 * WARM: a warm start: no rate limit, no eviction.
 */
int launcher_cap_admit(struct instance *inst, const struct sockaddr *client, bool warm);
void launcher_cap_refused(const struct launcher_cap *c, uint64_t out[LAUNCHER_REFUSED_N]);

/* activity.c */
struct launcher_act;
/*
 * Conntrack is only needed when connections bypass beckon: bridge mode
 * (every hold), and user mode under the proxy's bypass. NULL when not.
 */
struct launcher_act *launcher_act_new(const struct conf *conf);
/* Whether A (NULL too) is what launcher_act_new would make of CONF. */
bool launcher_act_fits(const struct launcher_act *a, const struct conf *conf);
void launcher_act_free(struct launcher_act *a);
/* Whether INST's tap moved traffic since the last look (false without a tap). */
bool launcher_act_tap(struct instance *inst);
/*
 * Count the established TCP connections to or from each instance's address
 * (one conntrack dump for all) into inst->idle.conntrack, and note when the
 * latest closed one closed (TIME_WAIT) in inst->idle.ct_closed_us, which
 * becomes its last activity when later. In user mode only connections to
 * the service's ports count. -1 when conntrack cannot be read (counts left
 * as they were).
 */
int launcher_act_conntrack(struct launcher_act *a, struct launcher *l);

#endif
