/*
 * An asynchronous QMP client for QEMU, on a libevent event_base. Nothing
 * blocks: the socket is a bufferevent, and every result comes back through a
 * callback. The handshake (greeting, then qmp_capabilities) runs by itself;
 * commands issued before it ends are queued and sent once it has.
 *
 * Three ways to reach a QEMU, simplest first (all as fast: QEMU's own start
 * is the whole wait):
 * - qmp_attach: one end of a socketpair; QEMU gets the other as
 *   -chardev socket,id=qmp,fd=N -mon chardev=qmp,mode=control
 *   (no path, no retry, no race; the fd must survive the exec).
 * - qmp_listen: beckon listens on PATH first; QEMU connects with
 *   -chardev socket,id=qmp,path=PATH,server=off -mon chardev=qmp,mode=control
 * - qmp_connect: QEMU listens (-qmp unix:PATH,server=on,wait=off); beckon
 *   retries until the socket accepts or the timeout passes.
 *
 * Callbacks may call qmp_free on the qmp they are given (the usual thing to
 * do in on_close); nothing of it is touched after that.
 */
#ifndef BECKON_LAUNCHER_QMP_H
#define BECKON_LAUNCHER_QMP_H

#include <jansson.h>

struct event_base;
struct qmp;

/* The longest line (one JSON message) accepted from the peer. */
#define QMP_MAX_LINE (4 * 1024 * 1024)

struct qmp_cbs {
	/* The handshake is done: commands go straight out now. Optional. */
	void (*ready)(struct qmp *q, void *arg);
	/* An event ("STOP", "RESUME", "SHUTDOWN", ...); DATA may be NULL. Both are
	 * borrowed for the call. Optional. */
	void (*event)(struct qmp *q, const char *name, json_t *data, void *arg);
	/* The connection ended (QEMU exited, or sent something that is not
	 * QMP): called once, WHY says what happened. Not called after qmp_free. */
	void (*close)(struct qmp *q, const char *why, void *arg);
};

/*
 * The answer to a command: RET is the "return" value on success, else NULL
 * and ERR is the "error" object ({"class": ..., "desc": ...}). Borrowed for
 * the call. Called exactly once per accepted command, unless qmp_free comes
 * first; when the connection ends first, ERR has class "Disconnected".
 */
typedef void (*qmp_reply_cb)(struct qmp *q, json_t *ret, json_t *err, void *arg);

/* Take over FD (a connected stream socket; closed by qmp_free). NULL on failure (FD closed). */
struct qmp *qmp_attach(struct event_base *base, int fd, const struct qmp_cbs *cbs, void *arg);

/*
 * Listen on the unix socket PATH (an old file there is removed) and take the
 * first connection; the listening socket and PATH go away once it has come.
 * NULL on failure.
 */
struct qmp *qmp_listen(struct event_base *base, const char *path, const struct qmp_cbs *cbs,
                       void *arg);

/*
 * Connect to the unix socket PATH, retrying every 2 ms while it is absent or
 * refuses, for up to TIMEOUT_MS; past that, close is called. NULL on failure
 * now (a bad path, no memory).
 */
struct qmp *qmp_connect(struct event_base *base, const char *path, int timeout_ms,
                        const struct qmp_cbs *cbs, void *arg);

/*
 * Send EXECUTE with ARGS (stolen; may be NULL); CB (may be NULL) gets the
 * answer. 0 when sent or queued, -1 when the connection has ended.
 */
int qmp_command(struct qmp *q, const char *execute, json_t *args, qmp_reply_cb cb, void *arg);

/* Whether the handshake is done and the connection up. */
int qmp_is_ready(const struct qmp *q);

/* Close the connection and free Q; pending command callbacks are not called. */
void qmp_free(struct qmp *q);

#endif
