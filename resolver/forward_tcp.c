/*
 * The forwarder answered a TCP client's query with TC set: the query is
 * asked again over TCP, and that answer goes back whole. The slot keeps its
 * deadline, renewed once for the retry.
 */
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "forward.h"
#include "log.h"

static void fwd_tcp_read(struct bufferevent *bev, void *arg)
{
	struct fwd *s = arg;
	struct fwd_state *f = s->r->fwd;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t pre[2];
	size_t len;

	if (evbuffer_get_length(in) < 2)
		return;
	evbuffer_copyout(in, pre, 2);
	len = (size_t)pre[0] << 8 | pre[1];
	if (evbuffer_get_length(in) < len + 2)
		return;
	evbuffer_drain(in, 2);
	evbuffer_remove(in, f->buf, len);
	if (len < 12 || !(f->buf[2] & 0x80) || (f->buf[0] << 8 | f->buf[1]) != s->up_id ||
	    !fwd_matches(s, f->buf, len)) {
		fwd_servfail(s->r, s);
		return;
	}
	fwd_deliver(s->r, s, f->buf, len);
}

static void fwd_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct fwd *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	log_debug("dns: forward over tcp to %s failed", s->r->fwd->addr.text);
	fwd_servfail(s->r, s);
}

int fwd_tcp_start(struct resolver *r, struct fwd *s)
{
	struct fwd_state *f = r->fwd;
	uint8_t pre[2] = {(uint8_t)(s->qlen >> 8), (uint8_t)s->qlen};

	s->bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev)
		return -1;
	bufferevent_setcb(s->bev, fwd_tcp_read, NULL, fwd_tcp_event, s);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&f->addr.ss, (int)f->addr.len) <
	        0 ||
	    bufferevent_write(s->bev, pre, 2) < 0 ||
	    bufferevent_write(s->bev, s->query, s->qlen) < 0 ||
	    bufferevent_enable(s->bev, EV_READ | EV_WRITE) < 0) {
		fwd_tcp_stop(s);
		return -1;
	}
	s->deadline = fwd_now() + RESOLVER_FWD_TIMEOUT_MS;
	return 0;
}

void fwd_tcp_stop(struct fwd *s)
{
	if (s->bev)
		bufferevent_free(s->bev);
	s->bev = NULL;
}
