/*
 * Several hosts (hosts = ( ... )): the hosts list, where each hosted run
 * is placed, and what backends say of each host.
 */
#ifndef BECKON_LAUNCHER_HOSTS_H
#define BECKON_LAUNCHER_HOSTS_H

#include <stdbool.h>
#include <stdint.h>

#include "launcher.h"

struct conf_host;

/* What `beckonctl hosts` shows of a host of the hosts list. */
struct host_info {
	const char *name, *uri;
	const char *state;                  /* "unknown" (not yet connected), "up", "down" */
	const char *why;                    /* why it is down; "" */
	unsigned instances;                 /* booting, ready, paused or stopping there */
	uint64_t memory;                    /* what they hold, bytes */
	uint64_t max_memory, max_instances; /* 0: no limit */
};
/* Call FN for each host of the hosts list, in config order. */
void launcher_hosts(struct launcher *l, void (*fn)(const struct host_info *, void *), void *arg);

/*
 * Several hosts (hosts.c): the host of the hosts list INST's run is placed
 * on, NULL when it runs where its service says (no hosts list). Valid
 * until the next reload.
 */
const struct conf_host *launcher_inst_host(const struct instance *inst);
/*
 * A backend's word on the hosts whose uri is URI: up, or down (WHY). A host
 * going down ends the runs on it in beckon's books (booting ones fail:
 * cleanup is called for each); the next wake places them elsewhere.
 */
void backend_host_state(const char *uri, bool up, const char *why);
/* Whether URI is a host of the hosts list. */
bool backend_host_known(const char *uri);

#endif
