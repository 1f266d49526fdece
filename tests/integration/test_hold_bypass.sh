#!/usr/bin/env bash
# hold = "proxy" in user mode, once an instance is ready: local connections
# to its address skip the proxy (network.bypass, an iptables DNAT in nat
# OUTPUT), as bridge mode's redirect rule goes once a guest is ready.
# Checks: no rule while cold (the proxy holds the first connection); a
# rule once ready, and then a local connection is the instance's alone
# (beckond holds no socket of it) while a routed client's is still relayed;
# a quiet bypassing connection keeps the instance from going idle, and so
# does a stream of short ones (conntrack's TIME_WAIT entries); the rule
# goes before the instance is paused, and a connection then wakes it
# through the proxy; SIGTERM removes the chain, a start after kill -9
# replaces it; network.bypass = false keeps the proxy in the path, and a
# reload to true brings the bypass and its conntrack view; capacity's
# eviction sees bypassing connections.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/holdnet.sh"
need_root "hold bypass"
for tool in curl busybox python3 ss iptables; do
	command -v "$tool" >/dev/null || { skip "hold bypass: $tool is not installed"; exit 0; }
done

holdnet_up || { not_ok "test network set up"; finish; }
holdnet_addr 2 && holdnet_addr 3 || { not_ok "host addresses"; finish; }
DNS_PORT=$(free_port)
DOC=$(make_docroot bypass)
CONF=$T/beckon.conf
on_exit "pkill -f -- '-h $DOC'"

# hold.py HOST PORT FILE: write FILE.up once started, connect once FILE.go
# shows up, write "open" to FILE, stay quiet until FILE is removed, then
# close. Python's start (seconds on a loaded machine) stays out of the
# idle window that the checks measure.
cat >"$T/hold.py" <<'EOF'
import os, socket, sys, time
open(sys.argv[3] + ".up", "w").write("up\n")
while not os.path.exists(sys.argv[3] + ".go"):
    time.sleep(0.02)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
open(sys.argv[3], "w").write("open\n")
while os.path.exists(sys.argv[3]):
    time.sleep(0.05)
s.close()
EOF

# late.py HOST PORT GO: connect, wait for the file GO, then send an HTTP
# request on that connection; print the status code (000: none).
cat >"$T/late.py" <<'EOF'
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
try:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    print(s.makefile("rb").readline().split()[1].decode())
except (OSError, IndexError):
    print("000")
EOF

# idle_timeout 4 s by default: with 2 s, web went idle (and lost its rule)
# between two steps of a check on a busy machine.
write_conf() { # write_conf EXTRA_NETWORK_KEYS [GLOBAL_KEYS [IDLE_TIMEOUT]]
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; $1 };|" "$CONF"
	echo "${2:-}" >>"$CONF"
	add_services "$CONF" <<CONF
  { name = "web"; dns = ( "web.svc.test" ); address = "$HSNET.2"; ports = ( 80 );
    backend = "exec"; ready = "tcp"; idle_timeout = "${3:-4s}"; on_idle = "pause";
    exec = { command = "sh -c 'echo run >>$T/count.2; echo {port} >$T/port.2; exec busybox httpd -f -p 127.0.0.1:{port} -h $DOC'"; }; },
  { name = "two"; dns = ( "two.svc.test" ); address = "$HSNET.3"; ports = ( 80 );
    backend = "exec"; ready = "tcp";
    exec = { command = "busybox httpd -f -p 127.0.0.1:{port} -h $DOC"; }; },
CONF
}

chain() { sed -n 's/.*skip it (chain \(BECKON-DIRECT-[0-9a-f]*\)).*/\1/p' "$DLOG" | tail -1; }
jumps() { iptables -w -t nat -S OUTPUT | grep -c -- "-j $1\$"; }
dnat_rule() { iptables -w -t nat -S "$1" 2>/dev/null | grep -- "-d $HSNET.2/32 -o lo" | grep -c -- "-j DNAT"; }
beckond_socks() { ss -Htnp state established | grep -c "pid=$DPID,"; }
port_socks() { ss -Htn state established "( sport = :$1 )" | grep -c .; }
state() { svc_field web state; }
state_is() { [ "$(state)" = "$1" ]; }
socks_are() { [ "$(beckond_socks)" = "$1" ]; }
rules_are() { [ "$(dnat_rule "$C")" = "$1" ]; }
# why_not: what a failed rule or socket check saw (once failed twice under load).
why_not() {
	iptables -w -t nat -L "$C" -v -n 2>&1 | sed 's/^/# rules: /'
	iptables -w -t nat -S OUTPUT 2>&1 | sed 's/^/# OUTPUT: /'
	ss -Htnp state established | grep "pid=$DPID," | sed 's/^/# beckond: /'
	grep -E "web|conntrack" "$DLOG" | tail -20 | sed "s/^/# log: /"
	grep -E "dst=$HSNET\.2 " /proc/net/nf_conntrack 2>/dev/null | tail -4 | sed 's/^/# conntrack: /'
}
get() { curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$HSNET.2/"; }

# hold_open WHERE FILE [rule]: a quiet connection from the host (local) or
# the client namespace (routed), open when FILE shows up. With "rule", it
# connects once the service's DNAT rule is in: a get that woke a paused
# service (idle_timeout passed while python started, on a loaded machine)
# has it added only after ready, in the background, and a connection made
# before that goes through the proxy, as it should.
hold_open() {
	if [ "$1" = local ]; then
		python3 "$T/hold.py" "$HSNET.2" 80 "$2" &
	else
		hcl python3 "$T/hold.py" "$HSNET.2" 80 "$2" &
	fi
	HOLD_PID=$!
	wait_for 60 test -e "$2.up" || return 1
	# A request just before: the idle timer starts afresh, so the service
	# is still ready when the quiet connection opens.
	get >/dev/null
	[ "${3:-}" != rule ] || wait_for 15 rules_are 1
	touch "$2.go"
	wait_for 15 test -s "$2"
}
# hold_close FILE: close the quiet connection hold_open made.
hold_close() {
	rm -f "$1"
	wait "$HOLD_PID"
	rm -f "$1.up" "$1.go"
}

# chain_cleanup CHAIN: what a beckond killed by a failed check left.
chain_cleanup() {
	while iptables -w -t nat -D OUTPUT -j "$1" 2>/dev/null; do :; done
	iptables -w -t nat -F "$1" 2>/dev/null
	iptables -w -t nat -X "$1" 2>/dev/null
}

write_conf ""
start_daemon "$CONF" || { not_ok "beckond starts with hold proxy in user mode"; finish; }
ok "beckond starts with hold proxy in user mode"
C=$(chain)
[ -n "$C" ] && on_exit "chain_cleanup $C"
check "the log names the bypass chain ($C)" [ -n "$C" ]
check "nat OUTPUT jumps to it once" [ "$(jumps "$C")" = 1 ]
check "cold: no DNAT rule for the service" [ "$(dnat_rule "$C")" = 0 ]

# 1. Cold: the proxy holds the connection; ready: the rule.
out=$(get)
check "cold local connection: held by the proxy while it boots, 200 ($out)" [ "$out" = 200 ]
check "cold local connection: one boot" [ "$(runs 2)" = 1 ]
PORT=$(cat "$T/port.2")
check "ready: a DNAT rule sends $HSNET.2:80 (over lo) to 127.0.0.1:$PORT" \
	wait_for 15 bash -c "iptables -w -t nat -S $C | grep -q -- '-d $HSNET.2/32 -o lo -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:$PORT'"

# 2. A local connection skips the proxy; a routed client's does not.
hold_open local "$T/local.open" rule
check "local connection to the ready service is open" [ -s "$T/local.open" ]
check "... and beckond holds no socket of it ($(beckond_socks))" [ "$(beckond_socks)" = 0 ]
socks_are 0 || why_not
check "... the service's process does ($(port_socks "$PORT"))" [ "$(port_socks "$PORT")" -ge 1 ]
hold_open routed "$T/routed.open"
check "a routed client's connection is relayed: beckond holds both ends" \
	wait_for 15 socks_are 2
hold_close "$T/routed.open"
wait_for 15 socks_are 0

# 3. The idle policy sees the bypassing connection: kept past idle_timeout (4 s).
sleep 5.5
check "a quiet open local connection keeps it ready past idle_timeout ($(state))" [ "$(state)" = ready ]
hold_close "$T/local.open"

# 4. Closed: it goes idle (paused), and the rule went before the pause.
check "no connection left: it goes idle (paused)" wait_for 15 state_is paused
check "paused: its DNAT rule is gone ($(dnat_rule "$C"))" [ "$(dnat_rule "$C")" = 0 ]
order=$(grep -E 'web: (idle: pause|its bypass rule is gone|paused)$' "$DLOG" | tail -3 | sed 's/.*web: //' | tr '\n' '|')
check "... and it went before the pause: $order" [ "$order" = "idle: pause|its bypass rule is gone|paused|" ]
# A connection made while no DNAT rule exists (nf_tables then tracks nothing
# unless a rule needs it), relayed, must not be taken over by the rule that
# comes back once the service is ready.
python3 "$T/late.py" "$HSNET.2" 80 "$T/late.go" >"$T/late.out" &
LP=$!
check "a local connection to the paused service wakes it through the proxy" wait_for 15 rules_are 1
touch "$T/late.go"
wait "$LP"
check "... its request, sent after the rule came back, is answered on that connection: $(cat "$T/late.out")" \
	[ "$(cat "$T/late.out")" = 200 ]
# Read once: idle_timeout (4 s) may have passed since the late request.
st=$(state)
check "woken: ready again (or idle again: paused), no second boot ($st, $(runs 2) runs)" \
	bash -c '[[ $1 == ready1 || $1 == paused1 ]]' _ "$st$(runs 2)"
# On a loaded machine it may have idled out again since (idle_timeout 4 s): then no rule.
if rules_are 1 || { state_is paused && [ "$(dnat_rule "$C")" = 0 ]; }; then
	ok "woken: the rule is back (or, idle again, gone with the pause: $(state))"
else
	not_ok "woken: the rule is back ($(state))"
	why_not
fi

# 5. A stream of short connections (none open at a look) keeps it ready.
pauses() { grep -c 'web: idle: pause' "$DLOG"; }
[ "$(get)" = 200 ] && wait_for 15 state_is ready # from where section 4 left it
p0=$(pauses)
steady=ready gap=0 last=
# The longest time between one request's end and the next one's start: on
# a machine loaded enough to make it idle_timeout, a pause is right.
for _ in $(seq 24); do
	t=$(now_ms)
	[ -n "$last" ] && [ $((t - last)) -gt "$gap" ] && gap=$((t - last))
	[ "$(get)" = 200 ] || steady="a request failed"
	last=$(now_ms)
	[ "$(state)" = ready ] || steady=$(state)
	sleep 0.25
done
if [ "$gap" -lt 3000 ]; then
	check "short local connections every 0.25 s for 6 s (past idle_timeout) keep it ready ($steady; longest gap $gap ms)" [ "$steady" = ready ]
	check "... it was not paused meanwhile ($(($(pauses) - p0)) idle pauses)" [ "$(pauses)" = "$p0" ]
	[ "$(pauses)" = "$p0" ] || why_not
else
	skip "short local connections keep it ready: the loaded machine left $gap ms between two of them (idle_timeout 4 s)"
fi
check "... and once they stop it goes idle" wait_for 15 state_is paused

# 6. SIGTERM removes the chain; a start after kill -9 replaces it.
check "SIGTERM: beckond exits cleanly" stop_daemon
check "SIGTERM: no jump to the chain" [ "$(jumps "$C")" = 0 ]
check "SIGTERM: the chain is gone" bash -c "! iptables -w -t nat -S $C 2>/dev/null"
start_daemon "$CONF" || { not_ok "beckond starts again"; finish; }
get >/dev/null
wait_for 15 rules_are 1
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
pkill -f -- "-h $DOC"
check "kill -9 leaves the chain and its rule" [ "$(jumps "$C")$(dnat_rule "$C")" = 11 ]
check "kill -9: the upstream gone, a local connection is refused at once, not blackholed" \
	bash -c "curl -s -o /dev/null -m 2 http://$HSNET.2/; [ \$? -eq 7 ]"
start_daemon "$CONF" || { not_ok "beckond starts after kill -9"; finish; }
check "after kill -9: one jump, no stale rule" [ "$(jumps "$C")$(dnat_rule "$C")" = 10 ]
check "after kill -9: a local connection boots the service: 200" [ "$(get)" = 200 ]
check "SIGTERM: clean" stop_daemon

# 7. network.bypass = false: the proxy stays in the path.
write_conf "bypass = false;"
start_daemon "$CONF" "$T/beckond.nobypass.log" || { not_ok "beckond starts with bypass = false"; finish; }
check "bypass = false: no bypass chain in the log" bash -c "! grep -q 'skip it (chain' '$DLOG'"
check "bypass = false: no jump to the chain" [ "$(jumps "$C")" = 0 ]
get >/dev/null
hold_open local "$T/local.open"
check "bypass = false: a local connection to the ready service is relayed" wait_for 15 socks_are 2
hold_close "$T/local.open"
wait_for 15 socks_are 0
check "a quiet client that leaves: its upstream is not connected again" \
	bash -c "! grep -q 'web: upstream closed early' '$DLOG'"

# 8. Reloaded with the bypass: the chain, the rule, and the idle policy's view.
write_conf ""
ctl reload >/dev/null
check "reload to bypass = true: the chain is set up" wait_for 15 bash -c "grep -q 'skip it (chain $C)' '$DLOG'"
check "reload to bypass = true: the ready service gets its rule" wait_for 15 rules_are 1
check "reload to bypass = true: a local connection opens" hold_open local "$T/local.open" rule
check "reload to bypass = true: ... and skips the proxy" socks_are 0
socks_are 0 || why_not
sleep 5.5 # past idle_timeout
check "reload to bypass = true: a quiet bypassing connection keeps it ready ($(state))" state_is ready
state_is ready || why_not
hold_close "$T/local.open"
check "SIGTERM: clean" stop_daemon
check "SIGTERM: the chain is gone" bash -c "! iptables -w -t nat -S $C 2>/dev/null"

# 9. Capacity (max_instances = 1) sees bypassing connections too: web, busy
# with one, is not evicted for "two"; once it closed (and conntrack's second
# of doubt and the eviction's minimum idle second passed), it is.
write_conf "" "max_instances = 1; boot_rate = { rate = 0; client_rate = 0; };" 1h
start_daemon "$CONF" "$T/beckond.cap.log" || { not_ok "beckond starts with max_instances 1"; finish; }
get >/dev/null
wait_for 15 rules_are 1
check "max_instances 1: a local connection to web opens" hold_open local "$T/local.open" rule
sleep 3 # conntrack's second of doubt, and the idle engine's next look, on a loaded machine
# A minute: a boot that was not refused is waited for, not taken for a refusal.
two() { curl -s -o /dev/null -m 60 -w '%{http_code}' "http://$HSNET.3/"; }
out=$(two)
check "max_instances 1, web busy with a bypassing connection: two is refused ($out)" [ "$out" = 000 ]
check "... for capacity, says the log" grep -q "two: boot refused (capacity limit)" "$DLOG"
check "... web was not evicted ($(state))" state_is ready
hold_close "$T/local.open"
sleep 4 # as above, and the eviction's minimum idle second
out=$(two)
check "the connection closed: two boots and serves ($out)" [ "$out" = 200 ]
check "... web was evicted for it" grep -q "web: evicted to make room for two" "$DLOG"
check "SIGTERM: clean" stop_daemon
finish
