/*
 * beckond ahead of its guests (prio.h). Why nice rather than a cgroup of
 * beckon's own with cpu.weight: a cgroup needs cgroup v2 with the cpu
 * controller delegated to beckond (systemd's Delegate=, a writable
 * /sys/fs/cgroup), which many hosts lack (this project's own test machines
 * run cgroup v1's cpu controller); and in a cgroup of their own all the
 * guests together would share one weight against the rest of the
 * machine, each slower than it is today beside other work. A nice value
 * on beckond alone needs only CAP_SYS_NICE at start, and leaves every
 * guest exactly where it was.
 */
#include <errno.h>
#include <sys/resource.h>

#include "log.h"
#include "prio.h"

static int prio_children = PRIO_KEEP;

void prio_init(int want)
{
	int started, now;

	errno = 0;
	started = getpriority(PRIO_PROCESS, 0);
	if (started == -1 && errno != 0) {
		log_warn("nice: getpriority");
		return;
	}
	now = started;
	if (want < started) {
		if (setpriority(PRIO_PROCESS, 0, want) == 0) {
			now = want;
			log_info("nice %d (guests at %d): beckond goes before its guests", want,
			         started < 0 ? 0 : started);
		} else {
			log_warn("nice %d: not permitted (CAP_SYS_NICE or RLIMIT_NICE wanted); "
			         "beckond stays at nice %d, beside its guests",
			         want, started);
		}
	}
	if (started < 0)
		started = 0;
	prio_children = started != now ? started : PRIO_KEEP;
}

int prio_child(void)
{
	return prio_children;
}
