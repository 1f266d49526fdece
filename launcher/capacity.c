/*
 * Admission before a boot: capacity (max_instances, max_memory), with idle
 * instances evicted least recently used first, then the boot rate limits,
 * global and per client. A refusal is logged (at most once a second for
 * each reason, with a count of the rest) and counted for metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "internal.h"
#include "log.h"

/* Recently active instances are not evicted: the client that woke one is
 * probably connecting to it right now. */
#define CAP_MIN_IDLE_MS 1000
#define CAP_LOG_EVERY_US 1000000

struct launcher_cap {
	uint64_t max_instances, max_memory;
	uint32_t rate, burst, client_rate, client_burst;
	struct policy_bucket bucket;
	struct policy_clients *clients;
	uint64_t refused[LAUNCHER_REFUSED_N];
	int64_t logged_us[LAUNCHER_REFUSED_N];
	unsigned quiet[LAUNCHER_REFUSED_N]; /* refusals not logged since */
};

static const char *const cap_reasons[LAUNCHER_REFUSED_N] = {
    [LAUNCHER_REFUSED_RATE] = "rate",
    [LAUNCHER_REFUSED_CLIENT] = "client_rate",
    [LAUNCHER_REFUSED_CAPACITY] = "capacity",
};

const char *launcher_refusal_name(enum launcher_refusal r)
{
	return (unsigned)r < LAUNCHER_REFUSED_N ? cap_reasons[r] : "?";
}

struct launcher_cap *launcher_cap_new(void)
{
	struct launcher_cap *c = calloc(1, sizeof(*c));

	if (c != NULL && (c->clients = calloc(1, sizeof(*c->clients))) == NULL) {
		free(c);
		c = NULL;
	}
	return c;
}

void launcher_cap_free(struct launcher_cap *c)
{
	if (c == NULL)
		return;
	free(c->clients);
	free(c);
}

void launcher_cap_conf(struct launcher_cap *c, const struct conf *conf)
{
	c->max_instances = conf->max_instances;
	c->max_memory = conf->max_memory;
	c->rate = conf->boot_rate;
	c->burst = conf->boot_burst;
	c->client_rate = conf->client_boot_rate;
	c->client_burst = conf->client_boot_burst;
}

void launcher_cap_refused(const struct launcher_cap *c, uint64_t out[LAUNCHER_REFUSED_N])
{
	memcpy(out, c->refused, sizeof(c->refused));
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

static int cap_refuse(struct instance *inst, enum launcher_refusal r, const struct sockaddr *client)
{
	struct launcher_cap *c = inst->l->cap;
	int64_t now = launcher_now_us();
	char who[INET6_ADDRSTRLEN];

	c->refused[r]++;
	if (now - c->logged_us[r] < CAP_LOG_EVERY_US) {
		c->quiet[r]++;
		return -1;
	}
	cap_client_text(client, who, sizeof(who));
	log_warnx("%s: boot refused (%s limit), requested by %s; %u more refused for this "
	          "reason in the last second",
	          inst->svc->name, cap_reasons[r], who, c->quiet[r]);
	c->logged_us[r] = now;
	c->quiet[r] = 0;
	return -1;
}

/* The boot rate limits; false when over one (*WHY says which). */
static bool cap_rate_ok(struct launcher_cap *c, const struct sockaddr *client, int64_t now,
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

/* Views of every instance, SELF as down (it is about to boot). */
static size_t cap_views(struct launcher *l, struct instance *self, struct policy_view *views,
                        struct instance **insts)
{
	struct instance *inst;
	size_t n = 0;

	TAILQ_FOREACH(inst, &l->instances, entry)
	{
		launcher_idle_view(inst, &views[n]);
		if (inst == self)
			views[n].state = POLICY_DOWN;
		insts[n++] = inst;
	}
	return n;
}

/*
 * Room for SELF: the victims' count (written to VICTIMS), -1 when there is
 * none. Before evicting or refusing, conntrack is read: a guest with an
 * open connection that bypasses beckon is busy.
 */
static int cap_room(struct launcher *l, struct instance *self, struct policy_view *views,
                    struct instance **insts, size_t *victims, bool warm)
{
	struct launcher_cap *c = l->cap;
	int64_t now = launcher_now_us();
	size_t n = cap_views(l, self, views, insts);
	int nv;

	nv = policy_make_room(views, n, self->svc->memory, c->max_instances, c->max_memory,
	                      CAP_MIN_IDLE_MS, now, victims);
	if (nv == 0 || warm)
		return warm && nv > 0 ? -1 : nv;
	/* Evicting, or refusing: on conntrack as it is now, not as it was. */
	if (launcher_act_conntrack(l->act, l) == 0) {
		n = cap_views(l, self, views, insts);
		nv = policy_make_room(views, n, self->svc->memory, c->max_instances, c->max_memory,
		                      CAP_MIN_IDLE_MS, now, victims);
	}
	return nv;
}

static void cap_evict(struct instance *self, struct policy_view *views, struct instance **insts,
                      const size_t *victims, int nv)
{
	char why[64];

	snprintf(why, sizeof(why), "evicted to make room for %s", self->svc->name);
	for (int i = 0; i < nv; i++)
		launcher_idle_act(insts[victims[i]], policy_evict_action(&views[victims[i]]), why);
}

static size_t cap_count(struct launcher *l)
{
	struct instance *inst;
	size_t n = 0;

	TAILQ_FOREACH(inst, &l->instances, entry)
	n++;
	return n;
}

int launcher_cap_admit(struct instance *inst, const struct sockaddr *client, bool warm)
{
	struct launcher *l = inst->l;
	struct launcher_cap *c = l->cap;
	struct policy_view *views = NULL;
	struct instance **insts = NULL;
	size_t n = 0, *victims = NULL;
	enum launcher_refusal why;
	int nv = 0, rc = -1;

	if (c == NULL)
		return 0;
	if (c->max_instances != 0 || c->max_memory != 0) {
		n = cap_count(l);
		views = calloc(n, sizeof(*views));
		insts = calloc(n, sizeof(*insts));
		victims = calloc(n, sizeof(*victims));
		if (views == NULL || insts == NULL || victims == NULL) {
			log_warn("%s: admission", inst->svc->name);
			goto done;
		}
		if ((nv = cap_room(l, inst, views, insts, victims, warm)) < 0) {
			if (!warm)
				cap_refuse(inst, LAUNCHER_REFUSED_CAPACITY, client);
			else
				log_info("%s: warm: no room (max_instances, max_memory)",
				         inst->svc->name);
			goto done;
		}
	}
	if (!warm && !cap_rate_ok(c, client, launcher_now_us(), &why)) {
		cap_refuse(inst, why, client);
		goto done;
	}
	cap_evict(inst, views, insts, victims, nv);
	rc = 0;
done:
	free(views);
	free(insts);
	free(victims);
	return rc;
}
