/*
 * libvirt's API is synchronous (virDomainCreateXML waits for libvirtd to
 * start QEMU: about 1.5 s here under TCG), so its calls run on the
 * workers of a job queue (launcher/jobq.c), each with the connection to
 * its URI. libvirt's own events (lifecycle, console streams, a dropped
 * connection) come on a thread running libvirt's default event loop and
 * are posted to the loop the same way: libvirt calls its event hooks from
 * whichever thread holds a connection's socket, so mapping
 * virEventRegisterImpl onto beckon's (not thread-safe) libevent would race.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virt.h"
#include "jobq.h"
#include "log.h"

#define LIBVIRT_WORKERS 4

static struct jobq *jobs;
static libvirt_done_fn noconn_fn;

void libvirt_jobs_set_noconn(libvirt_done_fn fn)
{
	noconn_fn = fn;
}

struct libvirt_job *libvirt_job_new(const char *key, const char *uri)
{
	struct libvirt_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	snprintf(j->item.key, sizeof(j->item.key), "%s", key);
	if (uri != NULL && (j->uri = strdup(uri)) == NULL) {
		free(j);
		return NULL;
	}
	j->id = -1;
	return j;
}

void libvirt_job_free(struct libvirt_job *j)
{
	if (j == NULL)
		return;
	free(j->uri);
	free(j->xml);
	free(j->path);
	free(j->data);
	free(j);
}

static void libvirt_job_run(struct jobq_item *it)
{
	struct libvirt_job *j = (struct libvirt_job *)it;
	virConnectPtr c = libvirt_conn_get(j->uri, j->err, sizeof(j->err));

	j->rc = -1;
	j->noconn = c == NULL;
	j->run(j, c);
	if (c != NULL)
		virConnectClose(c); /* libvirt_conn_get's reference */
}

static void libvirt_job_deliver(struct jobq_item *it)
{
	struct libvirt_job *j = (struct libvirt_job *)it;

	if (j->noconn && noconn_fn != NULL)
		noconn_fn(j);
	if (j->done != NULL)
		j->done(j);
	libvirt_job_free(j);
}

static void libvirt_job_discard(struct jobq_item *it)
{
	libvirt_job_free((struct libvirt_job *)it);
}

static const struct jobq_hooks libvirt_jobq_hooks = {
    .name = "libvirt",
    .run = libvirt_job_run,
    .deliver = libvirt_job_deliver,
    .discard = libvirt_job_discard,
};

/* libvirt's default event loop: lifecycle events, console streams, keepalives. */
static void *event_main(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() == -1)
			usleep(10000);
	return NULL;
}

/* libvirt prints every error to stderr by default: beckon logs those it cares about. */
static void libvirt_error_quiet(void *arg, virErrorPtr e)
{
	(void)arg;
	log_debug("libvirt: %s", e != NULL && e->message ? e->message : "error");
}

int libvirt_jobs_init(void)
{
	pthread_t t;

	if (jobs != NULL)
		return 0;
	virSetErrorFunc(NULL, libvirt_error_quiet);
	if (virInitialize() == -1 || virEventRegisterDefaultImpl() == -1) {
		log_warnx("libvirt: cannot initialise: %s", libvirt_conn_error("?"));
		return -1;
	}
	if (pthread_create(&t, NULL, event_main, NULL) != 0) {
		log_warnx("libvirt: cannot start its event thread");
		return -1;
	}
	pthread_detach(t);
	jobs = jobq_start(&libvirt_jobq_hooks, LIBVIRT_WORKERS);
	return jobs != NULL ? 0 : -1;
}

void libvirt_jobs_closing(bool on)
{
	jobq_closing(jobs, on);
}

void libvirt_job_post(struct libvirt_job *j)
{
	jobq_post(jobs, &j->item);
}

int libvirt_jobs_attach(struct event_base *base)
{
	return jobs != NULL ? jobq_attach(jobs, base) : -1;
}

void libvirt_job_queue(struct libvirt_job *j)
{
	if (j->run == NULL)
		jobq_post(jobs, &j->item);
	else
		jobq_queue(jobs, &j->item);
}

bool libvirt_jobs_drain(int ms)
{
	return jobs == NULL || jobq_drain(jobs, ms);
}
