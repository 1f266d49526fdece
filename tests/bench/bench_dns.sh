#!/usr/bin/env bash
# DNS throughput: beckon (build/beckond, not the ASan build) against NSD
# serving the same zone, in the same run, one worker each, on loopback.
# dnsperf asks for a ready service's A record (beckon's hot path: the
# prebuilt answer, patched). Three runs each, alternating; the median and
# spread of qps, the server CPU per query, and the ratios go to stdout and
# to tests/bench/results/dns-<date>.txt, with the previous result file for
# comparison. Goal: beckon >= 1.0x NSD. Exits 1 when the median qps ratio is
# far off it (below BENCH_DNS_FLOOR, default 0.8).
#
# BENCH_DNS_SECONDS (default 10) per run, BENCH_DNS_RUNS (default 3),
# BENCH_DNS_OUTSTANDING (dnsperf -q, default 100).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BECKOND=${BECKOND:-$ROOT/build/beckond}
SECS=${BENCH_DNS_SECONDS:-10}
RUNS=${BENCH_DNS_RUNS:-3}
OUTSTANDING=${BENCH_DNS_OUTSTANDING:-100}
FLOOR=${BENCH_DNS_FLOOR:-0.8}
RESULTS=$ROOT/tests/bench/results
T=$(mktemp -d /tmp/beckon-bench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.3
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in dnsperf nsd dig busybox taskset; do
	command -v "$tool" >/dev/null || { echo "bench_dns: $tool is not installed"; exit 1; }
done
[ -x "$BECKOND" ] || { echo "bench_dns: $BECKOND not built (make build/beckond)"; exit 1; }

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		ss -Htuln "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}
B_PORT=$(free_port)
N_PORT=$(free_port)
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
mkdir -p "$T/www"
echo bench >"$T/www/index.html"

cat >"$T/beckon.conf" <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
dns = {
  listen = ( "127.0.0.1:$B_PORT" );
  zone = "svc.test";
  ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } );
  ttl = 30;
  rrl = { rate = 0; };   # as NSD's rrl-ratelimit: 0 below: the load is one client
};
network = { mode = "user"; hold = "none"; };
services = (
  { name = "www"; dns = ( "www.svc.test" ); address = "$NET.2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp";
    exec = { command = "busybox httpd -f -p {address}:8080 -h $T/www"; }; }
);
CONF

cat >"$T/svc.test.zone" <<ZONE
\$ORIGIN svc.test.
\$TTL 30
@    IN SOA ns1.svc.test. hostmaster.svc.test. 1 3600 600 1209600 30
@    IN NS  ns1.svc.test.
ns1  IN A   127.0.0.1
www  IN A   $NET.2
ZONE
# One server process, no rate limiting (NSD's RRL would drop the load), no chroot.
cat >"$T/nsd.conf" <<NSD
server:
  server-count: 1
  ip-address: 127.0.0.1@$N_PORT
  username: ""
  chroot: ""
  zonesdir: "$T"
  database: ""
  pidfile: "$T/nsd.pid"
  xfrdfile: "$T/xfrd.state"
  zonelistfile: "$T/zone.list"
  logfile: "$T/nsd.log"
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  hide-version: yes
remote-control:
  control-enable: no
zone:
  name: "svc.test"
  zonefile: "svc.test.zone"
NSD

# Servers on the last CPU, dnsperf on the first: the same for both servers,
# and steadier than wherever the scheduler puts them.
SERVER_CPU=$(($(nproc) - 1))
SPIN=() CPIN=()
[ "$SERVER_CPU" -gt 0 ] && SPIN=(taskset -c "$SERVER_CPU") CPIN=(taskset -c 0)
"${SPIN[@]}" "$BECKOND" -c "$T/beckon.conf" >"$T/beckond.log" 2>&1 &
PIDS+=($!)
"${SPIN[@]}" nsd -c "$T/nsd.conf" -d >"$T/nsd.out" 2>&1 &
PIDS+=($!)

answer() { dig @127.0.0.1 -p "$1" +time=2 +tries=1 +short www.svc.test A 2>/dev/null; }
for _ in $(seq 100); do
	[ "$(answer "$B_PORT")" = "$NET.2" ] && [ "$(answer "$N_PORT")" = "$NET.2" ] && break
	sleep 0.1
done
if [ "$(answer "$B_PORT")" != "$NET.2" ] || [ "$(answer "$N_PORT")" != "$NET.2" ]; then
	echo "bench_dns: the servers did not come up"
	tail -5 "$T/beckond.log" "$T/nsd.out" "$T/nsd.log" 2>/dev/null
	exit 1
fi
BPID=${PIDS[0]}
# NSD's serving process ("nsd: server 1") among the descendants of the one started.
descendants() {
	local c
	for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done
}
NPID=
for p in $(descendants "${PIDS[1]}"); do
	grep -q "server" "/proc/$p/comm" 2>/dev/null && NPID=$p
done
[ -n "$NPID" ] || { echo "bench_dns: cannot find NSD's server process"; exit 1; }

echo "www.svc.test A" >"$T/queries"
# CPU ticks (user + system) of a process; the name field may hold spaces.
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
HZ=$(getconf CLK_TCK)

# run PORT PID: one dnsperf run; prints "qps lost us_cpu_per_query".
run() {
	local port=$1 pid=$2 c0 c1 out done_q
	c0=$(ticks "$pid")
	out=$("${CPIN[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$T/queries" -c 1 -T 1 -l "$SECS" \
		-q "$OUTSTANDING" 2>&1)
	c1=$(ticks "$pid")
	done_q=$(awk '/Queries completed:/ {print $3}' <<<"$out")
	awk -v q="$(awk '/Queries per second:/ {print $4}' <<<"$out")" \
		-v lost="$(awk '/Queries lost:/ {print $3}' <<<"$out")" \
		-v t=$((c1 - c0)) -v n="${done_q:-0}" -v hz="$HZ" \
		'BEGIN { printf "%.0f %d %.3f\n", q, lost, n ? t / hz * 1e6 / n : 0 }'
}

declare -a B_QPS N_QPS B_CPU N_CPU
for i in $(seq "$RUNS"); do
	read -r q l c < <(run "$B_PORT" "$BPID")
	B_QPS+=("$q") B_CPU+=("$c")
	echo "run $i beckon: $q qps, $l lost, $c us CPU/query"
	read -r q l c < <(run "$N_PORT" "$NPID")
	N_QPS+=("$q") N_CPU+=("$c")
	echo "run $i nsd:    $q qps, $l lost, $c us CPU/query"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'; }
bq=$(median "${B_QPS[@]}") nq=$(median "${N_QPS[@]}")
bc_=$(median "${B_CPU[@]}") nc=$(median "${N_CPU[@]}")
ratio=$(awk -v a="$bq" -v b="$nq" 'BEGIN {printf "%.3f", b ? a / b : 0}')
cpu_ratio=$(awk -v a="$bc_" -v b="$nc" 'BEGIN {printf "%.3f", a ? b / a : 0}')

mkdir -p "$RESULTS"
prev=$(ls "$RESULTS"/dns-*.txt 2>/dev/null | sort | tail -1)
file=$RESULTS/dns-$(date -u +%Y-%m-%d).txt
{
	echo "# bench_dns: dnsperf -c 1 -T 1 -l $SECS -q $OUTSTANDING, query www.svc.test A, loopback; servers on cpu $SERVER_CPU, dnsperf on cpu 0"
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) $(nproc) cpus; $(nsd -v 2>&1 | head -1); dnsperf $(dpkg-query -W -f '${Version}' dnsperf 2>/dev/null)"
	echo "# beckon: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo uncommitted), $BECKOND"
	echo "beckon_qps_runs ${B_QPS[*]}"
	echo "nsd_qps_runs ${N_QPS[*]}"
	echo "beckon_qps_median $bq"
	echo "beckon_qps_spread $(spread "${B_QPS[@]}")"
	echo "nsd_qps_median $nq"
	echo "nsd_qps_spread $(spread "${N_QPS[@]}")"
	echo "qps_ratio_median $ratio"
	echo "beckon_cpu_us_per_query_runs ${B_CPU[*]}"
	echo "nsd_cpu_us_per_query_runs ${N_CPU[*]}"
	echo "beckon_cpu_us_per_query_median $bc_"
	echo "nsd_cpu_us_per_query_median $nc"
	echo "cpu_ratio_median $cpu_ratio"
} >"$file.tmp"
mv "$file.tmp" "$file"

echo
cat "$file"
if [ -n "$prev" ] && [ "$prev" != "$file" ]; then
	echo "# previous ($(basename "$prev")): $(grep -E '^(beckon_qps_median|nsd_qps_median|qps_ratio_median)' "$prev" | tr '\n' ' ')"
fi
echo "# qps ratio beckon/nsd $ratio (goal >= 1.0); CPU per query nsd/beckon $cpu_ratio (> 1: beckon cheaper)"
if awk -v r="$ratio" -v f="$FLOOR" 'BEGIN {exit !(r < f)}'; then
	echo "bench_dns: FAIL: beckon is at ${ratio}x NSD, below the floor ${FLOOR}x"
	exit 1
fi
