/*
 * beckonctl: talk to a running beckond over its control socket.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define CTL_DEFAULT_SOCKET "/run/beckon.sock"
/* Where beckond.service's config puts it (its RuntimeDirectory), tried
 * when the default is not there. */
#define CTL_SERVICE_SOCKET "/run/beckon/beckon.sock"
#define CTL_MAX_REPLY (1 << 20)

static void ctl_usage(void)
{
	fprintf(stderr, "usage: beckonctl [-s SOCKET] [--json] COMMAND [SERVICE]\n"
	                "commands: status, list, hosts, start, stop, pause, resume, reload\n");
	exit(2);
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "beckonctl: %s: path too long\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "beckonctl: cannot reach beckond at %s: %s\n", path,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int ctl_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send one request line, read the one reply line. */
static json_t *ctl_request(const char *path, const char *cmd, const char *svc)
{
	json_t *req = svc ? json_pack("{s:s, s:s}", "cmd", cmd, "service", svc)
	                  : json_pack("{s:s}", "cmd", cmd);
	char *text = json_dumps(req, JSON_COMPACT), *buf = malloc(CTL_MAX_REPLY);
	json_t *reply = NULL;
	json_error_t jerr;
	size_t used = 0;
	int fd = ctl_connect(path);

	json_decref(req);
	if (fd < 0 || !text || !buf)
		goto done;
	if (ctl_write_all(fd, text, strlen(text)) < 0 || ctl_write_all(fd, "\n", 1) < 0)
		goto done;
	while (used < CTL_MAX_REPLY - 1 && !memchr(buf, '\n', used)) {
		ssize_t n = read(fd, buf + used, CTL_MAX_REPLY - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	reply = json_loadb(buf, used, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!reply)
		fprintf(stderr, "beckonctl: bad reply from beckond: %s\n", jerr.text);
done:
	if (fd >= 0)
		close(fd);
	free(text);
	free(buf);
	return reply;
}

static void ctl_duration(char *out, size_t len, long long ms)
{
	long long s = ms / 1000;

	if (ms <= 0)
		snprintf(out, len, "-");
	else if (s < 60)
		snprintf(out, len, "%lld.%01llds", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(out, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, len, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
}

static void ctl_print_row(json_t *svc)
{
	const char *name = "", *state = "", *addr = "", *host = "", *addr6 = NULL, *started = "";
	json_int_t up = 0, idle = -1, last = 0;
	int boots = 0;
	char upbuf[32], idlebuf[32] = "-", lastbuf[48] = "never", addrbuf[64];
	time_t when;
	struct tm tm;

	json_unpack(svc, "{s:s, s:s, s:s, s:I, s:i, s:I, s:I}", "name", &name, "state", &state,
	            "address", &addr, "uptime_ms", &up, "boots", &boots, "idle_ms", &idle,
	            "last_activity", &last);
	json_unpack(svc, "{s:s}", "host", &host);
	/* A service with address6: both, in the one column ("10.77.0.2,fd77::2"). */
	if (json_unpack(svc, "{s:s}", "address6", &addr6) == 0) {
		snprintf(addrbuf, sizeof(addrbuf), "%s,%s", addr, addr6);
		addr = addrbuf;
	}
	json_unpack(svc, "{s:s}", "started", &started);
	ctl_duration(upbuf, sizeof(upbuf), up);
	if (last > 0) {
		/* Idle: how long since the last query, connection or traffic; and when. */
		ctl_duration(idlebuf, sizeof(idlebuf), idle > 0 ? idle : 1);
		when = (time_t)last;
		if (localtime_r(&when, &tm) != NULL)
			strftime(lastbuf, sizeof(lastbuf), "%Y-%m-%d %H:%M:%S", &tm);
	}
	printf("%-20s %-10s %-16s %-10s %-9s %5d  %-8s %-9s %s\n", name, state, addr,
	       *host ? host : "-", upbuf, boots, *started ? started : "-", idlebuf, lastbuf);
}

static void ctl_print_list(json_t *reply)
{
	json_t *arr = json_object_get(reply, "services"), *svc;
	size_t i;

	printf("%-20s %-10s %-16s %-10s %-9s %5s  %-8s %-9s %s\n", "NAME", "STATE", "ADDRESS",
	       "HOST", "UPTIME", "BOOTS", "STARTED", "IDLE", "LAST ACTIVITY");
	json_array_foreach(arr, i, svc) ctl_print_row(svc);
}

/* A size in bytes as "512M", or "-" for no limit. */
static void ctl_size(char *out, size_t len, json_int_t bytes)
{
	if (bytes <= 0)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%lldM", (long long)(bytes >> 20));
}

static void ctl_print_hosts(json_t *reply)
{
	json_t *arr = json_object_get(reply, "hosts"), *h;
	json_int_t n, mem, maxmem, maxn;
	char membuf[24], maxbuf[24], nbuf[32];
	size_t i;

	printf("%-12s %-8s %-11s %-15s %s\n", "NAME", "STATE", "INSTANCES", "MEMORY", "URI");
	json_array_foreach(arr, i, h)
	{
		const char *name = "", *state = "", *uri = "", *why = "";

		json_unpack(h, "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "name", &name, "state",
		            &state, "uri", &uri, "why", &why, "instances", &n, "memory", &mem,
		            "max_memory", &maxmem, "max_instances", &maxn);
		ctl_size(membuf, sizeof(membuf), mem);
		ctl_size(maxbuf, sizeof(maxbuf), maxmem);
		if (maxn > 0)
			snprintf(nbuf, sizeof(nbuf), "%lld/%lld", (long long)n, (long long)maxn);
		else
			snprintf(nbuf, sizeof(nbuf), "%lld", (long long)n);
		printf("%-12s %-8s %-11s %-7s/%-7s %s%s%s\n", name, state, nbuf,
		       mem ? membuf : "0M", maxbuf, uri, *why ? " -- " : "", why);
	}
}

static void ctl_print_status(json_t *reply)
{
	json_t *states = json_object_get(reply, "instances"), *n;
	const char *key;

	printf("beckond %s (pid %lld), zone %s, config %s, up %llds\n",
	       json_string_value(json_object_get(reply, "version")),
	       (long long)json_integer_value(json_object_get(reply, "pid")),
	       json_string_value(json_object_get(reply, "zone")),
	       json_string_value(json_object_get(reply, "config")),
	       (long long)json_integer_value(json_object_get(reply, "uptime_s")));
	printf("instances:");
	json_object_foreach(states, key, n) if (json_integer_value(n) > 0)
	    printf(" %s %lld", key, (long long)json_integer_value(n));
	printf("\n");
}

static void ctl_print(const char *cmd, json_t *reply)
{
	json_t *svc = json_object_get(reply, "service");

	if (strcmp(cmd, "list") == 0)
		ctl_print_list(reply);
	else if (strcmp(cmd, "hosts") == 0)
		ctl_print_hosts(reply);
	else if (strcmp(cmd, "status") == 0)
		ctl_print_status(reply);
	else if (svc)
		printf("%s: %s\n", json_string_value(json_object_get(svc, "name")),
		       json_string_value(json_object_get(svc, "state")));
	else
		printf("ok\n");
}

static int ctl_needs_service(const char *cmd)
{
	return !strcmp(cmd, "start") || !strcmp(cmd, "stop") || !strcmp(cmd, "pause") ||
	       !strcmp(cmd, "resume");
}

static int ctl_known(const char *cmd)
{
	return ctl_needs_service(cmd) || !strcmp(cmd, "status") || !strcmp(cmd, "list") ||
	       !strcmp(cmd, "hosts") || !strcmp(cmd, "reload");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
	                                         {"socket", required_argument, NULL, 's'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *path = getenv("BECKON_SOCKET"), *cmd, *svc;
	int c, json = 0, rc;
	json_t *reply;

	if (!path)
		path =
		    access(CTL_DEFAULT_SOCKET, F_OK) != 0 && access(CTL_SERVICE_SOCKET, F_OK) == 0
		        ? CTL_SERVICE_SOCKET
		        : CTL_DEFAULT_SOCKET;
	while ((c = getopt_long(argc, argv, "s:jh", longopts, NULL)) != -1) {
		if (c == 's')
			path = optarg;
		else if (c == 'j')
			json = 1;
		else
			ctl_usage();
	}
	if (optind >= argc || argc - optind > 2)
		ctl_usage();
	cmd = argv[optind];
	svc = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (!ctl_known(cmd) || (ctl_needs_service(cmd) != (svc != NULL))) {
		fprintf(stderr, "beckonctl: %s\n",
		        !ctl_known(cmd) ? "unknown command" : "wrong number of arguments");
		ctl_usage();
	}
	reply = ctl_request(path, cmd, svc);
	if (!reply)
		return 1;
	rc = json_is_true(json_object_get(reply, "ok")) ? 0 : 1;
	if (json) {
		char *text = json_dumps(reply, JSON_INDENT(2));
		printf("%s\n", text ? text : "null");
		free(text);
	} else if (rc == 0) {
		ctl_print(cmd, reply);
	}
	if (rc != 0)
		fprintf(stderr, "beckonctl: %s\n",
		        json_string_value(json_object_get(reply, "error")) ?: "request failed");
	json_decref(reply);
	return rc;
}
