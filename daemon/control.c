#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "control.h"
#include "hosts.h"
#include "launcher.h"
#include "log.h"
#include "pattern.h"

#define CONTROL_MAX_LINE 4096
#define CONTROL_MAX_CLIENTS 64

struct control_client {
	struct control *ctl;
	struct bufferevent *bev;
	struct launcher_waiter *waiter; /* a `start` waiting for ready */
	struct control_client *next;
};

struct control {
	struct evconnlistener *listener;
	struct launcher *launcher;
	control_reload_fn reload;
	void *reload_arg;
	struct control_status status;
	struct control_client *clients;
	int nclients;
	char *path;
	struct timespec started;
};

static void control_client_free(struct control_client *cl)
{
	struct control_client **pp;

	for (pp = &cl->ctl->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	cl->ctl->nclients--;
	if (cl->waiter)
		launcher_cancel(cl->waiter);
	bufferevent_free(cl->bev);
	free(cl);
}

/* Close once the reply has left. */
static void control_on_flushed(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		control_client_free(cl);
}

static void control_reply(struct control_client *cl, json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);

	json_decref(reply);
	if (text) {
		bufferevent_write(cl->bev, text, strlen(text));
		free(text);
	}
	bufferevent_write(cl->bev, "\n", 1);
	bufferevent_disable(cl->bev, EV_READ);
	bufferevent_setcb(cl->bev, NULL, control_on_flushed, NULL, cl);
}

static void control_error(struct control_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void control_error(struct control_client *cl, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	control_reply(cl, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

static const char *control_name(const struct instance *inst)
{
	struct instance_info in;

	launcher_info(inst, &in);
	return in.name;
}

static enum inst_state control_state(const struct instance *inst)
{
	struct instance_info in;

	launcher_info(inst, &in);
	return in.state;
}

static json_t *control_instance_json(struct instance *inst)
{
	struct instance_info in;
	const char *pattern = launcher_pattern_of(inst);
	json_t *o;

	launcher_info(inst, &in);
	o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:i, s:b, s:s}", "name", in.name,
	              "state", launcher_state_name(in.state), "address", in.address, "uptime_ms",
	              (json_int_t)in.uptime_ms, "boots", (int)in.boots, "idle_ms",
	              (json_int_t)in.idle_ms, "last_activity", (json_int_t)in.last_activity, "pid",
	              (int)in.pid, "shell", in.shell, "host", in.host);
	/* The proxy's connections to it: held while it wakes, and relayed. */
	if (o != NULL) {
		json_object_set_new(o, "held", json_integer(in.held));
		json_object_set_new(o, "open", json_integer(in.open));
		/* How its run began: boot, template, shell, restore; "" when never run. */
		json_object_set_new(o, "started", json_string(launcher_how_name(in.how)));
	}
	if (o != NULL && in.address6[0] != '\0')
		json_object_set_new(o, "address6", json_string(in.address6));
	/* A pattern's instance ("LABEL.SERVICE") names the service it was made from. */
	if (o != NULL && pattern != NULL)
		json_object_set_new(o, "pattern", json_string(pattern));
	/* An extra replica ("N.SERVICE") names the service it is a replica of. */
	if (o != NULL && launcher_replica_of(inst) != NULL)
		json_object_set_new(o, "replica_of", json_string(launcher_replica_of(inst)));
	return o;
}

static void control_list_one(struct instance *inst, void *arg)
{
	json_array_append_new(arg, control_instance_json(inst));
}

static void control_cmd_list(struct control_client *cl)
{
	json_t *arr = json_array();

	launcher_foreach(cl->ctl->launcher, control_list_one, arr);
	control_reply(cl, json_pack("{s:b, s:o}", "ok", 1, "services", arr));
}

static void control_host_one(const struct host_info *h, void *arg)
{
	json_array_append_new(
	    arg, json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I}", "name", h->name, "uri",
	                   h->uri, "state", h->state, "why", h->why, "instances", (int)h->instances,
	                   "memory", (json_int_t)h->memory, "max_memory", (json_int_t)h->max_memory,
	                   "max_instances", (json_int_t)h->max_instances));
}

/* The hosts list: each host's state and load (empty without a list). */
static void control_cmd_hosts(struct control_client *cl)
{
	json_t *arr = json_array();

	launcher_hosts(cl->ctl->launcher, control_host_one, arr);
	control_reply(cl, json_pack("{s:b, s:o}", "ok", 1, "hosts", arr));
}

static void control_count_one(struct instance *inst, void *arg)
{
	struct instance_info in;
	int *counts = arg;

	launcher_info(inst, &in);
	counts[in.state]++;
}

static void control_cmd_status(struct control_client *cl)
{
	struct control *c = cl->ctl;
	int counts[INST_NSTATES] = {0};
	struct timespec now;
	json_t *states = json_object();
	int i;

	launcher_foreach(c->launcher, control_count_one, counts);
	for (i = 0; i < INST_NSTATES; i++)
		json_object_set_new(states, launcher_state_name(i), json_integer(counts[i]));
	clock_gettime(CLOCK_MONOTONIC, &now);
	control_reply(cl,
	              json_pack("{s:b, s:s, s:i, s:s, s:s, s:I, s:o}", "ok", 1, "version",
	                        c->status.version, "pid", (int)getpid(), "zone", c->status.zone,
	                        "config", c->status.config, "uptime_s",
	                        (json_int_t)(now.tv_sec - c->started.tv_sec), "instances", states));
}

static void control_on_started(struct instance *inst, bool ok, void *arg)
{
	struct control_client *cl = arg;

	cl->waiter = NULL;
	if (ok)
		control_reply(
		    cl, json_pack("{s:b, s:o}", "ok", 1, "service", control_instance_json(inst)));
	else
		control_error(cl, "%s: boot failed", control_name(inst));
}

static void control_cmd_start(struct control_client *cl, struct instance *inst)
{
	int rc = launcher_wake(inst, control_on_started, cl, &cl->waiter);

	if (rc == 1)
		control_on_started(inst, true, cl);
	else if (rc < 0)
		control_error(cl, "%s: cannot start now", control_name(inst));
}

static void control_cmd_action(struct control_client *cl, struct instance *inst,
                               int (*action)(struct instance *), const char *verb)
{
	if (action(inst) < 0) {
		control_error(cl, "%s: cannot %s in state %s", control_name(inst), verb,
		              launcher_state_name(control_state(inst)));
		return;
	}
	control_reply(cl, json_pack("{s:b, s:o}", "ok", 1, "service", control_instance_json(inst)));
}

static void control_cmd_reload(struct control_client *cl)
{
	char err[512] = "";

	if (cl->ctl->reload(cl->ctl->reload_arg, err, sizeof(err)) < 0)
		control_error(cl, "reload rejected: %s", err);
	else
		control_reply(cl, json_pack("{s:b}", "ok", 1));
}

static void control_dispatch_service(struct control_client *cl, const char *cmd, const char *svc)
{
	struct instance *inst;

	if (!svc) {
		control_error(cl, "%s needs a service", cmd);
		return;
	}
	inst = launcher_find(cl->ctl->launcher, svc);
	if (!inst) {
		control_error(cl, "unknown service \"%s\"", svc);
		return;
	}
	if (strcmp(cmd, "start") == 0)
		control_cmd_start(cl, inst);
	else if (strcmp(cmd, "stop") == 0)
		control_cmd_action(cl, inst, launcher_stop, "stop");
	else if (strcmp(cmd, "pause") == 0)
		control_cmd_action(cl, inst, launcher_pause, "pause");
	else
		control_cmd_action(cl, inst, launcher_resume, "resume");
}

static void control_dispatch(struct control_client *cl, const char *line)
{
	const char *cmd = NULL, *svc = NULL;
	json_error_t jerr;
	json_t *req = json_loads(line, 0, &jerr);

	if (!req || json_unpack(req, "{s:s, s?s}", "cmd", &cmd, "service", &svc) < 0) {
		control_error(cl, "bad request: want {\"cmd\": ..., \"service\": ...}");
		goto done;
	}
	log_debug("control: %s%s%s", cmd, svc ? " " : "", svc ? svc : "");
	if (strcmp(cmd, "status") == 0)
		control_cmd_status(cl);
	else if (strcmp(cmd, "list") == 0)
		control_cmd_list(cl);
	else if (strcmp(cmd, "reload") == 0)
		control_cmd_reload(cl);
	else if (strcmp(cmd, "hosts") == 0)
		control_cmd_hosts(cl);
	else if (!strcmp(cmd, "start") || !strcmp(cmd, "stop") || !strcmp(cmd, "pause") ||
	         !strcmp(cmd, "resume"))
		control_dispatch_service(cl, cmd, svc);
	else
		control_error(cl, "unknown command \"%s\"", cmd);
done:
	json_decref(req);
}

static void control_on_read(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

	if (!line) {
		if (evbuffer_get_length(in) > CONTROL_MAX_LINE)
			control_error(cl, "request too long");
		return;
	}
	bufferevent_disable(bev, EV_READ);
	control_dispatch(cl, line);
	free(line);
}

static void control_on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		control_client_free(arg);
}

static void control_on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                              int salen, void *arg)
{
	struct control *c = arg;
	struct control_client *cl;
	struct timeval tv = {10, 0};

	(void)sa, (void)salen;
	if (c->nclients >= CONTROL_MAX_CLIENTS || !(cl = calloc(1, sizeof(*cl)))) {
		close(fd);
		return;
	}
	cl->ctl = c;
	cl->bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cl->bev) {
		close(fd);
		free(cl);
		return;
	}
	cl->next = c->clients;
	c->clients = cl;
	c->nclients++;
	bufferevent_setcb(cl->bev, control_on_read, NULL, control_on_event, cl);
	bufferevent_set_timeouts(cl->bev, &tv, NULL);
	bufferevent_enable(cl->bev, EV_READ);
}

/* A socket file nobody answers on is left over from a crash: replace it. */
static int control_clear_stale(const struct sockaddr_un *sun)
{
	int fd, rc;

	if (access(sun->sun_path, F_OK) < 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (rc == 0) {
		log_warnx("control socket %s: another beckond is listening", sun->sun_path);
		return -1;
	}
	return unlink(sun->sun_path);
}

struct control *control_new(struct event_base *base, const char *path, struct launcher *l,
                            control_reload_fn reload, void *reload_arg)
{
	struct control *c = calloc(1, sizeof(*c));
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;

	if (!c)
		return NULL;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		goto fail;
	}
	strcpy(sun.sun_path, path);
	if (control_clear_stale(&sun) < 0)
		goto fail;
	c->launcher = l;
	c->reload = reload;
	c->reload_arg = reload_arg;
	c->path = strdup(path);
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	old = umask(0117);
	c->listener = evconnlistener_new_bind(base, control_on_accept, c,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	                                      (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (!c->listener || !c->path) {
		log_warn("control socket %s", path);
		goto fail;
	}
	return c;
fail:
	free(c->path);
	free(c);
	return NULL;
}

void control_set_status(struct control *c, const struct control_status *st)
{
	c->status = *st;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (c->clients)
		control_client_free(c->clients);
	evconnlistener_free(c->listener);
	unlink(c->path);
	free(c->path);
	free(c);
}
