# The hello guest alone (no beckond) under QEMU microvm, on a tap inside a
# network namespace made here: for the tests of the guest itself (sourced
# after lib.sh; needs root). The caller sets NS, TAP, GUEST_IP, HOST_IP,
# GUEST_MAC and NAME (the guest's name) first. All traffic stays inside
# the namespace.
IMG=${GUEST_IMAGE:-$ROOT/build/hello.elf}
QEMU_PID=

# inns CMD...: run CMD in the namespace.
inns() { ip netns exec "$NS" "$@"; }

kvm_usable() {
	python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null
}

# guest_setup WHAT: skip unless root, fail without the image; sets ACCEL:
# GUEST_ACCEL (kvm|tcg), else KVM when /dev/kvm opens, else TCG.
guest_setup() {
	if [ "$(id -u)" != 0 ]; then
		skip "$1: need root for a network namespace and a tap"
		exit 0
	fi
	if [ ! -f "$IMG" ]; then
		not_ok "guest image $IMG exists (run make)"
		exit 1
	fi
	ACCEL=${GUEST_ACCEL:-}
	if [ -z "$ACCEL" ]; then
		if kvm_usable; then ACCEL=kvm; else ACCEL=tcg; fi
	fi
}

# guestnet_up: the namespace, holding the tap with the "host" address;
# at exit the QEMU goes, then the namespace.
guestnet_up() {
	on_exit "ip netns del $NS"
	on_exit guest_stop
	ip netns add "$NS" || { not_ok "create namespace $NS"; exit 1; }
	inns ip link set lo up
	inns ip tuntap add dev "$TAP" mode tap || { not_ok "create tap $TAP"; exit 1; }
	inns ip addr add "$HOST_IP/24" dev "$TAP"
	inns ip link set "$TAP" up
}

# guest_boot [MACHINE_OPTIONS [QEMU_ARGS...]]: start QEMU (QEMU_PID), wait
# up to 5 s for READY on the console ($T/console); 1 when it did not come.
guest_boot() {
	local mopts=${1:+,$1}
	[ $# -gt 0 ] && shift
	: >"$T/console"
	# ip netns exec execs QEMU, so $! is QEMU's own pid (for kill and /proc/PID/stat).
	ip netns exec "$NS" qemu-system-x86_64 -M "microvm$mopts" -accel "$ACCEL" -m 32M \
		-nodefaults -no-user-config -display none \
		-serial "file:$T/console" \
		-kernel "$IMG" -append "ip=$GUEST_IP/24 gw=$HOST_IP name=$NAME port=80" \
		-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" \
		-device "virtio-net-device,netdev=n0,mac=$GUEST_MAC" "$@" \
		</dev/null >/dev/null 2>"$T/qemu.err" &
	QEMU_PID=$!
	# 30 s: TCG on a busy machine; READY usually comes within milliseconds.
	for _ in $(seq 1 600); do
		grep -q '^READY [0-9]*$' "$T/console" 2>/dev/null && return 0
		kill -0 "$QEMU_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# guest_stop: SIGTERM to QEMU, SIGKILL after a second.
guest_stop() {
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$QEMU_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$QEMU_PID" 2>/dev/null
		wait "$QEMU_PID" 2>/dev/null
	fi
	QEMU_PID=
}
