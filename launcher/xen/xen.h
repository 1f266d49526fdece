/*
 * The Xen backend (launcher/xen/), on libxenlight: xen.c fills the backend
 * ops, xen_job.c runs libxl's blocking calls on worker threads and posts
 * their completions (and libxl's domain events) back to beckon's loop,
 * xen_cfg.c turns a service and the user's xl.cfg into a
 * libxl_domain_config, xen_console.c follows the guest's console through
 * xenconsoled's log file. Domains are named beckon-<service>: beckon
 * touches no other.
 */
#ifndef BECKON_LAUNCHER_XEN_XEN_H
#define BECKON_LAUNCHER_XEN_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "conf.h"

struct backend_ops;
struct backend_vars;
struct event_base;
struct instance;

extern const struct backend_ops backend_xen_ops;

/* Every domain beckon makes is named XEN_PREFIX<service>. */
#define XEN_PREFIX "beckon-"
#define XEN_NAME_MAX (CONF_INSTANCE_NAME_MAX + 16)
/* Where xenconsoled --log=guest writes each guest's console. */
#define XEN_CONSOLE_DIR "/var/log/xen/console"

/* ---- xen_cfg.c: the domain config, no hypervisor needed ---------------------- */

/* What beckon knows of a service's guest; the user's xl.cfg overrides it. */
struct xen_cfg_in {
	const char *name;    /* the domain's (always beckon's) */
	const char *kernel;  /* the service's image; NULL when none */
	const char *cmdline; /* placeholders expanded; NULL or "" for none */
	uint64_t memory;     /* bytes */
	int vcpus;
	const char *bridge; /* NULL: no vif unless the xl.cfg has one */
	const char *mac;    /* beckon's MAC for the first vif */
};

/*
 * Fill D (libxl_domain_config_init'ed by the caller, disposed by it) from
 * IN and the xl.cfg TEXT (NULL: none; placeholders expanded already),
 * which FILE names in messages. The xl.cfg's keys win over IN: type
 * ("pvh", the default, or "pv"), kernel, ramdisk, cmdline (or root and
 * extra), memory and maxmem (MiB), vcpus and maxvcpus, vif (mac, bridge,
 * vifname, ip, script, type). Other keys are ignored. -1 with the reason in
 * ERR ("FILE:LINE: ..." from libxlutil for a syntax error).
 */
int xen_cfg_build(libxl_domain_config *d, const struct xen_cfg_in *in, const char *text,
                  const char *file, char *err, size_t errlen);
/*
 * The xl.cfg TEMPLATE with beckon's placeholders replaced (V's cmdline for
 * {cmdline}), malloc'd; NULL on an unknown placeholder, the reason in ERR.
 */
char *xen_cfg_expand(const char *tmpl, const struct backend_vars *v, char *err, size_t errlen);
/* The contents of PATH, malloc'd; NULL with the reason in ERR. */
char *xen_cfg_read(const char *path, char *err, size_t errlen);

/* ---- xen_job.c: the worker threads ------------------------------------------ */

struct xen_job;
/* On a worker: the blocking part, with libxl's context (NULL when Xen is not there). */
typedef void (*xen_job_fn)(struct xen_job *j, libxl_ctx *ctx);
/* On beckon's loop, once run: the job is freed after. */
typedef void (*xen_done_fn)(struct xen_job *j);

struct xen_job {
	struct xen_job *next;
	char key[XEN_NAME_MAX]; /* jobs with one key run one at a time, in order */
	xen_job_fn run;         /* NULL: only done (an event) */
	xen_done_fn done;       /* NULL: nothing to do after */
	uint64_t serial;        /* the run it is for (xen.c) */
	/* What the job takes and gives. */
	libxl_domain_config *cfg; /* owned: disposed and freed with the job */
	char *path;
	unsigned flags;
	int op;
	int rc;
	uint32_t domid;                  /* INVALID_DOMID when none */
	libxl_evgen_domain_death *death; /* the death watch a start made */
	int event, reason;               /* for events: libxl_event_type, shutdown reason */
	char err[512];
};

/* A new job for KEY, zeroed otherwise; NULL when out of memory. */
struct xen_job *xen_job_new(const char *key);
void xen_job_free(struct xen_job *j);
/* Start the threads once; -1 when not possible (logged). */
int xen_jobs_init(void);
/* Have completions delivered on BASE (the first call counts). -1 when not. */
int xen_jobs_attach(struct event_base *base);
/* Free the loop's events of the jobs (at exit, before the loop's base goes). */
void xen_jobs_detach(void);
/* Queue J for a worker (or, with no run, straight for done on the loop). */
void xen_job_queue(struct xen_job *j);
/* From any thread: hand J to beckon's loop for its done. */
void xen_job_post(struct xen_job *j);
/* Wait (at most MS) until no job is queued or running, then deliver what is posted. */
void xen_jobs_drain(int ms);
/* Where libxl's domain events go (jobs with op XEN_EV): set once. */
void xen_jobs_set_event_done(xen_done_fn fn);
/* libxl's last error message on this worker, or WHAT. */
const char *xen_job_error(const char *what);
#define XEN_EV 100 /* op of an event job: event, reason, domid; serial: the run's */

#endif
