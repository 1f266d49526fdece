/*
 * The guest has a say: before an idle action, a service with idle_check =
 * "console:REGEX" is asked by its last console line (a match is yes), one
 * with "http:/PATH" is asked with a GET of PATH on its first port (where the
 * proxy would connect). 200 is yes, and the action is carried out at
 * once; any other answer, none within CHECK_TIMEOUT_MS, or no connection
 * at all is "not now", and it is asked again idle_check_interval later.
 * idle_max bounds it: idle that long, the action runs unasked
 * (policy_consent decides). One question at a time per instance.
 *
 * The question is beckon's own traffic, not the guest's use: each
 * connection's local port is kept (engine_inst.check_ports) so that
 * conntrack's entry for it is passed over (activity.c), and it ends with a
 * reset, which conntrack forgets in 10 s rather than TIME_WAIT's 120.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "engine_int.h"
#include "log.h"

#define CHECK_TIMEOUT_MS 5000
#define CHECK_LINE_MAX 256 /* of the status line */

struct check {
	TAILQ_ENTRY(check) entry;
	struct engine *e;
	char name[CONF_INSTANCE_NAME_MAX + 1]; /* looked up again at the answer: it may be gone */
	enum policy_action action;
	bool notice; /* idle_notice: telling, not asking */
	struct bufferevent *bev;
};

TAILQ_HEAD(check_list, check);

int check_init(struct engine *e)
{
	if ((e->checks = calloc(1, sizeof(*e->checks))) == NULL)
		return -1;
	TAILQ_INIT(e->checks);
	return 0;
}

static void check_free(struct check *k)
{
	struct linger lg = {1, 0};
	int fd = bufferevent_getfd(k->bev);

	/* A reset: conntrack keeps the entry 10 s (CLOSE), not 120 (TIME_WAIT). */
	if (fd != -1)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	bufferevent_free(k->bev);
	TAILQ_REMOVE(k->e->checks, k, entry);
	free(k);
}

void check_free_all(struct engine *e)
{
	if (e->checks == NULL)
		return;
	while (!TAILQ_EMPTY(e->checks))
		check_free(TAILQ_FIRST(e->checks));
	free(e->checks);
	e->checks = NULL;
}

bool check_own(const struct engine_inst *ei, int sport)
{
	if (sport <= 0)
		return false;
	for (size_t i = 0; i < CHECK_PORTS; i++)
		if (ei->check_ports[i] == (uint16_t)sport)
			return true;
	return false;
}

/* The guest of INST was told of ACTION (idle_notice) and answered STATUS (0: none in time). */
static void check_noticed(struct instance *inst, struct engine_inst *ei, enum policy_action action,
                          int status)
{
	struct policy_view v;

	ei->noticing = false;
	if (launcher_state(inst) != INST_READY)
		return;
	engine_view(inst, &v);
	if (policy_idle(&v, launcher_now_us()) != action) {
		log_info("%s: used again after the notice: no %s", launcher_service(inst)->name,
		         policy_action_name(action));
		return;
	}
	if (status == 0)
		log_info("%s: the guest was told, no answer in time", launcher_service(inst)->name);
	else
		log_info("%s: the guest was told (%d)", launcher_service(inst)->name, status);
	engine_act(inst, action, "idle");
}

/* The answer STATUS (0: none) from the guest of K's instance, if it is still there. */
static void check_answer(struct check *k, int status)
{
	struct instance *inst = launcher_find(k->e->l, k->name);
	struct engine_inst *ei = inst != NULL ? engine_inst(inst) : NULL;
	enum policy_action action = k->action;
	bool notice = k->notice;
	struct policy_view v;

	check_free(k);
	if (ei == NULL)
		return;
	if (notice) {
		check_noticed(inst, ei, action, status);
		return;
	}
	ei->asking = false;
	if (launcher_state(inst) != INST_READY)
		return;
	if (status != 200) {
		/* Once an idle stretch at info: a guest that declines often says so often. */
		if (ei->not_now_us <= launcher_activity_us(inst) ||
		    ei->not_now_us <= launcher_state_since_us(inst))
			log_info("%s: idle, but the guest says not now (%d)",
			         launcher_service(inst)->name, status);
		else
			log_debug("%s: the guest says not now (%d)", launcher_service(inst)->name,
			          status);
		ei->not_now_us = launcher_now_us();
		return;
	}
	/* Still idle? Used meanwhile, it is not asked for the same action. */
	engine_view(inst, &v);
	if (policy_idle(&v, launcher_now_us()) != action)
		return;
	log_info("%s: the guest agrees to %s", launcher_service(inst)->name,
	         policy_action_name(action));
	engine_act(inst, action, "idle");
}

/* "HTTP/1.x NNN ...": NNN; 0 when not such a line. */
static int check_status(const char *line)
{
	int major, minor, status;

	if (sscanf(line, "HTTP/%d.%d %3d", &major, &minor, &status) != 3 || status < 100 ||
	    status > 599)
		return 0;
	return status;
}

static void check_readcb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	int status;

	if ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) == NULL) {
		if (evbuffer_get_length(in) > CHECK_LINE_MAX)
			check_answer(arg, 0);
		return;
	}
	status = check_status(line);
	free(line);
	check_answer(arg, status);
}

static void check_eventcb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	check_answer(arg, 0); /* closed, failed or timed out before a status line */
}

/* Note the local port of FD among EI's questions. */
static void check_note_port(struct engine_inst *ei, int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) == -1 || sa.sin_family != AF_INET)
		return;
	ei->check_ports[ei->check_next++ % CHECK_PORTS] = ntohs(sa.sin_port);
}

/* A socket to the guest, past the SYN hold and the proxy's rules (LAUNCHER_FWMARK). */
static int check_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int mark = LAUNCHER_FWMARK;

	if (fd != -1)
		setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)); /* user mode: no rules */
	return fd;
}

/*
 * Ask INST's guest whether ACTION may go ahead (idle_check), or tell it
 * (NOTICE: idle_notice); the answer comes to check_answer.
 */
static int check_ask(struct engine *e, struct instance *inst, enum policy_action action,
                     bool notice)
{
	const struct conf_service *svc = launcher_service(inst);
	uint64_t ms = notice ? svc->idle_notice_timeout_ms : CHECK_TIMEOUT_MS;
	const char *path = notice ? svc->idle_notice : svc->idle_check;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	struct sockaddr_in sa;
	struct check *k;
	int fd = -1;

	if (svc->nports == 0 || launcher_upstream(inst, svc->ports[0], &sa) == -1)
		return -1;
	if ((k = calloc(1, sizeof(*k))) == NULL || (fd = check_socket()) == -1 ||
	    (k->bev = bufferevent_socket_new(e->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	k->e = e;
	k->action = action;
	k->notice = notice;
	snprintf(k->name, sizeof(k->name), "%s", svc->name);
	TAILQ_INSERT_TAIL(e->checks, k, entry);
	bufferevent_setcb(k->bev, check_readcb, NULL, check_eventcb, k);
	bufferevent_set_timeouts(k->bev, &tv, &tv);
	bufferevent_enable(k->bev, EV_READ);
	evbuffer_add_printf(bufferevent_get_output(k->bev),
	                    "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: beckon-idle-check\r\n"
	                    "Connection: close\r\n\r\n",
	                    path, svc->ndns > 0 && !svc->pattern ? svc->dns[0] : svc->name);
	if (bufferevent_socket_connect(k->bev, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		check_free(k);
		return -1;
	}
	check_note_port(engine_inst(inst), fd);
	if (notice)
		engine_inst(inst)->noticing = true;
	else
		engine_inst(inst)->asking = true;
	log_debug("%s: idle: %s the guest (GET %s)", svc->name, notice ? "telling" : "asking",
	          path);
	return 0;
fail:
	log_warn("%s: idle_check", svc->name);
	if (k != NULL && k->bev == NULL && fd != -1)
		close(fd);
	if (k != NULL && k->bev != NULL)
		bufferevent_free(k->bev);
	free(k);
	return -1;
}

/* What policy_consent says of INST (whose service has an idle_check) at NOW. */
static enum policy_consent check_decide(struct instance *inst, struct engine_inst *ei, int64_t now)
{
	const struct conf_service *svc = launcher_service(inst);
	struct policy_consent_view c;
	struct policy_view v;

	engine_view(inst, &v);
	c.idle_max_ms = svc->idle_max_ms;
	c.interval_ms = svc->idle_check_interval_ms;
	c.not_now_us = ei->not_now_us;
	c.asking = ei->asking;
	return policy_consent(&v, &c, now);
}

/* Whether SVC's guest has a say: idle_check by HTTP or by its console. */
static bool check_wanted(const struct conf_service *svc)
{
	return svc->idle_check != NULL || svc->idle_check_re != NULL;
}

/*
 * idle_check = "console:REGEX": the guest says yes by its last console
 * line, read at once. A "not now" is noted as an HTTP one is.
 */
static bool check_console(struct instance *inst, struct engine_inst *ei, int64_t now)
{
	const struct conf_service *svc = launcher_service(inst);
	const char *line = launcher_console_last(inst);
	regex_t re;
	bool yes;

	if (regcomp(&re, svc->idle_check_re, REG_EXTENDED | REG_NOSUB) != 0)
		return true; /* checked at load: cannot happen */
	yes = regexec(&re, line, 0, NULL, 0) == 0;
	regfree(&re);
	if (yes) {
		log_info("%s: the guest agrees (console: \"%s\")", svc->name, line);
		return true;
	}
	if (ei->not_now_us <= launcher_activity_us(inst) ||
	    ei->not_now_us <= launcher_state_since_us(inst))
		log_info("%s: idle, but the guest says not now (console: \"%s\")", svc->name, line);
	ei->not_now_us = now;
	return false;
}

bool check_waiting(struct instance *inst, int64_t now)
{
	struct engine_inst *ei = engine_inst(inst);

	return check_wanted(launcher_service(inst)) && ei != NULL &&
	       check_decide(inst, ei, now) == POLICY_CONSENT_WAIT;
}

bool check_consent(struct engine *e, struct instance *inst, enum policy_action action, int64_t now)
{
	const struct conf_service *svc = launcher_service(inst);
	struct engine_inst *ei = engine_inst(inst);

	if (!check_wanted(svc) || ei == NULL)
		return true;
	switch (check_decide(inst, ei, now)) {
	case POLICY_CONSENT_FORCE:
		log_info("%s: idle for idle_max, whatever the guest says", svc->name);
		return true;
	case POLICY_CONSENT_ASK:
		if (svc->idle_check_re != NULL)
			return check_console(inst, ei, now);
		/* No question could be put: as a "not now" (idle_max still bounds it). */
		if (check_ask(e, inst, action, false) == -1)
			ei->not_now_us = now;
		return false;
	case POLICY_CONSENT_WAIT:
		break;
	}
	return false;
}

bool check_notice(struct engine *e, struct instance *inst, enum policy_action action)
{
	const struct conf_service *svc = launcher_service(inst);

	if (action != POLICY_SUSPEND || svc->idle_notice == NULL)
		return false;
	if (check_ask(e, inst, action, true) == -1) {
		log_warnx("%s: cannot tell the guest (idle_notice): suspending all the same",
		          svc->name);
		return false;
	}
	return true;
}
