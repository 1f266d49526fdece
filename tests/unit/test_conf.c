/* conf/: the string parsers, conf_load on real files, and services as values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "conf.h"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

static char *tmp_path(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static void write_file(const char *name, const char *text)
{
	char *p = tmp_path(name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

/* Load TEXT from NAME in the temp dir; *ERRS gets what conf_load reported. */
static int load_text(const char *name, const char *text, struct conf **out, char **errs)
{
	char *p = tmp_path(name);
	size_t len;
	FILE *f = open_memstream(errs, &len);
	int rc;

	write_file(name, text);
	rc = conf_load(p, out, f);
	fclose(f);
	free(p);
	return rc;
}

/* Load a config that must be good, and return it. */
static struct conf *load_good(const char *text)
{
	struct conf *c = NULL;
	char *errs = NULL;

	if (load_text("good.conf", text, &c, &errs) != 0)
		fail_msg("unexpected errors:\n%s", errs);
	assert_string_equal(errs, "");
	free(errs);
	return c;
}

/* Load a config that must be bad; the errors with the temp dir cut off. */
static char *load_bad(const char *text)
{
	struct conf *c = (struct conf *)1;
	char *errs = NULL, *out, *p, *q;
	size_t dlen = strlen(tmpdir) + 1;

	assert_int_equal(load_text("bad.conf", text, &c, &errs), -1);
	assert_null(c);
	out = calloc(1, strlen(errs) + 1);
	for (p = errs, q = out; *p; p++) {
		if (strncmp(p, tmpdir, dlen - 1) == 0 && p[dlen - 1] == '/')
			p += dlen;
		*q++ = *p;
	}
	free(errs);
	return out;
}

#define ZONE                                                                                       \
	"dns = { zone = \"svc.test\"; ns = ( { name = \"ns1.svc.test\"; address = \"127.0.0.1\"; " \
	"} ); };\n"
#define EXEC "backend = \"exec\"; exec = { command = \"true\"; }; "

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	write_file("kernel.img", "not a kernel\n");
	return 0;
}

static int teardown(void **state)
{
	char *cmd;

	(void)state;
	if (asprintf(&cmd, "rm -rf '%s'", tmpdir) < 0)
		return -1;
	if (system(cmd) != 0) {
		free(cmd);
		return -1;
	}
	free(cmd);
	return 0;
}

static void test_duration(void **state)
{
	uint64_t ms;

	(void)state;
	assert_int_equal(conf_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(conf_parse_duration("30s", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(conf_parse_duration("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(conf_parse_duration("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(conf_parse_duration("0s", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(conf_parse_duration("007s", &ms), 0);
	assert_int_equal(ms, 7000);
	const char *bad[] = {"",
	                     "5",
	                     "s",
	                     "ms",
	                     "5 s",
	                     " 5s",
	                     "5s ",
	                     "-5s",
	                     "+5s",
	                     "1.5s",
	                     "5S",
	                     "5sec",
	                     "5d",
	                     "5mss",
	                     "1h30m",
	                     "0x10s",
	                     "99999999999999999999s",
	                     "18446744073709551615h",
	                     NULL};
	for (int i = 0; bad[i] != NULL; i++)
		if (conf_parse_duration(bad[i], &ms) != -1)
			fail_msg("\"%s\" parsed as a duration", bad[i]);
	assert_int_equal(conf_parse_duration(NULL, &ms), -1);
}

static void test_size(void **state)
{
	uint64_t b;

	(void)state;
	assert_int_equal(conf_parse_size("16M", &b), 0);
	assert_int_equal(b, 16ULL << 20);
	assert_int_equal(conf_parse_size("1G", &b), 0);
	assert_int_equal(b, 1ULL << 30);
	assert_int_equal(conf_parse_size("512K", &b), 0);
	assert_int_equal(b, 512ULL << 10);
	assert_int_equal(conf_parse_size("512k", &b), 0);
	assert_int_equal(b, 512ULL << 10);
	assert_int_equal(conf_parse_size("2T", &b), 0);
	assert_int_equal(b, 2ULL << 40);
	assert_int_equal(conf_parse_size("4096", &b), 0);
	assert_int_equal(b, 4096);
	const char *bad[] = {"",
	                     "M",
	                     "16Q",
	                     "16MB",
	                     "16 M",
	                     "-1M",
	                     "1.5G",
	                     " 16M",
	                     "16M ",
	                     "99999999999999999999",
	                     "17179869184G",
	                     NULL};
	for (int i = 0; bad[i] != NULL; i++)
		if (conf_parse_size(bad[i], &b) != -1)
			fail_msg("\"%s\" parsed as a size", bad[i]);
}

static void test_hostport(void **state)
{
	struct conf_addr a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

	(void)state;
	assert_int_equal(conf_parse_hostport("127.0.0.1:53", &a), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 53);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_string_equal(a.text, "127.0.0.1:53");

	assert_int_equal(conf_parse_hostport("[::1]:65535", &a), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 65535);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_string_equal(a.text, "[::1]:65535");

	const char *bad[] = {"",
	                     "127.0.0.1",
	                     "127.0.0.1:",
	                     ":53",
	                     "127.0.0.1:0",
	                     "127.0.0.1:65536",
	                     "127.0.0.1:-1",
	                     "127.0.0.1:5x",
	                     "localhost:53",
	                     "1.2.3:53",
	                     "1.2.3.4.5:53",
	                     "256.0.0.1:53",
	                     "::1:53",
	                     "[::1]",
	                     "[::1]53",
	                     "[]:53",
	                     "[1.2.3.4]:53",
	                     "[::1]:053535",
	                     "127.0.0.1:53:53",
	                     NULL};
	for (int i = 0; bad[i] != NULL; i++)
		if (conf_parse_hostport(bad[i], &a) != -1)
			fail_msg("\"%s\" parsed as host:port", bad[i]);
}

static void test_dns_names(void **state)
{
	char out[CONF_DNS_NAME_MAX + 1], long_label[80], long_name[300];

	(void)state;
	assert_int_equal(conf_parse_dns_name("WWW.Svc.Test.", out), 0);
	assert_string_equal(out, "www.svc.test");
	assert_int_equal(conf_parse_dns_name("a-b.0.test", out), 0);
	assert_string_equal(out, "a-b.0.test");
	memset(long_label, 'a', 63);
	strcpy(long_label + 63, ".test");
	assert_int_equal(conf_parse_dns_name(long_label, out), 0);
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".test");
	assert_int_equal(conf_parse_dns_name(long_label, out), -1);
	/* 253 characters is the most: 63 * 4 labels minus one plus 3 dots. */
	for (int i = 0; i < 4; i++) {
		memset(long_name + i * 64, 'b', 63);
		long_name[i * 64 + 63] = '.';
	}
	long_name[253] = '\0';
	assert_int_equal(conf_parse_dns_name(long_name, out), 0);
	assert_int_equal(strlen(out), 253);
	long_name[253] = 'b';
	long_name[254] = '\0';
	assert_int_equal(conf_parse_dns_name(long_name, out), -1);

	const char *bad[] = {"",        ".",        "..",  "a..b",     ".a",     "a.b..", "-a.test",
	                     "a-.test", "a_b.test", "a b", "a/b.test", "ä.test", NULL};
	for (int i = 0; bad[i] != NULL; i++)
		if (conf_parse_dns_name(bad[i], out) != -1)
			fail_msg("\"%s\" parsed as a DNS name", bad[i]);

	assert_true(conf_dns_in_zone("svc.test", "svc.test"));
	assert_true(conf_dns_in_zone("www.svc.test", "svc.test"));
	assert_true(conf_dns_in_zone("a.b.svc.test", "svc.test"));
	assert_false(conf_dns_in_zone("xsvc.test", "svc.test"));
	assert_false(conf_dns_in_zone("test", "svc.test"));
	assert_false(conf_dns_in_zone("www.svc.test.org", "svc.test"));
}

static void test_service_names(void **state)
{
	(void)state;
	assert_true(conf_service_name_valid("www"));
	assert_true(conf_service_name_valid("0"));
	assert_true(conf_service_name_valid("a-b-9"));
	assert_true(conf_service_name_valid("a2345678901234567890123456789012"));
	assert_false(conf_service_name_valid("a23456789012345678901234567890123"));
	assert_false(conf_service_name_valid(""));
	assert_false(conf_service_name_valid("Www"));
	assert_false(conf_service_name_valid("w_w"));
	assert_false(conf_service_name_valid("w.w"));
	assert_false(conf_service_name_valid(NULL));
}

static void test_cidr(void **state)
{
	struct in_addr a;
	int prefix;

	(void)state;
	assert_int_equal(conf_parse_cidr("10.77.0.0/24", &a, &prefix), 0);
	assert_int_equal(ntohl(a.s_addr), 0x0a4d0000);
	assert_int_equal(prefix, 24);
	assert_int_equal(conf_parse_cidr("0.0.0.0/0", &a, &prefix), 0);
	assert_int_equal(prefix, 0);
	const char *bad[] = {"10.77.0.0",  "10.77.0.0/",   "10.77.0.0/33", "/24",
	                     "10.77.0/24", "10.77.0.0/-1", "10.77.0.0/2x", NULL};
	for (int i = 0; bad[i] != NULL; i++)
		if (conf_parse_cidr(bad[i], &a, &prefix) != -1)
			fail_msg("\"%s\" parsed as a subnet", bad[i]);
}

static void test_enum_names(void **state)
{
	(void)state;
	assert_string_equal(conf_backend_name(CONF_BACKEND_QEMU), "qemu");
	assert_string_equal(conf_backend_name(CONF_BACKEND_EXEC), "exec");
	assert_string_equal(conf_ready_name(CONF_READY_CONSOLE), "console");
	assert_string_equal(conf_on_idle_name(CONF_IDLE_SUSPEND), "suspend");
	assert_string_equal(conf_warm_name(CONF_WARM_PAUSED), "paused");
	assert_string_equal(conf_net_mode_name(CONF_NET_USER), "user");
	assert_string_equal(conf_hold_name(CONF_HOLD_NONE), "none");
	assert_string_equal(conf_backend_name((enum conf_backend)99), "?");
}

/* Every default the spec names, from a config that sets only what it must. */
static void test_defaults(void **state)
{
	struct conf *c;
	const struct conf_service *s;
	struct sockaddr_in *sin;
	char buf[INET_ADDRSTRLEN];
	time_t before = time(NULL);

	(void)state;
	c = load_good(ZONE "services = ( { name = \"www\"; dns = \"www.svc.test\"; "
	                   "address = \"127.0.0.2\"; ports = 80; " EXEC "} );\n");
	assert_non_null(c);
	assert_true(c->loaded_at >= before && c->loaded_at <= time(NULL));
	assert_non_null(strstr(c->path, "/good.conf"));
	assert_string_equal(c->state_dir, "/var/lib/beckon");
	assert_string_equal(c->control_socket, "/run/beckon.sock");
	assert_true(c->has_metrics);
	assert_string_equal(c->metrics_listen.text, "127.0.0.1:9153");
	assert_int_equal(c->ndns_listen, 1);
	assert_string_equal(c->dns_listen[0].text, "127.0.0.1:5353");
	sin = (struct sockaddr_in *)&c->dns_listen[0].ss;
	assert_int_equal(ntohs(sin->sin_port), 5353);
	assert_string_equal(c->zone, "svc.test");
	assert_int_equal(c->nns, 1);
	assert_string_equal(c->ns[0].name, "ns1.svc.test");
	assert_true(c->ns[0].has_addr);
	assert_int_equal(c->ttl, 30);
	assert_false(c->has_forward);
	assert_int_equal(c->tcp_max, 256);
	assert_int_equal(c->tcp_per_client, 16);
	assert_int_equal(c->tcp_idle_ms, 10000);
	assert_int_equal(c->rrl_rate, 200);
	assert_int_equal(c->rrl_slip, 2);
	assert_int_equal(c->rrl_ipv4_prefix, 24);
	assert_int_equal(c->rrl_ipv6_prefix, 56);
	assert_int_equal(c->rrl_table_size, 65536);
	assert_int_equal(c->net_mode, CONF_NET_BRIDGE);
	assert_string_equal(c->bridge, "beckon0");
	assert_string_equal(inet_ntop(AF_INET, &c->subnet, buf, sizeof(buf)), "10.77.0.0");
	assert_int_equal(c->prefix, 24);
	assert_int_equal(c->hold, CONF_HOLD_SYN);

	assert_int_equal(c->nservices, 1);
	s = &c->services[0];
	assert_string_equal(s->name, "www");
	assert_int_equal(s->ndns, 1);
	assert_string_equal(s->dns[0], "www.svc.test");
	assert_null(s->image);
	assert_string_equal(s->cmdline, "");
	assert_int_equal(s->nports, 1);
	assert_int_equal(s->ports[0], 80);
	assert_int_equal(s->memory, 16ULL << 20);
	assert_int_equal(s->vcpus, 1);
	assert_int_equal(s->boot_timeout_ms, 5000);
	assert_int_equal(s->ready, CONF_READY_TCP);
	assert_null(s->ready_arg);
	assert_int_equal(s->idle_timeout_ms, 60000);
	assert_int_equal(s->on_idle, CONF_IDLE_PAUSE);
	assert_int_equal(s->warm, CONF_WARM_NONE);
	assert_int_equal(s->template, CONF_TEMPLATE_OFF);
	assert_string_equal(s->qemu.machine, "microvm");
	assert_string_equal(s->qemu.accel, "auto");
	assert_string_equal(s->qemu.cpu, "max");
	assert_null(s->qemu.nic); /* by the machine: virtio-net-device on microvm */
	assert_null(s->qemu.disk);
	assert_null(s->qemu.initrd);
	assert_false(s->qemu.boot_disk);
	assert_false(s->qemu.thp_off); /* huge_pages = "on" */
	assert_int_equal(s->qemu.nargs, 0);
	assert_null(s->libvirt_uri);
	assert_null(s->libvirt_xml);
	assert_null(s->xen_cfg);
	assert_string_equal(s->exec_command, "true");
	assert_int_equal(s->line, 2);
	assert_ptr_equal(conf_service_find(c, "www"), s);
	assert_null(conf_service_find(c, "api"));
	conf_free(c);
}

/* dns.tcp and dns.rrl: set, and per_client following a small max when not set. */
static void test_dns_limits(void **state)
{
	struct conf *c;
	char *e;

	(void)state;
	c = load_good("dns = { zone = \"svc.test\"; ns = { name = \"ns.example.org\"; };\n"
	              "  tcp = { max = 4; idle_timeout = \"1500ms\"; };\n"
	              "  rrl = { rate = 0; slip = 1; ipv4_prefix = 32; ipv6_prefix = 64; "
	              "table_size = 100; }; };\n");
	assert_int_equal(c->tcp_max, 4);
	assert_int_equal(c->tcp_per_client, 4);
	assert_int_equal(c->tcp_idle_ms, 1500);
	assert_int_equal(c->rrl_rate, 0);
	assert_int_equal(c->rrl_slip, 1);
	assert_int_equal(c->rrl_ipv4_prefix, 32);
	assert_int_equal(c->rrl_ipv6_prefix, 64);
	assert_int_equal(c->rrl_table_size, 100);
	conf_free(c);
	e = load_bad("dns = { zone = \"svc.test\"; ns = { name = \"ns.example.org\"; };\n"
	             "  tcp = { per_client = 300; };\n  rrl = { rate = 5000000; }; };\n");
	assert_string_equal(e,
	                    "bad.conf:2: dns.tcp.per_client: 300 is more than dns.tcp.max (256)\n"
	                    "bad.conf:3: dns.rrl.rate: 5000000 is out of range (0..1000000)\n");
	free(e);
}

static void test_hold_follows_mode(void **state)
{
	struct conf *c;

	(void)state;
	c = load_good(ZONE "network = { mode = \"user\"; };\n");
	assert_int_equal(c->net_mode, CONF_NET_USER);
	assert_int_equal(c->hold, CONF_HOLD_PROXY);
	assert_int_equal(c->nservices, 0);
	conf_free(c);
	c = load_good(ZONE "network = { hold = \"none\"; mode = \"user\"; };\n");
	assert_int_equal(c->hold, CONF_HOLD_NONE);
	conf_free(c);
	c = load_good(ZONE "network = { mode = \"bridge\"; };\n");
	assert_int_equal(c->hold, CONF_HOLD_SYN);
	conf_free(c);
}

/* defaults apply to every service; a service's own keys win, key by key. */
static void test_defaults_inherit(void **state)
{
	struct conf *c;
	char *text;
	const struct conf_service *a, *b;

	(void)state;
	assert_true(
	    asprintf(&text,
	             ZONE "defaults = {\n"
	                  "  image = \"%s/kernel.img\"; memory = \"64M\"; vcpus = 2; ports = 80;\n"
	                  "  ready = \"http:/up\"; on_idle = \"suspend\";\n"
	                  "  qemu = { machine = \"pc\"; nic = \"virtio-net-pci\"; args = ( "
	                  "\"-a\", \"-b\" ); };\n"
	                  "};\n"
	                  "services = (\n"
	                  "  { name = \"a\"; dns = \"a.svc.test\"; address = \"10.77.0.2\"; },\n"
	                  "  { name = \"b\"; dns = \"b.svc.test\"; address = \"10.77.0.3\";\n"
	                  "    memory = \"1G\"; ready = \"tcp\"; ports = ( 8080, 8443 );\n"
	                  "    qemu = { machine = \"microvm\"; args = \"-c\"; }; }\n"
	                  ");\n",
	             tmpdir) > 0);
	c = load_good(text);
	free(text);
	assert_int_equal(c->nservices, 2);
	a = &c->services[0];
	b = &c->services[1];
	assert_int_equal(a->memory, 64ULL << 20);
	assert_int_equal(b->memory, 1ULL << 30);
	assert_int_equal(a->vcpus, 2);
	assert_int_equal(b->vcpus, 2);
	assert_int_equal(a->ready, CONF_READY_HTTP);
	assert_string_equal(a->ready_arg, "/up");
	assert_int_equal(b->ready, CONF_READY_TCP);
	assert_null(b->ready_arg);
	assert_int_equal(a->nports, 1);
	assert_int_equal(b->nports, 2);
	assert_int_equal(b->ports[1], 8443);
	assert_int_equal(a->on_idle, CONF_IDLE_SUSPEND);
	assert_int_equal(b->on_idle, CONF_IDLE_SUSPEND);
	assert_string_equal(a->qemu.machine, "pc");
	assert_string_equal(b->qemu.machine, "microvm");
	assert_string_equal(a->qemu.nic, "virtio-net-pci");
	assert_string_equal(b->qemu.nic, "virtio-net-pci"); /* from defaults, key by key */
	assert_string_equal(a->qemu.cpu, "max");            /* built-in default */
	assert_int_equal(a->qemu.nargs, 2);
	assert_string_equal(a->qemu.args[1], "-b");
	assert_int_equal(b->qemu.nargs, 1);
	assert_string_equal(b->qemu.args[0], "-c");
	assert_non_null(strstr(a->image, "/kernel.img"));
	assert_string_equal(a->image, b->image);
	conf_free(c);
}

/* A config with every key: each value lands where it should. */
static void test_full(void **state)
{
	struct conf *c;
	char *text, buf[INET_ADDRSTRLEN];
	const struct conf_service *s;

	(void)state;
	assert_true(
	    asprintf(
	        &text,
	        "state_dir = \"/tmp/st\";\ncontrol_socket = \"/tmp/st/ctl\";\n"
	        "metrics_listen = \"[::1]:9000\";\n"
	        "dns = { listen = ( \"127.0.0.1:53\", \"[::1]:53\" ); zone = \"Svc.Test.\";\n"
	        "  ns = ( { name = \"ns1.svc.test\"; address = \"192.0.2.1\"; },\n"
	        "         { name = \"ns2.example.net\"; } );\n"
	        "  ttl = 0; forward = \"192.0.2.53:5353\"; };\n"
	        "network = { mode = \"bridge\"; bridge = \"br9\"; subnet = \"192.168.8.0/22\";\n"
	        "  hold = \"proxy\"; };\n"
	        "services = ( {\n"
	        "  name = \"www\"; dns = ( \"WWW.svc.test\", \"svc.test.\" );\n"
	        "  image = \"%s/kernel.img\"; cmdline = \"-v --port 80\";\n"
	        "  address = \"192.168.11.254\"; ports = [ 80, 443 ]; backend = \"qemu\";\n"
	        "  memory = \"2G\"; vcpus = 4; boot_timeout = \"250ms\";\n"
	        "  ready = \"console:^listening on [0-9]+$\"; idle_timeout = \"5m\";\n"
	        "  on_idle = \"shutdown\"; warm = \"shell\";\n"
	        "  qemu = { machine = \"pc\"; accel = \"tcg\"; cpu = \"host\"; nic = \"e1000\";\n"
	        "           disk = \"/d.raw\"; args = ( \"-x\" ); boot = \"kernel\";\n"
	        "           initrd = \"%s/kernel.img\"; huge_pages = \"off\"; };\n"
	        "  libvirt = { uri = \"qemu:///session\"; xml = \"/x.xml\"; };\n"
	        "  xen = { cfg = \"/x.cfg\"; };\n"
	        "  exec = { command = \"run {image}\"; };\n"
	        "}, {\n"
	        "  name = \"d\"; dns = \"d.svc.test\"; address = \"192.168.8.2\"; ports = 1;\n"
	        "  backend = \"exec\"; ready = \"delay:1h\"; on_idle = \"destroy\";\n"
	        "  warm = \"paused\"; exec = { command = \"x\"; };\n"
	        "} );\n",
	        tmpdir, tmpdir) > 0);
	c = load_good(text);
	free(text);
	assert_string_equal(c->state_dir, "/tmp/st");
	assert_string_equal(c->control_socket, "/tmp/st/ctl");
	assert_true(c->has_metrics);
	assert_int_equal(c->metrics_listen.ss.ss_family, AF_INET6);
	assert_int_equal(c->ndns_listen, 2);
	assert_string_equal(c->dns_listen[1].text, "[::1]:53");
	assert_string_equal(c->zone, "svc.test");
	assert_int_equal(c->nns, 2);
	assert_string_equal(inet_ntop(AF_INET, &c->ns[0].addr, buf, sizeof(buf)), "192.0.2.1");
	assert_false(c->ns[1].has_addr);
	assert_string_equal(c->ns[1].name, "ns2.example.net");
	assert_int_equal(c->ttl, 0);
	assert_true(c->has_forward);
	assert_string_equal(c->forward.text, "192.0.2.53:5353");
	assert_string_equal(c->bridge, "br9");
	assert_int_equal(c->prefix, 22);
	assert_int_equal(c->hold, CONF_HOLD_PROXY);

	s = &c->services[0];
	assert_int_equal(s->ndns, 2);
	assert_string_equal(s->dns[0], "www.svc.test");
	assert_string_equal(s->dns[1], "svc.test");
	assert_string_equal(s->cmdline, "-v --port 80");
	assert_string_equal(inet_ntop(AF_INET, &s->address, buf, sizeof(buf)), "192.168.11.254");
	assert_int_equal(s->nports, 2);
	assert_int_equal(s->ports[1], 443);
	assert_int_equal(s->backend, CONF_BACKEND_QEMU);
	assert_int_equal(s->memory, 2ULL << 30);
	assert_int_equal(s->vcpus, 4);
	assert_int_equal(s->boot_timeout_ms, 250);
	assert_int_equal(s->ready, CONF_READY_CONSOLE);
	assert_string_equal(s->ready_arg, "^listening on [0-9]+$");
	assert_int_equal(s->idle_timeout_ms, 300000);
	assert_int_equal(s->on_idle, CONF_IDLE_SHUTDOWN);
	assert_int_equal(s->warm, CONF_WARM_SHELL);
	assert_string_equal(s->qemu.machine, "pc");
	assert_string_equal(s->qemu.accel, "tcg");
	assert_string_equal(s->qemu.cpu, "host");
	assert_string_equal(s->qemu.nic, "e1000");
	assert_string_equal(s->qemu.disk, "/d.raw");
	assert_non_null(strstr(s->qemu.initrd, "/kernel.img"));
	assert_false(s->qemu.boot_disk);
	assert_true(s->qemu.thp_off);
	assert_string_equal(s->qemu.args[0], "-x");
	assert_string_equal(s->libvirt_uri, "qemu:///session");
	assert_string_equal(s->libvirt_xml, "/x.xml");
	assert_string_equal(s->xen_cfg, "/x.cfg");
	assert_string_equal(s->exec_command, "run {image}");
	assert_int_equal(s->line, 10);

	s = &c->services[1];
	assert_int_equal(s->backend, CONF_BACKEND_EXEC);
	assert_int_equal(s->ready, CONF_READY_DELAY);
	assert_int_equal(s->ready_delay_ms, 3600000);
	assert_null(s->ready_arg);
	assert_int_equal(s->on_idle, CONF_IDLE_DESTROY);
	assert_int_equal(s->warm, CONF_WARM_PAUSED);
	conf_free(c);
}

/* template: "off" or "auto", QEMU only, inherited from defaults, part of equality. */
static void test_template(void **state)
{
	struct conf *c;
	struct conf_service *d;
	char *text, *errs;

	(void)state;
	assert_string_equal(conf_template_name(CONF_TEMPLATE_AUTO), "auto");
	assert_true(asprintf(&text,
	                     ZONE
	                     "defaults = { template = \"auto\"; };\n"
	                     "services = ( { name = \"a\"; dns = \"a.svc.test\"; address = "
	                     "\"10.77.0.2\"; ports = 80; image = \"%s/kernel.img\"; },\n"
	                     "  { name = \"b\"; dns = \"b.svc.test\"; address = \"10.77.0.3\"; "
	                     "ports = 80; image = \"%s/kernel.img\"; template = \"off\"; } );\n",
	                     tmpdir, tmpdir) > 0);
	c = load_good(text);
	free(text);
	assert_int_equal(c->services[0].template, CONF_TEMPLATE_AUTO);
	assert_int_equal(c->services[1].template, CONF_TEMPLATE_OFF);
	d = conf_service_dup(&c->services[0]);
	assert_true(conf_service_equal(d, &c->services[0]));
	d->template = CONF_TEMPLATE_OFF;
	assert_false(conf_service_equal(d, &c->services[0]));
	conf_service_free(d);
	conf_free(c);

	errs = load_bad(ZONE "services = ( { name = \"e\"; dns = \"e.svc.test\"; address = "
	                     "\"127.0.0.2\"; ports = 80; " EXEC "template = \"auto\"; } );\n");
	assert_string_equal(errs, "bad.conf:2: services[0].template: \"auto\" needs the qemu "
	                          "backend (the exec backend has no templates); use \"off\"\n");
	free(errs);
	errs = load_bad(ZONE "services = ( { name = \"e\"; dns = \"e.svc.test\"; address = "
	                     "\"127.0.0.2\"; ports = 80; " EXEC "template = \"always\"; } );\n");
	assert_non_null(strstr(errs, "services[0].template: bad value \"always\" (want one of "
	                             "\"off\", \"auto\")"));
	free(errs);
}

static void test_service_dup_equal(void **state)
{
	struct conf *c;
	struct conf_service *d, *e;
	char *text;

	(void)state;
	assert_true(
	    asprintf(&text,
	             ZONE "services = ( { name = \"www\"; dns = ( \"www.svc.test\", \"svc.test\" "
	                  "); image = \"%s/kernel.img\"; address = \"10.77.0.2\"; ports = 80;\n"
	                  "  qemu = { args = ( \"-a\" ); disk = \"/d\"; }; } );\n",
	             tmpdir) > 0);
	c = load_good(text);
	free(text);
	d = conf_service_dup(&c->services[0]);
	assert_non_null(d);
	assert_true(conf_service_equal(d, &c->services[0]));
	assert_ptr_not_equal(d->dns, c->services[0].dns);
	assert_ptr_not_equal(d->dns[1], c->services[0].dns[1]);
	assert_ptr_not_equal(d->qemu.args[0], c->services[0].qemu.args[0]);
	assert_ptr_not_equal(d->image, c->services[0].image);
	d->line = 99; /* where it is in the file does not matter */
	assert_true(conf_service_equal(d, &c->services[0]));

	/* Each change makes them differ; the copy stays equal to its source. */
	e = conf_service_dup(d);
	e->dns[1][0] = 'x';
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	e->ports[0] = 81;
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	e->nports = 0;
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	e->memory++;
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	free(e->qemu.disk);
	e->qemu.disk = NULL;
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	e->qemu.args[0][1] = 'b';
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	e->address.s_addr ^= htonl(1);
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);
	e = conf_service_dup(d);
	e->exec_command = strdup("x");
	assert_false(conf_service_equal(d, e));
	conf_service_free(e);

	conf_service_free(d);
	conf_service_free(NULL);
	conf_free(c);
	conf_free(NULL);
}

/* Every error in one run, in line order, each with its line. */
static void test_several_errors(void **state)
{
	char *errs;

	(void)state;
	errs =
	    load_bad("state_dir = 5;\n"                                                    /* 1 */
	             "dns = {\n"                                                           /* 2 */
	             "  zone = \"svc.test\"; ttl = -1;\n"                                  /* 3 */
	             "  ns = ( { name = \"ns1.svc.test\"; address = \"127.0.0.1\"; } );\n" /* 4 */
	             "};\n"                                                                /* 5 */
	             "dnss = 1;\n"                                                         /* 6 */
	             "network = { mode = \"user\"; };\n"                                   /* 7 */
	             "services = (\n"                                                      /* 8 */
	             "  { name = \"www\"; dns = \"www.other.test\"; address = \"127.0.0.2\";\n"
	             "    ports = 80; memory = \"16Q\"; " EXEC "},\n" /* 10 */
	             "  { name = \"www\"; dns = \"x.svc.test\"; address = \"127.0.0.2\";\n"
	             "    ports = 80; " EXEC "}\n" /* 12 */
	             ");\n");
	assert_string_equal(
	    errs, "bad.conf:1: state_dir: want a string, not an integer\n"
	          "bad.conf:3: dns.ttl: -1 is out of range (0..2147483647)\n"
	          "bad.conf:6: unknown key \"dnss\"\n"
	          "bad.conf:9: services[0].dns: \"www.other.test\" is outside zone "
	          "\"svc.test\"\n"
	          "bad.conf:10: services[0].memory: bad size \"16Q\" (want e.g. \"16M\")\n"
	          "bad.conf:11: services[1].name: \"www\" is already used by services[0]\n"
	          "bad.conf:11: services[1].address: 127.0.0.2 is already used by service "
	          "\"www\"\n");
	free(errs);
}

static void test_syntax_error(void **state)
{
	char *errs;

	(void)state;
	errs = load_bad(ZONE "\nservices = ( { name = ; } );\nfoo = 1;\n");
	assert_string_equal(errs, "bad.conf:3: syntax error\n");
	free(errs);
}

/* libconfig 1.5 wraps integers beyond 32 bits: the written value is checked. */
static void test_int_wrap(void **state)
{
	char *errs;

	(void)state;
	errs = load_bad("dns = { zone = \"svc.test\"; ns = { name = \"ns.example.net\"; };\n"
	                "  ttl = 4294967326; };\n");
	assert_string_equal(errs,
	                    "bad.conf:2: dns.ttl: 4294967326 is out of range (0..2147483647)\n");
	free(errs);
	errs = load_bad("dns = { zone = \"svc.test\"; ns = { name = \"ns.example.net\"; }; ttl = "
	                "99999999999999999999; };\n");
	assert_string_equal(errs, "bad.conf:1: dns.ttl: 99999999999999999999 is out of range "
	                          "(0..2147483647)\n");
	free(errs);
}

static void test_include(void **state)
{
	struct conf *c;
	char *errs = NULL, *p;

	(void)state;
	p = tmp_path("inc");
	mkdir(p, 0755);
	free(p);
	write_file("inc/svc.inc", "services = ( { name = \"a\"; dns = \"a.svc.test\";\n"
	                          "  address = \"127.0.0.2\"; ports = 80; " EXEC "} );\n");
	c = load_good(ZONE "@include \"inc/svc.inc\"\n");
	assert_int_equal(c->nservices, 1);
	assert_string_equal(c->services[0].name, "a");
	conf_free(c);

	write_file("inc/bad.inc", "\nservices = ( { name = \"a\"; vcpus = 0; } );\n");
	errs = load_bad(ZONE "@include \"inc/bad.inc\"\n");
	assert_string_equal(
	    errs, "inc/bad.inc:2: services[0].vcpus: 0 is out of range (1..64)\n"
	          "inc/bad.inc:2: services[0]: missing \"dns\"\n"
	          "inc/bad.inc:2: services[0]: missing \"address\"\n"
	          "inc/bad.inc:2: services[0]: backend \"qemu\" needs \"image\"\n"
	          "inc/bad.inc:2: services[0].ready: \"tcp\" probes a port, but \"ports\" is "
	          "not set\n");
	free(errs);
}

static void test_missing_file(void **state)
{
	struct conf *c = (struct conf *)1;
	char *errs = NULL;
	size_t len;
	FILE *f = open_memstream(&errs, &len);

	(void)state;
	assert_int_equal(conf_load("/nonexistent/beckon.conf", &c, f), -1);
	fclose(f);
	assert_null(c);
	assert_string_equal(errs,
	                    "/nonexistent/beckon.conf: cannot read: No such file or directory\n");
	free(errs);
	c = (struct conf *)1;
	assert_int_equal(conf_load(tmpdir, &c, NULL), -1); /* a directory; NULL errs is fine */
	assert_null(c);
}

/* user: looked up at load (uid and group kept); one that does not exist is an error. */
static void test_user(void **state)
{
	struct conf *c;
	char *errs;

	(void)state;
	c = load_good(ZONE "\nuser = \"root\";\n");
	assert_string_equal(c->user, "root");
	assert_int_equal(c->uid, 0);
	assert_int_equal(c->gid, 0);
	conf_free(c);
	c = load_good(ZONE "\n");
	assert_null(c->user);
	conf_free(c);
	errs = load_bad(ZONE "\nuser = \"no-such-user-here\";\n");
	assert_string_equal(errs, "bad.conf:3: user: no user \"no-such-user-here\" on this host\n");
	free(errs);
}

/* A services entry with routes is a front: kept apart, its routes in order, a value like a service.
 */
static void test_fronts(void **state)
{
	struct conf *c = load_good(
	    "dns = { zone = \"svc.test\"; ns = ( { name = \"ns1.svc.test\"; address = "
	    "\"127.0.0.1\"; } ); };\n"
	    "network = { mode = \"user\"; hold = \"proxy\"; };\n"
	    "defaults = { backend = \"exec\"; ready = \"tcp\"; exec = { command = \"true\"; }; };\n"
	    "services = (\n"
	    " { name = \"site\"; dns = \"site.svc.test\"; address = \"127.0.0.9\"; ports = 80;\n"
	    "   routes = ( { prefix = \"/b/\"; service = \"b\"; }, { prefix = \"/\"; service = "
	    "\"a\"; } ); },\n"
	    " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.10\"; ports = 80; },\n"
	    " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.11\"; ports = 8080; }\n"
	    ");\n");
	const struct conf_service *f;
	struct conf_service *d;

	(void)state;
	assert_int_equal(c->nservices, 2);
	assert_int_equal(c->nfronts, 1);
	assert_null(conf_service_find(c, "site"));
	assert_null(conf_front_find(c, "a"));
	f = conf_front_find(c, "site");
	assert_non_null(f);
	assert_int_equal(f->nroutes, 2);
	assert_string_equal(f->routes[0].prefix, "/b/");
	assert_string_equal(f->routes[0].service, "b");
	assert_string_equal(f->routes[1].prefix, "/");
	assert_int_equal(f->line, 5);
	assert_null(conf_service_find(c, "a")->routes);
	d = conf_service_dup(f);
	assert_non_null(d);
	assert_true(conf_service_equal(d, f));
	free(d->routes[1].service);
	d->routes[1].service = strdup("b");
	assert_false(conf_service_equal(d, f));
	assert_false(conf_service_equal(d, conf_service_find(c, "a")));
	conf_service_free(d);
	conf_free(c);
}

#define UNAV_HEAD                                                                                  \
	"dns = { zone = \"svc.test\"; ns = ( { name = \"ns1.svc.test\"; address = "                \
	"\"127.0.0.1\"; } ); };\n"                                                                 \
	"network = { mode = \"user\"; hold = \"proxy\"; };\n"
#define UNAV_DEFAULTS                                                                              \
	"defaults = { backend = \"exec\"; ready = \"tcp\"; exec = { command = \"true\"; }; "

/* unavailable: its defaults, its keys, the defaults group replaced as a whole, the checks. */
static void test_unavailable(void **state)
{
	struct conf *c = load_good(
	    UNAV_HEAD UNAV_DEFAULTS
	    "unavailable = { status = 429; }; };\n"
	    "services = (\n"
	    " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.10\"; ports = ( 80, "
	    "81 );\n"
	    "   unavailable = { retry_after = 30; body = \"later\"; ports = 81; }; },\n"
	    " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.11\"; ports = 80;\n"
	    "   unavailable = { retry_after = \"1500ms\"; content_type = \"text/html\"; }; "
	    "},\n"
	    " { name = \"c\"; dns = \"c.svc.test\"; address = \"127.0.0.12\"; ports = 80; }\n"
	    ");\n");
	const struct conf_service *a, *b, *cc;
	const struct conf_unavailable *u;
	struct conf_service *d;
	char *e;

	(void)state;
	a = conf_service_find(c, "a");
	b = conf_service_find(c, "b");
	cc = conf_service_find(c, "c");
	/* a's own group replaces the defaults': status back to 503. */
	assert_null(conf_unavailable_on(a, 80));
	u = conf_unavailable_on(a, 81);
	assert_non_null(u);
	assert_int_equal(u->status, 503);
	assert_int_equal(u->retry_after_ms, 30000);
	assert_string_equal(u->body, "later");
	assert_string_equal(u->content_type, "text/plain; charset=utf-8");
	u = conf_unavailable_on(b, 80);
	assert_non_null(u);
	assert_int_equal(u->retry_after_ms, 1500);
	assert_string_equal(u->content_type, "text/html");
	assert_string_equal(u->body, "503 Service Unavailable: try again shortly\n");
	/* c takes the defaults' group: every port, 429. */
	u = conf_unavailable_on(cc, 80);
	assert_non_null(u);
	assert_int_equal(u->status, 429);
	assert_int_equal(u->retry_after_ms, 5000);
	/* A copy is equal; a changed answer needs no new instance. */
	d = conf_service_dup(a);
	assert_non_null(d);
	assert_true(conf_unavailable_equal(&d->unavailable, &a->unavailable));
	free(d->unavailable.body);
	d->unavailable.body = strdup("other");
	assert_false(conf_unavailable_equal(&d->unavailable, &a->unavailable));
	assert_true(conf_service_equal(d, a));
	assert_false(conf_unavailable_equal(&b->unavailable, &a->unavailable));
	conf_service_free(d);
	conf_free(c);

	e = load_bad(
	    UNAV_HEAD UNAV_DEFAULTS
	    "};\n"
	    "services = (\n"
	    " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.10\"; ports = 80;\n"
	    "   unavailable = { status = 200; retry_after = \"soon\"; colour = 1;\n"
	    "     content_type = \"a\\nb\"; ports = ( 80, 8080 ); }; },\n"
	    " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.11\"; ports = 80;\n"
	    "   unavailable = { ports = 8080; retry_after = 100000; }; },\n"
	    " { name = \"c\"; dns = \"c.svc.test\"; address = \"127.0.0.12\"; ports = 80;\n"
	    "   unavailable = 503; }\n"
	    ");\n");
	assert_string_equal(
	    e,
	    "bad.conf:6: services[0].unavailable.status: 200 is out of range (400..599)\n"
	    "bad.conf:6: services[0].unavailable.retry_after: bad duration \"soon\" (want e.g. "
	    "\"250ms\", \"30s\", \"5m\", \"1h\")\n"
	    "bad.conf:6: unknown key \"services[0].unavailable.colour\"\n"
	    "bad.conf:7: services[0].unavailable.content_type: only printable ASCII may go into "
	    "a header\n"
	    "bad.conf:9: services[1].unavailable.retry_after: 100000 is out of range (0..86400)\n"
	    "bad.conf:11: services[2].unavailable: want a group { ... }, not an integer\n");
	free(e);
	e = load_bad(
	    UNAV_HEAD UNAV_DEFAULTS
	    "};\n"
	    "services = (\n"
	    " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.11\"; ports = 80;\n"
	    "   unavailable = { ports = ( 80, 8080 ); }; }\n"
	    ");\n");
	assert_string_equal(
	    e,
	    "bad.conf:6: services[0].unavailable.ports: 8080 is not one of the service's ports\n");
	free(e);
	e = load_bad(
	    "dns = { zone = \"svc.test\"; ns = ( { name = \"ns1.svc.test\"; address = "
	    "\"127.0.0.1\"; } ); };\n"
	    "network = { mode = \"bridge\"; };\n"
	    "services = ( { name = \"b\"; dns = \"b.svc.test\"; address = \"10.77.0.2\"; "
	    "ports = 80;\n"
	    "  backend = \"exec\"; exec = { command = \"true\"; }; unavailable = { }; } );\n");
	assert_string_equal(e,
	                    "bad.conf:4: services[0].unavailable: an answer needs network.hold = "
	                    "\"proxy\" (hold \"syn\" can only reset)\n");
	free(e);
}

/* wake_queue: off by default, a bound when set. */
static void test_wake_queue(void **state)
{
	struct conf *c;
	char *e;

	(void)state;
	c = load_good(ZONE);
	assert_int_equal(c->wake_queue, 0);
	conf_free(c);
	c = load_good(ZONE "max_instances = 2; wake_queue = 16;\n");
	assert_int_equal(c->wake_queue, 16);
	conf_free(c);
	e = load_bad(ZONE "wake_queue = -1;\nwake_queue2 = 3;\n");
	assert_string_equal(e, "bad.conf:2: wake_queue: -1 is out of range (0..100000)\n"
	                       "bad.conf:3: unknown key \"wake_queue2\"\n");
	free(e);
	e = load_bad(ZONE "wake_queue = \"8\";\n");
	assert_string_equal(e, "bad.conf:2: wake_queue: want an integer, not a string\n");
	free(e);
}

/* max_booting: 2 per online CPU by default, 0 (no limit) or a bound; nice: -5, -20..0. */
static void test_boot_slots(void **state)
{
	struct conf *c;
	char *e;

	(void)state;
	c = load_good(ZONE);
	assert_int_equal(c->max_booting, 2 * sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(c->nice, -5);
	conf_free(c);
	c = load_good(ZONE "max_booting = 0;\nnice = -12;\n");
	assert_int_equal(c->max_booting, 0);
	assert_int_equal(c->nice, -12);
	conf_free(c);
	c = load_good(ZONE "max_booting = 7;\nnice = 0;\n");
	assert_int_equal(c->max_booting, 7);
	assert_int_equal(c->nice, 0);
	conf_free(c);
	e = load_bad(ZONE "max_booting = 100001;\nnice = 1;\n");
	assert_string_equal(e, "bad.conf:2: max_booting: 100001 is out of range (0..100000)\n"
	                       "bad.conf:3: nice: 1 is out of range (-20..0)\n");
	free(e);
	e = load_bad(ZONE "nice = \"high\";\n");
	assert_string_equal(e, "bad.conf:2: nice: want an integer, not a string\n");
	free(e);
}

/* pool: off by default; a size per shape; bad sizes and keys said where they are. */
static void test_pool(void **state)
{
	struct conf *c;
	char *e;

	(void)state;
	c = load_good(ZONE);
	assert_int_equal(c->pool_size, 0);
	conf_free(c);
	c = load_good(ZONE "pool = { size = 4; };\n");
	assert_int_equal(c->pool_size, 4);
	conf_free(c);
	e = load_bad(ZONE "pool = { size = 65; spare = 1; };\n");
	assert_string_equal(e, "bad.conf:2: pool.size: 65 is out of range (0..64)\n"
	                       "bad.conf:2: unknown key \"pool.spare\"\n");
	free(e);
	e = load_bad(ZONE "pool = 4;\n");
	assert_string_equal(e, "bad.conf:2: pool: want a group { ... }, not an integer\n");
	free(e);
}

/* address6: parsed, copied, compared; bad ones and doubles reported where they are. */
static void test_address6(void **state)
{
	struct conf *c =
	    load_good(ZONE "network = { mode = \"user\"; };\n"
	                   "services = (\n"
	                   " { name = \"a\"; dns = \"a.svc.test\"; address = "
	                   "\"127.0.0.2\"; address6 = \"FD77::2\"; ports = 80; " EXEC "},\n"
	                   " { name = \"b\"; dns = \"b.svc.test\"; address = "
	                   "\"127.0.0.3\"; ports = 80; " EXEC "}\n"
	                   ");\n");
	struct in6_addr want;
	struct conf_service *d;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "fd77::2", &want), 1);
	assert_true(c->services[0].has_address6);
	assert_memory_equal(&c->services[0].address6, &want, sizeof(want));
	assert_false(c->services[1].has_address6);
	d = conf_service_dup(&c->services[0]);
	assert_true(conf_service_equal(d, &c->services[0]));
	d->address6.s6_addr[15] = 3;
	assert_false(conf_service_equal(d, &c->services[0]));
	d->address6 = want;
	d->has_address6 = false;
	assert_false(conf_service_equal(d, &c->services[0]));
	conf_service_free(d);
	conf_free(c);
}

/* Bad address6 values, an address6 used twice, and where it cannot go. */
static void test_address6_bad(void **state)
{
	char *errs;

	(void)state;
	errs = load_bad(
	    ZONE "network = { mode = \"user\"; hold = \"none\"; };\n"
	         "services = (\n"
	         " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.2\"; "
	         "address6 = \"fd77::2\"; ports = 80; " EXEC "},\n"
	         " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.3\"; "
	         "address6 = \"fd77:0::2\"; ports = 80; " EXEC "},\n"
	         " { name = \"c\"; dns = \"c.svc.test\"; address = \"127.0.0.4\"; "
	         "address6 = \"10.0.0.1\"; ports = 80; " EXEC "},\n"
	         " { name = \"d\"; dns = \"d.svc.test\"; address = \"127.0.0.5\"; "
	         "address6 = \"::ffff:10.0.0.1\"; ports = 80; " EXEC "},\n"
	         " { name = \"e\"; dns = \"e.svc.test\"; address = \"127.0.0.6\"; "
	         "address6 = \"ff02::1\"; ports = 80; " EXEC "},\n"
	         " { name = \"f\"; dns = \"f.svc.test\"; address = \"127.0.0.7\"; "
	         "address6 = \"::\"; ports = 80; " EXEC "},\n"
	         " { name = \"g\"; dns = \"g.svc.test\"; address = \"127.0.0.8\"; "
	         "address6 = \"fd77::8\"; replicas = { max = 2; target = 5; }; address_pool = "
	         "\"127.0.1.0/24\"; ports = 80; " EXEC "},\n"
	         " { name = \"h\"; dns = \"*.h.svc.test\"; address6 = \"fd77::9\"; "
	         "address_pool = \"127.0.2.0/24\"; image = \"/x/{label}\"; ports = 80; " EXEC "}\n"
	         ");\n");
	assert_string_equal(
	    errs,
	    "bad.conf:5: services[1].address6: fd77::2 is already used by service \"a\"\n"
	    "bad.conf:6: services[2].address6: bad IPv6 address \"10.0.0.1\" (want e.g. "
	    "\"fd77::2\")\n"
	    "bad.conf:7: services[3].address6: bad IPv6 address \"::ffff:10.0.0.1\" (an IPv4 "
	    "address belongs in \"address\")\n"
	    "bad.conf:8: services[4].address6: bad IPv6 address \"ff02::1\" (a multicast "
	    "address)\n"
	    "bad.conf:9: services[5].address6: bad IPv6 address \"::\" (the unspecified address "
	    "is no service's)\n"
	    "bad.conf:10: services[6].address6: goes with one instance, not replicas.max 2 (the "
	    "replicas have IPv4 addresses only)\n"
	    "bad.conf:11: services[7].address6: a pattern service's instances have no IPv6 "
	    "address (their addresses come from address_pool)\n");
	free(errs);
}

/* The checks across services: zone, subnet, duplicates, backends. */
static void test_cross_checks(void **state)
{
	char *errs, *text;

	(void)state;
	assert_true(asprintf(&text,
	                     ZONE
	                     "defaults = { ports = 80; image = \"%s/kernel.img\"; };\n"
	                     "services = (\n"
	                     "  { name = \"a\"; dns = ( \"svc.test\", \"a.svc.test\" ); address = "
	                     "\"10.77.0.1\"; },\n"
	                     "  { name = \"b\"; dns = \"A.svc.test\"; address = \"10.77.1.2\"; },\n"
	                     "  { name = \"c\"; dns = \"c.svc.test\"; address = \"10.77.1.2\"; "
	                     "backend = \"xen\"; },\n"
	                     "  { name = \"d\"; dns = \"d.svc.test\"; address = \"10.77.0.9\"; "
	                     "backend = \"exec\"; }\n"
	                     ");\n",
	                     tmpdir) > 0);
	errs = load_bad(text);
	free(text);
	assert_string_equal(
	    errs, "bad.conf:4: services[0].address: 10.77.0.1 is the bridge's address (the first) "
	          "in network.subnet 10.77.0.0/24\n"
	          "bad.conf:5: services[1].address: 10.77.1.2 is outside network.subnet "
	          "10.77.0.0/24\n"
	          "bad.conf:5: services[1].dns: \"a.svc.test\" is already used by service \"a\"\n"
	          "bad.conf:6: services[2].address: 10.77.1.2 is outside network.subnet "
	          "10.77.0.0/24\n"
	          "bad.conf:6: services[2].address: 10.77.1.2 is already used by service \"b\"\n"
	          "bad.conf:7: services[3]: backend \"exec\" needs \"exec.command\"\n");
	free(errs);
}

#define IDLE_HEAD                                                                                  \
	ZONE "network = { mode = \"user\"; hold = \"proxy\"; };\n"                                 \
	     "defaults = { backend = \"exec\"; ready = \"tcp\"; exec = { command = \"true\"; }; "  \
	     "};\n"

/* idle_ignore, idle_ignore_answer, idle_check, idle_check_interval, idle_max: values, defaults. */
static void test_idle_keys(void **state)
{
	struct conf *c = load_good(
	    IDLE_HEAD
	    "services = (\n"
	    " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.9\"; ports = 80;\n"
	    "   idle_ignore = ( \"10.0.0.5\", \"192.0.2.0/24\", \"/healthz\" );\n"
	    "   idle_ignore_answer = 200; idle_check = \"http:/idle\";\n"
	    "   idle_check_interval = \"2s\"; idle_timeout = \"30s\"; idle_max = \"10m\"; },\n"
	    " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.10\"; ports = 80; },\n"
	    " { name = \"c\"; dns = \"c.svc.test\"; address = \"127.0.0.11\"; ports = 80;\n"
	    "   idle_check = \"console:^IDLE-OK$\"; idle_max = \"5m\"; }\n"
	    ");\n");
	const struct conf_service *cc;
	const struct conf_service *a = conf_service_find(c, "a"), *b = conf_service_find(c, "b");
	struct in_addr in;
	struct conf_service *d;

	(void)state;
	assert_int_equal(a->nignore_nets, 2);
	assert_int_equal(a->ignore_nets[0].prefix, 32);
	assert_int_equal(a->ignore_nets[1].prefix, 24);
	assert_int_equal(a->nignore_paths, 1);
	assert_string_equal(a->ignore_paths[0], "/healthz");
	assert_int_equal(a->ignore_answer, 200);
	assert_string_equal(a->idle_check, "/idle");
	assert_int_equal(a->idle_check_interval_ms, 2000);
	assert_int_equal(a->idle_max_ms, 600000);
	inet_pton(AF_INET, "192.0.2.77", &in);
	assert_true(conf_ignored_addr(a, in));
	inet_pton(AF_INET, "192.0.3.1", &in);
	assert_false(conf_ignored_addr(a, in));
	inet_pton(AF_INET, "10.0.0.5", &in);
	assert_true(conf_ignored_addr(a, in));
	assert_true(conf_ignored_path(a, "/healthz", 8));
	assert_true(conf_ignored_path(a, "/healthz/db?x=1", 15));
	assert_false(conf_ignored_path(a, "/health", 7));
	assert_false(conf_ignored_path(b, "/healthz", 8));
	/* Defaults: nothing ignored, nobody asked, ask again after 5 s, no idle_max. */
	assert_int_equal(b->nignore_nets + b->nignore_paths, 0);
	assert_int_equal(b->ignore_answer, 0);
	assert_null(b->idle_check);
	assert_int_equal(b->idle_check_interval_ms, 5000);
	assert_int_equal(b->idle_max_ms, 0);
	cc = conf_service_find(c, "c");
	assert_null(cc->idle_check);
	assert_string_equal(cc->idle_check_re, "^IDLE-OK$");
	assert_null(conf_service_find(c, "a")->idle_check_re);
	d = conf_service_dup(a);
	assert_non_null(d);
	assert_true(conf_service_equal(d, a));
	d->ignore_nets[1].prefix = 25;
	assert_false(conf_service_equal(d, a));
	d->ignore_nets[1].prefix = 24;
	free(d->ignore_paths[0]);
	d->ignore_paths[0] = strdup("/health");
	assert_false(conf_service_equal(d, a));
	conf_service_free(d);
	conf_free(c);
}

/* Bad idle keys: each a clear error, nothing loaded. */
static void test_idle_keys_bad(void **state)
{
	char *errs;

	(void)state;
	errs = load_bad(
	    IDLE_HEAD
	    "services = (\n"
	    " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.9\"; ports = 80;\n"
	    "   idle_ignore = ( \"192.0.2.1/24\", \"300.1.1.1\", \"/a b\", \"10.0.0.0/33\" );\n"
	    "   idle_ignore_answer = 204; idle_check = \"tcp:/x\";\n"
	    "   idle_check_interval = \"50ms\"; },\n"
	    " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.10\"; ready = "
	    "\"delay:1ms\";\n"
	    "   idle_check = \"http:/idle\"; idle_max = \"30s\"; },\n"
	    " { name = \"c\"; dns = \"c.svc.test\"; address = \"127.0.0.11\"; ports = 80;\n"
	    "   idle_max = \"30s\"; idle_ignore = \"10.0.0.1\"; idle_ignore_answer = 200; }\n"
	    ");\n");
	assert_string_equal(
	    errs,
	    "bad.conf:6: services[0].idle_ignore[0]: \"192.0.2.1/24\": host bits set after the "
	    "prefix (want a client network \"192.0.2.0/24\", an address, or a path \"/healthz\")\n"
	    "bad.conf:6: services[0].idle_ignore[1]: \"300.1.1.1\": bad address (want a client "
	    "network \"192.0.2.0/24\", an address, or a path \"/healthz\")\n"
	    "bad.conf:6: services[0].idle_ignore[2]: bad path \"/a b\" (no spaces, \"?\" or "
	    "\"#\")\n"
	    "bad.conf:6: services[0].idle_ignore[3]: \"10.0.0.0/33\": bad prefix (0 to 32) (want a "
	    "client network \"192.0.2.0/24\", an address, or a path \"/healthz\")\n"
	    "bad.conf:7: services[0].idle_ignore_answer: 204: want 0 (wake the guest) or a status "
	    "200 to 599 (not 204 or 304)\n"
	    "bad.conf:7: services[0].idle_check: bad value \"tcp:/x\" (want \"http:/PATH\", "
	    "\"console:REGEX\" or \"none\")\n"
	    "bad.conf:8: services[0].idle_check_interval: 50 ms is too short (at least "
	    "\"100ms\")\n"
	    "bad.conf:10: services[1].idle_check: asks the guest on its first port, but \"ports\" "
	    "is not set\n"
	    "bad.conf:10: services[1].idle_max: must be more than idle_timeout (60000 ms)\n"
	    "bad.conf:12: services[2].idle_ignore_answer: answers a path of idle_ignore, and it "
	    "lists none\n"
	    "bad.conf:12: services[2].idle_max: bounds how long idle_check may say \"not now\", "
	    "and idle_check is not set\n");
	free(errs);
	/* Only the proxy reads a request's path. */
	errs = load_bad(ZONE "network = { mode = \"user\"; hold = \"none\"; };\n"
	                     "services = (\n"
	                     " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.9\"; "
	                     "ports = 80; " EXEC "idle_ignore = ( \"10.0.0.1\", \"/healthz\" ); }\n"
	                     ");\n");
	assert_string_equal(errs, "bad.conf:4: services[0].idle_ignore: a path (\"/healthz\") "
	                          "needs network.hold \"proxy\" (the proxy reads each request's "
	                          "path), not \"none\"\n");
	free(errs);
	/* idle_check = "console:REGEX": the expression compiles. */
	errs = load_bad(IDLE_HEAD "services = (\n"
	                          " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.9\"; "
	                          "ports = 80; idle_check = \"console:(\"; }\n"
	                          ");\n");
	assert_true(strncmp(errs,
	                    "bad.conf:5: services[0].idle_check: bad regular expression \"(\"",
	                    58) == 0);
	free(errs);
	/* idle_notice: before a suspend only; its timeout bounded. */
	errs =
	    load_bad(IDLE_HEAD "services = (\n"
	                       " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.9\"; "
	                       "ports = 80; idle_notice = \"http:/bye\"; },\n"
	                       " { name = \"b\"; dns = \"b.svc.test\"; address = \"127.0.0.10\"; "
	                       "ports = 80; idle_notice_timeout = \"20m\"; }\n"
	                       ");\n");
	assert_string_equal(errs,
	                    "bad.conf:5: services[0].idle_notice: is sent before a suspend, "
	                    "and on_idle is \"pause\"\n"
	                    "bad.conf:6: services[1].idle_notice_timeout: 1200000 ms is out of "
	                    "range (\"100ms\" to \"10m\")\n");
	free(errs);
}

/* idle_notice on a VM that suspends: its path and timeout. */
static void test_idle_notice(void **state)
{
	struct conf *c;
	char *text;

	(void)state;
	assert_true(asprintf(&text,
	                     ZONE "network = { mode = \"user\"; hold = \"proxy\"; };\n"
	                          "services = (\n"
	                          " { name = \"a\"; dns = \"a.svc.test\"; address = \"127.0.0.9\"; "
	                          "ports = 80; image = \"%s/kernel.img\"; ready = \"http:/\";\n"
	                          "   on_idle = \"suspend\"; idle_notice = \"http:/bye\"; "
	                          "idle_notice_timeout = \"2s\"; }\n"
	                          ");\n",
	                     tmpdir) > 0);
	c = load_good(text);
	free(text);
	assert_string_equal(c->services[0].idle_notice, "/bye");
	assert_int_equal(c->services[0].idle_notice_timeout_ms, 2000);
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_hostport),
	    cmocka_unit_test(test_dns_names),
	    cmocka_unit_test(test_service_names),
	    cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_enum_names),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_dns_limits),
	    cmocka_unit_test(test_hold_follows_mode),
	    cmocka_unit_test(test_defaults_inherit),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_service_dup_equal),
	    cmocka_unit_test(test_several_errors),
	    cmocka_unit_test(test_syntax_error),
	    cmocka_unit_test(test_int_wrap),
	    cmocka_unit_test(test_include),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_cross_checks),
	    cmocka_unit_test(test_template),
	    cmocka_unit_test(test_fronts),
	    cmocka_unit_test(test_address6),
	    cmocka_unit_test(test_address6_bad),
	    cmocka_unit_test(test_user),
	    cmocka_unit_test(test_unavailable),
	    cmocka_unit_test(test_wake_queue),
	    cmocka_unit_test(test_boot_slots),
	    cmocka_unit_test(test_pool),
	    cmocka_unit_test(test_idle_keys),
	    cmocka_unit_test(test_idle_keys_bad),
	    cmocka_unit_test(test_idle_notice),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
