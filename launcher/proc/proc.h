/*
 * What backends share, and call (the core calls none of it: part_proc's
 * hooks sweep and count): processes with their console (proc.c), started
 * without copying beckond (spawn.c); placeholders (vars.c); argv building
 * (argvec.h); worker threads for blocking libraries (jobq.h); stand-ins
 * for VMMs started for no service (vmmpool.c).
 */
#ifndef BECKON_LAUNCHER_PROC_H
#define BECKON_LAUNCHER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "backend.h"

struct event;
struct proc;

/*
 * Every service's templates (cmdline, exec.command): an unknown
 * placeholder is an error, written to ERRS as "FILE:LINE: message" (logged
 * when ERRS is NULL); notes for the reader only go to ERRS. -1 on an error.
 * launcher_new and launcher_reload refuse such a config.
 */
int launcher_check_templates(const struct conf *conf, FILE *errs);

/*
 * A pool of VMMs started ahead (vmmpool.c). A stand-in instance for one
 * such VMM: SVC's copy named NAME (a name no service can have), in no
 * registry, its process's death reported to OPS->died. NULL on ENOMEM.
 */
struct instance *backend_standin_new(const struct conf_service *svc, const char *name,
                                     const struct backend_ops *ops);
void backend_standin_free(struct instance *standin);
/* The process P of STANDIN becomes INST's: its child entry, pid file and pid. */
void backend_standin_adopt(struct instance *standin, struct instance *inst, struct proc *p);
/* Whether an instance is booting now: a pool refills after (a boot never waits on it). */
bool backend_boots_under_way(void);
/* For the metrics: the pool's VMMs waiting to be taken, and being started. */
void backend_pool_counts(unsigned idle, unsigned starting);

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

/* vmmpool.c: the launcher stand-ins are made for (NULL: none); the counts for the metrics. */
void vmmpool_set_launcher(struct launcher *l, const char *state_dir);
void vmmpool_stats(unsigned *idle, unsigned *starting);

/* spawn.c: a process started without copying beckond (clone, CLONE_VM | CLONE_VFORK). */
struct spawn {
	char *const *argv;
	const struct proc_fd *fds; /* dup2'd to their targets, close-on-exec cleared */
	size_t nfds;
	int out;      /* the child's stdout and stderr; its stdin is /dev/null */
	int nice;     /* the child's nice value (set once it exec'd); PRIO_KEEP: beckond's */
	bool thp_off; /* no transparent huge pages for the child (inherited across exec) */
	int err;      /* out: the child's execve failed with this errno (it exited 127) */
	/* Filled by spawn_run for the child. */
	const char *path;
	char *const *envp;
	pid_t parent;
};
/*
 * Start S->argv (PATH searched) in its own process group, killed when
 * beckond dies, every signal at its default and unblocked, beckond's
 * environment with BECKON_SERVICE=SERVICE, no fd of beckond's but S's.
 * The pid, or -1 (errno in S->err) when clone failed. Event loop only.
 */
pid_t spawn_run(struct spawn *s, const char *service);

#endif
