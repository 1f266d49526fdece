/*
 * The QMP client (see qmp.h). QEMU sends one JSON object a line: a greeting,
 * then replies ("return" or "error", with the "id" we gave) and events. A
 * peer that sends anything else, or a line past QMP_MAX_LINE, is dropped.
 * This file: the protocol (handshake, commands and their replies, events);
 * qmp_conn.c: reaching QEMU and the socket's bytes.
 *
 * Callbacks may free the qmp: every entry from libevent brackets its work
 * with qmp_enter/qmp_leave, and the real free waits for the outermost leave.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "qmp.h"
#include "qmp_internal.h"

struct qmp *qmp_new(struct event_base *base, const struct qmp_cbs *cbs, void *arg)
{
	struct qmp *q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("qmp: calloc");
		return NULL;
	}
	if ((q->queued = evbuffer_new()) == NULL) {
		log_warnx("qmp: evbuffer_new failed");
		free(q);
		return NULL;
	}
	q->base = base;
	q->cbs = *cbs;
	q->arg = arg;
	q->listen_fd = -1;
	q->next_id = 1;
	TAILQ_INIT(&q->pending);
	return q;
}

void qmp_destroy(struct qmp *q)
{
	struct qmp_pending *p;

	if (q->bev != NULL)
		bufferevent_free(q->bev);
	if (q->wait_ev != NULL)
		event_free(q->wait_ev);
	if (q->listen_fd != -1) {
		close(q->listen_fd);
		unlink(q->path);
	}
	while ((p = TAILQ_FIRST(&q->pending)) != NULL) {
		TAILQ_REMOVE(&q->pending, p, entry);
		free(p);
	}
	evbuffer_free(q->queued);
	free(q->path);
	free(q);
}

void qmp_enter(struct qmp *q)
{
	q->depth++;
}

void qmp_leave(struct qmp *q)
{
	if (--q->depth == 0 && q->freed)
		qmp_destroy(q);
}

void qmp_free(struct qmp *q)
{
	if (q == NULL)
		return;
	if (q->depth > 0)
		q->freed = 1;
	else
		qmp_destroy(q);
}

int qmp_is_ready(const struct qmp *q)
{
	return q->phase == QMP_READY;
}

/* Write OBJ as one line to OUT. */
static int qmp_write(struct evbuffer *out, json_t *obj)
{
	char *s;
	int rc;

	if ((s = json_dumps(obj, JSON_COMPACT)) == NULL)
		return -1;
	rc = evbuffer_add_printf(out, "%s\n", s) < 0 ? -1 : 0;
	free(s);
	return rc;
}

/* Send now, or queue until the handshake ends when QUEUE. ARGS stolen. */
static int qmp_send(struct qmp *q, const char *execute, json_t *args, qmp_reply_cb cb, void *arg,
                    int queue)
{
	struct qmp_pending *p = NULL;
	json_t *msg = NULL;
	struct evbuffer *out;

	if ((msg = json_pack("{s:s, s:I}", "execute", execute, "id", q->next_id)) == NULL)
		goto fail;
	if (args != NULL) {
		int rc = json_object_set_new(msg, "arguments", args);
		args = NULL; /* stolen, also on failure */
		if (rc < 0)
			goto fail;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto fail;
	out = queue ? q->queued : bufferevent_get_output(q->bev);
	if (qmp_write(out, msg) < 0)
		goto fail;
	p->id = q->next_id++;
	p->cb = cb;
	p->arg = arg;
	TAILQ_INSERT_TAIL(&q->pending, p, entry);
	json_decref(msg);
	/*
	 * Out now rather than when the loop next turns: a caller that goes on
	 * working (a pool take copies the guest's memory after its netdev_adds)
	 * has QEMU busy meanwhile. What the socket does not take, and any error,
	 * stays with the bufferevent.
	 */
	if (!queue)
		evbuffer_write(out, bufferevent_getfd(q->bev));
	return 0;
fail:
	log_warnx("qmp: cannot send %s", execute);
	json_decref(args);
	json_decref(msg);
	free(p);
	return -1;
}

int qmp_command(struct qmp *q, const char *execute, json_t *args, qmp_reply_cb cb, void *arg)
{
	if (q->phase == QMP_CLOSED || q->freed) {
		json_decref(args);
		return -1;
	}
	return qmp_send(q, execute, args, cb, arg, q->phase != QMP_READY);
}

static void qmp_caps_done(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	(void)arg;
	if (ret == NULL) {
		const char *desc = json_string_value(json_object_get(err, "desc"));
		if (q->phase != QMP_CLOSED)
			qmp_fail(q, desc ? desc : "qmp_capabilities refused");
		return;
	}
	log_debug("qmp: ready");
	q->phase = QMP_READY;
	bufferevent_write_buffer(q->bev, q->queued);
	if (q->cbs.ready != NULL)
		q->cbs.ready(q, q->arg);
}

/* Whether the greeting's capabilities offer NAME. */
static bool qmp_offers(json_t *greeting, const char *name)
{
	json_t *caps = json_object_get(json_object_get(greeting, "QMP"), "capabilities");
	size_t i;
	json_t *c;

	json_array_foreach(caps, i, c)
	{
		if (json_is_string(c) && strcmp(json_string_value(c), name) == 0)
			return true;
	}
	return false;
}

/*
 * Out-of-band execution, where QEMU offers it, for what it does to the
 * in-band commands: without it QEMU reads one command, stops reading until
 * the main loop has run it and answered, and only then reads the next, two
 * thread hand-offs a command (0.5 ms each under TCG here, five commands in
 * a pool restore); with it, up to eight wait their turn already read. They
 * still run in order, one at a time, and every command of ours has an id.
 */
static void qmp_greeting(struct qmp *q, json_t *msg)
{
	json_t *args = NULL;

	if (json_object_get(msg, "QMP") == NULL) {
		qmp_fail(q, "no QMP greeting");
		return;
	}
	log_debug("qmp: greeting received");
	q->phase = QMP_NEGOTIATING;
	if (qmp_offers(msg, "oob") && (args = json_pack("{s:[s]}", "enable", "oob")) == NULL) {
		qmp_fail(q, "cannot send qmp_capabilities");
		return;
	}
	if (qmp_send(q, "qmp_capabilities", args, qmp_caps_done, NULL, 0) < 0)
		qmp_fail(q, "cannot send qmp_capabilities");
}

/* The pending command a reply answers: by id, or the oldest when it has none. */
static struct qmp_pending *qmp_match(struct qmp *q, json_t *msg)
{
	json_t *id = json_object_get(msg, "id");
	struct qmp_pending *p;

	if (id == NULL)
		return TAILQ_FIRST(&q->pending);
	if (!json_is_integer(id))
		return NULL;
	TAILQ_FOREACH(p, &q->pending, entry)
	if (p->id == json_integer_value(id))
		return p;
	return NULL;
}

static void qmp_reply(struct qmp *q, json_t *msg)
{
	struct qmp_pending *p;
	json_t *ret = json_object_get(msg, "return");

	if ((p = qmp_match(q, msg)) == NULL) {
		log_debug("qmp: a reply to no command of ours, ignored");
		return;
	}
	TAILQ_REMOVE(&q->pending, p, entry);
	if (p->cb != NULL)
		p->cb(q, ret, ret != NULL ? NULL : json_object_get(msg, "error"), p->arg);
	free(p);
}

static void qmp_message(struct qmp *q, json_t *msg)
{
	const char *event;

	if (q->phase == QMP_GREETING) {
		qmp_greeting(q, msg);
	} else if ((event = json_string_value(json_object_get(msg, "event"))) != NULL) {
		if (q->cbs.event != NULL)
			q->cbs.event(q, event, json_object_get(msg, "data"), q->arg);
	} else if (json_object_get(msg, "return") != NULL ||
	           json_is_object(json_object_get(msg, "error"))) {
		qmp_reply(q, msg);
	} else {
		log_debug("qmp: a message of no known kind, ignored");
	}
}

void qmp_line(struct qmp *q, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *msg;
	char why[256];

	if (len == 0)
		return;
	if ((msg = json_loadb(line, len, 0, &jerr)) == NULL || !json_is_object(msg)) {
		snprintf(why, sizeof(why), "not a QMP message: %s",
		         msg == NULL ? jerr.text : "not a JSON object");
		json_decref(msg);
		qmp_fail(q, why);
		return;
	}
	qmp_message(q, msg);
	json_decref(msg);
}

void qmp_fail(struct qmp *q, const char *why)
{
	struct qmp_pending *p;
	json_t *err;

	if (q->phase == QMP_CLOSED)
		return;
	q->phase = QMP_CLOSED;
	log_debug("qmp: %s", why);
	if (q->bev != NULL) {
		bufferevent_free(q->bev);
		q->bev = NULL;
	}
	err = json_pack("{s:s, s:s}", "class", "Disconnected", "desc", why);
	while (!q->freed && (p = TAILQ_FIRST(&q->pending)) != NULL) {
		TAILQ_REMOVE(&q->pending, p, entry);
		if (p->cb != NULL)
			p->cb(q, NULL, err, p->arg);
		free(p);
	}
	json_decref(err);
	if (!q->freed && q->cbs.close != NULL)
		q->cbs.close(q, why, q->arg);
}
