/*
 * Relaying, in the shape of libevent's le-proxy sample: what one side's
 * bufferevent reads goes to the other's output; when that output passes
 * RELAY_MAX_OUTPUT, reading stops until it has drained to half. An EOF
 * from one side is passed on as shutdown(SHUT_WR) once the other side has
 * written everything (half-close); an error closes the other side once it
 * has flushed what it holds.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "internal.h"
#include "log.h"

static struct bufferevent *other(const struct pxconn *c, const struct bufferevent *bev)
{
	return bev == c->cl ? c->up : c->cl;
}

static bool *throttled(struct pxconn *c, const struct bufferevent *src)
{
	return src == c->cl ? &c->cl_throttled : &c->up_throttled;
}

static enum pump_dir dir_from(const struct pxconn *c, const struct bufferevent *src)
{
	return src == c->cl ? PUMP_CL_UP : PUMP_UP_CL;
}

static void pump_start_now(struct pxconn *c, struct bufferevent *src)
{
	enum pump_dir d = dir_from(c, src);

	c->pump_want[d] = false;
	if (c->pump[d] == NULL && pump_start(c, d) == -1)
		return; /* bufferevents go on relaying it */
	*throttled(c, src) = false;
}

/* What was sent upstream is kept until it answers, to replay on a retry. */
static void keep_for_replay(struct pxconn *c, struct evbuffer *in, size_t n)
{
	if (c->replay == NULL)
		return;
	if (evbuffer_get_length(c->replay) + n > c->svc->p->hold_buffer) {
		evbuffer_free(c->replay); /* too much to replay: no retry */
		c->replay = NULL;
		return;
	}
	evbuffer_add(c->replay, evbuffer_pullup(in, (ssize_t)n), n);
}

/* N bytes of IN to OUT, whose socket is FD. */
static void move_bytes(struct evbuffer *in, struct evbuffer *out, int fd, size_t n)
{
	int w = 0;

	/* Nothing queued: write now, not a loop turn later (errors show there). */
	if (evbuffer_get_length(out) == 0 && (w = evbuffer_write_atmost(in, fd, (ssize_t)n)) < 0)
		w = 0;
	n -= (size_t)w;
	if (n == evbuffer_get_length(in))
		evbuffer_add_buffer(out, in);
	else if (n > 0)
		evbuffer_remove_buffer(in, out, n);
}

/* Move what SRC read to the other side's output. */
static void relay_move(struct pxconn *c, struct bufferevent *src)
{
	struct bufferevent *dst = other(c, src);
	struct evbuffer *in = bufferevent_get_input(src), *out;
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return;
	if (dst == NULL) {
		evbuffer_drain(in, n); /* the other side is gone */
		return;
	}
	/* A front's connection: this request or response, not what follows it. */
	if (c->http != NULL && (n = front_take(c, src, n)) == 0)
		return;
	if (src == c->up) {
		c->up_spoke = true;
		if (c->replay != NULL)
			evbuffer_free(c->replay);
		c->replay = NULL;
	} else {
		keep_for_replay(c, in, n);
	}
	out = bufferevent_get_output(dst);
	move_bytes(in, out, bufferevent_getfd(dst), n);
	pxconn_activity(c, n);
	/* Bulk, and no replay to keep: splice it once DST has written this (not HTTP framed). */
	c->moved[dir_from(c, src)] += n;
	if (c->moved[dir_from(c, src)] >= PUMP_MIN_BYTES && c->replay == NULL && c->http == NULL)
		c->pump_want[dir_from(c, src)] = true;
	if (c->pump_want[dir_from(c, src)] && evbuffer_get_length(out) == 0) {
		pump_start_now(c, src);
		return;
	}
	if (evbuffer_get_length(out) >= RELAY_MAX_OUTPUT) {
		bufferevent_disable(src, EV_READ);
		*throttled(c, src) = true;
		bufferevent_setwatermark(dst, EV_WRITE, RELAY_MAX_OUTPUT / 2, RELAY_MAX_OUTPUT);
	}
}

void relay_kick(struct pxconn *c, struct bufferevent *src)
{
	relay_move(c, src);
}

static void readcb(struct bufferevent *bev, void *arg)
{
	struct pxconn *c = arg;

	if (c->state == PXC_RELAY) {
		relay_move(c, bev);
		return;
	}
	/*
	 * Until relaying, what the client sends stays in its input: up to
	 * hold_buffer, then the kernel holds the rest (the client waits).
	 */
	if (evbuffer_get_length(bufferevent_get_input(bev)) >= c->svc->p->hold_buffer) {
		bufferevent_disable(bev, EV_READ);
		c->cl_throttled = true;
	}
}

/* BEV has written everything it had (its output, and a pipe into it). */
void relay_flushed(struct pxconn *c, struct bufferevent *bev)
{
	if (pump_holds(c, bev))
		return;
	if (c->closing) {
		pxconn_free(c);
		return;
	}
	/* The side feeding BEV has said EOF: pass the half-close on. */
	if (bev == c->up && c->cl_eof && !c->up_shut) {
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		c->up_shut = true;
	} else if (bev == c->cl && c->up_eof && !c->cl_shut) {
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		c->cl_shut = true;
	}
	if (c->cl_shut && c->up_shut)
		pxconn_free(c);
}

static void writecb(struct bufferevent *bev, void *arg)
{
	struct pxconn *c = arg;
	struct bufferevent *src = other(c, bev);
	bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;

	if (src != NULL && *throttled(c, src)) {
		*throttled(c, src) = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (!(src == c->cl ? c->cl_eof : c->up_eof))
			bufferevent_enable(src, EV_READ);
	}
	if (src != NULL && empty && c->pump_want[dir_from(c, src)] &&
	    !(src == c->cl ? c->cl_eof : c->up_eof))
		pump_start_now(c, src);
	if (c->state == PXC_RELAY && empty)
		relay_flushed(c, bev);
}

/* BEV failed: flush what the other side still has to write, then close. */
void relay_side_error(struct pxconn *c, struct bufferevent *bev)
{
	struct bufferevent *dst = other(c, bev);
	struct timeval tv = {RELAY_FLUSH_MS / 1000, 0};

	pump_side_gone(c, bev);
	bufferevent_free(bev);
	if (bev == c->cl)
		c->cl = NULL;
	else
		c->up = NULL;
	if (dst == NULL ||
	    (evbuffer_get_length(bufferevent_get_output(dst)) == 0 && !pump_holds(c, dst))) {
		pxconn_free(c);
		return;
	}
	c->closing = true;
	bufferevent_disable(dst, EV_READ);
	evtimer_add(c->timer, &tv);
}

static void side_eof(struct pxconn *c, struct bufferevent *bev)
{
	struct bufferevent *dst = other(c, bev);

	relay_move(c, bev);
	if (bev == c->cl)
		c->cl_eof = true;
	else
		c->up_eof = true;
	if (dst == NULL) {
		pxconn_free(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(dst)) == 0)
		relay_flushed(c, dst);
}

/* An event on the client before it is relayed: it leaves, or half-closes. */
static void held_client_event(struct pxconn *c, short what)
{
	bool sent = evbuffer_get_length(bufferevent_get_input(c->cl)) > 0 ||
	            (c->replay != NULL && evbuffer_get_length(c->replay) > 0);

	if ((what & BEV_EVENT_EOF) && sent) {
		c->cl_eof = true; /* a request, then shutdown(SHUT_WR): held on */
		return;
	}
	log_debug("proxy: %s: client left while held", c->svc->name);
	pxconn_free(c);
}

static void eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pxconn *c = arg;

	if (bev == c->up && c->state == PXC_CONNECTING) {
		if (what & BEV_EVENT_CONNECTED)
			relay_start(c);
		else if (pxconn_can_retry(c))
			pxconn_retry(c);
		else /* refused, unreachable: as a guest would */
			pxconn_upstream_failed(c, (what & BEV_EVENT_TIMEOUT) ? "timed out"
			                                                     : strerror(errno));
		return;
	}
	if (bev == c->cl && c->state != PXC_RELAY) {
		held_client_event(c, what);
		return;
	}
	/* hostfwd answering for a guest that does not listen yet. */
	if (bev == c->up && !c->up_spoke && pxconn_can_retry(c)) {
		pxconn_retry(c);
		return;
	}
	if (what & BEV_EVENT_EOF)
		side_eof(c, bev);
	else
		relay_side_error(c, bev);
}

void relay_hold_client(struct pxconn *c)
{
	bufferevent_setcb(c->cl, readcb, writecb, eventcb, c);
	/* Each read takes at most what is left of hold_buffer. */
	bufferevent_set_max_single_read(c->cl, c->svc->p->hold_buffer);
	if (!c->cl_eof &&
	    evbuffer_get_length(bufferevent_get_input(c->cl)) < c->svc->p->hold_buffer)
		bufferevent_enable(c->cl, EV_READ);
}

void relay_setcbs(struct pxconn *c)
{
	relay_hold_client(c);
	bufferevent_setcb(c->up, readcb, writecb, eventcb, c);
}

void relay_start(struct pxconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->up);

	c->state = PXC_RELAY;
	bufferevent_set_timeouts(c->up, NULL, NULL);
	if (!c->open)
		quiet_count_open(c, 1);
	c->open = true;
	/* A retry: what the last upstream got goes again first. */
	if (c->replay != NULL && evbuffer_get_length(c->replay) > 0)
		evbuffer_add(out, evbuffer_pullup(c->replay, -1), evbuffer_get_length(c->replay));
	/* Big reads and writes: fewer system calls for bulk transfers. */
	bufferevent_set_max_single_read(c->cl, RELAY_MAX_IO);
	bufferevent_set_max_single_read(c->up, RELAY_MAX_IO);
	bufferevent_set_max_single_write(c->cl, RELAY_MAX_IO);
	bufferevent_set_max_single_write(c->up, RELAY_MAX_IO);
	c->cl_throttled = false;
	/*
	 * Writing is enabled from birth (libevent's default): enabling EV_WRITE
	 * again would only wake the loop for an empty output.
	 */
	bufferevent_enable(c->up, EV_READ);
	if (!c->cl_eof)
		bufferevent_enable(c->cl, EV_READ);
	relay_move(c, c->cl);
	if (c->cl_eof && evbuffer_get_length(out) == 0)
		relay_flushed(c, c->up);
}
