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
