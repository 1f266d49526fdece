/*
 * Several hosts (the config's hosts list): each boot of a hosted service
 * (a libvirt one, when the list is given) is placed on a host here, and
 * the instance takes that host's address for its service (hosts' subnets,
 * conf_host_address). Backends tell whether a host is up
 * (backend_host_state); a host going down ends its instances' runs in
 * beckon's books, and the next wake places them elsewhere.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "backend.h"
#include "core.h"
#include "hosts.h"
#include "log.h"
#include "part.h"
#include "place.h"
#include "revive.h"

/* A host of the hosts list (l->hosts), and what backends said of it. */
enum host_state { HOST_UNKNOWN, HOST_UP, HOST_DOWN };
struct lhost {
	struct conf_host h; /* our own copy */
	enum host_state state;
	char why[256]; /* why it is down */
};

/* The launcher whose hosts backends report on (there is one a process). */
static struct launcher *hosts_owner;

static const char *const host_state_names[] = {"unknown", "up", "down"};

static void hosts_clear(struct lhost *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		conf_host_clear(&h[i].h);
	free(h);
}

static struct lhost *hosts_find(const struct launcher *l, const char *name)
{
	for (size_t i = 0; name != NULL && i < l->nhosts; i++)
		if (strcmp(l->hosts[i].h.name, name) == 0)
			return &l->hosts[i];
	return NULL;
}

/* A copy of H, its strings too; -1 when out of memory. */
static int hosts_copy(struct conf_host *dst, const struct conf_host *src)
{
	*dst = *src;
	dst->name = strdup(src->name);
	dst->uri = strdup(src->uri);
	dst->bridge = strdup(src->bridge);
	return dst->name && dst->uri && dst->bridge ? 0 : -1;
}

static bool launcher_hosts_same(const struct launcher *l, const struct conf *conf)
{
	if (l->nhosts != conf->nhosts)
		return false;
	for (size_t i = 0; i < l->nhosts; i++)
		if (!conf_host_equal(&l->hosts[i].h, &conf->hosts[i]))
			return false;
	return true;
}

static int launcher_hosts_reload(struct launcher *l, const struct conf *conf)
{
	struct lhost *next = NULL, *old;
	size_t i = 0;

	if (conf->nhosts > 0 && (next = calloc(conf->nhosts, sizeof(*next))) == NULL)
		goto fail;
	for (i = 0; i < conf->nhosts; i++) {
		if (hosts_copy(&next[i].h, &conf->hosts[i]) == -1) {
			i++;
			goto fail;
		}
		/* What was known of a host that stays (same name and uri) stays. */
		old = hosts_find(l, conf->hosts[i].name);
		if (old != NULL && strcmp(old->h.uri, conf->hosts[i].uri) == 0) {
			next[i].state = old->state;
			memcpy(next[i].why, old->why, sizeof(next[i].why));
		}
	}
	hosts_clear(l->hosts, l->nhosts);
	l->hosts = next;
	l->nhosts = conf->nhosts;
	hosts_owner = l;
	return 0;
fail:
	log_warn("hosts");
	hosts_clear(next, i);
	return -1;
}

static void launcher_hosts_free(struct launcher *l)
{
	hosts_clear(l->hosts, l->nhosts);
	l->hosts = NULL;
	l->nhosts = 0;
	if (hosts_owner == l)
		hosts_owner = NULL;
}

/* Whether INST holds memory on a host now (a warm shell does too). */
static bool hosts_holds(const struct instance *inst)
{
	return inst->host[0] != '\0' &&
	       (inst->state == INST_BOOTING || inst->state == INST_READY ||
	        inst->state == INST_PAUSED || inst->state == INST_STOPPING ||
	        launcher_inst_has_shell(inst));
}

/* What every host holds, as place_choose sees it, for SVC (NULL: for none). */
static void hosts_load(const struct launcher *l, struct place_host *ph,
                       const struct conf_service *svc)
{
	const struct instance *inst;
	struct lhost *h;

	for (size_t i = 0; i < l->nhosts; i++) {
		h = &l->hosts[i];
		ph[i] = (struct place_host){
		    .usable =
		        h->state != HOST_DOWN && (svc == NULL || conf_service_on_host(svc, &h->h)),
		    .mem_max = h->h.max_memory,
		    .count_max = h->h.max_instances,
		};
	}
	TAILQ_FOREACH(inst, &l->instances, entry)
	{
		if (!hosts_holds(inst) || (h = hosts_find(l, inst->host)) == NULL)
			continue;
		ph[h - l->hosts].mem_used += inst->svc->memory;
		ph[h - l->hosts].count++;
	}
}

/* INST now runs on H: its address there, and H's gateway and prefix. */
static void hosts_assign(struct instance *inst, const struct lhost *h)
{
	struct in_addr gw = {htonl(ntohl(h->h.subnet.s_addr) + 1)};

	snprintf(inst->host, sizeof(inst->host), "%s", h->h.name);
	inst->addr = conf_host_address(&h->h, inst->svc);
	inet_ntop(AF_INET, &inst->addr, inst->address, sizeof(inst->address));
	inet_ntop(AF_INET, &gw, inst->gateway, sizeof(inst->gateway));
	inst->prefix = h->h.prefix;
}

static int launcher_hosts_place(struct instance *inst)
{
	struct launcher *l = inst->l;
	struct place_host *ph;
	struct lhost *last;
	int i;

	/* A warm shell's boot runs where the shell waits. */
	if (!inst->hosted || launcher_inst_has_shell(inst))
		return 0;
	if (l->nhosts == 0 || (ph = calloc(l->nhosts, sizeof(*ph))) == NULL) {
		log_warnx("%s: no host to place it on", inst->svc->name);
		return -1;
	}
	hosts_load(l, ph, inst->svc);
	last = hosts_find(l, inst->host);
	i = place_choose(ph, l->nhosts, inst->svc->memory, last ? (int)(last - l->hosts) : -1);
	free(ph);
	if (i < 0) {
		log_warnx("%s: no host is up with room for it (%zu hosts)", inst->svc->name,
		          l->nhosts);
		return -1;
	}
	if (last != &l->hosts[i])
		log_info("%s: placed on host %s", inst->svc->name, l->hosts[i].h.name);
	hosts_assign(inst, &l->hosts[i]);
	return 0;
}

const struct conf_host *launcher_inst_host(const struct instance *inst)
{
	struct lhost *h;

	if (!inst->hosted || (h = hosts_find(inst->l, inst->host)) == NULL)
		return NULL;
	return &h->h;
}

/* H went down: every run on it ends in beckon's books (the backend forgets it). */
static void hosts_lost(struct launcher *l, const struct lhost *h)
{
	struct instance *inst, *next;

	for (inst = TAILQ_FIRST(&l->instances); inst != NULL; inst = next) {
		next = TAILQ_NEXT(inst, entry);
		if (!hosts_holds(inst) || strcmp(inst->host, h->h.name) != 0)
			continue;
		log_warnx("%s: lost with host %s; the next wake boots it where there is room",
		          inst->svc->name, h->h.name);
		if (inst->state == INST_BOOTING)
			launcher_inst_failed(inst, "its host went down");
		else
			launcher_inst_exited(inst, W_EXITCODE(1, 0));
	}
}

void backend_host_state(const char *uri, bool up, const char *why)
{
	struct launcher *l = hosts_owner;
	struct lhost *h;

	for (size_t i = 0; l != NULL && i < l->nhosts; i++) {
		h = &l->hosts[i];
		if (strcmp(h->h.uri, uri) != 0 || h->state == (up ? HOST_UP : HOST_DOWN))
			continue;
		h->state = up ? HOST_UP : HOST_DOWN;
		snprintf(h->why, sizeof(h->why), "%s", why ? why : "");
		if (up) {
			log_info("host %s (%s) is up", h->h.name, uri);
			continue;
		}
		log_warnx("host %s (%s) is down: %s", h->h.name, uri, why ? why : "unreachable");
		hosts_lost(l, h);
	}
}

bool backend_host_known(const char *uri)
{
	struct launcher *l = hosts_owner;

	for (size_t i = 0; l != NULL && i < l->nhosts; i++)
		if (strcmp(l->hosts[i].h.uri, uri) == 0)
			return true;
	return false;
}

void launcher_hosts(struct launcher *l, void (*fn)(const struct host_info *, void *), void *arg)
{
	struct place_host *ph;
	struct host_info hi;

	if (l->nhosts == 0 || (ph = calloc(l->nhosts, sizeof(*ph))) == NULL)
		return;
	hosts_load(l, ph, NULL);
	for (size_t i = 0; i < l->nhosts; i++) {
		hi = (struct host_info){
		    .name = l->hosts[i].h.name,
		    .uri = l->hosts[i].h.uri,
		    .state = host_state_names[l->hosts[i].state],
		    .why = l->hosts[i].why,
		    .instances = ph[i].count,
		    .memory = ph[i].mem_used,
		    .max_memory = l->hosts[i].h.max_memory,
		    .max_instances = l->hosts[i].h.max_instances,
		};
		fn(&hi, arg);
	}
	free(ph);
}

/* Whether OLD can carry on: it runs where its service says, or the hosts are the same. */
static bool hosts_keeps(const struct instance *old, const struct conf *conf)
{
	return !old->hosted || launcher_hosts_same(old->l, conf);
}

const struct launcher_part part_hosts = {
    .name = "hosts",
    .keeps = hosts_keeps,
    .apply = launcher_hosts_reload,
    .free = launcher_hosts_free,
    .place = launcher_hosts_place,
};
