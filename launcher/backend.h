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

/*
 * A pool of VMMs started ahead (vmmpool.c). A stand-in instance for one
 * such VMM: SVC's copy named NAME (a name no service can have), in no
 * registry, its process's death reported to OPS->died. NULL on ENOMEM.
 */
struct instance *backend_standin_new(const struct conf_service *svc, const char *name,
                                     const struct backend_ops *ops);
void backend_standin_free(struct instance *standin);
struct proc;
/* The process P of STANDIN becomes INST's: its child entry, pid file and pid. */
void backend_standin_adopt(struct instance *standin, struct instance *inst, struct proc *p);
/* Whether an instance is booting now: a pool refills after (a boot never waits on it). */
bool backend_boots_under_way(void);
/* For the metrics: the pool's VMMs waiting to be taken, and being started. */
void backend_pool_counts(unsigned idle, unsigned starting);

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

/*
 * Several hosts (hosts.c): the host of the hosts list INST's run is placed
 * on, NULL when it runs where its service says (no hosts list). Valid
 * until the next reload.
 */
const struct conf_host *launcher_inst_host(const struct instance *inst);
/*
 * A backend's word on the hosts whose uri is URI: up, or down (WHY). A host
 * going down ends the runs on it in beckon's books (booting ones fail:
 * cleanup is called for each); the next wake places them elsewhere.
 */
void backend_host_state(const char *uri, bool up, const char *why);
/* Whether URI is a host of the hosts list. */
bool backend_host_known(const char *uri);

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
/*
 * Whether INST's start under way (or the warm shell being made) restores
 * its service's template: one of many clones of one snapshot, which the
 * backend must give fresh entropy and clock as soon as it runs.
 */
bool launcher_inst_is_clone(const struct instance *inst);
/*
 * Whether INST's start under way (or the warm shell being made) is the
 * boot that makes its service's template once ready.
 */
bool launcher_inst_makes_template(const struct instance *inst);
/*
 * <state_dir>/templates/<name>.ram (TMP: .ram.tmp): where a backend keeps
 * the template's memory beside its state, written to the .tmp during the
 * save (template.c renames it with the rest). -1 when it does not fit.
 */
int launcher_template_ram_path(const struct instance *inst, bool tmp, char *buf, size_t len);
/* A clone was given its fresh entropy and clock: readiness may now be reported. */
void launcher_inst_reseeded(struct instance *inst);
/* The save template_save started ended (OK: the file is whole, the guest runs). */
void launcher_inst_templated(struct instance *inst, bool ok);
/* A resume that returned 1 (under way) ended. */
void launcher_inst_resumed(struct instance *inst, bool ok);

/*
 * What templates' placeholders expand to (vars.c): {image} {cmdline} {tap}
 * {mac} {address} {prefix} {netmask} {gateway} {dns} {memory} {name}
 * {port}. NULL is "".
 */
struct backend_vars {
	const char *image, *cmdline, *tap, *mac, *address, *prefix, *netmask, *gateway, *dns;
	const char *memory, *name;
	const char *port;  /* {port}: ports[0], or the run's own port under hold "proxy" */
	const char *label; /* {label}: a pattern instance's label; "" for a configured service */
};
/* Room for the values backend_vars_fill formats. */
struct backend_vars_buf {
	char memory[24], port[8], prefix[4], netmask[16];
};
/*
 * INST's values: bridge mode's address, prefix, gateway and DNS (the
 * bridge's address), or in user networking the service address alone
 * (prefix 32, no gateway). A backend overrides what it knows better
 * (QEMU's user networking: backend_vars_net).
 */
void backend_vars_fill(const struct instance *inst, struct backend_vars *v,
                       struct backend_vars_buf *b);
void backend_vars_net(struct backend_vars *v, struct backend_vars_buf *b, const char *address,
                      int prefix, const char *gateway, const char *dns);
/*
 * TMPL with its placeholders replaced (no {cmdline}: that is the template);
 * braces that are no {lowercase} word, or follow a "$", are plain text.
 * malloc'd; NULL on an unknown placeholder, the reason in ERR.
 */
char *backend_expand(const char *tmpl, const struct backend_vars *v, char *err, size_t errlen);
/* backend_expand for a template that holds the cmdline ({cmdline}: V's, expanded already). */
char *backend_expand_all(const char *tmpl, const struct backend_vars *v, char *err, size_t errlen);
/* A value for every placeholder, for checks. */
void backend_vars_dummy(struct backend_vars *v);
/* The check op's part for cmdline: its placeholders are known. */
int backend_check_cmdline(const struct conf_service *svc, FILE *errs, const char *where);
/* The length of the placeholder at S ({word}, not after a "$" since START), 0 when none. */
size_t backend_placeholder_at(const char *s, const char *start);
/* The value of the LEN-long placeholder at S, NULL when unknown; *IS_CMDLINE for {cmdline}. */
const char *backend_placeholder(const char *s, size_t len, const struct backend_vars *v,
                                bool *is_cmdline);

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

/*
 * A process a backend runs for an instance (proc.c): its own process
 * group, dying with beckond, stdout and stderr into the instance's console
 * through a pipe, a pid file while it runs.
 */
struct proc {
	struct instance *inst;
	struct lchild *child; /* NULL once reaped or abandoned */
	pid_t pid;
	int fd; /* the console pipe's read end, -1 when closed */
	struct event *ev;
	bool thp_off; /* set before proc_spawn: the child runs without transparent huge pages */
	/* Optional: each piece of console output, before the launcher gets it. */
	void (*watch)(struct proc *p, const char *buf, size_t len);
};
/* An fd the child gets as TARGET (its close-on-exec cleared). */
struct proc_fd {
	int fd, target;
};
/*
 * Start ARGV for INST with FDS passed on; P is filled (P->watch may be set
 * before). 0 when running, -1 on failure (logged, nothing left behind).
 */
int proc_spawn(struct proc *p, struct instance *inst, char **argv, const struct proc_fd *fds,
               size_t nfds);
/* The process was reaped (the backend's died op): read its last words, close. */
void proc_reaped(struct proc *p);
/* Forget the process (the cleanup op): killed (after a grace when GRACEFUL), reaped later. */
void proc_abandon(struct proc *p, bool graceful);
/* SIGTERM then SIGKILL after the grace period (GRACEFUL), or SIGKILL now. */
void proc_kill(struct proc *p, bool graceful);
/* Send SIG to its group. -1 when it is gone. */
int proc_signal(struct proc *p, int sig);
/* Close the console (the process lives on without one). */
void proc_close_console(struct proc *p);

/*
 * Whether the NUL-separated words of /proc/PID/FILE (cmdline, environ) hold
 * WORD (as a word, or as the start of one with PREFIX) right after the word
 * PREV (NULL: anywhere). Every process gets BECKON_SERVICE=<service> in its
 * environment from proc_spawn.
 */
bool proc_has_word(pid_t pid, const char *file, const char *prev, const char *word, bool prefix);

#endif
