/*
 * Admission before a boot: capacity (max_instances, max_memory), with idle
 * instances evicted least recently used first, then the boot rate limits,
 * global and per client. A refusal is logged (at most once a second for
 * each reason, with a count of the rest); the launcher counts it for metrics.
 * With a wake queue, no room is not final (the launcher queues the wake and
 * asks again): the launcher logs that, not this file.
 */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "conf.h"
#include "engine_int.h"
#include "log.h"
#include "room.h"

/* Recently active instances are not evicted: the client that woke one is
 * probably connecting to it right now. */
#define CAP_MIN_IDLE_MS 1000
#define CAP_LOG_EVERY_US 1000000

struct admit {
	uint64_t max_instances, max_memory;
	uint32_t rate, burst, client_rate, client_burst;
	struct policy_bucket bucket;
	struct policy_clients *clients;
	int64_t logged_us[LAUNCHER_REFUSED_N];
	unsigned quiet[LAUNCHER_REFUSED_N]; /* refusals not logged since */
};

struct admit *admit_new(void)
{
	struct admit *c = calloc(1, sizeof(*c));

	if (c != NULL && (c->clients = calloc(1, sizeof(*c->clients))) == NULL) {
		free(c);
		c = NULL;
	}
	return c;
}

void admit_free(struct admit *c)
{
	if (c == NULL)
		return;
	free(c->clients);
	free(c);
}

void admit_conf(struct admit *c, const struct conf *conf)
{
	c->max_instances = conf->max_instances;
	c->max_memory = conf->max_memory;
	c->rate = conf->boot_rate;
	c->burst = conf->boot_burst;
	c->client_rate = conf->client_boot_rate;
	c->client_burst = conf->client_boot_burst;
}

static void cap_client_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = NULL;

	if (sa != NULL && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "beckon");
}

static int cap_refuse(struct admit *c, struct instance *inst, enum launcher_refusal r,
                      const struct sockaddr *client)
{
	int64_t now = launcher_now_us();
	char who[INET6_ADDRSTRLEN];

	if (now - c->logged_us[r] < CAP_LOG_EVERY_US) {
		c->quiet[r]++;
		return -1;
	}
	cap_client_text(client, who, sizeof(who));
	log_warnx("%s: boot refused (%s limit), requested by %s; %u more refused for this "
	          "reason in the last second",
	          launcher_service(inst)->name, launcher_refusal_name(r), who, c->quiet[r]);
	c->logged_us[r] = now;
	c->quiet[r] = 0;
	return -1;
}

/* The boot rate limits; false when over one (*WHY says which). */
static bool cap_rate_ok(struct admit *c, const struct sockaddr *client, int64_t now,
                        enum launcher_refusal *why)
{
	const void *addr = NULL;
	size_t len = 0;

	if (client != NULL && client->sa_family == AF_INET) {
		addr = &((const struct sockaddr_in *)client)->sin_addr;
		len = 4;
	} else if (client != NULL && client->sa_family == AF_INET6) {
		addr = &((const struct sockaddr_in6 *)client)->sin6_addr;
		len = 16;
	}
	*why = LAUNCHER_REFUSED_CLIENT;
	if (c->client_rate > 0 && addr != NULL &&
	    !policy_client_take(c->clients, addr, len, c->client_rate, c->client_burst, now))
		return false;
	*why = LAUNCHER_REFUSED_RATE;
	return c->rate == 0 || policy_bucket_take(&c->bucket, c->rate, c->burst, now);
}

/* The instances and their views, SELF as down (it is about to boot). */
struct cap_set {
	struct instance *self;
	struct policy_view *views;
	struct instance **insts;
	size_t *victims;
	size_t n, max;
};

static void cap_view_one(struct instance *inst, void *arg)
{
	struct cap_set *cs = arg;

	if (cs->n == cs->max)
		return;
	engine_view(inst, &cs->views[cs->n]);
	if (inst == cs->self)
		cs->views[cs->n].state = POLICY_DOWN;
	cs->insts[cs->n++] = inst;
}

static void cap_views(struct engine *e, struct cap_set *cs)
{
	cs->n = 0;
	launcher_foreach(e->l, cap_view_one, cs);
}

/*
 * Room for CS->self: the victims' count (in CS->victims), -1 when there is
 * none. Before evicting or refusing, conntrack is read: a guest with an
 * open connection that bypasses beckon is busy.
 */
static int cap_room(struct engine *e, struct cap_set *cs, bool warm)
{
	struct admit *c = e->admit;
	uint64_t memory = launcher_service(cs->self)->memory;
	int64_t now = launcher_now_us();
	int nv;

	cap_views(e, cs);
	nv = policy_make_room(cs->views, cs->n, memory, c->max_instances, c->max_memory,
	                      CAP_MIN_IDLE_MS, now, cs->victims);
	if (nv == 0 || warm)
		return warm && nv > 0 ? -1 : nv;
	/* Evicting, or refusing: on conntrack as it is now, not as it was. */
	if (activity_conntrack(e->act, e->l) == 0) {
		cap_views(e, cs);
		nv = policy_make_room(cs->views, cs->n, memory, c->max_instances, c->max_memory,
		                      CAP_MIN_IDLE_MS, now, cs->victims);
	}
	return nv;
}

static void cap_evict(struct cap_set *cs, int nv)
{
	char why[64];

	snprintf(why, sizeof(why), "evicted to make room for %s", launcher_service(cs->self)->name);
	for (int i = 0; i < nv; i++)
		engine_act(cs->insts[cs->victims[i]],
		           policy_evict_action(&cs->views[cs->victims[i]]), why);
}

int admit_boot(struct engine *e, struct instance *inst, const struct sockaddr *client, bool warm,
               enum launcher_refusal *why)
{
	struct admit *c = e->admit;
	struct cap_set cs = {.self = inst};
	int nv = 0, rc = -1;

	/* Room that frees up goes to the wakes waiting for it, not to a warm pool. */
	if (warm && launcher_wake_waiting(e->l) > 0) {
		log_info("%s: warm: wakes are waiting for room", launcher_service(inst)->name);
		*why = LAUNCHER_REFUSED_CAPACITY;
		return -1;
	}
	if (c->max_instances != 0 || c->max_memory != 0) {
		cs.max = launcher_count(e->l);
		cs.views = calloc(cs.max, sizeof(*cs.views));
		cs.insts = calloc(cs.max, sizeof(*cs.insts));
		cs.victims = calloc(cs.max, sizeof(*cs.victims));
		if (cs.views == NULL || cs.insts == NULL || cs.victims == NULL) {
			log_warn("%s: admission", launcher_service(inst)->name);
			*why = LAUNCHER_REFUSED_CAPACITY;
			goto done;
		}
		if ((nv = cap_room(e, &cs, warm)) < 0) {
			*why = LAUNCHER_REFUSED_CAPACITY;
			if (!warm && launcher_wake_queue_on(e->l))
				log_debug("%s: no room yet (the wake queue decides)",
				          launcher_service(inst)->name);
			else if (!warm)
				cap_refuse(c, inst, LAUNCHER_REFUSED_CAPACITY, client);
			else
				log_info("%s: warm: no room (max_instances, max_memory)",
				         launcher_service(inst)->name);
			goto done;
		}
	}
	if (!warm && !cap_rate_ok(c, client, launcher_now_us(), why)) {
		cap_refuse(c, inst, *why, client);
		goto done;
	}
	cap_evict(&cs, nv);
	rc = 0;
done:
	free(cs.views);
	free(cs.insts);
	free(cs.victims);
	return rc;
}
