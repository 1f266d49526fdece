/*
 * The QMP client's connection (see qmp.h, qmp_internal.h): the three ways
 * to reach QEMU, and the bufferevent that turns the socket into lines for
 * the protocol in qmp.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "qmp.h"
#include "qmp_internal.h"

#define QMP_RETRY_MS 2

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
