/*
 * The instance registry and its state machine. One instance per service,
 * or per label of a pattern service (pattern.c).
 * Everything runs on the caller's event_base; nothing here blocks.
 */
#ifndef BECKON_LAUNCHER_H
#define BECKON_LAUNCHER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>

struct event_base;
struct conf;
struct conf_service;
struct launcher;
struct instance;
struct launcher_waiter;

enum inst_state {
	INST_STOPPED,
	INST_BOOTING,
	INST_READY,
	INST_PAUSED,
	INST_SUSPENDED,
	INST_STOPPING,
	INST_FAILED,
	INST_NSTATES
};

/* Why a boot was refused. */
enum launcher_refusal {
	LAUNCHER_REFUSED_RATE,     /* the global boot rate (boot_rate.rate, burst) */
	LAUNCHER_REFUSED_CLIENT,   /* the client's (boot_rate.client_rate, client_burst) */
	LAUNCHER_REFUSED_CAPACITY, /* max_instances or max_memory, nothing idle to evict */
	LAUNCHER_REFUSED_N
};
const char *launcher_refusal_name(enum launcher_refusal r);

/* Called once when a wake ends: ok is true when the instance is ready. */
typedef void (*launcher_wait_cb)(struct instance *inst, bool ok, void *arg);

/* What the control socket and metrics show of an instance. */
/*
 * How an instance's run began: a cold boot, a restore of its service's
 * template, a warm shell run, a restore from suspend, a resume from
 * paused. launcher_info shows it; the histograms are split by it.
 */
enum launcher_how {
	LAUNCHER_HOW_NONE,
	LAUNCHER_HOW_BOOT,
	LAUNCHER_HOW_TEMPLATE,
	LAUNCHER_HOW_SHELL,
	LAUNCHER_HOW_RESTORE,
	LAUNCHER_HOW_RESUME,
	LAUNCHER_HOW_POOL, /* its template restored into a VMM of the pool */
	LAUNCHER_HOW_N
};
/* "boot", "template", "shell", "restore", "resume", "pool"; "" for none. */
const char *launcher_how_name(enum launcher_how h);

struct instance_info {
	const char *name;
	enum inst_state state;
	const char *address;             /* dotted quad */
	const char *address6;            /* the service's address6; "" when none */
	int64_t uptime_ms;               /* since it became ready; 0 when not running */
	unsigned boots;                  /* boot attempts */
	unsigned boots_ok, boots_failed; /* their outcomes */
	int64_t idle_ms;                 /* since the last activity; -1 when none yet */
	int64_t last_activity;           /* wall clock seconds; 0 when none yet */
	pid_t pid;                       /* of the VMM or process; 0 when none */
	unsigned held, open;             /* the proxy's connections: held, relayed */
	unsigned quiet;                  /* idle_ignore requests in flight (launcher_quiet) */
	bool shell;                      /* stopped, with a warm shell ready (warm = "shell") */
	const char *host;                /* the host it runs (or last ran) on; "" when here */
	enum launcher_how how;           /* how its current (or last) run began */
};

/* Create the registry for CONF's services. NULL on failure (logged). */
struct launcher *launcher_new(struct event_base *base, const struct conf *conf);

/*
 * Apply a new config: unchanged services keep their instances, changed ones
 * are stopped and recreated, removed ones are stopped. The launcher keeps no
 * pointer into CONF after the call. -1 on failure, the old state kept.
 */
int launcher_reload(struct launcher *l, const struct conf *conf);

/* Stop every instance, waiting for each to end, then free everything. */
void launcher_free(struct launcher *l);

/*
 * In bridge mode a service's tap name and MAC come from a hash of its name:
 * -1 when two of CONF's services would share one, each such pair written
 * to ERRS as "FILE:LINE: message" (logged when ERRS is NULL).
 * launcher_new and launcher_reload refuse such a config.
 */
int launcher_check_names(const struct conf *conf, FILE *errs);

/* The instance of a service by name, NULL when there is none. */
struct instance *launcher_find(struct launcher *l, const char *service);

/*
 * Wake INST: boot it when stopped, failed or suspended, resume it when
 * paused, join a boot under way. Returns 1 when it is ready now (CB is not
 * called), 0 when CB will be called once later, -1 when refused (CB not
 * called). With CB NULL, nothing is called back. *HANDLE, when not NULL,
 * gets a handle for launcher_cancel while the wait is pending.
 */
int launcher_wake(struct instance *inst, launcher_wait_cb cb, void *arg,
                  struct launcher_waiter **handle);

/*
 * launcher_wake for a request from CLIENT (the DNS query's source, the
 * connection's peer; NULL when not known): a boot first passes the
 * admission hooks (the idle engine's boot rate limits and capacity). -1
 * when refused (counted in launcher_stats.refused): answer SERVFAIL, or
 * reset the connection. With wake_queue, a wake that finds no room waits
 * for it (0: CB is called once booted, or not ready at hold_timeout).
 */
int launcher_wake_from(struct instance *inst, const struct sockaddr *client, launcher_wait_cb cb,
                       void *arg, struct launcher_waiter **handle);

/*
 * launcher_wake_from for a request that does not count as activity (a
 * health check in the service's idle_ignore): it wakes what sleeps, but
 * the idle clock runs on.
 */
int launcher_wake_quiet(struct instance *inst, const struct sockaddr *client, launcher_wait_cb cb,
                        void *arg, struct launcher_waiter **handle);

/* Forget a pending waiter; its callback will not be called. */
void launcher_cancel(struct launcher_waiter *w);

/* Control actions. 0 when done or started, -1 when not possible now. */
int launcher_stop(struct instance *inst); /* graceful: a grace period, then a kill */
int launcher_kill(struct instance *inst); /* at once */
int launcher_pause(struct instance *inst);
int launcher_resume(struct instance *inst);

/* Note activity (a query, a connection, traffic) now. */
void launcher_activity(struct instance *inst);
/* INST was last used at US (launcher_now_us's clock), when later than it knew. */
void launcher_activity_at(struct instance *inst, int64_t us);
/*
 * A request for INST was answered at US without the launcher (the DNS
 * thread, while INST was ready): its activity, and a warm boot stays up.
 * When INST is no longer ready (paused, stopped or made again since), it
 * is woken, as the request would have woken it.
 */
void launcher_served(struct instance *inst, int64_t us);

/* The monotonic clock in microseconds, as the launcher reads it. */
int64_t launcher_now_us(void);
enum inst_state launcher_state(const struct instance *inst);
/* When INST last saw activity (0: never) and entered its state, launcher_now_us's clock. */
int64_t launcher_activity_us(const struct instance *inst);
int64_t launcher_state_since_us(const struct instance *inst);
/* The last whole line INST's guest printed on its console ("" when none). */
const char *launcher_console_last(const struct instance *inst);
/* INST's tap in bridge mode, "" in user networking. */
const char *launcher_tap(const struct instance *inst);
/* How many instances there are. */
size_t launcher_count(const struct launcher *l);

/*
 * One pointer of the idle engine's per instance: set with malloc'd memory
 * holding no pointers, freed with the instance.
 */
void *launcher_ext(const struct instance *inst);
void launcher_set_ext(struct instance *inst, void *ext);

/*
 * The proxy's count of connections to INST changed by these deltas: HELD
 * (waiting for it to be ready: proxied connections and held SYNs) and OPEN
 * (being relayed). Shown in launcher_info and metrics.
 */
void launcher_connections(struct instance *inst, int held, int open);

/*
 * A request that is no activity (idle_ignore) was sent on (+1) or got its
 * answer (-1). It keeps nothing up, but while one is in flight the idle
 * policy waits: a guest paused halfway would leave its client hanging.
 */
void launcher_quiet(struct instance *inst, int delta);

/*
 * Called after every state change of every instance (OLD != NEW), from
 * inside the launcher: FN may read instances and call launcher_activity,
 * launcher_connections and launcher_upstream, but must not wake, stop,
 * pause or resume, reload or free (an observer that must act schedules it
 * on the event loop). Not called while launcher_reload runs: instances are
 * freed then that the observer may still point at, and its owner looks at
 * every instance again after a reload anyway (the reloaded hook).
 */
typedef void (*launcher_observer_fn)(struct instance *inst, enum inst_state old,
                                     enum inst_state new, void *arg);
/* Set the proxy's observer (FN NULL: none); other watchers use launcher_add_hooks. */
void launcher_set_observer(struct launcher *l, launcher_observer_fn fn, void *arg);

/*
 * What watches the launcher from outside it (the idle engine in policy/):
 * the launcher calls these and nothing of theirs by name. Any may be NULL.
 */
struct launcher_hooks {
	/* After every state change, as a launcher_observer_fn. */
	launcher_observer_fn state;
	/*
	 * Before a boot that a wake asks for (launcher_wake_from; CLIENT NULL
	 * when not known): 0 admits it, -1 refuses it with the reason in *WHY
	 * (the hook logs it). May stop, pause or suspend other instances to
	 * make room, never INST.
	 */
	int (*admit)(struct instance *inst, const struct sockaddr *client,
	             enum launcher_refusal *why, void *arg);
	/* After launcher_reload committed CONF (the hooks see it, not launcher_new's). */
	void (*reloaded)(struct launcher *l, const struct conf *conf, void *arg);
	/* Before launcher_reload changes any instance (the state hook is off until it ends). */
	void (*reloading)(struct launcher *l, void *arg);
};
#define LAUNCHER_MAX_HOOKS 4
/* Add H (copied) with ARG; -1 when LAUNCHER_MAX_HOOKS are set. */
int launcher_add_hooks(struct launcher *l, const struct launcher_hooks *h, void *arg);
/* Remove the hooks added with ARG. */
void launcher_remove_hooks(struct launcher *l, void *arg);

/*
 * Where INST really serves PORT, one of its service's ports, for the run
 * under way: the guest's address and PORT in bridge mode, the forwarded
 * loopback port in QEMU user networking, an exec process's own loopback
 * port under hold "proxy" (its {port}). -1 when there is none now.
 */
int launcher_upstream(const struct instance *inst, uint16_t port, struct sockaddr_in *out);

/*
 * The firewall mark (SO_MARK) of beckon's own connections to guests, probes
 * and proxied ones: the SYN hold lets them pass. Setting it needs
 * CAP_NET_ADMIN; without it (user mode) it is not needed.
 */
#define LAUNCHER_FWMARK 0x626b

/*
 * INST's guest address: the service address, or for a guest on a host of
 * the hosts list its address there (where it runs, or last ran). -1 when
 * it has none.
 */
int launcher_address(const struct instance *inst, struct in_addr *out);

/* Fill INFO for INST. Strings live as long as the instance. */
void launcher_info(const struct instance *inst, struct instance_info *info);

/* The service an instance runs. */
const struct conf_service *launcher_service(const struct instance *inst);

/* Call FN for each instance, in config order. */
void launcher_foreach(struct launcher *l, void (*fn)(struct instance *, void *), void *arg);

/* A latency histogram in seconds; counts[LAUNCHER_HIST_BUCKETS] is +Inf. */
#define LAUNCHER_HIST_BUCKETS 12
extern const double launcher_hist_bounds[LAUNCHER_HIST_BUCKETS];
struct launcher_hist {
	uint64_t counts[LAUNCHER_HIST_BUCKETS + 1];
	double sum;
};
void launcher_hist_observe(struct launcher_hist *h, double seconds);

/* Counts for metrics. */
struct launcher_stats {
	uint64_t boots_ok, boots_failed;
	unsigned instances[INST_NSTATES];
	/* By how the run began: boot, template, shell (trigger to ready), resume,
	 * restore (paused or suspended to ready). */
	struct launcher_hist hist[LAUNCHER_HOW_N];
	unsigned held_connections;
	uint64_t refused[LAUNCHER_REFUSED_N]; /* boots refused, by reason */
	/* The wake queue (wake_queue): waiting now; queued, admitted once room
	 * was found, failed at hold_timeout, refused because it was full. */
	size_t wake_queue;
	uint64_t wake_queued, wake_admitted, wake_timed_out, wake_refused;
	/* Boot slots (max_booting; 0 no limit): boots started and not yet
	 * ended now, the most at once so far; boots waiting in line now, and
	 * in all so far. */
	unsigned boot_slots, booting_started, booting_peak;
	size_t boot_queue;
	uint64_t boot_queued;
	/* The VMM pool (pool.size): VMMs waiting to be taken, and being started. */
	unsigned pool_idle, pool_starting;
};
void launcher_stats(struct launcher *l, struct launcher_stats *st);

const char *launcher_state_name(enum inst_state s);

/* The backends built into this binary, space separated, for `beckond -V`. */
void launcher_backend_names(char *buf, size_t len);

#endif
