/*
 * Out-of-zone queries relayed to dns.forward over UDP: the query goes out
 * as received with a fresh random ID; the reply comes back with the
 * client's ID, when its question matches. No reply in
 * RESOLVER_FWD_TIMEOUT_MS: SERVFAIL. A truncated reply for a client that
 * asked over TCP is asked again over TCP (forward_tcp.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "forward.h"
#include "log.h"

#define FWD_SWEEP_MS 100
#define FWD_READS 64
#define RCODE_SERVFAIL 2

uint64_t fwd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fwd_release(struct resolver *r, struct fwd *s)
{
	struct fwd_state *f = r->fwd;

	f->idmap[s->up_id] = 0;
	s->used = false;
	fwd_tcp_stop(s);
	free(s->query);
	s->query = NULL;
	if (--f->nused == 0)
		evtimer_del(f->timer);
	if (s->c.conn)
		tcp_done_wait(s->c.conn);
}

void fwd_servfail(struct resolver *r, struct fwd *s)
{
	struct query *q = &r->lq;
	struct client c = s->c;

	q->k = s->k;
	query_error(q, RCODE_SERVFAIL);
	fwd_release(r, s);
	resolver_send(r, &c, q->out, q->outlen);
}

static void fwd_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	uint64_t now = fwd_now();
	size_t i;

	(void)fd, (void)what;
	for (i = 0; i < RESOLVER_FWD_MAX && r->fwd->nused; i++)
		if (r->fwd->slots[i].used && r->fwd->slots[i].deadline <= now)
			fwd_servfail(r, &r->fwd->slots[i]);
}

static inline uint8_t fwd_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* True when the reply's question is the one asked (names ignore case). */
bool fwd_matches(const struct fwd *s, const uint8_t *p, size_t len)
{
	size_t n = s->k.qnamelen, i;

	if (len < 12 + n + 4 || (p[4] << 8 | p[5]) != 1)
		return false;
	for (i = 0; i < n; i++)
		if (fwd_lower(p[12 + i]) != fwd_lower(s->k.qname[i]))
			return false;
	return (p[12 + n] << 8 | p[13 + n]) == s->k.qtype &&
	       (p[14 + n] << 8 | p[15 + n]) == s->k.qclass;
}

static void fwd_reply(struct resolver *r, size_t len)
{
	struct fwd_state *f = r->fwd;
	uint16_t id = (uint16_t)(f->buf[0] << 8 | f->buf[1]);
	struct fwd *s;

	if (len < 12 || !(f->buf[2] & 0x80) || !f->idmap[id])
		return;
	s = &f->slots[f->idmap[id] - 1];
	if (s->bev || !fwd_matches(s, f->buf, len))
		return;
	/* Truncated, and the client can take more over TCP: ask again over TCP. */
	if ((f->buf[2] & 0x02) && s->query && fwd_tcp_start(r, s) == 0)
		return;
	fwd_deliver(r, s, f->buf, len);
}

/*
 * REPLY goes to the client of S, with its ID back. A UDP client gets no more
 * than its query allows (the forwarder may not keep to it): beyond that,
 * the header and question with TC, and the client asks again over TCP.
 */
void fwd_deliver(struct resolver *r, struct fwd *s, uint8_t *reply, size_t len)
{
	struct client c = s->c;
	struct query *q = &r->lq;

	reply[0] = (uint8_t)(s->k.id >> 8);
	reply[1] = (uint8_t)s->k.id;
	if (!c.conn && len > query_limit(&s->k)) {
		q->k = s->k;
		query_tc(q, reply);
		reply = q->out;
		len = q->outlen;
	}
	fwd_release(r, s);
	resolver_send(r, &c, reply, len);
}

static void fwd_read(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	ssize_t n;
	int i;

	(void)what;
	for (i = 0; i < FWD_READS; i++) {
		n = recv(fd, r->fwd->buf, sizeof(r->fwd->buf), MSG_DONTWAIT);
		if (n < 0)
			break;
		fwd_reply(r, (size_t)n);
	}
}

int fwd_init(struct resolver *r)
{
	r->fwd = calloc(1, sizeof(*r->fwd));
	if (!r->fwd)
		return -1;
	r->fwd->fd = -1;
	for (size_t i = 0; i < RESOLVER_FWD_MAX; i++)
		r->fwd->slots[i].r = r;
	r->fwd->timer = event_new(r->base, -1, EV_PERSIST, fwd_sweep, r);
	return r->fwd->timer ? 0 : -1;
}

int fwd_open(struct resolver *r, const struct conf_addr *a)
{
	struct fwd_state *f = r->fwd;

	f->addr = *a;
	f->fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0 || connect(f->fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		log_warn("dns: cannot forward to %s", a->text);
		goto fail;
	}
	f->ev = event_new(r->base, f->fd, EV_READ | EV_PERSIST, fwd_read, r);
	if (!f->ev || event_add(f->ev, NULL) < 0)
		goto fail;
	f->open = true;
	return 0;
fail:
	fwd_close(r);
	return -1;
}

/* Close the socket; what is in flight gets SERVFAIL. */
void fwd_close(struct resolver *r)
{
	struct fwd_state *f = r->fwd;
	size_t i;

	for (i = 0; i < RESOLVER_FWD_MAX && f->nused; i++)
		if (f->slots[i].used)
			fwd_servfail(r, &f->slots[i]);
	if (f->ev)
		event_free(f->ev);
	f->ev = NULL;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->open = false;
}

bool fwd_same(const struct resolver *r, const struct zone *z)
{
	if (!r->fwd->open || !z->has_forward)
		return r->fwd->open == z->has_forward;
	return resolver_addr_equal(&r->fwd->addr, &z->forward);
}

static struct fwd *fwd_slot(struct fwd_state *f)
{
	size_t i;

	if (f->nused >= RESOLVER_FWD_MAX)
		return NULL;
	for (i = 0; i < RESOLVER_FWD_MAX; i++)
		if (!f->slots[i].used)
			return &f->slots[i];
	return NULL;
}

/* Relay PKT; 0 when it went out, -1 when the caller answers SERVFAIL. */
int fwd_query(struct resolver *r, const struct query *q, const uint8_t *pkt, size_t len,
              const struct client_ref *c)
{
	struct fwd_state *f = r->fwd;
	struct fwd *s;
	uint16_t id;

	if (!f->open || !(s = fwd_slot(f)) || len > sizeof(f->buf))
		return -1;
	do
		id = (uint16_t)arc4random_uniform(65536);
	while (f->idmap[id]);
	memcpy(f->buf, pkt, len);
	f->buf[0] = (uint8_t)(id >> 8);
	f->buf[1] = (uint8_t)id;
	if (send(f->fd, f->buf, len, 0) < 0) {
		log_debug("dns: forward to %s: %s", f->addr.text, strerror(errno));
		return -1;
	}
	s->used = true;
	s->up_id = id;
	s->deadline = fwd_now() + RESOLVER_FWD_TIMEOUT_MS;
	s->k = q->k;
	resolver_client_keep(&s->c, c);
	s->qlen = len;
	if (c->conn && (s->query = malloc(len))) /* cold path: out-of-zone over TCP */
		memcpy(s->query, f->buf, len);
	f->idmap[id] = (uint16_t)(s - f->slots + 1);
	if (f->nused++ == 0) {
		struct timeval tv = {0, FWD_SWEEP_MS * 1000};

		evtimer_add(f->timer, &tv);
	}
	if (s->c.conn)
		s->c.conn->nwait++;
	return 0;
}

/* The connection is gone: replies for it are dropped. */
void fwd_drop_conn(struct resolver *r, struct tconn *c)
{
	size_t i;

	for (i = 0; i < RESOLVER_FWD_MAX && r->fwd->nused; i++)
		if (r->fwd->slots[i].used && r->fwd->slots[i].c.conn == c) {
			fwd_release(r, &r->fwd->slots[i]);
		}
}

void fwd_free(struct resolver *r)
{
	if (!r->fwd)
		return;
	fwd_close(r);
	if (r->fwd->timer)
		event_free(r->fwd->timer);
	free(r->fwd);
	r->fwd = NULL;
}
