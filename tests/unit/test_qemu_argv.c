/* The QEMU backend's command line: every word, per network mode and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qemu.h"

static char *extra[] = {"-global", "virtio-net-device.mrg_rxbuf=off"};
static const uint16_t ports[] = {80, 8080};
static const uint16_t host_ports[] = {40080, 48080};

static struct conf_qemu q;
static struct qemu_argv_in in;

static int setup(void **state)
{
	(void)state;
	q = (struct conf_qemu){
	    .machine = "microvm", .accel = "auto", .cpu = "max", .nic = "virtio-net-device"};
	in = (struct qemu_argv_in){
	    .binary = "qemu-system-x86_64",
	    .name = "www",
	    .image = "/img/hello.elf",
	    .cmdline = "ip=10.77.0.2/24 gw=10.77.0.1 name=www port=80",
	    .q = &q,
	    .accel = "kvm",
	    .memory = 16 << 20,
	    .vcpus = 1,
	    .mac = "02:62:6b:01:02:03",
	    .tap = "bk1a2bwww",
	    .ports = ports,
	    .nports = 1,
	    .qmp_fd = 3,
	};
	return 0;
}

static char **build(void)
{
	char err[128] = "";
	char **argv = qemu_argv(&in, err, sizeof(err));

	if (argv == NULL)
		fail_msg("qemu_argv: %s", err);
	return argv;
}

static void expect_argv(const char **expect)
{
	char **argv = build();
	size_t i;

	for (i = 0; expect[i] != NULL; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], expect[i]);
	}
	assert_null(argv[i]);
	qemu_argv_free(argv);
}

/* The word after the first FLAG, NULL when FLAG is absent; freed by the caller. */
static char *value_of(const char *flag)
{
	char **argv = build(), *v = NULL;
	size_t i;

	for (i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++) {
		if (strcmp(argv[i], flag) == 0) {
			v = strdup(argv[i + 1]);
			break;
		}
	}
	qemu_argv_free(argv);
	return v;
}

static void expect_error(const char *msg);

static void expect_flag(const char *flag, const char *want)
{
	char *v = value_of(flag);

	if (want == NULL) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

static void test_bridge(void **state)
{
	(void)state;
	expect_argv((const char *[]){"qemu-system-x86_64",
	                             "-name",
	                             "guest=beckon:www,process=beckon-www",
	                             "-no-user-config",
	                             "-nodefaults",
	                             "-no-reboot",
	                             "-action",
	                             "panic=exit-failure",
	                             "-display",
	                             "none",
	                             "-M",
	                             "microvm,acpi=off",
	                             "-accel",
	                             "kvm",
	                             "-cpu",
	                             "max,-arch-capabilities",
	                             "-m",
	                             "16M",
	                             "-smp",
	                             "1",
	                             "-global",
	                             "virtio-mmio.force-legacy=false",
	                             "-kernel",
	                             "/img/hello.elf",
	                             "-append",
	                             "ip=10.77.0.2/24 gw=10.77.0.1 name=www port=80",
	                             "-serial",
	                             "stdio",
	                             "-chardev",
	                             "socket,id=qmp,fd=3",
	                             "-mon",
	                             "chardev=qmp,mode=control",
	                             "-netdev",
	                             "tap,id=n0,ifname=bk1a2bwww,script=no,downscript=no",
	                             "-device",
	                             "virtio-net-device,netdev=n0,mac=02:62:6b:01:02:03",
	                             "-device",
	                             "pvpanic",
	                             NULL});
}

static void test_user(void **state)
{
	(void)state;
	in.tap = "";
	in.nports = 2;
	in.host_ports = host_ports;
	expect_flag("-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:40080-:80,"
	                       "hostfwd=tcp:127.0.0.1:48080-:8080");
	in.tap = NULL;
	in.nports = 0;
	expect_flag("-netdev", "user,id=n0");
}

static void test_cmdline(void **state)
{
	(void)state;
	/* The cmdline as given (expanded by the caller), one argv word, nothing added. */
	in.cmdline = "debug 'quoted' $HOME";
	expect_flag("-append", "debug 'quoted' $HOME");
	/* No cmdline: no -append at all, no network words of beckon's. */
	in.cmdline = "";
	expect_flag("-append", NULL);
	in.cmdline = NULL;
	expect_flag("-append", NULL);
}

/* -kernel with an initrd; a disk to boot from instead, never written. */
static void test_boot(void **state)
{
	(void)state;
	q.initrd = "/img/initrd.cpio";
	expect_flag("-kernel", "/img/hello.elf");
	expect_flag("-initrd", "/img/initrd.cpio");
	q.initrd = NULL;
	expect_flag("-initrd", NULL);
	q.machine = "pc";
	q.nic = NULL;
	q.boot_disk = true;
	expect_flag("-kernel", NULL);
	expect_flag("-append", NULL);
	expect_flag("-drive", "file=/img/hello.elf,format=raw,if=none,id=boot,snapshot=on");
	expect_flag("-device", "virtio-blk-pci,drive=boot,bootindex=0");
	in.image = "/img/nanos.qcow2";
	expect_flag("-drive", "file=/img/nanos.qcow2,format=qcow2,if=none,id=boot,snapshot=on");
	in.image = "/img/hello.iso";
	expect_flag("-drive",
	            "file=/img/hello.iso,format=raw,if=none,id=boot,media=cdrom,readonly=on");
	expect_flag("-device", "ide-cd,drive=boot,bootindex=0");
	/* microvm has no firmware to boot a disk. */
	q.machine = "microvm";
	expect_error(
	    "boot = \"disk\" needs a machine with firmware (pc, q35): microvm boots -kernel only");
}

static void test_machine(void **state)
{
	(void)state;
	q.machine = "microvm,ioapic2=off"; /* the user's own options: as written */
	expect_flag("-M", "microvm,ioapic2=off");
	expect_flag("-global", "virtio-mmio.force-legacy=false");
	q.machine = "pc";
	q.nic = "virtio-net-pci";
	expect_flag("-M", "pc");
	expect_flag("-global", NULL);
	expect_flag("-device", "virtio-net-pci,netdev=n0,mac=02:62:6b:01:02:03");
	/* No qemu.nic: virtio over the machine's bus. */
	q.nic = NULL;
	q.machine = "q35";
	expect_flag("-device", "virtio-net-pci,netdev=n0,mac=02:62:6b:01:02:03");
	q.machine = "microvm";
	expect_flag("-device", "virtio-net-device,netdev=n0,mac=02:62:6b:01:02:03");
	q.nic = "virtio-net-pci";
	q.machine = "microvmx";
	expect_flag("-global", NULL);
	assert_string_equal(qemu_machine_value(NULL), qemu_machine_value("microvm"));
}

static void test_cpu(void **state)
{
	(void)state;
	expect_flag("-cpu", "max,-arch-capabilities");
	q.cpu = "host";
	expect_flag("-cpu", "host,-arch-capabilities");
	in.accel = "tcg";
	expect_flag("-accel", "tcg");
	expect_flag("-cpu", "host");
	q.cpu = "max";
	expect_flag("-cpu", "max");
	in.accel = "kvm";
	q.cpu = "qemu64,+x2apic";
	expect_flag("-cpu", "qemu64,+x2apic");
}

static void test_sizes(void **state)
{
	(void)state;
	in.memory = (3 << 20) / 2; /* rounds up to whole MiB */
	in.vcpus = 4;
	expect_flag("-m", "2M");
	expect_flag("-smp", "4");
	in.memory = 1ULL << 30;
	in.vcpus = 0;
	expect_flag("-m", "1024M");
	expect_flag("-smp", "1");
}

static void test_disk(void **state)
{
	char **argv;
	size_t i;

	(void)state;
	q.disk = "/data/a,b.img";
	expect_flag("-drive", "file=/data/a,,b.img,format=raw,if=none,id=d0");
	argv = build();
	for (i = 0; argv[i] != NULL; i++)
		if (strcmp(argv[i], "virtio-blk-device,drive=d0") == 0)
			break;
	assert_non_null(argv[i]);
	qemu_argv_free(argv);
	q.disk = "disk.qcow2";
	q.nic = "virtio-net-pci";
	expect_flag("-drive", "file=disk.qcow2,format=qcow2,if=none,id=d0");
	argv = build();
	for (i = 0; argv[i] != NULL; i++)
		if (strcmp(argv[i], "virtio-blk-pci,drive=d0") == 0)
			break;
	assert_non_null(argv[i]);
	qemu_argv_free(argv);
}

static void test_args_last(void **state)
{
	char **argv;
	size_t n;

	(void)state;
	q.args = extra;
	q.nargs = 2;
	argv = build();
	for (n = 0; argv[n] != NULL; n++)
		;
	assert_true(n > 2);
	assert_string_equal(argv[n - 2], "-global");
	assert_string_equal(argv[n - 1], "virtio-net-device.mrg_rxbuf=off");
	qemu_argv_free(argv);
}

/* Unprivileged, QEMU gets its seccomp sandbox; not otherwise (as before). */
static void test_sandbox(void **state)
{
	(void)state;
	expect_flag("-sandbox", NULL);
	in.sandbox = true;
	expect_flag("-sandbox",
	            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
}

static void expect_error(const char *msg)
{
	char err[128] = "";

	assert_null(qemu_argv(&in, err, sizeof(err)));
	assert_non_null(strstr(err, msg));
}

/* A warm shell is -S; a restore is -incoming on the fd the state file gets. */
static void test_shell_and_restore(void **state)
{
	char *v;

	(void)state;
	assert_null(value_of("-incoming"));
	in.paused = true;
	in.incoming = "fd:4";
	v = value_of("-incoming");
	assert_string_equal(v, "fd:4");
	free(v);
	v = value_of("-S");
	assert_non_null(v); /* -S is there (and -incoming follows it) */
	assert_string_equal(v, "-incoming");
	free(v);
}

/* Guest RAM from a template's file: a backend under QEMU's own RAM id. */
static void test_memory(void **state)
{
	char *v;

	(void)state;
	assert_null(value_of("-object"));
	assert_null(value_of("-machine"));
	in.memory = (16 << 20) + 1;
	in.mem_id = "microvm.ram";
	in.mem_path = "/st/templates/w,w.ram";
	v = value_of("-object");
	assert_string_equal(v, "memory-backend-file,id=microvm.ram,mem-path=/st/templates/w,,w.ram,"
	                       "share=off,size=17M");
	free(v);
	v = value_of("-machine");
	assert_string_equal(v, "memory-backend=microvm.ram");
	free(v);
	v = value_of("-m");
	assert_string_equal(v, "17M"); /* the same size: QEMU checks */
	free(v);
	in.mem_share = true;
	in.mem_path = "/proc/self/fd/5";
	v = value_of("-object");
	assert_string_equal(v, "memory-backend-file,id=microvm.ram,mem-path=/proc/self/fd/5,"
	                       "share=on,size=17M");
	free(v);
}

/* The id QEMU gives its own RAM, per machine (query-machines' default-ram-id). */
static void test_ram_id(void **state)
{
	(void)state;
	assert_string_equal(qemu_mem_ram_id(NULL), "microvm.ram");
	assert_string_equal(qemu_mem_ram_id("microvm"), "microvm.ram");
	assert_string_equal(qemu_mem_ram_id("microvm,acpi=on"), "microvm.ram");
	assert_string_equal(qemu_mem_ram_id("pc"), "pc.ram");
	assert_string_equal(qemu_mem_ram_id("q35"), "pc.ram");
	assert_string_equal(qemu_mem_ram_id("pc-q35-7.2"), "pc.ram");
	assert_string_equal(qemu_mem_ram_id("pc-i440fx-7.2,accel=tcg"), "pc.ram");
	assert_string_equal(qemu_mem_ram_id("isapc"), "pc.ram");
	assert_null(qemu_mem_ram_id("pcx"));
	assert_null(qemu_mem_ram_id("xenpv"));
	assert_null(qemu_mem_ram_id("none"));
}

static void test_errors(void **state)
{
	(void)state;
	in.image = "";
	expect_error("no image");
	setup(NULL);
	in.accel = NULL;
	expect_error("no accelerator");
	setup(NULL);
	in.tap = "";
	expect_error("user networking without host ports");
	setup(NULL);
	in.mac = NULL;
	expect_error("no MAC address");
}

static void test_accel(void **state)
{
	(void)state;
	assert_string_equal(qemu_accel_resolve("auto", "/nonexistent/kvm"), "tcg");
	assert_string_equal(qemu_accel_resolve(NULL, "/nonexistent/kvm"), "tcg");
	/* A device that opens read-write stands for a usable /dev/kvm. */
	assert_string_equal(qemu_accel_resolve("auto", "/dev/null"), "kvm");
	assert_string_equal(qemu_accel_resolve("kvm", "/nonexistent/kvm"), "kvm");
	assert_string_equal(qemu_accel_resolve("tcg", "/dev/null"), "tcg");
	assert_null(qemu_accel_resolve("hvf", "/dev/null"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_bridge, setup),
	    cmocka_unit_test_setup(test_user, setup),
	    cmocka_unit_test_setup(test_cmdline, setup),
	    cmocka_unit_test_setup(test_boot, setup),
	    cmocka_unit_test_setup(test_machine, setup),
	    cmocka_unit_test_setup(test_cpu, setup),
	    cmocka_unit_test_setup(test_sizes, setup),
	    cmocka_unit_test_setup(test_disk, setup),
	    cmocka_unit_test_setup(test_args_last, setup),
	    cmocka_unit_test_setup(test_sandbox, setup),
	    cmocka_unit_test_setup(test_shell_and_restore, setup),
	    cmocka_unit_test_setup(test_errors, setup),
	    cmocka_unit_test_setup(test_memory, setup),
	    cmocka_unit_test(test_ram_id),
	    cmocka_unit_test(test_accel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
