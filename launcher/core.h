/* The launcher's core, for its own files and for its parts (part.h), not its backends. */
#ifndef BECKON_LAUNCHER_CORE_H
#define BECKON_LAUNCHER_CORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>
#include <arpa/inet.h>

#include "conf.h"
#include "launcher.h"

struct backend_ops;
struct probe;
struct console;
struct lchild;
struct lpattern;
struct lhost;
struct inst_revive;
struct inst_room;
struct inst_slot;
struct room;
struct slots;
struct proc_fd;

TAILQ_HEAD(waiter_list, launcher_waiter);

struct launcher_waiter {
	TAILQ_ENTRY(launcher_waiter) entry;
	struct waiter_list *list; /* the list it is on, for launcher_cancel */
	struct instance *inst;
	launcher_wait_cb cb;
	void *arg;
	bool ok; /* the result, once on the launcher's done list */
};

struct instance {
	TAILQ_ENTRY(instance) entry;
	struct launcher *l;
	struct conf_service *svc; /* our own deep copy */
	struct lpattern *pat;     /* the pattern service it was made from (pattern.c); NULL */
	char *state_dir;
	enum conf_net_mode net_mode;
	char address[INET_ADDRSTRLEN];   /* the guest's: the service's, or on its host (hosts.c) */
	struct in_addr addr;             /* ... the same */
	char address6[INET6_ADDRSTRLEN]; /* the service's address6; "" when none */
	bool hosted;                     /* placed on a host of the hosts list at each boot */
	char host[CONF_HOST_NAME_MAX + 1]; /* where it runs or last ran; "" when never placed */
	char gateway[INET_ADDRSTRLEN];     /* on that host */
	int prefix;
	char mac[18];
	char tap[16]; /* "" in user networking */

	enum inst_state state; /* written only by launcher_inst_set_state */
	int64_t since_us;      /* when it entered its state */
	struct waiter_list waiters;
	const struct backend_ops *ops; /* NULL: backend not built in */
	void *priv;                    /* the backend's */
	void *ext;                     /* the idle engine's (launcher_ext) */
	pid_t pid;
	struct probe *probe;
	struct console *console;
	struct event *boot_timer;
	bool start_deferred; /* booting, waiting for the last run's process to go */
	bool doomed;         /* being freed: refuse wakes */
	bool rewake;         /* woken while stopping: boot once stopped */
	bool warned_backend;
	/* The parts' own, made by their new hooks (the core never looks inside). */
	struct inst_revive *rv; /* launcher/revive/ */
	struct inst_room *room; /* launcher/room/room.c */
	struct inst_slot *slot; /* launcher/room/slots.c */
	enum launcher_how how;  /* how the current (or last) run began */

	int64_t boot_start_us, ready_at_us, activity_us;
	enum conf_hold hold;
	unsigned held, open; /* the proxy's connections (launcher_connections) */
	unsigned quiet;      /* idle_ignore requests in flight (launcher_quiet) */
	time_t activity_wall;
	unsigned boots, boots_ok, boots_failed;
	unsigned reboots; /* the guest's own, in this wake's boot (launcher_inst_rebooted) */
};

TAILQ_HEAD(instance_list, instance);
TAILQ_HEAD(lchild_list, lchild);

struct launcher_hook_slot {
	struct launcher_hooks h;
	void *arg;
	bool used;
};

struct launcher {
	struct event_base *base;
	struct lhost *hosts; /* the hosts list (launcher/hosts/) */
	size_t nhosts;
	struct instance_list instances;
	struct lchild_list children;
	struct event *sigchld;
	/* Finished waits, called back from a fresh event so that callbacks
	 * never run inside launcher code. */
	struct waiter_list done;
	struct event *done_ev;
	uint64_t boots_ok, boots_failed;
	uint64_t refused[LAUNCHER_REFUSED_N];
	struct launcher_hist hist[LAUNCHER_HOW_N]; /* boot and wake times, by how */
	launcher_observer_fn observer;
	void *observer_arg;
	struct launcher_hook_slot hooks[LAUNCHER_MAX_HOOKS];
	bool reloading;             /* launcher_reload under way: no state hooks are called */
	struct lpattern **patterns; /* the pattern services (pattern.c) */
	size_t npatterns;
	struct lpattern **pats_next; /* ... a reload's, between prepare and commit */
	size_t npats_next;
	struct event *reap_ev; /* forget pattern instances left stopped */
	struct room *room;     /* launcher/room/room.c */
	struct slots *slots;   /* launcher/room/slots.c */
};

/* Grace between SIGTERM and SIGKILL. */
#define LAUNCHER_GRACE_MS 2000

/* mkdir -p DIR, mode 0755. -1 on failure (logged). */
int launcher_mkdir_p(const char *dir);

/* instance.c: the state machine. */
struct instance *launcher_inst_new(struct launcher *l, const struct conf_service *svc,
                                   const struct conf *conf);
/* The same, with what it takes of a config given one by one. */
struct instance *launcher_inst_make(struct launcher *l, const struct conf_service *svc,
                                    const char *state_dir, enum conf_net_mode net_mode,
                                    enum conf_hold hold, bool hosted);
void launcher_inst_destroy(struct instance *inst);
void launcher_inst_ready(struct instance *inst);
/* Every state change goes through here: the transition table, the hooks. */
void launcher_inst_set_state(struct instance *inst, enum inst_state s);
void launcher_inst_predecessor_gone(struct launcher *l, const char *name);
/* Boot INST now (no admission: the caller did it). -1 when it cannot start. */
int launcher_inst_boot(struct instance *inst);
/* A booting INST starts its backend and probe now (it has its boot slot). -1: the boot failed. */
int launcher_inst_start(struct instance *inst);
/* End the run of a booting, ready or paused INST (launcher_stop is graceful). */
int launcher_inst_stop(struct instance *inst, bool graceful);

/* registry.c: the hooks. */
void launcher_hooks_state(struct instance *inst, enum inst_state old);
int launcher_hooks_admit(struct instance *inst, const struct sockaddr *client);
/* The same, uncounted, with the reason of a refusal in *WHY. */
int launcher_hooks_admit_why(struct instance *inst, const struct sockaddr *client,
                             enum launcher_refusal *why);

/* part.c: the parts' hooks (part.h), each run in every part that has it. */
int part_check(const struct conf *conf, FILE *errs);
int part_prepare(struct launcher *l, const struct conf *conf);
bool part_keeps(const struct instance *old, const struct conf *conf);
void part_made(struct instance *inst);
int part_apply(struct launcher *l, const struct conf *conf);
void part_commit(struct launcher *l, struct instance_list *kept);
void part_abort(struct launcher *l);
int part_configured(struct launcher *l, const struct conf *conf);
void part_free(struct launcher *l);
void part_stats(const struct launcher *l, struct launcher_stats *st);
/* Every part's state of INST made (-1: ENOMEM; part_destroy frees what was made), freed. */
int part_new(struct instance *inst);
void part_destroy(struct instance *inst);
void part_info(const struct instance *inst, struct instance_info *info);
void part_woken(struct instance *inst);
int part_admit(struct instance *inst, const struct sockaddr *client);
bool part_may_start(struct instance *inst);
int part_start(struct instance *inst);
int part_resume(struct instance *inst);
bool part_hold_ready(struct instance *inst);
void part_ready(struct instance *inst);
bool part_retry(struct instance *inst, const char *why);
void part_end_run(struct instance *inst);
enum inst_state part_end_state(struct instance *inst);
void part_state(struct instance *inst, enum inst_state old);
void part_drop(struct instance *inst);
/* What parts call: where INST runs (before a boot or a shell; -1: nowhere). */
int launcher_inst_place(struct instance *inst);
/* What INST waits for in a part's queue (a boot slot, room), NULL when nothing. */
const char *launcher_inst_waiting(const struct instance *inst);
/* Nothing of INST's may be going on any more: a part may forget it. */
void launcher_inst_released(struct instance *inst);

/* Whether a run begun so is a clone of its service's template. */
static inline bool launcher_how_clone(enum launcher_how h)
{
	return h == LAUNCHER_HOW_TEMPLATE || h == LAUNCHER_HOW_POOL;
}

/* waiter.c */
struct launcher_waiter *launcher_waiter_add(struct instance *inst, launcher_wait_cb cb, void *arg);
/* Hand every waiter of INST its result, delivered from the done event. */
void launcher_inst_complete(struct instance *inst, bool ok);
/* Before INST is freed: every wait on it ends now, while it is still valid. */
void launcher_inst_drain_waiters(struct instance *inst);
void launcher_flush_done(struct launcher *l);

/* child.c */
int launcher_children_init(struct launcher *l);
bool launcher_child_pending(struct launcher *l, const char *name);
/* Whether PID is a child this launcher runs now. */
bool launcher_child_running(struct launcher *l, pid_t pid);
/* Kill every child and wait (blocking, at most the grace period) until all are gone. */
void launcher_children_shutdown(struct launcher *l);

/* console.c: the guest's output, appended to <state_dir>/<name>.console. */
struct console *console_open(struct instance *inst);
void console_feed(struct instance *inst, const char *buf, size_t len);
const char *console_last_line(const struct console *c);
/* What a failed boot's log line quotes: the lines that look like errors, and the last. */
void console_describe(const struct console *c, char *buf, size_t len);
/* <state_dir>/<name>.console. -1 when it does not fit. */
int console_path(const struct instance *inst, char *buf, size_t len);
void console_close(struct console *c);

/* probe.c: readiness; calls launcher_inst_ready (as its last act) when ready. */
struct probe *probe_start(struct instance *inst);
void probe_console_line(struct probe *p, const char *line, bool complete);
/* The guest started running (a restore, a shell): a lost SYN is sent again now. */
void probe_kick(struct probe *p);
void probe_free(struct probe *p);

#endif
