/*
 * The control socket: a unix stream socket taking one JSON request a line,
 * {"cmd":"list"} or {"cmd":"stop","service":"www"}, answering one JSON line.
 */
#ifndef BECKON_CONTROL_H
#define BECKON_CONTROL_H

struct event_base;
struct launcher;
struct control;

/* Asked to reload the config; returns 0 when the new config took, -1 when
 * it was rejected, with a message in ERR. */
typedef int (*control_reload_fn)(void *arg, char *err, size_t errlen);

/* What `status` reports besides the instances. */
struct control_status {
	const char *version;
	const char *zone;
	const char *config;
};

/*
 * Listen on PATH (a stale socket file is replaced; a live one is an error).
 * NULL on failure (logged).
 */
struct control *control_new(struct event_base *base, const char *path, struct launcher *l,
                            control_reload_fn reload, void *reload_arg);

/* Point at new objects after a reload. */
void control_set_status(struct control *c, const struct control_status *st);

/* Close the socket, drop clients, unlink the path. NULL is fine. */
void control_free(struct control *c);

#endif
