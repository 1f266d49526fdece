/* The replica scaler's decision (policy.h): a pure function of the counts and the clock. */
#include "policy.h"

bool policy_replicas_low(const struct policy_replicas_view *v)
{
	return v->up > 1 && v->open <= (v->up - 1) * v->target;
}

enum policy_scale policy_replicas(const struct policy_replicas_view *v, int64_t now_us)
{
	unsigned floor = v->min > 1 ? v->min : 1;

	if (v->up < v->min && v->up < v->max)
		return POLICY_SCALE_UP;
	/* One boot at a time: the one under way takes its share once ready. */
	if (v->up >= 1 && v->up < v->max && v->booting == 0 && v->open > v->up * v->target)
		return POLICY_SCALE_UP;
	if (v->up > floor && v->low_since_us > 0 &&
	    now_us - v->low_since_us >= (int64_t)v->idle_timeout_ms * 1000)
		return POLICY_SCALE_DOWN;
	return POLICY_SCALE_KEEP;
}
