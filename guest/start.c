/*
 * start.c: bring-up and the event loop.  The loop polls the NIC and the TCP
 * timers, then halts until an interrupt (NIC or LAPIC timer) arrives.
 */
#include "apic.h"
#include "console.h"
#include "cpu.h"
#include "eth.h"
#include "net.h"
#include "netif.h"
#include "reseed.h"
#include "tcp.h"
#include "timer.h"

/* The part of struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h) we read. */
struct hvm_start_info {
	uint32_t magic; /* 0x336ec578 */
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
};

#define HVM_START_MAGIC 0x336ec578

/* A multiboot2 information tag; the tags follow an 8-byte header, each 8-byte aligned. */
struct mb2_tag {
	uint32_t type; /* 0 ends the list */
	uint32_t size; /* of this tag, header included */
};

#define MB2_TAG_CMDLINE 1
#define MB2_INFO_MAX 0x10000 /* we stop looking for the command line this far in */

extern uint32_t boot_start_info; /* boot.S: %ebx at the PVH entry */
extern uint32_t boot_mb2_info;   /* boot.S: %ebx at the multiboot2 entry */

void guest_main(void);

/*
 * The command line GRUB passes (its "multiboot2 FILE WORDS..." line; GRUB
 * may or may not include FILE, a word the parser ignores).  The info block
 * can lie anywhere below 4 GiB: call this after cpu_init, whose page-fault
 * handler maps what boot.S did not.
 */
static const char *start_mb2_cmdline(void)
{
	const uint8_t *info = (const void *)(uintptr_t)boot_mb2_info;
	uint32_t total = *(const uint32_t *)info, off;
	const struct mb2_tag *t;

	for (off = 8; off + sizeof(*t) <= MIN(total, MB2_INFO_MAX); off += (t->size + 7) & ~7u) {
		t = (const void *)(info + off);
		if (t->type == 0 || t->size < sizeof(*t))
			break;
		if (t->type == MB2_TAG_CMDLINE && t->size > sizeof(*t))
			return (const char *)(t + 1);
	}
	return "";
}

static const char *start_cmdline(void)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)boot_start_info;

	if (boot_mb2_info)
		return start_mb2_cmdline();

	if (!si || si->magic != HVM_START_MAGIC || !si->cmdline_paddr ||
	    si->cmdline_paddr >= 0x100000000ULL)
		return "";
	return (const char *)(uintptr_t)si->cmdline_paddr;
}

static uint64_t start_earliest(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : MIN(a, b);
}

/* Serve forever; sleeps in hlt when there is nothing to do. */
static void start_loop(void)
{
	uint64_t now, next;

	for (;;) {
		netif_take_irq();
		timer_take_fired();
		reseed_poll(); /* before any SYN is answered: a clone's new ISN secret */
		netif_poll();
		now = timer_now_us();
		next = start_earliest(tcp_timer(now), arp_timer(now));
		if (netif_polled()) /* no NIC interrupt: look again in a millisecond */
			next = start_earliest(next, now + 1000);
		netif_flush();
		timer_arm(next);
		if (netif_rx_arm())
			continue;
		cpu_irq_disable();
		if (!netif_take_irq() && !timer_take_fired() && !reseed_pending())
			cpu_idle(); /* sti; hlt: an interrupt between cli and here still wakes us */
		else
			cpu_irq_enable();
	}
}

void guest_main(void)
{
	const char *cmdline;

	cpu_init();
	cmdline = start_cmdline();
	apic_init();
	reseed_init();
	timer_init();
	net_config_parse(cmdline);
	if (netif_init(cmdline, net_cfg.mac) < 0) {
		console_printf("FATAL no virtio-net device\n");
		cpu_halt();
	}
	cpu_irq_enable();
	netif_flush();
	timer_calibrate();
	net_cfg.ready_us = timer_now_us();
	console_printf("READY %lu\n", net_cfg.ready_us);
	/* Listening already; now the rest of the receive ring and the ARP announcements. */
	netif_rx_fill();
	arp_start();
	apic_quiet_pit();
	start_loop();
}
