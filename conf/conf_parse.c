/* String parsers with no libconfig in sight: durations, sizes, addresses, names. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* Leading decimal digits of S into *V; the rest in *END. -1 on none or overflow. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return -1;
	*v = n;
	*end = p;
	return 0;
}

static int mul_checked(uint64_t n, uint64_t mul, uint64_t *out)
{
	if (mul != 0 && n > UINT64_MAX / mul)
		return -1;
	*out = n * mul;
	return 0;
}

int conf_parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	const char *unit;
	uint64_t n;

	if (s == NULL || parse_digits(s, &n, &unit) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(unit, units[i].unit) == 0)
			return mul_checked(n, units[i].ms, ms);
	return -1;
}

int conf_parse_size(const char *s, uint64_t *bytes)
{
	const char *unit;
	uint64_t n, mul;

	if (s == NULL || parse_digits(s, &n, &unit) == -1)
		return -1;
	switch (toupper((unsigned char)unit[0])) {
	case '\0':
		mul = 1;
		break;
	case 'K':
		mul = 1ULL << 10;
		break;
	case 'M':
		mul = 1ULL << 20;
		break;
	case 'G':
		mul = 1ULL << 30;
		break;
	case 'T':
		mul = 1ULL << 40;
		break;
	default:
		return -1;
	}
	if (unit[0] != '\0' && unit[1] != '\0')
		return -1;
	return mul_checked(n, mul, bytes);
}

static int parse_port(const char *s, uint16_t *port)
{
	const char *end;
	uint64_t n;

	if (strlen(s) > 5 || parse_digits(s, &n, &end) == -1 || *end != '\0')
		return -1;
	if (n < 1 || n > 65535)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

static int hostport_v6(const char *s, struct conf_addr *out)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	const char *close = strchr(s, ']');
	char host[INET6_ADDRSTRLEN];
	size_t len;
	uint16_t port;

	if (close == NULL || close[1] != ':')
		return -1;
	len = (size_t)(close - (s + 1));
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s + 1, len);
	host[len] = '\0';
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 || parse_port(close + 2, &port) == -1)
		return -1;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	out->len = sizeof(*sin6);
	return 0;
}

static int hostport_v4(const char *s, struct conf_addr *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	const char *colon = strchr(s, ':');
	char host[INET_ADDRSTRLEN];
	size_t len;
	uint16_t port;

	if (colon == NULL)
		return -1;
	len = (size_t)(colon - s);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 || parse_port(colon + 1, &port) == -1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	out->len = sizeof(*sin);
	return 0;
}

int conf_parse_hostport(const char *s, struct conf_addr *out)
{
	struct conf_addr a;
	int rc;

	memset(&a, 0, sizeof(a));
	if (s == NULL || strlen(s) >= sizeof(a.text))
		return -1;
	rc = s[0] == '[' ? hostport_v6(s, &a) : hostport_v4(s, &a);
	if (rc == -1)
		return -1;
	strcpy(a.text, s);
	*out = a;
	return 0;
}

int conf_parse_cidr(const char *s, struct in_addr *addr, int *prefix)
{
	char host[INET_ADDRSTRLEN];
	const char *slash, *end;
	uint64_t n;
	size_t len;

	if (s == NULL || (slash = strchr(s, '/')) == NULL)
		return -1;
	len = (size_t)(slash - s);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, addr) != 1)
		return -1;
	if (strlen(slash + 1) > 2 || parse_digits(slash + 1, &n, &end) == -1 || *end != '\0' ||
	    n > 32)
		return -1;
	*prefix = (int)n;
	return 0;
}

static bool ldh(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-';
}

/* Why the label at S of LEN bytes is bad, or NULL. */
static const char *label_check(const char *s, size_t len)
{
	if (len == 0)
		return "empty label";
	if (len > 63)
		return "label longer than 63 characters";
	if (s[0] == '-' || s[len - 1] == '-')
		return "label begins or ends with a hyphen";
	for (size_t i = 0; i < len; i++)
		if (!ldh(s[i]))
			return "only letters, digits, hyphens and dots are allowed";
	return NULL;
}

const char *conf_dns_name_check(const char *s, char *out)
{
	const char *why, *p, *dot;
	size_t len = s == NULL ? 0 : strlen(s);

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty name";
	if (len > CONF_DNS_NAME_MAX)
		return "longer than 253 characters";
	if (s[len - 1] == '.')
		return "empty label";
	for (p = s; p < s + len; p = dot + 1) {
		dot = memchr(p, '.', (size_t)(s + len - p));
		if (dot == NULL)
			dot = s + len;
		if ((why = label_check(p, (size_t)(dot - p))) != NULL)
			return why;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[len] = '\0';
	return NULL;
}

int conf_parse_dns_name(const char *s, char *out)
{
	return conf_dns_name_check(s, out) == NULL ? 0 : -1;
}

bool conf_dns_in_zone(const char *name, const char *zone)
{
	size_t nl = strlen(name), zl = strlen(zone);

	if (nl == zl)
		return strcmp(name, zone) == 0;
	return nl > zl && name[nl - zl - 1] == '.' && strcmp(name + nl - zl, zone) == 0;
}

bool conf_service_name_valid(const char *s)
{
	size_t len = s == NULL ? 0 : strlen(s);

	if (len == 0 || len > CONF_SERVICE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}
