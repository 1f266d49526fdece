/*
 * Checks that need a whole service, or every service: required keys, what
 * each backend needs, images on disk, names inside the zone, addresses in
 * the subnet, and nothing used twice. A key that already had an error is
 * not checked again, so one mistake gives one message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_int.h"

/*
 * Where to report about key K: where the service set it, else the service
 * itself (the fix goes there, also when the value came from the defaults).
 */
static const config_setting_t *where(const struct conf_build *b, enum conf_skey k)
{
	for (const config_setting_t *s = b->src[k]; s != NULL; s = config_setting_parent(s))
		if (s == b->group)
			return b->src[k];
	return b->group;
}

static bool usable(const struct conf_build *b, enum conf_skey k)
{
	return b->src[k] != NULL && !b->bad[k];
}

/* "service \"www\"", or "services[0]" when it has no good name. */
static const char *svc_ref(char *buf, size_t len, const struct conf_build *b)
{
	if (usable(b, CONF_SK_NAME))
		snprintf(buf, len, "service \"%s\"", b->svc.name);
	else
		snprintf(buf, len, "%s", b->label);
	return buf;
}

/* Is key K neither set nor broken? */
static bool missing(const struct conf_build *b, enum conf_skey k)
{
	return b->src[k] == NULL && !b->bad[k];
}

static void check_required(struct conf_ctx *c, const struct conf_build *b)
{
	static const struct {
		enum conf_skey key;
		const char *name;
	} req[] = {{CONF_SK_NAME, "name"}, {CONF_SK_DNS, "dns"}, {CONF_SK_ADDRESS, "address"}};

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		/* A pattern service's addresses come from its address_pool (conf_pattern.c). */
		if (missing(b, req[i].key) && !(req[i].key == CONF_SK_ADDRESS && b->svc.pattern))
			conf_err(c, b->group, "%s: missing \"%s\"", b->label, req[i].name);
}

static void check_backend(struct conf_ctx *c, const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;
	const char *need = NULL;

	if (b->bad[CONF_SK_BACKEND])
		return;
	switch (s->backend) {
	case CONF_BACKEND_QEMU:
		if (missing(b, CONF_SK_IMAGE))
			need = "\"image\"";
		break;
	case CONF_BACKEND_LIBVIRT:
		if (missing(b, CONF_SK_IMAGE) && missing(b, CONF_SK_LIBVIRT_XML))
			need = "\"libvirt.xml\" or \"image\"";
		break;
	case CONF_BACKEND_XEN:
		if (missing(b, CONF_SK_IMAGE) && missing(b, CONF_SK_XEN_CFG))
			need = "\"xen.cfg\" or \"image\"";
		break;
	case CONF_BACKEND_EXEC:
		if (missing(b, CONF_SK_EXEC_COMMAND))
			need = "\"exec.command\"";
		break;
	}
	if (need != NULL)
		conf_err(c, where(b, CONF_SK_BACKEND), "%s: backend \"%s\" needs %s", b->label,
		         conf_backend_name(s->backend), need);
}

/* A file the VMM reads (KEY, named WHAT): it must be a readable file now. */
static void check_file(struct conf_ctx *c, const struct conf_build *b, enum conf_skey key,
                       const char *what, const char *path)
{
	struct stat st;

	if (!usable(b, key))
		return;
	if (stat(path, &st) == -1 || access(path, R_OK) == -1)
		conf_err(c, b->src[key], "%s.%s: cannot read \"%s\": %s", b->label, what, path,
		         strerror(errno));
	else if (!S_ISREG(st.st_mode))
		conf_err(c, b->src[key], "%s.%s: \"%s\" is not a regular file", b->label, what,
		         path);
}

/* A VM's image (and initrd) are read by the VMM. */
static void check_image(struct conf_ctx *c, const struct conf_build *b)
{
	if (b->bad[CONF_SK_BACKEND] || b->svc.backend == CONF_BACKEND_EXEC)
		return;
	/* A pattern's image per label is looked for at each new name. */
	if (!(b->svc.pattern && b->svc.image != NULL && strstr(b->svc.image, "{label}") != NULL))
		check_file(c, b, CONF_SK_IMAGE, "image", b->svc.image);
	if (b->svc.backend != CONF_BACKEND_QEMU)
		return;
	check_file(c, b, CONF_SK_QEMU_INITRD, "qemu.initrd", b->svc.qemu.initrd);
	if (b->svc.qemu.boot_disk && b->src[CONF_SK_QEMU_INITRD] != NULL)
		conf_err(c, b->src[CONF_SK_QEMU_INITRD],
		         "%s.qemu.initrd: goes with boot = \"kernel\", not \"disk\" (a disk boots "
		         "its own)",
		         b->label);
}

/* The tcp and http probes connect to the first port. */
static void check_ready(struct conf_ctx *c, const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;

	if (b->bad[CONF_SK_READY] || b->bad[CONF_SK_PORTS] || s->nports > 0)
		return;
	if (s->ready == CONF_READY_TCP || s->ready == CONF_READY_HTTP)
		conf_err(c, where(b, CONF_SK_READY),
		         "%s.ready: \"%s\" probes a port, but \"ports\" is not set", b->label,
		         conf_ready_name(s->ready));
}

/* QEMU's hostfwd accepts before the guest listens: a connect proves nothing. */
static void check_ready_user(struct conf_ctx *c, const struct conf *conf,
                             const struct conf_build *b)
{
	if (b->bad[CONF_SK_READY] || conf->net_mode != CONF_NET_USER ||
	    b->svc.backend != CONF_BACKEND_QEMU || b->svc.ready != CONF_READY_TCP)
		return;
	conf_err(c, where(b, CONF_SK_READY),
	         "%s.ready: \"tcp\" cannot see a guest behind QEMU user networking; use "
	         "\"http:/path\" or \"console:REGEX\"",
	         b->label);
}

/* The exec backend runs a process: it has no state to save and no shell. */
static void check_idle_exec(struct conf_ctx *c, const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;

	if (b->bad[CONF_SK_BACKEND] || s->backend != CONF_BACKEND_EXEC)
		return;
	if (!b->bad[CONF_SK_ON_IDLE] && s->on_idle == CONF_IDLE_SUSPEND)
		conf_err(c, where(b, CONF_SK_ON_IDLE),
		         "%s.on_idle: \"suspend\" needs a VM; the exec backend can \"pause\", "
		         "\"shutdown\" or \"destroy\"",
		         b->label);
	if (!b->bad[CONF_SK_WARM] && s->warm == CONF_WARM_SHELL)
		conf_err(c, where(b, CONF_SK_WARM),
		         "%s.warm: \"shell\" needs a VMM; the exec backend can be \"paused\"",
		         b->label);
}

/*
 * Templates are QEMU's (a migration stream to a file); a pattern service's
 * or a replica's instance has an address of its own at each boot.
 */
static void check_template(struct conf_ctx *c, const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;

	if (b->bad[CONF_SK_TEMPLATE] || s->template == CONF_TEMPLATE_OFF)
		return;
	if (!b->bad[CONF_SK_BACKEND] && s->backend != CONF_BACKEND_QEMU)
		conf_err(c, where(b, CONF_SK_TEMPLATE),
		         "%s.template: \"auto\" needs the qemu backend (the %s backend has no "
		         "templates); use \"off\"",
		         b->label, conf_backend_name(s->backend));
	else if (s->pattern || s->replicas_max > 1)
		conf_err(c, where(b, CONF_SK_TEMPLATE),
		         "%s.template: not for a pattern service or replicas (yet); use \"off\"",
		         b->label);
}

static void check_zone(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b)
{
	if (!c->zone_ok)
		return;
	for (size_t i = 0; i < b->svc.ndns; i++)
		if (!conf_dns_in_zone(b->svc.dns[i], conf->zone))
			conf_err(c, b->dns_src[i], "%s.dns: \"%s\" is outside zone \"%s\"",
			         b->label, b->svc.dns[i], conf->zone);
}

static void check_subnet(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b)
{
	char addr[INET_ADDRSTRLEN], net[INET_ADDRSTRLEN + 4];
	uint32_t a = ntohl(b->svc.address.s_addr), n = ntohl(conf->subnet.s_addr);
	uint32_t mask = 0xffffffffu << (32 - conf->prefix);
	const char *what = NULL;

	if (conf->net_mode != CONF_NET_BRIDGE || !c->mode_ok || !c->subnet_ok ||
	    !usable(b, CONF_SK_ADDRESS) || b->svc.pattern || b->bad[CONF_SK_BACKEND] ||
	    b->svc.backend == CONF_BACKEND_EXEC)
		return;
	if ((a & mask) != n)
		what = "is outside";
	else if (a == n)
		what = "is the network address of";
	else if (a == n + 1)
		what = "is the bridge's address (the first) in";
	else if (a == (n | ~mask))
		what = "is the broadcast address of";
	if (what == NULL)
		return;
	inet_ntop(AF_INET, &b->svc.address, addr, sizeof(addr));
	inet_ntop(AF_INET, &conf->subnet, net, INET_ADDRSTRLEN);
	conf_err(c, b->src[CONF_SK_ADDRESS], "%s.address: %s %s network.subnet %s/%d", b->label,
	         addr, what, net, conf->prefix);
}

/* Has a service before B[I], or B[I] before name J, the DNS name? */
static const struct conf_build *dns_owner(const struct conf_build *b, size_t i, size_t j)
{
	const char *name = b[i].svc.dns[j];

	for (size_t k = 0; k <= i; k++)
		for (size_t m = 0; m < b[k].svc.ndns && (k < i || m < j); m++)
			if (strcmp(b[k].svc.dns[m], name) == 0)
				return &b[k];
	return NULL;
}

static void check_unique(struct conf_ctx *c, const struct conf_build *b, size_t i)
{
	const struct conf_build *o;
	char ref[64], addr[INET_ADDRSTRLEN];

	for (size_t k = 0; k < i; k++) {
		if (usable(&b[i], CONF_SK_NAME) && usable(&b[k], CONF_SK_NAME) &&
		    strcmp(b[i].svc.name, b[k].svc.name) == 0)
			conf_err(c, b[i].src[CONF_SK_NAME], "%s.name: \"%s\" is already used by %s",
			         b[i].label, b[i].svc.name, b[k].label);
		if (usable(&b[i], CONF_SK_ADDRESS) && usable(&b[k], CONF_SK_ADDRESS) &&
		    !b[i].svc.pattern && !b[k].svc.pattern &&
		    b[i].svc.address.s_addr == b[k].svc.address.s_addr) {
			inet_ntop(AF_INET, &b[i].svc.address, addr, sizeof(addr));
			conf_err(c, b[i].src[CONF_SK_ADDRESS],
			         "%s.address: %s is already used by %s", b[i].label, addr,
			         svc_ref(ref, sizeof(ref), &b[k]));
		}
	}
	for (size_t j = 0; j < b[i].svc.ndns; j++) {
		if ((o = dns_owner(b, i, j)) == NULL)
			continue;
		if (o == &b[i])
			conf_err(c, b[i].dns_src[j], "%s.dns: \"%s\" is listed twice", b[i].label,
			         b[i].svc.dns[j]);
		else
			conf_err(c, b[i].dns_src[j], "%s.dns: \"%s\" is already used by %s",
			         b[i].label, b[i].svc.dns[j], svc_ref(ref, sizeof(ref), o));
	}
}

void conf_check_services(struct conf_ctx *c, const struct conf *conf, struct conf_build *b,
                         size_t n)
{
	for (size_t i = 0; i < n; i++) {
		check_required(c, &b[i]);
		/* A front runs nothing: conf_check_fronts says what it takes. */
		if (b[i].src[CONF_SK_ROUTES] != NULL) {
			check_zone(c, conf, &b[i]);
			check_unique(c, b, i);
			conf_check_address6(c, b, i);
			continue;
		}
		check_backend(c, &b[i]);
		check_image(c, &b[i]);
		check_ready(c, &b[i]);
		check_idle_exec(c, &b[i]);
		conf_check_idle(c, conf, &b[i]);
		check_template(c, &b[i]);
		check_ready_user(c, conf, &b[i]);
		check_zone(c, conf, &b[i]);
		check_subnet(c, conf, &b[i]);
		check_unique(c, b, i);
		conf_check_address6(c, b, i);
		conf_check_pattern(c, conf, b, i);
		conf_check_unavailable(c, conf, &b[i]);
	}
	conf_check_pools(c, b, n);
}
