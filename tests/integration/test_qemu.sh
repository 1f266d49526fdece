#!/usr/bin/env bash
# The QEMU backend through the real daemon with the hello guest, hold
# "none": a DNS query boots the guest and is answered once it serves; a
# client in a network namespace of its own, on a bridge made for this test,
# gets the page. Deaths, pause and resume, stop, failures, SIGTERM and
# kill -9 cleanup, and user networking. KVM when /dev/kvm opens, else TCG.
. "$(dirname "$0")/lib.sh"

need_root "qemu"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl ip python3; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
# accel "auto" picks KVM when /dev/kvm opens; TEST_ACCEL=tcg|kvm forces one.
if [ -n "${TEST_ACCEL:-}" ]; then
	ACCEL=$TEST_ACCEL QEMU_KEYS="qemu = { accel = \"$TEST_ACCEL\"; };"
elif python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null; then
	ACCEL=kvm QEMU_KEYS=
else
	ACCEL=tcg QEMU_KEYS=
fi
TIMEOUT=5s
echo "# accelerator: $ACCEL"

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
X=$((RANDOM % 250 + 1))
NET=10.78.$X
BR=bkt$$            # a bridge of this test's own: never a real beckon0
NS=bkt-qc-$$        # the client's namespace
VETH=bkv$$          # its link to the bridge
P=t$$               # service names of this run: markers and taps are ours alone
CLIENT=$NET.200
GUEST_MARK="guest=beckon:$P-"

on_exit "ip netns del $NS"
on_exit "ip link del $VETH"
on_exit "ip link del $BR"
# Whatever QEMU of ours might survive a failure: found by this run's marker.
on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"

svc() { # svc NAME ADDRESS [KEY = VALUE; ...]; SVC_IMAGE and SVC_TIMEOUT override
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 80 );
    image = "${SVC_IMAGE:-$IMG}"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    boot_timeout = "${SVC_TIMEOUT:-$TIMEOUT}"; $QEMU_KEYS ${3:-} },
CONF
}
write_conf() { # write_conf MODE SERVICES...
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"$1\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
	shift
	printf '%s\n' "$@" | add_services "$CONF"
}

field() { svc_field "$P-$1" "$2"; } # field SERVICE KEY
dqa() { dig @127.0.0.1 -p "$DNS_PORT" +time=15 +tries=1 "$@"; }
rcode() { dqa "$1.svc.test" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
qemu_of() { pgrep -f "$GUEST_MARK$1,"; }
no_qemu() { ! pgrep -f "$GUEST_MARK" >/dev/null; }
tap_of() { beckon_tap "$P-$1"; }
no_taps() { [ -z "$(beckon_taps "$P-")" ]; }
not_link() { ! ip link show "$1" >/dev/null 2>&1; }
# The guest's page as the client in its namespace sees it: "BODY CODE".
page() {
	ip netns exec "$NS" curl -s --max-time "${2:-15}" -w ' %{http_code}' "http://$1/" | tr -d '\n'
}
# is_page GOT SERVICE: GOT (from page) is a 200 naming SERVICE.
is_page() { [[ "$1" =~ ^"hello from $P-$2 ".*" 200"$ ]]; }
# serves ADDRESS SERVICE: the client gets that page now.
serves() { is_page "$(page "$1")" "$2"; }
# The same through a hostfwd port on loopback, from here.
serves_lo() { is_page "$(curl -s --max-time 15 -w ' %{http_code}' "http://127.0.0.1:$1/" | tr -d '\n')" "$2"; }

# The client: a namespace on the bridge through a veth (once the bridge exists).
client_up() {
	ip netns add "$NS" 2>/dev/null
	ip link show "$VETH" >/dev/null 2>&1 ||
		ip link add "$VETH" type veth peer name eth0 netns "$NS" || return 1
	ip link set "$VETH" master "$BR" up &&
		ip netns exec "$NS" ip addr replace "$CLIENT/24" dev eth0 &&
		ip netns exec "$NS" ip link set eth0 up &&
		ip netns exec "$NS" ip link set lo up
}

cat >"$T/notkernel.elf" <<EOF
this is a text file, not a kernel
EOF

write_conf bridge \
	"$(svc www $NET.2)" "$(svc api $NET.3)" "$(svc web $NET.4)" \
	"$(SVC_TIMEOUT=2s svc never $NET.5 'ready = "console:NEVER";')" \
	"$(SVC_IMAGE=$T/notkernel.elf svc bad $NET.6)"

check "beckond -n accepts the config" bash -c "'$BECKOND' -n -c '$CONF' | grep -qx 'configuration OK'"
start_daemon "$CONF" || { not_ok "beckond starts with qemu services"; finish; }
ok "beckond starts with qemu services in bridge mode"
check "the bridge $BR was made, with $NET.1/24" \
	bash -c "ip -4 addr show $BR | grep -q 'inet $NET.1/24'"
check "no tap before the first boot" no_taps
client_up || { not_ok "client namespace on the bridge"; finish; }

# 1. A cold name: the answer waits for the guest; the client gets its page.
check "www is stopped before the first query" [ "$(field www state)" = stopped ]
t0=$(now_ms)
ans=$(dqa +short www.svc.test A)
t1=$(now_ms)
got=$(page $NET.2)
check "cold query: the answer is the guest's address ($ans, $((t1 - t0)) ms)" [ "$ans" = "$NET.2" ]
check "cold query: answered within the boot timeout ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 5000 ]
check "right after the answer the client gets 200 naming the service ($got)" is_page "$got" www
check "www is ready after one boot" [ "$(field www state) $(field www boots)" = "ready 1" ]
check "the log has the boot's parts (spawn, qmp, READY, ready)" \
	bash -c "grep -q '$P-www: qemu pid [0-9]* spawned' '$DLOG' && grep -q '$P-www: qmp ready' '$DLOG' &&
		 grep -q '$P-www: console READY' '$DLOG' && grep -qE '$P-www: ready in [0-9.]+ ms' '$DLOG'"
WWWPID=$(field www pid)
check "its QEMU runs, marked with the service ($WWWPID)" [ "$(qemu_of www)" = "$WWWPID" ]
check "its QEMU has a pid file" [ "$(cat "$T/state/$P-www.qemu.pid" 2>/dev/null)" = "$WWWPID" ]
TAP=$(tap_of www)
check "its tap $TAP is on the bridge" bash -c "ip link show '$TAP' | grep -q 'master $BR'"
check "a permanent neighbour entry for the guest" \
	bash -c "ip neigh show dev $BR $NET.2 | grep -q PERMANENT"
check "the console went to state_dir" grep -q '^READY' "$T/state/$P-www.console"

# 2. A second query for a ready service is answered from the ready guest:
# no second boot (how fast is tests/bench/'s to say).
ans=$(dqa +short www.svc.test A)
check "warm query: answered, no second boot ($ans; $(field www state) $(field www boots))" \
	[ "$ans $(field www state) $(field www boots)" = "$NET.2 ready 1" ]

# 3. Two cold services at once.
dqa +short api.svc.test A >"$T/api.ans" &
A1=$!
dqa +short web.svc.test A >"$T/web.ans" &
A2=$!
wait $A1 $A2
check "two at once: both answered ($(cat "$T/api.ans") $(cat "$T/web.ans"))" \
	[ "$(cat "$T/api.ans") $(cat "$T/web.ans")" = "$NET.3 $NET.4" ]
check "two at once: api serves" serves $NET.3 api
check "two at once: web serves" serves $NET.4 web
check "two at once: three QEMUs run" [ "$(pgrep -f "$GUEST_MARK" | wc -l)" -eq 3 ]

# 4. Pause and resume through QMP.
check "pause www" bash -c "'$BECKONCTL' -s '$DSOCK' pause $P-www >/dev/null"
check "www is paused" [ "$(field www state)" = paused ]
check "a paused guest does not answer" bash -c "[ \"\$(ip netns exec $NS curl -s --max-time 1 http://$NET.2/)\" = '' ]"
check "resume www" bash -c "'$BECKONCTL' -s '$DSOCK' resume $P-www >/dev/null"
check "www serves again after resume" serves $NET.2 www
check "the same QEMU throughout" [ "$(qemu_of www)" = "$WWWPID" ]

# 5. kill -9 of a guest's QEMU: noticed, and the next query boots it again.
kill -9 "$WWWPID"
check "kill -9 of QEMU: www is stopped" wait_for 15 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P-www +stopped'"
check "kill -9 of QEMU: the log says how it ended" grep -q "$P-www: exited (killed by signal 9" "$DLOG"
check "kill -9 of QEMU: its pid file is gone" [ ! -e "$T/state/$P-www.qemu.pid" ]
check "kill -9 of QEMU: the tap is kept for the next boot" bash -c "ip link show '$TAP' >/dev/null"
check "the next query boots it again" [ "$(dqa +short www.svc.test A)" = "$NET.2" ]
check "ready again with a new QEMU, two boots" \
	[ "$(field www state) $(field www boots)" = "ready 2" -a "$(field www pid)" != "$WWWPID" ]
check "it serves again" serves $NET.2 www

# 6. beckonctl stop: QMP quit, QEMU exits, the tap stays for the next boot.
APIPID=$(field api pid)
t0=$(now_ms)
ctl stop "$P-api" >/dev/null
check "stop: api is stopped" wait_for 15 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P-api +stopped'"
t1=$(now_ms)
# Before the quit grace (10 s) ran out: the log below says it was not killed.
check "stop: its QEMU is gone, by quit ($((t1 - t0)) ms)" \
	bash -c "! kill -0 $APIPID 2>/dev/null && [ $((t1 - t0)) -lt 10000 ]"
check "stop: the log says stopped, not killed" bash -c "grep -q '$P-api: stopped' '$DLOG' &&
	! grep -q '$P-api: QEMU still there' '$DLOG'"

# A tap someone removed is made again at the next boot.
APITAP=$(tap_of api)
ip link del "$APITAP"
check "a removed tap: the next boot makes it again and serves" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=15 +tries=1 +short api.svc.test A)\" = $NET.3 ] &&
		 ip link show '$APITAP' | grep -q 'master $BR'"
check "a removed tap: ... the client gets the page" serves $NET.3 api

# 7. A guest that never becomes ready: SERVFAIL within boot_timeout, nothing left.
t0=$(now_ms)
rc=$(rcode never)
t1=$(now_ms)
check "never ready: SERVFAIL ($rc)" [ "$rc" = SERVFAIL ]
check "never ready: after about boot_timeout ($((t1 - t0)) ms)" [ $((t1 - t0)) -ge 1900 -a $((t1 - t0)) -lt 10000 ]
check "never ready: the log says why" grep -q "$P-never: boot failed: not ready within 2000 ms" "$DLOG"
check "never ready: state failed" [ "$(field never state)" = failed ]
check "never ready: no QEMU of it left" wait_for 15 bash -c "! pgrep -f '$GUEST_MARK''never,' >/dev/null"

# 8. An image that is not a kernel: QEMU says so, SERVFAIL at once.
t0=$(now_ms)
rc=$(rcode bad)
t1=$(now_ms)
check "not a kernel: SERVFAIL ($rc, $((t1 - t0)) ms)" [ "$rc" = SERVFAIL -a $((t1 - t0)) -lt 10000 ]
check "not a kernel: the log has QEMU's reason" \
	grep -qE "$P-bad: boot failed: exited \(status 1\); console $T/state/$P-bad.console: .*(kernel|ELF|PVH|load)" "$DLOG"
check "not a kernel: no QEMU of it left" bash -c "! pgrep -f '$GUEST_MARK''bad,' >/dev/null"
check "not a kernel: no pid file left" [ ! -e "$T/state/$P-bad.qemu.pid" ]

# Reload without web: its QEMU, tap and neighbour entry go; the rest runs on.
WEBTAP=$(tap_of web)
WEBPID=$(field web pid)
WWWPID=$(field www pid)
cp "$CONF" "$T/full.conf"
write_conf bridge \
	"$(svc www $NET.2)" "$(svc api $NET.3)" \
	"$(SVC_TIMEOUT=2s svc never $NET.5 'ready = "console:NEVER";')" \
	"$(SVC_IMAGE=$T/notkernel.elf svc bad $NET.6)"
kill -HUP "$DPID"
check "reload without web: its QEMU is gone" wait_for 15 bash -c "! kill -0 $WEBPID 2>/dev/null"
check "reload without web: its tap is gone" wait_for 15 bash -c "! ip link show '$WEBTAP' >/dev/null 2>&1"
check "reload without web: its neighbour entry is gone" [ -z "$(ip neigh show dev $BR $NET.4)" ]
check "reload without web: www runs on, same QEMU" [ "$(field www state) $(field www pid)" = "ready $WWWPID" ]
check "reload without web: www still serves" serves $NET.2 www
check "reload without web: www keeps its tap and neighbour entry" \
	bash -c "ip link show '$(tap_of www)' >/dev/null && ip neigh show dev $BR $NET.2 | grep -q PERMANENT"
cp "$T/full.conf" "$CONF"

# 9. SIGTERM: no QEMU, tap, neighbour entry or bridge left.
PIDS="$(pgrep -f "$GUEST_MARK" | tr '\n' ' ')"
check "SIGTERM: beckond exits 0 with no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left (was $PIDS)" no_qemu
check "SIGTERM: no tap left" no_taps
check "SIGTERM: the bridge beckon made is gone (and its neighbour entries)" \
	bash -c "! ip link show $BR >/dev/null 2>&1"
check "SIGTERM: no beckon neighbour entry left anywhere" \
	bash -c "! ip neigh show | grep -E '^$NET\.' | grep -q 'lladdr 02:62:6b'"
check "SIGTERM: no pid file left" bash -c "! ls $T/state/*.qemu.pid >/dev/null 2>&1"

# 10. kill -9 of beckond, then a new start cleans up what it left.
: >"$T/beckond2.log"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts again"; finish; }
client_up >/dev/null 2>&1 # the veth lost its bridge with the last one
check "before kill -9: www boots" [ "$(dqa +short www.svc.test A)" = "$NET.2" ]
check "before kill -9: api boots" [ "$(dqa +short api.svc.test A)" = "$NET.3" ]
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
check "after kill -9: its QEMUs die with it" wait_for 15 no_qemu
check "after kill -9: its taps are left over" [ -n "$(beckon_taps "$P-")" ]
check "after kill -9: its neighbour entries are left over" \
	bash -c "ip neigh show dev $BR | grep -q PERMANENT"
# A QEMU a killed beckond left running (one without our parent-death signal),
# named by its pid file; and two that must survive: a marked process no pid
# file names, and a pid file naming a process without the marker.
qemu-system-x86_64 -name "guest=beckon:$P-www,process=beckon-x" -M microvm -accel tcg \
	-nodefaults -no-user-config -display none -kernel "$IMG" >/dev/null 2>&1 &
STALE=$!
disown $STALE # no job notice when it is killed
on_exit "kill -9 $STALE"
echo "$STALE" >"$T/state/$P-www.qemu.pid"
python3 -c 'import time; time.sleep(60)' -name "guest=beckon:$P-api,process=x" &
DECOY1=$!
disown $DECOY1
on_exit "kill -9 $DECOY1"
sleep 60 &
DECOY2=$!
disown $DECOY2
on_exit "kill -9 $DECOY2"
echo "$DECOY2" >"$T/state/$P-web.qemu.pid"
sleep 0.3
: >"$T/beckond3.log"
start_daemon "$CONF" "$T/beckond3.log" || { not_ok "beckond starts after kill -9"; finish; }
DLOG3=$T/beckond3.log
check "restart: the stale QEMU named by its pid file is killed" \
	bash -c "! kill -0 $STALE 2>/dev/null || [ \"\$(ps -o stat= -p $STALE)\" = Z ]"
check "restart: the log says so" grep -qi "$P-www: killing qemu process $STALE left by an earlier beckond" "$DLOG3"
check "restart: a marked process no pid file names survives" kill -0 $DECOY1
check "restart: a pid file naming an unmarked process leaves it alone" kill -0 $DECOY2
check "restart: that pid file is removed" [ ! -e "$T/state/$P-web.qemu.pid" ]
check "restart: the taps the last run left are gone" no_taps
check "restart: its neighbour entries are gone" \
	bash -c "! ip neigh show dev $BR | grep -q 'lladdr 02:62:6b'"
check "restart: the log counts what was removed" grep -qE 'removed [0-9]+ taps and neighbour entries' "$DLOG3"
client_up >/dev/null 2>&1
check "restart: www boots and serves" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=15 +tries=1 +short www.svc.test A)\" = $NET.2 ]"
check "restart: the client gets the page" serves $NET.2 www
check "restart: SIGTERM: exit 0, clean" stop_daemon
kill -9 $DECOY1 $DECOY2 2>/dev/null
sleep 0.1
check "restart: no QEMU left" no_qemu
check "restart: no tap left" no_taps
check "restart: no bridge left" bash -c "! ip link show $BR >/dev/null 2>&1"

# 11. A missing image is a config error.
sed "s|$T/notkernel.elf|$T/missing.elf|" "$CONF" >"$T/missing.conf"
out=$("$BECKOND" -n -c "$T/missing.conf" 2>&1)
check "missing image: beckond -n exits 1" [ $? -eq 1 ]
check "missing image: it names the file ($(echo "$out" | head -1))" bash -c "echo '$out' | grep -q 'missing.elf'"

# 12. User networking: the hostfwd port gets the page; tcp readiness is refused.
LO=127.$((RANDOM % 200 + 20)).$X
write_conf user \
	"$(svc uw $LO.2 'ready = "http:/";')" \
	"$(svc ucon $LO.3 'ready = "console:^READY";')" \
	"$(svc utcp $LO.4 'ready = "tcp";')"
out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "user mode: ready = tcp is a config error" [ $? -eq 1 ]
check "user mode: ... with a clear message" \
	bash -c "echo '$out' | grep -q 'ready: \"tcp\" cannot see a guest behind QEMU user networking'"
write_conf user \
	"$(svc uw $LO.2 'ready = "http:/";')" \
	"$(svc ucon $LO.3 'ready = "console:^READY";')"
: >"$T/beckond4.log"
start_daemon "$CONF" "$T/beckond4.log" || { not_ok "beckond starts in user mode"; finish; }
hostfwd() { sed -n "s/.*$P-$1: user networking: guest port 80 at 127.0.0.1:\([0-9]*\).*/\1/p" "$DLOG" | tail -1; }
t0=$(now_ms)
ans=$(dqa +short uw.svc.test A)
t1=$(now_ms)
HP=$(hostfwd uw)
got=$(curl -s --max-time 3 -w ' %{http_code}' "http://127.0.0.1:$HP/" | tr -d '\n')
check "user mode: the answer is the service address ($ans, $((t1 - t0)) ms)" [ "$ans" = $LO.2 ]
check "user mode: the log names the hostfwd port ($HP)" [ -n "$HP" ]
check "user mode: curl to the hostfwd port right after the answer gets 200 ($got)" is_page "$got" uw
check "user mode: console readiness works too" [ "$(dqa +short ucon.svc.test A)" = $LO.3 ]
check "user mode: ... and it serves" serves_lo "$(hostfwd ucon)" ucon
check "user mode: no tap" no_taps
check "user mode: no bridge" not_link "$BR"
ctl stop "$P-uw" >/dev/null
wait_for 15 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P-uw +stopped'"
check "user mode: a second boot keeps the hostfwd port" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=15 +tries=1 +short uw.svc.test A)\" = $LO.2 ] && [ \"\$(grep -c '$P-uw: user networking' '$DLOG')\" = 1 ]"
check "user mode: ... and serves there" serves_lo "$HP" uw
check "user mode: SIGTERM: exit 0, clean" stop_daemon
check "user mode: no QEMU left" no_qemu
finish
