#!/usr/bin/env bash
# test_guest_machines.sh: boot the hello guest the ways other than microvm
# with virtio-mmio, and check that each serves HTTP:
#   -M pc  with virtio-net-pci (transitional, so the modern interface) and with
#          disable-modern=on (the legacy I/O-port interface), booted by -kernel (PVH);
#   -M q35 with virtio-net-pci on the root bus, and behind a pcie-root-port;
#   a GRUB image (make guest-iso, multiboot2), its command line in grub.cfg,
#          as an IDE disk and as a CD-ROM under -M pc, and with more words
#          from an SMBIOS OEM string (-smbios type=11);
#   -M microvm with virtio-mmio, as before.
# QEMU user networking with a host forward to the guest's port 80, so no
# root is needed.  TCG unless GUEST_ACCEL says otherwise.  Prints "ok - ..."
# / "not ok - ..." / "skip - ..." per check; exits non-zero if any failed.
. "$(dirname "$0")/lib.sh"
IMG=${GUEST_IMAGE:-$ROOT/build/hello.elf}
ACCEL=${GUEST_ACCEL:-tcg}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60} # seconds to READY: TCG on a busy machine, SeaBIOS and GRUB first

for tool in qemu-system-x86_64 curl timeout; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "guest machine tests: $tool is not installed"
		exit 1
	fi
done
if [ ! -f "$IMG" ]; then
	not_ok "guest image $IMG exists (run make guest)"
	exit 1
fi

VM_PID=
# vm_start TAG QEMU_ARGS...: QEMU in the background for at most 10 minutes,
# the console in $T/TAG.console, the guest's port 80 on 127.0.0.1:$VM_PORT.
# -no-reboot: a guest that faults (it triple-faults on purpose) ends QEMU.
vm_start() {
	local tag=$1
	shift
	VM_PORT=$(free_port)
	: >"$T/$tag.console"
	VM_T0=$(date +%s%N)
	timeout 600 qemu-system-x86_64 -accel "$ACCEL" -m 64M -nodefaults -no-user-config \
		-display none -no-reboot -serial "file:$T/$tag.console" \
		-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$VM_PORT-:80" "$@" \
		</dev/null >/dev/null 2>"$T/$tag.err" &
	VM_PID=$!
	on_exit "kill $VM_PID"
}

# vm_stop: end the QEMU vm_start started (timeout passes SIGTERM on).
vm_stop() {
	[ -n "$VM_PID" ] || return 0
	kill "$VM_PID" 2>/dev/null
	wait "$VM_PID" 2>/dev/null
	VM_PID=
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# vm_ready TAG: wait for READY on the console (BOOT_TIMEOUT seconds, or
# until QEMU ends); sets READY_MS, the milliseconds from QEMU's start.
vm_ready() {
	local deadline=$(($(date +%s%N) + BOOT_TIMEOUT * 1000000000))
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		if grep -q '^READY [0-9]*$' "$T/$1.console" 2>/dev/null; then
			READY_MS=$(ms_since "$VM_T0")
			return 0
		fi
		kill -0 "$VM_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "# $1: no READY; console and QEMU's stderr:"
	cat "$T/$1.console" "$T/$1.err" | head -20 | sed 's/^/# /'
	return 1
}

# serves TAG NAME WHAT: READY, GET / names NAME, 100 keep-alive requests
# on one connection, no fault; WHAT describes the boot in the check lines.
serves() {
	local tag=$1 name=$2 what=$3 body url n200 conns
	if ! vm_ready "$tag"; then
		not_ok "$what: READY on the console"
		vm_stop
		return
	fi
	url=http://127.0.0.1:$VM_PORT
	# The forward accepts before the guest listens; READY says it listens now.
	body=$(curl -s --max-time 10 "$url/")
	HTTP_MS=$(ms_since "$VM_T0")
	ok "$what: READY after $READY_MS ms ($(grep -m1 '^READY' "$T/$tag.console"))"
	check "$what: GET / names the guest ($body; $HTTP_MS ms from start)" \
		bash -c '[[ "$1" == "hello from $2 (boot "*" us, request 1)" ]]' _ "$body" "$name"
	curl -s --max-time 60 -o /dev/null -w '%{http_code} %{num_connects}\n' \
		"$url/healthz?[1-100]" >"$T/$tag.keepalive" 2>/dev/null
	n200=$(grep -c '^200 ' "$T/$tag.keepalive")
	conns=$(awk '{s += $2} END {print s + 0}' "$T/$tag.keepalive")
	check "$what: 100 keep-alive requests all 200 ($n200) over one connection ($conns)" \
		test "$n200" = 100 -a "$conns" = 1
	check "$what: no fault on the console" bash -c '! grep -q FAULT "$1"' _ "$T/$tag.console"
	vm_stop
}

# console_says TAG PATTERN WHAT
console_says() {
	check "$3" grep -q "$2" "$T/$1.console"
}

MAC=52:54:00:12:34:56

# ---- pc: PVH through -kernel (SeaBIOS first), virtio-net-pci ----
vm_start pc -M pc -kernel "$IMG" -append "name=pcmodern" \
	-device "virtio-net-pci,netdev=n0,mac=$MAC"
serves pc pcmodern "pc, virtio-net-pci (transitional)"
console_says pc '^virtio-pci 0:2.0 modern irq [0-9]' \
	"pc: the transitional device is driven through its modern interface, with an IRQ"

vm_start pclegacy -M pc -kernel "$IMG" -append "name=pclegacy" \
	-device "virtio-net-pci,netdev=n0,mac=$MAC,disable-modern=on"
serves pclegacy pclegacy "pc, virtio-net-pci,disable-modern=on"
console_says pclegacy '^virtio-pci 0:2.0 legacy irq [0-9]' \
	"pc, disable-modern=on: driven through the legacy I/O ports, with an IRQ"

# ---- q35: PCIe; on the root bus, and modern-only behind a root port (bus 1) ----
vm_start q35 -M q35 -kernel "$IMG" -append "name=q35guest" \
	-device "virtio-net-pci,netdev=n0,mac=$MAC"
serves q35 q35guest "q35, virtio-net-pci on the root bus"

vm_start q35port -M q35 -kernel "$IMG" -append "name=q35port" \
	-device pcie-root-port,id=rp1,chassis=1 \
	-device "virtio-net-pci,netdev=n0,mac=$MAC,bus=rp1"
serves q35port q35port "q35, virtio-net-pci behind a pcie-root-port"
console_says q35port '^virtio-pci 1:0.0 modern irq [0-9]' \
	"q35: the device behind the root port is found on bus 1, modern"

# ---- a GRUB image (multiboot2), its command line in grub.cfg ----
if ! command -v grub-mkrescue >/dev/null || [ ! -d /usr/lib/grub/i386-pc ]; then
	skip "GRUB image boots: grub-mkrescue (grub-common, grub-pc-bin) is not installed; make deps installs it"
else
	ISO=$T/hello.iso
	if ! make -s -C "$ROOT" guest-iso GUEST_ISO="$ISO" GUEST_ISO_CMDLINE="name=isoguest port=80" \
		>"$T/iso.log" 2>&1; then
		not_ok "make guest-iso builds a GRUB image: $(tail -5 "$T/iso.log" | tr '\n' ' ')"
	else
		ok "make guest-iso builds a GRUB image ($(stat -c %s "$ISO") bytes)"
		vm_start isodisk -M pc -drive "file=$ISO,format=raw,if=ide" \
			-device "virtio-net-pci,netdev=n0,mac=$MAC"
		serves isodisk isoguest "pc, GRUB image as an IDE disk (name from grub.cfg)"

		vm_start isocd -M pc -drive "file=$ISO,format=raw,if=ide,media=cdrom" \
			-device "virtio-net-pci,netdev=n0,mac=$MAC"
		serves isocd isoguest "pc, GRUB image as a CD-ROM"

		# The same image, more words from QEMU (they follow grub.cfg's, so they win).
		vm_start isosmbios -M pc -drive "file=$ISO,format=raw,if=ide" \
			-smbios "type=11,value=hello.cmdline=name=fromqemu" \
			-device "virtio-net-pci,netdev=n0,mac=$MAC"
		serves isosmbios fromqemu "pc, GRUB image, name from -smbios type=11 (no new image)"
	fi
fi

# ---- microvm: virtio-mmio as before ----
vm_start microvm -M microvm -kernel "$IMG" -append "name=mvguest" \
	-device "virtio-net-device,netdev=n0,mac=$MAC"
serves microvm mvguest "microvm, virtio-mmio"
check "microvm: no PCI scan (no virtio-pci line)" bash -c '! grep -q virtio-pci "$1"' _ "$T/microvm.console"

finish
