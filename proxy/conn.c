/*
 * A client connection of the proxy: accepted, held while its guest wakes
 * (bounded in count, bytes and time), connected to where the guest serves,
 * connected again when QEMU's hostfwd closes on it early, and relayed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "internal.h"
#include "log.h"

static void conn_connect(struct pxconn *c);

static void timer_in(struct event *ev, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static void unhold(struct pxconn *c)
{
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->held)
		quiet_count_held(c, -1);
	c->held = false;
	launcher_cancel(c->waiter);
	c->waiter = NULL;
}

void pxconn_free(struct pxconn *c)
{
	struct pxsvc *svc = c->svc;

	quiet_busy(c, false);
	unhold(c);
	pump_free_all(c);
	if (c->open)
		quiet_count_open(c, -1);
	if (c->cl != NULL)
		bufferevent_free(c->cl);
	if (c->up != NULL)
		bufferevent_free(c->up);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->replay != NULL)
		evbuffer_free(c->replay);
	if (c->http != NULL)
		front_free(c);
	TAILQ_REMOVE(&svc->conns, c, entry);
	free(c);
	pxsvc_unref(svc);
}

static void set_linger0(int fd)
{
	struct linger lg = {1, 0};

	if (fd != -1)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void pxconn_reset(struct pxconn *c)
{
	if (c->cl != NULL)
		set_linger0(bufferevent_getfd(c->cl));
	pxconn_free(c);
}

void pxconn_upstream_failed(struct pxconn *c, const char *why)
{
	/* A client reset is what it sees: say why here. */
	log_warnx("proxy: %s: no connection to the guest (%s); client reset", c->svc->name, why);
	pxconn_reset(c);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pxconn_activity(struct pxconn *c, size_t bytes)
{
	int64_t now = now_us();

	c->svc->p->st.bytes += bytes;
	if (now - c->activity_us < RELAY_ACTIVITY_US || c->inst == NULL || c->quiet)
		return;
	c->activity_us = now;
	launcher_activity(c->inst);
}

/*
 * C will not be served (its guest did not come up, a limit, the hold
 * timeout): reset, as a guest that is not there would; a front's HTTP
 * client is answered STATUS instead, which it can show, and so is one on
 * a port with an unavailable answer (unavail.c).
 */
static void conn_refuse(struct pxconn *c, int status)
{
	if (c->http == NULL && !unavail_has(c)) {
		pxconn_reset(c);
		return;
	}
	unhold(c);
	if (c->http != NULL)
		front_refuse(c, status);
	else
		unavail_answer(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pxconn *c = arg;

	(void)fd;
	(void)what;
	if (c->http != NULL && front_timer(c))
		return;
	switch (c->state) {
	case PXC_HELD:
		log_debug("proxy: %s: held past hold_timeout, reset", c->svc->name);
		c->svc->p->st.timed_out++;
		conn_refuse(c, 504);
		break;
	case PXC_BACKOFF:
		conn_connect(c);
		break;
	default:
		/* Flushing the last bytes to a side that does not read them. */
		if (c->closing)
			pxconn_free(c);
		break;
	}
}

static void woken_cb(struct instance *inst, bool ok, void *arg)
{
	struct pxconn *c = arg;

	(void)inst;
	c->waiter = NULL;
	if (!ok) {
		log_debug("proxy: %s: the guest did not come up, reset", c->svc->name);
		c->svc->p->st.failed++;
		conn_refuse(c, 503);
		return;
	}
	conn_connect(c);
}

void pxconn_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A socket to the guest; marked past the SYN hold in bridge mode. */
static int upstream_socket(const struct pxconn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int mark = LAUNCHER_FWMARK;

	if (fd == -1)
		return -1;
	if (c->svc->p->mode == CONF_NET_BRIDGE)
		setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	pxconn_nodelay(fd);
	return fd;
}

/*
 * Connect FD to SA: 1 when connected already, 0 when under way, -1 on
 * failure. To QEMU's hostfwd or a process on loopback the handshake is done
 * within connect(2): poll says so, and the relay starts a loop turn sooner.
 */
static int upstream_connect(int fd, const struct sockaddr_in *sa)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};

	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 1;
	if (errno != EINPROGRESS)
		return -1;
	/* Writable and no error or hang-up (which would show in revents): connected. */
	if (poll(&pfd, 1, 0) != 1 || pfd.revents != POLLOUT)
		return 0; /* an error shows in the bufferevent's event callback */
	return 1;
}

static void conn_connect(struct pxconn *c)
{
	struct timeval tv = {PXCONN_CONNECT_MS / 1000, 0};
	struct sockaddr_in sa;
	int fd, rc;

	unhold(c);
	if (c->inst == NULL || launcher_upstream(c->inst, c->port, &sa) == -1) {
		log_warnx("proxy: %s: nowhere to connect port %u to", c->svc->name, c->port);
		pxconn_reset(c);
		return;
	}
	if ((fd = upstream_socket(c)) == -1 ||
	    (c->up = bufferevent_socket_new(c->svc->p->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warn("proxy: %s: upstream", c->svc->name);
		if (fd != -1)
			close(fd);
		pxconn_reset(c);
		return;
	}
	c->state = PXC_CONNECTING;
	c->attempts++;
	relay_setcbs(c);
	if ((rc = upstream_connect(fd, &sa)) == 1) {
		relay_start(c);
		return;
	}
	bufferevent_set_timeouts(c->up, NULL, &tv);
	if (rc == -1 || bufferevent_socket_connect(c->up, NULL, 0) == -1) {
		if (pxconn_can_retry(c))
			pxconn_retry(c);
		else
			pxconn_upstream_failed(c, strerror(errno));
	}
}

/*
 * Whether the guest may not listen yet although ready: QEMU's hostfwd.
 * (WAKING: it is not ready yet either.)
 */
static bool guest_fresh(const struct pxconn *c, bool waking)
{
	struct instance_info info;

	if (c->inst == NULL || c->svc->p->mode != CONF_NET_USER)
		return false;
	launcher_info(c->inst, &info);
	return (info.state == INST_READY && info.uptime_ms < PXCONN_FRESH_MS) ||
	       (waking && info.state != INST_READY);
}

bool pxconn_can_retry(const struct pxconn *c)
{
	/* A client that sent nothing and left: the upstream's close answers ours. */
	if (c->replay == NULL || (c->cl_eof && evbuffer_get_length(c->replay) == 0))
		return false;
	return c->attempts <= PXCONN_RETRIES && guest_fresh(c, false);
}

void pxconn_retry(struct pxconn *c)
{
	log_debug("proxy: %s: upstream closed early, connecting again", c->svc->name);
	pump_free_all(c); /* none: no splicing while there is a replay */
	if (c->up != NULL)
		bufferevent_free(c->up);
	c->up = NULL;
	c->up_eof = c->up_shut = c->up_spoke = false;
	c->cl_throttled = false;
	c->svc->p->st.retried++;
	c->state = PXC_BACKOFF;
	relay_hold_client(c);
	timer_in(c->timer, PXCONN_RETRY_MS << (c->attempts - 1));
}

/* Hold C until its guest is ready. */
static void conn_hold(struct pxconn *c)
{
	struct pxsvc *svc = c->svc;
	int rc;

	proxy_conn_set_inst(c, proxy_pick(c));
	if (c->inst == NULL) {
		conn_refuse(c, 503);
		return;
	}
	/* Replaying is only ever needed behind QEMU's hostfwd, just after a boot. */
	if (c->replay == NULL && guest_fresh(c, true))
		c->replay = evbuffer_new();
	rc = (c->quiet ? launcher_wake_quiet : launcher_wake_from)(
	    c->inst, (struct sockaddr *)&c->peer, woken_cb, c, &c->waiter);
	if (rc == 1) {
		conn_connect(c); /* ready: straight through, whatever is held */
		return;
	}
	if (rc == -1) {
		svc->p->st.failed++;
		conn_refuse(c, 503);
		return;
	}
	if (proxy_held_full(svc->p, svc)) {
		log_debug("proxy: %s: held-connection limit reached, reset", svc->name);
		svc->p->st.refused++;
		conn_refuse(c, 503); /* cancels the wait */
		return;
	}
	c->held = true;
	quiet_count_held(c, 1);
	relay_hold_client(c);
	timer_in(c->timer, svc->p->hold_timeout_ms);
}

void pxconn_accept(struct pxsvc *svc, uint16_t port, int fd, const struct sockaddr *peer,
                   int peerlen, struct in_addr dst)
{
	struct pxconn *c;

	svc->p->st.accepted++;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		set_linger0(fd);
		close(fd);
		return;
	}
	c->svc = svc;
	c->port = port;
	c->dst = dst;
	if (peer != NULL && peerlen > 0 && (size_t)peerlen <= sizeof(c->peer))
		memcpy(&c->peer, peer, (size_t)peerlen);
	c->state = PXC_HELD;
	svc->refs++;
	TAILQ_INSERT_TAIL(&svc->conns, c, entry);
	/* TCP_NODELAY came from the listening socket (Linux copies it on accept). */
	c->cl = bufferevent_socket_new(svc->p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(svc->p->base, timer_cb, c);
	if (c->cl == NULL || c->timer == NULL) {
		log_warn("proxy: %s: connection", svc->name);
		if (c->cl == NULL)
			close(fd);
		pxconn_reset(c);
		return;
	}
	c->quiet = quiet_client(svc, &c->peer);
	/* A front routes by path; a service with paths in idle_ignore reads them too. */
	if (svc->nroutes > 0 || quiet_http(svc)) {
		front_start(c);
		return;
	}
	conn_hold(c);
}

void pxconn_drop_upstream(struct pxconn *c)
{
	pump_free_all(c);
	if (c->up != NULL)
		bufferevent_free(c->up);
	c->up = NULL;
	if (c->open)
		quiet_count_open(c, -1);
	c->open = false;
	c->up_eof = c->up_shut = c->up_spoke = false;
	c->cl_throttled = c->up_throttled = false;
	memset(c->moved, 0, sizeof(c->moved));
	memset(c->pump_want, 0, sizeof(c->pump_want));
	c->attempts = 0;
	if (c->replay != NULL)
		evbuffer_free(c->replay);
	c->replay = NULL;
}

void pxconn_route(struct pxconn *c, struct pxsvc *to, uint16_t port)
{
	struct pxsvc *from = c->svc;

	pxconn_drop_upstream(c);
	if (c->timer != NULL)
		evtimer_del(c->timer);
	TAILQ_REMOVE(&from->conns, c, entry);
	to->refs++;
	TAILQ_INSERT_TAIL(&to->conns, c, entry);
	c->svc = to;
	c->port = port;
	c->state = PXC_HELD;
	pxsvc_unref(from);
	conn_hold(c);
}
