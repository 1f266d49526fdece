#!/usr/bin/env bash
# The DNS thread: UDP queries are read and answered off the event loop, so
# a ready service's name and the zone's own names are answered while the
# loop is stopped (here by ptrace, on the main thread alone); a query the
# loop must answer (a wake) waits for it and is not lost; the thread's
# answers count as the instance's activity and in the metrics; its view
# follows state changes and reloads (never a stale address, never an
# answer for an instance that is not ready). With nice (default -5) the
# thread runs at realtime priority 1 and no child inherits the allowance;
# with nice = 0, neither.
. "$(dirname "$0")/lib.sh"
need_root "the DNS thread and the loop stopped by ptrace"

DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
DOC=$(make_docroot dnsthread)
CONF=$T/beckon.conf
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))

svc() { # svc NAME ADDRESS
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp"; idle_timeout = "1h";
    exec = { command = "busybox httpd -f -p {address}:8080 -h $DOC"; }; },
CONF
}

write_conf() { # write_conf A_ADDRESS [more services...]
	base_conf "$CONF"
	sed -i "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
	{
		svc a "$1"
		svc b "$NET.3"
		[ -n "${2:-}" ] && svc "$2" "$NET.4"
	} | add_services "$CONF"
}

# q NAME [TYPE]: one UDP query, 1 s to answer, no retry; prints the answer
# (nothing when none came: dig's "timed out" goes too).
q() { dig @127.0.0.1 -p "$DNS_PORT" +time=1 +tries=1 +short "$1" "${2:-A}" | grep -v '^;'; }
noerror() {
	curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
		sed -n 's/^beckon_dns_queries_total{rcode="NOERROR"} //p'
}

# freeze: stop beckond's main thread (the event loop) alone; thaw: let it go.
FROZEN=0
freeze() {
	rm -f "$T/frozen" "$T/thaw"
	python3 "$ROOT/tests/tools/freeze_thread.py" "$DPID" "$T/frozen" "$T/thaw" 2>"$T/freeze.err" &
	FREEZER=$!
	wait_for 10 test -e "$T/frozen" && FROZEN=1
}
thaw() {
	touch "$T/thaw"
	wait "$FREEZER"
	FROZEN=0
}
on_exit '[ "$FROZEN" = 1 ] && touch "$T/thaw"'

# dns_tid: the thread's id. policy TID: "SCHED_FIFO 1" and the like.
dns_tid() { grep -lx beckond-dns /proc/"$DPID"/task/*/comm | head -1 | cut -d/ -f5; }
policy() { chrt -p "$1" | sed -n 's/.*policy: //p; s/.*priority: //p' | tr '\n' ' ' | sed 's/ $//'; }
rtprio() { sed -n 's/^Max realtime priority *\([0-9]*\) *\([0-9]*\).*/\1 \2/p' "/proc/$1/limits"; }

write_conf "$NET.2"
# An allowance to go realtime (as systemd's LimitRTPRIO= gives), for the
# thread alone; root without CAP_SYS_RESOURCE (some containers) cannot give it.
ALLOWANCE=0
ulimit -r 5 2>/dev/null && ALLOWANCE=1
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts"
TID=$(dns_tid)
check "beckond has a thread named beckond-dns" [ -n "$TID" ]
check "the DNS thread runs at realtime priority 1 ($(policy "$TID"))" [ "$(policy "$TID")" = "SCHED_FIFO 1" ]
check "the event loop's thread does not ($(policy "$DPID"))" [ "$(policy "$DPID")" = "SCHED_OTHER 0" ]
if [ "$ALLOWANCE" = 1 ]; then
	check "beckond gave up its realtime allowance ($(rtprio "$DPID"))" [ "$(rtprio "$DPID")" = "0 0" ]
else
	skip "beckond gives up its realtime allowance: RLIMIT_RTPRIO cannot be raised here (no CAP_SYS_RESOURCE)"
fi
check "the log says so" grep -q "the DNS thread at realtime priority 1" "$DLOG"

check "a wakes: its address" [ "$(dq +short a.svc.test A)" = "$NET.2" ]
check "a is ready" [ "$(svc_field a state)" = ready ]
[ "$ALLOWANCE" = 1 ] &&
	check "a's process has no realtime allowance ($(rtprio "$(svc_field a pid)"))" \
		[ "$(rtprio "$(svc_field a pid)")" = "0 0" ]

# 1. The loop stopped: what the thread answers alone, and what waits.
freeze
check "the main thread is stopped (ptrace)" [ "$FROZEN" = 1 ]
[ "$FROZEN" = 1 ] || sed 's/^/# /' "$T/freeze.err"
check "loop stopped: the control socket does not answer" \
	bash -c "! timeout 1 '$BECKONCTL' -s '$DSOCK' status"
check "loop stopped: a (ready) is answered by the thread" [ "$(q a.svc.test)" = "$NET.2" ]
check "loop stopped: the zone's SOA is answered" \
	bash -c "dig @127.0.0.1 -p $DNS_PORT +time=1 +tries=1 +short svc.test SOA | grep -q '^ns1.svc.test'"
check "loop stopped: a name not in the zone gets NXDOMAIN" \
	bash -c "dig @127.0.0.1 -p $DNS_PORT +time=1 +tries=1 nope.svc.test A | grep -q 'status: NXDOMAIN'"
dig @127.0.0.1 -p "$DNS_PORT" +time=20 +tries=1 +short b.svc.test A >"$T/b.ans" 2>&1 &
bdig=$!
sleep 1.5
check "loop stopped: the wake for b (stopped) waits for the loop" kill -0 "$bdig"
thaw
wait "$bdig"
check "loop back: the wake for b is answered, not lost" [ "$(cat "$T/b.ans")" = "$NET.3" ]
check "b is ready" [ "$(svc_field b state)" = ready ]

# 2. The thread's answers count as activity, and in the metrics.
sleep 1.2
before=$(svc_field a idle_ms)
check "a idle for a second ($before ms)" [ "$before" -ge 1000 ]
n0=$(noerror)
for i in $(seq 20); do q a.svc.test >/dev/null; done
check "a query answered by the thread is a's activity" \
	wait_for 5 bash -c "[ \$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; print([s for s in json.load(sys.stdin)[\"services\"] if s[\"name\"]==\"a\"][0][\"idle_ms\"])') -lt 1000 ]"
n1=$(noerror)
check "metrics count the thread's answers (NOERROR $n0 -> $n1)" [ "$((n1 - n0))" -ge 20 ]

# 3. A stopped instance is not answered by the thread: its query waits for the loop.
ctl stop a >/dev/null
check "a stops" wait_for 10 bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; print([s for s in json.load(sys.stdin)[\"services\"] if s[\"name\"]==\"a\"][0][\"state\"])')\" = stopped ]"
freeze
check "the main thread is stopped again" [ "$FROZEN" = 1 ]
ans=$(q a.svc.test)
check "loop stopped, a stopped: no answer from the thread ('$ans')" [ -z "$ans" ]
thaw
check "loop back: a wakes again" [ "$(dq +short a.svc.test A)" = "$NET.2" ]

# 4. A reload: a's address changes (its instance is made again), c is new.
write_conf "$NET.7" c
kill -HUP "$DPID"
check "reload logged" wait_for 10 grep -q "reloaded zone" "$DLOG"
check "after the reload: a's new address, never the old" [ "$(dq +short a.svc.test A)" = "$NET.7" ]
check "after the reload: c (new) wakes" [ "$(dq +short c.svc.test A)" = "$NET.4" ]
freeze
check "the main thread is stopped a third time" [ "$FROZEN" = 1 ]
check "after the reload, loop stopped: the thread answers a at its new address" \
	[ "$(q a.svc.test)" = "$NET.7" ]
check "after the reload, loop stopped: b, kept ready through the reload, is answered" \
	[ "$(q b.svc.test)" = "$NET.3" ]
thaw

check "beckond exits cleanly on SIGTERM, sanitizers quiet" stop_daemon

# 5. nice = 0: beckond stays where it was started, the thread too.
write_conf "$NET.2"
echo 'nice = 0;' >>"$CONF"
start_daemon "$CONF" "$T/beckond-nice0.log" || { not_ok "beckond starts with nice = 0"; finish; }
TID=$(dns_tid)
check "nice = 0: the DNS thread is not realtime ($(policy "$TID"))" [ "$(policy "$TID")" = "SCHED_OTHER 0" ]
check "nice = 0: and nothing was logged of it" bash -c "! grep -q 'realtime' '$DLOG'"
check "nice = 0: ready names still answered" [ "$(dq +short a.svc.test A)" = "$NET.2" ]
check "nice = 0: beckond exits cleanly" stop_daemon
finish
