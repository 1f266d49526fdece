/*
 * The backend vtable, and what backends share. Each backend (a folder of
 * launcher/: exec/, qemu/) fills one ops struct, in the shape of Solo5's
 * tenders, and reports back through the launcher_inst_* calls below; a
 * backend that runs a process does it with the proc_* helpers (a child
 * with its console, a pid file, a kill with a grace period, the sweep of
 * what a killed beckond left). Adding a backend: a folder, one ops struct,
 * one entry in backend.c's table (docs/ARCHITECTURE.md).
 */
#ifndef BECKON_LAUNCHER_BACKEND_H
#define BECKON_LAUNCHER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "conf.h"

struct instance;
struct launcher;
struct lchild;
struct event_base;

struct backend_ops {
	const char *name; /* also names its pid files: <state_dir>/<service>.<name>.pid */
	/*
	 * Optional: whether SVC's guest gets a tap on beckon's bridge (and a
	 * permanent neighbour entry) in bridge mode; NULL: never.
	 */
	bool (*bridge)(const struct conf_service *svc);
	/*
	 * Optional: at launcher_new and every reload, before instances are
	 * made (what its services share on the host). -1 fails the reload.
	 */
	int (*global_init)(const struct conf *conf);
	/* Optional: at launcher_free, once every child is gone. */
	void (*global_fini)(void);
	/*
	 * Optional: whether PID, named by one of its pid files, is a process it
	 * ran for SERVICE (a marker on its command line or in its environment):
	 * such a process an earlier beckond left is killed at start.
	 */
	bool (*is_ours)(pid_t pid, const char *service);
	/*
	 * Optional: check SVC's templates (placeholders) at load. -1 on an
	 * error, written to ERRS (never NULL) after WHERE ("FILE:LINE:
	 * services[N]"); a note that is no error may be written too.
	 */
	int (*check)(const struct conf_service *svc, FILE *errs, const char *where);
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
	/*
	 * Optional (template = "auto", with restore): the text of everything
	 * that shapes the guest a start would run now (malloc'd; NULL when
	 * not known): a template is restored only into a run of the same key.
	 */
	char *(*template_key)(struct instance *inst);
	/*
	 * Optional: save the ready guest to the file PATH and let it run on;
	 * report the end through launcher_inst_templated. -1 when not possible.
	 */
	int (*template_save)(struct instance *inst, const char *path);
	/*
	 * Optional (pool = { size = N; }): a cold start of INST restores its
	 * template PATH into a VMM of the backend's pool, started ahead. The
	 * pool VMM's number when one took it (the run goes on as a restore's:
	 * readiness through the probe, a failure through died or
	 * launcher_inst_failed); -1 when none fits now (restore as without).
	 */
	int (*pool_restore)(struct instance *inst, const char *path);
	/* Optional: at launcher_free, before the children are killed: end what runs for nobody. */
	void (*global_drain)(void);
};

/* The ops of a backend, NULL when it is not built into this binary. */
const struct backend_ops *backend_lookup(enum conf_backend b);
/*
 * At launcher_new and every reload: kill what a killed beckond left (pid
 * files that name a process of ours not running now), set up the bridge
 * for the services that need it and take down what removed services held,
 * then each backend's global_init. -1 on failure (logged).
 */
int backend_global_init(struct launcher *l, const struct conf *conf);
void backend_global_fini(void);
/* At launcher_free, before its children are killed: each backend's global_drain. */
void backend_global_drain(void);
/* The launcher's event_base (set before global_init), for a backend's own timers. */
struct event_base *backend_base(void);

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
/*
 * The guest reset itself (its own reboot, or a triple fault). Booting: it
 * boots again, up to LAUNCHER_REBOOTS times in a wake, then the boot
 * fails; ready or paused: the instance stops at once. true when the
 * launcher took it so (it ended the run); false: end the run as usual.
 */
#define LAUNCHER_REBOOTS 2
bool launcher_inst_rebooted(struct instance *inst);

/* The host side of bridge networking (hostnet/): the gateway and prefix guests are given. */
const char *backend_gateway(void);
int backend_prefix(void);
/* Make INST's tap (on the bridge, up) and its permanent neighbour entry. -1 when not. */
int backend_bridge_up(const struct instance *inst);
/* Only INST's neighbour entry: the hypervisor puts the guest on the bridge. -1 when not. */
int backend_neigh_up(const struct instance *inst);

/*
 * The child registry: processes the launcher started, reaped on SIGCHLD by
 * pid (never waitpid(-1): other modules' children are theirs). Each child
 * leads its own process group; signals go to the whole group.
 */
struct lchild *launcher_child_add(struct instance *inst, pid_t pid);
/* SIGTERM (+SIGCONT) now and SIGKILL after the grace period, or SIGKILL now. */
void launcher_child_kill(struct lchild *c, bool graceful);
int launcher_child_signal(struct lchild *c, int sig);
/* C's process is INST's from now on (a pool VMM taken by a cold start). */
void launcher_child_adopt(struct lchild *c, struct instance *inst);
/* Detach C from its instance: killed as by launcher_child_kill, reaped silently. */
void launcher_child_abandon(struct lchild *c, bool graceful);

#endif
