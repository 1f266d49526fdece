/*
 * Waiting for room. A wake that the admission hook refuses for capacity
 * (max_instances, max_memory, nothing idle to evict) waits in the wake
 * queue (common/wakeq.c) instead of failing, when wake_queue allows it: in
 * arrival order, up to hold_timeout, its waiters still waiting on the
 * instance (which stays stopped). The head is asked about again whenever
 * an instance stops, and every ROOM_RETRY_MS (an instance that only went
 * idle can be evicted now); once admitted it boots. At its deadline the
 * wake fails as a refused one would: its waiters are told "not ready".
 * While anyone waits, a new wake that needs a boot queues behind them,
 * so that room goes to the first come.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core.h"
#include "launcher.h"
#include "log.h"
#include "part.h"
#include "wakeq.h"
#include "room.h"

/* The head is asked about this often while it waits. */
#define ROOM_RETRY_MS 200
/* A full queue's refusals are logged at most this often. */
#define ROOM_LOG_EVERY_US 1000000

/* A launcher's wake queue (l->room). */
struct room {
	struct wakeq wq;
	struct event *ev;
	uint64_t timeout_ms; /* hold_timeout */
	int64_t logged_us;   /* a full queue's refusal was last logged */
	unsigned quiet;      /* ... and so many since, not logged */
};

/* An instance's place in it (inst->room): since when, for whom. */
struct inst_room {
	struct wakeq_item item;
	int64_t since_us;
	struct sockaddr_storage client;
	bool has_client;
};

static void room_cb(evutil_socket_t fd, short what, void *arg);

static int room_conf(struct launcher *l, const struct conf *conf)
{
	struct room *r = l->room;

	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			log_warn("wake queue");
			return -1;
		}
		wakeq_init(&r->wq, 0);
		if ((r->ev = evtimer_new(l->base, room_cb, l)) == NULL)
			log_warn("wake queue: timer"); /* the queue stays off */
		l->room = r;
	}
	wakeq_set_max(&r->wq, r->ev != NULL ? conf->wake_queue : 0);
	r->timeout_ms = conf->hold_timeout_ms;
	return 0;
}

static void room_free(struct launcher *l)
{
	if (l->room == NULL)
		return;
	if (l->room->ev != NULL)
		event_free(l->room->ev);
	free(l->room);
	l->room = NULL;
}

static int room_new(struct instance *inst)
{
	return (inst->room = calloc(1, sizeof(*inst->room))) != NULL ? 0 : -1;
}

static void room_destroy(struct instance *inst)
{
	free(inst->room);
	inst->room = NULL;
}

static void room_arm_in(struct launcher *l, int64_t us)
{
	struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

	if (l->room->ev != NULL)
		evtimer_add(l->room->ev, &tv);
}

/* The next look at the queue: the retry, or an earlier deadline. */
static void room_arm(struct launcher *l)
{
	int64_t next = wakeq_next_deadline(&l->room->wq), now = launcher_now_us();
	int64_t in = ROOM_RETRY_MS * 1000;

	if (next == -1)
		return;
	if (next - now < in)
		in = next > now ? next - now : 0;
	room_arm_in(l, in);
}

/* Look at the queue soon, from a fresh event (never inside launcher code). */
static void room_kick(struct launcher *l)
{
	if (l->room != NULL && wakeq_head(&l->room->wq) != NULL)
		room_arm_in(l, 0);
}

/* Whether INST still wants the boot it waits for. */
static bool room_wants_boot(const struct instance *inst)
{
	return !inst->doomed && (inst->state == INST_STOPPED || inst->state == INST_FAILED ||
	                         inst->state == INST_SUSPENDED);
}

static const struct sockaddr *room_client(const struct instance *inst)
{
	return inst->room->has_client ? (const struct sockaddr *)&inst->room->client : NULL;
}

static void room_refused_full(struct instance *inst)
{
	struct launcher *l = inst->l;
	int64_t now = launcher_now_us();

	l->refused[LAUNCHER_REFUSED_CAPACITY]++;
	if (now - l->room->logged_us < ROOM_LOG_EVERY_US) {
		l->room->quiet++;
		return;
	}
	log_warnx("%s: boot refused: no room, and the wake queue is full (%zu waiting); %u more "
	          "refused so in the last second",
	          inst->svc->name, l->room->wq.st.len, l->room->quiet);
	l->room->logged_us = now;
	l->room->quiet = 0;
}

/* INST waits behind the rest. -1 when the queue is full (refused, counted). */
static int room_push(struct instance *inst, const struct sockaddr *client)
{
	struct launcher *l = inst->l;
	int64_t deadline = launcher_now_us() + (int64_t)l->room->timeout_ms * 1000;

	if (wakeq_push(&l->room->wq, &inst->room->item, inst, deadline) == -1) {
		room_refused_full(inst);
		return -1;
	}
	inst->room->has_client = false;
	if (client != NULL && (client->sa_family == AF_INET || client->sa_family == AF_INET6)) {
		memcpy(&inst->room->client, client,
		       client->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                    : sizeof(struct sockaddr_in6));
		inst->room->has_client = true;
	}
	inst->room->since_us = launcher_now_us();
	log_info("%s: no room (max_instances, max_memory): waiting in the wake queue, %zu waiting",
	         inst->svc->name, l->room->wq.st.len);
	room_arm(l);
	return 0;
}

static int room_admit(struct instance *inst, const struct sockaddr *client)
{
	struct launcher *l = inst->l;
	enum launcher_refusal why;

	if (inst->room->item.queued)
		return 1; /* joins the wake that waits */
	if (wakeq_head(&l->room->wq) != NULL) {
		/* Others came first: behind them, whatever room there is now. */
		if (room_push(inst, client) == -1)
			return -1;
		room_kick(l);
		return 1;
	}
	if (launcher_hooks_admit_why(inst, client, &why) == 0)
		return 0;
	if (why != LAUNCHER_REFUSED_CAPACITY || l->room->wq.max == 0) {
		l->refused[why]++;
		return -1;
	}
	return room_push(inst, client) == -1 ? -1 : 1;
}

/* Boot the waiting wakes that have room now, first come first. */
static void room_run(struct launcher *l)
{
	struct wakeq_item *it;
	struct instance *inst;
	enum launcher_refusal why;

	while ((it = wakeq_head(&l->room->wq)) != NULL) {
		inst = it->owner;
		if (!room_wants_boot(inst)) {
			wakeq_remove(&l->room->wq, it);
			continue;
		}
		if (launcher_hooks_admit_why(inst, room_client(inst), &why) == -1)
			break; /* still no room (or over a boot rate): the next look */
		wakeq_admit(&l->room->wq, it);
		log_info("%s: room found after %.1f s in the wake queue", inst->svc->name,
		         (double)(launcher_now_us() - inst->room->since_us) / 1e6);
		if (launcher_inst_boot(inst) == -1)
			launcher_inst_complete(inst, false);
	}
}

static void room_cb(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	struct wakeq_item *it;
	struct instance *inst;

	(void)fd;
	(void)what;
	while ((it = wakeq_expire(&l->room->wq, launcher_now_us())) != NULL) {
		inst = it->owner;
		log_info(
		    "%s: no room within hold_timeout (%.1f s in the wake queue): the wake fails",
		    inst->svc->name, (double)(launcher_now_us() - inst->room->since_us) / 1e6);
		launcher_inst_complete(inst, false);
		launcher_inst_released(inst); /* nobody waits for it any more */
	}
	room_run(l);
	room_arm(l);
}

static void room_state(struct instance *inst, enum inst_state old)
{
	struct launcher *l = inst->l;

	(void)old;
	if (inst->room == NULL)
		return; /* a stand-in made by hand (a unit test) */
	if (inst->room->item.queued && !room_wants_boot(inst))
		wakeq_remove(&l->room->wq,
		             &inst->room->item); /* booted another way: its waiters are told */
	if (inst->state == INST_STOPPED || inst->state == INST_SUSPENDED ||
	    inst->state == INST_FAILED)
		room_kick(l);
}

static bool room_queued(const struct instance *inst)
{
	return inst->room != NULL && inst->room->item.queued;
}

static void room_drop(struct instance *inst)
{
	if (room_queued(inst))
		wakeq_remove(&inst->l->room->wq, &inst->room->item);
}

static void room_stats(const struct launcher *l, struct launcher_stats *st)
{
	if (l->room == NULL)
		return;
	st->wake_queue = l->room->wq.st.len;
	st->wake_queued = l->room->wq.st.queued;
	st->wake_admitted = l->room->wq.st.admitted;
	st->wake_timed_out = l->room->wq.st.timed_out;
	st->wake_refused = l->room->wq.st.refused;
}

bool launcher_wake_queue_on(const struct launcher *l)
{
	return l->room != NULL && l->room->wq.max > 0;
}

size_t launcher_wake_waiting(const struct launcher *l)
{
	return l->room != NULL && l->room->ev != NULL ? l->room->wq.st.len : 0;
}

static const char *room_waiting(const struct instance *inst)
{
	return room_queued(inst) ? "no room (wake_queue)" : NULL;
}

const struct launcher_part part_room = {
    .name = "room",
    .configured = room_conf,
    .free = room_free,
    .new = room_new,
    .destroy = room_destroy,
    .stats = room_stats,
    .admit = room_admit,
    .state = room_state,
    .waiting = room_waiting,
    .drop = room_drop,
};
