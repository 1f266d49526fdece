/*
 * What every backend that runs a process shares: the start (spawn.c, no
 * fork) with the console on a pipe, the pid file, the kill with a grace period (the
 * child registry's), and the sweep at start of what a killed beckond left:
 * a process named by one of our pid files and carrying its backend's
 * marker (backend_ops.is_ours).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "part.h"
#include "proc.h"
#include "prio.h"

#define PROC_SWEEP_WAIT_MS 1000

/* <state_dir>/<service>.<backend>.pid naming PID; removed when PID is 0. */
static void proc_pidfile(const struct instance *inst, pid_t pid)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.%s.pid", inst->state_dir, inst->svc->name,
	         inst->ops->name);
	if (pid == 0) {
		unlink(path);
		return;
	}
	/* Only the next start's sweep needs it: a failure is not fatal. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1 ||
	    dprintf(fd, "%d\n", (int)pid) < 0)
		log_warn("%s: pid file %s", inst->svc->name, path);
	if (fd != -1)
		close(fd);
}

void proc_close_console(struct proc *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->fd != -1)
		close(p->fd);
	p->ev = NULL;
	p->fd = -1;
}

static void proc_output(struct proc *p, const char *buf, size_t len)
{
	if (p->watch != NULL)
		p->watch(p, buf, len);
	launcher_inst_console(p->inst, buf, len);
}

static void proc_console_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n > 0)
		proc_output(p, buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		proc_close_console(p); /* the process lives on without a console */
}

/* Read what the pipe holds now: a process's last words say why it ended. */
static void proc_drain(struct proc *p)
{
	char buf[4096];
	ssize_t n;

	while (p->fd != -1) {
		n = read(p->fd, buf, sizeof(buf));
		if (n > 0)
			proc_output(p, buf, (size_t)n);
		else if (n == -1 && errno == EINTR)
			continue;
		else
			return;
	}
}

/* The child could not be tracked: do not leave it behind. */
static void proc_untracked(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int proc_spawn(struct proc *p, struct instance *inst, char **argv, const struct proc_fd *fds,
               size_t nfds)
{
	struct spawn s = {
	    .argv = argv, .fds = fds, .nfds = nfds, .nice = prio_child(), .thp_off = p->thp_off};
	int pp[2] = {-1, -1};
	pid_t pid;

	p->inst = inst;
	p->child = NULL;
	p->ev = NULL;
	p->fd = -1;
	if (pipe2(pp, O_CLOEXEC) == -1 || fcntl(pp[0], F_SETFL, O_NONBLOCK) == -1)
		goto fail;
	p->fd = pp[0];
	if ((p->ev = event_new(inst->l->base, p->fd, EV_READ | EV_PERSIST, proc_console_cb, p)) ==
	        NULL ||
	    event_add(p->ev, NULL) == -1)
		goto fail;
	s.out = pp[1];
	if ((pid = spawn_run(&s, inst->svc->name)) == -1) {
		errno = s.err;
		goto fail;
	}
	/* It exited 127: its console says why, as its own exec would have. */
	if (s.err != 0)
		dprintf(pp[1], "exec %s: %s\n", argv[0], strerror(s.err));
	close(pp[1]);
	if ((p->child = launcher_child_add(inst, pid)) == NULL) {
		log_warn("%s: %s", inst->svc->name, inst->ops->name);
		proc_untracked(pid);
		proc_close_console(p);
		return -1;
	}
	proc_pidfile(inst, pid);
	inst->pid = p->pid = pid;
	return 0;
fail:
	log_warn("%s: %s", inst->svc->name, inst->ops->name);
	if (pp[1] != -1)
		close(pp[1]);
	if (p->fd == -1 && pp[0] != -1)
		close(pp[0]);
	proc_close_console(p);
	return -1;
}

void proc_reaped(struct proc *p)
{
	p->child = NULL; /* freed by the registry */
	proc_drain(p);
	proc_close_console(p);
	proc_pidfile(p->inst, 0);
}

void proc_abandon(struct proc *p, bool graceful)
{
	if (p->child != NULL)
		launcher_child_abandon(p->child, graceful);
	p->child = NULL;
	proc_close_console(p);
	proc_pidfile(p->inst, 0);
}

void proc_kill(struct proc *p, bool graceful)
{
	if (p->child != NULL)
		launcher_child_kill(p->child, graceful);
}

int proc_signal(struct proc *p, int sig)
{
	return p->child != NULL ? launcher_child_signal(p->child, sig) : -1;
}

bool proc_has_word(pid_t pid, const char *file, const char *prev, const char *word, bool prefix)
{
	char path[64], buf[65536];
	size_t off = 0, wl = strlen(word);
	bool after = prev == NULL;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	while (off < (size_t)n) {
		if (after && strncmp(buf + off, word, wl) == 0 && (prefix || buf[off + wl] == '\0'))
			return true;
		if (prev != NULL)
			after = strcmp(buf + off, prev) == 0;
		off += strlen(buf + off) + 1;
	}
	return false;
}

/* SIGKILL a process that is not our child and wait (briefly) until it is gone. */
static void proc_sweep_kill(const struct backend_ops *ops, pid_t pid, const char *service)
{
	struct timespec ts = {0, 2 * 1000000L};

	log_info("%s: killing %s process %d left by an earlier beckond", service, ops->name,
	         (int)pid);
	if (getpgid(pid) == pid)
		kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	for (int i = 0; i < PROC_SWEEP_WAIT_MS / 2; i++) {
		if (kill(pid, 0) == -1 && errno == ESRCH)
			return;
		if (!ops->is_ours(pid, service)) /* a zombie has no command line */
			return;
		nanosleep(&ts, NULL);
	}
	log_warnx("%s: %s process %d is still there after SIGKILL", service, ops->name, (int)pid);
}

static void proc_sweep_one(struct launcher *l, const struct backend_ops *ops, const char *dir,
                           const char *file, size_t n)
{
	char path[4096], service[CONF_INSTANCE_NAME_MAX + 1], buf[32];
	ssize_t r;
	pid_t pid;
	int fd;

	if (n == 0 || n >= sizeof(service))
		return;
	memcpy(service, file, n);
	service[n] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[r > 0 ? r : 0] = '\0';
	pid = (pid_t)atoi(buf);
	if (pid > 0 && launcher_child_running(l, pid))
		return; /* ours, running */
	if (pid > 0 && ops->is_ours(pid, service))
		proc_sweep_kill(ops, pid, service);
	unlink(path);
}

/* Kill what OPS's pid files in DIR name that an earlier beckond left. */
static void proc_sweep(struct launcher *l, const struct backend_ops *ops, const char *dir)
{
	char suffix[64];
	struct dirent *d;
	size_t n, sl;
	DIR *dp;

	if (ops->is_ours == NULL || (dp = opendir(dir)) == NULL)
		return;
	sl = (size_t)snprintf(suffix, sizeof(suffix), ".%s.pid", ops->name);
	while ((d = readdir(dp)) != NULL) {
		n = strlen(d->d_name);
		if (n > sl && strcmp(d->d_name + n - sl, suffix) == 0)
			proc_sweep_one(l, ops, dir, d->d_name, n - sl);
	}
	closedir(dp);
}

/* At each config: the launcher stand-ins are made for, what a killed beckond left. */
static int proc_part_prepare(struct launcher *l, const struct conf *conf)
{
	const struct backend_ops *ops;

	vmmpool_set_launcher(l, conf->state_dir);
	for (int b = CONF_BACKEND_QEMU; b <= CONF_BACKEND_EXEC; b++)
		if ((ops = backend_lookup((enum conf_backend)b)) != NULL)
			proc_sweep(l, ops, conf->state_dir);
	return 0;
}

static void proc_part_free(struct launcher *l)
{
	(void)l;
	vmmpool_set_launcher(NULL, NULL);
}

static void proc_part_stats(const struct launcher *l, struct launcher_stats *st)
{
	(void)l;
	vmmpool_stats(&st->pool_idle, &st->pool_starting);
}

const struct launcher_part part_proc = {
    .name = "proc",
    .check = launcher_check_templates,
    .prepare = proc_part_prepare,
    .free = proc_part_free,
    .stats = proc_part_stats,
};
