/*
 * The domain config of a Xen service. libxlutil only tokenises xl.cfg:
 * turning its keys into a libxl_domain_config is xl's own xl_parse.c, not
 * a library, so beckon maps the keys it supports here. What the user's
 * xl.cfg says wins; what it leaves out comes from the service (image,
 * cmdline, memory, vcpus) and from beckon's network (a vif on its bridge
 * with its MAC). The name is always beckon's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libxlutil.h>

#include "backend.h"
#include "proc.h"
#include "xen.h"

/* STR, or NULL when STR is NULL; false when out of memory. */
static bool xen_cfg_dup(char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL;
}

/* A string key of CFG into *DST, when set; -1 when set to no string. */
static int xen_cfg_str(const XLU_Config *cfg, const char *key, char **dst, char *err, size_t errlen)
{
	const char *s;
	int rc = xlu_cfg_get_string(cfg, key, &s, 1);

	if (rc == ESRCH)
		return 0;
	if (rc != 0) {
		snprintf(err, errlen, "%s: not a string", key);
		return -1;
	}
	if (!xen_cfg_dup(dst, s)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 1;
}

/* A number key of CFG into *DST, when set; -1 when set to no number. */
static int xen_cfg_long(const XLU_Config *cfg, const char *key, long *dst, char *err, size_t errlen)
{
	int rc = xlu_cfg_get_long(cfg, key, dst, 1);

	if (rc == ESRCH)
		return 0;
	if (rc != 0 || *dst <= 0) {
		snprintf(err, errlen, "%s: not a positive number", key);
		return -1;
	}
	return 1;
}

/* "pv" or "pvh" (xl.cfg's type); HVM needs a device model beckon does not run. */
static int xen_cfg_type(const XLU_Config *cfg, libxl_domain_type *type, char *err, size_t errlen)
{
	char *s = NULL;
	int rc = cfg ? xen_cfg_str(cfg, "type", &s, err, errlen) : 0;

	*type = LIBXL_DOMAIN_TYPE_PVH;
	if (rc == 1 && strcmp(s, "pv") == 0)
		*type = LIBXL_DOMAIN_TYPE_PV;
	else if (rc == 1 && strcmp(s, "pvh") != 0) {
		snprintf(err, errlen, "type \"%s\": beckon runs \"pvh\" or \"pv\"", s);
		rc = -1;
	}
	free(s);
	return rc == -1 ? -1 : 0;
}

/* xl's cmdline: "cmdline", else "root=ROOT EXTRA" from root and extra. */
static int xen_cfg_cmdline(const XLU_Config *cfg, libxl_domain_build_info *b, char *err,
                           size_t errlen)
{
	char *root = NULL, *extra = NULL;
	int rc, r2;

	if ((rc = xen_cfg_str(cfg, "cmdline", &b->cmdline, err, errlen)) != 0)
		return rc == -1 ? -1 : 0;
	rc = xen_cfg_str(cfg, "root", &root, err, errlen);
	r2 = rc == -1 ? -1 : xen_cfg_str(cfg, "extra", &extra, err, errlen);
	if (rc == 1 || r2 == 1) {
		free(b->cmdline);
		if (asprintf(&b->cmdline, "%s%s%s%s", root ? "root=" : "", root ? root : "",
		             root && extra ? " " : "", extra ? extra : "") == -1) {
			b->cmdline = NULL;
			r2 = -1;
		}
	}
	free(root);
	free(extra);
	return rc == -1 || r2 == -1 ? -1 : 0;
}

/* One "key=value" of a vif spec into NIC. */
static int xen_cfg_vif_kv(libxl_device_nic *nic, const char *k, const char *v, char *err,
                          size_t errlen)
{
	unsigned m[6];

	if (strcmp(k, "mac") == 0) {
		if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4],
		           &m[5]) != 6) {
			snprintf(err, errlen, "vif: mac \"%s\" is not xx:xx:xx:xx:xx:xx", v);
			return -1;
		}
		for (int i = 0; i < 6; i++)
			nic->mac[i] = (uint8_t)m[i];
		return 0;
	}
	if (strcmp(k, "bridge") == 0)
		return xen_cfg_dup(&nic->bridge, v) ? 0 : -1;
	if (strcmp(k, "vifname") == 0)
		return xen_cfg_dup(&nic->ifname, v) ? 0 : -1;
	if (strcmp(k, "ip") == 0)
		return xen_cfg_dup(&nic->ip, v) ? 0 : -1;
	if (strcmp(k, "script") == 0)
		return xen_cfg_dup(&nic->script, v) ? 0 : -1;
	if (strcmp(k, "type") == 0 && strcmp(v, "vif") == 0)
		return 0;
	snprintf(err, errlen,
	         "vif: \"%s=%s\" is not something beckon sets (mac, bridge, "
	         "vifname, ip, script, type=vif)",
	         k, v);
	return -1;
}

/* A vif spec ("mac=...,bridge=...") into NIC. */
static int xen_cfg_vif(libxl_device_nic *nic, const char *spec, char *err, size_t errlen)
{
	char *s = strdup(spec), *save = NULL, *kv, *eq;
	int rc = 0;

	if (s == NULL)
		return -1;
	for (kv = strtok_r(s, ",", &save); kv != NULL && rc == 0; kv = strtok_r(NULL, ",", &save)) {
		while (*kv == ' ')
			kv++;
		if (*kv == '\0')
			continue;
		if ((eq = strchr(kv, '=')) == NULL) {
			snprintf(err, errlen, "vif: \"%s\" is no key=value", kv);
			rc = -1;
			break;
		}
		*eq = '\0';
		rc = xen_cfg_vif_kv(nic, kv, eq + 1, err, errlen);
	}
	free(s);
	return rc;
}

/* A vif with beckon's MAC on beckon's bridge: the defaults of every vif given. */
static void xen_cfg_nic_defaults(libxl_device_nic *nic, const struct xen_cfg_in *in, int devid)
{
	unsigned m[6];

	libxl_device_nic_init(nic);
	nic->devid = devid;
	nic->nictype = LIBXL_NIC_TYPE_VIF;
	if (devid == 0 && in->mac != NULL &&
	    sscanf(in->mac, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) ==
	        6)
		for (int i = 0; i < 6; i++)
			nic->mac[i] = (uint8_t)m[i];
	if (in->bridge != NULL)
		nic->bridge = strdup(in->bridge);
}

/* The vifs: the xl.cfg's list, else one on beckon's bridge (when there is one). */
static int xen_cfg_nics(libxl_domain_config *d, const XLU_Config *cfg, const struct xen_cfg_in *in,
                        char *err, size_t errlen)
{
	XLU_ConfigList *list = NULL;
	int n = 0;

	if (cfg != NULL && xlu_cfg_get_list(cfg, "vif", &list, &n, 1) != 0 &&
	    xlu_cfg_get_list(cfg, "vif", NULL, NULL, 1) != ESRCH) {
		snprintf(err, errlen, "vif: not a list of strings");
		return -1;
	}
	if (list == NULL)
		n = in->bridge != NULL ? 1 : 0;
	if (n == 0)
		return 0;
	if ((d->nics = calloc((size_t)n, sizeof(*d->nics))) == NULL)
		return -1;
	d->num_nics = n;
	for (int i = 0; i < n; i++) {
		xen_cfg_nic_defaults(&d->nics[i], in, i);
		if (list != NULL &&
		    xen_cfg_vif(&d->nics[i], xlu_cfg_get_listitem(list, i), err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* Memory in MiB and vcpus: the xl.cfg's, else the service's. */
static int xen_cfg_sizes(const XLU_Config *cfg, libxl_domain_build_info *b,
                         const struct xen_cfg_in *in, char *err, size_t errlen)
{
	long mem = (long)(in->memory >> 20), maxmem = 0, vcpus = in->vcpus, maxvcpus = 0;

	if (cfg != NULL && (xen_cfg_long(cfg, "memory", &mem, err, errlen) == -1 ||
	                    xen_cfg_long(cfg, "maxmem", &maxmem, err, errlen) == -1 ||
	                    xen_cfg_long(cfg, "vcpus", &vcpus, err, errlen) == -1 ||
	                    xen_cfg_long(cfg, "maxvcpus", &maxvcpus, err, errlen) == -1))
		return -1;
	if (mem <= 0 || vcpus <= 0) {
		snprintf(err, errlen, "memory and vcpus must be positive");
		return -1;
	}
	b->target_memkb = (uint64_t)mem * 1024;
	b->max_memkb = (uint64_t)(maxmem > mem ? maxmem : mem) * 1024;
	b->max_vcpus = (int)(maxvcpus > vcpus ? maxvcpus : vcpus);
	return 0;
}

/* The build info: type, kernel, ramdisk, cmdline, sizes. */
static int xen_cfg_build_info(libxl_domain_config *d, const XLU_Config *cfg,
                              const struct xen_cfg_in *in, char *err, size_t errlen)
{
	libxl_domain_build_info *b = &d->b_info;
	libxl_domain_type type;

	if (xen_cfg_type(cfg, &type, err, errlen) == -1)
		return -1;
	d->c_info.type = type;
	libxl_domain_build_info_init_type(b, type);
	if (!xen_cfg_dup(&b->kernel, in->kernel) ||
	    !xen_cfg_dup(&b->cmdline, in->cmdline && *in->cmdline ? in->cmdline : NULL))
		return -1;
	if (cfg != NULL && (xen_cfg_str(cfg, "kernel", &b->kernel, err, errlen) == -1 ||
	                    xen_cfg_str(cfg, "ramdisk", &b->ramdisk, err, errlen) == -1 ||
	                    xen_cfg_cmdline(cfg, b, err, errlen) == -1))
		return -1;
	if (b->kernel == NULL) {
		snprintf(err, errlen, "no kernel: set the service's image or the xl.cfg's kernel");
		return -1;
	}
	return xen_cfg_sizes(cfg, b, in, err, errlen);
}

/* libxlutil's config and the stream it reports to (open while it lives). */
struct xen_cfg_parsed {
	XLU_Config *cfg;
	FILE *report;
	char *msg;
	size_t len;
};

static void xen_cfg_parsed_free(struct xen_cfg_parsed *p)
{
	if (p->cfg != NULL)
		xlu_cfg_destroy(p->cfg);
	if (p->report != NULL)
		fclose(p->report);
	free(p->msg);
}

/* Parse TEXT with libxlutil into P; its message (FILE:LINE: ...) into ERR. */
static int xen_cfg_parse(struct xen_cfg_parsed *p, const char *text, const char *file, char *err,
                         size_t errlen)
{
	int rc = -1;

	if ((p->report = open_memstream(&p->msg, &p->len)) == NULL ||
	    (p->cfg = xlu_cfg_init(p->report, file ? file : "xl.cfg")) == NULL)
		return -1;
	rc = xlu_cfg_readdata(p->cfg, text, (int)strlen(text));
	if (rc == 0)
		return 0;
	fflush(p->report);
	/* The first line is the one that says where. */
	if (p->msg != NULL && *p->msg)
		snprintf(err, errlen, "%.*s", (int)strcspn(p->msg, "\n"), p->msg);
	else
		snprintf(err, errlen, "%s: cannot parse it", file ? file : "xl.cfg");
	return -1;
}

int xen_cfg_build(libxl_domain_config *d, const struct xen_cfg_in *in, const char *text,
                  const char *file, char *err, size_t errlen)
{
	struct xen_cfg_parsed p = {0};
	int rc = -1;

	snprintf(err, errlen, "out of memory");
	if (text != NULL && xen_cfg_parse(&p, text, file, err, errlen) == -1)
		goto done;
	if (!xen_cfg_dup(&d->c_info.name, in->name) ||
	    xen_cfg_build_info(d, p.cfg, in, err, errlen) == -1 ||
	    xen_cfg_nics(d, p.cfg, in, err, errlen) == -1)
		goto done;
	/* A guest that ends is destroyed by beckon (xen.c), not rebooted. */
	d->on_poweroff = LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
	d->on_reboot = LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
	d->on_crash = LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
	rc = 0;
done:
	xen_cfg_parsed_free(&p);
	return rc;
}

char *xen_cfg_expand(const char *tmpl, const struct backend_vars *v, char *err, size_t errlen)
{
	return backend_expand_all(tmpl, v, err, errlen);
}

char *xen_cfg_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	int c;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if ((out = open_memstream(&buf, &len)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while ((c = getc(f)) != EOF)
		putc(c, out);
	fclose(f);
	fclose(out);
	return buf;
}
