/*
 * The copy a pool take makes of a template's memory (qemu_mem_fill): data
 * pages only, and the guest's reseed page (guest/README.md) given a new
 * generation, fresh entropy and the time on its way; a page whose magic or
 * address does not hold is copied as it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "qemu.h"

#define PAGE 4096
#define SIZE (16 * PAGE)
#define MAGIC "BECKON-RESEED-1"

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A reseed page at OFF that says it is at ADDR, generation GEN. */
static void page_at(int fd, off_t off, uint64_t addr, uint64_t gen)
{
	unsigned char p[PAGE] = {0};

	memcpy(p, MAGIC, sizeof(MAGIC));
	put64(p + 16, addr);
	put64(p + 24, gen);
	memset(p + 64, 0xab, 100); /* the rest of the guest's data */
	assert_int_equal(pwrite(fd, p, PAGE, off), PAGE);
}

static void read_page(int fd, off_t off, unsigned char *p)
{
	assert_int_equal(pread(fd, p, PAGE, off), PAGE);
}

static int mem(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SIZE), 0);
	return fd;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_fill_writes_the_page(void **state)
{
	int in = mem("tpl"), out = mem("vmm");
	unsigned char a[PAGE], b[PAGE], zero[16] = {0};
	bool reseeded = false;
	uint64_t t0 = now_ms();

	(void)state;
	page_at(in, 2 * PAGE, 2 * PAGE, 5);
	assert_int_equal(pwrite(in, "other data", 10, 7 * PAGE + 100), 10);
	assert_int_equal(qemu_mem_fill(in, out, SIZE, "t", &reseeded), 0);
	assert_true(reseeded);
	read_page(in, 2 * PAGE, a);
	read_page(out, 2 * PAGE, b);
	assert_memory_equal(b, MAGIC, sizeof(MAGIC));
	assert_int_equal(get64(b + 16), 2 * PAGE);
	assert_int_equal(get64(b + 24), 6);
	assert_memory_not_equal(b + 32, zero, 16);
	assert_true(get64(b + 48) >= t0 && get64(b + 48) <= now_ms());
	assert_memory_equal(b + 56, a + 56, PAGE - 56); /* the rest as it was */
	read_page(in, 7 * PAGE, a);
	read_page(out, 7 * PAGE, b);
	assert_memory_equal(a, b, PAGE);
	read_page(in, 2 * PAGE, a); /* the template itself is not written */
	assert_int_equal(get64(a + 24), 5);
	close(in);
	close(out);
}

static void test_two_fills_differ(void **state)
{
	int in = mem("tpl"), o1 = mem("vmm1"), o2 = mem("vmm2");
	unsigned char a[PAGE], b[PAGE];
	bool r1, r2;

	(void)state;
	page_at(in, 3 * PAGE, 3 * PAGE, 0);
	assert_int_equal(qemu_mem_fill(in, o1, SIZE, "t", &r1), 0);
	assert_int_equal(qemu_mem_fill(in, o2, SIZE, "t", &r2), 0);
	assert_true(r1 && r2);
	read_page(o1, 3 * PAGE, a);
	read_page(o2, 3 * PAGE, b);
	assert_int_equal(get64(a + 24), 1);
	assert_int_equal(get64(b + 24), 1);
	assert_memory_not_equal(a + 32, b + 32, 16);
	close(in);
	close(o1);
	close(o2);
}

/* The magic alone is no reseed page: its address must be where it lies (and not 0). */
static void test_fill_leaves_what_does_not_hold(void **state)
{
	int in = mem("tpl"), out = mem("vmm");
	unsigned char a[PAGE], b[PAGE];
	bool reseeded = true;

	(void)state;
	page_at(in, 0, 0, 1);               /* at 0 */
	page_at(in, 4 * PAGE, 9 * PAGE, 1); /* a copy of the page's bytes elsewhere */
	page_at(in, 5 * PAGE, 5 * PAGE, 1);
	memcpy(a, "BECKON-RESEED-2", 16); /* another magic */
	assert_int_equal(pwrite(in, a, 16, 5 * PAGE), 16);
	assert_int_equal(qemu_mem_fill(in, out, SIZE, "t", &reseeded), 0);
	assert_false(reseeded);
	for (off_t off = 0; off < SIZE; off += PAGE) {
		read_page(in, off, a);
		read_page(out, off, b);
		assert_memory_equal(a, b, PAGE);
	}
	close(in);
	close(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fill_writes_the_page),
	    cmocka_unit_test(test_two_fills_differ),
	    cmocka_unit_test(test_fill_leaves_what_does_not_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
