/* apic.h: the local APIC (timer, EOI) and the IOAPICs (device interrupts). */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include "cpu.h"

#define VEC_TIMER 0x40
#define VEC_NET 0x41
#define VEC_SPURIOUS 0xff

/* Mask the 8259s, enable the local APIC, mask LINT0/1. */
void apic_init(void);
/* Signal end of interrupt to the local APIC. */
CPU_ISR_SAFE void apic_eoi(void);
/* Route a GSI to vector on this CPU, level-triggered active high. */
void apic_route_gsi(unsigned gsi, uint8_t vector);
/* True when a second IOAPIC answers (microvm with ACPI: GSIs 24..47). */
bool apic_has_ioapic2(void);
/* One-shot LAPIC timer: count ticks at the bus clock (1 GHz in QEMU and KVM); 0 stops it. */
void apic_timer_start(uint32_t count);
/*
 * Mask the 8259s after firmware ran (pc, q35): see apic.c.  Call with
 * interrupts off, after apic_init.
 */
void apic_quiet_pic(void);
/* Stop the legacy PIT's periodic tick (we never use it). */
void apic_quiet_pit(void);
/* The LAPIC timer's current count. */
uint32_t apic_timer_count(void);

#endif
