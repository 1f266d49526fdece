/* Getters: check a setting's type and value, and report what is wrong with it. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	default:
		return "a list";
	}
}

int conf_get_string(struct conf_ctx *c, const config_setting_t *s, const char *label,
                    const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_err(c, s, "%s: want a string, not %s", label, type_name(s));
		return -1;
	}
	*out = config_setting_get_string(s);
	return 0;
}

int conf_get_bool(struct conf_ctx *c, const config_setting_t *s, const char *label, bool *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		conf_err(c, s, "%s: want true or false, not %s", label, type_name(s));
		return -1;
	}
	*out = config_setting_get_bool(s) != 0;
	return 0;
}

/* Find "NAME = literal" or "NAME: literal" in LINE; the literal's start. */
static const char *find_literal(const char *line, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = strstr(line, name); p != NULL; p = strstr(p + 1, name)) {
		const char *q = p + len;

		if (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '-'))
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=' && *q != ':')
			continue;
		for (q++; *q == ' ' || *q == '\t'; q++)
			;
		return q;
	}
	return NULL;
}

/* The source text of a named integer setting, read back from its file. */
static int read_literal(struct conf_ctx *c, const config_setting_t *s, char *buf, size_t len)
{
	char *line;
	const char *lit;
	size_t k = 0;

	if (s->name == NULL)
		return -1;
	line = conf_source_line(c, config_setting_source_file(s), config_setting_source_line(s));
	if (line != NULL && (lit = find_literal(line, s->name)) != NULL) {
		while (k + 1 < len &&
		       (isalnum((unsigned char)lit[k]) || lit[k] == '-' || lit[k] == '+'))
			k++;
		memcpy(buf, lit, k);
		buf[k] = '\0';
	}
	free(line);
	return k > 0 ? 0 : -1;
}

/*
 * libconfig 1.5 silently wraps a decimal beyond 32 bits ("3000000000" reads
 * as a negative int). Recover the written value so ranges are checked on it.
 * *TEXT gets the literal when it was read back.
 */
static long long int_value(struct conf_ctx *c, const config_setting_t *s, char *text, bool *big)
{
	long long v = config_setting_get_int64(s), lit;
	char *end;
	bool hex;

	*big = false;
	if (config_setting_type(s) != CONFIG_TYPE_INT || read_literal(c, s, text, 32) == -1)
		return v;
	hex = strncasecmp(text + (text[0] == '-' || text[0] == '+'), "0x", 2) == 0;
	errno = 0;
	lit = strtoll(text, &end, hex ? 16 : 10);
	if (end == text)
		return v;
	if (errno == ERANGE) {
		*big = true;
		return v;
	}
	if ((int)(unsigned)(unsigned long long)lit != (int)v)
		return v; /* not the literal we were after */
	return lit;
}

int conf_get_int(struct conf_ctx *c, const config_setting_t *s, const char *label, long long lo,
                 long long hi, long long *out)
{
	char text[32] = "";
	long long v;
	bool big;
	int t = config_setting_type(s);

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		conf_err(c, s, "%s: want an integer, not %s", label, type_name(s));
		return -1;
	}
	v = int_value(c, s, text, &big);
	if (big || v < lo || v > hi) {
		if (text[0] != '\0')
			conf_err(c, s, "%s: %s is out of range (%lld..%lld)", label, text, lo, hi);
		else
			conf_err(c, s, "%s: %lld is out of range (%lld..%lld)", label, v, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int conf_get_enum(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  const char *const *names, int *out)
{
	char want[256] = "";
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\"%s\"",
		         i ? ", " : "", names[i]);
	}
	conf_err(c, s, "%s: bad value \"%s\" (want one of %s)", label, v, want);
	return -1;
}

int conf_get_duration(struct conf_ctx *c, const config_setting_t *s, const char *label,
                      uint64_t *ms)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (conf_parse_duration(v, ms) == -1) {
		conf_err(c, s,
		         "%s: bad duration \"%s\" (want e.g. \"250ms\", \"30s\", \"5m\", \"1h\")",
		         label, v);
		return -1;
	}
	return 0;
}

int conf_get_size(struct conf_ctx *c, const config_setting_t *s, const char *label, uint64_t *bytes)
{
	long long n;
	const char *v;

	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		if (conf_get_int(c, s, label, 0, INT64_MAX, &n) == -1)
			return -1;
		*bytes = (uint64_t)n;
		return 0;
	}
	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (conf_parse_size(v, bytes) == -1) {
		conf_err(c, s, "%s: bad size \"%s\" (want e.g. \"16M\")", label, v);
		return -1;
	}
	return 0;
}

int conf_get_hostport(struct conf_ctx *c, const config_setting_t *s, const char *label,
                      struct conf_addr *out)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (conf_parse_hostport(v, out) == -1) {
		conf_err(c, s,
		         "%s: bad address \"%s\" (want \"host:port\", e.g. \"127.0.0.1:53\" or "
		         "\"[::1]:53\")",
		         label, v);
		return -1;
	}
	return 0;
}

int conf_get_ipv4(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  struct in_addr *out)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (inet_pton(AF_INET, v, out) != 1) {
		conf_err(c, s, "%s: bad IPv4 address \"%s\" (want e.g. \"10.77.0.2\")", label, v);
		return -1;
	}
	return 0;
}

int conf_get_ipv6(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  struct in6_addr *out)
{
	const char *v, *why = NULL;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (inet_pton(AF_INET6, v, out) != 1)
		why = "want e.g. \"fd77::2\"";
	else if (IN6_IS_ADDR_UNSPECIFIED(out))
		why = "the unspecified address is no service's";
	else if (IN6_IS_ADDR_MULTICAST(out))
		why = "a multicast address";
	else if (IN6_IS_ADDR_V4MAPPED(out) || IN6_IS_ADDR_V4COMPAT(out))
		why = "an IPv4 address belongs in \"address\"";
	if (why == NULL)
		return 0;
	conf_err(c, s, "%s: bad IPv6 address \"%s\" (%s)", label, v, why);
	return -1;
}

int conf_get_dns_name(struct conf_ctx *c, const config_setting_t *s, const char *label, char *out)
{
	const char *v, *why;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if ((why = conf_dns_name_check(v, out)) != NULL) {
		conf_err(c, s, "%s: bad DNS name \"%s\" (%s)", label, v, why);
		return -1;
	}
	return 0;
}

int conf_want_group(struct conf_ctx *c, const config_setting_t *s, const char *label)
{
	if (!config_setting_is_group(s)) {
		conf_err(c, s, "%s: want a group { ... }, not %s", label, type_name(s));
		return -1;
	}
	return 0;
}

int conf_get_list(struct conf_ctx *c, const config_setting_t *s, const char *label, bool single_ok,
                  int *n)
{
	if (config_setting_is_list(s) || config_setting_is_array(s)) {
		*n = config_setting_length(s);
		if (*n == 0) {
			conf_err(c, s, "%s: must not be empty", label);
			return -1;
		}
		return 0;
	}
	if (single_ok && config_setting_is_scalar(s)) {
		*n = 1;
		return 0;
	}
	conf_err(c, s, "%s: want a list ( ... ), not %s", label, type_name(s));
	return -1;
}

const config_setting_t *conf_list_elem(const config_setting_t *s, int i)
{
	if (config_setting_is_list(s) || config_setting_is_array(s))
		return config_setting_get_elem(s, (unsigned)i);
	return s;
}
