/*
 * beckond ahead of its guests (prio.h). Why nice rather than a cgroup of
 * beckon's own with cpu.weight: a cgroup needs cgroup v2 with the cpu
 * controller delegated to beckond (systemd's Delegate=, a writable
 * /sys/fs/cgroup), which many hosts lack (this project's own test machines
 * run cgroup v1's cpu controller); and in a cgroup of their own all the
 * guests together would share one weight against the rest of the
 * machine, each slower than it is today beside other work. A nice value
 * on beckond alone needs only CAP_SYS_NICE at start, and leaves every
 * guest exactly where it was. On kernels with EEVDF's custom slices
 * (6.12 and later) beckond also asks for a short slice: a task that wakes
 * with one gets an earlier deadline, and so a CPU sooner, which is what a
 * DNS answer wants; its guests get the default slice back.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "log.h"
#include "prio.h"

/* The slice beckond asks for (the kernel's least). */
#define PRIO_SLICE_NS 100000ULL

static int prio_children = PRIO_KEEP;
static bool prio_ahead; /* nice is not 0 */

/* The kernel's struct sched_attr (its first version): glibc 2.36 has none. */
struct prio_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

/* PID (0: beckond) to nice NICE and a slice of SLICE_NS (0: the default). */
static int prio_set(pid_t pid, int nice, uint64_t slice_ns)
{
	struct prio_attr a = {.size = sizeof(a), .policy = SCHED_OTHER};

	a.nice = nice;
	a.runtime = slice_ns;
	return (int)syscall(SYS_sched_setattr, pid, &a, 0);
}

/* The short slice, where the kernel reads it; false when it did not take it. */
static bool prio_slice(int nice)
{
	struct prio_attr a = {0};

	if (prio_set(0, nice, PRIO_SLICE_NS) == -1 ||
	    syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) == -1)
		return false;
	return a.runtime == PRIO_SLICE_NS;
}

/*
 * While beckond may still raise its limits: an RLIMIT_RTPRIO of 1, so that
 * its DNS thread may go realtime once beckond runs as its user
 * (prio_realtime lowers it again). Not permitted: nothing, said there.
 */
static void prio_allow_realtime(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_RTPRIO, &rl) == -1 || rl.rlim_cur >= 1)
		return;
	rl.rlim_cur = 1;
	if (rl.rlim_max < 1)
		rl.rlim_max = 1;
	setrlimit(RLIMIT_RTPRIO, &rl);
}

void prio_init(int want)
{
	int started, now;
	bool slice;

	errno = 0;
	started = getpriority(PRIO_PROCESS, 0);
	if (started == -1 && errno != 0) {
		log_warn("nice: getpriority");
		return;
	}
	now = started;
	prio_ahead = want != 0;
	if (prio_ahead)
		prio_allow_realtime();
	if (want < started) {
		if (setpriority(PRIO_PROCESS, 0, want) == 0)
			now = want;
		else
			log_warn("nice %d: not permitted (CAP_SYS_NICE or RLIMIT_NICE wanted); "
			         "beckond stays at nice %d, beside its guests",
			         want, started);
	}
	slice = want != 0 && prio_slice(now);
	if (started < 0)
		started = 0;
	if (now != started || slice)
		prio_children = started;
	if (prio_children != PRIO_KEEP)
		log_info("nice %d (guests at %d)%s: beckond goes before its guests", now, started,
		         slice ? ", slice 0.1 ms" : "");
}

int prio_child(void)
{
	return prio_children;
}

void prio_child_set(pid_t pid)
{
	if (prio_children != PRIO_KEEP && prio_set(pid, prio_children, 0) == -1 && errno != ESRCH)
		log_warn("process %d: nice %d", (int)pid, prio_children);
}

int prio_realtime(pthread_t t)
{
	struct sched_param sp = {.sched_priority = 1};
	struct rlimit none = {0, 0};
	int rc;

	rc = prio_ahead ? pthread_setschedparam(t, SCHED_FIFO, &sp) : EPERM;
	/* What allowed it allows no child (iptables; spawn.c's reset it too). */
	if (setrlimit(RLIMIT_RTPRIO, &none) == -1)
		log_warn("nice: RLIMIT_RTPRIO");
	if (!prio_ahead)
		return -1;
	if (rc != 0) {
		errno = rc;
		log_warn(
		    "the DNS thread stays beside the event loop: realtime priority not permitted "
		    "(CAP_SYS_NICE or an RLIMIT_RTPRIO of 1 wanted)");
		return -1;
	}
	log_info("the DNS thread at realtime priority 1 (SCHED_FIFO)");
	return 0;
}
