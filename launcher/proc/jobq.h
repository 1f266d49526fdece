/*
 * Worker threads for backends whose hypervisor library blocks (libvirt,
 * libxenlight): a job runs on a worker and its completion is posted back
 * to beckon's loop through a pipe, as a pointer. Other threads (a
 * library's event thread) post the same way. beckon's event_base is
 * touched by its own thread only: it is not built thread-safe.
 *
 * Jobs with one key (a domain name) run one at a time, in the order they
 * were queued: a destroy queued after a create runs after it.
 */
#ifndef BECKON_LAUNCHER_JOBQ_H
#define BECKON_LAUNCHER_JOBQ_H

#include <stdbool.h>

struct event_base;

#define JOBQ_KEY_MAX 128

/* The head of a backend's job struct. */
struct jobq_item {
	struct jobq_item *next;
	char key[JOBQ_KEY_MAX]; /* never empty */
};

struct jobq_hooks {
	const char *name; /* in the log: "libvirt", "xen" */
	/* On a worker: the blocking part. */
	void (*run)(struct jobq_item *it);
	/* On the loop: the job is done (or posted); it is the hook's to free. */
	void (*deliver)(struct jobq_item *it);
	/* Free a job that cannot be delivered (posted after jobq_closing). */
	void (*discard)(struct jobq_item *it);
	/*
	 * Optional: called about every 50 ms while a job runs, from a thread
	 * of the queue's and from jobq_drain (libxl's children must be
	 * reaped while beckon's loop is not running).
	 */
	void (*tick)(void);
};

struct jobq;

/* Start WORKERS threads for HOOKS (kept: static). NULL when not possible (logged). */
struct jobq *jobq_start(const struct jobq_hooks *hooks, int workers);
/* Have completions delivered on BASE (the first call counts). -1 when not. */
int jobq_attach(struct jobq *q, struct event_base *base);
/* Stop delivering on the loop (before its base is freed). */
void jobq_detach(struct jobq *q);
/* Queue IT for a worker. */
void jobq_queue(struct jobq *q, struct jobq_item *it);
/* From any thread: hand IT to the loop for delivery. */
void jobq_post(struct jobq *q, struct jobq_item *it);
/* At the end (ON): what is posted from now on is discarded, not delivered. */
void jobq_closing(struct jobq *q, bool on);
/*
 * Wait (at most MS) until no job is queued or running, delivering what is
 * posted meanwhile (deliveries may queue more). false when jobs still run.
 */
bool jobq_drain(struct jobq *q, int ms);

#endif
