/*
 * The view: what the DNS thread (fast.c) needs to know of the launcher to
 * answer a service's name alone. Per service of the zone, the address to
 * answer while its instance is ready (0 while it is not, or when the answer
 * is not that simple: a pattern, replicas), kept by the event loop through
 * the launcher's state hook; and the queries the thread answered, for the
 * loop to count as the instance's activity.
 *
 * The loop is the only writer of the addresses and the only one to swap a
 * view (under the thread's lock, at a reload); the thread reads them, so
 * they are atomics.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "launcher.h"

struct view {
	size_t n;                    /* the zone's services */
	_Atomic uint32_t *addr;      /* the answer's address, network order; 0: ask the loop */
	_Atomic int64_t *seen;       /* the latest query the thread answered, launcher_now_us */
	_Atomic unsigned char *note; /* queued in NOTES for the loop */
	uint32_t *notes;             /* services with a query to count (under the thread's lock) */
	size_t nnotes;
	uint32_t *slots; /* service name hash: index + 1, 0 when free */
	size_t mask;
	const struct zone *z;
};

static uint32_t view_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

void view_free(struct view *v)
{
	if (!v)
		return;
	free(v->addr);
	free(v->seen);
	free(v->note);
	free(v->notes);
	free(v->slots);
	free(v);
}

struct view *view_new(const struct zone *z)
{
	struct view *v = calloc(1, sizeof(*v));
	size_t cap = 16, i, j;

	if (!v)
		return NULL;
	while (cap < z->nsvcs * 2)
		cap *= 2;
	v->n = z->nsvcs;
	v->z = z;
	v->mask = cap - 1;
	v->addr = calloc(v->n + 1, sizeof(*v->addr));
	v->seen = calloc(v->n + 1, sizeof(*v->seen));
	v->note = calloc(v->n + 1, sizeof(*v->note));
	v->notes = calloc(v->n + 1, sizeof(*v->notes));
	v->slots = calloc(cap, sizeof(*v->slots));
	if (!v->addr || !v->seen || !v->note || !v->notes || !v->slots) {
		view_free(v);
		return NULL;
	}
	for (i = 0; i < v->n; i++) {
		for (j = view_hash(z->svcs[i].name) & v->mask; v->slots[j]; j = (j + 1) & v->mask)
			;
		v->slots[j] = (uint32_t)i + 1;
	}
	return v;
}

/* The index of service NAME in the view's zone, -1 when none. */
static long view_index(const struct view *v, const char *name)
{
	size_t j;

	for (j = view_hash(name) & v->mask; v->slots[j]; j = (j + 1) & v->mask)
		if (strcmp(v->z->svcs[v->slots[j] - 1].name, name) == 0)
			return (long)v->slots[j] - 1;
	return -1;
}

/*
 * Service I's entry from INST (NULL: none): the address launcher_wake_from
 * and pending_guest_addr would answer with for a ready instance.
 */
static void view_set(struct view *v, size_t i, struct instance *inst)
{
	const struct zone_svc *s = &v->z->svcs[i];
	struct in_addr a;
	uint32_t out = 0;

	if (inst && !s->pattern && s->replicas < 2 && launcher_state(inst) == INST_READY) {
		out = s->addr.s_addr;
		if (v->z->hold == CONF_HOLD_NONE && launcher_address(inst, &a) == 0)
			out = a.s_addr;
	}
	atomic_store_explicit(&v->addr[i], out, memory_order_relaxed);
}

void view_fill(struct view *v, struct launcher *l)
{
	for (size_t i = 0; i < v->n; i++)
		view_set(v, i, l ? launcher_find(l, v->z->svcs[i].name) : NULL);
}

void view_observe(struct view *v, struct instance *inst)
{
	const struct conf_service *svc = launcher_service(inst);
	long i;

	if (svc == NULL || svc->label != NULL || (i = view_index(v, svc->name)) < 0)
		return;
	view_set(v, (size_t)i, inst);
}

bool view_answer(struct view *v, struct query *q)
{
	size_t i = (size_t)(q->svc - v->z->svcs);
	struct in_addr to;

	if (i >= v->n)
		return false;
	to.s_addr = atomic_load_explicit(&v->addr[i], memory_order_relaxed);
	if (to.s_addr == 0)
		return false;
	if (to.s_addr != q->svc->addr.s_addr)
		wire_patch_a(q, q->svc->addr, to);
	atomic_store(&v->seen[i], launcher_now_us()); /* before the note: view_count's order */
	if (!atomic_exchange(&v->note[i], 1))
		v->notes[v->nnotes++] = (uint32_t)i;
	return true;
}

size_t view_take_notes(struct view *v, uint32_t *out)
{
	size_t n = v->nnotes;

	memcpy(out, v->notes, n * sizeof(*out));
	v->nnotes = 0;
	return n;
}

/* Service I's query the thread answered, if any, to its instance. */
static void view_serve(struct view *v, struct launcher *l, size_t i)
{
	struct instance *inst;
	int64_t us = atomic_exchange(&v->seen[i], 0);

	if (us && l && (inst = launcher_find(l, v->z->svcs[i].name)))
		launcher_served(inst, us);
}

void view_count(struct view *v, struct launcher *l, const uint32_t *idx, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		atomic_store(&v->note[idx[k]], 0);
		view_serve(v, l, idx[k]);
	}
}

void view_flush(struct view *v, struct launcher *l)
{
	for (size_t i = 0; i < v->n; i++)
		view_serve(v, l, i);
	v->nnotes = 0;
}

size_t view_size(const struct view *v)
{
	return v->n;
}

bool view_has_notes(const struct view *v)
{
	return v->nnotes > 0;
}
