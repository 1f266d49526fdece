/*
 * Bulk relaying through a pipe with splice(2): once one direction of a
 * relayed connection moves a lot, its bytes go socket -> pipe -> socket in
 * the kernel, without the two copies through user space that bufferevents
 * make. Flow control is the pipe: while it holds bytes the destination has
 * not taken, the source is not read. EOF, errors and flushing end in
 * relay.c's handling, as for the bufferevent path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "internal.h"
#include "log.h"

struct pxpump {
	struct pxconn *c;
	enum pump_dir dir;
	int pfd[2];
	size_t inpipe; /* bytes in the pipe, not yet written */
	struct event *rd, *wr;
	bool eof; /* the source has said EOF, or is gone */
};

static struct bufferevent *pump_src(const struct pxpump *pp)
{
	return pp->dir == PUMP_CL_UP ? pp->c->cl : pp->c->up;
}

static struct bufferevent *pump_dst(const struct pxpump *pp)
{
	return pp->dir == PUMP_CL_UP ? pp->c->up : pp->c->cl;
}

static void pump_free(struct pxpump *pp)
{
	if (pp->rd != NULL)
		event_free(pp->rd);
	if (pp->wr != NULL)
		event_free(pp->wr);
	if (pp->pfd[0] != -1)
		close(pp->pfd[0]);
	if (pp->pfd[1] != -1)
		close(pp->pfd[1]);
	pp->c->pump[pp->dir] = NULL;
	free(pp);
}

/* Write what the pipe holds; wait for the destination while it holds any. */
static void pump_flush(struct pxpump *pp)
{
	struct pxconn *c = pp->c;
	ssize_t n = 0;

	if (pp->inpipe > 0)
		n = splice(pp->pfd[0], NULL, bufferevent_getfd(pump_dst(pp)), NULL, pp->inpipe,
		           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n == -1 && errno != EAGAIN) {
		relay_side_error(c, pump_dst(pp));
		return;
	}
	if (n > 0)
		pp->inpipe -= (size_t)n;
	if (pp->inpipe > 0) {
		event_del(pp->rd);
		event_add(pp->wr, NULL);
		return;
	}
	event_del(pp->wr);
	if (!pp->eof) {
		event_add(pp->rd, NULL);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(pump_dst(pp))) == 0)
		relay_flushed(c, pump_dst(pp));
}

static void pump_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pxpump *pp = arg;
	ssize_t n;

	(void)what;
	n = splice(fd, NULL, pp->pfd[1], NULL, PUMP_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n == -1 && errno == EAGAIN)
		return;
	if (n == -1) {
		relay_side_error(pp->c, pump_src(pp));
		return;
	}
	if (n == 0) {
		pp->eof = true;
		event_del(pp->rd);
		if (pp->dir == PUMP_CL_UP)
			pp->c->cl_eof = true;
		else
			pp->c->up_eof = true;
	} else {
		pp->inpipe += (size_t)n;
		pxconn_activity(pp->c, (size_t)n);
	}
	pump_flush(pp);
}

static void pump_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump_flush(arg);
}

int pump_start(struct pxconn *c, enum pump_dir dir)
{
	struct event_base *base = c->svc->p->base;
	struct pxpump *pp;

	if ((pp = calloc(1, sizeof(*pp))) == NULL)
		return -1;
	pp->c = c;
	pp->dir = dir;
	pp->pfd[0] = pp->pfd[1] = -1;
	if (pipe2(pp->pfd, O_NONBLOCK | O_CLOEXEC) == -1)
		goto fail;
	/* A bigger pipe: fewer turns per megabyte. The default (64 KiB) also works. */
	fcntl(pp->pfd[1], F_SETPIPE_SZ, PUMP_PIPE_SIZE);
	pp->rd = event_new(base, bufferevent_getfd(pump_src(pp)), EV_READ | EV_PERSIST,
	                   pump_read_cb, pp);
	pp->wr = event_new(base, bufferevent_getfd(pump_dst(pp)), EV_WRITE | EV_PERSIST,
	                   pump_write_cb, pp);
	if (pp->rd == NULL || pp->wr == NULL)
		goto fail;
	c->pump[dir] = pp;
	bufferevent_disable(pump_src(pp), EV_READ); /* the pump reads it from now on */
	log_debug("proxy: %s: splicing %s", c->svc->name,
	          dir == PUMP_CL_UP ? "client to guest" : "guest to client");
	event_add(pp->rd, NULL);
	return 0;
fail:
	log_warn("proxy: %s: pipe", c->svc->name);
	c->pump[dir] = pp; /* pump_free clears it */
	pump_free(pp);
	return -1;
}

bool pump_holds(const struct pxconn *c, const struct bufferevent *dst)
{
	for (int d = 0; d < PUMP_DIRS; d++)
		if (c->pump[d] != NULL && pump_dst(c->pump[d]) == dst && c->pump[d]->inpipe > 0)
			return true;
	return false;
}

void pump_side_gone(struct pxconn *c, const struct bufferevent *bev)
{
	for (int d = 0; d < PUMP_DIRS; d++) {
		struct pxpump *pp = c->pump[d];

		if (pp == NULL)
			continue;
		if (pump_dst(pp) == bev) {
			pump_free(pp); /* nowhere to write to */
		} else if (pump_src(pp) == bev) {
			pp->eof = true; /* what it read still goes on */
			event_del(pp->rd);
		}
	}
}

void pump_free_all(struct pxconn *c)
{
	for (int d = 0; d < PUMP_DIRS; d++)
		if (c->pump[d] != NULL)
			pump_free(c->pump[d]);
}
