/*
 * The configuration: parsed and validated from a libconfig file into plain
 * structs. Nothing outside conf/ sees libconfig types.
 */
#ifndef BECKON_CONF_H
#define BECKON_CONF_H

/* max_booting's default: boots at once per online CPU. */
#define CONF_BOOTING_PER_CPU 2
/* beckond's nice by default: ahead of its guests (they run at nice 0). */
#define CONF_NICE_DEFAULT -5

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#define CONF_MAX_LISTEN 8
#define CONF_MAX_NS 8
#define CONF_MAX_PORTS 16
#define CONF_DNS_NAME_MAX 253 /* without the trailing dot */
#define CONF_SERVICE_NAME_MAX 32
#define CONF_DNS_LABEL_MAX 63
/* An instance's name: the service's, or "LABEL.SERVICE" for a pattern service's. */
#define CONF_INSTANCE_NAME_MAX (CONF_DNS_LABEL_MAX + 1 + CONF_SERVICE_NAME_MAX)
#define CONF_POOL_MAX 65536 /* addresses in one address_pool */
#define CONF_HOST_NAME_MAX 32

enum conf_backend { CONF_BACKEND_QEMU, CONF_BACKEND_LIBVIRT, CONF_BACKEND_XEN, CONF_BACKEND_EXEC };
enum conf_ready { CONF_READY_TCP, CONF_READY_HTTP, CONF_READY_CONSOLE, CONF_READY_DELAY };
enum conf_on_idle { CONF_IDLE_PAUSE, CONF_IDLE_SUSPEND, CONF_IDLE_SHUTDOWN, CONF_IDLE_DESTROY };
enum conf_warm { CONF_WARM_NONE, CONF_WARM_SHELL, CONF_WARM_PAUSED };
/* template: "off", or "auto": cold starts restore a snapshot of the first boot. */
enum conf_template { CONF_TEMPLATE_OFF, CONF_TEMPLATE_AUTO };
enum conf_net_mode { CONF_NET_BRIDGE, CONF_NET_USER };
enum conf_hold { CONF_HOLD_SYN, CONF_HOLD_PROXY, CONF_HOLD_NONE };

/* A socket address parsed from "host:port" or "[v6]:port". */
struct conf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64]; /* as written, for logs */
};

struct conf_ns {
	char *name;          /* lower case, no trailing dot */
	struct in_addr addr; /* glue, when has_addr */
	bool has_addr;
};

struct conf_qemu {
	char *machine;  /* default "microvm" */
	char *accel;    /* "auto" | "kvm" | "tcg"; default "auto" */
	char *cpu;      /* default "max" */
	char *nic;      /* NULL: virtio-net-device on microvm, virtio-net-pci otherwise */
	char *disk;     /* a second disk; NULL when none */
	char *initrd;   /* with boot "kernel"; NULL when none */
	bool boot_disk; /* boot = "disk": the image is a disk to boot from, not a kernel */
	bool thp_off;   /* huge_pages = "off": QEMU runs without transparent huge pages */
	char **args;    /* extra arguments */
	size_t nargs;
};

/* An IPv4 network, "192.0.2.0/24". */
struct conf_cidr {
	struct in_addr net; /* host bits cleared */
	int prefix;         /* 0 to 32 */
};

/* A route of a front: requests whose path begins with PREFIX go to SERVICE. */
struct conf_route {
	char *prefix;  /* begins with "/" */
	char *service; /* a service's name (not a front's) */
};

/*
 * unavailable = { status; retry_after; body; content_type; ports; }: what
 * the proxy (hold "proxy") answers an HTTP client on those ports when it
 * cannot serve it (the boot failed or timed out, no room, a hold limit),
 * instead of a reset. Not set: a reset.
 */
#define CONF_UNAVAILABLE_BODY_MAX 4096
struct conf_unavailable {
	bool set;
	int status;              /* 400..599; default 503 */
	uint64_t retry_after_ms; /* sent in whole seconds, rounded up; 0: no header; default 5s */
	char *body;              /* default "503 Service Unavailable: try again shortly\n" */
	char *content_type;      /* default "text/plain; charset=utf-8" */
	uint16_t ports[CONF_MAX_PORTS]; /* the service's ports it answers on; none: all */
	size_t nports;
};

struct conf_service {
	char *name;
	char **dns; /* lower case FQDNs, no trailing dot */
	size_t ndns;
	char *image;   /* as written (relative to the cwd); NULL when unset */
	char *cmdline; /* "" when none */
	struct in_addr address;
	/*
	 * address6: what AAAA answers. The guests stay IPv4: with hold
	 * "proxy" the proxy listens there too and relays to the guest's IPv4
	 * address; with "syn" (an exec service with IPv6) it is the
	 * process's own address, its SYNs held through ip6tables.
	 */
	struct in6_addr address6;
	bool has_address6;
	uint16_t ports[CONF_MAX_PORTS];
	size_t nports;
	enum conf_backend backend;
	uint64_t memory; /* bytes */
	int vcpus;
	uint64_t boot_timeout_ms;
	enum conf_ready ready;
	char *ready_arg;         /* http path or console regex; NULL otherwise */
	uint64_t ready_delay_ms; /* for delay: */
	char *fail_re;           /* fail = "console:REGEX": a boot fails at a matching line; NULL */
	uint64_t idle_timeout_ms;
	enum conf_on_idle on_idle;
	/*
	 * idle_ignore: what does not count as activity (health checks). Clients
	 * in IGNORE_NETS, and HTTP requests through the proxy whose path begins
	 * with one of IGNORE_PATHS, are served but keep nothing up.
	 */
	struct conf_cidr *ignore_nets;
	size_t nignore_nets;
	char **ignore_paths;
	size_t nignore_paths;
	int ignore_answer; /* idle_ignore_answer: beckon answers an ignored path this status
	                    * while the guest is not ready, without waking it; 0: it wakes */
	/* idle_check = "http:/PATH": asked before an idle action (200: yes); NULL: none. */
	char *idle_check;
	/* idle_check = "console:REGEX": yes when the guest's last console line matches. */
	char *idle_check_re;
	uint64_t idle_check_interval_ms; /* after a "not now", asked again this much later */
	uint64_t idle_max_ms;            /* idle this long, on_idle runs unasked; 0: never */
	/* idle_notice = "http:/PATH": told before an idle suspend; NULL: none. */
	char *idle_notice;
	uint64_t idle_notice_timeout_ms; /* ... and its answer awaited this long at most */
	enum conf_warm warm;
	enum conf_template template;
	struct conf_qemu qemu;
	char *libvirt_uri,
	    *libvirt_xml;   /* libvirt group; NULL when unset (uri: libvirt's default) */
	char *xen_cfg;      /* xen group; NULL when unset */
	char *exec_command; /* exec group; NULL when unset */
	char **hosts;       /* the hosts it may run on (names in conf.hosts); NULL: any */
	size_t nhosts;
	/*
	 * A front (an entry with a routes key) runs nothing: the proxy reads
	 * each HTTP request to its address and ports and sends it to the
	 * service of the longest matching prefix. NULL for a service.
	 */
	struct conf_route *routes;
	size_t nroutes;
	/*
	 * A pattern service: dns is ( "*.SUFFIX" ), one instance per label
	 * whose image exists, its address from [pool_first, pool_last].
	 */
	bool pattern;
	struct in_addr pool_first, pool_last;
	char *label; /* an instance made from a pattern service: its label; NULL otherwise */
	/*
	 * replicas = { min; max; target; }: up to MAX instances, another
	 * booted while each has more than TARGET open connections; the extra
	 * ones ("N.SERVICE", addresses from the pool) stopped one by one when
	 * the load falls; MIN kept up. max 1 (the default): one instance.
	 */
	unsigned replicas_min, replicas_max, replicas_target;
	/* Left out of conf_service_equal: a change needs no new instance (the proxy sees it). */
	struct conf_unavailable unavailable;
	int line; /* where the service begins in its file */
};

/*
 * One libvirt host of the hosts list: where libvirt services run when the
 * list is given. A guest there sits on BRIDGE, a bridge of that host, with
 * an address in SUBNET (the service address's host part in it); the
 * bridge's address, the subnet's first, is its gateway.
 */
struct conf_host {
	char *name;
	char *uri;    /* libvirt's */
	char *bridge; /* on that host */
	struct in_addr subnet;
	int prefix;
	uint64_t max_memory;    /* bytes; 0: no limit */
	uint64_t max_instances; /* 0: no limit */
	int line;
};

struct conf {
	char *path;
	char *state_dir;
	char *control_socket;
	/* user = "NAME": beckond runs as that user once its sockets are up,
	 * keeping only the network capabilities; NULL: as it was started. */
	char *user;
	uid_t uid;        /* the user's, looked up at load */
	gid_t gid;        /* its primary group */
	bool has_metrics; /* false when metrics_listen is "" */
	struct conf_addr metrics_listen;

	struct conf_addr dns_listen[CONF_MAX_LISTEN];
	size_t ndns_listen;
	char *zone; /* lower case, no trailing dot */
	struct conf_ns ns[CONF_MAX_NS];
	size_t nns;
	uint32_t ttl;
	bool has_forward; /* false when forward is "" */
	struct conf_addr forward;
	/* DNS over TCP (dns.tcp): connections at once, per client address, idle time. */
	unsigned tcp_max;        /* default 256 */
	unsigned tcp_per_client; /* default 16 */
	uint64_t tcp_idle_ms;    /* default 10s */
	/* Response rate limiting over UDP (dns.rrl); rate 0 is off. */
	unsigned rrl_rate; /* responses a second per prefix and kind; default 200 */
	unsigned rrl_slip; /* every Nth over the limit goes out truncated; 0 none; default 2 */
	unsigned rrl_ipv4_prefix; /* default 24 */
	unsigned rrl_ipv6_prefix; /* default 56 */
	unsigned rrl_table_size;  /* entries kept; default 65536 */

	enum conf_net_mode net_mode;
	char *bridge;
	struct in_addr subnet; /* network address */
	int prefix;
	enum conf_hold hold;
	/* Limits of the connection hold (network.max_held_per_service and the rest). */
	unsigned max_held_per_service; /* connections held for one service; default 1024 */
	unsigned max_held;             /* held in all; default 8192 */
	uint64_t hold_buffer;          /* bytes buffered per held connection; default 64K */
	uint64_t hold_timeout_ms;      /* the longest a connection is held; default 10s */
	/* User mode, hold "proxy": local connections to a ready instance skip the
	 * proxy (an iptables DNAT to its upstream); default true. */
	bool bypass;

	/* Capacity: instances holding memory (booting, ready, paused) at once,
	 * and their memory in all; 0 is no limit. */
	uint64_t max_instances;
	uint64_t max_memory;
	/* Boot rate limits, boots a second with a burst; 0 is no limit. */
	uint32_t boot_rate, boot_burst;
	uint32_t client_boot_rate, client_boot_burst;
	/* Wakes waiting for room (no capacity, nothing to evict), at most; 0: refused at once. */
	unsigned wake_queue;
	/* Boots and restores started at once, at most; the rest wait in line.
	 * 0: no limit; default CONF_BOOTING_PER_CPU per online CPU. */
	unsigned max_booting;
	/* beckond's own nice value, set at start when lower than the one it has
	 * (its children run at the one it had); default CONF_NICE_DEFAULT. */
	int nice;
	/* pool.size: idle generic VMMs kept per shape for restores of templates; 0: off. */
	unsigned pool_size;

	struct conf_service *services;
	size_t nservices;
	struct conf_service *fronts; /* the entries of services with routes, in order */
	size_t nfronts;
	struct conf_host *hosts; /* the hosts list; none: libvirt services use libvirt.uri */
	size_t nhosts;
	time_t loaded_at; /* the SOA serial */
};

/* Whether SVC's idle_ignore lists the client ADDR. */
bool conf_ignored_addr(const struct conf_service *svc, struct in_addr addr);
/* Whether SVC's idle_ignore lists a prefix of the request path PATH (LEN bytes). */
bool conf_ignored_path(const struct conf_service *svc, const char *path, size_t len);

/*
 * Load and validate PATH. On success *out is the config and 0 is returned.
 * On failure every error found is written to ERRS as "FILE:LINE: message",
 * one a line, and -1 is returned.
 */
int conf_load(const char *path, struct conf **out, FILE *errs);

/* Free a config from conf_load. NULL is fine. */
void conf_free(struct conf *conf);

/* A deep copy of a service, freed with conf_service_free. NULL on ENOMEM. */
struct conf_service *conf_service_dup(const struct conf_service *svc);
void conf_service_free(struct conf_service *svc);

/* True when two services would run the same instance (every key equal). */
bool conf_service_equal(const struct conf_service *a, const struct conf_service *b);

/* "250ms", "30s", "5m", "1h" into milliseconds. -1 on a bad string. */
int conf_parse_duration(const char *s, uint64_t *ms);

/* "16M", "1G", "512K", "4096" into bytes. -1 on a bad string. */
int conf_parse_size(const char *s, uint64_t *bytes);

/* "127.0.0.1:53", "[::1]:53" into an address. -1 on a bad string. */
int conf_parse_hostport(const char *s, struct conf_addr *out);

/*
 * Check a DNS name (labels of 1..63 letters, digits and inner hyphens, at
 * most CONF_DNS_NAME_MAX characters, one trailing dot allowed) and write it
 * to OUT lower-cased without the trailing dot. OUT has CONF_DNS_NAME_MAX + 1
 * bytes. -1 on a bad name.
 */
int conf_parse_dns_name(const char *s, char *out);

/* True when NAME is ZONE or below it (both as conf_parse_dns_name writes). */
bool conf_dns_in_zone(const char *name, const char *zone);

/* True for a valid service name: [a-z0-9-]{1,32}. */
bool conf_service_name_valid(const char *s);

/* "10.77.0.0/24" into an address and a prefix length 0..32. -1 when bad. */
int conf_parse_cidr(const char *s, struct in_addr *addr, int *prefix);

/* Whether SVC runs on the hosts of CONF's hosts list (a libvirt service, a list given). */
bool conf_service_hosted(const struct conf *conf, const struct conf_service *svc);
/* Whether SVC may run on host H (its hosts key names it, or it has none). */
bool conf_service_on_host(const struct conf_service *svc, const struct conf_host *h);
/* Free a host's strings (not the struct) and zero it. */
void conf_host_clear(struct conf_host *h);
/* True when A and B describe the same host. */
bool conf_host_equal(const struct conf_host *a, const struct conf_host *b);
/*
 * SVC's guest address on host H: the subnet of H with the host part of
 * the service address (its bits below H's prefix).
 */
struct in_addr conf_host_address(const struct conf_host *h, const struct conf_service *svc);

/* What SVC answers on PORT when it cannot serve a client: NULL for a reset. */
const struct conf_unavailable *conf_unavailable_on(const struct conf_service *svc, uint16_t port);
/* Whether A and B answer the same. */
bool conf_unavailable_equal(const struct conf_unavailable *a, const struct conf_unavailable *b);

/* The front named NAME in CONF, NULL when there is none. */
const struct conf_service *conf_front_find(const struct conf *conf, const char *name);
/* ---- pattern services (conf_pattern.c) ---- */

/*
 * "10.77.1.0/24" (every address of it) or "10.77.0.100-10.77.0.199" into
 * the first and last address. -1 when bad, with why in *WHY.
 */
int conf_parse_pool(const char *s, struct in_addr *first, struct in_addr *last, const char **why);
/* The suffix of a pattern service's "*.SUFFIX": SUFFIX. */
const char *conf_pattern_suffix(const struct conf_service *svc);
/*
 * Whether NAME (lower case, no trailing dot) is one label under pattern
 * service SVC's suffix: 0 with the label in LABEL (CONF_DNS_LABEL_MAX + 1
 * bytes), -1 when not.
 */
int conf_pattern_label(const struct conf_service *svc, const char *name, char *label);
/*
 * The service an instance of pattern service SVC for LABEL runs: named
 * "LABEL.SERVICE", its one DNS name LABEL.SUFFIX, {label} in its image
 * replaced, ADDR its address, not a pattern. NULL on ENOMEM.
 */
struct conf_service *conf_pattern_instance(const struct conf_service *svc, const char *label,
                                           struct in_addr addr);
/* The service extra replica N (2 and up) of SVC runs: "N.SERVICE" at ADDR. NULL on ENOMEM. */
struct conf_service *conf_replica_instance(const struct conf_service *svc, unsigned n,
                                           struct in_addr addr);

/*
 * The service of CONF an instance name stands for: the service of that
 * name, or for "LABEL.SERVICE" the pattern (or replicated) service SERVICE.
 * NULL when none.
 */
const struct conf_service *conf_service_of(const struct conf *conf, const char *instance);

/* The service named NAME in CONF, NULL when there is none. */
const struct conf_service *conf_service_find(const struct conf *conf, const char *name);

/* The names of the enums, as written in the config, for logs and the control socket. */
const char *conf_backend_name(enum conf_backend b);
const char *conf_ready_name(enum conf_ready r);
const char *conf_on_idle_name(enum conf_on_idle o);
const char *conf_warm_name(enum conf_warm w);
const char *conf_template_name(enum conf_template t);
const char *conf_net_mode_name(enum conf_net_mode m);
const char *conf_hold_name(enum conf_hold h);

#endif
