/*
 * libxl's calls block (a create waits for the domain to be built and its
 * hotplug scripts to run: about 10 s under the lab's emulation), so they
 * run on the workers of a job queue (launcher/jobq.c). libxl's domain
 * events (death, shutdown) come from a thread waiting in libxl_event_wait
 * and are posted to beckon's loop the same way.
 *
 * One libxl_ctx, opened by the first job (it sweeps the beckon-* domains a
 * killed beckond left before any job of this one runs). libxl forks
 * hotplug scripts: beckon owns SIGCHLD (its child registry reaps its own
 * by pid), so libxl is in mainloop mode and is told of every SIGCHLD
 * (a signal event on beckon's loop, and while draining).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <xentoollog.h>

#include "xen.h"
#include "log.h"

#define XEN_WORKERS 4

static struct jobq *jobs;
static struct event *chld_ev;
static xen_done_fn event_done;

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static libxl_ctx *ctx;
static bool ctx_failed;
static const libxl_childproc_hooks xen_child_hooks = {.chldowner = libxl_sigchld_owner_mainloop};

/* libxl's messages: errors into the log and the worker's last error. */
static __thread char last_err[512];

struct xen_logger {
	xentoollog_logger vtable;
};

static void xen_log_vmessage(struct xentoollog_logger *lg, xentoollog_level level, int errnoval,
                             const char *context, const char *format, va_list al)
{
	char msg[400];

	(void)lg;
	vsnprintf(msg, sizeof(msg), format, al);
	if (level < XTL_ERROR) {
		if (level >= XTL_WARN)
			log_debug("xen: %s%s%s", context ? context : "", context ? ": " : "", msg);
		return;
	}
	if (errnoval > 0)
		snprintf(last_err, sizeof(last_err), "%s: %s", msg, strerror(errnoval));
	else
		snprintf(last_err, sizeof(last_err), "%s", msg);
	log_warnx("xen: libxl: %s", last_err);
}

static void xen_log_progress(struct xentoollog_logger *lg, const char *context,
                             const char *doing_what, int percent, unsigned long done,
                             unsigned long total)
{
	(void)lg;
	(void)context;
	(void)doing_what;
	(void)percent;
	(void)done;
	(void)total;
}

static void xen_log_destroy(struct xentoollog_logger *lg)
{
	(void)lg;
}

static struct xen_logger xen_logger = {
    .vtable = {.vmessage = xen_log_vmessage,
               .progress = xen_log_progress,
               .destroy = xen_log_destroy},
};

const char *xen_job_error(const char *what)
{
	return last_err[0] ? last_err : what;
}

void xen_jobs_set_event_done(xen_done_fn fn)
{
	event_done = fn;
}

struct xen_job *xen_job_new(const char *key)
{
	struct xen_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	snprintf(j->item.key, sizeof(j->item.key), "%s", key);
	j->domid = INVALID_DOMID;
	return j;
}

void xen_job_free(struct xen_job *j)
{
	if (j == NULL)
		return;
	if (j->cfg != NULL) {
		libxl_domain_config_dispose(j->cfg);
		free(j->cfg);
	}
	free(j->path);
	free(j);
}

/* ---- libxl's context, and what a killed beckond left ---------------------------- */

/* Destroy every beckon-* domain: none is this beckond's yet. */
static void xen_sweep(libxl_ctx *c)
{
	libxl_dominfo *doms;
	char *name;
	int n;

	if ((doms = libxl_list_domain(c, &n)) == NULL)
		return;
	for (int i = 0; i < n; i++) {
		if ((name = libxl_domid_to_name(c, doms[i].domid)) == NULL)
			continue;
		if (strncmp(name, XEN_PREFIX, strlen(XEN_PREFIX)) == 0) {
			log_info("xen: destroying %s (domain %u), left by an earlier beckond", name,
			         doms[i].domid);
			if (libxl_domain_destroy(c, doms[i].domid, NULL) != 0)
				log_warnx("xen: cannot destroy %s: %s", name,
				          xen_job_error("failed"));
		}
		free(name);
	}
	libxl_dominfo_list_free(doms, n);
}

/* Post every domain event to the loop (the job's serial: the run's, from for_user). */
static void *xen_event_main(void *arg)
{
	libxl_event *ev;
	struct xen_job *j;

	(void)arg;
	for (;;) {
		if (libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) != 0) {
			usleep(100000);
			continue;
		}
		if ((j = xen_job_new("event")) != NULL) {
			j->op = XEN_EV;
			j->event = ev->type;
			j->domid = ev->domid;
			j->serial = ev->for_user;
			if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN)
				j->reason = ev->u.domain_shutdown.shutdown_reason;
			j->done = event_done;
			xen_job_post(j);
		}
		libxl_event_free(ctx, ev);
	}
	return NULL;
}

/*
 * The context, opened by the first job, which also sweeps; NULL when no
 * Xen. The sweep holds sweep_lock, not ctx_lock: its destroys wait for
 * hotplug scripts, whose exits reach libxl through xen_sigchld, which
 * takes ctx_lock. Other jobs wait for the sweep, which would otherwise
 * destroy the domain they make.
 */
static libxl_ctx *xen_ctx_get(void)
{
	static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;
	static bool swept;
	libxl_ctx *c;
	pthread_t t;

	pthread_mutex_lock(&ctx_lock);
	if (ctx == NULL && !ctx_failed) {
		if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, (xentoollog_logger *)&xen_logger) !=
		    0) {
			log_warnx("xen: cannot open libxenlight (is this a Xen dom0, xenstored "
			          "running?)");
			ctx = NULL;
			ctx_failed = true;
		} else {
			libxl_childproc_setmode(ctx, &xen_child_hooks, NULL);
		}
	}
	c = ctx;
	pthread_mutex_unlock(&ctx_lock);
	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&sweep_lock);
	if (!swept) {
		xen_sweep(c);
		if (pthread_create(&t, NULL, xen_event_main, NULL) == 0)
			pthread_detach(t);
		else
			log_warnx("xen: cannot start the event thread");
		swept = true;
	}
	pthread_mutex_unlock(&sweep_lock);
	return c;
}

/* ---- the queue -------------------------------------------------------------------- */

static void xen_sigchld(void);

static void xen_job_run(struct jobq_item *it)
{
	struct xen_job *j = (struct xen_job *)it;
	libxl_ctx *c = xen_ctx_get();

	last_err[0] = '\0';
	j->rc = -1;
	if (c == NULL)
		snprintf(j->err, sizeof(j->err), "libxenlight is not available here");
	j->run(j, c);
}

static void xen_job_deliver(struct jobq_item *it)
{
	struct xen_job *j = (struct xen_job *)it;

	if (j->done != NULL)
		j->done(j);
	xen_job_free(j);
}

static void xen_job_discard(struct jobq_item *it)
{
	xen_job_free((struct xen_job *)it);
}

/*
 * While a job runs, libxl's children (hotplug scripts, the save helper)
 * are looked for every 50 ms as well: a job may run before beckon's loop
 * watches SIGCHLD for libxl (the sweep at start), or while it is not
 * running (the drain at exit).
 */
static const struct jobq_hooks xen_jobq_hooks = {
    .name = "xen",
    .run = xen_job_run,
    .deliver = xen_job_deliver,
    .discard = xen_job_discard,
    .tick = xen_sigchld,
};

int xen_jobs_init(void)
{
	if (jobs == NULL)
		jobs = jobq_start(&xen_jobq_hooks, XEN_WORKERS);
	return jobs != NULL ? 0 : -1;
}

void xen_job_post(struct xen_job *j)
{
	jobq_post(jobs, &j->item);
}

/* A child exited: libxl reaps its own (hotplug scripts), never beckon's. */
static void xen_sigchld(void)
{
	libxl_ctx *c;

	pthread_mutex_lock(&ctx_lock);
	c = ctx;
	pthread_mutex_unlock(&ctx_lock);
	if (c != NULL)
		libxl_childproc_sigchld_occurred(c);
}

static void chld_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	xen_sigchld();
}

int xen_jobs_attach(struct event_base *base)
{
	if (chld_ev != NULL)
		return 0;
	if (jobs == NULL || jobq_attach(jobs, base) == -1 ||
	    (chld_ev = evsignal_new(base, SIGCHLD, chld_cb, NULL)) == NULL ||
	    evsignal_add(chld_ev, NULL) == -1) {
		log_warnx("xen: cannot watch its completions");
		return -1;
	}
	return 0;
}

void xen_jobs_detach(void)
{
	if (jobs != NULL)
		jobq_detach(jobs);
	if (chld_ev != NULL)
		event_free(chld_ev);
	chld_ev = NULL;
}

void xen_job_queue(struct xen_job *j)
{
	if (j->run == NULL)
		jobq_post(jobs, &j->item);
	else
		jobq_queue(jobs, &j->item);
}

bool xen_jobs_drain(int ms)
{
	return jobs == NULL || jobq_drain(jobs, ms);
}
