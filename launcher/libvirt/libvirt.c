/*
 * The libvirt backend: one transient domain (virDomainCreateXML) per
 * running instance, named beckon-<service>, on the connection libvirt.uri
 * names. Every libvirt call runs on a worker (libvirt_job.c); the ops
 * below queue a job and return, and its completion comes back here on
 * beckon's loop, as do libvirt's lifecycle events and the console's bytes.
 *
 * A domain is created paused, its console opened, then resumed: a pty
 * console drops what the guest says before someone reads it. A warm shell
 * is the same without the resume. Each run has a serial: a completion or
 * an event for a run that is gone (a stop came first) finds nothing.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "backend.h"
#include "hosts.h"
#include "proc.h"
#include "launcher.h"
#include "revive.h"
#include "virt.h"
#include "log.h"

#define LIBVIRT_GRACE_MS 2000 /* after a shutdown request, before destroy */
#define LIBVIRT_DRAIN_MS 15000
#define LIBVIRT_UNLIST_MS 5000 /* after its end, for a domain to leave the list */
#define LIBVIRT_SHELL 1u       /* job flag: leave the domain paused */

static struct lv_run *runs;
static uint64_t next_serial = 1;
static bool in_use; /* a libvirt service was configured: threads are up */

static int64_t lv_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *lv_svc(const struct instance *inst)
{
	return launcher_inst_service(inst)->name;
}

/* ---- runs ---------------------------------------------------------------------- */

struct lv_run *libvirt_runs(void)
{
	return runs;
}

/* The URI of INST's run: its host's, or its service's (NULL: libvirt's default). */
static const char *libvirt_inst_uri(const struct instance *inst)
{
	const struct conf_host *h = launcher_inst_host(inst);

	return h != NULL ? h->uri : launcher_inst_service(inst)->libvirt_uri;
}

static struct lv_run *libvirt_run_new(struct instance *inst)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	const char *uri = libvirt_inst_uri(inst);
	struct lv_run *r = calloc(1, sizeof(*r));

	if (r == NULL || (uri && (r->uri = strdup(uri)) == NULL)) {
		log_warn("%s: libvirt", svc->name);
		free(r);
		return NULL;
	}
	r->serial = next_serial++;
	r->inst = inst;
	r->id = -1;
	r->t0_us = lv_now_us();
	snprintf(r->dom, sizeof(r->dom), LIBVIRT_PREFIX "%s", svc->name);
	r->next = runs;
	runs = r;
	launcher_inst_set_priv(inst, r);
	return r;
}

static void libvirt_run_free(struct lv_run *r)
{
	struct lv_run **pp;

	for (pp = &runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (r->inst != NULL && launcher_inst_priv(r->inst) == r)
		launcher_inst_set_priv(r->inst, NULL);
	libvirt_console_close(r->console);
	free(r->uri);
	free(r);
}

struct lv_run *libvirt_run_find(uint64_t serial)
{
	for (struct lv_run *r = runs; r != NULL; r = r->next)
		if (r->serial == serial)
			return r;
	return NULL;
}

static struct lv_run *libvirt_run_by_dom(const char *dom)
{
	for (struct lv_run *r = runs; r != NULL; r = r->next)
		if (strcmp(r->dom, dom) == 0)
			return r;
	return NULL;
}

/* A job for R: queued with RUN on a worker, DONE back here. */
struct libvirt_job *libvirt_run_job(struct lv_run *r, libvirt_job_fn run, libvirt_done_fn done)
{
	struct libvirt_job *j = libvirt_job_new(r->dom, r->uri);

	if (j == NULL) {
		log_warn("%s: libvirt job", r->dom);
		return NULL;
	}
	j->serial = r->serial;
	j->run = run;
	j->done = done;
	return j;
}

/* The domain ended: tell the launcher (which then calls cleanup: R is freed). */
void libvirt_run_died(struct lv_run *r, int status, const char *how)
{
	struct instance *inst = r->inst;

	r->ended = true;
	if (inst == NULL) {
		libvirt_run_free(r);
		return;
	}
	log_info("%s: domain %s %s", lv_svc(inst), r->dom, how);
	launcher_inst_exited(inst, status); /* its cleanup frees R */
}

/* ---- on the workers -------------------------------------------------------------- */

static virDomainPtr libvirt_lookup(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr d = virDomainLookupByName(c, j->item.key);

	if (d == NULL)
		snprintf(j->err, sizeof(j->err), "%s", libvirt_conn_error("no such domain"));
	return d;
}

/* A domain just made, paused: its console, then (unless a shell) running. */
static void libvirt_w_started(struct libvirt_job *j, virConnectPtr c, virDomainPtr d)
{
	j->id = (int)virDomainGetID(d);
	virDomainGetUUIDString(d, j->uuid);
	j->console = libvirt_console_open(c, d, j->serial);
	if (!(j->flags & LIBVIRT_SHELL) && virDomainResume(d) == -1) {
		snprintf(j->err, sizeof(j->err), "resume: %s", libvirt_conn_error("failed"));
		virDomainDestroy(d);
	} else {
		j->rc = 0;
	}
	virDomainFree(d);
}

static void libvirt_w_create(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr d;

	if (c == NULL)
		return;
	if ((d = virDomainCreateXML(c, j->xml, VIR_DOMAIN_START_PAUSED)) == NULL) {
		snprintf(j->err, sizeof(j->err), "%s", libvirt_conn_error("cannot create it"));
		return;
	}
	libvirt_w_started(j, c, d);
}

static void libvirt_w_restore(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr d;

	if (c == NULL)
		return;
	if (virDomainRestoreFlags(c, j->path, NULL, VIR_DOMAIN_SAVE_PAUSED) == -1) {
		snprintf(j->err, sizeof(j->err), "restore %s: %s", j->path,
		         libvirt_conn_error("failed"));
		return;
	}
	if ((d = libvirt_lookup(j, c)) != NULL)
		libvirt_w_started(j, c, d);
}

/* op: 'p' pause, 'r' resume, 's' save to path. */
static void libvirt_w_simple(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr d;
	int rc;

	if (c == NULL || (d = libvirt_lookup(j, c)) == NULL)
		return;
	rc = j->op == 'p'   ? virDomainSuspend(d)
	     : j->op == 'r' ? virDomainResume(d)
	                    : virDomainSave(d, j->path);
	if (rc == -1)
		snprintf(j->err, sizeof(j->err), "%s", libvirt_conn_error("failed"));
	j->rc = rc;
	virDomainFree(d);
}

/* Whether D still runs, polled up to MS. */
static bool libvirt_w_wait_gone(virDomainPtr d, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		if (virDomainIsActive(d) != 1)
			return true;
		usleep(50000);
	}
	return virDomainIsActive(d) != 1;
}

/*
 * Wait up to MS for NAME to leave libvirt's list (a transient domain stays
 * listed, shut off, until libvirtd has reaped its QEMU). NULL once it has,
 * else why not.
 */
static const char *libvirt_w_unlisted(virConnectPtr c, const char *name, int ms)
{
	virDomainPtr d;

	for (int waited = 0;; waited += 50) {
		if ((d = virDomainLookupByName(c, name)) == NULL)
			return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN
			           ? NULL
			           : libvirt_conn_error("lookup failed");
		virDomainFree(d);
		if (waited >= ms)
			return "still listed after its end";
		usleep(50000);
	}
}

/* One try of a stop, on C (libvirt_w_stop). */
static void libvirt_w_stop_on(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr d;
	const char *why;

	if ((d = virDomainLookupByName(c, j->item.key)) == NULL) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			j->rc = 0; /* gone already */
		else
			snprintf(j->err, sizeof(j->err), "%s", libvirt_conn_error("lookup failed"));
		return;
	}
	virDomainGetUUIDString(d, j->uuid);
	if (!(j->flags && virDomainShutdown(d) == 0 && libvirt_w_wait_gone(d, LIBVIRT_GRACE_MS)) &&
	    virDomainDestroy(d) == -1 && virDomainIsActive(d) == 1)
		snprintf(j->err, sizeof(j->err), "destroy: %s", libvirt_conn_error("failed"));
	else if ((why = libvirt_w_unlisted(c, j->item.key, LIBVIRT_UNLIST_MS)) != NULL)
		snprintf(j->err, sizeof(j->err), "%s", why);
	else
		j->rc = 0;
	virDomainFree(d);
}

/*
 * A new connection to J's URI once DEAD's close callback has let it go,
 * waited for up to the grace period; NULL when none (the reason in J's err).
 */
static virConnectPtr libvirt_w_conn_again(struct libvirt_job *j, virConnectPtr dead)
{
	virConnectPtr c;

	for (int waited = 0; waited < LIBVIRT_GRACE_MS; waited += 50) {
		if ((c = libvirt_conn_get(j->uri, j->err, sizeof(j->err))) == NULL)
			return NULL;
		if (c != dead)
			return c;
		virConnectClose(c);
		usleep(50000);
	}
	return NULL;
}

/*
 * Graceful (flags 1): a shutdown request, then destroy after the grace
 * period. Done once the domain has left libvirt's list. A connection that
 * dies under it (libvirtd restarted, or dropped us) gets one more try on a
 * new one: a domain left running outlives beckond.
 */
void libvirt_w_stop(struct libvirt_job *j, virConnectPtr c)
{
	virConnectPtr again;

	if (c == NULL)
		return;
	libvirt_w_stop_on(j, c);
	if (j->rc == 0 || virConnectIsAlive(c) == 1 || (again = libvirt_w_conn_again(j, c)) == NULL)
		return;
	log_info("libvirt: %s: the connection died under its stop: once more, on a new one",
	         j->item.key);
	libvirt_w_stop_on(j, again);
	virConnectClose(again);
}

static void libvirt_w_nothing(struct libvirt_job *j, virConnectPtr c)
{
	j->rc = c != NULL ? 0 : -1;
}

/* ---- completions, on beckon's loop ---------------------------------------------- */

static void libvirt_d_started(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);

	if (r == NULL || r->inst == NULL) {
		libvirt_console_close(j->console); /* its stop is queued after it */
		return;
	}
	r->console = j->console;
	if (j->rc == -1) {
		log_warnx("%s: libvirt: domain %s: %s", lv_svc(r->inst), r->dom, j->err);
		r->ended = true;
		/* A boot fails; a shell, or a boot stopped meanwhile, just ends. */
		if (!r->shell && launcher_state(r->inst) == INST_BOOTING)
			launcher_inst_failed(r->inst, "libvirt could not start the domain");
		else
			launcher_inst_exited(r->inst, W_EXITCODE(1, 0));
		return;
	}
	r->id = j->id;
	snprintf(r->uuid, sizeof(r->uuid), "%s", j->uuid);
	log_debug("%s: domain %s (id %d) %s +%.1f ms", lv_svc(r->inst), r->dom, r->id,
	          r->shell ? "created paused" : "running", (double)(lv_now_us() - r->t0_us) / 1e3);
	if (strcmp(r->early_stop, r->uuid) == 0)
		libvirt_run_died(r, W_EXITCODE(1, 0), "stopped as it started");
	else if (r->shell)
		launcher_inst_shell_ready(r->inst);
	else
		launcher_inst_running(r->inst);
}

static void libvirt_d_pause(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);

	if (j->rc == -1 && r != NULL && r->inst != NULL)
		log_warnx("%s: libvirt: pausing %s: %s", lv_svc(r->inst), r->dom, j->err);
}

static void libvirt_d_resume(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);

	if (r == NULL || r->inst == NULL)
		return;
	if (j->rc == -1)
		log_warnx("%s: libvirt: resuming %s: %s", lv_svc(r->inst), r->dom, j->err);
	launcher_inst_resumed(r->inst, j->rc == 0);
}

static void libvirt_d_shell_run(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);

	if (r == NULL || r->inst == NULL)
		return;
	r->shell = false;
	if (j->rc == 0) {
		launcher_inst_running(r->inst);
		return;
	}
	log_warnx("%s: libvirt: running the warm shell %s: %s", lv_svc(r->inst), r->dom, j->err);
	launcher_inst_failed(r->inst, "the warm shell did not start");
}

static void libvirt_d_save(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);
	struct libvirt_job *k;

	if (r == NULL || r->inst == NULL)
		return;
	r->saving = false;
	launcher_inst_saved(r->inst, j->rc == 0);
	if (j->rc == 0) {
		libvirt_run_died(r, 0, "saved");
		return;
	}
	log_warnx("%s: libvirt: saving %s: %s", lv_svc(r->inst), r->dom, j->err);
	if ((k = libvirt_run_job(r, libvirt_w_stop, NULL)) != NULL)
		libvirt_job_queue(k); /* its STOPPED event reports the end */
}

void libvirt_d_stop(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);

	if (r == NULL || r->ended)
		return;
	if (j->rc == -1) {
		log_warnx("%s: libvirt: stopping %s: %s", r->inst ? lv_svc(r->inst) : "?", r->dom,
		          j->err);
		return;
	}
	/* Gone: its STOPPED event may be lost with a dropped connection. */
	if (j->uuid[0] == '\0' || strcmp(j->uuid, r->uuid) == 0)
		libvirt_run_died(r, W_EXITCODE(0, 0), "stopped");
}

/* ---- libvirt's events ------------------------------------------------------------ */

static const char *libvirt_stopped_how(int detail, int *status)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
		*status = W_EXITCODE(0, 0);
		return "shut down";
	case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
		*status = SIGKILL;
		return "destroyed";
	case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
		*status = W_EXITCODE(1, 0);
		return "crashed";
	case VIR_DOMAIN_EVENT_STOPPED_SAVED:
		*status = W_EXITCODE(0, 0);
		return "saved";
	default:
		*status = W_EXITCODE(1, 0);
		return "failed";
	}
}

static void libvirt_ev_stopped(struct lv_run *r, const struct libvirt_job *j)
{
	char how[64];
	int status;

	if (r->uuid[0] == '\0') {
		/* The start's completion is still coming. */
		snprintf(r->early_stop, sizeof(r->early_stop), "%s", j->uuid);
		return;
	}
	if (strcmp(j->uuid, r->uuid) != 0 || r->saving || r->ended)
		return;
	snprintf(how, sizeof(how), "%s (libvirt event)", libvirt_stopped_how(j->detail, &status));
	libvirt_run_died(r, status, how);
}

static void libvirt_ev_lifecycle(const struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_by_dom(j->item.key);
	enum inst_state s;

	if (r == NULL || r->inst == NULL)
		return;
	s = launcher_state(r->inst);
	switch (j->rc) {
	case VIR_DOMAIN_EVENT_STOPPED:
		libvirt_ev_stopped(r, j);
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		log_warnx("%s: domain %s crashed", lv_svc(r->inst), r->dom);
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		/* Ours come while the launcher says paused, saves while saving. */
		if (s == INST_READY && !r->saving && strcmp(j->uuid, r->uuid) == 0)
			log_warnx("%s: domain %s was paused behind beckon's back (detail %d)",
			          lv_svc(r->inst), r->dom, j->detail);
		break;
	default:
		log_debug("%s: domain %s: libvirt event %d/%d", lv_svc(r->inst), r->dom, j->rc,
		          j->detail);
		break;
	}
}

static void libvirt_ev_done(struct libvirt_job *j)
{
	struct lv_run *r;

	if (j->op == LIBVIRT_EV_LIFECYCLE) {
		libvirt_ev_lifecycle(j);
		return;
	}
	if (j->op == LIBVIRT_EV_CLOSED) {
		libvirt_watch_lost(j->uri, "the connection was lost");
		return;
	}
	if ((r = libvirt_run_find(j->serial)) == NULL || r->inst == NULL)
		return;
	if (j->len > 0)
		launcher_inst_console(r->inst, j->data, j->len);
	else
		log_debug("%s: the console of %s ended", lv_svc(r->inst), r->dom);
}

/* ---- the domain XML --------------------------------------------------------------- */

/* PATH made absolute (libvirtd does not share our cwd); NULL when it is missing. */
static char *libvirt_abs(const char *svc, const char *key, const char *path)
{
	char *abs = realpath(path, NULL);

	if (abs == NULL)
		log_warn("%s: %s %s", svc, key, path);
	return abs;
}

static char *libvirt_user_xml(const struct conf_service *svc, struct backend_vars *v,
                              const char *dom)
{
	char err[512], *text, *xml;
	int line;

	if ((text = libvirt_xml_read(svc->libvirt_xml, err, sizeof(err))) == NULL) {
		log_warnx("%s: libvirt.xml: %s", svc->name, err);
		return NULL;
	}
	if ((xml = libvirt_xml_user(text, v, dom, &line, err, sizeof(err))) == NULL)
		log_warnx("%s: libvirt.xml: %s:%d: %s", svc->name, svc->libvirt_xml, line, err);
	free(text);
	return xml;
}

static char *libvirt_own_xml(struct instance *inst, const struct backend_vars *v, const char *dom)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct libvirt_xml_in in = {
	    .name = dom,
	    .type = libvirt_xml_type(svc->qemu.accel, "/dev/kvm"),
	    .machine = svc->qemu.machine,
	    .kernel = v->image,
	    .cmdline = v->cmdline,
	    .memory = svc->memory,
	    .vcpus = svc->vcpus,
	    .tap = launcher_inst_host(inst) ? "" : launcher_inst_tap(inst),
	    .mac = launcher_inst_mac(inst),
	    .bridge = launcher_inst_host(inst) ? launcher_inst_host(inst)->bridge : NULL,
	};
	char *initrd = NULL, *xml = NULL;

	if (svc->qemu.initrd != NULL &&
	    (initrd = libvirt_abs(svc->name, "qemu.initrd", svc->qemu.initrd)) == NULL)
		return NULL;
	in.initrd = initrd;
	if ((xml = libvirt_xml_domain(&in)) == NULL)
		log_warn("%s: domain XML", svc->name);
	else
		log_debug("%s: libvirt domain type %s", svc->name, in.type);
	free(initrd);
	return xml;
}

/* The domain XML of INST's run, named DOM: the user's, or beckon's own. */
static char *libvirt_domain_xml(struct instance *inst, const char *dom)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct backend_vars v;
	struct backend_vars_buf vb;
	char err[128], *cmdline = NULL, *image = NULL, *xml = NULL;

	backend_vars_fill(inst, &v, &vb);
	if (svc->image != NULL && (image = libvirt_abs(svc->name, "image", svc->image)) == NULL)
		return NULL;
	v.image = image;
	if ((cmdline = backend_expand(svc->cmdline ? svc->cmdline : "", &v, err, sizeof(err))) ==
	    NULL) {
		log_warnx("%s: cmdline: %s", svc->name, err);
		goto done;
	}
	v.cmdline = cmdline;
	if (svc->libvirt_xml != NULL)
		xml = libvirt_user_xml(svc, &v, dom);
	else if (image == NULL)
		log_warnx("%s: libvirt: no image and no libvirt.xml", svc->name);
	else
		xml = libvirt_own_xml(inst, &v, dom);
done:
	free(cmdline);
	free(image);
	return xml;
}

/* ---- the ops ------------------------------------------------------------------------ */

/* Networking and the loop's side of the jobs, before a domain starts. */
static int libvirt_prepare(struct instance *inst)
{
	const struct conf_service *svc = launcher_inst_service(inst);

	if (libvirt_jobs_attach(launcher_inst_base(inst)) == -1)
		return -1;
	if (launcher_inst_host(inst) != NULL)
		return 0; /* libvirt makes its tap there, on that host's bridge */
	if (*launcher_inst_tap(inst)) {
		if (backend_bridge_up(inst) == -1) {
			log_warnx("%s: libvirt: host networking failed", svc->name);
			return -1;
		}
	} else if (svc->libvirt_xml == NULL) {
		log_warnx("%s: libvirt: beckon's domain XML needs network.mode \"bridge\" "
		          "(or give libvirt.xml)",
		          svc->name);
		return -1;
	}
	return 0;
}

/* Create (PATH NULL) or restore INST's domain; a SHELL stays paused. */
static int libvirt_boot(struct instance *inst, const char *path, bool shell)
{
	struct libvirt_job *j;
	struct lv_run *r;
	char dom[LIBVIRT_NAME_MAX], *xml = NULL;

	if (libvirt_prepare(inst) == -1)
		return -1;
	snprintf(dom, sizeof(dom), LIBVIRT_PREFIX "%s", lv_svc(inst));
	if (path == NULL && (xml = libvirt_domain_xml(inst, dom)) == NULL)
		return -1;
	if ((r = libvirt_run_new(inst)) == NULL)
		goto fail;
	r->shell = shell;
	if ((j = libvirt_run_job(r, path ? libvirt_w_restore : libvirt_w_create,
	                         libvirt_d_started)) == NULL ||
	    (path != NULL && (j->path = strdup(path)) == NULL)) {
		libvirt_job_free(j);
		libvirt_run_free(r);
		goto fail;
	}
	j->xml = xml;
	j->flags = shell ? LIBVIRT_SHELL : 0;
	libvirt_job_queue(j);
	return 0;
fail:
	free(xml);
	return -1;
}

static int libvirt_start(struct instance *inst)
{
	return libvirt_boot(inst, NULL, false);
}

static int libvirt_restore(struct instance *inst, const char *path)
{
	return libvirt_boot(inst, path, false);
}

static int libvirt_shell(struct instance *inst, bool restore)
{
	char path[PATH_MAX];

	if (!restore)
		return libvirt_boot(inst, NULL, true);
	/* The launcher's saved state (revive.c): restored paused now, resumed on a wake. */
	snprintf(path, sizeof(path), "%s/%s.state", launcher_inst_state_dir(inst), lv_svc(inst));
	return access(path, R_OK) == 0 ? libvirt_boot(inst, path, true) : -1;
}

/* Queue op OP ('p', 'r', 's') of INST's run; -1 when there is no run. */
static int libvirt_simple(struct instance *inst, int op, const char *path, libvirt_done_fn done)
{
	struct lv_run *r = launcher_inst_priv(inst);
	struct libvirt_job *j;

	if (r == NULL || r->ended || (j = libvirt_run_job(r, libvirt_w_simple, done)) == NULL)
		return -1;
	j->op = op;
	if (path != NULL && (j->path = strdup(path)) == NULL) {
		libvirt_job_free(j);
		return -1;
	}
	libvirt_job_queue(j);
	return 0;
}

static int libvirt_shell_run(struct instance *inst, const char *path)
{
	(void)path; /* a restore shell restored it already */
	return libvirt_simple(inst, 'r', NULL, libvirt_d_shell_run);
}

static int libvirt_pause(struct instance *inst)
{
	return libvirt_simple(inst, 'p', NULL, libvirt_d_pause);
}

static int libvirt_resume(struct instance *inst)
{
	return libvirt_simple(inst, 'r', NULL, libvirt_d_resume) == 0 ? 1 : -1;
}

/* The console is closed first, then the save runs (libvirt_console_close_then). */
static int libvirt_suspend(struct instance *inst, const char *path)
{
	struct lv_run *r = launcher_inst_priv(inst);
	struct libvirt_job *j;

	if (r == NULL || r->ended ||
	    (j = libvirt_run_job(r, libvirt_w_simple, libvirt_d_save)) == NULL)
		return -1;
	j->op = 's';
	if ((j->path = strdup(path)) == NULL) {
		libvirt_job_free(j);
		return -1;
	}
	r->saving = true;
	libvirt_console_close_then(r->console, j);
	r->console = NULL;
	return 0;
}

/* Queue R's end; its completion reports it when DONE. */
void libvirt_queue_stop(struct lv_run *r, bool graceful, libvirt_done_fn done)
{
	struct libvirt_job *j = libvirt_run_job(r, libvirt_w_stop, done);

	if (j == NULL)
		return;
	j->flags = graceful;
	libvirt_job_queue(j);
}

static void libvirt_stop(struct instance *inst, bool graceful)
{
	struct lv_run *r = launcher_inst_priv(inst);

	if (r != NULL && !r->ended)
		libvirt_queue_stop(r, graceful, libvirt_d_stop);
}

/* A stop no run waits for (the run was cleaned up): only a failure is said. */
static void libvirt_d_stop_orphan(struct libvirt_job *j)
{
	if (j->rc == -1)
		log_warnx("libvirt: domain %s may be left behind: %s", j->item.key, j->err);
	else
		log_debug("libvirt: domain %s is gone", j->item.key);
}

static void libvirt_cleanup(struct instance *inst, bool graceful)
{
	struct lv_run *r = launcher_inst_priv(inst);

	if (r == NULL)
		return;
	if (!r->ended)
		libvirt_queue_stop(r, graceful, libvirt_d_stop_orphan);
	r->inst = NULL;
	launcher_inst_set_priv(inst, NULL);
	libvirt_run_free(r);
}

/* No process of ours runs a domain: nothing is reaped. */
static void libvirt_died(struct instance *inst, int status)
{
	libvirt_cleanup(inst, false);
	launcher_inst_exited(inst, status);
}

static bool libvirt_bridge(const struct conf_service *svc)
{
	(void)svc;
	return true;
}

/* Queue a first connection to URI: it sweeps what a killed beckond left. */
static int libvirt_connect_at_start(const char *uri)
{
	struct libvirt_job *j = libvirt_job_new("connect", uri);

	if (j == NULL)
		return -1;
	j->run = libvirt_w_nothing;
	j->done = libvirt_watch_connected;
	libvirt_job_queue(j);
	return 0;
}

/* The threads, the loop's side, and a first connection to each URI. */
static int libvirt_global_init(const struct conf *conf)
{
	bool hosted = false;
	size_t i;

	for (i = 0; i < conf->nservices; i++) {
		if (conf->services[i].backend != CONF_BACKEND_LIBVIRT)
			continue;
		if (!in_use && libvirt_jobs_init() == -1)
			return -1;
		in_use = true;
		libvirt_conn_set_event_done(libvirt_ev_done);
		libvirt_jobs_set_noconn(libvirt_watch_noconn);
		libvirt_jobs_closing(false);
		if (libvirt_jobs_attach(backend_base()) == -1)
			return -1;
		if (conf_service_hosted(conf, &conf->services[i]))
			hosted = true;
		else if (libvirt_connect_at_start(conf->services[i].libvirt_uri) == -1)
			return -1;
	}
	for (i = 0; hosted && i < conf->nhosts; i++)
		if (libvirt_connect_at_start(conf->hosts[i].uri) == -1)
			return -1;
	return 0;
}

/* Every run is gone by now: wait for their domains to be. */
static void libvirt_global_fini(void)
{
	if (!in_use)
		return;
	/* A libvirtd that does not answer would hold the exit forever: leave its connections. */
	if (!libvirt_jobs_drain(LIBVIRT_DRAIN_MS)) {
		log_warnx("libvirt: a libvirtd does not answer: exiting without closing its "
		          "connections");
		libvirt_jobs_closing(true);
		libvirt_jobs_drain(0);
		return;
	}
	libvirt_conn_close_all();
	/*
	 * Events that came meanwhile: nobody wants them, but they are freed;
	 * one libvirt's event thread posts later is freed there.
	 */
	libvirt_jobs_closing(true);
	libvirt_jobs_drain(0);
	libvirt_watch_free();
}

/* cmdline, and libvirt.xml: readable, known placeholders, XML that parses. */
static int libvirt_check(const struct conf_service *svc, FILE *errs, const char *where)
{
	struct backend_vars v;
	char err[512], *text, *xml;
	int line, rc = backend_check_cmdline(svc, errs, where);

	if (svc->libvirt_xml == NULL)
		return rc;
	/*
	 * A file missing now may be there when the service boots (its boot
	 * fails with the reason otherwise): a note, as the config's own
	 * fixtures name files of other hosts.
	 */
	if (access(svc->libvirt_xml, F_OK) == -1 && errno == ENOENT) {
		fprintf(errs, "%s.libvirt.xml: note: %s does not exist (yet)\n", where,
		        svc->libvirt_xml);
		return rc;
	}
	if ((text = libvirt_xml_read(svc->libvirt_xml, err, sizeof(err))) == NULL) {
		fprintf(errs, "%s.libvirt.xml: %s\n", where, err);
		return -1;
	}
	backend_vars_dummy(&v);
	if ((xml = libvirt_xml_user(text, &v, LIBVIRT_PREFIX "check", &line, err, sizeof(err))) ==
	    NULL) {
		if (line > 0)
			fprintf(errs, "%s.libvirt.xml: %s:%d: %s\n", where, svc->libvirt_xml, line,
			        err);
		else
			fprintf(errs, "%s.libvirt.xml: %s: %s\n", where, svc->libvirt_xml, err);
		rc = -1;
	}
	free(xml);
	free(text);
	return rc;
}

const struct backend_ops backend_libvirt_ops = {
    .name = "libvirt",
    .bridge = libvirt_bridge,
    .global_init = libvirt_global_init,
    .global_fini = libvirt_global_fini,
    .check = libvirt_check,
    .start = libvirt_start,
    .stop = libvirt_stop,
    .pause = libvirt_pause,
    .resume = libvirt_resume,
    .died = libvirt_died,
    .cleanup = libvirt_cleanup,
    .suspend = libvirt_suspend,
    .restore = libvirt_restore,
    .shell = libvirt_shell,
    .shell_run = libvirt_shell_run,
};
