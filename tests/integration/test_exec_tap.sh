#!/usr/bin/env bash
# Every backend gets the same host network in bridge mode: an exec service
# whose command opens {tap} (here QEMU itself, run through exec, as a
# Solo5 tender would be) finds its tap made, up, on beckon's bridge, with a
# permanent neighbour entry for its MAC, before the command starts; the
# placeholders give it its address, gateway and MAC. The tap goes at
# SIGTERM, and after kill -9 at the next start. An exec command that opens
# no {tap} gets none. KVM when /dev/kvm opens, else TCG.
. "$(dirname "$0")/lib.sh"

need_root "exec tap"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl ip; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
ACCEL=tcg
python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null && ACCEL=kvm
echo "# accelerator: $ACCEL"

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.74)
BR=bkx$$    # a bridge of this test's own
P=x$$       # service names of this run
on_exit "ip link del $BR"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"
on_exit "pkill -9 -f 'guest=beckon-exec:$P-'"

QEMU="qemu-system-x86_64 -name guest=beckon-exec:{name} -M microvm -accel $ACCEL -m 32M -nodefaults -no-user-config -display none -serial stdio -kernel {image} -append 'ip={address}/{prefix} gw={gateway} name={name} port={port}' -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-device,netdev=n0,mac={mac}"
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$P-vm"; dns = ( "vm.svc.test" ); address = "$NET.2"; ports = ( 80 );
    backend = "exec"; image = "$IMG"; ready = "http:/healthz"; boot_timeout = "20s";
    exec = { command = "$QEMU"; }; },
  { name = "$P-notap"; dns = ( "notap.svc.test" ); address = "$NET.3"; ports = ( 80 );
    backend = "exec"; ready = "delay:10ms"; exec = { command = "sleep 1000"; }; },
CONF

field() { svc_field "$P-$1" "$2"; }
tap_of() { beckon_tap "$P-$1"; }
page() { curl -s --max-time 5 "http://$NET.2/"; }

out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "beckond -n accepts {tap} in exec.command ($out)" [ "$out" = "configuration OK" ]
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
check "a DNS query boots it and answers its address" [ "$(dq +time=30 +short vm.svc.test A)" = "$NET.2" ]
got=$(page)
names_vm() { [[ "$1" =~ ^"hello from $P-vm " ]]; }
check "the guest serves on the bridge, named by {name} ($got)" names_vm "$got"
TAP=$(tap_of vm)
check "its tap exists ($TAP)" [ -n "$TAP" ]
check "the tap is on the bridge and up" bash -c "ip -o link show '$TAP' | grep -q 'master $BR' && ip -o link show '$TAP' | grep -q 'state UP'"
check "a permanent neighbour entry for its address" bash -c "ip neigh show dev $BR $NET.2 | grep -q PERMANENT"
PID=$(field vm pid)
args=$(tr '\0' ' ' </proc/$PID/cmdline 2>/dev/null)
check "the command got {tap} and {mac}" bash -c "echo '$args' | grep -q 'ifname=$TAP,' && echo '$args' | grep -q 'mac=02:62:6b:'"
check "the command got {address}/{prefix} and {gateway}" bash -c "echo '$args' | grep -q 'ip=$NET.2/24 gw=$NET.1 name=$P-vm port=80'"
check "an exec command without {tap} boots" [ "$(dq +short notap.svc.test A)" = "$NET.3" ]
check "... and gets no tap" [ -z "$(beckon_taps "$P-notap")" -a "$(field notap state)" = ready ]

check "SIGTERM: beckond exits cleanly" stop_daemon
check "SIGTERM: the tap is gone" bash -c "! ip link show '$TAP' >/dev/null 2>&1"
check "SIGTERM: the bridge beckon made is gone" bash -c "! ip link show '$BR' >/dev/null 2>&1"

# kill -9: the tap stays behind (nobody ran the cleanup), the next start sweeps it.
: >"$T/beckond.log"
start_daemon "$CONF" || { not_ok "beckond starts again"; finish; }
dq +time=30 +short vm.svc.test A >/dev/null
check "booted again" [ "$(field vm state)" = ready ]
TAP=$(tap_of vm)
QPID=$(field vm pid)
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
check "kill -9: its QEMU ($QPID) goes with beckond" wait_for 10 bash -c "! kill -0 $QPID 2>/dev/null"
check "kill -9: the tap is left behind ($TAP)" ip link show "$TAP"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts after kill -9"; finish; }
check "restart: the tap it left is swept" bash -c "! ip link show '$TAP' >/dev/null 2>&1"
check "restart: it boots and serves again" bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=30 +short vm.svc.test A)\" = $NET.2 ] && curl -s --max-time 5 http://$NET.2/ | grep -q 'hello from $P-vm'"
check "SIGTERM again: clean, no tap" bash -c "kill -TERM $DPID; for i in \$(seq 250); do kill -0 $DPID 2>/dev/null || break; sleep 0.02; done; ! kill -0 $DPID 2>/dev/null && [ -z \"\$(ip -o link | grep -F '$TAP')\" ]"
finish
