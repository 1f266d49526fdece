# The hello unikernel (owned by guest/): a freestanding x86-64 PVH ELF.
# No libc and no SSE/FPU (the nested KVM here dies on SSE), so it is built
# with its own flags, whatever CC/CFLAGS the rest of the tree uses.

GUEST_CC      ?= gcc
GUEST_OBJCOPY ?= objcopy
GUEST_SRCS    := $(wildcard guest/*.c)
GUEST_OBJS    := $(patsubst guest/%.c,build/guest/%.o,$(GUEST_SRCS)) build/guest/boot.o
GUEST_CFLAGS  := -std=gnu11 -O2 -g -ffreestanding -fno-builtin -nostdlib -fno-pic -fno-pie \
	-static -mgeneral-regs-only -mno-red-zone -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
	-fcf-protection=none -mno-sse -mno-mmx -mno-80387 \
	-Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-n -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -Wl,-T,guest/link.ld

.PHONY: guest
guest: build/hello.elf

build/guest/%.o: guest/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

build/guest/boot.o: guest/boot.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

# hello.debug.elf keeps the symbols (for gdb or addr2line); hello.elf is stripped.
build/guest/hello.debug.elf: $(GUEST_OBJS) guest/link.ld
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

build/hello.elf: build/guest/hello.debug.elf
	$(GUEST_OBJCOPY) --strip-all $< $@

# A GRUB disk image booting hello.elf through multiboot2 (guest/mkiso.sh;
# needs grub-mkrescue, so not part of "make guest").  GUEST_ISO_CMDLINE
# becomes the guest's command line in grub.cfg; GUEST_ISO puts the image
# elsewhere (a test's own directory, with its own command line).
GUEST_ISO         ?= build/hello.iso
GUEST_ISO_CMDLINE ?=

.PHONY: guest-iso guest-iso-force
guest-iso: $(GUEST_ISO)

# Remembers the command line the image was made with: a new one remakes it.
$(GUEST_ISO).cmdline: guest-iso-force
	@mkdir -p $(dir $@)
	@printf '%s\n' '$(GUEST_ISO_CMDLINE)' | cmp -s - $@ || printf '%s\n' '$(GUEST_ISO_CMDLINE)' >$@

$(GUEST_ISO): build/hello.elf $(GUEST_ISO).cmdline guest/mkiso.sh
	sh guest/mkiso.sh $@ build/hello.elf '$(GUEST_ISO_CMDLINE)'
