/*
 * The QMP client (see qmp.h). QEMU sends one JSON object a line: a greeting,
 * then replies ("return" or "error", with the "id" we gave) and events. A
 * peer that sends anything else, or a line past QMP_MAX_LINE, is dropped.
 *
 * Callbacks may free the qmp: every entry from libevent brackets its work
 * with qmp_enter/qmp_leave, and the real free waits for the outermost leave.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "qmp.h"

#define QMP_RETRY_MS 2

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

static void qmp_fail(struct qmp *q, const char *why);

static struct qmp *qmp_new(struct event_base *base, const struct qmp_cbs *cbs, void *arg)
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

static void qmp_destroy(struct qmp *q)
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

static void qmp_enter(struct qmp *q)
{
	q->depth++;
}

static void qmp_leave(struct qmp *q)
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

static void qmp_greeting(struct qmp *q, json_t *msg)
{
	if (json_object_get(msg, "QMP") == NULL) {
		qmp_fail(q, "no QMP greeting");
		return;
	}
	log_debug("qmp: greeting received");
	q->phase = QMP_NEGOTIATING;
	if (qmp_send(q, "qmp_capabilities", NULL, qmp_caps_done, NULL, 0) < 0)
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

/* One line from the peer. */
static void qmp_line(struct qmp *q, const char *line, size_t len)
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

static void qmp_read_cb(struct bufferevent *bev, void *arg)
{
	struct qmp *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	qmp_enter(q);
	while (q->phase != QMP_CLOSED && !q->freed) {
		if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) == NULL) {
			if (evbuffer_get_length(in) > QMP_MAX_LINE)
				qmp_fail(q, "a QMP line past the size limit");
			break;
		}
		if (len > QMP_MAX_LINE)
			qmp_fail(q, "a QMP line past the size limit");
		else
			qmp_line(q, line, len);
		free(line);
	}
	qmp_leave(q);
}

static void qmp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct qmp *q = arg;
	char why[128];

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "QMP connection closed by the peer");
	else
		snprintf(why, sizeof(why), "QMP connection: %s",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	qmp_enter(q);
	qmp_fail(q, why);
	qmp_leave(q);
}

/*
 * End the connection: every pending command gets a "Disconnected" error,
 * then close is called, once. Runs inside qmp_enter/qmp_leave.
 */
static void qmp_fail(struct qmp *q, const char *why)
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

/* Start talking on the connected FD (closed on failure). -1 on failure. */
static int qmp_connected(struct qmp *q, int fd)
{
	evutil_make_socket_nonblocking(fd);
	if ((q->bev = bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("qmp: bufferevent_socket_new failed");
		close(fd);
		return -1;
	}
	bufferevent_setcb(q->bev, qmp_read_cb, NULL, qmp_event_cb, q);
	if (bufferevent_enable(q->bev, EV_READ | EV_WRITE) < 0) {
		log_warnx("qmp: bufferevent_enable failed");
		return -1;
	}
	q->phase = QMP_GREETING;
	return 0;
}

struct qmp *qmp_attach(struct event_base *base, int fd, const struct qmp_cbs *cbs, void *arg)
{
	struct qmp *q;

	if ((q = qmp_new(base, cbs, arg)) == NULL) {
		close(fd);
		return NULL;
	}
	if (qmp_connected(q, fd) < 0) {
		qmp_destroy(q);
		return NULL;
	}
	return q;
}

static int qmp_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		log_warnx("qmp: socket path too long (%zu bytes, at most %zu): %s", strlen(path),
		          sizeof(sun->sun_path) - 1, path);
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

static void qmp_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct qmp *q = arg;
	int fd;

	(void)what;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("qmp: accept on %s", q->path);
		return;
	}
	event_free(q->wait_ev);
	q->wait_ev = NULL;
	close(q->listen_fd);
	q->listen_fd = -1;
	unlink(q->path);
	qmp_enter(q);
	if (qmp_connected(q, fd) < 0)
		qmp_fail(q, "cannot start the QMP connection");
	qmp_leave(q);
}

struct qmp *qmp_listen(struct event_base *base, const char *path, const struct qmp_cbs *cbs,
                       void *arg)
{
	struct sockaddr_un sun;
	struct qmp *q;

	if (qmp_sockaddr(path, &sun) < 0 || (q = qmp_new(base, cbs, arg)) == NULL)
		return NULL;
	if ((q->path = strdup(path)) == NULL)
		goto fail;
	q->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->listen_fd == -1) {
		log_warn("qmp: socket");
		goto fail;
	}
	unlink(path);
	if (bind(q->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(q->listen_fd, 1) == -1) {
		log_warn("qmp: listen on %s", path);
		goto fail;
	}
	q->wait_ev = event_new(base, q->listen_fd, EV_READ | EV_PERSIST, qmp_accept_cb, q);
	if (q->wait_ev == NULL || event_add(q->wait_ev, NULL) < 0) {
		log_warnx("qmp: cannot watch %s", path);
		goto fail;
	}
	return q;
fail:
	qmp_destroy(q);
	return NULL;
}

/* One non-blocking connect: the fd when it went through, -1 to retry, -2 to give up. */
static int qmp_try_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, err;

	if (qmp_sockaddr(path, &sun) < 0)
		return -2;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -2;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	err = errno;
	close(fd);
	/* Absent, not listening yet, or a full backlog: QEMU is still starting. */
	if (err == ENOENT || err == ECONNREFUSED || err == EAGAIN)
		return -1;
	errno = err;
	log_warn("qmp: connect to %s", path);
	return -2;
}

static void qmp_retry_cb(evutil_socket_t unused, short what, void *arg)
{
	struct qmp *q = arg;
	struct timeval now, delay = {0, QMP_RETRY_MS * 1000};
	char why[128];
	int fd;

	(void)unused, (void)what;
	qmp_enter(q);
	fd = qmp_try_connect(q->path);
	event_base_gettimeofday_cached(q->base, &now);
	if (fd >= 0) {
		if (qmp_connected(q, fd) < 0)
			qmp_fail(q, "cannot start the QMP connection");
	} else if (fd == -1 && timercmp(&now, &q->deadline, <)) {
		evtimer_add(q->wait_ev, &delay);
	} else {
		snprintf(why, sizeof(why), "no QMP socket answered at %s in time", q->path);
		qmp_fail(q, why);
	}
	qmp_leave(q);
}

struct qmp *qmp_connect(struct event_base *base, const char *path, int timeout_ms,
                        const struct qmp_cbs *cbs, void *arg)
{
	struct sockaddr_un sun;
	struct timeval now, span = {timeout_ms / 1000, (timeout_ms % 1000) * 1000}, zero = {0, 0};
	struct qmp *q;

	if (qmp_sockaddr(path, &sun) < 0 || (q = qmp_new(base, cbs, arg)) == NULL)
		return NULL;
	if ((q->path = strdup(path)) == NULL)
		goto fail;
	event_base_gettimeofday_cached(base, &now);
	timeradd(&now, &span, &q->deadline);
	/* The first try runs from the loop too, so close is never called from here. */
	if ((q->wait_ev = evtimer_new(base, qmp_retry_cb, q)) == NULL ||
	    evtimer_add(q->wait_ev, &zero) < 0)
		goto fail;
	return q;
fail:
	log_warnx("qmp: cannot start connecting to %s", path);
	qmp_destroy(q);
	return NULL;
}
