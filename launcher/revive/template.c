/*
 * Snapshot templates (template = "auto"): the state of a service's guest
 * the first time it became ready, saved before any client reached it, so
 * that the later cold starts restore it instead of booting.
 *
 * When: at the first cold boot's readiness, before the waiters are told
 * (launcher_inst_ready asks template_save_begin). The guest is saved
 * while it runs (QEMU stops it for the last pass) and runs on; that first
 * client waits for the save (tens of ms for the hello guest under TCG),
 * every later one gets a restore. A separate background boot would spare
 * the first client, but in bridge mode it would need the service's own
 * address and MAC while the real instance has them.
 *
 * What a template depends on: the backend's key (template_key: for QEMU
 * the whole command line, so the image, the cmdline after substitution,
 * hence the address, memory, vCPUs, machine, devices, the MAC and tap,
 * and the QEMU binary's identity), and the image's checksum. The key is
 * stored beside the state with the state's size; a template whose key
 * differs, whose size is not the one written, or whose restore failed is
 * dropped, and the next cold boot makes a new one. Files are written to
 * .tmp names and renamed once whole: the state first, then the key.
 *
 * A backend may keep the guest's memory beside the state (NAME.ram, which
 * it writes to NAME.ram.tmp during the save: QEMU's restores map it
 * privately, so that every clone shares the pages it has not written).
 * The key file then gives its size too; a template whose memory file is
 * missing or not that size is dropped as a cut-short state is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "backend.h"
#include "core.h"
#include "log.h"
#include "revive.h"
#include "revive_int.h"

#define TEMPLATE_MAGIC "beckon-template 1\n"
#define TEMPLATE_KEY_MAX (256 * 1024)

enum tpl_file { TPL_STATE, TPL_KEY, TPL_RAM, TPL_STATE_TMP, TPL_KEY_TMP, TPL_RAM_TMP };

/* <state_dir>/templates/<name>.{state,key,ram}[.tmp] */
static int template_path(const struct instance *inst, enum tpl_file f, char *buf, size_t len)
{
	static const char *const ext[] = {"state", "key", "ram", "state.tmp", "key.tmp", "ram.tmp"};
	int n = snprintf(buf, len, "%s/templates/%s.%s", inst->state_dir, inst->svc->name, ext[f]);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int template_path_state(const struct instance *inst, char *buf, size_t len)
{
	return template_path(inst, TPL_STATE, buf, len);
}

int launcher_template_ram_path(const struct instance *inst, bool tmp, char *buf, size_t len)
{
	return template_path(inst, tmp ? TPL_RAM_TMP : TPL_RAM, buf, len);
}

bool launcher_inst_makes_template(const struct instance *inst)
{
	return inst->rv->tpl_key != NULL;
}

static void template_unlink(const struct instance *inst, enum tpl_file f)
{
	char path[4096];

	if (template_path(inst, f, path, sizeof(path)) == 0)
		unlink(path);
}

void template_drop(struct instance *inst, const char *why)
{
	char path[4096];
	bool had = template_path(inst, TPL_KEY, path, sizeof(path)) == 0 && access(path, F_OK) == 0;

	for (int f = TPL_STATE; f <= TPL_RAM_TMP; f++)
		template_unlink(inst, (enum tpl_file)f);
	if (had && why != NULL)
		log_info("%s: template dropped (%s)", inst->svc->name, why);
}

bool template_wanted(const struct instance *inst)
{
	return inst->svc->template == CONF_TEMPLATE_AUTO && inst->ops != NULL &&
	       inst->ops->template_key != NULL && inst->ops->template_save != NULL &&
	       inst->ops->restore != NULL;
}

/* The whole of PATH (at most MAX bytes), NUL-terminated, malloc'd; NULL when not. */
static char *template_read(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (f == NULL || (buf = malloc(max + 1)) == NULL)
		goto fail;
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max)
		goto fail;
	buf[n] = '\0';
	fclose(f);
	return buf;
fail:
	free(buf);
	if (f != NULL)
		fclose(f);
	return NULL;
}

/*
 * The key file's head after the magic: "size N\n", then "ram N\n" when the
 * template has a memory file (*RAM -1 when not); the key follows (*REST).
 */
static int template_head(char *text, unsigned long long *size, long long *ram, char **rest)
{
	char *p = text + strlen(TEMPLATE_MAGIC), *nl;
	unsigned long long r;

	*ram = -1;
	if (strncmp(text, TEMPLATE_MAGIC, strlen(TEMPLATE_MAGIC)) != 0 ||
	    sscanf(p, "size %llu\n", size) != 1 || (nl = strchr(p, '\n')) == NULL)
		return -1;
	p = nl + 1;
	if (strncmp(p, "ram ", 4) == 0) {
		if (sscanf(p, "ram %llu\n", &r) != 1 || (nl = strchr(p, '\n')) == NULL)
			return -1;
		*ram = (long long)r;
		p = nl + 1;
	}
	*rest = p;
	return 0;
}

/* Whether the memory file is there, of size RAM, exactly when the key file says so. */
static bool template_ram_ok(const struct instance *inst, long long ram)
{
	char path[4096];
	struct stat st;

	if (template_path(inst, TPL_RAM, path, sizeof(path)) == -1)
		return false;
	if (stat(path, &st) == -1)
		return ram == -1;
	return ram >= 0 && st.st_size == ram;
}

/* Whether the stored template was made for KEY and its state is whole; why not in *WHY. */
static bool template_valid(const struct instance *inst, const char *key, const char **why)
{
	char kpath[4096], spath[4096], *text = NULL, *rest;
	unsigned long long size;
	long long ram;
	struct stat st;
	bool ok = false;

	*why = NULL;
	if (template_path(inst, TPL_KEY, kpath, sizeof(kpath)) == -1 ||
	    template_path(inst, TPL_STATE, spath, sizeof(spath)) == -1 || access(kpath, F_OK) == -1)
		return false;
	*why = "unreadable or cut short";
	if ((text = template_read(kpath, TEMPLATE_KEY_MAX)) == NULL ||
	    template_head(text, &size, &ram, &rest) == -1)
		goto done;
	if (stat(spath, &st) == -1 || (unsigned long long)st.st_size != size) {
		*why = "its state is not the size written";
		goto done;
	}
	if (!template_ram_ok(inst, ram)) {
		*why = "its memory file is missing or not the size written";
		goto done;
	}
	if (strcmp(rest, key) != 0) {
		*why = "the guest's image, command line, devices or QEMU changed";
		goto done;
	}
	ok = true;
done:
	free(text);
	return ok;
}

bool template_take(struct instance *inst, char *path, size_t len)
{
	const char *why;
	char *key;

	free(inst->rv->tpl_key);
	inst->rv->tpl_key = NULL;
	if (!template_wanted(inst) || (key = inst->ops->template_key(inst)) == NULL)
		return false;
	if (template_valid(inst, key, &why) && template_path(inst, TPL_STATE, path, len) == 0) {
		free(key);
		return true;
	}
	template_drop(inst, why);
	inst->rv->tpl_key = key; /* this boot makes the template once ready */
	return false;
}

int template_save_begin(struct instance *inst)
{
	char dir[4096], path[4096];
	int n;

	if (inst->rv->tpl_key == NULL || inst->rv->templating)
		return -1;
	n = snprintf(dir, sizeof(dir), "%s/templates", inst->state_dir);
	if (n < 0 || (size_t)n >= sizeof(dir) || launcher_mkdir_p(dir) == -1 ||
	    template_path(inst, TPL_STATE_TMP, path, sizeof(path)) == -1)
		goto fail;
	inst->rv->templating = true;
	inst->rv->tpl_start_us = launcher_now_us();
	if (inst->ops->template_save(inst, path) == -1) {
		inst->rv->templating = false;
		goto fail;
	}
	return 0;
fail:
	log_warnx("%s: template: could not start the save", inst->svc->name);
	free(inst->rv->tpl_key);
	inst->rv->tpl_key = NULL;
	return -1;
}

/* fsync PATH's data. */
static int template_sync(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * The memory file the backend wrote (NAME.ram.tmp), synced, renamed, and
 * its size in *SIZE; -1 in *SIZE when there is none.
 */
static int template_commit_ram(struct instance *inst, long long *size)
{
	char tmp[4096], path[4096];
	struct stat st;

	*size = -1;
	if (template_path(inst, TPL_RAM_TMP, tmp, sizeof(tmp)) == -1 ||
	    template_path(inst, TPL_RAM, path, sizeof(path)) == -1)
		return -1;
	if (stat(tmp, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (template_sync(tmp) == -1 || rename(tmp, path) == -1)
		return -1;
	*size = (long long)st.st_size;
	return 0;
}

/* The key file for the state (and memory file) written, to a .tmp and renamed. */
static int template_commit(struct instance *inst)
{
	char stmp[4096], spath[4096], ktmp[4096], kpath[4096];
	struct stat st;
	long long ram;
	FILE *f = NULL;

	if (template_path(inst, TPL_STATE_TMP, stmp, sizeof(stmp)) == -1 ||
	    template_path(inst, TPL_STATE, spath, sizeof(spath)) == -1 ||
	    template_path(inst, TPL_KEY_TMP, ktmp, sizeof(ktmp)) == -1 ||
	    template_path(inst, TPL_KEY, kpath, sizeof(kpath)) == -1)
		return -1;
	if (template_sync(stmp) == -1 || stat(stmp, &st) == -1 ||
	    template_commit_ram(inst, &ram) == -1 || (f = fopen(ktmp, "we")) == NULL)
		goto fail;
	fprintf(f, "%ssize %llu\n", TEMPLATE_MAGIC, (unsigned long long)st.st_size);
	if (ram >= 0)
		fprintf(f, "ram %lld\n", ram);
	fputs(inst->rv->tpl_key, f);
	if (fflush(f) == EOF || fsync(fileno(f)) == -1 || ferror(f))
		goto fail;
	fclose(f);
	f = NULL;
	if (rename(stmp, spath) == -1 || rename(ktmp, kpath) == -1)
		goto fail;
	log_info("%s: template saved in %.1f ms (%llu bytes)%s", inst->svc->name,
	         (double)(launcher_now_us() - inst->rv->tpl_start_us) / 1000.0,
	         (unsigned long long)st.st_size, ram >= 0 ? ", its memory in a file" : "");
	return 0;
fail:
	log_warn("%s: template: writing %s", inst->svc->name, kpath);
	if (f != NULL)
		fclose(f);
	return -1;
}

void launcher_inst_templated(struct instance *inst, bool ok)
{
	if (!inst->rv->templating)
		return;
	inst->rv->templating = false;
	if (!ok || template_commit(inst) == -1) {
		if (!ok)
			log_warnx("%s: template: the save failed", inst->svc->name);
		template_drop(inst, NULL);
	}
	free(inst->rv->tpl_key);
	inst->rv->tpl_key = NULL;
	launcher_inst_ready(inst); /* what the save held back */
}

bool template_hold_ready(struct instance *inst)
{
	if (!launcher_how_clone(inst->how) || inst->rv->reseeded)
		return false;
	inst->rv->ready_held = true;
	return true;
}

void launcher_inst_reseeded(struct instance *inst)
{
	if (inst->state != INST_BOOTING || !launcher_how_clone(inst->how))
		return;
	inst->rv->reseeded = true;
	if (inst->rv->ready_held)
		launcher_inst_ready(inst);
}

bool launcher_inst_is_clone(const struct instance *inst)
{
	return (inst->state == INST_BOOTING && launcher_how_clone(inst->how)) ||
	       (inst->state == INST_STOPPED && inst->rv->shell_template);
}

void template_end_run(struct instance *inst)
{
	if (inst->rv->templating) {
		template_unlink(inst, TPL_STATE_TMP);
		template_unlink(inst, TPL_RAM_TMP);
	}
	inst->rv->templating = false;
	inst->rv->reseeded = inst->rv->ready_held = false;
	free(inst->rv->tpl_key);
	inst->rv->tpl_key = NULL;
}
