/*
 * A job queue with its workers and its completion pipe (jobq.h). The
 * loop reads the pipe without blocking; writers block (a pointer, atomic).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobq.h"
#include "log.h"

#define JOBQ_MAX_WORKERS 8
#define JOBQ_TICK_MS 50

struct jobq {
	const struct jobq_hooks *hooks;
	pthread_mutex_t lock;
	pthread_cond_t queued; /* a job queued, or a key freed */
	pthread_cond_t idle;   /* a job finished */
	pthread_cond_t busy;   /* a job started (for the tick thread) */
	struct jobq_item *head, **tail;
	char running[JOBQ_MAX_WORKERS][JOBQ_KEY_MAX]; /* keys running now */
	int nrunning;
	int pipe[2];
	struct event *ev;
	pthread_mutex_t post_lock;
	bool closing;
};

static bool jobq_key_running(struct jobq *q, const char *key)
{
	for (int i = 0; i < JOBQ_MAX_WORKERS; i++)
		if (strcmp(q->running[i], key) == 0)
			return true;
	return false;
}

/* The first queued job whose key is not running, taken off the queue. Locked. */
static struct jobq_item *jobq_take(struct jobq *q)
{
	struct jobq_item **pp, *it;

	for (pp = &q->head; (it = *pp) != NULL; pp = &it->next) {
		if (jobq_key_running(q, it->key))
			continue;
		*pp = it->next;
		if (q->tail == &it->next)
			q->tail = pp;
		it->next = NULL;
		return it;
	}
	return NULL;
}

/* Mark IT's key running in a free slot, kept in *SLOT (ON), or free that slot. Locked. */
static void jobq_mark(struct jobq *q, const struct jobq_item *it, int *slot, bool on)
{
	if (!on) {
		q->running[*slot][0] = '\0';
		q->nrunning--;
		return;
	}
	/* A worker holds one slot at most: there is always a free one. */
	for (*slot = 0; *slot < JOBQ_MAX_WORKERS - 1 && q->running[*slot][0] != '\0'; ++*slot)
		;
	snprintf(q->running[*slot], JOBQ_KEY_MAX, "%s", it->key);
	q->nrunning++;
	pthread_cond_signal(&q->busy);
}

static void *jobq_worker(void *arg)
{
	struct jobq *q = arg;
	struct jobq_item *it;
	int slot;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		if ((it = jobq_take(q)) == NULL) {
			pthread_cond_wait(&q->queued, &q->lock);
			continue;
		}
		jobq_mark(q, it, &slot, true);
		pthread_mutex_unlock(&q->lock);
		q->hooks->run(it);
		pthread_mutex_lock(&q->lock);
		jobq_mark(q, it, &slot, false);
		/* Posted under the lock: a drain that sees the queue idle sees it posted. */
		jobq_post(q, it);
		pthread_cond_broadcast(&q->queued); /* its key may hold another back */
		pthread_cond_broadcast(&q->idle);
	}
	return NULL;
}

static void *jobq_ticker(void *arg)
{
	struct jobq *q = arg;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (q->nrunning == 0)
			pthread_cond_wait(&q->busy, &q->lock);
		pthread_mutex_unlock(&q->lock);
		q->hooks->tick();
		usleep(JOBQ_TICK_MS * 1000);
	}
	return NULL;
}

static int jobq_thread(struct jobq *q, void *(*fn)(void *))
{
	pthread_t t;

	if (pthread_create(&t, NULL, fn, q) != 0)
		return -1;
	pthread_detach(t);
	return 0;
}

struct jobq *jobq_start(const struct jobq_hooks *hooks, int workers)
{
	struct jobq *q = calloc(1, sizeof(*q));
	int i;

	if (q == NULL || workers < 1 || workers > JOBQ_MAX_WORKERS)
		goto fail;
	q->hooks = hooks;
	q->tail = &q->head;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->post_lock, NULL);
	pthread_cond_init(&q->queued, NULL);
	pthread_cond_init(&q->idle, NULL);
	pthread_cond_init(&q->busy, NULL);
	if (pipe2(q->pipe, O_CLOEXEC) == -1)
		goto fail;
	fcntl(q->pipe[0], F_SETFL, O_NONBLOCK);
	/* Threads cannot be taken back: a failure here leaves the queue to them. */
	if (hooks->tick != NULL && jobq_thread(q, jobq_ticker) == -1)
		goto threads;
	for (i = 0; i < workers; i++)
		if (jobq_thread(q, jobq_worker) == -1)
			goto threads;
	return q;
threads:
	log_warnx("%s: cannot start its threads", hooks->name);
	return NULL;
fail:
	log_warn("%s: cannot make its job queue", hooks->name);
	free(q);
	return NULL;
}

void jobq_closing(struct jobq *q, bool on)
{
	pthread_mutex_lock(&q->post_lock);
	q->closing = on;
	pthread_mutex_unlock(&q->post_lock);
}

void jobq_post(struct jobq *q, struct jobq_item *it)
{
	ssize_t n = 0;

	pthread_mutex_lock(&q->post_lock);
	if (!q->closing)
		while ((n = write(q->pipe[1], &it, sizeof(it))) == -1 && errno == EINTR)
			;
	pthread_mutex_unlock(&q->post_lock);
	if (n != sizeof(it))
		q->hooks->discard(it); /* at the end; or cannot happen with a live pipe */
}

/* Deliver every job posted so far; false when none was. */
static bool jobq_deliver(struct jobq *q)
{
	struct jobq_item *it;
	bool any = false;

	while (read(q->pipe[0], &it, sizeof(it)) == (ssize_t)sizeof(it)) {
		any = true;
		q->hooks->deliver(it);
	}
	return any;
}

static void jobq_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	jobq_deliver(arg);
}

int jobq_attach(struct jobq *q, struct event_base *base)
{
	if (q->ev != NULL)
		return 0;
	if ((q->ev = event_new(base, q->pipe[0], EV_READ | EV_PERSIST, jobq_cb, q)) == NULL ||
	    event_add(q->ev, NULL) == -1) {
		log_warnx("%s: cannot watch its completions", q->hooks->name);
		return -1;
	}
	return 0;
}

void jobq_detach(struct jobq *q)
{
	if (q->ev != NULL)
		event_free(q->ev);
	q->ev = NULL;
}

void jobq_queue(struct jobq *q, struct jobq_item *it)
{
	pthread_mutex_lock(&q->lock);
	*q->tail = it;
	q->tail = &it->next;
	pthread_cond_signal(&q->queued);
	pthread_mutex_unlock(&q->lock);
}

/* The realtime clock MS from now. */
static void jobq_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static bool jobq_busy(struct jobq *q)
{
	return q->head != NULL || q->nrunning > 0;
}

/* Wait until idle or UNTIL; ticking meanwhile when the queue has a tick. */
static void jobq_wait_idle(struct jobq *q, const struct timespec *until)
{
	struct timespec tick, now;
	bool busy;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		if ((busy = jobq_busy(q))) {
			jobq_deadline(&tick, JOBQ_TICK_MS);
			pthread_cond_timedwait(&q->idle, &q->lock, &tick);
			busy = jobq_busy(q);
		}
		pthread_mutex_unlock(&q->lock);
		clock_gettime(CLOCK_REALTIME, &now);
		if (!busy || now.tv_sec > until->tv_sec ||
		    (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec))
			return;
		if (q->hooks->tick != NULL)
			q->hooks->tick(); /* beckon's loop is not running */
	}
}

bool jobq_drain(struct jobq *q, int ms)
{
	struct timespec until;
	bool idle;

	jobq_deadline(&until, ms);
	do
		jobq_wait_idle(q, &until);
	while (jobq_deliver(q));
	pthread_mutex_lock(&q->lock);
	idle = !jobq_busy(q);
	pthread_mutex_unlock(&q->lock);
	if (!idle)
		log_warnx("%s: jobs still running after %d ms", q->hooks->name, ms);
	return idle;
}
