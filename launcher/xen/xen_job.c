/*
 * libxl's calls block (a create waits for the domain to be built and its
 * hotplug scripts to run: about 10 s under the lab's emulation), so they
 * run on worker threads, each completion posted back to beckon's loop
 * through a pipe, as a pointer to the job. libxl's domain events (death,
 * shutdown) come from a thread waiting in libxl_event_wait and are posted
 * the same way. beckon's event_base is touched by its own thread only.
 *
 * One libxl_ctx, opened by the first job (it sweeps the beckon-* domains a
 * killed beckond left before any job of this one runs). libxl forks
 * hotplug scripts: beckon owns SIGCHLD (its child registry reaps its own
 * by pid), so libxl is in mainloop mode and is told of every SIGCHLD
 * (a signal event on beckon's loop, and while draining).
 *
 * Jobs with one key (a domain name) run one at a time, in the order they
 * were queued: a destroy queued after a create runs after it.
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
#define XEN_MAX_BUSY XEN_WORKERS

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER; /* a job queued */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER; /* a job finished */
static pthread_cond_t busy_cond = PTHREAD_COND_INITIALIZER; /* a job started */
static struct xen_job *queue_head, **queue_tail = &queue_head;
static char busy[XEN_MAX_BUSY][XEN_NAME_MAX]; /* keys running now */
static int nbusy;
static bool started;
static int post_fd[2] = {-1, -1};
static struct event *post_ev, *chld_ev;
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
	snprintf(j->key, sizeof(j->key), "%s", key);
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

/* The context, opened (and the sweep done) by the first job; NULL when no Xen. */
static libxl_ctx *xen_ctx_get(void)
{
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
			xen_sweep(ctx);
			if (pthread_create(&t, NULL, xen_event_main, NULL) == 0)
				pthread_detach(t);
			else
				log_warnx("xen: cannot start the event thread");
		}
	}
	pthread_mutex_unlock(&ctx_lock);
	return ctx;
}

/* ---- the workers ------------------------------------------------------------------ */

static void xen_sigchld(void);

/*
 * While a job runs, libxl's children (hotplug scripts, the save helper)
 * are looked for every 50 ms as well: a job may run before beckon's loop
 * watches SIGCHLD for libxl (the sweep at start), or while it is not
 * running (the drain at exit).
 */
static void *reaper_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&jobs_lock);
		while (nbusy == 0)
			pthread_cond_wait(&busy_cond, &jobs_lock);
		pthread_mutex_unlock(&jobs_lock);
		xen_sigchld();
		usleep(50000);
	}
	return NULL;
}

static bool job_key_busy(const char *key)
{
	for (int i = 0; i < XEN_MAX_BUSY; i++)
		if (busy[i][0] != '\0' && strcmp(busy[i], key) == 0)
			return true;
	return false;
}

/* The first queued job whose key is not running, taken off the queue. Locked. */
static struct xen_job *job_take(void)
{
	struct xen_job **pp, *j;

	for (pp = &queue_head; (j = *pp) != NULL; pp = &j->next) {
		if (job_key_busy(j->key))
			continue;
		*pp = j->next;
		if (queue_tail == &j->next)
			queue_tail = pp;
		j->next = NULL;
		return j;
	}
	return NULL;
}

static void job_mark(const char *key, bool on)
{
	for (int i = 0; i < XEN_MAX_BUSY; i++) {
		if (on && busy[i][0] == '\0') {
			snprintf(busy[i], sizeof(busy[i]), "%s", key);
			nbusy++;
			pthread_cond_signal(&busy_cond);
			return;
		}
		if (!on && strcmp(busy[i], key) == 0) {
			busy[i][0] = '\0';
			nbusy--;
			return;
		}
	}
}

static void job_run(struct xen_job *j)
{
	libxl_ctx *c = xen_ctx_get();

	last_err[0] = '\0';
	j->rc = -1;
	if (c == NULL)
		snprintf(j->err, sizeof(j->err), "libxenlight is not available here");
	j->run(j, c);
}

static void *worker_main(void *arg)
{
	struct xen_job *j;

	(void)arg;
	pthread_mutex_lock(&jobs_lock);
	for (;;) {
		if ((j = job_take()) == NULL) {
			pthread_cond_wait(&jobs_cond, &jobs_lock);
			continue;
		}
		job_mark(j->key, true);
		pthread_mutex_unlock(&jobs_lock);
		job_run(j);
		pthread_mutex_lock(&jobs_lock);
		job_mark(j->key, false);
		/* Posted under the lock: a drain that sees the queue idle sees it posted. */
		xen_job_post(j);
		pthread_cond_broadcast(&jobs_cond); /* its key may hold another back */
		pthread_cond_broadcast(&idle_cond);
	}
	return NULL;
}

int xen_jobs_init(void)
{
	pthread_t t;
	int i, rc = 0;

	if (started)
		return 0;
	if (pipe2(post_fd, O_CLOEXEC) == -1) {
		log_warn("xen: pipe");
		return -1;
	}
	/* The loop reads without blocking; writers block (8 bytes, atomic). */
	fcntl(post_fd[0], F_SETFL, O_NONBLOCK);
	if (pthread_create(&t, NULL, reaper_main, NULL) != 0)
		rc = -1;
	else
		pthread_detach(t);
	for (i = 0; i < XEN_WORKERS && rc == 0; i++) {
		if (pthread_create(&t, NULL, worker_main, NULL) != 0)
			rc = -1;
		else
			pthread_detach(t);
	}
	if (rc == -1) {
		log_warnx("xen: cannot start its threads");
		return -1;
	}
	started = true;
	return 0;
}

void xen_job_post(struct xen_job *j)
{
	ssize_t n;

	while ((n = write(post_fd[1], &j, sizeof(j))) == -1 && errno == EINTR)
		;
	if (n != sizeof(j))
		xen_job_free(j); /* cannot happen with a live pipe */
}

/* Deliver every job posted so far; false when none was. */
static bool jobs_deliver(void)
{
	struct xen_job *j;
	bool any = false;

	while (read(post_fd[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		any = true;
		if (j->done != NULL)
			j->done(j);
		xen_job_free(j);
	}
	return any;
}

static void post_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	jobs_deliver();
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
	if (post_ev != NULL)
		return 0;
	if (!started ||
	    (post_ev = event_new(base, post_fd[0], EV_READ | EV_PERSIST, post_cb, NULL)) == NULL ||
	    event_add(post_ev, NULL) == -1 ||
	    (chld_ev = evsignal_new(base, SIGCHLD, chld_cb, NULL)) == NULL ||
	    evsignal_add(chld_ev, NULL) == -1) {
		log_warnx("xen: cannot watch its completions");
		return -1;
	}
	return 0;
}

void xen_jobs_detach(void)
{
	if (post_ev != NULL)
		event_free(post_ev);
	if (chld_ev != NULL)
		event_free(chld_ev);
	post_ev = chld_ev = NULL;
}

void xen_job_queue(struct xen_job *j)
{
	if (j->run == NULL) {
		xen_job_post(j);
		return;
	}
	pthread_mutex_lock(&jobs_lock);
	*queue_tail = j;
	queue_tail = &j->next;
	pthread_cond_signal(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
}

/* TS plus MS. */
static void xen_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

void xen_jobs_drain(int ms)
{
	struct timespec until, tick, now;
	bool busy_now;

	if (!started)
		return;
	xen_deadline(&until, ms);
	/* Done handlers may queue more (a destroy): deliver until quiet. */
	do {
		for (;;) {
			pthread_mutex_lock(&jobs_lock);
			busy_now = queue_head != NULL || nbusy > 0;
			if (busy_now) {
				/* The loop is not running: SIGCHLD is looked at here. */
				xen_deadline(&tick, 50);
				pthread_cond_timedwait(&idle_cond, &jobs_lock, &tick);
				busy_now = queue_head != NULL || nbusy > 0;
			}
			pthread_mutex_unlock(&jobs_lock);
			clock_gettime(CLOCK_REALTIME, &now);
			if (!busy_now || now.tv_sec > until.tv_sec ||
			    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
				break;
			xen_sigchld();
		}
	} while (jobs_deliver());
	if (queue_head != NULL || nbusy > 0)
		log_warnx("xen: jobs still running after %d ms", ms);
}
