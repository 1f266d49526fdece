/*
 * boot.S: PVH and multiboot2 entries.  A PVH loader (QEMU -kernel, Firecracker,
 * Xen) starts us at pvh_start in 32-bit protected mode, paging off, %ebx
 * pointing at a struct hvm_start_info.  A multiboot2 loader (GRUB's
 * "multiboot2" command) starts us at mb2_start in the same mode with %eax
 * holding 0x36d76289 and %ebx pointing at its boot information.  We record
 * the TSC first (so "microseconds since entry" means what it says),
 * identity-map the low 4 GiB with 2 MiB pages, enter long mode and call
 * guest_main().  No SSE is ever enabled: the nested KVM here dies on
 * SSE/XSAVE, and the C code is built -mgeneral-regs-only.
 */

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100
#define PTE_P		0x001
#define PTE_W		0x002
#define PTE_PWT		0x008
#define PTE_PCD		0x010
#define PTE_PS		0x080

#define MB2_MAGIC	0xe85250d6	/* in the header */
#define MB2_BOOTED	0x36d76289	/* in %eax at entry */
#define MB2_ARCH_I386	0		/* 32-bit protected mode */
#define MB2_HDR_LEN	(mb2_header_end - mb2_header)

/*
 * The multiboot2 header: 8-byte aligned in the first 32 KiB of the file
 * (link.ld puts it first).  The entry address tag sends GRUB to mb2_start;
 * the ELF's own entry stays pvh_start.  QEMU's -kernel looks for multiboot
 * (version 1) headers only, so this one does not change how -kernel boots us.
 */
	.section .multiboot2, "a"
	.balign 8
mb2_header:
	.long MB2_MAGIC
	.long MB2_ARCH_I386
	.long MB2_HDR_LEN
	.long -(MB2_MAGIC + MB2_ARCH_I386 + MB2_HDR_LEN)
	.balign 8
	.word 3, 0		/* entry address tag */
	.long 12
	.long mb2_start
	.balign 8
	.word 0, 0		/* end tag */
	.long 8
mb2_header_end:

/* XEN_ELFNOTE_PHYS32_ENTRY (18): where a PVH loader jumps in 32-bit mode. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 8			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad pvh_start		/* a 64-bit ELF's loaders read 8 bytes here */

	.section .text.boot, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	rdtsc
	movl %eax, boot_tsc
	movl %edx, boot_tsc + 4
	movl %ebx, boot_start_info
	movl $0, boot_mb2_info
	jmp boot_common

	.globl mb2_start
mb2_start:
	cli
	movl %eax, %esi
	rdtsc
	movl %eax, boot_tsc
	movl %edx, boot_tsc + 4
	movl $0, boot_start_info
	xorl %eax, %eax
	cmpl $MB2_BOOTED, %esi
	cmovel %ebx, %eax
	movl %eax, boot_mb2_info

boot_common:
	/* PML4[0] -> PDPT; PDPT[0..3] -> the four page directories. */
	movl $pdpt + (PTE_P | PTE_W), pml4
	movl $pd + (PTE_P | PTE_W), %eax
	xorl %ecx, %ecx
1:	movl %eax, pdpt(, %ecx, 8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jb 1b

	/*
	 * 2 MiB pages for the first 4 MiB (us, our data, the start info) and
	 * 0xfea00000-0xfeffffff (microvm's virtio-mmio, the IOAPICs, the LAPIC),
	 * uncached.  Nothing more: until long mode every instruction is
	 * emulated on the nested KVM here, at about a microsecond each.  The
	 * #PF handler (cpu.c) maps anything else below 4 GiB on demand.
	 */
	movl $(PTE_P | PTE_W | PTE_PS), pd
	movl $(0x200000 | PTE_P | PTE_W | PTE_PS), pd + 8
	movl $(0xfea00000 | PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT), pd + 8 * 2037
	movl $(0xfec00000 | PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT), pd + 8 * 2038
	movl $(0xfee00000 | PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT), pd + 8 * 2039

	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0

	lgdt gdt_desc
	ljmp $0x08, $long_entry

	.code64
long_entry:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	leaq boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call guest_main
4:	cli
	hlt
	jmp 4b

	.section .rodata
	.balign 8
gdt:
	.quad 0				/* null */
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
gdt_end:
	.balign 2
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
	.globl boot_pd
boot_pd:
pd:	.skip 4096 * 4
boot_stack:
	.skip 16384
boot_stack_top:
	.balign 8
	.globl boot_tsc, boot_start_info, boot_mb2_info
boot_tsc:	.skip 8
boot_start_info: .skip 4
boot_mb2_info:	.skip 4

	.section .note.GNU-stack, "", @progbits
