#!/usr/bin/env bash
# Activity means clients: what a guest sends by itself (ARP and multicast
# and broadcast chatter: MLD reports, router solicitations, mDNS, NetBIOS)
# does not keep it up; traffic with a client (ICMP echo, here) does. Bridge
# mode, exec services that open {tap} (a Python chatterbox writing raw
# frames every 100 ms, and QEMU with the hello guest), idle_timeout = 1s,
# on_idle = "destroy". KVM when /dev/kvm opens, else TCG.
. "$(dirname "$0")/lib.sh"

need_root "idle chatter"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 python3 ping ip; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
ACCEL=tcg
python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null && ACCEL=kvm

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.72)
BR=bkc$$
P=c$$
on_exit "ip link del $BR"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"
on_exit "while iptables -w -D FORWARD -m conntrack --ctstate ESTABLISHED -m comment --comment 'beckon-ct $BR' 2>/dev/null; do :; done"

# A guest that only chatters: on its tap, every 100 ms, an ARP request for
# the gateway, an IPv6 MLD report and router solicitation, an mDNS query to
# 224.0.0.251 and a NetBIOS one to the subnet's broadcast.
cat >"$T/chatter.py" <<'PY'
import fcntl, os, struct, sys, time
tap, mac, ip, gw, bcast = sys.argv[1:6]
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", tap.encode(), 0x0002 | 0x1000))
src = bytes.fromhex(mac.replace(":", ""))
a4 = lambda s: bytes(int(x) for x in s.split("."))
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def udp4(dmac, dst, dport, payload):
    u = struct.pack("!HHHH", 5353 if dport == 5353 else 137, dport, 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(u), 0, 0x4000, 1, 17, 0, a4(ip), a4(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return dmac + src + b"\x08\x00" + h + u
arp = b"\xff" * 6 + src + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + a4(ip) + b"\x00" * 6 + a4(gw)
v6 = lambda d: bytes.fromhex("3333000000" + d) + src + b"\x86\xdd" + bytes.fromhex("6000000000083a01fe80000000000000") + src[:3] + b"\xff\xfe" + src[3:] + bytes.fromhex("ff020000000000000000000000000000")[:15] + bytes.fromhex(d) + bytes(8)
frames = [arp, v6("16"), v6("02"),
          udp4(bytes.fromhex("01005e0000fb"), "224.0.0.251", 5353, b"\x00" * 12),
          udp4(b"\xff" * 6, bcast, 137, b"\x00" * 12)]
print("READY", flush=True)
while True:
    for f in frames:
        try:
            os.write(fd, f)
        except OSError:
            pass
    time.sleep(0.1)
PY
QEMU="qemu-system-x86_64 -name guest=beckon-exec:{name} -M microvm -accel $ACCEL -m 32M -nodefaults -no-user-config -display none -serial stdio -kernel {image} -append 'ip={address}/{prefix} gw={gateway} name={name} port={port}' -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-device,netdev=n0,mac={mac}"
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$P-chat"; dns = ( "chat.svc.test" ); address = "$NET.2"; ports = ( 80 );
    backend = "exec"; ready = "console:^READY"; idle_timeout = "4s"; on_idle = "destroy"; boot_timeout = "60s";
    exec = { command = "python3 $T/chatter.py {tap} {mac} {address} {gateway} $NET.255"; }; },
  { name = "$P-vm"; dns = ( "vm.svc.test" ); address = "$NET.3"; ports = ( 80 );
    backend = "exec"; image = "$IMG"; ready = "http:/healthz"; boot_timeout = "30s";
    idle_timeout = "1s"; on_idle = "destroy"; exec = { command = "$QEMU"; }; },
CONF
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
field() { svc_field "$P-$1" "$2"; }
state_is() { [ "$(field "$1" state)" = "$2" ]; }
tap_rx() { cat "/sys/class/net/$(beckon_tap "$P-$1")/statistics/rx_packets" 2>/dev/null || echo 0; }

check "chatter: a DNS query starts it" [ "$(dq +short chat.svc.test A)" = "$NET.2" ]
# idle_timeout 4 s: long enough on a loaded machine to see its frames go on before it goes.
check "chatter: it chatters (its tap has received frames)" wait_for 20 bash -c "[ \$(cat /sys/class/net/$(beckon_tap "$P-chat")/statistics/rx_packets) -gt 10 ]"
check "chatter: its mDNS and NetBIOS broadcasts reach conntrack (the filter matters)" \
	bash -c "grep -q 'src=$NET.2 dst=224.0.0.251' /proc/net/nf_conntrack && grep -q 'src=$NET.2 dst=$NET.255' /proc/net/nf_conntrack"
rx0=$(tap_rx chat)
# It never stops sending: with its chatter counted, it would never be idle.
chatting() { [ "$(tap_rx chat)" -gt "$rx0" ] || { sleep 0.05; return 1; }; }
wait_for 20 chatting
rx1=$(tap_rx chat)
check "chatter: idled although it never stops sending" wait_for 30 state_is chat stopped
check "chatter: ... still chattering while it was up ($rx0 frames, then $rx1)" [ "$rx1" -gt "$rx0" ]
check "chatter: the log says idle" grep -q "$P-chat: idle: destroy" "$DLOG"

check "client: a DNS query boots the hello guest" [ "$(dq +time=30 +short vm.svc.test A)" = "$NET.3" ]
ping -i 0.25 -c 16 -W 1 "$NET.3" >"$T/ping.out" 2>&1
check "client: 16 pings over 4 s answered ($(grep -o '[0-9]* received' "$T/ping.out"))" grep -q ' 16 received' "$T/ping.out"
check "client: pinged for 4 s with idle_timeout 1 s, no DNS: still ready" state_is vm ready
check "client: pings over: idled" wait_for 15 state_is vm stopped

check "SIGTERM: beckond exits cleanly" stop_daemon
finish
