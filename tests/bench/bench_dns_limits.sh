#!/usr/bin/env bash
# The DNS limits in figures (beckond's plain build, loopback, no guests):
# - RRL: one address floods one name at BENCH_FLOOD_QPS (default 2000) for
#   BENCH_SECS (default 10) against dns.rrl.rate 20 and 200 (slip 2): full
#   answers and truncated (slipped) ones a second as the flooder saw them,
#   against the rate; a client in another /24 at 10 a second meanwhile.
# - TCP: a new client's query over a new connection (one python process,
#   a fresh source address each time), BENCH_TCP_SAMPLES times (default 50), first with
#   nothing else, then under 1,000 idle connections (silent, half a length
#   prefix, a byte every 2 s, renewed when closed) from 20 addresses, with
#   the default limits (dns.tcp max 256, per_client 16): median, p90, max;
#   beckond's most fds meanwhile and the evictions.
# Writes tests/bench/results/dns-limits-DATE.txt.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BECKOND=${BECKOND:-$ROOT/build/beckond}
LOAD=$ROOT/tests/tools/dnsload.py
SECS=${BENCH_SECS:-10}
QPS=${BENCH_FLOOD_QPS:-2000}
SAMPLES=${BENCH_TCP_SAMPLES:-50}
OUT=$ROOT/tests/bench/results/dns-limits-$(date -u +%Y-%m-%d).txt
T=$(mktemp -d /tmp/beckon-bench.XXXXXX)
DPID=
trap '[ -n "$DPID" ] && kill -9 $DPID 2>/dev/null; rm -rf "$T"' EXIT
ulimit -n 8192
[ -x "$BECKOND" ] || { echo "bench_dns_limits: $BECKOND missing (run make)"; exit 1; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
A=$((20 + RANDOM % 200))

# start RATE: beckond with dns.rrl.rate RATE and the default TCP limits.
start() {
	DNS_PORT=$(port)
	M_PORT=$(port)
	cat >"$T/beckon.conf" <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "127.0.0.1:$M_PORT";
dns = { listen = ( "127.0.0.1:$DNS_PORT" ); zone = "svc.test";
        ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } );
        rrl = { rate = $1; slip = 2; }; };
network = { mode = "user"; hold = "none"; };
services = ();
CONF
	"$BECKOND" -c "$T/beckon.conf" >"$T/beckond.log" 2>&1 &
	DPID=$!
	for _ in $(seq 250); do
		dig @127.0.0.1 -p "$DNS_PORT" +time=1 +tries=1 +short NS svc.test >/dev/null 2>&1 && return 0
		sleep 0.02
	done
	echo "beckond did not start"; cat "$T/beckond.log"; exit 1
}
stop() { kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=; }
metric() { curl -s "http://127.0.0.1:$M_PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# stats FILE: "median p90 max" of the numbers in FILE.
stats() { sort -n "$1" | awk '{a[NR]=$1} END {i=int(NR*0.9+0.5); if (i<1) i=1; printf "%s %s %s", a[int((NR+1)/2)], a[i], a[NR]}'; }

{
	echo "# bench_dns_limits: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r), $(nproc) cpus, a shared machine (other sessions' builds and tests ran beside); beckond plain build (-O2), loopback"
	echo "# RRL: one address floods NS svc.test at $QPS/s for ${SECS}s; slip 2; another /24 asks 10/s meanwhile"
	printf '%-8s %-10s %-14s %-12s %-12s %-18s\n' rate sent/s answers/s "(expected)" tc/s "other client"
} | tee "$OUT"

for rate in 20 200; do
	start "$rate"
	python3 "$LOAD" steady "$DNS_PORT" "127.$A.11.2" "$SECS" 10 ns1.svc.test >"$T/other.json" &
	other=$!
	python3 "$LOAD" flood "$DNS_PORT" "127.$A.10.2" "$SECS" "$QPS" ns1.svc.test >"$T/flood.json"
	wait "$other"
	el=$(field "$T/flood.json" elapsed)
	python3 - "$T/flood.json" "$T/other.json" "$rate" <<'EOF' | tee -a "$OUT"
import json, sys
f = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2])); rate = int(sys.argv[3])
el = f["elapsed"]
print(f"{rate:<8} {f['sent']/el:<10.0f} {f['answered']/el:<14.1f} {'%.1f' % (rate + rate/el):<12} "
      f"{f['tc']/el:<12.1f} {o['answered']}/{o['sent']} answered")
EOF
	echo "#   metric: dropped $(metric 'beckon_dns_rrl_total{action="dropped"}'), slipped $(metric 'beckon_dns_rrl_total{action="slipped"}') (elapsed ${el}s)" | tee -a "$OUT"
	stop
done

start 200
fds() { ls "/proc/$DPID/fd" | wc -l; }
# sample FILE BASE: SAMPLES one-query connections, each from a fresh address (one python process).
sample() {
	python3 "$LOAD" tcpqs "$DNS_PORT" "$2" "$SAMPLES" 0.05 ns1.svc.test | sed 's/^fail$/99999/' >"$1"
}
fd0=$(fds)
sample "$T/quiet.txt" "127.$A.50"
python3 "$LOAD" tcphold "$DNS_PORT" 1000 "127.$A.200" 20 3600 "$T/hold.json" >/dev/null 2>&1 &
HOLD=$!
for _ in $(seq 300); do
	[ -f "$T/hold.json" ] && [ "$(field "$T/hold.json" connects)" -ge 1000 ] && break
	sleep 0.1
done
ev0=$(metric 'beckon_dns_tcp_closed_total{reason="evicted"}')
t0=$(date +%s%N)
maxfd=0
( while kill -0 "$HOLD" 2>/dev/null; do fds; sleep 0.1; done ) >"$T/fds.txt" 2>/dev/null &
FDS=$!
sample "$T/busy.txt" "127.$A.60"
t1=$(date +%s%N)
ev1=$(metric 'beckon_dns_tcp_closed_total{reason="evicted"}')
conns=$(metric beckon_dns_tcp_connections)
refused=$(metric 'beckon_dns_tcp_closed_total{reason="refused"}')
hold=$(cat "$T/hold.json")
kill "$HOLD"
wait "$HOLD" "$FDS" 2>/dev/null
maxfd=$(sort -n "$T/fds.txt" | tail -1)
fails=$(grep -c '^99999$' "$T/busy.txt")
{
	echo "# TCP: a new connection and one query (python client), $SAMPLES samples each; dns.tcp max 256, per_client 16 (defaults)"
	printf '%-40s %-10s %-10s %-10s\n' "" "median ms" "p90 ms" "max ms"
	printf '%-40s %-10s %-10s %-10s\n' "no other connections" $(stats "$T/quiet.txt")
	printf '%-40s %-10s %-10s %-10s\n' "under 1000 idle connections (renewed)" $(stats "$T/busy.txt")
	echo "#   not answered under load: $fails of $SAMPLES; holder: $hold"
	echo "#   evictions: $((ev1 - ev0)) in $(((t1 - t0) / 1000000)) ms of sampling; refused: $refused; open when sampling ended: $conns"
	echo "#   beckond fds: $fd0 before, at most $maxfd during (bound: 256 connections + listeners, metrics, log)"
} | tee -a "$OUT"
stop
echo "written: $OUT"
