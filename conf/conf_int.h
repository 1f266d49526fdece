/*
 * Shared inside conf/ only: the load context that collects errors, getters
 * that check a libconfig setting's type and report with its FILE:LINE, and
 * the per-service build state used while merging defaults and services.
 */
#ifndef BECKON_CONF_INT_H
#define BECKON_CONF_INT_H

#include <libconfig.h>

#include "conf.h"

#define CONF_LABEL_MAX 96

struct conf_msg {
	char *file;
	int line;
	size_t seq, rank; /* order of report; of the file, the main one first */
	char *text;
};

struct conf_ctx {
	FILE *errs;
	const char *path; /* as given */
	char *incdir;     /* where @include looks; NULL when path has no directory */
	struct conf_msg *msgs;
	size_t nmsgs, capmsgs;
	bool oom;
	/* Facts the cross-checks need, found while walking. */
	bool zone_ok, subnet_ok, mode_ok;
	bool hold_set, dns_seen;
	const config_setting_t *hold_src;  /* network.hold, when set */
	const config_setting_t *hosts_src; /* the hosts list, when given */
	const config_setting_t *dns_group;
	const config_setting_t *max_held_src; /* network.max_held_per_service, when set */
	const config_setting_t *ns_src[CONF_MAX_NS];
};

/* The enum names in enum order, NULL-terminated. */
extern const char *const conf_backend_names[];
extern const char *const conf_ready_names[];
extern const char *const conf_on_idle_names[];
extern const char *const conf_warm_names[];
extern const char *const conf_template_names[];
extern const char *const conf_net_mode_names[];
extern const char *const conf_hold_names[];

/* Errors: collected, then sorted by file and line and printed at the end. */
void conf_err(struct conf_ctx *c, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conf_err_at(struct conf_ctx *c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Print the collected errors to c->errs and free them; their count. */
size_t conf_err_flush(struct conf_ctx *c);
/* The file a setting came from, as the user would name it. */
const char *conf_setting_file(const struct conf_ctx *c, const config_setting_t *s);

/* Line LINE of FILE (as libconfig names it), malloc'd; NULL when unreadable. */
char *conf_source_line(struct conf_ctx *c, const char *file, unsigned line);

/* strdup that notes ENOMEM in the context. */
char *conf_strdup(struct conf_ctx *c, const char *s);
/* Replace *DST with a copy of S. */
void conf_set_str(struct conf_ctx *c, char **dst, const char *s);

/* "PREFIX.NAME", or NAME when PREFIX is empty, into BUF. */
const char *conf_label(char *buf, const char *prefix, const char *name);

/* Getters: 0 on success, -1 after reporting an error under LABEL. */
int conf_get_string(struct conf_ctx *c, const config_setting_t *s, const char *label,
                    const char **out);
int conf_get_int(struct conf_ctx *c, const config_setting_t *s, const char *label, long long lo,
                 long long hi, long long *out);
int conf_get_bool(struct conf_ctx *c, const config_setting_t *s, const char *label, bool *out);
int conf_get_enum(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  const char *const *names, int *out);
int conf_get_duration(struct conf_ctx *c, const config_setting_t *s, const char *label,
                      uint64_t *ms);
int conf_get_size(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  uint64_t *bytes);
int conf_get_hostport(struct conf_ctx *c, const config_setting_t *s, const char *label,
                      struct conf_addr *out);
int conf_get_ipv4(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  struct in_addr *out);
/* A unicast IPv6 address (not ::, multicast or IPv4-mapped). */
int conf_get_ipv6(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  struct in6_addr *out);
int conf_get_dns_name(struct conf_ctx *c, const config_setting_t *s, const char *label, char *out);
/* The ready key into SVC's ready, ready_arg and ready_delay_ms. */
int conf_get_ready(struct conf_ctx *c, const config_setting_t *s, const char *label,
                   struct conf_service *svc);
int conf_get_fail(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  struct conf_service *svc);
int conf_want_group(struct conf_ctx *c, const config_setting_t *s, const char *label);
/*
 * A list or array of at least one element, or (when SINGLE_OK) a single
 * scalar, which is returned as the only element: *N elements, each got with
 * conf_list_elem.
 */
int conf_get_list(struct conf_ctx *c, const config_setting_t *s, const char *label, bool single_ok,
                  int *n);
const config_setting_t *conf_list_elem(const config_setting_t *s, int i);

/* Why a DNS name is bad, or NULL when it is good (then written to OUT). */
const char *conf_dns_name_check(const char *s, char *out);

/* The service keys, for tracking where each one was set. */
enum conf_skey {
	CONF_SK_NAME,
	CONF_SK_DNS,
	CONF_SK_IMAGE,
	CONF_SK_CMDLINE,
	CONF_SK_ADDRESS,
	CONF_SK_PORTS,
	CONF_SK_BACKEND,
	CONF_SK_MEMORY,
	CONF_SK_VCPUS,
	CONF_SK_BOOT_TIMEOUT,
	CONF_SK_READY,
	CONF_SK_FAIL,
	CONF_SK_IDLE_TIMEOUT,
	CONF_SK_ON_IDLE,
	CONF_SK_WARM,
	CONF_SK_TEMPLATE,
	CONF_SK_QEMU_MACHINE,
	CONF_SK_QEMU_ACCEL,
	CONF_SK_QEMU_CPU,
	CONF_SK_QEMU_NIC,
	CONF_SK_QEMU_DISK,
	CONF_SK_QEMU_INITRD,
	CONF_SK_QEMU_BOOT,
	CONF_SK_QEMU_HUGE_PAGES,
	CONF_SK_QEMU_ARGS,
	CONF_SK_LIBVIRT_URI,
	CONF_SK_LIBVIRT_XML,
	CONF_SK_XEN_CFG,
	CONF_SK_EXEC_COMMAND,
	CONF_SK_HOSTS,
	CONF_SK_ROUTES,
	CONF_SK_ADDRESS_POOL,
	CONF_SK_REPLICAS,
	CONF_SK_UNAVAILABLE,
	CONF_SK_ADDRESS6,
	CONF_SK_IDLE_IGNORE,
	CONF_SK_IDLE_IGNORE_ANSWER,
	CONF_SK_IDLE_CHECK,
	CONF_SK_IDLE_CHECK_INTERVAL,
	CONF_SK_IDLE_MAX,
	CONF_SK_IDLE_NOTICE,
	CONF_SK_IDLE_NOTICE_TIMEOUT,
	CONF_SK_N
};

/* A service being put together from the defaults and its own group. */
struct conf_build {
	struct conf_service svc;
	const config_setting_t *src[CONF_SK_N]; /* where each key was set; NULL if not */
	bool bad[CONF_SK_N];                    /* set, but with an error */
	const config_setting_t **dns_src;       /* one per svc.dns */
	const config_setting_t *group;          /* the service's own group */
	char label[32];                         /* "services[3]" */
};

/* The built-in defaults. */
void conf_build_init(struct conf_ctx *c, struct conf_build *b);
/* DST (zeroed) becomes a deep copy of SRC. */
void conf_build_copy(struct conf_ctx *c, struct conf_build *dst, const struct conf_build *src);
void conf_build_clear(struct conf_build *b);
/* Apply every key of GROUP (a defaults or service group) to B. */
void conf_build_apply(struct conf_ctx *c, struct conf_build *b, const config_setting_t *group,
                      const char *label);

/* Checks within and across services once every key is known. */
void conf_check_services(struct conf_ctx *c, const struct conf *conf, struct conf_build *b,
                         size_t n);

/* Free a service's members (not the struct) and zero it. */
void conf_service_clear(struct conf_service *svc);

/* The dns and network groups. */
void conf_load_dns(struct conf_ctx *c, struct conf *conf, const config_setting_t *g);
void conf_load_network(struct conf_ctx *c, struct conf *conf, const config_setting_t *g);
/* conf_limits.c: max_instances, max_memory and the boot_rate group. */
bool conf_is_limit_key(const char *key);
/* max_booting's default: CONF_BOOTING_PER_CPU per online CPU. */
unsigned conf_default_max_booting(void);
void conf_load_limit(struct conf_ctx *c, struct conf *conf, const config_setting_t *s);
void conf_check_dns(struct conf_ctx *c, const struct conf *conf);
/* conf_dns_limits.c: the dns.tcp and dns.rrl groups. */
void conf_dns_limits_defaults(struct conf *conf);
void conf_load_dns_tcp(struct conf_ctx *c, struct conf *conf, const config_setting_t *g);
void conf_load_dns_rrl(struct conf_ctx *c, struct conf *conf, const config_setting_t *g);
/* A Linux interface name: 1..15 of letters, digits, '_', '.', '-'. */
bool conf_ifname_valid(const char *s);
/* "10.77.0.0/24": a network (no host bits) with a prefix of 1 to 30. */
int conf_get_subnet(struct conf_ctx *c, const config_setting_t *s, const char *label,
                    struct in_addr *net, int *prefix);
/* conf_hosts.c: the hosts list, and what services say of it. */
void conf_load_hosts(struct conf_ctx *c, struct conf *conf, const config_setting_t *s);
void conf_check_hosts(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b,
                      size_t n);
/* conf_routes.c: a front's routes key, and the checks of fronts. */
int conf_get_routes(struct conf_ctx *c, const config_setting_t *s, const char *label,
                    struct conf_service *svc);
void conf_check_fronts(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b,
                       size_t n);
/* Free a service's routes; copy them in place (false on ENOMEM: then none); compare. */
void conf_routes_clear(struct conf_service *svc);
bool conf_routes_dup(struct conf_service *svc);
bool conf_routes_equal(const struct conf_service *a, const struct conf_service *b);
/* conf_pattern.c: what a pattern service needs (its pool, hold "none", no warm pool). */
void conf_check_pattern(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b,
                        size_t i);
/* Once for all: no configured address inside a pattern service's pool. */
void conf_check_pools(struct conf_ctx *c, const struct conf_build *b, size_t n);
/* conf_unavail.c: the unavailable key, and that it fits its service and the hold. */
int conf_get_unavailable(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_service *svc);
void conf_check_unavailable(struct conf_ctx *c, const struct conf *conf,
                            const struct conf_build *b);
/* conf_check6.c: address6 with what it cannot go with, and used twice. */
void conf_check_address6(struct conf_ctx *c, const struct conf_build *b, size_t i);
/* conf_idle.c: idle_ignore, idle_ignore_answer, idle_check, idle_check_interval, idle_max. */
int conf_get_idle_ignore(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_service *svc);
int conf_get_idle_check(struct conf_ctx *c, const config_setting_t *s, const char *label,
                        struct conf_service *svc);
int conf_get_idle_notice(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_service *svc);
void conf_check_idle(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b);
/* Free a service's idle lists; copy them in place (false on ENOMEM); compare. */
void conf_idle_clear(struct conf_service *svc);
bool conf_idle_dup(struct conf_service *svc);
bool conf_idle_equal(const struct conf_service *a, const struct conf_service *b);
/* network.max_held_per_service against network.max_held. */
void conf_check_hold(struct conf_ctx *c, const struct conf *conf);

#endif
