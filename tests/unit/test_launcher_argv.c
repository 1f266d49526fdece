/* Templates: the exec backend's command (quoting, words) and every backend's placeholders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "proc.h"
#include "exec.h"

static const struct backend_vars vars = {
    .image = "/images/my app.elf",
    .cmdline = "--ipv4=10.0.0.2/24 'two words' \"x y\"",
    .tap = "bk1234www",
    .mac = "02:62:6b:00:00:01",
    .address = "10.77.0.2",
    .memory = "16",
    .name = "www",
};

/* Split TEMPLATE and compare with the NULL-terminated EXPECT. */
static void expect_argv(const struct backend_vars *v, const char *template, const char **expect)
{
	char err[128] = "";
	char **argv = backend_exec_argv(template, v, err, sizeof(err));
	size_t i;

	if (argv == NULL)
		fail_msg("%s: %s", template, err);
	for (i = 0; expect[i] != NULL; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], expect[i]);
	}
	assert_null(argv[i]);
	backend_exec_argv_free(argv);
}

static void expect_error(const char *template, const char *msg)
{
	char err[128] = "";

	assert_null(backend_exec_argv(template, &vars, err, sizeof(err)));
	assert_non_null(strstr(err, msg));
}

static void test_plain_words(void **state)
{
	(void)state;
	expect_argv(&vars, "  busybox   httpd -f\t-p 8080 ",
	            (const char *[]){"busybox", "httpd", "-f", "-p", "8080", NULL});
}

static void test_quotes(void **state)
{
	(void)state;
	/* Placeholders are substituted in single quotes too; "${x}" is the shell's. */
	expect_argv(&vars, "sh -c 'sleep 1; exec httpd -p \"{address}\" -h ${HOME}/{name}'",
	            (const char *[]){"sh", "-c",
	                             "sleep 1; exec httpd -p \"10.77.0.2\" -h ${HOME}/www", NULL});
	expect_argv(&vars, "sh -c 'f() { echo {}; }; f' x{",
	            (const char *[]){"sh", "-c", "f() { echo {}; }; f", "x{", NULL});
	expect_argv(&vars, "echo \"a 'b' \\\"c\\\" \\\\ {name}\" '' \"\" x\\ y",
	            (const char *[]){"echo", "a 'b' \"c\" \\ www", "", "", "x y", NULL});
	expect_argv(&vars, "a'b'\"c\"d", (const char *[]){"abcd", NULL});
}

static void test_placeholders(void **state)
{
	(void)state;
	/* A value stays one word, spaces and all; {cmdline} becomes several. */
	expect_argv(&vars, "solo5-hvt --mem={memory} --net:service0={tap} {image} {cmdline}",
	            (const char *[]){"solo5-hvt", "--mem=16", "--net:service0=bk1234www",
	                             "/images/my app.elf", "--ipv4=10.0.0.2/24", "two words", "x y",
	                             NULL});
	expect_argv(&vars, "run -p {address}:8080 --mac {mac} -n {name}",
	            (const char *[]){"run", "-p", "10.77.0.2:8080", "--mac", "02:62:6b:00:00:01",
	                             "-n", "www", NULL});
	expect_argv(&vars, "run \"{cmdline}\"",
	            (const char *[]){"run", "--ipv4=10.0.0.2/24 'two words' \"x y\"", NULL});
}

static void test_empty_values(void **state)
{
	struct backend_vars v = vars;

	(void)state;
	v.cmdline = "";
	v.tap = "";
	/* Unquoted and empty: no word. Quoted: an empty word. */
	expect_argv(&v, "hvt {tap} {image} {cmdline}",
	            (const char *[]){"hvt", "/images/my app.elf", NULL});
	expect_argv(&v, "hvt \"{tap}\" {cmdline}", (const char *[]){"hvt", "", NULL});
	v.cmdline = "{image} $HOME `id`";
	/* Inside a value nothing is expanded, by us or by a shell. */
	expect_argv(&v, "echo {cmdline}",
	            (const char *[]){"echo", "{image}", "$HOME", "`id`", NULL});
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("echo 'open", "unterminated quote");
	expect_error("echo \"open", "unterminated quote");
	expect_error("run {nope}", "unknown placeholder {nope}");
	expect_error("   ", "empty command");
	expect_error("", "empty command");
}

/* A string template (a cmdline): placeholders replaced, nothing else touched. */
static void expect_expand(const char *tmpl, const char *want)
{
	struct backend_vars v;
	struct backend_vars_buf b;
	char err[128] = "", *s;

	memset(&v, 0, sizeof(v));
	backend_vars_net(&v, &b, "10.77.0.2", 24, "10.77.0.1", "10.77.0.53");
	v.mac = "02:62:6b:00:00:01";
	v.name = "www";
	v.port = "80";
	v.image = "/i.elf";
	v.memory = "16";
	v.tap = "bk1234www";
	if ((s = backend_expand(tmpl, &v, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", tmpl, err);
	assert_string_equal(s, want);
	free(s);
}

static void test_expand(void **state)
{
	struct backend_vars v = {0};
	char err[128] = "";

	(void)state;
	expect_expand("ip={address}/{prefix} gw={gateway} name={name} port={port}",
	              "ip=10.77.0.2/24 gw=10.77.0.1 name=www port=80");
	expect_expand("netdev.ip={address}/{prefix}:{gateway} --",
	              "netdev.ip=10.77.0.2/24:10.77.0.1 --");
	expect_expand("{netmask} {dns} {mac} {tap} {image} {memory}",
	              "255.255.255.0 10.77.0.53 02:62:6b:00:00:01 bk1234www /i.elf 16");
	/* Not placeholders: as written. */
	expect_expand("${address} {Address} {} { x } 'q' \\",
	              "${address} {Address} {} { x } 'q' \\");
	expect_expand("", "");
	/* Unknown, and {cmdline} (that is the template itself). */
	assert_null(backend_expand("x {adress}", &v, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown placeholder {adress}"));
	assert_null(backend_expand("{cmdline}", &v, err, sizeof(err)));
	assert_non_null(strstr(err, "{cmdline}"));
}

/* The netmask of each prefix. */
static void test_netmask(void **state)
{
	struct backend_vars v;
	struct backend_vars_buf b;

	(void)state;
	backend_vars_net(&v, &b, "a", 16, "g", "d");
	assert_string_equal(v.netmask, "255.255.0.0");
	assert_string_equal(v.prefix, "16");
	backend_vars_net(&v, &b, "a", 32, "g", "d");
	assert_string_equal(v.netmask, "255.255.255.255");
	backend_vars_net(&v, &b, "a", 0, "g", "d");
	assert_string_equal(v.netmask, "0.0.0.0");
	backend_vars_net(&v, &b, "a", 25, "g", "d");
	assert_string_equal(v.netmask, "255.255.255.128");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_words),  cmocka_unit_test(test_quotes),
	    cmocka_unit_test(test_placeholders), cmocka_unit_test(test_empty_values),
	    cmocka_unit_test(test_errors),       cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_netmask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
