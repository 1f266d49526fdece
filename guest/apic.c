/*
 * apic.c: xAPIC and IOAPIC through their MMIO windows.  Each access is a VM
 * exit, so the setup writes only what it must.
 */
#include "apic.h"
#include "cpu.h"

#define LAPIC 0xfee00000UL
#define LAPIC_ID 0x020
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LVT_MASKED 0x10000

#define IOAPIC1 0xfec00000UL
#define IOAPIC2 0xfec10000UL
#define IOAPIC_PINS 24

static uint8_t apic_id;

static void ioapic_write(uintptr_t base, uint32_t reg, uint32_t v)
{
	mmio_write32(base, reg);
	mmio_write32(base + 0x10, v);
}

static uint32_t ioapic_read(uintptr_t base, uint32_t reg)
{
	mmio_write32(base, reg);
	return mmio_read32(base + 0x10);
}

void apic_init(void)
{
	/*
	 * QEMU wires the 8259 to LINT0 as ExtINT at reset, and the PIT ticks
	 * into it: mask LINT0 (one write, where masking the 8259 takes two
	 * port writes; every access is a VM exit).  Nothing drives LINT1.
	 */
	mmio_write32(LAPIC + LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	mmio_write32(LAPIC + LAPIC_LVT_LINT0, LVT_MASKED);
	mmio_write32(LAPIC + LAPIC_TIMER_DIV, 0xb);       /* divide by 1 */
	mmio_write32(LAPIC + LAPIC_LVT_TIMER, VEC_TIMER); /* one-shot */
	apic_id = (uint8_t)(mmio_read32(LAPIC + LAPIC_ID) >> 24);
}

CPU_ISR_SAFE void apic_eoi(void)
{
	mmio_write32(LAPIC + LAPIC_EOI, 0);
}

bool apic_has_ioapic2(void)
{
	uint32_t ver = ioapic_read(IOAPIC2, 1);

	return ver != 0xffffffff && ver != 0 && (ver & 0xff) >= 0x11;
}

void apic_route_gsi(unsigned gsi, uint8_t vector)
{
	uintptr_t base = gsi < IOAPIC_PINS ? IOAPIC1 : IOAPIC2;
	unsigned pin = gsi % IOAPIC_PINS;

	/* Destination (0 after reset) first, then unmask: level (bit 15), active high, fixed. */
	if (apic_id)
		ioapic_write(base, 0x11 + 2 * pin, (uint32_t)apic_id << 24);
	ioapic_write(base, 0x10 + 2 * pin, 0x8000 | vector);
}

/*
 * On pc and q35 SeaBIOS leaves the PIT ticking into the 8259 and LINT0 in
 * ExtINT mode.  A tick that arrives before apic_init masks LINT0 stays
 * latched as a pending interrupt in QEMU's TCG CPU; masking LINT0 does not
 * clear it, and the first sti then takes a vector that does not exist
 * (a #GP with error code 0xfffffff2).  Lowering the 8259's output while
 * LINT0 is still ExtINT does clear it: so open LINT0, mask both 8259s,
 * close LINT0 again.  Only the firmware-booted (PCI) path needs this;
 * microvm boots without firmware and keeps its few VM exits.
 */
void apic_quiet_pic(void)
{
	mmio_write32(LAPIC + LAPIC_LVT_LINT0, 0x700); /* ExtINT, unmasked */
	outb(0xa1, 0xff);
	outb(0x21, 0xff);
	mmio_write32(LAPIC + LAPIC_LVT_LINT0, LVT_MASKED);
}

void apic_timer_start(uint32_t count)
{
	mmio_write32(LAPIC + LAPIC_TIMER_INIT, count);
}

void apic_quiet_pit(void)
{
	/*
	 * Channel 0 to mode 0 (one shot): after one count it stays put, so
	 * QEMU stops running a 18.2 Hz timer for an interrupt nobody takes.
	 */
	outb(0x43, 0x30);
	outb(0x40, 0xff);
	outb(0x40, 0xff);
}

uint32_t apic_timer_count(void)
{
	return mmio_read32(LAPIC + LAPIC_TIMER_CUR);
}
