#!/usr/bin/env bash
# The libvirt backend through the real daemon and a private libvirtd
# (libvirtd.sh), with the hello guest in bridge mode, hold "none": a DNS
# query boots the guest as a transient domain beckon-NAME and is answered
# once it serves; a client in a namespace of its own gets the page. A
# domain destroyed behind beckon's back, a user's own XML, a domain libvirt
# refuses, XML that does not parse, SIGTERM, and kill -9 then a restart;
# a connection libvirtd drops while SIGTERM's stops run.
# Domains are type "qemu" (TCG) without /dev/kvm, "kvm" with it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"

need_root "libvirt"
IMG=$ROOT/build/hello.elf
for tool in /usr/sbin/libvirtd virsh qemu-system-x86_64 curl ip unshare python3; do
	command -v $tool >/dev/null || { not_ok "$tool is installed (make deps)"; finish; }
done
"$BECKOND" -V | grep -qw libvirt || { not_ok "beckond is built with the libvirt backend (libvirt-dev)"; finish; }
ok "beckond -V lists the libvirt backend ($("$BECKOND" -V | tail -1))"
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
TIMEOUT=30s # libvirtd starts QEMU in about 1.5 s here; the machine is shared

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.79)
BR=bkl$$     # a bridge of this test's own
NS=bkl-lv-$$ # the client's namespace
VETH=bklv$$
P=l$$ # service names of this run
CLIENT=$NET.200
LV_MARK="guest=beckon-$P-"
BADURI="qemu+tcp://127.0.0.1:1/system" # nothing listens there

on_exit "ip netns del $NS"
on_exit "ip link del $VETH"
on_exit "ip link del $BR"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"

[ -n "${LV_KEEP:-}" ] && on_exit "cp -r $T/*.log $T/lv/libvirtd.log $T/state $LV_KEEP/"
libvirtd_up || { not_ok "a private libvirtd starts"; finish; }
ok "a private libvirtd starts ($LV_URI)"

svc() { # svc NAME ADDRESS [KEY = VALUE; ...]
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 80 ); backend = "libvirt";
    image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    boot_timeout = "$TIMEOUT"; libvirt = { uri = "${LVURI:-$LV_URI}"; ${LVKEYS:-} }; ${3:-} },
CONF
}
write_conf() { # write_conf SERVICES...
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
	printf '%s\n' "$@" | add_services "$CONF"
}
field() { svc_field "$P-$1" "$2"; }
dqa() { dig @127.0.0.1 -p "$DNS_PORT" +time=40 +tries=1 "$@"; }
rcode() { dqa "$1.svc.test" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
page() { ip netns exec "$NS" curl -s --max-time "${2:-5}" -w ' %{http_code}' "http://$1/" | tr -d '\n'; }
is_page() { [[ "$1" =~ ^"hello from $P-$2 ".*" 200"$ ]]; }
serves() { is_page "$(page "$1")" "$2"; }
state_is() { [ "$(field "$1" state)" = "$2" ]; }
dom() { echo "beckon-$P-$1"; }
no_domains() { [ -z "$(lv_domains "beckon-$P-")" ]; }
# no_domains_left LOG: none left after beckond's exit; else what libvirt,
# beckond (LOG) and libvirtd said of them.
no_domains_left() {
	local d
	no_domains && return 0
	for d in $(lv_domains "beckon-$P-"); do
		echo "# left: $d ($(lv_state "$d"))"
		grep -E "$d|libvirt" "$1" | tail -8 | sed 's/^/#   beckond: /'
		grep "$d" "$LV/libvirtd.log" | tail -5 | sed 's/^/#   libvirtd: /'
	done
	return 1
}
client_up() {
	ip netns add "$NS" 2>/dev/null
	ip link show "$VETH" >/dev/null 2>&1 ||
		ip link add "$VETH" type veth peer name eth0 netns "$NS" || return 1
	ip link set "$VETH" master "$BR" up &&
		ip netns exec "$NS" ip addr replace "$CLIENT/24" dev eth0 &&
		ip netns exec "$NS" ip link set eth0 up &&
		ip netns exec "$NS" ip link set lo up
}

# A user's own domain XML, with placeholders (and an & in its description).
cat >"$T/own.xml" <<'EOF'
<domain type='qemu'>
  <name>whatever-the-user-wrote</name>
  <description>the user's &amp; own: {name}</description>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='microvm'>hvm</type>
    <kernel>{image}</kernel>
    <cmdline>{cmdline}</cmdline>
  </os>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <interface type='ethernet'>
      <mac address='{mac}'/>
      <target dev='{tap}' managed='no'/>
      <model type='virtio'/>
      <address type='virtio-mmio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
EOF

write_conf "$(svc www $NET.2)" "$(LVKEYS="xml = \"$T/own.xml\";" svc own $NET.3)" \
	"$(svc bad $NET.4 'qemu = { machine = "no-such-machine"; };')" \
	"$(svc con $NET.7 'ready = "console:^READY";')" \
	"$(svc fails $NET.8 'ready = "console:NEVER"; fail = "console:^READY";')" \
	"$(LVURI=$BADURI svc unreach $NET.9)"
check "beckond -n accepts the config" bash -c "'$BECKOND' -n -c '$CONF' | grep -qx 'configuration OK'"
start_daemon "$CONF" || { not_ok "beckond starts with libvirt services"; finish; }
ok "beckond starts with libvirt services in bridge mode"
client_up || { not_ok "client namespace on the bridge"; finish; }

# 1. A cold name boots the domain; the answer comes once it serves.
check "www is stopped before the first query" state_is www stopped
t0=$(now_ms)
ans=$(dqa +short www.svc.test A)
t1=$(now_ms)
got=$(page $NET.2)
echo "# cold boot through libvirt: $((t1 - t0)) ms from the query to the answer"
check "cold query: the answer is the guest's address ($ans, $((t1 - t0)) ms)" [ "$ans" = "$NET.2" ]
check "right after the answer the client gets 200 naming the service ($got)" is_page "$got" www
check "www is ready after one boot" [ "$(field www state) $(field www boots)" = "ready 1" ]
check "virsh list shows $(dom www) running" [ "$(lv_state "$(dom www)")" = running ]
check "the domain is transient (virsh: not persistent)" \
	bash -c "virsh -q -c '$LV_URI' dominfo $(dom www) | grep -qE '^Persistent: +no'"
check "the domain is $(dom www) on type $([ -e /dev/kvm ] && echo kvm || echo qemu), on the test's tap" \
	bash -c "virsh -q -c '$LV_URI' dumpxml $(dom www) | grep -q \"dev='$(beckon_tap "$P-www")'\""
check "the console came through the libvirt stream to state_dir" wait_for 15 grep -q '^READY' "$T/state/$P-www.console"

# 2. Destroyed behind beckon's back: the lifecycle event says so at once.
virsh_lv destroy "$(dom www)" >/dev/null
t0=$(now_ms) # virsh destroy returns once libvirtd has ended the domain
check "virsh destroy: www goes to stopped" wait_for 10 state_is www stopped
# When beckond logged it, by its own clock (beckonctl polling is slow on a loaded machine).
ts=$(grep -m1 "$P-www: domain $(dom www) destroyed" "$DLOG" | cut -d' ' -f1)
t1=$(date -d "$ts" +%s%3N 2>/dev/null || echo 0)
echo "# a virsh destroy was noticed $((t1 - t0)) ms after virsh returned"
check "virsh destroy: noticed within 3 s ($((t1 - t0)) ms)" \
	eval '[ $t1 -gt 0 ] && [ $((t1 - t0)) -lt 3000 ]'
check "virsh destroy: the log says the domain was destroyed" \
	grep -q "$P-www: domain $(dom www) destroyed (libvirt event)" "$DLOG"
check "the next query boots it again" [ "$(dqa +short www.svc.test A)" = "$NET.2" ]
check "ready again, two boots" [ "$(field www state) $(field www boots)" = "ready 2" ]
check "... the client gets the page" serves $NET.2 www

# 3. Pause and resume by hand.
check "pause www" bash -c "'$BECKONCTL' -s '$DSOCK' pause $P-www >/dev/null"
check "virsh: the domain is paused" wait_for 10 bash -c "[ \"\$(virsh -q -c '$LV_URI' domstate $(dom www))\" = paused ]"
check "a paused guest does not answer" bash -c "[ \"\$(ip netns exec $NS curl -s --max-time 1 http://$NET.2/)\" = '' ]"
check "resume www" bash -c "'$BECKONCTL' -s '$DSOCK' resume $P-www >/dev/null"
check "www serves again after resume" serves $NET.2 www
check "virsh: running again" [ "$(lv_state "$(dom www)")" = running ]

# 4. A user's own XML: its placeholders expanded, renamed to beckon's name.
check "own XML: the query is answered" [ "$(dqa +short own.svc.test A)" = "$NET.3" ]
check "own XML: the client gets the page" serves $NET.3 own
check "own XML: the domain is $(dom own), not the name the user wrote" \
	bash -c "[ \"\$(virsh -q -c '$LV_URI' domstate $(dom own))\" = running ] && ! virsh -q -c '$LV_URI' list --all --name | grep -q whatever"
check "own XML: placeholders in text are expanded and escaped" \
	bash -c "virsh -q -c '$LV_URI' dumpxml $(dom own) | grep -q \"&amp; own: $P-own<\""

# 5. A domain libvirt refuses: SERVFAIL, libvirt's reason in the log, nothing defined.
t0=$(now_ms)
rc=$(rcode bad)
t1=$(now_ms)
check "a machine libvirt refuses: SERVFAIL ($rc, $((t1 - t0)) ms)" [ "$rc" = SERVFAIL ]
check "... libvirt's message in the log" \
	grep -qE "$P-bad: libvirt: domain $(dom bad): .*(error|unsupported|machine)" "$DLOG"
check "... the boot failed" state_is bad failed
check "... nothing defined" bash -c "! virsh -q -c '$LV_URI' list --all --name | grep -q '$(dom bad)'"

# 5b. A URI where no libvirtd answers: a clear log line, SERVFAIL, nothing defined.
rc=$(rcode unreach)
check "an unreachable libvirt URI: SERVFAIL ($rc)" [ "$rc" = SERVFAIL ]
check "... the log says it cannot connect there" \
	grep -qE "libvirt ${BADURI//+/\\+}: cannot connect to ${BADURI//+/\\+}: .*(refused|Failed to connect)" "$DLOG"
check "... the boot failed" state_is unreach failed
check "... nothing defined on the test's libvirtd" bash -c "! virsh -q -c '$LV_URI' list --all --name | grep -q '$(dom unreach)'"

# 6. The console through virDomainOpenConsole: readiness, and the fail pattern.
check "console:REGEX: ready once the guest says READY" [ "$(dqa +short con.svc.test A)" = "$NET.7" ]
check "console:REGEX: ... it serves" serves $NET.7 con
check "fail = console:REGEX: SERVFAIL" [ "$(rcode fails)" = SERVFAIL ]
check "fail = console:REGEX: the log quotes the line" \
	grep -q "$P-fails: boot failed: the console matched fail = \"console:^READY\"" "$DLOG"
check "fail = console:REGEX: its domain is gone" wait_for 20 eval '[ -z "$(lv_domains "$(dom fails)")" ]'

# 7. libvirtd restarts under beckond: ready guests serve on, boots work again.
boots_before=$(field www boots)
kill "$LV_PID"
wait "$LV_PID" 2>/dev/null
check "libvirtd restart: beckond notices the connection went" \
	wait_for 20 grep -q "libvirt $LV_URI: connection lost" "$DLOG"
check "libvirtd restart: www serves on meanwhile" serves $NET.2 www
check "libvirtd restart: DNS answers for the ready guest meanwhile" [ "$(dqa +short www.svc.test A)" = "$NET.2" ]
check "libvirtd restart: beckond marks what it can no longer see" \
	wait_for 20 grep -q "$P-www: domain $(dom www) out of sight until libvirt $LV_URI is back" "$DLOG"
check "libvirtd restart: www stays ready in beckon's books" state_is www ready
libvirtd_up || not_ok "libvirtd starts again"
check "libvirtd restart: it has taken www's domain back" [ "$(lv_state "$(dom www)")" = running ]
# No job of beckon's reconnects here: its timer does, with backoff.
check "libvirtd restart: beckond reconnects by itself (its timer)" \
	wait_for 30 grep -q "libvirt $LV_URI: reconnected" "$DLOG"
check "libvirtd restart: www's domain adopted (name and UUID of its run)" \
	wait_for 10 grep -q "$P-www: adopted domain $(dom www) " "$DLOG"
check "libvirtd restart: ... con's too" grep -q "$P-con: adopted domain $(dom con) " "$DLOG"
check "libvirtd restart: ... nothing destroyed" bash -c "! grep -q 'destroying domain' '$DLOG'"
check "libvirtd restart: the adopted www serves" serves $NET.2 www
check "libvirtd restart: DNS answers for it" [ "$(dqa +short www.svc.test A)" = "$NET.2" ]
check "libvirtd restart: no boot of www since (adopted, not rebooted)" [ "$(field www boots)" = "$boots_before" ]
ctl stop "$P-con" >/dev/null
# A busy run saw this stop, and every libvirt call after it, hang: say what
# beckond and libvirtd said.
stopped_con() {
	wait_for 30 state_is con stopped && return 0
	echo "# con is $(field con state); virsh: $(virsh_lv list --all 2>&1 | tr '\n' ' ')"
	grep -E "$P-con|libvirt" "$DLOG" | tail -15 | sed 's/^/# log: /'
	tail -15 "$LV/libvirtd.log" | sed 's/^/# libvirtd: /'
	return 1
}
check "libvirtd restart: a stop goes through the new connection" stopped_con
check "libvirtd restart: ... and its domain is gone" eval '[ -z "$(lv_domains "$(dom con)")" ]'
check "libvirtd restart: a boot works again" [ "$(dqa +short con.svc.test A)" = "$NET.7" ]
check "libvirtd restart: ... it serves" serves $NET.7 con
virsh_lv destroy "$(dom con)" >/dev/null
check "libvirtd restart: events come on the new connection (virsh destroy noticed)" \
	wait_for 10 state_is con stopped

# 8. SIGTERM: every domain beckon made is gone.
check "SIGTERM: beckond exits 0 with no sanitizer report" stop_daemon
check "SIGTERM: no beckon domain left" no_domains_left "$DLOG"
check "SIGTERM: no tap left" [ -z "$(beckon_taps "$P-")" ]

# 9. kill -9, then a restart destroys what the last one left.
: >"$T/beckond2.log"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts again"; finish; }
client_up >/dev/null 2>&1
check "before kill -9: www boots" [ "$(dqa +short www.svc.test A)" = "$NET.2" ]
check "before kill -9: own boots" [ "$(dqa +short own.svc.test A)" = "$NET.3" ]
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
check "after kill -9: its domains are left running (libvirtd runs them)" \
	[ "$(lv_domains "beckon-$P-" | wc -l)" -eq 2 ]
: >"$T/beckond3.log"
start_daemon "$CONF" "$T/beckond3.log" || { not_ok "beckond starts after kill -9"; finish; }
check "restart: the leftover domains are destroyed before any query" wait_for 30 no_domains
check "restart: the log says so, for each" \
	bash -c "grep -q 'destroyed domain $(dom www), which an earlier beckond left' '$DLOG' &&
		 grep -q 'destroyed domain $(dom own), which an earlier beckond left' '$DLOG'"
client_up >/dev/null 2>&1
check "restart: www boots and serves" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=40 +tries=1 +short www.svc.test A)\" = $NET.2 ]"
check "restart: the client gets the page" serves $NET.2 www
# libvirtd drops beckond's connection while SIGTERM's stops run (the hello
# guest ignores the shutdown request: a stop waits 2 s, then destroys).
drop_during_stop() {
	kill -TERM "$DPID" || return 1
	wait_for 10 grep -q "Terminated: shutting down" "$DLOG" || return 1
	sleep 0.3
	lv_drop_clients
}
check "restart: libvirtd drops beckond's connection as SIGTERM's stops run" drop_during_stop
check "restart: ... the stop goes once more, on a new connection" wait_for 30 \
	grep -q "$(dom www): the connection died under its stop: once more" "$DLOG"
check "restart: SIGTERM: exit 0, clean" wait_daemon
check "restart: no beckon domain left" no_domains_left "$DLOG"
check "restart: ... nor said to be" bash -c "! grep -q 'may be left behind' '$DLOG'"

# 10. Bad input at load: XML that does not parse, an unknown placeholder.
printf '<domain type="qemu">\n  <name>x</name>\n  <os><kernel>{image}</os>\n</domain>\n' >"$T/broken.xml"
printf '<domain type="qemu"><name>{nosuch}</name></domain>\n' >"$T/unknown.xml"
write_conf "$(LVKEYS="xml = \"$T/broken.xml\";" svc broken $NET.5)" \
	"$(LVKEYS="xml = \"$T/unknown.xml\";" svc unknown $NET.6)"
out=$("$BECKOND" -n -c "$CONF" 2>&1)
rc=$?
check "bad XML: beckond -n exits 1" [ $rc -eq 1 ]
check "bad XML: FILE:LINE of the service and the XML's own line ($(echo "$out" | grep broken | head -1))" \
	bash -c "echo '$out' | grep -qE '^$CONF:[0-9]+: services\[0\]\.libvirt\.xml: $T/broken.xml:3: .*(mismatch|kernel)'"
check "unknown placeholder: FILE:LINE and the name ($(echo "$out" | grep unknown | head -1))" \
	bash -c "echo '$out' | grep -qE '^$CONF:[0-9]+: services\[1\]\.libvirt\.xml: .*nosuch'"
finish
