/*
 * The pool of QEMU VMMs (pool = { size = N; }): QEMUs started ahead with
 * -incoming defer, for no service, that a cold start restores its
 * template into instead of starting a QEMU of its own.
 *
 * A pool VMM has the shape of the services it can take (qemu_shape.c):
 * their machine, memory, CPU, devices and kernel kind, its NIC on a port of
 * hub 0 with nothing behind it. A cold start that takes one gives it the
 * instance's host side over QMP (netdev_add of its tap, or of user
 * networking with its hostfwds, on another port of hub 0), then
 * migrate-incoming of the template; from then on the VMM is the
 * instance's run (qemu_run_adopt). A service's guests have their NIC on
 * the hub too, so that the template's stream fits (no vhost header on
 * either side). The pool learns a shape when a service of it saves its
 * template, or restores one and finds no VMM of its shape; it keeps
 * pool.size idle VMMs of each, refilled one at a time in the background,
 * never sooner than REFILL_AFTER_TAKE_MS after a take or a new shape, and
 * not while an instance boots (the cold starts have the CPU first); a VMM
 * that dies is replaced after a backoff that grows while they keep dying.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "proc.h"
#include "log.h"
#include "qemu.h"
#include "qmp.h"

#define POOL_MAX_SHAPES 8
#define REFILL_AFTER_TAKE_MS 100 /* the cold start that took one goes first */
#define REFILL_RECHECK_MS 50     /* while instances boot, the refill waits */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

struct pool_shape {
	char *key;                /* qemu_shape of its services */
	struct conf_service *svc; /* the service it was learnt from: what a VMM runs */
};

struct pool_vmm {
	TAILQ_ENTRY(pool_vmm) entry;
	struct pool_shape *shape;
	struct instance *standin; /* "~poolN" */
	int n;
	bool up; /* QMP answers: it may be taken */
};

TAILQ_HEAD(pool_vmms, pool_vmm);

static struct {
	unsigned size;
	struct pool_shape *shapes[POOL_MAX_SHAPES];
	size_t nshapes;
	struct pool_vmms vmms;
	bool inited;
	struct event *timer;
	int next_n;
	unsigned fails; /* VMMs that died or did not start, in a row */
	int64_t last_take_us;
} pool;

static void pool_died(struct instance *standin, int status);

static void pool_cleanup(struct instance *standin, bool graceful)
{
	backend_qemu_ops.cleanup(standin, graceful);
}

/* What the launcher's child registry calls for a pool VMM's process. */
static const struct backend_ops pool_ops = {
    .name = "qemu", /* its pid file is a QEMU one: the sweep at start kills what is left */
    .is_ours = qemu_is_ours,
    .died = pool_died,
    .cleanup = pool_cleanup,
};

static int64_t pool_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void pool_init(void)
{
	if (pool.inited)
		return;
	TAILQ_INIT(&pool.vmms);
	pool.inited = true;
}

static void pool_counts(void)
{
	struct pool_vmm *v;
	unsigned idle = 0, starting = 0;

	TAILQ_FOREACH(v, &pool.vmms, entry)
	{
		if (v->up)
			idle++;
		else
			starting++;
	}
	backend_pool_counts(idle, starting);
}

static void pool_refill_cb(evutil_socket_t fd, short what, void *arg);

/* Look again at what is missing in MS. */
static void pool_schedule(long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (pool.timer == NULL && backend_base() != NULL)
		pool.timer = evtimer_new(backend_base(), pool_refill_cb, NULL);
	if (pool.timer == NULL || evtimer_add(pool.timer, &tv) == -1)
		log_warnx("pool: cannot arm the refill timer");
}

static long pool_backoff_ms(void)
{
	long ms = BACKOFF_MIN_MS;

	for (unsigned i = 1; i < pool.fails && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static void pool_vmm_free(struct pool_vmm *v)
{
	TAILQ_REMOVE(&pool.vmms, v, entry);
	backend_standin_free(v->standin);
	free(v);
	pool_counts();
}

/* End V's VMM (killed, reaped in the background) and forget it. */
static void pool_vmm_end(struct pool_vmm *v, bool graceful)
{
	pool_cleanup(v->standin, graceful);
	pool_vmm_free(v);
}

static unsigned pool_count(const struct pool_shape *s, bool *starting)
{
	struct pool_vmm *v;
	unsigned n = 0;

	TAILQ_FOREACH(v, &pool.vmms, entry)
	{
		if (!v->up)
			*starting = true;
		n += v->shape == s;
	}
	return n;
}

/* Start one VMM of shape S. */
static int pool_spawn(struct pool_shape *s)
{
	struct pool_vmm *v;
	char name[16];

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return -1;
	v->n = pool.next_n++ % 100000;
	v->shape = s;
	snprintf(name, sizeof(name), "~pool%d", v->n);
	if ((v->standin = backend_standin_new(s->svc, name, &pool_ops)) == NULL ||
	    qemu_pool_spawn(v->standin, v) == -1) {
		log_warnx("pool: VMM %d (of %s's shape) could not start", v->n, s->svc->name);
		backend_standin_free(v->standin);
		free(v);
		return -1;
	}
	TAILQ_INSERT_TAIL(&pool.vmms, v, entry);
	log_debug("pool: VMM %d (of %s's shape) starting", v->n, s->svc->name);
	pool_counts();
	return 0;
}

/* One VMM at a time, where a shape has fewer than pool.size. */
static void pool_refill_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t since = pool_now_us() - pool.last_take_us;
	bool starting = false;
	size_t i;

	(void)fd;
	(void)what;
	(void)arg;
	if (since < REFILL_AFTER_TAKE_MS * 1000LL) {
		pool_schedule((long)(REFILL_AFTER_TAKE_MS - since / 1000));
		return;
	}
	if (backend_boots_under_way()) {
		pool_schedule(REFILL_RECHECK_MS);
		return;
	}
	for (i = 0; i < pool.nshapes; i++)
		if (pool_count(pool.shapes[i], &starting) < pool.size)
			break;
	if (starting || i == pool.nshapes)
		return; /* one at a time: its QMP (or death) looks again */
	if (pool_spawn(pool.shapes[i]) == -1) {
		pool.fails++;
		pool_schedule(pool_backoff_ms());
	}
}

void qemu_pool_up(void *slot)
{
	struct pool_vmm *v = slot;

	v->up = true;
	pool.fails = 0;
	log_debug("pool: VMM %d idle, of %s's shape", v->n, v->shape->svc->name);
	pool_counts();
	pool_schedule(0);
}

static struct pool_vmm *pool_find(const struct instance *standin)
{
	struct pool_vmm *v;

	TAILQ_FOREACH(v, &pool.vmms, entry)
	if (v->standin == standin)
		return v;
	return NULL;
}

/* A pool VMM not taken exited: replace it, after a backoff while they keep dying. */
static void pool_died(struct instance *standin, int status)
{
	struct pool_vmm *v = pool_find(standin);
	char how[48];

	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
	qemu_run_reaped(standin);
	if (v == NULL)
		return;
	log_warnx("pool: VMM %d %s (%s): replacing it", v->n,
	          v->up ? "exited" : "exited before it was up", how);
	pool_vmm_free(v);
	pool.fails++;
	pool_schedule(pool_backoff_ms());
}

static void pool_shape_free(struct pool_shape *sh)
{
	free(sh->key);
	conf_service_free(sh->svc);
	free(sh);
}

static void pool_shapes_free(void)
{
	for (size_t i = 0; i < pool.nshapes; i++)
		pool_shape_free(pool.shapes[i]);
	pool.nshapes = 0;
}

/* Forget shape I and end its VMMs (GRACEFUL: as at a reload). */
static void pool_shape_drop(size_t i, bool graceful)
{
	struct pool_shape *sh = pool.shapes[i];
	struct pool_vmm *v, *next;

	for (v = TAILQ_FIRST(&pool.vmms); v != NULL; v = next) {
		next = TAILQ_NEXT(v, entry);
		if (v->shape == sh)
			pool_vmm_end(v, graceful);
	}
	pool_shape_free(sh);
	pool.shapes[i] = pool.shapes[--pool.nshapes];
}

/*
 * At a reload: a shape learnt from a service gone or changed may be no
 * service's now. Dropped; a save or a take of a service learns it again.
 */
static void pool_shapes_prune(const struct conf *conf)
{
	const struct conf_service *svc;
	size_t i = 0;

	while (i < pool.nshapes) {
		svc = conf_service_find(conf, pool.shapes[i]->svc->name);
		if (svc != NULL && conf_service_equal(svc, pool.shapes[i]->svc) &&
		    qemu_pool_hub(svc)) {
			i++;
			continue;
		}
		log_info("pool: %s's shape dropped (the service changed)",
		         pool.shapes[i]->svc->name);
		pool_shape_drop(i, true);
	}
}

void qemu_pool_drain(void)
{
	pool_init();
	while (!TAILQ_EMPTY(&pool.vmms))
		pool_vmm_end(TAILQ_FIRST(&pool.vmms), false);
	pool_shapes_free();
	if (pool.timer != NULL)
		event_free(pool.timer);
	pool.timer = NULL;
}

void qemu_pool_conf(const struct conf *conf)
{
	struct pool_vmm *v, *next;
	bool starting = false;

	pool_init();
	if (pool.size != conf->pool_size)
		log_info("pool: %u VMMs per shape (was %u)", conf->pool_size, pool.size);
	pool.size = conf->pool_size;
	if (pool.size == 0) {
		while (!TAILQ_EMPTY(&pool.vmms))
			pool_vmm_end(TAILQ_FIRST(&pool.vmms), true);
		pool_shapes_free();
		return;
	}
	pool_shapes_prune(conf);
	/* Smaller: the last ones of each shape go. */
	for (v = TAILQ_LAST(&pool.vmms, pool_vmms); v != NULL; v = next) {
		next = TAILQ_PREV(v, pool_vmms, entry);
		if (pool_count(v->shape, &starting) > pool.size)
			pool_vmm_end(v, true);
	}
	pool_schedule(0);
}

bool qemu_pool_hub(const struct conf_service *svc)
{
	if (pool.size == 0 || svc->template != CONF_TEMPLATE_AUTO || svc->qemu.boot_disk ||
	    (svc->qemu.disk != NULL && *svc->qemu.disk))
		return false;
	/* qemu.args with placeholders differ from run to run: no shape to share. */
	for (size_t i = 0; i < svc->qemu.nargs; i++)
		if (strchr(svc->qemu.args[i], '{') != NULL)
			return false;
	return true;
}

/* INST's shape (malloc'd), NULL when its guests cannot go into a pool VMM. */
static char *pool_shape_of(struct instance *inst)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	char **argv, *key;

	if (!qemu_pool_hub(svc) || (argv = qemu_pool_argv(inst)) == NULL)
		return NULL;
	key = qemu_shape(argv, qemu_kernel_kind(svc->image));
	qemu_argv_free(argv);
	return key;
}

static struct pool_shape *pool_shape_find(const char *key)
{
	for (size_t i = 0; i < pool.nshapes; i++)
		if (strcmp(pool.shapes[i]->key, key) == 0)
			return pool.shapes[i];
	return NULL;
}

/* Keep VMMs of KEY (taken), learnt from INST. */
static void pool_learn(struct instance *inst, char *key)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct pool_shape *s;

	if (pool_shape_find(key) != NULL || pool.nshapes == POOL_MAX_SHAPES) {
		free(key);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->svc = conf_service_dup(svc)) == NULL) {
		free(s);
		free(key);
		return;
	}
	s->key = key;
	pool.shapes[pool.nshapes++] = s;
	log_info("pool: keeping %u VMMs of %s's shape", pool.size, svc->name);
	/* As after a take: the start that taught it goes first. */
	pool.last_take_us = pool_now_us();
	pool_schedule(REFILL_AFTER_TAKE_MS);
}

void qemu_pool_want(struct instance *inst)
{
	char *key;

	pool_init();
	if (pool.size == 0)
		return;
	if ((key = pool_shape_of(inst)) == NULL) {
		log_debug("%s: its guests cannot go into pool VMMs",
		          launcher_inst_service(inst)->name);
		return;
	}
	pool_learn(inst, key);
}

static void pool_net_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;

	(void)q;
	(void)ret;
	if (err == NULL) {
		log_debug("%s: pool VMM: netdev_add answered", launcher_inst_service(arg)->name);
		return;
	}
	log_warnx("%s: pool VMM: netdev_add: %s", launcher_inst_service(arg)->name,
	          desc ? desc : "failed");
	launcher_inst_failed(arg, "the pool VMM did not take the NIC's host side");
}

/* The hostfwds of INST's ports (user networking), as netdev_add takes them. */
static json_t *pool_hostfwds(struct instance *inst)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	uint16_t ports[CONF_MAX_PORTS];
	json_t *a = json_array();
	char buf[64];

	if (a == NULL || qemu_host_user_ports(inst, ports, svc->nports) == -1) {
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < svc->nports; i++) {
		snprintf(buf, sizeof(buf), "tcp:127.0.0.1:%u-:%u", ports[i], svc->ports[i]);
		json_array_append_new(a, json_pack("{s:s}", "str", buf));
	}
	return a;
}

/* INST's host side on hub 0 of the VMM it took: its tap, or user networking. */
static int pool_attach_net(struct instance *inst)
{
	const char *tap = launcher_inst_tap(inst);
	struct qmp *q = qemu_run_qmp(inst);
	json_t *args, *fw;

	if (q == NULL)
		return -1;
	if (*tap) {
		if (backend_bridge_up(inst) == -1)
			return -1;
		args = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "tap", "id", QEMU_NETDEV_HOST,
		                 "ifname", tap, "script", "no", "downscript", "no");
	} else {
		if ((fw = pool_hostfwds(inst)) == NULL)
			return -1;
		args = json_pack("{s:s, s:s, s:o}", "type", "user", "id", QEMU_NETDEV_HOST,
		                 "hostfwd", fw);
	}
	if (args == NULL || qmp_command(q, "netdev_add", args, pool_net_cb, inst) == -1)
		return -1;
	return qmp_command(q, "netdev_add",
	                   json_pack("{s:s, s:s, s:i, s:s}", "type", "hubport", "id",
	                             QEMU_NETDEV_HUBPORT, "hubid", 0, "netdev", QEMU_NETDEV_HOST),
	                   pool_net_cb, inst);
}

/* An idle VMM of KEY's shape, NULL when none. */
static struct pool_vmm *pool_idle(const char *key)
{
	struct pool_shape *s = pool_shape_find(key);
	struct pool_vmm *v;

	TAILQ_FOREACH(v, &pool.vmms, entry)
	if (v->up && v->shape == s)
		return v;
	return NULL;
}

int qemu_pool_restore(struct instance *inst, const char *path)
{
	struct pool_vmm *v;
	char *key;
	int n;

	pool_init();
	if (pool.size == 0 || (key = pool_shape_of(inst)) == NULL)
		return -1;
	if ((v = pool_idle(key)) == NULL) {
		log_info("%s: no pool VMM of its shape is idle", launcher_inst_service(inst)->name);
		pool_learn(inst, key);
		return -1;
	}
	free(key);
	n = v->n;
	qemu_run_adopt(v->standin, inst);
	pool_vmm_free(v);
	pool.last_take_us = pool_now_us();
	pool_schedule(REFILL_AFTER_TAKE_MS);
	/* Taken: from now on a failure is the run's, reported as its end. */
	if (pool_attach_net(inst) == -1 || qemu_mem_pool_fill(inst) == -1 ||
	    qemu_shell_run(inst, path) == -1) {
		log_warnx("%s: pool VMM %d: cannot hand it the NIC and the template",
		          launcher_inst_service(inst)->name, n);
		backend_qemu_ops.stop(inst, false);
	}
	return n;
}
