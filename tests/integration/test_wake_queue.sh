#!/usr/bin/env bash
# A queue instead of a refusal (wake_queue), through the real daemon, with
# exec services behind the proxy (user mode, hold "proxy", no bypass: the
# connections that keep a service busy are the proxy's):
# - max_instances = 1, a busy: b's connection waits (held, b stopped, the
#   queue's gauge at 1), and b boots as soon as a goes idle (evicted),
#   within hold_timeout: the client gets its page;
# - the queue's bound (wake_queue = 1): a third service's wake is refused
#   at once (SERVFAIL, a reset), counted;
# - a wake that finds no room within hold_timeout fails cleanly (a reset,
#   the service left stopped), counted; the metrics say all of it.
# run.sh timeout: 300
. "$(dirname "$0")/lib.sh"
for tool in curl busybox python3; do
	command -v "$tool" >/dev/null || { skip "wake queue: $tool is not installed"; exit 0; }
done

DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
DOC=$(make_docroot q)
CONF=$T/beckon.conf
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
PORT=8080
HOLD_S=20

svc() { # svc NAME N
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( $PORT );
    backend = "exec"; ready = "tcp"; idle_timeout = "60s"; memory = "16M";
    exec = { command = "busybox httpd -f -p 127.0.0.1:{port} -h $DOC"; }; },
CONF
}
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; bypass = false; hold_timeout = \"${HOLD_S}s\"; };|; s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
echo "max_instances = 1; wake_queue = 1; boot_rate = { rate = 0; client_rate = 0; };" >>"$CONF"
printf '%s\n' "$(svc a 2)" "$(svc b 3)" "$(svc c 4)" | add_services "$CONF"

field() { svc_field "$1" "$2"; }
state_is() { [ "$(field "$1" state)" = "$2" ]; }
addr() { echo "$NET.$1"; }
rcode() { dq "$1.svc.test" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
serves() { [ "$(curl -s --max-time 30 "http://$(addr "$1"):$PORT/")" = "hello from q" ]; }
metric() { curl -s --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# hold N: an open connection through the proxy to service N that sends
# nothing, until killed. Sets HOLD.
hold() {
	python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
time.sleep(600)' "$(addr "$1")" "$PORT" &
	HOLD=$!
	on_exit "kill $HOLD"
}
relayed() { ss -Htnp state established "( src $(addr "$1") and sport = :$PORT )" | grep -q '"beckond"'; }
# fetch N: curl service N in the background: its body in $T/N.out, its exit in $T/N.rc,
# the milliseconds it took in $T/N.ms. Sets FETCH.
fetch() {
	rm -f "$T/$1.rc"
	(
		t0=$(now_ms)
		curl -s --max-time 90 "http://$(addr "$1"):$PORT/" >"$T/$1.out" 2>/dev/null
		rc=$?
		echo $(($(now_ms) - t0)) >"$T/$1.ms"
		now_ms >"$T/$1.end"
		# Whole or not at all: the test waits for this file, then reads it.
		echo $rc >"$T/$1.rc.tmp" && mv "$T/$1.rc.tmp" "$T/$1.rc"
	) &
	FETCH=$!
}

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with max_instances = 1, wake_queue = 1"
check "metrics: the queue is empty" metric_is beckon_wake_queue 0

# 1. a busy; b waits for room; c finds the queue full.
check "a boots and serves" serves 2
hold 2
HA=$HOLD
check "a is busy (an open connection)" wait_for 30 relayed 2
sleep 1.2 # past the eviction's minimum idle time: only the connection keeps a busy
fetch 3
FB=$FETCH
check "b's connection waits in the wake queue (gauge 1)" wait_for 30 metric_is beckon_wake_queue 1
check "the log says b waits" grep -q "b: no room (max_instances, max_memory): waiting in the wake queue" "$DLOG"
check "b is still stopped, a ready" bash -c "[ '$(field b state)' = stopped ] && [ '$(field a state)' = ready ]"
check "b's client is still held" [ ! -e "$T/3.rc" ]
check "a query for b joins its wake: NOERROR at once (hold \"proxy\")" [ "$(rcode b)" = NOERROR ]
check "metrics: one queued" metric_is 'beckon_wake_queue_total{event="queued"}' 1
check "the bound: a query for c is SERVFAIL" [ "$(rcode c)" = SERVFAIL ]
curl -s --max-time 30 "http://$(addr 4):$PORT/" >/dev/null 2>&1
rc=$?
check "the bound: a connection to c is reset (curl exit $rc)" bash -c "[ $rc = 56 ] || [ $rc = 52 ] || [ $rc = 7 ]"
check "the bound: c stays stopped" state_is c stopped
check "the bound: logged" grep -q "c: boot refused: no room, and the wake queue is full" "$DLOG"
check "metrics: two refused by the bound" metric_is 'beckon_wake_queue_total{event="refused"}' 2
n=$(metric 'beckon_boots_refused_total{reason="capacity"}')
check "metrics: counted as capacity refusals too ($n)" [ "${n:-0}" = 2 ]

# 2. a goes idle: b boots, its client gets the page, within hold_timeout.
tk=$(now_ms)
kill "$HA" 2>/dev/null
wait "$HA" 2>/dev/null
check "b's client gets its page" wait_for $((HOLD_S + 30)) test -e "$T/3.rc"
check "... served (curl exit $(cat "$T/3.rc" 2>/dev/null), $(cat "$T/3.out" 2>/dev/null))" \
	bash -c "[ \"\$(cat '$T/3.rc')\" = 0 ] && [ \"\$(cat '$T/3.out')\" = 'hello from q' ]"
ms=$(cat "$T/3.ms" 2>/dev/null || echo 0)
check "... within hold_timeout ($ms ms < ${HOLD_S}000)" [ "$ms" -lt $((HOLD_S * 1000)) ]
# a may be evicted 1 s after its last use; then a retry (every 200 ms) and b's boot.
after=$(($(cat "$T/3.end" 2>/dev/null || echo 0) - tk))
check "... soon after a went idle ($after ms after its connection closed)" [ "$after" -lt 10000 ]
check "a was evicted to make room for b" grep -q "a: evicted to make room for b" "$DLOG"
check "the log says b found room" grep -q "b: room found after" "$DLOG"
check "metrics: one admitted, the queue empty" \
	bash -c "[ \"\$(curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep -E '^beckon_wake_queue(_total\{event=\"admitted\"\})? ' | tr '\n' ' ')\" = 'beckon_wake_queue 0 beckon_wake_queue_total{event=\"admitted\"} 1 ' ]"
wait "$FB" 2>/dev/null

# 3. b busy for longer than hold_timeout: a's wake fails cleanly at the deadline.
hold 3
HB=$HOLD
check "b is busy (an open connection)" wait_for 30 relayed 3
check "a is stopped" wait_for 30 state_is a stopped
sleep 1.2
fetch 2
FA=$FETCH
check "a's connection waits in the wake queue" wait_for 30 metric_is beckon_wake_queue 1
check "a's wait ends" wait_for $((HOLD_S + 40)) test -e "$T/2.rc"
rc=$(cat "$T/2.rc" 2>/dev/null)
ms=$(cat "$T/2.ms" 2>/dev/null || echo 0)
check "... with a reset at hold_timeout (curl exit $rc after $ms ms)" \
	bash -c "{ [ '$rc' = 56 ] || [ '$rc' = 52 ]; } && [ $ms -ge $(((HOLD_S - 1) * 1000)) ]"
check "... logged" grep -q "a: no room within hold_timeout" "$DLOG"
check "... a stays stopped, b ready" bash -c "[ '$(field a state)' = stopped ] && [ '$(field b state)' = ready ]"
check "metrics: one timed out, the queue empty" \
	bash -c "[ \"\$(curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep -E '^beckon_wake_queue(_total\{event=\"timed_out\"\})? ' | tr '\n' ' ')\" = 'beckon_wake_queue 0 beckon_wake_queue_total{event=\"timed_out\"} 1 ' ]"
wait "$FA" 2>/dev/null
kill "$HB" 2>/dev/null
check "SIGTERM: clean" stop_daemon

# 4. hold "none": a waiting wake delays the DNS answer as a boot does, and
# is SERVFAIL at hold_timeout. Queries keep a service busy here.
: >"$T/beckond2.log"
NSVC() { # NSVC NAME N
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( $PORT );
    backend = "exec"; ready = "tcp"; idle_timeout = "60s"; memory = "16M";
    exec = { command = "busybox httpd -f -p {address}:$PORT -h $DOC"; }; },
CONF
}
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"none\"; hold_timeout = \"8s\"; };|; s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
echo "max_instances = 1; wake_queue = 4; boot_rate = { rate = 0; client_rate = 0; };" >>"$CONF"
printf '%s\n' "$(NSVC a 2)" "$(NSVC b 3)" | add_services "$CONF"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "hold none: beckond starts"; finish; }
# busy N: query N every 0.3 s until killed. Sets BUSY.
busy() {
	while :; do dig @127.0.0.1 -p "$DNS_PORT" +time=5 +tries=1 +short "$1.svc.test" A >/dev/null; sleep 0.3; done &
	BUSY=$!
	on_exit "kill $BUSY"
}
# ask N: a query for N in the background: its rcode and answer in $T/N.dns, its end in $T/N.dend.
ask() {
	rm -f "$T/$1.dend"
	(
		dig @127.0.0.1 -p "$DNS_PORT" +time=60 +tries=1 "$1.svc.test" A >"$T/$1.dns" 2>&1
		now_ms >"$T/$1.dend.tmp" && mv "$T/$1.dend.tmp" "$T/$1.dend"
	) &
	ASK=$!
}
ans=$(dq +short a.svc.test A)
check "hold none: a's query is answered once a serves ($ans)" [ "$ans" = "$NET.2" ]
busy a
BA=$BUSY
sleep 1.2
ask b
AB=$ASK
check "hold none: b's query waits in the wake queue" wait_for 30 metric_is beckon_wake_queue 1
sleep 1
check "hold none: ... its answer waits" [ ! -e "$T/b.dend" ]
tk=$(now_ms)
kill "$BA" 2>/dev/null
wait "$BA" 2>/dev/null
check "hold none: b's answer comes once a went idle" wait_for 30 test -e "$T/b.dend"
check "hold none: ... NOERROR, b's address" bash -c "grep -q 'status: NOERROR' '$T/b.dns' && grep -qE '^b.svc.test.*A[[:space:]]+$NET.3\$' '$T/b.dns'"
after=$(($(cat "$T/b.dend" 2>/dev/null || echo 0) - tk))
check "hold none: ... $after ms after a's last query, within hold_timeout (8 s)" [ "$after" -lt 8000 ]
wait "$AB" 2>/dev/null
busy b
BB=$BUSY
check "hold none: a was evicted" wait_for 30 state_is a stopped
sleep 1.2
t0=$(now_ms)
ask a
AA=$ASK
check "hold none: a's query ends" wait_for 60 test -e "$T/a.dend"
ms=$(($(cat "$T/a.dend" 2>/dev/null || echo 0) - t0))
check "hold none: ... SERVFAIL at hold_timeout ($ms ms)" \
	bash -c "grep -q 'status: SERVFAIL' '$T/a.dns' && [ $ms -ge 7500 ] && [ $ms -lt 30000 ]"
check "hold none: ... a stays stopped" state_is a stopped
wait "$AA" 2>/dev/null
kill "$BB" 2>/dev/null
check "hold none: SIGTERM: clean" stop_daemon
finish
