/* Services as values: deep copy, free, compare; the enum names; the built-in defaults. */
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

const char *const conf_backend_names[] = {"qemu", "libvirt", "xen", "exec", NULL};
const char *const conf_ready_names[] = {"tcp", "http", "console", "delay", NULL};
const char *const conf_on_idle_names[] = {"pause", "suspend", "shutdown", "destroy", NULL};
const char *const conf_warm_names[] = {"none", "shell", "paused", NULL};
const char *const conf_template_names[] = {"off", "auto", NULL};
const char *const conf_net_mode_names[] = {"bridge", "user", NULL};
const char *const conf_hold_names[] = {"syn", "proxy", "none", NULL};

static const char *enum_name(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "?";
}

#define ENUM_NAME(names, v) enum_name(names, sizeof(names) / sizeof(names[0]) - 1, (int)(v))

const char *conf_backend_name(enum conf_backend b)
{
	return ENUM_NAME(conf_backend_names, b);
}

const char *conf_ready_name(enum conf_ready r)
{
	return ENUM_NAME(conf_ready_names, r);
}

const char *conf_on_idle_name(enum conf_on_idle o)
{
	return ENUM_NAME(conf_on_idle_names, o);
}

const char *conf_warm_name(enum conf_warm w)
{
	return ENUM_NAME(conf_warm_names, w);
}

const char *conf_template_name(enum conf_template t)
{
	return ENUM_NAME(conf_template_names, t);
}

const char *conf_net_mode_name(enum conf_net_mode m)
{
	return ENUM_NAME(conf_net_mode_names, m);
}

const char *conf_hold_name(enum conf_hold h)
{
	return ENUM_NAME(conf_hold_names, h);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void conf_service_clear(struct conf_service *svc)
{
	free(svc->name);
	free_strv(svc->dns, svc->ndns);
	free(svc->image);
	free(svc->cmdline);
	free(svc->ready_arg);
	free(svc->qemu.machine);
	free(svc->qemu.accel);
	free(svc->qemu.cpu);
	free(svc->qemu.nic);
	free(svc->qemu.disk);
	free(svc->qemu.initrd);
	free(svc->fail_re);
	free_strv(svc->qemu.args, svc->qemu.nargs);
	free(svc->libvirt_uri);
	free(svc->libvirt_xml);
	free(svc->xen_cfg);
	free(svc->exec_command);
	free_strv(svc->hosts, svc->nhosts);
	conf_routes_clear(svc);
	conf_idle_clear(svc);
	free(svc->label);
	free(svc->unavailable.body);
	free(svc->unavailable.content_type);
	memset(svc, 0, sizeof(*svc));
}

void conf_service_free(struct conf_service *svc)
{
	if (svc == NULL)
		return;
	conf_service_clear(svc);
	free(svc);
}

/* Copy *P in place; false on ENOMEM (then *P is NULL). */
static bool dup_str(char **p)
{
	if (*p == NULL)
		return true;
	*p = strdup(*p);
	return *p != NULL;
}

static bool dup_strv(char ***v, size_t n)
{
	char **src = *v, **dst;
	bool ok = true;

	if (src == NULL)
		return true;
	if ((dst = calloc(n ? n : 1, sizeof(*dst))) == NULL) {
		*v = NULL;
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if ((dst[i] = strdup(src[i])) == NULL)
			ok = false;
	*v = dst;
	return ok;
}

struct conf_service *conf_service_dup(const struct conf_service *svc)
{
	struct conf_service *d = malloc(sizeof(*d));
	bool ok = true;

	if (d == NULL)
		return NULL;
	*d = *svc;
	char **strs[] = {&d->name,
	                 &d->image,
	                 &d->cmdline,
	                 &d->ready_arg,
	                 &d->qemu.machine,
	                 &d->qemu.accel,
	                 &d->qemu.cpu,
	                 &d->qemu.nic,
	                 &d->qemu.disk,
	                 &d->qemu.initrd,
	                 &d->libvirt_uri,
	                 &d->libvirt_xml,
	                 &d->xen_cfg,
	                 &d->exec_command,
	                 &d->fail_re,
	                 &d->label,
	                 &d->unavailable.body,
	                 &d->unavailable.content_type};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (!dup_str(strs[i]))
			ok = false;
	if (!dup_strv(&d->dns, d->ndns))
		ok = false;
	if (!dup_strv(&d->qemu.args, d->qemu.nargs))
		ok = false;
	if (!dup_strv(&d->hosts, d->nhosts))
		ok = false;
	/* A list whose array could not be made is NULL: nothing of it to free. */
	if (d->dns == NULL)
		d->ndns = 0;
	if (d->qemu.args == NULL)
		d->qemu.nargs = 0;
	if (d->hosts == NULL)
		d->nhosts = 0;
	if (!conf_routes_dup(d))
		ok = false;
	if (!conf_idle_dup(d))
		ok = false;
	if (!ok) {
		conf_service_free(d);
		return NULL;
	}
	return d;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

static bool qemu_eq(const struct conf_qemu *a, const struct conf_qemu *b)
{
	return str_eq(a->machine, b->machine) && str_eq(a->accel, b->accel) &&
	       str_eq(a->cpu, b->cpu) && str_eq(a->nic, b->nic) && str_eq(a->disk, b->disk) &&
	       str_eq(a->initrd, b->initrd) && a->boot_disk == b->boot_disk &&
	       a->thp_off == b->thp_off && strv_eq(a->args, a->nargs, b->args, b->nargs);
}

/* Where the service is in its file (line) does not matter. */
bool conf_service_equal(const struct conf_service *a, const struct conf_service *b)
{
	return str_eq(a->name, b->name) && strv_eq(a->dns, a->ndns, b->dns, b->ndns) &&
	       str_eq(a->image, b->image) && str_eq(a->cmdline, b->cmdline) &&
	       a->address.s_addr == b->address.s_addr && a->has_address6 == b->has_address6 &&
	       memcmp(&a->address6, &b->address6, sizeof(a->address6)) == 0 &&
	       a->nports == b->nports &&
	       memcmp(a->ports, b->ports, a->nports * sizeof(a->ports[0])) == 0 &&
	       a->backend == b->backend && a->memory == b->memory && a->vcpus == b->vcpus &&
	       a->boot_timeout_ms == b->boot_timeout_ms && a->ready == b->ready &&
	       str_eq(a->ready_arg, b->ready_arg) && a->ready_delay_ms == b->ready_delay_ms &&
	       str_eq(a->fail_re, b->fail_re) && a->idle_timeout_ms == b->idle_timeout_ms &&
	       a->on_idle == b->on_idle && a->warm == b->warm && a->template == b->template &&
	       qemu_eq(&a->qemu, &b->qemu) && str_eq(a->libvirt_uri, b->libvirt_uri) &&
	       str_eq(a->libvirt_xml, b->libvirt_xml) && str_eq(a->xen_cfg, b->xen_cfg) &&
	       str_eq(a->exec_command, b->exec_command) &&
	       (a->hosts == NULL) == (b->hosts == NULL) &&
	       strv_eq(a->hosts, a->nhosts, b->hosts, b->nhosts) && conf_routes_equal(a, b) &&
	       a->pattern == b->pattern && a->pool_first.s_addr == b->pool_first.s_addr &&
	       a->pool_last.s_addr == b->pool_last.s_addr && str_eq(a->label, b->label) &&
	       a->replicas_min == b->replicas_min && a->replicas_max == b->replicas_max &&
	       a->replicas_target == b->replicas_target && conf_idle_equal(a, b);
}

const struct conf_service *conf_service_find(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->nservices; i++)
		if (strcmp(conf->services[i].name, name) == 0)
			return &conf->services[i];
	return NULL;
}

const struct conf_service *conf_front_find(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->nfronts; i++)
		if (strcmp(conf->fronts[i].name, name) == 0)
			return &conf->fronts[i];
	return NULL;
}

void conf_build_init(struct conf_ctx *c, struct conf_build *b)
{
	struct conf_service *s = &b->svc;

	memset(b, 0, sizeof(*b));
	s->backend = CONF_BACKEND_QEMU;
	s->memory = 16ULL << 20;
	s->vcpus = 1;
	s->boot_timeout_ms = 5000;
	s->ready = CONF_READY_TCP;
	s->idle_timeout_ms = 60000;
	s->on_idle = CONF_IDLE_PAUSE;
	s->idle_check_interval_ms = 5000;
	s->idle_notice_timeout_ms = 5000;
	s->warm = CONF_WARM_NONE;
	s->template = CONF_TEMPLATE_OFF;
	s->replicas_max = 1;
	s->cmdline = conf_strdup(c, "");
	s->qemu.machine = conf_strdup(c, "microvm");
	s->qemu.accel = conf_strdup(c, "auto");
	s->qemu.cpu = conf_strdup(c, "max");
}

void conf_build_copy(struct conf_ctx *c, struct conf_build *dst, const struct conf_build *src)
{
	struct conf_service *svc = conf_service_dup(&src->svc);

	memset(dst, 0, sizeof(*dst));
	if (svc == NULL ||
	    (src->svc.ndns > 0 &&
	     (dst->dns_src = calloc(src->svc.ndns, sizeof(*dst->dns_src))) == NULL)) {
		conf_service_free(svc);
		c->oom = true;
		return;
	}
	dst->svc = *svc;
	free(svc);
	if (src->svc.ndns > 0)
		memcpy(dst->dns_src, src->dns_src, src->svc.ndns * sizeof(*dst->dns_src));
	memcpy(dst->src, src->src, sizeof(dst->src));
	memcpy(dst->bad, src->bad, sizeof(dst->bad));
}

void conf_build_clear(struct conf_build *b)
{
	conf_service_clear(&b->svc);
	free(b->dns_src);
	b->dns_src = NULL;
}
