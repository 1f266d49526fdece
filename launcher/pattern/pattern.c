/*
 * Pattern services: an instance per label, made when a name is first
 * asked for and its image exists, with an address from the service's
 * pool; forgotten (its address back in the pool, its tap gone) once it is
 * stopped or failed with nobody waiting on it: after on_idle "destroy" or
 * "shutdown", an eviction, `beckonctl stop`, or a guest that died. A name
 * whose image does not exist leaves nothing behind: a flood of random
 * names costs a stat(2) each and no memory.
 *
 * Instances made here sit in the launcher's list like any other, named
 * "LABEL.SERVICE", with a service of their own (conf_pattern_instance):
 * the state machine, backends, probes, the idle engine and the control
 * socket see nothing different.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "backend.h"
#include "conf.h"
#include "hostnet.h"
#include "core.h"
#include "launcher.h"
#include "log.h"
#include "part.h"
#include "pattern.h"
#include "pool.h"
#include "revive.h"

struct lpattern {
	struct conf_service *svc; /* the pattern service, our own copy */
	char *state_dir;
	enum conf_net_mode net_mode;
	enum conf_hold hold;
	struct in_addr subnet; /* what the pool's skipped addresses came from */
	int prefix;
	struct pool *pool;
	unsigned ninst; /* its instances now */
};

static void pattern_free(struct lpattern *p)
{
	if (p == NULL)
		return;
	conf_service_free(p->svc);
	free(p->state_dir);
	pool_free(p->pool);
	free(p);
}

/* Whether a guest of SVC sits on the bridge, where 3 addresses are not a guest's. */
static bool pattern_bridged(const struct conf *conf, const struct conf_service *svc)
{
	return conf->net_mode == CONF_NET_BRIDGE && svc->backend != CONF_BACKEND_EXEC;
}

static struct lpattern *pattern_new(const struct conf *conf, const struct conf_service *svc)
{
	uint32_t n = ntohl(conf->subnet.s_addr);
	uint32_t bcast = n | ~(conf->prefix == 0 ? 0 : 0xffffffffu << (32 - conf->prefix));
	struct in_addr skip[3] = {{htonl(n)}, {htonl(n + 1)}, {htonl(bcast)}};
	struct lpattern *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->svc = conf_service_dup(svc);
	p->state_dir = strdup(conf->state_dir);
	p->net_mode = conf->net_mode;
	p->hold = conf->hold;
	p->subnet = conf->subnet;
	p->prefix = conf->prefix;
	p->pool =
	    pool_new(svc->pool_first, svc->pool_last, skip, pattern_bridged(conf, svc) ? 3 : 0);
	if (p->svc == NULL || p->state_dir == NULL || p->pool == NULL) {
		pattern_free(p);
		return NULL;
	}
	return p;
}

/* Whether OLD can go on as pattern service SVC of CONF, its instances kept. */
static bool pattern_same(const struct lpattern *old, const struct conf *conf,
                         const struct conf_service *svc)
{
	return conf_service_equal(old->svc, svc) && strcmp(old->state_dir, conf->state_dir) == 0 &&
	       old->net_mode == conf->net_mode && old->hold == conf->hold &&
	       old->subnet.s_addr == conf->subnet.s_addr && old->prefix == conf->prefix;
}

static struct lpattern *pattern_find(struct lpattern **pats, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (pats[i] != NULL && strcmp(pats[i]->svc->name, name) == 0)
			return pats[i];
	return NULL;
}

static void patterns_drop(struct launcher *l, struct lpattern **pats, size_t n);

static int patterns_prepare(struct launcher *l, const struct conf *conf)
{
	struct lpattern **pats, *old;
	size_t n = 0;

	if ((pats = calloc(conf->nservices + 1, sizeof(*pats))) == NULL)
		return -1;
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct conf_service *svc = &conf->services[i];

		if (!svc->pattern && svc->replicas_max <= 1)
			continue;
		old = pattern_find(l->patterns, l->npatterns, svc->name);
		if (old != NULL && pattern_same(old, conf, svc))
			pats[n++] = old;
		else if ((pats[n++] = pattern_new(conf, svc)) == NULL)
			goto fail;
	}
	l->pats_next = pats;
	l->npats_next = n;
	return 0;
fail:
	patterns_drop(l, pats, n);
	return -1;
}

/* Whether P is one of L's patterns now. */
static bool pattern_current(const struct launcher *l, const struct lpattern *p)
{
	for (size_t i = 0; i < l->npatterns; i++)
		if (l->patterns[i] == p)
			return true;
	return false;
}

/* Free what prepare made that L does not hold. */
static void patterns_drop(struct launcher *l, struct lpattern **pats, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pats[i] != NULL && !pattern_current(l, pats[i]))
			pattern_free(pats[i]);
	free(pats);
}

/* Before INST, made from a pattern, is freed: its address and host network go. */
static void pattern_forget(struct instance *inst)
{
	pool_put(inst->pat->pool, inst->addr);
	inst->pat->ninst--;
	if (inst->tap[0] != '\0')
		hostnet_guest_down(inst->svc->name);
}

static void patterns_abort(struct launcher *l)
{
	patterns_drop(l, l->pats_next, l->npats_next);
	l->pats_next = NULL;
	l->npats_next = 0;
}

/* The new patterns become L's; of PINST, the instances of a kept pattern go back to L's list. */
static void patterns_commit(struct launcher *l, struct instance_list *pinst)
{
	struct lpattern **pats = l->pats_next;
	size_t i, n = l->npats_next;
	struct instance *inst;

	l->pats_next = NULL;
	l->npats_next = 0;
	while ((inst = TAILQ_FIRST(pinst)) != NULL) {
		TAILQ_REMOVE(pinst, inst, entry);
		for (i = 0; i < n && pats[i] != inst->pat; i++)
			;
		if (i < n) {
			TAILQ_INSERT_TAIL(&l->instances, inst, entry);
			continue;
		}
		log_info("%s: its pattern service changed or went, forgetting it", inst->svc->name);
		pattern_forget(inst);
		launcher_inst_destroy(inst);
	}
	for (i = 0; i < l->npatterns; i++)
		if (pattern_find(pats, n, l->patterns[i]->svc->name) != l->patterns[i])
			pattern_free(l->patterns[i]);
	free(l->patterns);
	l->patterns = pats;
	l->npatterns = n;
}

static void patterns_free(struct launcher *l)
{
	for (size_t i = 0; i < l->npatterns; i++)
		pattern_free(l->patterns[i]);
	free(l->patterns);
	l->patterns = NULL;
	l->npatterns = 0;
	if (l->reap_ev != NULL)
		event_free(l->reap_ev);
	l->reap_ev = NULL;
}

/* Whether INST, made from a pattern, can be forgotten now. */
static bool pattern_reapable(const struct instance *inst)
{
	return (inst->state == INST_STOPPED || inst->state == INST_FAILED) &&
	       TAILQ_EMPTY(&inst->waiters) && !inst->rewake && !inst->start_deferred &&
	       launcher_inst_waiting(inst) == NULL && !launcher_inst_has_shell(inst) &&
	       inst->held == 0 && inst->open == 0 && !inst->doomed &&
	       !launcher_child_pending(inst->l, inst->svc->name);
}

static void pattern_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	struct instance *inst, *next;

	(void)fd;
	(void)what;
	launcher_flush_done(l); /* no finished wait may point at what goes below */
	for (inst = TAILQ_FIRST(&l->instances); inst != NULL; inst = next) {
		next = TAILQ_NEXT(inst, entry);
		if (inst->pat == NULL || !pattern_reapable(inst))
			continue;
		log_info("%s: %s, forgotten (address %s back in the pool)", inst->svc->name,
		         launcher_state_name(inst->state), inst->address);
		TAILQ_REMOVE(&l->instances, inst, entry);
		pattern_forget(inst);
		launcher_inst_destroy(inst);
	}
}

static void pattern_reap_soon(struct launcher *l)
{
	if (l->npatterns == 0)
		return;
	if (l->reap_ev == NULL &&
	    (l->reap_ev = event_new(l->base, -1, 0, pattern_reap_cb, l)) == NULL) {
		log_warn("pattern: reap event");
		return;
	}
	event_active(l->reap_ev, 0, 0);
}

/* The image of P's instance for LABEL is a readable file. */
static bool pattern_image_exists(const struct lpattern *p, const char *label)
{
	char path[4096];
	const char *s = p->svc->image, *at;
	size_t len = 0, n;
	struct stat st;

	if (s == NULL)
		return false;
	while ((at = strstr(s, "{label}")) != NULL || *s) {
		n = at != NULL ? (size_t)(at - s) : strlen(s);
		if (len + n + CONF_DNS_LABEL_MAX + 1 > sizeof(path))
			return false;
		memcpy(path + len, s, n);
		len += n;
		if (at == NULL)
			break;
		len += (size_t)snprintf(path + len, sizeof(path) - len, "%s", label);
		s = at + 7;
	}
	path[len] = '\0';
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* In bridge mode a tap name and a MAC are hashes of the name: no two instances share one. */
static bool pattern_clash(const struct launcher *l, const struct instance *inst)
{
	const struct instance *o;

	if (inst->tap[0] == '\0')
		return false;
	TAILQ_FOREACH(o, &l->instances, entry)
	if (strcmp(o->tap, inst->tap) == 0 || strcmp(o->mac, inst->mac) == 0) {
		log_warnx("%s: its tap name or MAC (hashes of the name) would be those of %s: "
		          "not made",
		          inst->svc->name, o->svc->name);
		return true;
	}
	return false;
}

/*
 * An instance of P running SVC (freed here) at ADDR, taken from P's pool,
 * in L's list; NULL when not (ADDR back in the pool).
 */
static struct instance *pattern_add(struct launcher *l, struct lpattern *p,
                                    struct conf_service *svc, struct in_addr addr)
{
	struct instance *inst = NULL;

	if (svc == NULL ||
	    (inst = launcher_inst_make(l, svc, p->state_dir, p->net_mode, p->hold, false)) ==
	        NULL ||
	    pattern_clash(l, inst)) {
		if (inst != NULL)
			launcher_inst_destroy(inst);
		conf_service_free(svc);
		pool_put(p->pool, addr);
		return NULL;
	}
	conf_service_free(svc);
	inst->pat = p;
	p->ninst++;
	TAILQ_INSERT_TAIL(&l->instances, inst, entry);
	pattern_reap_soon(l); /* should nobody wake it */
	return inst;
}

/* A new instance of P for LABEL, in L's list. NULL when not (*WHY says why). */
static struct instance *pattern_make(struct launcher *l, struct lpattern *p, const char *label,
                                     enum launcher_pattern_miss *why)
{
	struct instance *inst;
	struct in_addr addr;

	*why = LAUNCHER_PATTERN_FULL;
	if (pool_take(p->pool, &addr) == -1) {
		log_debug("%s: no free address in its pool for %s", p->svc->name, label);
		return NULL;
	}
	*why = LAUNCHER_PATTERN_ERROR;
	if ((inst = pattern_add(l, p, conf_pattern_instance(p->svc, label, addr), addr)) == NULL)
		return NULL;
	log_info("%s: made from pattern %s, address %s", inst->svc->name, p->svc->dns[0],
	         inst->address);
	return inst;
}

struct instance *launcher_pattern_get(struct launcher *l, const char *service, const char *label,
                                      bool create, enum launcher_pattern_miss *why)
{
	char name[CONF_INSTANCE_NAME_MAX + 1];
	struct lpattern *p = pattern_find(l->patterns, l->npatterns, service);
	struct instance *inst;

	*why = LAUNCHER_PATTERN_ERROR;
	if (p == NULL || strlen(label) > CONF_DNS_LABEL_MAX)
		return NULL;
	snprintf(name, sizeof(name), "%s.%s", label, service);
	if ((inst = launcher_find(l, name)) != NULL)
		return inst;
	*why = LAUNCHER_PATTERN_NOIMAGE;
	if (!pattern_image_exists(p, label))
		return NULL;
	*why = LAUNCHER_PATTERN_ABSENT;
	return create ? pattern_make(l, p, label, why) : NULL;
}

const char *launcher_pattern_of(const struct instance *inst)
{
	return inst->pat != NULL && inst->pat->svc->pattern ? inst->pat->svc->name : NULL;
}

/* ---- replicas: a service's extra instances, "N.SERVICE" (N from 2), made the same way ---- */

const char *launcher_replica_of(const struct instance *inst)
{
	return inst->pat != NULL && !inst->pat->svc->pattern ? inst->pat->svc->name : NULL;
}

unsigned launcher_replica_index(const struct instance *inst)
{
	if (inst->pat != NULL)
		return inst->pat->svc->pattern ? 0 : (unsigned)strtoul(inst->svc->name, NULL, 10);
	return inst->svc->replicas_max > 1 ? 1 : 0;
}

size_t launcher_replicas(struct launcher *l, const char *service, struct instance **out, size_t max)
{
	struct instance *inst;
	size_t n = 0;

	if ((inst = launcher_find(l, service)) != NULL && n < max)
		out[n++] = inst;
	TAILQ_FOREACH(inst, &l->instances, entry)
	if (n < max && inst->pat != NULL && !inst->pat->svc->pattern &&
	    strcmp(inst->pat->svc->name, service) == 0)
		out[n++] = inst;
	return n;
}

struct instance *launcher_replica_add(struct launcher *l, const char *service)
{
	struct lpattern *p = pattern_find(l->patterns, l->npatterns, service);
	char name[CONF_INSTANCE_NAME_MAX + 1];
	struct instance *inst;
	struct in_addr addr;
	unsigned n;

	if (p == NULL || p->svc->pattern)
		return NULL;
	for (n = 2; n <= p->svc->replicas_max; n++) {
		snprintf(name, sizeof(name), "%u.%s", n, service);
		if (launcher_find(l, name) == NULL)
			break;
	}
	if (n > p->svc->replicas_max || pool_take(p->pool, &addr) == -1)
		return NULL;
	if ((inst = pattern_add(l, p, conf_replica_instance(p->svc, n, addr), addr)) == NULL)
		return NULL;
	log_info("%s: replica %u of %s, address %s", inst->svc->name, n, service, inst->address);
	return inst;
}

/* A pattern instance that stopped or failed, or that nothing holds any more, may go. */
static void patterns_state(struct instance *inst, enum inst_state old)
{
	(void)old;
	if (inst->pat != NULL && (inst->state == INST_STOPPED || inst->state == INST_FAILED))
		pattern_reap_soon(inst->l);
}

static void patterns_released(struct instance *inst)
{
	if (inst->pat != NULL)
		pattern_reap_soon(inst->l);
}

const struct launcher_part part_pattern = {
    .name = "pattern",
    .prepare = patterns_prepare,
    .commit = patterns_commit,
    .abort = patterns_abort,
    .free = patterns_free,
    .state = patterns_state,
    .released = patterns_released,
};
