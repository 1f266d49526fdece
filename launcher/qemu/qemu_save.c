/*
 * Suspend, restore and warm shells for the QEMU backend.
 *
 * Suspend: the state file is handed to QEMU over the QMP socket
 * (SCM_RIGHTS, then "getfd") and "migrate" to "fd:NAME" writes the guest
 * into it. QEMU 7.2 has no "file:" URI, and "exec:cat > FILE" would need a
 * shell and may finish after QEMU says "completed"; with the fd, the file
 * is whole when the MIGRATION event says "completed". Then "quit". The
 * guest runs while it is saved (QEMU stops it for the last pass): a guest
 * saved stopped would come back stopped.
 * Restore: QEMU starts with "-incoming fd:N" on the file and runs the
 * guest once the state is loaded (no -S). A shell is QEMU with -S; running
 * it is "cont".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "qemu.h"
#include "qmp.h"
#include "revive.h"

/* Short: QEMU's monitor reads its input a byte at a time (6-8 us a byte
 * under TCG here), and a restore's getfd and migrate-incoming name it. */
#define SAVE_FDNAME "s"
/* Past QEMU's 128 MiB/s default: a save is one pass of a stopped guest. */
#define SAVE_BANDWIDTH (64LL << 30)

struct qemu_save {
	int fd; /* the state file, until QEMU has it */
	bool failed;
	bool keep;          /* a template: the guest runs on once saved */
	bool ram_failed;    /* ... its memory could not be copied (qemu_mem_freeze) */
	struct event *cont; /* ... "cont" again: QEMU is still finishing the migration */
	int cont_tries;
};

/* "completed" comes before QEMU leaves finish-migrate, when "cont" is refused. */
#define CONT_RETRY_MS 5
#define CONT_TRIES 400

static const char *save_name(const struct instance *inst)
{
	return launcher_inst_service(inst)->name;
}

void qemu_save_free(struct qemu_save *s)
{
	if (s == NULL)
		return;
	if (s->fd != -1)
		close(s->fd);
	if (s->cont != NULL)
		event_free(s->cont);
	free(s);
}

static struct qemu_save *save_of(struct instance *inst)
{
	struct qemu_save **sp = qemu_run_save(inst);

	return sp != NULL ? *sp : NULL;
}

/* Forget the save: a later one (a suspend after a template) starts clean. */
static void save_done(struct instance *inst)
{
	struct qemu_save **sp = qemu_run_save(inst);

	if (sp == NULL)
		return;
	qemu_save_free(*sp);
	*sp = NULL;
}

/* The save failed: say so once, and end the run as a stop would. */
static void save_fail(struct instance *inst, const char *what, json_t *err)
{
	struct qemu_save *s = save_of(inst);
	const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;

	if (s == NULL || s->failed)
		return;
	s->failed = true;
	log_warnx("%s: %s: %s: %s", save_name(inst), s->keep ? "template" : "suspend", what,
	          desc ? desc : "failed");
	if (s->keep) {
		/* QEMU runs the guest on after a failed migration. */
		save_done(inst);
		launcher_inst_templated(inst, false);
		return;
	}
	launcher_inst_saved(inst, false);
	qemu_run_quit(inst);
}

static void save_reply_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	(void)q;
	(void)ret;
	if (err != NULL)
		save_fail(arg, "qmp", err);
}

/* One byte with FD attached, on QMP's socket: QEMU keeps it for "getfd". */
static int save_send_fd(int sock, int fd)
{
	char byte = '\n';
	struct iovec iov = {&byte, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = u.buf,
	                     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	return n == 1 ? 0 : -1;
}

/*
 * The guest runs (a paused one too, now) and QMP has answered everything
 * sent before: what goes on the socket now cannot split a command. Hand
 * over the file, migrate.
 */
static void save_running_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	struct instance *inst = arg;
	struct qemu_save *s = save_of(inst);
	int sock = qemu_run_fdsock(inst);

	(void)ret;
	if (s == NULL || s->failed)
		return;
	if (err != NULL) {
		save_fail(inst, "cont", err);
		return;
	}
	if (sock == -1 || save_send_fd(sock, s->fd) == -1) {
		log_warn("%s: suspend: passing the state file", save_name(inst));
		save_fail(inst, "passing the state file", NULL);
		return;
	}
	close(s->fd);
	s->fd = -1;
	qmp_command(q, "getfd", json_pack("{s:s}", "fdname", SAVE_FDNAME), save_reply_cb, inst);
	qmp_command(q, "migrate-set-capabilities", qemu_mem_save_caps(inst, s->keep), save_reply_cb,
	            inst);
	qmp_command(q, "migrate-set-parameters",
	            json_pack("{s:I}", "max-bandwidth", (json_int_t)SAVE_BANDWIDTH), save_reply_cb,
	            inst);
	qmp_command(q, "migrate", json_pack("{s:s}", "uri", "fd:" SAVE_FDNAME), save_reply_cb,
	            inst);
}

static int save_begin(struct instance *inst, const char *path, bool keep)
{
	struct qmp *q = qemu_run_qmp(inst);
	struct qemu_save **sp = qemu_run_save(inst);
	struct qemu_save *s;

	if (q == NULL || sp == NULL || *sp != NULL || qemu_run_fdsock(inst) == -1)
		return -1;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	if ((s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s: suspend: %s", save_name(inst), path);
		free(s);
		return -1;
	}
	s->keep = keep;
	*sp = s;
	if (qmp_command(q, "cont", NULL, save_running_cb, inst) == -1) {
		*sp = NULL;
		qemu_save_free(s);
		return -1;
	}
	return 0;
}

int qemu_suspend(struct instance *inst, const char *path)
{
	return save_begin(inst, path, false);
}

int qemu_template_save(struct instance *inst, const char *path)
{
	return save_begin(inst, path, true);
}

static void template_cont_cb(struct qmp *q, json_t *ret, json_t *err, void *arg);

static void template_cont_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct instance *inst = arg;
	struct qmp *q = qemu_run_qmp(inst);

	(void)fd;
	(void)what;
	if (q == NULL || qmp_command(q, "cont", NULL, template_cont_cb, inst) == -1) {
		save_done(inst);
		launcher_inst_templated(inst, false);
	}
}

/* Try "cont" again shortly; -1 when out of tries. */
static int template_cont_later(struct instance *inst, struct qemu_save *s)
{
	struct timeval tv = {0, CONT_RETRY_MS * 1000};

	if (++s->cont_tries >= CONT_TRIES)
		return -1;
	if (s->cont == NULL &&
	    (s->cont = evtimer_new(launcher_inst_base(inst), template_cont_timer_cb, inst)) == NULL)
		return -1;
	return evtimer_add(s->cont, &tv);
}

/* The template is whole; the guest, stopped for the last pass, runs again. */
static void template_cont_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	struct instance *inst = arg;
	struct qemu_save *s = save_of(inst);
	const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;
	bool ok = err == NULL && (s == NULL || !s->ram_failed);

	(void)q;
	(void)ret;
	if (err != NULL && s != NULL && template_cont_later(inst, s) == 0)
		return;
	if (err != NULL)
		log_warnx("%s: template: cont after the save: %s", save_name(inst),
		          desc ? desc : "failed");
	save_done(inst);
	if (ok)
		qemu_pool_want(inst); /* its later cold starts: into VMMs of its shape */
	launcher_inst_templated(inst, ok);
}

static void save_completed(struct instance *inst, struct qemu_save *s)
{
	struct qmp *q = qemu_run_qmp(inst);

	if (!s->keep) {
		launcher_inst_saved(inst, true);
		qemu_run_quit(inst);
		return;
	}
	/* Stopped for the last pass: the memory is what the state says. */
	s->ram_failed = qemu_mem_freeze(inst) == -1;
	if (q == NULL || qmp_command(q, "cont", NULL, template_cont_cb, inst) == -1) {
		save_done(inst);
		launcher_inst_templated(inst, false);
	}
}

void qemu_save_event(struct instance *inst, json_t *data)
{
	struct qemu_save *s = save_of(inst);
	const char *status = json_string_value(json_object_get(data, "status"));

	if (s == NULL || s->failed || status == NULL)
		return;
	log_debug("%s: migration %s", save_name(inst), status);
	if (strcmp(status, "completed") == 0) {
		save_completed(inst, s);
	} else if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
		save_fail(inst, "migration", NULL);
	}
}

int qemu_restore(struct instance *inst, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd == -1) {
		log_warn("%s: restore: %s", save_name(inst), path);
		return -1;
	}
	rc = qemu_spawn(inst, false, fd, false);
	close(fd);
	return rc;
}

/* A shell: QEMU with -S, or for a restore -incoming defer. */
int qemu_shell(struct instance *inst, bool restore)
{
	return qemu_spawn(inst, !restore, -1, restore);
}

static void shell_run_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;

	(void)q;
	(void)ret;
	if (err == NULL) {
		log_debug("%s: warm shell: answered", save_name(arg));
		return;
	}
	log_warnx("%s: warm shell: %s", save_name(arg), desc ? desc : "failed");
	launcher_inst_failed(arg, "the warm shell did not start");
}

/*
 * A restore shell loads PATH: the file is handed over as for a save (QMP
 * has been quiet since the shell came up), then "migrate-incoming"; QEMU
 * runs the guest once it is loaded (no -S).
 */
static int shell_restore(struct instance *inst, struct qmp *q, const char *path)
{
	int sock = qemu_run_fdsock(inst), fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd == -1 || sock == -1 || save_send_fd(sock, fd) == -1) {
		log_warn("%s: restore: %s", save_name(inst), path);
		goto done;
	}
	if (qmp_command(q, "getfd", json_pack("{s:s}", "fdname", SAVE_FDNAME), shell_run_cb,
	                inst) == -1 ||
	    qemu_mem_incoming_caps(inst, q, shell_run_cb) == -1 ||
	    qmp_command(q, "migrate-incoming", json_pack("{s:s}", "uri", "fd:" SAVE_FDNAME),
	                shell_run_cb, inst) == -1)
		goto done;
	rc = 0;
done:
	if (fd != -1)
		close(fd);
	return rc;
}

int qemu_shell_run(struct instance *inst, const char *path)
{
	struct qmp *q = qemu_run_qmp(inst);

	if (q == NULL)
		return -1;
	if (path != NULL)
		return qmp_is_ready(q) ? shell_restore(inst, q, path) : -1;
	return qmp_command(q, "cont", NULL, shell_run_cb, inst);
}
