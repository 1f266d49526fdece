/*
 * The QEMU backend (launcher/qemu/): qemu.c drives one QEMU per instance
 * over QMP, qemu_save.c suspends, restores and keeps warm shells,
 * qemu_host.c keeps the hostfwd ports of user networking, qemu_argv.c
 * builds the command line; qmp*.c speak QMP. Pid files, the sweep of what a
 * killed beckond left and bridge networking are shared (backend.h).
 */
#ifndef BECKON_LAUNCHER_QEMU_QEMU_H
#define BECKON_LAUNCHER_QEMU_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>

#include <jansson.h>

#include "conf.h"

struct instance;
struct backend_ops;
struct qmp;

extern const struct backend_ops backend_qemu_ops;

/* The QEMU binary; BECKON_QEMU in the environment overrides it (tests). */
#define QEMU_BINARY "qemu-system-x86_64"

/* The fd number QMP has in the child. */
#define QEMU_QMP_FD 3

/*
 * At launcher_new and every reload (the backend's global_init): forget the
 * hostfwd ports of services gone, no longer QEMU's, or in bridge mode.
 */
int qemu_host_init(const struct conf *conf);
/* At launcher_free (global_fini). */
void qemu_host_fini(void);

/*
 * The host side of guest port PORT of the QEMU instance INST in user
 * networking (127.0.0.1:N, a hostfwd), once its first boot picked one.
 * 0 and *SA filled, -1 when there is none (bridge mode, not booted yet).
 */
int backend_qemu_hostfwd(const struct instance *inst, uint16_t port, struct sockaddr_in *sa);

/*
 * How the NIC reaches the host: DIRECT, its netdev n0 the tap or user
 * networking; HUB, n0 a port of hub 0 with the host side on another
 * (the same guest-visible shape as a pool VMM's); POOL, a pool VMM's: the
 * hub port alone, the host side added over QMP when a cold start takes it.
 */
enum qemu_nic_via { QEMU_NIC_DIRECT, QEMU_NIC_HUB, QEMU_NIC_POOL };
#define QEMU_NETDEV_HOST "nb"    /* the host side's netdev id on a hub */
#define QEMU_NETDEV_HUBPORT "hb" /* ... and its hub port's */

/* What qemu_argv turns into a command line. */
struct qemu_argv_in {
	const char *binary;
	const char *name; /* the service */
	const char *image;
	const char *cmdline; /* the user's, placeholders expanded; nothing is added */
	const struct conf_qemu *q;
	const char *accel; /* resolved: "kvm" or "tcg" */
	uint64_t memory;   /* bytes */
	int vcpus;
	const char *mac;
	const char *tap;       /* bridge mode; NULL or "" for user networking */
	const uint16_t *ports; /* guest ports, forwarded in user networking */
	size_t nports;
	const uint16_t *host_ports; /* user networking: the hostfwd of each port */
	int qmp_fd;
	bool paused;          /* -S: a warm shell, the guest not yet running */
	const char *incoming; /* -incoming URI: restore a saved state; NULL when not */
	bool sandbox;         /* -sandbox on,...: QEMU's seccomp filter, no spawn, no set*id */
	enum qemu_nic_via nic_via;
	/* Guest RAM from a file (qemu_mem.c): -object memory-backend-file with
	 * id MEM_ID (the machine's default RAM id) on MEM_PATH; NULL: QEMU's own. */
	const char *mem_id;
	const char *mem_path;
	bool mem_share; /* share=on (the template's source), else share=off (a clone) */
};

/*
 * The NULL-terminated argv for IN, freed with qemu_argv_free. NULL on an
 * error, the reason in ERR.
 */
char **qemu_argv(const struct qemu_argv_in *in, char *err, size_t errlen);
void qemu_argv_free(char **argv);

/*
 * The accelerator for ACCEL ("auto", "kvm", "tcg"; NULL means "auto"):
 * "auto" is "kvm" when /dev/kvm opens read-write, else "tcg". KVM_PATH is
 * the device to try (tests pass another). NULL for an unknown name.
 */
const char *qemu_accel_resolve(const char *accel, const char *kvm_path);

/* The -machine value for MACHINE: plain "microvm" gets beckon's tuning. */
const char *qemu_machine_value(const char *machine);

/* qemu_host.c: pick (or keep) the hostfwd ports of INST (user mode). -1 when not. */
int qemu_host_user_ports(const struct instance *inst, uint16_t *ports, size_t nports);

/* The fd number a saved state to restore has in the child (-incoming fd:N). */
#define QEMU_INCOMING_FD 4
#define QEMU_INCOMING_FD_STR "4"

/* backend_qemu.c, for qemu_save.c: the run under way of INST. */
/*
 * Spawn QEMU for INST: PAUSED (-S) for a shell; INCOMING_FD (or -1) a state
 * to restore; DEFER: a restore shell (-incoming defer).
 */
int qemu_spawn(struct instance *inst, bool paused, int incoming_fd, bool defer);
/* The command line a cold start of INST would run now (qemu_argv_free), NULL when none. */
char **qemu_start_argv(struct instance *inst);
/* The run's QMP, or NULL. */
struct qmp *qemu_run_qmp(const struct instance *inst);
/* A second fd on QMP's socket, for passing fds (SCM_RIGHTS); -1 when none. */
int qemu_run_fdsock(const struct instance *inst);
/* Where qemu_save.c keeps its state for the run (freed by qemu_save_free). */
struct qemu_save **qemu_run_save(struct instance *inst);
/* End the run as stop(graceful) does: QMP quit, then a kill. */
void qemu_run_quit(struct instance *inst);

/* qemu_save.c: suspend, restore, warm shells (the backend ops). */
struct qemu_save;
int qemu_suspend(struct instance *inst, const char *path);
int qemu_restore(struct instance *inst, const char *path);
int qemu_shell(struct instance *inst, bool restore);
int qemu_shell_run(struct instance *inst, const char *path);
/* Save the ready guest to PATH as its template, and let it run on (template_save). */
int qemu_template_save(struct instance *inst, const char *path);
/* qemu_template.c: what shapes INST's guest, for its template (template_key). */
char *qemu_template_key(struct instance *inst);
/*
 * Tell a guest just restored from a template that it is a new one: one
 * line "RESEED <32 hex of fresh entropy> <unix ms>" on FD (its console's
 * input). Logged when it cannot be written.
 */
void qemu_template_reseed(int fd, const char *name);
/* A restore's fresh words: 16 bytes of entropy, the time (unix ms). -1 logged. */
int qemu_template_words(unsigned char entropy[16], uint64_t *wall_ms, const char *name);
/*
 * qemu_mem.c: guest memory that clones of a template share. The boot that
 * makes a template runs its guest RAM on a memfd (shared), the save leaves
 * it out of the stream (x-ignore-shared) and copies it to the template's
 * .ram file; a clone maps that file privately (share=off).
 */
struct qemu_mem;
/* The fd number a template source's memfd has in the child. */
#define QEMU_MEM_FD 5
/*
 * The default RAM block id of MACHINE (a -machine value), which a memory
 * backend must take for a state saved with QEMU's own RAM to load into it
 * and back: "microvm.ram", "pc.ram"; NULL for a machine not known here.
 */
const char *qemu_mem_ram_id(const char *machine);
/*
 * The memory of the QEMU about to be spawned for INST (RESTORE: it loads a
 * state): *OUT NULL for QEMU's own, else what qemu_mem_argv_in and
 * qemu_mem_fd give. A source without its memfd gets QEMU's own (logged:
 * the template keeps its RAM in the stream). -1 when out of memory.
 */
int qemu_mem_prepare(struct instance *inst, bool restore, struct qemu_mem **out);
void qemu_mem_free(struct qemu_mem *m);
/*
 * A pool VMM's memory (STANDIN: one of its shape): *OUT NULL for QEMU's
 * own (a machine not known here), else a shared backend on QEMU_MEM_FD,
 * with beckon's memfd when MEMFD (for its spawn; without: its argv's
 * words, for its shape). -1 when it cannot be made.
 */
int qemu_mem_pool(const struct instance *standin, bool memfd, struct qemu_mem **out);
/*
 * A take of a pool VMM by INST: its memfd gets the template's .ram, and
 * the load then skips the RAM (qemu_mem_incoming_caps). 1 when filled, 0
 * when there is nothing to fill (QEMU's own memory, or a template whose
 * RAM is in its stream), -1 on failure (logged): the stream has no RAM.
 */
int qemu_mem_pool_fill(struct instance *inst);
/*
 * The copy a take makes: IN's data pages (SIZE bytes) into OUT, zero pages
 * left as holes, the guest's reseed page given fresh words on its way
 * (*RESEEDED: one was found and written). -1 when a read or write failed.
 */
int qemu_mem_fill(int in, int out, off_t size, const char *name, bool *reseeded);
/* The fill found the guest's reseed page and wrote fresh words into it. */
bool qemu_mem_reseeded(const struct qemu_mem *m);
/* A pool VMM's QMP is up: queue x-ignore-shared on Q, for its take's load. */
int qemu_mem_pool_ready(struct instance *standin, struct qmp *q);
/* The -object and -machine memory-backend words of M, into IN. */
void qemu_mem_argv_in(const struct qemu_mem *m, struct qemu_argv_in *in);
/* The fd to pass as QEMU_MEM_FD, -1 for none. */
int qemu_mem_fd(const struct qemu_mem *m);
/* Whether M is a clone's file: its state loads after the capability is set. */
bool qemu_mem_is_clone(const struct qemu_mem *m);
/*
 * Whether INST's QEMU, with memory M, RESTORE when it loads a state, runs
 * without transparent huge pages (qemu.huge_pages = "off", but for a
 * restore into QEMU's own memory: see qemu_mem.c).
 */
bool qemu_mem_thp_off(const struct instance *inst, const struct qemu_mem *m, bool restore);
/*
 * Queue on Q what a clone's load (or a filled pool VMM's) needs first: the
 * x-ignore-shared capability (QEMU 7.2 has no command-line switch for it).
 * A no-op for other runs. CB gets the reply (ARG: INST).
 */
int qemu_mem_incoming_caps(struct instance *inst, struct qmp *q,
                           void (*cb)(struct qmp *, json_t *, json_t *, void *));
/*
 * A clone spawned with -incoming defer (qemu_mem_is_clone): queue the
 * capability and migrate-incoming of the state on QEMU_INCOMING_FD.
 */
void qemu_mem_load(struct instance *inst);
/* The capabilities a save sets: events, and x-ignore-shared = KEEP for a file. */
json_t *qemu_mem_save_caps(struct instance *inst, bool keep);
/*
 * The template's save completed, the guest stopped: copy the source's
 * memory to the template's .ram.tmp (zero pages left as holes). 0 when
 * done or nothing to do, -1 on failure (logged).
 */
int qemu_mem_freeze(struct instance *inst);
/* The run's memory (qemu.c keeps it; NULL for QEMU's own). */
struct qemu_mem *qemu_run_mem(const struct instance *inst);

/* A MIGRATION event of INST's QEMU. */
void qemu_save_event(struct instance *inst, json_t *data);
void qemu_save_free(struct qemu_save *s);

/*
 * qemu_shape.c: the shape of ARGV (qemu_argv's, its NIC through hub 0):
 * the command line less -name, -append, -initrd, the NIC's host side and
 * MAC, -incoming and -S, with the -kernel's KIND for its path. Guests of
 * one shape restore into one another's VMMs. NULL when not poolable (a
 * disk, another netdev, a kernel of no known kind) or out of memory.
 */
char *qemu_shape(char *const *argv, const char *kind);
/* What QEMU's x86 loader makes of the kernel PATH: "multiboot", "linux", "pvh", "raw"; NULL unread.
 */
const char *qemu_kernel_kind(const char *path);

/* qemu_pool.c: the pool of VMMs (pool = { size = N; }). */
/* At every config (the backend's global_init): its size; a smaller one ends VMMs now. */
void qemu_pool_conf(const struct conf *conf);
/* Whether SVC's guests run with their NIC through hub 0, the shape a pool VMM can take. */
bool qemu_pool_hub(const struct conf_service *svc);
/* INST's service has a template: keep VMMs of its shape (started in the background). */
void qemu_pool_want(struct instance *inst);
/* The backend ops: a cold start restores into a pool VMM; at exit, every pool VMM ends. */
int qemu_pool_restore(struct instance *inst, const char *path);
void qemu_pool_drain(void);

/* qemu.c, for qemu_pool.c: a pool VMM's run. */
/* Whether PID is a QEMU beckon ran for SERVICE (the is_ours op). */
bool qemu_is_ours(pid_t pid, const char *service);
struct qemu_run;
/*
 * The command line of a pool VMM of INST's shape (qemu_argv_free): its NIC
 * on hub 0 alone, no -append, -incoming defer. Nothing is set up on the
 * host for it (no tap, no port), so that it serves to learn a shape too.
 */
char **qemu_pool_argv(struct instance *inst);
/* Start STANDIN's VMM, waiting for a state (-incoming defer); qemu_pool_up(SLOT) once QMP is. */
int qemu_pool_spawn(struct instance *standin, void *slot);
/* SLOT's VMM answers QMP: it may be taken. */
void qemu_pool_up(void *slot);
/* STANDIN's run becomes INST's (its process, console, QMP). */
void qemu_run_adopt(struct instance *standin, struct instance *inst);
/* STANDIN's process was reaped: its last words read, its run freed. */
void qemu_run_reaped(struct instance *standin);

#endif
