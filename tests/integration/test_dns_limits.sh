#!/usr/bin/env bash
# The DNS server's limits against a real beckond, from loopback source
# addresses (any 127.x.y.z reaches lo with no setup, so each "client" and
# each /24 is an address the test picks):
# - answers never larger than the query allows: dig +noedns, +bufsize=,
#   +tcp against a zone whose NS answer is 817 bytes with glue;
# - RRL: a flood from one address is cut to dns.rrl.rate with slips (TC=1
#   answers), while a client in another /24 is answered in full; the
#   metric counts both;
# - 1,000 idle TCP connections (silent, half a length prefix, a byte every
#   2 s; renewed when closed) from 20 addresses: a new TCP client is
#   answered, UDP throughout, beckond's fd count stays bounded.
# Timing bounds are generous (ASan build, a shared 2-core machine): the
# issue's "within a second" is asserted for most new TCP clients and a
# hard 3 s for every one; tests/bench/bench_dns_limits.sh measures.
. "$(dirname "$0")/lib.sh"

LOAD=$ROOT/tests/tools/dnsload.py
DNS_PORT=$(free_port)
M_PORT=$(free_port)
RATE=20
TCP_MAX=64
PER_CLIENT=8
# This run's loopback /16: 127.A.*.*, so that runs beside it do not share a /24.
A=$((20 + RANDOM % 200))
CONF=$T/beckon.conf

# Raise our own fd limit: 1,000 connections and their renewals.
ulimit -n 8192 || { not_ok "ulimit -n 8192"; finish; }

# Five NS names with glue, long enough that the NS answer is over 512 and
# 700 bytes (817; 737 without the glue), under 1232.
# Each its own labels, so that name compression does not shrink them.
# label LETTER: 60 of it.
label() { printf '%60s' '' | tr ' ' "$1"; }
NS=""
for i in 0 1 2 3 4; do
	l=$(label "$(echo abcde | cut -c$((i + 1)))")
	NS="$NS{ name = \"ns$i.$l.$l.svc.test\"; address = \"127.0.0.$((i + 1))\"; },"
done
NAME0=ns0.$(label a).$(label a).svc.test
NAME1=ns1.$(label b).$(label b).svc.test
cat >"$CONF" <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "127.0.0.1:$M_PORT";
dns = {
  listen = ( "127.0.0.1:$DNS_PORT" );
  zone = "svc.test";
  ns = ( ${NS%,} );
  tcp = { max = $TCP_MAX; per_client = $PER_CLIENT; idle_timeout = "10s"; };
  rrl = { rate = $RATE; slip = 2; };
};
network = { mode = "user"; hold = "none"; };
services = ();
CONF

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts (tcp max $TCP_MAX, per_client $PER_CLIENT; rrl $RATE/s, slip 2)"

metric() { curl -s "http://127.0.0.1:$M_PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

# --- Answer sizes -----------------------------------------------------------

# size ARGS: "SIZE TC ANSWERS" of dig's answer (+ignore: no retry over TCP).
size() {
	local out
	out=$(dq +ignore +norec NS svc.test "$@") || return 1
	echo "$(echo "$out" | sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p')" \
		"$(echo "$out" | grep -q 'flags:[^;]* tc' && echo tc || echo -)" \
		"$(echo "$out" | sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p')"
}
read -r full _ full_an < <(size +tcp)
if [ "${full_an:-0}" -eq 5 ] && [ "$full" -gt 760 ] && [ "$full" -lt 1200 ]; then
	ok "over TCP: the whole NS answer ($full bytes, 5 records)"
else
	not_ok "over TCP: NS answer of ${full:-?} bytes, ${full_an:-?} records (want 5, 760..1200 bytes)"
fi
# (args, limit, tc expected)
# At 760 the glue goes and the NS records stay (737 bytes).
for c in "+noedns 512 tc" "+bufsize=512 512 tc" "+bufsize=600 600 tc" "+bufsize=760 760 -" \
	"+bufsize=1232 1232 -" "+bufsize=4096 1232 -"; do
	set -- $c
	read -r got tc an < <(size "$1")
	if [ -n "${got:-}" ] && [ "$got" -le "$2" ] && [ "$tc" = "$3" ] &&
		{ [ "$tc" = tc ] && [ "$an" -eq 0 ] || [ "$an" -eq 5 ]; }; then
		ok "dig $1: $got bytes (limit $2), TC $tc, $an answers"
	else
		not_ok "dig $1: ${got:-no answer} bytes (limit $2), TC ${tc:-?} (want $3), ${an:-?} answers"
	fi
done
# kdig too (another client's EDNS): same limit.
out=$(kdig @127.0.0.1 -p "$DNS_PORT" +time=5 +retry=0 +ignore +bufsize=700 NS svc.test 2>&1)
ksize=$(echo "$out" | sed -n 's/.*Received \([0-9]*\) B.*/\1/p')
if [ -n "$ksize" ] && [ "$ksize" -le 700 ] && echo "$out" | grep -q 'Flags:.* tc'; then
	ok "kdig +bufsize=700: $ksize bytes, TC"
else
	not_ok "kdig +bufsize=700: ${ksize:-no answer} bytes"
	echo "$out" | sed 's/^/# /' | head -20
fi

# --- RRL --------------------------------------------------------------------

FLOOD_SECS=4
FLOODER=127.$A.10.2
OTHER=127.$A.11.2
python3 "$LOAD" steady "$DNS_PORT" "$OTHER" "$FLOOD_SECS" 10 $NAME0 >"$T/other.json" &
OTHER_PID=$!
python3 "$LOAD" flood "$DNS_PORT" "$FLOODER" "$FLOOD_SECS" 1000 $NAME0 >"$T/flood.json"
wait "$OTHER_PID"
read -r sent answered tc elapsed < <(python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); print(d["sent"], d["answered"], d["tc"], d["elapsed"])' "$T/flood.json")
echo "# flooder: $(cat "$T/flood.json")"
echo "# other client: $(cat "$T/other.json")"
# At most one second's burst plus the rate for the time (and a little slack for
# the clock); at least half the rate (on a busy machine the flood may run slow).
most=$(python3 -c "print(int($RATE * ($elapsed + 1) + 5))")
least=$(python3 -c "print(int($RATE * $elapsed / 2))")
if [ "$sent" -gt $((RATE * FLOOD_SECS * 4)) ] && [ "$answered" -le "$most" ] && [ "$answered" -ge "$least" ]; then
	ok "RRL: flooder sent $sent in ${elapsed}s, got $answered full answers (rate $RATE/s: $least..$most)"
else
	not_ok "RRL: flooder sent $sent in ${elapsed}s, got $answered full answers (want $least..$most)"
fi
over=$((sent - answered))
if [ "$tc" -gt 0 ] && [ "$tc" -le $((over / 2 + 1)) ] && [ "$tc" -ge $((over / 4)) ]; then
	ok "RRL: $tc truncated (slipped) answers of $over over the limit (slip 2: about half)"
else
	not_ok "RRL: $tc truncated answers of $over over the limit (want about half)"
fi
read -r osent oans otc < <(python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); print(d["sent"], d["answered"], d["tc"])' "$T/other.json")
if [ "$osent" -ge 20 ] && [ "$oans" -eq "$osent" ] && [ "$otc" -eq 0 ]; then
	ok "RRL: the client in another /24 got all $oans of $osent answers meanwhile"
else
	not_ok "RRL: the other client got $oans of $osent answers, $otc truncated"
fi
dropped=$(metric 'beckon_dns_rrl_total{action="dropped"}')
slipped=$(metric 'beckon_dns_rrl_total{action="slipped"}')
if [ "${slipped:-0}" -ge "$tc" ] && [ "${dropped:-0}" -gt 0 ] &&
	[ $((slipped + dropped)) -ge $((over * 9 / 10)) ]; then
	ok "RRL metric: $dropped dropped, $slipped slipped"
else
	not_ok "RRL metric: ${dropped:-?} dropped, ${slipped:-?} slipped (flooder saw $tc slips, $over over)"
fi
# A new second: the flooder's own prefix is answered again once it stops.
if wait_for 5 sh -c "dig @127.0.0.1 -p $DNS_PORT -b $FLOODER +time=1 +tries=1 +short NS svc.test | grep -q ns0"; then
	ok "RRL: the flooder's address is answered again after the flood"
else
	not_ok "RRL: the flooder's address is still limited after the flood"
fi

# --- TCP: 1,000 idle connections ---------------------------------------------

fds() { ls "/proc/$DPID/fd" 2>/dev/null | wc -l; }
FD0=$(fds)
HOLD_SECS=25
python3 "$LOAD" tcphold "$DNS_PORT" 1000 "127.$A.200" 20 "$HOLD_SECS" "$T/hold.json" \
	>"$T/hold.log" 2>&1 &
HOLD_PID=$!
on_exit "kill $HOLD_PID"
if ! wait_for 30 sh -c "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d[\"connects\"] < 1000)' $T/hold.json"; then
	not_ok "the holder opened 1000 connections"
	cat "$T/hold.log" "$T/hold.json" 2>/dev/null | sed 's/^/# /'
fi
echo "# holder: $(cat "$T/hold.json" 2>/dev/null)"

# UDP throughout: a polite client beside it all.
python3 "$LOAD" steady "$DNS_PORT" 127.0.0.1 8 5 $NAME1 >"$T/udp.json" &
UDP_PID=$!

# New TCP clients, one after another, each from a fresh address; fd counts meanwhile.
maxfd=$FD0
times=()
fails=0
for i in $(seq 1 20); do
	t0=$(date +%s%N)
	if kdig @127.0.0.1 -p "$DNS_PORT" +tcp +time=3 +retry=0 +short NS svc.test \
		>"$T/kdig.out" 2>&1 && grep -q ns0 "$T/kdig.out"; then
		times+=($((($(date +%s%N) - t0) / 1000000)))
	else
		fails=$((fails + 1))
		sed 's/^/# /' "$T/kdig.out" | head -5
	fi
	n=$(fds)
	[ "$n" -gt "$maxfd" ] && maxfd=$n
	sleep 0.2
done
for _ in $(seq 10); do
	n=$(fds)
	[ "$n" -gt "$maxfd" ] && maxfd=$n
	sleep 0.2
done
echo "# holder: $(cat "$T/hold.json" 2>/dev/null)"
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
med=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
p90=$(echo "$sorted" | awk '{a[NR]=$1} END {i=int(NR*0.9+0.5); if (i<1) i=1; print a[i]}')
within=$(echo "$sorted" | awk '$1 <= 1000' | wc -l)
if [ "$fails" -eq 0 ] && [ "$within" -ge 18 ]; then
	ok "TCP under 1000 idle connections: 20 of 20 new clients answered (kdig +tcp), $within within 1 s; median $med ms, p90 $p90 ms"
else
	not_ok "TCP under 1000 idle connections: $fails of 20 not answered, $within within 1 s (median ${med:-?} ms)"
fi
wait "$UDP_PID"
read -r usent uans < <(python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); print(d["sent"], d["answered"])' "$T/udp.json")
if [ "$usent" -ge 20 ] && [ "$uans" -eq "$usent" ]; then
	ok "UDP throughout: $uans of $usent answered"
else
	not_ok "UDP throughout: $uans of $usent answered"
fi
bound=$((FD0 + TCP_MAX + 8))
if [ "$maxfd" -le "$bound" ]; then
	ok "fd count bounded: at most $maxfd (before: $FD0, tcp max $TCP_MAX)"
else
	not_ok "fd count $maxfd, more than $bound"
fi
conns=$(metric beckon_dns_tcp_connections)
evicted=$(metric 'beckon_dns_tcp_closed_total{reason="evicted"}')
refused=$(metric 'beckon_dns_tcp_closed_total{reason="refused"}')
if [ "${conns:-999}" -le "$TCP_MAX" ] && [ "${evicted:-0}" -gt 1000 ] && [ "${refused:-1}" -eq 0 ]; then
	ok "TCP metrics: $conns open (max $TCP_MAX), $evicted idle ones evicted, $refused refused"
else
	not_ok "TCP metrics: ${conns:-?} open, ${evicted:-?} evicted, ${refused:-?} refused"
fi

# One address alone cannot take more than per_client, whatever it tries.
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
wait_for 10 sh -c "[ \"\$(curl -s http://127.0.0.1:$M_PORT/metrics | awk '\$1 == \"beckon_dns_tcp_connections\" {print \$2}')\" = 0 ]"
python3 "$LOAD" tcphold "$DNS_PORT" 40 "127.$A.201" 1 30 "$T/one.json" >/dev/null 2>&1 &
ONE_PID=$!
on_exit "kill $ONE_PID"
wait_for 10 sh -c "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d[\"connects\"] < 40)' $T/one.json"
conns=$(metric beckon_dns_tcp_connections)
if [ "${conns:-999}" -le "$PER_CLIENT" ] && [ "${conns:-0}" -ge 1 ]; then
	ok "one address opening 40 connections holds $conns (per_client $PER_CLIENT)"
else
	not_ok "one address opening 40 connections holds ${conns:-?} (per_client $PER_CLIENT)"
fi
kill "$ONE_PID" 2>/dev/null
wait "$ONE_PID" 2>/dev/null

# SIGHUP: new limits apply; rrl rate 0 turns RRL off (the flooder gets every answer).
sed -i "s/rrl = { rate = $RATE; slip = 2; };/rrl = { rate = 0; };/" "$CONF"
kill -HUP "$DPID"
if wait_for 15 grep -q 'reloaded zone' "$DLOG"; then
	python3 "$LOAD" flood "$DNS_PORT" "$FLOODER" 2 500 "$NAME0" >"$T/flood2.json"
	read -r sent answered tc < <(python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); print(d["sent"], d["answered"], d["tc"])' "$T/flood2.json")
	if [ "$sent" -ge 100 ] && [ "$answered" -eq "$sent" ] && [ "$tc" -eq 0 ]; then
		ok "after SIGHUP with rrl rate 0: the flooder got all $answered of $sent answers"
	else
		not_ok "after SIGHUP with rrl rate 0: $answered of $sent answered, $tc truncated"
	fi
else
	not_ok "SIGHUP: no reload in the log"
fi

check "beckond stops cleanly, sanitizers quiet" stop_daemon
finish
