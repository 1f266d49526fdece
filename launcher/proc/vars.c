/*
 * The placeholders every backend's templates take (cmdline, exec.command,
 * and later the libvirt and Xen templates): what the guest is told of its
 * network and itself. Nothing reaches a guest's command line that its
 * config does not write.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "proc.h"

static const struct {
	const char *key;
	size_t off;
} vars_keys[] = {
    {"{image}", offsetof(struct backend_vars, image)},
    {"{cmdline}", offsetof(struct backend_vars, cmdline)},
    {"{tap}", offsetof(struct backend_vars, tap)},
    {"{mac}", offsetof(struct backend_vars, mac)},
    {"{address}", offsetof(struct backend_vars, address)},
    {"{prefix}", offsetof(struct backend_vars, prefix)},
    {"{netmask}", offsetof(struct backend_vars, netmask)},
    {"{gateway}", offsetof(struct backend_vars, gateway)},
    {"{dns}", offsetof(struct backend_vars, dns)},
    {"{memory}", offsetof(struct backend_vars, memory)},
    {"{name}", offsetof(struct backend_vars, name)},
    {"{port}", offsetof(struct backend_vars, port)},
    {"{label}", offsetof(struct backend_vars, label)},
};

size_t backend_placeholder_at(const char *s, const char *start)
{
	size_t n;

	if (*s != '{' || (s > start && s[-1] == '$'))
		return 0;
	n = strspn(s + 1, "abcdefghijklmnopqrstuvwxyz");
	return n > 0 && s[n + 1] == '}' ? n + 2 : 0;
}

const char *backend_placeholder(const char *s, size_t len, const struct backend_vars *v,
                                bool *is_cmdline)
{
	const char *val;

	for (size_t i = 0; i < sizeof(vars_keys) / sizeof(vars_keys[0]); i++) {
		if (strlen(vars_keys[i].key) != len || strncmp(s, vars_keys[i].key, len) != 0)
			continue;
		if (is_cmdline != NULL)
			*is_cmdline = i == 1;
		val = *(const char *const *)((const char *)v + vars_keys[i].off);
		return val ? val : "";
	}
	return NULL;
}

/* TMPL expanded; {cmdline} is V's cmdline with WITH_CMDLINE, else an error. */
static char *vars_expand(const char *tmpl, const struct backend_vars *v, bool with_cmdline,
                         char *err, size_t errlen)
{
	size_t cap = strlen(tmpl) + 1, len = 0, n, vl;
	const char *s = tmpl, *val;
	bool is_cmdline = false;
	char *out = malloc(cap), *grown;

	while (out != NULL && *s) {
		n = backend_placeholder_at(s, tmpl);
		val = n ? backend_placeholder(s, n, v, &is_cmdline) : NULL;
		if (n && (val == NULL || (is_cmdline && !with_cmdline))) {
			snprintf(err, errlen, "unknown placeholder %.*s", (int)n, s);
			free(out);
			return NULL;
		}
		if (!n) {
			val = s;
			vl = 1;
			n = 1;
		} else {
			vl = strlen(val);
		}
		if (len + vl + 1 > cap) {
			cap = (len + vl + 1) * 2;
			if ((grown = realloc(out, cap)) == NULL)
				break;
			out = grown;
		}
		memcpy(out + len, val, vl);
		len += vl;
		s += n;
	}
	if (out == NULL || *s) {
		snprintf(err, errlen, "out of memory");
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

char *backend_expand(const char *tmpl, const struct backend_vars *v, char *err, size_t errlen)
{
	return vars_expand(tmpl, v, false, err, errlen);
}

char *backend_expand_all(const char *tmpl, const struct backend_vars *v, char *err, size_t errlen)
{
	return vars_expand(tmpl, v, true, err, errlen);
}

/* The words of bridge or user networking an instance's guest is told. */
void backend_vars_net(struct backend_vars *v, struct backend_vars_buf *b, const char *address,
                      int prefix, const char *gateway, const char *dns)
{
	uint32_t mask = prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);

	snprintf(b->prefix, sizeof(b->prefix), "%d", prefix);
	snprintf(b->netmask, sizeof(b->netmask), "%u.%u.%u.%u", mask >> 24, (mask >> 16) & 0xff,
	         (mask >> 8) & 0xff, mask & 0xff);
	v->address = address;
	v->prefix = b->prefix;
	v->netmask = b->netmask;
	v->gateway = gateway;
	v->dns = dns;
}

void backend_vars_fill(const struct instance *inst, struct backend_vars *v,
                       struct backend_vars_buf *b)
{
	const struct conf_service *svc = inst->svc;

	memset(v, 0, sizeof(*v));
	snprintf(b->memory, sizeof(b->memory), "%llu", (unsigned long long)(svc->memory >> 20));
	if (svc->nports > 0)
		snprintf(b->port, sizeof(b->port), "%u", svc->ports[0]);
	else
		b->port[0] = '\0';
	v->image = svc->image;
	v->cmdline = svc->cmdline;
	v->tap = inst->tap;
	v->mac = inst->mac;
	v->memory = b->memory;
	v->name = svc->name;
	v->port = b->port;
	v->label = svc->label != NULL ? svc->label : ""; /* a pattern instance's */
	if (inst->hosted && inst->host[0] != '\0')
		backend_vars_net(v, b, inst->address, inst->prefix, inst->gateway, inst->gateway);
	else if (inst->tap[0] != '\0')
		backend_vars_net(v, b, inst->address, backend_prefix(), backend_gateway(),
		                 backend_gateway());
	else
		backend_vars_net(v, b, inst->address, 32, "", "");
}

int launcher_check_templates(const struct conf *conf, FILE *errs)
{
	const struct backend_ops *ops;
	char where[512], *buf = NULL;
	size_t len = 0;
	FILE *out = errs;
	int rc = 0;

	if (out == NULL && (out = open_memstream(&buf, &len)) == NULL)
		return 0; /* checked again at each boot */
	for (size_t i = 0; i < conf->nservices; i++) {
		ops = backend_lookup(conf->services[i].backend);
		if (ops == NULL || ops->check == NULL)
			continue;
		snprintf(where, sizeof(where), "%s:%d: services[%zu]",
		         conf->path ? conf->path : "config", conf->services[i].line, i);
		if (ops->check(&conf->services[i], out, where) == -1)
			rc = -1;
	}
	if (errs == NULL) {
		fclose(out);
		/* Errors only: notes are for beckond -n. */
		for (char *line = strtok(buf, "\n"); rc == -1 && line != NULL;
		     line = strtok(NULL, "\n"))
			if (strstr(line, ": note: ") == NULL)
				log_warnx("%s", line);
		free(buf);
	}
	return rc;
}

/* Dummy values of every placeholder, for a check at load. */
void backend_vars_dummy(struct backend_vars *v)
{
	*v = (struct backend_vars){"i", "c", "t",  "m", "a",  "24", "255.255.255.0",
	                           "g", "d", "16", "n", "80", "l"};
}

int backend_check_cmdline(const struct conf_service *svc, FILE *errs, const char *where)
{
	struct backend_vars v;
	char err[128], *s = NULL;

	backend_vars_dummy(&v);
	if (svc->cmdline == NULL ||
	    (s = backend_expand(svc->cmdline, &v, err, sizeof(err))) != NULL) {
		if (svc->cmdline != NULL)
			free(s);
		return 0;
	}
	fprintf(errs, "%s.cmdline: %s\n", where, err);
	return -1;
}
