#!/usr/bin/env bash
# Capacity and boot rate limits through the real daemon, with exec services
# behind the proxy (user mode, hold "proxy", no bypass: the connections that
# make a guest busy are the proxy's, so recency is exact; a bypassing one
# is seen in conntrack, see test_hold_bypass):
# - max_instances = 2, three services: the least recently used idle one is
#   evicted; with both others busy (an open connection each) a third is
#   refused cleanly: SERVFAIL for the query, a reset for the connection,
#   logged and counted in beckon_boots_refused_total;
# - max_memory works the same way;
# - a burst of queries over boot_rate boots no more than the limit allows,
#   globally and per client address.
. "$(dirname "$0")/lib.sh"
for tool in curl busybox python3; do
	command -v "$tool" >/dev/null || { skip "capacity: $tool is not installed"; exit 0; }
done

DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
DOC=$(make_docroot cap)
CONF=$T/beckon.conf
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
PORT=8080

svc() { # svc NAME N
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( $PORT );
    backend = "exec"; ready = "tcp"; idle_timeout = "60s"; memory = "16M";
    exec = { command = "busybox httpd -f -p 127.0.0.1:{port} -h $DOC"; }; },
CONF
}
write_conf() { # write_conf GLOBAL_KEYS SERVICES...
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; bypass = false; };|; s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
	echo "$1" >>"$CONF"
	shift
	printf '%s\n' "$@" | add_services "$CONF"
}

field() { svc_field "$1" "$2"; } # field SERVICE KEY
state_is() { [ "$(field "$1" state)" = "$2" ]; }
addr() { echo "$NET.$1"; }
rcode() { dq "$1.svc.test" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
serves() { [ "$(curl -s --max-time 5 "http://$(addr "$1"):$PORT/")" = "hello from cap" ]; }
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }
# hold N: an open connection through the proxy to service N that sends
# nothing, until killed. Sets HOLD.
hold() {
	python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
time.sleep(600)' "$(addr "$1")" "$PORT" &
	HOLD=$!
	on_exit "kill $HOLD"
}
# relayed N: beckond has accepted a connection to service N. A ready
# service's upstream (on loopback) is connected within that accept, and from
# then on the connection keeps N busy. A client that has connected may not
# be accepted yet; python's start alone can take over a second here.
relayed() { ss -Htnp state established "( src $(addr "$1") and sport = :$PORT )" | grep -q '"beckond"'; }
unrelayed() { ! relayed "$1"; }

# 1. max_instances = 2.
write_conf "max_instances = 2; boot_rate = { rate = 0; client_rate = 0; };" \
	"$(svc a 2)" "$(svc b 3)" "$(svc c 4)"
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with max_instances = 2"

check "a boots and serves" bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +short a.svc.test A)\" = $(addr 2) ]"
check "a serves" serves 2
sleep 1.2 # older than the eviction's minimum idle time (1 s)
check "b boots and serves" serves 3
sleep 1.2
check "two running: a and b ready" bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; print(sum(s[\"state\"]==\"ready\" for s in json.load(sys.stdin)[\"services\"]))')\" = 2 ]"
check "c: the query answers (NOERROR)" [ "$(rcode c)" = NOERROR ]
check "c: it serves" serves 4
check "a, the least recently used, was evicted" wait_for 15 state_is a stopped
check "the log says so" grep -q "a: evicted to make room for c: destroy" "$DLOG"
check "b is still ready" state_is b ready
check "c is ready" state_is c ready

# 2. Both running instances busy: a third is refused cleanly.
hold 3
H1=$HOLD
hold 4
H2=$HOLD
both_relayed() { relayed 3 && relayed 4; }
check "all busy: b and c each have an open connection" wait_for 30 both_relayed
sleep 1.2 # past the eviction's minimum idle time: only the connections keep b and c
check "all busy: the query for a is SERVFAIL" [ "$(rcode a)" = SERVFAIL ]
curl -s --max-time 5 "http://$(addr 2):$PORT/" >/dev/null 2>&1
rc=$?
check "all busy: a connection to a is reset (curl exit $rc: 56 recv failure or 52 empty reply)" \
	bash -c "[ $rc = 56 ] || [ $rc = 52 ] || [ $rc = 7 ]"
check "all busy: a stays stopped, b and c run on" \
	bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' list | awk '{print \$1, \$2}' | grep -E '^(a|b|c) ' | sort | tr '\n' ' ')\" = 'a stopped b ready c ready ' ]"
check "all busy: the refusal is logged" grep -q "a: boot refused (capacity limit)" "$DLOG"
n=$(metric 'beckon_boots_refused_total{reason="capacity"}')
check "all busy: counted in beckon_boots_refused_total{reason=\"capacity\"} ($n)" [ "${n:-0}" -ge 2 ]
# b's connection ends first and c is used after that: b is the least
# recently used whatever order two concurrent closes would land in.
kill $H1 2>/dev/null
wait $H1 2>/dev/null
wait_for 30 unrelayed 3
kill $H2 2>/dev/null
wait $H2 2>/dev/null
wait_for 30 unrelayed 4
serves 4 >/dev/null
sleep 1.2 # past the eviction's minimum idle time
check "connections closed: a boots again, evicting b (least recently used)" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +short a.svc.test A)\" = $(addr 2) ]"
check "... a serves" serves 2
check "... b was evicted" wait_for 15 state_is b stopped
check "SIGTERM: clean" stop_daemon

# 3. max_memory: 40M holds two 16M guests.
: >"$T/beckond2.log"
write_conf "max_memory = \"40M\"; boot_rate = { rate = 0; client_rate = 0; };" \
	"$(svc a 2)" "$(svc b 3)" "$(svc c 4)"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts with max_memory"; finish; }
serves 2 && sleep 1.2 && serves 3 && sleep 1.2
check "max_memory: c serves" serves 4
check "max_memory: a was evicted" wait_for 15 state_is a stopped
check "max_memory: b and c ready" bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' list | awk '{print \$1, \$2}' | grep -E '^(b|c) ' | sort | tr '\n' ' ')\" = 'b ready c ready ' ]"
check "max_memory: SIGTERM: clean" stop_daemon

# 4. Boot rate: global rate 1/s with a burst of 2, eight cold services queried at once.
: >"$T/beckond3.log"
SVCS=()
for i in $(seq 10 17); do SVCS+=("$(svc r$i "$i")"); done
write_conf "boot_rate = { rate = 1; burst = 2; client_rate = 0; };" "${SVCS[@]}"
start_daemon "$CONF" "$T/beckond3.log" || { not_ok "beckond starts with boot_rate"; finish; }
t0=$(date +%s%N)
QS=()
for i in $(seq 10 17); do
	rcode r$i >"$T/rc.$i" &
	QS+=($!)
done
wait "${QS[@]}" # not beckond, also a child of this shell
t1=$(date +%s%N)
secs=$(( (t1 - t0) / 1000000000 + 1 ))
booted=0
for i in $(seq 10 17); do [ "$(field r$i boots)" -gt 0 ] && booted=$((booted + 1)); done
fails=$(cat "$T"/rc.* | grep -c SERVFAIL)
check "rate: 8 queries at once booted $booted, at most burst 2 + $secs s x 1/s" [ "$booted" -le $((2 + secs)) ]
check "rate: at least 2 booted" [ "$booted" -ge 2 ]
check "rate: the rest were SERVFAIL ($fails)" [ "$fails" -eq $((8 - booted)) ]
n=$(metric 'beckon_boots_refused_total{reason="rate"}')
check "rate: counted in beckon_boots_refused_total{reason=\"rate\"} ($n)" [ "${n:-0}" -eq "$fails" ]
# Refusals are logged at most once a second: one line for a burst that
# lands within a second, one more for each further second a loaded machine
# spreads it over.
n=$(grep -c 'boot refused (rate limit)' "$T/beckond3.log")
check "rate: one log line a second for the burst, the rest counted in it later ($n in at most $secs s)" \
	bash -c "[ $n -ge 1 ] && [ $n -le $secs ]"
check "rate: SIGTERM: clean" stop_daemon

# 5. Per-client rate: 1/s, burst 1; one client's burst does not stop another.
: >"$T/beckond4.log"
write_conf "boot_rate = { rate = 0; client_rate = 1; client_burst = 1; };" "${SVCS[@]}"
start_daemon "$CONF" "$T/beckond4.log" || { not_ok "beckond starts with client_rate"; finish; }
SRC=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
cq() { # cq N: the first client's query for rN, its rcode in $T/c.N
	dig @127.0.0.1 -p "$DNS_PORT" -b "$SRC.1" +time=5 +tries=1 r$1.svc.test A |
		sed -n 's/.*status: \([A-Z]*\).*/\1/p' >"$T/c.$1"
}
# The first answer waits for its boot, which a busy machine can stretch
# past the second the client's token lasts: the next two go as soon as that
# boot has started instead.
cq 10 &
Q1=$!
wait_for 30 grep -q "r10: booting" "$T/beckond4.log"
cq 11 &
Q2=$!
cq 12 &
Q3=$!
wait $Q1 $Q2 $Q3
check "client rate: the first client's first query boots" [ "$(cat "$T/c.10")" = NOERROR ]
check "client rate: its next two are SERVFAIL" [ "$(cat "$T/c.11" "$T/c.12" | tr '\n' ' ')" = "SERVFAIL SERVFAIL " ]
check "client rate: another client still boots" \
	bash -c "dig @127.0.0.1 -p $DNS_PORT -b $SRC.2 +time=5 +tries=1 r13.svc.test A | grep -q 'status: NOERROR'"
check "client rate: the log names the client" grep -q "boot refused (client_rate limit), requested by $SRC.1" "$T/beckond4.log"
n=$(metric 'beckon_boots_refused_total{reason="client_rate"}')
check "client rate: counted ($n)" [ "${n:-0}" -eq 2 ]
check "client rate: SIGTERM: clean" stop_daemon
finish
