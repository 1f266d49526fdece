/*
 * The Xen backend: one domain per running instance, named beckon-<service>,
 * made with libxenlight. Every libxl call runs on a worker (xen_job.c); the
 * ops below queue a job and return, and its completion comes back here on
 * beckon's loop, as do libxl's domain events (shutdown, death).
 *
 * libxl leaves a new (or restored) domain paused: the job arms the death
 * event, then unpauses it, unless it is a warm shell. Jobs find their
 * domain by name, and jobs of one name run in order, so a stop queued
 * before a start completed ends the domain that start made. Each run has a
 * serial, which the death event carries back (for_user): an event or a
 * completion for a run that is gone finds nothing.
 *
 * The console is xenconsoled's log of the guest (--log=guest), followed
 * by a timer: libxl offers the console only as a pty that `xl console`
 * would take.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "proc.h"
#include "launcher.h"
#include "revive.h"
#include "xen.h"
#include "log.h"

#define XEN_GRACE_MS 5000 /* after a shutdown request, before destroy */
#define XEN_DRAIN_MS 60000
#define XEN_CONSOLE_POLL_MS 50
#define XEN_SHELL 1u    /* job flag: leave the domain paused */
#define XEN_GRACEFUL 2u /* job flag: a shutdown request first */

struct xen_run {
	struct xen_run *next;
	uint64_t serial;
	struct instance *inst;
	char dom[XEN_NAME_MAX];
	uint32_t domid; /* INVALID_DOMID until started */
	libxl_evgen_domain_death *death;
	bool shell, saving, stopping, ended;
	int64_t t0_us;
	/* The console: xenconsoled's log file, read from where it was. */
	struct event *console_ev;
	int console_fd;
};

static struct xen_run *runs;
static uint64_t next_serial = 1;
static bool in_use;           /* a Xen service was configured: threads are up */
static char bridge[IFNAMSIZ]; /* beckon's, for the vif */

static int64_t xen_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *xen_svc(const struct instance *inst)
{
	return launcher_inst_service(inst)->name;
}

/* ---- the console ------------------------------------------------------------------ */

static void xen_console_path(const char *dom, char *path, size_t len)
{
	snprintf(path, len, "%s/guest-%s.log", XEN_CONSOLE_DIR, dom);
}

/* New bytes of the log, to the launcher; the file appears once xenconsoled sees the domain. */
static void xen_console_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xen_run *r = arg;
	char path[PATH_MAX], buf[4096];
	ssize_t n;

	(void)fd;
	(void)what;
	if (r->console_fd == -1) {
		xen_console_path(r->dom, path, sizeof(path));
		if ((r->console_fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
			return;
	}
	while (r->inst != NULL && (n = read(r->console_fd, buf, sizeof(buf))) > 0)
		launcher_inst_console(r->inst, buf, (size_t)n);
}

static void xen_console_start(struct xen_run *r)
{
	struct timeval tv = {0, XEN_CONSOLE_POLL_MS * 1000};

	if (r->console_ev != NULL || r->inst == NULL)
		return;
	r->console_ev = event_new(launcher_inst_base(r->inst), -1, EV_PERSIST, xen_console_cb, r);
	if (r->console_ev == NULL || event_add(r->console_ev, &tv) == -1)
		log_warnx("%s: xen: cannot follow the console", xen_svc(r->inst));
}

static void xen_console_stop(struct xen_run *r)
{
	if (r->console_ev != NULL) {
		if (r->inst != NULL)
			xen_console_cb(-1, 0, r); /* its last words */
		event_free(r->console_ev);
		r->console_ev = NULL;
	}
	if (r->console_fd != -1)
		close(r->console_fd);
	r->console_fd = -1;
}

/* ---- runs ---------------------------------------------------------------------- */

static struct xen_run *xen_run_new(struct instance *inst)
{
	struct xen_run *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		log_warn("%s: xen", xen_svc(inst));
		return NULL;
	}
	r->serial = next_serial++;
	r->inst = inst;
	r->domid = INVALID_DOMID;
	r->console_fd = -1;
	r->t0_us = xen_now_us();
	snprintf(r->dom, sizeof(r->dom), XEN_PREFIX "%s", xen_svc(inst));
	r->next = runs;
	runs = r;
	launcher_inst_set_priv(inst, r);
	return r;
}

static void xen_w_disarm(struct xen_job *j, libxl_ctx *ctx)
{
	if (ctx != NULL && j->death != NULL)
		libxl_evdisable_domain_death(ctx, j->death);
	j->rc = 0;
}

static void xen_run_free(struct xen_run *r)
{
	struct xen_run **pp;
	struct xen_job *j;

	for (pp = &runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (r->inst != NULL && launcher_inst_priv(r->inst) == r)
		launcher_inst_set_priv(r->inst, NULL);
	xen_console_stop(r);
	/* The death watch is freed by libxl, on a worker (it talks to xenstore). */
	if (r->death != NULL && (j = xen_job_new(r->dom)) != NULL) {
		j->run = xen_w_disarm;
		j->death = r->death;
		xen_job_queue(j);
	}
	free(r);
}

static struct xen_run *xen_run_find(uint64_t serial)
{
	for (struct xen_run *r = runs; r != NULL; r = r->next)
		if (r->serial == serial)
			return r;
	return NULL;
}

/* A job for R: queued with RUN on a worker, DONE back here. */
static struct xen_job *xen_run_job(struct xen_run *r, xen_job_fn run, xen_done_fn done)
{
	struct xen_job *j = xen_job_new(r->dom);

	if (j == NULL) {
		log_warn("%s: xen job", r->dom);
		return NULL;
	}
	j->serial = r->serial;
	j->run = run;
	j->done = done;
	return j;
}

/* The domain ended: tell the launcher (which then calls cleanup: R is freed). */
static void xen_run_died(struct xen_run *r, int status, const char *how)
{
	struct instance *inst = r->inst;

	r->ended = true;
	if (inst == NULL) {
		xen_run_free(r);
		return;
	}
	log_info("%s: domain %s %s", xen_svc(inst), r->dom, how);
	xen_console_stop(r);
	launcher_inst_exited(inst, status); /* its cleanup frees R */
}

/* ---- on the workers -------------------------------------------------------------- */

/* The domain of the job's name; false (the reason in the job) when there is none. */
static bool xen_w_domid(struct xen_job *j, libxl_ctx *ctx)
{
	if (ctx == NULL)
		return false;
	if (libxl_name_to_domid(ctx, j->item.key, &j->domid) != 0) {
		j->domid = INVALID_DOMID;
		snprintf(j->err, sizeof(j->err), "no domain %s", j->item.key);
		return false;
	}
	return true;
}

/* A failed create or restore leaves nothing: a half-made domain is destroyed. */
static void xen_w_undo(struct xen_job *j, libxl_ctx *ctx)
{
	uint32_t domid;

	if (libxl_name_to_domid(ctx, j->item.key, &domid) == 0)
		libxl_domain_destroy(ctx, domid, NULL);
}

/* A domain just made, paused: its death watch, then (unless a shell) running. */
static void xen_w_started(struct xen_job *j, libxl_ctx *ctx)
{
	if (libxl_evenable_domain_death(ctx, j->domid, j->serial, &j->death) != 0) {
		snprintf(j->err, sizeof(j->err), "cannot watch it: %s", xen_job_error("failed"));
		libxl_domain_destroy(ctx, j->domid, NULL);
		return;
	}
	if (!(j->flags & XEN_SHELL) && libxl_domain_unpause(ctx, j->domid, NULL) != 0) {
		snprintf(j->err, sizeof(j->err), "unpause: %s", xen_job_error("failed"));
		libxl_domain_destroy(ctx, j->domid, NULL);
		return; /* the death event reports it */
	}
	j->rc = 0;
}

/* Create (no path) or restore (path) the domain of j->cfg. */
static void xen_w_create(struct xen_job *j, libxl_ctx *ctx)
{
	libxl_domain_restore_params params;
	char log[PATH_MAX];
	int fd = -1, rc;

	if (ctx == NULL)
		return;
	xen_console_path(j->item.key, log, sizeof(log));
	unlink(log); /* xenconsoled appends: an earlier run's words are not this one's */
	if (j->path == NULL) {
		rc = libxl_domain_create_new(ctx, j->cfg, &j->domid, NULL, NULL);
	} else if ((fd = open(j->path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(j->err, sizeof(j->err), "%s: %s", j->path, strerror(errno));
		return;
	} else {
		libxl_domain_restore_params_init(&params);
		params.stream_version = 2; /* what libxl_domain_suspend writes */
		rc = libxl_domain_create_restore(ctx, j->cfg, &j->domid, fd, -1, &params, NULL,
		                                 NULL);
		libxl_domain_restore_params_dispose(&params);
		close(fd);
	}
	if (rc != 0) {
		snprintf(j->err, sizeof(j->err), "%s", xen_job_error("libxl could not create it"));
		xen_w_undo(j, ctx);
		return;
	}
	xen_w_started(j, ctx);
}

/* op: 'p' pause, 'u' unpause. */
static void xen_w_simple(struct xen_job *j, libxl_ctx *ctx)
{
	int rc;

	if (!xen_w_domid(j, ctx))
		return;
	rc = j->op == 'p' ? libxl_domain_pause(ctx, j->domid, NULL)
	                  : libxl_domain_unpause(ctx, j->domid, NULL);
	if (rc != 0)
		snprintf(j->err, sizeof(j->err), "%s", xen_job_error("failed"));
	j->rc = rc == 0 ? 0 : -1;
}

/* Suspend to j->path (the guest cooperates), then destroy: the state is in the file. */
static void xen_w_save(struct xen_job *j, libxl_ctx *ctx)
{
	int fd;

	if (!xen_w_domid(j, ctx))
		return;
	if ((fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		snprintf(j->err, sizeof(j->err), "%s: %s", j->path, strerror(errno));
		return;
	}
	if (libxl_domain_suspend(ctx, j->domid, fd, 0, NULL) != 0) {
		snprintf(j->err, sizeof(j->err), "suspend: %s", xen_job_error("failed"));
		close(fd);
		return;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		snprintf(j->err, sizeof(j->err), "%s: %s", j->path, strerror(errno));
		return;
	}
	if (libxl_domain_destroy(ctx, j->domid, NULL) != 0)
		log_warnx("xen: %s saved, but not destroyed: %s", j->item.key,
		          xen_job_error("failed"));
	j->rc = 0;
}

/* Whether the domain is gone or shut down, polled up to MS. */
static bool xen_w_wait_down(libxl_ctx *ctx, uint32_t domid, int ms)
{
	libxl_dominfo info;
	bool down;

	for (int waited = 0;; waited += 100) {
		libxl_dominfo_init(&info);
		if (libxl_domain_info(ctx, &info, domid) != 0)
			return true;
		down = info.shutdown || info.dying;
		libxl_dominfo_dispose(&info);
		if (down || waited >= ms)
			return down;
		usleep(100000);
	}
}

/* Graceful: a shutdown request, then destroy after the grace period. */
static void xen_w_stop(struct xen_job *j, libxl_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (!xen_w_domid(j, ctx)) {
		j->rc = 0; /* gone already */
		return;
	}
	if (j->flags & XEN_GRACEFUL && libxl_domain_shutdown(ctx, j->domid, NULL) == 0)
		xen_w_wait_down(ctx, j->domid, XEN_GRACE_MS);
	if (libxl_domain_destroy(ctx, j->domid, NULL) == 0 ||
	    libxl_domain_info(ctx, NULL, j->domid) == ERROR_DOMAIN_NOTFOUND)
		j->rc = 0;
	else
		snprintf(j->err, sizeof(j->err), "destroy: %s", xen_job_error("failed"));
}

static void xen_w_nothing(struct xen_job *j, libxl_ctx *ctx)
{
	j->rc = ctx != NULL ? 0 : -1;
}

/* ---- completions, on beckon's loop ---------------------------------------------- */

static void xen_d_started(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);

	if (r == NULL || r->inst == NULL) {
		/* Its stop is queued after it; the watch is still to be freed. */
		if (j->death != NULL && (r = calloc(1, sizeof(*r))) != NULL) {
			snprintf(r->dom, sizeof(r->dom), "%s", j->item.key);
			r->console_fd = -1;
			r->death = j->death;
			xen_run_free(r);
		}
		return;
	}
	r->death = j->death;
	if (j->rc == -1) {
		log_warnx("%s: xen: domain %s: %s", xen_svc(r->inst), r->dom, j->err);
		r->ended = true;
		/* A boot fails; a shell, or a boot stopped meanwhile, just ends. */
		if (!r->shell && launcher_state(r->inst) == INST_BOOTING)
			launcher_inst_failed(r->inst, "libxl could not start the domain");
		else
			launcher_inst_exited(r->inst, W_EXITCODE(1, 0));
		return;
	}
	r->domid = j->domid;
	log_debug("%s: domain %s (id %u) %s +%.1f ms", xen_svc(r->inst), r->dom, r->domid,
	          r->shell ? "created paused" : "running", (double)(xen_now_us() - r->t0_us) / 1e3);
	xen_console_start(r);
	if (r->shell)
		launcher_inst_shell_ready(r->inst);
	else
		launcher_inst_running(r->inst);
}

static void xen_d_pause(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);

	if (j->rc == -1 && r != NULL && r->inst != NULL)
		log_warnx("%s: xen: pausing %s: %s", xen_svc(r->inst), r->dom, j->err);
}

static void xen_d_resume(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);

	if (r == NULL || r->inst == NULL)
		return;
	if (j->rc == -1)
		log_warnx("%s: xen: unpausing %s: %s", xen_svc(r->inst), r->dom, j->err);
	launcher_inst_resumed(r->inst, j->rc == 0);
}

static void xen_d_shell_run(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);

	if (r == NULL || r->inst == NULL)
		return;
	r->shell = false;
	if (j->rc == 0) {
		launcher_inst_running(r->inst);
		return;
	}
	log_warnx("%s: xen: running the warm shell %s: %s", xen_svc(r->inst), r->dom, j->err);
	launcher_inst_failed(r->inst, "the warm shell did not start");
}

static void xen_queue_stop(struct xen_run *r, bool graceful, xen_done_fn done);

static void xen_d_save(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);

	if (r == NULL || r->inst == NULL)
		return;
	r->saving = false;
	launcher_inst_saved(r->inst, j->rc == 0);
	if (j->rc == 0) {
		xen_run_died(r, 0, "saved");
		return;
	}
	log_warnx("%s: xen: saving %s: %s", xen_svc(r->inst), r->dom, j->err);
	xen_queue_stop(r, false, NULL); /* its death event reports the end */
}

static void xen_d_stop(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);

	if (r == NULL || r->ended)
		return;
	if (j->rc == -1) {
		log_warnx("%s: xen: stopping %s: %s", r->inst ? xen_svc(r->inst) : "?", r->dom,
		          j->err);
		return;
	}
	/* Gone: the death event may come later, or have been for an older run. */
	xen_run_died(r, W_EXITCODE(0, 0), "stopped");
}

/* ---- libxl's events ------------------------------------------------------------- */

static const char *xen_shutdown_reason(int reason)
{
	switch (reason) {
	case LIBXL_SHUTDOWN_REASON_POWEROFF:
		return "powered off";
	case LIBXL_SHUTDOWN_REASON_REBOOT:
		return "rebooted";
	case LIBXL_SHUTDOWN_REASON_SUSPEND:
		return "suspended";
	case LIBXL_SHUTDOWN_REASON_CRASH:
		return "crashed";
	case LIBXL_SHUTDOWN_REASON_WATCHDOG:
		return "stopped by its watchdog";
	default:
		return "shut down";
	}
}

static void xen_ev_done(struct xen_job *j)
{
	struct xen_run *r = xen_run_find(j->serial);
	enum inst_state s;

	if (r == NULL || r->inst == NULL || r->ended || r->saving)
		return;
	if (j->event == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN) {
		/* Nobody else reaps a domain that shut down: beckon destroys it. */
		if (j->reason == LIBXL_SHUTDOWN_REASON_CRASH ||
		    j->reason == LIBXL_SHUTDOWN_REASON_WATCHDOG)
			log_warnx("%s: domain %s %s", xen_svc(r->inst), r->dom,
			          xen_shutdown_reason(j->reason));
		else
			log_info("%s: domain %s %s", xen_svc(r->inst), r->dom,
			         xen_shutdown_reason(j->reason));
		if (j->reason == LIBXL_SHUTDOWN_REASON_REBOOT && !r->shell &&
		    launcher_inst_rebooted(r->inst))
			return;
		s = launcher_state(r->inst);
		/* No longer serving: stopping at once, so that a wake meanwhile boots again. */
		if (s == INST_READY || s == INST_PAUSED)
			launcher_kill(r->inst);
		else
			xen_queue_stop(r, false, NULL);
		return;
	}
	if (j->event == LIBXL_EVENT_TYPE_DOMAIN_DEATH)
		xen_run_died(r, r->stopping ? W_EXITCODE(0, 0) : SIGKILL,
		             r->stopping ? "stopped" : "destroyed (libxl's death event)");
}

/* ---- the domain config ---------------------------------------------------------- */

/* PATH made absolute (libxl does not share our cwd's meaning); NULL when missing. */
static char *xen_abs(const char *svc, const char *key, const char *path)
{
	char *abs = realpath(path, NULL);

	if (abs == NULL)
		log_warn("%s: %s %s", svc, key, path);
	return abs;
}

/* The user's xl.cfg, its placeholders expanded; NULL when it cannot be read (logged). */
static char *xen_user_cfg(const struct conf_service *svc, const struct backend_vars *v)
{
	char err[512], *text, *cfg;

	if ((text = xen_cfg_read(svc->xen_cfg, err, sizeof(err))) == NULL) {
		log_warnx("%s: xen.cfg: %s", svc->name, err);
		return NULL;
	}
	if ((cfg = xen_cfg_expand(text, v, err, sizeof(err))) == NULL)
		log_warnx("%s: xen.cfg: %s: %s", svc->name, svc->xen_cfg, err);
	free(text);
	return cfg;
}

/* INST's domain config, malloc'd: the service's values under the user's xl.cfg. */
static libxl_domain_config *xen_domain_cfg(struct instance *inst, const char *dom)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct backend_vars v;
	struct backend_vars_buf vb;
	struct xen_cfg_in in = {.name = dom, .memory = svc->memory, .vcpus = svc->vcpus};
	libxl_domain_config *d = NULL;
	char err[512], *cmdline = NULL, *image = NULL, *text = NULL;

	backend_vars_fill(inst, &v, &vb);
	if (svc->image != NULL && (image = xen_abs(svc->name, "image", svc->image)) == NULL)
		return NULL;
	v.image = in.kernel = image;
	if ((cmdline = backend_expand(svc->cmdline ? svc->cmdline : "", &v, err, sizeof(err))) ==
	    NULL) {
		log_warnx("%s: cmdline: %s", svc->name, err);
		goto done;
	}
	v.cmdline = in.cmdline = cmdline;
	in.mac = launcher_inst_mac(inst);
	in.bridge = *launcher_inst_tap(inst) ? bridge : NULL;
	if (svc->xen_cfg != NULL && (text = xen_user_cfg(svc, &v)) == NULL)
		goto done;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto done;
	libxl_domain_config_init(d);
	if (xen_cfg_build(d, &in, text, svc->xen_cfg, err, sizeof(err)) == -1) {
		log_warnx("%s: xen: %s", svc->name, err);
		libxl_domain_config_dispose(d);
		free(d);
		d = NULL;
	}
done:
	free(text);
	free(cmdline);
	free(image);
	return d;
}

/* ---- the ops ------------------------------------------------------------------------ */

/*
 * Networking and the loop's side of the jobs, before a domain starts. In
 * bridge mode the guest's vif joins beckon's bridge through Xen's hotplug
 * script (vif-bridge): beckon makes no tap (the name the launcher gave it
 * only says "bridge mode"), only the guest's neighbour entry.
 */
static int xen_prepare(struct instance *inst)
{
	if (xen_jobs_attach(launcher_inst_base(inst)) == -1)
		return -1;
	if (*launcher_inst_tap(inst) && backend_neigh_up(inst) == -1) {
		log_warnx("%s: xen: host networking failed", xen_svc(inst));
		return -1;
	}
	return 0;
}

/* Create (PATH NULL) or restore INST's domain; a SHELL stays paused. */
static int xen_boot(struct instance *inst, const char *path, bool shell)
{
	struct xen_job *j = NULL;
	struct xen_run *r;
	char dom[XEN_NAME_MAX];
	libxl_domain_config *cfg;

	if (xen_prepare(inst) == -1)
		return -1;
	snprintf(dom, sizeof(dom), XEN_PREFIX "%s", xen_svc(inst));
	if ((cfg = xen_domain_cfg(inst, dom)) == NULL)
		return -1;
	if ((r = xen_run_new(inst)) == NULL ||
	    (j = xen_run_job(r, xen_w_create, xen_d_started)) == NULL ||
	    (path != NULL && (j->path = strdup(path)) == NULL))
		goto fail;
	r->shell = shell;
	j->cfg = cfg;
	j->flags = shell ? XEN_SHELL : 0;
	xen_job_queue(j);
	return 0;
fail:
	libxl_domain_config_dispose(cfg);
	free(cfg);
	xen_job_free(j);
	if (r != NULL)
		xen_run_free(r);
	return -1;
}

static int xen_start(struct instance *inst)
{
	return xen_boot(inst, NULL, false);
}

static int xen_restore(struct instance *inst, const char *path)
{
	return xen_boot(inst, path, false);
}

static int xen_shell(struct instance *inst, bool restore)
{
	char path[PATH_MAX];

	if (!restore)
		return xen_boot(inst, NULL, true);
	/* The launcher's saved state (revive.c): restored paused now, unpaused on a wake. */
	snprintf(path, sizeof(path), "%s/%s.state", launcher_inst_state_dir(inst), xen_svc(inst));
	return access(path, R_OK) == 0 ? xen_boot(inst, path, true) : -1;
}

/* Queue op OP ('p', 'u') of INST's run; -1 when there is no run. */
static int xen_simple(struct instance *inst, int op, xen_done_fn done)
{
	struct xen_run *r = launcher_inst_priv(inst);
	struct xen_job *j;

	if (r == NULL || r->ended || (j = xen_run_job(r, xen_w_simple, done)) == NULL)
		return -1;
	j->op = op;
	xen_job_queue(j);
	return 0;
}

static int xen_shell_run(struct instance *inst, const char *path)
{
	(void)path; /* a restore shell restored it already */
	return xen_simple(inst, 'u', xen_d_shell_run);
}

static int xen_pause(struct instance *inst)
{
	return xen_simple(inst, 'p', xen_d_pause);
}

static int xen_resume(struct instance *inst)
{
	return xen_simple(inst, 'u', xen_d_resume) == 0 ? 1 : -1;
}

static int xen_suspend(struct instance *inst, const char *path)
{
	struct xen_run *r = launcher_inst_priv(inst);
	struct xen_job *j;

	if (r == NULL || r->ended || (j = xen_run_job(r, xen_w_save, xen_d_save)) == NULL)
		return -1;
	if ((j->path = strdup(path)) == NULL) {
		xen_job_free(j);
		return -1;
	}
	r->saving = true;
	xen_job_queue(j);
	return 0;
}

/* Queue R's end; its completion reports it when DONE. */
static void xen_queue_stop(struct xen_run *r, bool graceful, xen_done_fn done)
{
	struct xen_job *j = xen_run_job(r, xen_w_stop, done);

	if (j == NULL)
		return;
	j->flags = graceful ? XEN_GRACEFUL : 0;
	xen_job_queue(j);
}

static void xen_stop(struct instance *inst, bool graceful)
{
	struct xen_run *r = launcher_inst_priv(inst);

	if (r != NULL && !r->ended) {
		r->stopping = true;
		xen_queue_stop(r, graceful, xen_d_stop);
	}
}

static void xen_cleanup(struct instance *inst, bool graceful)
{
	struct xen_run *r = launcher_inst_priv(inst);

	if (r == NULL)
		return;
	if (!r->ended)
		xen_queue_stop(r, graceful, NULL);
	xen_console_stop(r);
	r->inst = NULL;
	launcher_inst_set_priv(inst, NULL);
	xen_run_free(r);
}

/* No process of ours runs a domain: nothing is reaped. */
static void xen_died(struct instance *inst, int status)
{
	xen_cleanup(inst, false);
	launcher_inst_exited(inst, status);
}

static bool xen_bridge(const struct conf_service *svc)
{
	(void)svc;
	return true;
}

/* The threads and libxl's context at once: opening it sweeps what a killed beckond left. */
static int xen_global_init(const struct conf *conf)
{
	struct xen_job *j;
	size_t i;

	snprintf(bridge, sizeof(bridge), "%s", conf->bridge ? conf->bridge : "");
	for (i = 0; i < conf->nservices; i++) {
		if (conf->services[i].backend != CONF_BACKEND_XEN)
			continue;
		if (!in_use && xen_jobs_init() == -1)
			return -1;
		in_use = true;
		xen_jobs_set_event_done(xen_ev_done);
		if ((j = xen_job_new("connect")) == NULL)
			return -1;
		j->run = xen_w_nothing;
		xen_job_queue(j);
		break;
	}
	return 0;
}

/* Every run is gone by now: wait for their domains to be. */
static void xen_global_fini(void)
{
	if (in_use)
		xen_jobs_drain(XEN_DRAIN_MS);
	/* The loop's events go before its base does. */
	xen_jobs_detach();
}

/* cmdline, and xen.cfg: readable, known placeholders, xl.cfg that parses and maps. */
static int xen_check(const struct conf_service *svc, FILE *errs, const char *where)
{
	struct backend_vars v;
	struct xen_cfg_in in = {.name = XEN_PREFIX "check",
	                        .kernel = "k",
	                        .memory = svc->memory,
	                        .vcpus = svc->vcpus,
	                        .bridge = "b",
	                        .mac = "02:62:6b:00:00:01"};
	libxl_domain_config d;
	char err[512], *text, *cfg;
	int rc = backend_check_cmdline(svc, errs, where);

	if (svc->xen_cfg == NULL)
		return rc;
	/* A file missing now may be there when the service boots (its boot fails otherwise). */
	if (access(svc->xen_cfg, F_OK) == -1 && errno == ENOENT) {
		fprintf(errs, "%s.xen.cfg: note: %s does not exist (yet)\n", where, svc->xen_cfg);
		return rc;
	}
	if ((text = xen_cfg_read(svc->xen_cfg, err, sizeof(err))) == NULL) {
		fprintf(errs, "%s.xen.cfg: %s\n", where, err);
		return -1;
	}
	backend_vars_dummy(&v);
	libxl_domain_config_init(&d);
	if ((cfg = xen_cfg_expand(text, &v, err, sizeof(err))) == NULL ||
	    xen_cfg_build(&d, &in, cfg, svc->xen_cfg, err, sizeof(err)) == -1) {
		/* libxlutil's syntax errors name FILE:LINE already. */
		if (strncmp(err, svc->xen_cfg, strlen(svc->xen_cfg)) == 0)
			fprintf(errs, "%s.xen.cfg: %s\n", where, err);
		else
			fprintf(errs, "%s.xen.cfg: %s: %s\n", where, svc->xen_cfg, err);
		rc = -1;
	}
	libxl_domain_config_dispose(&d);
	free(cfg);
	free(text);
	return rc;
}

const struct backend_ops backend_xen_ops = {
    .name = "xen",
    .bridge = xen_bridge,
    .global_init = xen_global_init,
    .global_fini = xen_global_fini,
    .check = xen_check,
    .start = xen_start,
    .stop = xen_stop,
    .pause = xen_pause,
    .resume = xen_resume,
    .died = xen_died,
    .cleanup = xen_cleanup,
    .suspend = xen_suspend,
    .restore = xen_restore,
    .shell = xen_shell,
    .shell_run = xen_shell_run,
};
