/*
 * TCP: two-byte length framing, any number of queries per connection.
 * Answers go out as they are ready, so a query waiting for a boot does not
 * hold up the ones behind it (RFC 7766 allows this order).
 *
 * Connections are kept least recently used first. A new one that would
 * pass dns.tcp.per_client or dns.tcp.max takes the place of an idle one
 * (no answer pending; RFC 7766 6.2.2 lets a server close idle ones to make
 * room), the oldest of the address holding the most (tcp_peer.c), so
 * clients that open connections and say nothing cannot shut the others
 * out.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "internal.h"
#include "log.h"

#define TCP_BACKLOG 128

static void tcp_close(struct tconn *c)
{
	struct resolver *r = c->r;
	evutil_socket_t fd;

	if (c->nwait) {
		pending_drop_conn(r, c);
		fwd_drop_conn(r, c);
	}
	TAILQ_REMOVE(&r->conns, c, link);
	r->nconns--;
	tcp_peer_put(c->peer);
	/* libevent closes the socket from the loop, later: many closed in one
	 * accept burst would stay open until then. Close it now. */
	fd = bufferevent_getfd(c->bev);
	bufferevent_setfd(c->bev, -1);
	if (fd >= 0)
		close(fd);
	bufferevent_free(c->bev);
	event_free(c->idle);
	free(c);
}

/* A client that closed its side goes once its answers are out. */
static void tcp_maybe_close(struct tconn *c)
{
	if (c->eof && c->nwait == 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		tcp_close(c);
}

void tcp_send(struct tconn *c, const uint8_t *buf, size_t len)
{
	uint8_t pre[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (evbuffer_add(out, pre, 2) < 0 || evbuffer_add(out, buf, len) < 0)
		c->r->stats.dropped++;
}

void tcp_done_wait(struct tconn *c)
{
	c->nwait--;
	if (c->nwait == 0)
		evtimer_add(c->idle, &c->r->tcp_idle_tv);
}

static void tcp_query(struct tconn *c, const uint8_t *pkt, size_t len)
{
	struct resolver *r = c->r;
	struct client_ref ref = {0, NULL, 0, NULL, c};
	enum query_state st = query_process(&r->tq, r->zone, pkt, len, true);

	if (resolver_dispatch(r, &r->tq, st, pkt, len, &ref)) {
		resolver_count(r, r->tq.out);
		tcp_send(c, r->tq.out, r->tq.outlen);
	}
}

/* A query came: the idle clock starts again, and C is the most recently used. */
static void tcp_touch(struct tconn *c)
{
	struct resolver *r = c->r;

	evtimer_add(c->idle, &r->tcp_idle_tv);
	TAILQ_REMOVE(&r->conns, c, link);
	TAILQ_INSERT_TAIL(&r->conns, c, link);
}

/* Take every complete frame; -1 when the connection was closed. */
static int tcp_frames(struct tconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t pre[2];
	size_t len;

	while (evbuffer_get_length(in) >= 2) {
		evbuffer_copyout(in, pre, 2);
		len = (size_t)pre[0] << 8 | pre[1];
		if (len < 12) { /* no header to answer: the stream cannot be trusted */
			c->r->stats.dropped++;
			tcp_close(c);
			return -1;
		}
		if (evbuffer_get_length(in) < len + 2)
			break;
		evbuffer_drain(in, 2);
		evbuffer_remove(in, c->r->tin, len);
		tcp_query(c, c->r->tin, len);
		tcp_touch(c);
		if (evbuffer_get_length(out) > RESOLVER_TCP_OUT_HIWAT) {
			c->stalled = true;
			bufferevent_disable(c->bev, EV_READ);
			break;
		}
	}
	return 0;
}

static void tcp_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	tcp_frames(arg);
}

static void tcp_write(struct bufferevent *bev, void *arg)
{
	struct tconn *c = arg;

	if (c->stalled) {
		c->stalled = false;
		bufferevent_enable(bev, EV_READ);
		if (tcp_frames(c) < 0)
			return;
	}
	tcp_maybe_close(c);
}

static void tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct tconn *c = arg;

	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING)) {
		/* Half-closed: answer what was asked, then close. */
		c->eof = true;
		bufferevent_disable(bev, EV_READ);
		tcp_maybe_close(c);
		return;
	}
	tcp_close(c); /* an error, or the client stopped reading (write timeout) */
}

static void tcp_idle(evutil_socket_t fd, short what, void *arg)
{
	struct tconn *c = arg;

	(void)fd, (void)what;
	if (c->nwait) /* not idle: an answer is on its way */
		return;
	log_debug("dns: closing an idle tcp connection");
	tcp_close(c);
}

/*
 * Room for one more connection from SA: when SA holds per_client, one of
 * its own gives way; when there are max, one of anyone's (tcp_peer.c says
 * which). -1 when none can: every one has an answer pending. A loop, as a
 * reload may have lowered the limits below what is open.
 */
static int tcp_make_room(struct resolver *r, const struct sockaddr *sa)
{
	struct tconn *v;
	unsigned n;

	for (;;) {
		n = tcp_peer_count(r, sa);
		if (n < r->tcp_per_client && r->nconns < r->tcp_max)
			return 0;
		v = tcp_peer_victim(r, n >= r->tcp_per_client ? sa : NULL);
		if (!v)
			return -1;
		log_debug("dns: tcp: closing an idle connection to make room");
		r->stats.tcp_evicted++;
		tcp_close(v);
	}
}

static void tcp_accept(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa,
                       int salen, void *arg)
{
	struct listener *l = arg;
	struct resolver *r = l->r;
	struct tconn *c = NULL;

	(void)el, (void)salen;
	if (tcp_make_room(r, sa) < 0) {
		r->stats.tcp_refused++;
		goto fail;
	}
	if (!(c = calloc(1, sizeof(*c))))
		goto fail;
	if (!(c->peer = tcp_peer_get(r, sa))) {
		free(c);
		goto fail;
	}
	c->r = r;
	c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->idle = evtimer_new(r->base, tcp_idle, c);
	if (!c->bev || !c->idle) {
		if (c->bev)
			fd = -1; /* closed with the bufferevent */
		goto fail_free;
	}
	bufferevent_setcb(c->bev, tcp_read, tcp_write, tcp_event, c);
	bufferevent_set_timeouts(c->bev, NULL, &r->tcp_idle_tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	evtimer_add(c->idle, &r->tcp_idle_tv);
	TAILQ_INSERT_TAIL(&r->conns, c, link);
	r->nconns++;
	return;
fail_free:
	tcp_peer_put(c->peer);
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->idle)
		event_free(c->idle);
	free(c);
fail:
	r->stats.dropped++;
	if (fd >= 0)
		close(fd);
}

static int tcp_socket(const struct conf_addr *a)
{
	int fd = resolver_socket(a, SOCK_STREAM), one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int tcp_open(struct listener *l)
{
	int fd = tcp_socket(&l->addr);

	if (fd < 0) {
		log_warn("dns: cannot listen on tcp %s", l->addr.text);
		return -1;
	}
	l->tl = evconnlistener_new(l->r->base, tcp_accept, l,
	                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, TCP_BACKLOG, fd);
	if (!l->tl) {
		log_warn("dns: cannot listen on tcp %s", l->addr.text);
		close(fd);
		return -1;
	}
	return 0;
}

void tcp_close_listener(struct listener *l)
{
	if (l->tl)
		evconnlistener_free(l->tl);
	l->tl = NULL;
}

void tcp_free_all(struct resolver *r)
{
	struct tconn *c;

	while ((c = TAILQ_FIRST(&r->conns)))
		tcp_close(c);
}
