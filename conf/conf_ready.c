/* The ready key: "tcp", "http:/path", "console:REGEX" or "delay:100ms"; the fail key. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* RE compiles as a POSIX extended regular expression; else an error. */
static int ready_regex(struct conf_ctx *c, const config_setting_t *s, const char *label,
                       const char *re)
{
	regex_t r;
	char msg[128];
	int err;

	if ((err = regcomp(&r, re, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(err, &r, msg, sizeof(msg));
		conf_err(c, s, "%s: bad regular expression \"%s\": %s", label, re, msg);
		return -1;
	}
	regfree(&r);
	return 0;
}

/* "tcp", "http:/path", "console:REGEX", "delay:100ms". */
static int ready_form(struct conf_ctx *c, struct conf_service *svc, const config_setting_t *s,
                      const char *label, const char *v)
{

	if (strncmp(v, "http:", 5) == 0) {
		for (const char *p = v + 5; *p; p++)
			if (*p <= ' ' || *p >= 127)
				goto bad_path;
		if (v[5] != '/')
			goto bad_path;
		svc->ready = CONF_READY_HTTP;
		conf_set_str(c, &svc->ready_arg, v + 5);
		return 0;
	}
	if (strncmp(v, "delay:", 6) == 0) {
		if (conf_parse_duration(v + 6, &svc->ready_delay_ms) == -1) {
			conf_err(c, s,
			         "%s: bad duration \"%s\" in \"%s\" (want e.g. \"delay:100ms\")",
			         label, v + 6, v);
			return -1;
		}
		svc->ready = CONF_READY_DELAY;
		return 0;
	}
	/* console: */
	if (v[8] == '\0') {
		conf_err(c, s, "%s: \"console:\" needs a regular expression", label);
		return -1;
	}
	if (ready_regex(c, s, label, v + 8) == -1)
		return -1;
	svc->ready = CONF_READY_CONSOLE;
	conf_set_str(c, &svc->ready_arg, v + 8);
	return 0;
bad_path:
	conf_err(c, s, "%s: bad HTTP path in \"%s\" (want e.g. \"http:/health\")", label, v);
	return -1;
}

int conf_get_fail(struct conf_ctx *c, const config_setting_t *s, const char *label,
                  struct conf_service *svc)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	if (strncmp(v, "console:", 8) != 0 || v[8] == '\0') {
		conf_err(c, s, "%s: bad value \"%s\" (want \"console:REGEX\")", label, v);
		return -1;
	}
	if (ready_regex(c, s, label, v + 8) == -1)
		return -1;
	conf_set_str(c, &svc->fail_re, v + 8);
	return 0;
}

int conf_get_ready(struct conf_ctx *c, const config_setting_t *s, const char *label,
                   struct conf_service *svc)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return -1;
	free(svc->ready_arg);
	svc->ready_arg = NULL;
	svc->ready_delay_ms = 0;
	if (strcmp(v, "tcp") == 0) {
		svc->ready = CONF_READY_TCP;
		return 0;
	}
	if (strncmp(v, "http:", 5) == 0 || strncmp(v, "delay:", 6) == 0 ||
	    strncmp(v, "console:", 8) == 0)
		return ready_form(c, svc, s, label, v);
	conf_err(c, s,
	         "%s: bad value \"%s\" (want \"tcp\", \"http:/PATH\", \"console:REGEX\" or "
	         "\"delay:DURATION\")",
	         label, v);
	return -1;
}
