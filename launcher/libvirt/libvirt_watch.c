/*
 * Connections that drop, and what beckon does until they are back. A
 * connection lost (libvirtd restarting, a host unreachable) is reopened by
 * a timer with backoff, not only by the next job. Meanwhile a host of the
 * hosts list is marked down (its runs end in beckon's books, and the next
 * wake boots elsewhere); a single URI's runs are marked unseen and their
 * instances keep their state: ready guests serve on, DNS answers for them.
 *
 * Reconnected, the beckon-* domains found there are matched with the runs
 * on that URI: a running domain whose name and UUID are a run's (the very
 * domain beckon created from that run's XML; a transient domain's config
 * cannot change under the same UUID) is adopted: its console is opened
 * again, and its lifecycle events come on the new connection. Every other
 * beckon-* domain is destroyed, each logged; a run whose domain is gone
 * ended while out of sight.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "hosts.h"
#include "launcher.h"
#include "log.h"
#include "virt.h"

#define WATCH_FIRST_MS 250
#define WATCH_MAX_MS 8000

struct lv_watch {
	struct lv_watch *next;
	char *uri; /* NULL: libvirt's default */
	struct event *timer;
	int backoff_ms;
	bool queued; /* a reconnect job is under way */
	bool down;   /* lost, not yet back */
};

static struct lv_watch *watches;

static const char *watch_name(const char *uri)
{
	return uri != NULL ? uri : "(default)";
}

static bool watch_uri_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void watch_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct lv_watch *watch_get(const char *uri)
{
	struct lv_watch *w;
	struct event_base *base = backend_base();

	for (w = watches; w != NULL; w = w->next)
		if (watch_uri_eq(w->uri, uri))
			return w;
	if (base == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((uri != NULL && (w->uri = strdup(uri)) == NULL) ||
	    (w->timer = evtimer_new(base, watch_timer_cb, w)) == NULL) {
		free(w->uri);
		free(w);
		return NULL;
	}
	w->next = watches;
	watches = w;
	return w;
}

static void watch_arm(struct lv_watch *w)
{
	struct timeval tv;

	if (w->queued || evtimer_pending(w->timer, NULL))
		return;
	if (w->backoff_ms == 0)
		w->backoff_ms = WATCH_FIRST_MS;
	tv.tv_sec = w->backoff_ms / 1000;
	tv.tv_usec = (w->backoff_ms % 1000) * 1000;
	evtimer_add(w->timer, &tv);
}

/* A single URI's runs: out of sight, their instances as they were. */
static void watch_mark_unseen(const char *uri)
{
	for (struct lv_run *r = libvirt_runs(); r != NULL; r = r->next) {
		if (r->ended || r->unseen || r->uuid[0] == '\0' || !watch_uri_eq(r->uri, uri))
			continue;
		r->unseen = true;
		log_warnx("%s: domain %s out of sight until libvirt %s is back",
		          r->inst ? launcher_inst_service(r->inst)->name : "?", r->dom,
		          watch_name(uri));
	}
}

void libvirt_watch_lost(const char *uri, const char *why)
{
	struct lv_watch *w = watch_get(uri);

	if (w == NULL) {
		log_warnx("libvirt %s: cannot watch the connection", watch_name(uri));
		return;
	}
	if (!w->down)
		log_warnx("libvirt %s: %s", watch_name(uri), why);
	w->down = true;
	if (uri != NULL && backend_host_known(uri))
		backend_host_state(uri, false, why); /* ends its runs: cleanup */
	else
		watch_mark_unseen(uri);
	watch_arm(w);
}

void libvirt_watch_noconn(struct libvirt_job *j)
{
	libvirt_watch_lost(j->uri, j->err[0] ? j->err : "no connection");
}

void libvirt_watch_connected(struct libvirt_job *j)
{
	if (j->rc == 0 && j->uri != NULL && backend_host_known(j->uri))
		backend_host_state(j->uri, true, NULL);
}

/* ---- reconnecting ---------------------------------------------------------------- */

/* On a worker: the beckon-* domains there, a line each: "NAME UUID ACTIVE". */
static void watch_w_list(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr *doms = NULL;
	char uuid[VIR_UUID_STRING_BUFLEN];
	size_t len = 0;
	FILE *f;
	int n;

	if (c == NULL || (f = open_memstream(&j->data, &len)) == NULL)
		return;
	n = virConnectListAllDomains(c, &doms, 0);
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);

		if (name != NULL && strncmp(name, LIBVIRT_PREFIX, strlen(LIBVIRT_PREFIX)) == 0 &&
		    virDomainGetUUIDString(doms[i], uuid) == 0)
			fprintf(f, "%s %s %d\n", name, uuid, virDomainIsActive(doms[i]) == 1);
		virDomainFree(doms[i]);
	}
	free(doms);
	fclose(f);
	j->len = len;
	j->rc = n < 0 ? -1 : 0;
	if (n < 0)
		snprintf(j->err, sizeof(j->err), "%s", libvirt_conn_error("cannot list domains"));
}

/* On a worker: destroy the domain named by the key, if its UUID is still the job's. */
static void watch_w_destroy(struct libvirt_job *j, virConnectPtr c)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	virDomainPtr d;

	if (c == NULL || (d = virDomainLookupByName(c, j->item.key)) == NULL)
		return;
	if (virDomainGetUUIDString(d, uuid) == 0 && strcmp(uuid, j->uuid) == 0) {
		j->rc = virDomainIsActive(d) == 1 ? virDomainDestroy(d) : 0;
		if (virDomainIsPersistent(d) == 1)
			virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
	}
	virDomainFree(d);
}

/* On a worker: the run's console again. */
static void watch_w_console(struct libvirt_job *j, virConnectPtr c)
{
	virDomainPtr d;

	if (c == NULL || (d = virDomainLookupByName(c, j->item.key)) == NULL)
		return;
	j->console = libvirt_console_open(c, d, j->serial);
	j->rc = 0;
	virDomainFree(d);
}

static void watch_d_console(struct libvirt_job *j)
{
	struct lv_run *r = libvirt_run_find(j->serial);

	if (r == NULL || r->ended) {
		libvirt_console_close(j->console);
		return;
	}
	libvirt_console_close(r->console);
	r->console = j->console;
}

static void watch_destroy(const char *uri, const char *name, const char *uuid, const char *why)
{
	struct libvirt_job *j = libvirt_job_new(name, uri);

	log_info("libvirt %s: destroying domain %s: %s", watch_name(uri), name, why);
	if (j == NULL)
		return;
	snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
	j->run = watch_w_destroy;
	libvirt_job_queue(j);
}

/* R's domain is there and running: take it back. */
static void watch_adopt(struct lv_run *r)
{
	const char *svc = r->inst ? launcher_inst_service(r->inst)->name : "?";
	struct libvirt_job *j;

	r->unseen = false;
	if (r->inst != NULL && launcher_state(r->inst) == INST_STOPPING) {
		libvirt_queue_stop(r, false, libvirt_d_stop); /* the stop asked for meanwhile */
		return;
	}
	log_info("%s: adopted domain %s (%s) on the new connection", svc, r->dom, r->uuid);
	if ((j = libvirt_run_job(r, watch_w_console, watch_d_console)) != NULL)
		libvirt_job_queue(j);
}

/* The run on URI with domain NAME, NULL when none. */
static struct lv_run *watch_run(const char *uri, const char *name)
{
	for (struct lv_run *r = libvirt_runs(); r != NULL; r = r->next)
		if (!r->ended && watch_uri_eq(r->uri, uri) && strcmp(r->dom, name) == 0)
			return r;
	return NULL;
}

/* One domain of the list: adopted, or destroyed. */
static void watch_match(const char *uri, const char *name, const char *uuid, int active)
{
	struct lv_run *r = watch_run(uri, name);

	if (r != NULL && r->uuid[0] == '\0')
		return; /* its start is under way: its completion tells */
	if (r != NULL && strcmp(r->uuid, uuid) == 0 && active) {
		watch_adopt(r);
		r->unseen = false;
		return;
	}
	watch_destroy(uri, name, uuid,
	              r == NULL ? "no instance of beckon's runs it now"
	              : active  ? "another domain than the run beckon knows"
	                        : "not running");
	if (r != NULL)
		libvirt_run_died(r, W_EXITCODE(1, 0), "replaced while libvirt was out of sight");
}

/* Whether LIST (watch_w_list's lines) names domain NAME. */
static bool watch_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = list; l != NULL && *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, n) == 0 && l[n] == ' ')
			return true;
	return false;
}

/* The runs on URI whose domain is not in LIST ended while out of sight. */
static void watch_gone(const char *uri, const char *list)
{
	struct lv_run *r, *next;

	for (r = libvirt_runs(); r != NULL; r = next) {
		next = r->next;
		if (r->ended || !watch_uri_eq(r->uri, uri) || r->uuid[0] == '\0' ||
		    watch_listed(list, r->dom))
			continue;
		/* The launcher frees R (its cleanup): go on from the top. */
		libvirt_run_died(r, W_EXITCODE(1, 0), "ended while libvirt was out of sight");
		next = libvirt_runs();
	}
}

static void watch_adopt_all(const char *uri, char *list)
{
	char name[LIBVIRT_NAME_MAX], uuid[VIR_UUID_STRING_BUFLEN];
	char *line, *save = NULL;
	int active;

	watch_gone(uri, list);
	for (line = strtok_r(list, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%47s %36s %d", name, uuid, &active) == 3)
			watch_match(uri, name, uuid, active);
}

static void watch_d_reconnect(struct libvirt_job *j)
{
	struct lv_watch *w = watch_get(j->uri);

	if (w == NULL)
		return;
	w->queued = false;
	if (j->rc == -1) {
		log_debug("libvirt %s: reconnecting: %s", watch_name(j->uri), j->err);
		w->backoff_ms = w->backoff_ms * 2 > WATCH_MAX_MS ? WATCH_MAX_MS : w->backoff_ms * 2;
		watch_arm(w);
		return;
	}
	log_info("libvirt %s: reconnected", watch_name(j->uri));
	w->down = false;
	w->backoff_ms = 0;
	if (j->uri != NULL && backend_host_known(j->uri))
		backend_host_state(j->uri, true, NULL);
	watch_adopt_all(j->uri, j->data ? j->data : (char[]){""});
}

static void watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lv_watch *w = arg;
	struct libvirt_job *j;
	char key[LIBVIRT_NAME_MAX];

	(void)fd;
	(void)what;
	/* One reconnect at a time per URI; other URIs' go beside it. */
	snprintf(key, sizeof(key), "reconnect %p", (void *)w);
	if ((j = libvirt_job_new(key, w->uri)) == NULL) {
		watch_arm(w);
		return;
	}
	j->run = watch_w_list;
	j->done = watch_d_reconnect;
	w->queued = true;
	libvirt_job_queue(j);
}

void libvirt_watch_free(void)
{
	struct lv_watch *w;

	while ((w = watches) != NULL) {
		watches = w->next;
		event_free(w->timer);
		free(w->uri);
		free(w);
	}
}
