/*
 * The DNS thread. Every UDP listener is read here, not on the event loop,
 * so that what needs no launcher is answered while the loop is busy (in a
 * vfork for a VMM, waiting on the kernel's RTNL lock, restoring a guest):
 * the zone's own names, and a service's name while its instance is ready
 * (view.c). The rest (a wake, a forward, a pattern's label, replicas) is
 * handed to the loop with its packet and answered there as before. RRL is
 * applied here, to every UDP query, before either.
 *
 * What the thread reads (the zone, the view, the listener list, the RRL
 * table) the loop changes only while holding f->mu, which the thread holds
 * for a batch at a time. The thread's counters are its own: resolver_stats
 * adds them up. The mutex inherits priority (the loop, holding it, runs
 * at the thread's realtime priority meanwhile), and the loop gets its turn:
 * it says it wants the lock (LOOP_WANTS), and the thread, which would
 * otherwise take it again at once under load, waits on TURN until it had it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <event2/event.h>

#include "internal.h"
#include "launcher.h"
#include "log.h"
#include "prio.h"
#include "privs.h"

#define FAST_STOP 0 /* the epoll id of the stop eventfd; listeners' ids start at 1 */
#define FAST_EVENTS 16
#define FAST_HAND_MAX 1024 /* queries handed to the loop, not yet taken; beyond: SERVFAIL */

/* A UDP query handed to the loop. */
struct fast_query {
	struct client c;
	uint16_t len;
	uint8_t pkt[RESOLVER_UDP_IN];
};

struct fast {
	pthread_mutex_t mu;
	pthread_cond_t turn;    /* the loop had the lock */
	atomic_bool loop_wants; /* the loop waits for the lock */
	pthread_t thread;
	bool running;
	int epfd;
	int stopfd; /* written once: the thread ends */
	int loopfd; /* the thread has handed queries or notes to the loop */
	struct event *loopev;
	bool signalled; /* LOOPFD written since the loop last took */
	struct fast_query *hand, *taken;
	size_t nhand;
	uint32_t *notes; /* the loop's copy of the view's notes */
	size_t notescap;
	struct resolver_stats st; /* the thread's */
};

void fast_lock(struct resolver *r)
{
	atomic_store(&r->fast->loop_wants, true);
	pthread_mutex_lock(&r->fast->mu);
	atomic_store(&r->fast->loop_wants, false);
}

void fast_unlock(struct resolver *r)
{
	pthread_cond_signal(&r->fast->turn);
	pthread_mutex_unlock(&r->fast->mu);
}

/* The thread's side: after the loop when it is waiting. */
static void fast_lock_thread(struct fast *f)
{
	pthread_mutex_lock(&f->mu);
	while (atomic_load(&f->loop_wants))
		pthread_cond_wait(&f->turn, &f->mu);
}

struct resolver_stats *fast_stats(struct resolver *r)
{
	return &r->fast->st;
}

int fast_watch(struct resolver *r, struct listener *l)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = l->id};

	return epoll_ctl(r->fast->epfd, EPOLL_CTL_ADD, l->ufd, &ev);
}

void fast_unwatch(struct resolver *r, struct listener *l)
{
	if (r->fast)
		epoll_ctl(r->fast->epfd, EPOLL_CTL_DEL, l->ufd, NULL);
}

bool fast_now(struct resolver *r, struct query *q, enum query_state st)
{
	if (st == QUERY_ANSWER && q->svc == NULL)
		return true;
	return st == QUERY_WAKE && q->svc != NULL && r->view != NULL && view_answer(r->view, q);
}

int fast_hand(struct resolver *r, const struct client_ref *c, const uint8_t *pkt, size_t len)
{
	struct fast *f = r->fast;
	struct fast_query *h;

	if (f->nhand == FAST_HAND_MAX || len > sizeof(h->pkt))
		return -1;
	h = &f->hand[f->nhand++];
	resolver_client_keep(&h->c, c);
	h->len = (uint16_t)len;
	memcpy(h->pkt, pkt, len);
	return 0;
}

static struct listener *fast_listener(struct resolver *r, uint32_t id)
{
	struct listener *l;

	for (l = r->listeners; l; l = l->next)
		if (l->id == id)
			return l;
	return NULL;
}

/* One wakeup's events, under the lock. 1 when the loop is to be told, -1 to stop. */
static int fast_events(struct resolver *r, const struct epoll_event *ev, int n)
{
	struct fast *f = r->fast;
	struct listener *l;

	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == FAST_STOP)
			return -1;
		if ((l = fast_listener(r, ev[i].data.u32)))
			udp_read(l);
	}
	if (f->signalled || (f->nhand == 0 && (r->view == NULL || !view_has_notes(r->view))))
		return 0;
	f->signalled = true;
	return 1;
}

/* After an error that should not happen: a warning, and a pause so that it cannot spin. */
static void fast_pause(const char *what)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	log_warn("dns: the DNS thread: %s", what);
	nanosleep(&ts, NULL);
}

/* The loop was not told: tell it next time. */
static void fast_unsignal(struct fast *f)
{
	fast_pause("cannot wake the event loop");
	fast_lock_thread(f);
	f->signalled = false;
	pthread_mutex_unlock(&f->mu);
}

static void *fast_main(void *arg)
{
	struct resolver *r = arg;
	struct fast *f = r->fast;
	struct epoll_event ev[FAST_EVENTS];
	int n, rc;

	if (privs_thread_none() < 0)
		log_warn("dns: the DNS thread keeps its capabilities");
	for (;;) {
		n = epoll_wait(f->epfd, ev, FAST_EVENTS, -1);
		if (n < 0) {
			/* Never seen but EINTR; the thread must not end while beckond serves. */
			if (errno != EINTR)
				fast_pause("epoll_wait");
			continue;
		}
		fast_lock_thread(f);
		rc = fast_events(r, ev, n);
		pthread_mutex_unlock(&f->mu);
		if (rc < 0)
			return NULL;
		if (rc > 0 && eventfd_write(f->loopfd, 1) < 0)
			fast_unsignal(f);
	}
}

/* A handed query, on the loop: as the UDP path answered every query before the thread. */
static void fast_serve(struct resolver *r, struct fast_query *h)
{
	struct query *q = &r->hq;
	struct client_ref c = {h->c.listener, (struct sockaddr *)&h->c.ss, h->c.sslen,
	                       h->c.local.family ? &h->c.local : NULL, NULL};
	enum query_state st = query_process(q, r->zone, h->pkt, h->len, false);

	if (resolver_dispatch(r, q, st, h->pkt, h->len, &c))
		resolver_send(r, &h->c, q->out, q->outlen);
}

/* Take what the thread handed over: the lock only for the swap. */
static void fast_take(struct resolver *r)
{
	struct fast *f = r->fast;
	struct fast_query *h;
	size_t n, nn = 0;

	fast_lock(r);
	f->signalled = false;
	h = f->hand;
	f->hand = f->taken;
	f->taken = h;
	n = f->nhand;
	f->nhand = 0;
	if (r->view)
		nn = view_take_notes(r->view, f->notes);
	fast_unlock(r);
	if (r->view)
		view_count(r->view, r->launcher, f->notes, nn);
	for (size_t i = 0; i < n; i++)
		fast_serve(r, &h[i]);
}

static void fast_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	eventfd_t v;

	(void)what;
	if (eventfd_read(fd, &v) < 0 && errno != EAGAIN)
		log_warn("dns: reading the DNS thread's eventfd");
	fast_take(arg);
}

int fast_notes_room(struct resolver *r, size_t n)
{
	struct fast *f = r->fast;
	uint32_t *p;

	if (n <= f->notescap)
		return 0;
	if (!(p = realloc(f->notes, n * sizeof(*p))))
		return -1;
	f->notes = p;
	f->notescap = n;
	return 0;
}

/* A mutex that inherits priority: the realtime thread may wait for the loop. */
static void fast_mutex(pthread_mutex_t *mu)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(mu, &a);
	pthread_mutexattr_destroy(&a);
}

/* On failure what was made stays in r->fast, for fast_free (resolver_free) to free. */
int fast_new(struct resolver *r)
{
	struct fast *f = calloc(1, sizeof(*f));
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = FAST_STOP};

	if (!f)
		return -1;
	r->fast = f;
	fast_mutex(&f->mu);
	pthread_cond_init(&f->turn, NULL);
	f->stopfd = f->loopfd = -1;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->loopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->hand = calloc(FAST_HAND_MAX, sizeof(*f->hand));
	f->taken = calloc(FAST_HAND_MAX, sizeof(*f->taken));
	if (f->epfd < 0 || f->stopfd < 0 || f->loopfd < 0 || !f->hand || !f->taken)
		return -1;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->stopfd, &ev) < 0)
		return -1;
	f->loopev = event_new(r->base, f->loopfd, EV_READ | EV_PERSIST, fast_loop_cb, r);
	if (!f->loopev || event_add(f->loopev, NULL) < 0)
		return -1;
	return 0;
}

int fast_start(struct resolver *r)
{
	struct fast *f = r->fast;
	sigset_t all, old;
	int rc;

	/* Signals are the loop's: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&f->thread, NULL, fast_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("dns: cannot start the DNS thread");
		return -1;
	}
	f->running = true;
	pthread_setname_np(f->thread, "beckond-dns"); /* for top -H and ps -L */
	prio_realtime(f->thread);
	return 0;
}

void fast_stop(struct resolver *r)
{
	struct fast *f = r->fast;

	if (!f || !f->running)
		return;
	eventfd_write(f->stopfd, 1);
	pthread_join(f->thread, NULL);
	f->running = false;
}

void fast_free(struct resolver *r)
{
	struct fast *f = r->fast;

	if (!f)
		return;
	fast_stop(r);
	if (f->loopev)
		event_free(f->loopev);
	if (f->epfd >= 0)
		close(f->epfd);
	if (f->stopfd >= 0)
		close(f->stopfd);
	if (f->loopfd >= 0)
		close(f->loopfd);
	pthread_cond_destroy(&f->turn);
	pthread_mutex_destroy(&f->mu);
	free(f->hand);
	free(f->taken);
	free(f->notes);
	free(f);
	r->fast = NULL;
}
