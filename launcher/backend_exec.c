/*
 * The exec backend: the service is a process of our own, started from
 * exec.command in its own process group, its stdout and stderr its console.
 * Pause and resume are SIGSTOP and SIGCONT to the group.
 *
 * The command is split into argv here rather than run by /bin/sh -c: no
 * value substituted into it (a path, a cmdline) is ever parsed as shell
 * syntax, and the process we track is the service itself, not a shell.
 * Who wants a shell writes one: command = "sh -c 'sleep 1; exec httpd ...'".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "log.h"

struct exec_run {
	struct lchild *child;
	int fd; /* read end of the console pipe */
	struct event *ev;
	uint16_t port; /* {port}; 0 when the service has none */
	bool own_port; /* a loopback port of its own (hold "proxy") */
};

static void exec_close_console(struct exec_run *r)
{
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->fd != -1)
		close(r->fd);
	r->ev = NULL;
	r->fd = -1;
}

/* Read what the pipe holds now (a probe match does not end the run). */
static void exec_drain(struct instance *inst, struct exec_run *r)
{
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = read(r->fd, buf, sizeof(buf));
		if (n > 0) {
			launcher_inst_console(inst, buf, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		return;
	}
}

static void exec_console_cb(evutil_socket_t fd, short what, void *arg)
{
	struct instance *inst = arg;
	struct exec_run *r = launcher_inst_priv(inst);
	char buf[4096];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n > 0)
		launcher_inst_console(inst, buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		exec_close_console(r); /* the process lives on without a console */
}

static void exec_child(char **argv, int out, pid_t parent)
{
	launcher_child_prepare(out, parent);
	launcher_child_exec(argv, 3);
}

/*
 * Under hold "proxy" in user mode the service address and ports are the
 * proxy's, so the process gets a free loopback port of its own for each run.
 * (In bridge mode the proxy redirects instead: the address stays the
 * process's.)
 */
static bool exec_owns_port(const struct instance *inst)
{
	return launcher_inst_hold(inst) == CONF_HOLD_PROXY && launcher_inst_tap(inst)[0] == '\0';
}

static uint16_t exec_own_port(const char *name)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd != -1 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	else
		log_warn("%s: a loopback port for {port}", name);
	if (fd != -1)
		close(fd);
	return port;
}

static char **exec_argv(struct instance *inst, uint16_t port)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	char memory[32], err[128], portstr[8] = "";
	struct exec_vars v = {
	    .image = svc->image,
	    .cmdline = svc->cmdline,
	    .tap = launcher_inst_tap(inst),
	    .mac = launcher_inst_mac(inst),
	    .address = launcher_inst_address(inst),
	    .memory = memory,
	    .name = svc->name,
	    .port = portstr,
	};
	char **argv;

	if (port != 0)
		snprintf(portstr, sizeof(portstr), "%u", port);
	snprintf(memory, sizeof(memory), "%llu", (unsigned long long)(svc->memory >> 20));
	if (svc->exec_command == NULL) {
		log_warnx("%s: exec backend without exec.command", svc->name);
		return NULL;
	}
	if ((argv = backend_exec_argv(svc->exec_command, &v, err, sizeof(err))) == NULL)
		log_warnx("%s: exec.command: %s", svc->name, err);
	return argv;
}

/* The child could not be tracked: do not leave it behind. */
static void exec_untracked(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int exec_start(struct instance *inst)
{
	const char *name = launcher_inst_service(inst)->name;
	struct exec_run *r;
	char **argv;
	const struct conf_service *svc = launcher_inst_service(inst);
	bool own = exec_owns_port(inst);
	uint16_t port = own ? exec_own_port(name) : svc->nports ? svc->ports[0] : 0;
	int p[2] = {-1, -1};
	pid_t pid, self = getpid();

	if ((own && port == 0) || (argv = exec_argv(inst, port)) == NULL)
		return -1;
	if (own && svc->exec_command != NULL && strstr(svc->exec_command, "{port}") == NULL)
		log_warnx("%s: under hold \"proxy\" the proxy holds %s; the command should listen "
		          "on 127.0.0.1:{port}",
		          name, launcher_inst_address(inst));
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		backend_exec_argv_free(argv);
		return -1;
	}
	r->fd = -1;
	r->port = port;
	r->own_port = own;
	if (pipe2(p, O_CLOEXEC) == -1)
		goto fail;
	r->fd = p[0];
	if (fcntl(r->fd, F_SETFL, O_NONBLOCK) == -1 ||
	    (r->ev = event_new(launcher_inst_base(inst), r->fd, EV_READ | EV_PERSIST,
	                       exec_console_cb, inst)) == NULL ||
	    event_add(r->ev, NULL) == -1 || (pid = fork()) == -1)
		goto fail;
	if (pid == 0)
		exec_child(argv, p[1], self);
	setpgid(pid, pid); /* also here: signals may be sent before the child runs */
	close(p[1]);
	backend_exec_argv_free(argv);
	if ((r->child = launcher_child_add(inst, pid)) == NULL) {
		log_warn("%s: exec", name);
		exec_untracked(pid);
		exec_close_console(r);
		free(r);
		return -1;
	}
	log_debug("%s: exec pid %d", name, (int)pid);
	launcher_inst_set_priv(inst, r);
	launcher_inst_set_pid(inst, pid);
	return 0;
fail:
	log_warn("%s: exec", name);
	backend_exec_argv_free(argv);
	if (p[1] != -1)
		close(p[1]);
	exec_close_console(r);
	free(r);
	return -1;
}

static void exec_stop(struct instance *inst, bool graceful)
{
	struct exec_run *r = launcher_inst_priv(inst);

	if (r != NULL && r->child != NULL)
		launcher_child_kill(r->child, graceful);
}

static int exec_signal(struct instance *inst, int sig)
{
	struct exec_run *r = launcher_inst_priv(inst);

	if (r == NULL || r->child == NULL)
		return -1;
	return launcher_child_signal(r->child, sig);
}

static int exec_pause(struct instance *inst)
{
	return exec_signal(inst, SIGSTOP);
}

static int exec_resume(struct instance *inst)
{
	return exec_signal(inst, SIGCONT);
}

static void exec_died(struct instance *inst, int status)
{
	struct exec_run *r = launcher_inst_priv(inst);

	if (r != NULL) {
		r->child = NULL; /* freed by the registry */
		/* Its last words may still be in the pipe: the console probe wants them. */
		if (r->fd != -1)
			exec_drain(inst, r);
		exec_close_console(r);
		free(r);
		launcher_inst_set_priv(inst, NULL);
	}
	launcher_inst_exited(inst, status);
}

static void exec_cleanup(struct instance *inst, bool graceful)
{
	struct exec_run *r = launcher_inst_priv(inst);

	if (r == NULL)
		return;
	if (r->child != NULL)
		launcher_child_abandon(r->child, graceful);
	exec_close_console(r);
	free(r);
	launcher_inst_set_priv(inst, NULL);
}

static void exec_addr(struct sockaddr_in *sa, struct in_addr addr, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr = addr;
	sa->sin_port = htons(port);
}

/* The service address and first port, or the run's own loopback port. */
static int exec_probe_target(const struct instance *inst, struct sockaddr_in *sa)
{
	const struct exec_run *r = launcher_inst_priv(inst);
	const struct conf_service *svc = launcher_inst_service(inst);
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};

	if (r == NULL || r->port == 0) {
		log_warnx("%s: a tcp or http probe needs a port", svc->name);
		return -1;
	}
	exec_addr(sa, r->own_port ? lo : svc->address, r->port);
	return 0;
}

/* With a port of its own, the process serves the first port there. */
static int exec_upstream(const struct instance *inst, uint16_t port, struct sockaddr_in *sa)
{
	const struct exec_run *r = launcher_inst_priv(inst);
	const struct conf_service *svc = launcher_inst_service(inst);
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};

	if (!exec_owns_port(inst)) {
		exec_addr(sa, svc->address, port);
		return 0;
	}
	if (r == NULL || !r->own_port || svc->nports == 0 || port != svc->ports[0])
		return -1;
	exec_addr(sa, lo, r->port);
	return 0;
}

const struct backend_ops backend_exec_ops = {
    .name = "exec",
    .start = exec_start,
    .stop = exec_stop,
    .pause = exec_pause,
    .resume = exec_resume,
    .died = exec_died,
    .cleanup = exec_cleanup,
    .probe_target = exec_probe_target,
    .upstream = exec_upstream,
};
