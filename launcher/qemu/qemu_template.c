/*
 * The key of a QEMU service's template (launcher/template.c): everything
 * that shapes the guest a cold start would run. It is the command line
 * itself (image path, cmdline after substitution and so the address,
 * memory, vCPUs, machine, accelerator, CPU, NIC and MAC, tap, disks,
 * qemu.args), the checksum of the image and the identity of the files
 * it reads (initrd, disk: size and mtime), and the QEMU binary's identity
 * (path, size, mtime: an upgrade changes it). QEMU checks the stream's
 * own format too; a restore it refuses drops the template.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "backend.h"
#include "log.h"
#include "qemu.h"

/* Hashing an image once per change, not per cold start. */
struct tpl_sum {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	uint64_t sum;
};
#define TPL_SUMS 32
static struct tpl_sum sums[TPL_SUMS];
static size_t sums_next;

/* FNV-1a, 64 bits, over the file's bytes: a change detector, not a defence. */
static int tpl_fnv_file(const char *path, uint64_t *out)
{
	unsigned char buf[65536];
	uint64_t h = 0xcbf29ce484222325ULL;
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
	n = (size_t)ferror(f);
	fclose(f);
	*out = h;
	return n ? -1 : 0;
}

static bool tpl_same_file(const struct tpl_sum *s, const char *path, const struct stat *st)
{
	return s->path != NULL && strcmp(s->path, path) == 0 && s->dev == st->st_dev &&
	       s->ino == st->st_ino && s->size == st->st_size &&
	       s->mtime.tv_sec == st->st_mtim.tv_sec && s->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* PATH's checksum, from the cache while the file is unchanged. */
static int tpl_image_sum(const char *path, const struct stat *st, uint64_t *out)
{
	struct tpl_sum *s;

	for (size_t i = 0; i < TPL_SUMS; i++)
		if (tpl_same_file(&sums[i], path, st)) {
			*out = sums[i].sum;
			return 0;
		}
	if (tpl_fnv_file(path, out) == -1)
		return -1;
	s = &sums[sums_next++ % TPL_SUMS];
	free(s->path);
	*s = (struct tpl_sum){strdup(path), st->st_dev, st->st_ino, st->st_size, st->st_mtim, *out};
	return 0;
}

/* The QEMU binary that will run: BIN itself, or the first match on PATH. */
static int tpl_which(const char *bin, char *out, size_t len)
{
	const char *p = getenv("PATH"), *end;
	int n;

	if (strchr(bin, '/') != NULL) {
		n = snprintf(out, len, "%s", bin);
		return n < 0 || (size_t)n >= len ? -1 : 0;
	}
	for (; p != NULL && *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		n = snprintf(out, len, "%.*s/%s", (int)(end - p), p, bin);
		if (n > 0 && (size_t)n < len && access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* One line "WHAT PATH size mtime" for a file the guest reads; "" for none. */
static int tpl_file_line(FILE *f, const char *what, const char *path)
{
	struct stat st;

	if (path == NULL || *path == '\0')
		return 0;
	if (stat(path, &st) == -1)
		return -1;
	fprintf(f, "%s %s %lld %lld.%09ld\n", what, path, (long long)st.st_size,
	        (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

static int tpl_write_key(FILE *f, struct instance *inst, char **argv)
{
	const struct conf_service *svc = launcher_inst_service(inst);
	char bin[4096];
	struct stat st;
	uint64_t sum;

	if (tpl_which(argv[0], bin, sizeof(bin)) == -1 || tpl_file_line(f, "qemu", bin) == -1)
		return -1;
	if (stat(svc->image, &st) == -1 || tpl_image_sum(svc->image, &st, &sum) == -1)
		return -1;
	fprintf(f, "image %s fnv64 %016llx size %lld\n", svc->image, (unsigned long long)sum,
	        (long long)st.st_size);
	if (tpl_file_line(f, "initrd", svc->qemu.initrd) == -1 ||
	    tpl_file_line(f, "disk", svc->qemu.disk) == -1)
		return -1;
	for (size_t i = 0; argv[i] != NULL; i++)
		fprintf(f, "argv %s\n", argv[i]);
	return 0;
}

char *qemu_template_key(struct instance *inst)
{
	char **argv = qemu_start_argv(inst), *key = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (argv == NULL || (f = open_memstream(&key, &len)) == NULL) {
		qemu_argv_free(argv);
		return NULL;
	}
	rc = tpl_write_key(f, inst, argv);
	if (fclose(f) == EOF || rc == -1) {
		log_warnx("%s: template: cannot read what the guest is made of (image, QEMU)",
		          launcher_inst_service(inst)->name);
		free(key);
		key = NULL;
	}
	qemu_argv_free(argv);
	return key;
}

int qemu_template_words(unsigned char entropy[16], uint64_t *wall_ms, const char *name)
{
	struct timespec ts;

	if (getrandom(entropy, 16, GRND_NONBLOCK) != 16) {
		log_warn("%s: reseed: getrandom", name);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	*wall_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return 0;
}

void qemu_template_reseed(int fd, const char *name)
{
	unsigned char e[16];
	uint64_t ms;
	char line[80];
	int n;
	ssize_t w;

	if (qemu_template_words(e, &ms, name) == -1)
		return;
	n = snprintf(line, sizeof(line), "RESEED ");
	for (size_t i = 0; i < sizeof(e); i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", e[i]);
	/*
	 * 15 digits: 56 bytes in all, four FIFO loads of a UART whose trigger
	 * level is 14 (the hello guest's), so that no tail waits for the
	 * FIFO's character timeout. The leading zeros are digits all the same.
	 */
	n += snprintf(line + n, sizeof(line) - (size_t)n, " %015llu\n", (unsigned long long)ms);
	/* A pipe takes this much at once: it never blocks. */
	while ((w = write(fd, line, (size_t)n)) == -1 && errno == EINTR)
		;
	if (w != n)
		log_warn("%s: reseed: writing to the console", name);
	else
		log_debug("%s: reseed sent", name);
}
