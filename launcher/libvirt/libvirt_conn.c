/*
 * One connection per URI, opened by the first job that needs it and shared
 * by every worker (libvirt's connections are thread-safe). On opening, a
 * URI's first connection destroys the beckon-* domains found there: an
 * earlier beckond, killed, left them (this one has made none there yet).
 * A connection that drops (libvirtd restarting) is reopened by the next
 * job, or by libvirt_watch.c's timer, which then adopts the domains it
 * finds; the domains it runs keep running meanwhile.
 *
 * Lifecycle events and console bytes arrive on libvirt's event thread and
 * are posted to beckon's loop as jobs (libvirt_job.c).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "virt.h"
#include "log.h"

#define CONSOLE_CHUNK 4096

struct lv_conn {
	struct lv_conn *next;
	char *uri; /* NULL: the default */
	virConnectPtr c;
	bool swept;
	bool broken;          /* closed under us: the next job reopens it */
	pthread_mutex_t lock; /* opening it, the sweep */
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lv_conn *conns;
static libvirt_done_fn event_done;

void libvirt_conn_set_event_done(libvirt_done_fn fn)
{
	event_done = fn;
}

const char *libvirt_conn_error(const char *what)
{
	const char *m = virGetLastErrorMessage();

	return m != NULL && strcmp(m, "no error") != 0 ? m : what;
}

static bool uri_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static struct lv_conn *conn_entry(const char *uri)
{
	struct lv_conn *e;

	pthread_mutex_lock(&conns_lock);
	for (e = conns; e != NULL; e = e->next)
		if (uri_eq(e->uri, uri))
			break;
	if (e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
		if (uri != NULL && (e->uri = strdup(uri)) == NULL) {
			free(e);
			e = NULL;
		} else {
			pthread_mutex_init(&e->lock, NULL);
			e->next = conns;
			conns = e;
		}
	}
	pthread_mutex_unlock(&conns_lock);
	return e;
}

/* ---- events ------------------------------------------------------------------- */

static int lifecycle_cb(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
	const char *name = virDomainGetName(dom);
	struct libvirt_job *j;

	(void)c;
	(void)opaque;
	if (name == NULL || strncmp(name, LIBVIRT_PREFIX, strlen(LIBVIRT_PREFIX)) != 0)
		return 0;
	if ((j = libvirt_job_new(name, NULL)) == NULL)
		return 0;
	j->op = LIBVIRT_EV_LIFECYCLE;
	j->rc = event;
	j->detail = detail;
	j->id = (int)virDomainGetID(dom);
	virDomainGetUUIDString(dom, j->uuid);
	j->done = event_done;
	libvirt_job_post(j);
	return 0;
}

/*
 * The connection dropped: the next job opens a new one (a connection must
 * not be closed inside its own close callback).
 */
static void close_cb(virConnectPtr c, int reason, void *opaque)
{
	struct lv_conn *e = opaque;
	struct libvirt_job *j;

	log_warnx("libvirt %s: connection lost (reason %d): reconnecting",
	          e->uri ? e->uri : "(default)", reason);
	pthread_mutex_lock(&e->lock);
	if (e->c == c)
		e->broken = true;
	pthread_mutex_unlock(&e->lock);
	/* The loop marks what it can no longer see and starts reconnecting. */
	if ((j = libvirt_job_new("closed", e->uri)) == NULL)
		return;
	j->op = LIBVIRT_EV_CLOSED;
	j->done = event_done;
	libvirt_job_post(j);
}

/* Let go of E's connection. Locked. */
static void conn_drop(struct lv_conn *e)
{
	if (e->c == NULL)
		return;
	virConnectUnregisterCloseCallback(e->c, close_cb);
	virConnectClose(e->c);
	e->c = NULL;
	e->broken = false;
}

/* ---- the sweep ---------------------------------------------------------------- */

static void sweep_one(struct lv_conn *e, virDomainPtr d)
{
	const char *name = virDomainGetName(d);

	if (name == NULL || strncmp(name, LIBVIRT_PREFIX, strlen(LIBVIRT_PREFIX)) != 0)
		return;
	if (virDomainIsActive(d) == 1 && virDomainDestroy(d) == -1)
		log_warnx("libvirt %s: destroying %s an earlier beckond left: %s",
		          e->uri ? e->uri : "(default)", name, libvirt_conn_error("failed"));
	else
		log_info("libvirt %s: destroyed domain %s, which an earlier beckond left",
		         e->uri ? e->uri : "(default)", name);
	/* Ours are transient; one defined by hand under our name goes too. */
	if (virDomainIsPersistent(d) == 1)
		virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
}

static void conn_sweep(struct lv_conn *e)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(e->c, &doms, 0);

	for (int i = 0; i < n; i++) {
		sweep_one(e, doms[i]);
		virDomainFree(doms[i]);
	}
	free(doms);
}

/* Open E's connection: events registered, swept the first time. Locked. */
static int conn_open(struct lv_conn *e, char *err, size_t errlen)
{
	virConnectPtr c = virConnectOpen(e->uri);

	if (c == NULL) {
		snprintf(err, errlen, "cannot connect to %s: %s", e->uri ? e->uri : "libvirt",
		         libvirt_conn_error("failed"));
		return -1;
	}
	/* Keepalives notice a libvirtd that went away without closing. */
	virConnectSetKeepAlive(c, 5, 3);
	if (virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	                                     VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), NULL,
	                                     NULL) == -1)
		log_warnx("libvirt %s: no lifecycle events: %s", e->uri ? e->uri : "(default)",
		          libvirt_conn_error("failed"));
	virConnectRegisterCloseCallback(c, close_cb, e, NULL);
	e->c = c;
	if (!e->swept)
		conn_sweep(e);
	e->swept = true;
	return 0;
}

virConnectPtr libvirt_conn_get(const char *uri, char *err, size_t errlen)
{
	struct lv_conn *e = conn_entry(uri);
	virConnectPtr c = NULL;

	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_lock(&e->lock);
	if (e->broken)
		conn_drop(e);
	if (e->c != NULL || conn_open(e, err, errlen) == 0) {
		c = e->c;
		virConnectRef(c); /* the job's, closed after it */
	}
	pthread_mutex_unlock(&e->lock);
	return c;
}

void libvirt_conn_close_all(void)
{
	struct lv_conn *e;

	pthread_mutex_lock(&conns_lock);
	for (e = conns; e != NULL; e = e->next) {
		pthread_mutex_lock(&e->lock);
		conn_drop(e);
		e->swept = false;
		pthread_mutex_unlock(&e->lock);
	}
	pthread_mutex_unlock(&conns_lock);
}

/* ---- consoles ----------------------------------------------------------------- */

/* Owned by libvirt's event thread from open to close. */
struct lv_console {
	virStreamPtr st;
	uint64_t serial;
	char key[LIBVIRT_NAME_MAX];
	bool ended; /* EOF or an error: no callback any more */
};

static void console_post(struct lv_console *con, const char *buf, size_t len)
{
	struct libvirt_job *j = libvirt_job_new(con->key, NULL);

	if (j == NULL || (len > 0 && (j->data = malloc(len)) == NULL)) {
		libvirt_job_free(j);
		return;
	}
	if (len > 0)
		memcpy(j->data, buf, len);
	j->len = len;
	j->op = LIBVIRT_EV_CONSOLE;
	j->serial = con->serial;
	j->done = event_done;
	libvirt_job_post(j);
}

/*
 * The stream ended (EOF: finished, as libvirt asks; an aborted stream the
 * daemon already closed is an error on both sides) or failed (aborted).
 */
static void console_end(struct lv_console *con, bool eof)
{
	if (con->ended)
		return;
	con->ended = true;
	virStreamEventRemoveCallback(con->st);
	if (eof)
		virStreamFinish(con->st);
	else
		virStreamAbort(con->st);
	console_post(con, NULL, 0);
}

static void console_cb(virStreamPtr st, int events, void *opaque)
{
	struct lv_console *con = opaque;
	char buf[CONSOLE_CHUNK];
	int n;

	(void)events;
	while ((n = virStreamRecv(st, buf, sizeof(buf))) > 0)
		console_post(con, buf, (size_t)n);
	if (n != -2) /* not "would block": the end, or an error */
		console_end(con, n == 0);
}

void *libvirt_console_open(virConnectPtr c, virDomainPtr dom, uint64_t serial)
{
	struct lv_console *con = calloc(1, sizeof(*con));
	const char *name = virDomainGetName(dom);

	if (con == NULL || (con->st = virStreamNew(c, VIR_STREAM_NONBLOCK)) == NULL)
		goto fail;
	con->serial = serial;
	snprintf(con->key, sizeof(con->key), "%s", name ? name : "");
	if (virDomainOpenConsole(dom, NULL, con->st, VIR_DOMAIN_CONSOLE_FORCE) == -1 ||
	    virStreamEventAddCallback(con->st,
	                              VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR |
	                                  VIR_STREAM_EVENT_HANGUP,
	                              console_cb, con, NULL) == -1)
		goto fail;
	return con;
fail:
	log_warnx("libvirt: %s: no console: %s", name ? name : "?",
	          libvirt_conn_error("cannot open it"));
	if (con != NULL && con->st != NULL)
		virStreamFree(con->st);
	free(con);
	return NULL;
}

/* A console to close, and the job to queue once it is. */
struct lv_close {
	struct lv_console *con;
	struct libvirt_job *next;
};

/* On the event thread: nothing of the stream runs beside it there. */
static void console_close_cb(int timer, void *opaque)
{
	struct lv_close *req = opaque;
	struct lv_console *con = req->con;

	virEventRemoveTimeout(timer);
	if (!con->ended) {
		con->ended = true;
		virStreamEventRemoveCallback(con->st);
		virStreamAbort(con->st);
	}
	virStreamFree(con->st);
	free(con);
	if (req->next != NULL)
		libvirt_job_queue(req->next);
	free(req);
}

void libvirt_console_close_then(void *console, struct libvirt_job *next)
{
	struct lv_close *req;

	if (console == NULL) {
		if (next != NULL)
			libvirt_job_queue(next);
		return;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL) {
		log_warnx("libvirt: cannot close a console");
		if (next != NULL)
			libvirt_job_queue(next);
		return;
	}
	req->con = console;
	req->next = next;
	if (virEventAddTimeout(0, console_close_cb, req, NULL) == -1) {
		log_warnx("libvirt: cannot close a console");
		free(req);
		if (next != NULL)
			libvirt_job_queue(next);
	}
}

void libvirt_console_close(void *console)
{
	libvirt_console_close_then(console, NULL);
}
