#include "policy.h"

static bool policy_holds_memory(enum policy_state s)
{
	return s == POLICY_BOOTING || s == POLICY_RUNNING || s == POLICY_PAUSED;
}

/* The idle clock starts at the last activity, or at the state change when
 * there was none (a guest woken by `beckonctl start`). */
static int64_t policy_idle_us(const struct policy_view *v, int64_t now_us)
{
	int64_t from = v->last_activity_us > v->since_us ? v->last_activity_us : v->since_us;

	return now_us > from ? now_us - from : 0;
}

static enum policy_action policy_on_idle(enum conf_on_idle on_idle)
{
	switch (on_idle) {
	case CONF_IDLE_PAUSE:
		return POLICY_PAUSE;
	case CONF_IDLE_SUSPEND:
		return POLICY_SUSPEND;
	case CONF_IDLE_SHUTDOWN:
		return POLICY_SHUTDOWN;
	case CONF_IDLE_DESTROY:
		return POLICY_DESTROY;
	}
	return POLICY_KEEP;
}

enum policy_action policy_idle(const struct policy_view *v, int64_t now_us)
{
	/* idle_timeout "0s": never idle. */
	if (v->state != POLICY_RUNNING || v->open_connections > 0 || v->idle_timeout_ms == 0)
		return POLICY_KEEP;
	if ((uint64_t)policy_idle_us(v, now_us) < v->idle_timeout_ms * 1000)
		return POLICY_KEEP;
	return policy_on_idle(v->on_idle);
}

enum policy_consent policy_consent(const struct policy_view *v, const struct policy_consent_view *c,
                                   int64_t now_us)
{
	int64_t from = v->last_activity_us > v->since_us ? v->last_activity_us : v->since_us;

	if (c->idle_max_ms != 0 && (uint64_t)policy_idle_us(v, now_us) >= c->idle_max_ms * 1000)
		return POLICY_CONSENT_FORCE;
	if (c->asking)
		return POLICY_CONSENT_WAIT;
	if (c->not_now_us != 0 && c->not_now_us >= from &&
	    (uint64_t)(now_us - c->not_now_us) < c->interval_ms * 1000)
		return POLICY_CONSENT_WAIT;
	return POLICY_CONSENT_ASK;
}

enum policy_action policy_evict_action(const struct policy_view *v)
{
	/* Pausing keeps the memory, so an eviction of a pausing service destroys. */
	if (v->on_idle == CONF_IDLE_SUSPEND)
		return POLICY_SUSPEND;
	if (v->on_idle == CONF_IDLE_SHUTDOWN)
		return POLICY_SHUTDOWN;
	return POLICY_DESTROY;
}

static bool policy_evictable(const struct policy_view *v, uint64_t min_idle_ms, int64_t now_us)
{
	if (v->state != POLICY_RUNNING && v->state != POLICY_PAUSED)
		return false;
	return v->open_connections == 0 &&
	       (uint64_t)policy_idle_us(v, now_us) >= min_idle_ms * 1000;
}

/* The least recently active candidate not yet taken; -1 when none. */
static long policy_lru(const struct policy_view *views, size_t n, const bool *taken,
                       uint64_t min_idle_ms, int64_t now_us)
{
	long best = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (taken[i] || !policy_evictable(&views[i], min_idle_ms, now_us))
			continue;
		if (best < 0 ||
		    policy_idle_us(&views[i], now_us) > policy_idle_us(&views[best], now_us))
			best = (long)i;
	}
	return best;
}

static bool policy_fits(uint64_t count, uint64_t mem, uint64_t need, uint64_t max_instances,
                        uint64_t max_memory)
{
	return (max_instances == 0 || count + 1 <= max_instances) &&
	       (max_memory == 0 || mem + need <= max_memory);
}

int policy_make_room(const struct policy_view *views, size_t n, uint64_t memory,
                     uint64_t max_instances, uint64_t max_memory, uint64_t min_idle_ms,
                     int64_t now_us, size_t *victims)
{
	bool taken[n > 0 ? n : 1];
	uint64_t count = 0, mem = 0;
	size_t i;
	int nv = 0;

	if (max_memory != 0 && memory > max_memory)
		return -1;
	for (i = 0; i < n; i++) {
		taken[i] = false;
		if (policy_holds_memory(views[i].state)) {
			count++;
			mem += views[i].memory;
		}
	}
	while (!policy_fits(count, mem, memory, max_instances, max_memory)) {
		long v = policy_lru(views, n, taken, min_idle_ms, now_us);

		if (v < 0)
			return -1;
		taken[v] = true;
		victims[nv++] = (size_t)v;
		count--;
		mem -= views[v].memory;
	}
	return nv;
}

const char *policy_action_name(enum policy_action a)
{
	static const char *names[] = {"keep", "pause", "suspend", "shutdown", "destroy"};

	return a <= POLICY_DESTROY ? names[a] : "?";
}
