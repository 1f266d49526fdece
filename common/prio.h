/*
 * beckond ahead of its guests: it raises its own scheduling weight (a
 * lower nice value) at start, and every process it starts runs at the one
 * it had, so that its guests keep their weight against the rest of the
 * machine while beckond's DNS answers and event loop go before them.
 */
#ifndef BECKON_PRIO_H
#define BECKON_PRIO_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

/* prio_child's answer when a child keeps beckond's nice value. */
#define PRIO_KEEP INT_MIN

/*
 * At start, before privileges are dropped: beckond goes to nice WANT when
 * it runs above it (it needs CAP_SYS_NICE or RLIMIT_NICE to; when not
 * permitted, one warning and it stays). Children run at the nice beckond
 * started with, or 0 when that was below 0 (a service manager's Nice=
 * raises beckond alone).
 */
void prio_init(int want);

/* The nice value a child is to run at; PRIO_KEEP: beckond's own. */
int prio_child(void);

/*
 * A child beckond just started (it exec'd) to that nice value and the
 * default slice; nothing when PRIO_KEEP. Warns when it cannot.
 */
void prio_child_set(pid_t pid);

/*
 * Thread T (beckond's DNS thread: a few microseconds a query) to
 * SCHED_FIFO priority 1, so that it answers before the guests even while
 * they hold both CPUs; only when beckond goes before its guests (nice not
 * 0) and may (CAP_SYS_NICE, or an RLIMIT_RTPRIO of at least 1: systemd's
 * LimitRTPRIO=, or prio_init's while beckond was root). Either way
 * RLIMIT_RTPRIO is 0 afterwards: no child inherits it. 0 when set, -1
 * when not (logged).
 */
int prio_realtime(pthread_t t);

#endif
