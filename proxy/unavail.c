/*
 * An answer instead of a reset: a held client that will not be served (its
 * guest did not come up, no room, a hold limit, hold_timeout) on a port
 * whose service has `unavailable` gets that HTTP answer (503 and
 * Retry-After by default), which browsers and clients understand, where
 * another port gets a reset. Each port's answer is made once, at load.
 * The connection is closed as a front closes its error answers: the write
 * side shut once the answer is out, and what the client still sends read
 * and dropped for a while, since closing with unread bytes would send a
 * reset that can destroy the answer before the client reads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "internal.h"
#include "log.h"
#include "unavail.h"

/* What the client still sends after the answer is read and dropped this long. */
#define UNAVAIL_LINGER_MS 2000

static const char *unavail_reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {
	    {400, "Bad Request"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {408, "Request Timeout"},
	    {410, "Gone"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	    {507, "Insufficient Storage"},
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return status < 500 ? "Client Error" : "Server Error";
}

char *unavail_render(const struct conf_unavailable *u, size_t *len)
{
	char retry[48] = "";
	const char *body = u->body != NULL ? u->body : "";
	char *out = NULL;
	int n;

	if (u->retry_after_ms > 0)
		snprintf(retry, sizeof(retry), "Retry-After: %llu\r\n",
		         (unsigned long long)((u->retry_after_ms + 999) / 1000));
	n = asprintf(&out,
	             "HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
	             u->status, unavail_reason(u->status), retry,
	             u->content_type != NULL ? u->content_type : "text/plain", strlen(body), body);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return out;
}

void unavail_clear(struct pxsvc *svc)
{
	for (size_t i = 0; i < CONF_MAX_PORTS; i++) {
		free(svc->answer[i]);
		svc->answer[i] = NULL;
		svc->answer_len[i] = 0;
	}
}

int unavail_set(struct pxsvc *svc, const struct conf_service *cs)
{
	char *next[CONF_MAX_PORTS] = {0};
	size_t len[CONF_MAX_PORTS] = {0};
	const struct conf_unavailable *u;

	for (size_t i = 0; i < cs->nports; i++) {
		if ((u = conf_unavailable_on(cs, cs->ports[i])) == NULL)
			continue;
		if ((next[i] = unavail_render(u, &len[i])) == NULL)
			goto fail;
	}
	unavail_clear(svc);
	memcpy(svc->answer, next, sizeof(next));
	memcpy(svc->answer_len, len, sizeof(len));
	return 0;
fail:
	log_warn("proxy: %s: unavailable answer", cs->name);
	for (size_t i = 0; i < CONF_MAX_PORTS; i++)
		free(next[i]);
	return -1;
}

/* C's port's answer, NULL when it gets a reset. */
static const char *unavail_for(const struct pxconn *c, size_t *len)
{
	const struct pxsvc *svc = c->svc;

	for (size_t i = 0; i < svc->nports; i++)
		if (svc->ports[i] == c->port && svc->answer[i] != NULL) {
			*len = svc->answer_len[i];
			return svc->answer[i];
		}
	return NULL;
}

bool unavail_has(const struct pxconn *c)
{
	size_t len;

	return unavail_for(c, &len) != NULL;
}

static void unavail_readcb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void unavail_eventcb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pxconn_free(arg); /* the client has left (or failed): nothing more to say */
}

/* The answer is out: say so, and read what the client still sends until it leaves. */
static void unavail_writecb(struct bufferevent *bev, void *arg)
{
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	bufferevent_setcb(bev, unavail_readcb, NULL, unavail_eventcb, arg);
}

void unavail_answer(struct pxconn *c)
{
	struct timeval tv = {UNAVAIL_LINGER_MS / 1000, (UNAVAIL_LINGER_MS % 1000) * 1000};
	size_t len = 0;
	const char *answer = unavail_for(c, &len);

	if (answer == NULL) {
		pxconn_reset(c);
		return;
	}
	log_debug("proxy: %s: port %u unavailable, answered instead of a reset", c->svc->name,
	          c->port);
	c->svc->p->st.answered++;
	pxconn_drop_upstream(c);
	c->state = PXC_ANSWER;
	c->closing = true; /* the timer frees it, if the client does not leave first */
	unavail_readcb(c->cl, c);
	bufferevent_setcb(c->cl, unavail_readcb, unavail_writecb, unavail_eventcb, c);
	bufferevent_setwatermark(c->cl, EV_READ, 0, 0);
	bufferevent_enable(c->cl, EV_READ | EV_WRITE);
	if (bufferevent_write(c->cl, answer, len) == -1) {
		pxconn_reset(c);
		return;
	}
	evtimer_add(c->timer, &tv);
}
