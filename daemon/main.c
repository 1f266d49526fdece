/*
 * beckond: the DNS server, launcher and idle policy in one event loop.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "control.h"
#include "engine.h"
#include "launcher.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "prio.h"
#include "privs.h"
#include "proc.h"
#include "proxy.h"
#include "resolver.h"
#include "version.h"

#define DEFAULT_CONFIG "/etc/beckon/beckon.conf"

struct daemon {
	struct event_base *base;
	struct conf *conf;
	struct launcher *launcher;
	struct engine *engine;
	struct resolver *resolver;
	struct proxy *proxy;
	struct control *control;
	struct metrics *metrics;
	struct event *ev_term, *ev_int, *ev_hup;
};

static void daemon_usage(void)
{
	fprintf(stderr, "usage: beckond [-c FILE] [-n] [-v]... [-V]\n");
	exit(1);
}

static void daemon_version(void)
{
	char names[128];

	launcher_backend_names(names, sizeof(names));
	printf("beckond %s\nbackends: %s\n", BECKON_VERSION, names);
	exit(0);
}

static void daemon_update_status(struct daemon *d)
{
	struct control_status st = {BECKON_VERSION, d->conf->zone, d->conf->path};

	control_set_status(d->control, &st);
}

/* Copy the errors conf_load wrote into one string for the log and ctl. */
static struct conf *daemon_load(const char *path, char *err, size_t errlen)
{
	struct conf *conf = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&buf, &len);

	if (!errs)
		return NULL;
	if (conf_load(path, &conf, errs) < 0)
		conf = NULL;
	fclose(errs);
	if (!conf) {
		char *line, *save = NULL;

		snprintf(err, errlen, "%s", buf ? buf : "unknown error");
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			log_warnx("reload: %s", line);
	}
	free(buf);
	return conf;
}

static int daemon_reload(void *arg, char *err, size_t errlen)
{
	struct daemon *d = arg;
	struct conf *conf;

	log_info("reloading %s", d->conf->path);
	notify_send("RELOADING=1");
	privs_bind(true); /* a new listener may want port 53 */
	conf = daemon_load(d->conf->path, err, errlen);
	if (!conf)
		goto rejected;
	if (strcmp(conf->control_socket, d->conf->control_socket) != 0)
		log_warnx("reload: control_socket changes take a restart; keeping %s",
		          d->conf->control_socket);
	if ((conf->user == NULL) != (d->conf->user == NULL) ||
	    (conf->user != NULL && strcmp(conf->user, d->conf->user) != 0))
		log_warnx("reload: user changes take a restart; keeping %s",
		          d->conf->user != NULL ? d->conf->user : "the user it runs as");
	if (strcmp(conf->metrics_listen.text, d->conf->metrics_listen.text) != 0 ||
	    conf->has_metrics != d->conf->has_metrics)
		log_warnx("reload: metrics_listen changes take a restart; keeping the old one");
	if (conf->nice != d->conf->nice)
		log_warnx("reload: nice changes take a restart; keeping %d", d->conf->nice);
	if (resolver_reload(d->resolver, conf) < 0) {
		snprintf(err, errlen, "the DNS listeners could not be set up");
		goto rejected_free;
	}
	if (launcher_reload(d->launcher, conf) < 0) {
		snprintf(err, errlen, "the instances could not be set up");
		resolver_reload(d->resolver, d->conf);
		goto rejected_free;
	}
	if (proxy_reload(d->proxy, conf) < 0) {
		snprintf(err, errlen, "the connection hold could not be set up");
		launcher_reload(d->launcher, d->conf);
		proxy_reload(d->proxy, d->conf); /* sees the instances rolled back */
		resolver_reload(d->resolver, d->conf);
		goto rejected_free;
	}
	privs_bind(false);
	conf_free(d->conf);
	d->conf = conf;
	daemon_update_status(d);
	log_info("reloaded: %zu services", conf->nservices);
	notify_send("READY=1");
	return 0;
rejected_free:
	conf_free(conf);
rejected:
	privs_bind(false);
	log_warnx("reload rejected, keeping the running config");
	notify_send("READY=1\nSTATUS=reload rejected, the old config runs");
	return -1;
}

static void daemon_count_running(struct instance *inst, void *arg)
{
	struct instance_info in;

	launcher_info(inst, &in);
	if (in.state != INST_STOPPED && in.state != INST_FAILED)
		(*(int *)arg)++;
}

/*
 * What a stop does to the guests, for the log: a restart (an upgrade) does
 * not adopt them, it stops each one cleanly here and boots it again on
 * the next request; nothing is left running behind.
 */
static const char *daemon_running_text(struct daemon *d)
{
	static char text[96];
	int n = 0;

	launcher_foreach(d->launcher, daemon_count_running, &n);
	if (n == 0)
		return "no instance is running";
	snprintf(text, sizeof(text), "stopping %d running instance%s (not left behind)", n,
	         n == 1 ? "" : "s");
	return text;
}

static void daemon_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[512];

	(void)what;
	if (sig == SIGHUP) {
		daemon_reload(d, err, sizeof(err));
		return;
	}
	notify_send("STOPPING=1");
	log_info("%s: shutting down; %s", strsignal(sig), daemon_running_text(d));
	event_base_loopbreak(d->base);
}

static int daemon_mkdirs(const char *path)
{
	char buf[4096], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/*
 * One beckond per state_dir: the start-of-day sweep kills the processes
 * that its pid files name, which would be another running beckond's. The
 * lock lives as long as the process (its fd is never closed).
 */
static void daemon_lock(const char *state_dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/beckond.lock", state_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		fatal("%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			fatalx("another beckond runs with state_dir %s", state_dir);
		fatal("lock %s", path);
	}
}

static void daemon_signals(struct daemon *d)
{
	signal(SIGPIPE, SIG_IGN);
	d->ev_term = evsignal_new(d->base, SIGTERM, daemon_on_signal, d);
	d->ev_int = evsignal_new(d->base, SIGINT, daemon_on_signal, d);
	d->ev_hup = evsignal_new(d->base, SIGHUP, daemon_on_signal, d);
	if (!d->ev_term || !d->ev_int || !d->ev_hup || evsignal_add(d->ev_term, NULL) < 0 ||
	    evsignal_add(d->ev_int, NULL) < 0 || evsignal_add(d->ev_hup, NULL) < 0)
		fatalx("cannot install signal handlers");
}

/* Probes retry every few milliseconds: the default coarse clock would blur them. */
static struct event_base *daemon_event_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* Hand PATH to the user beckond becomes, with MODE. */
static void daemon_give(const struct conf *conf, const char *what, const char *path, mode_t mode)
{
	struct stat st;

	/* /tmp, /run and the like are everyone's: never handed to one user. */
	if (stat(path, &st) < 0 || (st.st_mode & S_ISVTX) || strcmp(path, "/") == 0)
		fatalx("%s %s: not a directory of beckon's own", what, path);
	if (chown(path, conf->uid, conf->gid) < 0 || chmod(path, mode) < 0)
		fatal("%s %s: giving it to user %s", what, path, conf->user);
}

/*
 * Start as root, run as conf->user: its state_dir becomes its own, and the
 * control socket's directory too when beckond makes it (an existing one,
 * /run say, is not ours to give: the user must be able to write there).
 */
static void daemon_become_user(const struct conf *conf)
{
	char dir[4096];

	if (conf->user == NULL)
		return;
	if (geteuid() == conf->uid && conf->uid != 0) {
		/* Started as that user already (beckond.service's User=): nothing to drop. */
		log_info("running as user %s (uid %d) already", conf->user, (int)conf->uid);
		return;
	}
	if (geteuid() != 0)
		fatalx("user \"%s\": beckond must be started as root to become it", conf->user);
	for (size_t i = 0; i < conf->nservices; i++) {
		/* libxl drives Xen through privcmd and xenstore, root's alone. */
		if (conf->services[i].backend == CONF_BACKEND_XEN)
			fatalx(
			    "user \"%s\": service %s: the xen backend needs beckond to stay root",
			    conf->user, conf->services[i].name);
		if (conf->services[i].backend == CONF_BACKEND_LIBVIRT)
			log_info("user \"%s\": service %s: libvirt must let this user in "
			         "(group libvirt, or its polkit rules)",
			         conf->user, conf->services[i].name);
	}
	daemon_give(conf, "state_dir", conf->state_dir, 0700);
	snprintf(dir, sizeof(dir), "%s", conf->control_socket);
	dirname(dir);
	if (access(dir, F_OK) < 0) {
		if (daemon_mkdirs(dir) < 0)
			fatal("control_socket directory %s", dir);
		/* the group may reach the socket (0660) */
		daemon_give(conf, "control_socket directory", dir, 0750);
	}
	if (privs_drop(conf->user, conf->uid, conf->gid) < 0)
		fatalx("cannot become user %s", conf->user);
	log_info("running as user %s (uid %d), keeping CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, "
	         "CAP_NET_RAW (for iptables only)",
	         conf->user, (int)conf->uid);
}

static void daemon_start(struct daemon *d)
{
	/* A VMM must not inherit what a service manager's AmbientCapabilities= gave us. */
	if (privs_init() < 0)
		fatalx("cannot clear the ambient capabilities");
	if (daemon_mkdirs(d->conf->state_dir) < 0)
		fatal("state_dir %s", d->conf->state_dir);
	/* While CAP_SYS_NICE is ours, before any thread or child. */
	prio_init(d->conf->nice);
	/* Before anything is started or bound: the rest needs no more than what is kept. */
	daemon_become_user(d->conf);
	daemon_lock(d->conf->state_dir); /* made by the user it runs as */
	d->base = daemon_event_base();
	if (!d->base)
		fatalx("cannot create the event loop");
	daemon_signals(d);
	d->launcher = launcher_new(d->base, d->conf);
	if (!d->launcher)
		fatalx("cannot set up the instances");
	d->engine = engine_new(d->base, d->launcher, d->conf);
	if (!d->engine)
		fatalx("cannot set up the idle policy");
	d->resolver = resolver_new(d->base, d->conf, d->launcher);
	if (!d->resolver)
		fatalx("cannot set up the DNS listeners");
	d->proxy = proxy_new(d->base, d->conf, d->launcher);
	if (!d->proxy)
		fatalx("cannot set up the connection hold (network.hold \"%s\")",
		       conf_hold_name(d->conf->hold));
	d->control = control_new(d->base, d->conf->control_socket, d->launcher, daemon_reload, d);
	if (!d->control)
		fatalx("cannot set up the control socket");
	if (d->conf->has_metrics) {
		d->metrics =
		    metrics_new(d->base, &d->conf->metrics_listen, d->launcher, d->resolver);
		if (!d->metrics)
			fatalx("cannot serve metrics on %s", d->conf->metrics_listen.text);
	}
	daemon_update_status(d);
	log_info("beckond %s: serving zone %s, %zu services, control %s", BECKON_VERSION,
	         d->conf->zone, d->conf->nservices, d->conf->control_socket);
	/* Every listener is bound by now: DNS, control, metrics, the hold. */
	privs_bind(false);
	notify_send("READY=1\nSTATUS=serving");
}

static void daemon_stop(struct daemon *d)
{
	control_free(d->control);
	metrics_free(d->metrics);
	resolver_free(d->resolver);
	proxy_free(d->proxy);
	engine_free(d->engine);
	launcher_free(d->launcher);
	event_free(d->ev_term);
	event_free(d->ev_int);
	event_free(d->ev_hup);
	event_base_free(d->base);
	conf_free(d->conf);
	log_info("stopped");
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	struct daemon d = {0};
	int c, check = 0, verbose = 0;

	while ((c = getopt(argc, argv, "c:nvVh")) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			daemon_version();
			break;
		default:
			daemon_usage();
		}
	}
	if (optind != argc)
		daemon_usage();
	log_init(verbose);
	/* State, pid files, saved guests, QMP sockets: for beckond's user alone. */
	umask(077);
	if (conf_load(path, &d.conf, stderr) < 0)
		return 1;
	/* Names that hash alike, unknown placeholders: found by -n too, not only at start. */
	if (launcher_check_names(d.conf, stderr) == -1 ||
	    launcher_check_templates(d.conf, check ? stderr : NULL) == -1) {
		conf_free(d.conf);
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		conf_free(d.conf);
		return 0;
	}
	daemon_start(&d);
	event_base_dispatch(d.base);
	daemon_stop(&d);
	return 0;
}
