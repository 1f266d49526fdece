/*
 * The idle engine's parts (policy-internal):
 * - engine.c: the timer, the views, the idle actions, the launcher hooks;
 * - admit.c: admission before a boot (rate limits, make-room eviction);
 * - activity.c: a guest's traffic with clients, from conntrack (TCP
 *   connections, UDP and ICMP flows), for those that bypass beckon;
 * - warm.c: the warm pools (shells, paused guests).
 */
#ifndef BECKON_POLICY_ENGINE_INT_H
#define BECKON_POLICY_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "engine.h"
#include "launcher.h"
#include "policy.h"

struct conf;

/*
 * The local ports of an instance's latest idle_check connections, whose
 * conntrack entries are beckon's own and no activity: one a question,
 * each ended with a reset (conntrack keeps it 10 s then), asked at most
 * every 100 ms.
 */
#define CHECK_PORTS 128

/* What the engine keeps of each instance (launcher_ext). */
struct engine_inst {
	unsigned conntrack;   /* established connections at the last look */
	int64_t ct_closed_us; /* ... and when the latest closed one closed, or a UDP or ICMP flow
	                       * last moved (0: none seen) */
	bool rewarm;          /* stopping (idle, beckonctl stop): make it warm again once down */
	bool evicting;        /* ... but not when evicted to make room */
	int64_t low_since_us; /* replicas (scale.c): the load has fit one fewer since; 0: not */
	/* idle_check (check.c) */
	bool asking;                       /* a question is under way */
	bool noticing;                     /* idle_notice: telling it, the suspend waits */
	int64_t not_now_us;                /* the guest's last "not now"; 0: none */
	uint16_t check_ports[CHECK_PORTS]; /* local ports of the latest questions */
	unsigned check_next;               /* ... the next slot */
};

struct engine {
	struct event_base *base;
	struct launcher *l;
	struct event *tick;
	struct event *warm_ev; /* a warm pass, out of the launcher's hooks */
	struct admit *admit;
	struct activity *act;
	unsigned ticks;            /* the scaler runs every SCALE_TICKS */
	struct check_list *checks; /* idle_check questions under way (check.c) */
	/*
	 * Hold "proxy": the proxy's counts are every connection a replica has
	 * (conntrack sees each one twice more: client to proxy, proxy to guest).
	 */
	bool proxied;
	/*
	 * conntrack could not be read at this tick; since when it has failed
	 * (0: it is read). An idle action waits for it, a while.
	 */
	bool ct_failed;
	int64_t ct_failed_since_us;
};

/* engine.c */
/* INST's engine data, made on first use; NULL when out of memory. */
struct engine_inst *engine_inst(struct instance *inst);
/* The policy's view of INST. */
void engine_view(struct instance *inst, struct policy_view *v);
/* Carry out ACTION on INST now (pause, suspend, shutdown, destroy). 0 when started. */
int engine_act(struct instance *inst, enum policy_action action, const char *why);

/* admit.c */
struct admit;
struct admit *admit_new(void);
void admit_free(struct admit *a);
void admit_conf(struct admit *a, const struct conf *conf);
/*
 * Admit a boot of INST for CLIENT (NULL: beckon's own, no client limit):
 * room is made by evicting idle instances, least recently used first. 0
 * when it may boot now, -1 when refused (logged, rate-limited; *WHY says
 * why). WARM: a warm start: no rate limit, no eviction.
 */
int admit_boot(struct engine *e, struct instance *inst, const struct sockaddr *client, bool warm,
               enum launcher_refusal *why);

/* activity.c */
struct activity;
/*
 * Conntrack is only needed when connections bypass beckon: bridge mode
 * (every hold), and user mode under the proxy's bypass. NULL when not.
 */
struct activity *activity_new(const struct conf *conf);
/* Whether A (NULL too) is what activity_new would make of CONF. */
bool activity_fits(const struct activity *a, const struct conf *conf);
void activity_free(struct activity *a);
/*
 * Count the established TCP connections to or from each instance's address
 * (one conntrack dump for all) into its engine_inst.conntrack, and note
 * when the latest closed one closed (TIME_WAIT) in ct_closed_us, which
 * becomes its last activity when later. In user mode only connections to
 * the service's ports count. -1 when conntrack cannot be read (tried a few
 * times); 0 when there is nothing to read (no conntrack in this mode).
 */
int activity_conntrack(struct activity *a, struct launcher *l);

/*
 * check.c: asking the guest before an idle action (idle_check =
 * "http:/PATH"). check_consent: whether to act on INST now (ACTION from
 * policy_idle): true when idle_max has passed or the service asks nothing;
 * else it asks (once at a time, again after a "not now"), and a "yes"
 * carries ACTION out from the answer. check_own: a conntrack entry with
 * this source port is one of EI's questions.
 */
int check_init(struct engine *e);
void check_free_all(struct engine *e);
bool check_consent(struct engine *e, struct instance *inst, enum policy_action action, int64_t now);
bool check_own(const struct engine_inst *ei, int sport);
/*
 * Tell INST's guest (idle_notice) before ACTION, a suspend: true when under
 * way (ACTION follows the answer, or idle_notice_timeout), false when
 * there is nothing to tell (or it cannot be told): act now.
 */
bool check_notice(struct engine *e, struct instance *inst, enum policy_action action);
/* Whether INST waits for its guest's answer, or to ask again: no need to look further. */
bool check_waiting(struct instance *inst, int64_t now);

/* scale.c: replicas; conntrack read first when *CT_READ is false. */
#define SCALE_TICKS 5
void scale_tick(struct engine *e, int64_t now, bool *ct_read);

/* warm.c */
/* Make a warm shell or a warm paused guest for INST when its config asks. */
void warm_make(struct engine *e, struct instance *inst);
/* Warm every instance not yet booted (at start and after a reload). */
void warm_new(struct engine *e);
/* The warm pass: instances the idle policy stopped get warm again. */
void warm_pass(struct engine *e);

#endif
