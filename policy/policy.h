/*
 * Decisions only: the idle policy, capacity and boot rate limits. Pure
 * functions of their inputs; no clock, no I/O. The launcher feeds them on a
 * timer and carries out what they return.
 */
#ifndef BECKON_POLICY_H
#define BECKON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* What the policy sees of one instance. */
enum policy_state { POLICY_DOWN, POLICY_BOOTING, POLICY_RUNNING, POLICY_PAUSED, POLICY_SAVED };

struct policy_view {
	enum policy_state state;
	enum conf_on_idle on_idle;
	uint64_t idle_timeout_ms;
	uint64_t memory;          /* bytes the instance holds while booting, running or paused */
	int64_t last_activity_us; /* a query, a connection, traffic; 0 when none */
	int64_t since_us;         /* when it entered its state */
	unsigned open_connections;
};

enum policy_action {
	POLICY_KEEP,
	POLICY_PAUSE,
	POLICY_SUSPEND,
	POLICY_SHUTDOWN,
	POLICY_DESTROY,
};

/*
 * The idle decision for one instance at NOW: on_idle once it has had no
 * activity and no open connection for idle_timeout. A paused instance
 * stays paused; anything not running is kept.
 */
enum policy_action policy_idle(const struct policy_view *v, int64_t now_us);

/* What the idle engine knows of the guest's say (idle_check) for one instance. */
struct policy_consent_view {
	uint64_t idle_max_ms; /* idle this long: act unasked; 0: never */
	uint64_t interval_ms; /* after a "not now", ask again this much later */
	int64_t not_now_us;   /* the guest's last "not now"; 0: none */
	bool asking;          /* a question is under way */
};

enum policy_consent {
	POLICY_CONSENT_WAIT,  /* keep it: a question is under way, or it said "not now" lately */
	POLICY_CONSENT_ASK,   /* ask the guest now */
	POLICY_CONSENT_FORCE, /* idle for idle_max: act whatever it says */
};

/*
 * For an instance policy_idle would act on, and whose service asks the
 * guest first: whether to ask, wait, or act anyway. A "not now" older than
 * the last activity (or state change) is forgotten.
 */
enum policy_consent policy_consent(const struct policy_view *v, const struct policy_consent_view *c,
                                   int64_t now_us);

/* The action that frees an instance's memory when it must make room. */
enum policy_action policy_evict_action(const struct policy_view *v);

/*
 * Room for one more instance needing MEMORY bytes, with at most
 * MAX_INSTANCES holding memory (0: no limit) and MAX_MEMORY bytes in all
 * (0: no limit). Writes the indices of the instances to evict, least
 * recently used first, to VICTIMS (room for N) and returns how many; only
 * instances with no open connection and idle for at least MIN_IDLE_MS are
 * candidates. -1 when no choice of victims makes room.
 */
int policy_make_room(const struct policy_view *views, size_t n, uint64_t memory,
                     uint64_t max_instances, uint64_t max_memory, uint64_t min_idle_ms,
                     int64_t now_us, size_t *victims);

/* A token bucket: RATE tokens a second, at most BURST. */
struct policy_bucket {
	double tokens;
	int64_t last_us; /* 0: new, full */
};

/* Take one token at NOW; false when the bucket is empty. */
bool policy_bucket_take(struct policy_bucket *b, double rate, double burst, int64_t now_us);

/*
 * Per-client boot limits: a fixed table of buckets keyed by client
 * address, the oldest reused when full, so that a flood of addresses costs
 * no memory.
 */
#define POLICY_CLIENTS 1024
struct policy_clients {
	struct {
		uint8_t addr[16];
		bool used;
		struct policy_bucket bucket;
	} slot[POLICY_CLIENTS];
};

/* Take a token for the client ADDR (4 or 16 bytes). */
bool policy_client_take(struct policy_clients *c, const void *addr, size_t len, double rate,
                        double burst, int64_t now_us);

const char *policy_action_name(enum policy_action a);

/* What the scaler sees of one service with replicas (replicas.max > 1). */
struct policy_replicas_view {
	unsigned min, max, target; /* replicas.* */
	unsigned up;               /* replicas booting, ready or paused */
	unsigned booting;          /* ... of them booting */
	unsigned open;             /* open connections to them all */
	int64_t low_since_us;      /* since when policy_replicas_low held; 0: it does not */
	uint64_t idle_timeout_ms;
};

enum policy_scale { POLICY_SCALE_KEEP, POLICY_SCALE_UP, POLICY_SCALE_DOWN };

/* Whether the open connections would fit one replica fewer (each at most target). */
bool policy_replicas_low(const struct policy_replicas_view *v);

/*
 * Boot another replica (UP): fewer than min are up, or none is booting and
 * each of those up has more than target open connections, below max.
 * Stop one (DOWN): more than max(min, 1) are up and the load has fit one
 * fewer for idle_timeout; one at a time (the caller starts LOW_SINCE
 * again after each).
 */
enum policy_scale policy_replicas(const struct policy_replicas_view *v, int64_t now_us);

#endif
