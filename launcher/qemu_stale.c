/*
 * Pid files and the QEMUs a killed beckond left. Each running QEMU is named
 * by <state_dir>/<service>.qemu.pid; its command line carries the marker
 * "-name guest=beckon:<service>,..." (qemu_argv). At start, a QEMU is killed
 * only when both hold: a pid file in our state_dir names it, and its
 * command line carries the marker for that service.
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

#include "log.h"
#include "qemu.h"

#define PIDFILE_SUFFIX ".qemu.pid"
#define STALE_WAIT_MS 1000

void qemu_pidfile(const char *dir, const char *service, pid_t pid)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s" PIDFILE_SUFFIX, dir, service);
	if (pid == 0) {
		unlink(path);
		return;
	}
	/* Only the next start's cleanup needs it: a failure is not fatal. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1 ||
	    dprintf(fd, "%d\n", (int)pid) < 0)
		log_warn("%s: pid file %s", service, path);
	if (fd != -1)
		close(fd);
}

/* Whether PID's command line carries our marker for SERVICE (qemu_argv's -name). */
static bool pid_is_ours(pid_t pid, const char *service)
{
	char path[64], want[80], buf[65536];
	ssize_t n;
	size_t off = 0, len;
	bool after_name = false;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	snprintf(want, sizeof(want), "guest=beckon:%s,", service);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	while (off < (size_t)n) {
		len = strlen(buf + off);
		if (after_name && strncmp(buf + off, want, strlen(want)) == 0)
			return true;
		after_name = strcmp(buf + off, "-name") == 0;
		off += len + 1;
	}
	return false;
}

/* SIGKILL a QEMU that is not our child and wait (briefly) until it is gone. */
static void kill_stale(pid_t pid, const char *service)
{
	struct timespec ts = {0, 2 * 1000000L};
	int i;

	log_info("%s: killing QEMU %d left by an earlier beckond", service, (int)pid);
	if (getpgid(pid) == pid)
		kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	for (i = 0; i < STALE_WAIT_MS / 2; i++) {
		if (kill(pid, 0) == -1 && errno == ESRCH)
			return;
		if (!pid_is_ours(pid, service)) /* a zombie has no command line */
			return;
		nanosleep(&ts, NULL);
	}
	log_warnx("%s: QEMU %d is still there after SIGKILL", service, (int)pid);
}

static void stale_one(const char *dir, const char *file)
{
	char path[4096], service[CONF_SERVICE_NAME_MAX + 1], buf[32];
	size_t n = strlen(file) - strlen(PIDFILE_SUFFIX);
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
	if (pid > 0 && qemu_host_pid_running(pid))
		return; /* ours, running */
	if (pid > 0 && pid_is_ours(pid, service))
		kill_stale(pid, service);
	unlink(path);
}

/* Kill the QEMUs named by pid files in DIR that an earlier beckond left. */
void qemu_stale_kill(const char *dir)
{
	struct dirent *d;
	size_t n, sl = strlen(PIDFILE_SUFFIX);
	DIR *dp;

	if ((dp = opendir(dir)) == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		n = strlen(d->d_name);
		if (n > sl && strcmp(d->d_name + n - sl, PIDFILE_SUFFIX) == 0)
			stale_one(dir, d->d_name);
	}
	closedir(dp);
}
