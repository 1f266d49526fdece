/*
 * The QEMU command line, built from a service's keys with no I/O, so that
 * the unit tests can check every word. No shell runs: values are argv words.
 * Inside QEMU option strings ("key=value,key=value") a comma in a value is
 * doubled, the way QEMU escapes it.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argvec.h"
#include "qemu.h"

/*
 * microvm builds ACPI tables by default; without them (QEMU then lists the
 * virtio-mmio devices on the kernel command line) QEMU starts about 10 ms
 * sooner here. Turning off option ROMs, PIT, PIC or RTC gained nothing
 * measurable, so they stay for guests that want them. Only the plain name
 * is tuned: "microvm,..." is the user's own choice, taken as written.
 */
/* Everything but what a guest needs: no obsolete calls, no set*id, no
 * fork or exec (beckon passes QEMU its tap by name, its QMP socket and
 * saved states as fds: nothing to spawn), no scheduler or affinity. No
 * -runas with it: QEMU 7.2 installs the filter before -runas's setuid,
 * and dies of SIGSYS under elevateprivileges=deny (tried; only "allow"
 * lets it through). QEMU runs as beckond's unprivileged user instead. */
#define QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
#define MICROVM_TUNED "microvm,acpi=off"

static void vec_str(struct argvec *a, const char *s)
{
	argvec_add(a, strdup(s));
}

static void vec_fmt(struct argvec *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vec_fmt(struct argvec *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	argvec_add(a, s);
}

/* S with every comma doubled, for a value inside a QEMU option string. */
static char *opt_escape(const char *s)
{
	size_t n = strlen(s), i, j, commas = 0;
	char *out;

	for (i = 0; i < n; i++)
		commas += s[i] == ',';
	if ((out = malloc(n + commas + 1)) == NULL)
		return NULL;
	for (i = j = 0; i < n; i++) {
		out[j++] = s[i];
		if (s[i] == ',')
			out[j++] = ',';
	}
	out[j] = '\0';
	return out;
}

const char *qemu_accel_resolve(const char *accel, const char *kvm_path)
{
	int fd;

	if (accel == NULL || strcmp(accel, "auto") == 0) {
		if ((fd = open(kvm_path, O_RDWR | O_CLOEXEC)) == -1)
			return "tcg";
		close(fd);
		return "kvm";
	}
	if (strcmp(accel, "kvm") == 0)
		return "kvm";
	if (strcmp(accel, "tcg") == 0)
		return "tcg";
	return NULL;
}

const char *qemu_machine_value(const char *machine)
{
	if (machine == NULL || strcmp(machine, "microvm") == 0)
		return MICROVM_TUNED;
	return machine;
}

static bool is_microvm(const char *machine)
{
	return strncmp(machine, "microvm", 7) == 0 && (machine[7] == '\0' || machine[7] == ',');
}

/*
 * The nested KVM here refuses IA32_ARCH_CAPABILITIES (MSR 0x10a) that
 * "max" and "host" pass through, and QEMU aborts at its first vCPU reset.
 * The MSR only describes speculation mitigations; leaving it out is safe.
 */
static void add_cpu(struct argvec *a, const char *cpu, const char *accel)
{
	if (strcmp(accel, "kvm") == 0 && (strcmp(cpu, "max") == 0 || strcmp(cpu, "host") == 0))
		vec_fmt(a, "%s,-arch-capabilities", cpu);
	else
		vec_str(a, cpu);
}

/* The host side of the NIC as a -netdev value with ID: the tap, or user networking's hostfwds. */
static char *netdev_backend(const struct qemu_argv_in *in, const char *id)
{
	char *s = NULL, *next;
	size_t i;

	if (in->tap != NULL && *in->tap) {
		if (asprintf(&s, "tap,id=%s,ifname=%s,script=no,downscript=no", id, in->tap) == -1)
			return NULL;
		return s;
	}
	if (asprintf(&s, "user,id=%s", id) == -1)
		return NULL;
	for (i = 0; i < in->nports; i++) {
		if (asprintf(&next, "%s,hostfwd=tcp:127.0.0.1:%u-:%u", s, in->host_ports[i],
		             in->ports[i]) == -1) {
			free(s);
			return NULL;
		}
		free(s);
		s = next;
	}
	return s;
}

/*
 * The NIC's netdev n0: the host side itself; or (a pool's shape) a port of
 * hub 0, the host side (QEMU_NETDEV_HOST) on another port, so that a pool
 * VMM that has the hub port alone can be given its host side over QMP.
 */
static void add_netdev(struct argvec *a, const struct qemu_argv_in *in)
{
	if (in->nic_via != QEMU_NIC_POOL) {
		vec_str(a, "-netdev");
		argvec_add(
		    a, netdev_backend(in, in->nic_via == QEMU_NIC_HUB ? QEMU_NETDEV_HOST : "n0"));
	}
	if (in->nic_via == QEMU_NIC_DIRECT)
		return;
	if (in->nic_via == QEMU_NIC_HUB) {
		vec_str(a, "-netdev");
		vec_str(a, "hubport,id=" QEMU_NETDEV_HUBPORT ",hubid=0,netdev=" QEMU_NETDEV_HOST);
	}
	vec_str(a, "-netdev");
	vec_str(a, "hubport,id=n0,hubid=0");
}

/* The NIC: qemu.nic, else virtio over the machine's bus (mmio on microvm, PCI otherwise). */
static const char *nic_of(const struct qemu_argv_in *in)
{
	if (in->q->nic != NULL && *in->q->nic)
		return in->q->nic;
	return is_microvm(qemu_machine_value(in->q->machine)) ? "virtio-net-device"
	                                                      : "virtio-net-pci";
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * A disk PATH as drive ID: virtio-blk of the NIC's bus kind ("-pci" NICs get
 * the PCI one); BOOT: the boot device, opened as a snapshot (the guest's
 * writes never reach the image) or, an .iso, as a read-only CD.
 */
static void add_drive(struct argvec *a, const struct qemu_argv_in *in, const char *path,
                      const char *id, bool boot)
{
	bool pci = ends_with(nic_of(in), "-pci"), iso = boot && ends_with(path, ".iso");
	char *file = opt_escape(path);

	if (file == NULL) {
		a->failed = true;
		return;
	}
	vec_str(a, "-drive");
	if (iso)
		vec_fmt(a, "file=%s,format=raw,if=none,id=%s,media=cdrom,readonly=on", file, id);
	else
		vec_fmt(a, "file=%s,format=%s,if=none,id=%s%s", file,
		        ends_with(path, ".qcow2") ? "qcow2" : "raw", id,
		        boot ? ",snapshot=on" : "");
	vec_str(a, "-device");
	vec_fmt(a, "%s,drive=%s%s",
	        iso   ? "ide-cd"
	        : pci ? "virtio-blk-pci"
	              : "virtio-blk-device",
	        id, boot ? ",bootindex=0" : "");
	free(file);
}

/* What boots: -kernel (with its initrd and cmdline) or a disk. */
static void add_boot(struct argvec *a, const struct qemu_argv_in *in)
{
	if (in->q->boot_disk) {
		add_drive(a, in, in->image, "boot", true);
		return;
	}
	vec_str(a, "-kernel");
	vec_str(a, in->image);
	if (in->q->initrd != NULL && *in->q->initrd) {
		vec_str(a, "-initrd");
		vec_str(a, in->q->initrd);
	}
	/* The cmdline as written, placeholders expanded: nothing of beckon's added. */
	if (in->cmdline != NULL && *in->cmdline) {
		vec_str(a, "-append");
		vec_str(a, in->cmdline);
	}
}

static void add_machine(struct argvec *a, const struct qemu_argv_in *in)
{
	const char *machine = qemu_machine_value(in->q->machine);

	vec_str(a, "-M");
	vec_str(a, machine);
	vec_str(a, "-accel");
	vec_str(a, in->accel);
	vec_str(a, "-cpu");
	add_cpu(a, in->q->cpu ? in->q->cpu : "max", in->accel);
	vec_str(a, "-m");
	vec_fmt(a, "%lluM", (unsigned long long)((in->memory + (1 << 20) - 1) >> 20));
	vec_str(a, "-smp");
	vec_fmt(a, "%d", in->vcpus > 0 ? in->vcpus : 1);
	if (is_microvm(machine)) {
		vec_str(a, "-global");
		vec_str(a, "virtio-mmio.force-legacy=false");
	}
}

/* Guest RAM from a file (qemu_mem.c), under the id QEMU's own RAM would have. */
static void add_memory(struct argvec *a, const struct qemu_argv_in *in)
{
	char *path;

	if (in->mem_path == NULL || in->mem_id == NULL)
		return;
	if ((path = opt_escape(in->mem_path)) == NULL) {
		a->failed = true;
		return;
	}
	vec_str(a, "-object");
	vec_fmt(a, "memory-backend-file,id=%s,mem-path=%s,share=%s,size=%lluM", in->mem_id, path,
	        in->mem_share ? "on" : "off",
	        (unsigned long long)((in->memory + (1 << 20) - 1) >> 20));
	vec_str(a, "-machine");
	vec_fmt(a, "memory-backend=%s", in->mem_id);
	free(path);
}

static int check_in(const struct qemu_argv_in *in, char *err, size_t errlen)
{
	const char *why = NULL;

	if (in->image == NULL || *in->image == '\0')
		why = "no image";
	else if (in->accel == NULL)
		why = "no accelerator";
	else if ((in->tap == NULL || *in->tap == '\0') && in->nports > 0 &&
	         in->host_ports == NULL && in->nic_via != QEMU_NIC_POOL)
		why = "user networking without host ports";
	else if (in->mac == NULL)
		why = "no MAC address";
	else if (in->q->boot_disk && is_microvm(qemu_machine_value(in->q->machine)))
		why = "boot = \"disk\" needs a machine with firmware (pc, q35): microvm boots "
		      "-kernel "
		      "only";
	if (why != NULL)
		snprintf(err, errlen, "%s", why);
	return why ? -1 : 0;
}

char **qemu_argv(const struct qemu_argv_in *in, char *err, size_t errlen)
{
	struct argvec a = {0};
	size_t i;

	if (check_in(in, err, errlen) == -1)
		return NULL;
	vec_str(&a, in->binary ? in->binary : QEMU_BINARY);
	vec_str(&a, "-name");
	vec_fmt(&a, "guest=beckon:%s,process=beckon-%s", in->name, in->name);
	vec_str(&a, "-no-user-config");
	vec_str(&a, "-nodefaults");
	vec_str(&a, "-no-reboot");
	/* A guest that panics and halts (Linux, through pvpanic) ends QEMU, so
	 * that its boot fails now rather than at boot_timeout. */
	vec_str(&a, "-action");
	vec_str(&a, "panic=exit-failure");
	vec_str(&a, "-display");
	vec_str(&a, "none");
	add_machine(&a, in);
	add_memory(&a, in);
	add_boot(&a, in);
	vec_str(&a, "-serial");
	vec_str(&a, "stdio");
	vec_str(&a, "-chardev");
	vec_fmt(&a, "socket,id=qmp,fd=%d", in->qmp_fd);
	vec_str(&a, "-mon");
	vec_str(&a, "chardev=qmp,mode=control");
	add_netdev(&a, in);
	vec_str(&a, "-device");
	vec_fmt(&a, "%s,netdev=n0,mac=%s", nic_of(in), in->mac);
	if (in->q->disk != NULL && *in->q->disk)
		add_drive(&a, in, in->q->disk, "d0", false);
	vec_str(&a, "-device");
	vec_str(&a, "pvpanic");
	for (i = 0; i < in->q->nargs; i++)
		vec_str(&a, in->q->args[i]);
	if (in->sandbox) {
		vec_str(&a, "-sandbox");
		vec_str(&a, QEMU_SANDBOX);
	}
	if (in->paused)
		vec_str(&a, "-S");
	if (in->incoming != NULL) {
		vec_str(&a, "-incoming");
		vec_str(&a, in->incoming);
	}
	if (a.failed) {
		snprintf(err, errlen, "out of memory");
		argvec_free(a.v);
		return NULL;
	}
	return a.v;
}

void qemu_argv_free(char **argv)
{
	argvec_free(argv);
}
