/*
 * config.c: settings from the kernel command line, e.g.
 * "ip=10.77.0.2/24 gw=10.77.0.1 name=www port=80".  Words we do not know
 * (QEMU and Firecracker add their own) are skipped; a bad value keeps the
 * default and says so on the console.
 */
#include "console.h"
#include "net.h"

struct net_config net_cfg = {
    .ip = 0x0a00020f, /* 10.0.2.15: QEMU user networking */
    .mask = 0xffffff00,
    .gw = 0x0a000202, /* 10.0.2.2 */
    .port = 80,
    .name = "hello",
    .name_len = 5,
};

/* Parse "a.b.c.d" from [*p, end); advances *p. */
static bool config_ipv4(const char **p, const char *end, uint32_t *out)
{
	uint32_t ip = 0;
	int i;

	for (i = 0; i < 4; i++) {
		int64_t v = lib_atou(p, end);
		if (v < 0 || v > 255)
			return false;
		ip = ip << 8 | (uint32_t)v;
		if (i < 3 && (*p >= end || *(*p)++ != '.'))
			return false;
	}
	*out = ip;
	return true;
}

static bool config_ip(const char *v, const char *end)
{
	uint32_t ip;
	int64_t bits = 24;

	if (!config_ipv4(&v, end, &ip))
		return false;
	if (v < end && *v == '/') {
		v++;
		bits = lib_atou(&v, end);
		if (bits < 1 || bits > 30)
			return false;
	}
	if (v != end)
		return false;
	net_cfg.ip = ip;
	net_cfg.mask = 0xffffffffu << (32 - bits);
	return true;
}

static bool config_name(const char *v, const char *end)
{
	size_t n = (size_t)(end - v), i;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	memcpy(net_cfg.name, v, n);
	net_cfg.name[n] = '\0';
	net_cfg.name_len = n;
	return true;
}

static bool config_word(const char *w, const char *end)
{
	const char *v = w + 3;
	int64_t port;
	uint32_t gw;

	if (end - w > 3 && !memcmp(w, "ip=", 3))
		return config_ip(v, end);
	if (end - w > 3 && !memcmp(w, "gw=", 3)) {
		if (!config_ipv4(&v, end, &gw) || v != end)
			return false;
		net_cfg.gw = gw;
		return true;
	}
	if (end - w > 5 && !memcmp(w, "name=", 5))
		return config_name(w + 5, end);
	if (end - w > 5 && !memcmp(w, "port=", 5)) {
		v = w + 5;
		port = lib_atou(&v, end);
		if (port < 1 || port > 65535 || v != end)
			return false;
		net_cfg.port = (uint16_t)port;
		return true;
	}
	return true; /* not ours */
}

void net_config_parse(const char *cmdline)
{
	const char *p = cmdline, *w;
	char word[64];
	size_t n;

	while (p && *p) {
		while (*p == ' ')
			p++;
		for (w = p; *p && *p != ' '; p++)
			;
		if (p > w && !config_word(w, p)) {
			n = MIN((size_t)(p - w), sizeof(word) - 1);
			memcpy(word, w, n);
			word[n] = '\0';
			console_printf("bad option %s ignored\n", word);
		}
	}
}
