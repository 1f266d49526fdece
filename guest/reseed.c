/*
 * reseed.c: fresh entropy and clock after a restore (reseed.h).  COM1's
 * receiver raises IRQ 4 (level, through the IOAPIC, as the NIC does);
 * the handler drains the FIFO into a line buffer, and the main loop
 * applies a complete line.  Bytes that are no RESEED line are dropped.
 * The reseed page is looked at before anything the words shape is used.
 */
#include "apic.h"
#include "console.h"
#include "cpu.h"
#include "reseed.h"
#include "timer.h"

#define COM1 0x3f8
#define COM_IER 1
#define COM_DLM 1 /* with LCR_DLAB */
#define COM_FCR 2
#define COM_LCR 3
#define COM_MCR 4
#define COM_LSR 5
#define LSR_DR 0x01
#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define FCR_ON_CLEARED 0x07
#define FCR_TRIGGER_14 0xc0
#define VEC_SERIAL 0x42
#define ISA_IRQ_COM1 4
#define LINE_MAX 80

/*
 * The reseed page (guest/README.md): beckon writes fresh words into it
 * when it restores us into a pool VMM, before we run, and sends no line.
 */
struct reseed_page {
	char magic[16];   /* RESEED_PAGE_MAGIC */
	uint64_t addr;    /* this page's guest-physical address: ours is identity-mapped */
	uint64_t gen;     /* beckon adds one at each restore */
	uint64_t e0, e1;  /* fresh entropy */
	uint64_t wall_ms; /* unix time at the restore */
};
#define RESEED_PAGE_MAGIC "BECKON-RESEED-1"

static volatile struct reseed_page rs_page
    __attribute__((aligned(4096))) = {.magic = RESEED_PAGE_MAGIC};
static uint64_t rs_page_gen; /* the page's gen we took last */
static char rs_line[LINE_MAX];
static volatile unsigned rs_len;
static volatile bool rs_done; /* a whole line waits in rs_line */
static uint64_t rs_secret, rs_boot_id, rs_wall_ms, rs_wall_at_us;
static uint32_t rs_count;

static uint64_t rs_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

__attribute__((interrupt)) static void reseed_isr(struct cpu_frame *f)
{
	uint8_t c;

	(void)f;
	/* Level-triggered: reading every byte lowers the line. */
	while (inb(COM1 + COM_LSR) & LSR_DR) {
		c = inb(COM1);
		if (rs_done)
			continue; /* the last line is not taken yet */
		if (c == '\n') {
			rs_line[rs_len] = '\0';
			rs_done = true;
		} else if (rs_len < LINE_MAX - 1) {
			rs_line[rs_len++] = (char)c;
		}
	}
	apic_eoi();
}

void reseed_init(void)
{
	rs_secret = rs_mix(rdtsc()) | 1;
	rs_boot_id = rs_mix(rs_secret ^ 0x626f6f74ULL);
	rs_page.addr = (uint64_t)(uintptr_t)&rs_page;
	/*
	 * 115200 baud and a trigger level of 14: QEMU hands its UART only as
	 * many bytes at a time as the trigger level, one main-loop turn and one
	 * interrupt each (a byte at a time at level 1: 5 ms for a RESEED line
	 * under TCG), and fires a short line's tail after 4 character times of
	 * the divisor (4 ms at the reset 9600 baud, 0.35 ms at 115200).
	 */
	outb(COM1 + COM_LCR, LCR_DLAB);
	outb(COM1, 1); /* divisor 1: 115200 */
	outb(COM1 + COM_DLM, 0);
	outb(COM1 + COM_LCR, LCR_8N1);
	outb(COM1 + COM_FCR, FCR_ON_CLEARED | FCR_TRIGGER_14);
	outb(COM1 + COM_MCR, 0x08); /* OUT2: the interrupt line on PC UARTs */
	outb(COM1 + COM_IER, 0x01); /* received data available */
	cpu_set_vector(VEC_SERIAL, reseed_isr);
	apic_route_gsi(ISA_IRQ_COM1, VEC_SERIAL);
}

bool reseed_pending(void)
{
	return rs_done;
}

static int rs_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "RESEED HEX32 MS": the two entropy words and the time; false when malformed. */
static bool rs_parse(const char *s, uint64_t *e0, uint64_t *e1, uint64_t *ms)
{
	int i, d;

	if (s[0] != 'R' || s[1] != 'E' || s[2] != 'S' || s[3] != 'E' || s[4] != 'E' ||
	    s[5] != 'D' || s[6] != ' ')
		return false;
	s += 7;
	*e0 = *e1 = *ms = 0;
	for (i = 0; i < 32; i++) {
		if ((d = rs_hex(s[i])) < 0)
			return false;
		if (i < 16)
			*e0 = *e0 << 4 | (uint64_t)d;
		else
			*e1 = *e1 << 4 | (uint64_t)d;
	}
	s += 32;
	if (*s++ != ' ' || *s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		*ms = *ms * 10 + (uint64_t)(*s - '0');
	return *s == '\0';
}

/* Mix in fresh words: a new secret and boot id, the wall clock. */
static void rs_apply(uint64_t e0, uint64_t e1, uint64_t ms)
{
	rs_secret = rs_mix(rs_secret ^ e0 ^ rdtsc()) | 1;
	rs_boot_id = rs_mix(rs_boot_id ^ e1);
	rs_wall_ms = ms;
	rs_wall_at_us = timer_now_us();
	rs_count++;
	console_printf("RESEEDED %lx\n", rs_boot_id);
}

/* beckon wrote the page since we last looked: a restore. */
static void rs_page_poll(void)
{
	if (rs_page.gen == rs_page_gen)
		return;
	rs_page_gen = rs_page.gen;
	rs_apply(rs_page.e0, rs_page.e1, rs_page.wall_ms);
}

void reseed_poll(void)
{
	uint64_t e0, e1, ms;

	rs_page_poll();
	if (!rs_done)
		return;
	if (rs_parse(rs_line, &e0, &e1, &ms))
		rs_apply(e0, e1, ms);
	rs_len = 0;
	barrier();
	rs_done = false;
}

uint64_t reseed_boot_id(void)
{
	rs_page_poll();
	return rs_boot_id;
}

uint32_t reseed_count(void)
{
	rs_page_poll();
	return rs_count;
}

uint64_t reseed_wall_ms(void)
{
	rs_page_poll();
	if (!rs_wall_ms)
		return 0;
	return rs_wall_ms + (timer_now_us() - rs_wall_at_us) / 1000;
}

uint64_t reseed_secret(void)
{
	rs_page_poll();
	return rs_secret;
}
