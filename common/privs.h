/*
 * Least privilege: beckond keeps only the capabilities its network work
 * needs, runs as its own user when told to, and hands capabilities on to
 * the one kind of child that needs them (iptables), never to a guest's VMM.
 */
#ifndef BECKON_PRIVS_H
#define BECKON_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * At start: the ambient set a service manager may have given us
 * (AmbientCapabilities=) is cleared, so that no VMM inherits it; the
 * capabilities stay permitted and effective, but CAP_NET_RAW, which only
 * iptables uses, when not root. 0, or -1 when libcap fails.
 */
int privs_init(void);

/*
 * Become USER (UID, primary group GID, and its groups), keeping
 * CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and CAP_NET_RAW (permitted, for
 * iptables; not effective) and dropping every other capability from the
 * bounding set too; sets no_new_privs. Call as root.
 * 0, or -1 with a message logged.
 */
int privs_drop(const char *user, uid_t uid, gid_t gid);

/*
 * CAP_NET_BIND_SERVICE effective (ON) or not: only while listeners are
 * bound (start, reload), so that the code reading packets from the
 * network runs without it. No-op as root.
 */
void privs_bind(bool on);

/* May this process administer the network (rules, queues, links)? */
bool privs_net_admin(void);

/*
 * In a child about to exec a network tool (iptables): raise the kept
 * capabilities into the ambient set so that the tool has them too. No-op
 * as root. Async-signal-safe enough for after fork (prctl only).
 */
void privs_child_net(void);

/*
 * The same around a posix_spawn from the calling thread: privs_ambient(true)
 * before, privs_ambient(false) after.
 */
void privs_ambient(bool on);

/*
 * The calling thread gives up every capability, for good (capabilities
 * are per thread): for a thread that only reads and answers packets on
 * sockets bound before it. 0, or -1 when libcap fails.
 */
int privs_thread_none(void);

#endif
