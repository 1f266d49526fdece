/*
 * The processes the launcher started: killed by process group, reaped on
 * SIGCHLD by pid. waitpid(-1) would also reap other modules' children, so
 * each known pid is polled instead (there are few).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "backend.h"
#include "core.h"
#include "log.h"

struct lchild {
	TAILQ_ENTRY(lchild) entry;
	struct launcher *l;
	struct instance *inst; /* NULL once abandoned */
	char *name;
	pid_t pid;
	bool killing;
	struct event *grace;
};

static void child_free(struct lchild *c)
{
	TAILQ_REMOVE(&c->l->children, c, entry);
	if (c->grace != NULL)
		event_free(c->grace);
	free(c->name);
	free(c);
}

/*
 * Reap C when it has exited. The zombie is kept (WNOWAIT) until the rest of
 * its group is killed, so the group id cannot have been reused.
 */
static bool child_reap(struct lchild *c, int *status)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1) {
		if (errno != ECHILD)
			return false;
		*status = 0; /* someone else reaped it */
		return true;
	}
	if (si.si_pid == 0)
		return false;
	kill(-c->pid, SIGKILL);
	if (waitpid(c->pid, status, 0) == -1)
		*status = 0;
	return true;
}

static void child_exited(struct lchild *c, int status)
{
	struct instance *inst = c->inst;
	struct launcher *l = c->l;
	char *name = c->name;

	c->name = NULL;
	child_free(c);
	if (inst != NULL)
		inst->ops->died(inst, status);
	else
		launcher_inst_predecessor_gone(l, name);
	free(name);
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct launcher *l = arg;
	struct lchild *c;
	int status;

	(void)sig;
	(void)what;
again:
	TAILQ_FOREACH(c, &l->children, entry)
	{
		if (child_reap(c, &status)) {
			/* The callbacks may add and remove children: rescan. */
			child_exited(c, status);
			goto again;
		}
	}
}

int launcher_children_init(struct launcher *l)
{
	if ((l->sigchld = evsignal_new(l->base, SIGCHLD, sigchld_cb, l)) == NULL ||
	    evsignal_add(l->sigchld, NULL) == -1) {
		log_warnx("launcher: cannot watch SIGCHLD");
		return -1;
	}
	return 0;
}

struct lchild *launcher_child_add(struct instance *inst, pid_t pid)
{
	struct lchild *c;

	if ((c = calloc(1, sizeof(*c))) == NULL || (c->name = strdup(inst->svc->name)) == NULL) {
		free(c);
		return NULL;
	}
	c->l = inst->l;
	c->inst = inst;
	c->pid = pid;
	TAILQ_INSERT_TAIL(&inst->l->children, c, entry);
	return c;
}

int launcher_child_signal(struct lchild *c, int sig)
{
	if (kill(-c->pid, sig) == -1 && kill(c->pid, sig) == -1) {
		if (errno == ESRCH)
			return 0; /* already gone, not yet reaped */
		log_warn("%s: kill %d", c->name, (int)c->pid);
		return -1;
	}
	return 0;
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lchild *c = arg;

	(void)fd;
	(void)what;
	log_debug("%s: still there after %d ms, SIGKILL", c->name, LAUNCHER_GRACE_MS);
	launcher_child_signal(c, SIGKILL);
}

void launcher_child_kill(struct lchild *c, bool graceful)
{
	struct timeval tv = {LAUNCHER_GRACE_MS / 1000, (LAUNCHER_GRACE_MS % 1000) * 1000};

	if (!graceful) {
		launcher_child_signal(c, SIGKILL);
		return;
	}
	if (c->killing)
		return;
	c->killing = true;
	launcher_child_signal(c, SIGTERM);
	launcher_child_signal(c, SIGCONT); /* a paused group cannot act on SIGTERM */
	if ((c->grace = evtimer_new(c->l->base, grace_cb, c)) == NULL ||
	    evtimer_add(c->grace, &tv) == -1)
		launcher_child_signal(c, SIGKILL);
}

void launcher_child_abandon(struct lchild *c, bool graceful)
{
	c->inst = NULL;
	launcher_child_kill(c, graceful);
}

void launcher_child_adopt(struct lchild *c, struct instance *inst)
{
	char *name = strdup(inst->svc->name);

	c->inst = inst;
	if (name == NULL)
		return; /* it keeps the pool VMM's name: only a log line says it */
	free(c->name);
	c->name = name;
}

bool launcher_child_pending(struct launcher *l, const char *name)
{
	struct lchild *c;

	TAILQ_FOREACH(c, &l->children, entry)
	if (c->inst == NULL && strcmp(c->name, name) == 0)
		return true;
	return false;
}

bool launcher_child_running(struct launcher *l, pid_t pid)
{
	struct lchild *c;

	TAILQ_FOREACH(c, &l->children, entry)
	if (c->pid == pid)
		return true;
	return false;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Daemon exit: blocking is fine here. */
void launcher_children_shutdown(struct launcher *l)
{
	struct lchild *c, *next;
	int64_t deadline = launcher_now_us() + LAUNCHER_GRACE_MS * 1000LL;
	int status;

	TAILQ_FOREACH(c, &l->children, entry)
	launcher_child_kill(c, true);
	while (!TAILQ_EMPTY(&l->children)) {
		bool late = launcher_now_us() >= deadline;

		for (c = TAILQ_FIRST(&l->children); c != NULL; c = next) {
			next = TAILQ_NEXT(c, entry);
			if (late)
				launcher_child_signal(c, SIGKILL);
			if (child_reap(c, &status))
				child_free(c);
		}
		if (!TAILQ_EMPTY(&l->children))
			sleep_ms(late ? 2 : 10);
	}
}
