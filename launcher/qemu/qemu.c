/*
 * The QEMU backend: one qemu-system-x86_64 per running instance, run with
 * proc_spawn. Its serial console and its own messages come through one
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
#include "proc.h"
#include "log.h"
#include "qmp.h"
#include "qemu.h"
#include "revive.h"

#define QEMU_QUIT_GRACE_MS 10000 /* after QMP quit, before SIGKILL (a loaded host is slow) */
/* How long a clone's readiness waits for its guest to say RESEEDED (a guest
 * that never does is ready after this). */
#define RESEED_ACK_MS 250
#define USER_GUEST_IP "10.0.2.15" /* QEMU user networking's defaults */
#define USER_GATEWAY "10.0.2.2"
#define USER_DNS "10.0.2.3"

struct qemu_run {
	struct proc proc; /* first: the console watch finds the run from it */
	struct instance *inst;
	struct qmp *qmp;
	struct event *quit_timer;
	int64_t t0_us; /* start() began */
	int fdsock;    /* a dup of our end of QMP, to pass fds with SCM_RIGHTS */
	struct qemu_save *save;
	/* Guest RAM from a file (qemu_mem.c); NULL: QEMU's own. */
	struct qemu_mem *mem;
	int reseed_fd;    /* QEMU's stdin (the console's input) for a clone's RESEED line; -1 */
	bool reseed_wait; /* RESEED sent, waiting for the guest's RESEEDED */
	struct event *reseed_timer; /* ... at most RESEED_ACK_MS */
	int64_t reseed_us;          /* when it was sent */
	bool shell;                 /* started with -S: a warm shell */
	void *pool;                 /* a pool VMM not yet taken: its slot (qemu_pool.c) */
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

/* The clone took its RESEED (ACK), or did not say so in time: readiness may go on. */
static void reseed_acked(struct qemu_run *r, bool ack)
{
	if (!r->reseed_wait)
		return;
	r->reseed_wait = false;
	if (r->reseed_timer != NULL)
		evtimer_del(r->reseed_timer);
	if (ack)
		log_debug("%s: the guest took its reseed in %.1f ms", svc_name(r),
		          (double)(now_us() - r->reseed_us) / 1000.0);
	else
		log_info("%s: the guest did not say RESEEDED within %d ms: ready without it",
		         svc_name(r), RESEED_ACK_MS);
	launcher_inst_reseeded(r->inst);
}

static void reseed_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reseed_acked(arg, false);
}

/* For the timing breakdown: when the guest says "READY <us>" (it comes a byte at a time). */
static void watch_ready(struct proc *p, const char *buf, size_t len)
{
	struct qemu_run *r = (struct qemu_run *)p;
	size_t i;

	for (i = 0; i < len && (!r->saw_ready || r->reseed_wait); i++) {
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
		} else if (r->reseed_wait && strncmp(r->line, "RESEEDED", 8) == 0) {
			reseed_acked(r, true);
		}
	}
}

/* ---- QMP ---------------------------------------------------------------------- */

/*
 * Restored from a template and running: fresh entropy and clock on the
 * console's input, once. Not sooner: the restore would overwrite what the
 * UART had taken in.
 */
static void run_reseed(struct qemu_run *r)
{
	struct timeval tv = {0, RESEED_ACK_MS * 1000};
	bool in_memory = qemu_mem_reseeded(r->mem);

	if (r->reseed_fd == -1)
		return;
	/* The fill wrote the words into the guest's memory before it ran: no line. */
	if (!in_memory)
		qemu_template_reseed(r->reseed_fd, svc_name(r));
	close(r->reseed_fd);
	r->reseed_fd = -1;
	if (in_memory) {
		log_debug("%s: reseeded in the guest's memory", svc_name(r));
		launcher_inst_reseeded(r->inst);
		return;
	}
	r->reseed_wait = true;
	r->reseed_us = now_us();
	/* The guest's word that it took it, or the timer, opens readiness. */
	if ((r->reseed_timer = evtimer_new(launcher_inst_base(r->inst), reseed_timer_cb, r)) ==
	        NULL ||
	    evtimer_add(r->reseed_timer, &tv) == -1)
		reseed_acked(r, false);
}

/* QEMU says whether the restored guest runs already (its RESUME came before QMP was up). */
static void reseed_status_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	const char *status = json_string_value(json_object_get(ret, "status"));

	(void)q;
	if (err == NULL && status != NULL && strcmp(status, "running") == 0)
		run_reseed(arg);
}

static void qmp_ready_cb(struct qmp *q, void *arg)
{
	struct qemu_run *r = arg;

	log_debug("%s: qmp ready +%.1f ms", svc_name(r), since_ms(r));
	if (r->pool != NULL) {
		if (qemu_mem_pool_ready(r->inst, q) == -1)
			log_warnx("%s: pool VMM: cannot ask for x-ignore-shared", svc_name(r));
		qemu_pool_up(r->pool);
	}
	if (r->shell)
		launcher_inst_shell_ready(r->inst);
	if (r->reseed_fd != -1)
		qmp_command(q, "query-status", NULL, reseed_status_cb, r);
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
		run_reseed(r);
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
	proc_close_console(&r->proc);
	if (r->qmp != NULL)
		qmp_free(r->qmp);
	if (r->fdsock != -1)
		close(r->fdsock);
	if (r->reseed_fd != -1)
		close(r->reseed_fd);
	if (r->reseed_timer != NULL)
		event_free(r->reseed_timer);
	qemu_save_free(r->save);
	qemu_mem_free(r->mem);
	if (r->quit_timer != NULL)
		event_free(r->quit_timer);
	launcher_inst_set_priv(r->inst, NULL);
	free(r);
}

/* The network part of the command line: tap and bridge, or hostfwd ports. */
static int net_args(struct instance *inst, struct qemu_argv_in *in, uint16_t *host_ports)
{
	const struct conf_service *svc = launcher_inst_service(inst);

	in->tap = launcher_inst_tap(inst);
	if (*in->tap)
		return backend_bridge_up(inst);
	in->host_ports = host_ports;
	return qemu_host_user_ports(inst, host_ports, svc->nports);
}

/*
 * The cmdline and qemu.args with their placeholders expanded (into X, freed
 * with templates_free): in user networking the guest is QEMU's 10.0.2.15.
 */
struct qemu_templates {
	char *cmdline;
	char **args;
	size_t nargs;
};

static void templates_free(struct qemu_templates *x)
{
	free(x->cmdline);
	for (size_t i = 0; i < x->nargs; i++)
		free(x->args[i]);
	free(x->args);
}

static int templates_expand(struct instance *inst, struct qemu_templates *x)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	struct backend_vars v;
	struct backend_vars_buf vb;
	char err[128];

	memset(x, 0, sizeof(*x));
	backend_vars_fill(inst, &v, &vb);
	if (launcher_inst_tap(inst)[0] == '\0')
		backend_vars_net(&v, &vb, USER_GUEST_IP, 24, USER_GATEWAY, USER_DNS);
	if ((x->cmdline = backend_expand(svc->cmdline ? svc->cmdline : "", &v, err, sizeof(err))) ==
	    NULL) {
		log_warnx("%s: cmdline: %s", svc->name, err);
		return -1;
	}
	if (svc->qemu.nargs > 0 && (x->args = calloc(svc->qemu.nargs, sizeof(*x->args))) == NULL)
		return -1;
	for (; x->nargs < svc->qemu.nargs; x->nargs++)
		if ((x->args[x->nargs] =
		         backend_expand(svc->qemu.args[x->nargs], &v, err, sizeof(err))) == NULL) {
			log_warnx("%s: qemu.args: %s", svc->name, err);
			return -1;
		}
	return 0;
}

static char **build_argv(struct instance *inst, uint16_t *host_ports, bool paused,
                         const char *incoming, bool pool, const struct qemu_mem *mem)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	const char *bin = getenv("BECKON_QEMU");
	struct qemu_argv_in in = {
	    .binary = bin && *bin ? bin : QEMU_BINARY,
	    .name = svc->name,
	    .image = svc->image,
	    .q = &svc->qemu,
	    .memory = svc->memory,
	    .vcpus = svc->vcpus,
	    .mac = launcher_inst_mac(inst),
	    .ports = svc->ports,
	    .nports = svc->nports,
	    .qmp_fd = QEMU_QMP_FD,
	    .paused = paused,
	    .incoming = incoming,
	    /* Run as an unprivileged user, QEMU is fenced in by its seccomp filter
	     * too; as root it runs as before (a root VMM is the user's choice). */
	    .sandbox = geteuid() != 0,
	    .nic_via = pool                 ? QEMU_NIC_POOL
	               : qemu_pool_hub(svc) ? QEMU_NIC_HUB
	                                    : QEMU_NIC_DIRECT,
	};
	struct conf_qemu q = svc->qemu;
	struct qemu_templates x;
	char err[128];
	char **argv = NULL;

	if ((in.accel = qemu_accel_resolve(svc->qemu.accel, "/dev/kvm")) == NULL) {
		log_warnx("%s: qemu.accel \"%s\" is not auto, kvm or tcg", svc->name,
		          svc->qemu.accel);
		return NULL;
	}
	if (!pool && net_args(inst, &in, host_ports) == -1) {
		log_warnx("%s: qemu: host networking failed", svc->name);
		return NULL;
	}
	if (templates_expand(inst, &x) == -1) {
		templates_free(&x);
		return NULL;
	}
	in.cmdline = pool ? NULL : x.cmdline; /* a pool VMM's guest never boots */
	q.args = x.args;
	in.q = &q;
	qemu_mem_argv_in(mem, &in);
	if ((argv = qemu_argv(&in, err, sizeof(err))) == NULL)
		log_warnx("%s: qemu command line: %s", svc->name, err);
	else
		log_debug("%s: qemu under %s", svc->name, in.accel);
	templates_free(&x);
	return argv;
}

/* Once running: talk QMP, watch for the guest's readiness line. */
static void run_attach(struct qemu_run *r, int qmp_fd)
{
	struct event_base *base = launcher_inst_base(r->inst);

	launcher_inst_set_priv(r->inst, r);
	/* Without QMP the guest still runs; stop falls back to signals. */
	r->fdsock = fcntl(qmp_fd, F_DUPFD_CLOEXEC, 0);
	if ((r->qmp = qmp_attach(base, qmp_fd, &qemu_qmp_cbs, r)) == NULL)
		log_warnx("%s: qmp: cannot attach", svc_name(r));
}

char **qemu_start_argv(struct instance *inst)
{
	uint16_t host_ports[CONF_MAX_PORTS];

	return build_argv(inst, host_ports, false, NULL, false, NULL);
}

static int qemu_start(struct instance *inst)
{
	return qemu_spawn(inst, false, -1, false);
}

/*
 * Spawn ARGV for INST (a run R filled by the caller: shell, pool): QMP on a
 * socketpair, INCOMING_FD as the state to restore (-1: none), and for a
 * CLONE its console's input on a pipe for the RESEED line.
 */
static int run_spawn(struct qemu_run *r, struct instance *inst, char **argv, int incoming_fd,
                     bool clone)
{
	struct proc_fd fds[4] = {{-1, QEMU_QMP_FD}, {incoming_fd, QEMU_INCOMING_FD}, {-1, 0}};
	size_t nfds = incoming_fd != -1 ? 2 : 1;
	int sv[2] = {-1, -1}, rp[2] = {-1, -1};

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (clone && pipe2(rp, O_CLOEXEC) == -1)) {
		log_warn("%s: qemu", launcher_inst_service(inst)->name);
		goto fail;
	}
	fds[0].fd = sv[1];
	if (clone)
		fds[nfds++] = (struct proc_fd){rp[0], 0};
	if (qemu_mem_fd(r->mem) != -1)
		fds[nfds++] = (struct proc_fd){qemu_mem_fd(r->mem), QEMU_MEM_FD};
	r->inst = inst;
	r->fdsock = -1;
	r->reseed_fd = rp[1];
	r->proc.watch = watch_ready;
	if (proc_spawn(&r->proc, inst, argv, fds, nfds) == -1)
		goto fail;
	close(sv[1]);
	if (rp[0] != -1)
		close(rp[0]);
	run_attach(r, sv[0]);
	log_debug("%s: qemu pid %d spawned +%.1f ms", svc_name(r), (int)r->proc.pid, since_ms(r));
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] != -1)
			close(sv[i]);
		if (rp[i] != -1)
			close(rp[i]);
	}
	r->reseed_fd = -1;
	return -1;
}

int qemu_spawn(struct instance *inst, bool paused, int incoming_fd, bool defer)
{
	uint16_t host_ports[CONF_MAX_PORTS];
	struct qemu_run *r = NULL;
	struct qemu_mem *mem = NULL;
	char **argv = NULL;
	int64_t t0 = now_us();
	bool load; /* -incoming defer, then migrate-incoming fd:N over QMP */
	const char *incoming;
	int rc = -1;

	if (qemu_mem_prepare(inst, incoming_fd != -1 || defer, &mem) == -1)
		return -1;
	load = incoming_fd != -1 && qemu_mem_is_clone(mem);
	incoming = defer || load ? "defer" : incoming_fd != -1 ? "fd:" QEMU_INCOMING_FD_STR : NULL;
	if ((argv = build_argv(inst, host_ports, paused, incoming, false, mem)) == NULL)
		goto done;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("%s: qemu", launcher_inst_service(inst)->name);
		goto done;
	}
	r->shell = paused || defer;
	r->t0_us = t0;
	r->mem = mem;
	mem = NULL;
	r->proc.thp_off = qemu_mem_thp_off(inst, r->mem, incoming_fd != -1 || defer);
	/* A clone of a template: the console's input carries its RESEED line. */
	if ((rc = run_spawn(r, inst, argv, incoming_fd,
	                    (incoming_fd != -1 || defer) && launcher_inst_is_clone(inst))) == 0) {
		if (load)
			qemu_mem_load(inst);
		r = NULL;
	}
done:
	qemu_argv_free(argv);
	qemu_mem_free(mem);
	if (r != NULL)
		qemu_mem_free(r->mem);
	free(r);
	return rc;
}

char **qemu_pool_argv(struct instance *inst)
{
	struct qemu_mem *mem;
	char **argv;

	if (qemu_mem_pool(inst, false, &mem) == -1)
		return NULL;
	argv = build_argv(inst, NULL, false, "defer", true, mem);
	qemu_mem_free(mem);
	return argv;
}

int qemu_pool_spawn(struct instance *standin, void *slot)
{
	struct qemu_run *r = NULL;
	char **argv = NULL;
	int rc = -1;

	if ((r = calloc(1, sizeof(*r))) == NULL || qemu_mem_pool(standin, true, &r->mem) == -1 ||
	    (argv = build_argv(standin, NULL, false, "defer", true, r->mem)) == NULL)
		goto done;
	r->t0_us = now_us();
	r->pool = slot;
	/* Any cold start may take it: its console's input is a pipe, for the RESEED line. */
	if ((rc = run_spawn(r, standin, argv, -1, true)) == 0)
		r = NULL;
done:
	qemu_argv_free(argv);
	if (r != NULL)
		qemu_mem_free(r->mem);
	free(r);
	return rc;
}

void qemu_run_adopt(struct instance *standin, struct instance *inst)
{
	struct qemu_run *r = launcher_inst_priv(standin);

	launcher_inst_set_priv(standin, NULL);
	backend_standin_adopt(standin, inst, &r->proc);
	r->inst = inst;
	r->pool = NULL;
	r->t0_us = now_us();
	r->linelen = 0;
	launcher_inst_set_priv(inst, r);
}

void qemu_run_reaped(struct instance *standin)
{
	struct qemu_run *r = launcher_inst_priv(standin);

	if (r == NULL)
		return;
	proc_reaped(&r->proc);
	run_free(r);
}

static void quit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qemu_run *r = arg;

	(void)fd;
	(void)what;
	if (r->proc.child == NULL)
		return;
	log_info("%s: QEMU still there %d ms after quit, killing it", svc_name(r),
	         QEMU_QUIT_GRACE_MS);
	proc_kill(&r->proc, false);
}

static void qemu_stop(struct instance *inst, bool graceful)
{
	struct qemu_run *r = launcher_inst_priv(inst);
	struct timeval tv = {QEMU_QUIT_GRACE_MS / 1000, (QEMU_QUIT_GRACE_MS % 1000) * 1000};

	if (r == NULL || r->proc.child == NULL)
		return;
	if (!graceful || r->qmp == NULL || r->quit_timer != NULL ||
	    qmp_command(r->qmp, "quit", NULL, NULL, NULL) == -1) {
		proc_kill(&r->proc, graceful);
		return;
	}
	if ((r->quit_timer = evtimer_new(launcher_inst_base(inst), quit_timer_cb, r)) == NULL ||
	    evtimer_add(r->quit_timer, &tv) == -1)
		proc_kill(&r->proc, true);
}

static int qemu_command(struct instance *inst, const char *cmd)
{
	struct qemu_run *r = launcher_inst_priv(inst);

	if (r == NULL || r->proc.child == NULL || r->qmp == NULL) {
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

	if (r == NULL || r->proc.child == NULL || r->qmp == NULL) {
		log_warnx("%s: qmp cont: no QMP connection", launcher_inst_service(inst)->name);
		return -1;
	}
	return qmp_command(r->qmp, "cont", NULL, resume_reply_cb, inst) == -1 ? -1 : 1;
}

struct qmp *qemu_run_qmp(const struct instance *inst)
{
	const struct qemu_run *r = launcher_inst_priv(inst);

	return r != NULL && r->proc.child != NULL ? r->qmp : NULL;
}

int qemu_run_fdsock(const struct instance *inst)
{
	const struct qemu_run *r = launcher_inst_priv(inst);

	return r != NULL ? r->fdsock : -1;
}

struct qemu_mem *qemu_run_mem(const struct instance *inst)
{
	const struct qemu_run *r = launcher_inst_priv(inst);

	return r != NULL ? r->mem : NULL;
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
		proc_reaped(&r->proc); /* QEMU's last words: why it exited */
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
	proc_abandon(&r->proc, graceful);
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

static bool qemu_bridge(const struct conf_service *svc)
{
	(void)svc;
	return true;
}

/* qemu.args take the placeholders too. */
static int qemu_check_args(const struct conf_service *svc, FILE *errs, const char *where)
{
	struct backend_vars v;
	char err[128], *s;
	int rc = 0;

	backend_vars_dummy(&v);
	for (size_t i = 0; i < svc->qemu.nargs; i++) {
		if ((s = backend_expand(svc->qemu.args[i], &v, err, sizeof(err))) == NULL) {
			fprintf(errs, "%s.qemu.args[%zu]: %s\n", where, i, err);
			rc = -1;
		}
		free(s);
	}
	return rc;
}

/*
 * The cmdline's placeholders; and a note for a config written when beckon
 * still appended the hello guest's words to every command line.
 */
static int qemu_check(const struct conf_service *svc, FILE *errs, const char *where)
{
	const char *c = svc->cmdline ? svc->cmdline : "";

	if (!svc->qemu.boot_disk && strstr(c, "{address}") == NULL && strstr(c, "ip=") == NULL)
		fprintf(errs,
		        "%s: note: beckon adds nothing to the guest's command line; a guest that "
		        "reads its address there (beckon's hello guest does) wants cmdline = "
		        "\"ip={address}/{prefix} gw={gateway} name={name} port={port}\"\n",
		        where);
	return backend_check_cmdline(svc, errs, where) == 0 &&
	               qemu_check_args(svc, errs, where) == 0
	           ? 0
	           : -1;
}

/* At every config: the hostfwd ports kept, the pool's size. */
static int qemu_global_init(const struct conf *conf)
{
	qemu_pool_conf(conf);
	return qemu_host_init(conf);
}

/* qemu_argv's marker: -name guest=beckon:<service>,... */
bool qemu_is_ours(pid_t pid, const char *service)
{
	char want[CONF_INSTANCE_NAME_MAX + 32];

	snprintf(want, sizeof(want), "guest=beckon:%s,", service);
	/* A pool VMM keeps its ~poolN name once a service's run took it. */
	return proc_has_word(pid, "cmdline", "-name", want, true) ||
	       proc_has_word(pid, "cmdline", "-name", "guest=beckon:~pool", true);
}

const struct backend_ops backend_qemu_ops = {
    .name = "qemu",
    .bridge = qemu_bridge,
    .global_init = qemu_global_init,
    .global_fini = qemu_host_fini,
    .is_ours = qemu_is_ours,
    .check = qemu_check,
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
    .template_key = qemu_template_key,
    .template_save = qemu_template_save,
    .pool_restore = qemu_pool_restore,
    .global_drain = qemu_pool_drain,
};
