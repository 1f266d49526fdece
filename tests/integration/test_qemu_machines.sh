#!/usr/bin/env bash
# Real guests' machine shapes and boot methods through beckond, with the
# hello guest standing in for each (bridge mode, hold "none"): microvm with
# virtio-mmio; pc and q35 with virtio-net-pci (the NIC follows the machine);
# a GRUB disk image booted as the disk (qemu.boot = "disk", its command
# line passed with qemu.args placeholders through SMBIOS), which the guest
# cannot change; and a guest given no command line gets none.
# KVM when /dev/kvm opens, else TCG.
. "$(dirname "$0")/lib.sh"

need_root "qemu machines"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl ip; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.73)
BR=bkm$$
P=m$$
GUEST_MARK="guest=beckon:$P-"
on_exit "ip link del $BR"
on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"

HELLO='cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";'
svc() { # svc NAME N KEYS
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( 80 );
    image = "$IMG"; ready = "http:/healthz"; boot_timeout = "60s"; $3 },
CONF
}
ISO=$T/hello.iso
if make -s -C "$ROOT" guest-iso GUEST_ISO="$ISO" GUEST_ISO_CMDLINE="" >"$T/iso.log" 2>&1; then
	# TCG unless TEST_ACCEL says: under nested KVM (a KVM inside a VM, as on
	# some of these machines) SeaBIOS and GRUB read the CD by port I/O, an
	# exit each, and take a minute to what TCG does in under a second.
	DISK_SVC=$(svc disk 6 "image = \"$ISO\"; qemu = { accel = \"${TEST_ACCEL:-tcg}\"; machine = \"pc\"; boot = \"disk\"; args = ( \"-smbios\", \"type=11,value=hello.cmdline=ip={address}/{prefix} gw={gateway} name={name} port={port}\" ); };" | sed 's|image = "'"$IMG"'"; ||')
else
	DISK_SVC=
	skip "disk boot: make guest-iso failed (grub-mkrescue?): $(tail -2 "$T/iso.log" | tr '\n' ' ')"
fi
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
{
	svc micro 2 "$HELLO"
	svc pc 3 "$HELLO qemu = { machine = \"pc\"; };"
	svc q35 4 "$HELLO qemu = { machine = \"q35\"; };"
	svc bare 5 'ready = "console:^READY"; qemu = { machine = "pc"; };' | sed 's/ready = "http:\/healthz"; //'
	[ -n "$DISK_SVC" ] && echo "$DISK_SVC"
} | add_services "$CONF"

"$BECKOND" -n -c "$CONF" >"$T/n.out" 2>&1
check "beckond -n: configuration OK" grep -q 'configuration OK' "$T/n.out"
check "beckond -n notes the command line beckon no longer writes for $P-bare" \
	grep -q "services\[3\]: note: beckon adds nothing to the guest's command line" "$T/n.out"
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }

field() { svc_field "$P-$1" "$2"; }
qemu_args() { tr '\0' '\n' <"/proc/$(field "$1" pid)/cmdline"; }
# boots_and_serves NAME N: a DNS query boots it; the page names it.
boots_and_serves() {
	local ans page
	ans=$(dig @127.0.0.1 -p "$DNS_PORT" +time=90 +tries=1 +short "$1.svc.test" A)
	page=$(curl -s --max-time 10 "http://$NET.$2/")
	echo "# $1: $ans: $page"
	[ "$ans" = "$NET.$2" ] && [[ "$page" =~ ^"hello from $P-$1 " ]]
}

check "microvm: a DNS query boots it and it serves" boots_and_serves micro 2
check "microvm: virtio-net-device (mmio)" bash -c "tr '\0' '\n' </proc/$(field micro pid)/cmdline | grep -q '^virtio-net-device,'"
check "pc: a DNS query boots it and it serves" boots_and_serves pc 3
check "pc: virtio-net-pci, chosen by the machine" bash -c "tr '\0' '\n' </proc/$(field pc pid)/cmdline | grep -q '^virtio-net-pci,'"
check "q35: a DNS query boots it and it serves" boots_and_serves q35 4
check "q35: virtio-net-pci" bash -c "tr '\0' '\n' </proc/$(field q35 pid)/cmdline | grep -q '^virtio-net-pci,'"

# No cmdline: no -append, no words of beckon's; the guest keeps its defaults.
check "no cmdline: it boots (console READY)" bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=90 +tries=1 +short bare.svc.test A)\" = $NET.5 ]"
check "no cmdline: QEMU got no -append" bash -c "! tr '\0' '\n' </proc/$(field bare pid)/cmdline | grep -qx -- -append"
check "no cmdline: its console says READY" grep -q '^READY' "$T/state/$P-bare.console"

if [ -n "$DISK_SVC" ]; then
	check "disk: a DNS query boots the GRUB image and it serves" boots_and_serves disk 6
	args=$(tr '\0' ' ' </proc/$(field disk pid)/cmdline)
	check "disk: no -kernel, the image as a snapshot boot disk" \
		bash -c "echo '$args' | grep -q 'file=$ISO,format=raw,if=none,id=boot,media=cdrom,readonly=on' && ! echo '$args' | grep -q -- '-kernel'"
	check "disk: qemu.args placeholders expanded" bash -c "echo '$args' | grep -q 'hello.cmdline=ip=$NET.6/24 gw=$NET.1 name=$P-disk port=80'"
	sum=$(md5sum <"$ISO")
fi
check "SIGTERM: beckond exits cleanly" stop_daemon
[ -n "$DISK_SVC" ] && check "disk: the image is unchanged" [ "$(md5sum <"$ISO")" = "$sum" ]
finish
