/*
 * The libvirt backend (launcher/libvirt/): libvirt.c fills the backend ops,
 * libvirt_job.c runs libvirt's blocking calls on worker threads and posts
 * their completions (and libvirt's events) back to beckon's loop,
 * libvirt_conn.c keeps one connection per URI, libvirt_xml.c writes the
 * domain XML (or expands the user's). Domains are transient and named
 * beckon-<service>: beckon touches no other.
 */
#ifndef BECKON_LAUNCHER_LIBVIRT_LIBVIRT_H
#define BECKON_LAUNCHER_LIBVIRT_LIBVIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "conf.h"

struct backend_ops;
struct backend_vars;
struct event_base;

extern const struct backend_ops backend_libvirt_ops;

/* Every domain beckon makes is named LIBVIRT_PREFIX<service>. */
#define LIBVIRT_PREFIX "beckon-"
#define LIBVIRT_NAME_MAX (CONF_INSTANCE_NAME_MAX + 16)

/* ---- libvirt_xml.c: the domain XML, no I/O but the user's file ---------------- */

struct libvirt_xml_in {
	const char *name;    /* the domain's */
	const char *type;    /* "kvm" or "qemu" (TCG) */
	const char *machine; /* NULL: "microvm" */
	const char *kernel;  /* an absolute path */
	const char *initrd;  /* NULL when none */
	const char *cmdline; /* placeholders expanded; NULL or "" for none */
	uint64_t memory;     /* bytes */
	int vcpus;
	const char *tap, *mac; /* tap NULL or "": no NIC (unless bridge) */
	const char *bridge;    /* a bridge of a remote host: libvirt makes the tap there */
};

/* The domain XML for IN, malloc'd; NULL when out of memory. */
char *libvirt_xml_domain(const struct libvirt_xml_in *in);
/* S with &, <, >, ' and " as entities, malloc'd; NULL when out of memory. */
char *libvirt_xml_escape(const char *s);
/* "kvm" when /dev/kvm (KVM_PATH) opens read-write, else "qemu"; ACCEL "kvm"/"tcg" forces. */
const char *libvirt_xml_type(const char *accel, const char *kvm_path);

/*
 * The user's domain XML TEXT with its placeholders replaced by V's values
 * (V's cmdline, expanded, for {cmdline}), escaped for XML, the domain
 * renamed NAME (beckon's: it touches no other domain) and its <uuid>
 * dropped. malloc'd; NULL on an error, the reason in ERR, and in *LINE
 * the line of XML that does not parse (else 0).
 */
char *libvirt_xml_user(const char *text, const struct backend_vars *v, const char *name, int *line,
                       char *err, size_t errlen);
/* The contents of PATH, malloc'd; NULL with the reason in ERR. */
char *libvirt_xml_read(const char *path, char *err, size_t errlen);

/* ---- libvirt_job.c: the worker threads --------------------------------------- */

struct libvirt_job;
/* On a worker: the blocking part, with the connection to the job's URI (NULL: none). */
typedef void (*libvirt_job_fn)(struct libvirt_job *j, virConnectPtr c);
/* On beckon's loop, once run: the job is freed after. */
typedef void (*libvirt_done_fn)(struct libvirt_job *j);

struct libvirt_job {
	struct libvirt_job *next;
	char key[LIBVIRT_NAME_MAX]; /* jobs with one key run one at a time, in order */
	char *uri;                  /* NULL: libvirt's default */
	libvirt_job_fn run;         /* NULL: only done (an event) */
	libvirt_done_fn done;       /* NULL: nothing to do after */
	uint64_t serial;            /* the run it is for (libvirt.c) */
	/* What the job takes and gives. */
	char *xml, *path;
	unsigned flags;
	int op;
	int rc, id, detail;
	void *console; /* a console the job opened (libvirt_console_close) */
	char *data;    /* console bytes */
	size_t len;
	char uuid[VIR_UUID_STRING_BUFLEN]; /* the domain's: tells a run's events from an older one's
	                                    */
	bool noconn; /* the worker had no connection to uri (libvirt_jobs_set_noconn) */
	char err[512];
};

/* A new job for KEY on URI (copied), zeroed otherwise; NULL when out of memory. */
struct libvirt_job *libvirt_job_new(const char *key, const char *uri);
void libvirt_job_free(struct libvirt_job *j);
/* Start the threads and libvirt's event loop once; -1 when not possible (logged). */
int libvirt_jobs_init(void);
/* Have completions delivered on BASE (the first call counts). -1 when not. */
int libvirt_jobs_attach(struct event_base *base);
/* Queue J for a worker (or, with no run, straight for done on the loop). */
void libvirt_job_queue(struct libvirt_job *j);
/* From any thread: hand J to beckon's loop for its done. */
void libvirt_job_post(struct libvirt_job *j);
/*
 * At the end (ON): what libvirt's event thread posts from now on is freed,
 * not delivered; what was posted before is still there for a drain.
 */
void libvirt_jobs_closing(bool on);
/* On the loop, before its done: a job found no connection to its URI (reason in err). */
void libvirt_jobs_set_noconn(libvirt_done_fn fn);
/*
 * Wait (at most MS) until no job is queued or running, then deliver what
 * is posted. false when jobs still run (a libvirtd that does not answer).
 */
bool libvirt_jobs_drain(int ms);

/* ---- libvirt_conn.c: connections, events, consoles --------------------------- */

/*
 * The connection to URI (NULL: the default), opened on first use (the first
 * use of a URI also destroys the beckon-* domains an earlier beckond left
 * there); NULL with libvirt's message in ERR. Called on workers only.
 */
virConnectPtr libvirt_conn_get(const char *uri, char *err, size_t errlen);
/* Close every connection (at the end). */
void libvirt_conn_close_all(void);
/* libvirt's last error on this thread, or WHAT. */
const char *libvirt_conn_error(const char *what);
/*
 * Open DOM's console as a non-blocking stream whose bytes are posted as
 * console jobs for SERIAL (op LIBVIRT_EV_CONSOLE). NULL when it cannot
 * (a run without a console still runs).
 */
void *libvirt_console_open(virConnectPtr c, virDomainPtr dom, uint64_t serial);
/* Close a console from libvirt_console_open, from any thread. */
void libvirt_console_close(void *console);
/*
 * Close CONSOLE (NULL: none), then queue NEXT. libvirtd 9.0 can deadlock
 * when a domain ends (a save) while a console stream on it is aborted by
 * both ends at once: a save closes the console first.
 */
void libvirt_console_close_then(void *console, struct libvirt_job *next);

/* What the event jobs libvirt_conn.c posts carry in op (their key: the domain). */
enum libvirt_event {
	LIBVIRT_EV_LIFECYCLE = 100, /* rc: virDomainEventType, detail, uuid: the domain's */
	LIBVIRT_EV_CONSOLE,         /* data, len: console bytes; len 0: the console ended */
	LIBVIRT_EV_CLOSED,          /* uri: its connection dropped (libvirtd went away) */
};
/* Where libvirt.c takes events: set once. */
void libvirt_conn_set_event_done(libvirt_done_fn fn);

/* ---- libvirt.c: the runs, shared with libvirt_watch.c ----------------------- */

/* One run of an instance: a domain beckon made, from its start to its end. */
struct lv_run {
	struct lv_run *next;
	uint64_t serial;
	struct instance *inst;
	char dom[LIBVIRT_NAME_MAX];
	char *uri;
	int id;                                  /* the domain's, -1 until started */
	char uuid[VIR_UUID_STRING_BUFLEN];       /* the domain's, "" until started */
	char early_stop[VIR_UUID_STRING_BUFLEN]; /* stopped before the start completed */
	void *console;
	bool shell, saving, ended;
	bool unseen; /* its connection dropped: its state is not known until it is back */
	int64_t t0_us;
};

/* Every run, the first (the rest through next). */
struct lv_run *libvirt_runs(void);
struct lv_run *libvirt_run_find(uint64_t serial);
/* A job for R: RUN on a worker, DONE back on the loop. NULL when out of memory. */
struct libvirt_job *libvirt_run_job(struct lv_run *r, libvirt_job_fn run, libvirt_done_fn done);
/* R's domain ended (HOW, for the log): the launcher hears of it. */
void libvirt_run_died(struct lv_run *r, int status, const char *how);
/* End R's domain (a shutdown request first when GRACEFUL); DONE on the loop. */
void libvirt_queue_stop(struct lv_run *r, bool graceful, libvirt_done_fn done);
void libvirt_w_stop(struct libvirt_job *j, virConnectPtr c);
void libvirt_d_stop(struct libvirt_job *j);

/* ---- libvirt_watch.c: connections lost, reconnected, domains adopted -------- */

/*
 * URI's connection is gone (WHY): a host of the hosts list is marked down
 * (its runs end in beckon's books); otherwise its runs are marked unseen.
 * A timer reconnects with backoff.
 */
void libvirt_watch_lost(const char *uri, const char *why);
/* The noconn hook of the jobs: libvirt_watch_lost for the job's URI. */
void libvirt_watch_noconn(struct libvirt_job *j);
/* The done of a first connection: a host of the list is up. */
void libvirt_watch_connected(struct libvirt_job *j);
/* Free the timers (at the end). */
void libvirt_watch_free(void);

#endif
