/*
 * The shape of a QEMU guest (qemu_shape.c): what a pool VMM must share with
 * the VMM a template was saved from. The command lines are qemu_argv's, so
 * that a change there that breaks the match shows here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qemu.h"

static const uint16_t ports[] = {80};
static const uint16_t host_ports[] = {40080};
static struct conf_qemu q;
static struct qemu_argv_in in;

static int setup(void **state)
{
	(void)state;
	q = (struct conf_qemu){.machine = "microvm", .accel = "tcg", .cpu = "max"};
	in = (struct qemu_argv_in){
	    .binary = "qemu-system-x86_64",
	    .name = "www",
	    .image = "/img/hello.elf",
	    .cmdline = "ip=10.0.2.15/24 gw=10.0.2.2 name=www port=80",
	    .q = &q,
	    .accel = "tcg",
	    .memory = 16 << 20,
	    .vcpus = 1,
	    .mac = "02:62:6b:01:02:03",
	    .ports = ports,
	    .nports = 1,
	    .host_ports = host_ports,
	    .qmp_fd = 3,
	    .nic_via = QEMU_NIC_HUB,
	};
	return 0;
}

/* The shape of qemu_argv(&in) with kernel KIND; NULL when not poolable. */
static char *shape(const char *kind)
{
	char err[128] = "";
	char **argv = qemu_argv(&in, err, sizeof(err));
	char *s;

	if (argv == NULL)
		fail_msg("qemu_argv: %s", err);
	s = qemu_shape(argv, kind);
	qemu_argv_free(argv);
	return s;
}

/* A pool VMM's shape (another name, no cmdline, no host side, -incoming defer). */
static char *pool_shape(const char *kind)
{
	struct qemu_argv_in keep = in;
	char *s;

	in.name = "~pool3";
	in.cmdline = NULL;
	in.mac = "02:62:6b:09:09:09";
	in.tap = NULL;
	in.host_ports = NULL;
	in.nic_via = QEMU_NIC_POOL;
	in.incoming = "defer";
	s = shape(kind);
	in = keep;
	return s;
}

static void assert_same(char *a, char *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void assert_differ(char *a, char *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

/* A service's guest fits a pool VMM: user networking and bridge mode, microvm and pc. */
static void test_fits(void **state)
{
	char *s;

	(void)state;
	s = shape("pvh");
	assert_non_null(strstr(s, "-kernel\npvh\n"));
	assert_non_null(strstr(s, "-device\nvirtio-net-device,netdev=n0\n"));
	assert_null(strstr(s, "www"));
	assert_null(strstr(s, "hostfwd"));
	assert_null(strstr(s, "02:62:6b"));
	assert_same(s, pool_shape("pvh"));
	in.tap = "bk1a2bwww";
	assert_same(shape("pvh"), pool_shape("pvh"));
	q.machine = "pc";
	assert_same(shape("multiboot"), pool_shape("multiboot"));
}

/* Two services of one shape: only the name, cmdline, MAC and host side differ. */
static void test_two_services(void **state)
{
	char *a;

	(void)state;
	a = shape("pvh");
	in.name = "api";
	in.image = "/img/other.elf";
	in.cmdline = "name=api";
	in.mac = "02:62:6b:0a:0b:0c";
	assert_same(a, shape("pvh"));
}

/* What the guest sees differs: another shape. */
static void test_differs(void **state)
{
	char *a = shape("pvh");

	(void)state;
	in.memory = 32 << 20;
	assert_differ(strdup(a), shape("pvh"));
	in.memory = 16 << 20;
	in.vcpus = 2;
	assert_differ(strdup(a), shape("pvh"));
	in.vcpus = 1;
	q.cpu = "qemu64";
	assert_differ(strdup(a), shape("pvh"));
	q.cpu = "max";
	q.nic = "e1000";
	assert_differ(strdup(a), shape("pvh"));
	q.nic = NULL;
	assert_differ(strdup(a), shape("linux"));
	assert_same(a, shape("pvh"));
}

/* Not poolable: a disk, a NIC straight on its host side, a kernel of no known kind, a netdev of the
 * user's. */
static void test_not_poolable(void **state)
{
	char *args[] = {"-netdev", "user,id=extra"};

	(void)state;
	q.disk = "/img/data.raw";
	assert_null(shape("pvh"));
	q.disk = NULL;
	in.nic_via = QEMU_NIC_DIRECT;
	assert_null(shape("pvh"));
	in.nic_via = QEMU_NIC_HUB;
	assert_null(shape("raw"));
	assert_null(shape(NULL));
	q.args = args;
	q.nargs = 2;
	assert_null(shape("pvh"));
}

/* The kernel's kind, from its first bytes, as QEMU's x86 loader tells them apart. */
static void test_kernel_kind(void **state)
{
	char path[] = "/tmp/beckon-shape-XXXXXX";
	unsigned char b[4096];
	uint32_t mb = 0x1BADB002u;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd != -1);
	memset(b, 0, sizeof(b));
	memcpy(b,
	       "\x7f"
	       "ELF",
	       4);
	assert_int_equal(pwrite(fd, b, sizeof(b), 0), sizeof(b));
	assert_string_equal(qemu_kernel_kind(path), "pvh");
	memcpy(b + 1024, &mb, 4);
	assert_int_equal(pwrite(fd, b, sizeof(b), 0), sizeof(b));
	assert_string_equal(qemu_kernel_kind(path), "multiboot");
	memset(b, 0, sizeof(b));
	memcpy(b + 0x202, "HdrS", 4);
	assert_int_equal(pwrite(fd, b, sizeof(b), 0), sizeof(b));
	assert_string_equal(qemu_kernel_kind(path), "linux");
	memset(b, 0, sizeof(b));
	assert_int_equal(pwrite(fd, b, sizeof(b), 0), sizeof(b));
	assert_string_equal(qemu_kernel_kind(path), "raw");
	close(fd);
	unlink(path);
	assert_null(qemu_kernel_kind(path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_fits, setup),
	    cmocka_unit_test_setup(test_two_services, setup),
	    cmocka_unit_test_setup(test_differs, setup),
	    cmocka_unit_test_setup(test_not_poolable, setup),
	    cmocka_unit_test(test_kernel_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
