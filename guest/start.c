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

extern uint32_t boot_start_info; /* boot.S: %ebx at entry */

void guest_main(void);

static const char *start_cmdline(void)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)boot_start_info;

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
		netif_poll();
		now = timer_now_us();
		next = start_earliest(tcp_timer(now), arp_timer(now));
		netif_flush();
		timer_arm(next);
		if (netif_rx_arm())
			continue;
		cpu_irq_disable();
		if (!netif_take_irq() && !timer_take_fired())
			cpu_idle(); /* sti; hlt: an interrupt between cli and here still wakes us */
		else
			cpu_irq_enable();
	}
}

void guest_main(void)
{
	const char *cmdline = start_cmdline();

	cpu_init();
	apic_init();
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
