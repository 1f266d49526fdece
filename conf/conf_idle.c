/*
 * What counts as activity, and the guest's say before an idle action:
 *
 *   idle_ignore = ( "192.0.2.0/24", "10.0.0.5", "/healthz" );
 *   idle_ignore_answer = 200;      # an ignored path, guest asleep: beckon answers
 *   idle_check = "http:/idle";     # asked before on_idle: 200 is yes
 *                                  # ("console:REGEX": yes when its last line matches)
 *   idle_check_interval = "5s";    # a "not now" is asked again this much later
 *   idle_max = "10m";              # idle this long: on_idle runs unasked
 *   idle_notice = "http:/suspend"; # told before an idle suspend
 *   idle_notice_timeout = "5s";    # ... its answer awaited this long at most
 *
 * Checked here: each entry's form, a path needs the proxy (only it reads
 * a request), an answer needs a path, idle_check and idle_notice a port,
 * idle_max a check and more than idle_timeout, idle_notice a suspend.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "conf_int.h"

#define CONF_MAX_IGNORE 64
#define CONF_IGNORE_PATH_MAX 1024

static void ignore_clear(struct conf_service *svc)
{
	for (size_t i = 0; i < svc->nignore_paths; i++)
		free(svc->ignore_paths[i]);
	free(svc->ignore_paths);
	free(svc->ignore_nets);
	svc->ignore_paths = NULL;
	svc->nignore_paths = 0;
	svc->ignore_nets = NULL;
	svc->nignore_nets = 0;
}

void conf_idle_clear(struct conf_service *svc)
{
	ignore_clear(svc);
	free(svc->idle_check);
	free(svc->idle_check_re);
	free(svc->idle_notice);
	svc->idle_check = NULL;
	svc->idle_check_re = NULL;
	svc->idle_notice = NULL;
}

bool conf_idle_dup(struct conf_service *svc)
{
	struct conf_cidr *nets = svc->ignore_nets;
	char **paths = svc->ignore_paths, *check = svc->idle_check, *notice = svc->idle_notice;
	char *re = svc->idle_check_re;
	bool ok = true;

	svc->ignore_nets = NULL;
	svc->ignore_paths = NULL;
	svc->idle_check = NULL;
	svc->idle_notice = NULL;
	svc->idle_check_re = NULL;
	if (nets != NULL &&
	    (svc->ignore_nets = calloc(svc->nignore_nets + 1, sizeof(*nets))) != NULL)
		memcpy(svc->ignore_nets, nets, svc->nignore_nets * sizeof(*nets));
	if (paths != NULL &&
	    (svc->ignore_paths = calloc(svc->nignore_paths + 1, sizeof(*paths))) != NULL)
		for (size_t i = 0; i < svc->nignore_paths; i++)
			ok = (svc->ignore_paths[i] = strdup(paths[i])) != NULL && ok;
	if (check != NULL)
		ok = (svc->idle_check = strdup(check)) != NULL && ok;
	if (notice != NULL)
		ok = (svc->idle_notice = strdup(notice)) != NULL && ok;
	if (re != NULL)
		ok = (svc->idle_check_re = strdup(re)) != NULL && ok;
	/* A list whose array could not be made is none: nothing of it to free. */
	if (nets != NULL && svc->ignore_nets == NULL) {
		svc->nignore_nets = 0;
		ok = false;
	}
	if (paths != NULL && svc->ignore_paths == NULL) {
		svc->nignore_paths = 0;
		ok = false;
	}
	return ok;
}

static bool str_same(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

bool conf_idle_equal(const struct conf_service *a, const struct conf_service *b)
{
	if (a->nignore_nets != b->nignore_nets || a->nignore_paths != b->nignore_paths ||
	    a->ignore_answer != b->ignore_answer || !str_same(a->idle_check, b->idle_check) ||
	    a->idle_check_interval_ms != b->idle_check_interval_ms ||
	    a->idle_max_ms != b->idle_max_ms || !str_same(a->idle_notice, b->idle_notice) ||
	    !str_same(a->idle_check_re, b->idle_check_re) ||
	    a->idle_notice_timeout_ms != b->idle_notice_timeout_ms)
		return false;
	for (size_t i = 0; i < a->nignore_nets; i++)
		if (a->ignore_nets[i].net.s_addr != b->ignore_nets[i].net.s_addr ||
		    a->ignore_nets[i].prefix != b->ignore_nets[i].prefix)
			return false;
	for (size_t i = 0; i < a->nignore_paths; i++)
		if (strcmp(a->ignore_paths[i], b->ignore_paths[i]) != 0)
			return false;
	return true;
}

bool conf_ignored_addr(const struct conf_service *svc, struct in_addr addr)
{
	for (size_t i = 0; i < svc->nignore_nets; i++) {
		const struct conf_cidr *n = &svc->ignore_nets[i];
		uint32_t mask = n->prefix == 0 ? 0 : 0xffffffffu << (32 - n->prefix);

		if ((ntohl(addr.s_addr) & mask) == ntohl(n->net.s_addr))
			return true;
	}
	return false;
}

bool conf_ignored_path(const struct conf_service *svc, const char *path, size_t len)
{
	for (size_t i = 0; i < svc->nignore_paths; i++) {
		size_t n = strlen(svc->ignore_paths[i]);

		if (n <= len && memcmp(path, svc->ignore_paths[i], n) == 0)
			return true;
	}
	return false;
}

/* "/path": visible characters, no query. */
static bool path_valid(const char *s)
{
	if (s[0] != '/' || strlen(s) > CONF_IGNORE_PATH_MAX)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '?' || *s == '#')
			return false;
	return true;
}

/* "A.B.C.D" or "A.B.C.D/N", with no host bits after the prefix. */
static const char *cidr_parse(const char *v, struct conf_cidr *out)
{
	char addr[INET_ADDRSTRLEN], *end;
	const char *slash = strchr(v, '/');
	size_t alen = slash != NULL ? (size_t)(slash - v) : strlen(v);
	long prefix = 32;
	uint32_t mask;

	if (alen == 0 || alen >= sizeof(addr))
		return "bad address";
	memcpy(addr, v, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &out->net) != 1)
		return "bad address";
	if (slash != NULL) {
		prefix = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || prefix < 0 || prefix > 32)
			return "bad prefix (0 to 32)";
	}
	mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
	if ((ntohl(out->net.s_addr) & ~mask) != 0)
		return "host bits set after the prefix";
	out->prefix = (int)prefix;
	return NULL;
}

/* One entry: a client network, or a path. */
static int ignore_one(struct conf_ctx *c, const config_setting_t *s, const char *label,
                      struct conf_service *svc)
{
	const char *v, *why;
	struct conf_cidr n;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (v[0] == '/') {
		if (!path_valid(v)) {
			conf_err(c, s, "%s: bad path \"%s\" (no spaces, \"?\" or \"#\")", label, v);
			return -1;
		}
		svc->ignore_paths[svc->nignore_paths++] = conf_strdup(c, v);
		return 0;
	}
	if ((why = cidr_parse(v, &n)) != NULL) {
		conf_err(c, s,
		         "%s: \"%s\": %s (want a client network \"192.0.2.0/24\", an address, or a "
		         "path \"/healthz\")",
		         label, v, why);
		return -1;
	}
	svc->ignore_nets[svc->nignore_nets++] = n;
	return 0;
}

int conf_get_idle_ignore(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_service *svc)
{
	char buf[CONF_LABEL_MAX];
	int n, rc = 0;

	ignore_clear(svc);
	if (conf_get_list(c, s, label, true, &n) == -1)
		return -1;
	if (n > CONF_MAX_IGNORE) {
		conf_err(c, s, "%s: %d entries, at most %d are allowed", label, n, CONF_MAX_IGNORE);
		return -1;
	}
	svc->ignore_nets = calloc((size_t)n, sizeof(*svc->ignore_nets));
	svc->ignore_paths = calloc((size_t)n, sizeof(*svc->ignore_paths));
	if (svc->ignore_nets == NULL || svc->ignore_paths == NULL) {
		c->oom = true;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s[%d]", label, i);
		if (ignore_one(c, conf_list_elem(s, i), buf, svc) == -1)
			rc = -1;
	}
	return rc;
}

/* "http:/PATH" into *PATH (the path), "none" into NULL; WANT says what is right. */
static int http_path(struct conf_ctx *c, const config_setting_t *s, const char *label, char **path,
                     const char *want)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	free(*path);
	*path = NULL;
	if (strcmp(v, "none") == 0)
		return 0;
	if (strncmp(v, "http:", 5) != 0 || !path_valid(v + 5)) {
		conf_err(c, s, "%s: bad value \"%s\" (want %s or \"none\")", label, v, want);
		return -1;
	}
	conf_set_str(c, path, v + 5);
	return 0;
}

/* "console:REGEX": the regular expression compiles (POSIX extended). */
static int console_re(struct conf_ctx *c, const config_setting_t *s, const char *label,
                      const char *re, char **out)
{
	char msg[128];
	regex_t r;
	int err;

	if (re[0] == '\0') {
		conf_err(c, s, "%s: \"console:\" needs a regular expression", label);
		return -1;
	}
	if ((err = regcomp(&r, re, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(err, &r, msg, sizeof(msg));
		conf_err(c, s, "%s: bad regular expression \"%s\": %s", label, re, msg);
		return -1;
	}
	regfree(&r);
	conf_set_str(c, out, re);
	return 0;
}

int conf_get_idle_check(struct conf_ctx *c, const config_setting_t *s, const char *label,
                        struct conf_service *svc)
{
	const char *v;

	free(svc->idle_check_re);
	svc->idle_check_re = NULL;
	if (config_setting_type(s) == CONFIG_TYPE_STRING &&
	    strncmp((v = config_setting_get_string(s)), "console:", 8) == 0) {
		free(svc->idle_check);
		svc->idle_check = NULL;
		return console_re(c, s, label, v + 8, &svc->idle_check_re);
	}
	return http_path(c, s, label, &svc->idle_check, "\"http:/PATH\", \"console:REGEX\"");
}

int conf_get_idle_notice(struct conf_ctx *c, const config_setting_t *s, const char *label,
                         struct conf_service *svc)
{
	return http_path(c, s, label, &svc->idle_notice, "\"http:/PATH\"");
}

/* Where the service set key K, else the service itself. */
static const config_setting_t *idle_where(const struct conf_build *b, enum conf_skey k)
{
	for (const config_setting_t *s = b->src[k]; s != NULL; s = config_setting_parent(s))
		if (s == b->group)
			return b->src[k];
	return b->group;
}

static bool idle_set(const struct conf_build *b, enum conf_skey k)
{
	return b->src[k] != NULL && !b->bad[k];
}

void conf_check_idle(struct conf_ctx *c, const struct conf *conf, const struct conf_build *b)
{
	const struct conf_service *s = &b->svc;

	/* Only the proxy reads a request: the SYN hold and "none" pass packets on. */
	if (idle_set(b, CONF_SK_IDLE_IGNORE) && s->nignore_paths > 0 &&
	    conf->hold != CONF_HOLD_PROXY)
		conf_err(c, idle_where(b, CONF_SK_IDLE_IGNORE),
		         "%s.idle_ignore: a path (\"%s\") needs network.hold \"proxy\" (the proxy "
		         "reads each request's path), not \"%s\"",
		         b->label, s->ignore_paths[0], conf_hold_name(conf->hold));
	if (idle_set(b, CONF_SK_IDLE_IGNORE_ANSWER) && s->ignore_answer != 0 &&
	    !b->bad[CONF_SK_IDLE_IGNORE] && s->nignore_paths == 0)
		conf_err(c, idle_where(b, CONF_SK_IDLE_IGNORE_ANSWER),
		         "%s.idle_ignore_answer: answers a path of idle_ignore, and it lists none",
		         b->label);
	if (idle_set(b, CONF_SK_IDLE_CHECK) && s->idle_check != NULL && s->nports == 0 &&
	    !b->bad[CONF_SK_PORTS])
		conf_err(
		    c, idle_where(b, CONF_SK_IDLE_CHECK),
		    "%s.idle_check: asks the guest on its first port, but \"ports\" is not set",
		    b->label);
	if (idle_set(b, CONF_SK_IDLE_NOTICE) && s->idle_notice != NULL &&
	    !b->bad[CONF_SK_ON_IDLE] && s->on_idle != CONF_IDLE_SUSPEND)
		conf_err(c, idle_where(b, CONF_SK_IDLE_NOTICE),
		         "%s.idle_notice: is sent before a suspend, and on_idle is \"%s\"",
		         b->label, conf_on_idle_name(s->on_idle));
	else if (idle_set(b, CONF_SK_IDLE_NOTICE) && s->idle_notice != NULL && s->nports == 0 &&
	         !b->bad[CONF_SK_PORTS])
		conf_err(
		    c, idle_where(b, CONF_SK_IDLE_NOTICE),
		    "%s.idle_notice: tells the guest on its first port, but \"ports\" is not set",
		    b->label);
	if (!idle_set(b, CONF_SK_IDLE_MAX) || s->idle_max_ms == 0)
		return;
	if (s->idle_check == NULL && s->idle_check_re == NULL && !b->bad[CONF_SK_IDLE_CHECK])
		conf_err(c, idle_where(b, CONF_SK_IDLE_MAX),
		         "%s.idle_max: bounds how long idle_check may say \"not now\", and "
		         "idle_check is not set",
		         b->label);
	else if (!b->bad[CONF_SK_IDLE_TIMEOUT] &&
	         (s->idle_timeout_ms == 0 || s->idle_max_ms <= s->idle_timeout_ms))
		conf_err(c, idle_where(b, CONF_SK_IDLE_MAX),
		         "%s.idle_max: must be more than idle_timeout (%llu ms)", b->label,
		         (unsigned long long)s->idle_timeout_ms);
}
