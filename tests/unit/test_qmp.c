/*
 * launcher/qmp*.c against a real qemu-system-x86_64 (microvm, started paused
 * with -S, no kernel needed), and against a fake peer on a socketpair for
 * what QEMU never sends: split and batched lines, garbage, oversized lines,
 * odd replies, a peer that hangs up.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "qmp.h"

#define WAIT_MS 5000

struct tctx {
	struct event_base *base;
	struct event *tick;
	struct qmp *q;
	int ready, closes, nevents;
	char why[256];
	char events[16][32];
	int free_on_event, free_on_close;
	struct timespec t_ready;
	pid_t qemu; /* killed by teardown when a failed check left it running */
	/* The fake peer's end and what it has read. */
	int peer;
	char pbuf[65536];
	size_t plen;
};

struct reply {
	int done;
	json_t *ret, *err;
};

static int64_t ms_since(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static void on_ready(struct qmp *q, void *arg)
{
	struct tctx *t = arg;

	assert_ptr_equal(q, t->q);
	clock_gettime(CLOCK_MONOTONIC, &t->t_ready);
	t->ready++;
}

static void on_event(struct qmp *q, const char *name, json_t *data, void *arg)
{
	struct tctx *t = arg;

	(void)data;
	if (t->nevents < 16)
		snprintf(t->events[t->nevents], sizeof(t->events[0]), "%s", name);
	t->nevents++;
	if (t->free_on_event) {
		qmp_free(q);
		t->q = NULL;
	}
}

static void on_close(struct qmp *q, const char *why, void *arg)
{
	struct tctx *t = arg;

	snprintf(t->why, sizeof(t->why), "%s", why);
	t->closes++;
	if (t->free_on_close) {
		qmp_free(q);
		t->q = NULL;
	}
}

static const struct qmp_cbs cbs = {on_ready, on_event, on_close};

static void on_reply(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	struct reply *r = arg;

	(void)q;
	r->done++;
	r->ret = json_incref(ret);
	r->err = json_incref(err);
}

static void reply_clear(struct reply *r)
{
	json_decref(r->ret);
	json_decref(r->err);
	memset(r, 0, sizeof(*r));
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
}

static int setup(void **state)
{
	struct tctx *t = calloc(1, sizeof(*t));
	struct timeval tv = {0, 5000};

	t->base = event_base_new();
	t->tick = event_new(t->base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(t->tick, &tv);
	t->peer = -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tctx *t = *state;

	qmp_free(t->q);
	if (t->qemu > 0) {
		kill(t->qemu, SIGKILL);
		waitpid(t->qemu, NULL, 0);
	}
	if (t->peer != -1)
		close(t->peer);
	event_free(t->tick);
	event_base_free(t->base);
	free(t);
	return 0;
}

/* Run the loop until *FLAG is at least N or WAIT_MS pass; 0 when it got there. */
static int run_until(struct tctx *t, const int *flag, int n)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (*flag < n) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ms_since(&t0, &now) > WAIT_MS)
			return -1;
		event_base_loop(t->base, EVLOOP_ONCE);
	}
	return 0;
}

/* Send a command and wait for its answer. */
static void cmd(struct tctx *t, const char *execute, json_t *args, struct reply *r)
{
	reply_clear(r);
	assert_int_equal(qmp_command(t->q, execute, args, on_reply, r), 0);
	assert_int_equal(run_until(t, &r->done, 1), 0);
	assert_int_equal(r->done, 1);
}

static const char *status_of(const struct reply *r)
{
	return json_string_value(json_object_get(r->ret, "status"));
}

static int saw_event(const struct tctx *t, const char *name)
{
	for (int i = 0; i < t->nevents && i < 16; i++)
		if (strcmp(t->events[i], name) == 0)
			return 1;
	return 0;
}

/* --- a real QEMU ------------------------------------------------------------ */

/* KVM when /dev/kvm opens, else TCG; QMP_TEST_ACCEL overrides. */
static const char *accel(void)
{
	int fd;

	if (getenv("QMP_TEST_ACCEL") != NULL)
		return getenv("QMP_TEST_ACCEL");
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd == -1)
		return "tcg";
	close(fd);
	return "kvm";
}

/* Start QEMU paused, with QMP on CHARDEV ("socket,id=qmp,..."). */
static pid_t spawn_qemu(struct tctx *t, const char *chardev, int keep_fd)
{
	char cd[256];
	pid_t pid;

	snprintf(cd, sizeof(cd), "%s", chardev);
	if ((pid = fork()) != 0)
		return t->qemu = pid;
	if (keep_fd != -1)
		fcntl(keep_fd, F_SETFD, 0);
	int devnull = open("/dev/null", O_RDWR);
	dup2(devnull, 0);
	dup2(devnull, 2); /* "host doesn't support requested feature" under this KVM */
	execlp("qemu-system-x86_64", "qemu-system-x86_64", "-M", "microvm", "-nodefaults",
	       "-no-user-config", "-display", "none", "-S", "-accel", accel(), "-chardev", cd,
	       "-mon", "chardev=qmp,mode=control", (char *)NULL);
	_exit(127);
}

static int have_qemu(void)
{
	return system("command -v qemu-system-x86_64 >/dev/null 2>&1") == 0;
}

/* QEMU on a socketpair: QMP reaches ready, returns prelaunch, runs the commands. */
static pid_t start_attached(struct tctx *t, struct timespec *t0)
{
	int sv[2];
	char cd[64];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	snprintf(cd, sizeof(cd), "socket,id=qmp,fd=%d", sv[1]);
	clock_gettime(CLOCK_MONOTONIC, t0);
	pid = spawn_qemu(t, cd, sv[1]);
	assert_true(pid > 0);
	close(sv[1]);
	t->q = qmp_attach(t->base, sv[0], &cbs, t);
	assert_non_null(t->q);
	return pid;
}

static void reap(struct tctx *t, int *status)
{
	struct timespec t0, now;
	pid_t pid = t->qemu;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (waitpid(pid, status, WNOHANG) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ms_since(&t0, &now) > WAIT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			fail_msg("QEMU did not exit");
		}
		usleep(2000);
	}
	t->qemu = 0;
}

static void test_qemu_lifecycle(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0}, early = {0};
	struct timespec t0;
	int status;

	if (!have_qemu())
		skip();
	start_attached(t, &t0);
	/* Issued before the handshake: queued, then sent. */
	assert_int_equal(qmp_command(t->q, "query-status", NULL, on_reply, &early), 0);
	assert_int_equal(run_until(t, &t->ready, 1), 0);
	assert_true(qmp_is_ready(t->q));
	assert_int_equal(run_until(t, &early.done, 1), 0);
	assert_string_equal(json_string_value(json_object_get(early.ret, "status")), "prelaunch");
	assert_true(json_is_false(json_object_get(early.ret, "running")));
	reply_clear(&early);

	cmd(t, "cont", NULL, &r);
	assert_non_null(r.ret);
	cmd(t, "query-status", NULL, &r);
	assert_string_equal(status_of(&r), "running");
	assert_true(saw_event(t, "RESUME"));

	cmd(t, "stop", NULL, &r);
	assert_non_null(r.ret);
	while (!saw_event(t, "STOP"))
		assert_int_equal(run_until(t, &t->nevents, t->nevents + 1), 0);
	cmd(t, "query-status", NULL, &r);
	assert_string_equal(status_of(&r), "paused");

	cmd(t, "no-such-command", NULL, &r);
	assert_null(r.ret);
	assert_string_equal(json_string_value(json_object_get(r.err, "class")), "CommandNotFound");
	cmd(t, "human-monitor-command", json_pack("{s:s}", "command-line", "info version"), &r);
	assert_true(json_is_string(r.ret));

	cmd(t, "quit", NULL, &r);
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_true(saw_event(t, "SHUTDOWN"));
	assert_int_equal(qmp_command(t->q, "query-status", NULL, NULL, NULL), -1);
	reap(t, &status);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Once, also after the loop has run on. */
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_int_equal(t->closes, 1);
	assert_int_equal(t->ready, 1);
	reply_clear(&r);
}

/* QEMU killed with SIGKILL: close is called once, and a pending command hears of it. */
static void test_qemu_killed(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};
	struct timespec t0;
	int status;

	if (!have_qemu())
		skip();
	start_attached(t, &t0);
	assert_int_equal(run_until(t, &t->ready, 1), 0);
	kill(t->qemu, SIGKILL);
	reap(t, &status);
	/* QEMU is gone before this command can reach it. */
	assert_int_equal(qmp_command(t->q, "query-status", NULL, on_reply, &r), 0);
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_int_equal(r.done, 1);
	assert_null(r.ret);
	assert_string_equal(json_string_value(json_object_get(r.err, "class")), "Disconnected");
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_int_equal(t->closes, 1);
	reply_clear(&r);
}

/* beckon listens first; QEMU connects with server=off. */
static pid_t start_listening(struct tctx *t, struct timespec *t0, char *path, size_t len)
{
	char cd[128];
	pid_t pid;

	snprintf(path, len, "/tmp/bk-qmp-%d.sock", (int)getpid());
	clock_gettime(CLOCK_MONOTONIC, t0);
	t->q = qmp_listen(t->base, path, &cbs, t);
	assert_non_null(t->q);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(cd, sizeof(cd), "socket,id=qmp,path=%s,server=off", path);
	pid = spawn_qemu(t, cd, -1);
	assert_true(pid > 0);
	return pid;
}

static void test_qemu_listen(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};
	struct timespec t0;
	char path[64];
	int status;

	if (!have_qemu())
		skip();
	start_listening(t, &t0, path, sizeof(path));
	assert_int_equal(run_until(t, &t->ready, 1), 0);
	assert_int_equal(access(path, F_OK), -1); /* the path goes once QEMU is in */
	cmd(t, "query-status", NULL, &r);
	assert_string_equal(status_of(&r), "prelaunch");
	cmd(t, "quit", NULL, &r);
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	reap(t, &status);
	reply_clear(&r);
}

/* QEMU listens; beckon retries until it answers. */
static void test_qemu_connect(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};
	char path[64], cd[128];
	int status;

	if (!have_qemu())
		skip();
	snprintf(path, sizeof(path), "/tmp/bk-qmpc-%d.sock", (int)getpid());
	unlink(path);
	t->q = qmp_connect(t->base, path, WAIT_MS, &cbs, t);
	assert_non_null(t->q);
	snprintf(cd, sizeof(cd), "socket,id=qmp,path=%s,server=on,wait=off", path);
	assert_true(spawn_qemu(t, cd, -1) > 0);
	assert_int_equal(run_until(t, &t->ready, 1), 0);
	cmd(t, "query-status", NULL, &r);
	assert_string_equal(status_of(&r), "prelaunch");
	cmd(t, "quit", NULL, &r);
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	reap(t, &status);
	unlink(path);
	reply_clear(&r);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Spawn -> ready, measured and printed (not asserted beyond "it happens"). */
static void measure(struct tctx *t, const char *how)
{
	enum { RUNS = 7 };
	int64_t ms[RUNS];
	struct reply r = {0};
	struct timespec t0;
	char path[64];

	for (int i = 0; i < RUNS; i++) {
		int status;

		t->ready = t->closes = 0;
		if (strcmp(how, "fd") == 0)
			start_attached(t, &t0);
		else
			start_listening(t, &t0, path, sizeof(path));
		assert_int_equal(run_until(t, &t->ready, 1), 0);
		ms[i] = ms_since(&t0, &t->t_ready);
		cmd(t, "quit", NULL, &r);
		assert_int_equal(run_until(t, &t->closes, 1), 0);
		reap(t, &status);
		qmp_free(t->q);
		t->q = NULL;
	}
	reply_clear(&r);
	qsort(ms, RUNS, sizeof(ms[0]), cmp_i64);
	print_message("qmp (%s): spawn -> ready (accel %s), %d runs: min %lld median %lld max %lld "
	              "ms\n",
	              how, accel(), RUNS, (long long)ms[0], (long long)ms[RUNS / 2],
	              (long long)ms[RUNS - 1]);
}

static void test_qemu_latency(void **state)
{
	if (!have_qemu())
		skip();
	measure(*state, "fd");
	measure(*state, "listen");
}

/* --- a fake peer -------------------------------------------------------------- */

#define GREETING "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n"

static void fake_start(struct tctx *t)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->peer = sv[1];
	fcntl(t->peer, F_SETFL, O_NONBLOCK);
	t->q = qmp_attach(t->base, sv[0], &cbs, t);
	assert_non_null(t->q);
}

static void peer_send(struct tctx *t, const char *s)
{
	assert_int_equal(write(t->peer, s, strlen(s)), (ssize_t)strlen(s));
}

/* The next line the client sent, parsed, while the loop runs. */
static json_t *peer_recv(struct tctx *t)
{
	struct timespec t0, now;
	char *nl;
	json_t *msg;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((nl = memchr(t->pbuf, '\n', t->plen)) == NULL) {
		struct pollfd p = {.fd = t->peer, .events = POLLIN};
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ms_since(&t0, &now) > WAIT_MS)
			fail_msg("the client sent nothing");
		event_base_loop(t->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) == 1 &&
		    (n = read(t->peer, t->pbuf + t->plen, sizeof(t->pbuf) - t->plen)) > 0)
			t->plen += (size_t)n;
	}
	msg = json_loadb(t->pbuf, (size_t)(nl - t->pbuf), 0, NULL);
	t->plen -= (size_t)(nl + 1 - t->pbuf);
	memmove(t->pbuf, nl + 1, t->plen);
	assert_non_null(msg);
	return msg;
}

/* The id of the next command, checking its name. */
static json_int_t peer_expect(struct tctx *t, const char *execute)
{
	json_t *msg = peer_recv(t);
	json_int_t id;

	assert_string_equal(json_string_value(json_object_get(msg, "execute")), execute);
	id = json_integer_value(json_object_get(msg, "id"));
	json_decref(msg);
	return id;
}

static void peer_sendf(struct tctx *t, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	peer_send(t, buf);
}

/* Greeting and capabilities, as QEMU does them. */
static void fake_handshake(struct tctx *t)
{
	fake_start(t);
	peer_send(t, GREETING);
	peer_sendf(t, "{\"return\": {}, \"id\": %lld}\r\n",
	           (long long)peer_expect(t, "qmp_capabilities"));
	assert_int_equal(run_until(t, &t->ready, 1), 0);
}

/* A greeting split in pieces; three messages in one write; LF-only lines. */
static void test_fake_split_and_batched(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};
	json_int_t id;

	fake_start(t);
	peer_send(t, "{\"QMP\": {\"vers");
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	peer_send(t, "ion\": {}, \"capabilities\": []}}");
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_int_equal(t->ready, 0);
	peer_send(t, "\r");
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	peer_send(t, "\n");
	id = peer_expect(t, "qmp_capabilities");
	peer_sendf(t, "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	assert_int_equal(run_until(t, &t->ready, 1), 0);

	assert_int_equal(qmp_command(t->q, "query-status", NULL, on_reply, &r), 0);
	id = peer_expect(t, "query-status");
	peer_sendf(t,
	           "{\"event\": \"STOP\"}\r\n\r\n{\"event\": \"RESUME\", \"data\": {}}\n"
	           "{\"return\": {\"status\": \"running\"}, \"id\": %lld}\r\n",
	           (long long)id);
	assert_int_equal(run_until(t, &r.done, 1), 0);
	assert_int_equal(t->nevents, 2);
	assert_string_equal(t->events[0], "STOP");
	assert_string_equal(t->events[1], "RESUME");
	assert_string_equal(status_of(&r), "running");
	assert_int_equal(t->closes, 0);
	reply_clear(&r);
}

/* Replies matched by id, out of order; one without an id goes to the oldest. */
static void test_fake_reply_matching(void **state)
{
	struct tctx *t = *state;
	struct reply a = {0}, b = {0}, c = {0};
	json_int_t ia, ib;

	fake_handshake(t);
	assert_int_equal(qmp_command(t->q, "a", NULL, on_reply, &a), 0);
	assert_int_equal(qmp_command(t->q, "b", json_pack("{s:i}", "x", 1), on_reply, &b), 0);
	assert_int_equal(qmp_command(t->q, "c", NULL, on_reply, &c), 0);
	ia = peer_expect(t, "a");
	ib = peer_expect(t, "b");
	peer_expect(t, "c");
	assert_true(ia != ib);
	peer_sendf(t, "{\"return\": 2, \"id\": %lld}\n", (long long)ib);
	peer_sendf(t, "{\"return\": 99, \"id\": 12345}\n"); /* no such command: ignored */
	peer_sendf(t, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": %lld}\n",
	           (long long)ia);
	peer_send(t,
	          "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n");
	assert_int_equal(run_until(t, &c.done, 1), 0);
	assert_int_equal(json_integer_value(b.ret), 2);
	assert_null(a.ret);
	assert_string_equal(json_string_value(json_object_get(a.err, "class")), "GenericError");
	assert_string_equal(json_string_value(json_object_get(c.err, "desc")), "JSON parse error");
	assert_int_equal(a.done + b.done + c.done, 3);
	assert_int_equal(t->closes, 0);
	reply_clear(&a);
	reply_clear(&b);
	reply_clear(&c);
}

/* Garbage after the handshake: close once, the pending command hears "Disconnected". */
static void test_fake_garbage(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};

	fake_handshake(t);
	assert_int_equal(qmp_command(t->q, "query-status", NULL, on_reply, &r), 0);
	peer_expect(t, "query-status");
	peer_send(t, "\x01\xff this is not JSON }{\n{\"event\": \"STOP\"}\n");
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_non_null(strstr(t->why, "not a QMP message"));
	assert_int_equal(r.done, 1);
	assert_string_equal(json_string_value(json_object_get(r.err, "class")), "Disconnected");
	assert_int_equal(t->nevents, 0); /* nothing after the garbage is read */
	assert_int_equal(qmp_command(t->q, "x", json_object(), NULL, NULL), -1);
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_int_equal(t->closes, 1);
	reply_clear(&r);
}

static void test_fake_not_an_object(void **state)
{
	struct tctx *t = *state;

	fake_handshake(t);
	peer_send(t, "[1, 2, 3]\n");
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_non_null(strstr(t->why, "not a JSON object"));
}

static void test_fake_no_greeting(void **state)
{
	struct tctx *t = *state;

	fake_start(t);
	peer_send(t, "{\"return\": {}}\n");
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_string_equal(t->why, "no QMP greeting");
	assert_int_equal(t->ready, 0);
}

static void test_fake_caps_refused(void **state)
{
	struct tctx *t = *state;

	fake_start(t);
	peer_send(t, GREETING);
	peer_sendf(
	    t, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"go away\"}, \"id\": %lld}\n",
	    (long long)peer_expect(t, "qmp_capabilities"));
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_string_equal(t->why, "go away");
	assert_int_equal(t->ready, 0);
}

/* The arguments of the client's qmp_capabilities, after GREETING. */
static json_t *caps_args(struct tctx *t, const char *greeting)
{
	json_t *msg, *args;

	fake_start(t);
	peer_send(t, greeting);
	msg = peer_recv(t);
	assert_string_equal(json_string_value(json_object_get(msg, "execute")), "qmp_capabilities");
	peer_sendf(t, "{\"return\": {}, \"id\": %lld}\n",
	           (long long)json_integer_value(json_object_get(msg, "id")));
	assert_int_equal(run_until(t, &t->ready, 1), 0);
	args = json_incref(json_object_get(msg, "arguments"));
	json_decref(msg);
	return args;
}

/* Out-of-band execution is asked for when offered (QEMU's monitor then reads ahead), else not. */
static void test_fake_oob(void **state)
{
	struct tctx *t = *state;
	json_t *args = caps_args(
	    t, "{\"QMP\": {\"version\": {}, \"capabilities\": [\"other\", \"oob\"]}}\r\n");
	json_t *enable = json_object_get(args, "enable");

	assert_true(json_is_array(enable));
	assert_int_equal(json_array_size(enable), 1);
	assert_string_equal(json_string_value(json_array_get(enable, 0)), "oob");
	json_decref(args);
}

static void test_fake_no_oob(void **state)
{
	struct tctx *t = *state;
	json_t *args = caps_args(t, GREETING);

	assert_null(args);
}

/* A line past QMP_MAX_LINE, sent through a bufferevent so the loop paces it. */
static void test_fake_oversized(void **state)
{
	struct tctx *t = *state;
	struct bufferevent *pb;
	char *big;
	size_t n = QMP_MAX_LINE + 65536;

	fake_handshake(t);
	pb = bufferevent_socket_new(t->base, t->peer, 0);
	bufferevent_enable(pb, EV_WRITE);
	big = malloc(n);
	memset(big, 'x', n);
	big[0] = '"';
	bufferevent_write(pb, big, n);
	free(big);
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_non_null(strstr(t->why, "size limit"));
	bufferevent_free(pb);
}

/* The peer hangs up with commands pending and queued. */
static void test_fake_hangup(void **state)
{
	struct tctx *t = *state;
	struct reply r1 = {0}, r2 = {0};

	fake_start(t);
	/* Queued: the handshake has not even begun. */
	assert_int_equal(qmp_command(t->q, "one", NULL, on_reply, &r1), 0);
	assert_int_equal(qmp_command(t->q, "two", NULL, on_reply, &r2), 0);
	close(t->peer);
	t->peer = -1;
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_non_null(strstr(t->why, "closed"));
	assert_int_equal(r1.done, 1);
	assert_int_equal(r2.done, 1);
	assert_non_null(r2.err);
	assert_int_equal(t->ready, 0);
	reply_clear(&r1);
	reply_clear(&r2);
}

/* qmp_free inside the event callback, more messages in the same read: no more calls. */
static void test_fake_free_in_event(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};

	fake_handshake(t);
	assert_int_equal(qmp_command(t->q, "query-status", NULL, on_reply, &r), 0);
	peer_expect(t, "query-status");
	t->free_on_event = 1;
	peer_send(t,
	          "{\"event\": \"STOP\"}\n{\"event\": \"RESUME\"}\n{\"return\": {}, \"id\": 2}\n");
	assert_int_equal(run_until(t, &t->nevents, 1), 0);
	for (int i = 0; i < 5; i++)
		event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_null(t->q);
	assert_int_equal(t->nevents, 1);
	assert_int_equal(r.done, 0); /* freed first: never called */
	assert_int_equal(t->closes, 0);
}

/* qmp_free inside close, with a pending command answered "Disconnected" first. */
static void test_fake_free_in_close(void **state)
{
	struct tctx *t = *state;
	struct reply r = {0};

	fake_handshake(t);
	t->free_on_close = 1;
	assert_int_equal(qmp_command(t->q, "x", NULL, on_reply, &r), 0);
	peer_send(t, "garbage\n");
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	assert_null(t->q);
	assert_int_equal(r.done, 1);
	reply_clear(&r);
}

static void test_connect_timeout(void **state)
{
	struct tctx *t = *state;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	t->q = qmp_connect(t->base, "/tmp/bk-qmp-nothing-here.sock", 50, &cbs, t);
	assert_non_null(t->q);
	assert_int_equal(t->closes, 0); /* never from inside qmp_connect */
	assert_int_equal(run_until(t, &t->closes, 1), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_non_null(strstr(t->why, "in time"));
	assert_true(ms_since(&t0, &t1) >= 45);
}

static void test_path_too_long(void **state)
{
	struct tctx *t = *state;
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_null(qmp_listen(t->base, path, &cbs, t));
	assert_null(qmp_connect(t->base, path, 10, &cbs, t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_qemu_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qemu_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qemu_listen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qemu_connect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qemu_latency, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_split_and_batched, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_reply_matching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_not_an_object, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_no_greeting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_oob, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_no_oob, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_caps_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_hangup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_free_in_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fake_free_in_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("QMP_DEBUG"))
		log_init(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
