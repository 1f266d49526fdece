/*
 * The backend vtable (launcher-internal). Each backend fills one ops struct,
 * in the shape of Solo5's tenders, and reports back through the
 * launcher_inst_* calls below. Adding a backend is a new backend_X.c and one
 * entry in backend.c's table.
 */
#ifndef BECKON_LAUNCHER_BACKEND_H
#define BECKON_LAUNCHER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "conf.h"

struct instance;
struct launcher;
struct lchild;

struct backend_ops {
	const char *name;
	/*
	 * Start the guest (boot or restore). 0 when started: readiness is up to
	 * the probe; -1 when it cannot start (logged, nothing left behind).
	 */
	int (*start)(struct instance *inst);
	/*
	 * End the running guest; graceful gives it a grace period first. The end
	 * is reported later through launcher_inst_exited.
	 */
	void (*stop)(struct instance *inst, bool graceful);
	/*
	 * Freeze and thaw the running guest. 0 when done, -1 when not; resume
	 * may return 1 when it ends later, reported by launcher_inst_resumed.
	 */
	int (*pause)(struct instance *inst);
	int (*resume)(struct instance *inst);
	/*
	 * The guest's process was reaped (STATUS as from waitpid; the lchild is
	 * already freed): release what the run held, then launcher_inst_exited.
	 */
	void (*died)(struct instance *inst, int status);
	/*
	 * Forget the current run without a report: whatever still runs is killed
	 * (after a grace period when graceful) and reaped in the background.
	 */
	void (*cleanup)(struct instance *inst, bool graceful);
	/* Optional: where tcp and http probes connect; default address:ports[0]. */
	int (*probe_target)(const struct instance *inst, struct sockaddr_in *sa);
	/*
	 * Optional: where the guest serves PORT (one of the service's ports) in
	 * the run under way, for the proxy (launcher_upstream); default: the
	 * service address and PORT. -1 when it does not serve PORT now.
	 */
	int (*upstream)(const struct instance *inst, uint16_t port, struct sockaddr_in *sa);
	/*
	 * Optional (on_idle "suspend"): save the running guest to the file PATH
	 * and end the VMM. 0 when under way: launcher_inst_saved reports the
	 * save, then the end comes as usual (died). -1 when not possible now.
	 */
	int (*suspend)(struct instance *inst, const char *path);
	/* Optional: start as start does, but from the state saved in PATH. */
	int (*restore)(struct instance *inst, const char *path);
	/*
	 * Optional (warm "shell"): start the VMM with the guest not yet
	 * running, or (RESTORE) waiting for a saved state; shell_run then
	 * runs it: boots the guest, or restores it from PATH (non-NULL for a
	 * restore shell); ready through the probe. Report launcher_inst_shell_ready
	 * once the VMM is up. A shell that ends is reported through died.
	 */
	int (*shell)(struct instance *inst, bool restore);
	int (*shell_run)(struct instance *inst, const char *path);
};

/* The ops of a backend, NULL when it is not built into this binary. */
const struct backend_ops *backend_lookup(enum conf_backend b);

extern const struct backend_ops backend_exec_ops;

/* What backends may read of an instance. */
const struct conf_service *launcher_inst_service(const struct instance *inst);
struct event_base *launcher_inst_base(const struct instance *inst);
const char *launcher_inst_state_dir(const struct instance *inst);
const char *launcher_inst_address(const struct instance *inst);
const char *launcher_inst_mac(const struct instance *inst);
const char *launcher_inst_tap(const struct instance *inst);
/* The hold mode: under "proxy" the service address and ports are the proxy's. */
enum conf_hold launcher_inst_hold(const struct instance *inst);
void *launcher_inst_priv(const struct instance *inst);
void launcher_inst_set_priv(struct instance *inst, void *priv);
void launcher_inst_set_pid(struct instance *inst, pid_t pid);

/* Reports from a backend. */
void launcher_inst_console(struct instance *inst, const char *buf, size_t len);
void launcher_inst_exited(struct instance *inst, int status);
void launcher_inst_failed(struct instance *inst, const char *why);
/* The save that suspend started ended (OK: the file is complete). */
void launcher_inst_saved(struct instance *inst, bool ok);
/* The guest started running (QEMU's RESUME): a probe waiting on a lost SYN tries again. */
void launcher_inst_running(struct instance *inst);
/* The VMM of a warm shell is up and waits for shell_run. */
void launcher_inst_shell_ready(struct instance *inst);
/* A resume that returned 1 (under way) ended. */
void launcher_inst_resumed(struct instance *inst, bool ok);

/*
 * The child registry: processes the launcher started, reaped on SIGCHLD by
 * pid (never waitpid(-1): other modules' children are theirs). Each child
 * leads its own process group; signals go to the whole group.
 */
struct lchild *launcher_child_add(struct instance *inst, pid_t pid);
/* SIGTERM (+SIGCONT) now and SIGKILL after the grace period, or SIGKILL now. */
void launcher_child_kill(struct lchild *c, bool graceful);
int launcher_child_signal(struct lchild *c, int sig);
/*
 * In a forked child, before exec: its own process group, death with beckond
 * (PDEATHSIG), default signals, stdin from /dev/null, OUT as stdout and
 * stderr. Exits when beckond (PARENT) is already gone.
 */
void launcher_child_prepare(int out, pid_t parent);
/* Close every fd from LOWEST up and exec ARGV; never returns. */
void launcher_child_exec(char **argv, int lowest) __attribute__((noreturn));
/* Detach C from its instance: killed as by launcher_child_kill, reaped silently. */
void launcher_child_abandon(struct lchild *c, bool graceful);

/* Exec backend helpers, exposed for the unit tests. */
struct exec_vars {
	const char *image, *cmdline, *tap, *mac, *address, *memory, *name;
	const char *port; /* {port}: ports[0], or the run's own port under hold "proxy" */
};
/*
 * Split TEMPLATE into a NULL-terminated argv, substituting {image} and the
 * rest from VARS. Single and double quotes group words; a backslash escapes
 * the next character outside single quotes. A placeholder expands inside its
 * word as is, in quotes too, except an unquoted {cmdline}, which is split
 * into words (its own quotes honoured) like the rest of the command. Braces
 * that are no {lowercase} word ("${x}", "{ a; }") are plain text; an unknown
 * {word} is an error. NULL on an error, with the reason in ERR.
 */
char **backend_exec_argv(const char *template, const struct exec_vars *vars, char *err,
                         size_t errlen);
void backend_exec_argv_free(char **argv);

#endif
