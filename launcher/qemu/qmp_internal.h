/*
 * What qmp.c (the protocol) and qmp_conn.c (the connection) share:
 * module-internal, the API is qmp.h.
 */
#ifndef BECKON_LAUNCHER_QMP_INTERNAL_H
#define BECKON_LAUNCHER_QMP_INTERNAL_H

#include <stddef.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <jansson.h>

#include "qmp.h"

struct bufferevent;
struct event;
struct evbuffer;

struct qmp_pending {
	TAILQ_ENTRY(qmp_pending) entry;
	json_int_t id;
	qmp_reply_cb cb;
	void *arg;
};
TAILQ_HEAD(qmp_pending_list, qmp_pending);

enum qmp_phase {
	QMP_WAITING,  /* for a connection: listening or retrying connect */
	QMP_GREETING, /* connected, waiting for the greeting */
	QMP_NEGOTIATING,
	QMP_READY,
	QMP_CLOSED
};

struct qmp {
	struct event_base *base;
	struct qmp_cbs cbs;
	void *arg;
	enum qmp_phase phase;
	struct bufferevent *bev;
	struct event *wait_ev; /* the listening socket, or the retry timer */
	int listen_fd;
	char *path;              /* listen: unlinked at the end; connect: the target */
	struct timeval deadline; /* connect */
	struct evbuffer *queued; /* commands issued before the handshake ended */
	struct qmp_pending_list pending;
	json_int_t next_id;
	int depth; /* our callbacks on the stack */
	int freed; /* qmp_free came while depth > 0 */
};

/* A qmp in phase QMP_WAITING with nothing open yet; NULL (logged) on failure. */
struct qmp *qmp_new(struct event_base *base, const struct qmp_cbs *cbs, void *arg);

/* Free Q and all it holds at once, calling nothing. */
void qmp_destroy(struct qmp *q);

/* Around every entry from libevent: qmp_free in between is put off until the outermost leave. */
void qmp_enter(struct qmp *q);
void qmp_leave(struct qmp *q);

/* One line from the peer (without its end of line). */
void qmp_line(struct qmp *q, const char *line, size_t len);

/*
 * End the connection: every pending command gets a "Disconnected" error,
 * then close is called, once. Runs inside qmp_enter/qmp_leave.
 */
void qmp_fail(struct qmp *q, const char *why);

#endif
