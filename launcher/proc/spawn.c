/*
 * Starting a process without copying beckond. fork() copied beckond's page
 * tables for every guest and left beckond taking copy-on-write faults (and
 * the TLB flushes that go with them) while the child got to exec: in a boot
 * storm that cost beckond its DNS latency. clone(CLONE_VM | CLONE_VFORK)
 * runs the child in beckond's own memory, on a stack of its own, until it
 * execs; the calling thread waits meanwhile. posix_spawn does the same but
 * can neither ask for the parent-death signal nor reset the child's nice
 * value, so the child code is ours: system calls only (async-signal-safe),
 * everything else (the program's path, the environment) made beforehand.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "proc.h"
#include "prio.h"

/* The child's stack: it runs a few system calls, then execve. */
#define SPAWN_STACK (64 * 1024)

extern char **environ;

/*
 * A signal back to its default, by the system call itself: the libc
 * wrapper may be a sanitizer's interceptor, which the child (in beckond's
 * memory) must not run.
 */
static void spawn_sigdfl(int sig)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} ksa = {SIG_DFL, 0, NULL, 0};

	syscall(SYS_rt_sigaction, sig, &ksa, NULL, sizeof(ksa.mask));
}

/* The child, in beckond's memory: nothing here may allocate or lock. */
__attribute__((no_sanitize_address)) static int spawn_child(void *arg)
{
	struct spawn *s = arg;
	unsigned long none = 0;
	struct rlimit norealtime = {0, 0};
	int lowest = 3, null;

	setpgid(0, 0);
	/* Should beckond die by SIGKILL, what it started goes with it. */
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != s->parent)
		_exit(127);
	/* Every handler is beckond's, in this very memory: none may run here. */
	for (int sig = 1; sig < _NSIG; sig++)
		spawn_sigdfl(sig);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	/* beckond may have been allowed realtime priority (its DNS thread): no guest is. */
	syscall(SYS_prlimit64, 0, RLIMIT_RTPRIO, &norealtime, NULL);
	if ((null = open("/dev/null", O_RDONLY)) != -1 && null != 0)
		dup2(null, 0);
	dup2(s->out, 1);
	dup2(s->out, 2);
	fcntl(1, F_SETFD, 0); /* dup2 onto itself would keep O_CLOEXEC */
	fcntl(2, F_SETFD, 0);
	for (size_t i = 0; i < s->nfds; i++) {
		if (s->fds[i].fd != s->fds[i].target)
			dup2(s->fds[i].fd, s->fds[i].target);
		fcntl(s->fds[i].target, F_SETFD, 0);
		if (s->fds[i].target >= lowest)
			lowest = s->fds[i].target + 1;
	}
	if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == -1)
		for (int fd = lowest; fd < 4096; fd++)
			close(fd);
	execve(s->path, s->argv, s->envp);
	s->err = errno; /* beckond reads it once this child is gone */
	_exit(127);
}

/* ARGV[0] as execvp would find it, in BUF; -1 (errno set) when not found. */
static int spawn_path(const char *file, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;
	int err = ENOENT;

	if (strchr(file, '/') != NULL)
		return snprintf(buf, len, "%s", file) < (int)len ? 0 : (errno = ENAMETOOLONG, -1);
	for (p = path != NULL ? path : "/usr/local/bin:/usr/bin:/bin"; *p; p = end + (*end != 0)) {
		end = strchrnul(p, ':');
		if (snprintf(buf, len, "%.*s%s%s", (int)(end - p), p, end == p ? "" : "/", file) >=
		    (int)len)
			continue;
		if (access(buf, X_OK) == 0)
			return 0;
		if (errno == EACCES)
			err = EACCES;
	}
	errno = err;
	return -1;
}

/* beckond's environment with BECKON_SERVICE=SERVICE (the sweep's marker). */
static char **spawn_env(const char *service, char **mark)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 2, sizeof(*env))) == NULL ||
	    asprintf(mark, "BECKON_SERVICE=%s", service) == -1) {
		free(env);
		*mark = NULL;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "BECKON_SERVICE=", 15) != 0)
			env[k++] = environ[i];
	env[k] = *mark;
	return env;
}

pid_t spawn_run(struct spawn *s, const char *service)
{
	char path[PATH_MAX], *mark = NULL, **env = NULL;
	static char stack[SPAWN_STACK] __attribute__((aligned(16)));
	sigset_t all, old;
	pid_t pid = -1;

	s->err = 0;
	if ((env = spawn_env(service, &mark)) == NULL)
		return -1;
	/* Not found: execve says so in the child, as execvp did. */
	s->path = spawn_path(s->argv[0], path, sizeof(path)) == 0 ? path : s->argv[0];
	s->envp = env;
	s->parent = getpid();
	/* Blocked until the child has reset every handler to the default. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* One stack will do: only the event loop's thread spawns, and it waits. */
	/*
	 * No transparent huge pages for the child: the flag is the memory's,
	 * which the child shares with beckond until it execs, and exec copies
	 * it into the child's own. So beckond sets it on itself for the time
	 * of the spawn (it waits meanwhile) and clears it after; set in the
	 * child, it would stay on beckond and on every later child. A failure
	 * only costs memory.
	 */
	if (s->thp_off)
		prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	pid = clone(spawn_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, s);
	if (pid == -1)
		s->err = errno;
	if (s->thp_off)
		prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	/*
	 * Its nice value from here, not from the child: lowered there, the
	 * child would wait for a CPU behind the guests it joins while beckond,
	 * its vfork parent, waits for it to exec. It has just exec'd: its
	 * threads, which would keep beckond's value, are not made yet.
	 */
	if (pid > 0 && s->err == 0 && s->nice != PRIO_KEEP)
		prio_child_set(pid);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(env);
	free(mark);
	return pid;
}
