/*
 * The launcher's state machine with a real event_base and real processes
 * (sleep, sh, busybox httpd on 127.0.0.x): the test drives the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <event2/event.h>

#include "backend.h"
#include "conf.h"
#include "fixture.h"
#include "launcher.h"
#include "log.h"
#include "room.h"

/* What a waiter saw. */
struct seen {
	int calls, ok;
	struct instance *inst;
};

static void seen_cb(struct instance *inst, bool ok, void *arg)
{
	struct seen *s = arg;

	s->calls++;
	s->ok += ok;
	s->inst = inst;
}

/* A port on 127.0.0.1 nothing listens on (just freed by us). */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void svc_set(struct conf_service *s, const char *name, const char *addr, int port,
                    const char *ready, uint64_t timeout_ms, const char *cmd)
{
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	s->cmdline = strdup("");
	inet_pton(AF_INET, addr, &s->address);
	s->ports[0] = (uint16_t)port;
	s->nports = port ? 1 : 0;
	s->backend = CONF_BACKEND_EXEC;
	s->memory = 16 << 20;
	s->vcpus = 1;
	s->boot_timeout_ms = timeout_ms;
	if (strncmp(ready, "delay:", 6) == 0) {
		s->ready = CONF_READY_DELAY;
		s->ready_delay_ms = strtoull(ready + 6, NULL, 10);
	} else if (strncmp(ready, "http:", 5) == 0) {
		s->ready = CONF_READY_HTTP;
		s->ready_arg = strdup(ready + 5);
	} else if (strncmp(ready, "console:", 8) == 0) {
		s->ready = CONF_READY_CONSOLE;
		s->ready_arg = strdup(ready + 8);
	} else {
		s->ready = CONF_READY_TCP;
	}
	s->idle_timeout_ms = 60000;
	s->exec_command = cmd ? strdup(cmd) : NULL;
}

/* Run the loop until *FLAG is nonzero or MS pass; true when it was set. */
static bool run_until_int(struct fix *f, const int *flag, int ms)
{
	int64_t end = fix_now_ms() + ms;

	while (!*flag && fix_now_ms() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	return *flag != 0;
}

static bool pid_gone(pid_t pid)
{
	return kill(pid, 0) == -1 && errno == ESRCH;
}

/* Run the loop until PID is gone (reaped) or MS pass. */
static bool run_until_gone(struct fix *f, pid_t pid, int ms)
{
	int64_t end = fix_now_ms() + ms;

	while (!pid_gone(pid) && fix_now_ms() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	return pid_gone(pid);
}

static pid_t pid_of(struct instance *inst)
{
	struct instance_info info;

	launcher_info(inst, &info);
	return info.pid;
}

static int count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	int n = 0, ch;

	if (fp == NULL)
		return 0;
	while ((ch = fgetc(fp)) != EOF)
		n += ch == '\n';
	fclose(fp);
	return n;
}

/* The process state letter from /proc/PID/stat ('T' when stopped). */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return '?';
	p = fgets(buf, sizeof(buf), fp);
	fclose(fp);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return '?';
	return p[2];
}

/*
 * Run the loop until PID is stopped (STOPPED true: 'T') or not, at most MS:
 * a signal takes effect when the process next runs, late on a loaded machine.
 */
static bool run_until_proc(struct fix *f, pid_t pid, bool stopped, int ms)
{
	int64_t end = fix_now_ms() + ms;

	while ((proc_state(pid) == 'T') != stopped && fix_now_ms() < end)
		fix_run_for(f, 10);
	return (proc_state(pid) == 'T') == stopped;
}

static void test_wake_idempotent(void **state)
{
	struct fix *f = *state;
	struct seen s[10] = {{0}};
	struct launcher_stats st;
	struct instance_info info;
	struct instance *inst;
	char cmd[512], counter[128];
	int i, all = 0;

	snprintf(counter, sizeof(counter), "%s/runs", f->dir);
	snprintf(cmd, sizeof(cmd), "sh -c 'echo run >> %s; exec sleep 100'", counter);
	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:100", 5000, cmd);
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	assert_non_null(inst);
	assert_null(launcher_find(f->l, "nope"));
	assert_int_equal(fix_state_of(inst), INST_STOPPED);
	for (i = 0; i < 10; i++)
		assert_int_equal(launcher_wake(inst, seen_cb, &s[i], NULL), 0);
	assert_int_equal(fix_state_of(inst), INST_BOOTING);
	for (i = 0; i < 10 && run_until_int(f, &s[i].calls, 3000); i++)
		;
	fix_run_for(f, 50); /* nothing more may come */
	for (i = 0; i < 10; i++) {
		assert_int_equal(s[i].calls, 1);
		assert_int_equal(s[i].ok, 1);
		assert_ptr_equal(s[i].inst, inst);
		all += s[i].calls;
	}
	assert_int_equal(all, 10);
	assert_int_equal(count_lines(counter), 1);
	assert_int_equal(fix_state_of(inst), INST_READY);
	/* Ready now: 1, and the callback is not called. */
	assert_int_equal(launcher_wake(inst, seen_cb, &s[0], NULL), 1);
	fix_run_for(f, 20);
	assert_int_equal(s[0].calls, 1);
	launcher_info(inst, &info);
	assert_string_equal(info.name, "www");
	assert_string_equal(info.address, "127.0.0.1");
	assert_int_equal(info.boots, 1);
	assert_true(info.pid > 0);
	assert_true(info.uptime_ms >= 0 && info.uptime_ms < 1000);
	assert_true(info.idle_ms >= 0 && info.last_activity > 0);
	launcher_stats(f->l, &st);
	assert_int_equal(st.boots_ok, 1);
	assert_int_equal(st.boots_failed, 0);
	assert_int_equal(st.instances[INST_READY], 1);
}

/* B's callback cancels C, whose result is known but not yet delivered. */
static struct launcher_waiter *cancel_me;

static void cancel_other_cb(struct instance *inst, bool ok, void *arg)
{
	seen_cb(inst, ok, arg);
	launcher_cancel(cancel_me);
}

static void test_cancel(void **state)
{
	struct fix *f = *state;
	struct seen a = {0}, b = {0}, c = {0};
	struct launcher_waiter *ha;
	struct instance *inst;

	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:50", 5000, "sleep 100");
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_wake(inst, seen_cb, &a, &ha), 0);
	assert_non_null(ha);
	assert_int_equal(launcher_wake(inst, cancel_other_cb, &b, NULL), 0);
	assert_int_equal(launcher_wake(inst, seen_cb, &c, &cancel_me), 0);
	launcher_cancel(ha);
	launcher_cancel(NULL);
	assert_true(run_until_int(f, &b.calls, 3000));
	fix_run_for(f, 30);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.ok, 1);
	assert_int_equal(c.calls, 0);
}

static void test_boot_timeout(void **state)
{
	struct fix *f = *state;
	struct seen s = {0};
	struct launcher_stats st;
	struct instance *inst;
	int64_t t0;
	pid_t pid;

	svc_set(&f->svcs[0], "www", "127.0.0.1", free_port(), "tcp", 300, "sleep 1000");
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	t0 = fix_now_ms();
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	pid = pid_of(inst);
	assert_true(pid > 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_true(fix_now_ms() - t0 >= 290);
	assert_true(fix_now_ms() - t0 < 1500);
	assert_int_equal(s.ok, 0);
	assert_int_equal(fix_state_of(inst), INST_FAILED);
	assert_int_equal(pid_of(inst), 0);
	assert_true(run_until_gone(f, pid, 3000));
	launcher_stats(f->l, &st);
	assert_int_equal(st.boots_failed, 1);
	assert_int_equal(st.instances[INST_FAILED], 1);
}

static void test_exit_during_boot(void **state)
{
	struct fix *f = *state;
	struct seen s = {0}, s2 = {0};
	struct instance *inst;

	svc_set(&f->svcs[0], "www", "127.0.0.1", free_port(), "tcp", 5000,
	        "sh -c 'echo oops; exit 3'");
	/* The delay outlasts the wait below: the exec failure, not the clock, must end the boot. */
	svc_set(&f->svcs[1], "gone", "127.0.0.1", 0, "delay:4000", 5000,
	        "/nonexistent/beckon-test-binary");
	fix_start(f, 2);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_int_equal(s.ok, 0);
	assert_int_equal(fix_state_of(inst), INST_FAILED);
	/* A command that cannot be run fails the boot the same way. */
	inst = launcher_find(f->l, "gone");
	assert_int_equal(launcher_wake(inst, seen_cb, &s2, NULL), 0);
	assert_true(run_until_int(f, &s2.calls, 3000));
	assert_int_equal(s2.ok, 0);
	assert_int_equal(fix_state_of(inst), INST_FAILED);
}

static void test_death_noticed(void **state)
{
	struct fix *f = *state;
	struct seen s = {0}, s2 = {0};
	struct instance *inst;
	struct instance_info info;
	pid_t pid, pid2;

	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_int_equal(s.ok, 1);
	pid = pid_of(inst);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(fix_run_until_state(f, inst, INST_STOPPED, 2000));
	assert_true(pid_gone(pid));
	launcher_info(inst, &info);
	assert_int_equal(info.pid, 0);
	assert_int_equal(info.uptime_ms, 0);
	/* The next wake boots it again. */
	assert_int_equal(launcher_wake(inst, seen_cb, &s2, NULL), 0);
	assert_true(run_until_int(f, &s2.calls, 3000));
	assert_int_equal(s2.ok, 1);
	pid2 = pid_of(inst);
	assert_true(pid2 > 0 && pid2 != pid);
	launcher_info(inst, &info);
	assert_int_equal(info.boots, 2);
}

static void test_failed_boots_again(void **state)
{
	struct fix *f = *state;
	struct seen s = {0}, s2 = {0};
	struct instance *inst;
	char cmd[512], flag[128];

	/* Exits at the first run, serves at the second. */
	snprintf(flag, sizeof(flag), "%s/flag", f->dir);
	snprintf(cmd, sizeof(cmd), "sh -c 'test -e %s || { touch %s; exit 1; }; exec sleep 100'",
	         flag, flag);
	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:200", 5000, cmd);
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_int_equal(s.ok, 0);
	assert_int_equal(fix_state_of(inst), INST_FAILED);
	assert_int_equal(launcher_wake(inst, seen_cb, &s2, NULL), 0);
	assert_true(run_until_int(f, &s2.calls, 3000));
	assert_int_equal(s2.ok, 1);
	assert_int_equal(fix_state_of(inst), INST_READY);
}

/* Run the loop until INST runs a process other than OLD, at most MS; its pid, or 0. */
static pid_t run_until_new_pid(struct fix *f, struct instance *inst, pid_t old, int ms)
{
	int64_t end = fix_now_ms() + ms;

	while ((pid_of(inst) == 0 || pid_of(inst) == old) && fix_now_ms() < end)
		fix_run_for(f, 10);
	return pid_of(inst) != old ? pid_of(inst) : 0;
}

/*
 * A guest that resets itself while booting boots again in the same wake,
 * its waiter still waiting, up to LAUNCHER_REBOOTS times; one more fails
 * the boot. Once ready, a reset stops the instance.
 */
static void test_reboot_while_booting(void **state)
{
	struct fix *f = *state;
	struct seen s = {0}, s2 = {0};
	struct instance *inst;
	char cmd[512], runs[128];
	pid_t pid[LAUNCHER_REBOOTS + 1];
	int i;

	snprintf(runs, sizeof(runs), "%s/runs", f->dir);
	snprintf(cmd, sizeof(cmd), "sh -c 'echo run >> %s; exec sleep 100'", runs);
	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:700", 30000, cmd);
	svc_set(&f->svcs[1], "loop", "127.0.0.1", 0, "delay:30000", 60000, "sleep 100");
	fix_start(f, 2);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	pid[0] = pid_of(inst);
	assert_true(pid[0] > 0);
	for (i = 0; i < 300 && count_lines(runs) < 1; i++) /* the first run has begun */
		fix_run_for(f, 10);
	/* Reset once: a new process, the waiter not told yet, then ready. */
	assert_true(launcher_inst_rebooted(inst));
	assert_int_equal(fix_state_of(inst), INST_BOOTING);
	assert_true((pid[1] = run_until_new_pid(f, inst, pid[0], 3000)) > 0);
	assert_true(run_until_gone(f, pid[0], 3000));
	assert_int_equal(s.calls, 0);
	assert_true(run_until_int(f, &s.calls, 5000));
	assert_int_equal(s.ok, 1);
	assert_int_equal(fix_state_of(inst), INST_READY);
	assert_int_equal(count_lines(runs), 2);
	/* Ready: a reset stops it, the process goes. */
	assert_true(launcher_inst_rebooted(inst));
	assert_true(fix_run_until_state(f, inst, INST_STOPPED, 3000));
	assert_true(run_until_gone(f, pid[1], 3000));

	/* Resets every boot: LAUNCHER_REBOOTS boots more, then the boot fails. */
	inst = launcher_find(f->l, "loop");
	assert_int_equal(launcher_wake(inst, seen_cb, &s2, NULL), 0);
	pid[0] = pid_of(inst);
	for (i = 1; i <= LAUNCHER_REBOOTS; i++) {
		assert_true(launcher_inst_rebooted(inst));
		assert_int_equal(fix_state_of(inst), INST_BOOTING);
		assert_true((pid[i] = run_until_new_pid(f, inst, pid[i - 1], 3000)) > 0);
	}
	assert_int_equal(s2.calls, 0);
	assert_true(launcher_inst_rebooted(inst));
	assert_int_equal(fix_state_of(inst), INST_FAILED);
	assert_true(run_until_int(f, &s2.calls, 3000));
	assert_int_equal(s2.ok, 0);
	assert_true(run_until_gone(f, pid[LAUNCHER_REBOOTS], 3000));
	/* Not running: nothing for the launcher to do. */
	assert_false(launcher_inst_rebooted(inst));
	/* The count is per wake: the next wake may reset again. */
	s2.calls = 0;
	assert_int_equal(launcher_wake(inst, seen_cb, &s2, NULL), 0);
	pid[0] = pid_of(inst);
	assert_true(launcher_inst_rebooted(inst));
	assert_int_equal(fix_state_of(inst), INST_BOOTING);
	assert_true(run_until_new_pid(f, inst, pid[0], 3000) > 0);
}

static void test_delay_probe(void **state)
{
	struct fix *f = *state;
	struct seen s = {0};
	struct instance *inst;
	int64_t t0;

	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:300", 5000, "sleep 100");
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	t0 = fix_now_ms();
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	fix_run_for(f, 200);
	assert_int_equal(s.calls, 0);
	assert_int_equal(fix_state_of(inst), INST_BOOTING);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_true(fix_now_ms() - t0 >= 290); /* libevent timers run on a coarse clock (4 ms) */
	assert_int_equal(s.ok, 1);
}

static void test_console_probe(void **state)
{
	struct fix *f = *state;
	struct seen s = {0};
	struct instance *inst;
	char path[128], buf[256] = "";
	int64_t t0;
	FILE *fp;

	/*
	 * "port 80" arrives first as the start of "port 8080" (not a match for
	 * "^port 80$"), the line split over two writes; the match is the last.
	 */
	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "console:^port 80$", 5000,
	        "sh -c 'printf \"boot\\nport 80\"; sleep 0.3; printf \"80\\n\"; sleep 0.3; "
	        "printf \"po\"; sleep 0.1; echo \"rt 80\"; exec sleep 100'");
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	t0 = fix_now_ms();
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_int_equal(s.ok, 1);
	assert_true(fix_now_ms() - t0 >= 650);
	/* The console is kept in <state_dir>/<name>.console. */
	snprintf(path, sizeof(path), "%s/www.console", f->conf.state_dir);
	assert_non_null(fp = fopen(path, "r"));
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, fp) > 0, 1);
	fclose(fp);
	assert_string_equal(buf, "boot\nport 8080\nport 80\n");
}

static void test_http_probe(void **state)
{
	struct fix *f = *state;
	struct seen s = {0}, t = {0};
	struct instance *inst;
	char cmd[512], doc[128];
	int port = free_port(), port2 = free_port();
	int64_t t0;

	/* httpd answers 404 at once; ready.html appears 300 ms later. */
	snprintf(doc, sizeof(doc), "%s/doc", f->dir);
	mkdir(doc, 0755);
	snprintf(cmd, sizeof(cmd),
	         "sh -c '(sleep 0.3; echo ok > %s/ready.html) & exec busybox httpd -f -p "
	         "127.0.0.2:%d -h %s'",
	         doc, port, doc);
	svc_set(&f->svcs[0], "www", "127.0.0.2", port, "http:/ready.html", 5000, cmd);
	snprintf(cmd, sizeof(cmd), "busybox httpd -f -p {address}:%d -h %s", port2, doc);
	svc_set(&f->svcs[1], "tcp", "127.0.0.3", port2, "tcp", 5000, cmd);
	fix_start(f, 2);
	inst = launcher_find(f->l, "www");
	t0 = fix_now_ms();
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_int_equal(s.ok, 1);
	assert_true(fix_now_ms() - t0 >= 290);
	/* tcp: ready as soon as the port accepts ({address} substituted). */
	inst = launcher_find(f->l, "tcp");
	assert_int_equal(launcher_wake(inst, seen_cb, &t, NULL), 0);
	assert_true(run_until_int(f, &t.calls, 3000));
	assert_int_equal(t.ok, 1);
}

static void test_pause_resume(void **state)
{
	struct fix *f = *state;
	struct seen s = {0};
	struct instance *inst;
	struct launcher_stats st;
	pid_t pid;
	char c;

	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_pause(inst), -1); /* not running */
	assert_int_equal(launcher_resume(inst), -1);
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	pid = pid_of(inst);
	assert_int_equal(launcher_resume(inst), -1); /* not paused */
	assert_int_equal(launcher_pause(inst), 0);
	assert_int_equal(fix_state_of(inst), INST_PAUSED);
	assert_true(run_until_proc(f, pid, true, 5000));
	launcher_stats(f->l, &st);
	assert_int_equal(st.instances[INST_PAUSED], 1);
	assert_int_equal(launcher_resume(inst), 0);
	assert_int_equal(fix_state_of(inst), INST_READY);
	assert_true(run_until_proc(f, pid, false, 5000));
	/* Alive and going on: sleeping, running, or (on a loaded machine, as CI
	 * saw once) in an uninterruptible wait; not stopped, not gone. */
	c = proc_state(pid);
	if (c != 'S' && c != 'R' && c != 'D')
		print_error("its state after the resume: %c\n", c);
	assert_true(c == 'S' || c == 'R' || c == 'D');
	/* A wake resumes a paused instance at once. */
	assert_int_equal(launcher_pause(inst), 0);
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 1);
	assert_int_equal(fix_state_of(inst), INST_READY);
	assert_int_equal(pid_of(inst), pid);
}

static void test_stop(void **state)
{
	struct fix *f = *state;
	struct seen s = {0}, b = {0}, w = {0};
	struct instance *inst;
	int64_t t0;
	pid_t pid;

	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	/*
	 * Ignores SIGTERM: stopped by SIGKILL after the grace period. Ready once
	 * the trap is set (a delay can end before sh gets that far on a busy machine).
	 */
	svc_set(&f->svcs[1], "stubborn", "127.0.0.1", 0, "console:^armed$", 5000,
	        "sh -c 'trap \"\" TERM; echo armed; exec sleep 100'");
	fix_start(f, 2);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_stop(inst), 0); /* already stopped */
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	pid = pid_of(inst);
	assert_int_equal(launcher_stop(inst), 0);
	assert_int_equal(fix_state_of(inst), INST_STOPPING);
	/* Woken while stopping: it boots again once stopped. */
	assert_int_equal(launcher_wake(inst, seen_cb, &w, NULL), 0);
	assert_true(run_until_int(f, &w.calls, 3000));
	assert_true(pid_gone(pid));
	assert_int_equal(w.ok, 1);
	assert_true(pid_of(inst) != pid);

	/* A stop during the boot ends the wait with false. */
	assert_int_equal(launcher_stop(inst), 0);
	assert_true(fix_run_until_state(f, inst, INST_STOPPED, 3000));
	assert_int_equal(launcher_wake(inst, seen_cb, &b, NULL), 0);
	assert_int_equal(launcher_stop(inst), 0);
	assert_true(run_until_int(f, &b.calls, 3000));
	assert_int_equal(b.ok, 0);
	assert_true(fix_run_until_state(f, inst, INST_STOPPED, 3000));

	/* A wake without a callback while stopping: booted again all the same. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	assert_int_equal(launcher_stop(inst), 0);
	assert_int_equal(launcher_wake(inst, NULL, NULL, NULL), 0);
	assert_true(fix_run_until_state(f, inst, INST_READY, 3000));

	inst = launcher_find(f->l, "stubborn");
	memset(&s, 0, sizeof(s));
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), 0);
	assert_true(run_until_int(f, &s.calls, 3000));
	pid = pid_of(inst);
	t0 = fix_now_ms();
	assert_int_equal(launcher_stop(inst), 0);
	fix_run_for(f, 500);
	assert_int_equal(fix_state_of(inst), INST_STOPPING);
	assert_false(pid_gone(pid));
	assert_true(fix_run_until_state(f, inst, INST_STOPPED, 4000));
	assert_true(fix_now_ms() - t0 >= 1900);
	assert_true(pid_gone(pid));
}

static void test_reload(void **state)
{
	struct fix *f = *state;
	struct seen a = {0}, b = {0}, c = {0};
	struct instance *ia, *ib, *ic;
	pid_t pa, pb;

	svc_set(&f->svcs[0], "a", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	svc_set(&f->svcs[1], "b", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	svc_set(&f->svcs[2], "c", "127.0.0.1", 0, "delay:10000", 20000, "sleep 100");
	fix_start(f, 3);
	ia = launcher_find(f->l, "a");
	ib = launcher_find(f->l, "b");
	ic = launcher_find(f->l, "c");
	assert_int_equal(launcher_wake(ia, seen_cb, &a, NULL), 0);
	assert_int_equal(launcher_wake(ib, seen_cb, &b, NULL), 0);
	assert_int_equal(launcher_wake(ic, seen_cb, &c, NULL), 0); /* still booting at reload */
	assert_true(run_until_int(f, &a.calls, 3000));
	assert_true(run_until_int(f, &b.calls, 3000));
	pa = pid_of(ia);
	pb = pid_of(ib);

	/* a unchanged, b changed, c removed, d new. */
	free(f->svcs[1].exec_command);
	f->svcs[1].exec_command = strdup("sleep 99");
	fix_svc_clear(&f->svcs[2]);
	svc_set(&f->svcs[2], "d", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	assert_int_equal(launcher_reload(f->l, &f->conf), 0);
	/* The removed one's waiter heard false before it went. */
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.ok, 0);
	assert_ptr_equal(launcher_find(f->l, "a"), ia);
	assert_int_equal(fix_state_of(ia), INST_READY);
	assert_int_equal(pid_of(ia), pa);
	assert_null(launcher_find(f->l, "c"));
	ib = launcher_find(f->l, "b");
	assert_int_equal(fix_state_of(ib), INST_STOPPED);
	assert_string_equal(launcher_service(ib)->exec_command, "sleep 99");
	assert_non_null(launcher_find(f->l, "d"));
	assert_true(run_until_gone(f, pb, 3000));
	assert_false(pid_gone(pa));

	/* The launcher keeps no pointer into the conf. */
	fix_svc_clear(&f->svcs[1]);
	svc_set(&f->svcs[1], "b", "127.0.0.1", 0, "delay:10", 5000, "sleep 99");
	memset(&b, 0, sizeof(b));
	assert_int_equal(launcher_reload(f->l, &f->conf), 0);
	assert_ptr_equal(launcher_find(f->l, "b"), ib);
	fix_svc_clear(&f->svcs[1]);
	assert_int_equal(launcher_wake(ib, seen_cb, &b, NULL), 0);
	assert_true(run_until_int(f, &b.calls, 3000));
	assert_int_equal(b.ok, 1);
	assert_string_equal(launcher_service(ib)->name, "b");
	svc_set(&f->svcs[1], "b", "127.0.0.1", 0, "delay:10", 5000, "sleep 99");

	/* Everything removed: every process goes. */
	pb = pid_of(ib);
	f->conf.nservices = 0;
	assert_int_equal(launcher_reload(f->l, &f->conf), 0);
	assert_true(run_until_gone(f, pa, 3000));
	assert_true(run_until_gone(f, pb, 3000));
}

/* A recreated service boots only once its old process is gone (the port). */
static void test_reload_waits_for_old(void **state)
{
	struct fix *f = *state;
	struct seen a = {0}, b = {0};
	struct instance *inst;
	int64_t t0;
	pid_t old;

	/* Ready once SIGTERM is ignored, as in test_stop. */
	svc_set(&f->svcs[0], "a", "127.0.0.1", 0, "console:^armed$", 5000,
	        "sh -c 'trap \"\" TERM; echo armed; exec sleep 100'");
	fix_start(f, 1);
	assert_int_equal(launcher_wake(launcher_find(f->l, "a"), seen_cb, &a, NULL), 0);
	assert_true(run_until_int(f, &a.calls, 3000));
	old = pid_of(launcher_find(f->l, "a"));
	f->svcs[0].boot_timeout_ms = 6000; /* changed */
	t0 = fix_now_ms();
	assert_int_equal(launcher_reload(f->l, &f->conf), 0);
	inst = launcher_find(f->l, "a");
	assert_int_equal(launcher_wake(inst, seen_cb, &b, NULL), 0);
	assert_int_equal(fix_state_of(inst), INST_BOOTING);
	assert_int_equal(pid_of(inst), 0); /* not started yet */
	fix_run_for(f, 300);
	assert_false(pid_gone(old));
	assert_int_equal(pid_of(inst), 0);
	assert_true(run_until_int(f, &b.calls, 5000));
	assert_int_equal(b.ok, 1);
	assert_true(pid_gone(old));
	assert_true(fix_now_ms() - t0 >= 1900);
}

/* Callbacks may call the launcher: wake again, cancel another waiter. */
struct reent {
	struct fix *f;
	struct launcher_waiter *other;
	struct seen again;
	int calls;
};

static void reent_cb(struct instance *inst, bool ok, void *arg)
{
	struct reent *r = arg;

	r->calls++;
	assert_false(ok);
	launcher_cancel(r->other);
	/* The boot failed: this wake boots it again. */
	assert_int_equal(launcher_wake(inst, seen_cb, &r->again, NULL), 0);
}

static void test_reentrant_callback(void **state)
{
	struct fix *f = *state;
	struct reent r = {.f = f};
	struct seen other = {0};
	struct instance *inst;
	char cmd[512], flag[128];

	snprintf(flag, sizeof(flag), "%s/flag", f->dir);
	snprintf(cmd, sizeof(cmd), "sh -c 'test -e %s || { touch %s; exit 1; }; exec sleep 100'",
	         flag, flag);
	/* The first run's exit must come before its delay: a loaded machine
	 * took over 100 ms to start sh, and the first run was "ready". */
	svc_set(&f->svcs[0], "www", "127.0.0.1", 0, "delay:2000", 8000, cmd);
	fix_start(f, 1);
	inst = launcher_find(f->l, "www");
	assert_int_equal(launcher_wake(inst, reent_cb, &r, NULL), 0);
	assert_int_equal(launcher_wake(inst, seen_cb, &other, &r.other), 0);
	assert_true(run_until_int(f, &r.again.calls, 10000));
	assert_int_equal(r.calls, 1);
	assert_int_equal(other.calls, 0);
	assert_int_equal(r.again.ok, 1);
}

static void test_backend_not_built(void **state)
{
	struct fix *f = *state;
	struct seen s = {0};
	struct launcher_waiter *h = (void *)1;
	struct instance *inst;
	char names[128];

	/* A backend this build leaves out (its library missing): xen, libvirt. */
	launcher_backend_names(names, sizeof(names));
	svc_set(&f->svcs[0], "vm", "127.0.0.1", 80, "tcp", 5000, NULL);
	if (strstr(names, "xen") == NULL)
		f->svcs[0].backend = CONF_BACKEND_XEN;
	else if (strstr(names, "libvirt") == NULL)
		f->svcs[0].backend = CONF_BACKEND_LIBVIRT;
	else
		skip(); /* every backend is built in */
	fix_start(f, 1);
	inst = launcher_find(f->l, "vm");
	assert_int_equal(launcher_wake(inst, seen_cb, &s, &h), -1);
	assert_null(h);
	assert_int_equal(launcher_wake(inst, seen_cb, &s, NULL), -1);
	fix_run_for(f, 20);
	assert_int_equal(s.calls, 0);
	assert_int_equal(fix_state_of(inst), INST_STOPPED);
}

static void foreach_cb(struct instance *inst, void *arg)
{
	int *n = arg;

	(*n)++;
	assert_non_null(launcher_service(inst));
}

/* launcher_free stops everything, also what ignores SIGTERM or is paused. */
/*
 * The wake queue (launcher/room/room.c) through the real admission hook: with
 * max_instances 1 and a busy, b and c wait in arrival order, d finds the
 * queue full; a stopped makes room for b (not c); c, with b kept busy,
 * fails at hold_timeout.
 */
static void test_wake_queue(void **state)
{
	struct fix *f = *state;
	struct seen sa = {0}, sb = {0}, sc = {0}, sd = {0};
	struct instance *a, *b, *c, *d;
	struct launcher_stats st;
	int64_t end;

	f->conf.max_instances = 1;
	f->conf.wake_queue = 2;
	f->conf.hold_timeout_ms = 1500;
	svc_set(&f->svcs[0], "a", "127.0.0.1", 0, "delay:20", 5000, "sleep 100");
	svc_set(&f->svcs[1], "b", "127.0.0.1", 0, "delay:20", 5000, "sleep 100");
	svc_set(&f->svcs[2], "c", "127.0.0.1", 0, "delay:20", 5000, "sleep 100");
	svc_set(&f->svcs[3], "d", "127.0.0.1", 0, "delay:20", 5000, "sleep 100");
	fix_start(f, 4);
	a = launcher_find(f->l, "a");
	b = launcher_find(f->l, "b");
	c = launcher_find(f->l, "c");
	d = launcher_find(f->l, "d");
	assert_true(launcher_wake_queue_on(f->l));
	assert_int_equal(launcher_wake(a, seen_cb, &sa, NULL), 0);
	assert_true(run_until_int(f, &sa.calls, 5000));
	assert_int_equal(sa.ok, 1);
	/* a was just used: not evictable. b and c wait, d is refused. */
	assert_int_equal(launcher_wake(b, seen_cb, &sb, NULL), 0);
	assert_int_equal(launcher_wake(c, seen_cb, &sc, NULL), 0);
	assert_int_equal(launcher_wake(c, NULL, NULL, NULL), 0); /* joins c's wait */
	assert_int_equal(launcher_wake(d, seen_cb, &sd, NULL), -1);
	assert_int_equal(fix_state_of(b), INST_STOPPED);
	assert_int_equal(launcher_wake_waiting(f->l), 2);
	launcher_stats(f->l, &st);
	assert_int_equal(st.wake_queue, 2);
	assert_int_equal(st.wake_queued, 2);
	assert_int_equal(st.wake_refused, 1);
	assert_int_equal(st.refused[LAUNCHER_REFUSED_CAPACITY], 1);
	/* Room: the first in line boots, the second still waits. */
	launcher_activity(b);
	assert_int_equal(launcher_stop(a), 0);
	assert_true(run_until_int(f, &sb.calls, 5000));
	assert_int_equal(sb.ok, 1);
	assert_int_equal(fix_state_of(b), INST_READY);
	assert_int_equal(sc.calls, 0);
	assert_int_equal(fix_state_of(c), INST_STOPPED);
	/* b kept busy: c's wait ends at hold_timeout, not ready. */
	end = fix_now_ms() + 5000;
	while (sc.calls == 0 && fix_now_ms() < end) {
		launcher_activity(b);
		fix_run_for(f, 20);
	}
	assert_int_equal(sc.calls, 1);
	assert_int_equal(sc.ok, 0);
	assert_int_equal(fix_state_of(c), INST_STOPPED);
	assert_int_equal(fix_state_of(b), INST_READY);
	assert_int_equal(sd.calls, 0);
	launcher_stats(f->l, &st);
	assert_int_equal(st.wake_queue, 0);
	assert_int_equal(st.wake_admitted, 1);
	assert_int_equal(st.wake_timed_out, 1);
}

/*
 * max_booting = 1: a second boot waits in line (booting, nothing started),
 * a stop takes it out, it starts once the first is ready; a boot that
 * never gets a slot fails at its boot_timeout, counted from the wake.
 */
static void test_boot_slots(void **state)
{
	struct fix *f = *state;
	struct seen sa = {0}, sb = {0}, sb2 = {0}, sc = {0};
	struct instance *a, *b, *c, *d;
	struct launcher_stats st;
	int64_t t0;

	f->conf.max_booting = 1;
	svc_set(&f->svcs[0], "a", "127.0.0.1", 0, "delay:300", 5000, "sleep 100");
	svc_set(&f->svcs[1], "b", "127.0.0.1", 0, "delay:20", 5000, "sleep 100");
	svc_set(&f->svcs[2], "c", "127.0.0.1", 0, "delay:20", 300, "sleep 100");
	svc_set(&f->svcs[3], "d", "127.0.0.1", free_port(), "tcp", 10000, "sleep 100");
	fix_start(f, 4);
	a = launcher_find(f->l, "a");
	b = launcher_find(f->l, "b");
	c = launcher_find(f->l, "c");
	d = launcher_find(f->l, "d");
	assert_int_equal(launcher_wake(a, seen_cb, &sa, NULL), 0);
	assert_true(pid_of(a) > 0);
	assert_int_equal(launcher_wake(b, seen_cb, &sb, NULL), 0);
	assert_int_equal(fix_state_of(b), INST_BOOTING);
	assert_int_equal(pid_of(b), 0);                          /* in line: nothing started */
	assert_int_equal(launcher_wake(b, NULL, NULL, NULL), 0); /* joins it */
	launcher_stats(f->l, &st);
	assert_int_equal(st.boot_slots, 1);
	assert_int_equal(st.booting_started, 1);
	assert_int_equal(st.boot_queue, 1);
	/* Stopped while in line: out of it, its waiter told. */
	assert_int_equal(launcher_stop(b), 0);
	assert_int_equal(fix_state_of(b), INST_STOPPED);
	assert_true(run_until_int(f, &sb.calls, 1000));
	assert_int_equal(sb.ok, 0);
	launcher_stats(f->l, &st);
	assert_int_equal(st.boot_queue, 0);
	/* In line again: it starts once a is ready, and is ready in turn. */
	assert_int_equal(launcher_wake(b, seen_cb, &sb2, NULL), 0);
	assert_int_equal(pid_of(b), 0);
	assert_true(run_until_int(f, &sa.calls, 5000));
	assert_int_equal(sa.ok, 1);
	assert_true(run_until_int(f, &sb2.calls, 5000));
	assert_int_equal(sb2.ok, 1);
	assert_true(pid_of(b) > 0);
	/* d holds the slot (never ready): c's boot_timeout ends its wait. */
	assert_int_equal(launcher_wake(d, NULL, NULL, NULL), 0);
	assert_true(pid_of(d) > 0);
	t0 = fix_now_ms();
	assert_int_equal(launcher_wake(c, seen_cb, &sc, NULL), 0);
	assert_true(run_until_int(f, &sc.calls, 3000));
	assert_int_equal(sc.ok, 0);
	assert_true(fix_now_ms() - t0 >= 290);
	assert_int_equal(fix_state_of(c), INST_FAILED);
	assert_int_equal(fix_state_of(d), INST_BOOTING);
	launcher_stats(f->l, &st);
	assert_int_equal(st.booting_peak, 1);
	assert_int_equal(st.booting_started, 1);
	assert_int_equal(st.boot_queue, 0);
	assert_int_equal(st.boot_queued, 3);
	/* The slot goes back when d's boot ends. */
	assert_int_equal(launcher_kill(d), 0);
	assert_true(fix_run_until_state(f, d, INST_STOPPED, 3000));
	launcher_stats(f->l, &st);
	assert_int_equal(st.booting_started, 0);
}

static void test_free_leaves_nothing(void **state)
{
	struct fix *f = *state;
	struct seen s[3] = {{0}};
	const char *names[] = {"a", "b", "c"};
	pid_t pids[3];
	struct seen late = {0};
	int i, n = 0;

	svc_set(&f->svcs[0], "a", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	svc_set(&f->svcs[1], "b", "127.0.0.1", 0, "delay:10", 5000,
	        "sh -c 'trap \"\" TERM; exec sleep 100'");
	svc_set(&f->svcs[2], "c", "127.0.0.1", 0, "delay:10", 5000, "sleep 100");
	fix_start(f, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(launcher_wake(launcher_find(f->l, names[i]), seen_cb, &s[i], NULL),
		                 0);
		assert_true(run_until_int(f, &s[i].calls, 3000));
		pids[i] = pid_of(launcher_find(f->l, names[i]));
	}
	assert_int_equal(launcher_pause(launcher_find(f->l, "c")), 0);
	/* A waiter still pending at free hears false. */
	svc_set(&f->svcs[3], "d", "127.0.0.1", 0, "delay:10000", 20000, "sleep 100");
	f->conf.nservices = 4;
	assert_int_equal(launcher_reload(f->l, &f->conf), 0);
	assert_int_equal(launcher_wake(launcher_find(f->l, "d"), seen_cb, &late, NULL), 0);
	launcher_foreach(f->l, foreach_cb, &n);
	assert_int_equal(n, 4);
	engine_free(f->engine);
	f->engine = NULL;
	launcher_free(f->l);
	f->l = NULL;
	assert_int_equal(late.calls, 1);
	assert_int_equal(late.ok, 0);
	for (i = 0; i < 3; i++) {
		assert_true(pid_gone(pids[i]));
		assert_true(kill(-pids[i], 0) == -1 && errno == ESRCH);
	}
}

/*
 * Tap names and MACs are hashes of service names: pairs found by search
 * that share one are refused in bridge mode (a long shared prefix and the
 * same 32 bits of hash; the same 24 bits of MAC), others pass.
 */
static void test_name_clash(void **state)
{
	struct conf_service svcs[2] = {{.name = "customer-562789"}, {.name = "customer-779192"}};
	struct conf conf = {.net_mode = CONF_NET_BRIDGE, .services = svcs, .nservices = 2};

	(void)state;
	assert_int_equal(launcher_check_names(&conf, NULL), -1); /* the same tap */
	svcs[0].name = "m18024";
	svcs[1].name = "m59140";
	assert_int_equal(launcher_check_names(&conf, NULL), -1); /* the same MAC */
	svcs[1].name = "m59141";
	assert_int_equal(launcher_check_names(&conf, NULL), 0);
	svcs[0].name = "customer-562789";
	svcs[1].name = "customer-779192";
	conf.net_mode = CONF_NET_USER; /* no taps, no MACs on a bridge */
	assert_int_equal(launcher_check_names(&conf, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_wake_idempotent, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_boot_timeout, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_exit_during_boot, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_death_noticed, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_failed_boots_again, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_reboot_while_booting, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_delay_probe, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_console_probe, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_http_probe, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_pause_resume, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_stop, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_reload, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_reload_waits_for_old, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_reentrant_callback, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_backend_not_built, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_free_leaves_nothing, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_wake_queue, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_boot_slots, fix_setup, fix_teardown),
	    cmocka_unit_test(test_name_clash),
	};

	log_init(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
