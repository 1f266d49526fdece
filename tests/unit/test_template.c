/*
 * Snapshot templates (launcher/revive/template.c) on an instance made by hand with
 * a backend that only names a key and "saves" by writing a file: no VMM, no
 * event loop. Whether a template is taken, dropped (another key, cut
 * short, no key file), and written whole (state and key renamed from .tmp);
 * with a memory file (.ram, as the QEMU backend keeps one): renamed with
 * the rest, its size in the key file, dropped when missing, cut short or
 * there without the key file's word for it.
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
#include "../../launcher/core.h"
#include "../../launcher/revive/revive_int.h"
#include "revive.h"

static const char *fake_key = "argv qemu\nargv -m\nargv 16M\n";
static char saved_to[4096];
static bool fake_ram; /* the save writes a .ram.tmp of 8192 bytes too */

static char *fake_template_key(struct instance *inst)
{
	(void)inst;
	return strdup(fake_key);
}

/* "Saves" the guest: 1000 bytes to PATH; the report is the test's to make. */
static int fake_template_save(struct instance *inst, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fputc('s', f);
	fclose(f);
	snprintf(saved_to, sizeof(saved_to), "%s", path);
	if (fake_ram) {
		char ram[4096];

		assert_int_equal(launcher_template_ram_path(inst, true, ram, sizeof(ram)), 0);
		assert_non_null(strstr(ram, "/templates/www.ram.tmp"));
		assert_non_null(f = fopen(ram, "w"));
		assert_int_equal(ftruncate(fileno(f), 8192), 0);
		fclose(f);
	}
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
	if ((f->inst.rv = calloc(1, sizeof(*f->inst.rv))) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	fake_ram = false;
	free(f->inst.rv->tpl_key);
	free(f->inst.rv);
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

	assert_false(launcher_inst_makes_template(&f->inst));
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_string_equal(f->inst.rv->tpl_key, fake_key);
	assert_true(launcher_inst_makes_template(&f->inst)); /* the backend's start sees it */
	assert_int_equal(template_save_begin(&f->inst), 0);
	assert_true(f->inst.rv->templating);
	assert_non_null(strstr(saved_to, "/templates/www.state.tmp"));
	launcher_inst_templated(&f->inst, true); /* not booting: readiness is a no-op */
	assert_false(f->inst.rv->templating);
	assert_null(f->inst.rv->tpl_key);
	assert_true(exists(f, "www.state"));
	assert_true(exists(f, "www.key"));
	assert_false(exists(f, "www.state.tmp"));
	assert_false(exists(f, "www.key.tmp"));
	assert_false(exists(f, "www.ram.tmp"));
	assert_int_equal(exists(f, "www.ram"), fake_ram);
	assert_false(launcher_inst_makes_template(&f->inst));
}

/* The key file's text. */
static char *key_text(struct fixture *f)
{
	static char buf[4096];
	char p[4096];
	FILE *fp;
	size_t n;

	snprintf(p, sizeof(p), "%s/templates/www.key", f->dir);
	assert_non_null(fp = fopen(p, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void ram_file(struct fixture *f, char *p, size_t len)
{
	snprintf(p, len, "%s/templates/www.ram", f->dir);
}

static void test_ram_made_and_taken(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	fake_ram = true;
	make_template(f);
	assert_non_null(strstr(key_text(f), "\nram 8192\nargv qemu\n"));
	assert_true(template_take(&f->inst, path, sizeof(path)));
	assert_true(exists(f, "www.ram"));
}

static void test_ram_cut_short_drops(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	fake_ram = true;
	make_template(f);
	ram_file(f, path, sizeof(path));
	assert_int_equal(truncate(path, 4096), 0);
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_false(exists(f, "www.ram"));
	assert_false(exists(f, "www.state"));
	assert_false(exists(f, "www.key"));
	assert_non_null(f->inst.rv->tpl_key); /* this boot makes a new one */
}

static void test_ram_missing_drops(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	fake_ram = true;
	make_template(f);
	ram_file(f, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_false(exists(f, "www.state"));
}

/* A .ram the key file does not speak of is no part of this template. */
static void test_stray_ram_drops(void **state)
{
	struct fixture *f = *state;
	char path[4096];
	FILE *fp;

	make_template(f);
	ram_file(f, path, sizeof(path));
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_false(exists(f, "www.ram"));
	assert_false(exists(f, "www.state"));
}

static void test_make_and_take(void **state)
{
	struct fixture *f = *state;
	char path[4096], want[4096];

	make_template(f);
	assert_true(template_take(&f->inst, path, sizeof(path)));
	snprintf(want, sizeof(want), "%s/templates/www.state", f->dir);
	assert_string_equal(path, want);
	assert_null(f->inst.rv->tpl_key); /* a restore makes no template */
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
	assert_non_null(f->inst.rv->tpl_key); /* this boot makes a new one */
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
	fake_ram = true;
	assert_int_equal(template_save_begin(&f->inst), 0);
	assert_true(exists(f, "www.ram.tmp"));
	launcher_inst_templated(&f->inst, false);
	assert_false(exists(f, "www.state"));
	assert_false(exists(f, "www.state.tmp"));
	assert_false(exists(f, "www.key"));
	assert_false(exists(f, "www.ram"));
	assert_false(exists(f, "www.ram.tmp"));
}

static void test_off(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	f->svc.template = CONF_TEMPLATE_OFF;
	assert_false(template_wanted(&f->inst));
	assert_false(template_take(&f->inst, path, sizeof(path)));
	assert_null(f->inst.rv->tpl_key);
	assert_int_equal(template_save_begin(&f->inst), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_make_and_take, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_key_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cut_short_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ram_made_and_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ram_cut_short_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ram_missing_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stray_ram_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_save_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
