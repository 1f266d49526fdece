/*
 * The launcher's start-of-day sweep (at launcher_new and every reload):
 * processes a killed beckond left are found by their pid files under
 * state_dir (<service>.<backend>.pid) and killed only when they carry their
 * backend's marker: QEMU's on its command line, exec's (BECKON_SERVICE) in
 * its environment. Real processes stand in for them:
 * this test binary re-executed with the marker in its argv (one execve, so
 * the command line is final once it shows; an interpreter reached through a
 * shim such as pyenv's re-execs and briefly has none). User networking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <event2/event.h>

#include "conf.h"
#include "launcher.h"

struct fix {
	char dir[64];
	struct conf conf;
	struct event_base *base;
	struct launcher *l;
};

/* The sweep as at start (launcher_new), then as at a reload. */
static int sweep(struct fix *f)
{
	if (f->l == NULL)
		return (f->l = launcher_new(f->base, &f->conf)) != NULL ? 0 : -1;
	return launcher_reload(f->l, &f->conf);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/beckon-qh.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->conf.state_dir = f->dir;
	f->conf.net_mode = CONF_NET_USER;
	assert_non_null(f->base = event_base_new());
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	launcher_free(f->l);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

#define STAND_IN "qemu-stand-in"

/* A process whose command line is STAND_IN ARGS, with ENV (or none); it sleeps 30 s. */
static pid_t spawn_env(const char *a1, const char *a2, const char *env)
{
	char *envp[] = {(char *)env, NULL};
	char *argv[] = {STAND_IN, (char *)a1, (char *)a2, NULL};
	pid_t pid = fork();

	assert_true(pid != -1);
	if (pid == 0) {
		execve("/proc/self/exe", argv, env != NULL ? envp : envp + 1);
		_exit(127);
	}
	return pid;
}

static pid_t spawn(const char *a1, const char *a2)
{
	return spawn_env(a1, a2, NULL);
}

/* Wait until PID's command line is in place (python has exec'd). */
static void wait_cmdline(pid_t pid, const char *want)
{
	char path[64], buf[4096];
	int i;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	for (i = 0; i < 500; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		for (size_t j = 0; j < n; j++)
			if (buf[j] == '\0')
				buf[j] = ' ';
		buf[n] = '\0';
		if (strstr(buf, want) != NULL)
			return;
		usleep(2000);
	}
	fail_msg("process %d never showed %s", (int)pid, want);
}

static void write_file(const struct fix *f, const char *name, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

static bool exists(const struct fix *f, const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	return stat(path, &st) == 0;
}

/* Reap PID; true when SIGKILL ended it. */
static bool killed(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static bool alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

static void test_stale_killed(void **state)
{
	struct fix *f = *state;
	pid_t stale = spawn("-name", "guest=beckon:www,process=beckon-www");
	char buf[32];

	wait_cmdline(stale, "guest=beckon:www,");
	snprintf(buf, sizeof(buf), "%d\n", (int)stale);
	write_file(f, "www.qemu.pid", buf);
	assert_int_equal(sweep(f), 0);
	assert_true(killed(stale));
	assert_false(exists(f, "www.qemu.pid"));
}

static void test_unmarked_left_alone(void **state)
{
	struct fix *f = *state;
	/* The marker of another service, and no marker at all. */
	pid_t other = spawn("-name", "guest=beckon:api,process=beckon-api");
	pid_t plain = spawn("plain", "process");
	/* The marker after something other than -name; a longer service name. */
	pid_t loose = spawn("-x", "guest=beckon:lo,process=beckon-lo");
	pid_t prefix = spawn("-name", "guest=beckon:prefix2,process=beckon-prefix2");
	char buf[32];

	wait_cmdline(other, "beckon:api");
	wait_cmdline(plain, "plain");
	wait_cmdline(loose, "-x");
	wait_cmdline(prefix, "beckon:prefix2,");
	snprintf(buf, sizeof(buf), "%d", (int)other);
	write_file(f, "www.qemu.pid", buf);
	snprintf(buf, sizeof(buf), "%d", (int)plain);
	write_file(f, "db.qemu.pid", buf);
	snprintf(buf, sizeof(buf), "%d", (int)loose);
	write_file(f, "lo.qemu.pid", buf);
	snprintf(buf, sizeof(buf), "%d", (int)prefix);
	write_file(f, "prefix.qemu.pid", buf);
	assert_int_equal(sweep(f), 0);
	usleep(20000);
	assert_true(alive(other));
	assert_true(alive(plain));
	assert_true(alive(loose));
	assert_true(alive(prefix));
	/* The pid files named nothing of ours: gone. */
	assert_false(exists(f, "www.qemu.pid"));
	assert_false(exists(f, "db.qemu.pid"));
	kill(other, SIGKILL);
	kill(plain, SIGKILL);
	kill(loose, SIGKILL);
	kill(prefix, SIGKILL);
	killed(other);
	killed(plain);
	killed(loose);
	killed(prefix);
}

static void test_junk_pid_files(void **state)
{
	struct fix *f = *state;
	char missing[128];

	write_file(f, "a.qemu.pid", "not a number\n");
	write_file(f, "b.qemu.pid", "");
	write_file(f, "c.qemu.pid", "2147483646\n"); /* no such process */
	write_file(f, ".qemu.pid", "1\n");           /* no service name: not ours to read */
	write_file(f, "www.console", "1\n");         /* not a pid file */
	assert_int_equal(sweep(f), 0);
	assert_false(exists(f, "a.qemu.pid"));
	assert_false(exists(f, "b.qemu.pid"));
	assert_false(exists(f, "c.qemu.pid"));
	assert_true(exists(f, ".qemu.pid"));
	assert_true(exists(f, "www.console"));
	/* Init (as at a reload) finds nothing more; a missing state_dir is fine. */
	assert_int_equal(sweep(f), 0);
	snprintf(missing, sizeof(missing), "%s/not/yet", f->dir);
	f->conf.state_dir = missing;
	assert_int_equal(sweep(f), 0);
	f->conf.state_dir = f->dir;
}

/* exec's marker is BECKON_SERVICE=<service> in the environment, the whole word. */
static void test_exec_marker(void **state)
{
	struct fix *f = *state;
	pid_t ours = spawn_env("exec", "job", "BECKON_SERVICE=job");
	pid_t longer = spawn_env("exec", "job2", "BECKON_SERVICE=job2");
	pid_t plain = spawn("exec", "plain");
	char buf[32];

	wait_cmdline(ours, "job");
	wait_cmdline(longer, "job2");
	wait_cmdline(plain, "plain");
	snprintf(buf, sizeof(buf), "%d\n", (int)ours);
	write_file(f, "job.exec.pid", buf);
	snprintf(buf, sizeof(buf), "%d\n", (int)longer);
	write_file(f, "job.exec.pid.not", buf); /* not a pid file */
	write_file(f, "jo.exec.pid", buf);      /* names job2's process: not ours */
	snprintf(buf, sizeof(buf), "%d\n", (int)plain);
	write_file(f, "plain.exec.pid", buf);
	/* A QEMU pid file naming the exec process: QEMU's marker is not there. */
	snprintf(buf, sizeof(buf), "%d\n", (int)ours);
	write_file(f, "job.qemu.pid", buf);
	assert_int_equal(sweep(f), 0);
	assert_true(killed(ours));
	usleep(20000);
	assert_true(alive(longer));
	assert_true(alive(plain));
	assert_false(exists(f, "job.exec.pid"));
	assert_false(exists(f, "jo.exec.pid"));
	assert_true(exists(f, "job.exec.pid.not"));
	kill(longer, SIGKILL);
	kill(plain, SIGKILL);
	killed(longer);
	killed(plain);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stale_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unmarked_left_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_junk_pid_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exec_marker, setup, teardown),
	};

	if (argc == 3 && strcmp(argv[0], STAND_IN) == 0) {
		sleep(30);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
