/*
 * beckon's iptables chains (ip6tables' for IPv6 targets), written whole by `iptables-restore
 * --noflush` (declaring the chain flushes it, and the batch is one atomic commit): the SYN hold's
 * in the filter table, the bridge-mode proxy's in nat. At start and exit iptables runs and is
 * waited for; at runtime a change forks one iptables-restore in the background, at most one at a
 * time, coalescing what changes meanwhile. The child is reaped by pid (waitpid WNOHANG after its
 * output pipe closes), never by SIGCHLD, which is the launcher's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "internal.h"
#include "log.h"
#include "privs.h"

extern char **environ;

#define FW_REAP_MS 2
#define FW_RETRY_MS 1000   /* after a failed write */
#define FW_WAIT "--wait=5" /* for the xtables lock: a busy firewall stalls the loop 5 s at most */
#define FW_JUMP_MAX 64     /* duplicate jumps removed at most */

/* Where each kind of chain lives and is jumped to from. */
static const struct {
	const char *table, *hooks[2];
} fw_kinds[] = {
    [FW_SYN] = {"filter", {"FORWARD", "OUTPUT"}},
    [FW_REDIRECT] = {"nat", {"PREROUTING", "OUTPUT"}},
    [FW_DNAT] = {"nat", {"OUTPUT", NULL}},
};

struct fw {
	struct event_base *base;
	enum fw_kind kind;
	bool v6; /* ip6tables' */
	char chain[32];
	uint16_t num;
	char *want;   /* the batch the chain should hold */
	bool applied; /* want is what the chain holds (or is being written) */
	bool dirty;   /* want changed while a child ran */
	bool live;    /* set up: a failed write is tried again */
	pid_t pid;    /* the iptables-restore running, 0 when none */
	int out;      /* its stdout and stderr */
	struct event *ev, *reap, *retry;
	char msg[512];
	size_t msglen;
};

static void fw_spawn(struct fw *fw);

#define FW_DST_MAX (INET6_ADDRSTRLEN + INET_ADDRSTRLEN + 48)

/* T's destination match: "-d A/32" (IPv6: "-d A/128"), or for a range (a pattern's pool) an iprange
 * match. */
static void fw_dst(char *out, size_t len, const struct fw_target *t)
{
	char a[INET6_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	/* An IPv6 target (ip6tables' chain): its address6, a /128. */
	if (t->addr6 != NULL) {
		inet_ntop(AF_INET6, t->addr6, a, sizeof(a));
		snprintf(out, len, "-d %s/128", a);
		return;
	}
	inet_ntop(AF_INET, &t->addr, a, sizeof(a));
	if (t->last.s_addr == 0) {
		snprintf(out, len, "-d %s/32", a);
		return;
	}
	inet_ntop(AF_INET, &t->last, b, sizeof(b));
	snprintf(out, len, "-m iprange --dst-range %s-%s", a, b);
}

static void fw_rules(FILE *f, enum fw_kind kind, const char *chain, uint16_t num,
                     const struct fw_target *t)
{
	char addr[FW_DST_MAX];

	fw_dst(addr, sizeof(addr), t);
	if (kind == FW_SYN) {
		fprintf(f,
		        "-A %s %s -p tcp -m tcp --syn -j NFQUEUE --queue-num %u "
		        "--queue-bypass\n",
		        chain, addr, num);
		return;
	}
	for (size_t i = 0; i < t->nports; i++) {
		char up[INET_ADDRSTRLEN];

		if (kind == FW_REDIRECT) {
			fprintf(f, "-A %s %s -p tcp -m tcp --dport %u -j REDIRECT --to-ports %u\n",
			        chain, addr, t->ports[i], num);
			continue;
		}
		inet_ntop(AF_INET, &t->up[i].sin_addr, up, sizeof(up));
		fprintf(f,
		        "-A %s -o lo %s -p tcp -m tcp --dport %u -j DNAT --to-destination "
		        "%s:%u\n",
		        chain, addr, t->ports[i], up, ntohs(t->up[i].sin_port));
	}
}

char *fw_batch(enum fw_kind kind, const char *chain, uint16_t num, const struct fw_target *t,
               size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "*%s\n:%s - [0:0]\n", fw_kinds[kind].table, chain);
	/* beckon's own connections to guests (probes, the proxy) pass. */
	fprintf(f, "-A %s -m mark --mark 0x%x -j RETURN\n", chain, LAUNCHER_FWMARK);
	/*
	 * nf_tables tracks connections only while some rule needs conntrack: with
	 * no NAT rule left, a connection made then would have no entry, and a NAT
	 * rule added later would take its next packet for a new connection (and
	 * rewrite it mid-stream). This rule, which does nothing, keeps tracking on.
	 */
	if (kind != FW_SYN)
		fprintf(f, "-A %s -m conntrack --ctstate NEW\n", chain);
	for (size_t i = 0; i < n; i++)
		fw_rules(f, kind, chain, num, &t[i]);
	fprintf(f, "COMMIT\n");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The child's fds: INFD as stdin, OUTFD as stdout and stderr, nothing else. */
static int fw_actions(posix_spawn_file_actions_t *fa, int infd, int outfd)
{
	if (posix_spawn_file_actions_init(fa) != 0)
		return -1;
	if (posix_spawn_file_actions_adddup2(fa, infd, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, outfd, 1) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, outfd, 2) != 0 ||
	    posix_spawn_file_actions_addclosefrom_np(fa, 3) != 0) {
		posix_spawn_file_actions_destroy(fa);
		return -1;
	}
	return 0;
}

/*
 * Start ARGV with INPUT on its stdin (may be NULL), output into a pipe.
 * posix_spawn, not fork: beckond's memory is not copied for iptables.
 */
static pid_t fw_exec(char *const argv[], const char *input, int *outfd)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
		goto fail;
	/* The whole batch fits in the pipe: the write below never blocks. */
	if (input != NULL && strlen(input) > 65536)
		fcntl(in[1], F_SETPIPE_SZ, (int)strlen(input));
	if (fw_actions(&fa, in[0], out[1]) == -1)
		goto fail;
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	privs_ambient(true); /* iptables needs beckond's network capabilities */
	rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	privs_ambient(false);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	if (input != NULL && write(in[1], input, strlen(input)) != (ssize_t)strlen(input))
		log_warn("proxy: %s: input", argv[0]);
	close(in[1]);
	*outfd = out[0];
	return pid;
fail:
	log_warn("proxy: %s", argv[0]);
	for (int i = 0; i < 2; i++) {
		if (in[i] != -1)
			close(in[i]);
		if (out[i] != -1)
			close(out[i]);
	}
	return -1;
}

/* Run ARGV to its end (startup and exit only). 0 when it exited 0. */
static int fw_run(char *const argv[], const char *input, bool quiet)
{
	char msg[512];
	ssize_t n, len = 0;
	int fd, status;
	pid_t pid = fw_exec(argv, input, &fd);

	if (pid == -1)
		return -1;
	while ((n = read(fd, msg + len, sizeof(msg) - 1 - (size_t)len)) > 0 ||
	       (n == -1 && errno == EINTR))
		len += n > 0 ? n : 0;
	msg[len] = '\0';
	close(fd);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!quiet)
		log_warnx("proxy: %s failed: %s", argv[0], len ? strtok(msg, "\n") : "no output");
	return -1;
}

/* The program to run: iptables or ip6tables, or their -restore. */
static char *fw_bin(const struct fw *fw, bool restore)
{
	if (restore)
		return fw->v6 ? "ip6tables-restore" : "iptables-restore";
	return fw->v6 ? "ip6tables" : "iptables";
}

static int fw_restore_sync(const struct fw *fw, const char *input)
{
	char *argv[] = {fw_bin(fw, true), "--noflush", FW_WAIT, NULL};

	return fw_run(argv, input, false);
}

/* Exactly one jump to FW's chain at the top of each hook, or none (JUMP false). */
static int fw_jumps(const struct fw *fw, bool jump)
{
	char *table = (char *)fw_kinds[fw->kind].table, *chain = (char *)fw->chain;
	char *del[] = {fw_bin(fw, false), "-w", "-t", table, "-D", NULL, "-j", chain, NULL};
	char *ins[] = {fw_bin(fw, false), "-w", "-t", table, "-I", NULL, "1", "-j", chain, NULL};
	int rc = 0;

	for (size_t h = 0; h < 2 && fw_kinds[fw->kind].hooks[h] != NULL; h++) {
		del[5] = ins[5] = (char *)fw_kinds[fw->kind].hooks[h];
		for (int i = 0; i < FW_JUMP_MAX && fw_run(del, NULL, true) == 0; i++)
			;
		if (jump && fw_run(ins, NULL, false) == -1)
			rc = -1;
	}
	return rc;
}

/* Write the chain again in a while (a failed write). */
static void fw_retry_later(struct fw *fw)
{
	struct timeval tv = {FW_RETRY_MS / 1000, (FW_RETRY_MS % 1000) * 1000};

	fw->applied = false;
	evtimer_add(fw->retry, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fw *fw = arg;

	(void)fd;
	(void)what;
	if (fw->pid == 0 && !fw->applied)
		fw_spawn(fw);
}

static void fw_reaped(struct fw *fw, int status)
{
	fw->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fw->msg[fw->msglen] = '\0';
		log_warnx("proxy: %s for %s failed: %s", fw_bin(fw, true), fw->chain,
		          fw->msglen ? strtok(fw->msg, "\n") : "no output");
		fw->dirty = false;
		fw_retry_later(fw);
		return;
	}
	if (fw->dirty)
		fw_spawn(fw);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fw *fw = arg;
	struct timeval tv = {0, FW_REAP_MS * 1000};
	int status;
	pid_t r;

	(void)fd;
	(void)what;
	while ((r = waitpid(fw->pid, &status, WNOHANG)) == -1 && errno == EINTR)
		;
	if (r == 0) {
		evtimer_add(fw->reap, &tv); /* closed its output, not exited yet */
		return;
	}
	fw_reaped(fw, r == fw->pid ? status : 0);
}

static void out_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fw *fw = arg;
	char buf[256];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n > 0) {
		size_t room = sizeof(fw->msg) - 1 - fw->msglen;
		size_t take = (size_t)n < room ? (size_t)n : room;

		memcpy(fw->msg + fw->msglen, buf, take);
		fw->msglen += take;
		return;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	event_del(fw->ev);
	close(fw->out);
	fw->out = -1;
	reap_cb(-1, 0, fw);
}

static void fw_spawn(struct fw *fw)
{
	char *argv[] = {fw_bin(fw, true), "--noflush", FW_WAIT, NULL};

	fw->dirty = false;
	fw->msglen = 0;
	if ((fw->pid = fw_exec(argv, fw->want, &fw->out)) == -1) {
		fw->pid = 0;
		fw->applied = false;
		return;
	}
	fcntl(fw->out, F_SETFL, O_NONBLOCK);
	event_assign(fw->ev, fw->base, fw->out, EV_READ | EV_PERSIST, out_cb, fw);
	event_add(fw->ev, NULL);
	fw->applied = true;
}

/* Wait for the child under way (exit, or a synchronous write). */
static void fw_wait(struct fw *fw)
{
	int status;

	if (fw->pid == 0)
		return;
	event_del(fw->ev);
	evtimer_del(fw->reap);
	if (fw->out != -1)
		close(fw->out);
	fw->out = -1;
	while (waitpid(fw->pid, &status, 0) == -1 && errno == EINTR)
		;
	fw->pid = 0;
}

void fw_set(struct fw *fw, const struct fw_target *t, size_t n, bool sync)
{
	char *batch = fw_batch(fw->kind, fw->chain, fw->num, t, n);

	if (batch == NULL) {
		log_warn("proxy: rules");
		return;
	}
	if (!sync && fw->applied && fw->want != NULL && strcmp(batch, fw->want) == 0) {
		free(batch);
		return;
	}
	free(fw->want);
	fw->want = batch;
	if (sync) {
		fw_wait(fw);
		fw->applied = fw_restore_sync(fw, batch) == 0;
		if (!fw->applied && fw->live)
			fw_retry_later(fw); /* keep trying, in the background */
	} else if (fw->pid != 0) {
		fw->dirty = true;
	} else {
		fw_spawn(fw);
	}
}

struct fw *fw_new(struct event_base *base, enum fw_kind kind, const char *chain, uint16_t num)
{
	return fw_new_family(base, kind, chain, num, false);
}

struct fw *fw_new_family(struct event_base *base, enum fw_kind kind, const char *chain,
                         uint16_t num, bool v6)
{
	struct fw *fw;

	if ((fw = calloc(1, sizeof(*fw))) == NULL)
		return NULL;
	fw->base = base;
	fw->kind = kind;
	fw->v6 = v6;
	fw->num = num;
	fw->out = -1;
	snprintf(fw->chain, sizeof(fw->chain), "%s", chain);
	if ((fw->ev = event_new(base, -1, 0, out_cb, fw)) == NULL ||
	    (fw->reap = evtimer_new(base, reap_cb, fw)) == NULL ||
	    (fw->retry = evtimer_new(base, retry_cb, fw)) == NULL)
		goto fail;
	/* Replaces the chain an earlier run left, jumps and all. */
	fw_set(fw, NULL, 0, true);
	if (!fw->applied || fw_jumps(fw, true) == -1)
		goto fail;
	fw->live = true;
	log_info("proxy: %s chain %s (%s table), jumped to from %s%s%s", fw_bin(fw, false), chain,
	         fw_kinds[kind].table, fw_kinds[kind].hooks[0],
	         fw_kinds[kind].hooks[1] ? " and " : "",
	         fw_kinds[kind].hooks[1] ? fw_kinds[kind].hooks[1] : "");
	return fw;
fail:
	log_warnx("proxy: cannot set up the %s chain %s", v6 ? "ip6tables" : "iptables", chain);
	fw_free(fw);
	return NULL;
}

void fw_free(struct fw *fw)
{
	char *flush[] = {NULL, "-w", "-t", NULL, "-F", NULL, NULL};
	char *del[] = {NULL, "-w", "-t", NULL, "-X", NULL, NULL};

	if (fw == NULL)
		return;
	flush[0] = del[0] = fw_bin(fw, false);
	flush[3] = del[3] = (char *)fw_kinds[fw->kind].table;
	flush[5] = del[5] = fw->chain;
	fw_wait(fw);
	fw_jumps(fw, false);
	fw_run(flush, NULL, true);
	fw_run(del, NULL, true);
	if (fw->ev != NULL)
		event_free(fw->ev);
	if (fw->reap != NULL)
		event_free(fw->reap);
	if (fw->retry != NULL)
		event_free(fw->retry);
	free(fw->want);
	free(fw);
}
