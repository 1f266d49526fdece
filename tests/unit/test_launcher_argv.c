/* The exec backend's command template: quoting, words, placeholders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "exec.h"

static const struct exec_vars vars = {
    .image = "/images/my app.elf",
    .cmdline = "--ipv4=10.0.0.2/24 'two words' \"x y\"",
    .tap = "bk1234www",
    .mac = "02:62:6b:00:00:01",
    .address = "10.77.0.2",
    .memory = "16",
    .name = "www",
};

/* Split TEMPLATE and compare with the NULL-terminated EXPECT. */
static void expect_argv(const struct exec_vars *v, const char *template, const char **expect)
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
	struct exec_vars v = vars;

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_words),  cmocka_unit_test(test_quotes),
	    cmocka_unit_test(test_placeholders), cmocka_unit_test(test_empty_values),
	    cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
