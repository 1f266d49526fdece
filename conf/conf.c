/*
 * conf_load: read the file with libconfig, walk every key, check it, and
 * report every error found (not only the first) as FILE:LINE: message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf_int.h"

static struct conf *conf_defaults(struct conf_ctx *c, const char *path)
{
	struct conf *conf = calloc(1, sizeof(*conf));

	if (conf == NULL) {
		c->oom = true;
		return NULL;
	}
	conf->path = conf_strdup(c, path);
	conf->state_dir = conf_strdup(c, "/var/lib/beckon");
	conf->control_socket = conf_strdup(c, "/run/beckon.sock");
	conf->has_metrics = conf_parse_hostport("127.0.0.1:9153", &conf->metrics_listen) == 0;
	if (conf_parse_hostport("127.0.0.1:5353", &conf->dns_listen[0]) == 0)
		conf->ndns_listen = 1;
	conf->ttl = 30;
	conf_dns_limits_defaults(conf);
	conf->net_mode = CONF_NET_BRIDGE;
	conf->bridge = conf_strdup(c, "beckon0");
	conf->subnet.s_addr = htonl(0x0a4d0000); /* 10.77.0.0 */
	conf->prefix = 24;
	conf->hold = CONF_HOLD_SYN;
	conf->max_held_per_service = 1024;
	conf->max_held = 8192;
	conf->hold_buffer = 64 * 1024;
	conf->hold_timeout_ms = 10000;
	conf->bypass = true;
	conf->boot_rate = 50;
	conf->boot_burst = 100;
	conf->client_boot_rate = 10;
	conf->client_boot_burst = 20;
	conf->max_booting = conf_default_max_booting();
	conf->nice = CONF_NICE_DEFAULT;
	return conf;
}

static void load_path_key(struct conf_ctx *c, const config_setting_t *s, const char *label,
                          size_t max, char **dst)
{
	const char *v;

	if (conf_get_string(c, s, label, &v) == -1)
		return;
	if (v[0] == '\0')
		conf_err(c, s, "%s: must not be empty", label);
	else if (strlen(v) > max)
		conf_err(c, s, "%s: longer than %zu characters", label, max);
	else
		conf_set_str(c, dst, v);
}

static void load_metrics(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	const char *v;

	if (conf_get_string(c, s, "metrics_listen", &v) == -1)
		return;
	conf->has_metrics = v[0] != '\0';
	if (conf->has_metrics)
		conf_get_hostport(c, s, "metrics_listen", &conf->metrics_listen);
}

/* The user beckond becomes: known here, so that -n finds a typo too. */
static void load_user(struct conf_ctx *c, struct conf *conf, const config_setting_t *s)
{
	const struct passwd *pw;
	const char *v;

	if (conf_get_string(c, s, "user", &v) == -1)
		return;
	if ((pw = getpwnam(v)) == NULL) {
		conf_err(c, s, "user: no user \"%s\" on this host", v);
		return;
	}
	conf_set_str(c, &conf->user, v);
	conf->uid = pw->pw_uid;
	conf->gid = pw->pw_gid;
}

/* Everything but the services, which wait until the defaults are known. */
static void load_globals(struct conf_ctx *c, struct conf *conf, const config_setting_t *root,
                         const config_setting_t **defaults, const config_setting_t **services)
{
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *key = config_setting_name(s);

		if (strcmp(key, "state_dir") == 0)
			load_path_key(c, s, key, 4000, &conf->state_dir);
		else if (strcmp(key, "control_socket") == 0)
			load_path_key(c, s, key, sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
			              &conf->control_socket);
		else if (strcmp(key, "metrics_listen") == 0)
			load_metrics(c, conf, s);
		else if (strcmp(key, "user") == 0)
			load_user(c, conf, s);
		else if (strcmp(key, "dns") == 0)
			conf_load_dns(c, conf, s);
		else if (strcmp(key, "network") == 0)
			conf_load_network(c, conf, s);
		else if (strcmp(key, "hosts") == 0)
			conf_load_hosts(c, conf, s);
		else if (conf_is_limit_key(key))
			conf_load_limit(c, conf, s);
		else if (strcmp(key, "defaults") == 0)
			*defaults = conf_want_group(c, s, key) == 0 ? s : NULL;
		else if (strcmp(key, "services") == 0)
			*services = s;
		else
			conf_err(c, s, "unknown key \"%s\"", key);
	}
}

/* The checked entries go to conf->services, and those with routes to conf->fronts. */
static void keep_services(struct conf_ctx *c, struct conf *conf, struct conf_build *b, size_t n)
{
	conf->services = n > 0 ? calloc(n, sizeof(*conf->services)) : NULL;
	conf->fronts = n > 0 ? calloc(n, sizeof(*conf->fronts)) : NULL;
	if (n > 0 && (conf->services == NULL || conf->fronts == NULL))
		c->oom = true;
	for (size_t i = 0; i < n; i++) {
		if (conf->services != NULL && conf->fronts != NULL) {
			b[i].svc.line = (int)config_setting_source_line(b[i].group);
			if (b[i].src[CONF_SK_ROUTES] != NULL)
				conf->fronts[conf->nfronts++] = b[i].svc;
			else
				conf->services[conf->nservices++] = b[i].svc;
			memset(&b[i].svc, 0, sizeof(b[i].svc));
		}
		conf_build_clear(&b[i]);
	}
}

/* The services list: each one the defaults, overridden by its own group. */
static void load_services(struct conf_ctx *c, struct conf *conf, const config_setting_t *list,
                          const struct conf_build *def)
{
	struct conf_build *b = NULL;
	size_t n = 0;

	if (list != NULL && !config_setting_is_list(list) &&
	    !(config_setting_is_array(list) && config_setting_length(list) == 0)) {
		conf_err(c, list, "services: want a list of groups ( { ... }, ... )");
		list = NULL;
	}
	if (list != NULL)
		n = (size_t)config_setting_length(list);
	if (n > 0 && (b = calloc(n, sizeof(*b))) == NULL) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);

		conf_build_copy(c, &b[i], def);
		b[i].group = g;
		snprintf(b[i].label, sizeof(b[i].label), "services[%zu]", i);
		if (conf_want_group(c, g, b[i].label) == 0)
			conf_build_apply(c, &b[i], g, b[i].label);
		else
			memset(b[i].bad, 1, sizeof(b[i].bad)); /* nothing more to say */
	}
	conf_check_services(c, conf, b, n);
	conf_check_hosts(c, conf, b, n);
	conf_check_fronts(c, conf, b, n);
	keep_services(c, conf, b, n);
	free(b);
}

static void load_root(struct conf_ctx *c, struct conf *conf, const config_setting_t *root)
{
	const config_setting_t *defaults = NULL, *services = NULL;
	struct conf_build def;

	c->mode_ok = c->subnet_ok = true;
	load_globals(c, conf, root, &defaults, &services);
	/* Guests on other hosts are held through the proxy: the SYN hold sees only ours. */
	if (!c->hold_set)
		conf->hold = conf->net_mode == CONF_NET_USER || conf->nhosts > 0 ? CONF_HOLD_PROXY
		                                                                 : CONF_HOLD_SYN;
	conf_check_dns(c, conf);
	conf_check_hold(c, conf);
	conf_build_init(c, &def);
	if (defaults != NULL)
		conf_build_apply(c, &def, defaults, "defaults");
	/* Every entry would be a front, with the same routes: surely a mistake. */
	if (def.src[CONF_SK_ROUTES] != NULL) {
		conf_err(c, def.src[CONF_SK_ROUTES],
		         "defaults.routes: routes belong to a front's own entry in services");
		conf_routes_clear(&def.svc);
		def.src[CONF_SK_ROUTES] = NULL;
	}
	load_services(c, conf, services, &def);
	conf_build_clear(&def);
}

/* The directory of PATH, where @include looks; NULL for the cwd. */
static char *include_dir(struct conf_ctx *c, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return NULL;
	if (slash == path)
		return conf_strdup(c, "/");
	char *dir = strndup(path, (size_t)(slash - path));

	if (dir == NULL)
		c->oom = true;
	return dir;
}

/* libconfig says only "cannot open include file": name the file and say why. */
static void include_error(struct conf_ctx *c, const config_t *cfg)
{
	char *line = conf_source_line(c, config_error_file(cfg), (unsigned)config_error_line(cfg));
	char *name = line == NULL ? NULL : strstr(line, "@include");
	char *end, *path = NULL;
	FILE *f = NULL;

	if (name != NULL && (name = strchr(name, '"')) != NULL &&
	    (end = strchr(++name, '"')) != NULL) {
		*end = '\0';
		if (c->incdir == NULL || name[0] == '/')
			path = strdup(name);
		else if (asprintf(&path, "%s/%s", c->incdir, name) == -1)
			path = NULL;
	}
	if (path != NULL && name[0] == '/' && c->incdir != NULL)
		conf_err_at(c, config_error_file(cfg), config_error_line(cfg),
		            "cannot open include file \"%s\": only paths relative to %s/ work here",
		            name, c->incdir);
	else if (path != NULL && (f = fopen(path, "r")) == NULL)
		conf_err_at(c, config_error_file(cfg), config_error_line(cfg),
		            "cannot open include file \"%s\": %s", path, strerror(errno));
	else
		conf_err_at(c, config_error_file(cfg), config_error_line(cfg), "%s",
		            config_error_text(cfg));
	if (f != NULL)
		fclose(f);
	free(path);
	free(line);
}

static int read_file(struct conf_ctx *c, config_t *cfg)
{
	struct stat st;

	if (stat(c->path, &st) == -1 || access(c->path, R_OK) == -1) {
		conf_err_at(c, c->path, 0, "cannot read: %s", strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		conf_err_at(c, c->path, 0, "cannot read: %s", strerror(EISDIR));
		return -1;
	}
	c->incdir = include_dir(c, c->path);
	if (c->incdir != NULL) /* libconfig 1.5 cannot take NULL here */
		config_set_include_dir(cfg, c->incdir);
	if (config_read_file(cfg, c->path) == CONFIG_TRUE)
		return 0;
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
		conf_err_at(c, c->path, 0, "cannot read: %s", config_error_text(cfg));
	else if (strcmp(config_error_text(cfg), "cannot open include file") == 0)
		include_error(c, cfg);
	else
		conf_err_at(c, config_error_file(cfg), config_error_line(cfg), "%s",
		            config_error_text(cfg));
	return -1;
}

int conf_load(const char *path, struct conf **out, FILE *errs)
{
	struct conf_ctx c;
	struct conf *conf = NULL;
	config_t cfg;

	memset(&c, 0, sizeof(c));
	c.errs = errs;
	c.path = path;
	*out = NULL;
	config_init(&cfg);
	if (read_file(&c, &cfg) == 0 && (conf = conf_defaults(&c, path)) != NULL)
		load_root(&c, conf, config_root_setting(&cfg));
	config_destroy(&cfg);
	free(c.incdir);
	if (conf_err_flush(&c) > 0) {
		conf_free(conf);
		return -1;
	}
	conf->loaded_at = time(NULL);
	*out = conf;
	return 0;
}

/*
 * libconfig 1.5 leaks the string token at which a syntax error stops (its
 * parser frees no token values on error). LeakSanitizer asks this hook what
 * not to report; without the sanitizer nothing calls it. The name is the
 * sanitizer's, hence no conf_ prefix.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

void conf_free(struct conf *conf)
{
	if (conf == NULL)
		return;
	free(conf->path);
	free(conf->state_dir);
	free(conf->control_socket);
	free(conf->user);
	free(conf->zone);
	for (size_t i = 0; i < conf->nns; i++)
		free(conf->ns[i].name);
	free(conf->bridge);
	for (size_t i = 0; i < conf->nservices; i++)
		conf_service_clear(&conf->services[i]);
	free(conf->services);
	for (size_t i = 0; i < conf->nfronts; i++)
		conf_service_clear(&conf->fronts[i]);
	free(conf->fronts);
	for (size_t i = 0; i < conf->nhosts; i++)
		conf_host_clear(&conf->hosts[i]);
	free(conf->hosts);
	free(conf);
}
