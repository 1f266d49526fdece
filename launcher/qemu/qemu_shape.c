/*
 * The shape of a QEMU guest: what a pool VMM started ahead must share with
 * the VMM a template was saved from for QEMU to accept the stream (the
 * binary, machine, accelerator, CPU, memory, vCPUs, the kind of -kernel,
 * every device). It is the command line less what belongs to one run:
 * -name, -append and -initrd (in fw_cfg, read once at boot: the restore
 * overwrites what they left in RAM), the NIC's host side and MAC (the
 * stream carries the guest's MAC), -incoming and -S. Pure, but for the
 * look at a kernel's first bytes.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu.h"

#define KIND_PEEK 8192 /* QEMU looks for a multiboot header this far */
#define MULTIBOOT_MAGIC 0x1BADB002u

const char *qemu_kernel_kind(const char *path)
{
	unsigned char b[KIND_PEEK];
	ssize_t n;
	uint32_t w;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	n = read(fd, b, sizeof(b));
	close(fd);
	if (n < 0x210)
		return n < 0 ? NULL : "raw";
	/* The order QEMU's x86 loader tries them in: each adds its own option ROM. */
	for (ssize_t i = 0; i + 4 <= n; i += 4) {
		memcpy(&w, b + i, 4);
		if (w == MULTIBOOT_MAGIC)
			return "multiboot";
	}
	if (memcmp(b + 0x202, "HdrS", 4) == 0)
		return "linux";
	if (memcmp(b,
	           "\x7f"
	           "ELF",
	           4) == 0)
		return "pvh";
	return "raw";
}

/* A -netdev of the hub form (qemu_argv's QEMU_NIC_HUB or QEMU_NIC_POOL); others are not poolable.
 */
static bool shape_netdev_ok(const char *v)
{
	return strncmp(v, "hubport,id=n0,", 14) == 0 ||
	       strncmp(v, "hubport,id=" QEMU_NETDEV_HUBPORT ",", 14) == 0 ||
	       strncmp(v, "user,id=" QEMU_NETDEV_HOST, 10) == 0 ||
	       strncmp(v, "tap,id=" QEMU_NETDEV_HOST ",", 10) == 0;
}

/* One word pair (OPT VAL) into F; false when it makes the guest unpoolable. */
static bool shape_pair(FILE *f, const char *opt, const char *val, const char *kind)
{
	const char *nic;

	if (strcmp(opt, "-name") == 0 || strcmp(opt, "-append") == 0 ||
	    strcmp(opt, "-initrd") == 0 || strcmp(opt, "-incoming") == 0)
		return true;
	if (strcmp(opt, "-netdev") == 0)
		return shape_netdev_ok(val);
	if (strcmp(opt, "-drive") == 0)
		return false; /* a disk's contents are not in the stream */
	if (strcmp(opt, "-kernel") == 0) {
		fprintf(f, "-kernel\n%s\n", kind);
		return true;
	}
	if (strcmp(opt, "-device") == 0 && (nic = strstr(val, ",netdev=n0")) != NULL) {
		fprintf(f, "-device\n%.*s,netdev=n0\n", (int)(nic - val), val);
		return true;
	}
	fprintf(f, "%s\n%s\n", opt, val);
	return true;
}

/* Options of qemu_argv that take no value. */
static bool shape_flag(const char *w)
{
	static const char *const flags[] = {"-no-user-config", "-nodefaults", "-no-reboot", "-S",
	                                    NULL};

	for (size_t i = 0; flags[i] != NULL; i++)
		if (strcmp(w, flags[i]) == 0)
			return true;
	return w[0] != '-';
}

char *qemu_shape(char *const *argv, const char *kind)
{
	char *out = NULL;
	size_t len = 0, i;
	bool ok = kind != NULL && strcmp(kind, "raw") != 0;
	FILE *f;

	if (argv == NULL || argv[0] == NULL || (f = open_memstream(&out, &len)) == NULL)
		return NULL;
	fprintf(f, "%s\n", argv[0]);
	for (i = 1; ok && argv[i] != NULL; i++) {
		if (strcmp(argv[i], "-S") == 0)
			continue;
		if (shape_flag(argv[i]) || argv[i + 1] == NULL) {
			fprintf(f, "%s\n", argv[i]);
			continue;
		}
		ok = shape_pair(f, argv[i], argv[i + 1], kind);
		i++;
	}
	if (fclose(f) == EOF || !ok) {
		free(out);
		return NULL;
	}
	return out;
}
