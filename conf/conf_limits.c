/*
 * Capacity and boot rate limits: max_instances, max_memory, wake_queue,
 * boot_rate, max_booting; beckond's own nice; the VMM pool.
 */
#include <string.h>
#include <unistd.h>

#include "conf_int.h"

#define CONF_MAX_RATE 1000000
#define CONF_MAX_WAKE_QUEUE 100000
#define CONF_MAX_BOOTING 100000
#define CONF_MAX_POOL 64

unsigned conf_default_max_booting(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return (unsigned)(n > 0 ? n : 1) * CONF_BOOTING_PER_CPU;
}

bool conf_is_limit_key(const char *key)
{
	return strcmp(key, "max_instances") == 0 || strcmp(key, "max_memory") == 0 ||
	       strcmp(key, "wake_queue") == 0 || strcmp(key, "boot_rate") == 0 ||
	       strcmp(key, "max_booting") == 0 || strcmp(key, "nice") == 0 ||
	       strcmp(key, "pool") == 0;
}

static void conf_load_rate_key(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	const char *key = config_setting_name(s);
	char label[128];
	uint32_t *dst = NULL;
	long long n;

	if (strcmp(key, "rate") == 0)
		dst = &conf->boot_rate;
	else if (strcmp(key, "burst") == 0)
		dst = &conf->boot_burst;
	else if (strcmp(key, "client_rate") == 0)
		dst = &conf->client_boot_rate;
	else if (strcmp(key, "client_burst") == 0)
		dst = &conf->client_boot_burst;
	if (dst == NULL) {
		conf_err(c, s, "unknown key \"boot_rate.%s\"", key);
		return;
	}
	if (conf_get_int(c, s, conf_label(label, "boot_rate", key), 0, CONF_MAX_RATE, &n) == 0)
		*dst = (uint32_t)n;
}

static void conf_load_boot_rate(struct conf_ctx *c, struct conf *conf, const config_setting_t *g)
{
	if (conf_want_group(c, g, "boot_rate") == -1)
		return;
	for (int i = 0; i < config_setting_length(g); i++)
		conf_load_rate_key(c, conf, config_setting_get_elem(g, (unsigned)i));
	/* A burst below one would refuse every boot. */
	if (conf->boot_rate > 0 && conf->boot_burst == 0)
		conf_err(c, g, "boot_rate.burst: must be at least 1 when rate is set");
	if (conf->client_boot_rate > 0 && conf->client_boot_burst == 0)
		conf_err(c, g,
		         "boot_rate.client_burst: must be at least 1 when client_rate is set");
}

/* pool = { size = N; }: generic VMMs started ahead, per shape, that cold starts restore into. */
static void conf_load_pool(struct conf_ctx *c, struct conf *conf, const config_setting_t *g)
{
	const config_setting_t *s;
	const char *key;
	long long n;

	if (conf_want_group(c, g, "pool") == -1)
		return;
	for (int i = 0; i < config_setting_length(g); i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		key = config_setting_name(s);
		if (strcmp(key, "size") != 0)
			conf_err(c, s, "unknown key \"pool.%s\"", key);
		else if (conf_get_int(c, s, "pool.size", 0, CONF_MAX_POOL, &n) == 0)
			conf->pool_size = (unsigned)n;
	}
}

void conf_load_limit(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	const char *key = config_setting_name(s);
	long long n;

	if (strcmp(key, "max_instances") == 0) {
		if (conf_get_int(c, s, key, 0, 1000000, &n) == 0)
			conf->max_instances = (uint64_t)n;
	} else if (strcmp(key, "max_memory") == 0) {
		conf_get_size(c, s, key, &conf->max_memory);
	} else if (strcmp(key, "wake_queue") == 0) {
		if (conf_get_int(c, s, key, 0, CONF_MAX_WAKE_QUEUE, &n) == 0)
			conf->wake_queue = (unsigned)n;
	} else if (strcmp(key, "max_booting") == 0) {
		if (conf_get_int(c, s, key, 0, CONF_MAX_BOOTING, &n) == 0)
			conf->max_booting = (unsigned)n;
	} else if (strcmp(key, "nice") == 0) {
		/* Above 0 it would put beckond behind its own guests. */
		if (conf_get_int(c, s, key, -20, 0, &n) == 0)
			conf->nice = (int)n;
	} else if (strcmp(key, "pool") == 0) {
		conf_load_pool(c, conf, s);
	} else {
		conf_load_boot_rate(c, conf, s);
	}
}
