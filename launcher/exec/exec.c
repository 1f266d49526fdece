/*
 * The exec backend: the service is a process of our own, started from
 * exec.command (proc_spawn: its own process group, stdout and stderr its
 * console). Pause and resume are SIGSTOP and SIGCONT to the group.
 *
 * The command is split into argv here rather than run by /bin/sh -c: no
 * value substituted into it (a path, a cmdline) is ever parsed as shell
 * syntax, and the process we track is the service itself, not a shell.
 * Who wants a shell writes one: command = "sh -c 'sleep 1; exec httpd ...'".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "backend.h"
#include "proc.h"
#include "exec.h"
#include "log.h"

struct exec_run {
	struct proc proc;
	uint16_t port; /* {port}; 0 when the service has none */
	bool own_port; /* a loopback port of its own (hold "proxy") */
};

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

/*
 * A command that opens {tap} (a Solo5 tender, QEMU run by hand) gets it made
 * on the bridge; one that serves on the host or in a namespace of its own
 * has no use for it (and a neighbour entry for its address would misroute).
 */
static bool exec_bridge(const struct conf_service *svc)
{
	return svc->exec_command != NULL && strstr(svc->exec_command, "{tap}") != NULL;
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
	struct backend_vars v;
	struct backend_vars_buf vb;
	char err[128], *cmdline = NULL;
	char **argv = NULL;

	if (svc->exec_command == NULL) {
		log_warnx("%s: exec backend without exec.command", svc->name);
		return NULL;
	}
	backend_vars_fill(inst, &v, &vb);
	if (port != 0)
		snprintf(vb.port, sizeof(vb.port), "%u", port);
	if (svc->cmdline != NULL &&
	    (cmdline = backend_expand(svc->cmdline, &v, err, sizeof(err))) == NULL) {
		log_warnx("%s: cmdline: %s", svc->name, err);
		return NULL;
	}
	v.cmdline = cmdline;
	if ((argv = backend_exec_argv(svc->exec_command, &v, err, sizeof(err))) == NULL)
		log_warnx("%s: exec.command: %s", svc->name, err);
	free(cmdline);
	return argv;
}

static int exec_start(struct instance *inst)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	bool own = exec_owns_port(inst);
	uint16_t port = own ? exec_own_port(svc->name) : svc->nports ? svc->ports[0] : 0;
	struct exec_run *r;
	char **argv;
	int rc;

	/* Bridge mode: the tap the command opens ({tap}) is there, on the bridge. */
	if (launcher_inst_tap(inst)[0] != '\0' && exec_bridge(svc) &&
	    backend_bridge_up(inst) == -1) {
		log_warnx("%s: host networking failed", svc->name);
		return -1;
	}
	if ((own && port == 0) || (argv = exec_argv(inst, port)) == NULL)
		return -1;
	if (own && svc->exec_command != NULL && strstr(svc->exec_command, "{port}") == NULL)
		log_warnx("%s: under hold \"proxy\" the proxy holds %s; the command should listen "
		          "on 127.0.0.1:{port}",
		          svc->name, launcher_inst_address(inst));
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("%s: exec", svc->name);
		backend_exec_argv_free(argv);
		return -1;
	}
	r->port = port;
	r->own_port = own;
	rc = proc_spawn(&r->proc, inst, argv, NULL, 0);
	backend_exec_argv_free(argv);
	if (rc == -1) {
		free(r);
		return -1;
	}
	launcher_inst_set_priv(inst, r);
	log_debug("%s: exec pid %d", svc->name, (int)r->proc.pid);
	return 0;
}

static void exec_stop(struct instance *inst, bool graceful)
{
	struct exec_run *r = launcher_inst_priv(inst);

	if (r != NULL)
		proc_kill(&r->proc, graceful);
}

static int exec_pause(struct instance *inst)
{
	struct exec_run *r = launcher_inst_priv(inst);

	return r != NULL ? proc_signal(&r->proc, SIGSTOP) : -1;
}

static int exec_resume(struct instance *inst)
{
	struct exec_run *r = launcher_inst_priv(inst);

	return r != NULL ? proc_signal(&r->proc, SIGCONT) : -1;
}

static void exec_died(struct instance *inst, int status)
{
	struct exec_run *r = launcher_inst_priv(inst);

	if (r != NULL) {
		/* Its last words may still be in the pipe: the console probe wants them. */
		proc_reaped(&r->proc);
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
	proc_abandon(&r->proc, graceful);
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

/* cmdline and exec.command: known placeholders, quotes that close. */
static int exec_check(const struct conf_service *svc, FILE *errs, const char *where)
{
	struct backend_vars v;
	char err[128], **argv;
	int rc = backend_check_cmdline(svc, errs, where);

	if (svc->exec_command == NULL)
		return rc;
	backend_vars_dummy(&v);
	if ((argv = backend_exec_argv(svc->exec_command, &v, err, sizeof(err))) == NULL) {
		fprintf(errs, "%s.exec.command: %s\n", where, err);
		return -1;
	}
	backend_exec_argv_free(argv);
	return rc;
}

/* proc_spawn's environment marker names the service. */
static bool exec_is_ours(pid_t pid, const char *service)
{
	char word[CONF_INSTANCE_NAME_MAX + 32];

	snprintf(word, sizeof(word), "BECKON_SERVICE=%s", service);
	return proc_has_word(pid, "environ", NULL, word, false);
}

const struct backend_ops backend_exec_ops = {
    .name = "exec",
    .bridge = exec_bridge,
    .is_ours = exec_is_ours,
    .check = exec_check,
    .start = exec_start,
    .stop = exec_stop,
    .pause = exec_pause,
    .resume = exec_resume,
    .died = exec_died,
    .cleanup = exec_cleanup,
    .probe_target = exec_probe_target,
    .upstream = exec_upstream,
};
