/*
 * The QEMU backend: one qemu-system-x86_64 per running instance, in its own
 * process group. Its serial console and its own messages come through one
 * pipe (stdout and stderr, -serial stdio) into the launcher's console; QMP
 * runs over a socketpair (qmp_attach), so there is no socket path to wait
 * for. The guest starts running at once (no -S): QMP comes up beside it and
 * is only needed to quit, stop and cont. The child registry's SIGCHLD is
 * the authority on whether QEMU lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "qmp.h"
#include "qemu.h"

#define QEMU_QUIT_GRACE_MS 2000   /* after QMP quit, before SIGKILL */
#define USER_GUEST_IP "10.0.2.15" /* QEMU user networking's defaults */
#define USER_GATEWAY "10.0.2.2"

struct qemu_run {
	struct instance *inst;
	struct lchild *child;
	struct qmp *qmp;
	int fd; /* read end of the console pipe */
	struct event *ev;
	struct event *quit_timer;
	int64_t t0_us; /* start() began */
	int fdsock;    /* a dup of our end of QMP, to pass fds with SCM_RIGHTS */
	struct qemu_save *save;
	bool shell; /* started with -S: a warm shell */
	bool saw_ready;
	char line[32]; /* the start of the console line under way */
	size_t linelen;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double since_ms(const struct qemu_run *r)
{
	return (double)(now_us() - r->t0_us) / 1000.0;
}

static const char *svc_name(const struct qemu_run *r)
{
	return launcher_inst_service(r->inst)->name;
}

/* ---- console ------------------------------------------------------------------ */

static void con_close(struct qemu_run *r)
{
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->fd != -1)
		close(r->fd);
	r->ev = NULL;
	r->fd = -1;
}

/* For the timing breakdown: when the guest says "READY <us>" (it comes a byte at a time). */
static void watch_ready(struct qemu_run *r, const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && !r->saw_ready; i++) {
		if (buf[i] != '\n') {
			if (r->linelen < sizeof(r->line) - 1)
				r->line[r->linelen++] = buf[i];
			continue;
		}
		r->line[r->linelen] = '\0';
		r->linelen = 0;
		if (strncmp(r->line, "READY ", 6) == 0) {
			r->saw_ready = true;
			log_debug("%s: console READY +%.1f ms (guest: %.16s us)", svc_name(r),
			          since_ms(r), r->line + 6);
		}
	}
}

static void console_data(struct qemu_run *r, const char *buf, size_t len)
{
	watch_ready(r, buf, len);
	launcher_inst_console(r->inst, buf, len);
}

/* Read what the pipe holds now. */
static void con_drain(struct qemu_run *r)
{
	char buf[4096];
	ssize_t n;

	while (r->fd != -1) {
		n = read(r->fd, buf, sizeof(buf));
		if (n > 0)
			console_data(r, buf, (size_t)n);
		else if (n == -1 && errno == EINTR)
			continue;
		else
			return;
	}
}

static void console_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qemu_run *r = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n > 0)
		console_data(r, buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		con_close(r); /* QEMU lives on without a console */
}

/* ---- QMP ---------------------------------------------------------------------- */

static void qmp_ready_cb(struct qmp *q, void *arg)
{
	struct qemu_run *r = arg;

	(void)q;
	log_debug("%s: qmp ready +%.1f ms", svc_name(r), since_ms(r));
	if (r->shell)
		launcher_inst_shell_ready(r->inst);
}

static void qmp_event_cb(struct qmp *q, const char *name, json_t *data, void *arg)
{
	struct qemu_run *r = arg;

	(void)q;
	(void)data;
	if (strcmp(name, "GUEST_PANICKED") == 0)
		log_info("%s: the guest panicked", svc_name(r));
	else if (strcmp(name, "MIGRATION") == 0)
		qemu_save_event(r->inst, data);
	else
		log_debug("%s: qmp event %s", svc_name(r), name);
	if (strcmp(name, "RESUME") == 0)
		launcher_inst_running(r->inst);
}

static void qmp_close_cb(struct qmp *q, const char *why, void *arg)
{
	struct qemu_run *r = arg;

	/* QEMU exiting closes it too; SIGCHLD tells the launcher. */
	log_debug("%s: qmp: %s", svc_name(r), why);
	qmp_free(q);
	r->qmp = NULL;
}

static void qemu_reply_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	const char *what = arg;
	const char *desc;

	(void)q;
	if (ret != NULL || err == NULL)
		return;
	desc = json_string_value(json_object_get(err, "desc"));
	log_warnx("qemu: qmp %s: %s", what, desc ? desc : "failed");
}

static const struct qmp_cbs qemu_qmp_cbs = {
    .ready = qmp_ready_cb,
    .event = qmp_event_cb,
    .close = qmp_close_cb,
};

/* ---- the run ------------------------------------------------------------------- */

static void run_free(struct qemu_run *r)
{
	con_close(r);
	if (r->qmp != NULL)
		qmp_free(r->qmp);
	if (r->fdsock != -1)
		close(r->fdsock);
	qemu_save_free(r->save);
	if (r->quit_timer != NULL)
		event_free(r->quit_timer);
	qemu_host_set_pid(r->inst, 0);
	launcher_inst_set_priv(r->inst, NULL);
	free(r);
}

/*
 * In the child: QMP on fd QEMU_QMP_FD, a state to restore (IN, or -1) on
 * QEMU_INCOMING_FD, OUT as stdout and stderr, then exec.
 */
static void qemu_child(char **argv, int out, int qmp, int in, pid_t parent)
{
	int keep = in != -1 ? QEMU_INCOMING_FD : QEMU_QMP_FD;

	launcher_child_prepare(out, parent);
	if (qmp != QEMU_QMP_FD)
		dup2(qmp, QEMU_QMP_FD);
	fcntl(QEMU_QMP_FD, F_SETFD, 0);
	if (in != -1) {
		if (in != QEMU_INCOMING_FD)
			dup2(in, QEMU_INCOMING_FD);
		fcntl(QEMU_INCOMING_FD, F_SETFD, 0);
	}
	launcher_child_exec(argv, keep + 1);
}

/* The network part of the command line: tap and bridge, or hostfwd ports. */
static int net_args(struct instance *inst, struct qemu_argv_in *in, uint16_t *host_ports)
{
	const struct conf_service *svc = launcher_inst_service(inst);

	in->tap = launcher_inst_tap(inst);
	if (*in->tap) {
		in->guest_ip = launcher_inst_address(inst);
		in->gateway = qemu_host_gateway();
		in->prefix = qemu_host_prefix();
		return qemu_host_bridge_up(inst);
	}
	in->guest_ip = USER_GUEST_IP;
	in->gateway = USER_GATEWAY;
	in->prefix = 24;
	in->host_ports = host_ports;
	return qemu_host_user_ports(inst, host_ports, svc->nports);
}

static char **build_argv(struct instance *inst, uint16_t *host_ports, bool paused,
                         const char *incoming)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	const char *bin = getenv("BECKON_QEMU");
	struct qemu_argv_in in = {
	    .binary = bin && *bin ? bin : QEMU_BINARY,
	    .name = svc->name,
	    .image = svc->image,
	    .cmdline = svc->cmdline,
	    .q = &svc->qemu,
	    .memory = svc->memory,
	    .vcpus = svc->vcpus,
	    .mac = launcher_inst_mac(inst),
	    .ports = svc->ports,
	    .nports = svc->nports,
	    .qmp_fd = QEMU_QMP_FD,
	    .paused = paused,
	    .incoming = incoming,
	};
	char err[128];
	char **argv;

	if ((in.accel = qemu_accel_resolve(svc->qemu.accel, "/dev/kvm")) == NULL) {
		log_warnx("%s: qemu.accel \"%s\" is not auto, kvm or tcg", svc->name,
		          svc->qemu.accel);
		return NULL;
	}
	if (net_args(inst, &in, host_ports) == -1) {
		log_warnx("%s: qemu: host networking failed", svc->name);
		return NULL;
	}
	if ((argv = qemu_argv(&in, err, sizeof(err))) == NULL)
		log_warnx("%s: qemu command line: %s", svc->name, err);
	else
		log_debug("%s: qemu under %s", svc->name, in.accel);
	return argv;
}

/* The child could not be tracked: do not leave it behind. */
static void qemu_untracked(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Parent side once forked: track the child, talk QMP, read the console. */
static int run_attach(struct qemu_run *r, pid_t pid, int qmp_fd)
{
	struct event_base *base = launcher_inst_base(r->inst);

	if ((r->child = launcher_child_add(r->inst, pid)) == NULL) {
		log_warn("%s: qemu", svc_name(r));
		qemu_untracked(pid);
		close(qmp_fd);
		return -1;
	}
	qemu_host_set_pid(r->inst, pid);
	launcher_inst_set_pid(r->inst, pid);
	launcher_inst_set_priv(r->inst, r);
	/* Without QMP the guest still runs; stop falls back to signals. */
	r->fdsock = fcntl(qmp_fd, F_DUPFD_CLOEXEC, 0);
	if ((r->qmp = qmp_attach(base, qmp_fd, &qemu_qmp_cbs, r)) == NULL)
		log_warnx("%s: qmp: cannot attach", svc_name(r));
	if ((r->ev = event_new(base, r->fd, EV_READ | EV_PERSIST, console_cb, r)) == NULL ||
	    event_add(r->ev, NULL) == -1)
		log_warnx("%s: qemu console: cannot watch", svc_name(r));
	return 0;
}

static int qemu_start(struct instance *inst)
{
	return qemu_spawn(inst, false, -1, false);
}

int qemu_spawn(struct instance *inst, bool paused, int incoming_fd, bool defer)
{
	const char *incoming = defer               ? "defer"
	                       : incoming_fd != -1 ? "fd:" QEMU_INCOMING_FD_STR
	                                           : NULL;
	const char *name = launcher_inst_service(inst)->name;
	uint16_t host_ports[CONF_MAX_PORTS];
	struct qemu_run *r = NULL;
	int p[2] = {-1, -1}, sv[2] = {-1, -1};
	char **argv = NULL;
	pid_t pid, self = getpid();
	int64_t t0 = now_us();

	if ((argv = build_argv(inst, host_ports, paused, incoming)) == NULL)
		return -1;
	if ((r = calloc(1, sizeof(*r))) == NULL || pipe2(p, O_CLOEXEC) == -1 ||
	    fcntl(p[0], F_SETFL, O_NONBLOCK) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 || (pid = fork()) == -1)
		goto fail;
	if (pid == 0)
		qemu_child(argv, p[1], sv[1], incoming_fd, self);
	setpgid(pid, pid); /* also here: signals may be sent before the child runs */
	close(p[1]);
	close(sv[1]);
	qemu_argv_free(argv);
	r->inst = inst;
	r->fd = p[0];
	r->fdsock = -1;
	r->shell = paused || defer;
	r->t0_us = t0;
	if (run_attach(r, pid, sv[0]) == -1) {
		con_close(r);
		free(r);
		return -1;
	}
	log_debug("%s: qemu pid %d spawned +%.1f ms", name, (int)pid, since_ms(r));
	return 0;
fail:
	log_warn("%s: qemu", name);
	qemu_argv_free(argv);
	for (int i = 0; i < 2; i++) {
		if (p[i] != -1)
			close(p[i]);
		if (sv[i] != -1)
			close(sv[i]);
	}
	free(r);
	return -1;
}

static void quit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qemu_run *r = arg;

	(void)fd;
	(void)what;
	if (r->child == NULL)
		return;
	log_info("%s: QEMU still there %d ms after quit, killing it", svc_name(r),
	         QEMU_QUIT_GRACE_MS);
	launcher_child_kill(r->child, false);
}

static void qemu_stop(struct instance *inst, bool graceful)
{
	struct qemu_run *r = launcher_inst_priv(inst);
	struct timeval tv = {QEMU_QUIT_GRACE_MS / 1000, (QEMU_QUIT_GRACE_MS % 1000) * 1000};

	if (r == NULL || r->child == NULL)
		return;
	if (!graceful || r->qmp == NULL || r->quit_timer != NULL ||
	    qmp_command(r->qmp, "quit", NULL, NULL, NULL) == -1) {
		launcher_child_kill(r->child, graceful);
		return;
	}
	if ((r->quit_timer = evtimer_new(launcher_inst_base(inst), quit_timer_cb, r)) == NULL ||
	    evtimer_add(r->quit_timer, &tv) == -1)
		launcher_child_kill(r->child, true);
}

static int qemu_command(struct instance *inst, const char *cmd)
{
	struct qemu_run *r = launcher_inst_priv(inst);

	if (r == NULL || r->child == NULL || r->qmp == NULL) {
		log_warnx("%s: qmp %s: no QMP connection", launcher_inst_service(inst)->name, cmd);
		return -1;
	}
	return qmp_command(r->qmp, cmd, NULL, qemu_reply_cb, (void *)cmd);
}

static int qemu_pause(struct instance *inst)
{
	return qemu_command(inst, "stop");
}

/* The guest runs once "cont" is answered: the wake ends then. */
static void resume_reply_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	(void)q;
	(void)ret;
	launcher_inst_resumed(arg, err == NULL);
}

static int qemu_resume(struct instance *inst)
{
	struct qemu_run *r = launcher_inst_priv(inst);

	if (r == NULL || r->child == NULL || r->qmp == NULL) {
		log_warnx("%s: qmp cont: no QMP connection", launcher_inst_service(inst)->name);
		return -1;
	}
	return qmp_command(r->qmp, "cont", NULL, resume_reply_cb, inst) == -1 ? -1 : 1;
}

struct qmp *qemu_run_qmp(const struct instance *inst)
{
	const struct qemu_run *r = launcher_inst_priv(inst);

	return r != NULL && r->child != NULL ? r->qmp : NULL;
}

int qemu_run_fdsock(const struct instance *inst)
{
	const struct qemu_run *r = launcher_inst_priv(inst);

	return r != NULL ? r->fdsock : -1;
}

struct qemu_save **qemu_run_save(struct instance *inst)
{
	struct qemu_run *r = launcher_inst_priv(inst);

	return r != NULL ? &r->save : NULL;
}

void qemu_run_quit(struct instance *inst)
{
	qemu_stop(inst, true);
}

static void qemu_died(struct instance *inst, int status)
{
	struct qemu_run *r = launcher_inst_priv(inst);

	if (r != NULL) {
		r->child = NULL; /* freed by the registry */
		con_drain(r);    /* QEMU's last words: why it exited */
		run_free(r);
	}
	launcher_inst_exited(inst, status);
}

static void qemu_cleanup(struct instance *inst, bool graceful)
{
	struct qemu_run *r = launcher_inst_priv(inst);

	if (r == NULL)
		return;
	/* SIGTERM makes QEMU shut down as quit would. */
	if (r->child != NULL)
		launcher_child_abandon(r->child, graceful);
	run_free(r);
}

static int qemu_probe_target(const struct instance *inst, struct sockaddr_in *sa)
{
	const struct conf_service *svc = launcher_inst_service(inst);

	if (svc->nports == 0) {
		log_warnx("%s: a %s probe needs a port", svc->name, conf_ready_name(svc->ready));
		return -1;
	}
	if (*launcher_inst_tap(inst)) {
		memset(sa, 0, sizeof(*sa));
		sa->sin_family = AF_INET;
		sa->sin_addr = svc->address;
		sa->sin_port = htons(svc->ports[0]);
		return 0;
	}
	if (svc->ready == CONF_READY_TCP) {
		/* hostfwd accepts before the guest listens: a connect proves nothing. */
		log_warnx("%s: ready = \"tcp\" cannot work through user networking; "
		          "use \"http:/path\" or \"console:REGEX\"",
		          svc->name);
		return -1;
	}
	return backend_qemu_hostfwd(inst, svc->ports[0], sa);
}

/* Bridge mode: the guest's own address; user mode: the port's hostfwd. */
static int qemu_upstream(const struct instance *inst, uint16_t port, struct sockaddr_in *sa)
{
	const struct conf_service *svc = launcher_inst_service(inst);

	if (*launcher_inst_tap(inst)) {
		memset(sa, 0, sizeof(*sa));
		sa->sin_family = AF_INET;
		sa->sin_addr = svc->address;
		sa->sin_port = htons(port);
		return 0;
	}
	return backend_qemu_hostfwd(inst, port, sa);
}

const struct backend_ops backend_qemu_ops = {
    .name = "qemu",
    .start = qemu_start,
    .stop = qemu_stop,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .died = qemu_died,
    .cleanup = qemu_cleanup,
    .probe_target = qemu_probe_target,
    .upstream = qemu_upstream,
    .suspend = qemu_suspend,
    .restore = qemu_restore,
    .shell = qemu_shell,
    .shell_run = qemu_shell_run,
};
