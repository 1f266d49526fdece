/*
 * The unavailable key of a service: what the proxy answers an HTTP client
 * it cannot serve, instead of a reset.
 *
 *   unavailable = { status = 503; retry_after = "5s"; body = "..."; ports = ( 80 ); };
 *
 * A service's own group replaces the defaults' as a whole (no merging of
 * its keys), so that what a service answers is read in one place.
 */
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

#define UNAVAIL_RETRY_MAX_MS (24ULL * 3600 * 1000)
#define UNAVAIL_TYPE_MAX 128

static void unavail_clear(struct conf_unavailable *u)
{
	free(u->body);
	free(u->content_type);
	memset(u, 0, sizeof(*u));
}

static void unavail_defaults(struct conf_ctx *c, struct conf_unavailable *u)
{
	unavail_clear(u);
	u->set = true;
	u->status = 503;
	u->retry_after_ms = 5000;
	u->body = conf_strdup(c, "503 Service Unavailable: try again shortly\n");
	u->content_type = conf_strdup(c, "text/plain; charset=utf-8");
}

/* retry_after: whole seconds as an integer, or a duration string. */
static int unavail_retry(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         uint64_t *ms)
{
	long long n;

	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		if (conf_get_int(c, s, label, 0, UNAVAIL_RETRY_MAX_MS / 1000, &n) == -1)
			return -1;
		*ms = (uint64_t)n * 1000;
		return 0;
	}
	if (conf_get_duration(c, s, label, ms) == -1)
		return -1;
	if (*ms > UNAVAIL_RETRY_MAX_MS) {
		conf_err(c, s, "%s: longer than \"24h\"", label);
		return -1;
	}
	return 0;
}

/* A header's value goes out as written: printable ASCII, no CR or LF. */
static int unavail_type(struct conf_ctx *c, const config_setting_t *s, const char *label,
                        char **out)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (v[0] == '\0' || strlen(v) > UNAVAIL_TYPE_MAX) {
		conf_err(c, s, "%s: want 1 to %d characters", label, UNAVAIL_TYPE_MAX);
		return -1;
	}
	for (const char *p = v; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e) {
			conf_err(c, s, "%s: only printable ASCII may go into a header", label);
			return -1;
		}
	conf_set_str(c, out, v);
	return 0;
}

static int unavail_body(struct conf_ctx *c, const config_setting_t *s, const char *label,
                        char **out)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (strlen(v) > CONF_UNAVAILABLE_BODY_MAX) {
		conf_err(c, s, "%s: longer than %d bytes", label, CONF_UNAVAILABLE_BODY_MAX);
		return -1;
	}
	conf_set_str(c, out, v);
	return 0;
}

static int unavail_ports(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_unavailable *u)
{
	char buf[CONF_LABEL_MAX];
	long long v;
	int n, rc = 0;

	if (conf_get_list(c, s, label, true, &n) == -1)
		return -1;
	if (n > CONF_MAX_PORTS) {
		conf_err(c, s, "%s: %d ports, at most %d are allowed", label, n, CONF_MAX_PORTS);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = conf_list_elem(s, i);

		if (config_setting_is_scalar(s))
			snprintf(buf, sizeof(buf), "%s", label);
		else
			snprintf(buf, sizeof(buf), "%s[%d]", label, i);
		if (conf_get_int(c, e, buf, 1, 65535, &v) == -1)
			rc = -1;
		else
			u->ports[u->nports++] = (uint16_t)v;
	}
	return rc;
}

static int unavail_key(struct conf_ctx *c, const config_setting_t *s, const char *label,
                       struct conf_unavailable *u)
{
	const char *key = config_setting_name(s);
	long long v;

	if (strcmp(key, "status") == 0) {
		if (conf_get_int(c, s, label, 400, 599, &v) == -1)
			return -1;
		u->status = (int)v;
		return 0;
	}
	if (strcmp(key, "retry_after") == 0)
		return unavail_retry(c, s, label, &u->retry_after_ms);
	if (strcmp(key, "body") == 0)
		return unavail_body(c, s, label, &u->body);
	if (strcmp(key, "content_type") == 0)
		return unavail_type(c, s, label, &u->content_type);
	if (strcmp(key, "ports") == 0)
		return unavail_ports(c, s, label, u);
	conf_err(c, s, "unknown key \"%s\"", label);
	return -1;
}

int conf_get_unavailable(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_service *svc)
{
	char buf[CONF_LABEL_MAX];
	int rc = 0;

	if (conf_want_group(c, s, label) == -1)
		return -1;
	unavail_defaults(c, &svc->unavailable);
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (unavail_key(c, e, conf_label(buf, label, config_setting_name(e)),
		                &svc->unavailable) == -1)
			rc = -1;
	}
	return rc;
}

static bool unavail_has_port(const struct conf_service *svc, uint16_t port)
{
	for (size_t i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port)
			return true;
	return false;
}

void conf_check_unavailable(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b)
{
	const struct conf_unavailable *u = &b->svc.unavailable;
	const config_setting_t *src = b->src[CONF_SK_UNAVAILABLE];

	if (!u->set || src == NULL || b->bad[CONF_SK_UNAVAILABLE])
		return;
	/* The SYN hold can only drop or reset; with none there is nobody to answer. */
	if (conf->hold != CONF_HOLD_PROXY) {
		conf_err(
		    c, src,
		    "%s.unavailable: an answer needs network.hold = \"proxy\" (hold \"%s\" can "
		    "only reset)",
		    b->label, conf_hold_name(conf->hold));
		return;
	}
	if (b->bad[CONF_SK_PORTS])
		return;
	if (b->svc.nports == 0)
		conf_err(c, src, "%s.unavailable: the service has no ports", b->label);
	for (size_t i = 0; i < u->nports; i++)
		if (!unavail_has_port(&b->svc, u->ports[i]))
			conf_err(c, src,
			         "%s.unavailable.ports: %u is not one of the service's ports",
			         b->label, u->ports[i]);
}

const struct conf_unavailable *conf_unavailable_on(const struct conf_service *svc, uint16_t port)
{
	const struct conf_unavailable *u = &svc->unavailable;

	if (!u->set)
		return NULL;
	if (u->nports == 0)
		return u;
	for (size_t i = 0; i < u->nports; i++)
		if (u->ports[i] == port)
			return u;
	return NULL;
}

static bool unavail_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool conf_unavailable_equal(const struct conf_unavailable *a, const struct conf_unavailable *b)
{
	if (!a->set || !b->set)
		return a->set == b->set;
	return a->status == b->status && a->retry_after_ms == b->retry_after_ms &&
	       unavail_str_eq(a->body, b->body) &&
	       unavail_str_eq(a->content_type, b->content_type) && a->nports == b->nports &&
	       memcmp(a->ports, b->ports, a->nports * sizeof(a->ports[0])) == 0;
}
