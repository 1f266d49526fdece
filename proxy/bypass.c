/*
 * hold "proxy" in user mode, once an instance is ready: local connections to
 * its address skip the proxy. A nat chain, jumped to from OUTPUT, DNATs a
 * ready service's address and ports (reached over lo) to where the instance
 * really serves (QEMU's hostfwd, an exec process's {port}), as the bridge
 * mode's REDIRECT rule goes once a guest is ready. A relayed hop costs two
 * wake-ups and a second TCP connection; conntrack's translation costs
 * neither. Connections from other hosts still pass through the proxy: a DNAT
 * to 127.0.0.1 from outside would need route_localnet.
 *
 * A service's rule goes, synchronously, the moment its instance leaves
 * READY (before it is paused or stopped: see launcher_pause), so that no
 * new connection reaches a process that will not answer; connections made
 * before keep their translation (conntrack) and count as the instance's
 * open connections (policy/activity.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "internal.h"
#include "log.h"
#include "privs.h"

/* Two beckonds on a host (different state_dirs) get different chains. */
static uint32_t bypass_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int bypass_start(struct proxy *p, const char *state_dir)
{
	char chain[32];

	if (!privs_net_admin()) {
		log_info("proxy: no CAP_NET_ADMIN, so it stays in the path of ready instances too");
		return 0;
	}
	snprintf(chain, sizeof(chain), "BECKON-DIRECT-%08x", bypass_hash(state_dir));
	if ((p->fw = fw_new(p->base, FW_DNAT, chain, 0)) == NULL) {
		log_warnx("proxy: it stays in the path of ready instances too");
		return 0; /* the proxy still relays: slower, not broken */
	}
	p->bypass = true;
	log_info("proxy: local connections to ready instances skip it (chain %s)", chain);
	return 0;
}

void bypass_stop(struct proxy *p)
{
	fw_free(p->fw);
	p->fw = NULL;
	p->bypass = false;
}

/* Where SVC's ports go now (into UP), or false when they stay with the proxy. */
static bool bypass_target(const struct pxsvc *svc, struct sockaddr_in *up)
{
	struct instance *inst = svc->inst;
	struct instance_info info;

	/*
	 * A replicated service's connections stay with the proxy: it spreads
	 * them; so do those of a service whose requests are read for the paths
	 * of its idle_ignore.
	 */
	if (inst == NULL || svc->replicated || quiet_http(svc))
		return false;
	launcher_info(inst, &info);
	if (info.state != INST_READY)
		return false;
	for (size_t i = 0; i < svc->nports; i++)
		if (launcher_upstream(inst, svc->ports[i], &up[i]) == -1 ||
		    (up[i].sin_addr.s_addr == svc->address.s_addr &&
		     up[i].sin_port == htons(svc->ports[i])))
			return false;
	return true;
}

void bypass_rules(struct proxy *p, bool sync)
{
	struct sockaddr_in(*up)[CONF_MAX_PORTS];
	struct fw_target *t;
	struct pxsvc *svc;
	size_t n = 0;

	TAILQ_FOREACH(svc, &p->svcs, entry)
	n++;
	t = calloc(n ? n : 1, sizeof(*t));
	up = calloc(n ? n : 1, sizeof(*up));
	if (t == NULL || up == NULL) {
		log_warn("proxy: rules");
		goto out;
	}
	n = 0;
	TAILQ_FOREACH(svc, &p->svcs, entry)
	{
		bool was = svc->rule;

		svc->rule = bypass_target(svc, up[n]);
		svc->rule_left = was && !svc->rule;
		sync = sync || svc->rule_left; /* before the instance is paused or stopped */
		if (!svc->rule)
			continue;
		t[n].addr = svc->address;
		t[n].ports = svc->ports;
		t[n].nports = svc->nports;
		t[n].up = up[n];
		n++;
	}
	fw_set(p->fw, t, n, sync);
	TAILQ_FOREACH(svc, &p->svcs, entry)
	{
		if (svc->rule_left)
			log_debug("proxy: %s: its bypass rule is gone", svc->name);
		svc->rule_left = false;
	}
out:
	free(t);
	free(up);
}
