/*
 * cpu.c: the interrupt descriptor table.  Handlers are plain C functions
 * with gcc's interrupt attribute (allowed because we build
 * -mgeneral-regs-only), so there is no assembly stub per vector.
 */
#include "console.h"
#include "cpu.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

static struct idt_gate cpu_idt[256] __attribute__((aligned(16)));

void cpu_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * A fault is a bug: say where, then triple-fault on purpose (an empty IDT
 * and INT3).  QEMU then resets the guest, which boots afresh, or exits
 * under -no-reboot so that whoever runs us notices; hanging would do neither.
 */
CPU_ISR_SAFE static void cpu_fault(unsigned vec, const struct cpu_frame *f, uint64_t err)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) none = {0, 0};

	console_printf("FAULT vector %u err %lx rip %lx\n", vec, err, f->rip);
	__asm__ volatile("lidt %0; int3" : : "m"(none));
	cpu_halt();
}

/*
 * One tiny handler per exception, so the vector number is known.  Only the
 * exceptions this code can raise get one (each gate costs ~15 emulated
 * instructions at boot here): divide error, invalid opcode, double fault,
 * general protection, page fault.  No FPU, SSE, INT3 or alignment checks are
 * ever enabled; anything else triple-faults and QEMU restarts the guest.
 */
__attribute__((interrupt)) static void cpu_exc0(struct cpu_frame *f)
{
	cpu_fault(0, f, 0);
}

__attribute__((interrupt)) static void cpu_exc6(struct cpu_frame *f)
{
	cpu_fault(6, f, 0);
}

__attribute__((interrupt)) static void cpu_exc8(struct cpu_frame *f, uint64_t err)
{
	cpu_fault(8, f, err);
}

__attribute__((interrupt)) static void cpu_exc13(struct cpu_frame *f, uint64_t err)
{
	cpu_fault(13, f, err);
}

#define PTE_FLAGS 0x83 /* present, writable, 2 MiB */
#define PTE_UC 0x18    /* PCD | PWT */

extern uint64_t boot_pd[2048]; /* boot.S: four page directories, 0..4 GiB */

/*
 * boot.S maps only what bring-up touches (the first 4 MiB, and the 6 MiB
 * below 0xff000000 where the APICs and microvm's virtio-mmio live):
 * every instruction before that is emulated on the nested KVM here.  Any
 * other address below 4 GiB (Firecracker's MMIO at 0xd0000000, say) is
 * mapped here, 2 MiB at a time, when first touched.
 */
CPU_ISR_SAFE static void cpu_map(const struct cpu_frame *f, uint64_t err)
{
	uint64_t va;
	unsigned i;

	__asm__ volatile("mov %%cr2, %0" : "=r"(va));
	i = (unsigned)(va >> 21);
	if ((err & 1) || va >= 0x100000000ULL || boot_pd[i]) {
		console_printf("FAULT page %lx ", va);
		cpu_fault(14, f, err);
	}
	boot_pd[i] = ((uint64_t)i << 21) | PTE_FLAGS | (va >= 0xc0000000ULL ? PTE_UC : 0);
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

__attribute__((interrupt)) static void cpu_exc14(struct cpu_frame *f, uint64_t err)
{
	cpu_map(f, err);
}

/* Anything else (spurious, stray vectors) is ignored. */
__attribute__((interrupt)) static void cpu_ignore(struct cpu_frame *f)
{
	(void)f;
}

static void cpu_gate(uint8_t vec, uintptr_t fn)
{
	struct idt_gate *g = &cpu_idt[vec];

	g->off_lo = (uint16_t)fn;
	g->sel = 0x08;
	g->ist = 0;
	g->type = 0x8e; /* present, ring 0, 64-bit interrupt gate */
	g->off_mid = (uint16_t)(fn >> 16);
	g->off_hi = (uint32_t)(fn >> 32);
	g->zero = 0;
}

void cpu_set_vector(uint8_t vec, void (*handler)(struct cpu_frame *))
{
	cpu_gate(vec, (uintptr_t)handler);
}

void cpu_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) desc = {sizeof(cpu_idt) - 1, (uintptr_t)cpu_idt};

	cpu_gate(0, (uintptr_t)cpu_exc0);
	cpu_gate(6, (uintptr_t)cpu_exc6);
	cpu_gate(8, (uintptr_t)cpu_exc8);
	cpu_gate(13, (uintptr_t)cpu_exc13);
	cpu_gate(14, (uintptr_t)cpu_exc14);
	cpu_gate(0xff, (uintptr_t)cpu_ignore); /* LAPIC spurious: no EOI */
	__asm__ volatile("lidt %0" : : "m"(desc));
}
