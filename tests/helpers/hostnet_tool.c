/*
 * Drives launcher/hostnet*.c (hostnet.h) from the shell, for tests/integration/test_hostnet.sh.
 * Each command prints its result on stdout and exits 0, or 1 when the call
 * returned -1 (the module has logged why). With -t first, the time the call
 * took goes to stderr as "elapsed_us=N".
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hostnet.h"
#include "log.h"

static int cidr(const char *s, struct in_addr *net, int *prefix)
{
	char buf[32], *slash;

	snprintf(buf, sizeof(buf), "%s", s);
	if ((slash = strchr(buf, '/')) == NULL)
		return -1;
	*slash = '\0';
	*prefix = atoi(slash + 1);
	return inet_pton(AF_INET, buf, net) == 1 ? 0 : -1;
}

static int ip4(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1 ? 0 : -1;
}

static int cmd_bridge(char **av)
{
	struct in_addr net;
	int prefix, rc;

	if (cidr(av[1], &net, &prefix) < 0)
		return -1;
	if ((rc = hostnet_bridge_ensure(av[0], net, prefix)) >= 0)
		printf("%s\n", rc ? "created" : "existed");
	return rc;
}

static int cmd_bridge_remove(char **av)
{
	int rc = hostnet_bridge_remove(av[0]);

	if (rc >= 0)
		printf("%s\n", rc ? "removed" : "left");
	return rc;
}

static int cmd_tapname(char **av)
{
	char name[IFNAMSIZ];

	hostnet_tap_name(av[0], name);
	printf("%s\n", name);
	return hostnet_is_tap_name(name) ? 0 : -1;
}

static int cmd_tap(char **av)
{
	char name[IFNAMSIZ];

	hostnet_tap_name(av[1], name);
	if (hostnet_tap_create(name, av[0], av[1]) < 0)
		return -1;
	printf("%s\n", name);
	return 0;
}

static int cmd_tap_destroy(char **av)
{
	return hostnet_tap_destroy(av[0]);
}

static int cmd_mac(char **av)
{
	uint8_t mac[6];
	char s[HOSTNET_MAC_STRLEN];

	hostnet_mac(av[0], mac);
	hostnet_mac_format(mac, s);
	printf("%s\n", s);
	return 0;
}

static int cmd_neigh(char **av)
{
	struct in_addr ip;
	uint8_t mac[6];

	if (ip4(av[1], &ip) < 0)
		return -1;
	hostnet_mac(av[2], mac);
	return hostnet_neigh_add(av[0], ip, mac);
}

static int cmd_neigh_del(char **av)
{
	struct in_addr ip;

	if (ip4(av[1], &ip) < 0)
		return -1;
	return hostnet_neigh_del(av[0], ip);
}

static int cmd_cleanup(char **av)
{
	int n = hostnet_cleanup_stale(av[0]);

	if (n >= 0)
		printf("%d\n", n);
	return n;
}

static int cmd_counters(char **av)
{
	uint64_t rxb, txb, rxp, txp;

	if (hostnet_tap_counters(av[0], &rxb, &txb, &rxp, &txp) < 0)
		return -1;
	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", rxb, txb, rxp, txp);
	return 0;
}

static const struct {
	const char *name;
	int nargs;
	int (*fn)(char **);
	const char *usage;
} cmds[] = {
    {"bridge", 2, cmd_bridge, "NAME A.B.C.D/N"},  {"bridge-remove", 1, cmd_bridge_remove, "NAME"},
    {"tapname", 1, cmd_tapname, "SERVICE"},       {"tap", 2, cmd_tap, "BRIDGE SERVICE"},
    {"tap-destroy", 1, cmd_tap_destroy, "NAME"},  {"mac", 1, cmd_mac, "SERVICE"},
    {"neigh", 3, cmd_neigh, "BRIDGE IP SERVICE"}, {"neigh-del", 2, cmd_neigh_del, "BRIDGE IP"},
    {"cleanup", 1, cmd_cleanup, "BRIDGE"},        {"counters", 1, cmd_counters, "LINK"},
};

static int usage(void)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "usage: hostnet_tool [-t] %s %s\n", cmds[i].name, cmds[i].usage);
	return 2;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	int timed = 0, rc;

	log_init(1);
	if (argc > 1 && strcmp(argv[1], "-t") == 0) {
		timed = 1;
		argv++, argc--;
	}
	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		if (argc - 2 != cmds[i].nargs)
			return usage();
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = cmds[i].fn(argv + 2);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (timed)
			fprintf(stderr, "elapsed_us=%ld\n",
			        (t1.tv_sec - t0.tv_sec) * 1000000 +
			            (t1.tv_nsec - t0.tv_nsec) / 1000);
		return rc < 0 ? 1 : 0;
	}
	return usage();
}
