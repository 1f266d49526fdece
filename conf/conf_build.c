/*
 * Building a service: the built-in defaults, then the `defaults` group, then
 * the service's own group, key by key (backend groups too). Each key's
 * parser checks its value and reports under the key's full name.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

typedef int (*key_parse_fn)(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                            const char *label, size_t off);

struct key_def {
	const char *group; /* NULL for a service key, else its backend group */
	const char *name;
	enum conf_skey key;
	key_parse_fn parse;
	size_t off; /* of a string field, for k_str and k_str_empty */
};

static char **field(struct conf_build *b, size_t off)
{
	return (char **)((char *)&b->svc + off);
}

static int k_str(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                 const char *label, size_t off)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (v[0] == '\0') {
		conf_err(c, s, "%s: must not be empty", label);
		return -1;
	}
	conf_set_str(c, field(b, off), v);
	return 0;
}

static int k_str_empty(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                       const char *label, size_t off)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	conf_set_str(c, field(b, off), v);
	return 0;
}

static int k_name(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                  const char *label, size_t off)
{
	const char *v;

	(void)off;
	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (!conf_service_name_valid(v)) {
		conf_err(c, s, "%s: bad service name \"%s\" (want 1 to 32 of a-z, 0-9 and -)",
		         label, v);
		return -1;
	}
	conf_set_str(c, &b->svc.name, v);
	return 0;
}

static const char *elem_label(char *buf, const config_setting_t *s, const char *label, int i)
{
	if (config_setting_is_scalar(s))
		return label;
	snprintf(buf, CONF_LABEL_MAX, "%s[%d]", label, i);
	return buf;
}

static void set_dns(struct conf_build *b, char **names, const config_setting_t **src, size_t n)
{
	for (size_t i = 0; i < b->svc.ndns; i++)
		free(b->svc.dns[i]);
	free(b->svc.dns);
	free(b->dns_src);
	b->svc.dns = names;
	b->dns_src = src;
	b->svc.ndns = n;
}

/*
 * "*.SUFFIX": a pattern, the service's only name. 0 with "*.suffix" in OUT,
 * 1 when E is no pattern (no '*'), -1 when it is a bad one (reported).
 */
static int k_dns_pattern(struct conf_ctx *c, struct conf_build *b, const config_setting_t *e,
                         const char *label, int n, char *out)
{
	const char *v = config_setting_get_string(e), *why;
	char suffix[CONF_DNS_NAME_MAX + 1];

	if (v == NULL || strchr(v, '*') == NULL)
		return 1;
	b->svc.pattern = true; /* even a bad one: no errors of an exact name's keys follow */
	if (strncmp(v, "*.", 2) != 0 || strchr(v + 1, '*') != NULL) {
		conf_err(c, e,
		         "%s: bad pattern \"%s\" (a pattern is \"*.\" and a name: the "
		         "first label is the placeholder)",
		         label, v);
		return -1;
	}
	if ((why = conf_dns_name_check(v + 2, suffix)) != NULL) {
		conf_err(c, e, "%s: bad pattern \"%s\" (%s)", label, v, why);
		return -1;
	}
	if (n > 1) {
		conf_err(c, e, "%s: a pattern \"%s\" must be the service's only dns name", label,
		         v);
		return -1;
	}
	if (strlen(suffix) + 2 + CONF_DNS_LABEL_MAX > CONF_DNS_NAME_MAX) {
		conf_err(c, e,
		         "%s: bad pattern \"%s\" (its names may be longer than 253 characters)",
		         label, v);
		return -1;
	}
	snprintf(out, CONF_DNS_NAME_MAX + 1, "*.%s", suffix);
	return 0;
}

static int k_dns(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                 const char *label, size_t off)
{
	char buf[CONF_LABEL_MAX], name[CONF_DNS_NAME_MAX + 1], **names = NULL;
	const config_setting_t **src = NULL;
	int n, i, rc = 0;

	(void)off;
	set_dns(b, NULL, NULL, 0);
	if (conf_get_list(c, s, label, true, &n) == -1)
		return -1;
	names = calloc((size_t)n, sizeof(*names));
	src = calloc((size_t)n, sizeof(*src));
	if (names == NULL || src == NULL) {
		free(names);
		free(src);
		c->oom = true;
		return -1;
	}
	b->svc.pattern = false;
	for (i = 0; i < n; i++) {
		const config_setting_t *e = conf_list_elem(s, i);

		src[i] = e;
		if (k_dns_pattern(c, b, e, elem_label(buf, s, label, i), n, name) == 0)
			names[i] = conf_strdup(c, name);
		else if (strchr(config_setting_get_string(e) ? config_setting_get_string(e) : "",
		                '*') != NULL)
			rc = -1; /* reported */
		else if (conf_get_dns_name(c, e, elem_label(buf, s, label, i), name) == -1)
			rc = -1;
		else
			names[i] = conf_strdup(c, name);
	}
	set_dns(b, names, src, (size_t)n);
	if (rc == -1)
		set_dns(b, NULL, NULL, 0);
	return rc;
}

static int k_address(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                     const char *label, size_t off)
{
	(void)off;
	return conf_get_ipv4(c, s, label, &b->svc.address);
}

static int k_address6(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                      const char *label, size_t off)
{
	(void)off;
	b->svc.has_address6 = false;
	if (conf_get_ipv6(c, s, label, &b->svc.address6) == -1)
		return -1;
	b->svc.has_address6 = true;
	return 0;
}

static int k_address_pool(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                          const char *label, size_t off)
{
	const char *v, *why;

	(void)off;
	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (conf_parse_pool(v, &b->svc.pool_first, &b->svc.pool_last, &why) == -1) {
		conf_err(c, s, "%s: bad address pool \"%s\" (%s)", label, v, why);
		return -1;
	}
	return 0;
}

/* replicas = { min = 0; max = 4; target = 50; } */
static int k_replicas(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                      const char *label, size_t off)
{
	char buf[CONF_LABEL_MAX];
	long long v;
	int rc = 0;

	(void)off;
	if (conf_want_group(c, s, label) == -1)
		return -1;
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *key = config_setting_name(e);
		unsigned *dst = strcmp(key, "min") == 0      ? &b->svc.replicas_min
		                : strcmp(key, "max") == 0    ? &b->svc.replicas_max
		                : strcmp(key, "target") == 0 ? &b->svc.replicas_target
		                                             : NULL;

		conf_label(buf, label, key);
		if (dst == NULL) {
			conf_err(c, e, "unknown key \"%s\"", buf);
			rc = -1;
		} else if (conf_get_int(c, e, buf, dst == &b->svc.replicas_min ? 0 : 1,
		                        dst == &b->svc.replicas_target ? 1000000 : 64, &v) == -1) {
			rc = -1;
		} else {
			*dst = (unsigned)v;
		}
	}
	return rc;
}

static int k_ports(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                   const char *label, size_t off)
{
	char buf[CONF_LABEL_MAX];
	long long v;
	int n, rc = 0;

	(void)off;
	if (conf_get_list(c, s, label, true, &n) == -1)
		return -1;
	if (n > CONF_MAX_PORTS) {
		conf_err(c, s, "%s: %d ports, at most %d are allowed", label, n, CONF_MAX_PORTS);
		return -1;
	}
	b->svc.nports = 0;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = conf_list_elem(s, i);
		const char *el = elem_label(buf, s, label, i);

		if (conf_get_int(c, e, el, 1, 65535, &v) == -1) {
			rc = -1;
			continue;
		}
		for (size_t j = 0; j < b->svc.nports; j++)
			if (b->svc.ports[j] == v) {
				conf_err(c, e, "%s: port %lld is listed twice", el, v);
				rc = -1;
			}
		b->svc.ports[b->svc.nports++] = (uint16_t)v;
	}
	return rc;
}

static int k_backend(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                     const char *label, size_t off)
{
	int v;

	(void)off;
	if (conf_get_enum(c, s, label, conf_backend_names, &v) == -1)
		return -1;
	b->svc.backend = (enum conf_backend)v;
	return 0;
}

static int k_memory(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                    const char *label, size_t off)
{
	uint64_t v;

	(void)off;
	if (conf_get_size(c, s, label, &v) == -1)
		return -1;
	if (v < (1ULL << 20)) {
		conf_err(c, s, "%s: %llu bytes is less than the minimum \"1M\"", label,
		         (unsigned long long)v);
		return -1;
	}
	b->svc.memory = v;
	return 0;
}

static int k_vcpus(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                   const char *label, size_t off)
{
	long long v;

	(void)off;
	if (conf_get_int(c, s, label, 1, 64, &v) == -1)
		return -1;
	b->svc.vcpus = (int)v;
	return 0;
}

static int k_boot_timeout(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                          const char *label, size_t off)
{
	uint64_t v;

	(void)off;
	if (conf_get_duration(c, s, label, &v) == -1)
		return -1;
	if (v == 0) {
		conf_err(c, s, "%s: must be more than 0", label);
		return -1;
	}
	b->svc.boot_timeout_ms = v;
	return 0;
}

static int k_idle_timeout(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                          const char *label, size_t off)
{
	(void)off;
	return conf_get_duration(c, s, label, &b->svc.idle_timeout_ms);
}

static int k_on_idle(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                     const char *label, size_t off)
{
	int v;

	(void)off;
	if (conf_get_enum(c, s, label, conf_on_idle_names, &v) == -1)
		return -1;
	b->svc.on_idle = (enum conf_on_idle)v;
	return 0;
}

static int k_warm(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                  const char *label, size_t off)
{
	int v;

	(void)off;
	if (conf_get_enum(c, s, label, conf_warm_names, &v) == -1)
		return -1;
	b->svc.warm = (enum conf_warm)v;
	return 0;
}

static int k_template(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                      const char *label, size_t off)
{
	int v;

	(void)off;
	if (conf_get_enum(c, s, label, conf_template_names, &v) == -1)
		return -1;
	b->svc.template = (enum conf_template)v;
	return 0;
}

static int k_accel(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                   const char *label, size_t off)
{
	static const char *const accels[] = {"auto", "kvm", "tcg", NULL};
	int v;

	if (conf_get_enum(c, s, label, accels, &v) == -1)
		return -1;
	conf_set_str(c, field(b, off), accels[v]);
	return 0;
}

static int k_fail(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                  const char *label, size_t off)
{
	(void)off;
	return conf_get_fail(c, s, label, &b->svc);
}

static int k_boot(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                  const char *label, size_t off)
{
	static const char *const boots[] = {"kernel", "disk", NULL};
	int v;

	(void)off;
	if (conf_get_enum(c, s, label, boots, &v) == -1)
		return -1;
	b->svc.qemu.boot_disk = v == 1;
	return 0;
}

static int k_huge_pages(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                        const char *label, size_t off)
{
	static const char *const vals[] = {"on", "off", NULL};
	int v;

	(void)off;
	if (conf_get_enum(c, s, label, vals, &v) == -1)
		return -1;
	b->svc.qemu.thp_off = v == 1;
	return 0;
}

/* A list of strings (or one) into *V and *N, replacing what was there. */
static int k_strings(struct conf_ctx *c, const config_setting_t *s, const char *label, char ***v,
                     size_t *n)
{
	char buf[CONF_LABEL_MAX], **strs;
	const char *str;
	int len, rc = 0;

	if (conf_get_list(c, s, label, true, &len) == -1)
		return -1;
	if ((strs = calloc((size_t)len, sizeof(*strs))) == NULL) {
		c->oom = true;
		return -1;
	}
	for (int i = 0; i < len; i++) {
		if (conf_get_string(c, conf_list_elem(s, i), elem_label(buf, s, label, i), &str) ==
		    -1)
			rc = -1;
		else
			strs[i] = conf_strdup(c, str);
	}
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = strs;
	*n = (size_t)len;
	return rc;
}

static int k_args(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                  const char *label, size_t off)
{
	(void)off;
	return k_strings(c, s, label, &b->svc.qemu.args, &b->svc.qemu.nargs);
}

/* hosts = ( "a", "b" ): names of the hosts list, checked once it is known. */
static int k_hosts(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                   const char *label, size_t off)
{
	(void)off;
	return k_strings(c, s, label, &b->svc.hosts, &b->svc.nhosts);
}

static int k_ready(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                   const char *label, size_t off)
{
	(void)off;
	return conf_get_ready(c, s, label, &b->svc);
}

static int k_unavailable(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                         const char *label, size_t off)
{
	(void)off;
	return conf_get_unavailable(c, s, label, &b->svc);
}

static int k_routes(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                    const char *label, size_t off)
{
	(void)off;
	return conf_get_routes(c, s, label, &b->svc);
}

static int k_idle_ignore(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                         const char *label, size_t off)
{
	(void)off;
	return conf_get_idle_ignore(c, s, label, &b->svc);
}

static int k_idle_ignore_answer(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                                const char *label, size_t off)
{
	long long v;

	(void)off;
	if (conf_get_int(c, s, label, 0, 599, &v) == -1)
		return -1;
	/* Its answer has a body: not 1xx, 204 or 304, which have none. */
	if ((v != 0 && v < 200) || v == 204 || v == 304) {
		conf_err(
		    c, s,
		    "%s: %lld: want 0 (wake the guest) or a status 200 to 599 (not 204 or 304)",
		    label, v);
		return -1;
	}
	b->svc.ignore_answer = (int)v;
	return 0;
}

static int k_idle_check(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                        const char *label, size_t off)
{
	(void)off;
	return conf_get_idle_check(c, s, label, &b->svc);
}

static int k_idle_check_interval(struct conf_ctx *c, struct conf_build *b,
                                 const config_setting_t *s, const char *label, size_t off)
{
	uint64_t v;

	(void)off;
	if (conf_get_duration(c, s, label, &v) == -1)
		return -1;
	if (v < 100) {
		conf_err(c, s, "%s: %llu ms is too short (at least \"100ms\")", label,
		         (unsigned long long)v);
		return -1;
	}
	b->svc.idle_check_interval_ms = v;
	return 0;
}

static int k_idle_max(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                      const char *label, size_t off)
{
	(void)off;
	return conf_get_duration(c, s, label, &b->svc.idle_max_ms);
}

static int k_idle_notice(struct conf_ctx *c, struct conf_build *b, const config_setting_t *s,
                         const char *label, size_t off)
{
	(void)off;
	return conf_get_idle_notice(c, s, label, &b->svc);
}

static int k_idle_notice_timeout(struct conf_ctx *c, struct conf_build *b,
                                 const config_setting_t *s, const char *label, size_t off)
{
	uint64_t v;

	(void)off;
	if (conf_get_duration(c, s, label, &v) == -1)
		return -1;
	if (v < 100 || v > 600000) {
		conf_err(c, s, "%s: %llu ms is out of range (\"100ms\" to \"10m\")", label,
		         (unsigned long long)v);
		return -1;
	}
	b->svc.idle_notice_timeout_ms = v;
	return 0;
}

#define OFF(f) offsetof(struct conf_service, f)

static const struct key_def keys[] = {
    {NULL, "name", CONF_SK_NAME, k_name, 0},
    {NULL, "dns", CONF_SK_DNS, k_dns, 0},
    {NULL, "image", CONF_SK_IMAGE, k_str, OFF(image)},
    {NULL, "cmdline", CONF_SK_CMDLINE, k_str_empty, OFF(cmdline)},
    {NULL, "address", CONF_SK_ADDRESS, k_address, 0},
    {NULL, "address6", CONF_SK_ADDRESS6, k_address6, 0},
    {NULL, "address_pool", CONF_SK_ADDRESS_POOL, k_address_pool, 0},
    {NULL, "replicas", CONF_SK_REPLICAS, k_replicas, 0},
    {NULL, "ports", CONF_SK_PORTS, k_ports, 0},
    {NULL, "backend", CONF_SK_BACKEND, k_backend, 0},
    {NULL, "memory", CONF_SK_MEMORY, k_memory, 0},
    {NULL, "vcpus", CONF_SK_VCPUS, k_vcpus, 0},
    {NULL, "boot_timeout", CONF_SK_BOOT_TIMEOUT, k_boot_timeout, 0},
    {NULL, "ready", CONF_SK_READY, k_ready, 0},
    {NULL, "fail", CONF_SK_FAIL, k_fail, 0},
    {NULL, "idle_timeout", CONF_SK_IDLE_TIMEOUT, k_idle_timeout, 0},
    {NULL, "on_idle", CONF_SK_ON_IDLE, k_on_idle, 0},
    {NULL, "warm", CONF_SK_WARM, k_warm, 0},
    {NULL, "idle_ignore", CONF_SK_IDLE_IGNORE, k_idle_ignore, 0},
    {NULL, "idle_ignore_answer", CONF_SK_IDLE_IGNORE_ANSWER, k_idle_ignore_answer, 0},
    {NULL, "idle_check", CONF_SK_IDLE_CHECK, k_idle_check, 0},
    {NULL, "idle_check_interval", CONF_SK_IDLE_CHECK_INTERVAL, k_idle_check_interval, 0},
    {NULL, "idle_max", CONF_SK_IDLE_MAX, k_idle_max, 0},
    {NULL, "idle_notice", CONF_SK_IDLE_NOTICE, k_idle_notice, 0},
    {NULL, "idle_notice_timeout", CONF_SK_IDLE_NOTICE_TIMEOUT, k_idle_notice_timeout, 0},
    {NULL, "template", CONF_SK_TEMPLATE, k_template, 0},
    {NULL, "hosts", CONF_SK_HOSTS, k_hosts, 0},
    {NULL, "routes", CONF_SK_ROUTES, k_routes, 0},
    {NULL, "unavailable", CONF_SK_UNAVAILABLE, k_unavailable, 0},
    {"qemu", "machine", CONF_SK_QEMU_MACHINE, k_str, OFF(qemu.machine)},
    {"qemu", "accel", CONF_SK_QEMU_ACCEL, k_accel, OFF(qemu.accel)},
    {"qemu", "cpu", CONF_SK_QEMU_CPU, k_str, OFF(qemu.cpu)},
    {"qemu", "nic", CONF_SK_QEMU_NIC, k_str, OFF(qemu.nic)},
    {"qemu", "disk", CONF_SK_QEMU_DISK, k_str, OFF(qemu.disk)},
    {"qemu", "initrd", CONF_SK_QEMU_INITRD, k_str, OFF(qemu.initrd)},
    {"qemu", "boot", CONF_SK_QEMU_BOOT, k_boot, 0},
    {"qemu", "huge_pages", CONF_SK_QEMU_HUGE_PAGES, k_huge_pages, 0},
    {"qemu", "args", CONF_SK_QEMU_ARGS, k_args, 0},
    {"libvirt", "uri", CONF_SK_LIBVIRT_URI, k_str, OFF(libvirt_uri)},
    {"libvirt", "xml", CONF_SK_LIBVIRT_XML, k_str, OFF(libvirt_xml)},
    {"xen", "cfg", CONF_SK_XEN_CFG, k_str, OFF(xen_cfg)},
    {"exec", "command", CONF_SK_EXEC_COMMAND, k_str, OFF(exec_command)},
};

static const struct key_def *key_find(const char *group, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if ((group == NULL) != (keys[i].group == NULL))
			continue;
		if ((group == NULL || strcmp(group, keys[i].group) == 0) &&
		    strcmp(name, keys[i].name) == 0)
			return &keys[i];
	}
	return NULL;
}

static bool is_backend_group(const char *name)
{
	for (int i = 0; conf_backend_names[i] != NULL; i++)
		if (strcmp(name, conf_backend_names[i]) == 0)
			return true;
	return false;
}

static void apply_key(struct conf_ctx *c, struct conf_build *b, const struct key_def *k,
                      const config_setting_t *s, const char *label)
{
	b->src[k->key] = s;
	b->bad[k->key] = k->parse(c, b, s, label, k->off) == -1;
}

/* Every key of a backend group (qemu = { ... }), known to the backend or not. */
static void apply_backend_group(struct conf_ctx *c, struct conf_build *b, const config_setting_t *g,
                                const char *label)
{
	char buf[CONF_LABEL_MAX];

	if (conf_want_group(c, g, label) == -1) {
		/* Its keys are broken, not missing: say nothing more of them. */
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (keys[i].group != NULL &&
			    strcmp(keys[i].group, config_setting_name(g)) == 0)
				b->bad[keys[i].key] = true;
		return;
	}
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const struct key_def *k = key_find(config_setting_name(g), config_setting_name(s));

		conf_label(buf, label, config_setting_name(s));
		if (k == NULL)
			conf_err(c, s, "unknown key \"%s\"", buf);
		else
			apply_key(c, b, k, s, buf);
	}
}

void conf_build_apply(struct conf_ctx *c, struct conf_build *b, const config_setting_t *group,
                      const char *label)
{
	char buf[CONF_LABEL_MAX];

	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct key_def *k = key_find(NULL, name);

		conf_label(buf, label, name);
		if (is_backend_group(name))
			apply_backend_group(c, b, s, buf);
		else if (k == NULL)
			conf_err(c, s, "unknown key \"%s\"", buf);
		else
			apply_key(c, b, k, s, buf);
	}
}
