/*
 * libvirt's API is synchronous (virDomainCreateXML waits for libvirtd to
 * start QEMU: about 1.5 s here under TCG), so its calls run on worker
 * threads, and each completion is posted back to beckon's loop through a
 * pipe, as a pointer to the job. libvirt's own events (lifecycle, console
 * streams, a dropped connection) come on a thread running libvirt's
 * default event loop and are posted the same way. beckon's event_base is
 * touched by its own thread only: it is not built thread-safe (no
 * evthread), and libvirt calls its event hooks from whichever thread
 * holds a connection's socket, so mapping virEventRegisterImpl onto
 * libevent would race.
 *
 * Jobs with one key (a domain name) run one at a time, in the order they
 * were queued: a destroy queued after a create runs after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "virt.h"
#include "log.h"

#define LIBVIRT_WORKERS 4
#define LIBVIRT_MAX_BUSY LIBVIRT_WORKERS

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER; /* a job queued */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER; /* a job finished */
static struct libvirt_job *queue_head, **queue_tail = &queue_head;
static char busy[LIBVIRT_MAX_BUSY][LIBVIRT_NAME_MAX]; /* keys running now */
static int nbusy;
static bool started;
static int post_fd[2] = {-1, -1};
static struct event *post_ev;
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
	snprintf(j->key, sizeof(j->key), "%s", key);
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

static bool job_key_busy(const char *key)
{
	for (int i = 0; i < LIBVIRT_MAX_BUSY; i++)
		if (busy[i][0] != '\0' && strcmp(busy[i], key) == 0)
			return true;
	return false;
}

/* The first queued job whose key is not running, taken off the queue. Locked. */
static struct libvirt_job *job_take(void)
{
	struct libvirt_job **pp, *j;

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
	for (int i = 0; i < LIBVIRT_MAX_BUSY; i++) {
		if (on && busy[i][0] == '\0') {
			snprintf(busy[i], sizeof(busy[i]), "%s", key);
			nbusy++;
			return;
		}
		if (!on && strcmp(busy[i], key) == 0) {
			busy[i][0] = '\0';
			nbusy--;
			return;
		}
	}
}

static void job_run(struct libvirt_job *j)
{
	virConnectPtr c = libvirt_conn_get(j->uri, j->err, sizeof(j->err));

	j->rc = -1;
	j->noconn = c == NULL;
	j->run(j, c);
	if (c != NULL)
		virConnectClose(c); /* libvirt_conn_get's reference */
}

static void *worker_main(void *arg)
{
	struct libvirt_job *j;

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
		libvirt_job_post(j);
		pthread_cond_broadcast(&jobs_cond); /* its key may hold another back */
		pthread_cond_broadcast(&idle_cond);
	}
	return NULL;
}

/* libvirt's default event loop: lifecycle events, console streams, keepalives. */
static void *event_main(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() == -1)
			usleep(10000);
	return NULL;
}

static int jobs_threads(void)
{
	pthread_t t;
	int i;

	if (pthread_create(&t, NULL, event_main, NULL) != 0)
		return -1;
	pthread_detach(t);
	for (i = 0; i < LIBVIRT_WORKERS; i++) {
		if (pthread_create(&t, NULL, worker_main, NULL) != 0)
			return -1;
		pthread_detach(t);
	}
	return 0;
}

/* libvirt prints every error to stderr by default: beckon logs those it cares about. */
static void libvirt_error_quiet(void *arg, virErrorPtr e)
{
	(void)arg;
	log_debug("libvirt: %s", e != NULL && e->message ? e->message : "error");
}

int libvirt_jobs_init(void)
{
	if (started)
		return 0;
	virSetErrorFunc(NULL, libvirt_error_quiet);
	if (virInitialize() == -1 || virEventRegisterDefaultImpl() == -1) {
		log_warnx("libvirt: cannot initialise: %s", libvirt_conn_error("?"));
		return -1;
	}
	if (pipe2(post_fd, O_CLOEXEC) == -1) {
		log_warn("libvirt: pipe");
		return -1;
	}
	/* The loop reads without blocking; writers block (8 bytes, atomic). */
	fcntl(post_fd[0], F_SETFL, O_NONBLOCK);
	if (jobs_threads() == -1) {
		log_warnx("libvirt: cannot start its threads");
		return -1;
	}
	started = true;
	return 0;
}

/* Posting, against the end (libvirt_jobs_closing): nothing is written after it. */
static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static bool closing;

void libvirt_jobs_closing(bool on)
{
	pthread_mutex_lock(&post_lock);
	closing = on;
	pthread_mutex_unlock(&post_lock);
}

void libvirt_job_post(struct libvirt_job *j)
{
	ssize_t n = 0;

	pthread_mutex_lock(&post_lock);
	if (!closing)
		while ((n = write(post_fd[1], &j, sizeof(j))) == -1 && errno == EINTR)
			;
	pthread_mutex_unlock(&post_lock);
	if (n != sizeof(j))
		libvirt_job_free(j); /* at the end; or cannot happen with a live pipe */
}

/* Deliver every job posted so far; false when none was. */
static bool jobs_deliver(void)
{
	struct libvirt_job *j;
	bool any = false;

	while (read(post_fd[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		any = true;
		if (j->noconn && noconn_fn != NULL)
			noconn_fn(j);
		if (j->done != NULL)
			j->done(j);
		libvirt_job_free(j);
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

int libvirt_jobs_attach(struct event_base *base)
{
	if (post_ev != NULL)
		return 0;
	if (!started ||
	    (post_ev = event_new(base, post_fd[0], EV_READ | EV_PERSIST, post_cb, NULL)) == NULL ||
	    event_add(post_ev, NULL) == -1) {
		log_warnx("libvirt: cannot watch its completions");
		return -1;
	}
	return 0;
}

void libvirt_job_queue(struct libvirt_job *j)
{
	if (j->run == NULL) {
		libvirt_job_post(j);
		return;
	}
	pthread_mutex_lock(&jobs_lock);
	*queue_tail = j;
	queue_tail = &j->next;
	pthread_cond_signal(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
}

bool libvirt_jobs_drain(int ms)
{
	struct timespec until;
	bool idle;

	if (!started)
		return true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	/* Done handlers may queue more (a console to close): deliver until quiet. */
	do {
		pthread_mutex_lock(&jobs_lock);
		while ((queue_head != NULL || nbusy > 0) &&
		       pthread_cond_timedwait(&idle_cond, &jobs_lock, &until) == 0)
			;
		pthread_mutex_unlock(&jobs_lock);
	} while (jobs_deliver());
	pthread_mutex_lock(&jobs_lock);
	idle = queue_head == NULL && nbusy == 0;
	pthread_mutex_unlock(&jobs_lock);
	if (!idle)
		log_warnx("libvirt: jobs still running after %d ms", ms);
	return idle;
}
