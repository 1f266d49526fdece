/*
 * Snapshot templates (launcher/template.c) on an instance made by hand with
 * a backend that only names a key and "saves" by writing a file: no VMM, no
 * event loop. Whether a template is taken, dropped (another key, cut
 * short, no key file), and written whole (state and key renamed from .tmp).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "../../launcher/backend.h"
#include "../../launcher/internal.h"

static const char *fake_key = "argv qemu\nargv -m\nargv 16M\n";
static char saved_to[4096];

static char *fake_template_key(struct instance *inst)
{
	(void)inst;
	return strdup(fake_key);
}

/* "Saves" the guest: 1000 bytes to PATH; the report is the test's to make. */
static int fake_template_save(struct instance *inst, const char *path)
{
	FILE *f = fopen(path, "w");

	(void)inst;
	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fputc('s', f);
	fclose(f);
	snprintf(saved_to, sizeof(saved_to), "%s", path);
	return 0;
}

static int fake_restore(struct instance *inst, const char *path)
{
	(void)inst;
	(void)path;
	return 0;
}

static const struct backend_ops fake_ops = {
    .name = "fake",
    .restore = fake_restore,
    .template_key = fake_template_key,
    .template_save = fake_template_save,
};

struct fixture {
	char dir[64];
	struct conf_service svc;
	struct instance inst;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/beckon-tpl.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->svc.name = "www";
	f->svc.template = CONF_TEMPLATE_AUTO;
	f->inst.svc = &f->svc;
	f->inst.state_dir = f->dir;
	f->inst.ops = &fake_ops;
	f->inst.state = INST_STOPPED;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	free(f->inst.rv.tpl_key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static bool exists(struct fixture *f, const char *name)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/templates/%s", f->dir, name);
	return access(p, F_OK) == 0;
}

/* A cold boot with no template makes one: the save, then the key, both renamed. */
static void make_template(struct fixture *f)
{
	char path[4096];

	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_string_equal(f->inst.rv.tpl_key, fake_key);
	assert_int_equal(template_save_begin(&f->inst), 0);
	assert_true(f->inst.rv.templating);
	assert_non_null(strstr(saved_to, "/templates/www.state.tmp"));
	launcher_inst_templated(&f->inst, true); /* not booting: readiness is a no-op */
	assert_false(f->inst.rv.templating);
	assert_null(f->inst.rv.tpl_key);
	assert_true(exists(f, "www.state"));
	assert_true(exists(f, "www.key"));
	assert_false(exists(f, "www.state.tmp"));
	assert_false(exists(f, "www.key.tmp"));
}

static void test_make_and_take(void **state)
{
	struct fixture *f = *state;
	char path[4096], want[4096];

	make_template(f);
	assert_true(template_take(&f->inst, path, sizeof(path)));
	snprintf(want, sizeof(want), "%s/templates/www.state", f->dir);
	assert_string_equal(path, want);
	assert_null(f->inst.rv.tpl_key); /* a restore makes no template */
}

static void test_other_key_drops(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	make_template(f);
	fake_key = "argv qemu\nargv -m\nargv 24M\n";
	assert_false(template_take(&f->inst, path, sizeof(path)));
	fake_key = "argv qemu\nargv -m\nargv 16M\n";
	assert_false(exists(f, "www.state"));
	assert_false(exists(f, "www.key"));
	assert_non_null(f->inst.rv.tpl_key); /* this boot makes a new one */
}

static void test_cut_short_drops(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	make_template(f);
	snprintf(path, sizeof(path), "%s/templates/www.state", f->dir);
	assert_int_equal(truncate(path, 999), 0);
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_false(exists(f, "www.state"));
}

static void test_no_key_file(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	make_template(f);
	snprintf(path, sizeof(path), "%s/templates/www.key", f->dir);
	assert_int_equal(unlink(path), 0);
	assert_false(template_take(&f->inst, path, sizeof(path)));
}

static void test_failed_save_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_int_equal(template_save_begin(&f->inst), 0);
	launcher_inst_templated(&f->inst, false);
	assert_false(exists(f, "www.state"));
	assert_false(exists(f, "www.state.tmp"));
	assert_false(exists(f, "www.key"));
}

static void test_off(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	f->svc.template = CONF_TEMPLATE_OFF;
	assert_false(template_wanted(&f->inst));
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_null(f->inst.rv.tpl_key);
	assert_int_equal(template_save_begin(&f->inst), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_make_and_take, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_key_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cut_short_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_save_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
