/* The instance registry: creation, reload, lookup, counts, and the hooks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

#include "backend.h"
#include "conf.h"
#include "hostnet.h"
#include "core.h"
#include "launcher.h"
#include "log.h"

static const char *const state_names[INST_NSTATES] = {
    [INST_STOPPED] = "stopped", [INST_BOOTING] = "booting",     [INST_READY] = "ready",
    [INST_PAUSED] = "paused",   [INST_SUSPENDED] = "suspended", [INST_STOPPING] = "stopping",
    [INST_FAILED] = "failed",
};

static const char *const refusal_names[LAUNCHER_REFUSED_N] = {
    [LAUNCHER_REFUSED_RATE] = "rate",
    [LAUNCHER_REFUSED_CLIENT] = "client_rate",
    [LAUNCHER_REFUSED_CAPACITY] = "capacity",
};

const char *launcher_refusal_name(enum launcher_refusal r)
{
	return (unsigned)r < LAUNCHER_REFUSED_N ? refusal_names[r] : "?";
}

const char *launcher_state_name(enum inst_state s)
{
	if ((unsigned)s >= INST_NSTATES)
		return "unknown";
	return state_names[s];
}

int64_t launcher_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int launcher_mkdir_p(const char *dir)
{
	char *p, *path = strdup(dir);

	if (path == NULL)
		return -1;
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		goto fail;
	free(path);
	return 0;
fail:
	log_warn("state_dir: mkdir %s", path);
	free(path);
	return -1;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	launcher_flush_done(arg);
}

struct launcher *launcher_new(struct event_base *base, const struct conf *conf)
{
	struct launcher *l;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_warn("launcher");
		return NULL;
	}
	l->base = base;
	TAILQ_INIT(&l->instances);
	TAILQ_INIT(&l->children);
	TAILQ_INIT(&l->done);
	if ((l->done_ev = event_new(base, -1, 0, done_cb, l)) == NULL)
		goto fail;
	if (launcher_children_init(l) == -1)
		goto fail;
	if (launcher_reload(l, conf) == -1)
		goto fail;
	return l;
fail:
	launcher_free(l);
	return NULL;
}

static struct instance *find_in(struct instance_list *list, const char *name)
{
	struct instance *inst;

	TAILQ_FOREACH(inst, list, entry)
	if (strcmp(inst->svc->name, name) == 0)
		return inst;
	return NULL;
}

/* True when OLD can carry on as the instance of SVC under CONF. */
static bool inst_unchanged(const struct instance *old, const struct conf_service *svc,
                           const struct conf *conf)
{
	return conf_service_equal(old->svc, svc) && strcmp(old->state_dir, conf->state_dir) == 0 &&
	       old->net_mode == conf->net_mode && old->hold == conf->hold &&
	       old->hosted == conf_service_hosted(conf, svc) && part_keeps(old, conf);
}

/* One clash of services I and J of CONF: to ERRS as FILE:LINE: message, or logged. */
static void launcher_name_clash(const struct conf *conf, size_t i, size_t j, const char *what,
                                FILE *errs)
{
	const struct conf_service *a = &conf->services[i], *b = &conf->services[j];
	char msg[512];

	snprintf(msg, sizeof(msg),
	         "%s:%d: services[%zu]: its %s would be that of services[%zu] (\"%s\", line %d), "
	         "both being hashes of the name: rename one",
	         conf->path ? conf->path : "config", b->line, j, what, i, a->name, a->line);
	if (errs != NULL)
		fprintf(errs, "%s\n", msg);
	else
		log_warnx("%s", msg);
}

int launcher_check_names(const struct conf *conf, FILE *errs)
{
	struct name_pair {
		char tap[IFNAMSIZ];
		uint8_t mac[6];
	} * np;
	size_t n = conf->nservices;
	int rc = 0;

	if (conf->net_mode != CONF_NET_BRIDGE || n < 2)
		return 0;
	if ((np = calloc(n, sizeof(*np))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		hostnet_tap_name(conf->services[i].name, np[i].tap);
		hostnet_mac(conf->services[i].name, np[i].mac);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			/* A pattern service has no guest of its own name (pattern.c checks its
			 * instances). */
			if (conf->services[i].pattern || conf->services[j].pattern)
				continue;
			if (strcmp(np[i].tap, np[j].tap) == 0)
				launcher_name_clash(conf, i, j, "tap name", errs);
			else if (memcmp(np[i].mac, np[j].mac, sizeof(np[i].mac)) == 0)
				launcher_name_clash(conf, i, j, "MAC address", errs);
			else
				continue;
			rc = -1;
		}
	free(np);
	return rc;
}

/* Build the new list first, so that a failure leaves the old state. */
static int reload_apply(struct launcher *l, const struct conf *conf)
{
	struct instance_list next = TAILQ_HEAD_INITIALIZER(next);
	struct instance_list pinst = TAILQ_HEAD_INITIALIZER(pinst);
	struct instance *inst, *old, *tmp;
	size_t i;

	if (launcher_check_names(conf, NULL) == -1 || part_check(conf, NULL) == -1 ||
	    launcher_mkdir_p(conf->state_dir) == -1)
		return -1;
	/* What a killed beckond left (part_proc); the bridge, the taps of removed services. */
	if (part_prepare(l, conf) == -1 || backend_global_init(l, conf) == -1)
		goto fail;
	for (i = 0; i < conf->nservices; i++) {
		if (conf->services[i].pattern)
			continue; /* its instances are made on demand (launcher/pattern/) */
		old = find_in(&l->instances, conf->services[i].name);
		if (old != NULL && inst_unchanged(old, &conf->services[i], conf))
			continue;
		if ((inst = launcher_inst_new(l, &conf->services[i], conf)) == NULL)
			goto fail;
		TAILQ_INSERT_TAIL(&next, inst, entry);
		part_made(inst);
	}
	if (part_apply(l, conf) == -1)
		goto fail;
	/* Commit: pattern instances aside (part_pattern keeps or drops them with their pattern). */
	for (inst = TAILQ_FIRST(&l->instances); inst != NULL; inst = tmp) {
		tmp = TAILQ_NEXT(inst, entry);
		if (inst->pat == NULL)
			continue;
		TAILQ_REMOVE(&l->instances, inst, entry);
		TAILQ_INSERT_TAIL(&pinst, inst, entry);
	}
	/* Move kept instances over in config order, drop the rest. */
	for (i = 0; i < conf->nservices; i++) {
		if (conf->services[i].pattern)
			continue;
		inst = find_in(&next, conf->services[i].name);
		old = find_in(&l->instances, conf->services[i].name);
		if (inst != NULL) {
			TAILQ_REMOVE(&next, inst, entry);
			if (old != NULL) {
				log_info("%s: changed, recreating", old->svc->name);
				TAILQ_REMOVE(&l->instances, old, entry);
				launcher_inst_destroy(old);
			}
		} else {
			inst = old;
			TAILQ_REMOVE(&l->instances, old, entry);
		}
		TAILQ_INSERT_TAIL(&next, inst, entry);
	}
	while ((old = TAILQ_FIRST(&l->instances)) != NULL) {
		log_info("%s: removed from the config", old->svc->name);
		TAILQ_REMOVE(&l->instances, old, entry);
		launcher_inst_destroy(old);
	}
	TAILQ_CONCAT(&l->instances, &next, entry);
	part_commit(l, &pinst);
	return 0;
fail:
	while ((inst = TAILQ_FIRST(&next)) != NULL) {
		TAILQ_REMOVE(&next, inst, entry);
		launcher_inst_destroy(inst);
	}
	part_abort(l);
	return -1;
}

int launcher_reload(struct launcher *l, const struct conf *conf)
{
	int rc;

	for (size_t i = 0; i < LAUNCHER_MAX_HOOKS; i++)
		if (l->hooks[i].used && l->hooks[i].h.reloading != NULL)
			l->hooks[i].h.reloading(l, l->hooks[i].arg);
	l->reloading = true;
	rc = reload_apply(l, conf);
	l->reloading = false;
	if (rc == 0 && part_configured(l, conf) == -1)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < LAUNCHER_MAX_HOOKS; i++)
		if (l->hooks[i].used && l->hooks[i].h.reloaded != NULL)
			l->hooks[i].h.reloaded(l, conf, l->hooks[i].arg);
	return rc;
}

void launcher_free(struct launcher *l)
{
	struct instance *inst;

	if (l == NULL)
		return;
	launcher_flush_done(l);
	/* A waiter called back below cannot start anything new. */
	TAILQ_FOREACH(inst, &l->instances, entry)
	inst->doomed = true;
	while ((inst = TAILQ_FIRST(&l->instances)) != NULL) {
		TAILQ_REMOVE(&l->instances, inst, entry);
		launcher_inst_destroy(inst);
	}
	backend_global_drain(); /* the pool's VMMs */
	launcher_children_shutdown(l);
	backend_global_fini(); /* taps, neighbours, bridge */
	part_free(l);
	if (l->sigchld != NULL)
		event_free(l->sigchld);
	if (l->done_ev != NULL)
		event_free(l->done_ev);
	free(l);
}

struct instance *launcher_find(struct launcher *l, const char *service)
{
	return find_in(&l->instances, service);
}

void launcher_foreach(struct launcher *l, void (*fn)(struct instance *, void *), void *arg)
{
	struct instance *inst, *next;

	/* FN may stop the instance it is given, not free it. */
	for (inst = TAILQ_FIRST(&l->instances); inst != NULL; inst = next) {
		next = TAILQ_NEXT(inst, entry);
		fn(inst, arg);
	}
}

void launcher_stats(struct launcher *l, struct launcher_stats *st)
{
	struct instance *inst;

	memset(st, 0, sizeof(*st));
	st->boots_ok = l->boots_ok;
	st->boots_failed = l->boots_failed;
	memcpy(st->hist, l->hist, sizeof(st->hist));
	memcpy(st->refused, l->refused, sizeof(st->refused));
	part_stats(l, st);
	TAILQ_FOREACH(inst, &l->instances, entry)
	{
		st->instances[inst->state]++;
		st->held_connections += inst->held;
	}
}

void launcher_set_observer(struct launcher *l, launcher_observer_fn fn, void *arg)
{
	l->observer = fn;
	l->observer_arg = arg;
}

int launcher_add_hooks(struct launcher *l, const struct launcher_hooks *h, void *arg)
{
	for (size_t i = 0; i < LAUNCHER_MAX_HOOKS; i++) {
		if (l->hooks[i].used)
			continue;
		l->hooks[i] = (struct launcher_hook_slot){.h = *h, .arg = arg, .used = true};
		return 0;
	}
	return -1;
}

void launcher_remove_hooks(struct launcher *l, void *arg)
{
	for (size_t i = 0; i < LAUNCHER_MAX_HOOKS; i++)
		if (l->hooks[i].used && l->hooks[i].arg == arg)
			l->hooks[i].used = false;
}

void launcher_hooks_state(struct instance *inst, enum inst_state old)
{
	struct launcher *l = inst->l;

	if (l->reloading)
		return;
	for (size_t i = 0; i < LAUNCHER_MAX_HOOKS; i++)
		if (l->hooks[i].used && l->hooks[i].h.state != NULL)
			l->hooks[i].h.state(inst, old, inst->state, l->hooks[i].arg);
	if (l->observer != NULL)
		l->observer(inst, old, inst->state, l->observer_arg);
}

int launcher_hooks_admit_why(struct instance *inst, const struct sockaddr *client,
                             enum launcher_refusal *why)
{
	struct launcher *l = inst->l;

	for (size_t i = 0; i < LAUNCHER_MAX_HOOKS; i++) {
		if (!l->hooks[i].used || l->hooks[i].h.admit == NULL)
			continue;
		*why = LAUNCHER_REFUSED_CAPACITY;
		if (l->hooks[i].h.admit(inst, client, why, l->hooks[i].arg) == -1) {
			if ((unsigned)*why >= LAUNCHER_REFUSED_N)
				*why = LAUNCHER_REFUSED_CAPACITY;
			return -1;
		}
	}
	return 0;
}

int launcher_hooks_admit(struct instance *inst, const struct sockaddr *client)
{
	enum launcher_refusal why;

	if (launcher_hooks_admit_why(inst, client, &why) == 0)
		return 0;
	inst->l->refused[why]++;
	return -1;
}

/* N + DELTA, never below zero, whatever a caller gets wrong. */
static unsigned registry_count(unsigned n, int delta)
{
	return delta < 0 && n < (unsigned)-delta ? 0 : n + (unsigned)delta;
}

void launcher_connections(struct instance *inst, int held, int open)
{
	inst->held = registry_count(inst->held, held);
	inst->open = registry_count(inst->open, open);
}

void launcher_quiet(struct instance *inst, int delta)
{
	inst->quiet = registry_count(inst->quiet, delta);
}

int launcher_upstream(const struct instance *inst, uint16_t port, struct sockaddr_in *out)
{
	if (inst->ops != NULL && inst->ops->upstream != NULL)
		return inst->ops->upstream(inst, port, out);
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_addr = inst->addr;
	out->sin_port = htons(port);
	return 0;
}

int launcher_address(const struct instance *inst, struct in_addr *out)
{
	*out = inst->addr;
	return 0;
}

const struct conf_service *launcher_service(const struct instance *inst)
{
	return inst->svc;
}

void launcher_info(const struct instance *inst, struct instance_info *info)
{
	int64_t now = launcher_now_us();

	memset(info, 0, sizeof(*info));
	info->name = inst->svc->name;
	info->state = inst->state;
	info->address = inst->address;
	info->address6 = inst->address6;
	if (inst->state == INST_READY || inst->state == INST_PAUSED)
		info->uptime_ms = (now - inst->ready_at_us) / 1000;
	info->boots = inst->boots;
	info->boots_ok = inst->boots_ok;
	info->boots_failed = inst->boots_failed;
	info->idle_ms = inst->activity_us ? (now - inst->activity_us) / 1000 : -1;
	info->last_activity = inst->activity_wall;
	info->pid = inst->pid;
	info->held = inst->held;
	info->open = inst->open;
	info->quiet = inst->quiet;
	info->host = inst->host;
	info->how = inst->how;
	part_info(inst, info);
}

const char *launcher_how_name(enum launcher_how h)
{
	static const char *const names[LAUNCHER_HOW_N] = {"",        "boot",   "template", "shell",
	                                                  "restore", "resume", "pool"};

	return h < LAUNCHER_HOW_N ? names[h] : "";
}

/* Boot and wake times run from about a millisecond to the boot timeout. */
const double launcher_hist_bounds[LAUNCHER_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,   0.25,   0.5,   1,    2.5,   5};

void launcher_hist_observe(struct launcher_hist *h, double seconds)
{
	int i = 0;

	while (i < LAUNCHER_HIST_BUCKETS && seconds > launcher_hist_bounds[i])
		i++;
	h->counts[i]++;
	h->sum += seconds;
}

enum inst_state launcher_state(const struct instance *inst)
{
	return inst->state;
}

int64_t launcher_activity_us(const struct instance *inst)
{
	return inst->activity_us;
}

int64_t launcher_state_since_us(const struct instance *inst)
{
	return inst->since_us;
}

const char *launcher_tap(const struct instance *inst)
{
	return inst->tap;
}

const char *launcher_console_last(const struct instance *inst)
{
	return inst->console != NULL ? console_last_line(inst->console) : "";
}

size_t launcher_count(const struct launcher *l)
{
	const struct instance *inst;
	size_t n = 0;

	TAILQ_FOREACH(inst, &l->instances, entry)
	n++;
	return n;
}

void *launcher_ext(const struct instance *inst)
{
	return inst->ext;
}

void launcher_set_ext(struct instance *inst, void *ext)
{
	free(inst->ext);
	inst->ext = ext;
}
