/* cpu.h: x86-64 instructions the guest needs, as inline functions. */
#ifndef GUEST_CPU_H
#define GUEST_CPU_H

#include "lib.h"

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint8_t mmio_read8(uintptr_t addr)
{
	return *(volatile uint8_t *)addr;
}

static inline void mmio_write8(uintptr_t addr, uint8_t v)
{
	*(volatile uint8_t *)addr = v;
}

static inline uint16_t mmio_read16(uintptr_t addr)
{
	return *(volatile uint16_t *)addr;
}

static inline void mmio_write16(uintptr_t addr, uint16_t v)
{
	*(volatile uint16_t *)addr = v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
	                 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
	                 : "a"(leaf), "c"(sub));
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* Compiler barrier: keeps ring-index stores after the descriptor stores. */
static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/*
 * Full fence without SSE (mfence is an SSE2 encoding; the nested KVM here
 * is touchy about those): a locked add orders stores before later loads.
 */
static inline void cpu_mb(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
}

static inline void cpu_irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}

static inline void cpu_irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}

/* sti;hlt is atomic: an interrupt pending at the sti wakes the hlt. */
static inline void cpu_idle(void)
{
	__asm__ volatile("sti; hlt" ::: "memory");
}

/* The interrupt frame the CPU pushes; handlers use gcc's interrupt attribute. */
/* Functions that interrupt handlers call save every register they touch. */
#define CPU_ISR_SAFE __attribute__((no_caller_saved_registers))

struct cpu_frame {
	uint64_t rip, cs, rflags, rsp, ss;
};

/* Install the IDT: exceptions print and stop, the rest go where asked. */
void cpu_init(void);
/* Route vector to handler (a function with __attribute__((interrupt))). */
void cpu_set_vector(uint8_t vector, void (*handler)(struct cpu_frame *));
/* Stop for good (after a fatal error). */
__attribute__((noreturn)) void cpu_halt(void);

#endif
