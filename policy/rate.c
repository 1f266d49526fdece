#include <string.h>

#include "policy.h"

bool policy_bucket_take(struct policy_bucket *b, double rate, double burst, int64_t now_us)
{
	if (b->last_us == 0) {
		b->tokens = burst;
	} else if (now_us > b->last_us) {
		b->tokens += (double)(now_us - b->last_us) * rate / 1e6;
		if (b->tokens > burst)
			b->tokens = burst;
	}
	b->last_us = now_us;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* FNV-1a: spreads client addresses over the table. */
static size_t policy_hash(const uint8_t *addr, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % POLICY_CLIENTS;
}

bool policy_client_take(struct policy_clients *c, const void *addr, size_t len, double rate,
                        double burst, int64_t now_us)
{
	uint8_t key[16] = {0};
	size_t i = policy_hash(addr, len > 16 ? 16 : len);

	memcpy(key, addr, len > 16 ? 16 : len);
	/* One slot a hash: a colliding client takes over the slot with a full
	 * bucket, which errs on the side of serving. */
	if (!c->slot[i].used || memcmp(c->slot[i].addr, key, sizeof(key)) != 0) {
		memcpy(c->slot[i].addr, key, sizeof(key));
		c->slot[i].used = true;
		c->slot[i].bucket.last_us = 0;
	}
	return policy_bucket_take(&c->slot[i].bucket, rate, burst, now_us);
}
