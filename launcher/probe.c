/*
 * Readiness probes, all on the event loop: tcp (a connect is accepted),
 * http:/path (a 2xx answer to GET), console:REGEX (a console line matches),
 * delay:DURATION. Until ready the probe is the only traffic to the guest.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "backend.h"
#include "core.h"
#include "log.h"

#define PROBE_RETRY_MS 5       /* between connect attempts */
#define PROBE_ATTEMPT_MS 20    /* an unanswered SYN is given up after this */
#define PROBE_ATTEMPT_MAX 5    /* ... doubled after each, up to 20 << 5 = 640 ms */
#define PROBE_HTTP_RETRY_MS 20 /* after an answer that was not 2xx */
#define PROBE_HTTP_READ_MS 1000

struct probe {
	struct instance *inst;
	enum conf_ready kind;
	struct event *timer; /* retry, or the delay */
	struct event *io;
	int fd;
	struct sockaddr_in sa;
	regex_t re;
	bool has_re;
	char req[512];
	size_t reqlen;
	char resp[256];
	size_t resplen;
	bool connecting;   /* a SYN is out, unanswered */
	bool asking;       /* an HTTP request is out, unanswered */
	unsigned timeouts; /* SYNs given up: a guest that slow gets longer */
};

static void probe_attempt(struct probe *p);

static void timer_in(struct event *ev, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static void probe_close(struct probe *p)
{
	p->asking = false;
	if (p->io != NULL) {
		event_free(p->io);
		p->io = NULL;
	}
	if (p->fd != -1) {
		close(p->fd);
		p->fd = -1;
	}
}

/* Give up on this attempt and try again after MS. */
static void probe_retry(struct probe *p, uint64_t ms)
{
	probe_close(p);
	timer_in(p->timer, ms);
}

static void probe_ready(struct probe *p)
{
	probe_close(p);
	launcher_inst_ready(p->inst); /* frees P */
}

/* "HTTP/1.x 2xx": ready. */
static bool http_status_ok(const char *s, size_t len)
{
	return len >= 12 && strncmp(s, "HTTP/1.", 7) == 0 && s[8] == ' ' && s[9] == '2';
}

static void http_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		probe_retry(p, 0);
		return;
	}
	n = read(fd, p->resp + p->resplen, sizeof(p->resp) - 1 - p->resplen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		p->resplen += (size_t)n;
	if (p->resplen >= 12 || n <= 0) {
		if (http_status_ok(p->resp, p->resplen)) {
			probe_ready(p);
			return;
		}
		log_debug("%s: probe: http answer %.12s", p->inst->svc->name, p->resp);
		probe_retry(p, PROBE_HTTP_RETRY_MS);
	}
}

static void http_send(struct probe *p)
{
	struct timeval tv = {PROBE_HTTP_READ_MS / 1000, 0};

	if (send(p->fd, p->req, p->reqlen, MSG_NOSIGNAL) != (ssize_t)p->reqlen) {
		probe_retry(p, PROBE_RETRY_MS);
		return;
	}
	p->resplen = 0;
	if ((p->io = event_new(launcher_inst_base(p->inst), p->fd, EV_READ | EV_PERSIST,
	                       http_read_cb, p)) == NULL) {
		probe_retry(p, PROBE_RETRY_MS);
		return;
	}
	event_add(p->io, &tv);
	p->asking = true;
}

static void probe_connected(struct probe *p)
{
	if (p->kind == CONF_READY_TCP) {
		probe_ready(p);
		return;
	}
	if (p->io != NULL) {
		event_free(p->io);
		p->io = NULL;
	}
	http_send(p);
}

static void connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	p->connecting = false;
	if (what & EV_TIMEOUT) {
		p->timeouts++;
		probe_retry(p, 0); /* no answer: a fresh SYN, not a retransmit in 1 s */
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
		probe_retry(p, PROBE_RETRY_MS);
		return;
	}
	probe_connected(p);
}

static void probe_attempt(struct probe *p)
{
	/* A guest starved of CPU (hundreds booting at once) may answer a SYN
	 * later than the first attempts wait: never give up on every answer. */
	unsigned ms = PROBE_ATTEMPT_MS
	              << (p->timeouts < PROBE_ATTEMPT_MAX ? p->timeouts : PROBE_ATTEMPT_MAX);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd == -1) {
		log_warn("%s: probe socket", p->inst->svc->name);
		probe_retry(p, 100);
		return;
	}
	if (p->inst->net_mode == CONF_NET_BRIDGE) {
		/* Past the SYN hold, which queues SYNs to guests that are not ready. */
		int mark = LAUNCHER_FWMARK;

		setsockopt(p->fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	}
	if (connect(p->fd, (struct sockaddr *)&p->sa, sizeof(p->sa)) == 0) {
		probe_connected(p);
		return;
	}
	if (errno != EINPROGRESS) {
		probe_retry(p, PROBE_RETRY_MS);
		return;
	}
	if ((p->io = event_new(launcher_inst_base(p->inst), p->fd, EV_WRITE, connect_cb, p)) ==
	        NULL ||
	    event_add(p->io, &tv) == -1) {
		probe_retry(p, PROBE_RETRY_MS);
		return;
	}
	p->connecting = true;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;

	(void)fd;
	(void)what;
	if (p->kind == CONF_READY_DELAY)
		probe_ready(p);
	else
		probe_attempt(p);
}

/* A SYN out now may have been lost: try again at once. 1 when it did. */
static int probe_retry_now(struct probe *p)
{
	if (!p->connecting)
		return 0;
	p->connecting = false;
	probe_close(p);
	evtimer_del(p->timer);
	probe_attempt(p);
	return 1;
}

void probe_kick(struct probe *p)
{
	/* User networking accepts for the guest: a request made while it was
	 * not yet running waits on QEMU's retransmit (about 1 s). Ask again. */
	if (p->asking && p->resplen == 0 && p->inst->net_mode == CONF_NET_USER) {
		probe_close(p);
		evtimer_del(p->timer);
		probe_attempt(p);
		return;
	}
	probe_retry_now(p);
}

void probe_console_line(struct probe *p, const char *line, bool complete)
{
	/* The guest spoke, so it is likely listening now: a SYN it lost while its
	 * NIC came up would otherwise hold readiness back a whole attempt. A
	 * clone too (its line is RESEEDED): without this second SYN, restored
	 * hello guests under nested KVM were seen to answer the first and then
	 * take no NIC interrupt until a timer 300 ms on, in half the runs. */
	if (complete && probe_retry_now(p))
		return;
	/* A partial line must not satisfy "$". */
	if (p->has_re && regexec(&p->re, line, 0, NULL, complete ? 0 : REG_NOTEOL) == 0) {
		log_debug("%s: probe: console matched \"%s\"", p->inst->svc->name, line);
		probe_ready(p);
	}
}

/* Set up the connect target and, for http, the request. */
static int probe_net_init(struct probe *p)
{
	const struct conf_service *svc = p->inst->svc;
	const char *path = svc->ready_arg ? svc->ready_arg : "/";
	int n;

	memset(&p->sa, 0, sizeof(p->sa));
	if (p->inst->ops->probe_target != NULL) {
		if (p->inst->ops->probe_target(p->inst, &p->sa) == -1)
			return -1;
	} else {
		if (svc->nports == 0) {
			log_warnx("%s: a %s probe needs a port", svc->name,
			          p->kind == CONF_READY_TCP ? "tcp" : "http");
			return -1;
		}
		p->sa.sin_family = AF_INET;
		p->sa.sin_addr = p->inst->addr; /* on its host, when it has one */
		p->sa.sin_port = htons(svc->ports[0]);
	}
	n = snprintf(p->req, sizeof(p->req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path,
	             svc->name);
	if (n < 0 || (size_t)n >= sizeof(p->req)) {
		log_warnx("%s: http probe path too long", svc->name);
		return -1;
	}
	p->reqlen = (size_t)n;
	return 0;
}

static int probe_console_init(struct probe *p)
{
	const char *re = p->inst->svc->ready_arg ? p->inst->svc->ready_arg : "";
	char err[128];
	int rc;

	if ((rc = regcomp(&p->re, re, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, &p->re, err, sizeof(err));
		log_warnx("%s: ready console regex: %s", p->inst->svc->name, err);
		return -1;
	}
	p->has_re = true;
	return 0;
}

struct probe *probe_start(struct instance *inst)
{
	struct probe *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->inst = inst;
	p->fd = -1;
	p->kind = inst->svc->ready;
	if ((p->timer = evtimer_new(launcher_inst_base(inst), timer_cb, p)) == NULL)
		goto fail;
	switch (p->kind) {
	case CONF_READY_TCP:
	case CONF_READY_HTTP:
		if (probe_net_init(p) == -1)
			goto fail;
		timer_in(p->timer, 0);
		break;
	case CONF_READY_CONSOLE:
		if (probe_console_init(p) == -1)
			goto fail;
		break;
	case CONF_READY_DELAY:
		timer_in(p->timer, inst->svc->ready_delay_ms);
		break;
	}
	return p;
fail:
	probe_free(p);
	return NULL;
}

void probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	probe_close(p);
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->has_re)
		regfree(&p->re);
	free(p);
}
