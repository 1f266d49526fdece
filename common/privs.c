/*
 * Capabilities through libcap, the user change through set*id. Why each
 * kept capability:
 *   CAP_NET_ADMIN        bridge, taps, addresses and neighbour entries
 *                        (netlink), the NFQUEUE bind and verdicts and
 *                        conntrack dumps (nfnetlink checks it on every
 *                        message), iptables rules (its children);
 *   CAP_NET_BIND_SERVICE DNS on port 53 and user-mode proxy ports below
 *                        1024, bound again on a reload that adds one;
 *   CAP_NET_RAW          iptables: its legacy backend opens the tables
 *                        through a raw socket and says "Permission denied
 *                        (you must be root)" without it; the nft backend
 *                        (Debian's default) needs CAP_NET_ADMIN only.
 *                        Which one runs is the host's choice. (The legacy
 *                        one also wants /run/xtables.lock writable.)
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"

static const cap_value_t privs_keep[] = {CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_RAW};
#define PRIVS_NKEEP (sizeof(privs_keep) / sizeof(privs_keep[0]))
/* beckond opens no raw socket itself: CAP_NET_RAW stays permitted (for
 * iptables' ambient set) but is never effective in beckond. */
static const cap_value_t privs_idle[] = {CAP_NET_RAW};

static bool privs_kept(cap_value_t v)
{
	for (size_t i = 0; i < PRIVS_NKEEP; i++)
		if (privs_keep[i] == v)
			return true;
	return false;
}

/* Lower what beckond never uses itself from its effective set. */
static int privs_lower_idle(void)
{
	cap_t caps = cap_get_proc();
	int rc = -1;

	if (caps == NULL)
		return -1;
	if (cap_set_flag(caps, CAP_EFFECTIVE, 1, privs_idle, CAP_CLEAR) == 0)
		rc = cap_set_proc(caps);
	cap_free(caps);
	return rc;
}

int privs_init(void)
{
	if (cap_reset_ambient() == -1 && errno != EINVAL) {
		log_warn("privileges: clearing the ambient capabilities");
		return -1;
	}
	/* As root everything stays as it was; started with capabilities, trim. */
	if (geteuid() != 0 && privs_lower_idle() == -1) {
		log_warn("privileges: lowering CAP_NET_RAW");
		return -1;
	}
	return 0;
}

/* Only the kept capabilities, permitted and inheritable (for ambient), effective but the idle one.
 */
static int privs_set_kept(void)
{
	cap_t caps = cap_init();
	int rc = -1;

	if (caps == NULL)
		return -1;
	if (cap_set_flag(caps, CAP_PERMITTED, PRIVS_NKEEP, privs_keep, CAP_SET) == 0 &&
	    cap_set_flag(caps, CAP_EFFECTIVE, PRIVS_NKEEP, privs_keep, CAP_SET) == 0 &&
	    cap_set_flag(caps, CAP_EFFECTIVE, 1, privs_idle, CAP_CLEAR) == 0 &&
	    cap_set_flag(caps, CAP_INHERITABLE, PRIVS_NKEEP, privs_keep, CAP_SET) == 0)
		rc = cap_set_proc(caps);
	cap_free(caps);
	return rc;
}

/* Out of the bounding set: what no child can ever gain back (needs CAP_SETPCAP). */
static int privs_bound(void)
{
	for (cap_value_t v = 0; v <= CAP_LAST_CAP; v++)
		if (!privs_kept(v) && cap_drop_bound(v) == -1 && errno != EINVAL)
			return -1;
	return 0;
}

int privs_drop(const char *user, uid_t uid, gid_t gid)
{
	const char *step;

	step = "bounding set";
	if (privs_bound() == -1)
		goto fail;
	step = "keep capabilities";
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1)
		goto fail;
	step = "initgroups"; /* its groups: kvm, say, for /dev/kvm */
	if (initgroups(user, gid) == -1)
		goto fail;
	step = "setresgid";
	if (setresgid(gid, gid, gid) == -1)
		goto fail;
	step = "setresuid";
	if (setresuid(uid, uid, uid) == -1)
		goto fail;
	step = "capabilities";
	if (privs_set_kept() == -1 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
		goto fail;
	step = "no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		goto fail;
	/* The set*id calls made us undumpable: /proc/self root's, no core, and
	 * LeakSanitizer unable to attach. Safe to undo: the kernel lets no
	 * tracer that lacks our capabilities attach (a VMM of ours has none). */
	step = "dumpable";
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == -1)
		goto fail;
	return 0;
fail:
	log_warn("privileges: %s", step);
	return -1;
}

bool privs_net_admin(void)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t caps = cap_get_proc();

	if (caps == NULL)
		return false;
	cap_get_flag(caps, CAP_NET_ADMIN, CAP_EFFECTIVE, &v);
	cap_free(caps);
	return v == CAP_SET;
}

void privs_child_net(void)
{
	if (geteuid() == 0)
		return;
	for (size_t i = 0; i < PRIVS_NKEEP; i++)
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, privs_keep[i], 0, 0);
}

void privs_ambient(bool on)
{
	if (on)
		privs_child_net();
	else if (geteuid() != 0)
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

void privs_bind(bool on)
{
	cap_value_t bind = CAP_NET_BIND_SERVICE;
	cap_t caps;

	if (geteuid() == 0 || (caps = cap_get_proc()) == NULL)
		return;
	if (cap_set_flag(caps, CAP_EFFECTIVE, 1, &bind, on ? CAP_SET : CAP_CLEAR) == 0 &&
	    cap_set_proc(caps) == -1)
		log_warn("privileges: CAP_NET_BIND_SERVICE %s", on ? "on" : "off");
	cap_free(caps);
}

int privs_thread_none(void)
{
	cap_t caps = cap_init(); /* every set empty */
	int rc = -1;

	if (caps == NULL)
		return -1;
	rc = cap_set_proc(caps);
	cap_free(caps);
	return rc;
}
