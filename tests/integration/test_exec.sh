#!/usr/bin/env bash
# The exec backend through the real daemon, with hold "none": DNS answers
# wait for the process to serve, one boot for many queries, boot timeouts,
# deaths noticed, and nothing left after SIGTERM.
. "$(dirname "$0")/lib.sh"

DNS_PORT=$(free_port)
DOC=$(make_docroot exec)
CONF=$T/beckon.conf
# Our own loopback /24, so that tests running side by side do not meet.
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))

# A wrapper that counts its runs, then serves after half a second.
cat >"$T/counted.sh" <<EOF
#!/bin/sh
echo run >>"$T/count"
sleep 0.5
exec busybox httpd -f -p "\$1:8080" -h "\$2"
EOF
chmod +x "$T/counted.sh"

svc() { # svc NAME ADDRESS COMMAND [BOOT_TIMEOUT]
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp"; boot_timeout = "${4:-5s}"; idle_timeout = "1h";
    exec = { command = "$3"; }; },
CONF
}

base_conf "$CONF"
{
	svc slow "$NET.2" "sh -c 'sleep 1; exec busybox httpd -f -p {address}:8080 -h $DOC'"
	svc counted "$NET.3" "$T/counted.sh {address} $DOC"
	svc never "$NET.4" "sh -c 'echo \$\$ >$T/never.pid; exec sleep 1000'" 1s
	svc crash "$NET.5" "busybox httpd -f -p {address}:8080 -h $DOC"
	svc stuck "$NET.6" "sh -c 'echo \$\$ >$T/stuck.pid; exec sleep 1000'" 60s
} | add_services "$CONF"

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with exec services"

field() { svc_field "$1" "$2"; } # field SERVICE KEY
# none_left PATTERN: no process has PATTERN in its command line.
none_left() { ! pgrep -f "$1" >/dev/null; }

# 1. A cold service: the answer comes once the process serves (after its 1 s sleep).
check "slow is stopped before the first query" [ "$(field slow state)" = stopped ]
t0=$(now_ms)
ans=$(dq +short slow.svc.test A)
t1=$(now_ms)
page=$(curl -s --max-time 2 "http://$NET.2:8080/")
check "cold query: the answer is the service address" [ "$ans" = "$NET.2" ]
check "cold query: the answer waited for the process (>= 1000 ms, took $((t1 - t0)) ms)" \
	[ $((t1 - t0)) -ge 1000 ]
check "cold query: the answer came within the boot timeout ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 5000 ]
check "curl right after the answer gets the page" [ "$page" = "hello from exec" ]
check "slow is ready, one boot" bash -c "[ \"\$(\"$BECKONCTL\" -s '$DSOCK' --json list | python3 -c 'import json,sys; s=[x for x in json.load(sys.stdin)[\"services\"] if x[\"name\"]==\"slow\"][0]; print(s[\"state\"], s[\"boots\"])')\" = 'ready 1' ]"
check "the log says ready in N ms" grep -qE 'slow: ready in [0-9.]+ ms' "$DLOG"
t0=$(now_ms)
ans=$(dq +short slow.svc.test A)
t1=$(now_ms)
# "At once": from the ready instance, no second boot (a loaded machine may still take a while).
check "warm query: answered by the ready instance, no second boot ($((t1 - t0)) ms)" \
	[ "$ans" = "$NET.2" -a "$(field slow state)" = ready -a "$(field slow boots)" = 1 ]

# 2. 200 concurrent queries for one cold name: one process.
# Each dig from its own source address: 200 digs picking ephemeral ports at
# once can share one (dig sets SO_REUSEADDR), and then one steals the
# other's answer. Each in its own /24, as 200 clients would be: from one
# /24 they would meet dns.rrl's limit (200 a second by default).
SRC=127.$((20 + RANDOM % 200))
DIGS=()
for i in $(seq 200); do
	dq -b "$SRC.$i.$((1 + RANDOM % 250))" +short counted.svc.test A >"$T/q.$i" 2>&1 &
	DIGS+=($!)
done
wait "${DIGS[@]}" # not beckond, also a child of this shell
n=$(cat "$T"/q.* | grep -cx "$NET.3")
check "200 concurrent queries: all 200 answered with the address ($n)" [ "$n" -eq 200 ]
check "200 concurrent queries: the command ran once ($(wc -l <"$T/count" 2>/dev/null) runs)" \
	[ "$(wc -l <"$T/count")" -eq 1 ]
check "200 concurrent queries: one boot" [ "$(field counted boots)" = 1 ]
check "200 concurrent queries: one 'booting' line in the log" \
	[ "$(grep -c 'counted: booting' "$DLOG")" -eq 1 ]

# 3. Never ready: SERVFAIL after about boot_timeout, and the process is gone.
t0=$(now_ms)
rc=$(dq never.svc.test A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
t1=$(now_ms)
check "never ready: SERVFAIL ($rc)" [ "$rc" = SERVFAIL ]
check "never ready: after about boot_timeout ($((t1 - t0)) ms)" \
	[ $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 10000 ]
check "never ready: state failed" [ "$(field never state)" = failed ]
check "never ready: the log says why" grep -q 'never: boot failed: not ready within 1000 ms' "$DLOG"
NEVERPID=$(cat "$T/never.pid" 2>/dev/null)
check "never ready: its process is gone" wait_for 15 bash -c "[ -n '$NEVERPID' ] && ! kill -0 $NEVERPID"
check "never ready: no process of it left (pgrep)" wait_for 15 none_left "$T/never.pid"

# 4. A process that dies is noticed, and the next query starts it again.
check "crash: the first query answers" [ "$(dq +short crash.svc.test A)" = "$NET.5" ]
CRASHPID=$(field crash pid)
check "crash: it has a pid" [ "${CRASHPID:-0}" -gt 0 ]
kill -9 "$CRASHPID"
check "crash: beckonctl list shows it stopped" wait_for 15 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^crash +stopped'"
check "crash: the log says how it ended" grep -q 'crash: exited (killed by signal 9' "$DLOG"
check "crash: the next query starts it again" [ "$(dq +short crash.svc.test A)" = "$NET.5" ]
check "crash: ready again with a new process, two boots" \
	[ "$(field crash state)" = ready -a "$(field crash boots)" = 2 -a "$(field crash pid)" != "$CRASHPID" ]
check "crash: it serves again" bash -c "curl -sf --max-time 2 http://$NET.5:8080/ | grep -q 'hello from exec'"

# 5. SIGTERM with instances ready, paused and booting: no child left.
check "pause slow" bash -c "'$BECKONCTL' -s '$DSOCK' pause slow >/dev/null"
check "slow is paused" [ "$(field slow state)" = paused ]
dq +time=1 stuck.svc.test A >/dev/null 2>&1 &
STUCKDIG=$!
check "stuck is booting" wait_for 15 bash -c "[ -s '$T/stuck.pid' ]"
PIDS="$(field slow pid) $(field counted pid) $(field crash pid) $(cat "$T/stuck.pid")"
check "SIGTERM: beckond exits 0 with no sanitizer report" stop_daemon
for p in $PIDS; do
	check "SIGTERM: process $p is gone" bash -c "! kill -0 $p 2>/dev/null"
done
check "SIGTERM: nothing beckond started is left (pgrep -f $T)" none_left "$T/"
check "SIGTERM: the console of each service was kept" [ -f "$T/state/crash.console" ]
wait "$STUCKDIG"

# 6. kill -9 of beckond: its service processes die with it.
start_daemon "$CONF" || { not_ok "beckond starts again"; finish; }
check "after a restart: crash answers" [ "$(dq +short crash.svc.test A)" = "$NET.5" ]
CRASHPID=$(field crash pid)
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
check "kill -9 of beckond: its service process goes too" \
	wait_for 15 bash -c "[ -n '$CRASHPID' ] && ! kill -0 $CRASHPID 2>/dev/null"
finish
