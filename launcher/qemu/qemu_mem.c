/*
 * Guest memory that the clones of a template share (template = "auto").
 *
 * The boot that makes a template (the service's first real instance) runs
 * its guest RAM on a memfd that QEMU maps shared: memory-backend-file on
 * /proc/self/fd/N, share=on (a named file: QEMU 8 skips only those). The
 * template's save sets x-ignore-shared, so the stream carries the devices
 * and no RAM; once it completes, the guest still stopped, beckon copies the
 * memfd to <state_dir>/templates/NAME.ram.tmp (zero pages left as holes;
 * template.c renames it with the rest) and the guest runs on. Each clone
 * maps NAME.ram privately (share=off): the pages it never writes stay the
 * page cache's, one copy for every clone. QEMU 7.2 has no command-line
 * switch for x-ignore-shared, so a clone starts with -incoming defer and
 * gets the capability over QMP before migrate-incoming (which takes the
 * state file's fd by number).
 *
 * The backend's id is the machine's own RAM id ("microvm.ram", "pc.ram"),
 * so that a clone or the source, suspended (x-ignore-shared off: the RAM in
 * the stream), restores into QEMU's own anonymous RAM, and the other way
 * round. A machine whose id is not known here keeps the RAM in the stream.
 *
 * A pool VMM (qemu_pool.c), started before any template is chosen, runs
 * its guest RAM on a memfd of beckon's too (share=on, the same words as a
 * source's, so that the shape is one). A take copies the template's .ram
 * into it (its data pages only, a few hundred KiB for the hello guest) and
 * loads the stream with x-ignore-shared: QEMU reads no RAM, where it used
 * to read the whole of it from the stream, zero page by zero page (half
 * of a restore's 10 ms under TCG). Its pages are its own, not the page
 * cache's: a pool VMM is one of a few, and what it restores is written.
 * A template without a .ram (an older one) loads its RAM into the memfd.
 * The copy is also where a restore gets its fresh entropy and clock, when
 * the guest has a reseed page (guest/README.md): a page that begins with
 * RESEED_MAGIC and its own guest-physical address (the .ram's offset, as
 * machines lay out low RAM); the copy writes new words into it, so the
 * guest has them before it runs and no RESEED line waits on the console.
 *
 * With qemu.huge_pages = "off", a boot, a template's source and its
 * clones run QEMU without transparent huge pages (PR_SET_THP_DISABLE): a
 * paused hello guest touches a few hundred KiB, which THP rounds up to
 * 2 MiB pieces of guest RAM and of TCG's code buffer (about 6 MiB an
 * instance booted, 2 MiB a clone), at some cost in start time under TCG
 * (boot to READY 125 -> 140 ms, a clone's spawn to running 173 -> 204 ms,
 * medians of 20). A restore into QEMU's own memory (from suspend) keeps
 * them: loading a state reads every page, and 4 KiB faults doubled its
 * time (47 -> 93 ms for 16 MiB).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "backend.h"
#include "log.h"
#include "qemu.h"
#include "qmp.h"
#include "revive.h"

#define MEM_PAGE 4096
#define MEM_CHUNK (256 * 1024)
/* The reseed page (guest/README.md): the magic, then little-endian words. */
#define RESEED_MAGIC "BECKON-RESEED-1" /* 16 bytes with its NUL */
#define RESEED_OFF_ADDR 16
#define RESEED_OFF_GEN 24
#define RESEED_OFF_ENTROPY 32
#define RESEED_OFF_WALL 48

struct qemu_mem {
	const char *id;
	bool share;    /* the template's source or a pool VMM (share=on), else a clone */
	bool filled;   /* a pool VMM's memfd holds the template's .ram: load without RAM */
	bool ignore;   /* x-ignore-shared asked for already (a pool VMM, when it came up) */
	bool reseeded; /* the fill wrote fresh words into the guest's reseed page */
	int memfd;     /* the source's guest RAM until the template has a copy; a pool
	                * VMM's until a take fills it; else -1 */
	char path[4096];
};

static const char *mem_name(const struct instance *inst)
{
	return launcher_inst_service(inst)->name;
}

static bool mem_prefix(const char *m, const char *p)
{
	size_t n = strlen(p);

	return strncmp(m, p, n) == 0 && (m[n] == '\0' || m[n] == ',' || m[n] == '-');
}

const char *qemu_mem_ram_id(const char *machine)
{
	const char *m = qemu_machine_value(machine);

	if (mem_prefix(m, "microvm"))
		return "microvm.ram";
	if (mem_prefix(m, "pc") || mem_prefix(m, "q35") || mem_prefix(m, "isapc"))
		return "pc.ram";
	return NULL;
}

static uint64_t mem_size(const struct instance *inst)
{
	return (launcher_inst_service(inst)->memory + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
}

/* The source of a template: its guest RAM on a memfd of beckon's. */
static int mem_source(struct instance *inst, struct qemu_mem *m)
{
	if ((m->memfd = memfd_create("beckon-guest-ram", MFD_CLOEXEC)) == -1 ||
	    ftruncate(m->memfd, (off_t)mem_size(inst)) == -1) {
		log_warn("%s: template: guest memory on a memfd, so it stays in the state",
		         mem_name(inst));
		return -1;
	}
	snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", QEMU_MEM_FD);
	return 0;
}

/* A clone: the template's .ram, when the template has one (0: it has not). */
static int mem_clone(struct instance *inst, struct qemu_mem *m)
{
	if (launcher_template_ram_path(inst, false, m->path, sizeof(m->path)) == -1 ||
	    access(m->path, R_OK) == -1)
		return 0;
	return 1;
}

int qemu_mem_prepare(struct instance *inst, bool restore, struct qemu_mem **out)
{
	const char *id = qemu_mem_ram_id(launcher_inst_service(inst)->qemu.machine);
	bool clone = restore && launcher_inst_is_clone(inst);
	struct qemu_mem *m;

	*out = NULL;
	if (id == NULL || (!clone && (restore || !launcher_inst_makes_template(inst))))
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	m->id = id;
	m->memfd = -1;
	m->share = !clone;
	/* No memfd: the template keeps the RAM in its stream, as on other machines. */
	if (clone ? mem_clone(inst, m) != 1 : mem_source(inst, m) == -1) {
		qemu_mem_free(m);
		return 0;
	}
	*out = m;
	return 0;
}

int qemu_mem_pool(const struct instance *standin, bool memfd, struct qemu_mem **out)
{
	const char *id = qemu_mem_ram_id(launcher_inst_service(standin)->qemu.machine);
	struct qemu_mem *m;

	*out = NULL;
	if (id == NULL)
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	m->id = id;
	m->share = true;
	m->memfd = -1;
	snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", QEMU_MEM_FD);
	if (memfd && ((m->memfd = memfd_create("beckon-pool-ram", MFD_CLOEXEC)) == -1 ||
	              ftruncate(m->memfd, (off_t)mem_size(standin)) == -1)) {
		log_warn("pool: guest memory on a memfd");
		qemu_mem_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

void qemu_mem_free(struct qemu_mem *m)
{
	if (m == NULL)
		return;
	if (m->memfd != -1)
		close(m->memfd);
	free(m);
}

void qemu_mem_argv_in(const struct qemu_mem *m, struct qemu_argv_in *in)
{
	if (m == NULL)
		return;
	in->mem_id = m->id;
	in->mem_path = m->path;
	in->mem_share = m->share;
}

int qemu_mem_fd(const struct qemu_mem *m)
{
	return m != NULL ? m->memfd : -1;
}

bool qemu_mem_is_clone(const struct qemu_mem *m)
{
	return m != NULL && !m->share;
}

bool qemu_mem_thp_off(const struct instance *inst, const struct qemu_mem *m, bool restore)
{
	return launcher_inst_service(inst)->qemu.thp_off && (m != NULL || !restore);
}

static json_t *mem_ignore_caps(bool on)
{
	return json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared",
	                 "state", on);
}

int qemu_mem_incoming_caps(struct instance *inst, struct qmp *q,
                           void (*cb)(struct qmp *, json_t *, json_t *, void *))
{
	struct qemu_mem *m = qemu_run_mem(inst);
	bool want = qemu_mem_is_clone(m) || (m != NULL && m->filled);

	if (want == (m != NULL && m->ignore))
		return 0;
	if (m != NULL)
		m->ignore = want;
	return qmp_command(q, "migrate-set-capabilities", mem_ignore_caps(want), cb, inst);
}

static void mem_pool_caps_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;

	(void)q;
	(void)ret;
	(void)arg;
	if (err != NULL)
		log_warnx("pool VMM: x-ignore-shared: %s (its restores will fail)",
		          desc ? desc : "refused");
}

/*
 * Asked once the VMM is up, not at a take: QEMU reads its monitor a byte
 * at a time (about 4 us a byte under TCG here), and this command is a
 * quarter of what a take would say.
 */
int qemu_mem_pool_ready(struct instance *standin, struct qmp *q)
{
	struct qemu_mem *m = qemu_run_mem(standin);

	if (m == NULL || !m->share || m->memfd == -1)
		return 0;
	m->ignore = true;
	return qmp_command(q, "migrate-set-capabilities", mem_ignore_caps(true), mem_pool_caps_cb,
	                   NULL);
}

static void mem_load_reply_cb(struct qmp *q, json_t *ret, json_t *err, void *arg)
{
	const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;

	(void)q;
	(void)ret;
	if (err == NULL)
		return;
	log_warnx("%s: restore: %s", mem_name(arg), desc ? desc : "failed");
	launcher_inst_failed(arg, "the template did not load");
}

/* Queued until QMP is up. Without QMP the guest never loads: boot_timeout ends it. */
void qemu_mem_load(struct instance *inst)
{
	struct qmp *q = qemu_run_qmp(inst);

	if (q == NULL || qemu_mem_incoming_caps(inst, q, mem_load_reply_cb) == -1 ||
	    qmp_command(q, "migrate-incoming",
	                json_pack("{s:s}", "uri", "fd:" QEMU_INCOMING_FD_STR), mem_load_reply_cb,
	                inst) == -1)
		log_warnx("%s: restore: no QMP to load the template with", mem_name(inst));
}

json_t *qemu_mem_save_caps(struct instance *inst, bool keep)
{
	json_t *caps = json_pack("[{s:s, s:b}]", "capability", "events", "state", 1);

	/* Off for a suspend: the RAM goes in the stream, to load anywhere. */
	if (caps != NULL && qemu_run_mem(inst) != NULL)
		json_array_append_new(
		    caps, json_pack("{s:s, s:b}", "capability", "x-ignore-shared", "state", keep));
	return json_pack("{s:o}", "capabilities", caps);
}

static bool mem_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static uint64_t mem_get_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void mem_put_le64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* A pool fill: the reseed page gets fresh words on its way (NULL: a plain copy). */
struct mem_fill {
	const char *name;
	bool reseeded;
};

/* PAGE (LEN bytes at guest-physical OFF) is the guest's reseed page: fresh words into it. */
static void mem_reseed_page(unsigned char *page, size_t len, off_t off, struct mem_fill *fill)
{
	unsigned char e[16];
	uint64_t ms;

	if (fill == NULL || fill->reseeded || len < MEM_PAGE || off == 0 ||
	    memcmp(page, RESEED_MAGIC, sizeof(RESEED_MAGIC)) != 0 ||
	    mem_get_le64(page + RESEED_OFF_ADDR) != (uint64_t)off ||
	    qemu_template_words(e, &ms, fill->name) == -1)
		return;
	mem_put_le64(page + RESEED_OFF_GEN, mem_get_le64(page + RESEED_OFF_GEN) + 1);
	memcpy(page + RESEED_OFF_ENTROPY, e, sizeof(e));
	mem_put_le64(page + RESEED_OFF_WALL, ms);
	fill->reseeded = true;
}

/* Copy IN's bytes [FROM, TO) to OUT, all-zero pages skipped (OUT has holes there). */
static int mem_copy_range(int in, int out, off_t from, off_t to, unsigned char *buf,
                          struct mem_fill *fill)
{
	ssize_t n;

	for (off_t p = from; p < to; p += n) {
		size_t want = (size_t)(to - p < MEM_CHUNK ? to - p : MEM_CHUNK);

		if ((n = pread(in, buf, want, p)) <= 0)
			return -1;
		for (ssize_t i = 0; i < n; i += MEM_PAGE) {
			size_t len = (size_t)(n - i < MEM_PAGE ? n - i : MEM_PAGE);

			if (mem_zero(buf + i, len))
				continue;
			mem_reseed_page(buf + i, len, p + i, fill);
			if (pwrite(out, buf + i, len, p + i) != (ssize_t)len)
				return -1;
		}
	}
	return 0;
}

/* IN (SIZE bytes) into OUT, its data ranges only (SEEK_DATA), zero pages as holes. */
static int mem_copy(int in, int out, off_t size, struct mem_fill *fill)
{
	unsigned char *buf = malloc(MEM_CHUNK);
	off_t data, hole;
	int rc = -1;

	if (buf == NULL || ftruncate(out, size) == -1)
		goto done;
	for (off_t off = 0; off < size; off = hole) {
		if ((data = lseek(in, off, SEEK_DATA)) == -1) {
			rc = errno == ENXIO ? 0 : -1; /* no data past OFF */
			goto done;
		}
		if ((hole = lseek(in, data, SEEK_HOLE)) == -1)
			goto done;
		/* From a page's start (a reseed page is not split), never back over
		 * what the last range copied (it would undo a reseed page). */
		data &= ~(off_t)(MEM_PAGE - 1);
		if (mem_copy_range(in, out, data > off ? data : off, hole, buf, fill) == -1)
			goto done;
	}
	rc = 0;
done:
	free(buf);
	return rc;
}

int qemu_mem_fill(int in, int out, off_t size, const char *name, bool *reseeded)
{
	struct mem_fill fill = {name, false};
	int rc = mem_copy(in, out, size, &fill);

	*reseeded = fill.reseeded;
	return rc;
}

int qemu_mem_freeze(struct instance *inst)
{
	struct qemu_mem *m = qemu_run_mem(inst);
	char path[4096];
	int out = -1, rc = -1;

	if (m == NULL || m->memfd == -1)
		return 0;
	if (launcher_template_ram_path(inst, true, path, sizeof(path)) == -1 ||
	    (out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1 ||
	    mem_copy(m->memfd, out, (off_t)mem_size(inst), NULL) == -1)
		goto fail;
	rc = 0;
	/* QEMU holds its own: beckon's is no use now. */
	close(m->memfd);
	m->memfd = -1;
	goto done;
fail:
	log_warn("%s: template: copying the guest's memory to %s", mem_name(inst), path);
	unlink(path);
done:
	if (out != -1)
		close(out);
	return rc;
}

int qemu_mem_pool_fill(struct instance *inst)
{
	struct qemu_mem *m = qemu_run_mem(inst);
	char path[4096] = "";
	int in = -1, rc = -1;

	if (m == NULL || m->memfd == -1)
		return 0;
	if (launcher_template_ram_path(inst, false, path, sizeof(path)) == -1 ||
	    (in = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = errno == ENOENT ? 0 : -1; /* no .ram: the stream has the RAM */
		goto done;
	}
	if (qemu_mem_fill(in, m->memfd, (off_t)mem_size(inst), mem_name(inst), &m->reseeded) == -1)
		goto done;
	m->filled = true;
	log_debug("%s: pool VMM: its memory from the template's .ram%s", mem_name(inst),
	          m->reseeded ? ", fresh words in its reseed page" : "");
	rc = 1;
done:
	if (rc == -1)
		log_warn("%s: pool VMM: copying the template's memory from %s", mem_name(inst),
		         path);
	if (in != -1)
		close(in);
	/* Filled or not, QEMU holds its own: beckon's is no use now. */
	close(m->memfd);
	m->memfd = -1;
	return rc;
}

bool qemu_mem_reseeded(const struct qemu_mem *m)
{
	return m != NULL && m->reseeded;
}
