/*
 * A front: one address and port whose HTTP requests go to services by the
 * longest prefix of their path. A connection's request head is read (up to
 * FRONT_HEAD_MAX bytes, within hold_timeout), routed, and the connection
 * is held on the chosen service while it wakes (conn.c), then relayed with
 * the head replayed from the client's buffer. From then on each request and
 * its response are framed (proxy/http.c: Content-Length, chunked, until
 * close), one exchange at a time: the next request on a keep-alive
 * connection is routed on its own, to the same upstream when it names the
 * same service, else to a new connection to the other one. A malformed head
 * is answered 400, one too big 431, one too slow 408, a path no route takes
 * 404, a service that cannot be woken 503 (conn.c), one not ready at
 * hold_timeout 504; then the connection is closed (lingering, so that the
 * answer is not lost to a reset). A response 101 (Upgrade) turns it into a
 * plain tunnel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "internal.h"
#include "log.h"

struct pxhttp {
	struct pxconn *c;
	char *front;        /* the front's name: its routes are looked up per request */
	uint16_t port;      /* the front's port it came to */
	struct event *next; /* the next step, from a fresh event (not inside a relay) */
	char method[HTTP_METHOD_MAX];
	size_t head_left;           /* of the request's head, bytes not yet relayed */
	struct http_body req, resp; /* the request's body, the response's */
	bool in_exchange;           /* a request was routed; its response not yet over */
	bool req_done, resp_head;   /* the request relayed; the response's head seen */
	bool resp_done, resp_close; /* the response relayed; the upstream will close */
	bool req_close;             /* the client said it sends no more */
	bool tunnel;                /* after a 101: bytes as they come */
	bool broken;                /* framing failed mid-message: reset */
	bool head_armed, lingering; /* c->timer: a head's deadline, the lingering close */
	unsigned requests;
};

static void timer_in(struct event *ev, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 502:
		return "Bad Gateway";
	case 504:
		return "Gateway Timeout";
	default:
		return "Service Unavailable";
	}
}

static void linger_readcb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void linger_eventcb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pxconn_free(arg);
}

/* The answer is out: say so, and read what the client still sends until it leaves. */
static void reply_writecb(struct bufferevent *bev, void *arg)
{
	struct pxconn *c = arg;

	shutdown(bufferevent_getfd(bev), SHUT_WR);
	bufferevent_setcb(bev, linger_readcb, NULL, linger_eventcb, c);
}

/*
 * Answer STATUS and close. Closing with unread bytes would send a reset,
 * which can destroy the answer before the client reads it: the rest of the
 * request is read and dropped for FRONT_LINGER_MS first.
 */
static void front_reply(struct pxconn *c, int status)
{
	struct pxhttp *h = c->http;
	char buf[256];
	int n;

	log_debug("proxy: %s: answered %d", h->front, status);
	pxconn_drop_upstream(c);
	c->state = PXC_HEAD;
	h->lingering = true;
	h->head_armed = false;
	n = snprintf(buf, sizeof(buf),
	             "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n%d %s\n",
	             status, status_text(status), strlen(status_text(status)) + 5, status,
	             status_text(status));
	linger_readcb(c->cl, c);
	bufferevent_setcb(c->cl, linger_readcb, reply_writecb, linger_eventcb, c);
	bufferevent_setwatermark(c->cl, EV_READ, 0, 0);
	bufferevent_enable(c->cl, EV_READ | EV_WRITE);
	bufferevent_write(c->cl, buf, (size_t)n);
	timer_in(c->timer, FRONT_LINGER_MS);
}

void front_refuse(struct pxconn *c, int status)
{
	front_reply(c, status);
}

/* The port of TO that the front's PORT goes to: the same number, else its first. */
static uint16_t target_port(const struct pxsvc *to, uint16_t port)
{
	for (size_t i = 0; i < to->nports; i++)
		if (to->ports[i] == port)
			return port;
	return to->ports[0];
}

/* The service the request H (parsed from BUF) goes to, or the status to answer. */
static struct pxsvc *front_choose(struct pxconn *c, const char *buf, const struct http_head *hd,
                                  int *status)
{
	struct pxhttp *h = c->http;
	struct proxy *p = c->svc->p;
	struct pxsvc *front = proxy_svc_by_name(p, h->front), *to;
	int i;

	*status = 503;
	/* A service read for the paths of its idle_ignore: every request is its own. */
	if (front != NULL && front->nroutes == 0 && quiet_http(front))
		return front;
	if (front == NULL || front->nroutes == 0)
		return NULL; /* the front left the config */
	i = http_route(buf + hd->path_off, hd->path_len, (const char *const *)front->prefixes,
	               front->nroutes);
	if (i == -1) {
		*status = 404;
		return NULL;
	}
	to = proxy_svc_by_name(p, front->targets[i]);
	log_debug("proxy: %s: %s %.*s (Host %s) -> %s", h->front, hd->method, (int)hd->path_len,
	          buf + hd->path_off, hd->host[0] ? hd->host : "-", front->targets[i]);
	if (to == NULL || to->inst == NULL || to->nports == 0 || to->nroutes > 0)
		return NULL;
	return to;
}

/* A request H has been read: its framing, before any of it is relayed. */
static void exchange_start(struct pxhttp *h, const struct http_head *hd)
{
	snprintf(h->method, sizeof(h->method), "%s", hd->method);
	h->head_left = hd->len;
	http_body_init(&h->req, hd);
	h->in_exchange = true;
	h->req_done = h->resp_head = h->resp_done = h->resp_close = false;
	h->req_close = hd->close;
	h->requests++;
}

/* Route the request head in the client's input, or answer why not. */
static void front_head(struct pxconn *c)
{
	struct pxhttp *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->cl);
	size_t len = evbuffer_get_length(in), n = len < FRONT_HEAD_MAX ? len : FRONT_HEAD_MAX;
	const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
	struct http_head hd;
	struct pxsvc *to;
	int status;
	bool quiet;

	if (len == 0)
		return; /* between requests: nothing of the next yet */
	if (c->cl_shut) {
		pxconn_free(c); /* the upstream closed, and the client was told so */
		return;
	}
	switch (http_parse_request(buf, n, FRONT_HEAD_MAX, &hd)) {
	case HTTP_MORE:
		if (len > 0 && !h->head_armed) {
			h->head_armed = true; /* a partial head: it has hold_timeout to finish */
			timer_in(c->timer, c->svc->p->hold_timeout_ms);
		}
		return;
	case HTTP_BAD:
		front_reply(c, 400);
		return;
	case HTTP_TOO_BIG:
		front_reply(c, 431);
		return;
	case HTTP_DONE:
		break;
	}
	if ((to = front_choose(c, buf, &hd, &status)) == NULL) {
		front_reply(c, status);
		return;
	}
	h->head_armed = false;
	evtimer_del(c->timer);
	quiet = quiet_client(to, &c->peer) || quiet_path(to, buf + hd.path_off, hd.path_len);
	/* A health check while the guest sleeps: answered here, when the service says so. */
	if (quiet && (status = quiet_answer(to)) != 0) {
		front_reply(c, status);
		return;
	}
	exchange_start(h, &hd);
	quiet_busy(c, quiet); /* counted on the instance the request goes to */
	/* The same service, its connection still open both ways: go on there. */
	if (to == c->svc && c->state == PXC_RELAY && c->up != NULL && !c->up_eof && !c->up_shut &&
	    quiet == c->quiet) {
		relay_kick(c, c->cl);
		return;
	}
	/* Counted as it was, then as this request is. */
	pxconn_drop_upstream(c);
	c->quiet = quiet;
	pxconn_route(c, to, target_port(to, h->port));
}

/* Between two exchanges, or when the framing failed: from a fresh event. */
static void next_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pxconn *c = arg;
	struct pxhttp *h = c->http;

	(void)fd;
	(void)what;
	if (h->broken) {
		log_debug("proxy: %s: a message could not be framed, reset", h->front);
		pxconn_reset(c);
		return;
	}
	if (h->tunnel) {
		relay_kick(c, c->cl); /* what the client sent after its Upgrade request */
		return;
	}
	if (h->in_exchange || c->closing || h->lingering)
		return;
	/* A side said it will close: the upstream's close ends the client's too. */
	if (h->req_close || h->resp_close)
		return;
	front_head(c);
}

static void schedule(struct pxhttp *h)
{
	event_active(h->next, EV_TIMEOUT, 0);
}

/* The exchange is over when both its request and its response are relayed. */
static void check_done(struct pxhttp *h)
{
	if (h->req_done && h->resp_done && h->in_exchange) {
		h->in_exchange = false;
		quiet_busy(h->c, false);
		schedule(h);
	}
}

/*
 * Feed B the bytes of IN from SKIP to AVAIL, as many as belong to it: that
 * number, -1 when malformed. Read in place, not pulled up: a body is big.
 */
static ssize_t feed_body(struct http_body *b, struct evbuffer *in, size_t skip, size_t avail)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr ptr;
	size_t off = skip;
	ssize_t k;
	int nv;

	while (off < avail && !b->done) {
		if (evbuffer_ptr_set(in, &ptr, off, EVBUFFER_PTR_SET) == -1 ||
		    (nv = evbuffer_peek(in, (ssize_t)(avail - off), &ptr, v, 16)) <= 0)
			break;
		for (int i = 0; i < nv && off < avail && !b->done; i++) {
			size_t l = v[i].iov_len < avail - off ? v[i].iov_len : avail - off;

			if ((k = http_body_feed(b, v[i].iov_base, l)) == -1)
				return -1;
			off += (size_t)k;
			if ((size_t)k < l)
				return (ssize_t)(off - skip);
		}
	}
	return (ssize_t)(off - skip);
}

static void broken(struct pxhttp *h)
{
	h->broken = true;
	schedule(h);
}

/* The client's side: the rest of the request's head, then its body. */
static size_t take_request(struct pxhttp *h, struct evbuffer *in, size_t avail)
{
	size_t off = h->head_left < avail ? h->head_left : avail;
	ssize_t k;

	if (!h->in_exchange || h->req_done) {
		schedule(h); /* the next request's head, maybe */
		return 0;
	}
	h->head_left -= off;
	if (h->head_left == 0) {
		if ((k = feed_body(&h->req, in, off, avail)) == -1) {
			broken(h);
			return 0;
		}
		off += (size_t)k;
		h->req_done = h->req.done;
	}
	check_done(h);
	return off;
}

/* A response head at OFF of IN: 1 when taken (*OFF past it), 0 for more, -1 when bad. */
static int response_head(struct pxhttp *h, struct evbuffer *in, size_t avail, size_t *off)
{
	size_t n = avail - *off < FRONT_RESP_HEAD_MAX ? avail - *off : FRONT_RESP_HEAD_MAX;
	const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)(*off + n));
	struct http_head hd;

	switch (http_parse_response(buf + *off, n, FRONT_RESP_HEAD_MAX, h->method, &hd)) {
	case HTTP_MORE:
		return 0;
	case HTTP_DONE:
		break;
	default:
		return -1;
	}
	*off += hd.len;
	if (hd.upgrade) {
		h->tunnel = true;
		schedule(h);
		return 1;
	}
	if (hd.status < 200)
		return 1; /* 100 Continue and the like: the response follows */
	h->resp_head = true;
	h->resp_close = hd.close;
	http_body_init(&h->resp, &hd);
	return 1;
}

/* The upstream's side: the response's head (whole), then its body. */
static size_t take_response(struct pxhttp *h, struct evbuffer *in, size_t avail)
{
	size_t off = 0;
	ssize_t k;
	int rc;

	if (!h->in_exchange) {
		/* Nothing was asked: a server's parting words before it closes. Dropped. */
		log_debug("proxy: %s: %zu bytes from the upstream between requests, dropped",
		          h->front, avail);
		evbuffer_drain(in, avail);
		return 0;
	}
	if (h->resp_done) {
		broken(h); /* a second answer to one request */
		return 0;
	}
	while (off < avail && !h->resp_head && !h->tunnel)
		if ((rc = response_head(h, in, avail, &off)) <= 0) {
			if (rc == -1)
				broken(h);
			return rc == -1 ? 0 : off;
		}
	if (h->tunnel)
		return avail;
	if (h->resp_head) {
		if ((k = feed_body(&h->resp, in, off, avail)) == -1) {
			broken(h);
			return 0;
		}
		off += (size_t)k;
		h->resp_done = h->resp.done;
	}
	check_done(h);
	return off;
}

size_t front_take(struct pxconn *c, struct bufferevent *src, size_t avail)
{
	struct pxhttp *h = c->http;
	struct evbuffer *in = bufferevent_get_input(src);

	if (h->tunnel)
		return avail;
	if (h->broken)
		return 0;
	return src == c->cl ? take_request(h, in, avail) : take_response(h, in, avail);
}

static void head_readcb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	front_head(arg);
}

static void head_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pxconn *c = arg;

	(void)bev;
	(void)what;
	log_debug("proxy: %s: client left before its request's head was complete", c->http->front);
	pxconn_free(c);
}

bool front_timer(struct pxconn *c)
{
	struct pxhttp *h = c->http;

	if (h->lingering) {
		pxconn_free(c);
		return true;
	}
	if (!h->head_armed || c->closing || (c->state != PXC_HEAD && c->state != PXC_RELAY))
		return false;
	log_debug("proxy: %s: no complete request head within hold_timeout", h->front);
	c->svc->p->st.timed_out++;
	front_reply(c, 408);
	return true;
}

void front_start(struct pxconn *c)
{
	struct pxhttp *h = calloc(1, sizeof(*h));

	c->http = h;
	if (h == NULL || (h->front = strdup(c->svc->name)) == NULL ||
	    (h->next = event_new(c->svc->p->base, -1, 0, next_cb, c)) == NULL) {
		log_warn("proxy: %s: connection", c->svc->name);
		pxconn_reset(c);
		return;
	}
	h->c = c;
	h->port = c->port;
	c->state = PXC_HEAD;
	bufferevent_setcb(c->cl, head_readcb, NULL, head_eventcb, c);
	/* What waits in the client's input (the next request) is bounded. */
	bufferevent_setwatermark(c->cl, EV_READ, 0, c->svc->p->hold_buffer);
	bufferevent_enable(c->cl, EV_READ);
	/* A client that sends no complete head is answered 408 at hold_timeout. */
	h->head_armed = true;
	timer_in(c->timer, c->svc->p->hold_timeout_ms);
}

void front_free(struct pxconn *c)
{
	struct pxhttp *h = c->http;

	if (h->next != NULL)
		event_free(h->next);
	free(h->front);
	free(h);
	c->http = NULL;
}
